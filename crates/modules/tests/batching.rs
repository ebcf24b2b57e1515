//! Every neural backend answers a batch exactly as it answers each request alone, on the
//! tiny random checkpoints of the models crate's parity fixtures.

use sdvp_core::{BBox, Backend, ImageRef, ModuleKind, Request, Response};
use sdvp_data::ImageStore;
use sdvp_modules::common::Checkpoint;
use sdvp_modules::images::ImageCache;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures")
        .join(name)
}

/// Three 80×60 test images with different content, and a cache over them.
fn images(dir: &Path) -> Arc<ImageCache> {
    for k in 0..3u32 {
        let img = image::RgbImage::from_fn(80, 60, |x, y| {
            image::Rgb([
                ((x * (k + 3) + y * 7) % 256) as u8,
                ((y * (k + 5) + 40 * k) % 256) as u8,
                (((x + y) * 11 + 90 * k) % 256) as u8,
            ])
        });
        img.save(dir.join(format!("img{k}.png"))).unwrap();
    }
    Arc::new(ImageCache::new(
        ImageStore::new(vec![dir.to_path_buf()]),
        1 << 24,
    ))
}

fn image(k: u32, crop: Option<BBox>) -> ImageRef {
    let r = ImageRef::new(format!("img{k}"), 80, 60);
    match crop {
        Some(b) => r.crop(b),
        None => r,
    }
}

/// Batched vs one-at-a-time: the same answers, scores within 1e-5, boxes within 1e-3 px.
fn same_alone_and_batched(b: &dyn Backend, kind: ModuleKind, requests: &[Request]) -> usize {
    let batched = b.run_batch(kind, requests);
    assert_eq!(batched.len(), requests.len());
    let mut compared = 0;
    for (r, got) in requests.iter().zip(&batched) {
        let alone = b.run_batch(kind, std::slice::from_ref(r));
        let (Ok(x), Ok(y)) = (&alone[0], got) else {
            panic!("{r:?}: alone {:?} batched {:?}", alone[0], got);
        };
        let close = |a: &[f32], b: &[f32], tol: f32| {
            a.len() == b.len() && a.iter().zip(b).all(|(p, q)| (p - q).abs() <= tol)
        };
        match (x, y) {
            (
                Response::Answer {
                    text: a, score: s, ..
                },
                Response::Answer {
                    text: b, score: t, ..
                },
            ) => {
                assert_eq!(a, b);
                assert!((s - t).abs() <= 1e-5, "{s} vs {t}");
            }
            (Response::Verdict { yes: a, score: s }, Response::Verdict { yes: b, score: t }) => {
                assert_eq!(a, b);
                assert!((s - t).abs() <= 1e-5, "{s} vs {t}");
            }
            (
                Response::Choice {
                    index: a,
                    scores: s,
                },
                Response::Choice {
                    index: b,
                    scores: t,
                },
            ) => {
                assert_eq!(a, b);
                assert!(close(s, t, 1e-5), "{s:?} vs {t:?}");
            }
            (
                Response::Detections {
                    boxes: a,
                    scores: s,
                },
                Response::Detections {
                    boxes: b,
                    scores: t,
                },
            ) => {
                assert!(close(s, t, 1e-5), "{s:?} vs {t:?}");
                let flat = |v: &[BBox]| {
                    v.iter()
                        .flat_map(|x| [x.x0, x.y0, x.x1, x.y1])
                        .collect::<Vec<_>>()
                };
                assert!(close(&flat(a), &flat(b), 1e-3), "{a:?} vs {b:?}");
            }
            other => panic!("different responses {other:?}"),
        }
        compared += 1;
    }
    compared
}

fn crops() -> Vec<ImageRef> {
    vec![
        image(0, None),
        image(1, Some(BBox::new(10.0, 5.0, 60.0, 50.0))),
        image(2, Some(BBox::new(0.0, 0.0, 33.3, 59.0))),
        image(0, Some(BBox::new(40.5, 20.2, 79.0, 58.9))),
        image(1, None),
    ]
}

