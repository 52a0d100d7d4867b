//! [`GradCx`]: what a gradient rule sees. It emits nodes into the train-step graph, hands out cached constants,
//! and answers which values need a gradient and what their static shapes are.

use std::collections::{HashMap, HashSet};

use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::ValInfo;
use crate::ir::build::{Attr, GraphBuilder};
use crate::proto::NodeProto;

/// Whether BatchNormalization uses batch statistics (and updates running ones) or its stored statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnMode {
    #[default]
    Train,
    Frozen,
}

/// How Conv gradients are formed (both are exact; they differ in speed by layer shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DwStrategy {
    /// Ungrouped 2-D convs: dW by per-offset batched MatMuls, stride-1 dX by a Conv with the flipped kernel;
    /// everything else as in `TransposedConv`.
    #[default]
    Auto,
    /// The reference formulation: dW as a Conv over transposed tensors, dX as ConvTranspose.
    TransposedConv,
}

pub struct GradCx {
    pub dw: DwStrategy,
    pub b: GraphBuilder,
    pub info: HashMap<String, ValInfo>,
    pub(crate) needs: HashSet<String>,
    /// Forward intermediates a rule's training-mode forward stored for its backward, keyed by node output.
    pub saved: HashMap<String, Vec<String>>,
    /// Extra outputs (e.g. BN running-stat updates): (state tensor name, value name).
    pub(crate) state_updates: Vec<(String, String)>,
    pub bn: BnMode,
    pub opset: i64,
    consts: HashMap<String, String>,
}

impl GradCx {
    pub(crate) fn new(b: GraphBuilder, info: HashMap<String, ValInfo>, bn: BnMode, opset: i64) -> Self {
        GradCx {
            dw: DwStrategy::Auto,
            b,
            info,
            needs: HashSet::new(),
            saved: HashMap::new(),
            state_updates: Vec::new(),
            bn,
            opset,
            consts: HashMap::new(),
        }
    }

    /// True when `value` lies on a path from a trainable parameter, so its gradient is wanted.
    pub fn needs(&self, value: &str) -> bool {
        self.needs.contains(value)
    }

    /// dY of a rule that differentiates only its first input: `None` when no gradient reaches `n` or its first
    /// input needs none.
    pub fn first_input_dy<'a>(&self, n: &NodeProto, dys: &'a [Option<String>]) -> Option<&'a str> {
        let dy = dys.first()?.as_deref()?;
        self.needs(n.input.first()?).then_some(dy)
    }

    /// What shape inference knows about each input of `n` (for rules that re-read folded axes or bounds).
    pub fn infos(&self, n: &NodeProto) -> Vec<Option<&ValInfo>> {
        n.input
            .iter()
            .map(|i| if i.is_empty() { None } else { self.info.get(i) })
            .collect()
    }

    pub fn shape(&self, n: &NodeProto, value: &str) -> Result<Vec<i64>> {
        self.info
            .get(value)
            .map(|i| i.shape.clone())
            .ok_or_else(|| shape_err(n, format!("no static shape for '{value}'")))
    }

    pub fn op(&mut self, op: &str, base: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.b.op(op, base, inputs, attrs)
    }

    /// A float32 scalar constant (cached by value).
    pub fn scalar(&mut self, v: f32) -> String {
        let key = format!("f:{}", v.to_bits());
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = self.b.init_f32("c_f", &[], &[v]);
        self.consts.insert(key, name.clone());
        name
    }

    /// A float32 constant tensor (not cached).
    pub fn tensor(&mut self, base: &str, dims: &[i64], values: &[f32]) -> String {
        self.b.init_f32(base, dims, values)
    }

    /// A 1-D int64 constant (cached by value), for axes, shapes, pads and slice bounds.
    pub fn ints(&mut self, v: &[i64]) -> String {
        let key = format!("i:{v:?}");
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = self.b.init_i64("c_i", &[v.len() as i64], v);
        self.consts.insert(key, name.clone());
        name
    }

    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.ints(shape);
        self.op("Reshape", "g_reshape", &[x, &s], vec![])
    }

    pub fn reduce_sum(&mut self, x: &str, axes: &[i64], keepdims: bool) -> String {
        let a = self.ints(axes);
        self.op(
            "ReduceSum",
            "g_sum",
            &[x, &a],
            vec![("keepdims", Attr::Int(keepdims as i64))],
        )
    }

    /// ReduceMean in the form the graph's opset wants (axes attribute before 18, input from 18).
    pub fn reduce_mean(&mut self, x: &str, axes: &[i64], keepdims: bool) -> String {
        if self.opset >= 18 {
            let a = self.ints(axes);
            self.op(
                "ReduceMean",
                "mean",
                &[x, &a],
                vec![("keepdims", Attr::Int(keepdims as i64))],
            )
        } else {
            self.op(
                "ReduceMean",
                "mean",
                &[x],
                vec![
                    ("axes", Attr::Ints(axes.to_vec())),
                    ("keepdims", Attr::Int(keepdims as i64)),
                ],
            )
        }
    }

    /// Sum a gradient of shape `from` down to the broadcast operand shape `to` (numpy rules).
    pub fn reduce_to(&mut self, g: &str, from: &[i64], to: &[i64]) -> String {
        if from == to {
            return g.to_string();
        }
        let lead = from.len() - to.len();
        let mut axes: Vec<i64> = (0..lead as i64).collect();
        for (i, &d) in to.iter().enumerate() {
            if d == 1 && from[lead + i] != 1 {
                axes.push((lead + i) as i64);
            }
        }
        let s = if axes.is_empty() {
            g.to_string()
        } else {
            self.reduce_sum(g, &axes, true)
        };
        self.reshape(&s, to)
    }

    pub fn zeros(&mut self, shape: &[i64]) -> String {
        let s = self.ints(shape);
        let zero = crate::ir::tensor::from_f32("", &[1], &[0.0]);
        self.op("ConstantOfShape", "g_zeros", &[&s], vec![("value", Attr::Tensor(zero))])
    }

    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.op("Mul", "g_mul", &[a, b], vec![])
    }

    pub fn neg(&mut self, a: &str) -> String {
        self.op("Neg", "g_neg", &[a], vec![])
    }

    /// `Where(cond, a, 0)`.
    pub fn mask(&mut self, cond: &str, a: &str) -> String {
        let z = self.scalar(0.0);
        self.op("Where", "g_where", &[cond, a, &z], vec![])
    }

    pub fn slice(&mut self, x: &str, starts: &[i64], ends: &[i64], axes: &[i64], steps: &[i64]) -> String {
        let (s, e, a, st) = (self.ints(starts), self.ints(ends), self.ints(axes), self.ints(steps));
        self.op("Slice", "g_slice", &[x, &s, &e, &a, &st], vec![])
    }

    pub fn pad(&mut self, x: &str, pads: &[i64], value: Option<f32>) -> String {
        let p = self.ints(pads);
        match value {
            Some(v) => {
                let c = self.scalar(v);
                self.op("Pad", "g_pad", &[x, &p, &c], vec![])
            }
            None => self.op("Pad", "g_pad", &[x, &p], vec![]),
        }
    }
}
