//! Loaders for users' real data: GQA, NLVR2 and a generic JSONL format.
//!
//! All produce [`Example`]s. A bad row (missing field, unreadable image, unknown label) is
//! reported as a [`RowError`] with file and line and skipped; the rest still loads.

use crate::example::{path_inside, Example, ImageInput, LoadReport, RowError};
use anyhow::Context;
use sdvp_core::value::normalize_answer;
use sdvp_core::ImageRef;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn image_input(name: &str, source: &str, path: PathBuf) -> Result<ImageInput, String> {
    let (w, h) =
        image::image_dimensions(&path).map_err(|e| format!("image {}: {e}", path.display()))?;
    Ok(ImageInput {
        name: name.to_string(),
        image: ImageRef::new(source, w, h),
        path,
    })
}

fn str_field<'a>(row: &'a Json, key: &str) -> Result<&'a str, String> {
    row.get(key)
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("field `{key}` is missing or not a string"))
}

/// 1-based line of the first `"key"` followed by `:` in `text` (GQA files are one object).
fn line_of_key(text: &str, key: &str) -> usize {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let at = from + i;
        let rest = text[at + needle.len()..].trim_start();
        if rest.starts_with(':') {
            return text[..at].matches('\n').count() + 1;
        }
        from = at + needle.len();
    }
    1
}

/// GQA: `questions` is a JSON object keyed by question id (`imageId`, `question`,
/// `answer`, `fullAnswer`, `types`, `semantic`, `semanticStr`…); images are
/// `images/IMAGEID.jpg`. `question_type` is `types.detailed` (else `types.semantic`).
pub fn load_gqa(questions: &Path, images: &Path, split: &str) -> anyhow::Result<LoadReport> {
    let text = std::fs::read_to_string(questions)
        .with_context(|| format!("cannot read {}", questions.display()))?;
    let all: serde_json::Map<String, Json> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON object of questions", questions.display()))?;
    let mut keys: Vec<&String> = all.keys().collect();
    keys.sort();
    let mut report = LoadReport::default();
    for qid in keys {
        let row = &all[qid];
        let built = (|| -> Result<Example, String> {
            let image_id = str_field(row, "imageId")?;
            let question = str_field(row, "question")?;
            let answer = str_field(row, "answer")?;
            let types = row.get("types");
            let qtype = types
                .and_then(|t| t.get("detailed").or_else(|| t.get("semantic")))
                .and_then(|v| v.as_str())
                .unwrap_or("unknown");
            let file = path_inside(images, format!("{image_id}.jpg"))?;
            let img = image_input("IMAGE", image_id, file)?;
            let mut meta = BTreeMap::new();
            for k in [
                "fullAnswer",
                "types",
                "semantic",
                "semanticStr",
                "isBalanced",
                "groups",
                "annotations",
            ] {
                if let Some(v) = row.get(k) {
                    meta.insert(k.to_string(), v.clone());
                }
            }
            meta.insert("imageId".into(), Json::String(image_id.into()));
            Ok(Example {
                id: qid.clone(),
                task: "gqa".into(),
                split: split.into(),
                question: question.into(),
                answer: normalize_answer(answer),
                question_type: qtype.into(),
                images: vec![img],
                gold_step: None,
                gold_python: None,
                meta,
            })
        })();
        match built {
            Ok(e) => report.examples.push(e),
            Err(message) => report.skipped.push(RowError {
                file: questions.to_path_buf(),
                line: line_of_key(&text, qid),
                message: format!("question {qid}: {message}"),
            }),
        }
    }
    Ok(report)
}

/// The two image file names of an NLVR2 identifier: `dev-850-0-0` → `dev-850-0-img0.png`,
/// `dev-850-0-img1.png` (the identifier minus its last part).
pub fn nlvr2_image_names(identifier: &str) -> Option<(String, String)> {
    let (stem, last) = identifier.rsplit_once('-')?;
    if stem.is_empty() || last.is_empty() || !stem.contains('-') {
        return None;
    }
    Some((format!("{stem}-img0.png"), format!("{stem}-img1.png")))
}

fn for_each_line(
    path: &Path,
    report: &mut LoadReport,
    mut f: impl FnMut(usize, &str, &mut LoadReport),
) -> anyhow::Result<()> {
    let bad = crate::example::each_line(path, |n, line| f(n, line, report))?;
    report.skipped.extend(bad);
    report.skipped.sort_by_key(|r| r.line);
    Ok(())
}

/// NLVR2: JSONL rows with `identifier`, `sentence`, `label` (`True`/`False`), optional
/// `left_url`/`right_url` and `directory` (train images sit in numbered folders).
/// Labels become answers `yes`/`no`; the original is kept in `meta.label`.
pub fn load_nlvr2(path: &Path, images: &Path, split: &str) -> anyhow::Result<LoadReport> {
    let mut report = LoadReport::default();
    for_each_line(path, &mut report, |line_no, line, report| {
        let built = (|| -> Result<Example, String> {
            let row: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
            let id = str_field(&row, "identifier")?;
            let sentence = str_field(&row, "sentence")?;
            let answer = match str_field(&row, "label")? {
                "True" | "true" => "yes",
                "False" | "false" => "no",
                other => return Err(format!("label {other:?} is neither True nor False")),
            };
            let (l, r) = nlvr2_image_names(id)
                .ok_or_else(|| format!("identifier {id:?} is not like dev-850-0-0"))?;
            let dir = match row.get("directory") {
                Some(Json::Number(n)) => images.join(n.to_string()),
                Some(Json::String(s)) => path_inside(images, s)?,
                _ => images.to_path_buf(),
            };
            let mut meta = BTreeMap::new();
            for k in [
                "label",
                "left_url",
                "right_url",
                "synset",
                "query",
                "writer",
                "directory",
            ] {
                if let Some(v) = row.get(k) {
                    meta.insert(k.to_string(), v.clone());
                }
            }
            Ok(Example {
                id: id.into(),
                task: "nlvr2".into(),
                split: split.into(),
                question: sentence.into(),
                answer: answer.into(),
                question_type: "nlvr".into(),
                images: vec![
                    image_input("LEFT", l.trim_end_matches(".png"), path_inside(&dir, &l)?)?,
                    image_input("RIGHT", r.trim_end_matches(".png"), path_inside(&dir, &r)?)?,
                ],
                gold_step: None,
                gold_python: None,
                meta,
            })
        })();
        match built {
            Ok(e) => report.examples.push(e),
            Err(message) => report.skipped.push(RowError {
                file: path.to_path_buf(),
                line: line_no,
                message,
            }),
        }
    })?;
    Ok(report)
}

