//! Tokenizers for the embedded models, written as Hugging Face `tokenizer.json` files.
//!
//! The world's language is small and closed, so each model gets a word-level vocabulary of
//! every word of the training questions and answers of every task (plus the module
//! prompts' words), in sorted order: BLIP a BERT-style WordPiece tokenizer (`[PAD]` 0,
//! `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, `[DEC]`, lower-casing, punctuation split), CLIP and
//! OWL-ViT a CLIP-style one (`<|startoftext|>` … `<|endoftext|>` as the last two ids, the
//! pooled position). Both load unchanged in transformers' `PreTrainedTokenizerFast`.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// Words every module prompt may use, whatever the questions contain.
const PROMPT_WORDS: [&str; 12] = [
    "a", "an", "photo", "of", "no", "the", "object", "objects", "what", "is", "yes", "?",
];

/// Splits text as BERT's pre-tokenizer does for our alphabet: lower case, words of
/// alphanumerics, every other non-space character alone.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Every word of the train-split questions and answers of `tasks` in `world`, with the
/// attribute vocabulary and prompt words.
pub fn world_words(world: &Path, tasks: &[&str]) -> Result<BTreeSet<String>> {
    let mut set: BTreeSet<String> = PROMPT_WORDS.iter().map(|s| s.to_string()).collect();
    for list in [
        &sdvp_data::scene::SHAPES[..],
        &sdvp_data::scene::COLORS[..],
        &sdvp_data::scene::SIZES[..],
        &sdvp_data::scene::MATERIALS[..],
    ] {
        set.extend(list.iter().map(|s| s.to_string()));
    }
    for d in 0..=9 {
        set.insert(d.to_string());
    }
    for task in tasks {
        let path = sdvp_data::example::split_path(world, task, "train");
        let bad = sdvp_data::example::each_line(&path, |_, line| {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                for key in ["question", "answer"] {
                    if let Some(t) = v.get(key).and_then(Value::as_str) {
                        set.extend(words(t));
                    }
                }
            }
        })
        .with_context(|| format!("reading {}", path.display()))?;
        let _ = bad;
    }
    Ok(set)
}

/// A BERT-style WordPiece `tokenizer.json` (BLIP's) over `words`: ids 0–5 are
/// `[PAD] [UNK] [CLS] [SEP] [MASK] [DEC]`, words follow in order. Returns the vocab size.
pub fn write_bert_tokenizer(words: &BTreeSet<String>, dir: &Path) -> Result<usize> {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"];
    let mut vocab = serde_json::Map::new();
    for (i, t) in specials
        .iter()
        .map(|s| s.to_string())
        .chain(words.iter().cloned())
        .enumerate()
    {
        vocab.insert(t, json!(i));
    }
    let n = vocab.len();
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    let tok = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    });
    write_json(&tok, &dir.join("tokenizer.json"))?;
    write_json(
        &json!({"tokenizer_class": "BertTokenizerFast", "do_lower_case": true,
                "model_max_length": 512, "pad_token": "[PAD]", "unk_token": "[UNK]",
                "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]",
                "bos_token": "[DEC]"}),
        &dir.join("tokenizer_config.json"),
    )?;
    Ok(n)
}

/// A CLIP-style word-level `tokenizer.json` over `words`: id 0 is `!` (CLIP's pad), 1 is
/// `[UNK]`, words follow, then `<|startoftext|>` and `<|endoftext|>` as the last two ids.
/// Returns `(vocab size, bos id, eos id)`.
pub fn write_clip_tokenizer(words: &BTreeSet<String>, dir: &Path) -> Result<(usize, u32, u32)> {
    let mut vocab = serde_json::Map::new();
    vocab.insert("!".into(), json!(0));
    vocab.insert("[UNK]".into(), json!(1));
    for w in words {
        if w != "!" && w != "[UNK]" {
            let id = vocab.len();
            vocab.insert(w.clone(), json!(id));
        }
    }
    let bos = vocab.len() as u32;
    let eos = bos + 1;
    vocab.insert("<|startoftext|>".into(), json!(bos));
    vocab.insert("<|endoftext|>".into(), json!(eos));
    let n = vocab.len();
    let special = |id: u32, s: &str| {
        json!({"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
               "normalized": false, "special": true})
    };
    let tok = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(bos, "<|startoftext|>"), special(eos, "<|endoftext|>")],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {
                "<|endoftext|>": {"id": "<|endoftext|>", "ids": [eos], "tokens": ["<|endoftext|>"]},
                "<|startoftext|>": {"id": "<|startoftext|>", "ids": [bos], "tokens": ["<|startoftext|>"]}
            }
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    write_json(&tok, &dir.join("tokenizer.json"))?;
    write_json(
        &json!({"tokenizer_class": "CLIPTokenizerFast", "model_max_length": 16,
                "pad_token": "!", "unk_token": "[UNK]", "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>"}),
        &dir.join("tokenizer_config.json"),
    )?;
    Ok((n, bos, eos))
}

/// Pretty JSON written whole (the caller's folder is itself moved into place atomically).
pub fn write_json(v: &Value, path: &Path) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
