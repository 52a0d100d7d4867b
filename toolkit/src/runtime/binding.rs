//! [`Resident`]: a session whose state (parameters, optimizer slots, running statistics) stays in session memory
//! between runs. Two IoBindings alternate over two buffer sets: binding A reads set 0 and writes its outputs into
//! set 1, binding B reads set 1 and writes into set 0, so no run ever writes a buffer it reads. Each run uploads
//! only the per-run inputs and reads back only the outputs asked for; the state crosses to the host only through
//! [`Resident::read_state`] / [`Resident::write_state`].
//!
//! The same code runs on the CPU and the CUDA execution provider; only the memory the state is allocated in
//! differs. What it relies on (measured with ort 2.0.0-rc.15, see ../shared/notes/ort-iobinding.md): bind only
//! owned values (`Tensor::new` on the session's allocator, `Tensor::from_array`, session outputs), never
//! `TensorRef` (binding one deadlocks); `bind_output` takes only `Tensor::new` tensors; per-run inputs are re-bound
//! on every run (on CPU a bound input is read in place, on CUDA it is copied at bind time).

use ndarray::{ArrayD, IxDyn};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, RunOptions};
use ort::value::Tensor;

use super::config::Device;
use super::error::{Result, RuntimeError};
use super::outputs::Outputs;
use super::runner::{Runner, read_output};
use super::spec::{Feed, check_feeds_except};

/// One tensor carried from run to run: read from graph input `input`, replaced by graph output `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSlot {
    pub input: String,
    pub output: String,
    pub dims: Vec<usize>,
}

/// How the state buffers are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffers {
    /// Two sets, each binding's outputs the other's inputs.
    PingPong,
    /// Deliberately wrong: every state output written into the buffer its input is read from. It exists so tests
    /// can show that [`Resident::check_disjoint`] and a comparison against plain runs catch aliasing; never use
    /// it to train.
    Aliased,
}

/// An owned per-run input (batch, labels, learning rate), moved into ONNX Runtime without a copy on the CPU.
#[derive(Debug, Clone)]
pub enum Upload {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

impl Upload {
    fn feed(&self) -> Feed<'_> {
        match self {
            Upload::F32(a) => Feed::F32(a.view()),
            Upload::I64(a) => Feed::I64(a.view()),
        }
    }
}

pub struct Resident {
    /// `bindings[set][extra]` reads buffer set `set`; `extra` also binds the optional outputs. Declared first so
    /// the bindings release their buffers before the buffers and the session go.
    bindings: Vec<[IoBinding; 2]>,
    sets: Vec<Vec<Tensor<f32>>>,
    slots: Vec<StateSlot>,
    /// The set holding the state.
    current: usize,
    /// The set the last run wrote, until [`Resident::commit`] makes it current.
    pending: Option<usize>,
    always: Vec<String>,
    optional: Vec<String>,
    device: Device,
    runner: Runner,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident")
            .field("runner", &self.runner)
            .field("slots", &self.slots.len())
            .field("sets", &self.sets.len())
            .field("current", &self.current)
            .finish()
    }
}

fn run_err(runner: &Runner, what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Run {
        model: runner.name().to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Where the state lives: the session's own device memory.
fn state_memory(device: Device) -> ort::Result<MemoryInfo<'static>> {
    match device {
        Device::Cpu => MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default),
        Device::Cuda(id) => MemoryInfo::new(
            AllocationDevice::CUDA,
            id as i32,
            AllocatorType::Device,
            MemoryType::Default,
        ),
    }
}

/// Where read-back outputs (loss, logits) land: host memory, whatever the device.
fn host_memory() -> ort::Result<MemoryInfo<'static>> {
    MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default)
}

