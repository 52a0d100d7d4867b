//! Records and reports: the versioned JSON schema every `ratio` command writes (`schema`), figure rendering to
//! SVG/PNG (`plot`), and the Markdown/HTML report pages built from a [`doc::Report`]. Pure: no file system access,
//! no runtime; callers write the bytes this crate returns.

pub mod doc;
pub mod html;
pub mod markdown;
pub mod plot;
pub mod schema;
