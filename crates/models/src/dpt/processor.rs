//! `DPTImageProcessor` (PIL backend), reusing the PIL-exact bicubic resize.

use std::path::Path;

use candle_core::{Device, Result, Tensor};
use image::RgbImage;
use serde_json::Value;

use crate::preprocess;
use crate::weights::{self, WeightsError};

/// `DPTImageProcessor` (PIL backend): resize (optionally keeping the aspect ratio and
/// rounding to a multiple), rescale, normalise, optionally centre-pad with zeros to a
/// multiple of `size_divisor`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageProcessor {
    /// Target `(height, width)`; `None` when `do_resize` is false.
    pub size: Option<(usize, usize)>,
    pub keep_aspect_ratio: bool,
    pub ensure_multiple_of: usize,
    pub rescale_factor: Option<f32>,
    /// `(mean, std)` per channel.
    pub normalize: Option<([f32; 3], [f32; 3])>,
    /// `size_divisor` when `do_pad` is set.
    pub pad_to_multiple: Option<usize>,
}

impl Default for ImageProcessor {
    /// transformers' defaults (384 x 384, mean and std 0.5).
    fn default() -> Self {
        Self {
            size: Some((384, 384)),
            keep_aspect_ratio: false,
            ensure_multiple_of: 1,
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some(([0.5; 3], [0.5; 3])),
            pad_to_multiple: None,
        }
    }
}

