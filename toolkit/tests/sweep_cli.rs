//! `ratio sweep` / `ratio report` end to end on the real MNIST CNN checkpoint with the steps this build has:
//! every step is a real child process (convert, inspect, bench on ONNX Runtime), every record is checked
//! against the files on disk, and resume, corruption, foreign run directories and shards are exercised for real.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reports::schema::Record;
use reports::schema::sweep::{StepStatus, SweepStep, SweepSummary};

/// `shared/` sits above the checkout (worktrees nest one level deeper than the main checkout).
fn model() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared/models/mnist_cnn.onnx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("shared/models/mnist_cnn.onnx not found above {}", here.display()))
}

fn ratio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ratio"))
}

/// A small grid: 1:1 and 2:1 (last) × 2 seeds, steps that exist in every build since convert landed.
fn sweep_args(run_dir: &Path, extra_bench: &str) -> Vec<String> {
    [
        "sweep",
        "--model",
        model().to_str().unwrap(),
        "--data",
        "mnist",
        "--ratios",
        "1:1,2:1",
        "--policies",
        "last",
        "--seeds",
        "2",
        "--steps",
        "convert,inspect,bench",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--step-args=bench=--iters 5 --warmup 1 {extra_bench}"),
        "--run-dir".into(),
        run_dir.display().to_string(),
    ])
    .collect()
}

fn run(args: &[String]) -> Output {
    ratio().args(args).output().expect("ratio runs")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn record(path: &Path) -> (Record, SweepStep) {
    let r = Record::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let b = r.body_as::<SweepStep>().unwrap();
    (r, b)
}

fn sha256(path: &Path) -> String {
    converters::ir::model::sha256_file(path).unwrap()
}

#[test]
fn sweep_tiny_end_to_end_records_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let o = run(&sweep_args(&rd, ""));
    assert!(o.status.success(), "{}", text(&o));

    let variants = ["r1-1_none_s0", "r1-1_none_s1", "r2-1_last_s0", "r2-1_last_s1"];
    for v in variants {
        for step in ["convert", "inspect", "bench"] {
            let (rec, body) = record(&rd.join("variants").join(v).join(format!("{step}.json")));
            assert_eq!(rec.schema, "ratio/sweep-step/v1");
            assert_eq!(body.status, StepStatus::Ok, "{v}/{step}");
            assert_eq!(body.exit_code, Some(0));
            assert_eq!(rec.command[1], step);
            // Recorded hashes are the files' hashes.
            for f in rec.inputs.iter().chain(&rec.outputs) {
                let p = if Path::new(&f.path).is_absolute() {
                    PathBuf::from(&f.path)
                } else {
                    rd.join(&f.path)
                };
                assert_eq!(sha256(&p), f.sha256, "{}", f.path);
            }
            assert_eq!(
                rec.provenance.ort_version.as_deref(),
                if step == "convert" {
                    rec.provenance.ort_version.as_deref()
                } else {
                    Some("1.31.1")
                }
            );
        }
        let (rec, _) = record(&rd.join("variants").join(v).join("convert.json"));
        assert_eq!(
            rec.inputs[0].sha256,
            "0faaecc40ad7d87a9aae98c636c6686fdd7af3c887849216c5c3e39886199150"
        );
    }

    let summary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap()).unwrap();
    let s: SweepSummary = summary.body_as().unwrap();
    assert_eq!((s.steps_ok, s.steps_failed, s.steps_missing), (12, 0, 0));
    let base = s.cells.iter().find(|c| c.ratio == "1:1").unwrap();
    let two = s.cells.iter().find(|c| c.ratio == "2:1").unwrap();
    // The MNIST CNN has 4 ReLUs; 2:1 "last" with stem and head protected removes exactly one.
    assert_eq!(base.metrics["relus"].mean, 4.0);
    assert_eq!(two.metrics["relus"].mean, 3.0);
    // Removing a ReLU changes neither parameters nor MACs.
    assert_eq!(base.metrics["params"].mean, 390_410.0);
    assert_eq!(two.metrics["params"].mean, base.metrics["params"].mean);
    assert_eq!(base.metrics["latency_p50_ms"].n, 2);
    assert!(
        s.comparisons
            .iter()
            .any(|c| c.metric == "latency_p50_ms" && c.n_pairs == 2)
    );
    assert!(!s.conclusions.is_empty());

    let html = std::fs::read_to_string(rd.join("report/index.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Latency p50 by variant"));
    assert!(html.contains("390.4 k"), "parameter column");
    let md = std::fs::read_to_string(rd.join("report/report.md")).unwrap();
    assert!(md.contains("| mnist_cnn | 2:1 | last | 2/2 |"), "{md}");
    for f in ["latency_by_variant.svg", "latency_by_variant.png"] {
        assert!(
            std::fs::metadata(rd.join("report/figures").join(f)).unwrap().len() > 1000,
            "{f}"
        );
    }

    // Rerunning the same command reuses every step.
    let o = run(&sweep_args(&rd, ""));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("0 ran, 12 reused"),
        "{}",
        text(&o)
    );
}

