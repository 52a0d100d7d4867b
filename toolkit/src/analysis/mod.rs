//! Statistics over measurements: latency (this module's `latency`), accuracy and richness live beside it.

pub mod latency;
