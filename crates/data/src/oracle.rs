//! The oracle: a [`Backend`] that answers every module call from the scene graphs.
//!
//! It is the consistency proof of the world: every gold step program run against it must
//! reproduce its gold answer. It follows the same rules the generator uses:
//! * an object is *in* an image region when its box centre lies inside the region
//!   (`x0 < cx < x1`, same for y), so `CROP_LEFTOF` keeps exactly the objects left of the
//!   anchor's centre;
//! * a question about "the P" is about the matching object with most box area inside the
//!   region (the one a crop was made around);
//! * depth is a distance (larger is farther); `compute_depth` is the median depth of the
//!   foreground points of the region, or [`BACKGROUND_DEPTH`] when the region is empty.
//!
//! Scenes are looked up by `ImageRef::source`, the world image id.

use crate::phrase::{canonical_word, Phrase};
use crate::scene::{Attr, Object, Scene, BACKGROUND_DEPTH};
use anyhow::Context;
use sdvp_core::{BBox, Backend, ImageRef, ModuleError, ModuleKind, Request, Response};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// Answers from scene graphs.
#[derive(Debug, Clone, Default)]
pub struct OracleBackend {
    scenes: HashMap<String, Scene>,
}

fn area_in(o: &Object, r: &BBox) -> f32 {
    o.bbox.intersect(r).area()
}

fn inside(o: &Object, r: &BBox) -> bool {
    let (cx, cy) = o.center();
    // Strict on every side: a directional crop starts or ends at the anchor's centre, and
    // the anchor is never on its own side of itself.
    cx > r.x0 && cx < r.x1 && cy > r.y0 && cy < r.y1
}

impl OracleBackend {
    pub fn new(scenes: impl IntoIterator<Item = Scene>) -> Self {
        Self {
            scenes: scenes.into_iter().map(|s| (s.id.clone(), s)).collect(),
        }
    }

    /// Load `DIR/scenes.jsonl`; a bad line is an error naming file and line.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("scenes.jsonl");
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut scenes = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let s: Scene = serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not a scene", path.display(), i + 1))?;
            scenes.push(s);
        }
        Ok(Self::new(scenes))
    }

    pub fn len(&self) -> usize {
        self.scenes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.scenes.is_empty()
    }

    fn scene(&self, image: &ImageRef, kind: ModuleKind) -> Result<&Scene, ModuleError> {
        self.scenes
            .get(&image.source)
            .ok_or_else(|| ModuleError::new(kind, format!("no scene for image {:?}", image.source)))
    }

    /// Objects in the region matching the phrase, most area inside first.
    fn find<'s>(scene: &'s Scene, region: &BBox, p: &Phrase) -> Vec<&'s Object> {
        let mut v: Vec<&Object> = scene
            .objects
            .iter()
            .filter(|o| inside(o, region) && p.matches(o))
            .collect();
        v.sort_by(|a, b| {
            area_in(b, region)
                .total_cmp(&area_in(a, region))
                .then(a.depth.total_cmp(&b.depth))
        });
        v
    }

    fn answer(&self, request: &Request) -> Result<Response, ModuleError> {
        let kind = request.kind();
        match request {
            Request::Detect { image, object } => {
                let scene = self.scene(image, kind)?;
                let found = match Phrase::parse(object) {
                    Some(p) => Self::find(scene, &image.region(), &p),
                    None => Vec::new(),
                };
                Ok(Response::Detections {
                    scores: vec![1.0; found.len()],
                    boxes: found.iter().map(|o| o.bbox).collect(),
                })
            }
            Request::Vqa { image, question } => {
                let scene = self.scene(image, kind)?;
                vqa(scene, &image.region(), question)
                    .map(|text| Response::answer(text, 1.0))
                    .map_err(|m| ModuleError::new(kind, m))
            }
            Request::Verify { image, text } => {
                let scene = self.scene(image, kind)?;
                let yes = Phrase::parse(text)
                    .is_some_and(|p| !Self::find(scene, &image.region(), &p).is_empty());
                // The scene graph is certain either way.
                Ok(Response::Verdict { yes, score: 1.0 })
            }
            Request::Classify { image, options } => {
                let scene = self.scene(image, kind)?;
                if options.is_empty() {
                    return Err(ModuleError::new(kind, "no options to choose from"));
                }
                let main = Self::find(scene, &image.region(), &Phrase::default());
                let scores: Vec<f32> = options
                    .iter()
                    .map(|opt| match (Phrase::parse(opt), main.first()) {
                        (Some(p), Some(o)) if p.matches(o) => 1.0 + 0.1 * p.specificity() as f32,
                        _ => 0.0,
                    })
                    .collect();
                let mut index = 0;
                for (i, s) in scores.iter().enumerate() {
                    if *s > scores[index] {
                        index = i;
                    }
                }
                Ok(Response::Choice { index, scores })
            }
            Request::Depth { image } => {
                let scene = self.scene(image, kind)?;
                Ok(Response::Depth {
                    value: median_depth(scene, &image.region()),
                })
            }
            Request::Llm { .. } => Err(ModuleError::new(kind, "the oracle has no language model")),
        }
    }
}

