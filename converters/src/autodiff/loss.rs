//! Softmax cross-entropy with optional label smoothing, as LogSoftmax + OneHot (ORT has no kernel for
//! SoftmaxCrossEntropyLoss and would inline its function body).
//!   t = (1−ε)·onehot + ε/K;  loss = −(1/N)·Σ t·log softmax(z);  dz = (softmax(z) − t)/N.

use crate::autodiff::cx::GradCx;
use crate::ir::build::Attr;

pub struct Loss {
    pub loss: String,
    pub dlogits: String,
}

pub fn softmax_cross_entropy(cx: &mut GradCx, logits: &str, labels: &str, n: i64, k: i64, smoothing: f32) -> Loss {
    let lsm = cx.op("LogSoftmax", "log_softmax", &[logits], vec![("axis", Attr::Int(-1))]);
    let off = smoothing / k as f32;
    let on = 1.0 - smoothing + off;
    let values = cx.tensor("onehot_values", &[2], &[off, on]);
    let depth = cx.ints(&[k]);
    let t = cx.op(
        "OneHot",
        "target",
        &[labels, &depth, &values],
        vec![("axis", Attr::Int(-1))],
    );
    let p = cx.mul(&t, &lsm);
    let s = cx.reduce_sum(&p, &[0, 1], false);
    let scale = cx.scalar(-1.0 / n as f32);
    let loss = cx.op("Mul", "loss", &[&s, &scale], vec![]);
    let sm = cx.op("Exp", "softmax", &[&lsm], vec![]);
    let diff = cx.op("Sub", "dlogits_raw", &[&sm, &t], vec![]);
    let inv = cx.scalar(1.0 / n as f32);
    let dlogits = cx.op("Mul", "dlogits", &[&diff, &inv], vec![]);
    Loss { loss, dlogits }
}
