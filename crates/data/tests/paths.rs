//! Paths read from data files stay inside their root, image stores never fall back to an
//! arbitrary file, and contact sheets refuse sizes they cannot draw.

use sdvp_core::ImageRef;
use sdvp_data::example::path_inside;
use sdvp_data::loaders::{load_gqa, load_jsonl, load_nlvr2};
use sdvp_data::sheet::{contact_sheet, MAX_SHEET_PIXELS};
use sdvp_data::{load_split, Example, ImageInput, ImageStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_pixel(w, h, image::Rgb([9, 99, 199]))
        .save(path)
        .unwrap();
}

/// A dataset folder `root/data` with one image, and an image outside it at `root/secret.png`.
fn layout() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("t").join("images")).unwrap();
    png(&data.join("t").join("images").join("ok.png"), 8, 8);
    png(&data.join("ok.png"), 8, 8);
    png(&dir.path().join("secret.png"), 8, 8);
    (dir, data)
}

fn example_row(image_path: &str) -> String {
    serde_json::json!({
        "id": image_path, "task": "t", "split": "val", "question": "q?", "answer": "yes",
        "question_type": "x",
        "images": [{"name": "IMAGE", "image": {"source": "s", "width": 8, "height": 8,
                    "region": [0, 0, 8, 8]}, "path": image_path}]
    })
    .to_string()
}

#[test]
fn path_inside_refuses_absolute_and_parent_paths() {
    let root = Path::new("/data");
    assert_eq!(
        path_inside(root, "a/b.png"),
        Ok(PathBuf::from("/data/a/b.png"))
    );
    assert_eq!(
        path_inside(root, "./b.png"),
        Ok(PathBuf::from("/data/./b.png"))
    );
    for bad in ["/etc/passwd", "../x.png", "a/../../x.png", "", "a/.."] {
        let err = path_inside(root, bad).unwrap_err();
        assert!(
            err.contains("outside the dataset folder /data"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn split_rows_naming_files_outside_the_dataset_are_skipped_with_their_line() {
    let (dir, data) = layout();
    let secret = dir.path().join("secret.png");
    let rows = [
        example_row("ok.png"),
        example_row(secret.to_str().unwrap()),
        example_row("../secret.png"),
        example_row("t/../../secret.png"),
    ]
    .join("\n");
    std::fs::write(data.join("t").join("val.jsonl"), rows).unwrap();
    let report = load_split(&data, "t", "val").unwrap();
    assert_eq!(report.examples.len(), 1);
    assert_eq!(report.examples[0].images[0].path, data.join("ok.png"));
    let lines: Vec<usize> = report.skipped.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4], "{:?}", report.skipped);
    assert!(report.skipped[0]
        .to_string()
        .contains("val.jsonl:2: image path"));
}

#[test]
fn real_format_loaders_refuse_ids_and_paths_that_leave_their_folder() {
    let (dir, data) = layout();
    // Generic JSONL: `image` paths are relative to the file's folder.
    let jsonl = data.join("rows.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{}\n{}\n{}\n",
            r#"{"image": "ok.png", "question": "q", "answer": "True"}"#,
            r#"{"image": "../secret.png", "question": "q", "answer": "yes"}"#,
            serde_json::json!({"image": dir.path().join("secret.png"), "question": "q", "answer": "yes"}),
        ),
    )
    .unwrap();
    let r = load_jsonl(&jsonl, "t", "val").unwrap();
    assert_eq!(r.examples.len(), 1);
    // One normalisation of answers everywhere: `True` is `yes`.
    assert_eq!(r.examples[0].answer, "yes");
    assert_eq!(r.skipped.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3]);
    assert!(r.skipped.iter().all(|e| e.message.contains("outside")));

    // GQA: `images/IMAGEID.jpg`, the id from the file.
    std::fs::copy(data.join("ok.png"), dir.path().join("x.jpg")).unwrap();
    let q = data.join("q.json");
    std::fs::write(
        &q,
        r#"{"1": {"imageId": "../../x", "question": "q", "answer": "a", "types": {"detailed": "d"}}}"#,
    )
    .unwrap();
    let r = load_gqa(&q, &data.join("images"), "val").unwrap();
    assert!(r.examples.is_empty());
    assert!(r.skipped[0].message.contains("outside"), "{:?}", r.skipped);

    // NLVR2: `directory` joins the images folder.
    let n = data.join("dev.json");
    std::fs::write(
        &n,
        r#"{"identifier": "dev-1-0-0", "sentence": "s", "label": "True", "directory": "../.."}"#,
    )
    .unwrap();
    let r = load_nlvr2(&n, &data.join("images"), "dev").unwrap();
    assert!(r.examples.is_empty());
    assert!(r.skipped[0].message.contains("outside"), "{:?}", r.skipped);
}

