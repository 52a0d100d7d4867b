//! Metric-vs-x line charts, one line per series, optional symmetric error bars.

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
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

        for (i, s) in self.series.iter().enumerate() {
            let color = series_color(i);
            let mut pts: Vec<&Point> = s.points.iter().collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            chart
                .draw_series(LineSeries::new(pts.iter().map(|p| (p.x, p.y)), color.stroke_width(2)))
                .map_err(boxed)?
                .label(&s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart
                .draw_series(pts.iter().map(|p| Circle::new((p.x, p.y), 4, color.filled())))
                .map_err(boxed)?;
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
}
