//! Provenance of sweep records: tool version, ONNX Runtime version, machine.

use reports::schema::Provenance;

/// ONNX Runtime version as named by the library the children will load (`libonnxruntime.so.1.31.1` → `1.31.1`).
/// The sweep itself does not load ORT; each step's own record carries the version its session reported.
pub fn ort_version_from_env() -> Option<String> {
    let p = std::env::var("ORT_DYLIB_PATH").ok()?;
    let name = std::path::Path::new(&p).file_name()?.to_string_lossy().into_owned();
    let v = name.split(".so.").nth(1)?;
    Some(v.to_string())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!(
        "{} ({} {}, {cpus} cpus)",
        hostname(),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

pub fn current() -> Provenance {
    let mut extra = serde_json::Map::new();
    if let Ok(job) = std::env::var("SLURM_JOB_ID") {
        extra.insert("slurm_job_id".into(), job.into());
    }
    if let Ok(task) = std::env::var("SLURM_ARRAY_TASK_ID") {
        extra.insert("slurm_array_task_id".into(), task.into());
    }
    Provenance {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        ort_version: ort_version_from_env(),
        machine: machine(),
        device: None,
        extra,
    }
}
