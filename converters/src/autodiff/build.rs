//! The driver, phase by phase: check the ops and the configuration; adapt the model (untie exporter-tied
//! tensors, rewrite a static batch); infer shapes; select what trains; find which values need gradients; emit the
//! forward (with training-mode rewrites), the loss, the backward and the optimizer update; and assemble the graph.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::autodiff::cx::{BnMode, GradCx};
use crate::autodiff::error::{GradError, Result};
use crate::autodiff::loss::{Loss, softmax_cross_entropy};
use crate::autodiff::optim::{StepInputs, update};
use crate::autodiff::params::{Origin, Selection, Source, select};
use crate::autodiff::rebatch::rebatch;
use crate::autodiff::registry::{Grad, Registry, registry};
use crate::autodiff::shape::infer_all;
use crate::autodiff::step::{Adaptation, StateKind, StateTensor, TrainStep, TrainStepConfig};
use crate::autodiff::untie::untie;
use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, GraphBuilder, value_info, value_info_dims};
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, OperatorSetIdProto, ValueInfoProto};
use crate::shapes::{ValInfo, is_float};
use crate::validate::validate;

pub fn build_train_step(model: &Model, cfg: &TrainStepConfig) -> Result<TrainStep> {
    let reg = registry()?;
    check_supported(model, reg)?;
    check_config(cfg)?;
    let (source, untied) = untie(model, reg, cfg.bn == BnMode::Train)?;
    let io = resolve_io(&source, cfg)?;
    let (work, rewrites) = rebatch(&source, reg, &io.input, cfg.batch_size)?;
    let mut adaptations: Vec<Adaptation> = rewrites.into_iter().map(Adaptation::Rebatched).collect();
    adaptations.extend(untied.into_iter().map(Adaptation::Untied));

    let info = infer_all(&work, reg, &HashMap::from([(io.input.clone(), io.input_shape.clone())]))?;
    let lshape = logits_shape(&info, &io.logits, cfg.batch_size)?;
    let sel = select(
        &work,
        reg,
        cfg.freeze.as_ref(),
        cfg.train_only.as_ref(),
        cfg.bn == BnMode::Train,
    )?;
    if sel.trainable.is_empty() {
        return Err(GradError::NoTrainableParams);
    }
    let needs = gradient_needs(&work, reg, &info, &sel, &io.logits)?;

    let fed: Vec<&Source> = sel.trainable.iter().chain(sel.running.iter().map(|(s, _)| s)).collect();
    let mut cx = start_graph(&work, info, &fed, cfg, needs);
    let mut feeds = declare_inputs(&mut cx, &io, &fed, cfg);
    emit_forward(&mut cx, &work, reg, &fed)?;
    let loss = softmax_cross_entropy(
        &mut cx,
        &io.logits,
        &feeds.labels,
        cfg.batch_size,
        lshape[1],
        cfg.label_smoothing,
    );
    let grads = emit_backward(&mut cx, &work, reg, &io.logits, &loss)?;
    let mut outputs = vec![
        value_info(&loss.loss, DataType::Float, &[]),
        value_info(&io.logits, DataType::Float, &opt(&lshape)),
    ];
    let updates = emit_updates(&mut cx, cfg, &sel, &grads, &feeds)?;
    for s in &updates.state {
        outputs.push(value_info(&s.output, DataType::Float, &opt(&s.dims)));
    }
    outputs.extend(updates.grad_values);
    feeds.inputs.extend(updates.slot_inputs);

    let proto = finish(cx, model, feeds.inputs, outputs)?;
    Ok(TrainStep {
        model: proto,
        state: updates.state,
        batch_input: io.input,
        label_input: feeds.labels,
        lr_input: feeds.lr,
        step_input: feeds.step,
        loss_output: loss.loss,
        logits_output: io.logits,
        batch_size: cfg.batch_size,
        input_shape: io.input_shape,
        num_classes: lshape[1],
        grad_outputs: updates.grad_outputs,
        adaptations,
        source,
        origins: updates.origins,
    })
}

