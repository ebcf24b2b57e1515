//! `sdvp train all`: rebuild every shipped checkpoint from scratch and lay out `weights/`.
//!
//! `weights/` holds each checkpoint in the Hugging Face layout, `modules.json` (the
//! embedded module set), `teachers/TASK/modules.json` (each task's teachers as a module
//! set) and `manifest.json`: per checkpoint the command that built it, its seed, data,
//! schedule, validation metrics, wall time and the sha256 of every file. Runs live in a
//! work folder and resume, so a killed `train all` continues where it stopped.

use crate::plan::{train_model, ModelName, TrainOptions, TEACHER_TASKS};
use crate::runner::{RunDir, RunSummary};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the embedded depth module reports (the DPT is trained to predict it).
pub const DEPTH_OUTPUT: &str = "depth";

/// The world every shipped model trains on.
#[derive(Debug, Clone, Copy)]
pub struct WorldSpec {
    pub seed: u64,
    pub scale: sdvp_data::world::Scale,
    pub size: u32,
}

impl Default for WorldSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            scale: sdvp_data::world::Scale::Small,
            size: 128,
        }
    }
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Generates the world into `dir` unless it is already there.
pub fn ensure_world(dir: &Path, spec: &WorldSpec) -> Result<()> {
    if dir.join("scenes.jsonl").is_file() {
        return Ok(());
    }
    let cfg = sdvp_data::world::WorldConfig {
        seed: spec.seed,
        scale: spec.scale,
        size: spec.size,
        threads: 0,
    };
    let bar = sdvp_core::progress::bar(0, "world");
    sdvp_data::world::generate_world(dir, &cfg, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// Copies the files of `from` into `to` (replaced whole: written beside it, then renamed).
fn install_dir(from: &Path, to: &Path) -> Result<()> {
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        to.file_name()
            .map_or_else(|| "x".into(), |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), tmp.join(e.file_name()))
                .with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    std::fs::rename(&tmp, to).with_context(|| format!("installing {}", to.display()))
}

fn write_json_atomic(v: &Value, path: &Path) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    sdvp_models::train::checkpoint::write_atomic(text.as_bytes(), path)
}

/// The answer vocabulary a VQA teacher ranks (its distribution is over these).
pub fn teacher_answers() -> Vec<String> {
    sdvp_data::scene::Attr::ALL
        .iter()
        .flat_map(|a| a.values().iter().map(|v| v.to_string()))
        .chain(["yes".to_string(), "no".to_string()])
        .collect()
}

