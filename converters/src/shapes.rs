//! Static shape inference for the CNN op set, at a fixed batch size. Shape-building chains (Shape → Gather →
//! Unsqueeze → Concat → Reshape, as the torch legacy exporter writes a flatten) are folded as small int64 values.
//! Unknown ops leave their outputs unknown rather than failing: callers decide whether they need them.

use std::collections::HashMap;

use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::build::value_info_dims;
use crate::ir::index::GraphIndex;
use crate::ir::tensor;
use crate::proto::{GraphProto, NodeProto};

#[derive(Debug, Default, Clone)]
pub struct Shapes {
    pub dims: HashMap<String, Vec<i64>>,
    /// Small int64 tensors whose values are known (shapes, axes).
    pub values: HashMap<String, Vec<i64>>,
}

impl Shapes {
    pub fn get(&self, v: &str) -> Option<&[i64]> {
        self.dims.get(v).map(Vec::as_slice)
    }
}

/// Infer shapes of every value, with symbolic graph-input dims set to `batch`.
pub fn infer(model: &Model, batch: i64) -> Shapes {
    let g = model.graph();
    let ix = GraphIndex::new(g);
    let mut s = Shapes::default();
    for t in &g.initializer {
        let name = t.name.clone().unwrap_or_default();
        s.dims.insert(name.clone(), t.dims.clone());
        if t.dims.iter().product::<i64>() <= 64
            && let Ok(v) = tensor::to_i64(t, model.tensor_bytes(t).ok().flatten().as_ref())
        {
            s.values.insert(name, v);
        }
    }
    for vi in &g.input {
        let name = vi.name.clone().unwrap_or_default();
        if s.dims.contains_key(&name) {
            continue;
        }
        if let Some(d) = value_info_dims(vi) {
            s.dims.insert(name, d.into_iter().map(|x| x.unwrap_or(batch)).collect());
        }
    }
    for n in &g.node {
        infer_node(g, &ix, n, &mut s);
    }
    s
}

