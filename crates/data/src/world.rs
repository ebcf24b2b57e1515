//! Writing a whole world to disk: tasks × splits, in parallel, byte-identical for a seed.
//!
//! Work is cut into fixed chunks (independent of the number of threads); each chunk has its
//! own random stream derived from `(seed, task, split, chunk)`, renders and writes its own
//! images, and returns its questions and scenes; the main thread stitches chunks in order.

use crate::example::{Example, ImageInput, EXAMPLE_SCHEMA};
use crate::render::{encode_png, render};
use crate::scene::{sample_scene, Scene, SceneConfig};
use crate::tasks::{attr, gqa, heldout, nlvr, pretrain, Balancer, Question};
use anyhow::Context;
use sdvp_core::rng::SplitMix64;
use sdvp_core::ImageRef;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub const TASKS: [&str; 4] = ["gqa-world", "nlvr-world", "attr-world", "pretrain"];
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The split of held-out phrasings (see [`crate::tasks::heldout`]): test-only, never read by
/// training, written for the tasks that have programs.
pub const HELDOUT: &str = "heldout";

/// The tasks whose questions have programs (every task but `pretrain`).
pub const PROGRAM_TASKS: [&str; 3] = ["gqa-world", "nlvr-world", "attr-world"];

/// The splits written for `task`, in file order.
pub fn splits_of(task: &str) -> Vec<&'static str> {
    let mut v = SPLITS.to_vec();
    if PROGRAM_TASKS.contains(&task) {
        v.push(HELDOUT);
    }
    v
}

/// How big a world to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A few dozen questions per split: for tests (seconds).
    Tiny,
    /// 10 000 / 1 000 / 1 000 questions per task.
    Small,
    /// 100 000 / 5 000 / 5 000 questions per task.
    Full,
}

impl Scale {
    pub fn parse(s: &str) -> Option<Scale> {
        match s {
            "tiny" => Some(Scale::Tiny),
            "small" => Some(Scale::Small),
            "full" => Some(Scale::Full),
            _ => None,
        }
    }
    pub fn questions(self, split: &str) -> usize {
        match (self, split) {
            (Scale::Tiny, "train") => 60,
            (Scale::Tiny, HELDOUT) => 20,
            (Scale::Small, HELDOUT) => 500,
            (Scale::Full, HELDOUT) => 2_000,
            (Scale::Tiny, _) => 30,
            (Scale::Small, "train") => 10_000,
            (Scale::Small, _) => 1_000,
            (Scale::Full, "train") => 100_000,
            (Scale::Full, _) => 5_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorldConfig {
    pub seed: u64,
    pub scale: Scale,
    pub size: u32,
    /// Worker threads (0: all cores; at most [`MAX_THREADS`]). Does not change the output.
    pub threads: usize,
}

/// The most generator threads started, whatever `threads` asks for.
pub const MAX_THREADS: usize = 256;

/// Questions per chunk: small enough to balance work, large enough to balance answers.
const CHUNK: usize = 250;

/// Share of each domain in the generic `pretrain` corpus. The target tasks' domains
/// (`cluttered` for gqa-world, `night` for nlvr-world) are covered thinly, as a web-scale
/// corpus covers a specialised benchmark's images: the general student is mediocre there,
/// which is the situation task-specific teachers and distillation exist for. The unseen
/// task's `sketch` is covered well, as general images are: the student answers it better
/// than any teacher. (Measured with the shipped student schedule: at 5 % night it answered
/// nlvr-world's sub-tasks at 97.6 %, the teacher 100 %; at 1 % night and 30 % sketch the
/// unseen task's at 63.8 %, the gqa-world teacher 54.6 %; the premise needs 10 points.)
pub const PRETRAIN_MIX: [(&str, f64); 4] = [
    ("clean", 0.49),
    ("sketch", 0.45),
    ("cluttered", 0.05),
    ("night", 0.01),
];

/// Domain of a task's images; `pretrain` draws from [`PRETRAIN_MIX`].
pub fn task_domain(task: &str, rng: &mut SplitMix64) -> &'static str {
    match task {
        "gqa-world" => "cluttered",
        "nlvr-world" => "night",
        "attr-world" => "sketch",
        _ => {
            let r = rng.next_f64();
            let mut acc = 0.0;
            for (domain, share) in PRETRAIN_MIX {
                acc += share;
                if r < acc {
                    return domain;
                }
            }
            PRETRAIN_MIX[0].0
        }
    }
}

struct ChunkOut {
    items: Vec<(Question, Vec<(String, String)>)>,
    scenes: Vec<Scene>,
}

fn write_scene_image(images: &Path, scene: &Scene) -> anyhow::Result<()> {
    let png = encode_png(&render(scene)).context("encoding png")?;
    let path = images.join(format!("{}.png", scene.id));
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))
}

