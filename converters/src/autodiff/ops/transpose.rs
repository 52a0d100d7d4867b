//! Transpose: dX = Transpose(dY, inverse permutation).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::ValInfo;
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Transpose",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn perm(n: &NodeProto, rank: usize) -> Result<Vec<usize>> {
    let p: Vec<usize> = match n.get_ints("perm")?.filter(|p| !p.is_empty()) {
        Some(p) => p.iter().map(|&a| a as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let mut seen = p.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(shape_err(n, format!("perm {p:?} is not a permutation of {rank} axes")));
    }
    Ok(p)
}

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let p = perm(n, x.shape.len())?;
    Ok(vec![ValInfo {
        shape: p.iter().map(|&a| x.shape[a]).collect(),
        elem: x.elem,
        ints: None,
    }])
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let rank = cx.shape(n, &n.input[0])?.len();
    let p = perm(n, rank)?;
    let mut inv = vec![0i64; rank];
    for (i, &a) in p.iter().enumerate() {
        inv[a] = i as i64;
    }
    Ok(vec![Some(cx.op(
        "Transpose",
        "tr_dx",
        &[dy],
        vec![("perm", Attr::Ints(inv))],
    ))])
}
