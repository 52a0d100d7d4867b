//! Dropout: the train-step graph keeps the inference-mode node, so dropout acts as identity during fine-tuning
//! (deterministic steps make `--resume` exact); dX = dY.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::registry::Grad;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn grad(_cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    out[0] = dys[0].clone();
    Ok(out)
}
