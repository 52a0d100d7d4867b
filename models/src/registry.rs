//! Models by name, for `ratio train --model NAME` and friends. Architecture knobs take their defaults; the shared
//! [`ModelConfig`] sets input, classes, width and seed.

use converters::proto::ModelProto;

use crate::config::ModelConfig;
use crate::densenet::{DenseNetConfig, densenet_bc};
use crate::error::{ModelsError, Result};
use crate::plain::{PlainConfig, plain_cnn};
use crate::resnet::{resnet20, resnet56};
use crate::resnet50::resnet50_like;
use crate::vgg::{VggConfig, vgg};

const NAMES: &[&str] = &["resnet20", "resnet56", "vgg", "densenet", "plain", "resnet50"];

/// Every name [`by_name`] accepts.
pub fn names() -> &'static [&'static str] {
    NAMES
}

pub fn by_name(name: &str, cfg: &ModelConfig) -> Result<ModelProto> {
    match name {
        "resnet20" => resnet20(cfg),
        "resnet56" => resnet56(cfg),
        "vgg" => vgg(&VggConfig::new(cfg.clone())),
        "densenet" => densenet_bc(&DenseNetConfig::new(cfg.clone())),
        "plain" => plain_cnn(&PlainConfig::new(cfg.clone())),
        "resnet50" => resnet50_like(cfg),
        _ => Err(ModelsError::UnknownModel {
            name: name.into(),
            known: NAMES.join(", "),
        }),
    }
}
