//! The configuration every builder takes. Architecture-specific knobs (VGG layer list, DenseNet growth, …) live
//! in each builder's own config, which embeds this one.

use crate::error::{Result, bad_config};

/// Serialized as JSON into every built model's `metadata_props` (`ratio.model.config`), so a file says how it
/// was made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    /// Channels of the input image (3 for RGB, 1 for MNIST/digits).
    pub in_channels: i64,
    /// Height = width of the input image.
    pub input_size: i64,
    pub num_classes: i64,
    /// Multiplies every hidden width (rounded, at least 1 channel). 1.0 gives the reference network.
    pub width: f32,
    /// Seed of the ChaCha8 stream all weights are drawn from.
    pub seed: u64,
    /// Draw BatchNormalization gamma/beta/mean/var at random instead of the 1/0/0/1 of a fresh torch model, so
    /// that tests of BN folding and of the converter see non-trivial statistics.
    pub random_bn_stats: bool,
}

impl Default for ModelConfig {
    /// CIFAR-10-shaped: 3×32×32 input, 10 classes.
    fn default() -> Self {
        ModelConfig {
            in_channels: 3,
            input_size: 32,
            num_classes: 10,
            width: 1.0,
            seed: 0,
            random_bn_stats: false,
        }
    }
}

impl ModelConfig {
    pub fn new(in_channels: i64, input_size: i64, num_classes: i64) -> Self {
        ModelConfig {
            in_channels,
            input_size,
            num_classes,
            ..Default::default()
        }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_width(mut self, width: f32) -> Self {
        self.width = width;
        self
    }

    pub fn with_random_bn_stats(mut self, on: bool) -> Self {
        self.random_bn_stats = on;
        self
    }

    /// `base` hidden channels scaled by the width multiplier.
    pub fn scaled(&self, base: i64) -> i64 {
        ((base as f64 * self.width as f64).round() as i64).max(1)
    }

    /// Reject configurations no builder can honour, naming the model.
    pub fn check(&self, model: &str) -> Result<()> {
        if self.in_channels < 1 {
            return Err(bad_config(
                model,
                format!("in_channels must be >= 1, got {}", self.in_channels),
            ));
        }
        if self.input_size < 1 {
            return Err(bad_config(
                model,
                format!("input_size must be >= 1, got {}", self.input_size),
            ));
        }
        if self.num_classes < 1 {
            return Err(bad_config(
                model,
                format!("num_classes must be >= 1, got {}", self.num_classes),
            ));
        }
        if !(self.width.is_finite() && self.width > 0.0) {
            return Err(bad_config(
                model,
                format!("width must be a positive number, got {}", self.width),
            ));
        }
        Ok(())
    }
}

/// Output size of a convolution or pooling window along one axis (floor mode, as ONNX and torch default to).
pub fn out_size(size: i64, kernel: i64, stride: i64, pad: i64) -> i64 {
    (size + 2 * pad - kernel) / stride + 1
}
