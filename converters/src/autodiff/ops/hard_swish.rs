//! HardSwish y = x·max(0, min(1, x/6 + 1/2)): dX = dY·(0 for x < −3; x/3 + 1/2 for −3 ≤ x ≤ 3; 1 above),
//! PyTorch's hardswish_backward including its choice at the two kinks.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let Some(dy) = dys[0].as_deref() else {
        return Ok(vec![None]);
    };
    let x = n.input[0].as_str();
    let (neg3, pos3, third, half, zero, one) = (
        cx.scalar(-3.0),
        cx.scalar(3.0),
        cx.scalar(1.0 / 3.0),
        cx.scalar(0.5),
        cx.scalar(0.0),
        cx.scalar(1.0),
    );
    let low = cx.op("Less", "hswish_low", &[x, &neg3], vec![]);
    let ramp = cx.op("LessOrEqual", "hswish_ramp", &[x, &pos3], vec![]);
    let xs = cx.mul(x, &third);
    let slope = cx.op("Add", "hswish_slope", &[&xs, &half], vec![]);
    let upper = cx.op("Where", "hswish_upper", &[&ramp, &slope, &one], vec![]);
    let d = cx.op("Where", "hswish_d", &[&low, &zero, &upper], vec![]);
    Ok(vec![Some(cx.mul(dy, &d))])
}
