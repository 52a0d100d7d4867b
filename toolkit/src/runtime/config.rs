//! How a session is built: device, thread counts, graph optimisation level, profiling. Parsed from the CLI and
//! recorded with every number, so it holds no `ort` type.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

/// Where a model runs. `cuda` needs the crate feature `cuda`; asking for it without the feature is an error, never
/// a quiet CPU run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(into = "String")]
pub enum Device {
    #[default]
    Cpu,
    Cuda(u32),
}

impl Device {
    /// Name of the ONNX Runtime execution provider this device maps to.
    pub fn execution_provider(&self) -> &'static str {
        match self {
            Device::Cpu => "CPUExecutionProvider",
            Device::Cuda(_) => "CUDAExecutionProvider",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Device::Cuda)
                    .map_err(|_| format!("bad CUDA device index '{n}' in '{s}' (expected cuda:N, N ≥ 0)")),
                None => Err(format!("unknown device '{s}' (expected cpu, cuda or cuda:N)")),
            },
        }
    }
}

/// ONNX Runtime graph optimisation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptLevel {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

impl fmt::Display for OptLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptLevel::Disable => "disable",
            OptLevel::Basic => "basic",
            OptLevel::Extended => "extended",
            OptLevel::All => "all",
        })
    }
}

impl FromStr for OptLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "disable" | "none" | "0" => Ok(OptLevel::Disable),
            "basic" | "1" => Ok(OptLevel::Basic),
            "extended" | "2" => Ok(OptLevel::Extended),
            "all" | "99" => Ok(OptLevel::All),
            other => Err(format!(
                "unknown optimisation level '{other}' (expected disable, basic, extended, all)"
            )),
        }
    }
}

/// Everything that decides how a session is built.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuntimeConfig {
    pub device: Device,
    /// Intra-op threads; `None` lets ONNX Runtime pick (one per physical core).
    pub intra_threads: Option<usize>,
    pub inter_threads: Option<usize>,
    pub opt_level: OptLevel,
    /// Turn on ONNX Runtime's profiler; the JSON trace is written with this path as prefix when the session ends
    /// profiling ([`crate::runtime::Runner::end_profiling`]).
    pub profile: Option<PathBuf>,
    /// Train steps keep their convolutions on ORT's plain CPU kernels instead of lowering them to the NCHWc ones
    /// ([`crate::runtime::nchwc`]): for before/after comparisons (`bench-train --plain-convs`, `RATIO_NCHWC=0`).
    pub plain_convs: bool,
}

impl RuntimeConfig {
    pub fn cpu() -> Self {
        Self::default()
    }

    pub fn with_threads(mut self, intra: usize) -> Self {
        self.intra_threads = Some(intra);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses_and_prints() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("CUDA".parse::<Device>(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse::<Device>(), Ok(Device::Cuda(3)));
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
        assert_eq!(Device::Cpu.to_string().parse::<Device>(), Ok(Device::Cpu));
        assert!("cuda:x".parse::<Device>().unwrap_err().contains("cuda:x"));
        assert!("tpu".parse::<Device>().unwrap_err().contains("unknown device 'tpu'"));
    }

    #[test]
    fn opt_level_parses() {
        assert_eq!("basic".parse::<OptLevel>(), Ok(OptLevel::Basic));
        assert_eq!(OptLevel::default(), OptLevel::All);
        assert!("fast".parse::<OptLevel>().is_err());
    }
}