#[test]
fn image_stores_resolve_registered_files_and_names_inside_their_folders_only() {
    let (dir, data) = layout();
    let secret = dir.path().join("secret.png");
    let store = ImageStore::new(vec![data.join("t").join("images")]);
    assert_eq!(
        store.resolve("ok"),
        Some(data.join("t").join("images").join("ok.png"))
    );
    // No fallback to a path a program or a trace names.
    assert_eq!(store.resolve(secret.to_str().unwrap()), None);
    assert_eq!(store.resolve("../../../secret"), None);
    assert!(store
        .load(&ImageRef::new(secret.display().to_string(), 8, 8))
        .is_err());
    // A file named on the command line is registered explicitly.
    let mut store = ImageStore::default();
    store.register_file("cli-image", &secret);
    assert_eq!(store.resolve("cli-image"), Some(secret.clone()));
    assert!(store.load(&ImageRef::new("cli-image", 8, 8)).is_ok());
}

fn example(data: &Path) -> Example {
    Example {
        id: "e".into(),
        task: "t".into(),
        split: "val".into(),
        question: "a question long enough to wrap over several lines of a cell".into(),
        answer: "yes".into(),
        question_type: "x".into(),
        images: vec![ImageInput {
            name: "IMAGE".into(),
            image: ImageRef::new("ok", 8, 8),
            path: data.join("ok.png"),
        }],
        gold_step: None,
        gold_python: None,
        meta: BTreeMap::new(),
    }
}

#[test]
fn contact_sheets_refuse_sizes_they_cannot_draw() {
    let (_dir, data) = layout();
    let mut store = ImageStore::default();
    let examples = vec![example(&data); 3];
    store.register_examples(&examples);
    // Thumbnails too small to hold a line of text once looped forever; too big aborted.
    for thumb in [0, 1, 5, 15, 1025, 100_000] {
        let err = contact_sheet(&examples, &store, 4, thumb).unwrap_err();
        assert!(err.to_string().contains("16 to 1024"), "{thumb}: {err}");
    }
    // More columns than examples are not drawn as empty width.
    let sheet = contact_sheet(&examples, &store, usize::MAX, 16).unwrap();
    let one = contact_sheet(&examples[..1], &store, 1, 16).unwrap();
    assert_eq!(sheet.width(), one.width() * 3);
    // A sheet over the pixel limit is refused before it is allocated.
    let many = vec![example(&data); 1024];
    let err = contact_sheet(&many, &store, 64, 1024).unwrap_err();
    assert!(
        err.to_string().contains(&MAX_SHEET_PIXELS.to_string()),
        "{err}"
    );
    // An example with very many images widens its cell until the limit refuses it.
    let mut wide = example(&data);
    wide.images = vec![wide.images[0].clone(); 100_000];
    assert!(contact_sheet(&[wide], &store, 1, 16).is_err());
}

#[test]
fn wrapping_at_width_zero_terminates() {
    assert_eq!(
        sdvp_data::font::wrap("ab c", 0),
        ["a", "b", "c"].map(String::from)
    );
}
