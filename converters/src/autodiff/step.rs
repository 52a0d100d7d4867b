//! The driver: forward (with training-mode rewrites) + loss + backward + optimizer, and the [`TrainStep`] it
//! returns, which knows how to write learned values back into the inference model.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::autodiff::cx::{BnMode, GradCx};
use crate::autodiff::error::{GradError, Result};
use crate::autodiff::info::FLOAT;
use crate::autodiff::loss::softmax_cross_entropy;
use crate::autodiff::optim::{Optimizer, StepInputs, update};
use crate::autodiff::params::{Origin, Source, select};
use crate::autodiff::registry::{Grad, registry};
use crate::autodiff::shape::infer_all;
use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, Attr, GraphBuilder, value_info, value_info_dims};
use crate::ir::tensor;
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, ModelProto, OperatorSetIdProto};
use crate::validate::validate;

#[derive(Debug, Clone, Default)]
pub struct TrainStepConfig {
    pub batch_size: i64,
    /// Image input; default: the first graph input that is not an initializer.
    pub input: Option<String>,
    /// Logits output [N, K]; default: the first graph output.
    pub logits: Option<String>,
    pub label_smoothing: f32,
    pub optimizer: Optimizer,
    pub bn: BnMode,
    pub freeze: Option<Regex>,
    pub train_only: Option<Regex>,
    pub dw: crate::autodiff::cx::DwStrategy,
    /// Also output each parameter's gradient as `<param>.grad` (for gradient checks and debugging).
    pub emit_gradients: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Param,
    Momentum,
    AdamM,
    AdamV,
    RunningMean,
    RunningVar,
}

/// One tensor carried from step to step: fed as `input`, read back as `output`.
#[derive(Debug, Clone)]
pub struct StateTensor {
    /// The tensor it belongs to in the inference model (for optimizer slots: the parameter's name).
    pub name: String,
    pub kind: StateKind,
    pub input: String,
    pub output: String,
    pub dims: Vec<i64>,
    pub init: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct TrainStep {
    pub model: ModelProto,
    pub state: Vec<StateTensor>,
    pub batch_input: String,
    pub label_input: String,
    pub lr_input: String,
    /// AdamW's step counter t (float, starting at 1).
    pub step_input: Option<String>,
    pub loss_output: String,
    pub logits_output: String,
    pub batch_size: i64,
    /// Full input shape including the batch.
    pub input_shape: Vec<i64>,
    pub num_classes: i64,
    /// (parameter, gradient output) when `emit_gradients` was set.
    pub grad_outputs: Vec<(String, String)>,
    source: Model,
    origins: HashMap<String, Origin>,
}

impl TrainStep {
    pub fn num_params(&self) -> usize {
        self.state
            .iter()
            .filter(|s| s.kind == StateKind::Param)
            .map(|s| tensor::numel(&s.dims))
            .sum()
    }

    /// The inference model with `values` (one per `state` entry, same order) written into its weights and BN
    /// running statistics. Optimizer slots are ignored.
    pub fn to_inference(&self, values: &[Vec<f32>]) -> Result<Model> {
        if values.len() != self.state.len() {
            return Err(GradError::Config(format!(
                "{} state values given, the train step has {}",
                values.len(),
                self.state.len()
            )));
        }
        let mut m = self.source.clone();
        let g = m.graph_mut();
        for (s, v) in self.state.iter().zip(values) {
            if !matches!(
                s.kind,
                StateKind::Param | StateKind::RunningMean | StateKind::RunningVar
            ) {
                continue;
            }
            if v.len() != tensor::numel(&s.dims) {
                return Err(GradError::Config(format!(
                    "tensor '{}' needs {} values, got {}",
                    s.name,
                    tensor::numel(&s.dims),
                    v.len()
                )));
            }
            let t = tensor::from_f32(&s.name, &s.dims, v);
            match self.origins.get(&s.name) {
                Some(Origin::Constant(i)) => {
                    let node = &mut g.node[*i];
                    node.attribute.retain(|a| a.name.as_deref() != Some("value"));
                    let mut t = t;
                    t.name = None;
                    node.attribute.push(build::attr("value", Attr::Tensor(t)));
                }
                _ => {
                    let slot = g
                        .initializer
                        .iter_mut()
                        .find(|i| i.name.as_deref() == Some(s.name.as_str()))
                        .ok_or_else(|| GradError::Config(format!("initializer '{}' vanished", s.name)))?;
                    *slot = t;
                }
            }
        }
        Ok(m)
    }

