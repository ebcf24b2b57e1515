//! Scene graphs and decoded images of one task's split: what every trainer samples from.
//!
//! Training reads a split's *scenes* (objects with attributes, boxes and depth), never its
//! questions' gold answers alone, as GQA's task-specific models train on GQA's scene
//! annotations. Which split is read is explicit in every call, and [`SplitScenes::load`]
//! refuses `test`: no trainer or model selection can read a test split.

use anyhow::{bail, Context, Result};
use image::RgbImage;
use sdvp_core::rng::SplitMix64;
use sdvp_core::BBox;
use sdvp_data::scene::Scene;
use std::io::BufRead;
use std::path::Path;

/// The splits a trainer may read.
pub const TRAINING_SPLITS: [&str; 2] = ["train", "val"];

/// Scenes of `task`/`split` with their pixels.
pub struct SplitScenes {
    pub task: String,
    pub split: String,
    pub scenes: Vec<Scene>,
    pub images: Vec<RgbImage>,
}

impl SplitScenes {
    /// Scenes whose id starts with `TASK-SPLIT-` in `world/scenes.jsonl`, with their images,
    /// at most `limit` of them (in file order). `split` must be `train` or `val`.
    pub fn load(world: &Path, task: &str, split: &str, limit: Option<usize>) -> Result<Self> {
        if !TRAINING_SPLITS.contains(&split) {
            bail!("training reads only the train and val splits, not {split:?}");
        }
        let path = world.join("scenes.jsonl");
        let file = std::fs::File::open(&path)
            .with_context(|| format!("opening {} (generate the world first)", path.display()))?;
        let prefix = format!("{task}-{split}-");
        let needle = format!("\"id\":\"{prefix}");
        let mut scenes = Vec::new();
        let mut images = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
            // Cheap prefix test before parsing: the id is the first field written.
            if !line.contains(&needle) {
                continue;
            }
            let scene: Scene = serde_json::from_str(&line)
                .with_context(|| format!("{}: line {}: not a scene", path.display(), i + 1))?;
            if !scene.id.starts_with(&prefix) {
                continue;
            }
            let img_path = world.join("images").join(format!("{}.png", scene.id));
            let img = image::open(&img_path)
                .with_context(|| format!("decoding {}", img_path.display()))?
                .to_rgb8();
            scenes.push(scene);
            images.push(img);
            if limit.is_some_and(|l| scenes.len() >= l) {
                break;
            }
        }
        if scenes.is_empty() {
            bail!("{} has no scene of {task}/{split}", path.display());
        }
        Ok(Self {
            task: task.to_string(),
            split: split.to_string(),
            scenes,
            images,
        })
    }

    pub fn len(&self) -> usize {
        self.scenes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.scenes.is_empty()
    }
}

/// A box as a detector might return it: `b` scaled by a random factor and shifted, clipped
/// to the image (so crop-level models learn from the boxes they will really be given).
pub fn jitter_box(b: BBox, w: u32, h: u32, amount: f32, rng: &mut SplitMix64) -> BBox {
    let (cx, cy) = b.center();
    let s = 1.0 + rng.range_f32(-0.5 * amount, amount);
    let bw = b.width() * s;
    let bh = b.height() * s;
    let cx = cx + rng.range_f32(-amount, amount) * b.width() * 0.5;
    let cy = cy + rng.range_f32(-amount, amount) * b.height() * 0.5;
    let x0 = (cx - bw / 2.0).clamp(0.0, w as f32 - 1.0);
    let y0 = (cy - bh / 2.0).clamp(0.0, h as f32 - 1.0);
    let x1 = (cx + bw / 2.0).clamp(x0 + 1.0, w as f32);
    let y1 = (cy + bh / 2.0).clamp(y0 + 1.0, h as f32);
    BBox::new(x0.floor(), y0.floor(), x1.ceil(), y1.ceil())
}

/// The pixels of `region` of `img`, as the module backends cut crops.
pub fn crop(img: &RgbImage, region: BBox) -> RgbImage {
    sdvp_data::example::crop_pixels(img, region)
}
