//! Finding source images and drawing regions and boxes on them.

use crate::ReportError;
use image::{Rgb, RgbImage};
use sdvp_core::{BBox, ImageRef};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// Finds the pixels of an [`ImageRef`]'s source, only ever inside the roots: a relative
/// source (no `..`) is tried under each root as `ROOT/SOURCE`, `ROOT/SOURCE.png` and
/// `ROOT/images/SOURCE.png` (the world's layout); an absolute one is used when it lies inside
/// a root. Traces come from anywhere, so a source never reaches other files on the machine.
pub struct ImageResolver {
    roots: Vec<PathBuf>,
    cache: HashMap<String, Option<RgbImage>>,
}

impl ImageResolver {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Self {
            roots,
            cache: HashMap::new(),
        }
    }

    fn candidates(&self, source: &str) -> Vec<PathBuf> {
        let path = Path::new(source);
        let plain = |p: &Path| {
            p.components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        };
        let mut out = Vec::new();
        if source.is_empty() {
            return out;
        }
        if path.is_absolute() {
            let inside = self.roots.iter().any(|r| {
                std::path::absolute(r)
                    .ok()
                    .and_then(|r| path.strip_prefix(r).ok().map(plain))
                    .unwrap_or(false)
            });
            if inside {
                out.push(path.to_path_buf());
            }
            return out;
        }
        if !plain(path) {
            return out;
        }
        for r in &self.roots {
            out.push(r.join(source));
            out.push(r.join(format!("{source}.png")));
            out.push(r.join("images").join(format!("{source}.png")));
        }
        out
    }

    /// The source image, or `None` when it cannot be found or decoded (the page says so).
    pub fn load(&mut self, source: &str) -> Option<&RgbImage> {
        if !self.cache.contains_key(source) {
            let img = self
                .candidates(source)
                .into_iter()
                .filter(|p| p.is_file())
                .find_map(|p| image::open(&p).ok())
                .map(|i| i.to_rgb8());
            self.cache.insert(source.to_string(), img);
        }
        self.cache.get(source).and_then(|o| o.as_ref())
    }
}

fn draw_rect(img: &mut RgbImage, b: &BBox, color: Rgb<u8>, thickness: u32) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let clamp_x = |v: f32| (v.max(0.0) as u32).min(w - 1);
    let clamp_y = |v: f32| (v.max(0.0) as u32).min(h - 1);
    let (x0, y0, x1, y1) = (
        clamp_x(b.x0),
        clamp_y(b.y0),
        clamp_x(b.x1 - 1.0),
        clamp_y(b.y1 - 1.0),
    );
    for t in 0..thickness {
        for x in x0..=x1 {
            for y in [y0.saturating_add(t).min(h - 1), y1.saturating_sub(t)] {
                img.put_pixel(x, y, color);
            }
        }
        for y in y0..=y1 {
            for x in [x0.saturating_add(t).min(w - 1), x1.saturating_sub(t)] {
                img.put_pixel(x, y, color);
            }
        }
    }
}

pub(crate) const REGION: Rgb<u8> = Rgb([40, 110, 255]);
pub(crate) const BOX: Rgb<u8> = Rgb([255, 60, 40]);

/// A picture of `image`: the whole source with the crop region (blue) and `boxes` (red)
/// drawn, and the crop itself when the image is a crop.
pub(crate) fn picture(
    resolver: &mut ImageResolver,
    image: &ImageRef,
    boxes: &[BBox],
) -> Option<(RgbImage, Option<RgbImage>)> {
    let src = resolver.load(&image.source)?.clone();
    let region = image.region();
    let mut annotated = src.clone();
    if !image.crops.is_empty() {
        draw_rect(&mut annotated, &region, REGION, 1);
    }
    for b in boxes {
        draw_rect(&mut annotated, b, BOX, 1);
    }
    let crop = if image.crops.is_empty() {
        None
    } else {
        let (w, h) = src.dimensions();
        let x0 = (region.x0.max(0.0) as u32).min(w.saturating_sub(1));
        let y0 = (region.y0.max(0.0) as u32).min(h.saturating_sub(1));
        let cw = ((region.x1.min(w as f32) - x0 as f32).max(1.0)) as u32;
        let ch = ((region.y1.min(h as f32) - y0 as f32).max(1.0)) as u32;
        Some(image::imageops::crop_imm(&src, x0, y0, cw.min(w - x0), ch.min(h - y0)).to_image())
    };
    Some((annotated, crop))
}

/// Write `img` as PNG under `dir` with a name derived from its content; returns the file name.
pub(crate) fn save_asset(dir: &Path, img: &RgbImage) -> Result<String, ReportError> {
    // FNV-1a over the pixels: identical pictures (the same input image in many steps) share a file.
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in img.dimensions().0.to_le_bytes().iter().chain(img.as_raw()) {
        hash ^= *b as u64;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    let name = format!("{hash:016x}.png");
    let path = dir.join(&name);
    if !path.exists() {
        img.save(&path).map_err(|e| ReportError::Encode {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(name)
}
