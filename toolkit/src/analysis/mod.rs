//! Statistics over measurements: latency, accuracy (top-k, confusion) and paired tests between models,
//! representation richness (CKA, spectra, linear probes, activation statistics) and the Leaky-ReLU ensemble
//! decomposition.

pub mod accuracy;
pub mod bench;
pub mod cka;
pub mod evaluate;
pub mod latency;
pub mod leaky;
pub mod probe;
pub mod richness;
pub mod spectrum;
pub mod stats;
