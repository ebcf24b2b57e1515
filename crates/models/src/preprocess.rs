//! Image processors of CLIP (resize the shortest side, centre crop) and OWL-ViT (resize to
//! a fixed square), matching transformers' PIL backend.
//!
//! The `image` crate's bicubic filter differs from PIL's (PIL widens the kernel when
//! downscaling, i.e. antialiases, uses `a = -0.5`, and rounds each pass to 8 bits with
//! fixed-point weights), and those differences reach a few grey levels. So the resampler
//! here re-implements PIL's separable convolution resize, horizontal pass first, in the
//! same fixed-point arithmetic; the result agrees with PIL to the grey level.

use std::path::Path;

use candle_core::{Device, Result, Tensor};
use image::RgbImage;
use serde_json::Value;

use crate::weights::{self, WeightsError};

/// How the processor resizes before cropping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// Scale so the shorter side has this length, keeping the aspect ratio (CLIP).
    ShortestEdge(usize),
    /// Scale to exactly this size, ignoring the aspect ratio (OWL-ViT).
    Exact { height: usize, width: usize },
}

/// A CLIP / OWL-ViT image processor.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageProcessor {
    pub resize: Option<Resize>,
    /// `(height, width)` of the centre crop.
    pub crop: Option<(usize, usize)>,
    pub rescale_factor: Option<f32>,
    /// `(mean, std)` per channel.
    pub normalize: Option<([f32; 3], [f32; 3])>,
}

/// OpenAI CLIP normalisation constants, also used by OWL-ViT.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_55, 0.261_302_6, 0.275_777_1];

impl ImageProcessor {
    /// `CLIPImageProcessor` with shortest edge and crop `size`.
    pub fn clip(size: usize) -> Self {
        Self {
            resize: Some(Resize::ShortestEdge(size)),
            crop: Some((size, size)),
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some((CLIP_MEAN, CLIP_STD)),
        }
    }

    /// `OwlViTImageProcessor` resizing to `size` x `size`.
    pub fn owlvit(size: usize) -> Self {
        Self {
            resize: Some(Resize::Exact {
                height: size,
                width: size,
            }),
            crop: None,
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some((CLIP_MEAN, CLIP_STD)),
        }
    }

    /// `BlipImageProcessor`: the same square bicubic resize and normalisation as OWL-ViT.
    pub fn blip(size: usize) -> Self {
        Self::owlvit(size)
    }

    /// Reads a HF `preprocessor_config.json`. Only bicubic resampling (`resample: 3`) is
    /// supported, since that is what CLIP and OWL-ViT use.
    pub fn from_file(path: &Path) -> std::result::Result<Self, WeightsError> {
        let v: Value = weights::load_config(path)?;
        let flag = |k: &str, default: bool| v.get(k).and_then(Value::as_bool).unwrap_or(default);
        if let Some(r) = v.get("resample") {
            if r.as_u64() != Some(3) {
                return Err(weights::config_error(
                    path,
                    "resample",
                    format!("only bicubic (3) is supported, got {r}"),
                ));
            }
        }
        let size = |k: &str| -> std::result::Result<Option<Value>, WeightsError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(Some(serde_json::json!({"height": n, "width": n}))),
                Some(o @ Value::Object(_)) => Ok(Some(o.clone())),
                Some(other) => Err(weights::config_error(
                    path,
                    k,
                    format!("expected an int or object, got {other}"),
                )),
            }
        };
        let dim = |o: &Value, k: &str, field: &str| -> std::result::Result<usize, WeightsError> {
            o.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| {
                    weights::config_error(path, &format!("{field}.{k}"), "expected an integer")
                })
        };
        let resize = match (flag("do_resize", true), size("size")?) {
            (false, _) | (true, None) => None,
            (true, Some(o)) if o.get("shortest_edge").is_some() => {
                Some(Resize::ShortestEdge(dim(&o, "shortest_edge", "size")?))
            }
            (true, Some(o)) => Some(Resize::Exact {
                height: dim(&o, "height", "size")?,
                width: dim(&o, "width", "size")?,
            }),
        };
        let crop = match (flag("do_center_crop", false), size("crop_size")?) {
            (true, Some(o)) => Some((
                dim(&o, "height", "crop_size")?,
                dim(&o, "width", "crop_size")?,
            )),
            _ => None,
        };
        let rescale_factor = if flag("do_rescale", true) {
            Some(
                v.get("rescale_factor")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0 / 255.0) as f32,
            )
        } else {
            None
        };
        let triple = |k: &str, d: [f32; 3]| -> std::result::Result<[f32; 3], WeightsError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(d),
                Some(Value::Array(a)) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x
                            .as_f64()
                            .ok_or_else(|| weights::config_error(path, k, "expected numbers"))?
                            as f32;
                    }
                    Ok(out)
                }
                Some(_) => Err(weights::config_error(
                    path,
                    k,
                    "expected a list of 3 numbers",
                )),
            }
        };
        let normalize = if flag("do_normalize", true) {
            Some((
                triple("image_mean", CLIP_MEAN)?,
                triple("image_std", CLIP_STD)?,
            ))
        } else {
            None
        };
        Ok(Self {
            resize,
            crop,
            rescale_factor,
            normalize,
        })
    }

    /// The resized and cropped 8-bit image.
    pub fn resize_and_crop(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (nh, nw) = match self.resize {
            None => (h, w),
            Some(Resize::Exact { height, width }) => (height, width),
            Some(Resize::ShortestEdge(s)) => {
                // transformers: the long side is int(s * long / short).
                if h <= w {
                    (s, (s as f64 * w as f64 / h as f64) as usize)
                } else {
                    ((s as f64 * h as f64 / w as f64) as usize, s)
                }
            }
        };
        let img = if (nh, nw) == (h, w) {
            img.clone()
        } else {
            resize_bicubic_pil(img, nw, nh)
        };
        match self.crop {
            Some((ch, cw)) if (ch, cw) != (nh, nw) => center_crop(&img, ch, cw),
            _ => img,
        }
    }

    /// Channel-first float pixels `[3, h, w]` (flattened) and `(h, w)`.
    pub fn pixels(&self, img: &RgbImage) -> (Vec<f32>, (usize, usize)) {
        let img = self.resize_and_crop(img);
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut out = vec![0f32; 3 * h * w];
        for (x, y, px) in img.enumerate_pixels() {
            for c in 0..3 {
                let mut v = px.0[c] as f32;
                if let Some(f) = self.rescale_factor {
                    v *= f;
                }
                if let Some((mean, std)) = self.normalize {
                    v = (v - mean[c]) / std[c];
                }
                out[c * h * w + y as usize * w + x as usize] = v;
            }
        }
        (out, (h, w))
    }

    /// `pixel_values` `[n, 3, h, w]` for a batch of images (all must end the same size).
    pub fn to_tensor(&self, images: &[RgbImage], device: &Device) -> Result<Tensor> {
        let mut data = Vec::new();
        let mut size = None;
        for (i, img) in images.iter().enumerate() {
            let (px, hw) = self.pixels(img);
            if *size.get_or_insert(hw) != hw {
                candle_core::bail!(
                    "pixel_values: image {i} processes to {hw:?}, not {size:?} like image 0"
                );
            }
            data.extend(px);
        }
        let (h, w) = size.unwrap_or((0, 0));
        Tensor::from_vec(data, (images.len(), 3, h, w), device)
    }
}

