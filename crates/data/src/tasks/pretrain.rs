//! `pretrain`: a generic corpus across all domains for the general models.
//!
//! Question types: `caption` (answer: every object, left to right), `region` (question: a
//! phrase; answer: its box as `[x0, y0, x1, y1]`; `meta.boxes` has every box of the
//! phrase), `vqa_color`/`vqa_shape`/`vqa_material`/`vqa_size` (simple attribute questions
//! with gold programs), `exist` (image–text match: "Is there a P?" with gold programs).
//! `caption` and `region` items have no gold programs.

use super::{
    article, count, gqa::query_attr, python, random_phrase, steps, unique_phrase, Question,
};
use crate::phrase::Phrase;
use crate::scene::{Attr, Scene};
use sdvp_core::rng::SplitMix64;

/// A caption listing the objects from left to right.
pub fn caption(scene: &Scene) -> String {
    let mut objs: Vec<_> = scene.objects.iter().collect();
    objs.sort_by(|a, b| a.center().0.total_cmp(&b.center().0));
    let names: Vec<String> = objs
        .iter()
        .map(|o| format!("{} {}", article(&o.size), o.full_name()))
        .collect();
    match names.len() {
        0 => "an empty picture".into(),
        1 => names[0].clone(),
        n => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

pub fn candidates(scene: &Scene, rng: &mut SplitMix64) -> Vec<Question> {
    let mut out = Vec::new();
    out.push(Question::new(
        "Describe the image.".into(),
        caption(scene),
        "caption",
    ));
    for o in &scene.objects {
        for a in Attr::ALL {
            let text = super::attr_question(a, "{P}");
            if let Some(q) = query_attr(o, scene, a, text, &format!("vqa_{}", a.name()), rng) {
                out.push(q);
            }
        }
        if let Some(p) = unique_phrase(o, &scene.objects, None, rng) {
            let b = o.bbox;
            let mut q = Question::new(
                format!("the {}", p.text()),
                format!("[{}, {}, {}, {}]", b.x0, b.y0, b.x1, b.y1),
                "region",
            );
            q.meta.insert(
                "boxes".into(),
                serde_json::json!([[b.x0, b.y0, b.x1, b.y1]]),
            );
            q.meta.insert("phrase".into(), serde_json::json!(p.text()));
            out.push(q);
        }
    }
    let mut phrases: Vec<Phrase> = scene
        .objects
        .iter()
        .map(|o| Phrase::of(o, &[Attr::Color, Attr::Shape]))
        .collect();
    phrases.push(random_phrase(rng));
    phrases.push(random_phrase(rng));
    for p in phrases {
        let t = p.text();
        let step = steps(&[
            format!("BOX0=LOC(image=IMAGE,object='{t}')"),
            "ANSWER0=COUNT(box=BOX0)".into(),
            "ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} > 0 else 'no'\")".into(),
            "FINAL_RESULT=RESULT(var=ANSWER1)".into(),
        ]);
        let py = python(&[format!("return bool_to_yesno(image_patch.exists(\"{t}\"))")]);
        let yes = count(scene, &p) > 0;
        out.push(
            Question::new(
                format!("Is there {} {t}?", article(&t)),
                if yes { "yes" } else { "no" },
                "exist",
            )
            .programs(step, py),
        );
    }
    out
}
