//! Values that flow between program steps.
//!
//! Images never carry pixels: an [`ImageRef`] names its source image and the chain of crops
//! that produced it, so a trace can rebuild every module input exactly and backends decide
//! themselves how (and whether) to load pixels.

use serde::{Deserialize, Serialize};

/// Axis-aligned box in **source-image pixel coordinates**, origin top-left, `x1`/`y1` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    #[serde(with = "crate::num::f32_json")]
    pub x0: f32,
    #[serde(with = "crate::num::f32_json")]
    pub y0: f32,
    #[serde(with = "crate::num::f32_json")]
    pub x1: f32,
    #[serde(with = "crate::num::f32_json")]
    pub y1: f32,
}

impl BBox {
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        Self { x0, y0, x1, y1 }
    }
    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }
    pub fn center(&self) -> (f32, f32) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }
    pub fn intersect(&self, other: &BBox) -> BBox {
        BBox::new(
            self.x0.max(other.x0),
            self.y0.max(other.y0),
            self.x1.min(other.x1),
            self.y1.min(other.y1),
        )
    }
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersect(other).area();
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
    /// Grow by `factor` of its own size on every side (VisProg's crop enlargement), then clip.
    pub fn enlarge(&self, factor: f32, bounds: &BBox) -> BBox {
        let dx = self.width() * factor;
        let dy = self.height() * factor;
        BBox::new(self.x0 - dx, self.y0 - dy, self.x1 + dx, self.y1 + dy).intersect(bounds)
    }
    /// At least `side` wide and high, widened about its centre and shifted (not clipped) to
    /// stay inside `bounds`, so that every widened box of one image shows the same scale.
    /// A side longer than `bounds` allows is that of `bounds`.
    pub fn widen_to(&self, side: f32, bounds: &BBox) -> BBox {
        let fit = |lo: f32, hi: f32, min: f32, max: f32| -> (f32, f32) {
            let len = (hi - lo).max(side).min(max - min);
            let start = ((lo + hi - len) / 2.0).clamp(min, max - len);
            (start, start + len)
        };
        let (x0, x1) = fit(self.x0, self.x1, bounds.x0, bounds.x1);
        let (y0, y1) = fit(self.y0, self.y1, bounds.y0, bounds.y1);
        BBox::new(x0, y0, x1, y1)
    }
    pub fn is_empty(&self) -> bool {
        self.width() < 1.0 || self.height() < 1.0
    }
}

/// An image as a program sees it: a source image plus the crops applied to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Identifier the image store resolves (a world image id or a file path).
    pub source: String,
    /// Size of the source image in pixels.
    pub width: u32,
    pub height: u32,
    /// Crop chain, each box in source coordinates and already clipped to its parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crops: Vec<BBox>,
}

impl ImageRef {
    pub fn new(source: impl Into<String>, width: u32, height: u32) -> Self {
        Self {
            source: source.into(),
            width,
            height,
            crops: Vec::new(),
        }
    }
    pub fn full_box(&self) -> BBox {
        BBox::new(0.0, 0.0, self.width as f32, self.height as f32)
    }
    /// The region of the source image this value shows.
    pub fn region(&self) -> BBox {
        self.crops
            .last()
            .copied()
            .unwrap_or_else(|| self.full_box())
    }
    /// A crop of this image; `b` is in source coordinates and is clipped to the current region.
    pub fn crop(&self, b: BBox) -> ImageRef {
        let mut out = self.clone();
        let clipped = b.intersect(&self.region());
        // Keep a degenerate crop at least one pixel wide so downstream modules get an image.
        let clipped = if clipped.is_empty() {
            let (cx, cy) = clipped.center();
            let r = self.region();
            BBox::new(
                cx.clamp(r.x0, (r.x1 - 1.0).max(r.x0)),
                cy.clamp(r.y0, (r.y1 - 1.0).max(r.y0)),
                (cx + 1.0).clamp(r.x0 + 1.0, r.x1.max(r.x0 + 1.0)),
                (cy + 1.0).clamp(r.y0 + 1.0, r.y1.max(r.y0 + 1.0)),
            )
        } else {
            clipped
        };
        out.crops.push(clipped);
        out
    }
}

/// The static type of a value, used by validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Image,
    Boxes,
    Text,
    Number,
    Bool,
    /// Anything (EVAL's result, RESULT's input).
    Any,
}

impl ValueType {
    pub fn accepts(self, actual: ValueType) -> bool {
        self == ValueType::Any || actual == ValueType::Any || self == actual
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ValueType::Image => "image",
            ValueType::Boxes => "boxes",
            ValueType::Text => "text",
            ValueType::Number => "number",
            ValueType::Bool => "bool",
            ValueType::Any => "any",
        };
        f.write_str(s)
    }
}

/// A runtime value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Value {
    Image(ImageRef),
    /// Boxes in source coordinates, best first, found in `image`.
    Boxes(Boxes),
    Text(String),
    Number(#[serde(with = "crate::num::f64_json")] f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boxes {
    pub image: ImageRef,
    pub boxes: Vec<BBox>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::num::vec_f32_json"
    )]
    pub scores: Vec<f32>,
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Image(_) => ValueType::Image,
            Value::Boxes(_) => ValueType::Boxes,
            Value::Text(_) => ValueType::Text,
            Value::Number(_) => ValueType::Number,
            Value::Bool(_) => ValueType::Bool,
        }
    }
    /// The answer string a person compares with the gold answer.
    pub fn to_answer(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Number(n) => format_number(*n),
            Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Value::Boxes(b) => format!("{} boxes", b.boxes.len()),
            Value::Image(i) => format!("image {}", i.source),
        }
    }
}

/// Integers print without a decimal point, so `COUNT` answers read "2", not "2.0".
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Normalise an answer for exact-match scoring (lower case, trimmed, no trailing period).
pub fn normalize_answer(s: &str) -> String {
    let t = s.trim().trim_end_matches('.').trim().to_lowercase();
    match t.as_str() {
        "true" => "yes".into(),
        "false" => "no".into(),
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::BBox;

    #[test]
    fn widen_to_keeps_the_centre_and_shifts_at_borders() {
        let image = BBox::new(0.0, 0.0, 128.0, 100.0);
        // Small: widened about its centre.
        let b = BBox::new(40.0, 40.0, 60.0, 50.0).widen_to(48.0, &image);
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (26.0, 21.0, 74.0, 69.0));
        // At a corner: shifted inside, still 48 on a side.
        let b = BBox::new(2.0, 90.0, 12.0, 99.0).widen_to(48.0, &image);
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (0.0, 52.0, 48.0, 100.0));
        // Already large: unchanged.
        let big = BBox::new(10.0, 10.0, 70.0, 80.0);
        let b = big.widen_to(48.0, &image);
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (10.0, 10.0, 70.0, 80.0));
        // Wider than the image allows: the image's side.
        let b = BBox::new(50.0, 50.0, 60.0, 60.0).widen_to(200.0, &image);
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (0.0, 0.0, 128.0, 100.0));
    }
}
