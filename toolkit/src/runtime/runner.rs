//! [`Runner`]: one ONNX Runtime session per model, fed by name with checked `ndarray` views, returning owned
//! arrays. This file and `env.rs` are the only places that name `ort` types.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ndarray::ArrayD;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{OutputSelector, RunOptions, Session, SessionInputValue, SessionOutputs};
use ort::value::{DynValue, Tensor, TensorElementType, TensorRef, ValueType};

use super::config::{Device, OptLevel, RuntimeConfig};
use super::env;
use super::error::{Result, RuntimeError};
use super::outputs::Outputs;
use super::spec::{ElemType, Feed, TensorSpec, check_feeds};

/// A loaded model ready to run. Build it once and reuse it across batches.
pub struct Runner {
    session: Session,
    name: String,
    sha256: Option<String>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    config: RuntimeConfig,
    ort_version: String,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("config", &self.config)
            .finish()
    }
}

/// A float32 tensor fed from little-endian bytes that ONNX Runtime reads in place, without a copy: a model's
/// weights, sliced from the loaded file, fed as inputs. The bytes need not be 4-byte aligned (ONNX Runtime's CPU
/// kernels load unaligned data), which is why this is not an `ArrayView<f32>`.
pub struct RawF32<'a> {
    pub name: &'a str,
    pub dims: &'a [i64],
    pub bytes: &'a [u8],
}

/// Feeds converted once into ONNX Runtime values, for loops that run the same inputs many times (benchmarks,
/// repeated evaluation): no checks and no conversions per run.
pub struct Prepared {
    values: Vec<(String, DynValue)>,
}

impl Runner {
    /// Load a model file (external data beside it is found by ONNX Runtime).
    pub fn from_path(path: &Path, config: &RuntimeConfig) -> Result<Self> {
        let load_err = |reason: String| RuntimeError::Load {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(load_err("not a file".into())),
            Err(e) => return Err(load_err(e.to_string())),
        }
        let ort_version = env::ensure_ort()?;
        let sha256 = converters::ir::model::sha256_file(path).map_err(|e| load_err(e.to_string()))?;
        let session = builder(config, path)?
            .commit_from_file(path)
            .map_err(|e| load_err(e.to_string()))?;
        Self::new(session, path.display().to_string(), Some(sha256), config, ort_version)
    }

    /// Load an in-memory model (external tensors are inlined first); nothing is written to disk.
    pub fn from_model(model: &converters::Model, config: &RuntimeConfig) -> Result<Self> {
        let name = model.display_name();
        let load_err = |reason: String| RuntimeError::Load {
            path: PathBuf::from(&name),
            reason,
        };
        let bytes = model.to_inline_bytes().map_err(|e| load_err(e.to_string()))?;
        let sha = { converters::ir::model::sha256_hex(&bytes) };
        Self::from_bytes_named(&bytes, &name, Some(sha), config)
    }

    /// Load serialized ONNX bytes; `name` is used in messages.
    pub fn from_bytes(bytes: &[u8], name: &str, config: &RuntimeConfig) -> Result<Self> {
        let sha = { converters::ir::model::sha256_hex(bytes) };
        Self::from_bytes_named(bytes, name, Some(sha), config)
    }

    fn from_bytes_named(bytes: &[u8], name: &str, sha256: Option<String>, config: &RuntimeConfig) -> Result<Self> {
        let ort_version = env::ensure_ort()?;
        let path = PathBuf::from(name);
        let session = builder(config, &path)?
            .commit_from_memory(bytes)
            .map_err(|e| RuntimeError::Load {
                path,
                reason: e.to_string(),
            })?;
        Self::new(session, name.to_string(), sha256, config, ort_version)
    }

    fn new(
        session: Session,
        name: String,
        sha256: Option<String>,
        config: &RuntimeConfig,
        ort_version: String,
    ) -> Result<Self> {
        let specs = |outlets: &[ort::value::Outlet]| {
            outlets
                .iter()
                .map(|o| tensor_spec(o.name(), o.dtype()))
                .collect::<Vec<_>>()
        };
        Ok(Runner {
            inputs: specs(session.inputs()),
            outputs: specs(session.outputs()),
            session,
            name,
            sha256,
            config: config.clone(),
            ort_version,
        })
    }

    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// File path or in-memory name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sha256 of the model bytes the session was built from.
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.as_deref()
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn ort_version(&self) -> &str {
        &self.ort_version
    }

