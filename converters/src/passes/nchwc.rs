//! Convolutions lowered to ONNX Runtime's blocked NCHWc kernels (`com.microsoft.nchwc`), for train steps on the
//! CPU execution provider.
//!
//! ORT's layout transformer moves a Conv to NCHWc only when its weight is a constant, because it reorders the
//! weight once at load time. A train step's weights are live inputs (and dX convolutions read a transposed, flipped
//! weight computed in the graph), so every one of its convolutions stays on the slower im2col path. This pass does
//! the reorder in the graph instead: W [M, C, kh, kw] → Reshape [M/b, b, C/b, b, kh, kw] → Transpose to MLAS's
//! OIHWBiBo filter order → Reshape back to rank 4, then ReorderInput → NCHWc Conv → ReorderOutput. The result is the
//! same function up to float summation order. Measured on this project's 2-core EPYC (ORT 1.31.1, block 8): 0.68–0.72×
//! the time of a plain Conv on ResNet-20's 32×32 and 16×16 layers at batch 128, both reorders included, and 0.88× the
//! whole ResNet-20 train step.
//!
//! The block `b` is MLAS's NCHWc block size on the running CPU (8 with AVX2, 16 with AVX-512); the caller finds it
//! (toolkit::runtime::nchwc probes ORT), because a wrong block gives wrong numbers rather than an error.

use super::PassError;
use crate::ir::Model;
use crate::ir::Patch;
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, Attr};
use crate::ir::names::NameSet;
use crate::ir::tensor;
use crate::proto::OperatorSetIdProto;

/// ORT's domain of the NCHWc kernels.
pub const DOMAIN: &str = "com.microsoft.nchwc";

/// Lower every eligible Conv of `model` (2-D, ungrouped, explicit pads, both channel counts multiples of `block`,
/// weight shape known) to the NCHWc kernels; returns how many were lowered. Adds the domain's opset import when any was.
pub fn lower_convs(model: &mut Model, block: i64) -> Result<usize, PassError> {
    if block < 2 {
        return Ok(0);
    }
    let shapes = crate::shapes::infer(model, &Default::default(), None);
    let g = model.graph();
    let mut names = NameSet::of(g);
    let mut p = Patch::new();
    let mut lowered = 0;
    for (i, n) in g.node.iter().enumerate() {
        if n.op() != "Conv" || !n.domain_str().is_empty() || n.input.len() < 2 || n.output.len() != 1 {
            continue;
        }
        // Only the weight's shape is needed: an ungrouped 2-D Conv's X has rank 4 and W[1] channels. (A train step's
        // backward values often have no inferred shape: its loss ops are outside the shape rules.)
        let Some(ws) = shapes.shape(&n.input[1]) else {
            continue;
        };
        let Some(attrs) = eligible(n, ws, block)? else {
            continue;
        };
        let (m, c, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let base = n.name_or_output().to_string();
        let mut fresh = |what: &str| names.fresh(&format!("{base}/nchwc_{what}"));
        let (s6, w6, wb6, s4, wb, xb, yb) = (
            fresh("s6"),
            fresh("w6"),
            fresh("wb6"),
            fresh("s4"),
            fresh("w"),
            fresh("x"),
            fresh("y"),
        );
        p.set_initializer(tensor::from_i64(
            &s6,
            &[6],
            &[m / block, block, c / block, block, kh, kw],
        ));
        p.set_initializer(tensor::from_i64(&s4, &[4], &[m, c, kh, kw]));
        let mut conv_inputs = vec![xb.as_str(), wb.as_str()];
        conv_inputs.extend(n.input[2..].iter().map(String::as_str));
        let mut conv = build::node("Conv", &fresh("conv"), &conv_inputs, &[&yb], attrs);
        conv.domain = Some(DOMAIN.into());
        let mut reorder_in = build::node("ReorderInput", &fresh("reorder_in"), &[&n.input[0]], &[&xb], vec![]);
        reorder_in.domain = Some(DOMAIN.into());
        let mut reorder_out = build::node(
            "ReorderOutput",
            &fresh("reorder_out"),
            &[&yb],
            &[&n.output[0]],
            vec![("channels", Attr::Int(m))],
        );
        reorder_out.domain = Some(DOMAIN.into());
        let w_nodes = [
            build::node("Reshape", &fresh("reshape6"), &[&n.input[1], &s6], &[&w6], vec![]),
            // [M/b, b(o), C/b, b(i), kh, kw] → [M/b, C/b, kh, kw, b(i), b(o)]: MLAS's OIHWBiBo filter order
            build::node(
                "Transpose",
                &fresh("transpose"),
                &[&w6],
                &[&wb6],
                vec![("perm", Attr::Ints(vec![0, 2, 4, 5, 3, 1]))],
            ),
            build::node("Reshape", &fresh("reshape4"), &[&wb6, &s4], &[&wb], vec![]),
        ];
        p.remove(i);
        for node in w_nodes.into_iter().chain([reorder_in, conv, reorder_out]) {
            p.add_at(i, node);
        }
        lowered += 1;
    }
    if lowered == 0 {
        return Ok(0);
    }
    p.note(format!("lower {lowered} Conv node(s) to NCHWc (block {block})"));
    p.apply(model.graph_mut())?;
    if !model
        .proto
        .opset_import
        .iter()
        .any(|o| o.domain.as_deref() == Some(DOMAIN))
    {
        model.proto.opset_import.push(OperatorSetIdProto {
            domain: Some(DOMAIN.into()),
            version: Some(1),
        });
    }
    Ok(lowered)
}

/// The NCHWc Conv's attributes when `n` can be lowered, `None` when it is left as it is.
fn eligible(
    n: &crate::proto::NodeProto,
    ws: &[i64],
    block: i64,
) -> Result<Option<Vec<(&'static str, Attr)>>, PassError> {
    let attr_err = |e: crate::error::IrError| PassError::Node {
        pass: "nchwc",
        node: n.name_or_output().into(),
        reason: e.to_string(),
    };
    let group = n.get_i("group").map_err(attr_err)?.unwrap_or(1);
    let auto_pad = n.get_s("auto_pad").map_err(attr_err)?;
    let explicit = auto_pad.as_deref().is_none_or(|a| a == "NOTSET");
    if group != 1
        || !explicit
        || ws.len() != 4
        || ws.iter().any(|&d| d <= 0)
        || ws[0] % block != 0
        || ws[1] % block != 0
    {
        return Ok(None);
    }
    let ints = |name: &str, default: Vec<i64>| -> Result<Vec<i64>, PassError> {
        Ok(n.get_ints(name).map_err(attr_err)?.unwrap_or(default))
    };
    Ok(Some(vec![
        ("kernel_shape", Attr::Ints(vec![ws[2], ws[3]])),
        ("strides", Attr::Ints(ints("strides", vec![1, 1])?)),
        ("dilations", Attr::Ints(ints("dilations", vec![1, 1])?)),
        ("pads", Attr::Ints(ints("pads", vec![0; 4])?)),
        ("group", Attr::Int(1)),
    ]))
}
