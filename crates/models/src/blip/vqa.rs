//! Answers and losses of BLIP VQA: greedy and beam generation, ranking of candidate
//! answers by log-likelihood, teacher-forced cross-entropy and the soft-target (KL)
//! loss used to distil a teacher's distribution over candidate answers.
//!
//! Generation starts from `[DEC]` (`text_config.bos_token_id`, transformers'
//! `decoder_start_token_id`) and stops at `[SEP]` (`sep_token_id`), as transformers'
//! `BlipForQuestionAnswering.generate`. One deliberate difference: transformers lets the
//! decoder attend to padded question positions during generation (it passes an all-ones
//! mask); here the question's padding mask is honoured, so a batched answer does not
//! depend on how long the other questions of the batch are.

use super::text::{padding_mask, TextCache};
use super::BlipForQuestionAnswering;
use crate::ops;
use candle_core::{DType, Result, Tensor, D};

/// Answers as BLIP's decoder reads them: `[n, t]` rows `[DEC] tokens… [SEP] pad…` (the
/// tokenizer's `[CLS] … [SEP]` with `[CLS]` replaced by `bos`, `text_config.bos_token_id`)
/// and their 1/0 mask.
pub fn answer_rows<S: AsRef<str>>(
    tokenizer: &crate::tokenize::TextTokenizer,
    answers: &[S],
    bos: u32,
    device: &candle_core::Device,
) -> anyhow::Result<(Tensor, Tensor)> {
    let (mut ids, mask) = tokenizer.encode_batch_vec(answers)?;
    for row in &mut ids {
        if let Some(first) = row.first_mut() {
            *first = bos;
        }
    }
    let (n, t) = (ids.len(), ids.first().map_or(0, Vec::len));
    Ok((
        Tensor::from_vec(ids.concat(), (n, t), device)?,
        Tensor::from_vec(mask.concat(), (n, t), device)?,
    ))
}

/// Per-position weights 1/0 of the targets `answer_ids[:, 1:]`.
fn target_weights(answer_ids: &Tensor, answer_mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, t) = answer_ids.dims2()?;
    match answer_mask {
        Some(m) => m.narrow(1, 1, t - 1)?.to_dtype(DType::F32),
        None => Tensor::ones((b, t - 1), DType::F32, answer_ids.device()),
    }
}

/// Log-probabilities `[b, t-1]` of each target token `answer_ids[:, 1:]` given the prefix,
/// and the smoothing term `-mean_v log p(v)` at each position.
fn target_logprobs(logits: &Tensor, answer_ids: &Tensor) -> Result<(Tensor, Tensor)> {
    let (_, t, _) = logits.dims3()?;
    let logp = ops::log_softmax_last_dim(&logits.narrow(1, 0, t - 1)?)?;
    let targets = answer_ids
        .narrow(1, 1, t - 1)?
        .to_dtype(DType::U32)?
        .unsqueeze(D::Minus1)?;
    let picked = logp
        .gather(&targets.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)?;
    let smooth = logp.mean(D::Minus1)?.neg()?;
    Ok((picked, smooth))
}

impl BlipForQuestionAnswering {
    /// Image → question encoding, the part shared by every inference and loss below.
    pub fn encode(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let image = self.vision_embeds(pixel_values)?;
        self.encode_question(&image, input_ids, attention_mask)
    }

    /// Teacher-forced cross-entropy of `answer_ids` (each row `[DEC] tokens… [SEP] pad…`):
    /// the logits at position `i` predict token `i + 1`; positions where `answer_mask` is
    /// 0 are ignored (the `-100` labels of transformers). The loss is the mean over kept
    /// positions of `(1 - ε) · nll + ε · (-mean log p)`, PyTorch's `label_smoothing = ε`.
    pub fn answer_loss(
        &self,
        question_embeds: &Tensor,
        question_mask: Option<&Tensor>,
        answer_ids: &Tensor,
        answer_mask: Option<&Tensor>,
        label_smoothing: f64,
    ) -> Result<Tensor> {
        let logits =
            self.decoder_logits(question_embeds, question_mask, answer_ids, answer_mask)?;
        let (picked, smooth) = target_logprobs(&logits, answer_ids)?;
        let w = target_weights(answer_ids, answer_mask)?;
        let per = ((picked.neg()? * (1.0 - label_smoothing))? + (smooth * label_smoothing)?)?;
        let total = w.sum_all()?.to_scalar::<f32>()?;
        if total <= 0.0 {
            candle_core::bail!("answer_loss: answer_mask keeps no target token");
        }
        (per * w)?.sum_all()? / f64::from(total)
    }

