//! Heat maps (CKA between the layers of two models), with the value printed in each cell when the grid is small.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use super::{DrawResult, boxed, font::FAMILY};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_labels: Vec<String>,
    pub y_labels: Vec<String>,
    /// `values[row][col]`, rows follow `y_labels`.
    pub values: Vec<Vec<f64>>,
    /// Colour scale limits; `None` uses the data's range.
    #[serde(default)]
    pub range: Option<(f64, f64)>,
}

/// Cells up to this many per side get their value written in.
const ANNOTATE_MAX: usize = 12;

impl HeatMap {
    pub(crate) fn problem(&self) -> Option<String> {
        if self.values.is_empty() || self.x_labels.is_empty() {
            return Some("empty grid".into());
        }
        if self.values.len() != self.y_labels.len() {
            return Some(format!(
                "{} rows but {} row labels",
                self.values.len(),
                self.y_labels.len()
            ));
        }
        if let Some(r) = self.values.iter().position(|r| r.len() != self.x_labels.len()) {
            return Some(format!(
                "row {r} has {} cells, expected {}",
                self.values[r].len(),
                self.x_labels.len()
            ));
        }
        // NaN cells are allowed (drawn grey): CKA is undefined for a constant layer.
        None
    }

    fn limits(&self) -> (f64, f64) {
        if let Some(r) = self.range {
            return r;
        }
        let vals = self.values.iter().flatten().filter(|v| v.is_finite());
        let (lo, hi) = vals.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        if lo > hi {
            (0.0, 1.0)
        } else if lo == hi {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    }

    pub(crate) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(boxed)?;
        let (nx, ny) = (self.x_labels.len(), self.values.len());
        let (lo, hi) = self.limits();
        let (plot, legend) = root.split_horizontally(root.dim_in_pixel().0.saturating_sub(95));
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(if nx > 6 { 90 } else { 44 })
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(boxed)?;
        let cell_label = |labels: &[String], v: f64| {
            let i = (v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
        let fx = |v: &f64| cell_label(&self.x_labels, *v);
        // Row 0 at the top, as matrices are read: row r spans y in [ny-r-1, ny-r].
        let fy2 = |v: &f64| cell_label(&self.y_labels, ny as f64 - *v);
        let xstyle = if nx > 6 {
            TextStyle::from((FAMILY, 11).into_font()).transform(FontTransform::Rotate90)
        } else {
            TextStyle::from((FAMILY, 12).into_font())
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(nx * 2 + 1)
            .y_labels(ny * 2 + 1)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy2)
            .x_label_style(xstyle)
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 14))
            .draw()
            .map_err(boxed)?;
        let cells = self
            .values
            .iter()
            .enumerate()
            .flat_map(|(r, row)| row.iter().enumerate().map(move |(c, v)| (r, c, *v)));
        let top = |r: usize| (ny - r) as f64;
        chart
            .draw_series(cells.clone().map(|(r, c, v)| {
                let color = if v.is_finite() {
                    colormap((v - lo) / (hi - lo))
                } else {
                    RGBColor(200, 200, 200)
                };
                Rectangle::new([(c as f64, top(r)), (c as f64 + 1.0, top(r) - 1.0)], color.filled())
            }))
            .map_err(boxed)?;
        if nx <= ANNOTATE_MAX && ny <= ANNOTATE_MAX {
            chart
                .draw_series(cells.map(|(r, c, v)| {
                    let t = (v - lo) / (hi - lo);
                    let ink = if t.is_finite() && t < 0.55 { &WHITE } else { &BLACK };
                    let text = if v.is_finite() { format!("{v:.2}") } else { "n/a".into() };
                    Text::new(
                        text,
                        (c as f64 + 0.5, top(r) - 0.5),
                        TextStyle::from((FAMILY, 12).into_font())
                            .color(ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    )
                }))
                .map_err(boxed)?;
        }
        draw_scale(&legend, lo, hi)
    }
}

fn draw_scale<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, lo: f64, hi: f64) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin_top(46)
        .margin_bottom(56)
        .margin_right(4)
        .margin_left(10)
        .right_y_label_area_size(44)
        .build_cartesian_2d(0f64..1f64, lo..hi)
        .map_err(boxed)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .label_style((FAMILY, 11))
        .draw()
        .map_err(boxed)?;
    let steps = 64;
    chart
        .draw_series((0..steps).map(|i| {
            let a = lo + (hi - lo) * i as f64 / steps as f64;
            let b = lo + (hi - lo) * (i + 1) as f64 / steps as f64;
            Rectangle::new([(0.0, a), (1.0, b)], colormap((i as f64 + 0.5) / steps as f64).filled())
        }))
        .map_err(boxed)?;
    Ok(())
}

/// Viridis, piecewise linear through 6 anchors: perceptually ordered and colour-blind safe.
pub(crate) fn colormap(t: f64) -> RGBColor {
    const A: [(f64, f64, f64); 6] = [
        (68.0, 1.0, 84.0),
        (65.0, 68.0, 135.0),
        (42.0, 120.0, 142.0),
        (34.0, 168.0, 132.0),
        (122.0, 209.0, 81.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let s = t * (A.len() - 1) as f64;
    let i = (s.floor() as usize).min(A.len() - 2);
    let f = s - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(
        mix(A[i].0, A[i + 1].0),
        mix(A[i].1, A[i + 1].1),
        mix(A[i].2, A[i + 1].2),
    )
}
