//! Figures as data ([`Figure`]) and their rendering to SVG text or PNG bytes with plotters.
//!
//! Text layout needs a real font even for SVG (plotters measures labels), so [`font`] finds a TrueType font on the
//! system once (`RATIO_FONT`, then common DejaVu/Liberation paths) and registers it; without one, rendering fails
//! with [`PlotError::NoFont`] naming the paths tried, instead of drawing charts with missing labels.

mod bar;
pub mod font;
mod heat;
mod line;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

pub use bar::{Bar, BarChart};
pub use heat::HeatMap;
pub use line::{LineChart, LineStyle, Marker, Point, Series};

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("no TrueType font found (set RATIO_FONT to a .ttf file); tried: {tried}")]
    NoFont { tried: String },
    #[error("figure {title:?}: {reason}")]
    Invalid { title: String, reason: String },
    #[error("drawing figure {title:?}: {reason}")]
    Draw { title: String, reason: String },
    #[error("encoding PNG of figure {title:?}: {reason}")]
    Png { title: String, reason: String },
}

/// Any figure a report holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Figure {
    Line(LineChart),
    Bar(BarChart),
    Heat(HeatMap),
}

impl Figure {
    pub fn title(&self) -> &str {
        match self {
            Figure::Line(f) => &f.title,
            Figure::Bar(f) => &f.title,
            Figure::Heat(f) => &f.title,
        }
    }