fn infer_node(g: &GraphProto, ix: &GraphIndex, n: &NodeProto, s: &mut Shapes) {
    let inp = |i: usize| {
        n.input
            .get(i)
            .filter(|x| !x.is_empty())
            .and_then(|x| s.dims.get(x))
            .cloned()
    };
    let val = |i: usize| {
        n.input
            .get(i)
            .filter(|x| !x.is_empty())
            .and_then(|x| s.values.get(x))
            .cloned()
    };
    let out0 = n.output.first().cloned().unwrap_or_default();
    let mut new_dims: Vec<(String, Vec<i64>)> = Vec::new();
    let mut new_vals: Vec<(String, Vec<i64>)> = Vec::new();
    let mut set = |name: &str, d: Vec<i64>| new_dims.push((name.to_string(), d));
    let mut put_val = |name: &str, v: Vec<i64>| new_vals.push((name.to_string(), v));
    let ints = |a: &str| n.get_ints(a).ok().flatten();
    match n.op() {
        "Conv" | "MaxPool" | "AveragePool" | "ConvTranspose" => {
            let Some(x) = inp(0) else { return };
            let sp = x.len().saturating_sub(2);
            let (cout, kernel) = if n.op() == "Conv" || n.op() == "ConvTranspose" {
                let Some(w) = inp(1) else { return };
                let group = n.get_i("group").ok().flatten().unwrap_or(1);
                let cout = if n.op() == "Conv" { w[0] } else { w[1] * group };
                (cout, w[2..].to_vec())
            } else {
                (x[1], ints("kernel_shape").unwrap_or_default())
            };
            if kernel.len() != sp {
                return;
            }
            let strides = ints("strides").unwrap_or_else(|| vec![1; sp]);
            let dil = ints("dilations").unwrap_or_else(|| vec![1; sp]);
            let pads = ints("pads").unwrap_or_else(|| vec![0; 2 * sp]);
            let auto = n.get_s("auto_pad").ok().flatten().unwrap_or_default();
            let ceil = n.get_i("ceil_mode").ok().flatten().unwrap_or(0) == 1;
            let mut out = vec![x[0], cout];
            for k in 0..sp {
                let ek = dil[k] * (kernel[k] - 1) + 1;
                let o = if n.op() == "ConvTranspose" {
                    let op = ints("output_padding").map(|v| v[k]).unwrap_or(0);
                    strides[k] * (x[k + 2] - 1) + op + ek - pads[k] - pads[k + sp]
                } else if auto.starts_with("SAME") {
                    (x[k + 2] + strides[k] - 1) / strides[k]
                } else if auto == "VALID" {
                    (x[k + 2] - ek) / strides[k] + 1
                } else {
                    let num = x[k + 2] + pads[k] + pads[k + sp] - ek;
                    if ceil {
                        (num + strides[k] - 1) / strides[k] + 1
                    } else {
                        num / strides[k] + 1
                    }
                };
                out.push(o);
            }
            set(&out0, out.clone());
            if let Some(o1) = n.output.get(1).filter(|o| !o.is_empty()) {
                set(o1, out);
            }
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            if let Some(x) = inp(0) {
                let mut o = x[..2.min(x.len())].to_vec();
                o.extend(std::iter::repeat_n(1, x.len().saturating_sub(2)));
                set(&out0, o);
            }
        }
        "Relu"
        | "LeakyRelu"
        | "PRelu"
        | "Clip"
        | "Sigmoid"
        | "Tanh"
        | "Identity"
        | "Dropout"
        | "Softmax"
        | "LogSoftmax"
        | "BatchNormalization"
        | "Neg"
        | "Exp"
        | "Sqrt"
        | "Reciprocal"
        | "HardSwish"
        | "HardSigmoid"
        | "Elu"
        | "Selu"
        | "Cast"
        | "Erf"
        | "Abs"
        | "InstanceNormalization"
        | "LRN" => {
            if let Some(x) = inp(0) {
                for o in n.output.iter().filter(|o| !o.is_empty()) {
                    set(o, x.clone());
                }
            }
            if let Some(v) = val(0)
                && matches!(n.op(), "Identity" | "Cast")
            {
                put_val(&out0, v);
            }
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Where" | "Equal" | "Greater" | "Less" | "Max" | "Min" | "Sum" => {
            let shapes: Vec<Vec<i64>> = (0..n.input.len()).filter_map(inp).collect();
            if shapes.len() == n.input.len() {
                set(&out0, broadcast(&shapes));
            }
            if let (Some(a), Some(b)) = (val(0), val(1))
                && a.len() == b.len()
            {
                let v = a.iter().zip(&b).map(|(x, y)| match n.op() {
                    "Add" => x + y,
                    "Sub" => x - y,
                    "Mul" => x * y,
                    "Div" if *y != 0 => x / y,
                    _ => 0,
                });
                put_val(&out0, v.collect());
            }
        }
        "Flatten" => {
            if let Some(x) = inp(0) {
                let axis = n.get_i("axis").ok().flatten().unwrap_or(1);
                let axis = if axis < 0 { axis + x.len() as i64 } else { axis } as usize;
                set(&out0, vec![x[..axis].iter().product(), x[axis..].iter().product()]);
            }
        }
        "Reshape" => {
            if let (Some(x), Some(shape)) = (inp(0), val(1)) {
                let total: i64 = x.iter().product();
                let mut out: Vec<i64> = shape
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| if d == 0 { x[i] } else { d })
                    .collect();
                if let Some(p) = out.iter().position(|&d| d == -1) {
                    let known: i64 = out.iter().filter(|&&d| d != -1).product();
                    out[p] = if known == 0 { 0 } else { total / known };
                }
                set(&out0, out);
            }
        }
        "Shape" => {
            if let Some(x) = inp(0) {
                set(&out0, vec![x.len() as i64]);
                put_val(&out0, x);
            }
        }
        "Constant" => {
            if let Ok(Some(t)) = n.get_t("value") {
                set(&out0, t.dims.clone());
                if let Ok(v) = tensor::to_i64(t, None)
                    && v.len() <= 64
                {
                    put_val(&out0, v);
                }
            }
        }
        "Gather" => {
            if let (Some(x), Some(idx_dims)) = (inp(0), inp(1)) {
                let axis = n.get_i("axis").ok().flatten().unwrap_or(0);
                let axis = if axis < 0 { axis + x.len() as i64 } else { axis } as usize;
                let mut o = x[..axis].to_vec();
                o.extend(idx_dims);
                o.extend_from_slice(&x[axis + 1..]);
                set(&out0, o);
                if let (Some(v), Some(ix_v)) = (val(0), val(1))
                    && axis == 0
                {
                    let picked = ix_v.iter().filter_map(|&i| {
                        v.get(if i < 0 {
                            (i + v.len() as i64) as usize
                        } else {
                            i as usize
                        })
                        .copied()
                    });
                    put_val(&out0, picked.collect());
                }
            }
        }
        "Unsqueeze" | "Squeeze" => {
            let Some(x) = inp(0) else { return };
            let axes = ints("axes").or_else(|| val(1));
            let mut o = x.clone();
            if n.op() == "Unsqueeze" {
                let Some(axes) = axes else { return };
                let rank = (x.len() + axes.len()) as i64;
                let mut norm: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + rank } else { a }).collect();
                norm.sort_unstable();
                for a in norm {
                    o.insert(a as usize, 1);
                }
            } else {
                let rank = x.len() as i64;
                o = match axes {
                    Some(axes) => {
                        let norm: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + rank } else { a }).collect();
                        x.iter()
                            .enumerate()
                            .filter(|(i, _)| !norm.contains(&(*i as i64)))
                            .map(|(_, &d)| d)
                            .collect()
                    }
                    None => x.iter().copied().filter(|&d| d != 1).collect(),
                };
            }
            set(&out0, o);
            if let Some(v) = val(0) {
                put_val(&out0, v);
            }
        }
        "Concat" => {
            let shapes: Vec<Vec<i64>> = (0..n.input.len()).filter_map(inp).collect();
            if shapes.len() != n.input.len() || shapes.is_empty() {
                return;
            }
            let rank = shapes[0].len() as i64;
            let axis = n.get_i("axis").ok().flatten().unwrap_or(0);
            let axis = if axis < 0 { axis + rank } else { axis } as usize;
            let mut o = shapes[0].clone();
            o[axis] = shapes.iter().map(|d| d[axis]).sum();
            set(&out0, o);
            let vals: Vec<Vec<i64>> = (0..n.input.len()).filter_map(val).collect();
            if vals.len() == n.input.len() {
                put_val(&out0, vals.concat());
            }
        }
        "Gemm" => {
            if let (Some(a), Some(b)) = (inp(0), inp(1)) {
                let ta = n.get_i("transA").ok().flatten().unwrap_or(0) == 1;
                let tb = n.get_i("transB").ok().flatten().unwrap_or(0) == 1;
                let m = if ta { a[1] } else { a[0] };
                let nn = if tb { b[0] } else { b[1] };
                set(&out0, vec![m, nn]);
            }
        }
        "MatMul" => {
            if let (Some(a), Some(b)) = (inp(0), inp(1))
                && a.len() >= 2
                && b.len() >= 2
            {
                let mut o = broadcast(&[a[..a.len() - 2].to_vec(), b[..b.len() - 2].to_vec()]);
                o.push(a[a.len() - 2]);
                o.push(b[b.len() - 1]);
                set(&out0, o);
            }
        }
        "Transpose" => {
            if let Some(x) = inp(0) {
                let perm = ints("perm").unwrap_or_else(|| (0..x.len() as i64).rev().collect());
                set(&out0, perm.iter().map(|&p| x[p as usize]).collect());
            }
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" => {
            if let Some(x) = inp(0) {
                let keep = n.get_i("keepdims").ok().flatten().unwrap_or(1) == 1;
                let rank = x.len() as i64;
                let axes = ints("axes").or_else(|| val(1)).unwrap_or_else(|| (0..rank).collect());
                let axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| if a < 0 { a + rank } else { a } as usize)
                    .collect();
                let o = x
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| if axes.contains(&i) { keep.then_some(1) } else { Some(d) })
                    .collect();
                set(&out0, o);
            }
        }
        "Pad" => {
            if let (Some(x), Some(p)) = (inp(0), ints("pads").or_else(|| val(1)))
                && p.len() == 2 * x.len()
            {
                set(
                    &out0,
                    x.iter().enumerate().map(|(i, d)| d + p[i] + p[i + x.len()]).collect(),
                );
            }
        }
        "Split" => {
            let Some(x) = inp(0) else { return };
            let rank = x.len() as i64;
            let axis = n.get_i("axis").ok().flatten().unwrap_or(0);
            let axis = if axis < 0 { axis + rank } else { axis } as usize;
            let k = n.output.len() as i64;
            let sizes = ints("split")
                .or_else(|| val(1))
                .unwrap_or_else(|| vec![x[axis] / k; k as usize]);
            for (o, sz) in n.output.iter().zip(sizes) {
                let mut d = x.clone();
                d[axis] = sz;
                set(o, d);
            }
        }
        "Slice" => {
            let (Some(x), Some(starts), Some(ends)) = (inp(0), val(1), val(2)) else {
                return;
            };
            let rank = x.len() as i64;
            let axes = val(3).unwrap_or_else(|| (0..starts.len() as i64).collect());
            let steps = val(4).unwrap_or_else(|| vec![1; starts.len()]);
            let mut o = x.clone();
            for (k, &a) in axes.iter().enumerate() {
                let a = if a < 0 { a + rank } else { a } as usize;
                let d = x[a];
                let clamp = |v: i64| if v < 0 { (v + d).max(0) } else { v.min(d) };
                let (st, en, step) = (clamp(starts[k]), clamp(ends[k]), steps[k]);
                o[a] = if step > 0 {
                    ((en - st).max(0) + step - 1) / step
                } else {
                    ((st - en).max(0) + (-step) - 1) / (-step)
                };
            }
            set(&out0, o);
        }
        _ => {
            let _ = (g, ix);
        }
    }
    s.dims.extend(new_dims);
    s.values.extend(new_vals);
}