/// Generate one chunk of questions, writing its images.
fn run_chunk(
    cfg: &WorldConfig,
    images: &Path,
    task: &str,
    split: &str,
    chunk: usize,
    quota: usize,
) -> anyhow::Result<ChunkOut> {
    let mut rng = SplitMix64::derive_named(cfg.seed, &[task, split], chunk as u64);
    let scfg = SceneConfig::new(cfg.size);
    let mut bal = Balancer::default();
    let mut out = ChunkOut {
        items: Vec::new(),
        scenes: Vec::new(),
    };
    let mut n_scene = 0usize;
    let mut new_scene = |rng: &mut SplitMix64, out: &mut ChunkOut| -> Scene {
        let id = format!("{task}-{split}-{chunk:04}-{n_scene:04}");
        n_scene += 1;
        let domain = task_domain(task, rng);
        let s = sample_scene(rng, &scfg, id, domain);
        out.scenes.push(s.clone());
        s
    };
    let per_scene = if task == "pretrain" { 4 } else { 5 };
    if task == "nlvr-world" {
        let pool: Vec<Scene> = (0..(quota / 3).max(4))
            .map(|_| new_scene(&mut rng, &mut out))
            .collect();
        let mut tries = 0;
        while out.items.len() < quota && tries < quota * 20 {
            tries += 1;
            let (i, j) = (rng.below(pool.len()), rng.below(pool.len()));
            if i == j {
                continue;
            }
            let cands = nlvr::candidates(&pool[i], &pool[j], &mut rng);
            for q in bal.select(cands, 2, &mut rng) {
                if out.items.len() < quota {
                    let imgs = vec![
                        ("LEFT".to_string(), pool[i].id.clone()),
                        ("RIGHT".to_string(), pool[j].id.clone()),
                    ];
                    out.items.push((q, imgs));
                }
            }
        }
    } else {
        let mut tries = 0;
        while out.items.len() < quota && tries < quota * 20 {
            tries += 1;
            let s = new_scene(&mut rng, &mut out);
            let cands = match task {
                "gqa-world" => gqa::candidates(&s, &mut rng),
                "attr-world" => attr::candidates(&s, &mut rng),
                _ => pretrain::candidates(&s, &mut rng),
            };
            let picked = bal.select(cands, per_scene, &mut rng);
            if picked.is_empty() {
                out.scenes.pop();
                continue;
            }
            for mut q in picked {
                if out.items.len() < quota {
                    q.meta.insert("domain".into(), serde_json::json!(s.domain));
                    out.items
                        .push((q, vec![("IMAGE".to_string(), s.id.clone())]));
                }
            }
        }
    }
    if split == HELDOUT {
        // A stream of its own, so the questions are those the split would hold unrephrased.
        let mut words =
            SplitMix64::derive_named(cfg.seed, &[task, split, "phrasing"], chunk as u64);
        for (q, _) in &mut out.items {
            q.question = heldout::rephrase(&q.question, task == "nlvr-world", &mut words);
        }
    }
    // Only scenes some question uses are kept and drawn.
    let used: std::collections::BTreeSet<&str> = out
        .items
        .iter()
        .flat_map(|(_, i)| i.iter().map(|(_, s)| s.as_str()))
        .collect();
    let scenes: Vec<Scene> = out
        .scenes
        .iter()
        .filter(|s| used.contains(s.id.as_str()))
        .cloned()
        .collect();
    for s in &scenes {
        write_scene_image(images, s)?;
    }
    out.scenes = scenes;
    Ok(out)
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct WorldSummary {
    /// (task, split, questions)
    pub splits: Vec<(String, String, usize)>,
    pub images: usize,
}

/// Generate every task and split into `dir`. `progress(done, total)` counts questions.
pub fn generate_world(
    dir: &Path,
    cfg: &WorldConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<WorldSummary> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).with_context(|| format!("creating {}", images.display()))?;
    let mut jobs: Vec<(&str, &str, usize, usize)> = Vec::new();
    for task in TASKS {
        for split in splits_of(task) {
            let total = cfg.scale.questions(split);
            let mut c = 0;
            while c * CHUNK < total {
                jobs.push((task, split, c, CHUNK.min(total - c * CHUNK)));
                c += 1;
            }
        }
    }
    let total: usize = jobs.iter().map(|j| j.3).sum();
    let results: Mutex<Vec<Option<anyhow::Result<ChunkOut>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    }
    .clamp(1, MAX_THREADS)
    .min(jobs.len().max(1));
    let spawned = std::thread::scope(|s| {
        let mut spawned = 0;
        for _ in 0..threads {
            // A refused thread (out of threads or memory) leaves the work to the others.
            let started = std::thread::Builder::new().spawn_scoped(s, || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(task, split, chunk, quota)) = jobs.get(i) else {
                    break;
                };
                let r = run_chunk(cfg, &images, task, split, chunk, quota);
                let d = done.fetch_add(quota, Ordering::SeqCst) + quota;
                progress(d, total);
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
            match started {
                Ok(_) => spawned += 1,
                Err(_) => break,
            }
        }
        spawned
    });
    if spawned == 0 {
        anyhow::bail!("could not start a generator thread");
    }
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a generator thread panicked"))?;
    stitch(dir, cfg, &jobs, results)
}

