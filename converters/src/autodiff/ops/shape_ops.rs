//! Shape arithmetic that exporters emit around Reshape (Shape, Gather, Unsqueeze, Squeeze, Cast, Constant,
//! ConstantOfShape). With the batch size fixed these fold to constants at build time. They carry no gradient;
//! a trainable float flowing into Gather or Cast is an error rather than a silent zero.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::{Result, shape_err, unsupported};
use crate::autodiff::info::{FLOAT, ValInfo, norm_axis};
use crate::autodiff::ops::common::input_info;
use crate::autodiff::registry::{Grad, Rule};
use crate::ir::attr::NodeExt;
use crate::ir::tensor;
use crate::proto::NodeProto;

pub const SHAPE: Rule = Rule {
    op_type: "Shape",
    infer: shape_infer,
    grad: Grad::NonDifferentiable,
    forward_train: None,
    param_slots: &[],
};

pub const GATHER: Rule = Rule {
    op_type: "Gather",
    infer: gather_infer,
    grad: Grad::Rule(refuse),
    forward_train: None,
    param_slots: &[],
};

pub const UNSQUEEZE: Rule = Rule {
    op_type: "Unsqueeze",
    infer: unsqueeze_infer,
    grad: Grad::Rule(refuse),
    forward_train: None,
    param_slots: &[],
};

pub const SQUEEZE: Rule = Rule {
    op_type: "Squeeze",
    infer: squeeze_infer,
    grad: Grad::Rule(refuse),
    forward_train: None,
    param_slots: &[],
};

pub const CAST: Rule = Rule {
    op_type: "Cast",
    infer: cast_infer,
    grad: Grad::Rule(refuse),
    forward_train: None,
    param_slots: &[],
};

pub const CONSTANT: Rule = Rule {
    op_type: "Constant",
    infer: constant_infer,
    grad: Grad::NonDifferentiable,
    forward_train: None,
    param_slots: &[],
};

pub const CONSTANT_OF_SHAPE: Rule = Rule {
    op_type: "ConstantOfShape",
    infer: constant_of_shape_infer,
    grad: Grad::NonDifferentiable,
    forward_train: None,
    param_slots: &[],
};

fn refuse(cx: &mut GradCx, n: &NodeProto, _dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    if cx.needs(&n.input[0]) {
        return Err(unsupported(n, "gradient through this op on trainable values"));
    }
    Ok(vec![None; n.input.len()])
}

fn shape_infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let r = x.shape.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(n.get_i("start")?.unwrap_or(0));
    let end = clamp(n.get_i("end")?.unwrap_or(r));
    let vals = x.shape[start..end.max(start)].to_vec();
    Ok(vec![ValInfo::ints(vec![vals.len() as i64], vals)])
}

fn gather_infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let data = input_info(n, ins, 0)?;
    let idx = input_info(n, ins, 1)?;
    let ax = norm_axis(n.get_i("axis")?.unwrap_or(0), data.shape.len()).ok_or_else(|| shape_err(n, "bad axis"))?;
    let mut shape = data.shape[..ax].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&data.shape[ax + 1..]);
    let ints = match (&data.ints, &idx.ints, data.shape.len()) {
        (Some(d), Some(i), 1) if data.elem != FLOAT => i
            .iter()
            .map(|&k| {
                let k = if k < 0 { k + d.len() as i64 } else { k };
                d.get(k as usize).copied()
            })
            .collect::<Option<Vec<i64>>>(),
        _ => None,
    };
    Ok(vec![ValInfo {
        shape,
        elem: data.elem,
        ints,
    }])
}

fn axes_of(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Option<Vec<i64>>> {
    match n.input.get(1).filter(|s| !s.is_empty()) {
        Some(_) => Ok(Some(
            input_info(n, ins, 1)?
                .ints
                .clone()
                .ok_or_else(|| unsupported(n, "axes are not a build-time constant"))?,
        )),
        None => Ok(n.get_ints("axes")?.filter(|a| !a.is_empty())),
    }
}

fn unsqueeze_infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let axes = axes_of(n, ins)?.ok_or_else(|| shape_err(n, "missing axes"))?;
    let r = x.shape.len() + axes.len();
    let mut ax: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, r).ok_or_else(|| shape_err(n, "axis out of range")))
        .collect::<Result<_>>()?;
    ax.sort_unstable();
    let mut shape = x.shape.clone();
    for a in ax {
        shape.insert(a, 1);
    }
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints: x.ints.clone(),
    }])
}

fn squeeze_infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let drop: Vec<usize> = match axes_of(n, ins)? {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, x.shape.len()).ok_or_else(|| shape_err(n, "axis out of range")))
            .collect::<Result<_>>()?,
        None => (0..x.shape.len()).filter(|&i| x.shape[i] == 1).collect(),
    };
    let shape = x
        .shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, &d)| d)
        .collect();
    Ok(vec![ValInfo {
        shape,
        elem: x.elem,
        ints: x.ints.clone(),
    }])
}

fn cast_infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let to = n.get_i("to")?.ok_or_else(|| shape_err(n, "missing 'to'"))? as i32;
    Ok(vec![ValInfo {
        shape: x.shape.clone(),
        elem: to,
        ints: if to == FLOAT { None } else { x.ints.clone() },
    }])
}

fn constant_infer(n: &NodeProto, _ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    if let Some(t) = n.get_t("value")? {
        let elem = t.data_type.unwrap_or(FLOAT);
        let ints = if elem == FLOAT {
            None
        } else {
            Some(tensor::to_i64(t, None)?)
        };
        return Ok(vec![ValInfo {
            shape: t.dims.clone(),
            elem,
            ints,
        }]);
    }
    if let Some(i) = n.get_i("value_int")? {
        return Ok(vec![ValInfo::ints(vec![], vec![i])]);
    }
    if let Some(v) = n.get_ints("value_ints")?.filter(|v| !v.is_empty()) {
        return Ok(vec![ValInfo::ints(vec![v.len() as i64], v)]);
    }
    if n.get_f("value_float")?.is_some() {
        return Ok(vec![ValInfo::float(vec![])]);
    }
    if let Some(v) = n.get_floats("value_floats")?.filter(|v| !v.is_empty()) {
        return Ok(vec![ValInfo::float(vec![v.len() as i64])]);
    }
    Err(unsupported(n, "Constant without a tensor, int or float value"))
}

fn constant_of_shape_infer(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let shape = input_info(n, ins, 0)?
        .ints
        .clone()
        .ok_or_else(|| unsupported(n, "shape is not a build-time constant"))?;
    let elem = n.get_t("value")?.and_then(|t| t.data_type).unwrap_or(FLOAT);
    Ok(vec![ValInfo {
        shape,
        elem,
        ints: None,
    }])
}
