//! The error every reading of the domain's vocabulary returns: a value, a
//! kind, a reference, a capability that could not be read.

/// A value that could not be read, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

impl ValueError {
    pub fn new(message: impl Into<String>) -> Self {
        ValueError(message.into())
    }
}
