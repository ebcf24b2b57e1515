//! Held-out phrasings: the `heldout` split of each program task.
//!
//! A program generator trained on the world's templates could score well by memorising
//! them. The `heldout` split asks the same kinds of questions (same gold programs, same
//! answers) in phrasings no other split ever contains, so generalisation to new wording
//! is measured on its own. Every rewrite here frames or restructures a question in a way
//! the task templates never produce (a test checks that no train question carries one).

use sdvp_core::rng::SplitMix64;

/// Openings no task template starts with; each is followed by the question, first letter
/// lowered.
pub const QUESTION_FRAMES: [&str; 5] = [
    "Looking at the picture, ",
    "In this image, ",
    "Quick question: ",
    "Tell me, ",
    "Based on what you see, ",
];

/// Frames of a true/false statement (NLVR-style): `(before, after)`.
pub const STATEMENT_FRAMES: [(&str, &str); 4] = [
    ("Is it true that ", "?"),
    ("True or false: ", "."),
    ("Decide whether this holds: ", "."),
    ("Check the claim that ", "."),
];

/// Whole-question restructurings: `(template start, template end, rewrite)`, where the
/// middle part `X` of `START X END` replaces `{X}`.
const RESTRUCTURE: [(&str, &str, &str); 6] = [
    (
        "How many ",
        " are there?",
        "Count the {X}: how many are there?",
    ),
    ("Is there ", "?", "Can you see {X} here?"),
    ("Are there any ", "?", "Do you see any {X} here?"),
    ("What color is the ", "?", "The {X} is which color?"),
    ("What shape is the ", "?", "The {X} has which shape?"),
    (
        "What material is the ",
        "?",
        "The {X} is made of which material?",
    ),
];

/// `s` with its first letter in lower case.
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `text` in one of `questions` (an opening, first letter lowered after it) or, for a
/// `statement` ending in a full stop, one of `statements` (`(before, after)`), drawn from
/// `rng`.
pub fn framed(
    text: &str,
    statement: bool,
    questions: &[&str],
    statements: &[(&str, &str)],
    rng: &mut SplitMix64,
) -> String {
    let text = text.trim();
    if let Some(body) = statement_body(text, statement) {
        let (before, after) = statements[rng.below(statements.len())];
        return format!("{before}{}{after}", lower_first(body));
    }
    let frame = questions[rng.below(questions.len())];
    format!("{frame}{}", lower_first(text))
}

/// For a `statement` ending in a full stop, its body without the stop (what a statement
/// frame wraps); `None` for a question, which a question frame precedes whole.
pub fn statement_body(text: &str, statement: bool) -> Option<&str> {
    text.strip_suffix('.').filter(|_| statement)
}

/// A held-out phrasing of `text`, meaning the same; `statement` for a true/false claim
/// (NLVR-style) rather than a question or request.
pub fn rephrase(text: &str, statement: bool, rng: &mut SplitMix64) -> String {
    let text = text.trim();
    let is_claim = statement && text.ends_with('.');
    if !is_claim {
        let fits: Vec<String> = RESTRUCTURE
            .iter()
            .filter_map(|(start, end, rewrite)| {
                let x = text.strip_prefix(start)?.strip_suffix(end)?;
                // Compound questions ("Is there a cube and a star?") keep their frame only.
                (!x.contains(" and ") && !x.contains(" or ") && !x.contains(" the "))
                    .then(|| rewrite.replace("{X}", x))
            })
            .collect();
        if !fits.is_empty() && rng.chance(0.5) {
            return fits[0].clone();
        }
    }
    framed(text, statement, &QUESTION_FRAMES, &STATEMENT_FRAMES, rng)
}

/// The restructured forms (`{X}` for the object phrase), for checks that training text
/// shares none of their words.
pub fn restructurings() -> impl Iterator<Item = &'static str> {
    RESTRUCTURE.iter().map(|(_, _, rewrite)| *rewrite)
}

/// Whether `text` carries a held-out phrasing (used to prove the other splits never do).
pub fn is_heldout_phrasing(text: &str) -> bool {
    QUESTION_FRAMES.iter().any(|f| text.starts_with(f))
        || STATEMENT_FRAMES.iter().any(|(b, _)| text.starts_with(b))
        || RESTRUCTURE.iter().any(|(_, _, r)| {
            let (head, tail) = r.split_once("{X}").unwrap_or((r, ""));
            text.starts_with(head) && text.ends_with(tail)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_keep_the_content_words() {
        let mut rng = SplitMix64::new(3);
        for q in [
            "How many red cubes are there?",
            "What color is the large star?",
            "Both images contain a blue cube.",
            "Is the small cube metal?",
        ] {
            for _ in 0..8 {
                let r = rephrase(q, q.ends_with('.'), &mut rng);
                assert!(is_heldout_phrasing(&r), "{r}");
                for w in ["red", "large", "blue", "small", "metal"] {
                    assert_eq!(q.contains(w), r.contains(w), "{q} -> {r}");
                }
            }
        }
        assert!(!is_heldout_phrasing("What color is the large star?"));
        assert!(!is_heldout_phrasing(
            "The left image contains exactly two cubes."
        ));
    }
}
