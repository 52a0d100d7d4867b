//! Refit layers wave by wave. For each wave, the partially calibrated model (cut down to the wave's tensors) and
//! the reference (cut down the same way) run on every calibration batch; each layer's accumulator sees the
//! model's input (least squares) or output (affine) next to the reference's output at the same tensor. The
//! solved weights are written into the model before the next wave runs, so every layer is fitted on inputs
//! that already carry the upstream refits.

use anyhow::{Context, Result};
use converters::Model;
use converters::passes::extract::extract;
use converters::passes::set_inputs::set_inputs;
use ndarray::ArrayD;
use rand::SeedableRng;
use reports::schema::calibrate::LayerFit;

use super::CalibError;
use super::fit::{Moments, Normal};
use super::layers::Target;
use super::linear::{Kind, Linear};
use super::rows::{ConvGeom, conv_rows, dense_rows};
use super::samples::CalibData;
use crate::runtime::{Feed, Runner, RuntimeConfig};

/// How one layer is refit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Affine,
    Lsq,
}

impl Fit {
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Affine => "affine",
            Fit::Lsq => "lsq",
        }
    }
}

/// Knobs of the refits.
#[derive(Debug, Clone)]
pub struct RefitOptions {
    pub ridge: f64,
    pub positions: usize,
    pub seed: u64,
    pub runtime: RuntimeConfig,
}

enum Acc {
    Affine(Moments),
    Lsq {
        groups: Vec<Normal>,
        geom: Option<ConvGeom>,
        rng: Box<rand_chacha::ChaCha8Rng>,
    },
}

struct Job<'a> {
    target: &'a Target,
    fit: Fit,
    acc: Acc,
}

/// A model cut down to `outputs`, in one ONNX Runtime session.
fn session(model: &Model, outputs: &[String], cfg: &RuntimeConfig) -> Result<Runner> {
    let mut cut = model.clone();
    extract(cut.graph_mut(), outputs).with_context(|| format!("{}: cutting the graph", model.display_name()))?;
    Ok(Runner::from_model(&cut, cfg)?)
}

/// Refit every `(target, fit)` of `jobs` in wave order; returns the calibrated model and one record per layer.
pub fn refit(
    model: Model,
    reference: &Model,
    jobs: &[(Target, Fit)],
    data: &mut CalibData,
    input: &str,
    opts: &RefitOptions,
) -> Result<(Model, Vec<LayerFit>)> {
    let mut current = model;
    let mut records = Vec::new();
    let last = jobs.iter().map(|(t, _)| t.wave).max();
    for wave in 0..=last.unwrap_or(0) {
        let mut wave_jobs: Vec<Job> = jobs
            .iter()
            .filter(|(t, _)| t.wave == wave)
            .enumerate()
            .map(|(k, (t, fit))| Job {
                target: t,
                fit: *fit,
                acc: match fit {
                    Fit::Affine => Acc::Affine(Moments::new(t.linear.outs)),
                    Fit::Lsq => Acc::Lsq {
                        groups: Vec::new(),
                        geom: None,
                        rng: Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(
                            opts.seed ^ ((wave as u64) << 32) ^ k as u64,
                        )),
                    },
                },
            })
            .collect();
        if wave_jobs.is_empty() {
            continue;
        }
        let mine: Vec<String> = dedup(wave_jobs.iter().map(|j| match j.fit {
            Fit::Affine => j.target.linear.output.clone(),
            Fit::Lsq => j.target.linear.input.clone(),
        }));
        let theirs: Vec<String> = dedup(wave_jobs.iter().map(|j| j.target.linear.output.clone()));
        let mut cur = session(&current, &mine, &opts.runtime)?;
        let mut refr = session(reference, &theirs, &opts.runtime)?;
        let mine_refs: Vec<&str> = mine.iter().map(String::as_str).collect();
        let theirs_refs: Vec<&str> = theirs.iter().map(String::as_str).collect();
        data.for_each_calib(|x| {
            // The two sessions run side by side, one intra-op thread each by default (see `CalibrateOptions`).
            let (co, ro) = std::thread::scope(|s| {
                let theirs = s.spawn(|| refr.run_select(&[(input, Feed::F32(x.view()))], &theirs_refs));
                let ours = cur.run_select(&[(input, Feed::F32(x.view()))], &mine_refs);
                (ours, theirs.join())
            });
            let co = co?;
            let ro = ro.map_err(|_| anyhow::anyhow!("the reference session panicked"))??;
            for j in wave_jobs.iter_mut() {
                let l = &j.target.linear;
                let t = ro.get(&l.output)?;
                match &mut j.acc {
                    Acc::Affine(m) => {
                        let y = co.get(&l.output)?;
                        if y.shape() != t.shape() {
                            return Err(line_up(reference, &current, l, t.shape(), y.shape()).into());
                        }
                        m.push(y, t, l.channel_axis(y.ndim()));
                    }
                    Acc::Lsq { groups, geom, rng } => {
                        let xin = co.get(&l.input)?;
                        push_lsq(&current, reference, l, xin, t, groups, geom, rng, opts.positions)?;
                    }
                }
            }
            Ok(())
        })?;
        let mut updates = Vec::new();
        let mut attrs = Vec::new();
        for j in wave_jobs {
            let l = &j.target.linear;
            let (w, b, rec) = solve(l, j.fit, j.acc, opts.ridge)
                .with_context(|| format!("{}: fitting layer '{}'", current.display_name(), l.name))?;
            let (u, a) = l.updates(&w, &b);
            updates.extend(u);
            attrs.extend(a);
            records.push(rec);
        }
        set_inputs(current.graph_mut(), updates, attrs)
            .with_context(|| format!("{}: writing calibrated weights", current.display_name()))?;
    }
    Ok((current, records))
}

