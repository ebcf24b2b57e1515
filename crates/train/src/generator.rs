//! The embedded program generator: a small Llama trained on the world's questions and their
//! gold programs, both styles, every program task (see `sdvp_models::program_lm`).
//!
//! Items are `(question, program)` pairs of the tasks' train splits; the loss is the
//! next-token cross-entropy over the program and its end token only. Selection reads the
//! val split: exact match of greedy programs to the gold ones, per task and style.

use crate::runner::Trainee;
use crate::scenes::TRAINING_SPLITS;
use crate::vocab::write_json;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use sdvp_core::rng::SplitMix64;
use sdvp_core::ProgramStyle;
use sdvp_data::tasks::heldout;
use sdvp_models::llama::{Config, Llama};
use sdvp_models::ops::log_softmax_last_dim;
use sdvp_models::program_lm::{self, condition_ids, Specials};
use sdvp_models::train::{seeded_init, NamedParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Sizes of the generator.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct GeneratorSize {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
}

impl GeneratorSize {
    pub const DEFAULT: GeneratorSize = GeneratorSize {
        hidden: 128,
        layers: 4,
        heads: 4,
        intermediate: 384,
        vocab: 1024,
        max_positions: 384,
    };
}

/// `config.json` of a `LlamaForCausalLM`.
pub fn config_json(s: &GeneratorSize, vocab: usize, sp: &Specials) -> serde_json::Value {
    json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": s.hidden,
        "intermediate_size": s.intermediate,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.heads,
        "hidden_act": "silu",
        "max_position_embeddings": s.max_positions,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true,
        "attention_bias": false,
        "mlp_bias": false,
        "initializer_range": 0.02,
        "bos_token_id": sp.bos,
        "eos_token_id": sp.eos,
        "pad_token_id": sp.pad,
        "torch_dtype": "float32"
    })
}

/// One question with its gold program in one style.
#[derive(Debug, Clone)]
pub struct ProgramExample {
    pub task: String,
    pub style: ProgramStyle,
    pub question: String,
    pub program: String,
}

/// The `(question, gold program)` pairs of `tasks`' `split` (train or val only).
pub fn program_examples(world: &Path, tasks: &[&str], split: &str) -> Result<Vec<ProgramExample>> {
    if !TRAINING_SPLITS.contains(&split) {
        bail!("the generator reads only the train and val splits, not {split:?}");
    }
    let mut out = Vec::new();
    for task in tasks {
        let report = sdvp_data::example::load_split(world, task, split)?;
        for ex in report.examples {
            for (style, program) in [
                (ProgramStyle::Step, &ex.gold_step),
                (ProgramStyle::Python, &ex.gold_python),
            ] {
                if let Some(p) = program {
                    out.push(ProgramExample {
                        task: task.to_string(),
                        style,
                        question: ex.question.clone(),
                        program: p.trim_end().to_string(),
                    });
                }
            }
        }
    }
    if out.is_empty() {
        bail!(
            "{}: no gold programs in the {split} splits of {tasks:?}",
            world.display()
        );
    }
    Ok(out)
}

/// Framings the training questions are also shown in, so the generator learns that words
/// around a question do not change its program. They are disjoint from the held-out
/// phrasings of `sdvp_data::tasks::heldout` (a test checks it): those measure
/// generalisation to wordings never trained on.
pub const TRAINING_FRAMES: [&str; 8] = [
    "Query: ",
    "Please answer: ",
    "Hey, ",
    "I wonder, ",
    "I would like to know: ",
    "One thing I want to know: ",
    "Answer the following: ",
    "My query: ",
];

/// Framings of a true/false statement, `(before, after)`, disjoint from the held-out ones.
pub const TRAINING_STATEMENT_FRAMES: [(&str, &str); 5] = [
    ("Statement: ", "."),
    ("Verify: ", "."),
    ("Correct or not: ", "."),
    ("Someone says ", ". Right?"),
    ("Please verify: ", "."),
];