#[test]
fn blip_vqa_batch_equals_one_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = images(tmp.path());
    let questions = [
        "what color is the cube",
        "how many",
        "is there a red sphere left of the big cylinder",
        "which side",
        "what",
    ];
    let requests: Vec<Request> = crops()
        .into_iter()
        .zip(questions)
        .map(|(image, q)| Request::Vqa {
            image,
            question: q.into(),
        })
        .collect();
    for options in [
        serde_json::json!({}),
        serde_json::json!({"decode": "beam", "num_beams": 3}),
        serde_json::json!({"answers": ["red", "blue", "two", "yes", "no"]}),
    ] {
        let b = sdvp_modules::blip_vqa::BlipVqa::load(
            Checkpoint::open("blip-vqa", &fixture("blip")).unwrap(),
            serde_json::from_value(options.clone()).unwrap(),
            cache.clone(),
        )
        .unwrap();
        assert_eq!(
            same_alone_and_batched(&b, ModuleKind::Vqa, &requests),
            5,
            "{options}"
        );
        for r in b.run_batch(ModuleKind::Vqa, &requests) {
            let Ok(Response::Answer { score, .. }) = r else {
                panic!("{r:?}")
            };
            assert!(
                (0.0..=1.0).contains(&score) && score > 0.0,
                "score {score} is a probability"
            );
        }
    }
}

