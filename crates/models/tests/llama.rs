//! The Llama of the program generator: every parameter learns, decoding with the KV cache
//! equals the full causal forward, grouped-query attention works, and the tokenizer
//! round-trips text exactly and trains deterministically.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_core::ProgramStyle;
use sdvp_models::llama::{Config, KvCache, Llama};
use sdvp_models::program_lm::{condition_ids, encode, train_tokenizer, Specials};
use sdvp_models::train::{seeded_init, NamedParams, ParamGrads};

fn config(kv_heads: usize) -> Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": kv_heads,
        "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "tie_word_embeddings": kv_heads == 4
    }))
    .expect("config")
}

fn model(kv_heads: usize) -> Result<(VarMap, Llama)> {
    let varmap = VarMap::new();
    let m = Llama::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &config(kv_heads),
    )?;
    seeded_init(&NamedParams::from_varmap(&varmap)?, 5, 0.3)?;
    Ok((varmap, m))
}

#[test]
fn every_parameter_gets_a_gradient() -> Result<()> {
    for kv in [4, 2] {
        let (varmap, m) = model(kv)?;
        let params = NamedParams::from_varmap(&varmap)?;
        // Norm scales start at one; perturb them so they are not a symmetric point.
        for (name, var) in params.iter().filter(|(n, _)| n.contains("norm")) {
            let n = var.elem_count();
            let v: Vec<f32> = (0..n).map(|i| 1.0 + 0.1 * (i as f32 % 3.0)).collect();
            var.set(&Tensor::from_vec(v, n, &Device::Cpu)?)
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        }
        let ids = Tensor::new(&[[1u32, 5, 9, 3, 7], [2, 8, 8, 4, 0]], &Device::Cpu)?;
        let logits = m.logits(&m.hidden(&ids, None)?)?;
        let target = Tensor::new(
            &[[3u32], [5], [9], [1], [2], [8], [4], [0], [6], [7]],
            &Device::Cpu,
        )?;
        let logp = sdvp_models::ops::log_softmax_last_dim(&logits.reshape((10, 40))?)?;
        let loss = logp.gather(&target, 1)?.sum_all()?.neg()?;
        let grads = ParamGrads::backward(&loss, &params)?;
        let mut missing = Vec::new();
        for (i, name) in params.names().iter().enumerate() {
            let ok = match grads.get(i) {
                Some(g) => g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
                None => false,
            };
            if !ok {
                missing.push(name.clone());
            }
        }
        // 2 layers x 9 tensors + embeddings + final norm (+ lm_head when untied).
        let want = 2 * 9 + 2 + usize::from(kv != 4);
        assert_eq!(params.len(), want, "kv {kv}: {:?}", params.names());
        assert!(missing.is_empty(), "kv {kv}: no gradient for {missing:?}");
    }
    Ok(())
}

#[test]
fn cached_decoding_equals_the_full_forward() -> Result<()> {
    for kv in [4, 2] {
        let (_, m) = model(kv)?;
        let ids = [1u32, 7, 3, 3, 9, 12, 30, 2];
        let full =
            m.logits(&m.hidden(&Tensor::new(&ids[..], &Device::Cpu)?.unsqueeze(0)?, None)?)?;
        let full = full.squeeze(0)?.to_vec2::<f32>()?;
        let mut cache = KvCache::default();
        // A prefix of three, then one token at a time.
        let mut rows = vec![m.next_logits(&ids[..3], &mut cache)?];
        for t in 3..ids.len() {
            rows.push(m.next_logits(&ids[t..t + 1], &mut cache)?);
        }
        assert_eq!(cache.len(), ids.len());
        let mut compared = 0;
        for (k, row) in rows.iter().enumerate() {
            let pos = k + 2;
            for (a, b) in row.iter().zip(&full[pos]) {
                assert!((a - b).abs() < 1e-4, "kv {kv} position {pos}: {a} vs {b}");
                compared += 1;
            }
        }
        assert_eq!(compared, 6 * 40);
    }
    Ok(())
}

