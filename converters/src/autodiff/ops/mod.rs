//! Gradient rules, one file per op (or per small family). Each exports `GRAD` (and BatchNorm its training-mode
//! `FORWARD`); the op's [`crate::ops::OpSpec`] names it, so the rules are registered in the one op table.

pub mod common;

pub mod add;
pub mod average_pool;
pub mod batch_norm;
pub mod cast;
pub mod clip;
pub mod concat;
pub mod conv;
pub mod div;
pub mod dropout;
pub mod expand;
pub mod flatten;
pub mod gather;
pub mod gemm;
pub mod global_average_pool;
pub mod hard_sigmoid;
pub mod hard_swish;
pub mod identity;
pub mod leaky_relu;
pub mod matmul;
pub mod max_pool;
pub mod mul;
pub mod neg;
pub mod pad;
pub mod prelu;
pub mod reduce_mean;
pub mod relu;
pub mod reshape;
pub mod sigmoid;
pub mod slice;
pub mod split;
pub mod squeeze;
pub mod sub;
pub mod transpose;
pub mod where_;
