//! `gqa-world`: GQA-style compositional questions on one image.
//!
//! Question types (`question_type`): `query_color`, `query_shape`, `query_material`,
//! `query_size`, `verify_attr`, `exist`, `count`, `relate_exist`, `relate_query`,
//! `compare_same`, `logic_and`, `logic_or`, `choose_attr`, `choose_rel`, `verify_depth`.

use super::{
    article, attr_question, count, python, random_phrase, steps, surface, unique_phrase, Question,
};
use crate::phrase::Phrase;
use crate::scene::{Attr, Object, Scene, DEPTH_MARGIN, REL_MARGIN};
use sdvp_core::rng::SplitMix64;

fn pick_template(rng: &mut SplitMix64, templates: &[&str], fill: &[(&str, &str)]) -> String {
    let mut t = rng.pick(templates).copied().unwrap_or("").to_string();
    for (k, v) in fill {
        t = t.replace(k, v);
    }
    t
}

/// `Is the star red?` / `Is the large object a star?`
pub fn verify_question(phrase: &str, attr: Attr, value: &str) -> String {
    match attr {
        Attr::Shape => format!("Is the {phrase} {} {value}?", article(value)),
        _ => format!("Is the {phrase} {value}?"),
    }
}

/// A query of one attribute of a uniquely named object (shared with `attr-world`). Both
/// styles ask the VQA module, as ViperGPT's own GQA programs ask `simple_query`;
/// `best_text_match` is for choosing between named options (`choose_attr`).
pub fn query_attr(
    o: &Object,
    scene: &Scene,
    attr: Attr,
    text: String,
    qtype: &str,
    rng: &mut SplitMix64,
) -> Option<Question> {
    let p = unique_phrase(o, &scene.objects, Some(attr), rng)?.text();
    let sub = attr_question(attr, &p);
    let step = steps(&[
        format!("BOX0=LOC(image=IMAGE,object='{p}')"),
        "IMAGE0=CROP(image=IMAGE,box=BOX0)".into(),
        format!("ANSWER0=VQA(image=IMAGE0,question='{sub}')"),
        "FINAL_RESULT=RESULT(var=ANSWER0)".into(),
    ]);
    let py = python(&[
        format!("patches = image_patch.find(\"{p}\")"),
        "if len(patches) == 0:".into(),
        format!("    return image_patch.simple_query(\"{sub}\")"),
        "patch = patches[0]".into(),
        format!("return patch.simple_query(\"{sub}\")"),
    ]);
    let text = text.replace("{P}", &surface(&p, rng));
    Some(Question::new(text, o.attr(attr), qtype).programs(step, py))
}

fn count_program(p: &str) -> (String, String) {
    (
        steps(&[
            format!("BOX0=LOC(image=IMAGE,object='{p}')"),
            "ANSWER0=COUNT(box=BOX0)".into(),
            "FINAL_RESULT=RESULT(var=ANSWER0)".into(),
        ]),
        python(&[format!("return str(len(image_patch.find(\"{p}\")))")]),
    )
}

/// Direction words: step crop module, question words, and the Python test.
struct Dir {
    name: &'static str,
    crop: &'static str,
    phrase: &'static str,
    /// Python condition on `p` (candidate) and `anchor`, ViperGPT coordinates (y up).
    py: &'static str,
}

const DIRS: [Dir; 4] = [
    Dir {
        name: "left",
        crop: "CROP_LEFTOF",
        phrase: "to the left of",
        py: "p.horizontal_center < anchor.horizontal_center",
    },
    Dir {
        name: "right",
        crop: "CROP_RIGHTOF",
        phrase: "to the right of",
        py: "p.horizontal_center > anchor.horizontal_center",
    },
    Dir {
        name: "above",
        crop: "CROP_ABOVE",
        phrase: "above",
        py: "p.vertical_center > anchor.vertical_center",
    },
    Dir {
        name: "below",
        crop: "CROP_BELOW",
        phrase: "below",
        py: "p.vertical_center < anchor.vertical_center",
    },
];

/// Signed offset of `o` from `anchor` along the direction (positive = on that side).
fn side(d: &Dir, o: &Object, anchor: &Object) -> f32 {
    let (ox, oy) = o.center();
    let (ax, ay) = anchor.center();
    match d.name {
        "left" => ax - ox,
        "right" => ox - ax,
        "above" => ay - oy,
        _ => oy - ay,
    }
}

