//! Which models the embedded default ships, on which data, with which schedule.
//!
//! Students train on `pretrain` (all domains) and select on `pretrain/val`; a teacher of
//! task T trains on T's training scenes only and selects on `T/val`. Test splits are never
//! opened ([`crate::scenes::SplitScenes::load`] refuses them).

use crate::blip::{BlipSize, BlipTrainee};
use crate::clip::{ClipSize, ClipTrainee};
use crate::depth::{DepthTarget, DepthTrainee, DptSize};
use crate::detect::{DetectTrainee, OwlSize};
use crate::generator::{
    program_examples, val_sample, with_framings, GeneratorSize, GeneratorTrainee,
};
use crate::runner::{train, RunDir, RunSummary, Schedule, Trainee};
use crate::scenes::SplitScenes;
use crate::subtask_items::{task_detect_items, task_vqa_items};
use crate::vocab::world_words;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The tasks that have teachers (the distillation targets).
pub const TEACHER_TASKS: [&str; 2] = ["gqa-world", "nlvr-world"];

/// A model the embedded default ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelName {
    /// The BLIP VQA student.
    Vqa,
    /// A task's BLIP VQA teacher.
    TeacherVqa(String),
    /// The OWL-ViT detector student.
    Detect,
    /// A task's OWL-ViT detect teacher.
    TeacherDetect(String),
    /// CLIP for verify and classify.
    Clip,
    /// The DPT depth model.
    Depth,
    /// The embedded program generator (a small Llama).
    Generator,
}

impl ModelName {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "vqa" => return Ok(Self::Vqa),
            "detect" => return Ok(Self::Detect),
            "clip" => return Ok(Self::Clip),
            "depth" => return Ok(Self::Depth),
            "generator" => return Ok(Self::Generator),
            _ => {}
        }
        for (prefix, make) in [
            ("teacher-vqa:", Self::TeacherVqa as fn(String) -> Self),
            ("teacher-detect:", Self::TeacherDetect),
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                if TEACHER_TASKS.contains(&rest) {
                    return Ok(make(rest.to_string()));
                }
            }
        }
        bail!(
            "unknown model {s:?}: expected vqa, detect, clip, depth, generator, teacher-vqa:TASK or teacher-detect:TASK (TASK one of {})",
            TEACHER_TASKS.join(", ")
        )
    }

    /// Every shipped model, in the order `sdvp train all` builds them.
    pub fn all() -> Vec<ModelName> {
        let mut v = vec![
            ModelName::Vqa,
            ModelName::Detect,
            ModelName::Clip,
            ModelName::Depth,
            ModelName::Generator,
        ];
        for t in TEACHER_TASKS {
            v.push(ModelName::TeacherVqa(t.to_string()));
            v.push(ModelName::TeacherDetect(t.to_string()));
        }
        v
    }

    /// The name as the command line writes it.
    pub fn as_string(&self) -> String {
        match self {
            Self::Vqa => "vqa".into(),
            Self::TeacherVqa(t) => format!("teacher-vqa:{t}"),
            Self::Detect => "detect".into(),
            Self::Clip => "clip".into(),
            Self::TeacherDetect(t) => format!("teacher-detect:{t}"),
            Self::Depth => "depth".into(),
            Self::Generator => "generator".into(),
        }
    }

    /// Where the model lives under `weights/`.
    pub fn weights_path(&self) -> PathBuf {
        match self {
            Self::Vqa => PathBuf::from("vqa"),
            Self::TeacherVqa(t) => PathBuf::from("teachers").join(t).join("vqa"),
            Self::Detect => PathBuf::from("detect"),
            Self::Clip => PathBuf::from("clip"),
            Self::TeacherDetect(t) => PathBuf::from("teachers").join(t).join("detect"),
            Self::Depth => PathBuf::from("depth"),
            Self::Generator => PathBuf::from("generator"),
        }
    }

    /// The task whose splits the model trains and selects on.
    pub fn data_task(&self) -> &str {
        match self {
            Self::Vqa | Self::Detect | Self::Clip | Self::Depth => "pretrain",
            Self::Generator => "gqa-world,nlvr-world,attr-world",
            Self::TeacherVqa(t) | Self::TeacherDetect(t) => t,
        }
    }

    /// The default schedule (sized for the 90-minute `train all` budget on 2 cores).
    pub fn schedule(&self) -> Schedule {
        match self {
            // lr measured on pretrain/val (3000 steps: 1e-3 0.57, 5e-4 0.64; 2e-3 and 4e-3
            // never learn the image); 2.5e-4 over 6000 steps gives 0.68.
            Self::Vqa => Schedule {
                steps: 6000,
                batch: 24,
                lr: 2.5e-4,
                warmup: 100,
                weight_decay: 0.05,
                clip_norm: 1.0,
                eval_every: 500,
                log_every: 20,
            },
            Self::Detect => Schedule {
                steps: 1000,
                batch: 16,
                lr: 1e-3,
                warmup: 100,
                weight_decay: 0.05,
                clip_norm: 1.0,
                eval_every: 200,
                log_every: 20,
            },
            // At 1e-3 a rebuild on the current corpus never learned colour (0.27 after 800
            // steps); 3e-4 reaches 0.99 by step 1600, where the val score levels off.
            Self::Clip => Schedule {
                steps: 1600,
                batch: 32,
                lr: 3e-4,
                warmup: 80,
                weight_decay: 0.05,
                clip_norm: 1.0,
                eval_every: 400,
                log_every: 20,
            },
            // gqa-world val AP@0.5 with 8 px patches: 0.174 after 3000 steps, 0.206 after
            // 6000, still rising.
            Self::TeacherDetect(_) => Schedule {
                steps: 10000,
                batch: 16,
                lr: 2e-3,
                warmup: 100,
                weight_decay: 0.05,
                clip_norm: 1.0,
                eval_every: 500,
                log_every: 20,
            },
            Self::TeacherVqa(_) => Schedule {
                steps: 5000,
                batch: 32,
                lr: 2e-3,
                warmup: 100,
                weight_decay: 0.05,
                clip_norm: 1.0,
                eval_every: 250,
                log_every: 20,
            },
            Self::Generator => Schedule {
                steps: 5000,
                batch: 32,
                lr: 3e-3,
                warmup: 100,
                weight_decay: 0.01,
                clip_norm: 1.0,
                eval_every: 500,
                log_every: 20,
            },
            Self::Depth => Schedule {
                steps: 300,
                batch: 16,
                lr: 2e-3,
                warmup: 30,
                weight_decay: 0.01,
                clip_norm: 1.0,
                eval_every: 50,
                log_every: 10,
            },
        }
    }
}

