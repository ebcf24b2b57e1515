//! `attr-world`: open attribute questions in the `sketch` domain, a task no model is tuned
//! on (the "unseen task" of the evaluation). Question types: `attr_color`, `attr_shape`,
//! `attr_material`, `attr_size`, `attr_color_shape` (answer like `red star`).

use super::{gqa::query_attr, python, steps, surface, Question};
use crate::phrase::Phrase;
use crate::scene::{Attr, Scene};
use sdvp_core::rng::SplitMix64;

/// Every candidate question of a scene.
pub fn candidates(scene: &Scene, rng: &mut SplitMix64) -> Vec<Question> {
    let mut out = Vec::new();
    for o in &scene.objects {
        for (attr, templates) in [
            (
                Attr::Color,
                &[
                    "Which colour does the {P} have?",
                    "Name the color of the {P}.",
                    "Tell me the color of the {P}.",
                ][..],
            ),
            (
                Attr::Shape,
                &[
                    "Name the shape of the {P}.",
                    "Which shape is the {P}?",
                    "Tell me what shape the {P} has.",
                ][..],
            ),
            (
                Attr::Material,
                &[
                    "What is the surface of the {P} like?",
                    "Name the material of the {P}.",
                ][..],
            ),
            (
                Attr::Size,
                &[
                    "Is the {P} drawn small or large?",
                    "Name the size of the {P}.",
                ][..],
            ),
        ] {
            let text = rng.pick(templates).copied().unwrap_or("{P}").to_string();
            if let Some(q) = query_attr(o, scene, attr, text, &format!("attr_{}", attr.name()), rng)
            {
                out.push(q);
            }
        }
        // Colour and shape of an object named by size and material alone.
        for attrs in [
            &[Attr::Size][..],
            &[Attr::Material],
            &[Attr::Size, Attr::Material],
        ] {
            let p = Phrase::of(o, attrs);
            if scene.objects.iter().filter(|x| p.matches(x)).count() != 1 {
                continue;
            }
            let t = p.text();
            let (qc, qs) = (
                format!("What color is the {t}?"),
                format!("What shape is the {t}?"),
            );
            let step = steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{t}')"),
                "IMAGE0=CROP(image=IMAGE,box=BOX0)".into(),
                format!("ANSWER0=VQA(image=IMAGE0,question='{qc}')"),
                format!("ANSWER1=VQA(image=IMAGE0,question='{qs}')"),
                "ANSWER2=EVAL(expr=\"'{ANSWER0} {ANSWER1}'\")".into(),
                "FINAL_RESULT=RESULT(var=ANSWER2)".into(),
            ]);
            let py = python(&[
                format!("patches = image_patch.find(\"{t}\")"),
                "patch = patches[0] if len(patches) > 0 else image_patch".into(),
                format!("color = patch.simple_query(\"{qc}\")"),
                format!("shape = patch.simple_query(\"{qs}\")"),
                "return f\"{color} {shape}\"".into(),
            ]);
            let text = format!("What color and shape is the {t}?");
            out.push(
                Question::new(
                    surface(&text, rng),
                    format!("{} {}", o.color, o.shape),
                    "attr_color_shape",
                )
                .programs(step, py),
            );
            break;
        }
    }
    out
}
