//! Split: dX = Concat of the output gradients, with zeros for outputs nothing used.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err};
use crate::autodiff::info::norm_axis;
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    if !cx.needs(&n.input[0]) || dys.iter().all(Option::is_none) {
        return Ok(out);
    }
    let rank = cx.shape(n, &n.input[0])?.len();
    let ax = norm_axis(n.get_i("axis")?.unwrap_or(0), rank).ok_or_else(|| shape_err(n, "bad axis"))?;
    let mut parts = Vec::new();
    for (o, dy) in n.output.iter().zip(dys) {
        parts.push(match dy {
            Some(d) => d.clone(),
            None => {
                let s = cx.shape(n, o)?;
                cx.zeros(&s)
            }
        });
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    out[0] = Some(cx.op("Concat", "split_dx", &refs, vec![("axis", Attr::Int(ax as i64))]));
    Ok(out)
}
