//! Statistics over measurements: latency, representation richness (CKA, spectra, linear probes, activation
//! statistics) and the Leaky-ReLU ensemble decomposition.

pub mod cka;
pub mod latency;
pub mod leaky;
pub mod probe;
pub mod richness;
pub mod spectrum;
