//! Run a binary of this workspace and assert on what it did. Every assertion prints both output streams, so a
//! failing test shows the command's own words.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A command line to run: `Cli::new(bin).args([...]).run()`.
#[derive(Debug, Clone)]
pub struct Cli {
    cmd: Vec<String>,
    bin: PathBuf,
    cwd: Option<PathBuf>,
    envs: Vec<(String, String)>,
}

impl Cli {
    pub fn new(bin: impl AsRef<Path>) -> Self {
        Cli {
            cmd: Vec::new(),
            bin: bin.as_ref().to_path_buf(),
            cwd: None,
            envs: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.push(a.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd
            .extend(args.into_iter().map(|a| a.as_ref().to_string_lossy().into_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.into(), value.as_ref().to_string_lossy().into_owned()));
        self
    }

    /// The command as a [`Command`], for a test that must watch or stop it while it runs (`spawn`).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(&self.cmd);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c
    }

    /// Run to completion. Failing to start the binary at all fails the test.
    pub fn run(&self) -> Run {
        let o = self
            .command()
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        Run {
            line: format!("{} {}", self.bin.display(), self.cmd.join(" ")),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line, for messages.
    pub line: String,
    /// Exit status; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, labelled, for assertion messages.
    pub fn text(&self) -> String {
        format!(
            "$ {}\nexit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.line, self.code, self.stdout, self.stderr
        )
    }

    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    /// Assert exit status 0.
    pub fn success(&self) -> &Self {
        assert!(self.succeeded(), "expected success:\n{}", self.text());
        self
    }

    /// Assert the error contract of every `ratio` command: exit status 2, no panic, and an error message that
    /// contains every needle.
    pub fn fails_with(&self, needles: &[&str]) -> &Self {
        assert_eq!(self.code, Some(2), "expected exit status 2:\n{}", self.text());
        self.error_names(needles)
    }

    /// Assert a failure whatever its status (non-zero, or ended by a signal), no panic, and an error message that
    /// contains every needle: for tests that do not pin the status.
    pub fn fails(&self, needles: &[&str]) -> &Self {
        assert!(!self.succeeded(), "expected failure:\n{}", self.text());
        self.error_names(needles)
    }

    /// [`Run::fails`], and the error is the single line `error: …` (no cause chain).
    pub fn fails_in_one_line(&self, needles: &[&str]) -> &Self {
        self.fails(needles);
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "the error is not one line:\n{}",
            self.text()
        );
        assert!(
            self.stderr.starts_with("error: "),
            "no 'error: ' line:\n{}",
            self.text()
        );
        self
    }

    fn error_names(&self, needles: &[&str]) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "the command panicked:\n{}",
            self.text()
        );
        for n in needles {
            assert!(self.stderr.contains(n), "missing '{n}' in the error:\n{}", self.text());
        }
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_status_and_streams() {
        let r = Cli::new("sh").args(["-c", "echo out; echo err >&2; exit 2"]).run();
        assert_eq!(r.code, Some(2));
        assert_eq!(r.stdout, "out\n");
        r.fails_with(&["err"]);
        assert!(!r.succeeded());
        let ok = Cli::new("sh").args(["-c", "printf '{\"a\": 1}'"]).run();
        ok.success();
        assert_eq!(ok.json()["a"], 1);
    }

    #[test]
    fn any_failure_and_one_line_errors() {
        let r = Cli::new("sh")
            .args(["-c", "echo 'error: bad.onnx: truncated' >&2; exit 1"])
            .run();
        r.fails(&["bad.onnx"]).fails_in_one_line(&["truncated"]);
    }

    #[test]
    #[should_panic(expected = "not one line")]
    fn a_cause_chain_is_not_one_line() {
        Cli::new("sh")
            .args(["-c", "printf 'error: a\\ncaused by: b\\n' >&2; exit 1"])
            .run()
            .fails_in_one_line(&["a"]);
    }

    #[test]
    #[should_panic(expected = "expected failure")]
    fn success_is_not_a_failure() {
        Cli::new("true").run().fails(&[]);
    }

    #[test]
    #[should_panic(expected = "missing 'nope'")]
    fn a_missing_needle_fails() {
        Cli::new("sh")
            .args(["-c", "echo err >&2; exit 2"])
            .run()
            .fails_with(&["nope"]);
    }
}
