//! Where a number came from: tool and ONNX Runtime versions, device and execution provider, the machine. The
//! types are the record schema's own ([`reports::schema::Provenance`], [`reports::schema::Machine`]); this module
//! collects their values from the running process (it reads /proc and loads ONNX Runtime, which `reports` may not).

use crate::runtime::Device;

pub use reports::schema::{Machine, Provenance};

/// Filling a [`Machine`] from this host.
pub trait DetectMachine {
    /// Read from /proc and /etc; fields are "unknown" where a file is missing, never an error.
    fn detect() -> Machine;
}

impl DetectMachine for Machine {
    fn detect() -> Machine {
        detect_machine()
    }
}

/// Filling a [`Provenance`] for this process.
pub trait Collect {
    /// Load ONNX Runtime if needed and describe this process for `device`.
    fn collect(device: Device) -> Result<Provenance, crate::runtime::RuntimeError>;
    /// The same with an ONNX Runtime version already known (read from a session).
    fn with_ort_version(device: Device, ort_version: String) -> Provenance;
}

impl Collect for Provenance {
    fn collect(device: Device) -> Result<Provenance, crate::runtime::RuntimeError> {
        Ok(Self::with_ort_version(device, crate::runtime::ensure_ort()?))
    }

    fn with_ort_version(device: Device, ort_version: String) -> Provenance {
        Provenance {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            ort_version: Some(ort_version),
            machine: detect_machine(),
            device: Some(device.to_string()),
            execution_provider: Some(device.execution_provider().to_string()),
            extra: serde_json::Map::new(),
        }
    }
}

/// Provenance of a command that loads no ONNX Runtime (inspect, model, a conversion without its check).
pub fn no_runtime() -> Provenance {
    Provenance {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: detect_machine(),
        ..Provenance::default()
    }
}

/// Provenance of the sweep driver, which runs no model itself: the ONNX Runtime its children will load is named
/// by `ORT_DYLIB_PATH`; each child's own record carries the version its session reported.
pub fn without_runtime() -> Provenance {
    Provenance {
        ort_version: ort_version_from_env(),
        ..no_runtime()
    }
}

/// `libonnxruntime.so.1.31.1` in `ORT_DYLIB_PATH` → `1.31.1`.
pub fn ort_version_from_env() -> Option<String> {
    let p = std::env::var("ORT_DYLIB_PATH").ok()?;
    let name = std::path::Path::new(&p).file_name()?.to_string_lossy().into_owned();
    Some(name.split(".so.").nth(1)?.to_string())
}

/// This host's name (`/proc/sys/kernel/hostname`, then `/etc/hostname`, then `$HOSTNAME`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The host, read from /proc and /etc.
pub fn detect_machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let meminfo = read("/proc/meminfo").unwrap_or_default();
    let os_release = read("/etc/os-release").unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string());
    let os_name = parse_os_release(&os_release);
    Machine {
        hostname: hostname(),
        cpu_model: parse_cpu_model(&cpuinfo).unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        os: match (os_name, kernel) {
            (Some(o), Some(k)) => format!("{o} (Linux {k})"),
            (Some(o), None) => o,
            (None, Some(k)) => format!("Linux {k}"),
            (None, None) => std::env::consts::OS.to_string(),
        },
        memory_gb: parse_mem_total_gb(&meminfo).unwrap_or(0.0),
    }
}

fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim())
        })
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn parse_mem_total_gb(meminfo: &str) -> Option<f64> {
    let kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // Two decimals: enough to tell machines apart, stable across runs.
    Some((kb / 1024.0 / 1024.0 * 100.0).round() / 100.0)
}

fn parse_os_release(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
}

/// ONNX Runtime version, loading the library if needed.
pub fn ort_version() -> Result<String, crate::runtime::RuntimeError> {
    crate::runtime::ensure_ort()
}

// One RFC 3339 implementation for every record: the one in the schema crate that defines the records.
pub use reports::schema::{now_rfc3339 as utc_now_rfc3339, rfc3339_from_unix as rfc3339};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // 2000-02-29T12:34:56Z, a leap day in a century leap year: `date -u -d @951827696`.
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn proc_parsers() {
        let cpu = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(parse_cpu_model(cpu).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(parse_cpu_model("processor : 0\n"), None);
        assert_eq!(
            parse_mem_total_gb("MemTotal:       24684092 kB\nMemFree: 1 kB\n"),
            Some(23.54)
        );
        assert_eq!(
            parse_os_release("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn this_machine_is_described() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(m.memory_gb > 0.0);
        assert_ne!(m.hostname, "");
        let p = Provenance::with_ort_version(Device::Cuda(1), "1.31.1".into());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["device"], "cuda:1");
        assert_eq!(v["execution_provider"], "CUDAExecutionProvider");
        assert_eq!(v["machine"]["cores"], m.cores);
        assert_eq!(p.device_label(), "cuda:1 (CUDAExecutionProvider)");
        // The one text form of a machine names host, CPU, cores and OS.
        let d = m.describe();
        assert!(
            d.starts_with(&m.hostname) && d.contains(&format!("{} cpus", m.cores)) && d.contains(&m.os),
            "{d}"
        );
    }
}
