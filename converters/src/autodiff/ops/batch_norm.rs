//! BatchNormalization, in training mode (batch statistics, running-stat updates) or frozen.
//!
//! Training forward: μ = mean(X), Xc = X − μ, σ² = ΣXc²/m (ReduceSumSquare, no squared tensor), and Y from an
//! inference-mode BatchNormalization fed the batch μ and σ², which writes Y in one pass (instead of a Mul by a
//! and an Add of β). r = 1/√(σ²+ε) and a = γ·r are per-channel. The backward reuses Xc and per-channel factors instead of
//! materialising X̂ = Xc·r (fewer full-size passes):
//!   s1 = Σ dY, s2 = Σ dY·Xc;  dβ = s1;  dγ = r·s2;  dX = a·dY − (Xc·c3 + c2),  c3 = a·r²·s2/m,  c2 = a·s1/m
//! which is the usual dX = γr·(dY − mean(dY) − X̂·mean(dY·X̂)); the per-channel affine Xc·c3 + c2 is again one
//! inference-mode BatchNormalization (mean 0, variance 1, ε = 0) instead of a Mul and an Add.
//! Running statistics follow PyTorch: the variance is updated with the unbiased estimate σ²·m/(m−1) (the ONNX
//! op's own training mode uses the biased one), weighted by the node's ONNX `momentum` (PyTorch's 1 − momentum).
//! Frozen: dX = dY·γ/√(rv+ε), and γ/β still get gradients against the stored statistics.

use crate::autodiff::cx::{BnMode, GradCx};
use crate::autodiff::error::{Result, unsupported};
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::{ForwardFn, Grad};
use crate::ir::attr::NodeExt;
use crate::ir::build::{Attr, node};
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);
pub const FORWARD: ForwardFn = forward_train;

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
    let sumsq = reduce_sum_square(cx, &xc, &g.axes);
    let inv_m = cx.scalar(1.0 / g.m as f32);
    let var = cx.mul(&sumsq, &inv_m);
    let e = cx.scalar(eps);
    let ve = cx.op("Add", &format!("{y}_ve"), &[&var, &e], vec![]);
    let sd = cx.op("Sqrt", &format!("{y}_sd"), &[&ve], vec![]);
    let r = cx.op("Reciprocal", &format!("{y}_r"), &[&sd], vec![]);
    let gamma = cx.reshape(scale, &g.bshape);
    let a = cx.mul(&gamma, &r);
    let mean_c = cx.reshape(&mean, &[g.c]);
    let var_c = cx.reshape(&var, &[g.c]);
    affine_bn(
        cx,
        &format!("{y}/bn_train"),
        x,
        [scale, bias, &mean_c, &var_c],
        eps,
        Some(&y),
    );

    let keep = cx.scalar(momentum);
    let take = cx.scalar(1.0 - momentum);
    let unbiased = cx.scalar(g.m as f32 / (g.m - 1) as f32);
    let var_u = cx.mul(&var_c, &unbiased);
    for (stat, batch) in [(rm, mean_c), (rv, var_u)] {
        let old = cx.mul(stat, &keep);
        let new = cx.mul(&batch, &take);
        let upd = cx.op("Add", &format!("{stat}_upd"), &[&old, &new], vec![]);
        cx.state_updates.push((stat.clone(), upd));
    }
    cx.saved.insert(y, vec![xc, r, a]);
    Ok(true)
}

/// Σ x² over `axes`, keeping dims, in the form the opset wants (axes attribute before 18, input from 18).
fn reduce_sum_square(cx: &mut GradCx, x: &str, axes: &[i64]) -> String {
    let keep = ("keepdims", Attr::Int(1));
    if cx.opset >= 18 {
        let a = cx.ints(axes);
        cx.op("ReduceSumSquare", "sumsq", &[x, &a], vec![keep])
    } else {
        cx.op(
            "ReduceSumSquare",
            "sumsq",
            &[x],
            vec![("axes", Attr::Ints(axes.to_vec())), keep],
        )
    }
}