/// Generic JSONL: `{"id"?, "image": "a.png" | "images": ["l.png", "r.png"], "question",
/// "answer", "question_type"?, "program"? (step), "python"?}`. Image paths are relative to
/// the file's folder; one image is `IMAGE`, two are `LEFT`/`RIGHT`.
pub fn load_jsonl(path: &Path, task: &str, split: &str) -> anyhow::Result<LoadReport> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut report = LoadReport::default();
    for_each_line(path, &mut report, |line_no, line, report| {
        let built = (|| -> Result<Example, String> {
            let row: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
            let files: Vec<String> = match (row.get("image"), row.get("images")) {
                (Some(Json::String(s)), _) => vec![s.clone()],
                (_, Some(Json::Array(a))) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or("`images` must hold strings")
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err("needs `image` (a path) or `images` (a list of paths)".into()),
            };
            let names: &[&str] = match files.len() {
                1 => &["IMAGE"],
                2 => &["LEFT", "RIGHT"],
                n => return Err(format!("{n} images; one or two are supported")),
            };
            let images = files
                .iter()
                .zip(names)
                .map(|(f, n)| image_input(n, f, path_inside(&base, f)?))
                .collect::<Result<Vec<_>, _>>()?;
            let opt = |k: &str| row.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let answer = match row.get("answer") {
                Some(Json::String(s)) => normalize_answer(s),
                Some(Json::Bool(b)) => if *b { "yes" } else { "no" }.into(),
                Some(Json::Number(n)) => n.to_string(),
                _ => return Err("field `answer` is missing".into()),
            };
            Ok(Example {
                id: opt("id").unwrap_or_else(|| format!("{task}-{split}-{line_no}")),
                task: task.into(),
                split: split.into(),
                question: str_field(&row, "question")?.into(),
                answer,
                question_type: opt("question_type").unwrap_or_else(|| "unknown".into()),
                images,
                gold_step: opt("program"),
                gold_python: opt("python"),
                meta: BTreeMap::new(),
            })
        })();
        match built {
            Ok(e) => report.examples.push(e),
            Err(message) => report.skipped.push(RowError {
                file: path.to_path_buf(),
                line: line_no,
                message,
            }),
        }
    })?;
    Ok(report)
}

/// A task split from any layout `--data` may point at: the world's (and generic)
/// `DIR/TASK/SPLIT.jsonl`; real GQA (`TASK=gqa`: `DIR/[questions/]SPLIT_balanced_questions.json`
/// or `SPLIT_questions.json`, images in `DIR/images`); real NLVR2 (`TASK=nlvr2`:
/// `DIR/[data/]SPLIT.json[l]`, images in `DIR/images/SPLIT`, `DIR/SPLIT` or `DIR/images`).
pub fn load_task(dir: &Path, task: &str, split: &str) -> anyhow::Result<LoadReport> {
    let jsonl = crate::example::split_path(dir, task, split);
    if jsonl.is_file() {
        return crate::example::load_split(dir, task, split);
    }
    let mut tried = vec![jsonl.display().to_string()];
    let first = |cands: Vec<PathBuf>, tried: &mut Vec<String>| -> Option<PathBuf> {
        let hit = cands.iter().find(|p| p.exists()).cloned();
        tried.extend(cands.iter().map(|p| p.display().to_string()));
        hit
    };
    match task {
        "gqa" => {
            let q = first(
                vec![
                    dir.join("questions")
                        .join(format!("{split}_balanced_questions.json")),
                    dir.join(format!("{split}_balanced_questions.json")),
                    dir.join("questions")
                        .join(format!("{split}_questions.json")),
                    dir.join(format!("{split}_questions.json")),
                ],
                &mut tried,
            );
            if let Some(q) = q {
                return load_gqa(&q, &dir.join("images"), split);
            }
        }
        "nlvr2" => {
            let q = first(
                vec![
                    dir.join("data").join(format!("{split}.json")),
                    dir.join(format!("{split}.json")),
                    dir.join(format!("{split}.jsonl")),
                ],
                &mut tried,
            );
            if let Some(q) = q {
                let images = [
                    dir.join("images").join(split),
                    dir.join(split),
                    dir.join("images"),
                ]
                .into_iter()
                .find(|p| p.is_dir())
                .unwrap_or_else(|| dir.join("images"));
                return load_nlvr2(&q, &images, split);
            }
        }
        _ => {}
    }
    anyhow::bail!(
        "no {task}/{split} data under {}: tried {}",
        dir.display(),
        tried.join(", ")
    )
}
