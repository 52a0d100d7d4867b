//! Summaries of ONNX Runtime's profiler trace (Chrome trace JSON): time per node and per op type.
//!
//! Each kernel execution is a `cat: "Node"` event named `<node>_kernel_time` with `dur` in microseconds and
//! `args.op_name` / `args.provider`; each `Session::run` is a `cat: "Session"` event named `model_run`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::error::{Result, RuntimeError};

/// The summary types are the bench record's own, so a profile goes into a record without a copy.
pub use reports::schema::bench::{NodeTime, OpTime, ProfileSummary, ProviderTime};

/// Read the trace at `path` and keep the `top` slowest nodes; op types are all listed, slowest first. The first
/// `skip_runs` runs are left out (warm-up: first runs pay for allocation and kernel selection).
pub fn summarize_profile(path: &Path, top: usize, skip_runs: usize) -> Result<ProfileSummary> {
    let err = |reason: String| RuntimeError::Profile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
    summarize_events(&events, top, skip_runs).map_err(err)
}

pub fn summarize_events(
    events: &[serde_json::Value],
    top: usize,
    skip_runs: usize,
) -> std::result::Result<ProfileSummary, String> {
    let mut run_windows: Vec<(f64, f64)> = events
        .iter()
        .filter(|e| e["cat"] == "Session" && e["name"] == "model_run")
        .map(|e| (e["ts"].as_f64().unwrap_or(0.0), e["dur"].as_f64().unwrap_or(0.0)))
        .collect();
    run_windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    if skip_runs >= run_windows.len() && skip_runs > 0 {
        return Err(format!(
            "the trace holds {} runs, all of them skipped as warm-up ({skip_runs})",
            run_windows.len()
        ));
    }
    // Kernels start inside their run, so everything before the first kept run's start belongs to warm-up.
    let kept_from = run_windows.get(skip_runs).map(|w| w.0).unwrap_or(f64::NEG_INFINITY);
    let kept = &run_windows[skip_runs.min(run_windows.len())..];
    let runs = kept.len();
    let run_total: f64 = kept.iter().map(|w| w.1).sum();
    // The trace sometimes repeats an event verbatim (same node, same start); count each (name, ts) once.
    let mut seen = HashSet::new();
    let mut nodes: BTreeMap<String, (String, String, usize, f64)> = BTreeMap::new();
    for e in events {
        let cat = e["cat"].as_str().unwrap_or("");
        let name = e["name"].as_str().unwrap_or("");
        let dur = e["dur"].as_f64().unwrap_or(0.0);
        match cat {
            "Node" if e["ts"].as_f64().unwrap_or(0.0) >= kept_from => {
                let Some(node) = name.strip_suffix("_kernel_time") else {
                    continue;
                };
                if !seen.insert((name.to_string(), e["ts"].as_i64().unwrap_or(-1))) {
                    continue;
                }
                let op = e["args"]["op_name"].as_str().unwrap_or("?").to_string();
                let provider = e["args"]["provider"].as_str().unwrap_or("?").to_string();
                let entry = nodes.entry(node.to_string()).or_insert((op, provider, 0, 0.0));
                entry.2 += 1;
                entry.3 += dur;
            }
            _ => {}
        }
    }
    if nodes.is_empty() {
        return Err("no kernel events (was the session run with profiling on?)".into());
    }
    let kernel_total: f64 = nodes.values().map(|n| n.3).sum();
    let frac = |us: f64| if kernel_total > 0.0 { us / kernel_total } else { 0.0 };
    let mut ops: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (op, _, calls, us) in nodes.values() {
        let o = ops.entry(op.clone()).or_default();
        o.0 += calls;
        o.1 += us;
    }
    let mut by_op: Vec<OpTime> = ops
        .into_iter()
        .map(|(op_type, (calls, total_us))| OpTime {
            op_type,
            calls,
            total_us,
            fraction: frac(total_us),
        })
        .collect();
    by_op.sort_by(|a, b| b.total_us.total_cmp(&a.total_us).then(a.op_type.cmp(&b.op_type)));
    let mut providers: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (_, provider, _, us) in nodes.values() {
        let p = providers.entry(provider.clone()).or_default();
        p.0 += 1;
        p.1 += us;
    }
    let mut by_provider: Vec<ProviderTime> = providers
        .into_iter()
        .map(|(provider, (nodes, total_us))| ProviderTime {
            provider,
            nodes,
            total_us,
            fraction: frac(total_us),
        })
        .collect();
    by_provider.sort_by(|a, b| b.total_us.total_cmp(&a.total_us).then(a.provider.cmp(&b.provider)));
    let mut top_nodes: Vec<NodeTime> = nodes
        .into_iter()
        .map(|(node, (op_type, provider, calls, total_us))| NodeTime {
            node,
            op_type,
            provider,
            calls,
            total_us,
            mean_us: total_us / calls as f64,
            fraction: frac(total_us),
        })
        .collect();
    top_nodes.sort_by(|a, b| b.total_us.total_cmp(&a.total_us).then(a.node.cmp(&b.node)));
    top_nodes.truncate(top);
    Ok(ProfileSummary {
        runs,
        run_total_us: run_total,
        kernel_total_us: kernel_total,
        by_op,
        by_provider,
        top_nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, op: &str, ts: i64, dur: f64) -> serde_json::Value {
        json!({"cat": "Node", "name": format!("{name}_kernel_time"), "ts": ts, "dur": dur,
               "args": {"op_name": op, "provider": "CPUExecutionProvider"}})
    }

    #[test]
    fn groups_by_node_and_op_and_drops_duplicates() {
        let events = vec![
            json!({"cat": "Session", "name": "session_initialization", "dur": 9999.0}),
            json!({"cat": "Session", "name": "model_run", "ts": 0, "dur": 100.0}),
            json!({"cat": "Session", "name": "model_run", "ts": 150, "dur": 110.0}),
            node("conv1", "Conv", 1, 30.0),
            node("conv1", "Conv", 1, 30.0), // verbatim repeat
            node("conv1", "Conv", 200, 34.0),
            node("conv2", "Conv", 2, 20.0),
            node("conv2", "Conv", 202, 20.0),
            node("relu", "Relu", 3, 8.0),
            node("relu", "Relu", 203, 8.0),
            json!({"cat": "Node", "name": "conv1_fence_before", "ts": 0, "dur": 1.0}),
        ];
        let s = summarize_events(&events, 2, 0).unwrap();
        assert_eq!(s.runs, 2);
        assert_eq!(s.run_total_us, 210.0);
        assert_eq!(s.kernel_total_us, 120.0);
        assert_eq!(s.by_op[0].op_type, "Conv");
        assert_eq!((s.by_op[0].calls, s.by_op[0].total_us), (4, 104.0));
        assert!((s.by_op[1].fraction - 16.0 / 120.0).abs() < 1e-12);
        assert_eq!(s.top_nodes.len(), 2);
        assert_eq!((s.top_nodes[0].node.as_str(), s.top_nodes[0].mean_us), ("conv1", 32.0));
        assert_eq!(s.top_nodes[1].node, "conv2");
        assert_eq!(s.by_provider.len(), 1);
        assert_eq!((s.by_provider[0].nodes, s.by_provider[0].fraction), (3, 1.0));

        // Skipping the first run keeps only kernels that start in the second (ts ≥ 150).
        let s = summarize_events(&events, 5, 1).unwrap();
        assert_eq!((s.runs, s.run_total_us, s.kernel_total_us), (1, 110.0, 62.0));
        assert_eq!(s.top_nodes[0].calls, 1);
        assert!(
            summarize_events(&events, 5, 2)
                .unwrap_err()
                .contains("all of them skipped")
        );
    }

    #[test]
    fn a_trace_without_kernels_is_an_error() {
        let e = summarize_events(&[json!({"cat": "Session", "name": "model_run", "dur": 1.0})], 5, 0).unwrap_err();
        assert!(e.contains("no kernel events"));
    }
}