/// A VQA model answering verify and classify calls: batched = alone, and its P(yes) and
/// option scores are its closed-vocabulary distribution over the same question,
/// renormalised to the answers in question.
#[test]
fn blip_vqa_answers_verify_and_classify_as_its_vocabulary_would() {
    use sdvp_modules::blip_vqa::{classify_question, verify_question, BlipVqa};
    let tmp = tempfile::tempdir().unwrap();
    let cache = images(tmp.path());
    let vocab = ["red", "blue", "metal", "matte", "yes", "no"];
    let load = |options: serde_json::Value| {
        BlipVqa::load(
            Checkpoint::open("blip-vqa", &fixture("blip")).unwrap(),
            serde_json::from_value(options).unwrap(),
            cache.clone(),
        )
        .unwrap()
    };
    let plain = load(serde_json::json!({}));
    let closed = load(serde_json::json!({ "answers": vocab }));
    let p = |r: &Response, answer: &str| match r {
        Response::Answer { alternatives, .. } => alternatives
            .iter()
            .find(|a| a.text == answer)
            .map(|a| a.p)
            .unwrap(),
        other => panic!("{other:?}"),
    };
    let texts = [
        "red cube",
        "metal small sphere",
        "blue object",
        "matte cylinder",
        "red thing",
    ];
    let verify: Vec<Request> = crops()
        .into_iter()
        .zip(texts)
        .map(|(image, t)| Request::Verify {
            image,
            text: t.into(),
        })
        .collect();
    let choices = [
        vec!["red", "blue"],
        vec!["metal", "matte"],
        vec!["blue", "red"],
    ];
    let classify: Vec<Request> = crops()
        .into_iter()
        .zip(choices.iter().cycle())
        .map(|(image, o)| Request::Classify {
            image,
            options: o.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    assert_eq!(
        same_alone_and_batched(&plain, ModuleKind::Verify, &verify),
        5
    );
    assert_eq!(
        same_alone_and_batched(&plain, ModuleKind::Classify, &classify),
        5
    );
    let mut compared = 0;
    for (r, got) in verify
        .iter()
        .zip(plain.run_batch(ModuleKind::Verify, &verify))
    {
        let Request::Verify { image, text } = r else {
            unreachable!()
        };
        let q = Request::Vqa {
            image: image.clone(),
            question: verify_question(text).unwrap(),
        };
        let a = closed.run_batch(ModuleKind::Vqa, &[q]).remove(0).unwrap();
        let want = p(&a, "yes") / (p(&a, "yes") + p(&a, "no"));
        let Ok(Response::Verdict { yes, score }) = got else {
            panic!("{got:?}")
        };
        let p_yes = if yes { score } else { 1.0 - score };
        assert!((p_yes - want).abs() < 1e-5, "{text}: {p_yes} vs {want}");
        compared += 1;
    }
    for (r, got) in classify
        .iter()
        .zip(plain.run_batch(ModuleKind::Classify, &classify))
    {
        let Request::Classify { image, options } = r else {
            unreachable!()
        };
        let q = Request::Vqa {
            image: image.clone(),
            question: classify_question(options).unwrap(),
        };
        let a = closed.run_batch(ModuleKind::Vqa, &[q]).remove(0).unwrap();
        let total: f32 = options.iter().map(|o| p(&a, o)).sum();
        let Ok(Response::Choice { scores, .. }) = got else {
            panic!("{got:?}")
        };
        for (o, s) in options.iter().zip(&scores) {
            assert!(
                (s - p(&a, o) / total).abs() < 1e-5,
                "{options:?}: {scores:?}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 5 + 10);
}

#[test]
fn owlvit_batch_equals_one_at_a_time_and_boxes_are_in_source_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = images(tmp.path());
    let objects = ["cube", "red sphere", "cube", "cylinder", "shape"];
    let mut requests: Vec<Request> = crops()
        .into_iter()
        .zip(objects)
        .map(|(image, o)| Request::Detect {
            image,
            object: o.into(),
        })
        .collect();
    // Two objects asked of the same crop share an image pass.
    requests.push(Request::Detect {
        image: crops()[1].clone(),
        object: "sphere".into(),
    });
    let b = sdvp_modules::owlvit_detect::OwlVitDetect::load(
        Checkpoint::open("owlvit", &fixture("owlvit")).unwrap(),
        serde_json::from_value(serde_json::json!({"threshold": 0.0, "max_detections": 5})).unwrap(),
        cache,
    )
    .unwrap();
    assert_eq!(same_alone_and_batched(&b, ModuleKind::Detect, &requests), 6);
    let mut boxes = 0;
    for (r, a) in requests
        .iter()
        .zip(b.run_batch(ModuleKind::Detect, &requests))
    {
        let Ok(Response::Detections { boxes: bs, scores }) = a else {
            panic!("{a:?}")
        };
        assert!(!bs.is_empty(), "threshold 0 keeps boxes");
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first");
        let region = r.image().unwrap().region();
        for x in &bs {
            // Inside the crop (rounded outwards to whole pixels), in source coordinates.
            assert!(
                x.x0 >= region.x0.floor() - 1e-3 && x.x1 <= region.x1.ceil() + 1e-3,
                "{x:?} in {region:?}"
            );
            assert!(
                x.y0 >= region.y0.floor() - 1e-3 && x.y1 <= region.y1.ceil() + 1e-3,
                "{x:?} in {region:?}"
            );
            boxes += 1;
        }
    }
    assert!(boxes >= 6);
}

#[test]
fn clip_batch_equals_one_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = images(tmp.path());
    for options in [
        serde_json::json!({}),
        serde_json::json!({"verify": "threshold", "threshold": 0.5}),
    ] {
        let b = sdvp_modules::clip_match::ClipMatch::load(
            Checkpoint::open("clip", &fixture("clip")).unwrap(),
            serde_json::from_value(options).unwrap(),
            cache.clone(),
        )
        .unwrap();
        let texts = [
            "red cube",
            "blue sphere",
            "metal",
            "a big yellow cylinder",
            "small",
        ];
        let verify: Vec<Request> = crops()
            .into_iter()
            .zip(texts)
            .map(|(image, t)| Request::Verify {
                image,
                text: t.into(),
            })
            .collect();
        assert_eq!(same_alone_and_batched(&b, ModuleKind::Verify, &verify), 5);
        for r in b.run_batch(ModuleKind::Verify, &verify) {
            let Ok(Response::Verdict { score, .. }) = r else {
                panic!("{r:?}")
            };
            assert!(
                (0.5..=1.0).contains(&score),
                "confidence in the verdict given: {score}"
            );
        }
        let classify: Vec<Request> = crops()
            .into_iter()
            .enumerate()
            .map(|(i, image)| Request::Classify {
                image,
                options: texts[..(i % 4) + 2].iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        assert_eq!(
            same_alone_and_batched(&b, ModuleKind::Classify, &classify),
            5
        );
    }
}

#[test]
fn a_missing_image_fails_its_request_only() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = images(tmp.path());
    let b = sdvp_modules::blip_vqa::BlipVqa::load(
        Checkpoint::open("blip-vqa", &fixture("blip")).unwrap(),
        Default::default(),
        cache,
    )
    .unwrap();
    let requests = vec![
        Request::Vqa {
            image: image(0, None),
            question: "what".into(),
        },
        Request::Vqa {
            image: ImageRef::new("nowhere", 10, 10),
            question: "what".into(),
        },
        Request::Vqa {
            image: image(2, None),
            question: "what".into(),
        },
    ];
    let out = b.run_batch(ModuleKind::Vqa, &requests);
    assert!(out[0].is_ok() && out[2].is_ok());
    let err = out[1].as_ref().unwrap_err();
    assert!(err.message.contains("nowhere"), "{}", err.message);
}

#[test]
fn dpt_batch_equals_one_at_a_time_and_is_a_region_median() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = images(tmp.path());
    let b = sdvp_modules::dpt_depth::DptDepth::load(
        Checkpoint::open("dpt", &fixture("dpt")).unwrap(),
        Default::default(),
        cache.clone(),
    )
    .unwrap();
    let requests: Vec<Request> = crops()
        .into_iter()
        .map(|image| Request::Depth { image })
        .collect();
    let batched = b.run_batch(ModuleKind::Depth, &requests);
    let mut compared = 0;
    for (r, got) in requests.iter().zip(&batched) {
        let alone = b.run_batch(ModuleKind::Depth, std::slice::from_ref(r));
        let (Ok(Response::Depth { value: x }), Ok(Response::Depth { value: y })) = (&alone[0], got)
        else {
            panic!("{:?} {:?}", alone[0], got);
        };
        assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
        compared += 1;
    }
    assert_eq!(compared, 5);
    // The whole image's answer is the median of its whole map.
    let img = cache.source("img0").unwrap();
    let map = b.maps(&[img.as_ref()]).unwrap().remove(0);
    let mut all: Vec<f32> = map.values.iter().flatten().copied().collect();
    all.sort_by(f32::total_cmp);
    let Ok(Response::Depth { value }) = &batched[0] else {
        panic!()
    };
    assert_eq!(*value, all[(all.len() - 1) / 2]);
}

/// `min_crop_px` widens a small crop about its centre (shifted inside the image), so the
/// model answers exactly as it answers the widened crop asked plainly; bad values are
/// refused by name.
#[test]
fn blip_vqa_min_crop_px_answers_on_the_widened_crop() {
    use sdvp_modules::blip_vqa::BlipVqa;
    let tmp = tempfile::tempdir().unwrap();
    let cache = images(tmp.path());
    let load = |options: serde_json::Value| {
        BlipVqa::load(
            Checkpoint::open("blip-vqa", &fixture("blip")).unwrap(),
            serde_json::from_value(options).unwrap(),
            cache.clone(),
        )
    };
    let widened = load(serde_json::json!({"min_crop_px": 48})).unwrap();
    let plain = load(serde_json::json!({})).unwrap();
    let ask = |image: ImageRef| Request::Vqa {
        image,
        question: "what color is the object?".into(),
    };
    // (10, 10)-(20, 20) widened to 48 in an 80×60 image: (0, 0)-(48, 48).
    let cases = [
        (
            BBox::new(10.0, 10.0, 20.0, 20.0),
            BBox::new(0.0, 0.0, 48.0, 48.0),
        ),
        (
            BBox::new(60.0, 40.0, 70.0, 58.0),
            BBox::new(32.0, 12.0, 80.0, 60.0),
        ),
    ];
    let mut compared = 0;
    for k in 0..3 {
        for (small, wide) in cases {
            let got = widened.run_batch(ModuleKind::Vqa, &[ask(image(k, Some(small)))]);
            let want = plain.run_batch(ModuleKind::Vqa, &[ask(image(k, Some(wide)))]);
            let tight = plain.run_batch(ModuleKind::Vqa, &[ask(image(k, Some(small)))]);
            match (&got[0], &want[0], &tight[0]) {
                (
                    Ok(Response::Answer {
                        text: a, score: s, ..
                    }),
                    Ok(Response::Answer {
                        text: b, score: t, ..
                    }),
                    Ok(Response::Answer { score: u, .. }),
                ) => {
                    // The random fixture's scores are tiny: compare them relatively.
                    assert_eq!(a, b);
                    assert!((s - t).abs() <= 1e-4 * s.max(*t), "{s} vs {t}");
                    assert!(
                        (s - u).abs() > 1e-2 * s.max(*u),
                        "the option changed nothing: {s} vs {u}"
                    );
                    compared += 1;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(compared, 6);
    let err = load(serde_json::json!({"min_crop_px": 0})).err().unwrap();
    assert!(format!("{err:#}").contains("min_crop_px"), "{err:#}");
}