impl ImageProcessor {
    /// Reads `preprocessor_config.json`. Only bicubic resampling (`resample: 3`, the
    /// default) is supported.
    pub fn from_file(path: &Path) -> std::result::Result<Self, WeightsError> {
        let v: Value = weights::load_config(path)?;
        let d = Self::default();
        let cerr = |f: &str, m: String| weights::config_error(path, f, m);
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        let flag = |k: &str, default: bool| -> std::result::Result<bool, WeightsError> {
            match get(k) {
                None => Ok(default),
                Some(x) => x
                    .as_bool()
                    .ok_or_else(|| cerr(k, format!("expected a bool, got {x}"))),
            }
        };
        let uint = |k: &str, x: &Value| -> std::result::Result<usize, WeightsError> {
            x.as_u64()
                .map(|u| u as usize)
                .ok_or_else(|| cerr(k, format!("expected an integer, got {x}")))
        };
        if let Some(r) = get("resample") {
            if r.as_u64() != Some(3) {
                return Err(cerr(
                    "resample",
                    format!("only bicubic (3) is supported, got {r}"),
                ));
            }
        }
        let size = if flag("do_resize", true)? {
            Some(match get("size") {
                None => (384, 384),
                Some(n @ Value::Number(_)) => {
                    let s = uint("size", n)?;
                    (s, s)
                }
                Some(o) => {
                    let dim = |k: &str| match o.get(k) {
                        Some(x) => uint(&format!("size.{k}"), x),
                        None => Err(cerr(
                            &format!("size.{k}"),
                            format!("DPT needs `height` and `width`, got {o}"),
                        )),
                    };
                    (dim("height")?, dim("width")?)
                }
            })
        } else {
            None
        };
        let ensure_multiple_of = match get("ensure_multiple_of") {
            None => 1,
            Some(x) => uint("ensure_multiple_of", x)?,
        };
        if ensure_multiple_of == 0 {
            return Err(cerr("ensure_multiple_of", "must be at least 1".into()));
        }
        let rescale_factor = if flag("do_rescale", true)? {
            Some(match get("rescale_factor") {
                None => 1.0 / 255.0,
                Some(x) => x
                    .as_f64()
                    .ok_or_else(|| cerr("rescale_factor", format!("expected a number, got {x}")))?
                    as f32,
            })
        } else {
            None
        };
        let triple = |k: &str| -> std::result::Result<[f32; 3], WeightsError> {
            let mut out = [0.5f32; 3];
            match get(k) {
                None => {}
                Some(Value::Number(n)) => out = [n.as_f64().unwrap_or(0.5) as f32; 3],
                Some(Value::Array(a)) if a.len() == 3 => {
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x
                            .as_f64()
                            .ok_or_else(|| cerr(k, format!("expected numbers, got {x}")))?
                            as f32;
                    }
                }
                Some(x) => return Err(cerr(k, format!("expected 3 numbers, got {x}"))),
            }
            Ok(out)
        };
        let normalize = if flag("do_normalize", true)? {
            Some((triple("image_mean")?, triple("image_std")?))
        } else {
            None
        };
        let pad_to_multiple = match (flag("do_pad", false)?, get("size_divisor")) {
            (true, Some(x)) => match uint("size_divisor", x)? {
                0 => return Err(cerr("size_divisor", "must be at least 1".into())),
                s => Some(s),
            },
            _ => None,
        };
        Ok(Self {
            size,
            keep_aspect_ratio: flag("keep_aspect_ratio", d.keep_aspect_ratio)?,
            ensure_multiple_of,
            rescale_factor,
            normalize,
            pad_to_multiple,
        })
    }

    /// The `preprocessor_config.json` that transformers' `DPTImageProcessor` reads back
    /// into this processor.
    pub fn to_hf_json(&self) -> Value {
        let (mean, std) = self.normalize.unwrap_or(([0.5; 3], [0.5; 3]));
        let (h, w) = self.size.unwrap_or((384, 384));
        let mut v = serde_json::json!({
            "image_processor_type": "DPTImageProcessor",
            "do_resize": self.size.is_some(),
            "size": {"height": h, "width": w},
            "keep_aspect_ratio": self.keep_aspect_ratio,
            "ensure_multiple_of": self.ensure_multiple_of,
            "resample": 3,
            "do_rescale": self.rescale_factor.is_some(),
            "rescale_factor": self.rescale_factor.map_or(1.0 / 255.0, f64::from),
            "do_normalize": self.normalize.is_some(),
            "image_mean": mean,
            "image_std": std,
            "do_pad": self.pad_to_multiple.is_some(),
        });
        if let (Some(d), Some(o)) = (self.pad_to_multiple, v.as_object_mut()) {
            o.insert("size_divisor".into(), d.into());
        }
        v
    }

    /// `preprocessor_config.json` of a checkpoint directory.
    pub fn load(dir: &Path) -> std::result::Result<Self, WeightsError> {
        Self::from_file(&dir.join("preprocessor_config.json"))
    }

    /// The size `(height, width)` an `h x w` image is resized to (transformers'
    /// `get_resize_output_image_size`, Python rounding included).
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let Some((th, tw)) = self.size else {
            return (h, w);
        };
        let mut sh = th as f64 / h as f64;
        let mut sw = tw as f64 / w as f64;
        if self.keep_aspect_ratio {
            // Scale as little as possible.
            if (1.0 - sw).abs() < (1.0 - sh).abs() {
                sh = sw;
            } else {
                sw = sh;
            }
        }
        let m = self.ensure_multiple_of as f64;
        let fit = |v: f64| ((v / m).round_ties_even() * m) as usize;
        (fit(sh * h as f64), fit(sw * w as f64))
    }

    /// Channel-first float pixels `[3, h, w]` (flattened) and `(h, w)`.
    pub fn pixels(&self, img: &RgbImage) -> Result<(Vec<f32>, (usize, usize))> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (nh, nw) = self.output_size(h, w);
        if nh == 0 || nw == 0 {
            candle_core::bail!("image {w}x{h} resizes to an empty {nw}x{nh} image");
        }
        let resized;
        let img = if (nh, nw) == (h, w) {
            img
        } else {
            resized = preprocess::resize_bicubic_pil(img, nw, nh);
            &resized
        };
        let (ph, pw) = match self.pad_to_multiple {
            Some(d) => (nh.div_ceil(d) * d, nw.div_ceil(d) * d),
            None => (nh, nw),
        };
        let (top, left) = ((ph - nh) / 2, (pw - nw) / 2);
        let mut out = vec![0f32; 3 * ph * pw];
        for (x, y, px) in img.enumerate_pixels() {
            for c in 0..3 {
                let mut v = px.0[c] as f32;
                if let Some(f) = self.rescale_factor {
                    v *= f;
                }
                if let Some((mean, std)) = self.normalize {
                    v = (v - mean[c]) / std[c];
                }
                out[c * ph * pw + (y as usize + top) * pw + x as usize + left] = v;
            }
        }
        Ok((out, (ph, pw)))
    }

    /// `pixel_values` `[n, 3, h, w]` for a batch of images (all must end the same size).
    pub fn to_tensor(&self, images: &[RgbImage], device: &Device) -> Result<Tensor> {
        let mut data = Vec::new();
        let mut size = None;
        for (i, img) in images.iter().enumerate() {
            let (px, hw) = self.pixels(img)?;
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