/// Words a noise opening is drawn from: common words that carry nothing the world's
/// questions ask about (no attribute, shape, number, side or image words), so the generator
/// learns that an unfamiliar lead-in, whatever its words, does not change the program.
/// Fixed frames alone were not enough: on the held-out frame "Decide whether this holds: …"
/// the generator trained with them wrote no valid program, or a wrong one, for 66 of 127
/// statements (stop 22, `bench/generator.sh`). No word here, and no word of a fixed frame
/// beyond the world's own question words, is a word of a held-out phrasing (a test checks
/// it), so what the held-out split measures stays unseen.
pub const NOISE_WORDS: [&str; 40] = [
    "please",
    "now",
    "so",
    "okay",
    "well",
    "hey",
    "friend",
    "quickly",
    "answer",
    "hello",
    "thanks",
    "my",
    "I",
    "want",
    "to",
    "know",
    "alright",
    "if",
    "honestly",
    "really",
    "kindly",
    "then",
    "just",
    "consider",
    "following",
    "statement",
    "sentence",
    "think",
    "about",
    "maybe",
    "anyway",
    "let",
    "us",
    "figure",
    "out",
    "find",
    "help",
    "need",
    "simply",
    "carefully",
];

/// Endings of a framed statement (after its body, full stop removed).
const NOISE_STATEMENT_ENDS: [&str; 5] = [".", "?", ". Right?", ". Is that so?", ", yes or no?"];

/// 1 to 4 noise words, the first capitalised, then ": " or ", ".
fn noise_opening(rng: &mut SplitMix64) -> String {
    let n = 1 + rng.below(4);
    let words: Vec<&str> = (0..n)
        .map(|_| NOISE_WORDS[rng.below(NOISE_WORDS.len())])
        .collect();
    let mut text = words.join(" ");
    if let Some(first) = text.get(..1).map(str::to_uppercase) {
        text.replace_range(..1, &first);
    }
    text.push_str(if rng.chance(0.5) { ": " } else { ", " });
    text
}

/// `question` in a random training framing (from `rng`): one of the fixed frames, or a
/// noise opening (and, for a statement, a noise ending).
pub fn training_framing(question: &str, statement: bool, rng: &mut SplitMix64) -> String {
    if rng.chance(0.5) {
        return heldout::framed(
            question,
            statement,
            &TRAINING_FRAMES,
            &TRAINING_STATEMENT_FRAMES,
            rng,
        );
    }
    let opening = noise_opening(rng);
    let text = question.trim();
    match heldout::statement_body(text, statement) {
        Some(body) => {
            let end = NOISE_STATEMENT_ENDS[rng.below(NOISE_STATEMENT_ENDS.len())];
            format!("{opening}{}{end}", heldout::lower_first(body))
        }
        None => format!("{opening}{}", heldout::lower_first(text)),
    }
}

/// `examples` and, for each, the same program with its question in `FRAMED_COPIES` training
/// framings.
pub fn with_framings(examples: Vec<ProgramExample>, seed: u64) -> Vec<ProgramExample> {
    let mut rng = SplitMix64::derive_named(seed, &["generator-framings"], 0);
    let mut out = Vec::with_capacity(examples.len() * (1 + FRAMED_COPIES));
    for e in examples {
        out.push(e.clone());
        for _ in 0..FRAMED_COPIES {
            out.push(ProgramExample {
                question: training_framing(&e.question, e.task == "nlvr-world", &mut rng),
                ..e.clone()
            });
        }
    }
    out
}

/// Framed copies of each training question.
pub const FRAMED_COPIES: usize = 2;

/// Batches are split into this many groups of similar length.
const LENGTH_GROUPS: usize = 3;

/// A tokenised training sequence: condition, program and end token.
struct Sequence {
    ids: Vec<u32>,
    /// Tokens of the condition (the loss starts after them).
    condition: usize,
}

