//! Gather appears in exported CNNs only as shape arithmetic (Shape → Gather → Unsqueeze → Concat) or on the
//! image input (Inception's `transform_input`), where no gradient is wanted. A trainable float flowing into it
//! is an error rather than a silent zero.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, unsupported};
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(refuse);

fn refuse(cx: &mut GradCx, n: &NodeProto, _dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    if cx.needs(&n.input[0]) {
        return Err(unsupported(n, "gradient through this op on trainable values"));
    }
    Ok(vec![None; n.input.len()])
}