    /// The session itself, for the IoBinding layer (`binding.rs`).
    pub(super) fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Run with every model output.
    pub fn run(&mut self, feeds: &[(&str, Feed<'_>)]) -> Result<Outputs> {
        self.run_select(feeds, &[])
    }

    /// Run and fetch only `names` (all outputs when empty). Names are checked before ONNX Runtime is called.
    pub fn run_select(&mut self, feeds: &[(&str, Feed<'_>)], names: &[&str]) -> Result<Outputs> {
        self.run_with_raw(feeds, &[], names)
    }

    /// Run with `raw` tensors fed in place next to the checked `feeds`, fetching `names` (all outputs when empty).
    /// CPU only: the raw bytes are host memory.
    pub fn run_with_raw(&mut self, feeds: &[(&str, Feed<'_>)], raw: &[RawF32<'_>], names: &[&str]) -> Result<Outputs> {
        if raw.is_empty() {
            check_feeds(&self.inputs, feeds)?;
        } else {
            let rest: Vec<TensorSpec> = self
                .inputs
                .iter()
                .filter(|s| !raw.iter().any(|r| r.name == s.name))
                .cloned()
                .collect();
            check_feeds(&rest, feeds)?;
        }
        self.check_output_names(names)?;
        let mut values: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(feeds.len() + raw.len());
        for (name, feed) in feeds {
            let v = feed_value(feed).map_err(|reason| RuntimeError::BadFeed {
                name: name.to_string(),
                expected: "a tensor ONNX Runtime accepts".into(),
                got: reason,
            })?;
            values.push((Cow::Borrowed(*name), v));
        }
        for r in raw {
            let v = raw_value(&self.inputs, r)?;
            values.push((Cow::Borrowed(r.name), SessionInputValue::from(v)));
        }
        self.run_values(values, names)
    }

    fn run_values(&mut self, values: Vec<(Cow<'_, str>, SessionInputValue<'_>)>, names: &[&str]) -> Result<Outputs> {
        let model = self.name.clone();
        let run_err = |e: ort::Error| RuntimeError::Run {
            model: model.clone(),
            reason: e.to_string(),
        };
        if names.is_empty() {
            let out = self.session.run(values).map_err(run_err)?;
            collect_outputs(&self.name, out)
        } else {
            let opts = select_options(names).map_err(run_err)?;
            let out = self.session.run_with_options(values, &opts).map_err(run_err)?;
            collect_outputs(&self.name, out)
        }
    }

    /// Check feeds once and copy them into ONNX Runtime values for [`Runner::run_prepared`] /
    /// [`Runner::time_prepared`].
    pub fn prepare(&self, feeds: &[(&str, Feed<'_>)]) -> Result<Prepared> {
        check_feeds(&self.inputs, feeds)?;
        let mut values = Vec::with_capacity(feeds.len());
        for (name, feed) in feeds {
            let bad = |reason: String| RuntimeError::BadFeed {
                name: name.to_string(),
                expected: "a tensor ONNX Runtime accepts".into(),
                got: reason,
            };
            let v: DynValue = match feed {
                Feed::F32(a) => Tensor::from_array(a.as_standard_layout().into_owned()).map(|t| t.into_dyn()),
                Feed::F16(a) => Tensor::from_array(a.as_standard_layout().into_owned()).map(|t| t.into_dyn()),
                Feed::I64(a) => Tensor::from_array(a.as_standard_layout().into_owned()).map(|t| t.into_dyn()),
            }
            .map_err(|e| bad(e.to_string()))?;
            values.push((name.to_string(), v));
        }
        Ok(Prepared { values })
    }

    /// Run prepared feeds and fetch `names` (all outputs when empty).
    pub fn run_prepared(&mut self, prepared: &Prepared, names: &[&str]) -> Result<Outputs> {
        self.check_output_names(names)?;
        let values = prepared_inputs(prepared);
        self.run_values(values, names)
    }

    /// Run prepared feeds, drop the outputs unread, and return the time spent inside ONNX Runtime's run call
    /// (what `ratio bench` reports; the caller's loop time minus this is the tool's own overhead).
    pub fn time_prepared(&mut self, prepared: &Prepared) -> Result<Duration> {
        let values = prepared_inputs(prepared);
        let start = Instant::now();
        let out = self.session.run(values);
        let elapsed = start.elapsed();
        out.map_err(|e| RuntimeError::Run {
            model: self.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(elapsed)
    }

    /// Stop ONNX Runtime's profiler and return the path of the JSON trace it wrote. Only meaningful when the
    /// runner was built with [`RuntimeConfig::profile`].
    pub fn end_profiling(&mut self) -> Result<PathBuf> {
        if self.config.profile.is_none() {
            return Err(RuntimeError::Run {
                model: self.name.clone(),
                reason: "profiling was not enabled (RuntimeConfig::profile is None)".into(),
            });
        }
        self.session
            .end_profiling()
            .map(PathBuf::from)
            .map_err(|e| RuntimeError::Run {
                model: self.name.clone(),
                reason: format!("ending the profiler: {e}"),
            })
    }

    fn check_output_names(&self, names: &[&str]) -> Result<()> {
        for n in names {
            if !self.outputs.iter().any(|o| o.name == *n) {
                return Err(RuntimeError::UnknownOutput {
                    model: self.name.clone(),
                    name: n.to_string(),
                    available: self
                        .outputs
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }
}

fn prepared_inputs(prepared: &Prepared) -> Vec<(Cow<'_, str>, SessionInputValue<'_>)> {
    prepared
        .values
        .iter()
        .map(|(n, v)| (Cow::Borrowed(n.as_str()), SessionInputValue::from(v)))
        .collect()
}

fn select_options(names: &[&str]) -> ort::Result<RunOptions<ort::session::HasSelectedOutputs>> {
    let selector = names
        .iter()
        .fold(OutputSelector::no_default(), |s, n| s.with(n.to_string()));
    Ok(RunOptions::new()?.with_outputs(selector))
}

/// Borrow a contiguous view as is; copy a strided one (ONNX Runtime needs contiguous memory).
fn feed_value<'v>(feed: &Feed<'v>) -> std::result::Result<SessionInputValue<'v>, String> {
    fn one<'v, T>(a: &ndarray::ArrayViewD<'v, T>) -> std::result::Result<SessionInputValue<'v>, String>
    where
        T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static,
    {
        if a.is_standard_layout() {
            TensorRef::from_array_view(a.clone())
                .map(SessionInputValue::from)
                .map_err(|e| e.to_string())
        } else {
            Tensor::from_array(a.as_standard_layout().into_owned())
                .map(SessionInputValue::from)
                .map_err(|e| e.to_string())
        }
    }
    match feed {
        Feed::F32(a) => one(a),
        Feed::F16(a) => one(a),
        Feed::I64(a) => one(a),
    }
}

/// An ONNX Runtime tensor over `r.bytes`, checked against the input's spec; it must not outlive the bytes (the
/// caller drops it within the run that borrows them).
fn raw_value(inputs: &[TensorSpec], r: &RawF32<'_>) -> Result<DynValue> {
    let bad = |expected: String, got: String| RuntimeError::BadFeed {
        name: r.name.to_string(),
        expected,
        got,
    };
    let spec = inputs
        .iter()
        .find(|s| s.name == r.name)
        .ok_or_else(|| bad("a model input".into(), "an unknown input name".into()))?;
    let dims_ok = spec.elem == ElemType::F32
        && spec.dims.len() == r.dims.len()
        && spec.dims.iter().zip(r.dims).all(|(s, d)| s.is_none_or(|s| s == *d));
    let n: i64 = r.dims.iter().product();
    if !dims_ok || r.dims.iter().any(|&d| d < 0) || r.bytes.len() as i64 != n * 4 {
        return Err(bad(
            format!("{spec}"),
            format!("f32 {:?} in {} bytes", r.dims, r.bytes.len()),
        ));
    }
    let err = |e: ort::Error| bad("a tensor ONNX Runtime accepts".into(), e.to_string());
    let info = ort::memory::MemoryInfo::new(
        ort::memory::AllocationDevice::CPU,
        0,
        ort::memory::AllocatorType::Device,
        ort::memory::MemoryType::Default,
    )
    .map_err(err)?;
    let mut ptr: *mut ort::sys::OrtValue = std::ptr::null_mut();
    // SAFETY: ONNX Runtime only reads the buffer (it is an input), whose length was checked above; the value is
    // dropped before `r.bytes` is (see `run_with_raw`). The memory info is copied into the value.
    unsafe {
        use ort::AsPointer;
        let status = (ort::api().CreateTensorWithDataAsOrtValue)(
            info.ptr(),
            r.bytes.as_ptr().cast_mut().cast(),
            r.bytes.len(),
            r.dims.as_ptr(),
            r.dims.len(),
            ort::sys::ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
            &mut ptr,
        );
        ort::Error::result_from_status(status).map_err(err)?;
        let ptr = std::ptr::NonNull::new(ptr).ok_or_else(|| bad("a tensor".into(), "a null value".into()))?;
        Ok(DynValue::from_ptr(ptr, Some(&ort::memory::Allocator::default())))
    }
}

fn collect_outputs(model: &str, out: SessionOutputs<'_>) -> Result<Outputs> {
    let mut outputs = Outputs::default();
    for (name, value) in out.iter() {
        read_output(&mut outputs, model, name, &value)?;
    }
    outputs.model = model.to_string();
    Ok(outputs)
}

/// Copy one host-resident output into `outputs` (f32, with integers also kept exactly).
pub(super) fn read_output(outputs: &mut Outputs, model: &str, name: &str, value: &DynValue) -> Result<()> {
    let elem = match value.dtype() {
        ValueType::Tensor { ty, .. } => elem_type(*ty),
        other => ElemType::Other(format!("{other:?}")),
    };
    let bad = |e: ort::Error| RuntimeError::Run {
        model: model.to_string(),
        reason: format!("reading output '{name}': {e}"),
    };
    let arr: ArrayD<f32> = match elem {
        ElemType::F32 => value.try_extract_array::<f32>().map_err(bad)?.to_owned(),
        ElemType::F16 => value.try_extract_array::<half::f16>().map_err(bad)?.mapv(f32::from),
        ElemType::I64 => {
            let a = value.try_extract_array::<i64>().map_err(bad)?;
            outputs.insert_i64(name, a.to_owned());
            a.mapv(|v| v as f32)
        }
        ElemType::I32 => value.try_extract_array::<i32>().map_err(bad)?.mapv(|v| v as f32),
        ElemType::F64 => value.try_extract_array::<f64>().map_err(bad)?.mapv(|v| v as f32),
        ElemType::U8 => value.try_extract_array::<u8>().map_err(bad)?.mapv(f32::from),
        ElemType::Bool => value
            .try_extract_array::<bool>()
            .map_err(bad)?
            .mapv(|v| if v { 1.0 } else { 0.0 }),
        other => {
            outputs.insert_unreadable(name, other);
            return Ok(());
        }
    };
    outputs.insert(name, elem, arr);
    Ok(())
}

fn tensor_spec(name: &str, ty: &ValueType) -> TensorSpec {
    match ty {
        ValueType::Tensor { ty, shape, .. } => TensorSpec {
            name: name.to_string(),
            elem: elem_type(*ty),
            dims: shape.iter().map(|&d| (d >= 0).then_some(d)).collect(),
        },
        other => TensorSpec {
            name: name.to_string(),
            elem: ElemType::Other(format!("{other:?}")),
            dims: Vec::new(),
        },
    }
}

fn elem_type(t: TensorElementType) -> ElemType {
    match t {
        TensorElementType::Float32 => ElemType::F32,
        TensorElementType::Float16 => ElemType::F16,
        TensorElementType::Bfloat16 => ElemType::BF16,
        TensorElementType::Float64 => ElemType::F64,
        TensorElementType::Int64 => ElemType::I64,
        TensorElementType::Int32 => ElemType::I32,
        TensorElementType::Int8 => ElemType::I8,
        TensorElementType::Uint8 => ElemType::U8,
        TensorElementType::Bool => ElemType::Bool,
        other => ElemType::Other(format!("{other:?}")),
    }
}

fn builder(config: &RuntimeConfig, model: &Path) -> Result<SessionBuilder> {
    let env = env::env()?;
    let fail = |what: &str, e: &dyn std::fmt::Display| RuntimeError::Load {
        path: model.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    let mut b = Session::builder(&env.env).map_err(|e| fail("session options", &e))?;
    let level = match config.opt_level {
        OptLevel::Disable => GraphOptimizationLevel::Disable,
        OptLevel::Basic => GraphOptimizationLevel::Level1,
        OptLevel::Extended => GraphOptimizationLevel::Level2,
        OptLevel::All => GraphOptimizationLevel::All,
    };
    b = b
        .with_optimization_level(level)
        .map_err(|e| fail("optimisation level", &e))?;
    if let Some(n) = config.intra_threads {
        b = b.with_intra_threads(n).map_err(|e| fail("intra-op threads", &e))?;
    }
    if let Some(n) = config.inter_threads {
        b = b.with_inter_threads(n).map_err(|e| fail("inter-op threads", &e))?;
    }
    if let Some(p) = &config.profile {
        b = b.with_profiling(p).map_err(|e| fail("profiler", &e))?;
    }
    match config.device {
        Device::Cpu => Ok(b),
        Device::Cuda(id) => with_cuda(b, id),
    }
}

#[cfg(feature = "cuda")]
fn with_cuda(b: SessionBuilder, id: u32) -> Result<SessionBuilder> {
    // error_on_failure: without it ONNX Runtime logs the failure and quietly runs everything on the CPU.
    let ep = ort::ep::CUDA::default()
        .with_device_id(id as i32)
        .build()
        .error_on_failure();
    b.with_execution_providers([ep]).map_err(|e| RuntimeError::Cuda {
        reason: format!("registering the CUDA execution provider on device {id}: {e}"),
    })
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(_b: SessionBuilder, id: u32) -> Result<SessionBuilder> {
    Err(RuntimeError::Cuda {
        reason: format!(
            "device cuda:{id} requested, but ratio was built without the `cuda` feature \
             (rebuild with `cargo build --features cuda`)"
        ),
    })
}
