//! The sweep report opens in a real browser: headless Chromium loads report/index.html from disk (no network),
//! its DOM holds the inline SVG figures, and a screenshot is saved under the test's output folder for a human to
//! look at (`target/tmp/report_render/screenshot.png`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared(rel: &str) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared").join(rel))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("shared/{rel} not found above {}", here.display()))
}

/// Chromium's binary, installing the Debian package when missing and possible.
fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|b| {
            let o = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .ok()?;
            o.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        })
    };
    if let Some(p) = find() {
        return Some(p);
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg("(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) >/dev/null 2>&1")
        .status();
    find()
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "\n!!!!!!!! SKIPPED report_renders_in_headless_chromium: chromium is not installed and `apt-get install -y chromium` failed !!!!!!!!\n"
        );
        return;
    };
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_render");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let rd = out.join("run");
    // A narrow ResNet-20 trained and fine-tuned for one epoch on real digits: every figure kind a sweep without
    // richness yields (accuracy vs ratio, latency, training curves).
    let digits = shared("data/digits.csv.gz");
    let o = Command::new(env!("CARGO_BIN_EXE_ratio"))
        .args(["sweep", "--model", "resnet20", "--data"])
        .arg(&digits)
        .args([
            "--preset",
            "digits",
            "--ratios",
            "1:1,2:1",
            "--policies",
            "last,first",
            "--seeds",
            "2",
        ])
        .args([
            "--steps",
            "convert,train,inspect,eval,bench",
            "--step-args=model=--width 0.25",
        ])
        .args(["--step-args=bench=--iters 20 --warmup 2", "--run-dir"])
        .arg(&rd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = rd.join("report/index.html");
    let url = format!("file://{}", html.display());
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
    ];

    let dom = Command::new(&browser)
        .args(flags)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The browser parsed the inline SVG as SVG (the serialised DOM keeps the elements and their text).
    assert!(
        dom.contains("<svg") && dom.contains("Latency p50 by variant"),
        "{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("<table>") && dom.contains("What the data support"));

    let shot = out.join("screenshot.png");
    let s = Command::new(&browser)
        .args(flags)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,3600")
        .arg(&url)
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 3600));
    // A blank or error page is (almost) one colour; the report has text, table rules and coloured bars.
    let inked = img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count();
    let colourful = img
        .pixels()
        .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 80)
        .count();
    assert!(inked > 20_000, "only {inked} dark pixels");
    assert!(colourful > 5_000, "only {colourful} coloured pixels: figures missing?");
    eprintln!("screenshot: {}", shot.display());
}
