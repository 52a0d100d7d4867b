//! Analyses behind the measuring commands.

pub mod accuracy;
pub mod stats;
