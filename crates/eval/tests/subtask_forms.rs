//! The per-question-form breakdown of VQA sub-task scores adds up to the totals.

use sdvp_core::scripted::ScriptedBackend;
use sdvp_core::{ImageRef, Request, Response};
use sdvp_eval::subtasks::{question_form, score_subtasks};

fn vqa(question: &str, label: &str) -> (Request, Response) {
    (
        Request::Vqa {
            image: ImageRef::new("img", 64, 64),
            question: question.into(),
        },
        Response::answer(label, 1.0),
    )
}

#[test]
fn question_forms_are_the_first_two_words_lower_cased() {
    assert_eq!(question_form("What color is the cube?"), "what color");
    assert_eq!(question_form("Is the small star red?"), "is the");
    assert_eq!(question_form("  WHAT,  shape? is it"), "what shape");
    assert_eq!(question_form("Why?"), "why");
}

#[test]
fn by_form_counts_add_up_to_the_vqa_totals() {
    let subtasks = vec![
        vqa("What color is the cube?", "red"),
        vqa("What color is the ball?", "blue"),
        vqa("What shape is the red object?", "star"),
        vqa("Is the cube red?", "yes"),
        vqa("Is the ball red?", "no"),
    ];
    // Right on the cube's colour, the shape and one yes/no; wrong on the ball's colour
    // and the other yes/no.
    let backend = ScriptedBackend::from_json(
        r#"{"vqa": {"What color is the cube?": "red", "What color is the ball?": "green",
                    "What shape is the red object?": "star", "*": "yes"}}"#,
    )
    .expect("script");
    let report = score_subtasks(&subtasks, &backend, 2);
    let v = &report["vqa"];
    assert_eq!(v["n"], 5);
    assert_eq!(v["correct"], 3);
    let forms = v["by_form"].as_object().expect("by_form");
    let expected = [("what color", 2, 1), ("what shape", 1, 1), ("is the", 2, 1)];
    assert_eq!(forms.len(), expected.len());
    for (form, n, correct) in expected {
        assert_eq!(forms[form]["n"], n, "{form}");
        assert_eq!(forms[form]["correct"], correct, "{form}");
    }
}
