//! The record envelope shared by every command's JSON output: a schema tag `ratio/<kind>/v<N>`, when and how it
//! was made (command line, provenance), the files it read and wrote with their sha256, and a kind-specific body.
//!
//! Readers call [`Record::from_json`], which refuses unknown kinds/versions and inconsistent envelopes instead of
//! guessing, so a record written by an incompatible tool version is reported rather than misread.

pub mod bench;
pub mod calibrate;
pub mod convert;
pub mod eval;
pub mod inspect;
pub mod model;
pub mod richness;
pub mod sweep;
pub mod train;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the envelope layout; bump when a field changes meaning.
pub const ENVELOPE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("schema tag {tag:?} is not of the form ratio/<kind>/v<N>")]
    BadTag { tag: String },
    #[error("schema tag {tag:?} names kind {tag_kind:?} but the record says kind {kind:?}")]
    KindMismatch {
        tag: String,
        tag_kind: String,
        kind: String,
    },
    #[error("record version v{found} of kind {kind:?} is not supported (this build reads v{supported})")]
    UnsupportedVersion { kind: String, found: u32, supported: u32 },
    #[error("expected a {expected:?} record, found {found:?}")]
    WrongKind { expected: String, found: String },
    #[error("body of the {kind:?} record does not match its schema: {source}")]
    Body { kind: String, source: serde_json::Error },
}

/// The host a record was made on. Commands fill it from /proc and /etc (`toolkit::provenance::detect_machine`);
/// fields are "unknown" (or 0) where the system does not say, never an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// Distribution and kernel, e.g. `Debian GNU/Linux 12 (bookworm) (Linux 6.1.0)`.
    pub os: String,
    pub memory_gb: f64,
}

impl Machine {
    /// The one way a machine is written in text: `host (AMD EPYC 7B13, 2 cpus, Debian GNU/Linux 12, 23.54 GB)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {} cpus, {}, {:.2} GB)",
            self.hostname, self.cpu_model, self.cores, self.os, self.memory_gb
        )
    }
}

/// Where a number came from: enough to say whether two numbers can be compared. Every record carries exactly one,
/// in its envelope; bodies do not repeat it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// `ratio` version (the crate version).
    pub tool_version: String,
    /// ONNX Runtime version actually loaded, when the command loaded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_version: Option<String>,
    pub machine: Machine,
    /// Execution device, e.g. `cpu` or `cuda:0`, when the command ran a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// ONNX Runtime execution provider of `device`, e.g. `CPUExecutionProvider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_provider: Option<String>,
    /// Anything else the command wants to pin (seed, preprocessing fingerprint, data set hash, Slurm task).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

impl Provenance {
    /// `cpu (CPUExecutionProvider)`, or what is known of it.
    pub fn device_label(&self) -> String {
        match (&self.device, &self.execution_provider) {
            (Some(d), Some(ep)) => format!("{d} ({ep})"),
            (Some(d), None) => d.clone(),
            (None, Some(ep)) => ep.clone(),
            (None, None) => "no device".into(),
        }
    }

    /// Add one `extra` pin.
    pub fn with_extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
}

/// A file a record depends on or produced, pinned by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    pub sha256: String,
}

/// The envelope. `body` stays a JSON value so any tool can read the envelope of any record; typed access goes
/// through [`Record::body_as`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    pub kind: String,
    /// UTC time, RFC 3339 (`2026-11-27T06:30:00Z`).
    pub created: String,
    /// The exact argv that produced the record.
    pub command: Vec<String>,
    pub provenance: Provenance,
    #[serde(default)]
    pub inputs: Vec<FileRef>,
    #[serde(default)]
    pub outputs: Vec<FileRef>,
    pub body: Value,
}

/// A typed body that knows its kind and version.
pub trait Body: Serialize + for<'de> Deserialize<'de> {
    const KIND: &'static str;
    const VERSION: u32 = 1;
}

/// `ratio/<kind>/v<version>`.
pub fn tag(kind: &str, version: u32) -> String {
    format!("ratio/{kind}/v{version}")
}

