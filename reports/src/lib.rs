//! Versioned records of every measuring command and their rendering.

pub mod schema;
