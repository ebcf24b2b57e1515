//! Fuzz target on the stable toolchain: the dataset loaders (`load_split`, generic JSONL,
//! GQA, NLVR2, `load_task`) on files built from structure-aware rows with hostile fields
//! (paths leaving the folder, wrong types, huge or odd values), then byte-edited. None may
//! panic, and no example may name a file outside its dataset folder.
//!
//! A short budget runs as a normal test; `SDVP_FUZZ_SECS=600` runs it for ten minutes.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sdvp_data::loaders::{load_gqa, load_jsonl, load_nlvr2, load_task};
use sdvp_data::{load_split, LoadReport};
use serde_json::{json, Value as Json};
use std::path::{Component, Path};

#[path = "../../core/tests/support/fuzz.rs"]
mod fuzz_support;
use fuzz_support::{apply, edit, fuzz};

fn path() -> impl Strategy<Value = Json> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "a.png", "images/a.png", "./a.png", "../a.png", "/etc/passwd", "images/../../a.png",
            "", ".", "..", "a.png\u{0}", "C:\\a.png", "//host/share/a.png", "a/./../a.png",
        ])
        .prop_map(Json::from),
        1 => "[a-z./]{0,12}".prop_map(Json::from),
        1 => Just(Json::Null),
        1 => any::<i64>().prop_map(Json::from),
    ]
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        4 => prop::sample::select(vec!["yes", "True", "false", " No. ", "2", "cup", "", "\u{feff}"])
            .prop_map(Json::from),
        1 => any::<bool>().prop_map(Json::from),
        1 => any::<f64>().prop_map(|f| json!(f)),
        1 => Just(Json::Null),
        1 => Just(json!({"nested": [1, 2]})),
        1 => any::<String>().prop_map(Json::from),
    ]
}

fn image_entry() -> impl Strategy<Value = Json> {
    (
        path(),
        prop::sample::select(vec!["IMAGE", "LEFT", "RIGHT", ""]),
        0u32..5000,
    )
        .prop_map(|(p, name, w)| {
            json!({"name": name, "image": {"source": "s", "width": w, "height": 7,
                               "region": [0, 0, w, 7]}, "path": p})
        })
}

/// One row in each layout's shape, with fields dropped or replaced.
fn row() -> impl Strategy<Value = Json> {
    (
        prop::collection::vec(image_entry(), 0..3),
        prop::collection::vec(path(), 0..3),
        path(),
        scalar(),
        scalar(),
        prop::sample::select(vec![
            "dev-850-0-0",
            "dev-1-2-3",
            "nonsense",
            "-0-0",
            "a-b-c-d",
        ]),
        prop_oneof![Just(Json::Null), path(), any::<u16>().prop_map(Json::from)],
        0u8..8,
    )
        .prop_map(
            |(images, paths, image, answer, question, ident, directory, drop)| {
                let mut row = json!({
                    "id": "q1", "task": "t", "split": "val", "question": question, "answer": answer,
                    "question_type": "x", "images": images,
                    // generic JSONL and NLVR2 fields
                    "image": image, "identifier": ident, "sentence": "s", "label": answer,
                    "directory": directory,
                    // GQA fields
                    "imageId": image, "types": {"detailed": "d"}, "fullAnswer": "f",
                });
                if drop & 1 == 1 {
                    row["images"] = Json::Array(paths);
                }
                if drop & 2 == 2 {
                    row.as_object_mut().map(|o| o.remove("image"));
                }
                if drop & 4 == 4 {
                    row.as_object_mut().map(|o| o.remove("question"));
                }
                row
            },
        )
}

fn rows() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec((row(), edit()), 0..8).prop_map(|rows| {
        rows.into_iter()
            .map(|(r, e)| apply(serde_json::to_vec(&r).unwrap(), &e))
            .collect()
    })
}

/// No example names a file outside `root`.
fn inside(report: &LoadReport, root: &Path) -> Result<(), TestCaseError> {
    for ex in &report.examples {
        for img in &ex.images {
            let rel = img.path.strip_prefix(root).map_err(|_| {
                TestCaseError::fail(format!(
                    "{} is outside {}",
                    img.path.display(),
                    root.display()
                ))
            })?;
            prop_assert!(
                rel.components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
                "{}",
                img.path.display()
            );
        }
    }
    Ok(())
}

#[test]
fn fuzz_dataset_loaders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    for d in ["t", "images", "images/dev", "data"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let px = image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]));
    for f in [
        "a.png",
        "images/a.png",
        "images/dev/dev-850-0-img0.png",
        "images/dev/dev-850-0-img1.png",
    ] {
        px.save(root.join(f)).unwrap();
    }
    px.save(dir.path().join("a.png")).unwrap();
    fuzz("dataset loaders", 4000, rows(), |lines| {
        let jsonl = lines.join(&b"\n"[..]);
        // sdvp.example/1 splits, generic JSONL and NLVR2 read line by line.
        std::fs::write(root.join("t").join("val.jsonl"), &jsonl).unwrap();
        let r = load_split(&root, "t", "val").unwrap();
        inside(&r, &root)?;
        let r = load_jsonl(&root.join("t").join("val.jsonl"), "t", "val").unwrap();
        inside(&r, &root.join("t"))?;
        std::fs::write(root.join("data").join("dev.json"), &jsonl).unwrap();
        let r = load_nlvr2(
            &root.join("data").join("dev.json"),
            &root.join("images"),
            "dev",
        )
        .unwrap();
        inside(&r, &root.join("images"))?;
        if let Ok(r) = load_task(&root, "nlvr2", "dev") {
            inside(&r, &root)?;
        }
        // GQA: one JSON object of rows keyed by question id.
        let mut gqa = b"{".to_vec();
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                gqa.push(b',');
            }
            gqa.extend(format!("\"{i}\":").into_bytes());
            gqa.extend_from_slice(l);
        }
        gqa.push(b'}');
        let q = root.join("val_questions.json");
        std::fs::write(&q, &gqa).unwrap();
        if let Ok(r) = load_gqa(&q, &root.join("images"), "val") {
            inside(&r, &root.join("images"))?;
        }
        Ok(())
    });
}
