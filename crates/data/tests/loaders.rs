//! Real-format loaders on small hand-written fixtures.

use sdvp_data::loaders::{load_gqa, load_jsonl, load_nlvr2, nlvr2_image_names};
use sdvp_data::ImageStore;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn gqa_loads_good_rows_and_reports_bad_ones_with_lines() {
    let d = fixtures().join("gqa");
    let r = load_gqa(&d.join("questions.json"), &d.join("images"), "val").expect("load");
    assert_eq!(r.examples.len(), 2);
    let q = &r.examples[0];
    assert_eq!(q.id, "05451384");
    assert_eq!(q.answer, "cup");
    assert_eq!(q.question_type, "relS");
    assert_eq!(q.images[0].image.source, "2354786");
    assert_eq!(
        (q.images[0].image.width, q.images[0].image.height),
        (16, 12)
    );
    assert_eq!(q.meta["fullAnswer"], "The cup is on the table.");
    assert_eq!(r.examples[1].answer, "yes");
    assert_eq!(r.skipped.len(), 2);
    let lines: Vec<usize> = r.skipped.iter().map(|e| e.line).collect();
    assert!(
        lines.contains(&33) && lines.contains(&38),
        "{:?}",
        r.skipped
    );
    assert!(r.skipped.iter().any(|e| e.message.contains("imageId")));
    // Pixels load through the store, JPEG included, with crops applied.
    let mut store = ImageStore::default();
    store.register_examples(&r.examples);
    let img = store
        .load(
            &q.images[0]
                .image
                .crop(sdvp_core::BBox::new(2.0, 2.0, 10.0, 6.0)),
        )
        .expect("pixels");
    assert_eq!(img.dimensions(), (8, 4));
}

#[test]
fn nlvr2_maps_labels_and_image_names() {
    assert_eq!(
        nlvr2_image_names("dev-850-0-0"),
        Some(("dev-850-0-img0.png".into(), "dev-850-0-img1.png".into()))
    );
    assert_eq!(nlvr2_image_names("nonsense"), None);
    let d = fixtures().join("nlvr2");
    let r = load_nlvr2(&d.join("dev.json"), &d.join("images"), "dev").expect("load");
    assert_eq!(r.examples.len(), 2);
    assert_eq!(r.examples[0].answer, "yes");
    assert_eq!(r.examples[1].answer, "no");
    assert_eq!(r.examples[0].images[0].name, "LEFT");
    assert_eq!(r.examples[0].images[1].image.source, "dev-850-0-img1");
    let lines: Vec<usize> = r.skipped.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5], "{:?}", r.skipped);
    assert!(r.skipped[0].message.contains("Maybe"));
}

#[test]
fn generic_jsonl_reads_one_or_two_images() {
    let p = fixtures().join("jsonl/data.jsonl");
    let r = load_jsonl(&p, "mine", "test").expect("load");
    assert_eq!(r.examples.len(), 2);
    assert_eq!(r.examples[0].answer, "yes");
    assert!(r.examples[0].gold_step.is_some());
    assert_eq!(r.examples[1].images.len(), 2);
    assert_eq!(r.examples[1].answer, "yes");
    let lines: Vec<usize> = r.skipped.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4]);
    assert!(r.skipped[0].message.contains("answer"));
}
