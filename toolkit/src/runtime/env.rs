//! Finding and loading the ONNX Runtime shared library (`ort`'s `load-dynamic`) once per process.
//!
//! `ort` panics on first use when the library is missing, so the path is checked here first and a missing library
//! becomes [`RuntimeError::MissingLibrary`] with the command that fetches it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::error::{Result, RuntimeError};

/// Library file name of the ONNX Runtime release the project pins (scripts/setup-ort.sh).
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";
pub const SETUP_HINT: &str = "run scripts/setup-ort.sh (it fetches the pinned onnxruntime wheel and unpacks the \
                              library into .ort/lib), or set ORT_DYLIB_PATH to an existing libonnxruntime.so";

pub(crate) struct OrtEnv {
    pub(crate) env: ort::environment::Environment,
    pub(crate) version: String,
    pub(crate) library: PathBuf,
}

static ENV: OnceLock<std::result::Result<OrtEnv, (PathBuf, String)>> = OnceLock::new();

/// Where the library is looked for: `ORT_DYLIB_PATH` when set (relative paths against the working directory),
/// else `.ort/lib/<lib>` in the working directory, else in the workspace this binary was built from.
pub fn library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
        };
    }
    let local = Path::new(".ort/lib").join(ORT_LIBRARY);
    if local.exists() {
        return std::env::current_dir().map(|d| d.join(&local)).unwrap_or(local);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".ort/lib")
        .join(ORT_LIBRARY)
}

/// Check that `path` is a readable file before anything hands it to `ort`.
pub fn check_library(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(RuntimeError::MissingLibrary {
            path: path.to_path_buf(),
            hint: format!("not a file; {SETUP_HINT}"),
        }),
        Err(e) => Err(RuntimeError::MissingLibrary {
            path: path.to_path_buf(),
            hint: format!("{e}; {SETUP_HINT}"),
        }),
    }
}

/// Load ONNX Runtime (once per process) and return its version, e.g. `1.31.1`.
pub fn ensure_ort() -> Result<String> {
    env().map(|e| e.version.clone())
}

pub(crate) fn env() -> Result<&'static OrtEnv> {
    if let Some(done) = ENV.get() {
        return done.as_ref().map_err(init_error);
    }
    let path = library_path();
    // A missing file is reported without being cached, so a later call after setup-ort.sh can still succeed.
    check_library(&path)?;
    ENV.get_or_init(|| init(&path)).as_ref().map_err(init_error)
}

fn init_error((path, reason): &(PathBuf, String)) -> RuntimeError {
    RuntimeError::Init {
        path: path.clone(),
        reason: reason.clone(),
    }
}

fn init(path: &Path) -> std::result::Result<OrtEnv, (PathBuf, String)> {
    let fail = |e: &dyn std::fmt::Display| (path.to_path_buf(), e.to_string());
    let builder = ort::init_from(path).map_err(|e| fail(&e))?;
    let env = builder.with_name("ratio").build().map_err(|e| fail(&e))?;
    let version = version_of(ort::info(), path);
    Ok(OrtEnv {
        env,
        version,
        library: path.to_path_buf(),
    })
}

/// The release version: from the build string (`git-branch=rel-1.31.1`), else from the library's file name.
fn version_of(info: &str, path: &Path) -> String {
    let from_branch = info
        .split([',', ' '])
        .find_map(|kv| kv.trim().strip_prefix("git-branch=rel-"))
        .map(str::to_string);
    let from_name = || {
        path.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once(".so."))
            .map(|(_, v)| v.to_string())
    };
    from_branch
        .or_else(from_name)
        .unwrap_or_else(|| format!("unknown ({info})"))
}

/// Whether this machine exposes an NVIDIA device node (the driver is loaded). Independent of ONNX Runtime, so a
/// failing CUDA path cannot pass itself off as "no GPU".
pub fn nvidia_device_present() -> bool {
    ["/dev/nvidiactl", "/dev/nvidia0"].iter().any(|p| Path::new(p).exists())
}

/// Path of the library the process loaded, once [`ensure_ort`] succeeded.
pub fn loaded_library() -> Option<PathBuf> {
    ENV.get().and_then(|e| e.as_ref().ok()).map(|e| e.library.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_names_the_path_and_the_fix() {
        let p = Path::new("/nonexistent/libonnxruntime.so.1.31.1");
        let e = check_library(p).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, RuntimeError::MissingLibrary { .. }));
        assert!(msg.contains("/nonexistent/libonnxruntime.so.1.31.1"), "{msg}");
        assert!(msg.contains("scripts/setup-ort.sh"), "{msg}");
    }

    #[test]
    fn directory_is_not_a_library() {
        let e = check_library(Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("not a file"));
    }

    #[test]
    fn version_from_build_string_or_file_name() {
        let p = Path::new("/x/libonnxruntime.so.1.31.1");
        assert_eq!(
            version_of("ORT Build Info: git-branch=rel-1.30.0, git-commit-id=abc", p),
            "1.30.0"
        );
        assert_eq!(version_of("ORT Build Info: build type=Release", p), "1.31.1");
    }
}
