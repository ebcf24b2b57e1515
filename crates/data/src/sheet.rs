//! Contact sheets: a grid of examples with their images, question and answer.

use crate::example::{Example, ImageStore};
use crate::font::{draw_text, wrap, ADVANCE};
use image::{Rgb, RgbImage};

/// Cell layout: images side by side on top, wrapped text below.
const TEXT_LINES: u32 = 6;
const LINE_H: u32 = 9;

/// Thumbnail sides [`contact_sheet`] accepts, in pixels.
pub const THUMB_RANGE: std::ops::RangeInclusive<u32> = 16..=1024;
/// The most pixels a sheet may have (about 200 MB of RGB).
pub const MAX_SHEET_PIXELS: u64 = 1 << 26;

/// Draw up to `examples.len()` examples in a grid of `cols` columns (at most as many as there
/// are examples). Refuses a thumbnail size outside [`THUMB_RANGE`] and a sheet over
/// [`MAX_SHEET_PIXELS`], before allocating it.
pub fn contact_sheet(
    examples: &[Example],
    store: &ImageStore,
    cols: usize,
    thumb: u32,
) -> anyhow::Result<RgbImage> {
    if !THUMB_RANGE.contains(&thumb) {
        anyhow::bail!(
            "thumbnail size {thumb}: expected {} to {} pixels",
            THUMB_RANGE.start(),
            THUMB_RANGE.end()
        );
    }
    let per_cell_imgs = examples
        .iter()
        .map(|e| e.images.len())
        .max()
        .unwrap_or(1)
        .max(1) as u64;
    let cols = cols.clamp(1, examples.len().max(1));
    let rows = examples.len().div_ceil(cols).max(1);
    let t = u64::from(thumb);
    let cell_w = t * per_cell_imgs + 4 * (per_cell_imgs - 1) + 8;
    let cell_h = t + 8 + u64::from(TEXT_LINES * LINE_H) + 4;
    let (width, height) = (
        cell_w.saturating_mul(cols as u64),
        cell_h.saturating_mul(rows as u64),
    );
    if width.saturating_mul(height) > MAX_SHEET_PIXELS {
        anyhow::bail!(
            "the sheet would be {width}x{height} pixels, over the limit of {MAX_SHEET_PIXELS}; show fewer examples or smaller thumbnails"
        );
    }
    // Both fit in u32: their product is at most 2^26.
    let (cell_w, cell_h) = (cell_w as u32, cell_h as u32);
    let mut sheet = RgbImage::from_pixel(width as u32, height as u32, Rgb([255, 255, 255]));
    let chars = ((cell_w - 8) / ADVANCE) as usize;
    for (k, ex) in examples.iter().enumerate() {
        let (cx, cy) = (
            (k % cols) as u32 * cell_w + 4,
            (k / cols) as u32 * cell_h + 4,
        );
        for (i, input) in ex.images.iter().enumerate() {
            let img = store.load(&input.image)?;
            let img =
                image::imageops::resize(&img, thumb, thumb, image::imageops::FilterType::Triangle);
            image::imageops::replace(
                &mut sheet,
                &img,
                (cx + i as u32 * (thumb + 4)) as i64,
                cy as i64,
            );
        }
        // Question in black, answer and type in red; both wrapped and cut to the cell.
        let mut answer = wrap(&format!("A: {} [{}]", ex.answer, ex.question_type), chars);
        answer.truncate(2);
        let mut lines: Vec<(String, [u8; 3])> = wrap(&ex.question, chars)
            .into_iter()
            .take(TEXT_LINES as usize - answer.len())
            .map(|l| (l, [0, 0, 0]))
            .collect();
        lines.extend(answer.into_iter().map(|l| (l, [180, 20, 20])));
        for (l, (line, color)) in lines.iter().enumerate() {
            draw_text(
                &mut sheet,
                cx,
                cy + thumb + 4 + l as u32 * LINE_H,
                line,
                *color,
            );
        }
    }
    Ok(sheet)
}
