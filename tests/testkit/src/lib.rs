//! Test helpers shared by every crate of `ratio` (a dev-dependency only):
//! - [`shared`]: the real data and checkpoints in `shared/` beside the checkout (`RATIO_SHARED` overrides), with an
//!   error that says what is missing and how to get it;
//! - [`Cli`] / [`ratio!`]: run a `ratio` binary and assert on its exit status and output;
//! - [`Filters`]: redact what changes from run to run (temp folders, timings) before comparing text.

mod cli;
mod filters;
mod shared;

pub use cli::{Cli, Run};
pub use filters::Filters;
pub use shared::{shared, shared_root, try_shared};

/// A [`Cli`] for the `ratio` binary of the calling crate's build (`env!("CARGO_BIN_EXE_ratio")`), or of another
/// binary: `ratio!("ratio-convert")`. Only integration tests of the crate that owns the binary can use it.
#[macro_export]
macro_rules! ratio {
    () => {
        $crate::Cli::new(env!("CARGO_BIN_EXE_ratio"))
    };
    ("ratio-convert") => {
        $crate::Cli::new(env!("CARGO_BIN_EXE_ratio-convert"))
    };
}
