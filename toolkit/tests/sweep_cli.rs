//! `ratio sweep` / `ratio report` end to end on the real MNIST CNN checkpoint with the steps this build has:
//! every step is a real child process (convert, inspect, bench on ONNX Runtime), every record is checked
//! against the files on disk, and resume, corruption, foreign run directories and shards are exercised for real.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use converters::ir::model::sha256_file;
use ratio_testkit::{Cli, Run, shared};
use reports::schema::Record;
use reports::schema::bench::BenchBody;
use reports::schema::eval::EvalBody;
use reports::schema::sweep::{Stage, StepStatus, SweepStep, SweepSummary};
use reports::schema::train::TrainBody;

const MNIST_SHA: &str = "0faaecc40ad7d87a9aae98c636c6686fdd7af3c887849216c5c3e39886199150";

fn model() -> PathBuf {
    shared("models/mnist_cnn.onnx")
}

fn ratio() -> Cli {
    ratio_testkit::ratio!()
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

fn run(args: &[String]) -> Run {
    ratio().args(args).run()
}

fn record(path: &Path) -> (Record, SweepStep) {
    let r = Record::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let b = r.body_as::<SweepStep>().unwrap();
    (r, b)
}

#[test]
fn sweep_tiny_end_to_end_records_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let o = run(&sweep_args(&rd, ""));
    o.success();

    let variants = ["r1-1_none_s0", "r1-1_none_s1", "r2-1_last_s0", "r2-1_last_s1"];
    for v in variants {
        for step in ["convert", "inspect", "bench"] {
            let (rec, body) = record(&rd.join("variants").join(v).join(format!("{step}.json")));
            assert_eq!(rec.schema, "ratio/sweep-step/v2");
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
                assert_eq!(sha256_file(&p).unwrap(), f.sha256, "{}", f.path);
            }
            // The step record names the ONNX Runtime of the sweep's children; the child's own record names the one
            // it loaded, and only a command that ran a model loaded one (a 1:1 conversion has nothing to check).
            assert_eq!(rec.provenance.ort_version.as_deref(), Some("1.31.1"), "{v}/{step}");
            let child = body.output.as_ref().expect("every step printed its record");
            assert_eq!(child.kind, step);
            let ran_a_model = step == "bench" || (step == "convert" && v.starts_with("r2-1"));
            assert_eq!(
                child.provenance.ort_version.as_deref(),
                ran_a_model.then_some("1.31.1"),
                "{v}/{step}"
            );
        }
        let (rec, _) = record(&rd.join("variants").join(v).join("convert.json"));
        assert_eq!(rec.inputs[0].sha256, MNIST_SHA);
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
    // Latency is named by its bench group, and every bench interleaved the 1:1 model with the variant.
    let lat = "latency_p50_ms/b1/t1";
    assert_eq!(base.metrics[lat].n, 2);
    assert!(s.comparisons.iter().any(|c| c.metric == lat && c.n_pairs == 2));
    let two_lat = s.latency_ratios.iter().find(|l| l.ratio == "2:1").unwrap();
    assert_eq!(
        (two_lat.seeds.clone(), two_lat.pairs, two_lat.batch, two_lat.threads),
        (vec![0, 1], 10, 1, 1)
    );
    assert!(two_lat.ci_low <= two_lat.median && two_lat.median <= two_lat.ci_high);
    let (_, bench) = record(&rd.join("variants/r2-1_last_s0/bench.json"));
    let bench: BenchBody = bench.output.unwrap().body_as().unwrap();
    assert_eq!(bench.models.len(), 2);
    assert_eq!(
        bench.models[0].sha256.as_deref(),
        Some(MNIST_SHA),
        "the 1:1 reference runs first"
    );
    assert!(
        s.conclusions
            .iter()
            .any(|c| c.starts_with("latency (batch 1, 1 thread): 2:1 (last)") && c.contains("CI [")),
        "{:?}",
        s.conclusions
    );

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
    o.success();
    assert!(o.stderr.contains("0 ran, 12 reused"), "{}", o.text());
}