impl Resident {
    /// Allocate the buffer sets on the runner's device, upload `init` (one host array per slot) into the current
    /// set and wire the bindings. `always` are read back after every run, `optional` only when asked.
    pub fn new(
        mut runner: Runner,
        slots: Vec<StateSlot>,
        init: &[ArrayD<f32>],
        always: &[&str],
        optional: &[&str],
        buffers: Buffers,
    ) -> Result<Self> {
        if init.len() != slots.len() {
            return Err(run_err(
                &runner,
                "binding state",
                format!("{} initial values for {} state slots", init.len(), slots.len()),
            ));
        }
        for name in always.iter().chain(optional) {
            if !runner.outputs().iter().any(|o| o.name == *name) {
                return Err(RuntimeError::UnknownOutput {
                    model: runner.name().to_string(),
                    name: name.to_string(),
                    available: runner
                        .outputs()
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let device = runner.config().device;
        let n_sets = match buffers {
            Buffers::PingPong => 2,
            Buffers::Aliased => 1,
        };
        let alloc = state_memory(device)
            .and_then(|m| Allocator::new(runner.session_mut(), m))
            .map_err(|e| run_err(&runner, &format!("allocator for the {device} state"), e))?;
        let mut sets = Vec::with_capacity(n_sets);
        for _ in 0..n_sets {
            let set = slots
                .iter()
                .map(|s| Tensor::<f32>::new(&alloc, s.dims.clone()))
                .collect::<ort::Result<Vec<_>>>()
                .map_err(|e| run_err(&runner, "allocating state buffers", e))?;
            sets.push(set);
        }
        let host = host_memory().map_err(|e| run_err(&runner, "host memory info", e))?;
        let mut bindings = Vec::with_capacity(n_sets);
        for set in 0..n_sets {
            let target = (set + 1) % n_sets;
            let mut pair = Vec::with_capacity(2);
            for extra in [false, true] {
                let mut b = runner
                    .session_mut()
                    .create_binding()
                    .map_err(|e| run_err(&runner, "creating an IoBinding", e))?;
                for (slot, t) in slots.iter().zip(&sets[set]) {
                    b.bind_input(slot.input.as_str(), t)
                        .map_err(|e| run_err(&runner, &format!("binding state input '{}'", slot.input), e))?;
                }
                for (slot, t) in slots.iter().zip(sets[target].iter_mut()) {
                    b.bind_output(slot.output.as_str(), t)
                        .map_err(|e| run_err(&runner, &format!("binding state output '{}'", slot.output), e))?;
                }
                let names = always.iter().chain(if extra { optional } else { &[] });
                for name in names {
                    b.bind_output_to_device(*name, &host)
                        .map_err(|e| run_err(&runner, &format!("binding output '{name}'"), e))?;
                }
                pair.push(b);
            }
            let pair: [IoBinding; 2] = pair.try_into().map_err(|_| run_err(&runner, "bindings", "pair"))?;
            bindings.push(pair);
        }
        let mut r = Resident {
            bindings,
            sets,
            slots,
            current: 0,
            pending: None,
            always: always.iter().map(|s| s.to_string()).collect(),
            optional: optional.iter().map(|s| s.to_string()).collect(),
            device,
            runner,
        };
        r.write_state(init)?;
        if buffers == Buffers::PingPong {
            r.check_disjoint()?;
        }
        Ok(r)
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn slots(&self) -> &[StateSlot] {
        &self.slots
    }

    /// Fail when any state output of a binding would be written into memory that binding reads (an aliased
    /// wiring makes the update read half-written weights).
    pub fn check_disjoint(&self) -> Result<()> {
        let n = self.sets.len();
        for set in 0..n {
            let target = (set + 1) % n;
            for (i, src) in self.sets[set].iter().enumerate() {
                let (lo, hi) = span(src);
                for (j, dst) in self.sets[target].iter().enumerate() {
                    let (dlo, dhi) = span(dst);
                    if lo < dhi && dlo < hi {
                        return Err(run_err(
                            &self.runner,
                            "state buffers alias",
                            format!(
                                "output '{}' would be written into the buffer input '{}' reads",
                                self.slots[j].output, self.slots[i].input
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Run once with the per-run `feeds` (every input that is not state). The state outputs go into the other
    /// buffer set; the state does not change until [`Resident::commit`]. Returns the `always` outputs, plus the
    /// `optional` ones when `with_optional`. With `release`, the session's memory arena hands its free blocks
    /// back after the run (e.g. before validation builds a second session beside this one); the state stays.
    pub fn run(&mut self, feeds: Vec<(&str, Upload)>, with_optional: bool, release: bool) -> Result<Outputs> {
        let bound: Vec<&str> = self.slots.iter().map(|s| s.input.as_str()).collect();
        let views: Vec<(&str, Feed<'_>)> = feeds.iter().map(|(n, u)| (*n, u.feed())).collect();
        check_feeds_except(self.runner.inputs(), &views, &bound)?;
        drop(views);
        let set = self.current;
        let binding = &mut self.bindings[set][usize::from(with_optional)];
        for (name, up) in feeds {
            let bad = |e: ort::Error| RuntimeError::BadFeed {
                name: name.to_string(),
                expected: "a tensor ONNX Runtime accepts".into(),
                got: e.to_string(),
            };
            match up {
                Upload::F32(a) => binding.bind_input(name, &Tensor::from_array(a).map_err(bad)?),
                Upload::I64(a) => binding.bind_input(name, &Tensor::from_array(a).map_err(bad)?),
            }
            .map_err(|e| run_err(&self.runner, &format!("binding input '{name}'"), e))?;
        }
        let model = self.runner.name().to_string();
        let binding = &self.bindings[set][usize::from(with_optional)];
        let fail = |e: ort::Error| RuntimeError::Run {
            model: model.clone(),
            reason: e.to_string(),
        };
        let session = self.runner.session_mut();
        let mut out = if release {
            let mut opts = RunOptions::new().map_err(fail)?;
            let arena = match self.device {
                Device::Cpu => "cpu:0".to_string(),
                Device::Cuda(id) => format!("gpu:{id}"),
            };
            opts.set("memory.enable_memory_arena_shrinkage", arena).map_err(fail)?;
            session.run_binding_with_options(binding, &opts).map_err(fail)?
        } else {
            session.run_binding(binding).map_err(fail)?
        };
        let mut outputs = Outputs::default();
        let wanted = self
            .always
            .iter()
            .chain(if with_optional { &self.optional[..] } else { &[] });
        for name in wanted {
            let v = out.remove(name.as_str()).ok_or_else(|| RuntimeError::Run {
                model: model.clone(),
                reason: format!("bound output '{name}' missing after the run"),
            })?;
            read_output(&mut outputs, &model, name, &v)?;
        }
        outputs.model = model;
        self.pending = Some((set + 1) % self.sets.len());
        Ok(outputs)
    }

    /// Make the outputs of the last run the state. Without it (a divergent step) the state stays where it was,
    /// intact, and the next run writes over the other set again.
    pub fn commit(&mut self) {
        if let Some(p) = self.pending.take() {
            self.current = p;
        }
    }

    /// A host copy of the state, one array per slot (a device→host copy on CUDA).
    pub fn read_state(&self) -> Result<Vec<ArrayD<f32>>> {
        self.sets[self.current]
            .iter()
            .zip(&self.slots)
            .map(|(t, s)| {
                let host = t
                    .to(AllocationDevice::CPU, 0)
                    .map_err(|e| run_err(&self.runner, &format!("reading back '{}'", s.input), e))?;
                let (_, data) = host
                    .try_extract_tensor::<f32>()
                    .map_err(|e| run_err(&self.runner, &format!("reading back '{}'", s.input), e))?;
                ArrayD::from_shape_vec(IxDyn(&s.dims), data.to_vec())
                    .map_err(|e| run_err(&self.runner, &format!("reading back '{}'", s.input), e))
            })
            .collect()
    }

    /// Replace the state with host values (a host→device copy on CUDA); shapes must match the slots.
    pub fn write_state(&mut self, values: &[ArrayD<f32>]) -> Result<()> {
        if values.len() != self.slots.len() {
            return Err(run_err(
                &self.runner,
                "writing state",
                format!("{} values for {} state slots", values.len(), self.slots.len()),
            ));
        }
        let current = self.current;
        for ((v, s), dst) in values.iter().zip(&self.slots).zip(self.sets[current].iter_mut()) {
            if v.shape() != s.dims.as_slice() {
                return Err(RuntimeError::BadFeed {
                    name: s.input.clone(),
                    expected: format!("state {:?}", s.dims),
                    got: format!("{:?}", v.shape()),
                });
            }
            let host = Tensor::from_array(v.as_standard_layout().into_owned())
                .and_then(|h| h.copy_into(&mut *dst))
                .map_err(|e| RuntimeError::Run {
                    model: self.runner.name().to_string(),
                    reason: format!("uploading state '{}': {e}", s.input),
                });
            host?;
        }
        self.pending = None;
        Ok(())
    }
}

/// Byte range a tensor's data occupies (device addresses on CUDA; only compared, never dereferenced).
fn span(t: &Tensor<f32>) -> (usize, usize) {
    let lo = t.data_ptr() as usize;
    let n: usize = t.shape().iter().map(|&d| d.max(0) as usize).product();
    (lo, lo + n.max(1) * std::mem::size_of::<f32>())
}
