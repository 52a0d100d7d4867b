//! Bar charts with optional error bars (latency by variant, parameter counts).

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::{DrawResult, boxed, font::FAMILY, padded, series_color};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    #[serde(default)]
    pub err: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub bars: Vec<Bar>,
}

impl BarChart {
    pub(crate) fn problem(&self) -> Option<String> {
        if self.bars.is_empty() {
            return Some("no bars".into());
        }
        self.bars
            .iter()
            .find(|b| !b.value.is_finite() || b.err.is_some_and(|e| !e.is_finite() || e < 0.0))
            .map(|b| format!("non-finite or negative value in bar {:?}", b.label))
    }

    pub(crate) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(boxed)?;
        let n = self.bars.len();
        let hi = self
            .bars
            .iter()
            .map(|b| b.value + b.err.unwrap_or(0.0))
            .fold(f64::MIN, f64::max);
        let lo = self
            .bars
            .iter()
            .map(|b| b.value - b.err.unwrap_or(0.0))
            .fold(0.0, f64::min);
        let (_, y1) = padded(lo, hi);
        let y0 = if lo < 0.0 { padded(lo, hi).0 } else { 0.0 };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(if n > 6 { 90 } else { 44 })
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0..y1)
            .map_err(boxed)?;
        let labels: Vec<&str> = self.bars.iter().map(|b| b.label.as_str()).collect();
        let fmt_x = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].to_string()
            } else {
                String::new()
            }
        };
        let style = if n > 6 {
            TextStyle::from((FAMILY, 12).into_font()).transform(FontTransform::Rotate90)
        } else {
            TextStyle::from((FAMILY, 13).into_font())
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(&self.y_label)
            .x_labels(n * 2 + 1)
            .x_label_formatter(&fmt_x)
            .x_label_style(style)
            .label_style((FAMILY, 13))
            .light_line_style(RGBColor(238, 238, 238))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(boxed)?;
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, b)| {
                let x = i as f64;
                Rectangle::new(
                    [(x - 0.35, 0.0), (x + 0.35, b.value)],
                    series_color(i).mix(0.85).filled(),
                )
            }))
            .map_err(boxed)?;
        chart
            .draw_series(self.bars.iter().enumerate().filter_map(|(i, b)| {
                b.err
                    .map(|e| ErrorBar::new_vertical(i as f64, b.value - e, b.value, b.value + e, BLACK, 12))
            }))
            .map_err(boxed)?;
        Ok(())
    }
}
