//! The `local` backend: a decoder LLM run in process from a Hugging Face checkpoint directory.
//!
//! The directory holds `config.json`, the weights as `*.safetensors` (one file, or shards
//! listed by `model.safetensors.index.json`) and `tokenizer.json`; `tokenizer_config.json`
//! and `generation_config.json` are read when present. The networks themselves are the
//! maintained implementations in `candle-transformers` (Qwen2/Qwen2.5 for
//! `model_type: qwen2`, Llama 2/3 for `model_type: llama`), run on the CPU in f32 with their
//! KV cache: the prompt is run once, then one token per step. Loading reads the weight files
//! whole (they are hashed for the cache key on the way) and keeps f32 copies, so memory
//! peaks at about the file size plus the f32 weights: fine for the 0.5–3B models this
//! project prompts, not meant for 70B ones (serve those and use the `openai` backend).
//!
//! **Chat templates.** Hugging Face checkpoints carry a Jinja `chat_template`; this crate does
//! not interpret Jinja. It recognises the two template families it supports and renders them
//! itself ([`ChatTemplate`]): ChatML (`<|im_start|>role\n…<|im_end|>\n`, Qwen) and Llama 3
//! (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`). A checkpoint without a
//! template (a base model) gets [`ChatTemplate::Plain`]: the completion text of the prompt.
//! Any other template is refused with a message naming the file, unless a template is chosen
//! explicitly — guessing would silently change every prompt. Extras some templates add
//! (Llama 3.1's "Cutting Knowledge Date" system preamble, Qwen's default system message
//! when none is given) are not reproduced; our prompts always carry a system message.
//!
//! **Decoding** follows the same contract as the embedded backend
//! ([`crate::embedded::pick_token`]): greedy at temperature 0, else temperature + nucleus
//! sampling seeded by `seed + sample_index`. Generation ends at an end-of-turn token (the
//! template's end markers and the checkpoint's `eos_token_id`s), at the first stop string
//! (the text is cut before it), at `max_tokens`, or at the model's context length.
//!
//! **Build.** The network code is behind the cargo feature `local`, on by default.
//! `candle-transformers` ships every model as one crate; compiling it took 135 s on the
//! 2-core build machine (shared with other builds at the time), which is the bulk of what the
//! feature adds to a clean build (candle-core, candle-nn and tokenizers are built for
//! `sdvp-models` anyway). `--no-default-features` leaves it out; then [`load`] explains how
//! to get it. GGUF (quantized) checkpoints are not supported yet: candle-transformers has
//! quantized Qwen2/Llama, but they need the GGUF's own tokenizer metadata converted, which
//! is left for later.

use crate::backend::{GenError, Generator};
use crate::prompt::Prompt;
use serde_json::Value;
use std::path::Path;

/// Whether this build can run local models.
pub const AVAILABLE: bool = cfg!(feature = "local");

/// How prompts are laid out for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>system\n…<|im_end|>\n<|im_start|>user\n…<|im_end|>\n<|im_start|>assistant\n`
    ChatMl,
    /// Llama 3 header tokens, starting with `<|begin_of_text|>`; message texts are trimmed
    /// as Llama 3's template does.
    Llama3,
    /// No chat markup: [`Prompt::completion_text`], with the tokenizer's own special tokens
    /// (e.g. a BOS) added.
    Plain,
}

impl ChatTemplate {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatTemplate::ChatMl => "chatml",
            ChatTemplate::Llama3 => "llama3",
            ChatTemplate::Plain => "plain",
        }
    }

    /// The text given to the tokenizer.
    pub fn render(self, prompt: &Prompt) -> String {
        match self {
            ChatTemplate::ChatMl => format!(
                "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n\
                 <|im_start|>assistant\n",
                prompt.system, prompt.user
            ),
            // Llama 3's own template trims each message.
            ChatTemplate::Llama3 => format!(
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{}<|eot_id|>\
                 <|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n",
                prompt.system.trim(),
                prompt.user.trim()
            ),
            ChatTemplate::Plain => prompt.completion_text(),
        }
    }

    /// Whether the tokenizer should add its own special tokens (the chat templates write
    /// theirs literally, so adding a BOS again would double it).
    pub fn add_special_tokens(self) -> bool {
        self == ChatTemplate::Plain
    }

    /// Tokens that end the assistant's turn under this template.
    pub fn end_markers(self) -> &'static [&'static str] {
        match self {
            ChatTemplate::ChatMl => &["<|im_end|>", "<|endoftext|>"],
            ChatTemplate::Llama3 => &["<|eot_id|>", "<|end_of_text|>"],
            ChatTemplate::Plain => &[],
        }
    }
}

