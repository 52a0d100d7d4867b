//! `ratio inspect model.onnx`: op histogram, activation slots with block/stage/role, conv:ReLU ratio per
//! block/stage/global, and parameters and MACs per layer. `--json` prints the same as one JSON document.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use converters::act::ActKind;
use converters::ir::Model;
use converters::ir::attr::NodeExt;
use converters::shapes::{LayerCost, layer_costs};
use converters::slots;
use reports::schema::FileRef;
use reports::schema::inspect::{InspectBody, LayerCost as LayerCostInfo, ScopeRatios, SlotInfo};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The ONNX model to describe.
    pub model: PathBuf,
    /// Activation kinds to treat as slots (comma-separated): relu, relu6, leakyrelu, prelu.
    #[arg(long, value_delimiter = ',', default_value = "relu")]
    pub act: Vec<String>,
    #[command(flatten)]
    pub record: super::args::OutputArgs,
}

pub fn parse_acts(list: &[String]) -> Result<Vec<ActKind>> {
    list.iter()
        .map(|a| {
            ActKind::parse(a.trim()).ok_or_else(|| {
                anyhow::anyhow!("unknown activation kind '{a}' (expected relu, relu6, leakyrelu or prelu)")
            })
        })
        .collect()
}

pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let acts = parse_acts(&args.act)?;
    let model = Model::load(&args.model)?;
    let g = model.graph();
    let st = slots::detect(g, &acts);
    let mut op_histogram = BTreeMap::new();
    for n in &g.node {
        *op_histogram.entry(n.op().to_string()).or_insert(0) += 1;
    }
    let layers = layer_costs(&model);
    let convs_total = g.node.iter().filter(|n| n.op() == "Conv").count();
    let mut per_block = vec![(0, 0); st.num_blocks];
    let mut per_stage = vec![(0, 0); st.num_stages];
    for s in &st.slots {
        let convs = s.feeders.len();
        per_block[s.block].0 += convs;
        per_block[s.block].1 += 1;
        per_stage[s.stage].0 += convs;
        per_stage[s.stage].1 += 1;
    }
    let report = InspectBody {
        model: args.model.display().to_string(),
        sha256: model.source_sha256.clone().unwrap_or_default(),
        ir_version: model.proto.ir_version.unwrap_or(0),
        opset: model.opset(),
        producer: format!(
            "{} {}",
            model.proto.producer_name.as_deref().unwrap_or(""),
            model.proto.producer_version.as_deref().unwrap_or("")
        )
        .trim()
        .to_string(),
        nodes: g.node.len(),
        op_histogram,
        ratios: ScopeRatios {
            global: (convs_total, st.slots.len()),
            per_block,
            per_stage,
        },
        params_total: layers.iter().map(|l| l.params).sum(),
        macs_total: layers.iter().map(|l| l.macs).sum(),
        slots: st.slots.iter().map(slot_info).collect(),
        layers: layers.iter().map(layer_info).collect(),
    };
    if args.record.json.is_some() {
        let mut rec = crate::commands::record(&report, crate::provenance::no_runtime())?;
        rec.inputs.push(FileRef {
            path: report.model.clone(),
            sha256: report.sha256.clone(),
        });
        args.record.write(&rec)?;
    }
    if !args.record.to_stdout() {
        crate::commands::emit(&render(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn slot_info(s: &slots::Slot) -> SlotInfo {
    SlotInfo {
        name: s.name.clone(),
        kind: s.kind.as_str().to_string(),
        input: s.input.clone(),
        output: s.output.clone(),
        feeders: s.feeders.clone(),
        depth: s.depth,
        block: s.block,
        stage: s.stage,
        role: format!("{:?}", s.role).to_lowercase(),
    }
}

fn layer_info(l: &LayerCost) -> LayerCostInfo {
    LayerCostInfo {
        name: l.name.clone(),
        op: l.op.clone(),
        params: l.params,
        macs: l.macs,
        output_shape: l.output_shape.clone(),
    }
}

fn render(r: &InspectBody) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{}  (sha256 {}…)", r.model, &r.sha256[..12.min(r.sha256.len())]);
    let _ = writeln!(
        s,
        "IR {}  opset {}  producer '{}'  {} nodes",
        r.ir_version, r.opset, r.producer, r.nodes
    );
    let _ = writeln!(
        s,
        "parameters {}  MACs/sample {}",
        crate::commands::human(r.params_total as f64),
        crate::commands::human(r.macs_total as f64)
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "ops: {}",
        r.op_histogram
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>4}  {:<40} {:<9} {:>5} {:>5}  {:<5}  fed by",
        "#", "activation", "kind", "block", "stage", "role"
    );
    for slot in &r.slots {
        let _ = writeln!(
            s,
            "{:>4}  {:<40} {:<9} {:>5} {:>5}  {:<5}  {}",
            slot.depth,
            slot.name,
            slot.kind,
            slot.block,
            slot.stage,
            slot.role,
            slot.feeders.join(", ")
        );
    }
    let _ = writeln!(s);
    let (c, a) = r.ratios.global;
    let _ = writeln!(s, "conv:activation  global {c}:{a}");
    let fmt = |v: &[(usize, usize)]| v.iter().map(|(c, a)| format!("{c}:{a}")).collect::<Vec<_>>().join(" ");
    let _ = writeln!(s, "  per stage  {}", fmt(&r.ratios.per_stage));
    let _ = writeln!(s, "  per block  {}", fmt(&r.ratios.per_block));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<40} {:<18} {:>12} {:>14}  output",
        "layer", "op", "params", "MACs"
    );
    for l in &r.layers {
        let _ = writeln!(
            s,
            "{:<40} {:<18} {:>12} {:>14}  {:?}",
            l.name, l.op, l.params, l.macs, l.output_shape
        );
    }
    s
}
