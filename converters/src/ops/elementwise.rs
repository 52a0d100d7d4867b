//! Broadcasting arithmetic, comparisons and casts. Integer operands fold (exporters compute Reshape targets with
//! them: `channels // groups` is Div, often between Casts), so shape arithmetic is known at build time.

use crate::autodiff::ops::{add, cast, div, mul, neg, sub, where_};
use crate::ir::attr::NodeExt;
use crate::ops::common::{comparison, elementwise, input_info, same_as_first};
use crate::ops::error::{Result, shape_err};
use crate::ops::spec::{Affine, DataInputs, OpSpec, Walk};
use crate::proto::NodeProto;
use crate::shapes::info::{FLOAT, ValInfo};

const THROUGH: Walk = Walk::Through(DataInputs::All);

pub const SPECS: &[OpSpec] = &[
    OpSpec::new("Add", infer_add, Affine::Yes)
        .grad(add::GRAD)
        .params(&[0, 1])
        .walk(THROUGH)
        .join(),
    OpSpec::new("Sub", infer_sub, Affine::Yes)
        .grad(sub::GRAD)
        .params(&[0, 1])
        .walk(THROUGH),
    OpSpec::new("Mul", infer_mul, Affine::PerOperand)
        .grad(mul::GRAD)
        .params(&[0, 1])
        .walk(THROUGH),
    OpSpec::new("Div", infer_div, Affine::PerOperand)
        .grad(div::GRAD)
        .params(&[0, 1])
        .walk(THROUGH),
    OpSpec::new("Sum", infer_sum, Affine::Yes).grad(add::GRAD).join(),
    OpSpec::new("Neg", infer_neg, Affine::Yes).grad(neg::GRAD),
    OpSpec::new("Max", infer_max, Affine::No),
    OpSpec::new("Min", infer_min, Affine::No),
    OpSpec::new("Pow", infer_pow, Affine::No),
    OpSpec::new("Mod", infer_mod, Affine::No).no_grad(),
    OpSpec::new("Exp", same_as_first, Affine::No),
    OpSpec::new("Log", same_as_first, Affine::No),
    OpSpec::new("Sqrt", same_as_first, Affine::No),
    OpSpec::new("Reciprocal", same_as_first, Affine::No),
    OpSpec::new("Abs", infer_abs, Affine::No),
    OpSpec::new("Erf", same_as_first, Affine::No),
    // Piecewise constant: zero gradient wherever it exists, like comparisons.
    OpSpec::new("Floor", infer_integral, Affine::No).no_grad(),
    OpSpec::new("Ceil", infer_integral, Affine::No).no_grad(),
    OpSpec::new("Where", infer_where, Affine::No).grad(where_::GRAD),
    OpSpec::new("Equal", infer_equal, Affine::No).no_grad(),
    OpSpec::new("Greater", infer_greater, Affine::No).no_grad(),
    OpSpec::new("GreaterOrEqual", infer_greater_or_equal, Affine::No).no_grad(),
    OpSpec::new("Less", infer_less, Affine::No).no_grad(),
    OpSpec::new("LessOrEqual", infer_less_or_equal, Affine::No).no_grad(),
    OpSpec::new("Not", infer_not, Affine::No).no_grad(),
    OpSpec::new("And", infer_and, Affine::No).no_grad(),
    OpSpec::new("Or", infer_or, Affine::No).no_grad(),
    OpSpec::new("Xor", infer_xor, Affine::No).no_grad(),
    OpSpec::new("Cast", infer_cast, Affine::Yes)
        .grad(cast::GRAD)
        .walk(THROUGH),
];

fn infer_add(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v[0].checked_add(*v.get(1)?))
}

fn infer_sub(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v[0].checked_sub(*v.get(1)?))
}

fn infer_mul(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v[0].checked_mul(*v.get(1)?))
}

/// Integer Div truncates (ONNX); a float Div of folded integers folds only when it is exact.
fn infer_div(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let float = input_info(n, ins, 0)?.elem == FLOAT;
    elementwise(n, ins, |v| {
        let (a, b) = (v[0], *v.get(1)?);
        let q = a.checked_div(b)?;
        (!float || a % b == 0).then_some(q)
    })
}

/// fmod=0 takes the divisor's sign (Python's %), fmod=1 the dividend's (C's fmod).
fn infer_mod(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let fmod = n.get_i("fmod")?.unwrap_or(0) != 0;
    elementwise(n, ins, |v| {
        let (a, b) = (v[0], *v.get(1)?);
        let r = a.checked_rem(b)?;
        Some(if !fmod && r != 0 && (r < 0) != (b < 0) {
            r + b
        } else {
            r
        })
    })
}

fn infer_sum(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v.iter().try_fold(0i64, |acc, &x| acc.checked_add(x)))
}

fn infer_max(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v.iter().copied().max())
}

fn infer_min(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v.iter().copied().min())
}

fn infer_pow(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v[0].checked_pow(u32::try_from(*v.get(1)?).ok()?))
}

fn infer_neg(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v[0].checked_neg())
}

fn infer_abs(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| v[0].checked_abs())
}

/// Floor/Ceil of folded integers are the integers.
fn infer_integral(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| Some(v[0]))
}

fn infer_where(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    if n.input.len() != 3 {
        return Err(shape_err(n, "Where needs a condition and two values"));
    }
    let mut out = elementwise(n, ins, |v| Some(if v[0] != 0 { v[1] } else { v[2] }))?;
    out[0].elem = input_info(n, ins, 1)?.elem;
    Ok(out)
}

fn infer_equal(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| a == b)
}

fn infer_greater(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| a > b)
}

fn infer_greater_or_equal(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| a >= b)
}

fn infer_less(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| a < b)
}

fn infer_less_or_equal(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| a <= b)
}

fn infer_not(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    elementwise(n, ins, |v| Some((v[0] == 0) as i64))
}

fn infer_and(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| a != 0 && b != 0)
}

fn infer_or(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| a != 0 || b != 0)
}

fn infer_xor(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    comparison(n, ins, |a, b| (a != 0) != (b != 0))
}

/// Folded integers survive a Cast (torch casts shape values to float and back around `//`).
fn infer_cast(n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>> {
    let x = input_info(n, ins, 0)?;
    let to = n.get_i("to")?.ok_or_else(|| shape_err(n, "missing 'to'"))? as i32;
    Ok(vec![ValInfo {
        shape: x.shape.clone(),
        elem: to,
        ints: x.ints.clone(),
    }])
}
