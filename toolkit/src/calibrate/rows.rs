//! Least-squares rows of one batch: the layer's input features next to the reference's output at the same place.
//! For a 2-D Conv, a row is the [C_in/g, kh, kw] patch under the window at one output position (im2col, zero
//! outside the padded input), drawn at up to `positions` seeded output positions per sample; for Gemm and
//! MatMul, a row is one input vector. A trailing 1 carries the bias when it is fitted.

use anyhow::{Result, bail};
use converters::autodiff::ops::common::window;
use converters::proto::NodeProto;
use ndarray::ArrayD;
use rand::seq::index::sample;

/// Geometry of a 2-D convolution over a known input size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvGeom {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// Top and left padding.
    pub pads: [usize; 2],
    pub input: [usize; 2],
    pub output: [usize; 2],
}

impl ConvGeom {
    pub fn new(n: &NodeProto, input: [usize; 2], kernel: &[i64]) -> Result<Self> {
        if kernel.len() != 2 {
            bail!(
                "least squares handles 2-D convolutions; this one has {} spatial dims",
                kernel.len()
            );
        }
        let w = window(n, &[input[0] as i64, input[1] as i64], kernel.to_vec(), false)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let two = |v: &[i64]| [v[0] as usize, v[1] as usize];
        Ok(ConvGeom {
            kernel: two(&w.kernel),
            strides: two(&w.strides),
            dilations: two(&w.dilations),
            pads: two(&w.pads),
            input,
            output: two(&w.output),
        })
    }
}

/// Per group, the features (rows × d) and targets (rows × outs/groups) of one batch.
pub type GroupRows = Vec<(Vec<f32>, Vec<f32>)>;

