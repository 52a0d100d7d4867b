//! Finds and registers one TrueType font for plotters' `ab_glyph` text backend, once per process.

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use super::PlotError;

/// Family name figures ask for.
pub const FAMILY: &str = "sans-serif";

const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

static REGISTERED: OnceLock<Result<String, String>> = OnceLock::new();

/// Register the first usable font; returns its path.
pub fn ensure() -> Result<String, PlotError> {
    REGISTERED
        .get_or_init(find_and_register)
        .clone()
        .map_err(|tried| PlotError::NoFont { tried })
}

fn find_and_register() -> Result<String, String> {
    let env = std::env::var("RATIO_FONT").ok();
    let mut tried = Vec::new();
    for path in env.iter().map(String::as_str).chain(CANDIDATES.iter().copied()) {
        match std::fs::read(path) {
            Ok(bytes) => {
                // plotters keeps fonts for the life of the process; leaking one file once is that lifetime.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                    return Ok(path.to_string());
                }
                tried.push(format!("{path} (not a usable font)"));
            }
            Err(e) => tried.push(format!("{path} ({e})")),
        }
    }
    Err(tried.join(", "))
}