/// Split a tag into (kind, version).
pub fn parse_tag(tag: &str) -> Result<(String, u32), SchemaError> {
    let bad = || SchemaError::BadTag { tag: tag.to_string() };
    let mut parts = tag.split('/');
    let (Some("ratio"), Some(kind), Some(ver), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let version = ver
        .strip_prefix('v')
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(bad)?;
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(bad());
    }
    Ok((kind.to_string(), version))
}

impl Record {
    /// Wrap a typed body.
    pub fn new<B: Body>(
        body: &B,
        command: Vec<String>,
        provenance: Provenance,
        created: String,
    ) -> Result<Self, SchemaError> {
        Ok(Record {
            schema: tag(B::KIND, B::VERSION),
            kind: B::KIND.to_string(),
            created,
            command,
            provenance,
            inputs: Vec::new(),
            outputs: Vec::new(),
            body: serde_json::to_value(body)?,
        })
    }

    /// Parse and check the envelope (tag well-formed and consistent with `kind`). The body is checked by
    /// [`Record::body_as`].
    pub fn from_json(text: &str) -> Result<Self, SchemaError> {
        let r: Record = serde_json::from_str(text)?;
        let (tag_kind, _) = parse_tag(&r.schema)?;
        if tag_kind != r.kind {
            return Err(SchemaError::KindMismatch {
                tag: r.schema.clone(),
                tag_kind,
                kind: r.kind.clone(),
            });
        }
        Ok(r)
    }

    pub fn to_json_pretty(&self) -> String {
        // A Record holds only strings, numbers and maps with string keys: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn version(&self) -> u32 {
        parse_tag(&self.schema).map(|(_, v)| v).unwrap_or(0)
    }

    /// The body as `B`, after checking kind and version.
    pub fn body_as<B: Body>(&self) -> Result<B, SchemaError> {
        if self.kind != B::KIND {
            return Err(SchemaError::WrongKind {
                expected: B::KIND.to_string(),
                found: self.kind.clone(),
            });
        }
        let found = self.version();
        if found != B::VERSION {
            return Err(SchemaError::UnsupportedVersion {
                kind: self.kind.clone(),
                found,
                supported: B::VERSION,
            });
        }
        serde_json::from_value(self.body.clone()).map_err(|source| SchemaError::Body {
            kind: self.kind.clone(),
            source,
        })
    }
}

/// Current UTC time as RFC 3339 with seconds, without a date crate (civil-from-days, H. Hinnant).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339_from_unix(secs)
}

pub fn rfc3339_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Demo {
        x: u32,
    }
    impl Body for Demo {
        const KIND: &'static str = "demo";
    }

    fn record() -> Record {
        Record::new(
            &Demo { x: 3 },
            vec!["ratio".into(), "demo".into()],
            Provenance::default(),
            now_rfc3339(),
        )
        .expect("demo body serializes")
    }

    #[test]
    fn record_round_trips_and_types_body() {
        let r = record();
        assert_eq!(r.schema, "ratio/demo/v1");
        let back = Record::from_json(&r.to_json_pretty()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.body_as::<Demo>().unwrap(), Demo { x: 3 });
    }

    #[test]
    fn record_rejects_bad_tags_and_mismatches() {
        let mut r = record();
        r.schema = "ratio/demo".into();
        assert!(matches!(
            Record::from_json(&r.to_json_pretty()),
            Err(SchemaError::BadTag { .. })
        ));
        r.schema = "ratio/other/v1".into();
        assert!(matches!(
            Record::from_json(&r.to_json_pretty()),
            Err(SchemaError::KindMismatch { .. })
        ));
        r.schema = "ratio/demo/v7".into();
        let r7 = Record::from_json(&r.to_json_pretty()).unwrap();
        assert!(matches!(
            r7.body_as::<Demo>(),
            Err(SchemaError::UnsupportedVersion { found: 7, .. })
        ));
        assert!(matches!(Record::from_json("{\"schema\": 1"), Err(SchemaError::Json(_))));
    }

    #[test]
    fn record_body_schema_violation_is_an_error() {
        let mut r = record();
        r.body = serde_json::json!({"x": "three"});
        assert!(matches!(r.body_as::<Demo>(), Err(SchemaError::Body { .. })));
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_795_761_479), "2026-11-27T06:37:59Z");
    }
}
