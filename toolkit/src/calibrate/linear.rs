//! A linear layer (Conv, Gemm, MatMul with a constant weight) seen the same way by every fit: output channel o is
//! `Σ_k w[o, k] · f_k + b[o]` over the layer's feature vector f (for a Conv, the [C_in/g, k…] patch under the
//! window, from o's group; for Gemm and MatMul, one input row). [`Linear::read`] turns the node's tensors into
//! that form (Gemm's alpha/beta/transB, MatMul's following bias Add) and [`Linear::updates`] writes a fitted
//! (w, b) back in the node's own layout, through `converters::passes::set_inputs`.

use anyhow::{Result, anyhow};
use converters::Model;
use converters::ir::GraphIndex;
use converters::ir::attr::NodeExt;
use converters::ir::build::{self, Attr};
use converters::ir::tensor;
use converters::passes::set_inputs::InputUpdate;
use converters::proto::{AttributeProto, NodeProto};

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Conv { group: usize, kernel: Vec<i64> },
    Gemm { alpha: f64, beta: f64, trans_b: bool },
    MatMul,
}

/// Where the bias lives.
#[derive(Debug, Clone, PartialEq)]
enum Bias {
    /// Input slot of the node itself (Conv 2, Gemm 2), present or not.
    Slot(usize),
    /// A following Add node's constant input (MatMul + Add), with that constant's dims.
    Add { node: usize, input: usize, dims: Vec<i64> },
    /// MatMul without a bias Add: only w can change.
    Absent,
}

#[derive(Debug, Clone)]
pub struct Linear {
    pub node: usize,
    pub name: String,
    pub op: String,
    pub kind: Kind,
    /// The data input and the value the fit matches (the node's output, or the bias Add's for MatMul).
    pub input: String,
    pub output: String,
    pub outs: usize,
    pub fan_in: usize,
    /// Row-major [outs × fan_in].
    pub w: Vec<f64>,
    pub b: Vec<f64>,
    weight_dims: Vec<i64>,
    bias: Bias,
}

fn values(model: &Model, ix: &GraphIndex, name: &str) -> Result<Option<(Vec<f32>, Vec<i64>)>> {
    let g = model.graph();
    let Some(t) = ix.constant(g, name) else {
        return Ok(None);
    };
    let raw = model.tensor_bytes(t)?;
    Ok(Some((tensor::to_f32(t, raw.as_ref())?, t.dims.clone())))
}

/// What each op's reader finds: the kind, output channels, effective (w, b), where the bias lives and the value
/// the fit matches.
type Parts = (Kind, usize, Vec<f64>, Vec<f64>, Bias, String);

/// The optional bias input `slot` of `n`: `Ok(None)` when absent, `Err(())` when present but not a constant of
/// `outs` values or one value.
fn bias_input(model: &Model, ix: &GraphIndex, n: &NodeProto, slot: usize, outs: usize) -> Result<Option<Vec<f32>>, ()> {
    let Some(name) = n.input.get(slot).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    match values(model, ix, name) {
        Ok(Some((v, _))) if v.len() == outs || v.len() == 1 => Ok(Some(v)),
        _ => Err(()),
    }
}

fn read_conv(model: &Model, ix: &GraphIndex, n: &NodeProto, wv: &[f32], wd: &[i64]) -> Result<Option<Parts>> {
    let outs = wd.first().copied().unwrap_or(0) as usize;
    if outs == 0 || wd.len() < 3 || !wv.len().is_multiple_of(outs) {
        return Ok(None);
    }
    let b = match bias_input(model, ix, n, 2, outs) {
        Ok(Some(b)) if b.len() == outs => b.iter().map(|&v| v as f64).collect(),
        Ok(None) => vec![0.0; outs],
        _ => return Ok(None),
    };
    let group = n.get_i("group")?.unwrap_or(1).max(1) as usize;
    let kind = Kind::Conv {
        group,
        kernel: wd[2..].to_vec(),
    };
    let w = wv.iter().map(|&v| v as f64).collect();
    Ok(Some((kind, outs, w, b, Bias::Slot(2), n.output[0].clone())))
}

