//! The one way `ratio` talks to people. Results go to stdout through [`emit`] or [`outln!`] (a closed pipe ends
//! the command cleanly); status lines go to stderr through [`status!`] unless `-q`; detail through [`detail!`] only with `-v`;
//! progress bars come from [`progress_bar`] and are hidden by `-q` or `--no-progress`.
//!
//! The global flags are set once, by `main`, before any command runs ([`configure`]). Library callers (tests,
//! benches) that never call it get the defaults: status lines on, detail off, progress on.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);
static PROGRESS: AtomicBool = AtomicBool::new(true);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verbosity {
    /// `-q`: results only.
    Quiet = 0,
    Normal = 1,
    /// `-v`: also what each step decided and why.
    Verbose = 2,
}

/// Set the process-wide output settings from the global flags.
pub fn configure(quiet: bool, verbose: u8, progress: bool) {
    let level = match (quiet, verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    VERBOSITY.store(level as u8, Ordering::Relaxed);
    PROGRESS.store(progress && level > Verbosity::Quiet, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// Whether progress bars are drawn (on unless `-q` or `--no-progress`).
pub fn progress_enabled() -> bool {
    PROGRESS.load(Ordering::Relaxed)
}

/// Write command output to stdout; a closed pipe (`ratio inspect m.onnx | head`) surfaces as an error that
/// `commands::finish` turns into a clean exit instead of a panic.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// One line of command output on stdout. A closed pipe ends the process cleanly (exit 0, as `head` expects);
/// any other write failure ends it with the error and exit 2. Use through [`outln!`].
pub fn out_line(args: std::fmt::Arguments<'_>) {
    if let Err(e) = emit(&format!("{args}\n")) {
        let pipe = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
        if !pipe {
            eprintln!("error: writing to stdout: {e}");
        }
        std::process::exit(if pipe { 0 } else { 2 });
    }
}

/// Text already laid out (a table) on stderr, unless `-q`.
pub fn status_text(text: &str) {
    if verbosity() >= Verbosity::Normal {
        eprint!("{text}");
    }
}

/// A status line on stderr, unless `-q`. Use through [`status!`].
pub fn status_line(args: std::fmt::Arguments<'_>) {
    if verbosity() >= Verbosity::Normal {
        eprintln!("{args}");
    }
}

/// A detail line on stderr, only with `-v`. Use through [`detail!`].
pub fn detail_line(args: std::fmt::Arguments<'_>) {
    if verbosity() >= Verbosity::Verbose {
        eprintln!("{args}");
    }
}

/// `outln!("{} → {}", a, b)`: one line of the command's result on stdout (see [`out_line`]).
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::printer::out_line(format_args!($($t)*)) };
}

/// `status!("wrote {}", p.display())`: a line on stderr that `-q` silences.
#[macro_export]
macro_rules! status {
    ($($t:tt)*) => { $crate::printer::status_line(format_args!($($t)*)) };
}

/// `detail!(…)`: a line on stderr shown only with `-v`.
#[macro_export]
macro_rules! detail {
    ($($t:tt)*) => { $crate::printer::detail_line(format_args!($($t)*)) };
}

/// A progress bar of `len` steps on stderr in `template` (indicatif's syntax), or a hidden one when progress is
/// off globally or `show` is false for this caller.
pub fn progress_bar(len: u64, template: &str, show: bool) -> indicatif::ProgressBar {
    if !(show && progress_enabled()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_wins_over_verbose_and_turns_progress_off() {
        configure(true, 2, true);
        assert_eq!(verbosity(), Verbosity::Quiet);
        assert!(!progress_enabled());
        assert!(progress_bar(10, "{bar}", true).is_hidden());
        configure(false, 1, false);
        assert_eq!(verbosity(), Verbosity::Verbose);
        assert!(!progress_enabled());
        configure(false, 0, true);
        assert_eq!(verbosity(), Verbosity::Normal);
        assert!(progress_enabled());
        assert!(progress_bar(10, "{bar}", false).is_hidden());
    }
}
