//! Models and their training: the [`Model`] trait, the [`Sequential`]
//! stack `Embedding → layers`, and [`fit`] / [`evaluate`] (in memory) or
//! [`fit_stream`] / [`evaluate_stream`] (batches read from a
//! [`BatchStream`]) with their [`TrainConfig`], [`History`] and
//! [`Observer`].
//!
//! Every model takes ids `[batch, input_length]`. Other architectures
//! (matrix factorisation, the bag classifier) implement [`Model`] and
//! train with the same loops.

mod bag_classifier;
mod matrix_factorization;
mod sequential;
mod train;

pub(crate) use bag_classifier::check_identity_kernel;
pub use bag_classifier::{BagClassifier, BagClassifierConfig, BagWeighting};
pub use matrix_factorization::{MatrixFactorization, MatrixFactorizationConfig};
pub use sequential::{Sequential, SequentialConfig};
pub use train::{
    evaluate, evaluate_stream, fit, fit_stream, Batch, BatchStream, EarlyStopping, EpochLog,
    Evaluation, History, Monitor, NoObserver, Observer, TrainConfig,
};

use ndarray::{ArrayD, ArrayView2, ArrayViewD};

use crate::{Loss, Optimizer, Result};

/// Inputs and targets of a supervised data set.
///
/// # Shapes
///
/// - `ids`: `[n, input_length]`
/// - `targets`: `[n, ...]`, what the loss compares the model's output
///   with (`[n, 1]` or `[n]` for binary labels and class indices,
///   `[n, classes]` for one-hot targets)
#[derive(Debug, Clone)]
pub struct Dataset<'a> {
    ids: ArrayView2<'a, u32>,
    targets: ArrayViewD<'a, f32>,
}

impl<'a> Dataset<'a> {
    /// Pairs ids with targets.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the two do
    /// not have the same number of samples.
    pub fn new(ids: ArrayView2<'a, u32>, targets: ArrayViewD<'a, f32>) -> Result<Self> {
        if targets.ndim() == 0 || targets.shape()[0] != ids.nrows() {
            return Err(crate::Error::shape(
                "targets",
                format!("[{}, ...] (one target per sample)", ids.nrows()),
                targets.shape(),
            ));
        }
        Ok(Self { ids, targets })
    }

    /// The ids of each sample.
    pub fn ids(&self) -> ArrayView2<'a, u32> {
        self.ids
    }

    /// The targets of each sample.
    pub fn targets(&self) -> ArrayViewD<'a, f32> {
        self.targets.clone()
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.ids.nrows()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`fit`] needs from a model: a forward pass on a batch of ids, a
/// backward pass from a loss, and an optimizer step.
pub trait Model {
    /// Runs the model on a batch. With `training`, keeps what
    /// [`backward`](Self::backward) needs.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[batch, input_length]`
    /// - returns: `[batch, ...]`, the model's output
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`](crate::Error::IdOutOfRange) and
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for bad input.
    fn forward(&mut self, ids: ArrayView2<'_, u32>, training: bool) -> Result<ArrayD<f32>>;

    /// Computes `loss` of the last training forward against `targets`,
    /// back-propagates it and keeps every parameter's gradient. Returns the
    /// loss.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`](crate::Error::InvalidState) without a
    /// training forward; [`Error::ShapeMismatch`](crate::Error::ShapeMismatch)
    /// for targets that do not fit the output.
    fn backward(&mut self, loss: &Loss, targets: ArrayViewD<'_, f32>) -> Result<f32>;

    /// Runs the model in inference mode on a batch and computes `loss`
    /// against `targets`; returns the loss and the output. The default
    /// computes the loss from the output; a model whose training loss is
    /// computed from logits overrides it to do the same here, so that
    /// training and validation losses are comparable.
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward) and the loss.
    fn evaluate_batch(
        &mut self,
        ids: ArrayView2<'_, u32>,
        loss: &Loss,
        targets: ArrayViewD<'_, f32>,
    ) -> Result<(f32, ArrayD<f32>)> {
        let pred = self.forward(ids, false)?;
        Ok((loss.value(pred.view(), targets)?, pred))
    }

    /// The mask of the last forward's output, for outputs with a steps
    /// axis from a table with `mask_zero` (`[batch, steps]`). Metrics and
    /// losses leave masked steps out. `None` by default.
    fn output_mask(&self) -> Option<ArrayViewD<'_, bool>> {
        None
    }

    /// Clips the gradients of the last backward in place (see
    /// [`GradientClipping`](crate::optim::GradientClipping)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for invalid
    /// clipping settings.
    fn clip_gradients(&mut self, clipping: &crate::optim::GradientClipping) -> Result<()>;

    /// Whether every gradient of the last backward is finite.
    fn gradients_are_finite(&mut self) -> bool;

    /// Applies the gradients of the last backward with `optimizer` (one
    /// `step_*` per parameter, then `finish_step`).
    ///
    /// # Errors
    ///
    /// As the optimizer's `step_dense` / `step_rows`.
    fn step(&mut self, optimizer: &mut dyn Optimizer) -> Result<()>;

    /// Lets the model's layers use `threads` threads on large batches
    /// (results do not depend on it). Does nothing by default.
    fn set_threads(&mut self, threads: crate::Threads) {
        let _ = threads;
    }
}
