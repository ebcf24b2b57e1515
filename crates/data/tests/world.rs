//! The generated world: determinism, layout, balance.

use sdvp_data::world::{
    generate_world, splits_of, Scale, WorldConfig, HELDOUT, PROGRAM_TASKS, SPLITS, TASKS,
};
use sdvp_data::{load_split, ImageStore, OracleBackend};
use std::collections::BTreeMap;

fn gen(threads: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = WorldConfig {
        seed: 11,
        scale: Scale::Tiny,
        size: 96,
        threads,
    };
    generate_world(dir.path(), &cfg, &|_, _| {}).expect("generate");
    dir
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    // A thread count past any machine's is bounded, not a panic in `thread::scope`.
    let (a, b, c) = (gen(1), gen(2), gen(1_000_000));
    for f in [
        "scenes.jsonl",
        "gqa-world/train.jsonl",
        "nlvr-world/test.jsonl",
    ] {
        let (x, y) = (
            std::fs::read(a.path().join(f)).expect("a"),
            std::fs::read(b.path().join(f)).expect("b"),
        );
        assert!(x == y, "{f} differs");
        assert!(
            std::fs::read(c.path().join(f)).expect("c") == x,
            "{f} differs"
        );
    }
    let r = load_split(a.path(), "gqa-world", "val").expect("load");
    let src = &r.examples[0].images[0].image.source;
    let (x, y) = (
        std::fs::read(a.path().join("images").join(format!("{src}.png"))).expect("png a"),
        std::fs::read(b.path().join("images").join(format!("{src}.png"))).expect("png b"),
    );
    assert!(x == y);
}

#[test]
fn layout_images_and_splits_are_disjoint() {
    let dir = gen(2);
    let oracle = OracleBackend::load(dir.path()).expect("scenes");
    let store = ImageStore::for_world(dir.path());
    for task in TASKS {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for split in SPLITS {
            let r = load_split(dir.path(), task, split).expect("load");
            assert_eq!(
                r.examples.len(),
                Scale::Tiny.questions(split),
                "{task}/{split}"
            );
            for ex in &r.examples {
                for i in &ex.images {
                    assert!(i.path.is_file(), "{}", i.path.display());
                    if let Some(prev) = seen.insert(i.image.source.clone(), split) {
                        assert_eq!(prev, split, "{} in two splits", i.image.source);
                    }
                }
            }
        }
        let r = load_split(dir.path(), task, "test").expect("load");
        let img = store.load(&r.examples[0].images[0].image).expect("pixels");
        assert_eq!(img.dimensions(), (96, 96));
    }
    assert!(oracle.len() > 50);
}

#[test]
fn heldout_phrasings_appear_only_in_the_heldout_split() {
    let dir = gen(2);
    let mut counted = 0;
    for task in PROGRAM_TASKS {
        assert!(splits_of(task).contains(&HELDOUT));
        for split in SPLITS {
            for ex in load_split(dir.path(), task, split).expect("load").examples {
                assert!(
                    !sdvp_data::tasks::heldout::is_heldout_phrasing(&ex.question),
                    "{task}/{split}: {}",
                    ex.question
                );
                counted += 1;
            }
        }
        let held = load_split(dir.path(), task, HELDOUT).expect("heldout");
        assert_eq!(
            held.examples.len(),
            Scale::Tiny.questions(HELDOUT),
            "{task}"
        );
        for ex in &held.examples {
            assert!(
                sdvp_data::tasks::heldout::is_heldout_phrasing(&ex.question),
                "{task}: {}",
                ex.question
            );
            assert!(
                ex.gold_step.is_some() && ex.gold_python.is_some(),
                "{}",
                ex.id
            );
        }
    }
    assert!(!splits_of("pretrain").contains(&HELDOUT));
    assert_eq!(counted, 3 * (60 + 30 + 30));
}

#[test]
fn answers_are_balanced_per_question_type() {
    use sdvp_data::rng::SplitMix64;
    use sdvp_data::scene::{sample_scene, SceneConfig};
    use sdvp_data::tasks::{gqa, nlvr, Balancer};
    let mut rng = SplitMix64::new(5);
    let cfg = SceneConfig::new(128);
    for task in ["gqa-world", "nlvr-world"] {
        let mut bal = Balancer::default();
        let mut picked = Vec::new();
        for i in 0..400 {
            let s = sample_scene(&mut rng, &cfg, format!("s{i}"), "clean");
            let cands = if task == "gqa-world" {
                gqa::candidates(&s, &mut rng)
            } else {
                let t = sample_scene(&mut rng, &cfg, format!("t{i}"), "clean");
                nlvr::candidates(&s, &t, &mut rng)
            };
            picked.extend(bal.select(cands, 5, &mut rng));
        }
        let mut by: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for q in &picked {
            *by.entry(q.question_type.clone())
                .or_default()
                .entry(q.answer.clone())
                .or_default() += 1;
        }
        assert!(by.len() >= 7, "{task}: only {} types", by.len());
        for (t, m) in &by {
            let total: usize = m.values().sum();
            let top = m.values().max().copied().unwrap_or(0);
            // No answer is much more frequent than a uniform prior over the answers seen.
            let uniform = total.div_ceil(m.len());
            assert!(total >= 40, "{task} {t}: only {total} questions");
            assert!(top * 10 <= uniform * 13 + 20, "{task} {t}: {m:?}");
        }
    }
}