fn dedup(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for s in it {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

fn line_up(reference: &Model, model: &Model, l: &Linear, theirs: &[usize], ours: &[usize]) -> CalibError {
    CalibError::LineUp {
        reference: reference.display_name(),
        model: model.display_name(),
        reason: format!(
            "tensor '{}' (output of layer '{}') is {theirs:?} in the reference and {ours:?} in the model",
            l.output, l.name
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn push_lsq(
    model: &Model,
    reference: &Model,
    l: &Linear,
    x: &ArrayD<f32>,
    t: &ArrayD<f32>,
    groups: &mut Vec<Normal>,
    geom: &mut Option<ConvGeom>,
    rng: &mut rand_chacha::ChaCha8Rng,
    positions: usize,
) -> Result<()> {
    let bias = l.has_bias();
    let n = x.shape().first().copied().unwrap_or(0);
    match &l.kind {
        Kind::Conv { group, kernel } => {
            if geom.is_none() {
                let node = &model.graph().node[l.node];
                *geom = Some(ConvGeom::new(node, [x.shape()[2], x.shape()[3]], kernel)?);
            }
            let gm = geom.as_ref().expect("set above");
            let want = [n, l.outs, gm.output[0], gm.output[1]];
            if t.shape() != want {
                return Err(line_up(reference, model, l, t.shape(), &want).into());
            }
            let rows = conv_rows(x, t, gm, *group, bias, positions, rng);
            if groups.is_empty() {
                let d = l.fan_in + usize::from(bias);
                *groups = (0..*group).map(|_| Normal::new(d, l.outs / group)).collect();
            }
            for (g, (f, tr)) in groups.iter_mut().zip(rows) {
                g.push(&f, &tr);
            }
        }
        Kind::Gemm { .. } | Kind::MatMul => {
            let mut want = x.shape().to_vec();
            if let Some(last) = want.last_mut() {
                *last = l.outs;
            }
            if t.shape() != want.as_slice() || x.shape().last() != Some(&l.fan_in) {
                return Err(line_up(reference, model, l, t.shape(), &want).into());
            }
            let (f, tr) = dense_rows(x, t, bias);
            if groups.is_empty() {
                groups.push(Normal::new(l.fan_in + usize::from(bias), l.outs));
            }
            groups[0].push(&f, &tr);
        }
    }
    Ok(())
}

/// New effective (w, b) of a layer and its record.
fn solve(l: &Linear, fit: Fit, acc: Acc, ridge: f64) -> Result<(Vec<f64>, Vec<f64>, LayerFit)> {
    let (mut w, mut b) = (l.w.clone(), l.b.clone());
    let mut rec = LayerFit {
        node: l.name.clone(),
        op: l.op.clone(),
        method: fit.as_str().into(),
        rows: 0,
        features: None,
        lambda: None,
        rel_error_before: None,
        rel_error_after: None,
        mean_shift: None,
        var_ratio: None,
    };
    match acc {
        Acc::Affine(m) => {
            let f = m.solve(l.has_bias());
            for o in 0..l.outs {
                w[o * l.fan_in..(o + 1) * l.fan_in]
                    .iter_mut()
                    .for_each(|v| *v *= f.scale[o]);
                b[o] = f.scale[o] * b[o] + f.shift[o];
            }
            rec.rows = f.rows;
            rec.rel_error_before = Some(f.rel_before);
            rec.rel_error_after = Some(f.rel_after);
        }
        Acc::Lsq { groups, .. } => {
            let bias = l.has_bias();
            let og = l.outs / groups.len().max(1);
            let (mut before, mut after, mut total, mut lambda) = (0.0, 0.0, 0.0, 0.0f64);
            for (gi, g) in groups.iter().enumerate() {
                let d = g.d;
                let theta0: Vec<f64> = (gi * og..(gi + 1) * og)
                    .flat_map(|o| {
                        let row = w[o * l.fan_in..(o + 1) * l.fan_in].to_vec();
                        row.into_iter().chain(bias.then_some(b[o]))
                    })
                    .collect();
                let s = g.solve(&theta0, l.fan_in, ridge)?;
                for (k, o) in (gi * og..(gi + 1) * og).enumerate() {
                    w[o * l.fan_in..(o + 1) * l.fan_in].copy_from_slice(&s.theta[k * d..k * d + l.fan_in]);
                    if bias {
                        b[o] = s.theta[k * d + l.fan_in];
                    }
                }
                before += s.err_before;
                after += s.err_after;
                total += s.total;
                lambda = lambda.max(s.lambda);
                rec.rows = g.rows;
            }
            let total = total.max(f64::MIN_POSITIVE);
            rec.features = Some(l.features());
            rec.lambda = Some(lambda);
            rec.rel_error_before = Some((before / total).sqrt());
            rec.rel_error_after = Some((after / total).sqrt());
        }
    }
    Ok((w, b, rec))
}