    fn check(&self) -> Result<(), PlotError> {
        let reason = match self {
            Figure::Line(f) => f.problem(),
            Figure::Bar(f) => f.problem(),
            Figure::Heat(f) => f.problem(),
        };
        match reason {
            Some(reason) => Err(PlotError::Invalid {
                title: self.title().to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>
    where
        DB::ErrorType: 'static,
    {
        let res = match self {
            Figure::Line(f) => f.draw(root),
            Figure::Bar(f) => f.draw(root),
            Figure::Heat(f) => f.draw(root),
        };
        res.map_err(|e| PlotError::Draw {
            title: self.title().to_string(),
            reason: e.to_string(),
        })
    }
}

/// Default canvas size in pixels.
pub const SIZE: (u32, u32) = (720, 440);

/// Render to a standalone SVG document.
pub fn render_svg(fig: &Figure) -> Result<String, PlotError> {
    render_svg_sized(fig, SIZE)
}

pub fn render_svg_sized(fig: &Figure, size: (u32, u32)) -> Result<String, PlotError> {
    fig.check()?;
    font::ensure()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        fig.draw(&root)?;
        root.present().map_err(|e| PlotError::Draw {
            title: fig.title().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(out)
}

/// Render to PNG bytes.
pub fn render_png(fig: &Figure) -> Result<Vec<u8>, PlotError> {
    render_png_sized(fig, SIZE)
}

pub fn render_png_sized(fig: &Figure, (w, h): (u32, u32)) -> Result<Vec<u8>, PlotError> {
    fig.check()?;
    font::ensure()?;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        fig.draw(&root)?;
        root.present().map_err(|e| PlotError::Draw {
            title: fig.title().to_string(),
            reason: e.to_string(),
        })?;
    }
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| PlotError::Png {
        title: fig.title().to_string(),
        reason: "buffer size".into(),
    })?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| PlotError::Png {
            title: fig.title().to_string(),
            reason: e.to_string(),
        })?;
    Ok(png.into_inner())
}

/// A qualitative palette that stays distinguishable in greyscale print order (Tableau 10).
pub(crate) fn series_color(i: usize) -> RGBColor {
    const P: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = P[i % P.len()];
    RGBColor(r, g, b)
}

/// Pad a data range so points do not sit on the frame, and give a flat range some height.
pub(crate) fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        return (lo - d, hi + d);
    }
    (lo - span * 0.08, hi + span * 0.08)
}

pub(crate) type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

pub(crate) fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> Box<dyn std::error::Error> {
    Box::new(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn line() -> Figure {
        Figure::Line(LineChart {
            title: "accuracy vs ratio".into(),
            x_label: "conv:ReLU (N/M)".into(),
            y_label: "top-1".into(),
            x_ticks: vec![(1.0, "1:1".into()), (2.0, "2:1".into())],
            series: vec![
                Series::new(
                    "last",
                    vec![
                        Point {
                            x: 1.0,
                            y: 0.9,
                            err: Some(0.01),
                        },
                        Point {
                            x: 2.0,
                            y: 0.92,
                            err: Some(0.02),
                        },
                    ],
                ),
                Series::new(
                    "first",
                    vec![Point {
                        x: 2.0,
                        y: 0.88,
                        err: None,
                    }],
                ),
            ],
            markers: vec![],
        })
    }

    fn bar() -> Figure {
        Figure::Bar(BarChart {
            title: "latency p50".into(),
            y_label: "ms".into(),
            bars: vec![
                Bar {
                    label: "1:1".into(),
                    value: 2.0,
                    err: Some(0.1),
                },
                Bar {
                    label: "2:1 last".into(),
                    value: 1.5,
                    err: None,
                },
            ],
        })
    }

    fn heat() -> Figure {
        Figure::Heat(HeatMap {
            title: "CKA".into(),
            x_label: "1:1 layers".into(),
            y_label: "2:1 layers".into(),
            x_labels: vec!["a".into(), "b".into()],
            y_labels: vec!["c".into(), "d".into(), "e".into()],
            values: vec![vec![1.0, 0.5], vec![0.2, 0.9], vec![0.0, 0.3]],
            range: Some((0.0, 1.0)),
        })
    }

    #[test]
    fn svg_holds_titles_labels_and_series_names() {
        for (fig, words) in [
            (line(), vec!["accuracy vs ratio", "top-1", "last", "first", "2:1"]),
            (bar(), vec!["latency p50", "2:1 last", "ms"]),
            (heat(), vec!["CKA", "2:1 layers", "0.90"]),
        ] {
            let svg = render_svg(&fig).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
            for w in words {
                assert!(svg.contains(w), "{:?} lacks {w:?}", fig.title());
            }
        }
    }

    #[test]
    fn line_draws_error_bars_only_where_given() {
        // Tiny errors keep the axis range (and so every tick) identical, isolating the bars themselves.
        let with_errs = |err: Option<f64>| {
            let Figure::Line(mut l) = line() else { unreachable!() };
            l.series[0].points.iter_mut().for_each(|p| p.err = err);
            render_svg(&Figure::Line(l)).unwrap()
        };
        let (with, without) = (with_errs(Some(1e-9)), with_errs(None));
        // plotters draws each bar as 4 primitives (stem, two caps, centre mark): 2 bars → 8 more elements.
        assert_eq!(with.matches('<').count(), without.matches('<').count() + 8);
    }

    #[test]
    fn faint_series_have_no_legend_and_markers_one_entry_per_label() {
        let Figure::Line(mut l) = line() else { unreachable!() };
        l.series[1].style = LineStyle::Faint;
        l.series[1].name = "raw-hidden".into();
        let plain = render_svg(&Figure::Line(l.clone())).unwrap();
        l.markers = vec![
            Marker {
                x: 1.5,
                label: "ReLU removed".into(),
                color: None,
            },
            Marker {
                x: 1.7,
                label: "ReLU removed".into(),
                color: None,
            },
        ];
        let svg = render_svg(&Figure::Line(l.clone())).unwrap();
        assert!(!svg.contains("raw-hidden") && svg.contains("last"));
        assert_eq!(svg.matches("ReLU removed").count(), 1);
        // Each dashed marker is drawn as several short segments.
        assert!(svg.matches("<polyline").count() >= plain.matches("<polyline").count() + 4);
        l.markers[0].x = f64::NAN;
        assert!(matches!(render_svg(&Figure::Line(l)), Err(PlotError::Invalid { .. })));
    }

    #[test]
    fn png_is_a_png_with_ink() {
        let png = render_png(&line()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(non_white > 1000, "only {non_white} inked pixels");
    }

    #[test]
    fn invalid_figures_are_errors() {
        let Figure::Heat(mut h) = heat() else { unreachable!() };
        h.values.pop();
        let e = render_svg(&Figure::Heat(h)).unwrap_err();
        assert!(matches!(e, PlotError::Invalid { .. }), "{e}");
        let empty = Figure::Line(LineChart {
            title: "t".into(),
            x_label: String::new(),
            y_label: String::new(),
            x_ticks: vec![],
            series: vec![],
            markers: vec![],
        });
        assert!(matches!(render_svg(&empty), Err(PlotError::Invalid { .. })));
        let nan = Figure::Bar(BarChart {
            title: "t".into(),
            y_label: String::new(),
            bars: vec![Bar {
                label: "x".into(),
                value: f64::NAN,
                err: None,
            }],
        });
        assert!(matches!(render_png(&nan), Err(PlotError::Invalid { .. })));
    }
}
