//! Representation richness: streaming per-layer statistics over activations captured from ONNX Runtime.

pub mod activation;
pub mod covariance;
pub mod patterns;
