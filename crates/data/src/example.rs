//! The one example schema shared by the world, the real-data loaders and evaluation.
//!
//! On disk a split is `DIR/TASK/SPLIT.jsonl`, one [`Example`] per line (schema
//! `sdvp.example/1`). Image paths in the file are relative to `DIR`; [`load_split`] makes
//! them absolute. A bad line is reported with file and line and skipped, never fatal.

use anyhow::Context;
use sdvp_core::{BBox, ImageRef, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const EXAMPLE_SCHEMA: &str = "sdvp.example/1";

/// One program input image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInput {
    /// The program input name: `IMAGE`, or `LEFT`/`RIGHT` for image pairs.
    pub name: String,
    /// What programs see; `source` is the world image id or the dataset's image id.
    pub image: ImageRef,
    /// The image file (relative to the data dir on disk, absolute once loaded).
    pub path: PathBuf,
}

/// A question with its images, gold answer and gold programs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub id: String,
    pub task: String,
    pub split: String,
    pub question: String,
    /// Gold answer, normalised (`yes`/`no` for NLVR's `True`/`False`).
    pub answer: String,
    pub question_type: String,
    pub images: Vec<ImageInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold_step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold_python: Option<String>,
    /// Free-form: `domain`, `boxes` (pretrain regions), the dataset's own fields…
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, serde_json::Value>,
}

impl Example {
    /// Program inputs: `IMAGE` or `LEFT`/`RIGHT` bound to image values.
    pub fn inputs(&self) -> BTreeMap<String, Value> {
        self.images
            .iter()
            .map(|i| (i.name.clone(), Value::Image(i.image.clone())))
            .collect()
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// What a loader read and what it skipped.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub examples: Vec<Example>,
    pub skipped: Vec<RowError>,
}

/// `root/rel` when `rel`, a path read from a data file, stays inside `root`: relative, with
/// no `..`, root or drive component. Checked on the text, so a symbolic link the root's
/// owner put inside the root is followed; a file cannot name `/etc/passwd` or `../../x`.
pub fn path_inside(root: &Path, rel: impl AsRef<Path>) -> Result<PathBuf, String> {
    let rel = rel.as_ref();
    let safe = !rel.as_os_str().is_empty()
        && rel.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
    if safe {
        Ok(root.join(rel))
    } else {
        Err(format!(
            "image path {:?} is outside the dataset folder {} (paths must be relative, without `..`)",
            rel.display().to_string(),
            root.display()
        ))
    }
}

pub fn split_path(dir: &Path, task: &str, split: &str) -> PathBuf {
    dir.join(task).join(format!("{split}.jsonl"))
}

/// Lines with their 1-based numbers, and the lines that could not be read.
pub type NumberedLines = (Vec<(usize, String)>, Vec<RowError>);

/// Calls `f(number, line)` for each non-empty line of a text file, streaming (a split of
/// 100k rows is never held as text); a line that is not UTF-8 is returned as a [`RowError`]
/// and skipped (one bad byte never refuses a whole split). A leading BOM and `\r` are cut.
pub fn each_line(path: &Path, mut f: impl FnMut(usize, &str)) -> anyhow::Result<Vec<RowError>> {
    use std::io::BufRead;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bad = Vec::new();
    for (i, raw) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let raw = raw.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        let raw = raw.strip_suffix(b"\r").unwrap_or(&raw);
        match std::str::from_utf8(raw) {
            Ok(s) if s.trim().is_empty() => {}
            Ok(s) => f(i + 1, s.strip_prefix('\u{feff}').unwrap_or(s)),
            Err(e) => bad.push(RowError {
                file: path.to_path_buf(),
                line: i + 1,
                message: format!("not UTF-8 text (byte {})", e.valid_up_to()),
            }),
        }
    }
    Ok(bad)
}

/// The non-empty lines of a text file with their 1-based numbers (see [`each_line`]).
pub fn read_lines(path: &Path) -> anyhow::Result<NumberedLines> {
    let mut lines = Vec::new();
    let bad = each_line(path, |n, s| lines.push((n, s.to_string())))?;
    Ok((lines, bad))
}

