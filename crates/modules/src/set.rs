//! Module sets: which model answers which module kind.
//!
//! A module set is a directory with `modules.json` mapping kinds to checkpoints:
//!
//! ```json
//! { "vqa":      {"arch": "blip-vqa", "weights": "vqa", "options": {"decode": "greedy"}},
//!   "detect":   {"arch": "owlvit",   "weights": "detect", "options": {"threshold": 0.1}},
//!   "verify":   {"arch": "clip",     "weights": "clip"},
//!   "classify": {"arch": "clip",     "weights": "clip"},
//!   "depth":    {"arch": "dpt",      "weights": "depth"},
//!   "llm":      {"arch": "openai",   "options": {"base_url": "http://127.0.0.1:8000/v1", "model": "qwen"}} }
//! ```
//!
//! `weights` are relative to the set's directory (or absolute). On the command line
//! `--modules BASE[,KIND=ARCH:DIR | ,KIND=SET_DIR]...` picks a base — `oracle`,
//! `oracle:WORLD_DIR`, `scripted:FILE.json`, `embedded` or a module-set directory — and
//! replaces single kinds: `vqa=blip-vqa:RUN/step-1/vqa` swaps in a fine-tuned student,
//! `vqa=weights/teachers/gqa-world` takes `vqa` from the teacher's set,
//! `llm=openai:http://host:8000/v1:MODEL` or `llm=local:DIR` routes `llm_query`.
//! Checkpoints load lazily, on the first call of a kind, so a run pays only for the
//! models it uses.

use crate::blip_vqa::{BlipVqa, VqaOptions};
use crate::clip_match::{ClipMatch, ClipOptions};
use crate::common::{config_architecture, fail_all, Answers, Checkpoint};
use crate::images::{ImageCache, DEFAULT_CACHE_BYTES};
use crate::llm::LlmBackend;
use crate::owlvit_detect::{DetectOptions, OwlVitDetect};
use anyhow::{bail, Context};
use sdvp_core::module::Router;
use sdvp_core::scripted::ScriptedBackend;
use sdvp_core::{Backend, ModuleKind, Request};
use sdvp_data::ImageStore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The architectures a module set may name, and the kinds each answers.
pub const ARCHS: [(&str, &[ModuleKind]); 6] = [
    (
        "blip-vqa",
        &[ModuleKind::Vqa, ModuleKind::Verify, ModuleKind::Classify],
    ),
    ("owlvit", &[ModuleKind::Detect]),
    ("clip", &[ModuleKind::Verify, ModuleKind::Classify]),
    ("dpt", &[ModuleKind::Depth]),
    ("openai", &[ModuleKind::Llm]),
    ("local", &[ModuleKind::Llm]),
];

/// `config.json`'s `architectures[0]` and `model_type` of each checkpoint architecture.
fn hf_names(arch: &str) -> Option<(&'static str, &'static str)> {
    match arch {
        "blip-vqa" => Some(("BlipForQuestionAnswering", "blip")),
        "owlvit" => Some(("OwlViTForObjectDetection", "owlvit")),
        "clip" => Some(("CLIPModel", "clip")),
        "dpt" => Some(("DPTForDepthEstimation", "dpt")),
        _ => None,
    }
}

fn arch_name(arch: &str) -> anyhow::Result<&'static str> {
    ARCHS
        .iter()
        .find(|(a, _)| *a == arch)
        .map(|(a, _)| *a)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unknown architecture `{arch}` (known: {})",
                ARCHS.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(", ")
            )
        })
}

pub fn parse_kind(s: &str) -> anyhow::Result<ModuleKind> {
    ModuleKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unknown module kind `{s}` (known: {})",
                ModuleKind::ALL.map(|k| k.as_str()).join(", ")
            )
        })
}

/// One entry of `modules.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    pub arch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub options: serde_json::Value,
}