/// Objects matching `t` (not the anchor) on the side, or `None` when one is too close to call.
fn on_side<'a>(scene: &'a Scene, d: &Dir, anchor: &Object, t: &Phrase) -> Option<Vec<&'a Object>> {
    let margin = REL_MARGIN * scene.width.min(scene.height) as f32;
    let mut out = Vec::new();
    for o in scene
        .objects
        .iter()
        .filter(|o| o.id != anchor.id && t.matches(o))
    {
        let s = side(d, o, anchor);
        if s.abs() <= margin {
            return None;
        }
        if s > 0.0 {
            out.push(o);
        }
    }
    Some(out)
}

/// Every candidate question of a scene.
pub fn candidates(scene: &Scene, rng: &mut SplitMix64) -> Vec<Question> {
    let mut out = Vec::new();
    let objs = &scene.objects;
    for o in objs {
        // Attribute queries.
        let q = |a: Attr| -> &'static [&'static str] {
            match a {
                Attr::Color => &[
                    "What color is the {P}?",
                    "What is the color of the {P}?",
                    "Which color does the {P} have?",
                    "What colour is the {P}?",
                ],
                Attr::Shape => &[
                    "What shape is the {P}?",
                    "What is the shape of the {P}?",
                    "Which shape does the {P} have?",
                ],
                Attr::Material => &[
                    "What material is the {P}?",
                    "What is the {P} made of?",
                    "What is the material of the {P}?",
                ],
                Attr::Size => &[
                    "What size is the {P}?",
                    "How big is the {P}?",
                    "Is the {P} small or large in size?",
                ],
            }
        };
        for a in Attr::ALL {
            let text = pick_template(rng, q(a), &[]);
            if let Some(x) = query_attr(o, scene, a, text, &format!("query_{}", a.name()), rng) {
                out.push(x);
            }
        }
        // Verify and choose.
        for a in [Attr::Color, Attr::Material, Attr::Shape] {
            let Some(p) = unique_phrase(o, objs, Some(a), rng) else {
                continue;
            };
            let p = p.text();
            let truth = o.attr(a).to_string();
            let others: Vec<&str> = a.values().iter().copied().filter(|v| *v != truth).collect();
            let Some(&other) = rng.pick(&others) else {
                continue;
            };
            let (value, yes) = if rng.chance(0.5) {
                (truth.clone(), true)
            } else {
                (other.to_string(), false)
            };
            let sub = verify_question(&p, a, &value);
            let step = steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{p}')"),
                "IMAGE0=CROP(image=IMAGE,box=BOX0)".into(),
                format!("ANSWER0=VQA(image=IMAGE0,question='{sub}')"),
                "FINAL_RESULT=RESULT(var=ANSWER0)".into(),
            ]);
            let py = python(&[
                format!("patches = image_patch.find(\"{p}\")"),
                "if len(patches) == 0:".into(),
                "    return \"no\"".into(),
                format!("return bool_to_yesno(patches[0].verify_property(\"{p}\", \"{value}\"))"),
            ]);
            let text = surface(&sub, rng);
            out.push(
                Question::new(text, if yes { "yes" } else { "no" }, "verify_attr")
                    .programs(step, py),
            );
            // Choose between the truth and another value, in random order.
            let (x, y) = if rng.chance(0.5) {
                (truth.as_str(), other)
            } else {
                (other, truth.as_str())
            };
            let sub = format!("Is the {p} {x} or {y}?");
            let step = steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{p}')"),
                "IMAGE0=CROP(image=IMAGE,box=BOX0)".into(),
                format!("ANSWER0=VQA(image=IMAGE0,question='{sub}')"),
                "FINAL_RESULT=RESULT(var=ANSWER0)".into(),
            ]);
            let py = python(&[
                format!("patches = image_patch.find(\"{p}\")"),
                "if len(patches) == 0:".into(),
                format!("    return image_patch.best_text_match([\"{x}\", \"{y}\"])"),
                format!("return patches[0].best_text_match([\"{x}\", \"{y}\"])"),
            ]);
            let text = surface(&sub, rng);
            out.push(Question::new(text, truth.clone(), "choose_attr").programs(step, py));
        }
    }
    // Existence and counting, on phrases present and absent.
    let mut phrases: Vec<Phrase> = Vec::new();
    for o in objs {
        let k = rng.range_usize(1, 2);
        let mut attrs = vec![Attr::Color, Attr::Size, Attr::Material];
        rng.shuffle(&mut attrs);
        attrs.truncate(k - 1);
        attrs.push(Attr::Shape);
        phrases.push(Phrase::of(o, &attrs));
        phrases.push(Phrase::of(o, &[Attr::Color]));
    }
    for _ in 0..4 {
        phrases.push(random_phrase(rng));
    }
    for p in &phrases {
        let n = count(scene, p);
        let (t, pl) = (p.text(), p.plural());
        let (ex_step, ex_py) = (
            steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{t}')"),
                "ANSWER0=COUNT(box=BOX0)".into(),
                "ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} > 0 else 'no'\")".into(),
                "FINAL_RESULT=RESULT(var=ANSWER1)".into(),
            ]),
            python(&[format!("return bool_to_yesno(image_patch.exists(\"{t}\"))")]),
        );
        let text = pick_template(
            rng,
            &[
                "Is there {A} {T}?",
                "Are there any {PL}?",
                "Do you see {A} {T}?",
            ],
            &[("{A}", article(&t)), ("{T}", &t), ("{PL}", &pl)],
        );
        out.push(
            Question::new(
                surface(&text, rng),
                if n > 0 { "yes" } else { "no" },
                "exist",
            )
            .programs(ex_step, ex_py),
        );
        if n <= 3 {
            let (s, py) = count_program(&t);
            let text = pick_template(
                rng,
                &[
                    "How many {PL} are there?",
                    "How many {PL} are in the image?",
                    "What number of {PL} are there?",
                ],
                &[("{PL}", &pl)],
            );
            out.push(Question::new(surface(&text, rng), n.to_string(), "count").programs(s, py));
        }
    }
    // Logic over two phrases.
    let absent: Vec<Phrase> = (0..12)
        .map(|_| random_phrase(rng))
        .filter(|p| count(scene, p) == 0)
        .collect();
    for _ in 0..3 {
        let side = |rng: &mut SplitMix64| {
            if rng.chance(0.5) {
                rng.pick(&absent).cloned()
            } else {
                rng.pick(&phrases).cloned()
            }
        };
        let (Some(a), Some(b)) = (side(rng), side(rng)) else {
            continue;
        };
        if a == b {
            continue;
        }
        let (ta, tb) = (a.text(), b.text());
        let (na, nb) = (count(scene, &a) > 0, count(scene, &b) > 0);
        for (op, qtype, truth) in [("and", "logic_and", na && nb), ("or", "logic_or", na || nb)] {
            let step = steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{ta}')"),
                format!("BOX1=LOC(image=IMAGE,object='{tb}')"),
                "ANSWER0=COUNT(box=BOX0)".into(),
                "ANSWER1=COUNT(box=BOX1)".into(),
                format!("ANSWER2=EVAL(expr=\"'yes' if {{ANSWER0}} > 0 {op} {{ANSWER1}} > 0 else 'no'\")"),
                "FINAL_RESULT=RESULT(var=ANSWER2)".into(),
            ]);
            let py = python(&[format!("return bool_to_yesno(image_patch.exists(\"{ta}\") {op} image_patch.exists(\"{tb}\"))")]);
            let text = if op == "and" {
                format!("Is there {} {ta} and {} {tb}?", article(&ta), article(&tb))
            } else {
                format!("Is there {} {ta} or {} {tb}?", article(&ta), article(&tb))
            };
            out.push(
                Question::new(surface(&text, rng), if truth { "yes" } else { "no" }, qtype)
                    .programs(step, py),
            );
        }
    }
    relational(scene, rng, &mut out);
    out
}