/// An inference-mode BatchNormalization: (x − mean)/√(var + ε)·scale + bias per channel in one pass over x, written
/// to `out` when given.
fn affine_bn(cx: &mut GradCx, base: &str, x: &str, params: [&str; 4], eps: f32, out: Option<&str>) -> String {
    let [scale, bias, mean, var] = params;
    let attrs = vec![("epsilon", Attr::Float(eps))];
    match out {
        Some(y) => {
            let name = cx.b.fresh(base);
            cx.b.graph.node.push(node(
                "BatchNormalization",
                &name,
                &[x, scale, bias, mean, var],
                &[y],
                attrs,
            ));
            y.to_string()
        }
        None => cx.op("BatchNormalization", base, &[x, scale, bias, mean, var], attrs),
    }
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let g = geo(cx, n)?;
    let y = out0(n).to_string();
    let (x, scale, bias) = (n.input[0].as_str(), n.input[1].as_str(), n.input[2].as_str());
    if let Some(saved) = cx.saved.get(&y).cloned() {
        let (xc, r, a) = (&saved[0], &saved[1], &saved[2]);
        let s1 = cx.reduce_sum(dy, &g.axes, true);
        let p = cx.mul(dy, xc);
        let s2 = cx.reduce_sum(&p, &g.axes, true);
        if cx.needs(x) {
            let inv_m = cx.scalar(1.0 / g.m as f32);
            let as1 = cx.mul(a, &s1);
            let c2 = cx.mul(&as1, &inv_m);
            let rr = cx.mul(r, r);
            let ar2 = cx.mul(a, &rr);
            let ar2s2 = cx.mul(&ar2, &s2);
            let c3 = cx.mul(&ar2s2, &inv_m);
            let t1 = cx.mul(dy, a);
            let (c3, c2) = (cx.reshape(&c3, &[g.c]), cx.reshape(&c2, &[g.c]));
            let (zero, one) = (
                cx.tensor("bn_zero", &[g.c], &vec![0.0; g.c as usize]),
                cx.tensor("bn_one", &[g.c], &vec![1.0; g.c as usize]),
            );
            let t3 = affine_bn(cx, &format!("{y}_dxb"), xc, [&c3, &c2, &zero, &one], 0.0, None);
            out[0] = Some(cx.op("Sub", &format!("{y}_dx"), &[&t1, &t3], vec![]));
        }
        if cx.needs(scale) {
            let rs2 = cx.mul(r, &s2);
            out[1] = Some(cx.reshape(&rs2, &[g.c]));
        }
        if cx.needs(bias) {
            out[2] = Some(cx.reshape(&s1, &[g.c]));
        }
        return Ok(out);
    }
    // Frozen statistics: X̂ and r come from the stored running mean/variance.
    let eps = n.get_f("epsilon")?.unwrap_or(1e-5);
    let e = cx.scalar(eps);
    let rv = cx.reshape(&n.input[4], &g.bshape);
    let ve = cx.op("Add", &format!("{y}_ve"), &[&rv, &e], vec![]);
    let sd = cx.op("Sqrt", &format!("{y}_sd"), &[&ve], vec![]);
    let r = cx.op("Reciprocal", &format!("{y}_r"), &[&sd], vec![]);
    if cx.needs(x) {
        let gamma = cx.reshape(scale, &g.bshape);
        let a = cx.mul(&gamma, &r);
        out[0] = Some(cx.mul(dy, &a));
    }
    if cx.needs(scale) {
        let rm = cx.reshape(&n.input[3], &g.bshape);
        let xc = cx.op("Sub", &format!("{y}_xc"), &[x, &rm], vec![]);
        let xhat = cx.mul(&xc, &r);
        let p = cx.mul(dy, &xhat);
        out[1] = Some(cx.reduce_sum(&p, &g.axes, false));
    }
    if cx.needs(bias) {
        out[2] = Some(cx.reduce_sum(dy, &g.axes, false));
    }
    Ok(out)
}
