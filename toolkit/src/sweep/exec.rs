//! Run planned steps as child processes, one record per step, skipping what verified records say is done.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use converters::ir::model::write_atomic;
use reports::schema::sweep::{StepStatus, SweepStep};
use reports::schema::{Provenance, Record, now_rfc3339};

use super::plan::StepPlan;
use super::store::{StepState, check_step, file_ref};

/// How the run went, for the exit code and the closing message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub ran_ok: Vec<String>,
    pub reused: Vec<String>,
    pub failed: Vec<String>,
    /// Not run because a step they need failed or is missing.
    pub blocked: Vec<String>,
    /// Corrupt or stale records that were reported and redone.
    pub redone: Vec<(String, String)>,
}

/// Lines of child stderr kept in a failed step's record.
const STDERR_TAIL_LINES: usize = 30;

/// Run `plans` in order with `program` (normally this executable). Steps outside `owned` (another shard's) are
/// neither run nor judged, except shared steps they depend on, which any shard may run under a lock.
pub fn run_plans(
    program: &Path,
    run_dir: &Path,
    plans: &[StepPlan],
    owned: &dyn Fn(&StepPlan) -> bool,
    provenance: &Provenance,
    log: &mut dyn FnMut(&str),
) -> Result<RunOutcome> {
    let mut out = RunOutcome::default();
    let by_key: HashMap<&str, &StepPlan> = plans.iter().map(|p| (p.key.as_str(), p)).collect();
    // Shared steps (no variant) that an owned step depends on.
    let mut needed: HashSet<&str> = HashSet::new();
    for p in plans.iter().filter(|p| owned(p)) {
        for d in &p.deps {
            if by_key.get(d.as_str()).is_some_and(|dp| dp.variant.is_none()) {
                needed.insert(d.as_str());
            }
        }
    }
    let mut ok: HashSet<String> = HashSet::new();
    for p in plans {
        let shared = p.variant.is_none();
        if !(owned(p) || (shared && needed.contains(p.key.as_str()))) {
            continue;
        }
        if let Some(d) = p.deps.iter().find(|d| !ok.contains(*d)) {
            log(&format!("blocked  {} (needs {d})", p.key));
            out.blocked.push(p.key.clone());
            continue;
        }
        let _lock = if shared {
            Some(StepLock::acquire(&p.record, log)?)
        } else {
            None
        };
        match check_step(run_dir, p) {
            StepState::Done(_) => {
                log(&format!("reused   {}", p.key));
                out.reused.push(p.key.clone());
                ok.insert(p.key.clone());
                continue;
            }
            StepState::Missing => {}
            StepState::Failed(_) => log(&format!("retrying {} (failed before)", p.key)),
            StepState::Corrupt(why) | StepState::Stale(why) => {
                log(&format!("redoing  {}: record not trusted: {why}", p.key));
                out.redone.push((p.key.clone(), why));
            }
        }
        log(&format!("running  {}: ratio {}", p.key, p.args.join(" ")));
        let rec = run_one(program, run_dir, p, provenance)?;
        let body: SweepStep = rec.body_as()?;
        if body.status == StepStatus::Ok {
            log(&format!("ok       {} ({:.1} s)", p.key, body.duration_s));
            out.ran_ok.push(p.key.clone());
            ok.insert(p.key.clone());
        } else {
            let why = body
                .stderr_tail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            log(&format!("FAILED   {} ({}) {why}", p.key, exit_text(&body)));
            out.failed.push(p.key.clone());
        }
    }
    Ok(out)
}

fn exit_text(b: &SweepStep) -> String {
    match (b.exit_code, b.signal) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "no exit status".into(),
    }
}