/// A resolved module: its kind, architecture, checkpoint directory and options.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub kind: ModuleKind,
    pub arch: &'static str,
    pub dir: Option<PathBuf>,
    pub options: serde_json::Value,
    /// sha256 of `model.safetensors` recorded by the weights' `manifest.json`, when the set
    /// lies in a folder that has one (the embedded weights do): loading checks it.
    pub sha256: Option<String>,
}

impl Resolved {
    fn new(
        kind: ModuleKind,
        arch: &str,
        dir: Option<PathBuf>,
        options: serde_json::Value,
        origin: &str,
    ) -> anyhow::Result<Self> {
        let arch = arch_name(arch).with_context(|| origin.to_string())?;
        let kinds = ARCHS
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        if !kinds.contains(&kind) {
            bail!(
                "{origin}: architecture `{arch}` cannot answer `{kind}` calls (it answers {})",
                kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some((hf_arch, model_type)) = hf_names(arch) {
            let Some(d) = &dir else {
                bail!("{origin}: `{arch}` needs a weights directory");
            };
            if !d.is_dir() {
                bail!("{origin}: weights directory {} does not exist", d.display());
            }
            let (found_arch, found_type) = config_architecture(d)
                .with_context(|| format!("{origin}: {arch} checkpoint {}", d.display()))?;
            let ok = match (&found_arch, &found_type) {
                (Some(a), _) => a == hf_arch,
                (None, Some(t)) => t == model_type,
                (None, None) => true,
            };
            if !ok {
                bail!(
                    "{origin}: {}/config.json describes `{}`, not {hf_arch} (`{arch}`)",
                    d.display(),
                    found_arch.or(found_type).unwrap_or_default()
                );
            }
        }
        Ok(Self {
            kind,
            arch,
            dir,
            options,
            sha256: None,
        })
    }
}

/// The `manifest.json` (schema `sdvp.weights/1`) of the weights folder holding `dir`: the
/// folder itself or one of its two parents. Returns the manifest's folder and its
/// `files` (path relative to that folder → sha256).
fn find_manifest(dir: &Path) -> Option<(PathBuf, BTreeMap<String, String>)> {
    let mut d = Some(dir);
    for _ in 0..3 {
        let here = d?;
        let p = here.join("manifest.json");
        if let Ok(text) = std::fs::read_to_string(&p) {
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            if v["schema"] == "sdvp.weights/1" {
                let files = v["files"]
                    .as_object()?
                    .iter()
                    .filter_map(|(k, h)| Some((k.clone(), h.as_str()?.to_string())))
                    .collect();
                return Some((here.to_path_buf(), files));
            }
        }
        d = here.parent();
    }
    None
}

/// A sha256 that does not match the manifest, or a file it lists that is gone: the error
/// names the file and how to rebuild it.
fn check_manifest(m: &Resolved, found: &Checkpoint) -> anyhow::Result<()> {
    if let Some(expected) = &m.sha256 {
        if *expected != found.sha256 {
            bail!(
                "{}/model.safetensors does not match its manifest (sha256 {} instead of {}): \
                 the file is truncated, corrupt or from another build; rebuild the weights \
                 with `sdvp train all` (or restore them with `git checkout -- weights`)",
                found.dir.display(),
                &found.sha256[..found.sha256.len().min(16)],
                &expected[..expected.len().min(16)]
            );
        }
    }
    Ok(())
}

/// Opens a checkpoint and checks it against the manifest when there is one.
fn open_checked(m: &Resolved, arch: &'static str, dir: &Path) -> anyhow::Result<Checkpoint> {
    let ck = Checkpoint::open(arch, dir).map_err(|e| {
        if m.sha256.is_some() {
            anyhow::anyhow!(
                "{e:#}; rebuild the weights with `sdvp train all` (or restore them with \
                 `git checkout -- weights`)"
            )
        } else {
            e
        }
    })?;
    check_manifest(m, &ck)?;
    Ok(ck)
}

/// Reads `DIR/modules.json`, resolving weights relative to `DIR`.
pub fn read_module_set(dir: &Path) -> anyhow::Result<Vec<Resolved>> {
    let path = dir.join("modules.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not a module set (no readable modules.json)",
            dir.display()
        )
    })?;
    let map: BTreeMap<String, ModuleEntry> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a module set", path.display()))?;
    let manifest = find_manifest(dir);
    let mut out = Vec::new();
    for (k, e) in map {
        let origin = format!("{} `{k}`", path.display());
        let kind = parse_kind(&k).with_context(|| origin.clone())?;
        let dir = e.weights.as_ref().map(|w| {
            let p = PathBuf::from(w);
            if p.is_absolute() {
                p
            } else {
                dir.join(p)
            }
        });
        let mut r = Resolved::new(kind, &e.arch, dir, e.options, &origin)?;
        if let (Some((root, files)), Some(d)) = (&manifest, &r.dir) {
            if let Ok(rel) = d.join("model.safetensors").strip_prefix(root) {
                r.sha256 = files.get(&rel.to_string_lossy().into_owned()).cloned();
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// Writes a module set (`modules.json` with weights relative to `dir` where they lie in it).
pub fn write_module_set(dir: &Path, modules: &[Resolved]) -> anyhow::Result<()> {
    let mut map = BTreeMap::new();
    for m in modules {
        let weights = m.dir.as_ref().map(|d| {
            d.strip_prefix(dir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| d.clone())
                .display()
                .to_string()
        });
        map.insert(
            m.kind.as_str().to_string(),
            ModuleEntry {
                arch: m.arch.to_string(),
                weights,
                options: m.options.clone(),
            },
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join("modules.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&map)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("modules.json"))
        .with_context(|| format!("writing {}/modules.json", dir.display()))?;
    Ok(())
}

/// Where the shipped embedded module set lives: `$SDVP_WEIGHTS`, else the checkout's
/// `weights/` (found from the binary's build location).
pub fn embedded_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SDVP_WEIGHTS").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights")
}

/// The base of a `--modules` spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// Answers from the world's scene graphs (`DIR/scenes.jsonl`).
    Oracle(PathBuf),
    /// Answers from a JSON script (tests, demos).
    Scripted(PathBuf),
    /// A module-set directory (`embedded` resolves to [`embedded_dir`]).
    Set(PathBuf),
}

/// A parsed `--modules` value.
#[derive(Debug, Clone, PartialEq)]
pub struct ModulesSpec {
    pub base: Base,
    /// Kinds replaced on top of the base, in order (a later one wins).
    pub overrides: Vec<Resolved>,
    pub text: String,
}

fn parse_base(s: &str, data: Option<&Path>) -> anyhow::Result<Base> {
    match s.split_once(':') {
        _ if s == "oracle" => match data {
            Some(d) => Ok(Base::Oracle(d.to_path_buf())),
            None => bail!("--modules oracle needs a dataset (--data) or oracle:WORLD_DIR"),
        },
        _ if s == "embedded" => {
            let d = embedded_dir();
            if !d.join("modules.json").is_file() {
                bail!(
                    "the embedded module set is not built: no {}/modules.json (build it with \
                     `sdvp train all`, or set SDVP_WEIGHTS to a module-set directory)",
                    d.display()
                );
            }
            Ok(Base::Set(d))
        }
        Some(("oracle", dir)) => Ok(Base::Oracle(PathBuf::from(dir))),
        Some(("scripted", file)) => Ok(Base::Scripted(PathBuf::from(file))),
        _ => {
            let d = PathBuf::from(s);
            if d.join("modules.json").is_file() {
                Ok(Base::Set(d))
            } else {
                bail!(
                    "unknown --modules base `{s}`: expected oracle, oracle:WORLD_DIR, \
                     scripted:FILE.json, embedded, or a module-set directory (with modules.json)"
                )
            }
        }
    }
}

fn parse_override(part: &str) -> anyhow::Result<Resolved> {
    let origin = format!("--modules `{part}`");
    let Some((kind, rest)) = part.split_once('=') else {
        bail!("{origin}: expected KIND=ARCH:DIR or KIND=SET_DIR");
    };
    let kind = parse_kind(kind.trim()).with_context(|| origin.clone())?;
    if let Some(spec) = rest.strip_prefix("openai:") {
        let _ = LlmBackend::openai(spec).with_context(|| origin.clone())?;
        let (url, model) = spec.rsplit_once(':').unwrap_or((spec, ""));
        return Resolved::new(
            kind,
            "openai",
            None,
            serde_json::json!({"base_url": url, "model": model}),
            &origin,
        );
    }
    if let Some((arch, dir)) = rest.split_once(':') {
        if ARCHS.iter().any(|(a, _)| *a == arch) {
            return Resolved::new(
                kind,
                arch,
                Some(PathBuf::from(dir)),
                serde_json::Value::Null,
                &origin,
            );
        }
    }
    let set = PathBuf::from(rest);
    let entries = read_module_set(&set).with_context(|| origin.clone())?;
    entries
        .into_iter()
        .find(|e| e.kind == kind)
        .ok_or_else(|| anyhow::anyhow!("{origin}: module set {} has no `{kind}`", set.display()))
}

impl ModulesSpec {
    /// Parses `BASE[,KIND=...]...`; a bare `oracle` means the scenes of `data`.
    pub fn parse(spec: &str, data: Option<&Path>) -> anyhow::Result<Self> {
        let mut parts = spec.split(',').map(str::trim);
        let base = parts.next().unwrap_or_default();
        if base.is_empty() || base.contains('=') {
            bail!("--modules `{spec}`: the first part must be a base (oracle, embedded, a module-set directory…)");
        }
        let base = parse_base(base, data)?;
        if let Base::Set(d) = &base {
            read_module_set(d)?;
        }
        let overrides = parts
            .filter(|p| !p.is_empty())
            .map(parse_override)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            base,
            overrides,
            text: spec.to_string(),
        })
    }

    /// Sets option `key` of the module answering `kind` calls, if it is of architecture
    /// `arch` (as an override on top of the spec); returns whether one was changed. Scoring
    /// uses it to read a thresholded detector's whole ranked output.
    pub fn set_option(
        &mut self,
        kind: ModuleKind,
        arch: &str,
        key: &str,
        value: serde_json::Value,
    ) -> anyhow::Result<bool> {
        let Some(mut r) = self.resolved()?.into_iter().find(|r| r.kind == kind) else {
            return Ok(false);
        };
        if r.arch != arch {
            return Ok(false);
        }
        if !r.options.is_object() {
            r.options = serde_json::Value::Object(Default::default());
        }
        r.options[key] = value;
        self.overrides.push(r);
        Ok(true)
    }

    /// Every module of the spec: the base set's entries with the overrides applied.
    pub fn resolved(&self) -> anyhow::Result<Vec<Resolved>> {
        let mut by_kind: BTreeMap<ModuleKind, Resolved> = BTreeMap::new();
        if let Base::Set(d) = &self.base {
            for r in read_module_set(d)? {
                by_kind.insert(r.kind, r);
            }
        }
        for o in &self.overrides {
            by_kind.insert(o.kind, o.clone());
        }
        Ok(by_kind.into_values().collect())
    }

    /// The backend: each neural kind routed to its (lazily loaded) model, the rest to the
    /// base (oracle or script) or to an error naming the missing kind.
    pub fn build(&self, images: ImageStore) -> anyhow::Result<Box<dyn Backend>> {
        let cache = Arc::new(ImageCache::new(images, DEFAULT_CACHE_BYTES));
        let mut router = Router::new();
        router = match &self.base {
            Base::Oracle(dir) => {
                let b = sdvp_data::oracle::OracleBackend::load(dir).with_context(|| {
                    format!("cannot load the world's scenes from {}", dir.display())
                })?;
                router.with_fallback(Box::new(b))
            }
            Base::Scripted(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read script {}", path.display()))?;
                let b = ScriptedBackend::from_json(&text)
                    .with_context(|| format!("{}: not a module script", path.display()))?;
                router.with_fallback(Box::new(b))
            }
            Base::Set(_) => router,
        };
        let mut shared: HashMap<String, Arc<LazyModule>> = HashMap::new();
        for r in self.resolved()? {
            let key = format!(
                "{}|{}|{}",
                r.arch,
                r.dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                r.options
            );
            let m = shared
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(LazyModule {
                        module: r.clone(),
                        images: cache.clone(),
                        loaded: OnceLock::new(),
                    })
                })
                .clone();
            router = router.route(r.kind, Box::new(m));
        }
        Ok(Box::new(router))
    }
}

