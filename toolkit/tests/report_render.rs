//! The sweep report opens in a real browser: headless Chromium loads report/index.html from disk (no network),
//! and the DOM it builds holds the summary's numbers in the tables, every figure as parsed SVG with its caption,
//! and no reference to a missing file. A screenshot is saved for a human to look at
//! (`target/tmp/report_render/screenshot.png`). Chromium is installed by `scripts/test.sh`; without it this test
//! fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use ratio_testkit::{Cli, shared};
use reports::schema::Record;
use reports::schema::sweep::SweepSummary;
use toolkit::sweep::summary::fmt_p;

/// Chromium's binary.
fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            let o = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .ok()?;
            o.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        })
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: `bash scripts/test.sh` installs it (Debian package `chromium`), or run \
                 `apt-get install -y chromium` yourself"
            )
        })
}

const FLAGS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
];

/// The text between every `open` … `close` pair.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// `&amp;` etc. back to text (the DOM serialiser escapes them).
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn report_renders_in_headless_chromium() {
    let browser = chromium();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_render");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let rd = out.join("run");
    // A narrow ResNet-20 trained and fine-tuned for one epoch on real digits, with every step: every section and
    // figure kind a sweep yields (accuracy, stages, latency, per-step curves, aligned richness, CKA).
    let digits = shared("data/digits.csv.gz");
    let o = ratio_testkit::ratio!()
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
            "convert,train,inspect,eval,bench,richness",
            "--step-args=model=--width 0.25",
        ])
        .args([
            "--step-args=bench=--iters 20 --warmup 2",
            "--step-args=richness=--samples 300 --cka-samples 300 --no-probe",
            "--run-dir",
        ])
        .arg(&rd)
        .run();
    o.success();
    let summary: SweepSummary = Record::from_json(&std::fs::read_to_string(rd.join("summary.json")).unwrap())
        .unwrap()
        .body_as()
        .unwrap();
    let html = rd.join("report/index.html");
    let url = format!("file://{}", html.display());

    let dom = Cli::new(&browser).args(FLAGS).arg("--dump-dom").arg(&url).run();
    let dom = dom.success().stdout.clone();
    assert!(
        dom.contains("<h1>ratio sweep — resnet20 on digits.csv.gz</h1>"),
        "{}",
        &dom[..dom.len().min(2000)]
    );

    // Tables: the summary's own numbers, in the cells the browser laid out.
    let cells: Vec<String> = between(&dom, "<td>", "</td>").into_iter().map(unescape).collect();
    for c in &summary.cells {
        let a = &c.metrics["accuracy"];
        let want = format!("{:.4} ± {:.4}", a.mean, a.std);
        assert!(
            cells.contains(&want),
            "accuracy {want} of {} {} not in a table cell",
            c.ratio,
            c.policy
        );
    }
    for t in &summary.sample_tests {
        assert!(
            cells.contains(&fmt_p(t.mcnemar_p)),
            "McNemar p of {} {}",
            t.ratio,
            t.policy
        );
    }
    for l in &summary.latency_ratios {
        assert!(
            cells.contains(&format!("[{:.3}, {:.3}]", l.ci_low, l.ci_high)),
            "latency CI of {}",
            l.ratio
        );
    }
    // The conclusions lead the page, word for word.
    let items: Vec<String> = between(&dom, "<li>", "</li>").into_iter().map(unescape).collect();
    for c in &summary.conclusions {
        assert!(items.contains(c), "conclusion missing from the page: {c}");
    }
    assert!(
        summary
            .conclusions
            .iter()
            .any(|c| c.starts_with("accuracy: 2:1 (last)"))
    );
    assert!(
        summary
            .conclusions
            .iter()
            .any(|c| c.starts_with("latency (batch 1, 1 thread)"))
    );
    assert!(summary.conclusions.iter().any(|c| c.starts_with("stages: 2:1 (first)")));
    assert!(
        summary
            .conclusions
            .iter()
            .any(|c| c.starts_with("richness: mean effective rank over the"))
    );

    // Figures: each one parsed as SVG (the serialised DOM keeps the elements), captioned, and its files on disk.
    let figures = between(&dom, "<figure", "</figure>");
    let stems: Vec<&str> = figures.iter().map(|f| between(f, "id=\"", "\"")[0]).collect();
    for want in [
        "accuracy_vs_ratio",
        "latency_by_variant",
        "accuracy_by_stage",
        "training_loss",
        "training_accuracy",
        "richness_effective_rank",
        "cka_r2-1_last_s0",
    ] {
        assert!(stems.contains(&want), "figure {want} missing: {stems:?}");
    }
    for (f, stem) in figures.iter().zip(&stems) {
        assert!(f.contains("<svg") && f.contains("</svg>"), "figure {stem} holds no SVG");
        let caption = unescape(between(f, "<figcaption>", "</figcaption>")[0]);
        assert!(caption.len() > 40, "figure {stem} has no caption: {caption:?}");
        for ext in ["svg", "png"] {
            let file = format!("figures/{stem}.{ext}");
            assert!(caption.contains(&file), "{stem}: caption does not name {file}");
            let len = std::fs::metadata(rd.join("report").join(&file)).map_or(0, |m| m.len());
            assert!(len > 1000, "{file}: missing or empty ({len} bytes)");
        }
    }
    let captions = figures
        .iter()
        .map(|f| unescape(between(f, "<figcaption>", "</figcaption>")[0]));
    let captions: Vec<String> = captions.collect();
    assert!(captions.iter().any(|c| c.starts_with("Training loss per logged step")));
    assert!(
        captions
            .iter()
            .any(|c| c.contains("dashed lines: activations the N:M variants removed"))
    );
    // No broken images: the page embeds its figures, so it has no <img> at all, and the Markdown report's image
    // links all point at files that exist.
    assert!(!dom.contains("<img"), "the page references image files");
    let md = std::fs::read_to_string(rd.join("report/report.md")).unwrap();
    for target in between(&md, "](", ")") {
        assert!(
            rd.join("report").join(target).is_file(),
            "report.md links to missing {target}"
        );
    }

    let shot = out.join("screenshot.png");
    let s = Cli::new(&browser)
        .args(FLAGS)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,3600")
        .arg(&url)
        .run();
    s.success();
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 3600));
    // A blank or error page is (almost) one colour; the report has text, table rules and coloured lines.
    let inked = img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count();
    let colourful = img
        .pixels()
        .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 80)
        .count();
    assert!(inked > 20_000, "only {inked} dark pixels");
    assert!(colourful > 5_000, "only {colourful} coloured pixels: figures missing?");
    eprintln!("screenshot: {}", shot.display());
}
