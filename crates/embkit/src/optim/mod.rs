//! Optimizers: apply gradients to dense parameters and, row by row, to
//! embedding tables.
//!
//! Every optimizer implements [`Optimizer`]. State (momentum, moments,
//! accumulators) is kept per parameter, keyed by the name the model gives
//! it (`"embedding"`, `"layers.1.kernel"`), and is allocated on first use.
//! Table updates through [`Optimizer::step_rows`] are lazy: rows that are
//! not in the gradient, and their state, do not change (PyTorch's sparse
//! semantics). Keras's formulas and default hyper-parameters are used;
//! each file gives the formula it implements.

mod adagrad;
mod adam;
mod rmsprop;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};

use serde::{Deserialize, Serialize};

use crate::{Result, RowGrad};

/// Applies gradients to parameters.
///
/// A training step calls [`step_dense`](Self::step_dense) and
/// [`step_rows`](Self::step_rows) once for each parameter, then
/// [`finish_step`](Self::finish_step) once.
pub trait Optimizer: std::fmt::Debug + Send {
    /// Updates the dense parameter `key` in place from its gradient.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if `grad` and
    /// `value` differ in length, or `value` differs in length from the
    /// parameter first seen under `key`.
    fn step_dense(&mut self, key: &str, value: &mut [f32], grad: &[f32]) -> Result<()>;

    /// Updates, in place, the rows of the table `key` (row-major,
    /// `[num_embeddings, grad.dim()]`) that `grad` names. Other rows and
    /// their state are untouched (lazy semantics).
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`](crate::Error::IdOutOfRange) for an id past
    /// the table (checked before any row changes);
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the table's
    /// length is not a multiple of the row length or differs from the
    /// table first seen under `key`.
    fn step_rows(&mut self, key: &str, table: &mut [f32], grad: &RowGrad) -> Result<()>;

    /// Ends a training step: advances the iteration counter.
    fn finish_step(&mut self);

    /// The number of finished steps.
    fn iterations(&self) -> u64;

    /// The config this optimizer was built from.
    fn config(&self) -> OptimizerConfig;
}

/// The settings of any optimizer: what [`TrainConfig`](crate::TrainConfig)
/// stores and saved models record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "optimizer", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OptimizerConfig {
    /// [`Sgd`].
    Sgd(SgdConfig),
    /// [`Adagrad`].
    Adagrad(AdagradConfig),
    /// [`Adam`].
    Adam(AdamConfig),
    /// [`RmsProp`].
    RmsProp(RmsPropConfig),
}

impl OptimizerConfig {
    /// Validates the hyper-parameters and builds the optimizer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the
    /// hyper-parameter and its value.
    pub fn build(&self) -> Result<Box<dyn Optimizer>> {
        Ok(match self {
            OptimizerConfig::Sgd(c) => Box::new(c.init()?),
            OptimizerConfig::Adagrad(c) => Box::new(c.init()?),
            OptimizerConfig::Adam(c) => Box::new(c.init()?),
            OptimizerConfig::RmsProp(c) => Box::new(c.init()?),
        })
    }

    /// The optimizer's name as Keras spells it (`"adam"`, `"rmsprop"`).
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Adagrad(_) => "adagrad",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::RmsProp(_) => "rmsprop",
        }
    }
}
