//! Question generation for the world's tasks, with gold answers and gold programs.
//!
//! Each task module enumerates *candidate* questions a scene (or image pair) supports, with
//! answers computed from the scene graph by the same rules the oracle uses (box centres
//! inside crops, margins around every relation). A [`Balancer`] then picks which candidates
//! to keep so that question types and, within a type, answers come out near uniform: no
//! answer prior beats chance by much.

pub mod attr;
pub mod gqa;
pub mod heldout;
pub mod nlvr;
pub mod pretrain;

use crate::phrase::Phrase;
use crate::scene::{Attr, Object, Scene};
use sdvp_core::rng::SplitMix64;
use std::collections::BTreeMap;

/// A generated question before it gets its id and images.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub question: String,
    pub answer: String,
    pub question_type: String,
    pub gold_step: Option<String>,
    pub gold_python: Option<String>,
    pub meta: BTreeMap<String, serde_json::Value>,
}

impl Question {
    pub fn new(question: String, answer: impl Into<String>, qtype: &str) -> Self {
        Self {
            question,
            answer: answer.into(),
            question_type: qtype.to_string(),
            gold_step: None,
            gold_python: None,
            meta: BTreeMap::new(),
        }
    }
    pub fn programs(mut self, step: String, python: String) -> Self {
        self.gold_step = Some(step);
        self.gold_python = Some(python);
        self
    }
}

/// Keeps per-type and per-answer counts and picks the least represented candidates.
#[derive(Debug, Default, Clone)]
pub struct Balancer {
    counts: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Balancer {
    /// Choose up to `k` candidates, at most one per question type.
    pub fn select(
        &mut self,
        mut cands: Vec<Question>,
        k: usize,
        rng: &mut SplitMix64,
    ) -> Vec<Question> {
        let mut out = Vec::new();
        while out.len() < k && !cands.is_empty() {
            let mut types: Vec<&str> = cands.iter().map(|q| q.question_type.as_str()).collect();
            types.sort();
            types.dedup();
            let total = |t: &str| -> usize {
                self.counts
                    .get(t)
                    .map(|m| m.values().sum())
                    .unwrap_or_default()
            };
            let min = types.iter().map(|t| total(t)).min().unwrap_or(0);
            let low: Vec<&str> = types.into_iter().filter(|t| total(t) == min).collect();
            let Some(qtype) = rng.pick(&low).map(|s| s.to_string()) else {
                break;
            };
            let count = |a: &str| -> usize {
                self.counts
                    .get(&qtype)
                    .and_then(|m| m.get(a))
                    .copied()
                    .unwrap_or(0)
            };
            let of_type: Vec<usize> = (0..cands.len())
                .filter(|&i| cands[i].question_type == qtype)
                .collect();
            let amin = of_type
                .iter()
                .map(|&i| count(&cands[i].answer))
                .min()
                .unwrap_or(0);
            // Skip the type for this scene when it only offers answers already ahead of
            // the rarest answer seen: waiting for a scene with the rare answer keeps balance.
            let seen_min = self
                .counts
                .get(&qtype)
                .and_then(|m| m.values().min().copied())
                .unwrap_or(0);
            if amin > seen_min + 2 + seen_min / 20 {
                cands.retain(|c| c.question_type != qtype);
                continue;
            }
            let best: Vec<usize> = of_type
                .into_iter()
                .filter(|&i| count(&cands[i].answer) == amin)
                .collect();
            let Some(&pick) = rng.pick(&best) else {
                break;
            };
            let q = cands.swap_remove(pick);
            *self
                .counts
                .entry(qtype.clone())
                .or_default()
                .entry(q.answer.clone())
                .or_default() += 1;
            cands.retain(|c| c.question_type != qtype);
            out.push(q);
        }
        out
    }
}

/// Subsets of attributes tried, shortest first, to name an object.
fn naming_orders(exclude: Option<Attr>) -> Vec<Vec<Attr>> {
    use Attr::*;
    let all: Vec<Vec<Attr>> = vec![
        vec![Shape],
        vec![Color, Shape],
        vec![Size, Shape],
        vec![Material, Shape],
        vec![Color],
        vec![Size, Color, Shape],
        vec![Color, Material, Shape],
        vec![Size, Material, Shape],
        vec![Size, Color],
        vec![Color, Material],
        vec![Size, Color, Material],
        vec![Size, Color, Material, Shape],
    ];
    all.into_iter()
        .filter(|s| exclude.is_none_or(|e| !s.contains(&e)))
        .collect()
}

/// The shortest phrase (random among equals) naming `o` alone in `objects`, without `exclude`.
pub fn unique_phrase(
    o: &Object,
    objects: &[Object],
    exclude: Option<Attr>,
    rng: &mut SplitMix64,
) -> Option<Phrase> {
    let orders = naming_orders(exclude);
    let mut by_len: BTreeMap<usize, Vec<Vec<Attr>>> = BTreeMap::new();
    for s in orders {
        by_len.entry(s.len()).or_default().push(s);
    }
    for (_, mut group) in by_len {
        rng.shuffle(&mut group);
        for attrs in group {
            let p = Phrase::of(o, &attrs);
            if objects.iter().filter(|x| p.matches(x)).count() == 1 {
                return Some(p);
            }
        }
    }
    None
}

/// A random phrase of one or two attributes (often matching nothing in a scene).
pub fn random_phrase(rng: &mut SplitMix64) -> Phrase {
    let mut p = Phrase {
        shape: rng.pick(&crate::scene::SHAPES).map(|s| s.to_string()),
        ..Default::default()
    };
    match rng.below(4) {
        0 | 1 => p.color = rng.pick(&crate::scene::COLORS).map(|s| s.to_string()),
        2 => p.size = rng.pick(&crate::scene::SIZES).map(|s| s.to_string()),
        _ => p.material = rng.pick(&crate::scene::MATERIALS).map(|s| s.to_string()),
    }
    p
}

/// Number of objects matching a phrase.
pub fn count(scene: &Scene, p: &Phrase) -> usize {
    scene.objects.iter().filter(|o| p.matches(o)).count()
}

/// Swap canonical words for synonyms in question text (programs keep canonical words).
pub fn surface(text: &str, rng: &mut SplitMix64) -> String {
    text.split(' ')
        .map(|w| {
            let alt: &[&str] = match w {
                "large" => &["large", "big"],
                "small" => &["small", "little"],
                "gray" => &["gray", "grey"],
                "metal" => &["metal", "metallic", "shiny"],
                "object" => &["object", "thing", "shape"],
                "objects" => &["objects", "things", "shapes"],
                _ => &[],
            };
            rng.pick(alt)
                .map(|s| s.to_string())
                .unwrap_or_else(|| w.to_string())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sub-question a program asks about one attribute of a named object.
pub fn attr_question(attr: Attr, phrase: &str) -> String {
    match attr {
        Attr::Color => format!("What color is the {phrase}?"),
        Attr::Shape => format!("What shape is the {phrase}?"),
        Attr::Size => format!("What size is the {phrase}?"),
        Attr::Material => format!("What material is the {phrase}?"),
    }
}

/// `with a` or `with an` before a word, for question text.
pub fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Lines of a step program, joined.
pub fn steps(lines: &[String]) -> String {
    lines.join("\n")
}

/// A ViperGPT-style function from body lines (indented by four spaces here).
pub fn python(body: &[String]) -> String {
    let mut s =
        String::from("def execute_command(image) -> str:\n    image_patch = ImagePatch(image)\n");
    for l in body {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s
}
