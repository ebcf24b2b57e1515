//! A loss-curve PNG drawn with plotters' bitmap backend.
//!
//! The workspace builds plotters without its `ttf` feature, so that no system font
//! library (fontconfig/freetype) is needed; the chart therefore carries no text: a frame,
//! light horizontal grid lines at quarter heights, the raw curve in light blue and a
//! moving average in dark blue. The value range goes to the metrics JSONL, not the image.

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// Draws `points` (`(step, loss)`) into a `width`×`height` PNG at `path`, written
/// through a temporary file and a rename so a reader never sees half an image.
pub fn plot_loss_curve(points: &[(f64, f64)], path: &Path, width: u32, height: u32) -> Result<()> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if finite.is_empty() {
        return Err(anyhow!("no finite point to plot into {}", path.display()));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in &finite {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let name = path
        .file_name()
        .map_or_else(|| "plot.png".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}.png", std::process::id()));
    draw(&finite, &tmp, width, height, (x0, x1, y0, y1))
        .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn draw(
    pts: &[(f64, f64)],
    file: &Path,
    w: u32,
    h: u32,
    (x0, x1, y0, y1): (f64, f64, f64, f64),
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(file, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let margin = 10i32;
    let (wi, hi) = (w as i32, h as i32);
    let to_px = |x: f64, y: f64| -> (i32, i32) {
        let px = margin + ((x - x0) / (x1 - x0) * f64::from(wi - 2 * margin)) as i32;
        let py = hi - margin - ((y - y0) / (y1 - y0) * f64::from(hi - 2 * margin)) as i32;
        (px, py)
    };
    let grid = RGBColor(225, 225, 225);
    for k in 1..4 {
        let y = hi - margin - (hi - 2 * margin) * k / 4;
        root.draw(&PathElement::new(vec![(margin, y), (wi - margin, y)], grid))?;
    }
    root.draw(&Rectangle::new(
        [(margin, margin), (wi - margin, hi - margin)],
        BLACK,
    ))?;
    let raw: Vec<(i32, i32)> = pts.iter().map(|&(x, y)| to_px(x, y)).collect();
    root.draw(&PathElement::new(raw, RGBColor(160, 190, 235)))?;
    let win = (pts.len() / 20).max(1);
    let smooth: Vec<(i32, i32)> = (0..pts.len())
        .map(|i| {
            let lo = i.saturating_sub(win - 1);
            let mean = pts[lo..=i].iter().map(|p| p.1).sum::<f64>() / (i - lo + 1) as f64;
            to_px(pts[i].0, mean)
        })
        .collect();
    root.draw(&PathElement::new(
        smooth,
        RGBColor(20, 60, 160).stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}
