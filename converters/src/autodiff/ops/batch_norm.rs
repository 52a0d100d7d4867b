//! BatchNormalization, in training mode (batch statistics, running-stat updates) or frozen.
//!
//! Training forward is decomposed so the backward can reuse μ, r = 1/√(σ²+ε) and X̂ = (X−μ)·r:
//!   dX = r·(dX̂ − mean(dX̂) − X̂·mean(dX̂·X̂)) with dX̂ = dY·γ;  dγ = Σ dY·X̂;  dβ = Σ dY.
//! Running statistics follow PyTorch: the variance is updated with the unbiased estimate σ²·m/(m−1) (the ONNX
//! op's own training mode uses the biased one), weighted by the node's ONNX `momentum` (PyTorch's 1 − momentum).
//! Frozen: dX = dY·γ/√(rv+ε), and γ/β still get gradients against the stored statistics.

use crate::autodiff::cx::{BnMode, GradCx};
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops::common::{input_info, out0};
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::ir::build::node;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "BatchNormalization",
    infer,
    grad: Grad::Rule(grad),
    forward_train: Some(forward_train),
    param_slots: &[1, 2],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    if n.output.iter().filter(|o| !o.is_empty()).count() > 1 || n.get_i("training_mode")?.unwrap_or(0) != 0 {
        return Err(unsupported(n, "a training-mode BatchNormalization in the source model"));
    }
    if x.shape.len() < 2 {
        return Err(shape_err(n, "input needs a channel axis"));
    }
    Ok(vec![ValInfo::float(x.shape.clone())])
}

struct Geo {
    axes: Vec<i64>,
    bshape: Vec<i64>,
    c: i64,
    m: i64,
}

fn geo(cx: &GradCx, n: &NodeProto) -> Result<Geo> {
    let xs = cx.shape(n, &n.input[0])?;
    let axes: Vec<i64> = std::iter::once(0).chain(2..xs.len() as i64).collect();
    let mut bshape = vec![1; xs.len()];
    bshape[1] = xs[1];
    let m = xs.iter().product::<i64>() / xs[1];
    Ok(Geo {
        axes,
        bshape,
        c: xs[1],
        m,
    })
}

fn forward_train(cx: &mut GradCx, n: &NodeProto) -> Result<bool> {
    if cx.bn == BnMode::Frozen {
        return Ok(false);
    }
    let g = geo(cx, n)?;
    if g.m < 2 {
        return Err(unsupported(
            n,
            "training-mode BatchNorm needs more than one value per channel",
        ));
    }
    let eps = n.get_f("epsilon")?.unwrap_or(1e-5);
    let momentum = n.get_f("momentum")?.unwrap_or(0.9);
    let (x, scale, bias, rm, rv) = (&n.input[0], &n.input[1], &n.input[2], &n.input[3], &n.input[4]);
    let y = out0(n).to_string();
    let mean = cx.reduce_mean(x, &g.axes, true);
    let xc = cx.op("Sub", &format!("{y}_xc"), &[x, &mean], vec![]);
    let sq = cx.mul(&xc, &xc);
    let var = cx.reduce_mean(&sq, &g.axes, true);
    let e = cx.scalar(eps);
    let ve = cx.op("Add", &format!("{y}_ve"), &[&var, &e], vec![]);
    let sd = cx.op("Sqrt", &format!("{y}_sd"), &[&ve], vec![]);
    let r = cx.op("Reciprocal", &format!("{y}_r"), &[&sd], vec![]);
    let xhat = cx.mul(&xc, &r);
    let gamma = cx.reshape(scale, &g.bshape);
    let beta = cx.reshape(bias, &g.bshape);
    let scaled = cx.mul(&xhat, &gamma);
    let name = cx.b.fresh(&format!("{y}/bn_train"));
    cx.b.graph
        .node
        .push(node("Add", &name, &[&scaled, &beta], &[&y], vec![]));

    let keep = cx.scalar(momentum);
    let take = cx.scalar(1.0 - momentum);
    let unbiased = cx.scalar(g.m as f32 / (g.m - 1) as f32);
    let mean_c = cx.reshape(&mean, &[g.c]);
    let var_c = cx.reshape(&var, &[g.c]);
    let var_u = cx.mul(&var_c, &unbiased);
    for (stat, batch) in [(rm, mean_c), (rv, var_u)] {
        let old = cx.mul(stat, &keep);
        let new = cx.mul(&batch, &take);
        let upd = cx.op("Add", &format!("{stat}_upd"), &[&old, &new], vec![]);
        cx.state_updates.push((stat.clone(), upd));
    }
    cx.saved.insert(y, vec![xhat, r, gamma]);
    Ok(true)
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let g = geo(cx, n)?;
    let y = out0(n).to_string();
    let (x, scale, bias) = (n.input[0].as_str(), n.input[1].as_str(), n.input[2].as_str());
    let (xhat, r, gamma) = match cx.saved.get(&y).cloned() {
        Some(s) => (s[0].clone(), s[1].clone(), s[2].clone()),
        None => {
            // Frozen statistics: X̂ and r come from the stored running mean/variance.
            let eps = n.get_f("epsilon")?.unwrap_or(1e-5);
            let e = cx.scalar(eps);
            let rv = cx.reshape(&n.input[4], &g.bshape);
            let rm = cx.reshape(&n.input[3], &g.bshape);
            let ve = cx.op("Add", &format!("{y}_ve"), &[&rv, &e], vec![]);
            let sd = cx.op("Sqrt", &format!("{y}_sd"), &[&ve], vec![]);
            let r = cx.op("Reciprocal", &format!("{y}_r"), &[&sd], vec![]);
            let xhat = if cx.needs(scale) {
                let xc = cx.op("Sub", &format!("{y}_xc"), &[x, &rm], vec![]);
                cx.mul(&xc, &r)
            } else {
                String::new()
            };
            let gamma = cx.reshape(scale, &g.bshape);
            (xhat, r, gamma)
        }
    };
    let train = cx.saved.contains_key(&y);
    if cx.needs(x) {
        let dxhat = cx.mul(dy, &gamma);
        let dx = if train {
            let m1 = cx.reduce_mean(&dxhat, &g.axes, true);
            let p = cx.mul(&dxhat, &xhat);
            let m2 = cx.reduce_mean(&p, &g.axes, true);
            let t = cx.mul(&xhat, &m2);
            let a = cx.op("Sub", &format!("{y}_dxa"), &[&dxhat, &m1], vec![]);
            let b = cx.op("Sub", &format!("{y}_dxb"), &[&a, &t], vec![]);
            cx.mul(&b, &r)
        } else {
            cx.mul(&dxhat, &r)
        };
        out[0] = Some(dx);
    }
    if cx.needs(scale) {
        let p = cx.mul(dy, &xhat);
        out[1] = Some(cx.reduce_sum(&p, &g.axes, false));
    }
    if cx.needs(bias) {
        out[2] = Some(cx.reduce_sum(dy, &g.axes, false));
    }
    Ok(out)
}
