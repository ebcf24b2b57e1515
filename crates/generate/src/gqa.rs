//! GQA's `semantic` annotation → step programs.
//!
//! Every GQA question carries its functional program: a list of
//! `{operation, dependencies, argument}` (e.g. `select: table (13)`, `relate: cup,on,s (9)`,
//! `query: color`). Converting it gives real GQA a gold step program over the registry's
//! modules (LOC, COUNT, CROP and its directions, VQA, EVAL, RESULT), so the gold generator,
//! sub-task mining and distillation work on real GQA as on the world.
//!
//! The mapping follows how a person would write the VisProg program:
//! `select` locates; `filter` re-locates with the attribute in the name (a negated filter
//! keeps the boxes and only words the description); `relate` crops in the relation's
//! direction (left/right/above/below; depth relations keep the whole image; other
//! relations crop around the anchor) and locates there, or, for GQA's unnamed `_` object,
//! keeps the crop as "the thing related to the anchor"; `query`, `verify`, `choose`,
//! `common` and comparatives ask VQA on the object's crop; `exist` counts; `and`, `or`,
//! `same` and `different` compare answers in EVAL. The image ids in arguments are dropped.

use serde::Deserialize;

/// One operation of GQA's `semantic` list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SemanticOp {
    pub operation: String,
    #[serde(default)]
    pub dependencies: Vec<usize>,
    #[serde(default)]
    pub argument: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("operation {index} (`{operation}`) is not supported")]
    Unsupported { index: usize, operation: String },
    #[error("operation {index} (`{operation}`): {message}")]
    Bad {
        index: usize,
        operation: String,
        message: String,
    },
    #[error("the semantic program is empty")]
    Empty,
    #[error("not a GQA semantic list: {0}")]
    Format(String),
}

#[derive(Debug, Clone)]
struct Obj {
    /// LOC's boxes, or none for GQA's unnamed objects.
    boxes: Option<String>,
    /// The image the object was searched in.
    image: String,
    /// How sub-questions name it ("cup", "thing on the table").
    phrase: String,
}

#[derive(Debug, Clone)]
enum Node {
    Scene,
    Obj(Obj),
    /// A variable holding a text answer (`yes`/`no` for checks).
    Text(String),
}

#[derive(Default)]
struct Builder {
    lines: Vec<String>,
    boxes: usize,
    images: usize,
    answers: usize,
}

/// Quotes would end the step's string literal; the converter never needs them.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\'' | '"' | '\\' | '{' | '}'))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `table (13)` → `table`; `dishwasher (-)` → `dishwasher`.
fn strip_id(arg: &str) -> String {
    let arg = arg.trim();
    match arg.rfind(" (") {
        Some(i) if arg.ends_with(')') => clean(&arg[..i]),
        _ => clean(arg),
    }
}

impl Builder {
    fn loc(&mut self, image: &str, object: &str) -> String {
        let v = format!("BOX{}", self.boxes);
        self.boxes += 1;
        self.lines
            .push(format!("{v}=LOC(image={image},object='{object}')"));
        v
    }
    fn crop(&mut self, module: &str, image: &str, boxes: &str) -> String {
        let v = format!("IMAGE{}", self.images);
        self.images += 1;
        self.lines
            .push(format!("{v}={module}(image={image},box={boxes})"));
        v
    }
    fn answer(&mut self, rhs: String) -> String {
        let v = format!("ANSWER{}", self.answers);
        self.answers += 1;
        self.lines.push(format!("{v}={rhs}"));
        v
    }
    fn vqa(&mut self, image: &str, question: &str) -> String {
        self.answer(format!("VQA(image={image},question='{}')", clean(question)))
    }
    fn eval(&mut self, expr: &str) -> String {
        self.answer(format!("EVAL(expr=\"{expr}\")"))
    }
    /// The image showing `o` (its crop when it was located).
    fn view(&mut self, o: &Obj) -> String {
        match &o.boxes {
            Some(b) => self.crop("CROP", &o.image, b),
            None => o.image.clone(),
        }
    }
    fn exists(&mut self, o: &Obj) -> String {
        match &o.boxes {
            Some(b) => {
                let n = self.answer(format!("COUNT(box={b})"));
                self.eval(&format!("'yes' if {{{n}}} > 0 else 'no'"))
            }
            None => self.vqa(&o.image, &format!("Is there a {}?", o.phrase)),
        }
    }
}

