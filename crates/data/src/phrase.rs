//! Object phrases ("large red metal star", "red objects") and the words they accept.
//!
//! The generator writes canonical phrases; the oracle parses whatever phrase a program
//! sends, with a few synonyms, so a generated program that says "big grey ball" is not
//! failed by wording alone. An unknown word makes the phrase match nothing: an honest miss.

use crate::scene::{Attr, Object};

/// A parsed object phrase: each attribute constrained or free.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phrase {
    pub shape: Option<String>,
    pub color: Option<String>,
    pub size: Option<String>,
    pub material: Option<String>,
}

/// Words that name any object.
const GENERIC: [&str; 5] = ["object", "shape", "thing", "item", "figure"];
/// Words ignored inside phrases.
const FILLER: [&str; 6] = ["the", "a", "an", "one", "some", "any"];

/// Canonical attribute value of one word (synonyms and plurals included).
pub fn canonical_word(word: &str) -> Option<(Attr, &'static str)> {
    let w = word.trim().to_lowercase();
    let w = w.trim_matches(|c: char| !c.is_alphanumeric());
    let m = |a, v| Some((a, v));
    match w {
        "circle" | "circles" | "ball" | "balls" | "disc" | "disk" | "discs" => {
            m(Attr::Shape, "circle")
        }
        "square" | "squares" | "box" | "boxes" => m(Attr::Shape, "square"),
        "triangle" | "triangles" => m(Attr::Shape, "triangle"),
        "star" | "stars" => m(Attr::Shape, "star"),
        "hexagon" | "hexagons" => m(Attr::Shape, "hexagon"),
        "diamond" | "diamonds" | "rhombus" => m(Attr::Shape, "diamond"),
        "red" => m(Attr::Color, "red"),
        "green" => m(Attr::Color, "green"),
        "blue" => m(Attr::Color, "blue"),
        "yellow" => m(Attr::Color, "yellow"),
        "purple" | "violet" => m(Attr::Color, "purple"),
        "orange" => m(Attr::Color, "orange"),
        "cyan" | "turquoise" => m(Attr::Color, "cyan"),
        "gray" | "grey" => m(Attr::Color, "gray"),
        "small" | "little" | "tiny" => m(Attr::Size, "small"),
        "large" | "big" => m(Attr::Size, "large"),
        "matte" | "flat" | "plain" => m(Attr::Material, "matte"),
        "metal" | "metallic" | "shiny" => m(Attr::Material, "metal"),
        "striped" | "stripy" => m(Attr::Material, "striped"),
        _ => None,
    }
}

impl Phrase {
    /// Parse a phrase; `None` when a word is neither an attribute, a generic noun nor filler.
    pub fn parse(text: &str) -> Option<Phrase> {
        let mut p = Phrase::default();
        let mut any = false;
        for word in text.split_whitespace() {
            let lw = word
                .to_lowercase()
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_string();
            if lw.is_empty() || FILLER.contains(&lw.as_str()) {
                continue;
            }
            let singular = lw.strip_suffix('s').unwrap_or(&lw);
            if GENERIC.contains(&lw.as_str()) || GENERIC.contains(&singular) {
                any = true;
                continue;
            }
            let (attr, value) = canonical_word(&lw)?;
            let slot = match attr {
                Attr::Shape => &mut p.shape,
                Attr::Color => &mut p.color,
                Attr::Size => &mut p.size,
                Attr::Material => &mut p.material,
            };
            if slot.as_deref().is_some_and(|v| v != value) {
                return None;
            }
            *slot = Some(value.to_string());
            any = true;
        }
        any.then_some(p)
    }

    pub fn matches(&self, o: &Object) -> bool {
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        ok(&self.shape, &o.shape)
            && ok(&self.color, &o.color)
            && ok(&self.size, &o.size)
            && ok(&self.material, &o.material)
    }

    /// Number of constrained attributes (a tie-breaker for CLASSIFY).
    pub fn specificity(&self) -> usize {
        [&self.shape, &self.color, &self.size, &self.material]
            .iter()
            .filter(|v| v.is_some())
            .count()
    }

    /// Canonical text: `size color material shape`, `object` when no shape is given.
    pub fn text(&self) -> String {
        let mut words: Vec<&str> = Vec::new();
        for v in [&self.size, &self.color, &self.material]
            .into_iter()
            .flatten()
        {
            words.push(v);
        }
        words.push(self.shape.as_deref().unwrap_or("object"));
        words.join(" ")
    }

    /// Plural canonical text (`red circles`, `objects`).
    pub fn plural(&self) -> String {
        format!("{}s", self.text())
    }

    /// The phrase naming exactly the attributes in `attrs` of `o`.
    pub fn of(o: &Object, attrs: &[Attr]) -> Phrase {
        let mut p = Phrase::default();
        for a in attrs {
            let v = Some(o.attr(*a).to_string());
            match a {
                Attr::Shape => p.shape = v,
                Attr::Color => p.color = v,
                Attr::Size => p.size = v,
                Attr::Material => p.material = v,
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_synonyms_and_plurals() {
        let p = Phrase::parse("the big grey balls").unwrap_or_default();
        assert_eq!(p.shape.as_deref(), Some("circle"));
        assert_eq!(p.color.as_deref(), Some("gray"));
        assert_eq!(p.size.as_deref(), Some("large"));
        assert_eq!(
            Phrase::parse("red objects").map(|p| p.text()),
            Some("red object".into())
        );
        assert_eq!(Phrase::parse("purple elephant"), None);
        assert_eq!(Phrase::parse("red blue star"), None);
    }
}