pub struct GeneratorTrainee {
    varmap: VarMap,
    model: Llama,
    config_json: serde_json::Value,
    tokenizer: Tokenizer,
    specials: Specials,
    assets: PathBuf,
    train: Vec<Sequence>,
    val: Vec<ProgramExample>,
    /// Tokens of the longest training program, plus a margin: validation decodes no longer.
    max_program_tokens: usize,
    device: Device,
}

fn encode_all(
    tok: &Tokenizer,
    sp: &Specials,
    examples: &[ProgramExample],
    max: usize,
) -> Result<Vec<Sequence>> {
    let mut out = Vec::with_capacity(examples.len());
    for e in examples {
        let mut ids =
            condition_ids(tok, sp, &e.task, e.style, &e.question).map_err(|m| anyhow!(m))?;
        let condition = ids.len();
        ids.extend(program_lm::encode(tok, &e.program).map_err(|m| anyhow!(m))?);
        ids.push(sp.eos);
        if ids.len() > max {
            bail!(
                "a {} program of {} has {} tokens, more than max_position_embeddings {max}",
                e.style,
                e.task,
                ids.len()
            );
        }
        out.push(Sequence { ids, condition });
    }
    Ok(out)
}

impl GeneratorTrainee {
    /// A fresh model; the tokenizer is trained on `train`'s texts into `assets` once and
    /// read back on resume.
    pub fn new(
        size: GeneratorSize,
        train: &[ProgramExample],
        val: Vec<ProgramExample>,
        assets: &Path,
        seed: u64,
    ) -> Result<Self> {
        std::fs::create_dir_all(assets)
            .with_context(|| format!("creating {}", assets.display()))?;
        let tok_path = assets.join("tokenizer.json");
        if !tok_path.is_file() {
            let mut texts: Vec<String> = Vec::new();
            for e in train {
                texts.push(e.question.clone());
                texts.push(e.program.clone());
            }
            let tok = program_lm::train_tokenizer(texts.into_iter(), size.vocab)
                .map_err(|e| anyhow!("training the tokenizer: {e}"))?;
            let tmp = assets.join("tokenizer.json.tmp");
            tok.save(&tmp, true)
                .map_err(|e| anyhow!("writing {}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, &tok_path)?;
        }
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| anyhow!("reading {}: {e}", tok_path.display()))?;
        let specials = Specials::of(&tokenizer).map_err(|e| anyhow!(e))?;
        let vocab = tokenizer.get_vocab_size(true);
        let config_json = config_json(&size, vocab, &specials);
        write_json(
            &json!({
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": program_lm::BOS,
                "eos_token": program_lm::EOS,
                "pad_token": program_lm::PAD,
                "model_max_length": size.max_positions,
                "clean_up_tokenization_spaces": false
            }),
            &assets.join("tokenizer_config.json"),
        )?;
        let config: Config = serde_json::from_value(config_json.clone())?;
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let model = Llama::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &device),
            &config,
        )?;
        let params = NamedParams::from_varmap(&varmap)?;
        seeded_init(&params, seed, 0.02)?;
        if let Some(norm) = params.get("model.norm.weight") {
            norm.set(&Tensor::ones(size.hidden, DType::F32, &device)?)?;
        }
        let train = encode_all(&tokenizer, &specials, train, size.max_positions)?;
        let max_program_tokens = train
            .iter()
            .map(|s| s.ids.len() - s.condition)
            .max()
            .unwrap_or(0)
            + 16;
        Ok(Self {
            varmap,
            model,
            config_json,
            tokenizer,
            specials,
            assets: assets.to_path_buf(),
            train,
            val,
            max_program_tokens,
            device,
        })
    }

    /// The summed log-likelihood of the program tokens (and end tokens) of `seqs`.
    fn token_log_likelihood(&self, seqs: &[&Sequence]) -> Result<Tensor> {
        let len = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(2);
        let (b, t) = (seqs.len(), len - 1);
        let mut input = Vec::with_capacity(b * t);
        let mut target = Vec::with_capacity(b * t);
        let mut weight = Vec::with_capacity(b * t);
        for s in seqs {
            for j in 0..t {
                input.push(s.ids.get(j).copied().unwrap_or(self.specials.pad));
                target.push(s.ids.get(j + 1).copied().unwrap_or(self.specials.pad));
                // Position j predicts token j + 1: train on program tokens and the end.
                let on = j + 1 >= s.condition && j + 1 < s.ids.len();
                weight.push(if on { 1f32 } else { 0.0 });
            }
        }
        let input = Tensor::from_vec(input, (b, t), &self.device)?;
        let target = Tensor::from_vec(target, (b * t, 1), &self.device)?;
        let weight = Tensor::from_vec(weight, (b * t, 1), &self.device)?;
        let logits = self.model.logits(&self.model.hidden(&input, None)?)?;
        let v = logits.dim(D::Minus1)?;
        let logp = log_softmax_last_dim(&logits.reshape((b * t, v))?)?;
        Ok((logp.gather(&target, 1)? * &weight)?.sum_all()?)
    }
}

