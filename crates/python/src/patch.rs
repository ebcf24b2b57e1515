//! ViperGPT's `ImagePatch` API on top of batched model requests.
//!
//! **Coordinates.** ViperGPT puts the origin at the *bottom-left* of the image, y growing
//! upwards (`lower < upper`); [`sdvp_core::BBox`] puts it at the top-left in pixels, y
//! growing downwards. The conversion happens only here, with `H` the source image height:
//! `left = x0`, `right = x1`, `lower = H - y1`, `upper = H - y0`. As in ViperGPT, a patch's
//! `left/lower/right/upper` are absolute (in the original image), and `crop(l, lo, r, u)`
//! takes coordinates *relative to the patch it is called on* (its lower-left corner is
//! `(0, 0)`), so on the full-image patch relative and absolute coincide. Coordinates are
//! whole pixels (boxes are rounded) and crops are clipped to the patch they come from; unlike
//! ViperGPT's default config no 10-pixel margin is added, so detections stay exact.
//!
//! **Calls.** `find`/`exists` → `Detect`; `verify_property(name, prop)` → `Verify` with the
//! text `"{prop} {name}"` (ViperGPT's wording); `best_text_match` → `Classify`;
//! `simple_query` → `Vqa`; `compute_depth` → `Depth`; `llm_query` → `Llm`;
//! `best_image_match(patches, content)` → one `Verify` per (patch, content text), issued
//! together so they batch, ranked by the verdict's score (negated for a "no" verdict).
//! Every such call becomes one trace step with the method name as its module.

