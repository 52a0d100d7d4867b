//! Leaky-ReLU ensemble decomposition.
