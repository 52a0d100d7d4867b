//! BatchNormalization with batch statistics, for re-estimating running statistics on data (AdaBN).
//!
//! Each inference-mode BN node is replaced by the train-mode computation PyTorch runs: with x viewed as
//! [N, C, L], μ = mean over (N, L), σ² = biased variance over (N, L), y = γ·(x − μ)/√(σ² + ε) + β. So every BN
//! downstream sees activations normalized the way they are during training, in one forward pass. μ, σ² and the
//! [N, C, L] shape become graph outputs; the caller turns σ² into the unbiased estimate (m/(m − 1), m = N·L) as
//! PyTorch's running-variance update does. The graph is for measuring only; the model keeps its BN nodes.

use super::PassError;
use crate::ir::Patch;
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, Attr};
use crate::ir::names::NameSet;
use crate::ir::tensor;
use crate::proto::{GraphProto, NodeProto, ValueInfoProto};

/// Where the batch statistics of one BatchNormalization node come out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BnProbe {
    /// Index of the BN node in the graph before the pass.
    pub node: usize,
    pub name: String,
    /// [1, C, 1] batch mean and biased variance.
    pub mean: String,
    pub var: String,
    /// int64 [3]: N, C, L of the batch.
    pub shape: String,
}

/// Replace every inference-mode BatchNormalization of `g` by its batch-statistics form. `opset` is the model's
/// default opset (ReduceMean takes `axes` as an input from 18 on).
pub fn batch_statistics(g: &mut GraphProto, opset: i64) -> Result<Vec<BnProbe>, PassError> {
    let mut names = NameSet::of(g);
    let mut p = Patch::new();
    let ncl = names.fresh("bn_stats.ncl");
    let c11 = names.fresh("bn_stats.c11");
    let axes = names.fresh("bn_stats.axes");
    p.set_initializer(tensor::from_i64(&ncl, &[3], &[0, 0, -1]));
    p.set_initializer(tensor::from_i64(&c11, &[3], &[1, -1, 1]));
    p.set_initializer(tensor::from_i64(&axes, &[2], &[0, 2]));
    let mut probes = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        if n.op() != "BatchNormalization" || !n.domain_str().is_empty() || n.input.len() != 5 {
            continue;
        }
        let training = n.get_i("training_mode").map_err(|e| node_err(n, e.to_string()))?;
        if training == Some(1) || n.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(node_err(
                n,
                "is already in training mode (running-statistics outputs are used)",
            ));
        }
        let eps = n
            .get_f("epsilon")
            .map_err(|e| node_err(n, e.to_string()))?
            .unwrap_or(1e-5);
        let base = n.name_or_output().to_string();
        let mut v = |what: &str| names.fresh(&format!("{base}/bn_stats.{what}"));
        let (shape_x, xf, mean, d, d2, var, eps_v, ve, sd, xh, g3, b3, yg, y3, shape_ncl) = (
            v("shape"),
            v("ncl"),
            v("mean"),
            v("centered"),
            v("squared"),
            v("var"),
            v("eps"),
            v("var_eps"),
            v("std"),
            v("normalized"),
            v("gamma"),
            v("beta"),
            v("scaled"),
            v("y"),
            v("batch_shape"),
        );
        let reduce = |x: &str, out: &str, tag: &str| -> NodeProto {
            let keep = ("keepdims", Attr::Int(1));
            if opset >= 18 {
                build::node("ReduceMean", &format!("{out}/{tag}"), &[x, &axes], &[out], vec![keep])
            } else {
                build::node(
                    "ReduceMean",
                    &format!("{out}/{tag}"),
                    &[x],
                    &[out],
                    vec![("axes", Attr::Ints(vec![0, 2])), keep],
                )
            }
        };
        let x = n.input[0].as_str();
        let op = |op: &str, ins: &[&str], out: &str| build::node(op, &format!("{out}/{op}"), ins, &[out], vec![]);
        p.set_initializer(tensor::from_f32(&eps_v, &[], &[eps]));
        let nodes = [
            op("Shape", &[x], &shape_x),
            op("Reshape", &[x, &ncl], &xf),
            reduce(&xf, &mean, "mean"),
            op("Sub", &[&xf, &mean], &d),
            op("Mul", &[&d, &d], &d2),
            reduce(&d2, &var, "var"),
            op("Add", &[&var, &eps_v], &ve),
            op("Sqrt", &[&ve], &sd),
            op("Div", &[&d, &sd], &xh),
            op("Reshape", &[&n.input[1], &c11], &g3),
            op("Reshape", &[&n.input[2], &c11], &b3),
            op("Mul", &[&xh, &g3], &yg),
            op("Add", &[&yg, &b3], &y3),
            op("Shape", &[&xf], &shape_ncl),
            op("Reshape", &[&y3, &shape_x], &n.output[0]),
        ];
        p.remove(i);
        for node in nodes {
            p.add_at(i, node);
        }
        for out in [&mean, &var, &shape_ncl] {
            p.add_output(ValueInfoProto {
                name: Some(out.clone()),
                ..Default::default()
            });
        }
        probes.push(BnProbe {
            node: i,
            name: base,
            mean,
            var,
            shape: shape_ncl,
        });
    }
    p.clear_value_info();
    p.note(format!(
        "batch statistics for {} BatchNormalization node(s)",
        probes.len()
    ));
    p.apply(g)?;
    Ok(probes)
}

fn node_err(n: &NodeProto, reason: impl Into<String>) -> PassError {
    PassError::Node {
        pass: "batch_statistics",
        node: n.name_or_output().into(),
        reason: reason.into(),
    }
}
