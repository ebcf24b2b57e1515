//! ImagePatch semantics: coordinates, requests sent, trace steps.
mod common;
use common::{prog, run};
use sdvp_core::{Request, Response, Value};

#[test]
fn full_image_patch_has_viper_coordinates() {
    let t = run(&prog("p = ImagePatch(image)\nreturn f'{p.left},{p.lower},{p.right},{p.upper},{p.width},{p.height},{p.horizontal_center},{p.vertical_center}'"));
    assert_eq!(t.answer.as_deref(), Some("0,0,320,240,320,240,160.0,120.0"));
}

#[test]
fn crop_is_relative_and_converts_to_top_left_boxes() {
    // lower-left origin: the bottom 40 rows, columns 10..50.
    let t = run(&prog("p = ImagePatch(image)\nc = p.crop(10, 0, 50, 40)\nd = c.crop(5, 5, 10, 10)\nreturn f'{d.left},{d.lower},{d.right},{d.upper}|' + c.simple_query('what?')"));
    let ans = t.answer.clone().expect("answer");
    assert!(ans.starts_with("15,5,20,10|"), "{ans}");
    let step = t
        .steps
        .iter()
        .find(|s| s.module == "simple_query")
        .expect("vqa step");
    let Request::Vqa { image, .. } = &step.calls[0].request else {
        panic!("not vqa")
    };
    let r = image.region();
    assert_eq!((r.x0, r.y0, r.x1, r.y1), (10.0, 200.0, 50.0, 240.0));
}

#[test]
fn find_returns_crops_of_detections_with_provenance() {
    let t = run(&prog("p = ImagePatch(image)\ncups = p.find('cup')\nreturn str(len(cups)) + ':' + str([c.width for c in cups])"));
    let step = &t.steps[0];
    assert_eq!(step.module, "find");
    assert_eq!(step.line, 3);
    let Some(Response::Detections { boxes, .. }) = &step.calls[0].response else {
        panic!("no detections")
    };
    let Some(Value::Boxes(out)) = &step.output else {
        panic!("no boxes output")
    };
    assert_eq!(&out.boxes, boxes);
    let widths: Vec<String> = boxes
        .iter()
        .map(|b| format!("{}", b.width() as i64))
        .collect();
    assert_eq!(
        t.answer.clone().expect("answer"),
        format!("{}:[{}]", boxes.len(), widths.join(", "))
    );
}

#[test]
fn every_model_method_is_one_step_with_its_request() {
    let src = prog(
        "p = ImagePatch(image)\n\
         a = p.exists('dog')\n\
         b = p.verify_property('dog', 'red')\n\
         c = p.best_text_match(['x', 'y'])\n\
         d = p.compute_depth()\n\
         e = p.llm_query('hi?')\n\
         f = llm_query('again?')\n\
         g = best_image_match([p, p.crop(0, 0, 10, 10)], ['thing'])\n\
         return bool_to_yesno(a) + str(b) + c + str(d) + e + f + str(g.width)",
    );
    let t = run(&src);
    assert!(t.error.is_none(), "{:?}", t.error);
    let modules: Vec<&str> = t.steps.iter().map(|s| s.module.as_str()).collect();
    assert_eq!(
        modules,
        [
            "exists",
            "verify_property",
            "best_text_match",
            "compute_depth",
            "llm_query",
            "llm_query",
            "best_image_match"
        ]
    );
    let Request::Verify { text, .. } = &t.steps[1].calls[0].request else {
        panic!()
    };
    assert_eq!(text, "red dog");
    assert_eq!(t.steps[6].calls.len(), 2);
    assert_eq!(
        t.steps[6].calls[0].batch_size, 2,
        "best_image_match batches its patches"
    );
}

#[test]
fn helpers_follow_vipergpt() {
    let t = run(&prog("p = ImagePatch(image)\na = p.crop(0, 0, 10, 10)\nb = p.crop(20, 0, 30, 10)\nreturn f'{distance(a, b)}|{distance(3, 5)}|{coerce_to_numeric(\"about 3-4 cats\")}|{coerce_to_numeric(\"none\")}|{a.overlaps_with(5, 5, 50, 50)}|{b.overlaps_with(0, 0, 5, 5)}'"));
    assert_eq!(t.answer.as_deref(), Some("10.0|2|3|none|True|False"));
}

#[test]
fn image_dict_for_pairs() {
    let backend = common::HashBackend::default();
    let mut job = common::job("pair", "def execute_command(image_dict):\n    l = ImagePatch(image_dict['left'])\n    r = ImagePatch(image_dict['right'])\n    return l.width + r.width\n");
    job.inputs = [
        ("LEFT".to_string(), Value::Image(common::image("a"))),
        ("RIGHT".to_string(), Value::Image(common::image("b"))),
    ]
    .into();
    let (t, _) =
        sdvp_python::run_python_programs(&backend, Default::default(), &[job], &Default::default());
    assert_eq!(t[0].answer.as_deref(), Some("640"));
}

#[test]
fn backend_failure_is_module_failed() {
    let t = run(&prog("p = ImagePatch(image)\ntry:\n    p.find('fail')\nexcept Exception:\n    return 'swallowed'\nreturn 'no'"));
    let e = t.error.expect("error");
    assert_eq!(e.kind, "module_failed");
    assert_eq!(
        t.steps[0].error.as_deref(),
        Some("detect backend: detector exploded")
    );
}
