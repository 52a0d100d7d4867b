//! Loading and saving models: zero-copy decode, external data, atomic writes, provenance helpers.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::error::{IrError, Result};
use crate::ir::external::{self, ExternalStore};
use crate::ir::stream;
use crate::proto::{ModelProto, StringStringEntryProto};

/// An ONNX model and its origin.
#[derive(Debug, Clone)]
pub struct Model {
    pub proto: ModelProto,
    /// File it was loaded from (external data locations are relative to its folder).
    pub path: Option<PathBuf>,
    /// sha256 of the bytes it was loaded from, hex.
    pub source_sha256: Option<String>,
    pub(crate) store: ExternalStore,
}

impl Model {
    pub fn new(proto: ModelProto) -> Self {
        Model {
            proto,
            path: None,
            source_sha256: None,
            store: ExternalStore::default(),
        }
    }

    /// Read and decode `path`. The file buffer is kept alive by the tensors that slice it. The sha256 is computed
    /// while the file is read (a second thread hashes each chunk behind the reader), so a 100 MB model costs one
    /// pass instead of a read and then a hash.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (data, sha) = read_hashed(path).map_err(|error| IrError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let proto = decode(Bytes::from(data)).map_err(|reason| IrError::Decode {
            path: path.to_path_buf(),
            reason,
        })?;
        let mut model = Model::new(proto);
        model.source_sha256 = Some(sha);
        model.path = Some(path.to_path_buf());
        model.store = ExternalStore::new(path.parent().map(Path::to_path_buf));
        external::check_locations(&model.proto, path)?;
        Ok(model)
    }

    pub fn from_bytes(data: Bytes) -> Result<Self> {
        let sha = sha256_hex(&data);
        let proto = decode(data).map_err(|reason| IrError::Decode {
            path: PathBuf::from("<memory>"),
            reason,
        })?;
        Ok(Model {
            proto,
            path: None,
            source_sha256: Some(sha),
            store: ExternalStore::default(),
        })
    }

    /// Display name for messages: the file path, or `<memory>`.
    pub fn display_name(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<memory>".into())
    }

    pub fn graph(&self) -> &crate::proto::GraphProto {
        self.proto.graph.as_ref().expect("Model::load guarantees a graph")
    }

    pub fn graph_mut(&mut self) -> &mut crate::proto::GraphProto {
        self.proto.graph.get_or_insert_with(Default::default)
    }

    /// Version of the default (`ai.onnx`) opset.
    pub fn opset(&self) -> i64 {
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain.as_deref().unwrap_or("").is_empty() || o.domain.as_deref() == Some("ai.onnx"))
            .and_then(|o| o.version)
            .unwrap_or(1)
    }

    /// Static dims of the graph input `name` (`None` for symbolic ones); empty when it has no tensor shape.
    pub fn input_dims(&self, name: &str) -> Vec<Option<i64>> {
        self.graph()
            .input
            .iter()
            .find(|v| v.name.as_deref() == Some(name))
            .and_then(crate::ir::build::value_info_dims)
            .unwrap_or_default()
    }

    /// True when any initializer keeps its bytes in a side file.
    pub fn has_external_data(&self) -> bool {
        external::has_external(&self.proto)
    }

    /// Serialized bytes with every external tensor pulled inline (for ONNX Runtime's in-memory loader).
    pub fn to_inline_bytes(&self) -> Result<Vec<u8>> {
        if !self.has_external_data() {
            return Ok(self.proto.encode_to_vec());
        }
        let mut proto = self.proto.clone();
        self.store.inline_all(&mut proto, &self.display_name())?;
        Ok(proto.encode_to_vec())
    }

    /// The raw bytes of an initializer, whether inline or external.
    pub fn tensor_bytes(&self, t: &crate::proto::TensorProto) -> Result<Option<Bytes>> {
        self.store.tensor_bytes(t, &self.display_name())
    }

    /// Write atomically to `path` (temp file + rename) and return the sha256 of what was written. External data
    /// is rewritten beside the output as `<file>.data` when the model has any, or when `force_external` asks.
    /// The model is streamed to disk: memory stays at one tensor beyond the model itself.
    pub fn save(&self, path: impl AsRef<Path>, force_external: bool) -> Result<String> {
        let path = path.as_ref();
        if self.has_external_data() || force_external {
            let data_name = format!(
                "{}.data",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("model.onnx")
            );
            let data_path = path.with_file_name(&data_name);
            let (proto, blob) = self.store.externalize(&self.proto, &data_name, &self.display_name())?;
            write_atomic(&data_path, &blob)?;
            write_atomic_hashed_aside(path, |w| stream::write_model(&proto, w))
        } else {
            write_atomic_hashed_aside(path, |w| stream::write_model(&self.proto, w))
        }
    }

    /// Set (or replace) a `metadata_props` entry.
    pub fn set_metadata(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(e) = self
            .proto
            .metadata_props
            .iter_mut()
            .find(|e| e.key.as_deref() == Some(key))
        {
            e.value = Some(value);
        } else {
            self.proto.metadata_props.push(StringStringEntryProto {
                key: Some(key.into()),
                value: Some(value),
            });
        }
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.proto
            .metadata_props
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .and_then(|e| e.value.as_deref())
    }
}