impl Backend for OracleBackend {
    fn name(&self) -> String {
        "oracle".into()
    }
    fn run_batch(
        &self,
        _kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        requests.iter().map(|r| self.answer(r)).collect()
    }
}

/// Median depth over a 12×12 grid of points in the region, nearest object per point.
pub fn median_depth(scene: &Scene, region: &BBox) -> f32 {
    let mut depths = Vec::new();
    for j in 0..12 {
        for i in 0..12 {
            let x = region.x0 + region.width() * (i as f32 + 0.5) / 12.0;
            let y = region.y0 + region.height() * (j as f32 + 0.5) / 12.0;
            // Objects are stored far to near: the last one covering the point is visible.
            if let Some(o) = scene
                .objects
                .iter()
                .rev()
                .find(|o| crate::render::contains(o, x, y))
            {
                depths.push(o.depth);
            }
        }
    }
    if depths.is_empty() {
        return BACKGROUND_DEPTH;
    }
    depths.sort_by(|a, b| a.total_cmp(b));
    depths[depths.len() / 2]
}

fn yn(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// The object a question is about: the best match, else the most prominent object.
fn subject<'s>(scene: &'s Scene, region: &BBox, phrase: &str) -> Option<&'s Object> {
    let p = Phrase::parse(phrase)?;
    OracleBackend::find(scene, region, &p).first().copied()
}

