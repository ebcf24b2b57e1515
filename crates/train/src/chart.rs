//! Training curves as PNG with titles, axis labels, tick values and a legend, drawn with the
//! world's own bitmap font (no font file or system library needed).

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use sdvp_data::font::{draw_text, ADVANCE, GLYPH_H};
use std::path::Path;

/// One named curve of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: &str, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.to_string(),
            points: points
                .into_iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect(),
        }
    }
}

const PALETTE: [[u8; 3]; 6] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [148, 103, 189],
    [255, 127, 14],
    [23, 190, 207],
];

fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 || v == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1e}")
    }
}

/// Draws one panel with its axes, ticks, labels and legend at `(ox, oy)` of size `w`×`h`.
#[allow(clippy::too_many_arguments)]
fn panel(
    img: &mut RgbImage,
    (ox, oy, w, h): (u32, u32, u32, u32),
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    smooth: bool,
) {
    let black = [0, 0, 0];
    let grey = [225, 225, 225];
    draw_text(img, ox + 50, oy + 4, title, black);
    let (px0, py0) = (ox + 60, oy + 20);
    let (px1, py1) = (ox + w - 10, oy + h - 40);
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        draw_text(img, px0 + 10, py0 + 20, "no data", black);
        return;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let to = |x: f64, y: f64| -> (i64, i64) {
        let fx = (x - x0) / (x1 - x0);
        let fy = (y - y0) / (y1 - y0);
        (
            px0 as i64 + (fx * f64::from(px1 - px0)) as i64,
            py1 as i64 - (fy * f64::from(py1 - py0)) as i64,
        )
    };
    for k in 0..=4 {
        let fy = f64::from(k) / 4.0;
        let y = py1 as i64 - (fy * f64::from(py1 - py0)) as i64;
        line(img, (px0 as i64, y), (px1 as i64, y), grey);
        let label = fmt_tick(y0 + fy * (y1 - y0));
        let lx = px0.saturating_sub(4 + ADVANCE * label.len() as u32);
        draw_text(
            img,
            lx,
            (y as u32).saturating_sub(GLYPH_H / 2),
            &label,
            black,
        );
        let fx = f64::from(k) / 4.0;
        let x = px0 as i64 + (fx * f64::from(px1 - px0)) as i64;
        line(img, (x, py1 as i64), (x, py1 as i64 + 3), black);
        let xl = fmt_tick(x0 + fx * (x1 - x0));
        let half = ADVANCE * xl.len() as u32 / 2;
        draw_text(img, (x as u32).saturating_sub(half), py1 + 6, &xl, black);
    }
    line(
        img,
        (px0 as i64, py0 as i64),
        (px0 as i64, py1 as i64),
        black,
    );
    line(
        img,
        (px0 as i64, py1 as i64),
        (px1 as i64, py1 as i64),
        black,
    );
    let xl_w = ADVANCE * x_label.len() as u32;
    draw_text(img, (px0 + px1) / 2 - xl_w / 2, py1 + 20, x_label, black);
    draw_text(img, ox + 4, oy + 20 - GLYPH_H - 2, y_label, black);
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let light = [c[0] / 3 + 170, c[1] / 3 + 170, c[2] / 3 + 170];
        let raw: Vec<(i64, i64)> = s.points.iter().map(|&(x, y)| to(x, y)).collect();
        let draw_raw = if smooth { light } else { c };
        for p in raw.windows(2) {
            line(img, p[0], p[1], draw_raw);
        }
        if raw.len() == 1 {
            let (x, y) = raw[0];
            for d in -2..=2 {
                line(img, (x - 2, y + d), (x + 2, y + d), c);
            }
        }
        if smooth && s.points.len() > 2 {
            let win = (s.points.len() / 20).max(1);
            let sm: Vec<(i64, i64)> = (0..s.points.len())
                .map(|j| {
                    let lo = j.saturating_sub(win - 1);
                    let m = s.points[lo..=j].iter().map(|p| p.1).sum::<f64>() / (j - lo + 1) as f64;
                    to(s.points[j].0, m)
                })
                .collect();
            for p in sm.windows(2) {
                line(img, p[0], p[1], c);
                line(img, (p[0].0, p[0].1 + 1), (p[1].0, p[1].1 + 1), c);
            }
        }
        let ly = py0 + 4 + i as u32 * (GLYPH_H + 4);
        let lx = px1.saturating_sub(8 + ADVANCE * (s.name.len() as u32 + 3));
        line(
            img,
            (lx as i64, ly as i64 + 3),
            (lx as i64 + 12, ly as i64 + 3),
            c,
        );
        line(
            img,
            (lx as i64, ly as i64 + 4),
            (lx as i64 + 12, ly as i64 + 4),
            c,
        );
        draw_text(img, lx + 16, ly, &s.name, black);
    }
}

/// A PNG with the training loss on the left and validation metrics on the right.
pub fn two_panel_png(title: &str, loss: &Series, val: &[Series], out: &Path) -> Result<()> {
    let (w, h) = (960u32, 380u32);
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    draw_text(&mut img, 8, 6, title, [0, 0, 0]);
    panel(
        &mut img,
        (0, 20, w / 2, h - 20),
        "training loss (raw light, smoothed dark)",
        "optimizer step",
        "loss",
        std::slice::from_ref(loss),
        true,
    );
    panel(
        &mut img,
        (w / 2, 20, w / 2, h - 20),
        "validation (val split)",
        "optimizer step",
        "metric",
        val,
        false,
    );
    let tmp = out.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming into {}", out.display()))
}