fn decode(data: Bytes) -> std::result::Result<ModelProto, String> {
    if data.is_empty() {
        return Err("file is empty".into());
    }
    let proto = ModelProto::decode(data).map_err(|e| format!("protobuf decode failed: {e}"))?;
    // Random bytes sometimes decode as a protobuf; a model without a graph or IR version is not ONNX.
    if proto.graph.is_none() {
        return Err("no graph in the file".into());
    }
    if proto.ir_version.unwrap_or(0) <= 0 {
        return Err("missing ir_version".into());
    }
    Ok(proto)
}

/// The whole file and its sha256 (hex), hashed chunk by chunk on a second thread as the reads complete.
fn read_hashed(path: &Path) -> std::io::Result<(Vec<u8>, String)> {
    use std::io::Read;
    const CHUNK: usize = 4 << 20;
    let mut file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    // Zeroed pages come lazily from the allocator, so this costs nothing until the reads fill them.
    let mut buf = vec![0u8; len];
    let hash = std::thread::scope(|s| -> std::io::Result<String> {
        let (tx, rx) = std::sync::mpsc::channel::<&[u8]>();
        let hasher = s.spawn(move || {
            let mut h = Sha256::new();
            for chunk in rx {
                h.update(chunk);
            }
            hex::encode(h.finalize())
        });
        for chunk in buf.chunks_mut(CHUNK) {
            file.read_exact(chunk)?;
            if tx.send(chunk).is_err() {
                break;
            }
        }
        drop(tx);
        hasher
            .join()
            .map_err(|_| std::io::Error::other("hashing thread panicked"))
    })?;
    if file.read(&mut [0u8; 1])? != 0 {
        return Err(std::io::Error::other("the file grew while it was read"));
    }
    Ok((buf, hash))
}

/// sha256 of bytes, hex: the one spelling of a content hash in every record.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of a file, hex, streamed in 1 MiB reads so a large file never sits in memory.
pub fn sha256_file(path: &Path) -> Result<String> {
    sha256_stream(path).map_err(|error| IrError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// [`sha256_file`] with the bare I/O error, for callers that wrap it in their own error type.
pub fn sha256_stream(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(hex::encode(h.finalize())),
            n => h.update(&buf[..n]),
        }
    }
}

/// Write `bytes` to `path` through a temp file in the same folder and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<String> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with the content produced by `fill`; returns the sha256 of the bytes written.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<String> {
    let mut hash = String::new();
    write_atomic_inner(path, |file| {
        let mut w = HashingWriter {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
        };
        fill(&mut w)?;
        let HashingWriter { inner, hasher } = w;
        hash = hex::encode(hasher.finalize());
        inner.into_inner().map_err(|e| e.into_error())
    })?;
    Ok(hash)
}

/// The temp-file protocol: `fill` writes the temp file and hands it back; it is made durable, then renamed over
/// `path`. On any error the temp file is removed and `path` is untouched.
fn write_atomic_inner(path: &Path, fill: impl FnOnce(std::fs::File) -> std::io::Result<std::fs::File>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let io = |error| IrError::Io {
        path: path.to_path_buf(),
        error,
    };
    let result = (|| -> std::io::Result<()> {
        let file = fill(std::fs::File::create(&tmp)?)?;
        // Durable before the rename, so a crash leaves either the old file or the whole new one.
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Like [`write_atomic_with`] for content that can be produced twice: `fill` runs once into the file and, at the
/// same time on a second thread, once into the hasher, so hashing a 100 MB model overlaps writing it. `fill` must
/// produce the same bytes both times (a serialization of an immutable model does).
pub fn write_atomic_hashed_aside(
    path: &Path,
    fill: impl Fn(&mut dyn Write) -> std::io::Result<()> + Sync,
) -> Result<String> {
    let io = |error| IrError::Io {
        path: path.to_path_buf(),
        error,
    };
    std::thread::scope(|s| {
        let hashed = s.spawn(|| -> std::io::Result<String> {
            let mut w = HashingWriter {
                inner: std::io::sink(),
                hasher: Sha256::new(),
            };
            fill(&mut w)?;
            Ok(hex::encode(w.hasher.finalize()))
        });
        let written = write_atomic_file(path, |w| fill(w));
        let hash = hashed
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread panicked")));
        match (written, hash) {
            (Ok(()), Ok(h)) => Ok(h),
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(io(e)),
        }
    })
}

/// Temp file + fsync + rename, without hashing.
fn write_atomic_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    write_atomic_inner(path, |file| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())
    })
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