/// Load `DIR/TASK/SPLIT.jsonl`. Missing file is an error; bad lines are skipped and reported.
pub fn load_split(dir: &Path, task: &str, split: &str) -> anyhow::Result<LoadReport> {
    let path = split_path(dir, task, split);
    if !path.is_file() {
        anyhow::bail!("cannot open {}: no such file", path.display());
    }
    let mut report = LoadReport::default();
    let bad = each_line(&path, |n, line| {
        match serde_json::from_str::<Example>(line) {
            Ok(mut ex) => {
                let resolved: Result<Vec<PathBuf>, String> = ex
                    .images
                    .iter()
                    .map(|img| path_inside(dir, &img.path))
                    .collect();
                match resolved {
                    Ok(paths) => {
                        for (img, p) in ex.images.iter_mut().zip(paths) {
                            img.path = p;
                        }
                        report.examples.push(ex);
                    }
                    Err(message) => report.skipped.push(RowError {
                        file: path.clone(),
                        line: n,
                        message,
                    }),
                }
            }
            Err(e) => report.skipped.push(RowError {
                file: path.clone(),
                line: n,
                message: format!("not an example: {e}"),
            }),
        }
    })?;
    report.skipped.extend(bad);
    report.skipped.sort_by_key(|r| r.line);
    Ok(report)
}

/// Resolves image sources to files and loads pixels, crops applied. A source resolves to a
/// registered file (an example's image, or one [`ImageStore::register_file`] names) or to
/// `DIR/SOURCE.png|jpg|jpeg` under a store folder when `SOURCE` stays inside it; never to an
/// arbitrary path a program or data file names.
#[derive(Debug, Clone, Default)]
pub struct ImageStore {
    dirs: Vec<PathBuf>,
    known: HashMap<String, PathBuf>,
}

impl ImageStore {
    /// Look for `SOURCE.png` / `.jpg` in each of `dirs`.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self {
            dirs,
            known: HashMap::new(),
        }
    }
    /// The store of a world directory (`DIR/images`).
    pub fn for_world(dir: &Path) -> Self {
        Self::new(vec![dir.join("images")])
    }
    /// Remember the files of loaded examples.
    pub fn register_examples(&mut self, examples: &[Example]) {
        for ex in examples {
            for i in &ex.images {
                self.known.insert(i.image.source.clone(), i.path.clone());
            }
        }
    }
    /// Let `source` stand for the file `path`: for files a person names on the command line
    /// (`sdvp program run --image FILE`), not for paths read from data.
    pub fn register_file(&mut self, source: impl Into<String>, path: impl Into<PathBuf>) {
        self.known.insert(source.into(), path.into());
    }
    pub fn resolve(&self, source: &str) -> Option<PathBuf> {
        if let Some(p) = self.known.get(source) {
            return Some(p.clone());
        }
        for d in &self.dirs {
            for ext in ["png", "jpg", "jpeg"] {
                let Ok(p) = path_inside(d, format!("{source}.{ext}")) else {
                    return None;
                };
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        None
    }
    /// The pixels an `ImageRef` shows: its source, cropped to its region (rounded outwards).
    pub fn load(&self, image: &ImageRef) -> anyhow::Result<image::RgbImage> {
        let path = self
            .resolve(&image.source)
            .with_context(|| format!("no image file for source {:?}", image.source))?;
        let full = image::open(&path)
            .with_context(|| format!("cannot decode {}", path.display()))?
            .to_rgb8();
        Ok(crop_pixels(&full, image.region()))
    }
}

/// Crop pixels to a box in source coordinates (at least one pixel).
pub fn crop_pixels(img: &image::RgbImage, b: BBox) -> image::RgbImage {
    let (w, h) = (img.width(), img.height());
    let x0 = (b.x0.floor().max(0.0) as u32).min(w.saturating_sub(1));
    let y0 = (b.y0.floor().max(0.0) as u32).min(h.saturating_sub(1));
    let x1 = (b.x1.ceil().max(0.0) as u32).clamp(x0 + 1, w.max(x0 + 1));
    let y1 = (b.y1.ceil().max(0.0) as u32).clamp(y0 + 1, h.max(y0 + 1));
    image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image()
}