impl Trainee for GeneratorTrainee {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn loss(&self, batch: &[usize], _rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)> {
        let mut seqs: Vec<&Sequence> = batch.iter().map(|&i| &self.train[i]).collect();
        // Step programs are a third as long as Python ones: padding one batch to the
        // longest would spend most of the step on padding, so the batch runs as length
        // groups (the loss is still the mean over all the batch's program tokens).
        seqs.sort_by_key(|s| s.ids.len());
        let groups: Vec<&[&Sequence]> = seqs.chunks(seqs.len().div_ceil(LENGTH_GROUPS)).collect();
        let n: usize = seqs
            .iter()
            .map(|s| s.ids.len().saturating_sub(s.condition))
            .sum();
        let n = n.max(1) as f64;
        let mut total: Option<Tensor> = None;
        for g in groups {
            let part = self.token_log_likelihood(g)?;
            total = Some(match total {
                Some(t) => (t + part)?,
                None => part,
            });
        }
        let total = total.ok_or_else(|| anyhow!("an empty batch"))?;
        Ok(((total * (-1.0 / n))?, vec![("tokens".into(), n)]))
    }
    fn validate(&self) -> Result<Vec<(String, f64)>> {
        let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut exact = 0usize;
        for chunk in self.val.chunks(32) {
            let conds = chunk
                .iter()
                .map(|e| {
                    condition_ids(
                        &self.tokenizer,
                        &self.specials,
                        &e.task,
                        e.style,
                        &e.question,
                    )
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| anyhow!(m))?;
            let outs = program_lm::greedy_batch(
                &self.model,
                &conds,
                self.specials.eos,
                self.max_program_tokens,
            )
            .map_err(|m| anyhow!(m))?;
            for (e, ids) in chunk.iter().zip(outs) {
                let got = self
                    .tokenizer
                    .decode(&ids, true)
                    .map_err(|e| anyhow!("decoding: {e}"))?;
                let ok = got.trim_end() == e.program.trim_end();
                exact += ok as usize;
                let k = by
                    .entry(format!("exact_{}_{}", e.task, e.style))
                    .or_default();
                k.0 += ok as usize;
                k.1 += 1;
            }
        }
        let mut out = vec![(
            "exact".to_string(),
            exact as f64 / self.val.len().max(1) as f64,
        )];
        for (k, (c, n)) in by {
            out.push((k, c as f64 / n.max(1) as f64));
        }
        Ok(out)
    }
    fn export(&self, dir: &Path) -> Result<()> {
        write_json(&self.config_json, &dir.join("config.json"))?;
        crate::export::write_weights(&self.varmap, dir)?;
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(self.assets.join(f), dir.join(f))
                .with_context(|| format!("copying {f} into {}", dir.display()))?;
        }
        write_json(
            &json!({"_from_model_config": true, "bos_token_id": self.specials.bos,
                    "eos_token_id": self.specials.eos, "pad_token_id": self.specials.pad,
                    "do_sample": false}),
            &dir.join("generation_config.json"),
        )
    }
}