fn read_gemm(model: &Model, ix: &GraphIndex, n: &NodeProto, wv: &[f32], wd: &[i64]) -> Result<Option<Parts>> {
    if n.get_i("transA")?.unwrap_or(0) != 0 || wd.len() != 2 {
        return Ok(None);
    }
    let trans_b = n.get_i("transB")?.unwrap_or(0) != 0;
    let alpha = n.get_f("alpha")?.unwrap_or(1.0) as f64;
    let beta = n.get_f("beta")?.unwrap_or(1.0) as f64;
    let (k, outs) = if trans_b {
        (wd[1] as usize, wd[0] as usize)
    } else {
        (wd[0] as usize, wd[1] as usize)
    };
    let mut w = vec![0.0; outs * k];
    for o in 0..outs {
        for j in 0..k {
            let v = if trans_b { wv[o * k + j] } else { wv[j * outs + o] };
            w[o * k + j] = alpha * v as f64;
        }
    }
    let b = match bias_input(model, ix, n, 2, outs) {
        Ok(Some(c)) => (0..outs).map(|o| beta * c[o.min(c.len() - 1)] as f64).collect(),
        Ok(None) => vec![0.0; outs],
        Err(()) => return Ok(None),
    };
    let kind = Kind::Gemm { alpha, beta, trans_b };
    Ok(Some((kind, outs, w, b, Bias::Slot(2), n.output[0].clone())))
}

fn read_matmul(model: &Model, ix: &GraphIndex, n: &NodeProto, wv: &[f32], wd: &[i64]) -> Result<Option<Parts>> {
    if wd.len() != 2 {
        return Ok(None);
    }
    let (k, outs) = (wd[0] as usize, wd[1] as usize);
    let mut w = vec![0.0; outs * k];
    for o in 0..outs {
        for j in 0..k {
            w[o * k + j] = wv[j * outs + o] as f64;
        }
    }
    Ok(Some(match matmul_bias(model, ix, n, outs)? {
        Some((node, input, dims, v, out)) => {
            let b = v.iter().map(|&x| x as f64).collect();
            (Kind::MatMul, outs, w, b, Bias::Add { node, input, dims }, out)
        }
        None => (
            Kind::MatMul,
            outs,
            w,
            vec![0.0; outs],
            Bias::Absent,
            n.output[0].clone(),
        ),
    }))
}

impl Linear {
    /// Node `i` as a linear layer, or `None` when it is not one whose weights are constants.
    pub fn read(model: &Model, ix: &GraphIndex, i: usize) -> Result<Option<Linear>> {
        let n = &model.graph().node[i];
        if !n.domain_str().is_empty() || n.input.len() < 2 || n.output.first().is_none_or(String::is_empty) {
            return Ok(None);
        }
        let Some((wv, wd)) = values(model, ix, &n.input[1])? else {
            return Ok(None);
        };
        let parts = match n.op() {
            "Conv" => read_conv(model, ix, n, &wv, &wd)?,
            "Gemm" => read_gemm(model, ix, n, &wv, &wd)?,
            "MatMul" => read_matmul(model, ix, n, &wv, &wd)?,
            _ => None,
        };
        Ok(parts.map(|(kind, outs, w, b, bias, output)| Linear {
            node: i,
            name: n.name_or_output().to_string(),
            op: n.op().to_string(),
            kind,
            input: n.input[0].clone(),
            output,
            outs,
            fan_in: w.len() / outs.max(1),
            w,
            b,
            weight_dims: wd,
            bias,
        }))
    }

    /// Whether a fit may change the bias (MatMul without a bias Add cannot: the graph keeps its ops).
    pub fn has_bias(&self) -> bool {
        self.bias != Bias::Absent
    }