#[test]
fn too_long_a_sequence_is_an_error_not_a_panic() -> Result<()> {
    let (_, m) = model(4)?;
    let ids = Tensor::zeros((1, 33), DType::U32, &Device::Cpu)?;
    let err = m.hidden(&ids, None).expect_err("error");
    assert!(err.to_string().contains("max_position_embeddings"), "{err}");
    Ok(())
}

#[test]
fn tokenizer_round_trips_and_trains_deterministically() -> Result<()> {
    let texts: Vec<String> = [
        "What color is the large red cube?",
        "BOX0=LOC(image=IMAGE,object='large red cube')\nIMAGE0=CROP(image=IMAGE,box=BOX0)",
        "def execute_command(image) -> str:\n    image_patch = ImagePatch(image)\n    return 'x'",
        "How many red cubes are there?",
    ]
    .iter()
    .cycle()
    .take(40)
    .map(|s| s.to_string())
    .collect();
    let a = train_tokenizer(texts.clone().into_iter(), 300).map_err(|e| anyhow::anyhow!("{e}"))?;
    let b = train_tokenizer(texts.clone().into_iter(), 300).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(
        a.to_string(false).map_err(|e| anyhow::anyhow!("{e}"))?,
        b.to_string(false).map_err(|e| anyhow::anyhow!("{e}"))?
    );
    for t in texts
        .iter()
        .take(4)
        .chain(std::iter::once(&"Ünïcode ✓ never seen".to_string()))
    {
        let ids = encode(&a, t).map_err(|e| anyhow::anyhow!(e))?;
        assert_eq!(
            &a.decode(&ids, false).map_err(|e| anyhow::anyhow!("{e}"))?,
            t
        );
    }
    // A phrase is the same tokens in a question and inside a program.
    let q = encode(&a, "What color is the large red cube?").map_err(|e| anyhow::anyhow!(e))?;
    let p = encode(&a, "object='large red cube')").map_err(|e| anyhow::anyhow!(e))?;
    let red = encode(&a, " red").map_err(|e| anyhow::anyhow!(e))?;
    assert_eq!(red.len(), 1);
    assert!(q.contains(&red[0]) && p.contains(&red[0]));
    let sp = Specials::of(&a).map_err(|e| anyhow::anyhow!(e))?;
    let c = condition_ids(&a, &sp, "nlvr-world", ProgramStyle::Python, "x")
        .map_err(|e| anyhow::anyhow!(e))?;
    assert_eq!(c.first(), Some(&sp.bos));
    assert_eq!(c.last(), Some(&sp.program));
    Ok(())
}

#[test]
fn batched_decoding_equals_one_sequence_at_a_time() -> Result<()> {
    use sdvp_models::program_lm::{greedy, greedy_batch, BatchDecoder};
    for kv in [4, 2] {
        let (_, m) = model(kv)?;
        let conditions = vec![vec![1u32, 7, 3], vec![2u32, 9, 9, 4, 11, 5], vec![6u32]];
        // Logits of the first step, row by row, against the unpadded forward.
        let d = BatchDecoder::new(&m, &conditions).map_err(anyhow::Error::msg)?;
        let mut compared = 0;
        for (c, row) in conditions.iter().zip(d.logits()) {
            let alone = m.next_logits(c, &mut KvCache::default())?;
            for (a, b) in row.iter().zip(&alone) {
                assert!((a - b).abs() < 1e-4, "kv {kv}: {a} vs {b}");
                compared += 1;
            }
        }
        assert_eq!(compared, 3 * 40);
        let batch = greedy_batch(&m, &conditions, 0, 12).map_err(anyhow::Error::msg)?;
        for (c, got) in conditions.iter().zip(&batch) {
            let want = greedy(&m, c, 0, 12).map_err(anyhow::Error::msg)?;
            assert_eq!(got, &want, "kv {kv}: condition {c:?}");
        }
        assert!(batch.iter().any(|b| !b.is_empty()));
    }
    Ok(())
}
