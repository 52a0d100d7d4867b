//! Flag groups that several commands share, declared once (`#[command(flatten)]`), so a flag means the same
//! thing and has the same help everywhere it appears.

use std::path::PathBuf;

use crate::runtime::{Device, RuntimeConfig};

/// Where models run: `--device`, `--threads`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// ONNX Runtime intra-op threads per session (default: ONNX Runtime's choice; 1 makes CPU runs
    /// bit-reproducible).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl RuntimeArgs {
    pub fn config(&self) -> RuntimeConfig {
        RuntimeConfig {
            device: self.device,
            intra_threads: self.threads,
            ..RuntimeConfig::default()
        }
    }
}

/// What a command reads: `--data`, `--preset`.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Dataset path, or a name fetched by `ratio data fetch` (mnist, fashion-mnist, digits).
    #[arg(long)]
    pub data: String,
    /// Preprocessing preset: a built-in name (mnist, fashion-mnist, digits, cifar10, cifar100,
    /// imagenet-torchvision, imagenet-tf) or a JSON preset file.
    #[arg(long)]
    pub preset: String,
}

/// Where the command's record goes: `--json FILE`, or `--json -` for stdout instead of the human-readable
/// output.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Write the JSON record to FILE (atomically), or to stdout with `-` (replacing the table).
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<PathBuf>,
}

impl OutputArgs {
    /// The record replaces the human-readable output on stdout.
    pub fn to_stdout(&self) -> bool {
        self.json.as_deref() == Some(std::path::Path::new("-"))
    }

    /// Write `record` where `--json` says (nothing without it).
    pub fn write(&self, record: &reports::schema::Record) -> anyhow::Result<()> {
        match &self.json {
            Some(target) => super::write_json_record(target, record),
            None => Ok(()),
        }
    }

    /// Write a JSON document that is not a record (a conversion plan) where `--json` says.
    pub fn write_value(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let Some(target) = &self.json else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(value)? + "\n";
        if self.to_stdout() {
            return super::emit(&text);
        }
        converters::ir::model::write_atomic(target, text.as_bytes())?;
        crate::status!("wrote {}", target.display());
        Ok(())
    }
}
