//! `ratio finetune --bn reinsert`: train a BN-folded model with BatchNormalization put back after every
//! convolution (`converters::passes::bn_insert`), initialised to the identity on the conv outputs' statistics
//! measured on training data, and fold it back into the convolutions (`converters::passes::fold_bn`) for every
//! model the loop writes.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use converters::Model;
use converters::ir::attr::NodeExt;
use converters::ir::expose::expose_outputs;
use converters::passes::bn_insert::{ChannelStats, InsertedBn, insert_bn_after_convs};
use converters::passes::fold_bn::fold_bn;

use super::fit::Moments;
use super::samples::CalibData;
use crate::runtime::{Feed, Runner, RuntimeConfig};
use crate::train::ExportHook;

/// Per-channel mean and variance of every Conv output of `model` over the calibration batches of `data`.
pub fn conv_statistics(
    model: &Model,
    data: &mut CalibData,
    input: &str,
    cfg: &RuntimeConfig,
) -> Result<HashMap<String, ChannelStats>> {
    let convs: Vec<String> = model
        .graph()
        .node
        .iter()
        .filter(|n| n.op() == "Conv")
        .filter_map(|n| n.output.first().cloned())
        .collect();
    let mut exposed = model.clone();
    expose_outputs(&mut exposed, &convs)?;
    let mut runner = Runner::from_model(&exposed, cfg)?;
    let names: Vec<&str> = convs.iter().map(String::as_str).collect();
    let mut acc: Vec<Option<Moments>> = vec![None; convs.len()];
    data.for_each_calib(|x| {
        let out = runner.run_select(&[(input, Feed::F32(x.view()))], &names)?;
        for (name, m) in convs.iter().zip(acc.iter_mut()) {
            let y = out.get(name)?;
            m.get_or_insert_with(|| Moments::new(y.shape().get(1).copied().unwrap_or(1)))
                .observe(y, 1);
        }
        Ok(())
    })?;
    Ok(convs
        .into_iter()
        .zip(acc)
        .filter_map(|(name, m)| {
            let (mean, var) = m?.mean_var();
            let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
            Some((
                name,
                ChannelStats {
                    mean: f(mean),
                    var: f(var),
                },
            ))
        })
        .collect())
}

/// `--bn reinsert` needs a model without BatchNormalization; one line naming the file otherwise.
pub fn check_folded(model: &Model) -> Result<()> {
    let bns = model
        .graph()
        .node
        .iter()
        .filter(|n| n.op() == "BatchNormalization")
        .count();
    if bns > 0 {
        bail!(
            "{}: --bn reinsert is for BN-folded models; this one has {bns} BatchNormalization node(s) (use --bn train)",
            model.display_name()
        );
    }
    Ok(())
}

/// `model` (which must have no BatchNormalization) with identity BatchNormalization after each convolution.
pub fn reinsert(model: &Model, data: &mut CalibData, cfg: &RuntimeConfig) -> Result<(Model, Vec<InsertedBn>)> {
    check_folded(model)?;
    let (input, _) = super::io_names(model)?;
    let stats = conv_statistics(model, data, &input, cfg)?;
    let mut out = model.clone();
    let inserted = insert_bn_after_convs(out.graph_mut(), &stats)
        .with_context(|| format!("{}: reinserting BatchNormalization", model.display_name()))?;
    if inserted.is_empty() {
        bail!(
            "{}: --bn reinsert found no convolution to normalise",
            model.display_name()
        );
    }
    out.source_sha256 = None;
    Ok((out, inserted))
}

/// The export hook folding reinserted BatchNormalization back into the convolutions.
pub fn fold_back_hook() -> ExportHook {
    Arc::new(|m: &Model| {
        let mut out = m.clone();
        let pairs = fold_bn(out.graph_mut())
            .with_context(|| format!("{}: folding BatchNormalization back", m.display_name()))?;
        out.set_metadata(
            "ratio.finetune.bn",
            format!("reinsert (folded back {} BatchNormalization)", pairs.len()),
        );
        Ok(out)
    })
}
