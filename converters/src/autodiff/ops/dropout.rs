//! Dropout: the train-step graph keeps the inference-mode node, so dropout acts as identity during fine-tuning
//! (deterministic steps make `--resume` exact); dX = dY.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::info::{BOOL, ValInfo};
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::proto::NodeProto;

pub const RULE: Rule = Rule {
    op_type: "Dropout",
    infer,
    grad: Grad::Rule(grad),
    forward_train: None,
    param_slots: &[],
};

fn infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let mut out = vec![ValInfo::float(x.shape.clone())];
    if n.output.len() > 1 {
        out.push(ValInfo {
            shape: x.shape.clone(),
            elem: BOOL,
            ints: None,
        });
    }
    Ok(out)
}

fn grad(_cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    out[0] = dys[0].clone();
    Ok(out)
}