/// Answer the question forms the gold programs (and simple variants) ask.
fn vqa(scene: &Scene, region: &BBox, question: &str) -> Result<String, String> {
    let q = question
        .trim()
        .trim_end_matches(['?', '.'])
        .trim()
        .to_lowercase()
        .replace("colour", "color");
    let attr_forms: [(&str, &str, Attr); 10] = [
        ("what color is the ", "", Attr::Color),
        ("what is the color of the ", "", Attr::Color),
        ("what shape is the ", "", Attr::Shape),
        ("what is the shape of the ", "", Attr::Shape),
        ("what material is the ", "", Attr::Material),
        ("what is the material of the ", "", Attr::Material),
        ("what is the ", " made of", Attr::Material),
        ("what size is the ", "", Attr::Size),
        ("what is the size of the ", "", Attr::Size),
        ("how big is the ", "", Attr::Size),
    ];
    for (pre, post, attr) in attr_forms {
        if let Some(rest) = q.strip_prefix(pre).and_then(|r| r.strip_suffix(post)) {
            let main = || {
                OracleBackend::find(scene, region, &Phrase::default())
                    .first()
                    .copied()
            };
            return Ok(match subject(scene, region, rest).or_else(main) {
                Some(o) => o.attr(attr).to_string(),
                None => "nothing".into(),
            });
        }
    }
    if let Some(rest) = q
        .strip_prefix("is there ")
        .or_else(|| q.strip_prefix("are there "))
    {
        return Ok(yn(Phrase::parse(rest).is_some_and(|p| {
            !OracleBackend::find(scene, region, &p).is_empty()
        })));
    }
    if let Some(rest) = q.strip_prefix("how many ") {
        let rest = rest
            .trim_end_matches(" are there")
            .trim_end_matches(" are in the image")
            .trim_end_matches(" are in the picture");
        let p = Phrase::parse(rest).ok_or_else(|| format!("unknown object phrase {rest:?}"))?;
        return Ok(OracleBackend::find(scene, region, &p).len().to_string());
    }
    let Some(rest) = q.strip_prefix("is the ") else {
        return Err(format!(
            "the oracle does not understand the question {question:?}"
        ));
    };
    for (rel, front) in [(" in front of the ", true), (" behind the ", false)] {
        if let Some((a, b)) = rest.split_once(rel) {
            let (Some(x), Some(y)) = (subject(scene, region, a), subject(scene, region, b)) else {
                return Ok("no".into());
            };
            return Ok(yn(if front {
                x.depth < y.depth
            } else {
                x.depth > y.depth
            }));
        }
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    // "is the P X or Y": the option naming the subject's attribute.
    if words.len() >= 4 && words[words.len() - 2] == "or" {
        let (x, y) = (words[words.len() - 3], words[words.len() - 1]);
        let phrase = words[..words.len() - 3].join(" ");
        let o =
            subject(scene, region, &phrase).ok_or_else(|| format!("no {phrase} in the image"))?;
        for opt in [x, y] {
            if let Some((attr, v)) = canonical_word(opt) {
                if o.attr(attr) == v {
                    return Ok(opt.to_string());
                }
            }
        }
        return Ok(x.to_string());
    }
    // "is the P V" / "is the P a V".
    if words.len() >= 2 {
        let value = words[words.len() - 1];
        let mut cut = words.len() - 1;
        if cut >= 2 && matches!(words[cut - 1], "a" | "an") {
            cut -= 1;
        }
        let phrase = words[..cut].join(" ");
        let (attr, v) =
            canonical_word(value).ok_or_else(|| format!("unknown property {value:?}"))?;
        return Ok(yn(
            subject(scene, region, &phrase).is_some_and(|o| o.attr(attr) == v)
        ));
    }
    Err(format!(
        "the oracle does not understand the question {question:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{sample_scene, SceneConfig};
    use sdvp_core::rng::SplitMix64;

    fn one(b: &OracleBackend, r: Request) -> Result<Response, ModuleError> {
        b.run_batch(r.kind(), &[r]).remove(0)
    }

    #[test]
    fn answers_the_python_module_kinds_from_the_scene() {
        let mut rng = SplitMix64::new(9);
        let scene = sample_scene(&mut rng, &SceneConfig::new(128), "s".into(), "clean");
        let o = scene.objects.last().cloned().expect("an object");
        let b = OracleBackend::new([scene.clone()]);
        let full = ImageRef::new("s", 128, 128);
        let patch = full.crop(o.bbox);
        // Verify: the object's own colour and shape are there, a missing shape is not.
        let verdict = |text: &str| match one(
            &b,
            Request::Verify {
                image: patch.clone(),
                text: text.into(),
            },
        ) {
            Ok(Response::Verdict { yes, .. }) => yes,
            other => panic!("{other:?}"),
        };
        assert!(verdict(&format!("{} {}", o.color, o.shape)));
        assert!(!verdict("purple elephant"));
        // Classify: the right shape wins among all shapes.
        let options: Vec<String> = crate::scene::SHAPES.iter().map(|s| s.to_string()).collect();
        match one(
            &b,
            Request::Classify {
                image: patch.clone(),
                options: options.clone(),
            },
        ) {
            Ok(Response::Choice { index, .. }) => assert_eq!(options[index], o.shape),
            other => panic!("{other:?}"),
        }
        // Depth: the nearest (last drawn) object is fully visible, so its patch has its depth.
        match one(
            &b,
            Request::Depth {
                image: patch.clone(),
            },
        ) {
            Ok(Response::Depth { value }) => assert_eq!(value, o.depth),
            other => panic!("{other:?}"),
        }
        // Detect outside the crop finds nothing of the object; unknown images are errors.
        let left_of = full.crop(BBox::new(0.0, 0.0, o.center().0, 128.0));
        match one(
            &b,
            Request::Detect {
                image: left_of,
                object: o.full_name(),
            },
        ) {
            Ok(Response::Detections { boxes, .. }) => assert!(boxes.is_empty()),
            other => panic!("{other:?}"),
        }
        assert!(one(
            &b,
            Request::Depth {
                image: ImageRef::new("nope", 8, 8)
            }
        )
        .is_err());
        assert!(one(
            &b,
            Request::Llm {
                prompt: "hi".into()
            }
        )
        .is_err());
        let q = format!("What color is the {}?", o.full_name());
        match one(
            &b,
            Request::Vqa {
                image: patch,
                question: q,
            },
        ) {
            Ok(Response::Answer { text, .. }) => assert_eq!(text, o.color),
            other => panic!("{other:?}"),
        }
    }
}
