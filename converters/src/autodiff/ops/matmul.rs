//! MatMul (both operands rank ≥ 2, batch dims broadcast): dA = dY·Bᵀ, dB = Aᵀ·dY, each summed over the batch
//! axes it was broadcast along.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::{ValInfo, broadcast};
use crate::autodiff::ops::common::{input_info, out0};
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "MatMul",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[0, 1],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let (a, b) = (&input_info(n, ins, 0)?.shape, &input_info(n, ins, 1)?.shape);
    if a.len() < 2 || b.len() < 2 {
        return Err(unsupported(n, "MatMul with a 1-D operand"));
    }
    let (ra, rb) = (a.len(), b.len());
    if a[ra - 1] != b[rb - 2] {
        return Err(shape_err(n, format!("inner dims differ: {a:?} vs {b:?}")));
    }
    let mut shape = broadcast(&a[..ra - 2], &b[..rb - 2]).ok_or_else(|| shape_err(n, "batch dims do not broadcast"))?;
    shape.extend([a[ra - 2], b[rb - 1]]);
    Ok(vec![ValInfo::float(shape)])
}

fn swap_last(cx: &mut GradCx, x: &str, rank: usize) -> String {
    let mut perm: Vec<i64> = (0..rank as i64).collect();
    perm.swap(rank - 1, rank - 2);
    cx.op("Transpose", "mm_T", &[x], vec![("perm", Attr::Ints(perm))])
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None, None]);
    };
    let (a, b) = (n.input[0].as_str(), n.input[1].as_str());
    let (as_, bs, ys) = (cx.shape(n, a)?, cx.shape(n, b)?, cx.shape(n, out0(n))?);
    let mut out = vec![None, None];
    if cx.needs(a) {
        let bt = swap_last(cx, b, bs.len());
        let p = cx.op("MatMul", "mm_da", &[dy, &bt], vec![]);
        let mut full = ys[..ys.len() - 2].to_vec();
        full.extend([as_[as_.len() - 2], as_[as_.len() - 1]]);
        out[0] = Some(cx.reduce_to(&p, &full, &as_));
    }
    if cx.needs(b) {
        let at = swap_last(cx, a, as_.len());
        let p = cx.op("MatMul", "mm_db", &[&at, dy], vec![]);
        let mut full = ys[..ys.len() - 2].to_vec();
        full.extend([bs[bs.len() - 2], bs[bs.len() - 1]]);
        out[1] = Some(cx.reduce_to(&p, &full, &bs));
    }
    Ok(out)
}