#[test]
fn sweep_corrupted_or_tampered_records_are_reported_and_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    assert!(run(&sweep_args(&rd, "")).status.success());
    let vdir = rd.join("variants/r2-1_last_s1");
    // A torn record, and a model changed after its record was written.
    std::fs::write(vdir.join("bench.json"), "{\"schema\": \"ratio/sweep-st").unwrap();
    let conv = rd.join("variants/r1-1_none_s0/converted.onnx");
    let mut bytes = std::fs::read(&conv).unwrap();
    bytes.push(0);
    std::fs::write(&conv, bytes).unwrap();

    let o = run(&sweep_args(&rd, ""));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        err.contains("redoing  r2-1_last_s1/bench: record not trusted") && err.contains("not valid JSON"),
        "{err}"
    );
    assert!(
        err.contains("redoing  r1-1_none_s0/convert: record not trusted") && err.contains("changed since the step ran"),
        "{err}"
    );
    // Convert was redone; its dependents saw a new input file only if the bytes differ: the rewrite restores them.
    assert!(err.contains("2 untrusted records redone"), "{err}");
    let (_, body) = record(&vdir.join("bench.json"));
    assert_eq!(body.status, StepStatus::Ok);
    let (rec, _) = record(&rd.join("variants/r1-1_none_s0/convert.json"));
    assert_eq!(rec.outputs[0].sha256, sha256(&conv));

    // `ratio report` never uses an untrusted record: it lists it instead.
    std::fs::write(vdir.join("inspect.json"), "not json").unwrap();
    let o = ratio().arg("report").arg(&rd).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("record not used: r2-1_last_s1/inspect"),
        "{}",
        text(&o)
    );
    let s: SweepSummary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap())
        .unwrap()
        .body_as()
        .unwrap();
    assert_eq!(s.cells.iter().find(|c| c.ratio == "2:1").unwrap().metrics["relus"].n, 1);
    assert!(
        std::fs::read_to_string(rd.join("report/report.md"))
            .unwrap()
            .contains("Records not used")
    );
}

/// Children of `pid` (Linux).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn sweep_resumes_after_a_killed_step_and_an_interrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    // Each bench lasts ~2 s, long enough to be caught running.
    let args = sweep_args(&rd, "--duration 2");
    let args: Vec<String> = args.into_iter().map(|a| a.replace("--iters 5 ", "")).collect();
    let mut sweep = ratio()
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        assert!(Instant::now() < deadline, "no bench child appeared");
        assert!(
            sweep.try_wait().unwrap().is_none(),
            "sweep ended early: {:?}",
            sweep.wait_with_output().unwrap()
        );
        if let Some(c) = children(sweep.id())
            .into_iter()
            .find(|c| cmdline(*c).contains(" bench "))
        {
            break c;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let victim_cmd = cmdline(victim);
    assert!(
        Command::new("kill")
            .args(["-9", &victim.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let killed_variant = victim_cmd
        .split("/variants/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();

    // Then interrupt the whole sweep while a later step runs: that step leaves no record at all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "sweep made no further progress");
        if children(sweep.id())
            .into_iter()
            .any(|c| cmdline(c).contains(" bench ") && !cmdline(c).contains(&killed_variant))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let orphans = children(sweep.id());
    sweep.kill().unwrap();
    sweep.wait().unwrap();
    for c in orphans {
        let _ = Command::new("kill").args(["-9", &c.to_string()]).status();
    }

    let (rec, body) = record(&rd.join("variants").join(&killed_variant).join("bench.json"));
    assert_eq!(body.status, StepStatus::Failed);
    assert_eq!(body.signal, Some(9), "{rec:?}");

    let o = run(&args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        err.contains(&format!("retrying {killed_variant}/bench (failed before)")),
        "{err}"
    );
    assert!(err.contains(&format!("reused   {killed_variant}/convert")), "{err}");
    assert!(err.contains(" 0 failed, 0 blocked"), "{err}");
    let s: SweepSummary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap())
        .unwrap()
        .body_as()
        .unwrap();
    assert_eq!((s.steps_ok, s.steps_failed, s.steps_missing), (12, 0, 0));
}

#[test]
fn sweep_refuses_a_foreign_run_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    assert!(run(&sweep_args(&rd, "")).status.success());
    let mut other = sweep_args(&rd, "");
    let i = other.iter().position(|a| a == "--seeds").unwrap();
    other[i + 1] = "3".into();
    let o = run(&other);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err.contains("belongs to a different sweep") && err.contains("seeds: 2 → 3"),
        "{err}"
    );
    assert!(!rd.join("variants/r1-1_none_s2").exists());

    // A directory with other content and no manifest is not written into.
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "mine").unwrap();
    let o = run(&sweep_args(&junk, ""));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has no manifest.json"),
        "{}",
        text(&o)
    );
}