impl std::str::FromStr for ChatTemplate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "chatml" => Ok(ChatTemplate::ChatMl),
            "llama3" => Ok(ChatTemplate::Llama3),
            "plain" => Ok(ChatTemplate::Plain),
            _ => Err(format!(
                "unknown chat template `{s}` (expected chatml, llama3 or plain)"
            )),
        }
    }
}

/// The Jinja text of `tokenizer_config.json`'s `chat_template` (a string, or a list of
/// named templates of which `default` is the chat one).
fn chat_template_text(tokenizer_config: &Value) -> Option<&str> {
    match tokenizer_config.get("chat_template")? {
        Value::String(s) => Some(s),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str),
        _ => None,
    }
}

/// Pick the template for a checkpoint: from its `chat_template` when it has one (only the
/// supported families are accepted), else from the special tokens its vocabulary holds
/// (`has_token`), else [`ChatTemplate::Plain`]. `source` names the file in errors.
pub fn detect_template(
    tokenizer_config: Option<&Value>,
    has_token: &dyn Fn(&str) -> bool,
    source: &Path,
) -> Result<ChatTemplate, String> {
    if let Some(jinja) = tokenizer_config.and_then(chat_template_text) {
        return if jinja.contains("<|im_start|>") {
            Ok(ChatTemplate::ChatMl)
        } else if jinja.contains("<|start_header_id|>") {
            Ok(ChatTemplate::Llama3)
        } else {
            Err(format!(
                "{}: field `chat_template` is not a template this backend can render (only \
                 ChatML and Llama 3 are recognised); choose one explicitly with \
                 --chat-template chatml|llama3|plain",
                source.display()
            ))
        };
    }
    Ok(if has_token("<|im_start|>") {
        ChatTemplate::ChatMl
    } else if has_token("<|start_header_id|>") {
        ChatTemplate::Llama3
    } else {
        ChatTemplate::Plain
    })
}

/// Rewrite a `config.json` into the field layout candle-transformers reads.
///
/// transformers 5 writes `rope_parameters {rope_theta, rope_type, …}` instead of
/// `rope_theta`/`rope_scaling`, and `sliding_window: null`; older Qwen2 configs may lack
/// the sliding-window fields altogether. When sliding-window attention is off the window is
/// set to the context length, because candle applies the window mask unconditionally.
pub fn normalise_config(mut config: Value) -> Value {
    let Some(obj) = config.as_object_mut() else {
        return config;
    };
    if let Some(rope) = obj.get("rope_parameters").cloned() {
        if !obj.contains_key("rope_theta") {
            if let Some(theta) = rope.get("rope_theta") {
                obj.insert("rope_theta".into(), theta.clone());
            }
        }
        let llama3 = rope.get("rope_type").and_then(Value::as_str) == Some("llama3");
        if llama3 && obj.get("rope_scaling").is_none_or(Value::is_null) {
            obj.insert("rope_scaling".into(), rope);
        }
    }
    if obj.get("model_type").and_then(Value::as_str) == Some("qwen2") {
        let max_pos = obj.get("max_position_embeddings").cloned();
        let layers = obj.get("num_hidden_layers").cloned();
        let sliding = obj
            .get("use_sliding_window")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        obj.insert("use_sliding_window".into(), Value::Bool(sliding));
        if !sliding || obj.get("sliding_window").is_none_or(Value::is_null) {
            if let Some(m) = max_pos {
                obj.insert("sliding_window".into(), m);
            }
        }
        if obj.get("max_window_layers").is_none_or(Value::is_null) {
            if let Some(l) = layers {
                obj.insert("max_window_layers".into(), l);
            }
        }
        if obj.get("hidden_act").is_none_or(Value::is_null) {
            obj.insert("hidden_act".into(), Value::String("silu".into()));
        }
        if obj.get("tie_word_embeddings").is_none_or(Value::is_null) {
            obj.insert("tie_word_embeddings".into(), Value::Bool(false));
        }
    }
    config
}

