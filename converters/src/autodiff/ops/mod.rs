//! One file per op (or per small family): shape rule, gradient rule, parameter slots. [`ALL`] is the table the
//! registry is built from.

pub mod common;

pub mod add;
pub mod average_pool;
pub mod batch_norm;
pub mod clip;
pub mod concat;
pub mod conv;
pub mod div;
pub mod dropout;
pub mod flatten;
pub mod gemm;
pub mod global_average_pool;
pub mod identity;
pub mod leaky_relu;
pub mod matmul;
pub mod max_pool;
pub mod mul;
pub mod prelu;
pub mod reduce_mean;
pub mod relu;
pub mod reshape;
pub mod shape_ops;
pub mod sigmoid;
pub mod slice;
pub mod split;
pub mod sub;
pub mod transpose;

use crate::autodiff::registry::Rule;

pub const ALL: &[Rule] = &[
    add::RULE,
    average_pool::RULE,
    batch_norm::RULE,
    clip::RULE,
    concat::RULE,
    conv::RULE,
    div::RULE,
    dropout::RULE,
    flatten::RULE,
    gemm::RULE,
    global_average_pool::RULE,
    identity::RULE,
    leaky_relu::RULE,
    matmul::RULE,
    max_pool::RULE,
    mul::RULE,
    prelu::RULE,
    reduce_mean::RULE,
    relu::RULE,
    reshape::RULE,
    sigmoid::RULE,
    slice::RULE,
    split::RULE,
    sub::RULE,
    transpose::RULE,
    shape_ops::SHAPE,
    shape_ops::GATHER,
    shape_ops::UNSQUEEZE,
    shape_ops::SQUEEZE,
    shape_ops::CAST,
    shape_ops::CONSTANT,
    shape_ops::CONSTANT_OF_SHAPE,
];
