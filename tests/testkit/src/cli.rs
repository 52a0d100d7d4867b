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

    /// Run to completion. Failing to start the binary at all fails the test.
    pub fn run(&self) -> Run {
        let mut c = Command::new(&self.bin);
        c.args(&self.cmd);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        let o = c
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
    #[should_panic(expected = "missing 'nope'")]
    fn a_missing_needle_fails() {
        Cli::new("sh")
            .args(["-c", "echo err >&2; exit 2"])
            .run()
            .fails_with(&["nope"]);
    }
}