/// Conv rows: `x` is the layer input [N, C, H, W], `t` the reference output [N, O, Ho, Wo].
pub fn conv_rows(
    x: &ArrayD<f32>,
    t: &ArrayD<f32>,
    geom: &ConvGeom,
    groups: usize,
    bias: bool,
    positions: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> GroupRows {
    let x = x.as_standard_layout();
    let t = t.as_standard_layout();
    let (xs, ts) = (x.as_slice().unwrap_or_default(), t.as_slice().unwrap_or_default());
    let (n, c, o) = (x.shape()[0], x.shape()[1], t.shape()[1]);
    let ([h, w], [ho, wo], [kh, kw]) = (geom.input, geom.output, geom.kernel);
    let (cg, og) = (c / groups, o / groups);
    let d = cg * kh * kw + usize::from(bias);
    let plane = ho * wo;
    let mut out: GroupRows = vec![(Vec::new(), Vec::new()); groups];
    for i in 0..n {
        let picked: Vec<usize> = if plane <= positions {
            (0..plane).collect()
        } else {
            sample(rng, plane, positions).into_vec()
        };
        let xi = &xs[i * c * h * w..(i + 1) * c * h * w];
        let ti = &ts[i * o * plane..(i + 1) * o * plane];
        for &p in &picked {
            let (oh, ow) = (p / wo, p % wo);
            for (j, (f, tr)) in out.iter_mut().enumerate() {
                f.reserve(d);
                for ci in j * cg..(j + 1) * cg {
                    let xc = &xi[ci * h * w..(ci + 1) * h * w];
                    for a in 0..kh {
                        let r = (oh * geom.strides[0] + a * geom.dilations[0]) as isize - geom.pads[0] as isize;
                        for b in 0..kw {
                            let q = (ow * geom.strides[1] + b * geom.dilations[1]) as isize - geom.pads[1] as isize;
                            let inside = r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w;
                            f.push(if inside { xc[r as usize * w + q as usize] } else { 0.0 });
                        }
                    }
                }
                if bias {
                    f.push(1.0);
                }
                tr.extend((j * og..(j + 1) * og).map(|oc| ti[oc * plane + p]));
            }
        }
    }
    out
}

/// Dense rows: `x` is [..., K], `t` is [..., O] with the same leading dims.
pub fn dense_rows(x: &ArrayD<f32>, t: &ArrayD<f32>, bias: bool) -> (Vec<f32>, Vec<f32>) {
    let x = x.as_standard_layout();
    let t = t.as_standard_layout();
    let k = x.shape().last().copied().unwrap_or(1);
    let xs = x.as_slice().unwrap_or_default();
    if !bias {
        return (xs.to_vec(), t.iter().copied().collect());
    }
    let mut f = Vec::with_capacity(xs.len() + xs.len() / k.max(1));
    for row in xs.chunks_exact(k.max(1)) {
        f.extend_from_slice(row);
        f.push(1.0);
    }
    (f, t.iter().copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use converters::ir::build::{self, Attr};
    use ndarray::IxDyn;
    use rand::SeedableRng;

    /// A Conv with pad 1 and stride 2, plus `more` attributes.
    fn conv_node(more: Vec<(&str, Attr)>) -> converters::proto::NodeProto {
        let mut attrs = vec![
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ("strides", Attr::Ints(vec![2, 2])),
        ];
        attrs.extend(more);
        build::node("Conv", "c", &["x", "w"], &["y"], attrs)
    }

    #[test]
    fn conv_rows_are_patches_under_the_window() {
        // 1 sample, 2 channels, 3×3 input, 3×3 kernel with pad 1, stride 2: 2×2 output.
        let n = conv_node(vec![]);
        let geom = ConvGeom::new(&n, [3, 3], &[3, 3]).unwrap();
        assert_eq!(geom.output, [2, 2]);
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 2, 3, 3]), (0..18).map(|v| v as f32).collect()).unwrap();
        let t = ArrayD::from_shape_vec(IxDyn(&[1, 1, 2, 2]), vec![10.0, 11.0, 12.0, 13.0]).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let rows = conv_rows(&x, &t, &geom, 1, true, 16, &mut rng);
        let (f, tr) = &rows[0];
        assert_eq!(f.len(), 4 * 19);
        assert_eq!(tr, &vec![10.0, 11.0, 12.0, 13.0]);
        // Output (0, 0) sees input rows/cols -1..=1: the top-left 2×2 of each channel, zeros elsewhere.
        let first = &f[..19];
        assert_eq!(&first[..9], &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 3.0, 4.0]);
        assert_eq!(&first[9..18], &[0.0, 0.0, 0.0, 0.0, 9.0, 10.0, 0.0, 12.0, 13.0]);
        assert_eq!(first[18], 1.0);
        // Output (1, 1) is centred on input (2, 2).
        let last = &f[3 * 19..4 * 19];
        assert_eq!(&last[..9], &[4.0, 5.0, 0.0, 7.0, 8.0, 0.0, 0.0, 0.0, 0.0]);

        // Two groups split channels and outputs; few positions are sampled without repeats.
        let t2 = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2, 2]), (0..8).map(|v| v as f32).collect()).unwrap();
        let rows = conv_rows(&x, &t2, &geom, 2, false, 3, &mut rng);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0.len(), 3 * 9);
        let mut picked: Vec<f32> = rows[0].1.clone();
        picked.sort_by(f32::total_cmp);
        picked.dedup();
        assert_eq!(picked.len(), 3);
        assert!(rows[1].1.iter().all(|&v| v >= 4.0));
    }

    /// Direct grouped convolution, [N, C, H, W] ⊛ [O, C/g, kh, kw] with the geometry's stride, padding, dilation.
    fn conv(x: &ArrayD<f32>, w: &[f32], bias: &[f32], o: usize, g: usize, k: usize, geom: &ConvGeom) -> ArrayD<f32> {
        let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let ([ho, wo], cg, og) = (geom.output, c / g, o / g);
        let mut y = ArrayD::zeros(IxDyn(&[n, o, ho, wo]));
        for i in 0..n {
            for oc in 0..o {
                let j = oc / og;
                for (oh, ow) in (0..ho).flat_map(|a| (0..wo).map(move |b| (a, b))) {
                    let mut acc = bias[oc];
                    for ci in 0..cg {
                        for a in 0..k {
                            for b in 0..k {
                                let r = (oh * geom.strides[0] + a * geom.dilations[0]) as isize - geom.pads[0] as isize;
                                let q = (ow * geom.strides[1] + b * geom.dilations[1]) as isize - geom.pads[1] as isize;
                                if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < wd {
                                    let xv = x[[i, j * cg + ci, r as usize, q as usize]];
                                    acc += w[((oc * cg + ci) * k + a) * k + b] * xv;
                                }
                            }
                        }
                    }
                    y[[i, oc, oh, ow]] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn grouped_conv_weights_are_recovered_group_by_group() {
        use crate::calibrate::fit::Normal;
        use rand::Rng;
        let (c, o, g, k) = (4, 6, 2, 3);
        let n = conv_node(vec![
            ("dilations", Attr::Ints(vec![2, 2])),
            ("group", Attr::Int(g as i64)),
        ]);
        let geom = ConvGeom::new(&n, [9, 9], &[3, 3]).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let w: Vec<f32> = (0..o * (c / g) * k * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let bias: Vec<f32> = (0..o).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = ArrayD::from_shape_fn(IxDyn(&[40, c, 9, 9]), |_| rng.random_range(-1.0f32..1.0));
        let t = conv(&x, &w, &bias, o, g, k, &geom);
        let rows = conv_rows(&x, &t, &geom, g, true, 8, &mut rng);
        let d = (c / g) * k * k + 1;
        for (j, (f, tr)) in rows.iter().enumerate() {
            let mut ne = Normal::new(d, o / g);
            ne.push(f, tr);
            let fit = ne.solve(&vec![0.0; d * o / g], d - 1, 1e-9).unwrap();
            for oo in 0..o / g {
                let oc = j * (o / g) + oo;
                let want = w[oc * (d - 1)..(oc + 1) * (d - 1)].iter().chain([&bias[oc]]);
                for (got, want) in fit.theta[oo * d..(oo + 1) * d].iter().zip(want) {
                    assert!((got - *want as f64).abs() < 1e-3, "group {j} out {oo}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn dense_rows_append_the_bias_column() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let t = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![5.0, 6.0]).unwrap();
        let (f, tr) = dense_rows(&x, &t, true);
        assert_eq!(f, vec![1.0, 2.0, 1.0, 3.0, 4.0, 1.0]);
        assert_eq!(tr, vec![5.0, 6.0]);
    }
}
