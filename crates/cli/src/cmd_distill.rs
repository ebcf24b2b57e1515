//! `sdvp distill`: one SDVP step (mine → label → filter → fine-tune `vqa`, `detect`,
//! `verify` or `classify` with the forgetting guard) on one task; `sdvp_distill::step`
//! does the work.

use crate::cmd_world::usize_range;
use anyhow::bail;
use clap::Args;
use sdvp_core::{ModuleKind, ProgramStyle};
use sdvp_distill::finetune::VqaLoss;
use sdvp_distill::replay::FilterOptions;
use sdvp_distill::step::{run_step, StepReport, StepSpec};
use sdvp_eval::Programs;
use sdvp_train::runner::Schedule;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A float flag within `[lo, hi]`.
pub fn f64_range(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |s: &str| {
        let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
        if !(lo..=hi).contains(&v) {
            return Err(format!("{v} is outside [{lo}, {hi}]"));
        }
        Ok(v)
    }
}

#[derive(Args, Clone)]
pub struct DistillArgs {
    /// The world (only its train and val splits are read).
    #[arg(long)]
    pub data: PathBuf,
    /// The target task whose training programs are mined.
    #[arg(long)]
    pub task: String,
    /// The module to distil: vqa (the BLIP student learns the VQA teacher's answers),
    /// detect (the OWL-ViT student learns the teacher detector's boxes), verify or classify
    /// (the CLIP student learns the VQA teacher's answers to verify_property or
    /// best_text_match calls, which only Python programs make).
    #[arg(long, default_value = "vqa", value_parser = ["vqa", "detect", "verify", "classify"])]
    pub module: String,
    /// The pipeline before this step (as for `sdvp eval --modules`); a previous step's
    /// directory continues from it.
    #[arg(long, default_value = "embedded")]
    pub modules: String,
    /// The teacher's module set (default: the shipped teachers of --task).
    #[arg(long)]
    pub teacher: Option<String>,
    /// Programs to mine: `gold`; `embedded` (the shipped generator writes them, mistakes
    /// included, into OUT/programs/); or a programs file (what `sdvp generate` writes;
    /// then --style must be step or python).
    #[arg(long, default_value = "embedded")]
    pub programs: String,
    /// step, python or both.
    #[arg(long, default_value = "both")]
    pub style: String,
    /// Training questions mined per style (1 to 10 000 000).
    #[arg(long, default_value_t = 1000, value_parser = usize_range(1, 10_000_000))]
    pub mine_limit: usize,
    /// Drop labels whose teacher confidence is below this (0 to 1; default 0.5 for vqa, 0
    /// for detect, whose confidence is its top box's score and 0 when it found nothing).
    #[arg(long, value_parser = f64_range(0.0, 1.0))]
    pub min_confidence: Option<f64>,
    /// Keep labels without checking that, substituted into the program, they give the gold
    /// answer.
    #[arg(long)]
    pub no_consistency: bool,
    /// Keep duplicate requests (the same crop and question asked by several programs).
    #[arg(long)]
    pub no_dedup: bool,
    /// soft (the teacher's distribution; for verify its P(yes)) or hard (its top answer);
    /// detect always learns the teacher's boxes.
    #[arg(long, default_value = "soft")]
    pub labels: String,
    /// Weight of the forgetting guard (0 to 100; 0 switches it off).
    #[arg(long, default_value_t = 1.0, value_parser = f64_range(0.0, 100.0))]
    pub lambda: f64,
    /// Optimizer steps (1 to 1 000 000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub steps: u64,
    /// Kept sub-tasks per step (1 to 4096).
    #[arg(long, default_value_t = 16, value_parser = usize_range(1, 4096))]
    pub batch: usize,
    /// Replay items per step (1 to 4096).
    #[arg(long, default_value_t = 16, value_parser = usize_range(1, 4096))]
    pub replay_batch: usize,
    /// Learning rate (1e-7 to 0.1).
    #[arg(long, default_value_t = 5e-4, value_parser = f64_range(1e-7, 0.1))]
    pub lr: f64,
    /// Generic-corpus items in the replay pool (0 to 1 000 000).
    #[arg(long, default_value_t = 800, value_parser = usize_range(0, 1_000_000))]
    pub replay_items: usize,
    /// Earlier steps' directories, whose kept sub-tasks join the replay pool.
    #[arg(long)]
    pub earlier: Vec<PathBuf>,
    /// Validation items per set (task sub-tasks from val; generic corpus val; 1 to 100 000).
    #[arg(long, default_value_t = 300, value_parser = usize_range(1, 100_000))]
    pub val_items: usize,
    /// Validate and checkpoint every N steps (1 to 1 000 000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub eval_every: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Ship the best fine-tuned checkpoint even when the untouched student scores higher on
    /// val (by default the step's module set then keeps the untouched student).
    #[arg(long)]
    pub ship_trained: bool,
    /// Mine and label only part I of N of the training questions (deterministic by id)
    /// into OUT/shards/I-of-N, e.g. as cluster array jobs; the same command without
    /// --shard then merges the N parts and fine-tunes.
    #[arg(long)]
    pub shard: Option<String>,
    /// The step directory (module set, checkpoints, data); the same command resumes.
    #[arg(long)]
    pub out: PathBuf,
}

