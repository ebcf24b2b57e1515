//! Contact sheets: a grid of examples with their images, question and answer.

use crate::example::{Example, ImageStore};
use crate::font::{draw_text, wrap, ADVANCE};
use image::{Rgb, RgbImage};

/// Cell layout: images side by side on top, wrapped text below.
const TEXT_LINES: u32 = 6;
const LINE_H: u32 = 9;

/// Draw up to `examples.len()` examples in a grid of `cols` columns.
pub fn contact_sheet(
    examples: &[Example],
    store: &ImageStore,
    cols: usize,
    thumb: u32,
) -> anyhow::Result<RgbImage> {
    let per_cell_imgs = examples
        .iter()
        .map(|e| e.images.len())
        .max()
        .unwrap_or(1)
        .max(1) as u32;
    let cell_w = (thumb * per_cell_imgs + 4 * (per_cell_imgs - 1)).max(thumb) + 8;
    let cell_h = thumb + 8 + TEXT_LINES * LINE_H + 4;
    let cols = cols.max(1);
    let rows = examples.len().div_ceil(cols).max(1);
    let mut sheet = RgbImage::from_pixel(
        cell_w * cols as u32,
        cell_h * rows as u32,
        Rgb([255, 255, 255]),
    );
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