/// The crop module for "the new object is `rel` the anchor" (`subject`) or "the anchor is
/// `rel` the new object" (object role).
fn relation_crop(rel: &str, subject: bool) -> &'static str {
    let r = rel.to_lowercase();
    let flip = |a: &'static str, b: &'static str| if subject { a } else { b };
    if r.contains("left of") {
        flip("CROP_LEFTOF", "CROP_RIGHTOF")
    } else if r.contains("right of") {
        flip("CROP_RIGHTOF", "CROP_LEFTOF")
    } else if r == "above" || r.contains("on top of") {
        flip("CROP_ABOVE", "CROP_BELOW")
    } else if r == "below" || r.contains("under") || r.contains("beneath") {
        flip("CROP_BELOW", "CROP_ABOVE")
    } else if r.contains("in front of") {
        flip("CROP_INFRONTOF", "CROP_BEHIND")
    } else if r.contains("behind") {
        flip("CROP_BEHIND", "CROP_INFRONTOF")
    } else {
        "CROP"
    }
}

/// `name,relation,s|o (id)` → (name, relation, new object is the subject).
fn parse_relation(arg: &str) -> Option<(String, String, bool)> {
    let parts: Vec<&str> = arg.split(',').collect();
    if parts.len() < 3 {
        return None;
    }
    let name = clean(parts[0]);
    let role = strip_id(parts[parts.len() - 1]);
    let rel = clean(&parts[1..parts.len() - 1].join(","));
    let subject = match role.as_str() {
        "s" => true,
        "o" => false,
        _ => return None,
    };
    Some((name, rel, subject))
}

/// Parse GQA's `semantic` JSON value.
pub fn parse_semantic(value: &serde_json::Value) -> Result<Vec<SemanticOp>, ConvertError> {
    serde_json::from_value(value.clone()).map_err(|e| ConvertError::Format(e.to_string()))
}