fn relational(scene: &Scene, rng: &mut SplitMix64, out: &mut Vec<Question>) {
    let objs = &scene.objects;
    for anchor in objs {
        let Some(ap) = unique_phrase(anchor, objs, None, rng) else {
            continue;
        };
        let a = ap.text();
        let d = &DIRS[rng.below(4)];
        // relate_exist on the shape of some other object, or a random shape.
        let t = if rng.chance(0.6) {
            rng.pick(objs)
                .map(|o| Phrase::of(o, &[Attr::Shape]))
                .unwrap_or_default()
        } else {
            random_phrase(rng)
        };
        // "a hexagon left of the hexagon" reads badly: the target must not name the anchor.
        let found = if t.matches(anchor) {
            None
        } else {
            on_side(scene, d, anchor, &t)
        };
        if let Some(found) = found {
            let tt = t.text();
            let step = steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{a}')"),
                format!("IMAGE0={}(image=IMAGE,box=BOX0)", d.crop),
                format!("BOX1=LOC(image=IMAGE0,object='{tt}')"),
                "ANSWER0=COUNT(box=BOX1)".into(),
                "ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} > 0 else 'no'\")".into(),
                "FINAL_RESULT=RESULT(var=ANSWER1)".into(),
            ]);
            let py = python(&[
                format!("anchors = image_patch.find(\"{a}\")"),
                "if len(anchors) == 0:".into(),
                "    return \"no\"".into(),
                "anchor = anchors[0]".into(),
                format!(
                    "found = [p for p in image_patch.find(\"{tt}\") if {}]",
                    d.py
                ),
                "return bool_to_yesno(len(found) > 0)".into(),
            ]);
            let text = format!("Is there {} {tt} {} the {a}?", article(&tt), d.phrase);
            out.push(
                Question::new(
                    surface(&text, rng),
                    if found.is_empty() { "no" } else { "yes" },
                    "relate_exist",
                )
                .programs(step, py),
            );
        }
        // relate_query: the one object of a shape on that side; ask its colour or material.
        let Some(target) = rng.pick(objs) else {
            continue;
        };
        let t = Phrase::of(target, &[Attr::Shape]);
        if let Some(found) = on_side(scene, d, anchor, &t) {
            if found.len() == 1 && found[0].id == target.id {
                let attr = if rng.chance(0.7) {
                    Attr::Color
                } else {
                    Attr::Material
                };
                let tt = t.text();
                let sub = attr_question(attr, &tt);
                let step = steps(&[
                    format!("BOX0=LOC(image=IMAGE,object='{a}')"),
                    format!("IMAGE0={}(image=IMAGE,box=BOX0)", d.crop),
                    format!("BOX1=LOC(image=IMAGE0,object='{tt}')"),
                    "IMAGE1=CROP(image=IMAGE0,box=BOX1)".into(),
                    format!("ANSWER0=VQA(image=IMAGE1,question='{sub}')"),
                    "FINAL_RESULT=RESULT(var=ANSWER0)".into(),
                ]);
                let py = python(&[
                    format!("anchors = image_patch.find(\"{a}\")"),
                    "if len(anchors) == 0:".into(),
                    format!("    return image_patch.simple_query(\"{sub}\")"),
                    "anchor = anchors[0]".into(),
                    format!(
                        "found = [p for p in image_patch.find(\"{tt}\") if {}]",
                        d.py
                    ),
                    "if len(found) == 0:".into(),
                    format!("    return image_patch.simple_query(\"{sub}\")"),
                    format!("return found[0].simple_query(\"{sub}\")"),
                ]);
                let what = if attr == Attr::Color {
                    "What color is"
                } else {
                    "What material is"
                };
                let text = format!("{what} the {tt} {} the {a}?", d.phrase);
                out.push(
                    Question::new(surface(&text, rng), target.attr(attr), "relate_query")
                        .programs(step, py),
                );
            }
        }
    }
    // Pairs of uniquely named objects: compare, choose a side, depth.
    for _ in 0..4 {
        let (Some(x), Some(y)) = (rng.pick(objs), rng.pick(objs)) else {
            break;
        };
        if x.id == y.id {
            continue;
        }
        let attr = [Attr::Color, Attr::Shape, Attr::Material, Attr::Size][rng.below(4)];
        if let (Some(px), Some(py_)) = (
            unique_phrase(x, objs, Some(attr), rng),
            unique_phrase(y, objs, Some(attr), rng),
        ) {
            let (tx, ty) = (px.text(), py_.text());
            if tx != ty {
                let (sx, sy) = (attr_question(attr, &tx), attr_question(attr, &ty));
                let step = steps(&[
                    format!("BOX0=LOC(image=IMAGE,object='{tx}')"),
                    "IMAGE0=CROP(image=IMAGE,box=BOX0)".into(),
                    format!("ANSWER0=VQA(image=IMAGE0,question='{sx}')"),
                    format!("BOX1=LOC(image=IMAGE,object='{ty}')"),
                    "IMAGE1=CROP(image=IMAGE,box=BOX1)".into(),
                    format!("ANSWER1=VQA(image=IMAGE1,question='{sy}')"),
                    "ANSWER2=EVAL(expr=\"'yes' if '{ANSWER0}' == '{ANSWER1}' else 'no'\")".into(),
                    "FINAL_RESULT=RESULT(var=ANSWER2)".into(),
                ]);
                let py = python(&[
                    format!("xs = image_patch.find(\"{tx}\")"),
                    format!("ys = image_patch.find(\"{ty}\")"),
                    "if len(xs) == 0 or len(ys) == 0:".into(),
                    "    return \"no\"".into(),
                    format!("a = xs[0].simple_query(\"{sx}\")"),
                    format!("b = ys[0].simple_query(\"{sy}\")"),
                    "return bool_to_yesno(a == b)".into(),
                ]);
                let text = pick_template(
                    rng,
                    &[
                        "Do the {X} and the {Y} have the same {A}?",
                        "Are the {X} and the {Y} the same {A}?",
                        "Is the {X} the same {A} as the {Y}?",
                    ],
                    &[("{X}", &tx), ("{Y}", &ty), ("{A}", attr.name())],
                );
                let same = x.attr(attr) == y.attr(attr);
                out.push(
                    Question::new(
                        surface(&text, rng),
                        if same { "yes" } else { "no" },
                        "compare_same",
                    )
                    .programs(step, py),
                );
            }
        }
        let (Some(px), Some(py_)) = (
            unique_phrase(x, objs, None, rng),
            unique_phrase(y, objs, None, rng),
        ) else {
            continue;
        };
        let (tx, ty) = (px.text(), py_.text());
        // choose_rel: horizontal or vertical, only when clearly on one side.
        let horizontal = rng.chance(0.5);
        let (first, second) = if horizontal {
            (&DIRS[0], &DIRS[1])
        } else {
            (&DIRS[2], &DIRS[3])
        };
        let s = side(first, x, y);
        if s.abs() > REL_MARGIN * scene.width.min(scene.height) as f32 {
            let answer = if s > 0.0 { first.name } else { second.name };
            let step = steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{ty}')"),
                format!("IMAGE0={}(image=IMAGE,box=BOX0)", first.crop),
                format!("BOX1=LOC(image=IMAGE0,object='{tx}')"),
                "ANSWER0=COUNT(box=BOX1)".into(),
                format!(
                    "ANSWER1=EVAL(expr=\"'{}' if {{ANSWER0}} > 0 else '{}'\")",
                    first.name, second.name
                ),
                "FINAL_RESULT=RESULT(var=ANSWER1)".into(),
            ]);
            let py = python(&[
                format!("anchors = image_patch.find(\"{ty}\")"),
                format!("ps = image_patch.find(\"{tx}\")"),
                "if len(anchors) == 0 or len(ps) == 0:".into(),
                format!("    return \"{}\"", second.name),
                "anchor = anchors[0]".into(),
                "p = ps[0]".into(),
                format!("if {}:", first.py),
                format!("    return \"{}\"", first.name),
                format!("return \"{}\"", second.name),
            ]);
            let text = if horizontal {
                format!("Is the {tx} to the left or to the right of the {ty}?")
            } else {
                format!("Is the {tx} above or below the {ty}?")
            };
            out.push(Question::new(surface(&text, rng), answer, "choose_rel").programs(step, py));
        }
        // verify_depth.
        if (x.depth - y.depth).abs() > DEPTH_MARGIN {
            let front = rng.chance(0.5);
            let rel = if front { "in front of" } else { "behind" };
            let truth = if front {
                x.depth < y.depth
            } else {
                x.depth > y.depth
            };
            let sub = format!("Is the {tx} {rel} the {ty}?");
            let crop = if front {
                "CROP_INFRONTOF"
            } else {
                "CROP_BEHIND"
            };
            let step = steps(&[
                format!("BOX0=LOC(image=IMAGE,object='{ty}')"),
                format!("IMAGE0={crop}(image=IMAGE,box=BOX0)"),
                format!("ANSWER0=VQA(image=IMAGE0,question='{sub}')"),
                "FINAL_RESULT=RESULT(var=ANSWER0)".into(),
            ]);
            let cmp = if front { "<" } else { ">" };
            let py = python(&[
                format!("xs = image_patch.find(\"{tx}\")"),
                format!("ys = image_patch.find(\"{ty}\")"),
                "if len(xs) == 0 or len(ys) == 0:".into(),
                "    return \"no\"".into(),
                format!("return bool_to_yesno(xs[0].compute_depth() {cmp} ys[0].compute_depth())"),
            ]);
            let text = pick_template(
                rng,
                &["Is the {X} {R} the {Y}?", "Is the {X} placed {R} the {Y}?"],
                &[("{X}", &tx), ("{R}", rel), ("{Y}", &ty)],
            );
            out.push(
                Question::new(
                    surface(&text, rng),
                    if truth { "yes" } else { "no" },
                    "verify_depth",
                )
                .programs(step, py),
            );
        }
    }
}
