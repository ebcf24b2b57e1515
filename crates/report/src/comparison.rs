//! A run-comparison report: tables of accuracies and grouped bar charts, drawn as inline
//! SVG (text needs no font file), with the training curves beside them.

use sdvp_core::trace::Trace;
use sdvp_core::value::normalize_answer;
use std::collections::HashMap;
use std::fmt::Write as _;

fn right(t: &Trace) -> bool {
    match (&t.answer, t.gold_answer()) {
        (Some(a), Some(g)) => normalize_answer(a) == normalize_answer(&g),
        _ => false,
    }
}

/// The traces of `after` whose correctness differs from the same example in `before`:
/// `(fixed, broken)`, in `after`'s order.
pub fn changed_answers(before: &[Trace], after: &[Trace]) -> (Vec<Trace>, Vec<Trace>) {
    let was: HashMap<&str, bool> = before.iter().map(|t| (t.id.as_str(), right(t))).collect();
    let (mut fixed, mut broken) = (Vec::new(), Vec::new());
    for t in after {
        match (was.get(t.id.as_str()), right(t)) {
            (Some(false), true) => fixed.push(t.clone()),
            (Some(true), false) => broken.push(t.clone()),
            _ => {}
        }
    }
    (fixed, broken)
}

/// One row of a comparison: a task and its accuracy (in [0, 1]) under each column.
#[derive(Debug, Clone)]
pub struct Row {
    pub task: String,
    /// Marked "(unseen)" in tables and charts.
    pub unseen: bool,
    pub cells: Vec<Option<f64>>,
    /// Questions each number rests on.
    pub n: usize,
}

/// One table (e.g. one program style).
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    /// What a row is ("task", "question type"): the first column's head and the x axis.
    pub row_header: String,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

