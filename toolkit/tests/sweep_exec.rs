//! The sweep executor on plain child processes (`sh`): dependency blocking, failure records, and the lock that
//! lets concurrent shards (Slurm array tasks) share one base step without running it twice.

use std::path::{Path, PathBuf};

use reports::schema::Provenance;
use reports::schema::sweep::Variant;
use toolkit::sweep::exec::run_plans;
use toolkit::sweep::plan::StepPlan;

fn step(dir: &Path, key: &str, script: &str, outputs: &[&str], deps: &[&str], variant: Option<&str>) -> StepPlan {
    StepPlan {
        key: key.into(),
        step: key.rsplit('/').next().unwrap().into(),
        variant: variant.map(|v| Variant {
            id: v.into(),
            ratio: "1:1".into(),
            policy: "none".into(),
            seed: 0,
        }),
        args: vec!["-c".into(), script.into()],
        inputs: vec![],
        outputs: outputs.iter().map(|o| dir.join(o)).collect(),
        record: dir.join(format!("{}.json", key.replace('/', "_"))),
        deps: deps.iter().map(|d| d.to_string()).collect(),
    }
}

fn sh() -> PathBuf {
    PathBuf::from("/bin/sh")
}

#[test]
fn failed_step_blocks_its_dependents_and_records_why() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A child that prints a record (as every `ratio … --json` does) has it kept typed in its step record.
    let child = reports::schema::Record {
        schema: "ratio/demo/v1".into(),
        kind: "demo".into(),
        created: "t".into(),
        command: vec!["child".into()],
        provenance: Provenance {
            ort_version: Some("9.9.9".into()),
            ..Provenance::default()
        },
        inputs: vec![],
        outputs: vec![],
        body: serde_json::json!({"top1": 0.5}),
    };
    std::fs::write(d.join("child.json"), child.to_json_pretty()).unwrap();
    let plans = vec![
        step(
            d,
            "a/make",
            "echo 'no space left' >&2; exit 3",
            &["a.onnx"],
            &[],
            Some("a"),
        ),
        step(d, "a/use", "cat a.onnx", &[], &["a/make"], Some("a")),
        step(
            d,
            "b/make",
            &format!("echo ok > {0}/b.onnx; cat {0}/child.json", d.display()),
            &["b.onnx"],
            &[],
            Some("b"),
        ),
        // Exit 0 without writing its declared output is a failure too.
        step(d, "c/make", "true", &["c.onnx"], &[], Some("c")),
        // Output that is not a record is kept as text, not passed off as one.
        step(d, "e/talk", "echo '{\"top1\": 0.5}'", &[], &[], Some("e")),
    ];
    let mut log = Vec::new();
    let out = run_plans(&sh(), d, &plans, &|_| true, &Provenance::default(), &mut |l| {
        log.push(l.to_string())
    })
    .unwrap();
    assert_eq!(out.failed, ["a/make", "c/make"]);
    assert_eq!(out.blocked, ["a/use"]);
    assert_eq!(out.ran_ok, ["b/make", "e/talk"]);
    let rec = reports::schema::Record::from_json(&std::fs::read_to_string(d.join("a_make.json")).unwrap()).unwrap();
    let body: reports::schema::sweep::SweepStep = rec.body_as().unwrap();
    assert_eq!(body.exit_code, Some(3));
    assert!(body.stderr_tail.contains("no space left"));
    let rec = reports::schema::Record::from_json(&std::fs::read_to_string(d.join("b_make.json")).unwrap()).unwrap();
    let body: reports::schema::sweep::SweepStep = rec.body_as().unwrap();
    assert_eq!(body.output.as_ref(), Some(&child));
    // The step record takes the ONNX Runtime version the child reported.
    assert_eq!(rec.provenance.ort_version.as_deref(), Some("9.9.9"));
    assert_eq!(rec.outputs[0].path, "b.onnx");
    let rec = reports::schema::Record::from_json(&std::fs::read_to_string(d.join("e_talk.json")).unwrap()).unwrap();
    let body: reports::schema::sweep::SweepStep = rec.body_as().unwrap();
    assert_eq!((body.output, body.stdout_tail.as_str()), (None, "{\"top1\": 0.5}"));
    let rec = reports::schema::Record::from_json(&std::fs::read_to_string(d.join("c_make.json")).unwrap()).unwrap();
    let body: reports::schema::sweep::SweepStep = rec.body_as().unwrap();
    assert!(body.stderr_tail.contains("did not write"), "{}", body.stderr_tail);
    assert!(
        log.iter().any(|l| l.starts_with("blocked  a/use (needs a/make)")),
        "{log:?}"
    );
}

#[test]
fn concurrent_shards_run_a_shared_step_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    // The shared step is slow enough that both shards reach it together; each run appends a line to `count`.
    let base = step(
        &d,
        "base/model",
        &format!("echo run >> {0}/count; sleep 1; echo m > {0}/base.onnx", d.display()),
        &["base.onnx"],
        &[],
        None,
    );
    let mut plans = vec![base];
    for v in ["v0", "v1", "v2", "v3"] {
        let s = format!("test -s {0}/base.onnx && echo {v} > {0}/{v}.out", d.display());
        plans.push(step(
            &d,
            &format!("{v}/use"),
            &s,
            &[&format!("{v}.out")],
            &["base/model"],
            Some(v),
        ));
    }
    let handles: Vec<_> = (0..2usize)
        .map(|shard| {
            let (d, plans) = (d.clone(), plans.clone());
            std::thread::spawn(move || {
                let owned = move |p: &StepPlan| {
                    p.variant
                        .as_ref()
                        .is_some_and(|v| v.id[1..].parse::<usize>().unwrap() % 2 == shard)
                };
                run_plans(&sh(), &d, &plans, &owned, &Provenance::default(), &mut |_| {}).unwrap()
            })
        })
        .collect();
    let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        std::fs::read_to_string(d.join("count")).unwrap(),
        "run\n",
        "base ran more than once"
    );
    let ran_base = outs
        .iter()
        .filter(|o| o.ran_ok.contains(&"base/model".to_string()))
        .count();
    let reused_base = outs
        .iter()
        .filter(|o| o.reused.contains(&"base/model".to_string()))
        .count();
    assert_eq!((ran_base, reused_base), (1, 1));
    for v in ["v0", "v1", "v2", "v3"] {
        assert!(d.join(format!("{v}.out")).is_file(), "{v}");
    }
    assert!(!d.join("base_model.lock").exists(), "lock released");
}