impl DistillArgs {
    pub fn spec(&self) -> anyhow::Result<StepSpec> {
        let module = match self.module.as_str() {
            "vqa" => ModuleKind::Vqa,
            "detect" => ModuleKind::Detect,
            "verify" => ModuleKind::Verify,
            "classify" => ModuleKind::Classify,
            other => bail!("--module {other}: expected vqa, detect, verify or classify"),
        };
        let min_confidence = self.min_confidence.unwrap_or(match module {
            ModuleKind::Detect => 0.0,
            _ => 0.5,
        });
        let hard = match self.labels.as_str() {
            "soft" => false,
            "hard" => true,
            other => bail!("--labels {other}: expected soft or hard"),
        };
        let styles: Vec<ProgramStyle> = match self.style.as_str() {
            "both" => vec![ProgramStyle::Step, ProgramStyle::Python],
            "step" => vec![ProgramStyle::Step],
            "python" => vec![ProgramStyle::Python],
            other => bail!("--style {other}: expected step, python or both"),
        };
        let programs: Vec<(ProgramStyle, Programs)> = match self.programs.as_str() {
            "embedded" => styles
                .iter()
                .map(|&s| {
                    let path = self
                        .out
                        .join("programs")
                        .join(format!("{}.jsonl", s.as_str()));
                    crate::programs::write_embedded_programs(
                        &self.data,
                        &self.task,
                        "train",
                        s,
                        self.mine_limit,
                        &path,
                    )?;
                    Ok((s, Programs::File(path)))
                })
                .collect::<anyhow::Result<_>>()?,
            other => {
                let p = Programs::parse(other);
                if p != Programs::Gold && styles.len() > 1 {
                    bail!(
                        "--programs FILE holds one style's programs: give --style step or python"
                    );
                }
                styles.iter().map(|&s| (s, p.clone())).collect()
            }
        };
        let teacher = self.teacher.clone().unwrap_or_else(|| {
            sdvp_modules::set::embedded_dir()
                .join("teachers")
                .join(&self.task)
                .display()
                .to_string()
        });
        Ok(StepSpec {
            world: self.data.clone(),
            task: self.task.clone(),
            module,
            modules: self.modules.clone(),
            teacher,
            programs: programs.into_iter().collect::<BTreeMap<_, _>>(),
            mine_limit: self.mine_limit,
            dedup: !self.no_dedup,
            filter: FilterOptions {
                min_confidence: min_confidence as f32,
                require_agreement: !self.no_consistency,
            },
            loss: VqaLoss {
                hard,
                lambda: self.lambda,
                replay_batch: self.replay_batch,
            },
            schedule: Schedule {
                steps: self.steps,
                batch: self.batch,
                lr: self.lr,
                warmup: (self.steps / 10).min(50),
                weight_decay: 0.01,
                clip_norm: 1.0,
                eval_every: self.eval_every,
                log_every: 10.min(self.steps),
            },
            seed: self.seed,
            replay_items: self.replay_items,
            earlier: self.earlier.clone(),
            val_items: self.val_items,
            ship_trained: self.ship_trained,
            out: self.out.clone(),
        })
    }
}

fn metrics(m: &[(String, f64)]) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per stage, for the terminal.
pub fn describe(r: &StepReport) -> String {
    let c = &r.counts;
    let reasons = c
        .reasons
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (before, best) = (metrics(&r.before), metrics(&r.training.best));
    let shipped = if r.replaced {
        ""
    } else {
        "; no checkpoint beat the untouched student on val, so the module set keeps it"
    };
    format!(
        "{task} {module}: {p} programs -> {m} sub-tasks, {l} labelled by the teacher; filter: {reasons}; \
         kept {k} (+{oov} outside the vocabulary); replay {rg} generic + {re} earlier; \
         before: {before}; best step {bs}: {best} ({s:.0} s){shipped}",
        task = r.task,
        module = r.module,
        p = c.programs,
        m = c.mined,
        l = c.labelled,
        k = c.kept,
        oov = c.out_of_vocabulary,
        rg = c.replay_generic,
        re = c.replay_earlier,
        bs = r.training.best_step,
        s = r.training.seconds,
    )
}

pub fn run(args: DistillArgs) -> anyhow::Result<i32> {
    let spec = args.spec()?;
    if let Some(s) = &args.shard {
        let shard = sdvp_eval::Shard::parse(s)?;
        let r = sdvp_distill::step::run_shard(&spec, shard)?;
        println!(
            "shard {}/{}: {} programs -> {} sub-tasks, {} labelled by the teacher -> {}",
            r.index,
            r.count,
            r.programs,
            r.mined,
            r.labelled,
            r.dir.display()
        );
        println!(
            "when all {} shards are done, run the same command without --shard to merge them \
             and fine-tune",
            r.count
        );
        return Ok(0);
    }
    let report = run_step(&spec)?;
    println!("{}", describe(&report));
    println!(
        "module set: {} (use --modules {})",
        args.out.join("modules.json").display(),
        args.out.display()
    );
    Ok(0)
}