/// Convert a semantic program to a step program over the `IMAGE` input.
pub fn convert(ops: &[SemanticOp]) -> Result<String, ConvertError> {
    if ops.is_empty() {
        return Err(ConvertError::Empty);
    }
    let mut b = Builder::default();
    let mut nodes: Vec<Node> = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let bad = |message: &str| ConvertError::Bad {
            index,
            operation: op.operation.clone(),
            message: message.to_string(),
        };
        let dep = |k: usize| -> Result<Node, ConvertError> {
            op.dependencies
                .get(k)
                .and_then(|&d| (d < index).then(|| nodes[d].clone()))
                .ok_or_else(|| bad("missing or forward dependency"))
        };
        let obj = |k: usize| -> Result<Obj, ConvertError> {
            match dep(k)? {
                Node::Obj(o) => Ok(o),
                Node::Scene => Ok(Obj {
                    boxes: None,
                    image: "IMAGE".into(),
                    phrase: "scene".into(),
                }),
                Node::Text(_) => Err(bad("expects an object, got an answer")),
            }
        };
        let text = |k: usize| -> Result<String, ConvertError> {
            match dep(k)? {
                Node::Text(v) => Ok(v),
                _ => Err(bad("expects an answer, got an object")),
            }
        };
        let (verb, detail) = match op.operation.trim().split_once(' ') {
            Some((v, d)) => (v, d.trim()),
            None => (op.operation.trim(), ""),
        };
        let arg = op.argument.trim();
        let node = match verb {
            "select" => {
                let name = strip_id(arg);
                if name == "scene" {
                    Node::Scene
                } else {
                    let boxes = b.loc("IMAGE", &name);
                    Node::Obj(Obj {
                        boxes: Some(boxes),
                        image: "IMAGE".into(),
                        phrase: name,
                    })
                }
            }
            "filter" => {
                let o = obj(0)?;
                let value = clean(arg);
                if let Some(neg) = value.strip_prefix("not(").and_then(|v| v.strip_suffix(')')) {
                    Node::Obj(Obj {
                        phrase: format!("{} that is not {neg}", o.phrase),
                        ..o
                    })
                } else {
                    let phrase = format!("{value} {}", o.phrase);
                    let boxes = b.loc(&o.image, &phrase);
                    Node::Obj(Obj {
                        boxes: Some(boxes),
                        image: o.image,
                        phrase,
                    })
                }
            }
            "relate" => {
                let anchor = obj(0)?;
                let (name, rel, subject) = parse_relation(arg)
                    .ok_or_else(|| bad("relation is not `name,relation,s|o`"))?;
                Node::Obj(relate(&mut b, &anchor, &name, &rel, subject))
            }
            "query" => {
                let node = dep(0)?;
                let attr = clean(arg);
                match node {
                    Node::Scene => Node::Text(b.vqa("IMAGE", &format!("Which {attr} is this?"))),
                    _ => {
                        let o = obj(0)?;
                        let image = b.view(&o);
                        let q = if attr == "name" {
                            format!("What is the {}?", o.phrase)
                        } else {
                            format!("What {attr} is the {}?", o.phrase)
                        };
                        Node::Text(b.vqa(&image, &q))
                    }
                }
            }
            "verify" if detail == "rel" => {
                let anchor = obj(0)?;
                let (name, rel, subject) = parse_relation(arg)
                    .ok_or_else(|| bad("relation is not `name,relation,s|o`"))?;
                let found = relate(&mut b, &anchor, &name, &rel, subject);
                Node::Text(b.exists(&found))
            }
            "verify" => {
                let o = obj(0)?;
                let image = b.view(&o);
                Node::Text(b.vqa(&image, &format!("Is the {} {}?", o.phrase, clean(arg))))
            }
            "exist" => {
                let o = obj(0)?;
                Node::Text(b.exists(&o))
            }
            "choose" if detail == "rel" => {
                let anchor = obj(0)?;
                let (name, rels, subject) =
                    parse_relation(arg).ok_or_else(|| bad("relation is not `name,rel|rel,s|o`"))?;
                let options = rels.replace('|', " or ");
                let q = if subject {
                    format!("Is the {name} {options} the {}?", anchor.phrase)
                } else {
                    format!("Is the {} {options} the {name}?", anchor.phrase)
                };
                Node::Text(b.vqa("IMAGE", &q))
            }
            "choose" | "compare" if op.dependencies.len() == 2 => {
                let (x, y) = (obj(0)?, obj(1)?);
                let quality = if detail.is_empty() {
                    clean(arg)
                } else {
                    clean(detail)
                };
                Node::Text(b.vqa(
                    "IMAGE",
                    &format!("Which is {quality}, the {} or the {}?", x.phrase, y.phrase),
                ))
            }
            "choose" => {
                let o = obj(0)?;
                let image = b.view(&o);
                let options = clean(arg).replace('|', " or ");
                Node::Text(b.vqa(&image, &format!("Is the {} {options}?", o.phrase)))
            }
            "same" | "different" => {
                let attr = if detail.is_empty() {
                    "type".to_string()
                } else {
                    clean(detail)
                };
                let same = verb == "same";
                if op.dependencies.len() >= 2 {
                    let (x, y) = (obj(0)?, obj(1)?);
                    let (ix, iy) = (b.view(&x), b.view(&y));
                    let ax = b.vqa(&ix, &format!("What {attr} is the {}?", x.phrase));
                    let ay = b.vqa(&iy, &format!("What {attr} is the {}?", y.phrase));
                    let cmp = if same { "==" } else { "!=" };
                    Node::Text(b.eval(&format!("'yes' if {{{ax}}} {cmp} {{{ay}}} else 'no'")))
                } else {
                    let o = obj(0)?;
                    let word = if same { "the same" } else { "different" };
                    Node::Text(b.vqa(
                        &o.image,
                        &format!("Do all the {} have {word} {attr}?", o.phrase),
                    ))
                }
            }
            "common" => {
                let (x, y) = (obj(0)?, obj(1)?);
                Node::Text(b.vqa(
                    "IMAGE",
                    &format!(
                        "What do the {} and the {} have in common?",
                        x.phrase, y.phrase
                    ),
                ))
            }
            "and" | "or" => {
                let (x, y) = (text(0)?, text(1)?);
                Node::Text(b.eval(&format!(
                    "'yes' if {{{x}}} == 'yes' {verb} {{{y}}} == 'yes' else 'no'"
                )))
            }
            _ => {
                return Err(ConvertError::Unsupported {
                    index,
                    operation: op.operation.clone(),
                })
            }
        };
        nodes.push(node);
    }
    match nodes.last() {
        Some(Node::Text(v)) => {
            let v = v.clone();
            b.lines.push(format!("FINAL_RESULT=RESULT(var={v})"));
            Ok(b.lines.join("\n"))
        }
        _ => Err(ConvertError::Bad {
            index: ops.len() - 1,
            operation: ops[ops.len() - 1].operation.clone(),
            message: "the program does not end in an answer".into(),
        }),
    }
}

fn relate(b: &mut Builder, anchor: &Obj, name: &str, rel: &str, subject: bool) -> Obj {
    let module = relation_crop(rel, subject);
    let region = match &anchor.boxes {
        Some(boxes) => b.crop(module, &anchor.image, boxes),
        None => anchor.image.clone(),
    };
    if name == "_" || name.is_empty() {
        let phrase = if subject {
            format!("thing {rel} the {}", anchor.phrase)
        } else {
            format!("thing the {} is {rel}", anchor.phrase)
        };
        Obj {
            boxes: None,
            image: region,
            phrase,
        }
    } else {
        let boxes = b.loc(&region, name);
        Obj {
            boxes: Some(boxes),
            image: region,
            phrase: name.to_string(),
        }
    }
}
