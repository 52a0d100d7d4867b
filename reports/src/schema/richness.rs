//! Bodies of `ratio richness --json` (`ratio/richness/v1`) and `ratio leaky --json` (`ratio/leaky/v1`) records,
//! and the figures drawn from them (each metric against relative depth with one line per model and markers where
//! activations were removed; CKA heat maps).
//!
//! Layers of two variants of one network are compared by what conversion leaves alone: node names (surgery
//! removes activation nodes and renames nothing) and convolutions (never removed). A layer's `relative_depth` is
//! the share of the model's convolutions before it, so a block output sits at the same x in every variant,
//! whereas its index among analysed layers shifts by every removed activation before it.

use serde::{Deserialize, Serialize};

use super::Body;
use crate::plot::{Figure, HeatMap, LineChart, Marker, Point, Series};

/// What the numbers were measured on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataRef {
    pub path: String,
    pub format: String,
    pub split: Option<String>,
    pub sha256: String,
    pub preset: String,
    /// Fingerprint of the preprocessing pipeline.
    pub preset_fingerprint: String,
}

/// Per-layer results. Rectifier-only metrics are `None` at block outputs; spatial ones at layers without space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerMetrics {
    pub name: String,
    pub op: String,
    pub output: String,
    /// Index among the analysed layers of this model.
    pub depth: usize,
    /// `activation` (an activation slot) or `join` (a block output: residual Add, Concat of computed tensors);
    /// `None` for layers named by hand that are neither.
    #[serde(default)]
    pub kind: Option<LayerKind>,
    /// Block of the slot structure the layer belongs to (a join: the block it closes).
    #[serde(default)]
    pub block: Option<usize>,
    /// Resolution stage (regions between strided convolutions or pools).
    #[serde(default)]
    pub stage: Option<usize>,
    /// Convolutions before the layer in graph order over all convolutions, in [0, 1]: equal for the same layer in
    /// every N:M variant of one network.
    #[serde(default)]
    pub relative_depth: Option<f64>,
    pub channels: usize,
    /// Positions per channel (H·W; 1 for fully connected layers).
    pub spatial: usize,
    pub samples: u64,
    /// Share of channels never > 0 over all samples and positions.
    pub dead_fraction: Option<f64>,
    /// Share of entries ≤ 0.
    pub sparsity: Option<f64>,
    /// Share of the pre-activation L1 mass below 0.
    pub negative_mass: Option<f64>,
    /// Distinct on/off patterns of whole samples (every channel and position) and their entropy: with rich
    /// feature maps nearly every sample is distinct, so the per-position patterns below say more.
    pub distinct_patterns: Option<usize>,
    pub pattern_entropy_bits: Option<f64>,
    /// Distinct channel on/off patterns at the sampled spatial positions, and their entropy (conv layers only).
    #[serde(default)]
    pub position_patterns: Option<usize>,
    #[serde(default)]
    pub position_pattern_entropy_bits: Option<f64>,
    /// exp(entropy of the normalised eigenvalues) of the covariance of global-average-pooled features.
    pub effective_rank: Option<f64>,
    /// (Σλ)²/Σλ² of the same covariance.
    pub participation_ratio: Option<f64>,
    /// The same two on per-position channel vectors (seeded positions).
    pub spatial_effective_rank: Option<f64>,
    pub spatial_participation_ratio: Option<f64>,
    /// Test accuracy of a ridge probe on pooled features (fixed seeded 80/20 split).
    pub probe_accuracy: Option<f64>,
}

/// What kind of tensor a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Activation,
    Join,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Activation => "activation",
            LayerKind::Join => "join",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRichness {
    pub name: String,
    pub sha256: String,
    pub input: String,
    pub layers: Vec<LayerMetrics>,
    /// Activations a conversion removed from this model (its `ratio.removed` metadata), by node name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Top-1 of the model's first output on the analysed samples (when labels are known).
    pub accuracy: Option<f64>,
    /// Seconds inside ONNX Runtime (with the capture outputs) and in the statistics.
    pub run_seconds: f64,
    pub stats_seconds: f64,
}