use crate::ast::Loc;
use crate::interp::{Ctl, FatalKind, Interp, Kwargs, R};
use crate::obj::{ExcKind, Obj};
use sdvp_core::scheduler::CallFuture;
use sdvp_core::trace::TraceStep;
use sdvp_core::value::Boxes;
use sdvp_core::{BBox, ImageRef, ModuleError, Request, Response, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Methods of `ImagePatch` programs may call.
pub const METHODS: &[&str] = &[
    "find",
    "exists",
    "verify_property",
    "best_text_match",
    "simple_query",
    "compute_depth",
    "crop",
    "overlaps_with",
    "llm_query",
];

/// A region of an image, as ViperGPT's `ImagePatch`.
#[derive(Debug, Clone)]
pub struct Patch {
    /// The crop chain that model requests receive (its region is this patch).
    pub image: ImageRef,
    pub left: i64,
    pub lower: i64,
    pub right: i64,
    pub upper: i64,
}

impl Patch {
    /// The patch showing exactly `image`'s current region.
    pub fn from_image(image: ImageRef) -> Patch {
        let r = image.region();
        let h = image.height as f32;
        Patch {
            left: r.x0.round() as i64,
            right: r.x1.round() as i64,
            lower: (h - r.y1).round() as i64,
            upper: (h - r.y0).round() as i64,
            image,
        }
    }

    /// A sub-patch from absolute ViperGPT coordinates, clipped to this patch.
    pub fn sub_absolute(&self, left: i64, lower: i64, right: i64, upper: i64) -> Patch {
        let h = self.image.height as f32;
        let b = BBox::new(
            left as f32,
            h - upper as f32,
            right as f32,
            h - lower as f32,
        );
        Patch::from_image(self.image.crop(b))
    }

    pub fn width(&self) -> i64 {
        self.right - self.left
    }
    pub fn height(&self) -> i64 {
        self.upper - self.lower
    }

    pub fn describe(&self) -> String {
        format!(
            "ImagePatch(left={}, lower={}, right={}, upper={})",
            self.left, self.lower, self.right, self.upper
        )
    }
}

/// Data attributes of a patch.
pub fn attribute(p: &Patch, name: &str) -> Option<Obj> {
    Some(match name {
        "left" => Obj::Int(p.left),
        "lower" => Obj::Int(p.lower),
        "right" => Obj::Int(p.right),
        "upper" => Obj::Int(p.upper),
        "width" => Obj::Int(p.width()),
        "height" => Obj::Int(p.height()),
        "horizontal_center" => Obj::Float((p.left + p.right) as f64 / 2.0),
        "vertical_center" => Obj::Float((p.lower + p.upper) as f64 / 2.0),
        "cropped_image" => Obj::Image(Rc::new(p.image.clone())),
        _ => return None,
    })
}

/// Coordinates beyond this magnitude are clamped: no image is that large, and sums of two
/// clamped coordinates cannot wrap around in i64.
const MAX_COORD: i64 = 1 << 40;

fn coord(it: &Interp, o: &Obj) -> R<i64> {
    match o {
        Obj::Float(f) if f.is_nan() => Err(it.value_error("cannot convert float NaN to integer")),
        Obj::Float(f) if f.is_infinite() => Err(it.exc(
            ExcKind::OverflowError,
            "cannot convert float infinity to integer",
        )),
        Obj::Float(f) => Ok((f.trunc() as i64).clamp(-MAX_COORD, MAX_COORD)),
        Obj::Big(b) if num_traits::Signed::is_negative(&**b) => Ok(-MAX_COORD),
        Obj::Big(_) => Ok(MAX_COORD),
        o => o
            .as_int()
            .map(|i| i.clamp(-MAX_COORD, MAX_COORD))
            .ok_or_else(|| {
                it.type_error(format!(
                    "coordinates must be numbers, not '{}'",
                    o.type_name()
                ))
            }),
    }
}

fn coords(it: &Interp, args: &[Obj]) -> R<[i64; 4]> {
    if args.len() != 4 {
        return Err(it.type_error(format!(
            "expected left, lower, right, upper ({} given)",
            args.len()
        )));
    }
    Ok([
        coord(it, &args[0])?,
        coord(it, &args[1])?,
        coord(it, &args[2])?,
        coord(it, &args[3])?,
    ])
}

/// `ImagePatch(image)` or `ImagePatch(image, left, lower, right, upper)` (coordinates
/// relative to `image`, like `crop`).
pub fn construct(it: &mut Interp, args: &[Obj], kwargs: &Kwargs) -> R<Obj> {
    let base = match args.first() {
        Some(Obj::Image(i)) => Patch::from_image((**i).clone()),
        Some(Obj::Patch(p)) => (**p).clone(),
        _ => return Err(it.type_error("ImagePatch() needs an image")),
    };
    let mut rest: Vec<Obj> = args[1..].to_vec();
    for name in ["left", "lower", "right", "upper"] {
        if let Some((_, v)) = kwargs.iter().find(|(k, _)| &**k == name) {
            rest.push(v.clone());
        }
    }
    it.alloc(256)?;
    if rest.is_empty() {
        return Ok(Obj::Patch(Rc::new(base)));
    }
    let [l, lo, r, u] = coords(it, &rest)?;
    Ok(Obj::Patch(Rc::new(base.sub_absolute(
        base.left.saturating_add(l),
        base.lower.saturating_add(lo),
        base.left.saturating_add(r),
        base.lower.saturating_add(u),
    ))))
}

/// ViperGPT's `distance`: gap between boxes (negative IoU when they touch), or `|a - b|`.
pub fn distance(it: &mut Interp, a: &Obj, b: &Obj) -> R<Obj> {
    if let (Obj::Patch(a), Obj::Patch(b)) = (a, b) {
        let u = [(a.left - b.right).max(0), (a.lower - b.upper).max(0)];
        let v = [(b.left - a.right).max(0), (b.lower - a.upper).max(0)];
        let d = ((u[0] * u[0] + u[1] * u[1] + v[0] * v[0] + v[1] * v[1]) as f64).sqrt();
        if d > 0.0 {
            return Ok(Obj::Float(d));
        }
        let iw = (a.right.min(b.right) - a.left.max(b.left)).max(0);
        let ih = (a.upper.min(b.upper) - a.lower.max(b.lower)).max(0);
        let inter = (iw * ih) as f64;
        let union = (a.width() * a.height() + b.width() * b.height()) as f64 - inter;
        return Ok(Obj::Float(if union > 0.0 { -inter / union } else { 0.0 }));
    }
    let d = crate::ops::binop(it, crate::ast::BinOp::Sub, a, b)?;
    match d {
        Obj::Int(i) => Ok(Obj::Int(i.abs())),
        Obj::Float(f) => Ok(Obj::Float(f.abs())),
        o => Ok(o),
    }
}

/// ViperGPT's `coerce_to_numeric`: the first number in a string (`"about 3-4"` → 3), or the
/// string itself when it holds none (ValueError with `no_string`).
pub fn coerce_to_numeric(it: &mut Interp, o: &Obj, no_string: bool) -> R<Obj> {
    let s = match o {
        Obj::Int(_) | Obj::Float(_) => return Ok(o.clone()),
        Obj::Bool(b) => return Ok(Obj::Int(*b as i64)),
        Obj::Str(s) => s.clone(),
        o => {
            return Err(it.type_error(format!(
                "coerce_to_numeric() needs a string, not '{}'",
                o.type_name()
            )))
        }
    };
    let kept: String = s
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    let (neg, body) = match kept.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, kept.as_str()),
    };
    let first = body.split('-').next().unwrap_or("");
    let text = if neg {
        format!("-{first}")
    } else {
        first.to_string()
    };
    let parsed = if text.contains('.') {
        text.parse::<f64>().ok().map(Obj::Float)
    } else {
        text.parse::<i64>().ok().map(Obj::Int)
    };
    match parsed {
        Some(v) => Ok(v),
        None if no_string => Err(it.value_error(format!("no number in '{s}'"))),
        None => Ok(Obj::Str(s)),
    }
}

