//! One module per record kind; each record carries a `schema` tag with its version.

pub mod eval;
