//! Metric-vs-x line charts, one line per series, optional symmetric error bars, faint raw lines under smoothed
//! ones, and labelled vertical markers.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use super::{DrawResult, boxed, font::FAMILY, padded, series_color};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Half-width of the error bar (e.g. one standard deviation).
    #[serde(default)]
    pub err: Option<f64>,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineStyle {
    /// Line with a dot at every point (few points: ratios, stages).
    #[default]
    Markers,
    /// Line only (many points: per-step curves, smoothed).
    Plain,
    /// Thin pale line without a legend entry: the raw data under a smoothed series of the same colour.
    Faint,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
    #[serde(default)]
    pub style: LineStyle,
    /// Palette index (default: the series' position), so a faint raw line can share its smoothed line's colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<usize>,
}

impl Series {
    /// A line with a dot at every point, coloured by its position.
    pub fn new(name: impl Into<String>, points: Vec<Point>) -> Self {
        Series {
            name: name.into(),
            points,
            style: LineStyle::Markers,
            color: None,
        }
    }
}

/// A labelled vertical line at `x` (e.g. where an activation was removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    /// Palette index, to tie the marker to a series (default grey).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Named x positions (e.g. `2.0 → "2:1"`); empty means numeric ticks.
    #[serde(default)]
    pub x_ticks: Vec<(f64, String)>,
    pub series: Vec<Series>,
    /// Dashed vertical lines; labels that repeat are written once, in the legend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<Marker>,
}

impl LineChart {
    pub(crate) fn problem(&self) -> Option<String> {
        let points: Vec<&Point> = self.series.iter().flat_map(|s| &s.points).collect();
        if points.is_empty() {
            return Some("no data points".into());
        }
        points
            .iter()
            .find(|p| !p.x.is_finite() || !p.y.is_finite() || p.err.is_some_and(|e| !e.is_finite() || e < 0.0))
            .map(|p| format!("non-finite or negative value in point {p:?}"))
            .or_else(|| {
                self.markers
                    .iter()
                    .find(|m| !m.x.is_finite())
                    .map(|m| format!("non-finite marker {m:?}"))
            })
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let pts = self.series.iter().flat_map(|s| &s.points);
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in pts {
            let e = p.err.unwrap_or(0.0);
            x0 = x0.min(p.x);
            x1 = x1.max(p.x);
            y0 = y0.min(p.y - e);
            y1 = y1.max(p.y + e);
        }
        for (x, _) in &self.x_ticks {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
        }
        (padded(x0, x1), padded(y0, y1))
    }

    pub(crate) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(boxed)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(boxed)?;
        let ticks = &self.x_ticks;
        let fmt_x = |x: &f64| -> String {
            format!("{x:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 13))
            .light_line_style(RGBColor(238, 238, 238))
            .axis_desc_style((FAMILY, 15))
            .x_label_formatter(&fmt_x);
        if !ticks.is_empty() {
            // Named positions (ratios): plotters places numeric ticks itself, so draw these by hand below.
            mesh.x_labels(0).disable_x_mesh();
        }
        mesh.draw().map_err(boxed)?;
        for (x, label) in ticks {
            let (px, py) = chart.backend_coord(&(*x, y0));
            let style = TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK))
                .map_err(boxed)?;
            root.draw(&Text::new(label.clone(), (px, py + 8), style))
                .map_err(boxed)?;
        }

        self.draw_markers(&mut chart, (y0, y1))?;
        // Faint lines first, so the smoothed lines sit on top of them.
        let mut order: Vec<(usize, &Series)> = self.series.iter().enumerate().collect();
        order.sort_by_key(|(_, s)| s.style != LineStyle::Faint);
        for (i, s) in order {
            let color = series_color(s.color.unwrap_or(i));
            let mut pts: Vec<&Point> = s.points.iter().collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            if s.style == LineStyle::Faint {
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().map(|p| (p.x, p.y)),
                        color.mix(0.3).stroke_width(1),
                    ))
                    .map_err(boxed)?;
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts.iter().map(|p| (p.x, p.y)), color.stroke_width(2)))
                .map_err(boxed)?
                .label(&s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            if s.style == LineStyle::Markers {
                chart
                    .draw_series(pts.iter().map(|p| Circle::new((p.x, p.y), 4, color.filled())))
                    .map_err(boxed)?;
            }
            chart
                .draw_series(pts.iter().filter_map(|p| {
                    p.err
                        .map(|e| ErrorBar::new_vertical(p.x, p.y - e, p.y, p.y + e, color.stroke_width(1), 10))
                }))
                .map_err(boxed)?;
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(boxed)?;
        Ok(())
    }

    /// Dashed verticals (grey, or their series' colour); one legend entry per distinct label.
    fn draw_markers<DB: DrawingBackend>(
        &self,
        chart: &mut ChartContext<
            '_,
            DB,
            Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
        >,
        (y0, y1): (f64, f64),
    ) -> DrawResult<()>
    where
        DB::ErrorType: 'static,
    {
        let mut labelled: Vec<&str> = Vec::new();
        for m in &self.markers {
            let color = m.color.map_or(RGBColor(120, 120, 120), series_color);
            let dashes = DashedLineSeries::new(vec![(m.x, y0), (m.x, y1)], 6, 4, color.stroke_width(1));
            let drawn = chart.draw_series(dashes).map_err(boxed)?;
            if !labelled.contains(&m.label.as_str()) {
                labelled.push(&m.label);
                drawn
                    .label(&m.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(1)));
            }
        }
        Ok(())
    }
}