/// Debiased linear CKA between every layer of `left` and every layer of `right`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CkaMatrix {
    pub left: String,
    pub right: String,
    pub left_layers: Vec<String>,
    pub right_layers: Vec<String>,
    pub samples: usize,
    /// `values[i][j]` = CKA(left layer i, right layer j); `None` where a layer is constant on the samples.
    pub values: Vec<Vec<Option<f64>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RichnessBody {
    pub data: DataRef,
    pub samples: u64,
    pub seed: u64,
    pub cka_samples: usize,
    pub positions: usize,
    pub ridge: Option<f64>,
    pub models: Vec<ModelRichness>,
    pub cka: Vec<CkaMatrix>,
}

impl Body for RichnessBody {
    const KIND: &'static str = "richness";
}

type Getter = fn(&LayerMetrics) -> Option<f64>;

/// (file stem, axis label, getter) of every per-layer metric that gets a depth plot.
pub const METRICS: [(&str, &str, Getter); 10] = [
    ("effective_rank", "effective rank (pooled)", |l| l.effective_rank),
    ("participation_ratio", "participation ratio (pooled)", |l| {
        l.participation_ratio
    }),
    ("spatial_effective_rank", "effective rank (spatial)", |l| {
        l.spatial_effective_rank
    }),
    ("dead_fraction", "dead-unit fraction", |l| l.dead_fraction),
    ("sparsity", "sparsity", |l| l.sparsity),
    ("negative_mass", "negative mass at input", |l| l.negative_mass),
    ("pattern_entropy", "pattern entropy (bits)", |l| l.pattern_entropy_bits),
    ("probe_accuracy", "linear-probe accuracy", |l| l.probe_accuracy),
    ("distinct_patterns", "distinct patterns", |l| {
        l.distinct_patterns.map(|d| d as f64)
    }),
    ("position_pattern_entropy", "per-position pattern entropy (bits)", |l| {
        l.position_pattern_entropy_bits
    }),
];

/// File stem of a model path.
pub fn short(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.trim_end_matches(".onnx").to_string()
}

/// A compact layer label: exporters name nodes `/block/sub.3/Relu`, so the op alone is ambiguous; the scope
/// just above it tells layers apart.
fn layer_label(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    let label = match parts.as_slice() {
        [.., scope, _op] => scope.to_string(),
        _ => name.to_string(),
    };
    if label.chars().count() > 18 {
        let tail: String = label
            .chars()
            .rev()
            .take(17)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    } else {
        label
    }
}

/// x of a layer in depth plots: relative depth when every plotted layer has one, else the layer index.
fn x_of(l: &LayerMetrics, relative: bool) -> f64 {
    match (relative, l.relative_depth) {
        (true, Some(r)) => r,
        _ => l.depth as f64,
    }
}

impl RichnessBody {
    /// Whether every layer of every model has a relative depth (records from before it existed do not).
    fn relative(&self) -> bool {
        self.models
            .iter()
            .flat_map(|m| &m.layers)
            .all(|l| l.relative_depth.is_some())
    }

    /// Where a later model lost activations the first model has, at the first model's depth of them.
    pub fn removed_markers(&self) -> Vec<Marker> {
        let (Some(first), relative) = (self.models.first(), self.relative()) else {
            return vec![];
        };
        let mut out: Vec<Marker> = Vec::new();
        for (i, m) in self.models[1..].iter().enumerate() {
            for l in first.layers.iter().filter(|l| m.removed.contains(&l.name)) {
                out.push(Marker {
                    x: x_of(l, relative),
                    label: format!("activation removed in {}", short(&m.name)),
                    color: Some(i + 1),
                });
            }
        }
        out
    }