/// One colour per column, distinct up to ten columns (then they repeat).
const COLORS: [&str; 10] = [
    "#8c8c8c", "#4e79a7", "#2f5597", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2",
    "#edc948", "#9c755f",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A grouped bar chart of `t`: one group per task, one bar per column, accuracy in %.
pub fn bar_chart_svg(t: &Table) -> String {
    let groups = t.rows.len().max(1) as f64;
    let bars = t.columns.len().max(1) as f64;
    // Many groups: wider chart, slanted labels.
    let crowded = groups > 6.0;
    let left = if crowded { 100.0f64 } else { 60.0 };
    let (right, top) = (190.0f64, 40.0f64);
    let bottom = if crowded { 110.0 } else { 50.0 };
    let plot_w = (groups * bars * 14.0 / 0.8).max(510.0);
    let (w, h) = (left + plot_w + right, 290.0 + bottom);
    let plot_h = h - top - bottom;
    let group_w = plot_w / groups;
    let bar_w = (group_w * 0.8) / bars;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>"
    );
    let _ = write!(
        s,
        "<text x='{}' y='22' text-anchor='middle' font-size='15' font-weight='bold'>{}</text>",
        left + plot_w / 2.0,
        esc(&t.title)
    );
    for k in 0..=5 {
        let v = k as f64 * 20.0;
        let y = top + plot_h - plot_h * v / 100.0;
        let _ = write!(
            s,
            "<line x1='{left}' y1='{y}' x2='{}' y2='{y}' stroke='#ddd'/><text x='{}' y='{}' text-anchor='end'>{v:.0}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0
        );
    }
    let _ = write!(
        s,
        "<text transform='translate(16,{}) rotate(-90)' text-anchor='middle'>accuracy (%)</text>",
        top + plot_h / 2.0
    );
    for (g, row) in t.rows.iter().enumerate() {
        let gx = left + g as f64 * group_w + group_w * 0.1;
        for (b, cell) in row.cells.iter().enumerate() {
            let Some(v) = cell else { continue };
            let bh = plot_h * v.clamp(0.0, 1.0);
            let x = gx + b as f64 * bar_w;
            let y = top + plot_h - bh;
            let _ = write!(
                s,
                "<rect x='{x:.1}' y='{y:.1}' width='{:.1}' height='{bh:.1}' fill='{}'><title>{}: {:.1}%</title></rect>",
                bar_w * 0.92,
                COLORS[b % COLORS.len()],
                esc(&t.columns[b]),
                100.0 * v
            );
            if bar_w >= 14.0 {
                let _ = write!(
                    s,
                    "<text x='{:.1}' y='{:.1}' text-anchor='middle' font-size='9'>{:.0}</text>",
                    x + bar_w * 0.46,
                    y - 3.0,
                    100.0 * v
                );
            }
        }
        let label = if row.unseen {
            format!("{} (unseen)", row.task)
        } else {
            row.task.clone()
        };
        let cx = left + g as f64 * group_w + group_w / 2.0;
        if crowded {
            let _ = write!(
                s,
                "<text transform='translate({cx:.1},{}) rotate(-35)' text-anchor='end'>{} (n = {})</text>",
                top + plot_h + 14.0,
                esc(&label),
                row.n
            );
        } else {
            let _ = write!(
                s,
                "<text x='{cx:.1}' y='{}' text-anchor='middle'>{}</text><text x='{cx:.1}' y='{}' text-anchor='middle' font-size='10' fill='#666'>n = {}</text>",
                top + plot_h + 18.0,
                esc(&label),
                top + plot_h + 32.0,
                row.n
            );
        }
    }
    let _ = write!(
        s,
        "<line x1='{left}' y1='{}' x2='{}' y2='{}' stroke='#333'/>",
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    let _ = write!(
        s,
        "<text x='{}' y='{}' text-anchor='middle'>{}</text>",
        left + plot_w / 2.0,
        h - 4.0,
        esc(&t.row_header)
    );
    for (b, c) in t.columns.iter().enumerate() {
        let y = top + 10.0 + b as f64 * 20.0;
        let x = left + plot_w + 16.0;
        let _ = write!(
            s,
            "<rect x='{x}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}'>{}</text>",
            y - 10.0,
            COLORS[b % COLORS.len()],
            x + 18.0,
            y,
            esc(c)
        );
    }
    s.push_str("</svg>");
    s
}

/// The whole page: a heading, a note, per table the numbers and the chart, then links
/// (text, path relative to the page), then images (title, path relative to the page).
pub fn comparison_html(
    title: &str,
    note: &str,
    tables: &[Table],
    links: &[(String, String)],
    images: &[(String, String)],
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset='utf-8'><title>{t}</title><style>\
         body{{font-family:sans-serif;margin:24px;max-width:1100px}}\
         table{{border-collapse:collapse;margin:8px 0 16px}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}img{{max-width:100%;border:1px solid #eee}}\
         </style></head><body><h1>{t}</h1><p>{n}</p>",
        t = esc(title),
        n = esc(note)
    );
    for t in tables {
        let _ = write!(
            s,
            "<h2>{}</h2><table><tr><th>{}</th>",
            esc(&t.title),
            esc(&t.row_header)
        );
        for c in &t.columns {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("<th>n</th></tr>");
        for r in &t.rows {
            let _ = write!(
                s,
                "<tr><td>{}{}</td>",
                esc(&r.task),
                if r.unseen { " (unseen)" } else { "" }
            );
            for c in &r.cells {
                match c {
                    Some(v) => {
                        let _ = write!(s, "<td>{:.1}</td>", 100.0 * v);
                    }
                    None => s.push_str("<td>—</td>"),
                }
            }
            let _ = write!(s, "<td>{}</td></tr>", r.n);
        }
        s.push_str("</table>");
        s.push_str(&bar_chart_svg(t));
    }
    if !links.is_empty() {
        s.push_str("<h2>Visual rationales</h2><ul>");
        for (text, path) in links {
            let _ = write!(s, "<li><a href='{}'>{}</a></li>", esc(path), esc(text));
        }
        s.push_str("</ul>");
    }
    for (caption, path) in images {
        let _ = write!(
            s,
            "<h2>{}</h2><img src='{}' alt='{}'>",
            esc(caption),
            esc(path),
            esc(caption)
        );
    }
    s.push_str("</body></html>\n");
    s
}
