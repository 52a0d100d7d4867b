//! Reference CNNs emitted as ONNX (`ModelProto`, IR 8, opset 17) for `ratio`: CIFAR ResNet-20/56, VGG-BN,
//! DenseNet-BC, a plain CNN for digits/MNIST, a ResNet-50-shaped net for speed benches, and small
//! architecture-pattern fixtures for the converter's tests. Weights are seeded (ChaCha8) so the same config gives
//! the same bytes. Inputs are `input` [N, C, S, S] and outputs `logits` [N, classes], with a symbolic batch `N`.
//!
//! | `by_name`  | builder            | parameters (3×32×32, 10 classes, width 1) | Conv / BN / Relu |
//! |------------|--------------------|-------------------------------------------|------------------|
//! | `resnet20` | [`resnet20`]       | 272,474 (269,722 + 2,752 for projections) | 21 / 21 / 19     |
//! | `resnet56` | [`resnet56`]       | 855,770                                   | 57 / 57 / 55     |
//! | `vgg`      | [`vgg()`](vgg())   | 964,170 (`64,M,128,M,256,256,M`)          | 4 / 4 / 4        |
//! | `densenet` | [`densenet_bc`]    | 176,122 (DenseNet-BC-40, k = 12)          | 39 / 39 / 39     |
//! | `plain`    | [`plain_cnn`]      | 136,922 (13,754 at 1×8×8 digits)          | 2 / 2 / 3        |
//! | `resnet50` | [`resnet50_like`]  | 25,557,032 at 3×224×224, 1000 classes     | 53 / 53 / 49     |
//!
//! [`fold_bn`] folds Conv→BatchNormalization pairs for deployment; [`patterns`] holds the converter fixtures and
//! [`idioms`] the export-idiom fixtures fine-tuning is tested on.

pub mod config;
pub mod densenet;
pub mod error;
pub mod fold;
pub mod idioms;
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