/// Validation examples: the first `per_group` of each (task, style) of `val`, in file order.
pub fn val_sample(val: Vec<ProgramExample>, per_group: usize) -> Vec<ProgramExample> {
    let mut counts: BTreeMap<(String, ProgramStyle), usize> = BTreeMap::new();
    val.into_iter()
        .filter(|e| {
            let c = counts.entry((e.task.clone(), e.style)).or_default();
            *c += 1;
            *c <= per_group
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdvp_data::tasks::heldout::{
        is_heldout_phrasing, restructurings, QUESTION_FRAMES, STATEMENT_FRAMES,
    };

    #[test]
    fn training_framings_are_never_held_out_phrasings() {
        let mut rng = SplitMix64::new(1);
        let mut checked = 0;
        for q in [
            "What color is the large red cube?",
            "How many stars are there?",
            "Is there a cube?",
            "The left image contains exactly two cubes.",
            "Name the shape of the red object.",
        ] {
            for _ in 0..40 {
                let f = training_framing(q, q.starts_with("The left"), &mut rng);
                assert!(!is_heldout_phrasing(&f), "{f}");
                checked += 1;
            }
        }
        // Noise openings: no held-out frame's words in sequence, anywhere.
        for _ in 0..2000 {
            let f = training_framing("Both images contain a cube.", true, &mut rng);
            for h in QUESTION_FRAMES
                .iter()
                .copied()
                .chain(STATEMENT_FRAMES.iter().map(|(b, _)| *b))
            {
                let h = h.trim_end().trim_end_matches([',', ':']);
                assert!(!f.to_lowercase().contains(&h.to_lowercase()), "{f} has {h}");
            }
            checked += 1;
        }
        let words = |t: &str| -> Vec<String> {
            t.split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect()
        };
        let held_out: std::collections::BTreeSet<String> = QUESTION_FRAMES
            .iter()
            .chain(STATEMENT_FRAMES.iter().flat_map(|(b, a)| [b, a]))
            .copied()
            .chain(restructurings())
            .flat_map(words)
            .collect();
        assert!(held_out.len() > 30, "{held_out:?}");
        for w in NOISE_WORDS {
            assert!(
                !held_out.contains(&w.to_lowercase()),
                "noise word {w} is held out"
            );
            checked += 1;
        }
        // Words the world's own question templates use ("Do you see …?", "Are there any …?",
        // "Is the … red or blue?", "The left image contains …") may appear in both.
        const TEMPLATE_WORDS: [&str; 14] = [
            "the", "is", "are", "there", "or", "do", "you", "see", "any", "how", "many", "what",
            "which", "image",
        ];
        for f in TRAINING_FRAMES
            .iter()
            .chain(TRAINING_STATEMENT_FRAMES.iter().flat_map(|(b, a)| [b, a]))
        {
            for w in words(f) {
                let shared = held_out.contains(&w) && !TEMPLATE_WORDS.contains(&w.as_str());
                assert!(!shared, "training frame {f:?} has the held-out word {w}");
            }
        }
        for f in TRAINING_FRAMES {
            assert!(QUESTION_FRAMES
                .iter()
                .all(|h| !h.starts_with(f) && !f.starts_with(h)));
        }
        for (b, _) in TRAINING_STATEMENT_FRAMES {
            assert!(STATEMENT_FRAMES
                .iter()
                .all(|(h, _)| !h.starts_with(b) && !b.starts_with(h)));
        }
        assert_eq!(checked, 2240);
    }
}