    /// One line chart per metric that some model has (x = relative depth) and one CKA heat map per model pair.
    pub fn figures(&self) -> Vec<(String, Figure)> {
        let mut out = Vec::new();
        let relative = self.relative();
        for (stem, label, get) in METRICS {
            let series: Vec<Series> = self
                .models
                .iter()
                .map(|m| {
                    let points = m
                        .layers
                        .iter()
                        .filter_map(|l| {
                            get(l).map(|y| Point {
                                x: x_of(l, relative),
                                y,
                                err: None,
                            })
                        })
                        .collect();
                    Series::new(short(&m.name), points)
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            if series.is_empty() {
                continue;
            }
            let (title, x_label, x_ticks) = if relative {
                (
                    format!("{label} by relative depth ({} samples)", self.samples),
                    "relative depth (share of convolutions before the layer)".to_string(),
                    vec![],
                )
            } else {
                let ticks = self
                    .models
                    .first()
                    .map(|m| {
                        m.layers
                            .iter()
                            .map(|l| (l.depth as f64, layer_label(&l.name)))
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    format!("{label} by depth ({} samples)", self.samples),
                    "layer (depth)".to_string(),
                    ticks,
                )
            };
            out.push((
                stem.to_string(),
                Figure::Line(LineChart {
                    title,
                    x_label,
                    y_label: label.into(),
                    x_ticks,
                    series,
                    markers: self.removed_markers(),
                }),
            ));
        }
        for (i, c) in self.cka.iter().enumerate() {
            let values: Vec<Vec<f64>> = c
                .values
                .iter()
                .map(|r| r.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
                .collect();
            if values.iter().flatten().any(|v| !v.is_finite()) {
                continue;
            }
            out.push((
                if i == 0 { "cka".to_string() } else { format!("cka_{i}") },
                Figure::Heat(HeatMap {
                    title: format!("linear CKA (debiased), {} samples", c.samples),
                    x_label: short(&c.right),
                    y_label: short(&c.left),
                    x_labels: c.right_layers.iter().map(|n| layer_label(n)).collect(),
                    y_labels: c.left_layers.iter().map(|n| layer_label(n)).collect(),
                    values,
                    range: Some((0.0, 1.0)),
                }),
            ));
        }
        out
    }
}

/// One group of the Leaky-ReLU mixture: the subnetworks with k gated layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakyGroup {
    pub k: usize,
    /// C(L, k).
    pub subsets: u64,
    /// How many were run (all of them when exact).
    pub evaluated: usize,
    /// C(L,k)·a^{L−k}·(1−a)^k; the weights sum to 1.
    pub weight: f64,
    /// Mean over samples of ‖G_k(x)‖₂, the group's weighted contribution to the output.
    pub mean_norm: f64,
    /// Top-1 of argmax G_k (the k-gated ensemble on its own).
    pub group_accuracy: Option<f64>,
    /// Top-1 of the partial sum G_0 + … + G_k.
    pub partial_accuracy: Option<f64>,
    /// ‖y − (G_0 + … + G_k)‖ / ‖y‖ over all samples.
    pub partial_rel_error: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakyBody {
    pub model: String,
    pub sha256: String,
    pub data: Option<DataRef>,
    pub layers: Vec<String>,
    pub alpha: f32,
    pub exact: bool,
    pub samples: u64,
    /// ‖y − Σ_k G_k‖ / ‖y‖ over all samples: float rounding level when exact.
    pub reconstruction_rel_error: f64,
    pub max_abs_error: f64,
    pub leaky_accuracy: Option<f64>,
    pub groups: Vec<LeakyGroup>,
}

impl Body for LeakyBody {
    const KIND: &'static str = "leaky";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(depth: usize, er: f64) -> LayerMetrics {
        LayerMetrics {
            name: format!("/l{depth}/Relu"),
            op: "Relu".into(),
            output: format!("r{depth}"),
            depth,
            kind: Some(LayerKind::Activation),
            block: Some(depth),
            stage: Some(0),
            relative_depth: None,
            channels: 8,
            spatial: 4,
            samples: 10,
            dead_fraction: Some(0.0),
            sparsity: Some(0.5),
            negative_mass: Some(0.4),
            distinct_patterns: Some(7),
            pattern_entropy_bits: Some(2.5),
            position_patterns: None,
            position_pattern_entropy_bits: None,
            effective_rank: Some(er),
            participation_ratio: Some(er / 2.0),
            spatial_effective_rank: None,
            spatial_participation_ratio: None,
            probe_accuracy: None,
        }
    }

    #[test]
    fn body_round_trips_and_yields_figures() {
        let model = |name: &str| ModelRichness {
            name: format!("dir/{name}.onnx"),
            sha256: "ab".into(),
            input: "input[?,1,28,28]".into(),
            layers: vec![layer(0, 3.0), layer(1, 4.0)],
            removed: vec![],
            accuracy: Some(0.99),
            run_seconds: 1.0,
            stats_seconds: 2.0,
        };
        let body = RichnessBody {
            data: DataRef::default(),
            samples: 10,
            seed: 0,
            cka_samples: 10,
            positions: 4,
            ridge: Some(1e-3),
            models: vec![model("a"), model("b")],
            cka: vec![CkaMatrix {
                left: "a".into(),
                right: "b".into(),
                left_layers: vec!["x".into(), "y".into()],
                right_layers: vec!["x".into(), "y".into()],
                samples: 10,
                values: vec![vec![Some(1.0), Some(0.5)], vec![Some(0.5), Some(1.0)]],
            }],
        };
        let rec = super::super::Record::new(&body, vec![], Default::default(), "t".into()).unwrap();
        assert_eq!(rec.schema, "ratio/richness/v1");
        assert_eq!(rec.body_as::<RichnessBody>().unwrap(), body);
        let figs = body.figures();
        let stems: Vec<&str> = figs.iter().map(|(s, _)| s.as_str()).collect();
        // No spatial or probe values in this body: those plots are left out, the CKA map is there.
        assert!(stems.contains(&"effective_rank") && stems.contains(&"cka"));
        assert!(!stems.contains(&"probe_accuracy") && !stems.contains(&"spatial_effective_rank"));
        let Figure::Line(l) = &figs[0].1 else {
            panic!("first figure is a line chart")
        };
        assert_eq!(l.series.len(), 2);
        assert_eq!(l.series[0].name, "a");
        assert_eq!(l.series[1].points[1].y, 4.0);
        assert_eq!(l.x_ticks, vec![(0.0, "l0".to_string()), (1.0, "l1".to_string())]);
        assert_eq!(layer_label("/conv_layers/conv_layers.7/Relu"), "conv_layers.7");
        assert_eq!(layer_label("relu_out"), "relu_out");
        assert!(l.markers.is_empty());
    }

    #[test]
    fn relative_depth_lines_up_shared_layers_and_marks_removed_ones() {
        // 1:1 has l0, l1, l2 at relative depths 0, 0.5, 0.75; the 2:1 variant lost l1.
        let at = |d: usize, r: f64| LayerMetrics {
            relative_depth: Some(r),
            ..layer(d, d as f64 + 1.0)
        };
        let base = ModelRichness {
            name: "base.onnx".into(),
            sha256: "a".into(),
            input: "x".into(),
            layers: vec![at(0, 0.0), at(1, 0.5), at(2, 0.75)],
            removed: vec![],
            accuracy: None,
            run_seconds: 0.0,
            stats_seconds: 0.0,
        };
        let mut two = base.clone();
        two.name = "v/converted.onnx".into();
        two.layers = vec![
            at(0, 0.0),
            LayerMetrics {
                depth: 1,
                ..at(2, 0.75)
            },
        ];
        two.removed = vec!["/l1/Relu".into()];
        let body = RichnessBody {
            data: DataRef::default(),
            samples: 5,
            seed: 0,
            cka_samples: 5,
            positions: 1,
            ridge: None,
            models: vec![base, two],
            cka: vec![],
        };
        let figs = body.figures();
        let Figure::Line(l) = &figs[0].1 else { panic!() };
        // The shared layer /l2 sits at x = 0.75 in both models although its index differs (2 vs 1).
        assert_eq!(l.series[0].points[2].x, 0.75);
        assert_eq!(l.series[1].points[1].x, 0.75);
        assert!(l.x_label.starts_with("relative depth") && l.x_ticks.is_empty());
        assert_eq!(
            l.markers,
            vec![Marker {
                x: 0.5,
                label: "activation removed in converted".into(),
                color: Some(1),
            }]
        );
    }
}
