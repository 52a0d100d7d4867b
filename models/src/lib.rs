//! Reference CNNs emitted as ONNX (`ModelProto`, IR 8, opset 17) for `ratio`: CIFAR ResNet-20/56, VGG-BN,
//! DenseNet-BC, a plain CNN for digits/MNIST, a ResNet-50-shaped net for speed benches, and small
//! architecture-pattern fixtures for the converter's tests. Weights are seeded (ChaCha8) so the same config gives
//! the same bytes. Inputs are `input` [N, C, S, S] and outputs `logits` [N, classes], with a symbolic batch `N`.

pub mod config;
pub mod densenet;
pub mod error;
pub mod fold;
pub mod init;
pub mod net;
pub mod patterns;
pub mod plain;
pub mod registry;
pub mod resnet;
pub mod resnet50;
pub mod stats;
pub mod vgg;

pub use config::ModelConfig;
pub use densenet::{DenseNetConfig, densenet_bc};
pub use error::{ModelsError, Result};
pub use fold::{FoldedPair, fold_bn, fold_bn_report};
pub use plain::{PlainConfig, plain_cnn};
pub use registry::{by_name, names};
pub use resnet::{resnet_cifar, resnet20, resnet56};
pub use resnet50::resnet50_like;
pub use vgg::{VggConfig, VggLayer, VggLayers, vgg};
