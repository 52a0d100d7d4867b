//! One module per subcommand; each exposes `run(args) -> anyhow::Result<ExitCode>`.

pub mod args;
pub mod bench;
pub mod calibrate;
pub mod convert;
pub mod data;
pub mod eval;
pub mod finetune;
pub mod inspect;
pub mod leaky;
pub mod model;
pub mod report;
pub mod richness;
pub mod sweep;
pub mod train;

/// Print an error chain as `error: top` + `  caused by: …` lines and pick the exit code: a broken pipe is a
/// clean exit, anything else exits 2.
pub fn finish(result: anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return std::process::ExitCode::SUCCESS;
            }
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::from(2)
        }
    }
}

/// 1234567 → "1.23M": counts for humans.
pub fn human(x: f64) -> String {
    let (v, unit) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    if unit.is_empty() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}{unit}")
    }
}

pub use crate::printer::emit;

/// The record of this command's `body`: its exact command line, `provenance`, and the time now (the caller adds
/// the files it read and wrote).
pub fn record<B: reports::schema::Body>(
    body: &B,
    provenance: reports::schema::Provenance,
) -> anyhow::Result<reports::schema::Record> {
    Ok(reports::schema::Record::new(
        body,
        std::env::args().collect(),
        provenance,
        reports::schema::now_rfc3339(),
    )?)
}

/// `--json FILE|-`: write a record to stdout (`-`, broken-pipe safe) or atomically to FILE.
pub fn write_json_record(target: &std::path::Path, record: &reports::schema::Record) -> anyhow::Result<()> {
    let text = record.to_json_pretty();
    if target == std::path::Path::new("-") {
        return emit(&(text + "\n"));
    }
    converters::ir::model::write_atomic(target, text.as_bytes())?;
    crate::status!("wrote {}", target.display());
    Ok(())
}