#[test]
fn sweep_corrupted_or_tampered_records_are_reported_and_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    run(&sweep_args(&rd, "")).success();
    let vdir = rd.join("variants/r2-1_last_s1");
    // A torn record, and a model changed after its record was written.
    std::fs::write(vdir.join("bench.json"), "{\"schema\": \"ratio/sweep-st").unwrap();
    let conv = rd.join("variants/r1-1_none_s0/converted.onnx");
    let mut bytes = std::fs::read(&conv).unwrap();
    bytes.push(0);
    std::fs::write(&conv, bytes).unwrap();

    let o = run(&sweep_args(&rd, ""));
    let err = &o.stderr;
    o.success();
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
    assert_eq!(rec.outputs[0].sha256, sha256_file(&conv).unwrap());

    // `ratio report` never uses an untrusted record: it lists it instead.
    std::fs::write(vdir.join("inspect.json"), "not json").unwrap();
    let o = ratio().arg("report").arg(&rd).run();
    o.success();
    assert!(
        o.stderr.contains("record not used: r2-1_last_s1/inspect"),
        "{}",
        o.text()
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
        .command()
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
    let err = &o.stderr;
    o.success();
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
    run(&sweep_args(&rd, "")).success();
    let mut other = sweep_args(&rd, "");
    let i = other.iter().position(|a| a == "--seeds").unwrap();
    other[i + 1] = "3".into();
    let o = run(&other);
    let err = &o.stderr;
    assert_eq!(o.code, Some(2), "{}", o.text());
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
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("has no manifest.json"), "{}", o.text());
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
    o.success();
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
        let o = Cli::new("bash")
            .arg(&script_path)
            .env("SLURM_ARRAY_TASK_ID", task)
            .run();
        o.success();
        assert!(
            o.stderr.contains(&format!("shard {task}/2")),
            "task {task}: {}",
            o.text()
        );
    }
    // Task 0 owns variants 0 and 2, task 1 owns 1 and 3.
    let (r0, _) = record(&rd.join("variants/r1-1_none_s0/bench.json"));
    let (r1, _) = record(&rd.join("variants/r1-1_none_s1/bench.json"));
    assert!(r0.command.len() > 2 && r1.command.len() > 2);
    let o = ratio().arg("report").arg(&rd).run();
    o.success();
    let s: SweepSummary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap())
        .unwrap()
        .body_as()
        .unwrap();
    assert_eq!((s.steps_ok, s.steps_missing), (12, 0));
    assert!(s.cells.iter().all(|c| c.metrics["latency_p50_ms/b1/t1"].n == 2));
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
        assert_eq!(o.code, Some(2), "{extra:?}: {}", o.text());
        assert!(o.stderr.contains(want), "{extra:?}: {}", o.text());
    }
    let o = ratio().arg("report").arg(tmp.path()).run();
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("no sweep manifest"), "{}", o.text());
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
    o.success();
    let s: SweepSummary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap())
        .unwrap()
        .body_as()
        .unwrap();
    assert_eq!((s.steps_ok, s.steps_failed, s.steps_missing), (10, 0, 0));
    // Chance is 10% on ten classes; one epoch of the narrow ResNet-20 gets well above it, and so does its 2:1
    // variant after fine-tuning from the trained base.
    for c in &s.cells {
        let acc = c.metrics["accuracy"].mean;
        assert!(acc > CHANCE_BOUND, "{c:?}");
    }
    assert!(rd.join("base/train/model.onnx").is_file() && rd.join("variants/r2-1_last_s0/train/model.onnx").is_file());
    // The per-sample test pairs the variant's evaluation with 1:1's on the same samples.
    let (_, ev) = record(&rd.join("variants/r2-1_last_s0/eval.json"));
    let ev: EvalBody = ev.output.unwrap().body_as().unwrap();
    let t = &s.sample_tests[0];
    assert_eq!(
        (t.ratio.as_str(), t.seeds.clone(), t.samples),
        ("2:1", vec![0], ev.data.evaluated)
    );
    let acc_diff = s.cells[1].metrics["accuracy"].mean - s.cells[0].metrics["accuracy"].mean;
    assert!((t.diff - acc_diff).abs() < 1e-12, "{t:?}");
    assert!(t.ci_low <= t.diff && t.diff <= t.ci_high);
    // Stages: what the trainer measured before its first step is the converted model's accuracy.
    let (_, tr) = record(&rd.join("variants/r2-1_last_s0/train.json"));
    let tr: TrainBody = tr.output.unwrap().body_as().unwrap();
    let conv = s
        .stages
        .iter()
        .find(|x| x.ratio == "2:1" && x.stage == Stage::Converted)
        .unwrap();
    assert_eq!(conv.accuracy.values, vec![tr.initial_val_acc.unwrap()]);
    assert!(s.stages.iter().any(|x| x.ratio == "1:1" && x.stage == Stage::Source));
    let md = std::fs::read_to_string(rd.join("report/report.md")).unwrap();
    assert!(
        md.contains("top-1 accuracy") && md.contains("Accuracy at each stage"),
        "{md}"
    );
    // Per-step training curves: one logged point per step here (digits: fewer than 50 steps per epoch).
    assert!(md.contains("figures/training_loss.png"), "{md}");
    let steps = std::fs::read_to_string(rd.join("variants/r2-1_last_s0/train/metrics.jsonl")).unwrap();
    assert!(steps.lines().filter(|l| l.contains("\"kind\":\"step\"")).count() >= 10);
}

/// Top-1 on ten classes that one epoch must beat: 5× chance (one epoch of this net reaches 0.70–0.85 on digits
/// here, for the 1:1 model and its fine-tuned 2:1 variant alike).
const CHANCE_BOUND: f64 = 0.5;