/// Every op the graph uses that has no rule, as "Op (n nodes, e.g. 'name')", before any other work.
fn check_supported(model: &Model, reg: &Registry) -> Result<()> {
    let mut missing: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for n in &model.graph().node {
        let key = if n.domain_str().is_empty() {
            n.op().to_string()
        } else {
            format!("{}::{}", n.domain_str(), n.op())
        };
        if reg.of(n).is_none_or(|s| matches!(s.grad, Grad::Missing)) {
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

fn check_config(cfg: &TrainStepConfig) -> Result<()> {
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
    Ok(())
}

/// The image input (with its shape at the training batch) and the logits output.
struct Io {
    input: String,
    input_shape: Vec<i64>,
    logits: String,
}

fn resolve_io(model: &Model, cfg: &TrainStepConfig) -> Result<Io> {
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
    let input = input_vi.name.clone().unwrap_or_default();
    let dims = value_info_dims(input_vi).unwrap_or_default();
    if dims.is_empty() {
        return Err(GradError::Config(format!("input '{input}' has no shape")));
    }
    let mut input_shape = vec![cfg.batch_size];
    for (i, d) in dims.iter().enumerate().skip(1) {
        input_shape.push(
            d.ok_or_else(|| GradError::Config(format!("input '{input}' has a symbolic dim {i} besides the batch")))?,
        );
    }
    let logits = match &cfg.logits {
        Some(l) => l.clone(),
        None => g
            .output
            .first()
            .and_then(|o| o.name.clone())
            .ok_or_else(|| GradError::Config("the model has no outputs".into()))?,
    };
    Ok(Io {
        input,
        input_shape,
        logits,
    })
}

fn logits_shape(info: &HashMap<String, ValInfo>, logits: &str, batch: i64) -> Result<Vec<i64>> {
    let lshape = info
        .get(logits)
        .map(|i| i.shape.clone())
        .ok_or_else(|| GradError::Config(format!("logits '{logits}' are not produced by the graph")))?;
    if lshape.len() != 2 || lshape[0] != batch {
        return Err(GradError::Config(format!(
            "logits '{logits}' have shape {lshape:?}; expected [batch, classes]"
        )));
    }
    Ok(lshape)
}

/// Values downstream of a trainable parameter through differentiable ops: those need gradients.
fn gradient_needs(
    model: &Model,
    reg: &Registry,
    info: &HashMap<String, ValInfo>,
    sel: &Selection,
    logits: &str,
) -> Result<HashSet<String>> {
    let mut needs: HashSet<String> = sel.trainable.iter().map(|s| s.name.clone()).collect();
    for n in &model.graph().node {
        let Some(spec) = reg.of(n) else { continue };
        if matches!(spec.grad, Grad::Rule(_)) && n.input.iter().any(|i| needs.contains(i)) {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if info.get(o).is_some_and(|v| is_float(v.elem)) {
                    needs.insert(o.clone());
                }
            }
        }
    }
    if !needs.contains(logits) {
        return Err(GradError::Config(format!(
            "no trainable parameter influences the logits '{logits}'"
        )));
    }
    Ok(needs)
}

/// The train graph's builder: the model's initializers minus the fed ones, every forward name reserved.
fn start_graph(
    model: &Model,
    info: HashMap<String, ValInfo>,
    fed: &[&Source],
    cfg: &TrainStepConfig,
    needs: HashSet<String>,
) -> GradCx {
    let g = model.graph();
    let fed_names: HashSet<&str> = fed.iter().map(|s| s.name.as_str()).collect();
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
    cx
}

/// The step's runtime inputs.
struct Feeds {
    inputs: Vec<ValueInfoProto>,
    labels: String,
    lr: String,
    step: Option<String>,
}

fn declare_inputs(cx: &mut GradCx, io: &Io, fed: &[&Source], cfg: &TrainStepConfig) -> Feeds {
    let mut inputs = vec![value_info(&io.input, DataType::Float, &opt(&io.input_shape))];
    let labels = cx.b.fresh("labels");
    inputs.push(value_info(&labels, DataType::Int64, &[Some(cfg.batch_size)]));
    let lr = cx.b.fresh("lr");
    inputs.push(value_info(&lr, DataType::Float, &[]));
    let step = cfg.optimizer.needs_step().then(|| {
        let s = cx.b.fresh("step");
        inputs.push(value_info(&s, DataType::Float, &[]));
        s
    });
    for s in fed {
        inputs.push(value_info(&s.name, DataType::Float, &opt(&s.dims)));
    }
    Feeds {
        inputs,
        labels,
        lr,
        step,
    }
}

/// The forward nodes, minus the Constant nodes of fed tensors, with training-mode rewrites (BN).
fn emit_forward(cx: &mut GradCx, model: &Model, reg: &Registry, fed: &[&Source]) -> Result<()> {
    let const_nodes: HashSet<usize> = fed
        .iter()
        .filter_map(|s| match s.origin {
            Origin::Constant(i) => Some(i),
            _ => None,
        })
        .collect();
    for (i, n) in model.graph().node.iter().enumerate() {
        if const_nodes.contains(&i) {
            continue;
        }
        let spec = reg.of(n).ok_or_else(|| GradError::UnsupportedOps {
            ops: vec![n.op().to_string()],
        })?;
        let replaced = match spec.forward_train {
            Some(f) => f(cx, n)?,
            None => false,
        };
        if !replaced {
            cx.b.graph.node.push(n.clone());
        }
    }
    Ok(())
}

fn sum(cx: &mut GradCx, parts: &[String]) -> String {
    if parts.len() == 1 {
        return parts[0].clone();
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    cx.op("Sum", "g_acc", &refs, vec![])
}

/// Reverse mode from dL/dlogits: each rule's local gradients, fan-out summed. Returns the partial gradients of
/// every value that needs one.
fn emit_backward(
    cx: &mut GradCx,
    model: &Model,
    reg: &Registry,
    logits: &str,
    loss: &Loss,
) -> Result<HashMap<String, Vec<String>>> {
    let mut grads: HashMap<String, Vec<String>> = HashMap::new();
    grads.insert(logits.to_string(), vec![loss.dlogits.clone()]);
    for n in model.graph().node.iter().rev() {
        if !n.input.iter().any(|i| cx.needs(i)) || !n.output.iter().any(|o| grads.contains_key(o)) {
            continue;
        }
        let Some(spec) = reg.of(n) else { continue };
        let Grad::Rule(f) = spec.grad else { continue };
        let mut dys = Vec::with_capacity(n.output.len());
        for o in &n.output {
            dys.push(grads.get(o).map(|parts| sum(cx, &parts.clone())));
        }
        let dxs = f(cx, n, &dys)?;
        for (inp, dx) in n.input.iter().zip(dxs) {
            if let Some(dx) = dx
                && cx.needs(inp)
            {
                grads.entry(inp.clone()).or_default().push(dx);
            }
        }
    }
    Ok(grads)
}

/// What the update phase adds: carried state, optimizer-slot inputs, gradient outputs.
struct Updates {
    state: Vec<StateTensor>,
    slot_inputs: Vec<ValueInfoProto>,
    grad_outputs: Vec<(String, String)>,
    grad_values: Vec<ValueInfoProto>,
    origins: HashMap<String, Origin>,
}

/// Optimizer updates of every trainable parameter (with their optimizer slots), then the running statistics.
fn emit_updates(
    cx: &mut GradCx,
    cfg: &TrainStepConfig,
    sel: &Selection,
    grads: &HashMap<String, Vec<String>>,
    feeds: &Feeds,
) -> Result<Updates> {
    let si = StepInputs::new(cx, &cfg.optimizer, feeds.lr.clone(), feeds.step.clone());
    let mut u = Updates {
        state: Vec::new(),
        slot_inputs: Vec::new(),
        grad_outputs: Vec::new(),
        grad_values: Vec::new(),
        origins: HashMap::new(),
    };
    for p in &sel.trainable {
        let gname = match grads.get(&p.name) {
            Some(parts) => sum(cx, parts),
            None => cx.zeros(&p.dims),
        };
        if cfg.emit_gradients {
            let out = name_output(cx, &gname, &format!("{}.grad", p.name), "");
            u.grad_values.push(value_info(&out, DataType::Float, &opt(&p.dims)));
            u.grad_outputs.push((p.name.clone(), out));
        }
        let slots: Vec<String> = cfg
            .optimizer
            .slots()
            .iter()
            .map(|s| cx.b.fresh(&format!("{}.{s}", p.name)))
            .collect();
        let (w1, new_slots) = update(cx, &cfg.optimizer, &si, &p.name, &gname, &slots, p.dims.len());
        u.origins.insert(p.name.clone(), p.origin.clone());
        let out = name_output(cx, &w1, &p.name, ".next");
        u.state.push(StateTensor {
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
            u.slot_inputs.push(value_info(slot_in, DataType::Float, &opt(&p.dims)));
            let out = name_output(cx, &slot_out, slot_in, ".next");
            u.state.push(StateTensor {
                name: p.name.clone(),
                kind,
                input: slot_in.clone(),
                output: out,
                dims: p.dims.clone(),
                init: vec![0.0; p.values.len()],
            });
        }
    }
    running_updates(cx, sel, &mut u)?;
    Ok(u)
}

/// The BN running-statistic updates the training-mode forwards emitted, as state outputs.
fn running_updates(cx: &mut GradCx, sel: &Selection, u: &mut Updates) -> Result<()> {
    let updates: HashMap<String, String> = cx.state_updates.iter().cloned().collect();
    for (src, kind) in &sel.running {
        let upd = updates.get(&src.name).cloned().ok_or_else(|| {
            GradError::Config(format!(
                "running statistic '{}' is shared in a way training-mode BatchNorm cannot update",
                src.name
            ))
        })?;
        u.origins.insert(src.name.clone(), src.origin.clone());
        let out = name_output(cx, &upd, &src.name, ".next");
        u.state.push(StateTensor {
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
    Ok(())
}

/// The finished, validated train-step model, at the source's IR (clamped to what ORT loads) and opset.
fn finish(
    cx: GradCx,
    model: &Model,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> Result<crate::proto::ModelProto> {
    let opset = cx.opset;
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
    Ok(proto)
}

fn opt(d: &[i64]) -> Vec<Option<i64>> {
    d.iter().map(|&x| Some(x)).collect()
}

/// Give a graph output a readable name, `<tensor><suffix>` (`w.next`, `w.grad`), through an Identity.
fn name_output(cx: &mut GradCx, value: &str, tensor: &str, suffix: &str) -> String {
    let out = cx.b.fresh(&format!("{tensor}{suffix}"));
    let node_name = cx.b.fresh(&format!("{out}/Identity"));
    cx.b.graph
        .node
        .push(build::node("Identity", &node_name, &[value], &[&out], vec![]));
    out
}
