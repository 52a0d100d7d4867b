//! Gemm: Y = α·op(A)·op(B) + β·C. The four transA/transB cases become one Gemm each:
//!   dA = α·dY·op(B)ᵀ (transA=0) or α·op(B)·dYᵀ (transA=1);
//!   dB = α·op(A)ᵀ·dY (transB=0) or α·dYᵀ·op(A) (transB=1);  dC = β·ΣdY over C's broadcast axes.

use crate::autodiff::cx::GradCx;
use crate::autodiff::error::Result;
use crate::autodiff::ops::common::out0;
use crate::autodiff::registry::Grad;
use crate::ir::attr::NodeExt;
use crate::ir::build::Attr;
use crate::proto::NodeProto;

pub const GRAD: Grad = Grad::Rule(grad);

fn gemm(cx: &mut GradCx, base: &str, a: &str, b: &str, ta: bool, tb: bool, alpha: f32) -> String {
    cx.op(
        "Gemm",
        base,
        &[a, b],
        vec![
            ("alpha", Attr::Float(alpha)),
            ("transA", Attr::Int(ta as i64)),
            ("transB", Attr::Int(tb as i64)),
        ],
    )
}

fn grad(cx: &mut GradCx, n: &NodeProto, dys: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let mut out = vec![None; n.input.len()];
    let Some(dy) = dys[0].as_deref() else {
        return Ok(out);
    };
    let alpha = n.get_f("alpha")?.unwrap_or(1.0);
    let beta = n.get_f("beta")?.unwrap_or(1.0);
    let ta = n.get_i("transA")?.unwrap_or(0) != 0;
    let tb = n.get_i("transB")?.unwrap_or(0) != 0;
    let (a, b) = (n.input[0].as_str(), n.input[1].as_str());
    if cx.needs(a) {
        out[0] = Some(if ta {
            gemm(cx, "gemm_da", b, dy, tb, true, alpha)
        } else {
            gemm(cx, "gemm_da", dy, b, false, !tb, alpha)
        });
    }
    if cx.needs(b) {
        out[1] = Some(if tb {
            gemm(cx, "gemm_db", dy, a, true, ta, alpha)
        } else {
            gemm(cx, "gemm_db", a, dy, !ta, false, alpha)
        });
    }
    if let Some(c) = n.input.get(2).filter(|c| !c.is_empty())
        && cx.needs(c)
    {
        let ys = cx.shape(n, out0(n))?;
        let cs = cx.shape(n, c)?;
        let scaled = if beta == 1.0 {
            dy.to_string()
        } else {
            let s = cx.scalar(beta);
            cx.mul(dy, &s)
        };
        out[2] = Some(cx.reduce_to(&scaled, &ys, &cs));
    }
    Ok(out)
}
