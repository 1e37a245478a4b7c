//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Shorthand for a result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// Each variant holds the values a caller needs to react to the failure.
/// Messages are lowercase with no final period, so callers can wrap them
/// in more context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config value is out of its allowed range.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The name of the setting, as in the config struct.
        field: &'static str,
        /// The rule it breaks and the value it had.
        reason: String,
    },

    /// An id names a row the table does not have.
    #[error("id {id} is out of range for a table of {num_embeddings} rows")]
    IdOutOfRange {
        /// The offending id.
        id: u32,
        /// The number of rows of the table.
        num_embeddings: usize,
    },

    /// An array does not have the shape an operation needs.
    #[error("shape mismatch in {what}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// What was being checked (`"Dense input"`, `"targets"` ...).
        what: &'static str,
        /// The rule, in words (`"[batch, 16]"`).
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// A vocabulary lookup found an object that has no id and no OOV slot.
    #[error("unknown token {token:?}: not in the vocabulary and there are no OOV indices")]
    UnknownToken {
        /// The object, formatted with `Debug`.
        token: String,
    },

    /// There is nothing to work on (no rows, no objects, no batches).
    #[error("empty {what}")]
    EmptyData {
        /// What was empty.
        what: String,
    },

    /// A line of a data file is not in the expected format.
    #[error("{}:{line}: {reason}", .path.display())]
    BadRow {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What was expected and what was found.
        reason: String,
    },

    /// Training produced a loss that is NaN or infinite.
    #[error("loss is {loss} at epoch {epoch}, batch {batch}; the weights of the last good step are kept")]
    NonFiniteLoss {
        /// The loss value.
        loss: f32,
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
    },

    /// Training produced a gradient with a NaN or infinite value.
    #[error("a gradient is NaN or infinite at epoch {epoch}, batch {batch}; the weights of the last good step are kept")]
    NonFiniteGradient {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
    },

    /// An input holds a NaN or infinite value where only finite values are
    /// allowed.
    #[error("{what} is {value} at index {index}; it must be finite (nothing was changed)")]
    NonFiniteValue {
        /// What the input is.
        what: &'static str,
        /// The flat index of the first such value.
        index: usize,
        /// The value.
        value: f32,
    },

    /// A saved model is damaged or from an incompatible version.
    #[error("{}: not a model file: {reason}", .path.display())]
    BadModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An operation was called in a state that does not allow it (for
    /// example `backward` before a training `forward`).
    #[error("{0}")]
    InvalidState(String),

    /// Reading or writing a file failed.
    #[error("cannot {action} {}", .path.display())]
    Io {
        /// What was being done (`"read"`, `"write"`, `"rename"` ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A binary data file (word2vec binary, `.npy`, safetensors) is
    /// truncated, damaged or not in the format it was read as.
    #[error("{}: byte {offset}: {reason}", .path.display())]
    BadBinaryFile {
        /// The file.
        path: PathBuf,
        /// Where in the file the problem was found.
        offset: u64,
        /// What was expected and what was found.
        reason: String,
    },
}

impl Error {
    /// Returns a closure for `map_err` that wraps an [`io::Error`] with
    /// the action and path that failed.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }

    /// An [`Error::InvalidConfig`] for `field` with `reason`.
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig { field, reason: reason.into() }
    }

    /// An [`Error::ShapeMismatch`].
    pub(crate) fn shape(what: &'static str, expected: impl Into<String>, got: &[usize]) -> Self {
        Error::ShapeMismatch { what, expected: expected.into(), got: got.to_vec() }
    }
}