/// A module whose checkpoint loads on first use; a load failure fails its calls, with the
/// reason, never the run.
pub struct LazyModule {
    module: Resolved,
    images: Arc<ImageCache>,
    loaded: OnceLock<Result<Box<dyn Backend>, String>>,
}

fn options<T: serde::de::DeserializeOwned + Default>(
    v: &serde_json::Value,
    arch: &str,
) -> anyhow::Result<T> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v.clone()).with_context(|| format!("options of `{arch}`"))
}

/// Loads a resolved module now.
pub fn load_module(m: &Resolved, images: Arc<ImageCache>) -> anyhow::Result<Box<dyn Backend>> {
    let dir = || {
        m.dir
            .clone()
            .ok_or_else(|| anyhow::anyhow!("`{}` needs a weights directory", m.arch))
    };
    Ok(match m.arch {
        "blip-vqa" => Box::new(BlipVqa::load(
            open_checked(m, "blip-vqa", &dir()?)?,
            options::<VqaOptions>(&m.options, m.arch)?,
            images,
        )?),
        "owlvit" => Box::new(OwlVitDetect::load(
            open_checked(m, "owlvit", &dir()?)?,
            options::<DetectOptions>(&m.options, m.arch)?,
            images,
        )?),
        "clip" => Box::new(ClipMatch::load(
            open_checked(m, "clip", &dir()?)?,
            options::<ClipOptions>(&m.options, m.arch)?,
            images,
        )?),
        "dpt" => Box::new(crate::dpt_depth::DptDepth::load(
            open_checked(m, "dpt", &dir()?)?,
            options::<crate::dpt_depth::DepthOptions>(&m.options, m.arch)?,
            images,
        )?),
        "openai" => {
            let url = m.options["base_url"].as_str().unwrap_or_default();
            let model = m.options["model"].as_str().unwrap_or_default();
            Box::new(LlmBackend::openai(&format!("{url}:{model}"))?)
        }
        "local" => Box::new(LlmBackend::local(&dir()?)?),
        other => bail!("architecture `{other}` has no backend in this build"),
    })
}

impl LazyModule {
    fn get(&self) -> Result<&dyn Backend, &str> {
        self.loaded
            .get_or_init(|| {
                load_module(&self.module, self.images.clone()).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map(|b| b.as_ref())
            .map_err(|e| e.as_str())
    }
}

impl Backend for LazyModule {
    fn name(&self) -> String {
        self.module.arch.to_string()
    }
    fn answered_by(&self, kind: ModuleKind) -> String {
        match self.get() {
            Ok(b) => b.answered_by(kind),
            Err(_) => format!("{} (failed to load)", self.module.arch),
        }
    }
    fn run_batch(&self, kind: ModuleKind, requests: &[Request]) -> Answers {
        match self.get() {
            // A vision model's batch is plain computation: on a pool worker its gemms and
            // kernels share the threads without waking them per op. The LLM backends stay
            // off the pool: `openai` waits on the network, and `local` was not measured there.
            Ok(b) if !matches!(self.module.arch, "openai" | "local") => {
                sdvp_kernels::on_pool(|| b.run_batch(kind, requests))
            }
            Ok(b) => b.run_batch(kind, requests),
            Err(e) => fail_all(kind, requests.len(), e),
        }
    }
}
