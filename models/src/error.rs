//! Errors of the model builders and of `fold_bn`. Every variant names the model or node it is about.

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("unknown model '{name}' (known: {known})")]
    UnknownModel { name: String, known: String },
    #[error("{model}: invalid configuration: {reason}")]
    BadConfig { model: String, reason: String },
    #[error("fold_bn: node '{node}': {reason}")]
    Fold { node: String, reason: String },
    #[error(transparent)]
    Ir(#[from] converters::IrError),
}

pub type Result<T, E = ModelsError> = std::result::Result<T, E>;

pub(crate) fn bad_config(model: &str, reason: impl Into<String>) -> ModelsError {
    ModelsError::BadConfig {
        model: model.into(),
        reason: reason.into(),
    }
}
