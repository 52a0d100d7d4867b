//! Self-contained HTML: one file, inline CSS and inline SVG figures, no scripts and no network references, so it
//! opens the same from a laptop, a cluster login node or an archive.

use crate::doc::{Block, Report, Table, png_path, svg_path};
use crate::plot::{self, PlotError};

pub fn escape(s: &str) -> String {
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

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;\
padding:0 1em;color:#222;line-height:1.45}h1{border-bottom:2px solid #1f77b4;padding-bottom:.2em}\
h2{margin-top:2em;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:1em 0;font-size:.92em}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f6fa}td:first-child,\
th:first-child{text-align:left}tr:nth-child(even) td{background:#fafafa}figure{margin:1.5em 0}\
figure svg{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.9em;color:#555}\
code{background:#f4f4f4;padding:0 .2em}";

fn table(t: &Table) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for h in &t.headers {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{}</td>", escape(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

/// The SVG document's XML prolog is not allowed inside HTML; keep from `<svg` on.
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

/// Render the page. Figures are drawn here (inline); a figure that cannot be drawn fails the whole page rather
/// than leaving a silent hole.
pub fn render(report: &Report) -> Result<String, PlotError> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&report.title),
        escape(&report.title)
    );
    for s in &report.sections {
        out.push_str(&format!("<section>\n<h2>{}</h2>\n", escape(&s.title)));
        for b in &s.blocks {
            match b {
                Block::Text(t) => out.push_str(&format!("<p>{}</p>\n", escape(t))),
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for i in items {
                        out.push_str(&format!("<li>{}</li>\n", escape(i)));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(t) => out.push_str(&table(t)),
                Block::Figure(f) => {
                    let svg = plot::render_svg(&f.figure)?;
                    out.push_str(&format!(
                        "<figure id=\"{}\">\n{}\n<figcaption>{} — files: <code>{}</code>, <code>{}</code></figcaption>\n</figure>\n",
                        escape(&f.stem),
                        inline_svg(&svg),
                        escape(&f.caption),
                        escape(&svg_path(&f.stem)),
                        escape(&png_path(&f.stem))
                    ));
                }
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{FigureItem, Section};
    use crate::plot::{Bar, BarChart, Figure};

    fn report() -> Report {
        Report {
            title: "Sweep <resnet20>".into(),
            sections: vec![Section {
                title: "Latency".into(),
                blocks: vec![
                    Block::Text("p50 & friends".into()),
                    Block::Table(Table {
                        headers: vec!["a".into()],
                        rows: vec![vec!["<b>".into()]],
                    }),
                    Block::Figure(FigureItem {
                        stem: "lat".into(),
                        caption: "latency".into(),
                        figure: Figure::Bar(BarChart {
                            title: "Latency".into(),
                            y_label: "ms".into(),
                            bars: vec![Bar {
                                label: "1:1".into(),
                                value: 1.0,
                                err: None,
                            }],
                        }),
                    }),
                ],
            }],
        }
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let html = render(&report()).unwrap();
        assert!(html.contains("<title>Sweep &lt;resnet20&gt;</title>"));
        assert!(html.contains("<p>p50 &amp; friends</p>"));
        assert!(html.contains("<td>&lt;b&gt;</td>"));
        assert!(html.contains("<figure id=\"lat\">\n<svg"));
        assert!(!html.contains("<?xml"));
        for banned in ["http://", "https://", "<script", "<link", "src="] {
            // The SVG namespace URI is an identifier, not a fetch.
            let hits = html.matches(banned).count()
                - html.matches("http://www.w3.org/").count() * (banned == "http://") as usize;
            assert_eq!(hits, 0, "{banned} in page");
        }
    }

    #[test]
    fn html_fails_loudly_on_a_bad_figure() {
        let mut r = report();
        if let Block::Figure(f) = &mut r.sections[0].blocks[2] {
            f.figure = Figure::Bar(BarChart {
                title: "x".into(),
                y_label: String::new(),
                bars: vec![],
            });
        }
        assert!(render(&r).is_err());
    }
}
