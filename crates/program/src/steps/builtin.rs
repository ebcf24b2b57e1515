//! The visual-reasoning modules of VisProg's GQA/NLVR set.
//!
//! When `LOC` finds nothing it returns an empty box list, and the modules downstream keep
//! going the way VisProg users expect:
//! * `COUNT` answers 0;
//! * `CROP` returns its input image unchanged;
//! * `CROP_LEFTOF` / `RIGHTOF` / `ABOVE` / `BELOW` split the image at its centre;
//! * the depth crops (`CROP_FRONTOF`, `CROP_INFRONT`, `CROP_INFRONTOF`, `CROP_BEHIND`,
//!   `CROP_AHEAD`) cannot be a 2-D half-plane, so they always return the input image, with or
//!   without a box (as VisProg does); the question asked on it carries the relation.

use super::{ArgSpec, Registry, Signature, StepArgs, StepFuture, StepModule};
use sdvp_core::module::{Request, Response};
use sdvp_core::scheduler::ModuleCtx;
use sdvp_core::value::{BBox, Boxes, ImageRef, Value, ValueType};
use std::sync::Arc;

/// How much `CROP` grows a box on every side, as a fraction of the box size
/// (0.25 reproduces VisProg's 1.5× scale about the centre).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropSettings {
    pub enlarge: f32,
}

pub(super) fn register_all(r: &mut Registry, crop: CropSettings) {
    r.register(Arc::new(Loc));
    r.register(Arc::new(Count));
    r.register(Arc::new(Vqa));
    r.register(Arc::new(ResultStep));
    r.register(Arc::new(Crop(crop)));
    for dir in CropDirection::ALL {
        r.register(Arc::new(DirectionalCrop(dir)));
    }
}

fn ready<'a>(v: Result<Value, String>) -> StepFuture<'a> {
    Box::pin(std::future::ready(v))
}

/// Half of an image region named by LOC's special objects.
fn half_region(image: &ImageRef, which: &str) -> Option<BBox> {
    let r = image.region();
    let (cx, cy) = r.center();
    match which {
        "TOP" => Some(BBox::new(r.x0, r.y0, r.x1, cy)),
        "BOTTOM" => Some(BBox::new(r.x0, cy, r.x1, r.y1)),
        "LEFT" => Some(BBox::new(r.x0, r.y0, cx, r.y1)),
        "RIGHT" => Some(BBox::new(cx, r.y0, r.x1, r.y1)),
        _ => None,
    }
}

struct Loc;
impl StepModule for Loc {
    fn name(&self) -> &'static str {
        "LOC"
    }
    fn doc(&self) -> &'static str {
        "Find boxes of an object (best first); TOP/BOTTOM/LEFT/RIGHT give the image's halves."
    }
    fn signature(&self) -> Signature {
        Signature {
            args: vec![
                ArgSpec::required("image", ValueType::Image, "image to search"),
                ArgSpec::required("object", ValueType::Text, "object name"),
            ],
            output: ValueType::Boxes,
        }
    }
    fn run<'a>(&'a self, args: StepArgs, ctx: &'a ModuleCtx) -> StepFuture<'a> {
        Box::pin(async move {
            let image = args.image("image")?.clone();
            let object = args.text("object")?;
            if let Some(b) = half_region(&image, object.trim()) {
                return Ok(Value::Boxes(Boxes {
                    image,
                    boxes: vec![b],
                    scores: vec![1.0],
                }));
            }
            let response = ctx
                .call(Request::Detect {
                    image: image.clone(),
                    object,
                })
                .await
                .map_err(|e| e.to_string())?;
            match response {
                Response::Detections { boxes, scores } => Ok(Value::Boxes(Boxes {
                    image,
                    boxes,
                    scores,
                })),
                other => Err(format!(
                    "detector answered {} instead of detections",
                    other.kind_name()
                )),
            }
        })
    }
}

struct Count;
impl StepModule for Count {
    fn name(&self) -> &'static str {
        "COUNT"
    }
    fn doc(&self) -> &'static str {
        "Number of boxes."
    }
    fn signature(&self) -> Signature {
        Signature {
            args: vec![ArgSpec::required("box", ValueType::Boxes, "boxes from LOC")],
            output: ValueType::Number,
        }
    }
    fn run<'a>(&'a self, args: StepArgs, _ctx: &'a ModuleCtx) -> StepFuture<'a> {
        ready(
            args.boxes("box")
                .map(|b| Value::Number(b.boxes.len() as f64)),
        )
    }
}

struct Vqa;
impl StepModule for Vqa {
    fn name(&self) -> &'static str {
        "VQA"
    }
    fn doc(&self) -> &'static str {
        "Answer a question about an image with a short text."
    }
    fn signature(&self) -> Signature {
        Signature {
            args: vec![
                ArgSpec::required("image", ValueType::Image, "image to look at"),
                ArgSpec::required("question", ValueType::Text, "question"),
            ],
            output: ValueType::Text,
        }
    }
    fn run<'a>(&'a self, args: StepArgs, ctx: &'a ModuleCtx) -> StepFuture<'a> {
        Box::pin(async move {
            let image = args.image("image")?.clone();
            let question = args.text("question")?;
            match ctx
                .call(Request::Vqa { image, question })
                .await
                .map_err(|e| e.to_string())?
            {
                Response::Answer { text, .. } => Ok(Value::Text(text)),
                other => Err(format!(
                    "VQA model answered {} instead of an answer",
                    other.kind_name()
                )),
            }
        })
    }
}