/// Centre crop with transformers' offsets (`(orig - crop) // 2`); a crop larger than the
/// image is zero-padded, as transformers does.
pub fn center_crop(img: &RgbImage, ch: usize, cw: usize) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let top = (h - ch as i64).div_euclid(2);
    let left = (w - cw as i64).div_euclid(2);
    RgbImage::from_fn(cw as u32, ch as u32, |x, y| {
        let (sx, sy) = (left + x as i64, top + y as i64);
        if sx >= 0 && sy >= 0 && sx < w && sy < h {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output index: first input index and fixed-point weights (PIL's scheme).
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5).floor() as i64).max(0) as usize;
            let xmax =
                (((center + support + 0.5).floor() as i64).min(in_size as i64) as usize).max(xmin);
            let w: Vec<f64> = (xmin..xmax)
                .map(|j| bicubic((j as f64 - center + 0.5) / filterscale))
                .collect();
            let total: f64 = w.iter().sum();
            let k = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { 0.0 };
                    let f = v * (1i64 << PRECISION_BITS) as f64;
                    if f < 0.0 {
                        (f - 0.5) as i64
                    } else {
                        (f + 0.5) as i64
                    }
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// PIL-compatible bicubic resize (`Image.resize(..., BICUBIC)`) of an RGB image.
pub fn resize_bicubic_pil(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    // Horizontal pass into an 8-bit [h, out_w] buffer, as PIL does.
    let tmp: Vec<u8> = if out_w == w {
        src.clone()
    } else {
        let cx = coefficients(w, out_w);
        let mut t = vec![0u8; h * out_w * 3];
        for y in 0..h {
            for (x, (x0, k)) in cx.iter().enumerate() {
                for c in 0..3 {
                    let mut acc = 1i64 << (PRECISION_BITS - 1);
                    for (j, kk) in k.iter().enumerate() {
                        acc += src[(y * w + x0 + j) * 3 + c] as i64 * kk;
                    }
                    t[(y * out_w + x) * 3 + c] = clip8(acc);
                }
            }
        }
        t
    };
    let out: Vec<u8> = if out_h == h {
        tmp
    } else {
        let cy = coefficients(h, out_h);
        let mut o = vec![0u8; out_h * out_w * 3];
        for (y, (y0, k)) in cy.iter().enumerate() {
            for x in 0..out_w {
                for c in 0..3 {
                    let mut acc = 1i64 << (PRECISION_BITS - 1);
                    for (j, kk) in k.iter().enumerate() {
                        acc += tmp[((y0 + j) * out_w + x) * 3 + c] as i64 * kk;
                    }
                    o[(y * out_w + x) * 3 + c] = clip8(acc);
                }
            }
        }
        o
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, out)
        .unwrap_or_else(|| RgbImage::new(out_w as u32, out_h as u32))
}
