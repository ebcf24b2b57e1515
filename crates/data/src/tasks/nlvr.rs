//! `nlvr-world`: a statement about a pair of images (LEFT, RIGHT), true or false.
//!
//! Gold answers are `yes` (the statement is true, NLVR2's `True`) and `no` (`False`);
//! step programs end in EVAL giving `'yes'`/`'no'`, Python programs in `bool_to_yesno`.
//! Question types: `nlvr_count`, `nlvr_both`, `nlvr_either`, `nlvr_xor`, `nlvr_compare`,
//! `nlvr_total`, `nlvr_attr`.

use super::{article, count, random_phrase, steps, surface, Question};
use crate::phrase::Phrase;
use crate::scene::{Attr, Scene};
use sdvp_core::rng::SplitMix64;

const NUMBER_WORDS: [&str; 5] = ["zero", "one", "two", "three", "four"];

fn nlvr_python(body: &[String]) -> String {
    let mut s = String::from(
        "def execute_command(image_dict) -> str:\n    left = ImagePatch(image_dict['left'])\n    right = ImagePatch(image_dict['right'])\n",
    );
    for l in body {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn yn(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Both counts of `p`, as the first lines of a step program.
fn count_lines(p: &str) -> Vec<String> {
    vec![
        format!("BOX0=LOC(image=LEFT,object='{p}')"),
        "ANSWER0=COUNT(box=BOX0)".into(),
        format!("BOX1=LOC(image=RIGHT,object='{p}')"),
        "ANSWER1=COUNT(box=BOX1)".into(),
    ]
}

fn with_eval(p: &str, expr: &str) -> String {
    let mut l = count_lines(p);
    l.push(format!("ANSWER2=EVAL(expr=\"'yes' if {expr} else 'no'\")"));
    l.push("FINAL_RESULT=RESULT(var=ANSWER2)".into());
    steps(&l)
}

fn py_counts(p: &str, cond: &str) -> String {
    nlvr_python(&[
        format!("n_left = len(left.find(\"{p}\"))"),
        format!("n_right = len(right.find(\"{p}\"))"),
        format!("return bool_to_yesno({cond})"),
    ])
}

/// Every candidate statement about the pair.
pub fn candidates(left: &Scene, right: &Scene, rng: &mut SplitMix64) -> Vec<Question> {
    let mut phrases: Vec<Phrase> = Vec::new();
    for o in left.objects.iter().chain(&right.objects) {
        phrases.push(Phrase::of(o, &[Attr::Shape]));
        phrases.push(Phrase::of(o, &[Attr::Color, Attr::Shape]));
    }
    for _ in 0..3 {
        phrases.push(random_phrase(rng));
    }
    phrases.dedup();
    let mut out = Vec::new();
    for _ in 0..6 {
        let Some(p) = rng.pick(&phrases).cloned() else {
            break;
        };
        let (t, pl) = (p.text(), p.plural());
        let (nl, nr) = (count(left, &p), count(right, &p));
        // Exact count in one image.
        let on_left = rng.chance(0.5);
        let (n_img, side_word, var) = if on_left {
            (nl, "left", "{ANSWER0}")
        } else {
            (nr, "right", "{ANSWER1}")
        };
        let claim = if rng.chance(0.5) {
            n_img
        } else {
            rng.range_usize(1, 3)
        };
        if claim <= 4 && claim > 0 {
            let noun = if claim == 1 { t.clone() } else { pl.clone() };
            let text = format!(
                "The {side_word} image contains exactly {} {noun}.",
                NUMBER_WORDS[claim]
            );
            let py_var = if on_left { "n_left" } else { "n_right" };
            out.push(
                Question::new(surface(&text, rng), yn(n_img == claim), "nlvr_count").programs(
                    with_eval(&t, &format!("{var} == {claim}")),
                    py_counts(&t, &format!("{py_var} == {claim}")),
                ),
            );
        }
        let a = article(&t);
        let text = if rng.chance(0.5) {
            format!("Both images contain {a} {t}.")
        } else {
            format!("Each image contains at least one {t}.")
        };
        out.push(
            Question::new(surface(&text, rng), yn(nl > 0 && nr > 0), "nlvr_both").programs(
                with_eval(&t, "{ANSWER0} > 0 and {ANSWER1} > 0"),
                py_counts(&t, "n_left > 0 and n_right > 0"),
            ),
        );
        let text = format!("At least one image contains {a} {t}.");
        out.push(
            Question::new(surface(&text, rng), yn(nl > 0 || nr > 0), "nlvr_either").programs(
                with_eval(&t, "{ANSWER0} > 0 or {ANSWER1} > 0"),
                py_counts(&t, "n_left > 0 or n_right > 0"),
            ),
        );
        let text = format!("Exactly one of the two images contains {a} {t}.");
        out.push(
            Question::new(surface(&text, rng), yn((nl > 0) != (nr > 0)), "nlvr_xor").programs(
                with_eval(&t, "({ANSWER0} > 0) != ({ANSWER1} > 0)"),
                py_counts(&t, "(n_left > 0) != (n_right > 0)"),
            ),
        );
        let (more, says_more) = if rng.chance(0.5) {
            ("more", true)
        } else {
            ("fewer", false)
        };
        let text = format!("The left image contains {more} {pl} than the right image.");
        let (cond, truth) = if says_more {
            ("{ANSWER0} > {ANSWER1}", nl > nr)
        } else {
            ("{ANSWER0} < {ANSWER1}", nl < nr)
        };
        let pycond = if says_more {
            "n_left > n_right"
        } else {
            "n_left < n_right"
        };
        out.push(
            Question::new(surface(&text, rng), yn(truth), "nlvr_compare")
                .programs(with_eval(&t, cond), py_counts(&t, pycond)),
        );
        let total = nl + nr;
        let claim = if rng.chance(0.5) {
            total
        } else {
            rng.range_usize(1, 4)
        };
        if (1..=4).contains(&claim) {
            let noun = if claim == 1 { t.clone() } else { pl.clone() };
            let verb = if claim == 1 { "is" } else { "are" };
            let text = format!(
                "There {verb} exactly {} {noun} in total in the two images.",
                NUMBER_WORDS[claim]
            );
            out.push(
                Question::new(surface(&text, rng), yn(total == claim), "nlvr_total").programs(
                    with_eval(&t, &format!("{{ANSWER0}} + {{ANSWER1}} == {claim}")),
                    py_counts(&t, &format!("n_left + n_right == {claim}")),
                ),
            );
        }
    }
    // An attribute of the one object of a shape in one image.
    let (scene, var, side_word) = if rng.chance(0.5) {
        (left, "LEFT", "left")
    } else {
        (right, "RIGHT", "right")
    };
    if let Some(o) = rng.pick(&scene.objects) {
        let p = Phrase::of(o, &[Attr::Shape]);
        if count(scene, &p) == 1 {
            let t = p.text();
            let value = if rng.chance(0.5) {
                o.color.clone()
            } else {
                rng.pick(&crate::scene::COLORS)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            };
            let sub = format!("What color is the {t}?");
            let step = steps(&[
                format!("BOX0=LOC(image={var},object='{t}')"),
                format!("IMAGE0=CROP(image={var},box=BOX0)"),
                format!("ANSWER0=VQA(image=IMAGE0,question='{sub}')"),
                format!("ANSWER1=EVAL(expr=\"'yes' if '{{ANSWER0}}' == '{value}' else 'no'\")"),
                "FINAL_RESULT=RESULT(var=ANSWER1)".into(),
            ]);
            let py = nlvr_python(&[
                format!("patches = {side_word}.find(\"{t}\")"),
                "if len(patches) == 0:".into(),
                "    return \"no\"".into(),
                format!("return bool_to_yesno(patches[0].simple_query(\"{sub}\") == \"{value}\")"),
            ]);
            let text = format!("The {t} in the {side_word} image is {value}.");
            out.push(
                Question::new(surface(&text, rng), yn(value == o.color), "nlvr_attr")
                    .programs(step, py),
            );
        }
    }
    out
}
