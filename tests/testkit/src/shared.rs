//! Where the real data lives: `shared/` beside the checkout. The main checkout has it at `../shared`, a worktree
//! one level deeper at `../../shared`, so the lookup walks up from this crate; `RATIO_SHARED` names it explicitly.

use std::path::{Path, PathBuf};

const HINT: &str = "the real data and checkpoints live in a folder `shared/` beside the checkout (see shared/DATA.md); \
     set RATIO_SHARED=/path/to/shared to use another place";

/// The `shared/` folder, or why it cannot be found.
pub fn shared_root() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("RATIO_SHARED") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(format!("RATIO_SHARED={} is not a folder", dir.display()))
        };
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared"))
        .find(|p| p.join("DATA.md").is_file() || p.join("models").is_dir())
        .ok_or_else(|| format!("no shared/ folder above {}: {HINT}", here.display()))
}

/// `shared/<rel>` if it exists.
pub fn try_shared(rel: &str) -> Result<PathBuf, String> {
    let root = shared_root()?;
    let p = root.join(rel);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{} is missing: {HINT}", p.display()))
    }
}

/// `shared/<rel>`; panics (failing the test) with what is missing and how to get it.
pub fn shared(rel: &str) -> PathBuf {
    try_shared(rel).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_checkpoints_and_names_what_is_missing() {
        assert!(shared("models/mnist_cnn.onnx").is_file());
        let e = try_shared("models/no-such-model.onnx").unwrap_err();
        assert!(
            e.contains("no-such-model.onnx is missing") && e.contains("RATIO_SHARED"),
            "{e}"
        );
    }
}