    /// Axis of the output holding the channels the rows of `w` produce.
    pub fn channel_axis(&self, rank: usize) -> usize {
        match self.kind {
            Kind::MatMul => rank - 1,
            _ => 1,
        }
    }

    /// Features per output (the fan-in), plus one for the bias when it can be fitted.
    pub fn features(&self) -> usize {
        self.fan_in + usize::from(self.has_bias())
    }

    pub fn groups(&self) -> usize {
        match self.kind {
            Kind::Conv { group, .. } => group,
            _ => 1,
        }
    }

    /// The updates writing (`w`, `b`) back into the node's own tensors.
    pub fn updates(&self, w: &[f64], b: &[f64]) -> (Vec<InputUpdate>, Vec<(usize, AttributeProto)>) {
        let (outs, k) = (self.outs, self.fan_in);
        let mut ups = Vec::new();
        let mut attrs = Vec::new();
        let hint = |what: &str| format!("{}.{what}_calibrated", self.name);
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        match &self.kind {
            Kind::Conv { .. } => {
                ups.push(self.update(1, hint("weight"), &self.weight_dims, &f32s(w)));
                ups.push(self.update(2, hint("bias"), &[outs as i64], &f32s(b)));
            }
            Kind::Gemm { alpha, beta, trans_b } => {
                let mut bw = vec![0f32; outs * k];
                for o in 0..outs {
                    for j in 0..k {
                        let at = if *trans_b { o * k + j } else { j * outs + o };
                        bw[at] = (w[o * k + j] / alpha) as f32;
                    }
                }
                ups.push(self.update(1, hint("weight"), &self.weight_dims, &bw));
                let beta = if *beta == 0.0 {
                    attrs.push((self.node, build::attr("beta", Attr::Float(1.0))));
                    1.0
                } else {
                    *beta
                };
                let c: Vec<f32> = b.iter().map(|&x| (x / beta) as f32).collect();
                ups.push(self.update(2, hint("bias"), &[outs as i64], &c));
            }
            Kind::MatMul => {
                let mut bw = vec![0f32; outs * k];
                for o in 0..outs {
                    for j in 0..k {
                        bw[j * outs + o] = w[o * k + j] as f32;
                    }
                }
                ups.push(self.update(1, hint("weight"), &self.weight_dims, &bw));
            }
        }
        if let Bias::Add { node, input, dims } = &self.bias {
            ups.push(InputUpdate {
                node: *node,
                input: *input,
                tensor: tensor::from_f32(&hint("bias"), dims, &f32s(b)),
            });
        }
        (ups, attrs)
    }

    fn update(&self, input: usize, name: String, dims: &[i64], values: &[f32]) -> InputUpdate {
        InputUpdate {
            node: self.node,
            input,
            tensor: tensor::from_f32(&name, dims, values),
        }
    }
}

/// The Add after a MatMul that adds a constant of `outs` values (the bias of a linear layer): its node index,
/// the constant's input slot and dims, the values and the Add's output.
type AddBias = (usize, usize, Vec<i64>, Vec<f32>, String);

fn matmul_bias(model: &Model, ix: &GraphIndex, n: &NodeProto, outs: usize) -> Result<Option<AddBias>> {
    let y = &n.output[0];
    let [ai] = ix.consumers_of(y) else {
        return Ok(None);
    };
    if ix.graph_outputs.contains(y) {
        return Ok(None);
    }
    let g = model.graph();
    let add = &g.node[*ai];
    if add.op() != "Add" || add.input.len() != 2 || add.output.first().is_none_or(String::is_empty) {
        return Ok(None);
    }
    let slot = if add.input[0] == *y { 1 } else { 0 };
    let Some((v, dims)) = values(model, ix, &add.input[slot])? else {
        return Ok(None);
    };
    if v.len() != outs || dims.last().copied() != Some(outs as i64) {
        return Ok(None);
    }
    let out = add
        .output
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("Add after '{}' has no output", n.name_or_output()))?;
    Ok(Some((*ai, slot, dims, v, out)))
}
