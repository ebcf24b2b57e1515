//! Scenes: objects with attributes, boxes, depth and pairwise relations.
//!
//! Coordinates are pixels of the rendered image, origin top-left, `x1`/`y1` exclusive,
//! exactly as [`sdvp_core::BBox`]. Depth is a distance: larger is farther away. Objects
//! are drawn far to near, and farther objects are drawn smaller, so depth is visible both by
//! occlusion and by scale.

use sdvp_core::rng::SplitMix64;
use sdvp_core::BBox;
use serde::{Deserialize, Serialize};

pub const SHAPES: [&str; 6] = ["circle", "square", "triangle", "star", "hexagon", "diamond"];
pub const COLORS: [&str; 8] = [
    "red", "green", "blue", "yellow", "purple", "orange", "cyan", "gray",
];
pub const SIZES: [&str; 2] = ["small", "large"];
pub const MATERIALS: [&str; 3] = ["matte", "metal", "striped"];

/// Nominal RGB of each colour (before domain effects).
pub fn color_rgb(color: &str) -> [f32; 3] {
    match color {
        "red" => [0.86, 0.15, 0.15],
        "green" => [0.18, 0.70, 0.22],
        "blue" => [0.16, 0.30, 0.90],
        "yellow" => [0.95, 0.85, 0.12],
        "purple" => [0.55, 0.20, 0.75],
        "orange" => [0.98, 0.55, 0.08],
        "cyan" => [0.10, 0.80, 0.85],
        _ => [0.52, 0.52, 0.52],
    }
}

/// The visual domains a scene can be rendered in.
pub const DOMAINS: [&str; 4] = ["clean", "cluttered", "sketch", "night"];

/// One object of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub id: usize,
    pub shape: String,
    pub color: String,
    pub size: String,
    pub material: String,
    /// Centre of the shape in pixels.
    pub cx: f32,
    pub cy: f32,
    /// Drawn radius in pixels (size and depth both scale it).
    pub radius: f32,
    /// Rotation in radians (squares, triangles, stars, hexagons, diamonds keep their look).
    pub angle: f32,
    /// Distance from the camera; larger is farther.
    pub depth: f32,
    /// Bounding box of the drawn shape, clipped to the image.
    pub bbox: BBox,
}

impl Object {
    /// The full name, e.g. `large red metal star`.
    pub fn full_name(&self) -> String {
        format!(
            "{} {} {} {}",
            self.size, self.color, self.material, self.shape
        )
    }
    pub fn attr(&self, a: Attr) -> &str {
        match a {
            Attr::Color => &self.color,
            Attr::Shape => &self.shape,
            Attr::Size => &self.size,
            Attr::Material => &self.material,
        }
    }
    /// Box centre: the position every relation and every crop test uses.
    pub fn center(&self) -> (f32, f32) {
        self.bbox.center()
    }
}

/// The four attributes of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attr {
    Color,
    Shape,
    Size,
    Material,
}

impl Attr {
    pub const ALL: [Attr; 4] = [Attr::Color, Attr::Shape, Attr::Size, Attr::Material];
    pub fn name(self) -> &'static str {
        match self {
            Attr::Color => "color",
            Attr::Shape => "shape",
            Attr::Size => "size",
            Attr::Material => "material",
        }
    }
    pub fn values(self) -> &'static [&'static str] {
        match self {
            Attr::Color => &COLORS,
            Attr::Shape => &SHAPES,
            Attr::Size => &SIZES,
            Attr::Material => &MATERIALS,
        }
    }
}

/// A pairwise relation `subject REL object`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    pub subject: usize,
    pub relation: String,
    pub object: usize,
}

/// A scene graph: what the renderer draws and what the oracle answers from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// Image id; also the PNG's file stem and `ImageRef::source`.
    pub id: String,
    pub width: u32,
    pub height: u32,
    pub domain: String,
    /// Seed of the renderer's noise, so the image can be rebuilt from the scene alone.
    pub render_seed: u64,
    /// In drawing order: far to near.
    pub objects: Vec<Object>,
    pub relations: Vec<Relation>,
}

/// Fraction of the image width two centres must differ by for left/right (and height for
/// above/below) to hold, so no relation rests on a pixel or two.
pub const REL_MARGIN: f32 = 0.06;
/// Depth difference for in front / behind.
pub const DEPTH_MARGIN: f32 = 0.8;
/// Distance of the background, answered by `compute_depth` on empty regions.
pub const BACKGROUND_DEPTH: f32 = 10.0;