/// numpy-style broadcasting of several shapes.
pub fn broadcast(shapes: &[Vec<i64>]) -> Vec<i64> {
    let rank = shapes.iter().map(Vec::len).max().unwrap_or(0);
    (0..rank)
        .map(|i| {
            shapes
                .iter()
                .filter_map(|s| (i + s.len()).checked_sub(rank).map(|j| s[j]))
                .fold(1, |acc, d| if d == 1 { acc } else { d })
        })
        .collect()
}

/// Parameters and multiply-accumulates of one layer (Conv, Gemm, MatMul), at the inferred batch size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerCost {
    pub name: String,
    pub op: String,
    pub params: u64,
    pub macs: u64,
    pub output_shape: Vec<i64>,
}

/// Cost of every Conv/Gemm/MatMul/BatchNormalization layer, per sample (batch 1).
pub fn layer_costs(model: &Model) -> Vec<LayerCost> {
    let s = infer(model, 1);
    let g = model.graph();
    let ix = GraphIndex::new(g);
    let param_count = |v: &str| -> u64 { ix.constant(g, v).map(|t| tensor::numel(&t.dims) as u64).unwrap_or(0) };
    let mut out = Vec::new();
    for n in &g.node {
        let op = n.op();
        if !matches!(
            op,
            "Conv" | "ConvTranspose" | "Gemm" | "MatMul" | "BatchNormalization" | "PRelu"
        ) {
            continue;
        }
        let params: u64 = n
            .input
            .iter()
            .skip(1)
            .filter(|i| !i.is_empty())
            .map(|i| param_count(i))
            .sum();
        let y = s.get(&n.output[0]).map(<[i64]>::to_vec).unwrap_or_default();
        let macs = match op {
            "Conv" => s.get(&n.input[1]).map_or(0, |w| {
                // Each output element costs Cin/g · kh · kw MACs.
                let per_out: i64 = w[1..].iter().product();
                (y.iter().product::<i64>() * per_out) as u64
            }),
            "ConvTranspose" => s.get(&n.input[0]).zip(s.get(&n.input[1])).map_or(0, |(x, w)| {
                (x.iter().product::<i64>() * w[1..].iter().product::<i64>()) as u64
            }),
            "Gemm" | "MatMul" => s.get(&n.input[0]).map_or(0, |a| {
                let k = if op == "Gemm" && n.get_i("transA").ok().flatten() == Some(1) {
                    a[0]
                } else {
                    *a.last().unwrap_or(&0)
                };
                (y.iter().product::<i64>() * k) as u64
            }),
            _ => 0,
        };
        out.push(LayerCost {
            name: n.name_or_output().to_string(),
            op: op.to_string(),
            params,
            macs,
            output_shape: y,
        });
    }
    out
}