struct ResultStep;
impl StepModule for ResultStep {
    fn name(&self) -> &'static str {
        "RESULT"
    }
    fn doc(&self) -> &'static str {
        "The program's answer; must be the last step."
    }
    fn signature(&self) -> Signature {
        Signature {
            args: vec![ArgSpec::required(
                "var",
                ValueType::Any,
                "value to answer with",
            )],
            output: ValueType::Any,
        }
    }
    fn run<'a>(&'a self, args: StepArgs, _ctx: &'a ModuleCtx) -> StepFuture<'a> {
        ready(args.value("var").cloned())
    }
}

struct Crop(CropSettings);
impl StepModule for Crop {
    fn name(&self) -> &'static str {
        "CROP"
    }
    fn doc(&self) -> &'static str {
        "Crop the image to the first box, enlarged; the whole image when there is no box."
    }
    fn signature(&self) -> Signature {
        crop_signature()
    }
    fn run<'a>(&'a self, args: StepArgs, _ctx: &'a ModuleCtx) -> StepFuture<'a> {
        ready((|| {
            let image = args.image("image")?;
            let boxes = args.boxes("box")?;
            Ok(Value::Image(match boxes.boxes.first() {
                Some(b) => image.crop(b.enlarge(self.0.enlarge, &image.region())),
                None => image.clone(),
            }))
        })())
    }
}

fn crop_signature() -> Signature {
    Signature {
        args: vec![
            ArgSpec::required("image", ValueType::Image, "image to crop"),
            ArgSpec::required("box", ValueType::Boxes, "boxes from LOC; the first is used"),
        ],
        output: ValueType::Image,
    }
}

/// The directional crops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropDirection {
    LeftOf,
    RightOf,
    Above,
    Below,
    FrontOf,
    InFront,
    InFrontOf,
    Behind,
    Ahead,
}

impl CropDirection {
    pub const ALL: [CropDirection; 9] = [
        CropDirection::LeftOf,
        CropDirection::RightOf,
        CropDirection::Above,
        CropDirection::Below,
        CropDirection::FrontOf,
        CropDirection::InFront,
        CropDirection::InFrontOf,
        CropDirection::Behind,
        CropDirection::Ahead,
    ];
    pub fn module_name(self) -> &'static str {
        match self {
            CropDirection::LeftOf => "CROP_LEFTOF",
            CropDirection::RightOf => "CROP_RIGHTOF",
            CropDirection::Above => "CROP_ABOVE",
            CropDirection::Below => "CROP_BELOW",
            CropDirection::FrontOf => "CROP_FRONTOF",
            CropDirection::InFront => "CROP_INFRONT",
            CropDirection::InFrontOf => "CROP_INFRONTOF",
            CropDirection::Behind => "CROP_BEHIND",
            CropDirection::Ahead => "CROP_AHEAD",
        }
    }

    /// The part of `region` on this side of the box centre (or the region's centre).
    pub fn region(self, region: BBox, anchor: Option<BBox>) -> BBox {
        let (cx, cy) = anchor.unwrap_or(region).center();
        match self {
            CropDirection::LeftOf => BBox::new(region.x0, region.y0, cx, region.y1),
            CropDirection::RightOf => BBox::new(cx, region.y0, region.x1, region.y1),
            CropDirection::Above => BBox::new(region.x0, region.y0, region.x1, cy),
            CropDirection::Below => BBox::new(region.x0, cy, region.x1, region.y1),
            _ => region,
        }
    }
}

struct DirectionalCrop(CropDirection);
impl StepModule for DirectionalCrop {
    fn name(&self) -> &'static str {
        self.0.module_name()
    }
    fn doc(&self) -> &'static str {
        match self.0 {
            CropDirection::LeftOf => "The part of the image left of the first box's centre.",
            CropDirection::RightOf => "The part of the image right of the first box's centre.",
            CropDirection::Above => "The part of the image above the first box's centre.",
            CropDirection::Below => "The part of the image below the first box's centre.",
            _ => "The whole image (depth relations are left to the question asked on it).",
        }
    }
    fn signature(&self) -> Signature {
        crop_signature()
    }
    fn run<'a>(&'a self, args: StepArgs, _ctx: &'a ModuleCtx) -> StepFuture<'a> {
        ready((|| {
            let image = args.image("image")?;
            let boxes = args.boxes("box")?;
            let region = self.0.region(image.region(), boxes.boxes.first().copied());
            Ok(Value::Image(if region == image.region() {
                image.clone()
            } else {
                image.crop(region)
            }))
        })())
    }
}
