//! BLIP VQA against transformers' outputs on a tiny random model
//! (fixtures from `tools/make_fixtures_blip.py`).

use anyhow::{anyhow, Context, Result};
use candle_core::{DType, Device, Tensor};
use sdvp_models::blip::BlipForQuestionAnswering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blip")
}

struct Fixture {
    model: BlipForQuestionAnswering,
    refs: HashMap<String, Tensor>,
    meta: serde_json::Value,
}

fn load(dir: &Path) -> Result<Fixture> {
    let model = BlipForQuestionAnswering::from_dir(dir, &Device::Cpu)?;
    let refs = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)?;
    let meta = serde_json::from_slice(&std::fs::read(dir.join("reference.json"))?)?;
    Ok(Fixture { model, refs, meta })
}

impl Fixture {
    fn t(&self, name: &str) -> Result<Tensor> {
        self.refs
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow!("reference has no {name}"))
    }
    fn ids(&self, name: &str) -> Result<Tensor> {
        Ok(self.t(name)?.to_dtype(DType::U32)?)
    }
}

fn max_diff(a: &Tensor, b: &Tensor, what: &str) -> Result<f32> {
    if a.dims() != b.dims() {
        return Err(anyhow!(
            "{what}: shape {:?} vs reference {:?}",
            a.dims(),
            b.dims()
        ));
    }
    let d = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok(d)
}

fn check(a: &Tensor, b: &Tensor, what: &str, tol: f32) -> Result<()> {
    let d = max_diff(a, b, what)?;
    assert!(d <= tol, "{what}: max abs diff {d} > {tol}");
    Ok(())
}

fn ids_of(v: &serde_json::Value, pad: u32, sep: u32) -> Vec<Vec<u32>> {
    v.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let mut out: Vec<u32> = r
                        .as_array()
                        .map(|x| {
                            x.iter()
                                .filter_map(|t| t.as_u64())
                                .map(|t| t as u32)
                                .collect()
                        })
                        .unwrap_or_default();
                    // transformers pads finished rows; our rows end at [SEP].
                    if let Some(p) = out.iter().position(|&t| t == sep) {
                        out.truncate(p + 1);
                    }
                    while out.len() > 1 && out.last() == Some(&pad) {
                        out.pop();
                    }
                    out
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn tokenizer_fixture_matches_python() -> Result<()> {
    let tok = tokenizers::Tokenizer::from_file(fixture_dir().join("tokenizer.json"))
        .map_err(|e| anyhow!("tokenizer.json: {e}"))?;
    let enc = tok
        .encode("what color is the cube?", true)
        .map_err(|e| anyhow!("{e}"))?;
    let f = load(&fixture_dir())?;
    let q = f.ids("q_ids")?.get(0)?.to_vec1::<u32>()?;
    assert_eq!(enc.get_ids(), &q[..enc.get_ids().len()]);
    Ok(())
}

#[test]
fn forward_outputs_match_transformers() -> Result<()> {
    let f = load(&fixture_dir())?;
    let m = &f.model;
    let px = f.t("pixel_values")?;
    let (q_ids, q_mask) = (f.ids("q_ids")?, f.t("q_mask")?);
    let (a_ids, a_mask) = (f.ids("a_ids")?, f.t("a_mask")?);
    let img = m.vision_embeds(&px)?;
    check(&img, &f.t("vision_embeds")?, "vision embeds", 1e-4)?;
    let q = m.encode_question(&img, &q_ids, Some(&q_mask))?;
    check(&q, &f.t("question_embeds")?, "question encoding", 1e-4)?;
    let logits = m.decoder_logits(&q, Some(&q_mask), &a_ids, Some(&a_mask))?;
    check(&logits, &f.t("decoder_logits")?, "decoder logits", 1e-4)?;
    let (c_ids, c_mask) = (f.ids("c_ids")?, f.t("c_mask")?);
    let scores = m.rank_answers(&q, Some(&q_mask), &c_ids, Some(&c_mask))?;
    check(&scores, &f.t("rank_scores")?, "ranking scores", 1e-4)?;
    let loss = m.answer_loss(&q, Some(&q_mask), &a_ids, Some(&a_mask), 0.1)?;
    check(
        &loss.reshape(1)?,
        &f.t("loss")?,
        "loss (label smoothing 0.1)",
        1e-5,
    )?;
    // transformers' own `labels=` loss (its label smoothing from the config).
    let ls = f.meta["hf_label_smoothing"].as_f64().unwrap_or(0.0);
    let hf_ids = f.ids("hf_loss_ids")?;
    let hf = m.answer_loss(&q, Some(&q_mask), &hf_ids, None, ls)?;
    check(
        &hf.reshape(1)?,
        &f.t("hf_loss")?,
        "transformers labels= loss",
        1e-5,
    )?;
    Ok(())
}

#[test]
fn gradients_match_transformers() -> Result<()> {
    let dir = fixture_dir();
    let config = sdvp_models::blip::Config::from_file(&dir.join("config.json"))?;
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let m = BlipForQuestionAnswering::new(vb, &config)?;
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?;
    sdvp_models::train::checkpoint::assign_varmap(
        &varmap,
        &weights,
        &dir.join("model.safetensors"),
    )?;
    let refs = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)?;
    let get = |n: &str| {
        refs.get(n)
            .cloned()
            .ok_or_else(|| anyhow!("reference has no {n}"))
    };
    let u = |n: &str| -> Result<Tensor> { Ok(get(n)?.to_dtype(DType::U32)?) };
    let q_mask = get("q_mask")?;
    let a_mask = get("a_mask")?;
    let loss = m.vqa_loss(
        &get("pixel_values")?,
        &u("q_ids")?,
        Some(&q_mask),
        &u("a_ids")?,
        Some(&a_mask),
        0.1,
    )?;
    let grads = loss.backward()?;
    let data = varmap.data().lock().map_err(|_| anyhow!("lock"))?;
    let mut checked = 0;
    for (name, reference) in refs.iter().filter(|(k, _)| k.starts_with("grad.")) {
        let pname = &name["grad.".len()..];
        let var = data
            .get(pname)
            .with_context(|| format!("no variable {pname}"))?;
        let g = grads
            .get(var.as_tensor())
            .with_context(|| format!("no gradient for {pname}"))?;
        check(g, reference, &format!("gradient of {pname}"), 1e-4)?;
        checked += 1;
    }
    assert_eq!(checked, 6);
    Ok(())
}

