//! Clip (ReLU6 and friends): dX = dY where min ≤ X ≤ max, else 0 (PyTorch's clamp backward). Bounds are inputs
//! from opset 11 and attributes before; they are not trained.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let x = n.input[0].as_str();
    let lo = match n.input.get(1).filter(|s| !s.is_empty()) {
        Some(v) => Some(v.clone()),
        None => n.get_f("min")?.map(|v| cx.scalar(v)),
    };
    let hi = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(v) => Some(v.clone()),
        None => n.get_f("max")?.map(|v| cx.scalar(v)),
    };
    let mut cond: Option<String> = None;
    if let Some(lo) = lo {
        cond = Some(cx.op("GreaterOrEqual", "clip_lo", &[x, &lo], vec![]));
    }
    if let Some(hi) = hi {
        let c = cx.op("LessOrEqual", "clip_hi", &[x, &hi], vec![]);
        cond = Some(match cond {
            Some(prev) => cx.op("And", "clip_in", &[&prev, &c], vec![]),
            None => c,
        });
    }
    out[0] = Some(match cond {
        Some(c) => cx.mask(&c, dy),
        None => dy.to_string(),
    });
    Ok(out)
}
