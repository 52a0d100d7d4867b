//! Parameters and multiply-accumulates per layer, for `inspect`. Which ops are layers, and what one costs, is
//! the op table's `macs`.

use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::index::GraphIndex;
use crate::ir::tensor;
use crate::shapes::{infer, input_infos};

/// Parameters and multiply-accumulates of one layer (Conv, Gemm, MatMul…), at the inferred batch size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerCost {
    pub name: String,
    pub op: String,
    pub params: u64,
    pub macs: u64,
    pub output_shape: Vec<i64>,
}

/// Cost of every layer, per sample (symbolic dims at 1).
pub fn layer_costs(model: &Model) -> Vec<LayerCost> {
    let s = infer(model, &Default::default(), Some(1));
    let g = model.graph();
    let ix = GraphIndex::new(g);
    let param_count = |v: &str| -> u64 { ix.constant(g, v).map(|t| tensor::numel(&t.dims) as u64).unwrap_or(0) };
    let Ok(reg) = crate::ops::registry() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in &g.node {
        let Some(macs) = reg.of(n).and_then(|spec| spec.macs) else {
            continue;
        };
        let params: u64 = n
            .input
            .iter()
            .skip(1)
            .filter(|i| !i.is_empty())
            .map(|i| param_count(i))
            .sum();
        let y = n
            .output
            .first()
            .and_then(|o| s.shape(o))
            .map(<[i64]>::to_vec)
            .unwrap_or_default();
        out.push(LayerCost {
            name: n.name_or_output().to_string(),
            op: n.op().to_string(),
            params,
            macs: macs(n, &input_infos(n, &s.info), &y),
            output_shape: y,
        });
    }
    out
}