fn stitch(
    dir: &Path,
    cfg: &WorldConfig,
    jobs: &[(&str, &str, usize, usize)],
    results: Vec<Option<anyhow::Result<ChunkOut>>>,
) -> anyhow::Result<WorldSummary> {
    let mut summary = WorldSummary::default();
    let scenes_path = dir.join("scenes.jsonl");
    let mut scenes_out = std::io::BufWriter::new(
        std::fs::File::create(&scenes_path)
            .with_context(|| format!("creating {}", scenes_path.display()))?,
    );
    let mut current: Option<(String, String, std::io::BufWriter<std::fs::File>, usize)> = None;
    for (job, r) in jobs.iter().zip(results) {
        let (task, split, _, _) = *job;
        let chunk = r.with_context(|| format!("{task}/{split}: a chunk was not generated"))??;
        if current.as_ref().is_none_or(|c| c.0 != task || c.1 != split) {
            if let Some((t, s, mut w, n)) = current.take() {
                w.flush()?;
                summary.splits.push((t, s, n));
            }
            let tdir = dir.join(task);
            std::fs::create_dir_all(&tdir)
                .with_context(|| format!("creating {}", tdir.display()))?;
            let p = tdir.join(format!("{split}.jsonl"));
            let f =
                std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
            current = Some((
                task.to_string(),
                split.to_string(),
                std::io::BufWriter::new(f),
                0,
            ));
        }
        for s in &chunk.scenes {
            serde_json::to_writer(&mut scenes_out, s)?;
            scenes_out.write_all(b"\n")?;
        }
        summary.images += chunk.scenes.len();
        if let Some((_, _, w, n)) = current.as_mut() {
            for (q, imgs) in chunk.items {
                let ex = to_example(task, split, *n, q, &imgs, cfg.size);
                let mut v = serde_json::to_value(&ex)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("schema".into(), serde_json::json!(EXAMPLE_SCHEMA));
                }
                serde_json::to_writer(&mut *w, &v)?;
                w.write_all(b"\n")?;
                *n += 1;
            }
        }
    }
    if let Some((t, s, mut w, n)) = current.take() {
        w.flush()?;
        summary.splits.push((t, s, n));
    }
    scenes_out.flush()?;
    Ok(summary)
}

fn to_example(
    task: &str,
    split: &str,
    n: usize,
    q: Question,
    imgs: &[(String, String)],
    size: u32,
) -> Example {
    Example {
        id: format!("{task}-{split}-{n:06}"),
        task: task.to_string(),
        split: split.to_string(),
        question: q.question,
        answer: q.answer,
        question_type: q.question_type,
        images: imgs
            .iter()
            .map(|(name, id)| ImageInput {
                name: name.clone(),
                image: ImageRef::new(id.clone(), size, size),
                path: PathBuf::from("images").join(format!("{id}.png")),
            })
            .collect(),
        gold_step: q.gold_step,
        gold_python: q.gold_python,
        meta: q.meta,
    }
}