/// Run one step and write its record (also for failures). Errors only when the record cannot be written.
pub fn run_one(program: &Path, run_dir: &Path, p: &StepPlan, provenance: &Provenance) -> Result<Record> {
    if let Some(dir) = p.record.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Outputs from an earlier, untrusted attempt must not pass for this attempt's.
    for o in &p.outputs {
        if o.exists() {
            std::fs::remove_file(o).with_context(|| format!("removing stale {}", o.display()))?;
        }
    }
    let mut inputs = Vec::new();
    let mut problem: Option<String> = None;
    for i in &p.inputs {
        match file_ref(run_dir, i) {
            Ok(f) => inputs.push(f),
            Err(e) => problem = Some(format!("input {}: {e}", i.display())),
        }
    }
    let start = Instant::now();
    let (exit_code, signal, stdout, stderr) = match problem {
        Some(why) => (None, None, String::new(), why),
        None => spawn_and_wait(program, &p.args, &p.log_path()).unwrap_or_else(|e| {
            (
                None,
                None,
                String::new(),
                format!("could not start {}: {e:#}", program.display()),
            )
        }),
    };
    let duration_s = start.elapsed().as_secs_f64();
    let (output, stdout_tail) = parse_output(&stdout);
    let mut status = if exit_code == Some(0) {
        StepStatus::Ok
    } else {
        StepStatus::Failed
    };
    let mut stderr_tail = tail(&stderr, STDERR_TAIL_LINES);
    let mut outputs = Vec::new();
    if status == StepStatus::Ok {
        for o in &p.outputs {
            match file_ref(run_dir, o) {
                Ok(f) => outputs.push(f),
                Err(_) => {
                    status = StepStatus::Failed;
                    stderr_tail.push_str(&format!(
                        "\nratio sweep: the step exited 0 but did not write {}",
                        o.display()
                    ));
                }
            }
        }
    }
    if status == StepStatus::Ok {
        stderr_tail.clear();
    }
    let mut prov = provenance.clone();
    // The child's own record knows which ORT it actually loaded and on which device.
    if let Some(child) = &output {
        let c = &child.provenance;
        prov.ort_version = c.ort_version.clone().or(prov.ort_version);
        prov.device = c.device.clone().or(prov.device);
        prov.execution_provider = c.execution_provider.clone().or(prov.execution_provider);
    }
    let body = SweepStep {
        key: p.key.clone(),
        step: p.step.clone(),
        variant: p.variant.clone(),
        status,
        exit_code,
        signal,
        duration_s,
        stderr_tail,
        output,
        stdout_tail,
    };
    let command = std::iter::once(program.to_string_lossy().into_owned())
        .chain(p.args.iter().cloned())
        .collect();
    let mut rec = Record::new(&body, command, prov, now_rfc3339())?;
    rec.inputs = inputs;
    rec.outputs = outputs;
    write_atomic(&p.record, rec.to_json_pretty().as_bytes())?;
    Ok(rec)
}

/// The step's record (its whole stdout, as every `--json` command prints one), or the last lines of what it
/// printed instead.
fn parse_output(stdout: &str) -> (Option<Record>, String) {
    let t = stdout.trim();
    match Record::from_json(t) {
        Ok(r) => (Some(r), String::new()),
        Err(_) => (None, tail(t, 50)),
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

type ChildResult = (Option<i32>, Option<i32>, String, String);

fn spawn_and_wait(program: &Path, args: &[String], log: &Path) -> Result<ChildResult> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", program.display()))?;
    let mut so = child.stdout.take().context("child stdout")?;
    let mut se = child.stderr.take().context("child stderr")?;
    // Read both pipes concurrently: a child filling one pipe while we block on the other would deadlock.
    let t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let mut out = Vec::new();
    so.read_to_end(&mut out).context("reading child stdout")?;
    let err = t.join().unwrap_or_default();
    let status = child.wait().context("waiting for child")?;
    let _ = write_atomic(log, &err);
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    Ok((
        status.code(),
        signal,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

/// Exclusive right to run a shared step while several shards (Slurm tasks) start at once: `create_new` on a lock
/// file beside the record. A lock left by a dead process on this host is taken over; one from another host is
/// waited on for at most [`LOCK_WAIT`].
struct StepLock {
    path: PathBuf,
}

const LOCK_WAIT: Duration = Duration::from_secs(6 * 3600);

impl StepLock {
    fn acquire(record: &Path, log: &mut dyn FnMut(&str)) -> Result<Self> {
        let path = record.with_extension("lock");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let me = format!("{} {}", crate::provenance::hostname(), std::process::id());
        let start = Instant::now();
        let mut said = false;
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(me.as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                    return Ok(StepLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if holder_is_dead(&holder, &path) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if !said {
                        log(&format!("waiting  for {} (held by {holder})", path.display()));
                        said = true;
                    }
                    if start.elapsed() > LOCK_WAIT {
                        anyhow::bail!(
                            "{} still held by {holder} after {LOCK_WAIT:?}; remove it if that process is gone",
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e).with_context(|| format!("creating lock {}", path.display())),
            }
        }
    }
}

fn holder_is_dead(holder: &str, path: &Path) -> bool {
    let mut it = holder.split_whitespace();
    let (Some(host), Some(pid)) = (it.next(), it.next()) else {
        // Empty: the writer is between create and write, or died there. Seconds are plenty for one write.
        let age = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        return age.is_some_and(|a| a > Duration::from_secs(30));
    };
    host == crate::provenance::hostname() && !Path::new(&format!("/proc/{pid}")).exists()
}

impl Drop for StepLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
