//! Fuzz target on the stable toolchain: the model config readers (BLIP, CLIP and OWL-ViT
//! `Config::from_file`, `ImageProcessor::from_file`) on the fixture configs with fields
//! replaced by hostile values (zero, negative, huge, wrong type, deep nesting), removed or
//! added, then byte-edited. None may panic, and what a reader accepts keeps its invariants.
//!
//! A short budget runs as a normal test; `SDVP_FUZZ_SECS=600` runs it for ten minutes.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::{blip, clip, owlvit};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};

#[path = "../../core/tests/support/fuzz.rs"]
mod fuzz_support;
use fuzz_support::{apply, edit, fuzz, Edit};

fn fixture(rel: &str) -> Json {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn hostile() -> impl Strategy<Value = Json> {
    prop_oneof![
        4 => prop::sample::select(vec![
            json!(0), json!(1), json!(-1), json!(3), json!(1e300), json!(-1e300), json!(0.5),
            json!(u64::MAX), json!(i64::MIN), json!(4294967296u64), json!("768"), json!(""),
            json!(null), json!(true), json!([]), json!({}), json!([1, 2, 3]),
            json!({"height": 0, "width": 0}), json!({"shortest_edge": u64::MAX}),
            json!({"height": -1}), json!("gelu"), json!("quick_gelu"), json!("nope"),
        ]),
        1 => any::<i64>().prop_map(Json::from),
        1 => any::<f64>().prop_map(|f| json!(f)),
        1 => (1usize..2000).prop_map(|n| {
            serde_json::from_str(&format!("{}1{}", "[".repeat(n.min(100)), "]".repeat(n.min(100))))
                .unwrap_or(Json::Null)
        }),
    ]
}

/// Every value's JSON pointer in `v`, objects and arrays included.
fn pointers(v: &Json, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Json::Object(o) => o.iter().for_each(|(k, x)| {
            pointers(
                x,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Json::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Change {
    Replace(usize, Json),
    Remove(usize),
    Add(usize, String, Json),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (any::<usize>(), hostile()).prop_map(|(i, v)| Change::Replace(i, v)),
        1 => any::<usize>().prop_map(Change::Remove),
        1 => (any::<usize>(), "[a-z_]{1,12}", hostile()).prop_map(|(i, k, v)| Change::Add(i, k, v)),
    ]
}

fn mutate(mut doc: Json, changes: &[Change]) -> Json {
    for c in changes {
        let mut ps = Vec::new();
        pointers(&doc, String::new(), &mut ps);
        let pick = |i: usize| ps[i % ps.len()].clone();
        match c {
            Change::Replace(i, v) => {
                let p = pick(*i);
                if p.is_empty() {
                    continue;
                }
                if let Some(slot) = doc.pointer_mut(&p) {
                    *slot = v.clone();
                }
            }
            Change::Remove(i) => {
                let p = pick(*i);
                if let Some((parent, key)) = p.rsplit_once('/') {
                    if let Some(Json::Object(o)) = doc.pointer_mut(parent) {
                        o.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                }
            }
            Change::Add(i, k, v) => {
                if let Some(Json::Object(o)) = doc.pointer_mut(&pick(*i)) {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
    }
    doc
}

fn config_file() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let seeds = [
        fixture("blip/config.json"),
        fixture("clip/config.json"),
        fixture("owlvit/config.json"),
        fixture("clip/preprocessor_config.json"),
        fixture("owlvit/preprocessor_config.json"),
    ];
    (
        0..seeds.len(),
        prop::collection::vec(change(), 0..6),
        prop_oneof![6 => Just(Edit::Keep), 1 => edit()],
    )
        .prop_map(move |(i, changes, e)| {
            let doc = mutate(seeds[i].clone(), &changes);
            (i, apply(serde_json::to_vec_pretty(&doc).unwrap(), &e))
        })
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn read_all(path: &Path) -> Result<(), TestCaseError> {
    if let Ok(c) = blip::Config::from_file(path) {
        c.validate().map_err(fail)?;
    }
    for (text, vision) in [
        clip::Config::from_file(path).map(|c| (c.text_config, c.vision_config)),
        owlvit::Config::from_file(path).map(|c| (c.text_config, c.vision_config)),
    ]
    .into_iter()
    .flatten()
    {
        for (hidden, heads) in [
            (text.hidden_size, text.num_attention_heads),
            (vision.hidden_size, vision.num_attention_heads),
        ] {
            prop_assert!(heads > 0 && hidden % heads == 0, "{hidden} / {heads}");
        }
    }
    let _ = ImageProcessor::from_file(path);
    Ok(())
}

#[test]
fn fuzz_model_config_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    fuzz("model config readers", 3000, config_file(), |(_, bytes)| {
        std::fs::write(&path, &bytes).unwrap();
        read_all(&path)
    });
}
