//! HardSigmoid y = max(0, min(1, α·x + β)) (MobileNet-V3's SE gate, exported with α = 1/6, β = 0.5):
//! dX = α·dY where 0 < Y < 1, else 0 (PyTorch's hardsigmoid_backward, open interval).

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let alpha = n.get_f("alpha")?.unwrap_or(0.2);
    let y = out0(n).to_string();
    let (zero, one, a) = (cx.scalar(0.0), cx.scalar(1.0), cx.scalar(alpha));
    let above = cx.op("Greater", "hsig_above", &[&y, &zero], vec![]);
    let below = cx.op("Less", "hsig_below", &[&y, &one], vec![]);
    let inside = cx.op("And", "hsig_in", &[&above, &below], vec![]);
    let scaled = cx.mul(dy, &a);
    Ok(vec![Some(cx.mask(&inside, &scaled))])
}