/// Token ids given by a config field that is either one id or a list of ids.
pub fn token_ids(field: Option<&Value>) -> Vec<u32> {
    match field {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

/// The text cut before the earliest stop string, and whether a stop string was found.
pub fn cut_at_stop<'t>(text: &'t str, stops: &[String]) -> (&'t str, bool) {
    let first = stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    match first {
        Some(at) => (&text[..at], true),
        None => (text, false),
    }
}

/// Load the checkpoint in `dir`; `template` overrides the detected chat template.
#[cfg(feature = "local")]
pub fn load(dir: &Path, template: Option<ChatTemplate>) -> Result<Box<dyn Generator>, GenError> {
    Ok(Box::new(crate::local_model::LocalGenerator::load(
        dir, template,
    )?))
}

/// Without the `local` feature there is no network code; say how to get it.
#[cfg(not(feature = "local"))]
pub fn load(dir: &Path, _template: Option<ChatTemplate>) -> Result<Box<dyn Generator>, GenError> {
    Err(GenError::fatal(format!(
        "cannot load {}: this build has no local LLM backend; rebuild with the cargo feature \
         `local` (e.g. cargo build --release -p sdvp-cli --features sdvp-generate/local), or \
         serve the model with an OpenAI-compatible server and use --generator openai",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt() -> Prompt {
        Prompt {
            system: "S".into(),
            user: "U\n".into(),
        }
    }

    #[test]
    fn templates_render_the_documented_layouts() {
        assert_eq!(
            ChatTemplate::ChatMl.render(&prompt()),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU\n<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            ChatTemplate::Llama3.render(&prompt()),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_eq!(ChatTemplate::Plain.render(&prompt()), "S\n\nU\n");
        assert!(ChatTemplate::Plain.add_special_tokens());
        assert!(!ChatTemplate::ChatMl.add_special_tokens());
    }

    #[test]
    fn template_detection() {
        let p = Path::new("tokenizer_config.json");
        let none = |_: &str| false;
        let qwen = json!({"chat_template": "{% for m in messages %}<|im_start|>{{m.role}}"});
        assert_eq!(
            detect_template(Some(&qwen), &none, p),
            Ok(ChatTemplate::ChatMl)
        );
        let named = json!({"chat_template": [
            {"name": "tool_use", "template": "<|im_start|>"},
            {"name": "default", "template": "<|start_header_id|>"}]});
        assert_eq!(
            detect_template(Some(&named), &none, p),
            Ok(ChatTemplate::Llama3)
        );
        let other = json!({"chat_template": "[INST] {{ m }} [/INST]"});
        let err = detect_template(Some(&other), &none, p).unwrap_err();
        assert!(err.contains("tokenizer_config.json") && err.contains("chat_template"));
        let has_header = |t: &str| t == "<|start_header_id|>";
        assert_eq!(
            detect_template(None, &has_header, p),
            Ok(ChatTemplate::Llama3)
        );
        assert_eq!(
            detect_template(Some(&json!({})), &none, p),
            Ok(ChatTemplate::Plain)
        );
    }

    #[test]
    fn config_normalisation_fills_what_candle_needs() {
        let c = normalise_config(json!({
            "model_type": "qwen2", "max_position_embeddings": 256, "num_hidden_layers": 2,
            "rope_parameters": {"rope_theta": 5e5, "rope_type": "default"},
            "sliding_window": null, "use_sliding_window": false
        }));
        assert_eq!(c["rope_theta"], json!(5e5));
        assert_eq!(c["sliding_window"], json!(256));
        assert_eq!(c["max_window_layers"], json!(2));
        assert_eq!(c["hidden_act"], json!("silu"));
        assert!(c.get("rope_scaling").is_none());
        // An explicit rope_theta wins; llama3 rope parameters become rope_scaling.
        let c = normalise_config(json!({
            "model_type": "llama", "rope_theta": 1.0,
            "rope_parameters": {"rope_theta": 2.0, "rope_type": "llama3", "factor": 8.0}
        }));
        assert_eq!(c["rope_theta"], json!(1.0));
        assert_eq!(c["rope_scaling"]["factor"], json!(8.0));
        assert!(c.get("sliding_window").is_none());
    }

    #[test]
    fn stop_strings_cut_at_the_earliest() {
        let stops = vec!["\n\n".to_string(), "Q:".to_string(), String::new()];
        assert_eq!(cut_at_stop("A=B()\nQ: x\n\n", &stops), ("A=B()\n", true));
        assert_eq!(cut_at_stop("A=B()", &stops), ("A=B()", false));
        assert_eq!(token_ids(Some(&json!([1, 2]))), vec![1, 2]);
        assert_eq!(token_ids(Some(&json!(7))), vec![7]);
        assert!(token_ids(None).is_empty());
    }

    #[cfg(not(feature = "local"))]
    #[test]
    fn without_the_feature_load_explains_itself() {
        let err = load(Path::new("/m"), None).err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("feature") && m.contains("/m")));
    }
}
