//! Transpose: dX = Transpose(dY, inverse permutation).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::ir::build::Attr;
use crate::ops::layout::perm;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

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