#[test]
fn sweep_slurm_script_shards_merge_in_report() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let mut args = sweep_args(&rd, "");
    args.extend([
        "--emit".into(),
        "slurm".into(),
        "--tasks".into(),
        "2".into(),
        "--sbatch=--time=00:10:00".into(),
    ]);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let script_path = rd.join("sweep.sbatch");
    let script = std::fs::read_to_string(&script_path).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-1\n") && script.contains("#SBATCH --time=00:10:00\n"),
        "{script}"
    );
    assert!(script.contains("--shard \"${SLURM_ARRAY_TASK_ID}/2\""), "{script}");
    assert!(!rd.join("variants").exists(), "emitting runs nothing");

    // Run the two array tasks the way Slurm would (the script is plain bash).
    for task in ["0", "1"] {
        let o = Command::new("bash")
            .arg(&script_path)
            .env("SLURM_ARRAY_TASK_ID", task)
            .output()
            .unwrap();
        assert!(o.status.success(), "task {task}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("shard {task}/2")));
    }
    // Task 0 owns variants 0 and 2, task 1 owns 1 and 3.
    let (r0, _) = record(&rd.join("variants/r1-1_none_s0/bench.json"));
    let (r1, _) = record(&rd.join("variants/r1-1_none_s1/bench.json"));
    assert!(r0.command.len() > 2 && r1.command.len() > 2);
    let o = ratio().arg("report").arg(&rd).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let s: SweepSummary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap())
        .unwrap()
        .body_as()
        .unwrap();
    assert_eq!((s.steps_ok, s.steps_missing), (12, 0));
    assert!(s.cells.iter().all(|c| c.metrics["latency_p50_ms"].n == 2));
}

#[test]
fn sweep_bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let cases: [(&[&str], &str); 6] = [
        (&["--ratios", "2:1"], "must include 1:1"),
        (&["--ratios", "1:1,1:2"], "need N ≥ M ≥ 1"),
        (&["--policies", "middle"], "\"middle\" is not one of"),
        (&["--shard", "2/2"], "need 0 ≤ i < n"),
        (&["--steps", "convert,dance"], "step \"dance\" is not one of"),
        (&["--model", "/nonexistent/model.onnx"], "no such file"),
    ];
    for (extra, want) in cases {
        let mut args = sweep_args(&rd, "");
        for pair in extra.chunks(2) {
            if let Some(i) = args.iter().position(|a| a == pair[0]) {
                args[i + 1] = pair[1].into();
            } else {
                args.extend(pair.iter().map(|s| s.to_string()));
            }
        }
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{extra:?}: {}",
            text(&o)
        );
    }
    let o = ratio().arg("report").arg(tmp.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no sweep manifest"),
        "{}",
        text(&o)
    );
}

/// The CI sweep of the issue: 2 variants (1:1 and 2:1 last) of a narrow ResNet-20 on real sklearn digits, one
/// seed, one epoch: model → train the 1:1 base → convert → fine-tune → inspect → eval, all as child processes.
#[test]
fn sweep_digits_train_and_eval_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let digits = model().parent().unwrap().parent().unwrap().join("data/digits.csv.gz");
    let args: Vec<String> = [
        "sweep",
        "--model",
        "resnet20",
        "--data",
        digits.to_str().unwrap(),
        "--preset",
        "digits",
        "--ratios",
        "1:1,2:1",
        "--policies",
        "last",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--steps",
        "convert,train,inspect,eval",
        "--step-args=model=--width 0.25",
        "--run-dir",
        rd.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = run(&args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    if err.contains("is not accepted by this build") {
        // Training and evaluation are built on other branches; until they are merged this names what is missing.
        eprintln!("\n!!!!!!!! sweep_digits_train_and_eval_end_to_end NOT RUN: {err} !!!!!!!!\n");
        return;
    }
    assert!(o.status.success(), "{}", text(&o));
    let s: SweepSummary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap())
        .unwrap()
        .body_as()
        .unwrap();
    assert_eq!((s.steps_failed, s.steps_missing), (0, 0));
    for c in &s.cells {
        let acc = c.metrics["accuracy"].mean;
        assert!((0.0..=1.0).contains(&acc), "{c:?}");
    }
    assert!(rd.join("base/train/model.onnx").is_file() && rd.join("variants/r2-1_last_s0/train/model.onnx").is_file());
    assert!(
        std::fs::read_to_string(rd.join("report/report.md"))
            .unwrap()
            .contains("top-1 accuracy")
    );
}