#[test]
fn generation_matches_transformers() -> Result<()> {
    let f = load(&fixture_dir())?;
    let t = &f.model.config().text_config;
    let px = f.t("pixel_values")?;
    let g_ids = f.ids("g_ids")?;
    let greedy = f.model.generate_greedy(&px, &g_ids, None, 8)?;
    assert_eq!(
        greedy,
        ids_of(&f.meta["greedy"], t.pad_token_id, t.sep_token_id),
        "greedy ids"
    );
    let beam = f.model.generate_beam(&px, &g_ids, None, 3, 8, 1.0)?;
    assert_eq!(
        beam,
        ids_of(&f.meta["beam"], t.pad_token_id, t.sep_token_id),
        "beam ids"
    );
    Ok(())
}

/// Real blip-vqa-base shapes; run `python3 tools/make_fixtures_blip.py --real-size` first.
#[test]
#[ignore = "needs tools/real_size/blip from make_fixtures_blip.py --real-size"]
fn real_size_parity() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/real_size/blip");
    let f = load(&dir)?;
    let m = &f.model;
    let px = f.t("pixel_values")?;
    let (q_ids, q_mask) = (f.ids("q_ids")?, f.t("q_mask")?);
    let img = m.vision_embeds(&px)?;
    let q = m.encode_question(&img, &q_ids, Some(&q_mask))?;
    let logits = m.decoder_logits(&q, Some(&q_mask), &f.ids("a_ids")?, Some(&f.t("a_mask")?))?;
    for (what, a, r) in [
        ("vision", &img, "vision_embeds"),
        ("question", &q, "question_embeds"),
        ("logits", &logits, "decoder_logits"),
    ] {
        let d = max_diff(a, &f.t(r)?, what)?;
        println!("real-size {what}: max abs diff {d:e}");
        assert!(d < 1e-3, "{what}: {d}");
    }
    Ok(())
}