/// Awaits several model calls at once so they land in the same scheduler round.
struct JoinAll {
    futs: Vec<CallFuture>,
    out: Vec<Option<Result<Response, ModuleError>>>,
}

impl Future for JoinAll {
    type Output = Vec<Result<Response, ModuleError>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut pending = false;
        for (f, slot) in this.futs.iter_mut().zip(this.out.iter_mut()) {
            if slot.is_none() {
                match Pin::new(f).poll(cx) {
                    Poll::Ready(r) => *slot = Some(r),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(this.out.iter_mut().filter_map(Option::take).collect())
    }
}

fn text_arg(it: &Interp, method: &str, o: Option<&Obj>) -> R<Rc<str>> {
    match o {
        Some(Obj::Str(s)) => Ok(s.clone()),
        Some(o) => Err(it.type_error(format!(
            "{method}() needs a string, not '{}'",
            o.type_name()
        ))),
        None => Err(it.type_error(format!("{method}() missing a string argument"))),
    }
}

impl<'a> Interp<'a> {
    /// Send model requests (all at once), record them as one trace step, return the answers.
    async fn models(
        &mut self,
        method: &str,
        args: BTreeMap<String, Value>,
        requests: Vec<Request>,
        loc: Loc,
    ) -> R<Vec<Response>> {
        self.model_calls += requests.len();
        if self.model_calls > self.limits.max_calls {
            return Err(self.limit(format!(
                "model-call budget of {} calls exceeded",
                self.limits.max_calls
            )));
        }
        self.tick(requests.len() as u64 * 16)?;
        let start = Instant::now();
        self.ctx.drain_calls();
        let join = JoinAll {
            out: requests.iter().map(|_| None).collect(),
            futs: requests.into_iter().map(|r| self.ctx.call(r)).collect(),
        };
        let results = join.await;
        self.note_wait(start.elapsed());
        let calls = self.ctx.drain_calls();
        let mut out = Vec::with_capacity(results.len());
        let mut error = None;
        for r in results {
            match r {
                Ok(resp) => out.push(resp),
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        self.steps.push(TraceStep {
            index: self.steps.len(),
            line: loc.line,
            text: self.source_line(loc.line),
            module: method.to_string(),
            output_var: None,
            args,
            output: None,
            calls,
            micros: start.elapsed().as_micros() as u64,
            error: error.clone(),
        });
        match error {
            Some(e) => Err(self.module_failed(e)),
            None => Ok(out),
        }
    }

    fn module_failed(&self, message: String) -> Ctl {
        Ctl::Fatal(
            FatalKind::ModuleFailed,
            message,
            self.frames.iter().rev().cloned().collect(),
        )
    }

    fn set_output(&mut self, v: Value) {
        if let Some(s) = self.steps.last_mut() {
            s.output = Some(v);
        }
    }

    fn bad_response(&self, method: &str, r: &Response) -> Ctl {
        self.module_failed(format!("{method}: unexpected {} response", r.kind_name()))
    }

    async fn one_model(
        &mut self,
        method: &str,
        args: BTreeMap<String, Value>,
        req: Request,
        loc: Loc,
    ) -> R<Response> {
        let mut v = self.models(method, args, vec![req], loc).await?;
        v.pop()
            .ok_or_else(|| self.module_failed(format!("{method}: no response")))
    }

    async fn find_patches(
        &mut self,
        p: &Patch,
        method: &str,
        object: Rc<str>,
        loc: Loc,
    ) -> R<Vec<Patch>> {
        let args = BTreeMap::from([
            ("image".to_string(), Value::Image(p.image.clone())),
            ("object".to_string(), Value::Text(object.to_string())),
        ]);
        let req = Request::Detect {
            image: p.image.clone(),
            object: object.to_string(),
        };
        let resp = self.one_model(method, args, req, loc).await?;
        let Response::Detections { boxes, scores } = resp else {
            return Err(self.bad_response(method, &resp));
        };
        let snapped: Vec<BBox> = boxes
            .iter()
            .map(|b| BBox::new(b.x0.round(), b.y0.round(), b.x1.round(), b.y1.round()))
            .collect();
        let patches: Vec<Patch> = snapped
            .iter()
            .map(|b| Patch::from_image(p.image.crop(*b)))
            .collect();
        self.alloc_items(patches.len() * 8)?;
        let out = if method == "exists" {
            Value::Bool(!patches.is_empty())
        } else {
            Value::Boxes(Boxes {
                image: p.image.clone(),
                boxes: snapped,
                scores,
            })
        };
        self.set_output(out);
        Ok(patches)
    }

    /// `patch.method(...)`.
    pub async fn patch_method(
        &mut self,
        p: Rc<Patch>,
        name: &str,
        args: Vec<Obj>,
        kwargs: Kwargs,
        loc: Loc,
    ) -> R<Obj> {
        let img = || ("image".to_string(), Value::Image(p.image.clone()));
        let mut args = args;
        for (k, v) in kwargs {
            let pos = match (name, &*k) {
                ("find" | "exists", "object_name")
                | ("simple_query", "question")
                | ("llm_query", "question") => 0,
                ("verify_property", "object_name") | ("best_text_match", "option_list") => 0,
                ("verify_property", "attribute" | "property") => 1,
                ("best_text_match", "prefix") | ("llm_query", "long_answer") => 1,
                _ => {
                    return Err(self
                        .type_error(format!("{name}() got an unexpected keyword argument '{k}'")))
                }
            };
            while args.len() <= pos {
                args.push(Obj::None);
            }
            args[pos] = v;
        }
        match name {
            "find" | "exists" => {
                let object = text_arg(self, name, args.first())?;
                let found = self.find_patches(&p, name, object, loc).await?;
                if name == "exists" {
                    return Ok(Obj::Bool(!found.is_empty()));
                }
                let items = found.into_iter().map(|x| Obj::Patch(Rc::new(x))).collect();
                self.new_list(items)
            }
            "verify_property" => {
                let object = text_arg(self, name, args.first())?;
                let property = text_arg(self, name, args.get(1))?;
                let text = format!("{property} {object}");
                let a = BTreeMap::from([img(), ("text".to_string(), Value::Text(text.clone()))]);
                let resp = self
                    .one_model(
                        name,
                        a,
                        Request::Verify {
                            image: p.image.clone(),
                            text,
                        },
                        loc,
                    )
                    .await?;
                let Response::Verdict { yes, .. } = resp else {
                    return Err(self.bad_response(name, &resp));
                };
                self.set_output(Value::Bool(yes));
                Ok(Obj::Bool(yes))
            }
            "best_text_match" => {
                let options = match args.first() {
                    Some(o) => self.collect(o)?,
                    None => return Err(self.type_error("best_text_match() needs option_list")),
                };
                let mut texts = Vec::with_capacity(options.len());
                for o in &options {
                    texts.push(text_arg(self, name, Some(o))?.to_string());
                }
                if texts.is_empty() {
                    return Err(self.value_error("best_text_match() needs at least one option"));
                }
                let a = BTreeMap::from([
                    img(),
                    ("options".to_string(), Value::Text(texts.join(", "))),
                ]);
                let req = Request::Classify {
                    image: p.image.clone(),
                    options: texts.clone(),
                };
                let resp = self.one_model(name, a, req, loc).await?;
                let Response::Choice { index, .. } = resp else {
                    return Err(self.bad_response(name, &resp));
                };
                let Some(choice) = texts.get(index) else {
                    return Err(self.module_failed(format!("{name}: choice {index} out of range")));
                };
                self.set_output(Value::Text(choice.clone()));
                Ok(Obj::str(choice.as_str()))
            }
            "simple_query" => {
                let question = match args.first() {
                    None | Some(Obj::None) => "What is this?".into(),
                    o => text_arg(self, name, o)?,
                };
                let a = BTreeMap::from([
                    img(),
                    ("question".to_string(), Value::Text(question.to_string())),
                ]);
                let req = Request::Vqa {
                    image: p.image.clone(),
                    question: question.to_string(),
                };
                let resp = self.one_model(name, a, req, loc).await?;
                let Response::Answer { text, .. } = resp else {
                    return Err(self.bad_response(name, &resp));
                };
                self.set_output(Value::Text(text.clone()));
                self.new_str(text)
            }
            "compute_depth" => {
                let resp = self
                    .one_model(
                        name,
                        BTreeMap::from([img()]),
                        Request::Depth {
                            image: p.image.clone(),
                        },
                        loc,
                    )
                    .await?;
                let Response::Depth { value } = resp else {
                    return Err(self.bad_response(name, &resp));
                };
                self.set_output(Value::Number(value as f64));
                Ok(Obj::Float(value as f64))
            }
            "llm_query" => {
                self.llm_query(args.first().unwrap_or(&Obj::None), loc)
                    .await
            }
            "crop" => {
                let [l, lo, r, u] = coords(self, &args)?;
                self.alloc(256)?;
                let sub = p.sub_absolute(
                    p.left.saturating_add(l),
                    p.lower.saturating_add(lo),
                    p.left.saturating_add(r),
                    p.lower.saturating_add(u),
                );
                Ok(Obj::Patch(Rc::new(sub)))
            }
            "overlaps_with" => {
                let [l, lo, r, u] = coords(self, &args)?;
                Ok(Obj::Bool(
                    p.left <= r && p.right >= l && p.lower <= u && p.upper >= lo,
                ))
            }
            _ => Err(self.exc(
                ExcKind::AttributeError,
                format!("'ImagePatch' object has no attribute '{name}'"),
            )),
        }
    }

    pub async fn llm_query(&mut self, question: &Obj, loc: Loc) -> R<Obj> {
        let q = text_arg(self, "llm_query", Some(question))?;
        let a = BTreeMap::from([("question".to_string(), Value::Text(q.to_string()))]);
        let resp = self
            .one_model(
                "llm_query",
                a,
                Request::Llm {
                    prompt: q.to_string(),
                },
                loc,
            )
            .await?;
        let Response::Text { text } = resp else {
            return Err(self.bad_response("llm_query", &resp));
        };
        self.set_output(Value::Text(text.clone()));
        self.new_str(text)
    }

    pub async fn best_image_match(
        &mut self,
        patches: &Obj,
        content: &Obj,
        return_index: bool,
        loc: Loc,
    ) -> R<Obj> {
        let items = self.collect(patches)?;
        if items.is_empty() {
            return Ok(Obj::None);
        }
        let mut images = Vec::with_capacity(items.len());
        for x in &items {
            match x {
                Obj::Patch(p) => images.push(p.image.clone()),
                o => {
                    return Err(self.type_error(format!(
                        "best_image_match() needs patches, not '{}'",
                        o.type_name()
                    )))
                }
            }
        }
        let texts: Vec<String> = match content {
            Obj::Str(s) => vec![s.to_string()],
            o => {
                let mut v = Vec::new();
                for x in self.collect(o)? {
                    v.push(text_arg(self, "best_image_match", Some(&x))?.to_string());
                }
                v
            }
        };
        if texts.is_empty() {
            return Err(self.value_error("best_image_match() needs some content"));
        }
        let mut requests = Vec::with_capacity(images.len() * texts.len());
        for image in &images {
            for t in &texts {
                requests.push(Request::Verify {
                    image: image.clone(),
                    text: t.clone(),
                });
            }
        }
        let a = BTreeMap::from([("content".to_string(), Value::Text(texts.join(", ")))]);
        let resps = self.models("best_image_match", a, requests, loc).await?;
        let mut best = (0usize, f64::NEG_INFINITY);
        for (i, chunk) in resps.chunks(texts.len()).enumerate() {
            let mut total = 0.0;
            for r in chunk {
                match r {
                    Response::Verdict { yes, score } => {
                        total += if *yes {
                            *score as f64
                        } else {
                            -(*score as f64)
                        }
                    }
                    other => return Err(self.bad_response("best_image_match", other)),
                }
            }
            let mean = total / texts.len() as f64;
            if mean > best.1 {
                best = (i, mean);
            }
        }
        self.set_output(Value::Image(images[best.0].clone()));
        if return_index {
            return Ok(Obj::Int(best.0 as i64));
        }
        Ok(items[best.0].clone())
    }
}
