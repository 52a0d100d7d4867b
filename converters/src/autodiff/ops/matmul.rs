//! MatMul (numpy semantics: batch dims broadcast; a 1-D A is a row vector [1, K], a 1-D B a column vector
//! [K, 1], and the unit axis is dropped from Y): dA = dY·Bᵀ, dB = Aᵀ·dY on the promoted operands, each summed
//! over the batch axes it was broadcast along and reshaped back to the operand's shape.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::broadcast;
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::Grad;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn swap_last(cx: &mut GradCx, x: &str, rank: usize) -> String {
    let mut perm: Vec<i64> = (0..rank as i64).collect();
    perm.swap(rank - 1, rank - 2);
    cx.op("Transpose", "mm_T", &[x], vec![("perm", Attr::Ints(perm))])
}

/// `x` viewed with the shape numpy's MatMul promotes it to.
fn promoted(cx: &mut GradCx, x: &str, shape: &[i64], promoted: &[i64]) -> String {
    if shape == promoted {
        x.to_string()
    } else {
        cx.reshape(x, promoted)
    }
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None, None]);
    };
    let (a, b) = (n.input[0].as_str(), n.input[1].as_str());
    let (as_, bs, ys) = (cx.shape(n, a)?, cx.shape(n, b)?, cx.shape(n, out0(n))?);
    let a2s = if as_.len() == 1 { vec![1, as_[0]] } else { as_.clone() };
    let b2s = if bs.len() == 1 { vec![bs[0], 1] } else { bs.clone() };
    let (ra, rb) = (a2s.len(), b2s.len());
    let mut y2s =
        broadcast(&a2s[..ra - 2], &b2s[..rb - 2]).ok_or_else(|| shape_err(n, "batch dims do not broadcast"))?;
    y2s.extend([a2s[ra - 2], b2s[rb - 1]]);
    let dy2 = promoted(cx, dy, &ys, &y2s);
    let batch = &y2s[..y2s.len() - 2];
    let mut out = vec![None, None];
    if cx.needs(a) {
        let b2 = promoted(cx, b, &bs, &b2s);
        let bt = swap_last(cx, &b2, rb);
        let p = cx.op("MatMul", "mm_da", &[&dy2, &bt], vec![]);
        let mut full = batch.to_vec();
        full.extend(&a2s[ra - 2..]);
        let g = cx.reduce_to(&p, &full, &a2s);
        out[0] = Some(promoted(cx, &g, &a2s, &as_));
    }
    if cx.needs(b) {
        let a2 = promoted(cx, a, &as_, &a2s);
        let at = swap_last(cx, &a2, ra);
        let p = cx.op("MatMul", "mm_db", &[&at, &dy2], vec![]);
        let mut full = batch.to_vec();
        full.extend(&b2s[rb - 2..]);
        let g = cx.reduce_to(&p, &full, &b2s);
        out[1] = Some(promoted(cx, &g, &b2s, &bs));
    }
    Ok(out)
}
