//! A thin layer over `converters::ir::build::GraphBuilder` that names things the way `torch.onnx.export` of a
//! torchvision module reads: node `layer1.0.conv1` writes value `layer1.0.conv1` and owns initializers
//! `layer1.0.conv1.weight`. Node and value names share the string because ONNX keeps them in separate namespaces
//! and a reader looking for "the output of layer1.0.conv1" finds it without a lookup table.

use converters::ir::build::{self, Attr, GraphBuilder};
use converters::proto::tensor_proto::DataType;
use converters::proto::{ModelProto, StringStringEntryProto};

use crate::config::ModelConfig;
use crate::init::{self, WeightRng};

/// Name of the image input of every model.
pub const INPUT: &str = "input";
/// Name of the class-score output of every model.
pub const LOGITS: &str = "logits";
/// `producer_name` of every model built here.
pub const PRODUCER: &str = "ratio-models";

/// A convolution's shape. `pad` is symmetric on both spatial axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub cin: i64,
    pub cout: i64,
    pub kernel: i64,
    pub stride: i64,
    pub pad: i64,
    pub groups: i64,
    pub bias: bool,
}

impl ConvShape {
    /// Stride 1, "same" padding, no bias (a conv followed by BN needs none, as in torchvision).
    pub fn new(cin: i64, cout: i64, kernel: i64) -> Self {
        ConvShape {
            cin,
            cout,
            kernel,
            stride: 1,
            pad: kernel / 2,
            groups: 1,
            bias: false,
        }
    }
    pub fn stride(mut self, s: i64) -> Self {
        self.stride = s;
        self
    }
    pub fn pad(mut self, p: i64) -> Self {
        self.pad = p;
        self
    }
    pub fn groups(mut self, g: i64) -> Self {
        self.groups = g;
        self
    }
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
}

pub struct Net {
    b: GraphBuilder,
    rng: WeightRng,
    random_bn: bool,
    meta: Vec<(String, String)>,
}

impl Net {
    /// An empty graph named `graph_name` with the image input `input` [N, C, S, S].
    pub fn new(graph_name: &str, cfg: &ModelConfig) -> Self {
        let mut b = GraphBuilder::new(graph_name);
        let s = Some(cfg.input_size);
        b.input(INPUT, DataType::Float, &[None, Some(cfg.in_channels), s, s]);
        Net {
            b,
            rng: WeightRng::new(cfg.seed),
            random_bn: cfg.random_bn_stats,
            meta: vec![
                ("ratio.model".into(), graph_name.into()),
                (
                    "ratio.model.config".into(),
                    serde_json::to_string(cfg).expect("a config of numbers and bools serializes"),
                ),
            ],
        }
    }

    /// Fix the image input's batch dim, as an export without dynamic axes does.
    pub fn fix_batch(&mut self, batch: i64) {
        let c = self.input_dims();
        let dims: Vec<Option<i64>> = std::iter::once(Some(batch)).chain(c.into_iter().skip(1)).collect();
        self.b.graph.input[0] = build::value_info(INPUT, DataType::Float, &dims);
    }

    fn input_dims(&self) -> Vec<Option<i64>> {
        build::value_info_dims(&self.b.graph.input[0]).unwrap_or_default()
    }

    /// Record the static shape of an intermediate value, as exporters do in `value_info`.
    pub fn value_info(&mut self, name: &str, dims: &[Option<i64>]) {
        self.b
            .graph
            .value_info
            .push(build::value_info(name, DataType::Float, dims));
    }

    /// An input other than the image (pattern fixtures with two inputs).
    pub fn extra_input(&mut self, name: &str, elem: DataType, dims: &[Option<i64>]) -> String {
        self.b.input(name, elem, dims)
    }

    pub fn rng(&mut self) -> &mut WeightRng {
        &mut self.rng
    }

    /// A unique name derived from `base`.
    pub fn fresh(&mut self, base: &str) -> String {
        self.b.fresh(base)
    }