fn metric(s: &RunSummary, key: &str) -> Option<f64> {
    s.best.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// The module sets of `weights/` from the trained models' summaries.
fn module_sets(summaries: &BTreeMap<String, RunSummary>) -> (Value, BTreeMap<String, Value>) {
    let threshold = |name: &str| {
        summaries
            .get(name)
            .and_then(|s| metric(s, "threshold"))
            .unwrap_or(0.1)
    };
    let mut embedded = json!({
        "vqa": {"arch": "blip-vqa", "weights": "vqa"},
        "detect": {"arch": "owlvit", "weights": "detect",
                    "options": {"threshold": threshold("detect")}},
        "verify": {"arch": "clip", "weights": "clip"},
        "classify": {"arch": "clip", "weights": "clip"},
    });
    if summaries.contains_key("depth") {
        embedded["depth"] = json!({"arch": "dpt", "weights": "depth",
                                   "options": {"output": DEPTH_OUTPUT}});
    }
    let mut teachers = BTreeMap::new();
    for t in TEACHER_TASKS {
        let name = format!("teacher-detect:{t}");
        teachers.insert(
            t.to_string(),
            json!({
                "vqa": {"arch": "blip-vqa", "weights": "vqa",
                        "options": {"answers": teacher_answers(),
                                    "min_crop_px": crate::blip::TEACHER_MIN_CROP_PX}},
                "detect": {"arch": "owlvit", "weights": "detect",
                           "options": {"threshold": threshold(&name)}},
            }),
        );
    }
    (embedded, teachers)
}

/// Trains every shipped model (resuming runs in `work`) and installs them into `weights`.
pub fn train_all(
    world: &WorldSpec,
    opts: &TrainOptions,
    work: &Path,
    weights: &Path,
    models: &[ModelName],
) -> Result<BTreeMap<String, RunSummary>> {
    let world_dir = work.join("world");
    ensure_world(&world_dir, world)?;
    let mut summaries = BTreeMap::new();
    let total = Instant::now();
    for m in models {
        let run = work.join("runs").join(m.as_string().replace(':', "-"));
        eprintln!("== {} ({})", m.as_string(), run.display());
        let s = train_model(m, &world_dir, &run, opts)?;
        eprintln!(
            "   {}: best at step {}, {}, {:.0} s",
            s.name,
            s.best_step,
            s.best
                .iter()
                .take(3)
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect::<Vec<_>>()
                .join(", "),
            s.seconds
        );
        summaries.insert(m.as_string(), s);
    }
    let mut manifest_models = BTreeMap::new();
    let mut files = BTreeMap::new();
    for m in models {
        let name = m.as_string();
        let run = RunDir::new(work.join("runs").join(name.replace(':', "-")));
        let dest = weights.join(m.weights_path());
        install_dir(&run.best(), &dest)?;
        let curves = weights.join("curves");
        std::fs::create_dir_all(&curves)?;
        if run.curves().is_file() {
            std::fs::copy(
                run.curves(),
                curves.join(format!("{}.png", name.replace(':', "-"))),
            )?;
        }
        let mut hashes = BTreeMap::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dest)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p
                .strip_prefix(weights)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            let h = sha256_file(&p)?;
            files.insert(rel.clone(), json!(h));
            hashes.insert(rel, h);
        }
        let s = &summaries[&name];
        manifest_models.insert(
            name.clone(),
            json!({
                "path": m.weights_path(),
                "command": format!("sdvp train {name} --data WORLD --out RUN --seed {}", opts.seed),
                "seed": opts.seed,
                "data": {"task": m.data_task(), "train": "train", "selection": "val"},
                "schedule": s.schedule,
                "params": s.params,
                "best_step": s.best_step,
                "metrics": s.best.iter().cloned().collect::<BTreeMap<String, f64>>(),
                "seconds": s.seconds,
                "warnings": s.warnings,
                "files": hashes,
            }),
        );
    }
    // Models not rebuilt this time keep what the existing manifest says of them.
    let mut all = summaries.clone();
    let previous: Value = std::fs::read_to_string(weights.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    if let Some(prev) = previous["models"].as_object() {
        for (name, entry) in prev {
            if summaries.contains_key(name) {
                continue;
            }
            for (f, h) in entry["files"].as_object().into_iter().flatten() {
                files.insert(f.clone(), h.clone());
            }
            manifest_models.insert(name.clone(), entry.clone());
            let best: Vec<(String, f64)> = entry["metrics"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect();
            let s: RunSummary = serde_json::from_value(json!({
                "name": name, "seed": entry["seed"], "schedule": entry["schedule"],
                "params": entry["params"], "best_step": entry["best_step"], "best": best,
                "seconds": entry["seconds"], "train_items": 0,
            }))
            .with_context(|| {
                format!("{}: entry {name}", weights.join("manifest.json").display())
            })?;
            all.insert(name.clone(), s);
        }
    }
    let (embedded, teachers) = module_sets(&all);
    write_json_atomic(&embedded, &weights.join("modules.json"))?;
    for (t, set) in &teachers {
        let dir = weights.join("teachers").join(t);
        std::fs::create_dir_all(&dir)?;
        write_json_atomic(set, &dir.join("modules.json"))?;
    }
    let manifest = json!({
        "schema": "sdvp.weights/1",
        "rebuild": "sdvp train all",
        "world": {"seed": world.seed, "scale": format!("{:?}", world.scale).to_lowercase(), "size": world.size},
        "models": manifest_models,
        "files": files,
        // The sum over every installed model's own run, also those kept from an earlier
        // `--only` install; this command's wall time is apart.
        "seconds_all_models": all.values().map(|s| s.seconds).sum::<f64>(),
        "seconds_this_run": total.elapsed().as_secs_f64(),
    });
    write_json_atomic(&manifest, &weights.join("manifest.json"))?;
    Ok(summaries)
}