impl Scene {
    pub fn full_box(&self) -> BBox {
        BBox::new(0.0, 0.0, self.width as f32, self.height as f32)
    }
    /// Relations that hold with margin; left/right/above/below by box centres.
    pub fn compute_relations(&mut self) {
        let mx = REL_MARGIN * self.width as f32;
        let my = REL_MARGIN * self.height as f32;
        let mut rels = Vec::new();
        for a in &self.objects {
            for b in &self.objects {
                if a.id == b.id {
                    continue;
                }
                let (ax, ay) = a.center();
                let (bx, by) = b.center();
                let mut push = |r: &str| {
                    rels.push(Relation {
                        subject: a.id,
                        relation: r.to_string(),
                        object: b.id,
                    })
                };
                if ax < bx - mx {
                    push("left of");
                }
                if ax > bx + mx {
                    push("right of");
                }
                if ay < by - my {
                    push("above");
                }
                if ay > by + my {
                    push("below");
                }
                if a.depth < b.depth - DEPTH_MARGIN {
                    push("in front of");
                }
                if a.depth > b.depth + DEPTH_MARGIN {
                    push("behind");
                }
            }
        }
        self.relations = rels;
    }
    pub fn object(&self, id: usize) -> Option<&Object> {
        self.objects.iter().find(|o| o.id == id)
    }
}

/// Settings of scene sampling.
#[derive(Debug, Clone, Copy)]
pub struct SceneConfig {
    pub width: u32,
    pub height: u32,
    pub min_objects: usize,
    pub max_objects: usize,
    /// Largest share of the smaller box two boxes may have in common.
    pub max_overlap: f32,
}

impl SceneConfig {
    pub fn new(size: u32) -> Self {
        Self {
            width: size,
            height: size,
            min_objects: 2,
            max_objects: 8,
            max_overlap: 0.2,
        }
    }
}

/// Shape extent relative to its radius, left/top/right/bottom, for the bounding box.
fn extent(shape: &str, r: f32, angle: f32) -> (f32, f32, f32, f32) {
    match shape {
        "circle" => (r, r, r, r),
        _ => {
            let pts = crate::render::outline_points(shape, 0.0, 0.0, r, angle);
            let mut e = (0f32, 0f32, 0f32, 0f32);
            for (x, y) in pts {
                e.0 = e.0.max(-x);
                e.1 = e.1.max(-y);
                e.2 = e.2.max(x);
                e.3 = e.3.max(y);
            }
            e
        }
    }
}

/// Sample a scene. Attributes are drawn from a small per-scene palette so that repeated
/// colours and shapes are common and referring to one object often needs two words.
pub fn sample_scene(rng: &mut SplitMix64, cfg: &SceneConfig, id: String, domain: &str) -> Scene {
    let w = cfg.width as f32;
    let h = cfg.height as f32;
    let n = rng.range_usize(cfg.min_objects, cfg.max_objects);
    let mut colors: Vec<&str> = COLORS.to_vec();
    rng.shuffle(&mut colors);
    colors.truncate(rng.range_usize(3, 6));
    let mut shapes: Vec<&str> = SHAPES.to_vec();
    rng.shuffle(&mut shapes);
    shapes.truncate(rng.range_usize(3, 5));
    let mut objects: Vec<Object> = Vec::new();
    let mut attempts = 0;
    while objects.len() < n && attempts < 200 {
        attempts += 1;
        let shape = *rng.pick(&shapes).unwrap_or(&"circle");
        let color = *rng.pick(&colors).unwrap_or(&"red");
        let size = *rng.pick(&SIZES).unwrap_or(&"small");
        let material = *rng.pick(&MATERIALS).unwrap_or(&"matte");
        let d01 = rng.next_f32();
        let depth = 2.0 + 6.0 * d01;
        let base = if size == "small" { 0.075 } else { 0.125 };
        let r = base * w.min(h) * (1.1 - 0.25 * d01);
        let angle = match shape {
            "circle" => 0.0,
            _ => rng.range_f32(-0.25, 0.25),
        };
        let (el, et, er, eb) = extent(shape, r, angle);
        if el + er + 2.0 >= w || et + eb + 2.0 >= h {
            continue;
        }
        let cx = rng.range_f32(el + 1.0, w - er - 1.0);
        let cy = rng.range_f32(et + 1.0, h - eb - 1.0);
        let bbox = BBox::new(
            (cx - el).floor().max(0.0),
            (cy - et).floor().max(0.0),
            (cx + er).ceil().min(w),
            (cy + eb).ceil().min(h),
        );
        let ok = objects.iter().all(|o| {
            let inter = o.bbox.intersect(&bbox).area();
            let small = o.bbox.area().min(bbox.area()).max(1.0);
            let (ox, oy) = o.center();
            let (nx, ny) = bbox.center();
            let far = (ox - nx).abs() > 3.0 || (oy - ny).abs() > 3.0;
            inter / small <= cfg.max_overlap && far && (o.depth - depth).abs() > 0.05
        });
        if !ok {
            continue;
        }
        objects.push(Object {
            id: 0,
            shape: shape.into(),
            color: color.into(),
            size: size.into(),
            material: material.into(),
            cx,
            cy,
            radius: r,
            angle,
            depth,
            bbox,
        });
    }
    // Far to near, so drawing in order gives correct occlusion.
    objects.sort_by(|a, b| b.depth.total_cmp(&a.depth));
    for (i, o) in objects.iter_mut().enumerate() {
        o.id = i;
    }
    let mut scene = Scene {
        id,
        width: cfg.width,
        height: cfg.height,
        domain: domain.to_string(),
        render_seed: rng.next_u64(),
        objects,
        relations: Vec::new(),
    };
    scene.compute_relations();
    scene
}
