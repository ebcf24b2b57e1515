//! The `local` backend against PyTorch: the tiny random Qwen2 and Llama 3 of
//! `tools/make_fixture_qwen2.py` must give the same prompt ids (chat template + tokenizer),
//! first-step logits within float tolerance, and the same greedy token ids as
//! transformers' `generate`.
#![cfg(feature = "local")]

use sdvp_generate::backend::{GenRequest, Generator, Sampling};
use sdvp_generate::local::ChatTemplate;
use sdvp_generate::local_model::LocalGenerator;
use sdvp_generate::prompt::Prompt;
use sdvp_generate::{ProgramStyle, Task};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Expected {
    system: String,
    user: String,
    prompt_ids: Vec<u32>,
    first_logits: Vec<f32>,
    greedy_ids: Vec<u32>,
    greedy_text: String,
}

/// The fixtures, their chat template and the id of their end-of-turn token.
const FIXTURES: [(&str, ChatTemplate, u32); 2] = [
    ("qwen2_tiny", ChatTemplate::ChatMl, 2),
    ("llama_tiny", ChatTemplate::Llama3, 4),
];

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture() -> PathBuf {
    fixture_dir("qwen2_tiny")
}

fn expected(name: &str) -> Expected {
    let path = fixture_dir(name).join("expected.json");
    let text = std::fs::read_to_string(&path).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json layout")
}

fn prompt(e: &Expected) -> Prompt {
    Prompt {
        system: e.system.clone(),
        user: e.user.clone(),
    }
}

fn greedy(max_tokens: u32) -> Sampling {
    Sampling {
        max_tokens,
        ..Sampling::default()
    }
}

#[test]
fn matches_pytorch_prompt_logits_and_greedy_ids() {
    for (name, template, _) in FIXTURES {
        let e = expected(name);
        let g = LocalGenerator::load(&fixture_dir(name), None).expect("load fixture");
        assert_eq!(g.template(), template, "{name}");
        let ids = g.encode_prompt(&prompt(&e)).expect("encode");
        assert_eq!(
            ids, e.prompt_ids,
            "{name}: chat template or tokenizer differs"
        );

        let logits = g.first_logits(&ids).expect("forward");
        assert_eq!(logits.len(), e.first_logits.len());
        let max_diff = logits
            .iter()
            .zip(&e.first_logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!("{name}: max |logit diff| on the first step: {max_diff:e}");
        assert!(
            max_diff < 1e-3,
            "{name}: first-step logits differ by {max_diff}"
        );

        let n = e.greedy_ids.len() as u32;
        let (got, text) = g.generate_ids(&ids, &greedy(n), 0).expect("generate");
        assert_eq!(got, e.greedy_ids, "{name}");
        assert_eq!(text, e.greedy_text, "{name}");
    }
}

#[test]
fn stops_at_max_tokens_stop_strings_and_end_tokens() {
    for (name, _, end) in FIXTURES {
        let e = expected(name);
        let g = LocalGenerator::load(&fixture_dir(name), None).expect("load fixture");
        let ids = g.encode_prompt(&prompt(&e)).expect("encode");
        let (got, _) = g.generate_ids(&ids, &greedy(5), 0).expect("generate");
        assert_eq!(got, e.greedy_ids[..5], "{name}");

        // Two ASCII letters from inside the greedy text (ASCII, so a prefix decoded while
        // a multi-byte character is incomplete cannot match early) cut the text before them.
        let full = &e.greedy_text;
        let bytes = full.as_bytes();
        let at = (3..bytes.len().saturating_sub(1))
            .find(|&i| bytes[i].is_ascii_alphabetic() && bytes[i + 1].is_ascii_alphabetic())
            .expect("two ASCII letters in the greedy text");
        let stop = full[at..at + 2].to_string();
        let sampling = Sampling {
            stop: vec![stop.clone()],
            ..greedy(e.greedy_ids.len() as u32)
        };
        let (short, text) = g.generate_ids(&ids, &sampling, 0).expect("generate");
        let cut = full.find(&stop).expect("stop in text");
        assert_eq!(text, full[..cut], "{name}");
        assert!(
            short.len() < e.greedy_ids.len(),
            "{name}: did not stop early"
        );

        let ends: Vec<u32> = g.end_ids().collect();
        assert!(
            ends.contains(&end),
            "{name}: end-of-turn id {end} missing from {ends:?}"
        );
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_differs_across_samples() {
    let e = expected("qwen2_tiny");
    let g = LocalGenerator::load(&fixture(), None).expect("load fixture");
    let request = |index: usize| GenRequest {
        id: "q".into(),
        question: e.user.clone(),
        task: Task::GqaWorld,
        style: ProgramStyle::Step,
        prompt: prompt(&e),
        sampling: Sampling {
            temperature: 1.5,
            top_p: 0.95,
            max_tokens: 16,
            stop: Vec::new(),
            seed: 3,
        },
        sample_index: index,
    };
    let a = g.generate(&[request(0), request(1), request(0)]);
    let texts: Vec<String> = a.into_iter().map(|r| r.expect("sample")).collect();
    assert_eq!(texts[0], texts[2], "same seed and index must repeat");
    assert_ne!(texts[0], texts[1], "another sample index must differ");
    assert!(g.backend() == "local/chatml" && g.model().contains("sha256-"));
}

#[test]
fn broken_checkpoints_fail_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = |d: &Path| {
        LocalGenerator::load(d, None)
            .err()
            .map(|e| (e.stops_run(), e.message))
            .expect("must fail")
    };
    let (fatal, msg) = err(&dir.path().join("absent"));
    assert!(fatal && msg.contains("absent"));

    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture().join(f), dir.path().join(f)).expect("copy");
    }
    let (_, msg) = err(dir.path());
    assert!(msg.contains("no *.safetensors"), "{msg}");

    std::fs::write(dir.path().join("model.safetensors"), b"not weights").expect("write");
    let (_, msg) = err(dir.path());
    assert!(msg.contains("model.safetensors"), "{msg}");

    let config = std::fs::read_to_string(fixture().join("config.json")).expect("config");
    let gpt = config.replace("\"qwen2\"", "\"gpt2\"");
    std::fs::write(dir.path().join("config.json"), gpt).expect("write");
    let (_, msg) = err(dir.path());
    assert!(msg.contains("config.json") && msg.contains("gpt2"), "{msg}");
}