    /// Add a node whose single output value carries the node's name.
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let name = self.b.fresh(name);
        self.b.graph.node.push(build::node(op, &name, inputs, &[&name], attrs));
        name
    }

    /// Add a node with explicit output names (graph outputs such as `logits`, multi-output nodes).
    pub fn node_to(&mut self, op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<(&str, Attr)>) {
        let name = self.b.fresh(name);
        for o in outputs {
            let reserved = self.b.fresh(o);
            // Explicit names are chosen by the builders; a clash is a bug in this crate, caught here in tests.
            debug_assert_eq!(&reserved, o, "value name '{o}' is already used");
        }
        self.b.graph.node.push(build::node(op, &name, inputs, outputs, attrs));
    }

    /// Add a node built by the caller (subgraph attributes); its names must come from [`Net::fresh`].
    pub fn push_node(&mut self, node: converters::proto::NodeProto) {
        self.b.graph.node.push(node);
    }

    /// A float32 initializer; returns its (unique) name.
    pub fn param(&mut self, name: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.b.fresh(name);
        self.b.graph.initializer.push(f32_tensor(&name, dims, values));
        name
    }

    pub fn param_i64(&mut self, name: &str, dims: &[i64], values: &[i64]) -> String {
        self.b.init_i64(name, dims, values)
    }

    pub fn conv(&mut self, name: &str, x: &str, c: ConvShape) -> String {
        let dims = [c.cout, c.cin / c.groups, c.kernel, c.kernel];
        let w = init::kaiming_normal_fan_out(&mut self.rng, &dims);
        let w = self.param(&format!("{name}.weight"), &dims, &w);
        let mut inputs = vec![x.to_string(), w];
        if c.bias {
            let fan_in = dims[1] * c.kernel * c.kernel;
            let b = init::torch_default_uniform(&mut self.rng, c.cout as usize, fan_in);
            inputs.push(self.param(&format!("{name}.bias"), &[c.cout], &b));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let k = c.kernel;
        let p = c.pad;
        self.node(
            "Conv",
            name,
            &refs,
            vec![
                ("dilations", Attr::Ints(vec![1, 1])),
                ("group", Attr::Int(c.groups)),
                ("kernel_shape", Attr::Ints(vec![k, k])),
                ("pads", Attr::Ints(vec![p, p, p, p])),
                ("strides", Attr::Ints(vec![c.stride, c.stride])),
            ],
        )
    }

    /// Inference-mode BatchNormalization (torch's momentum 0.1 is ONNX's 0.9).
    pub fn bn(&mut self, name: &str, x: &str, channels: i64) -> String {
        let n = channels as usize;
        let (gamma, beta, mean, var) = if self.random_bn {
            (
                self.rng.uniform(n, 0.5, 1.5),
                self.rng.normal(n, 0.1),
                self.rng.normal(n, 0.1),
                self.rng.uniform(n, 0.5, 2.0),
            )
        } else {
            (vec![1.0; n], vec![0.0; n], vec![0.0; n], vec![1.0; n])
        };
        let g = self.param(&format!("{name}.weight"), &[channels], &gamma);
        let b = self.param(&format!("{name}.bias"), &[channels], &beta);
        let m = self.param(&format!("{name}.running_mean"), &[channels], &mean);
        let v = self.param(&format!("{name}.running_var"), &[channels], &var);
        self.node(
            "BatchNormalization",
            name,
            &[x, &g, &b, &m, &v],
            vec![("epsilon", Attr::Float(1e-5)), ("momentum", Attr::Float(0.9))],
        )
    }

    pub fn relu(&mut self, name: &str, x: &str) -> String {
        self.node("Relu", name, &[x], vec![])
    }

    pub fn add(&mut self, name: &str, a: &str, b: &str) -> String {
        self.node("Add", name, &[a, b], vec![])
    }

    pub fn max_pool(&mut self, name: &str, x: &str, kernel: i64, stride: i64, pad: i64) -> String {
        self.node(
            "MaxPool",
            name,
            &[x],
            vec![
                ("kernel_shape", Attr::Ints(vec![kernel, kernel])),
                ("pads", Attr::Ints(vec![pad, pad, pad, pad])),
                ("strides", Attr::Ints(vec![stride, stride])),
            ],
        )
    }

    pub fn avg_pool(&mut self, name: &str, x: &str, kernel: i64, stride: i64) -> String {
        self.node(
            "AveragePool",
            name,
            &[x],
            vec![
                ("kernel_shape", Attr::Ints(vec![kernel, kernel])),
                ("pads", Attr::Ints(vec![0, 0, 0, 0])),
                ("strides", Attr::Ints(vec![stride, stride])),
            ],
        )
    }

    pub fn global_avg_pool(&mut self, name: &str, x: &str) -> String {
        self.node("GlobalAveragePool", name, &[x], vec![])
    }

    pub fn flatten(&mut self, name: &str, x: &str) -> String {
        self.node("Flatten", name, &[x], vec![("axis", Attr::Int(1))])
    }

    pub fn concat(&mut self, name: &str, xs: &[&str]) -> String {
        self.node("Concat", name, xs, vec![("axis", Attr::Int(1))])
    }

    /// ReLU6 the way torch exports it at opset ≥ 11: Clip with min/max as scalar initializers.
    pub fn relu6(&mut self, name: &str, x: &str) -> String {
        let lo = self.param(&format!("{name}.min"), &[], &[0.0]);
        let hi = self.param(&format!("{name}.max"), &[], &[6.0]);
        self.node("Clip", name, &[x, &lo, &hi], vec![])
    }

    /// `nn.Linear(fan_in, fan_out)` as torch exports it: Gemm with transB=1 and weight [out, in]. The output value
    /// is `out` when given (the graph's `logits`), else the node name.
    pub fn linear(&mut self, name: &str, x: &str, fan_in: i64, fan_out: i64, out: Option<&str>) -> String {
        let n = (fan_in * fan_out) as usize;
        let w = init::torch_default_uniform(&mut self.rng, n, fan_in);
        let b = init::torch_default_uniform(&mut self.rng, fan_out as usize, fan_in);
        let w = self.param(&format!("{name}.weight"), &[fan_out, fan_in], &w);
        let b = self.param(&format!("{name}.bias"), &[fan_out], &b);
        let attrs = vec![
            ("alpha", Attr::Float(1.0)),
            ("beta", Attr::Float(1.0)),
            ("transB", Attr::Int(1)),
        ];
        match out {
            Some(o) => {
                self.node_to("Gemm", name, &[x, &w, &b], &[o], attrs);
                o.to_string()
            }
            None => self.node("Gemm", name, &[x, &w, &b], attrs),
        }
    }

    /// Declare a graph output (float32).
    pub fn output(&mut self, name: &str, dims: &[Option<i64>]) {
        self.b.output(name, DataType::Float, dims);
    }

    /// Record a `metadata_props` entry in the finished model.
    pub fn meta(&mut self, key: &str, value: impl Into<String>) {
        self.meta.push((key.into(), value.into()));
    }

    /// The model, with `logits` [N, classes] declared as its output.
    pub fn finish_classifier(mut self, classes: i64) -> ModelProto {
        self.output(LOGITS, &[None, Some(classes)]);
        self.finish()
    }

    /// The model with the outputs declared so far.
    pub fn finish(self) -> ModelProto {
        let mut m = build::model(self.b.finish(), PRODUCER);
        m.metadata_props = self
            .meta
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k),
                value: Some(v),
            })
            .collect();
        m
    }
}

pub use converters::ir::tensor::from_f32 as f32_tensor;
