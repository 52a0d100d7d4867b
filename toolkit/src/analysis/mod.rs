//! Statistics over measurements: latency, accuracy (top-k, confusion) and the paired tests between models.

pub mod accuracy;
pub mod latency;
pub mod stats;
