//! Where a number came from: tool and ONNX Runtime versions, device and execution provider, the machine, and when.
//! Every command's JSON output embeds a [`Provenance`].

use serde::Serialize;

use crate::runtime::Device;

/// The host, read from /proc and /etc (fields are "unknown" where a file is missing, never an error).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    pub os: String,
    pub memory_gb: f64,
}

impl Machine {
    pub fn detect() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        let meminfo = read("/proc/meminfo").unwrap_or_default();
        let os_release = read("/etc/os-release").unwrap_or_default();
        let kernel = read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string());
        let os_name = parse_os_release(&os_release);
        Machine {
            hostname: read("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".into()),
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

/// Provenance shared by every record a command writes.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// `ratio` version (Cargo package version).
    pub tool_version: String,
    /// ONNX Runtime version actually loaded.
    pub ort_version: String,
    pub device: String,
    pub execution_provider: String,
    pub machine: Machine,
    /// UTC, RFC 3339, seconds.
    pub timestamp: String,
}

impl Provenance {
    /// Load ONNX Runtime if needed and describe this process for `device`.
    pub fn collect(device: Device) -> Result<Self, crate::runtime::RuntimeError> {
        Ok(Self::with_ort_version(device, crate::runtime::ensure_ort()?))
    }

    pub fn with_ort_version(device: Device, ort_version: String) -> Self {
        Provenance {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            ort_version,
            device: device.to_string(),
            execution_provider: device.execution_provider().to_string(),
            machine: Machine::detect(),
            timestamp: utc_now_rfc3339(),
        }
    }
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
    }
}