    /// Initial values of every state tensor, in `state` order.
    pub fn initial_values(&self) -> Vec<Vec<f32>> {
        self.state.iter().map(|s| s.init.clone()).collect()
    }
}

/// Every op the graph uses that has no rule, as "Op (n nodes, e.g. 'name')", before any other work.
fn check_supported(model: &Model, reg: &crate::autodiff::registry::Registry) -> Result<()> {
    let mut missing: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for n in &model.graph().node {
        let key = if n.domain_str().is_empty() {
            n.op().to_string()
        } else {
            format!("{}::{}", n.domain_str(), n.op())
        };
        if reg.get(n.op()).is_none() || !n.domain_str().is_empty() {
            let e = missing.entry(key).or_insert((0, n.name_or_output().to_string()));
            e.0 += 1;
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(GradError::UnsupportedOps {
        ops: missing
            .into_iter()
            .map(|(op, (count, eg))| format!("{op} ({count} node{}, e.g. '{eg}')", if count == 1 { "" } else { "s" }))
            .collect(),
    })
}

fn sum(cx: &mut GradCx, parts: &[String]) -> String {
    if parts.len() == 1 {
        return parts[0].clone();
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    cx.op("Sum", "g_acc", &refs, vec![])
}

pub fn build_train_step(model: &Model, cfg: &TrainStepConfig) -> Result<TrainStep> {
    let reg = registry()?;
    check_supported(model, &reg)?;
    if cfg.batch_size < 1 {
        return Err(GradError::Config(format!(
            "batch size {} must be at least 1",
            cfg.batch_size
        )));
    }
    if !(0.0..1.0).contains(&cfg.label_smoothing) {
        return Err(GradError::Config(format!(
            "label smoothing {} must be in [0, 1)",
            cfg.label_smoothing
        )));
    }
    let g = model.graph();
    let inits: HashSet<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let input_vi = match &cfg.input {
        Some(name) => g.input.iter().find(|v| v.name.as_deref() == Some(name.as_str())),
        None => g
            .input
            .iter()
            .find(|v| !inits.contains(v.name.as_deref().unwrap_or(""))),
    }
    .ok_or_else(|| GradError::Config(format!("{}: no image input found", model.display_name())))?;
    let input_name = input_vi.name.clone().unwrap_or_default();
    let dims = value_info_dims(input_vi).unwrap_or_default();
    if dims.is_empty() {
        return Err(GradError::Config(format!("input '{input_name}' has no shape")));
    }
    let mut input_shape = vec![cfg.batch_size];
    for (i, d) in dims.iter().enumerate().skip(1) {
        input_shape.push(d.ok_or_else(|| {
            GradError::Config(format!("input '{input_name}' has a symbolic dim {i} besides the batch"))
        })?);
    }
    let logits = match &cfg.logits {
        Some(l) => l.clone(),
        None => g
            .output
            .first()
            .and_then(|o| o.name.clone())
            .ok_or_else(|| GradError::Config("the model has no outputs".into()))?,
    };

    let mut feeds = HashMap::new();
    feeds.insert(input_name.clone(), input_shape.clone());
    let info = infer_all(model, &reg, &feeds)?;
    let lshape = info
        .get(&logits)
        .map(|i| i.shape.clone())
        .ok_or_else(|| GradError::Config(format!("logits '{logits}' are not produced by the graph")))?;
    if lshape.len() != 2 || lshape[0] != cfg.batch_size {
        return Err(GradError::Config(format!(
            "logits '{logits}' have shape {lshape:?}; expected [batch, classes]"
        )));
    }
    let num_classes = lshape[1];

    let sel = select(
        model,
        &reg,
        cfg.freeze.as_ref(),
        cfg.train_only.as_ref(),
        cfg.bn == BnMode::Train,
    )?;
    if sel.trainable.is_empty() {
        return Err(GradError::NoTrainableParams);
    }
    let fed: Vec<&Source> = sel.trainable.iter().chain(sel.running.iter().map(|(s, _)| s)).collect();
    let fed_names: HashSet<&str> = fed.iter().map(|s| s.name.as_str()).collect();
    let const_nodes: HashSet<usize> = fed
        .iter()
        .filter_map(|s| match s.origin {
            Origin::Constant(i) => Some(i),
            _ => None,
        })
        .collect();

    // Values downstream of a trainable parameter through differentiable ops need gradients.
    let mut needs: HashSet<String> = sel.trainable.iter().map(|s| s.name.clone()).collect();
    for n in &g.node {
        let Some(rule) = reg.get(n.op()) else { continue };
        if matches!(rule.grad, Grad::Rule(_)) && n.input.iter().any(|i| needs.contains(i)) {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if info.get(o).is_some_and(|v| v.elem == FLOAT) {
                    needs.insert(o.clone());
                }
            }
        }
    }
    if !needs.contains(&logits) {
        return Err(GradError::Config(format!(
            "no trainable parameter influences the logits '{logits}'"
        )));
    }

    // The train graph: original initializers minus fed ones, forward nodes (BN rewritten in training mode).
    let base = GraphProto {
        name: Some(format!("{}_train_step", g.name.clone().unwrap_or_default())),
        initializer: g
            .initializer
            .iter()
            .filter(|t| !fed_names.contains(t.name.as_deref().unwrap_or("")))
            .cloned()
            .collect(),
        ..Default::default()
    };
    let mut b = GraphBuilder::from_graph(base);
    // Reserve every forward name so generated names never collide with them.
    for n in g.node.iter().flat_map(|n| n.output.iter().chain(n.name.iter())) {
        b.fresh(n);
    }
    for vi in g.input.iter().filter_map(|v| v.name.as_ref()) {
        b.fresh(vi);
    }
    let opset = model.opset().max(build::OPSET);
    let mut cx = GradCx::new(b, info, cfg.bn, opset);
    cx.needs = needs;
    cx.dw = cfg.dw;

    let mut inputs = vec![value_info(&input_name, DataType::Float, &opt(&input_shape))];
    let labels = cx.b.fresh("labels");
    inputs.push(value_info(&labels, DataType::Int64, &[Some(cfg.batch_size)]));
    let lr = cx.b.fresh("lr");
    inputs.push(value_info(&lr, DataType::Float, &[]));
    let step_in = cfg.optimizer.needs_step().then(|| {
        let s = cx.b.fresh("step");
        inputs.push(value_info(&s, DataType::Float, &[]));
        s
    });
    for s in &fed {
        inputs.push(value_info(&s.name, DataType::Float, &opt(&s.dims)));
    }

    for (i, n) in g.node.iter().enumerate() {
        if const_nodes.contains(&i) {
            continue;
        }
        let rule = reg.get(n.op()).ok_or_else(|| GradError::UnsupportedOps {
            ops: vec![n.op().to_string()],
        })?;
        let replaced = match rule.forward_train {
            Some(f) => f(&mut cx, n)?,
            None => false,
        };
        if !replaced {
            cx.b.graph.node.push(n.clone());
        }
    }

    let loss = softmax_cross_entropy(
        &mut cx,
        &logits,
        &labels,
        cfg.batch_size,
        num_classes,
        cfg.label_smoothing,
    );

    let mut grads: HashMap<String, Vec<String>> = HashMap::new();
    grads.insert(logits.clone(), vec![loss.dlogits.clone()]);
    for n in g.node.iter().rev() {
        if !n.input.iter().any(|i| cx.needs(i)) || !n.output.iter().any(|o| grads.contains_key(o)) {
            continue;
        }
        let Some(rule) = reg.get(n.op()) else { continue };
        let Grad::Rule(f) = rule.grad else { continue };
        let mut dys = Vec::with_capacity(n.output.len());
        for o in &n.output {
            dys.push(grads.get(o).map(|parts| sum(&mut cx, &parts.clone())));
        }
        let dxs = f(&mut cx, n, &dys)?;
        for (inp, dx) in n.input.iter().zip(dxs) {
            if let Some(dx) = dx
                && cx.needs(inp)
            {
                grads.entry(inp.clone()).or_default().push(dx);
            }
        }
    }

    let si = StepInputs::new(&mut cx, &cfg.optimizer, lr.clone(), step_in.clone());
    let mut state = Vec::new();
    let mut outputs = vec![
        value_info(&loss.loss, DataType::Float, &[]),
        value_info(&logits, DataType::Float, &opt(&lshape)),
    ];
    let mut origins = HashMap::new();
    let mut slot_inputs = Vec::new();
    let mut grad_outputs = Vec::new();
    for p in &sel.trainable {
        let gname = match grads.get(&p.name) {
            Some(parts) => sum(&mut cx, &parts.clone()),
            None => cx.zeros(&p.dims),
        };
        if cfg.emit_gradients {
            let out = cx.b.fresh(&format!("{}.grad", p.name));
            let node_name = cx.b.fresh(&format!("{out}/Identity"));
            cx.b.graph
                .node
                .push(build::node("Identity", &node_name, &[&gname], &[&out], vec![]));
            outputs.push(value_info(&out, DataType::Float, &opt(&p.dims)));
            grad_outputs.push((p.name.clone(), out));
        }
        let slots: Vec<String> = cfg
            .optimizer
            .slots()
            .iter()
            .map(|s| cx.b.fresh(&format!("{}.{s}", p.name)))
            .collect();
        let (w1, new_slots) = update(&mut cx, &cfg.optimizer, &si, &p.name, &gname, &slots, p.dims.len());
        origins.insert(p.name.clone(), p.origin.clone());
        let out = name_output(&mut cx, &w1, &p.name);
        state.push(StateTensor {
            name: p.name.clone(),
            kind: StateKind::Param,
            input: p.name.clone(),
            output: out,
            dims: p.dims.clone(),
            init: p.values.clone(),
        });
        for ((slot_in, slot_out), kind_name) in slots.iter().zip(new_slots).zip(cfg.optimizer.slots()) {
            let kind = match *kind_name {
                "momentum" => StateKind::Momentum,
                "adam_m" => StateKind::AdamM,
                _ => StateKind::AdamV,
            };
            slot_inputs.push(value_info(slot_in, DataType::Float, &opt(&p.dims)));
            let out = name_output(&mut cx, &slot_out, slot_in);
            state.push(StateTensor {
                name: p.name.clone(),
                kind,
                input: slot_in.clone(),
                output: out,
                dims: p.dims.clone(),
                init: vec![0.0; p.values.len()],
            });
        }
    }
    let updates: HashMap<String, String> = cx.state_updates.iter().cloned().collect();
    for (src, kind) in &sel.running {
        let upd = updates.get(&src.name).cloned().ok_or_else(|| {
            GradError::Config(format!(
                "running statistic '{}' is shared in a way training-mode BatchNorm cannot update",
                src.name
            ))
        })?;
        origins.insert(src.name.clone(), src.origin.clone());
        let out = name_output(&mut cx, &upd, &src.name);
        state.push(StateTensor {
            name: src.name.clone(),
            kind: *kind,
            input: src.name.clone(),
            output: out,
            dims: src.dims.clone(),
            init: src.values.clone(),
        });
    }
    if let Some((stat, _)) = cx
        .state_updates
        .iter()
        .find(|(s, _)| !sel.running.iter().any(|(r, _)| &r.name == s))
    {
        return Err(GradError::Config(format!(
            "BatchNorm running statistic '{stat}' is not a constant tensor; use --bn frozen"
        )));
    }
    for s in &state {
        outputs.push(value_info(&s.output, DataType::Float, &opt(&s.dims)));
    }
    inputs.extend(slot_inputs);

    let mut graph = cx.b.finish();
    graph.input = inputs;
    graph.output = outputs;
    graph.value_info.clear();
    let problems = validate(&graph);
    if !problems.is_empty() {
        return Err(GradError::Invalid(problems.join("; ")));
    }
    let mut proto = build::model(graph, "ratio-autodiff");
    proto.ir_version = Some(
        model
            .proto
            .ir_version
            .unwrap_or(build::IR_VERSION)
            .clamp(build::IR_VERSION, 10),
    );
    proto.opset_import = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(opset),
    }];
    Ok(TrainStep {
        model: proto,
        state,
        batch_input: input_name,
        label_input: labels,
        lr_input: lr,
        step_input: step_in,
        loss_output: loss.loss,
        logits_output: logits,
        batch_size: cfg.batch_size,
        input_shape,
        num_classes,
        grad_outputs,
        source: model.clone(),
        origins,
    })
}

fn opt(d: &[i64]) -> Vec<Option<i64>> {
    d.iter().map(|&x| Some(x)).collect()
}

/// Give a state output a readable name: `<tensor>.next`.
fn name_output(cx: &mut GradCx, value: &str, tensor: &str) -> String {
    let out = cx.b.fresh(&format!("{tensor}.next"));
    let node_name = cx.b.fresh(&format!("{out}/Identity"));
    cx.b.graph
        .node
        .push(build::node("Identity", &node_name, &[value], &[&out], vec![]));
    out
}
