//! Analyses of trained models: representation richness, CKA, spectra, linear probes and the Leaky-ReLU ensemble.

pub mod cka;
pub mod leaky;
pub mod probe;
pub mod richness;
pub mod spectrum;