/// Overrides of the defaults, from the command line.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    pub seed: u64,
    pub steps: Option<u64>,
    pub batch: Option<usize>,
    pub lr: Option<f64>,
    /// At most this many training scenes (tests use a handful).
    pub max_scenes: Option<usize>,
    /// Validation items scored at each validation.
    pub val_items: usize,
    /// Validate and checkpoint every this many steps (default: the schedule's).
    pub eval_every: Option<u64>,
}

/// Trains `model` on the world in `world` into the run folder `run` (resuming it).
pub fn train_model(
    model: &ModelName,
    world: &Path,
    run: &Path,
    opts: &TrainOptions,
) -> Result<RunSummary> {
    let mut schedule = model.schedule();
    if let Some(s) = opts.steps {
        schedule.steps = s;
        schedule.eval_every = schedule.eval_every.min(s);
        schedule.warmup = schedule.warmup.min(s / 5);
    }
    if let Some(b) = opts.batch {
        schedule.batch = b;
    }
    if let Some(lr) = opts.lr {
        schedule.lr = lr;
    }
    if let Some(e) = opts.eval_every {
        schedule.eval_every = e;
    }
    let dir = RunDir::new(run);
    if *model == ModelName::Generator {
        let tasks = sdvp_models::program_lm::TASKS;
        let train_examples = with_framings(program_examples(world, &tasks, "train")?, opts.seed);
        let per_group = if opts.val_items == 0 {
            50
        } else {
            opts.val_items.div_ceil(6)
        };
        let val = val_sample(program_examples(world, &tasks, "val")?, per_group);
        let trainee = GeneratorTrainee::new(
            GeneratorSize::DEFAULT,
            &train_examples,
            val,
            &run.join("assets"),
            opts.seed,
        )?;
        return train(&model.as_string(), &trainee, &schedule, opts.seed, &dir);
    }
    let task = model.data_task();
    let train_scenes = SplitScenes::load(world, task, "train", opts.max_scenes)?;
    let val_scenes = SplitScenes::load(world, task, "val", opts.max_scenes)?;
    let words = world_words(world, &sdvp_data::world::TASKS)?;
    let val_items = if opts.val_items == 0 {
        600
    } else {
        opts.val_items
    };
    let trainee: Box<dyn Trainee> = match model {
        ModelName::Vqa | ModelName::TeacherVqa(_) => {
            let size = if *model == ModelName::Vqa {
                BlipSize::STUDENT
            } else {
                BlipSize::TEACHER
            };
            // A teacher learns its task's own sub-tasks too (train split; val for selection).
            let extra = match model {
                ModelName::TeacherVqa(t) => Some((
                    task_vqa_items(world, t, &train_scenes, &run.join("subtasks-train"))?,
                    task_vqa_items(world, t, &val_scenes, &run.join("subtasks-val"))?,
                )),
                _ => None,
            };
            let mut trainee = BlipTrainee::new(
                size,
                &words,
                &run.join("assets"),
                train_scenes,
                val_scenes,
                opts.seed,
                val_items,
            )?;
            if let Some((train, val)) = extra {
                trainee.add_items(train, val, val_items, opts.seed);
                trainee = trainee.with_min_crop(crate::blip::TEACHER_MIN_CROP_PX);
            }
            Box::new(trainee)
        }
        ModelName::Detect | ModelName::TeacherDetect(_) => {
            let size = if *model == ModelName::Detect {
                OwlSize::STUDENT
            } else {
                OwlSize::TEACHER
            };
            // A teacher learns its task's own detect calls too (train split; val for selection).
            let extra = match model {
                ModelName::TeacherDetect(t) => Some((
                    task_detect_items(world, t, &train_scenes, &run.join("subtasks-train"))?,
                    task_detect_items(world, t, &val_scenes, &run.join("subtasks-val"))?,
                )),
                _ => None,
            };
            let mut trainee = DetectTrainee::new(
                size,
                &words,
                &run.join("assets"),
                train_scenes,
                val_scenes,
                opts.seed,
                val_items.min(300),
            )?;
            if let Some((train, val)) = extra {
                trainee.add_items(train, val, val_items.min(300), opts.seed);
            }
            Box::new(trainee)
        }
        ModelName::Clip => Box::new(ClipTrainee::new(
            ClipSize::STUDENT,
            &words,
            &run.join("assets"),
            train_scenes,
            val_scenes,
            opts.seed,
            val_items,
        )?),
        ModelName::Generator => bail!("the generator is trained above"),
        ModelName::Depth => Box::new(DepthTrainee::new(
            DptSize::STUDENT,
            DepthTarget::Box,
            train_scenes,
            val_scenes,
            opts.seed,
            val_items,
        )?),
    };
    train(
        &model.as_string(),
        trainee.as_ref(),
        &schedule,
        opts.seed,
        &dir,
    )
}