    /// Image + question + answer → cross-entropy, in one call.
    #[allow(clippy::too_many_arguments)]
    pub fn vqa_loss(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        answer_ids: &Tensor,
        answer_mask: Option<&Tensor>,
        label_smoothing: f64,
    ) -> Result<Tensor> {
        let q = self.encode(pixel_values, input_ids, attention_mask)?;
        self.answer_loss(&q, attention_mask, answer_ids, answer_mask, label_smoothing)
    }

    /// Log-probability of each row's own answer (`answer_ids` `[b, t]`, rows `[DEC]
    /// tokens… [SEP] pad…`, 1/0 `answer_mask`) given its question: the sum over kept
    /// tokens after `[DEC]`. Scores answers found by beam search or given by a teacher.
    pub fn answer_logprobs(
        &self,
        question_embeds: &Tensor,
        question_mask: Option<&Tensor>,
        answer_ids: &Tensor,
        answer_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let logits =
            self.decoder_logits(question_embeds, question_mask, answer_ids, answer_mask)?;
        let (picked, _) = target_logprobs(&logits, answer_ids)?;
        let w = target_weights(answer_ids, answer_mask)?;
        (picked * w)?.sum(D::Minus1)
    }

    /// Log-likelihood `[b, n]` of each of `n` candidate answers (`candidates` `[n, t]`,
    /// rows `[DEC] tokens… [SEP] pad…`, 1/0 `candidate_mask`) for each of `b` questions:
    /// the sum of the log-probabilities of every kept token after `[DEC]`, `[SEP]`
    /// included. Differentiable, so it also feeds [`soft_target_loss`].
    pub fn rank_answers(
        &self,
        question_embeds: &Tensor,
        question_mask: Option<&Tensor>,
        candidates: &Tensor,
        candidate_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, s, d) = question_embeds.dims3()?;
        let (n, t) = candidates.dims2()?;
        let q = question_embeds
            .unsqueeze(1)?
            .broadcast_as((b, n, s, d))?
            .reshape((b * n, s, d))?;
        let qm = question_mask
            .map(|m| m.unsqueeze(1)?.broadcast_as((b, n, s))?.reshape((b * n, s)))
            .transpose()?;
        let ids = candidates
            .unsqueeze(0)?
            .broadcast_as((b, n, t))?
            .reshape((b * n, t))?;
        let am = candidate_mask
            .map(|m| m.unsqueeze(0)?.broadcast_as((b, n, t))?.reshape((b * n, t)))
            .transpose()?;
        let logits = self.decoder_logits(&q, qm.as_ref(), &ids, am.as_ref())?;
        let (picked, _) = target_logprobs(&logits, &ids)?;
        let w = target_weights(&ids, am.as_ref())?;
        (picked * w)?.sum(D::Minus1)?.reshape((b, n))
    }

    /// Greedy decoding; returns each answer's token ids from `[DEC]` to `[SEP]` (or to
    /// `max_length` tokens in all).
    pub fn generate_greedy(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        max_length: usize,
    ) -> Result<Vec<Vec<u32>>> {
        Ok(self
            .generate_greedy_scored(pixel_values, input_ids, attention_mask, max_length)?
            .into_iter()
            .map(|(ids, _)| ids)
            .collect())
    }

    /// [`generate_greedy`](Self::generate_greedy) with each answer's log-probability (the
    /// sum over its generated tokens, `[SEP]` included), so `exp` of it is the answer's
    /// probability under the model.
    pub fn generate_greedy_scored(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        max_length: usize,
    ) -> Result<Vec<(Vec<u32>, f64)>> {
        let t = &self.config.text_config;
        let q = self.encode(pixel_values, input_ids, attention_mask)?;
        let enc_mask = attention_mask.map(padding_mask).transpose()?;
        let b = q.dim(0)?;
        let mut seqs: Vec<Vec<u32>> = vec![vec![t.bos_token_id]; b];
        let mut done = vec![false; b];
        let mut cache = TextCache::default();
        let mut logprob = vec![0f64; b];
        let mut next = Tensor::from_vec(vec![t.bos_token_id; b], (b, 1), q.device())?;
        while seqs[0].len() < max_length && done.iter().any(|d| !d) {
            let logits = self.decode_step(&q, enc_mask.as_ref(), &next, &mut cache)?;
            let best = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            let logp = ops::log_softmax_last_dim(&logits)?;
            let picked = logp
                .gather(
                    &Tensor::from_vec(best.clone(), (b, 1), q.device())?,
                    D::Minus1,
                )?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let mut step = Vec::with_capacity(b);
            for i in 0..b {
                // A finished answer is padded, as transformers does.
                let tok = if done[i] { t.pad_token_id } else { best[i] };
                if !done[i] {
                    logprob[i] += f64::from(picked[i]);
                }
                seqs[i].push(tok);
                done[i] |= tok == t.sep_token_id;
                step.push(tok);
            }
            next = Tensor::from_vec(step, (b, 1), q.device())?;
        }
        Ok(seqs
            .into_iter()
            .zip(logprob)
            .map(|(s, lp)| (trim_after_sep(s, t.sep_token_id), lp))
            .collect())
    }

    /// Decoder logits `[b, vocab]` of the first answer token (the step after `[DEC]`).
    pub fn first_step_logits(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let t = &self.config.text_config;
        let q = self.encode(pixel_values, input_ids, attention_mask)?;
        let enc_mask = attention_mask.map(padding_mask).transpose()?;
        let b = q.dim(0)?;
        let start = Tensor::from_vec(vec![t.bos_token_id; b], (b, 1), q.device())?;
        self.decode_step(&q, enc_mask.as_ref(), &start, &mut TextCache::default())
    }

    /// Beam search with transformers' defaults (`early_stopping=False`): `num_beams`
    /// hypotheses per question, finished ones scored by `sum log p / len^length_penalty`
    /// with `len` the generated tokens (`[SEP]` included, `[DEC]` not). Returns the best
    /// finished answer per question.
    pub fn generate_beam(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        num_beams: usize,
        max_length: usize,
        length_penalty: f64,
    ) -> Result<Vec<Vec<u32>>> {
        let t = &self.config.text_config;
        let k = num_beams.max(1);
        let q = self.encode(pixel_values, input_ids, attention_mask)?;
        let b = q.dim(0)?;
        let dev = q.device().clone();
        let rep: Vec<u32> = (0..b as u32)
            .flat_map(|i| std::iter::repeat_n(i, k))
            .collect();
        let rep = Tensor::from_vec(rep, b * k, &dev)?;
        let q = q.index_select(&rep, 0)?;
        let enc_mask = attention_mask
            .map(|m| padding_mask(&m.index_select(&rep, 0)?))
            .transpose()?;
        // Running beams: (tokens, cumulative log-prob). Only beam 0 is live at first,
        // so the first step does not pick k copies of the same token.
        let mut running: Vec<Vec<(Vec<u32>, f64)>> = (0..b)
            .map(|_| {
                (0..k)
                    .map(|j| (vec![t.bos_token_id], if j == 0 { 0.0 } else { -1e9 }))
                    .collect()
            })
            .collect();
        let mut finished: Vec<Vec<(f64, Vec<u32>)>> = vec![Vec::new(); b];
        let mut open = vec![true; b];
        let mut cache = TextCache::default();
        let mut cur_len = 1usize;
        let mut last = Tensor::from_vec(vec![t.bos_token_id; b * k], (b * k, 1), &dev)?;
        while cur_len < max_length {
            let logits = self.decode_step(&q, enc_mask.as_ref(), &last, &mut cache)?;
            let logp = ops::log_softmax_last_dim(&logits)?.to_vec2::<f32>()?;
            let hits_len = cur_len + 1 >= max_length;
            let mut parents = Vec::with_capacity(b * k);
            let mut tokens = Vec::with_capacity(b * k);
            for i in 0..b {
                let mut cands: Vec<(f64, usize, u32)> = Vec::with_capacity(k * logp[0].len());
                for j in 0..k {
                    let base = running[i][j].1;
                    for (v, lp) in logp[i * k + j].iter().enumerate() {
                        cands.push((base + f64::from(*lp), j, v as u32));
                    }
                }
                let keep = (2 * k).min(cands.len());
                cands.select_nth_unstable_by(keep - 1, |a, c| c.0.total_cmp(&a.0));
                cands.truncate(keep);
                cands.sort_by(|a, c| c.0.total_cmp(&a.0));
                let mut next: Vec<(Vec<u32>, f64, usize)> = Vec::with_capacity(k);
                for (rank, &(score, j, v)) in cands.iter().enumerate() {
                    let mut seq = running[i][j].0.clone();
                    seq.push(v);
                    if v == t.sep_token_id || hits_len {
                        if rank < k && open[i] {
                            let norm = score / ((cur_len + 1 - 1) as f64).powf(length_penalty);
                            finished[i].push((norm, seq));
                        }
                    } else if next.len() < k {
                        next.push((seq, score, j));
                    }
                }
                finished[i].sort_by(|a, c| c.0.total_cmp(&a.0));
                finished[i].truncate(k);
                while next.len() < k {
                    // Fewer than k live continuations: pad with dead beams.
                    let (seq, j) = (running[i][0].0.clone(), 0usize);
                    let mut s = seq;
                    s.push(t.pad_token_id);
                    next.push((s, -1e9, j));
                }
                for (seq, _, j) in next.iter() {
                    parents.push((i * k + j) as u32);
                    tokens.push(*seq.last().unwrap_or(&t.pad_token_id));
                }
                running[i] = next.into_iter().map(|(s, sc, _)| (s, sc)).collect();
            }
            cur_len += 1;
            for i in 0..b {
                if finished[i].len() == k {
                    let best_running =
                        running[i][0].1 / ((cur_len - 1) as f64).powf(length_penalty);
                    let worst = finished[i].last().map_or(f64::NEG_INFINITY, |f| f.0);
                    open[i] &= best_running > worst;
                }
            }
            if hits_len || open.iter().all(|o| !o) {
                break;
            }
            cache.reorder(&Tensor::from_vec(parents, b * k, &dev)?)?;
            last = Tensor::from_vec(tokens, (b * k, 1), &dev)?;
        }
        Ok((0..b)
            .map(|i| match finished[i].first() {
                Some((_, s)) => s.clone(),
                None => running[i][0].0.clone(),
            })
            .collect())
    }
}

fn trim_after_sep(mut s: Vec<u32>, sep: u32) -> Vec<u32> {
    if let Some(p) = s.iter().position(|&x| x == sep) {
        s.truncate(p + 1);
    }
    s
}

/// KL divergence `KL(teacher ‖ student)` between a teacher distribution over candidate
/// answers (`teacher_probs` `[b, n]`, rows summing to 1) and the student's distribution
/// `softmax(scores / temperature)` over the same candidates (`scores` from
/// [`BlipForQuestionAnswering::rank_answers`]); mean over the batch, multiplied by
/// `temperature²` as in Hinton et al. so gradients keep their scale across temperatures.
pub fn soft_target_loss(
    scores: &Tensor,
    teacher_probs: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    let (b, _) = scores.dims2()?;
    let log_student = ops::log_softmax_last_dim(&(scores / temperature)?)?;
    let p = teacher_probs.to_dtype(DType::F32)?;
    // p log p with 0 log 0 = 0: clamp inside the log only.
    let log_p = p.clamp(1e-30f32, 1f32)?.log()?;
    let kl = (p * (log_p - log_student)?)?.sum_all()?;
    (kl / b as f64)? * (temperature * temperature)
}
