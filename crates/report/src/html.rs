//! HTML pages of traces.

use crate::draw::{picture, save_asset, ImageResolver};
use crate::ReportError;
use sdvp_core::module::{Request, Response};
use sdvp_core::scheduler::CallRecord;
use sdvp_core::trace::{Trace, TraceStep};
use sdvp_core::value::{normalize_answer, Value};
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderSummary {
    pub pages: usize,
    /// Image sources that could not be found; their pictures are replaced by a note.
    pub missing_images: Vec<String>,
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
code,pre{font-family:ui-monospace,monospace}
pre.program{background:#f5f5f5;padding:.6em;border-radius:4px}
.step{border:1px solid #ddd;border-radius:6px;margin:.8em 0;padding:.6em}
.step.failed{border-color:#d33;background:#fff4f4}
.step h3{margin:.1em 0 .4em 0;font-size:1em}
.module{display:inline-block;background:#335;color:#fff;padding:0 .4em;border-radius:3px;margin-right:.4em}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.val{border-left:3px solid #ccd;padding-left:.5em}
.val img{width:192px;image-rendering:pixelated;border:1px solid #aaa;display:block;margin-top:.2em}
.err{color:#b00;font-weight:600}
.ok{color:#070;font-weight:600}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;font-size:.9em}
.calls{margin-top:.4em}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em}
"#;

struct Page<'a> {
    resolver: &'a mut ImageResolver,
    assets: &'a Path,
    missing: &'a mut Vec<String>,
}

impl Page<'_> {
    fn image_html(
        &mut self,
        image: &sdvp_core::ImageRef,
        boxes: &[sdvp_core::BBox],
    ) -> Result<String, ReportError> {
        let Some((annotated, crop)) = picture(self.resolver, image, boxes) else {
            if !self.missing.contains(&image.source) {
                self.missing.push(image.source.clone());
            }
            return Ok(format!(
                "<div class=err>image {} not found</div>",
                escape(&image.source)
            ));
        };
        let mut html = format!(
            "<img src=\"assets/{}\" title=\"{}\">",
            save_asset(self.assets, &annotated)?,
            escape(&image.source)
        );
        if let Some(c) = crop {
            let r = image.region();
            let _ = write!(
                html,
                "<small>crop [{:.0},{:.0},{:.0},{:.0}]</small><img src=\"assets/{}\">",
                r.x0,
                r.y0,
                r.x1,
                r.y1,
                save_asset(self.assets, &c)?
            );
        }
        Ok(html)
    }

    fn value_html(&mut self, name: &str, v: &Value) -> Result<String, ReportError> {
        let body = match v {
            Value::Image(i) => self.image_html(i, &[])?,
            Value::Boxes(b) => {
                let list: Vec<String> = b
                    .boxes
                    .iter()
                    .map(|x| format!("[{:.0},{:.0},{:.0},{:.0}]", x.x0, x.y0, x.x1, x.y1))
                    .collect();
                format!(
                    "{} box(es) {}{}",
                    b.boxes.len(),
                    escape(&list.join(" ")),
                    self.image_html(&b.image, &b.boxes)?
                )
            }
            other => format!("<code>{}</code>", escape(&other.to_answer())),
        };
        Ok(format!(
            "<div class=val><b>{}</b><br>{body}</div>",
            escape(name)
        ))
    }

    fn step_html(&mut self, s: &TraceStep) -> Result<String, ReportError> {
        let mut html = format!(
            "<div class=\"step{}\"><h3><span class=module>{}</span>line {} · <code>{}</code> <small>{:.1} ms</small></h3><div class=row>",
            if s.error.is_some() { " failed" } else { "" },
            escape(&s.module),
            s.line,
            escape(&s.text),
            s.micros as f64 / 1000.0
        );
        for (k, v) in &s.args {
            html.push_str(&self.value_html(k, v)?);
        }
        if let Some(out) = &s.output {
            let name = format!("→ {}", s.output_var.as_deref().unwrap_or("output"));
            html.push_str(&self.value_html(&name, out)?);
        }
        html.push_str("</div>");
        if !s.calls.is_empty() {
            html.push_str(
                "<table class=calls><tr><th>model call</th><th>answer</th><th>batch</th><th>answered by</th></tr>",
            );
            for c in &s.calls {
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&request_summary(&c.request)),
                    call_outcome(c),
                    c.batch_size,
                    escape(&c.answered_by)
                );
            }
            html.push_str("</table>");
        }
        if let Some(e) = &s.error {
            let _ = write!(html, "<div class=err>{}</div>", escape(e));
        }
        html.push_str("</div>");
        Ok(html)
    }
}

fn request_summary(r: &Request) -> String {
    match r {
        Request::Detect { object, .. } => format!("detect “{object}”"),
        Request::Vqa { question, .. } => format!("vqa “{question}”"),
        Request::Verify { text, .. } => format!("verify “{text}”"),
        Request::Classify { options, .. } => format!("classify {options:?}"),
        Request::Depth { .. } => "depth".into(),
        Request::Llm { prompt } => format!("llm “{prompt}”"),
    }
}

fn call_outcome(c: &CallRecord) -> String {
    match (&c.response, &c.error) {
        (_, Some(e)) => format!("<span class=err>{}</span>", escape(e)),
        (Some(r), None) => escape(&match r {
            Response::Detections { boxes, .. } => format!("{} box(es)", boxes.len()),
            Response::Answer { text, score, .. } => format!("{text} ({score:.2})"),
            Response::Verdict { yes, score } => {
                format!("{} ({score:.2})", if *yes { "yes" } else { "no" })
            }
            Response::Choice { index, .. } => format!("option {index}"),
            Response::Depth { value } => format!("{value:.3}"),
            Response::Text { text } => text.clone(),
        }),
        (None, None) => String::new(),
    }
}

fn page_name(i: usize, id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("{i:05}-{clean}.html")
}

fn verdict(t: &Trace) -> (&'static str, String) {
    match (&t.answer, t.gold_answer()) {
        (None, _) => ("err", "failed".into()),
        (Some(a), Some(g)) if normalize_answer(a) == normalize_answer(&g) => {
            ("ok", "correct".into())
        }
        (Some(_), Some(_)) => ("err", "wrong".into()),
        (Some(_), None) => ("", String::new()),
    }
}

/// Write `index.html`, one page per trace and an `assets/` folder of pictures into `out`.
pub fn render_traces(
    traces: &[Trace],
    resolver: &mut ImageResolver,
    out: &Path,
) -> Result<RenderSummary, ReportError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    let assets = out.join("assets");
    std::fs::create_dir_all(&assets).map_err(io(&assets))?;
    let mut missing = Vec::new();
    let mut index = format!(
        "<!doctype html><meta charset=utf-8><title>sdvp traces</title><style>{STYLE}</style><h1>{} program(s)</h1><table><tr><th>id</th><th>answer</th><th>gold</th><th></th><th>error</th></tr>",
        traces.len()
    );
    for (i, t) in traces.iter().enumerate() {
        let name = page_name(i, &t.id);
        let (class, word) = verdict(t);
        let _ = write!(
            index,
            "<tr><td><a href=\"{name}\">{}</a></td><td>{}</td><td>{}</td><td class={class}>{word}</td><td class=err>{}</td></tr>",
            escape(&t.id),
            escape(t.answer.as_deref().unwrap_or("—")),
            escape(&t.gold_answer().unwrap_or_default()),
            escape(t.error.as_ref().map(|e| e.kind.as_str()).unwrap_or(""))
        );
        let mut page = Page {
            resolver,
            assets: &assets,
            missing: &mut missing,
        };
        let mut html = format!(
            "<!doctype html><meta charset=utf-8><title>{id}</title><style>{STYLE}</style><p><a href=index.html>all programs</a></p><h1>{id}</h1>",
            id = escape(&t.id)
        );
        if let Some(q) = t.meta.get("question").and_then(|q| q.as_str()) {
            let _ = write!(html, "<p><b>Question:</b> {}</p>", escape(q));
        }
        let _ = write!(
            html,
            "<p><b>Answer:</b> {} {}<span class={class}>{word}</span> · backend <code>{}</code> · {:.1} ms</p>",
            escape(t.answer.as_deref().unwrap_or("—")),
            t.gold_answer().map(|g| format!("(gold: {}) ", escape(&g))).unwrap_or_default(),
            escape(&t.backend),
            t.micros as f64 / 1000.0
        );
        let _ = write!(html, "<pre class=program>{}</pre>", escape(&t.program));
        html.push_str("<p class=legend><span style=\"background:#2870ff\"></span>crop region<span style=\"background:#ff3c28\"></span>boxes</p><div class=row>");
        for (k, v) in &t.inputs {
            html.push_str(&page.value_html(k, v)?);
        }
        html.push_str("</div>");
        for s in &t.steps {
            html.push_str(&page.step_html(s)?);
        }
        if let Some(e) = &t.error {
            let _ = write!(
                html,
                "<div class=\"step failed\"><b class=err>{}</b>: {}",
                escape(&e.kind),
                escape(&e.message)
            );
            if !e.problems.is_empty() {
                html.push_str(
                    "<table><tr><th>line</th><th>col</th><th>kind</th><th>message</th></tr>",
                );
                for p in &e.problems {
                    let _ = write!(
                        html,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        p.line,
                        p.column,
                        p.kind.as_str(),
                        escape(&p.message)
                    );
                }
                html.push_str("</table>");
            }
            html.push_str("</div>");
        }
        let path = out.join(&name);
        std::fs::write(&path, html).map_err(io(&path))?;
    }
    index.push_str("</table>");
    let path = out.join("index.html");
    std::fs::write(&path, index).map_err(io(&path))?;
    Ok(RenderSummary {
        pages: traces.len(),
        missing_images: missing,
    })
}
