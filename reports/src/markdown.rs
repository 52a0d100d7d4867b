//! Markdown rendering: tables as GitHub pipe tables, figures as links to their SVG (and PNG) files.

use crate::doc::{Block, Report, Table, png_path, svg_path};

/// Pipe characters and newlines would break a table row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn table(t: &Table) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "| {} |\n",
        t.headers.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")
    ));
    out.push_str(&format!("|{}\n", t.headers.iter().map(|_| "---|").collect::<String>()));
    for r in &t.rows {
        let mut cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        cells.resize(t.headers.len(), String::new());
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

pub fn render(report: &Report) -> String {
    let mut out = format!("# {}\n", report.title);
    for s in &report.sections {
        out.push_str(&format!("\n## {}\n\n", s.title));
        for b in &s.blocks {
            match b {
                Block::Text(t) => out.push_str(&format!("{t}\n\n")),
                Block::List(items) => {
                    for i in items {
                        out.push_str(&format!("- {}\n", i.replace('\n', " ")));
                    }
                    out.push('\n');
                }
                Block::Table(t) => {
                    out.push_str(&table(t));
                    out.push('\n');
                }
                Block::Figure(f) => out.push_str(&format!(
                    "![{}]({})\n\n*{}* ([PNG]({}))\n\n",
                    f.figure.title(),
                    svg_path(&f.stem),
                    f.caption,
                    png_path(&f.stem)
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{FigureItem, Section};
    use crate::plot::{BarChart, Figure};

    #[test]
    fn markdown_has_table_rows_and_figure_links() {
        let r = Report {
            title: "Sweep".into(),
            sections: vec![Section {
                title: "Summary".into(),
                blocks: vec![
                    Block::Table(Table {
                        headers: vec!["ratio".into(), "acc".into()],
                        rows: vec![vec!["1:1".into(), "0.90 ± 0.01".into()], vec!["a|b".into()]],
                    }),
                    Block::List(vec!["no significant difference".into()]),
                    Block::Figure(FigureItem {
                        stem: "lat".into(),
                        caption: "latency".into(),
                        figure: Figure::Bar(BarChart {
                            title: "Latency".into(),
                            y_label: "ms".into(),
                            bars: vec![],
                        }),
                    }),
                ],
            }],
        };
        let md = render(&r);
        assert!(
            md.contains("| ratio | acc |\n|---|---|\n| 1:1 | 0.90 ± 0.01 |\n| a\\|b |  |\n"),
            "{md}"
        );
        assert!(md.contains("- no significant difference"));
        assert!(md.contains("![Latency](figures/lat.svg)"));
        assert!(md.contains("(figures/lat.png)"));
    }
}
