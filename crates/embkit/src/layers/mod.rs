//! Layers: the [`Embedding`] table that turns ids into rows, and the
//! float layers that come after it ([`Flatten`], [`Dense`],
//! [`ActivationLayer`], [`GlobalAveragePooling1D`], [`Dropout`]).
//!
//! Every layer owns its backward pass. `forward(x, training)` keeps what
//! `backward` needs when `training` is true; `backward(grad_out)` returns
//! the gradient with respect to the layer's input and stores the
//! gradients of the layer's own parameters, which
//! [`params_mut`](Layer::params_mut) hands to an optimizer.
//!
//! Float layers take and return `ndarray` arrays of any rank whose first
//! axis is the batch.

mod activation;
mod constraint;
mod dense;
mod dropout;
mod embedding;
mod embedding_bag;
mod flatten;
mod pooling;
mod regularizer;

pub use activation::{Activation, ActivationLayer};
pub use constraint::Constraint;
pub use dense::{Dense, DenseConfig};
pub use dropout::{Dropout, DropoutConfig};
pub use embedding::LoraConfig;
pub use embedding::{one_hot, Embedding, EmbeddingConfig};
pub use embedding_bag::{BagMode, EmbeddingBag, EmbeddingBagConfig};
pub use flatten::Flatten;
pub use pooling::GlobalAveragePooling1D;
pub use regularizer::Regularizer;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A dense parameter and its gradient, as handed to an optimizer.
#[derive(Debug)]
pub struct ParamMut<'a> {
    /// The parameter's name within its layer (`"kernel"`, `"bias"`).
    pub name: &'static str,
    /// The values, updated in place by the optimizer.
    pub value: &'a mut [f32],
    /// The gradient of the loss with respect to `value`, same length
    /// (mutable, so that it can be clipped before the step).
    pub grad: &'a mut [f32],
}

/// The settings of a float layer: what [`Layer`]s are built from and what
/// a saved model stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LayerConfig {
    /// [`Flatten`].
    Flatten,
    /// [`Dense`].
    Dense(DenseConfig),
    /// [`ActivationLayer`].
    Activation {
        /// The function applied element-wise (softmax: over the last axis).
        activation: Activation,
    },
    /// [`GlobalAveragePooling1D`].
    GlobalAveragePooling1D,
    /// [`Dropout`].
    Dropout(DropoutConfig),
}

impl LayerConfig {
    /// Validates the config and builds the layer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) when a value
    /// is out of range.
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Layer> {
        Ok(match self {
            LayerConfig::Flatten => Layer::Flatten(Flatten::new()),
            LayerConfig::Dense(c) => Layer::Dense(c.init(rng)?),
            LayerConfig::Activation { activation } => {
                Layer::Activation(ActivationLayer::new(*activation))
            }
            LayerConfig::GlobalAveragePooling1D => {
                Layer::GlobalAveragePooling1D(GlobalAveragePooling1D::new())
            }
            LayerConfig::Dropout(c) => Layer::Dropout(c.init()?),
        })
    }

    /// The shape of one output sample for one input sample of shape
    /// `input` (the batch axis left out).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when the layer
    /// cannot take that input.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        use crate::Error;
        match self {
            LayerConfig::Flatten => input
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .map(|n| vec![n])
                .ok_or_else(|| Error::shape("Flatten input", "a size that fits usize", input)),
            LayerConfig::Dense(c) => match input.last() {
                Some(&n) if n == c.in_features => {
                    let mut out = input.to_vec();
                    *out.last_mut().expect("non-empty") = c.out_features;
                    Ok(out)
                }
                _ => Err(Error::shape("Dense input", format!("[..., {}]", c.in_features), input)),
            },
            LayerConfig::GlobalAveragePooling1D => match input {
                [_steps, features] => Ok(vec![*features]),
                _ => Err(Error::shape("GlobalAveragePooling1D input", "[steps, features]", input)),
            },
            LayerConfig::Activation { .. } | LayerConfig::Dropout(_) => Ok(input.to_vec()),
        }
    }
}

/// A float layer of a [`Sequential`](crate::Sequential) model.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Layer {
    /// See [`Flatten`].
    Flatten(Flatten),
    /// See [`Dense`].
    Dense(Dense),
    /// See [`ActivationLayer`].
    Activation(ActivationLayer),
    /// See [`GlobalAveragePooling1D`].
    GlobalAveragePooling1D(GlobalAveragePooling1D),
    /// See [`Dropout`].
    Dropout(Dropout),
}

impl Layer {
    /// The config this layer was built from.
    pub fn config(&self) -> LayerConfig {
        match self {
            Layer::Flatten(_) => LayerConfig::Flatten,
            Layer::Dense(l) => LayerConfig::Dense(l.config().clone()),
            Layer::Activation(l) => LayerConfig::Activation { activation: l.activation() },
            Layer::GlobalAveragePooling1D(_) => LayerConfig::GlobalAveragePooling1D,
            Layer::Dropout(l) => LayerConfig::Dropout(l.config().clone()),
        }
    }

    /// Runs the layer. With `training`, keeps what
    /// [`backward`](Self::backward) needs (and applies dropout).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when the input
    /// does not fit the layer.
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        match self {
            Layer::Flatten(l) => l.forward(x, training),
            Layer::Dense(l) => l.forward(x, training),
            Layer::Activation(l) => l.forward(x, training),
            Layer::GlobalAveragePooling1D(l) => l.forward(x, training),
            Layer::Dropout(l) => l.forward(x, training),
        }
    }

    /// [`forward`](Self::forward) with the mask of the input's steps (from
    /// an embedding with `mask_zero`), as Keras propagates masks: returns
    /// the output and the output's mask. [`GlobalAveragePooling1D`]
    /// averages the unmasked steps and consumes the mask; [`Flatten`]
    /// drops it (Keras warns; see [`SequentialConfig::warnings`](crate::SequentialConfig::warnings));
    /// the other layers keep it while their output still has a steps axis.
    ///
    /// # Shapes
    ///
    /// - `mask`: `[batch, steps]`, true for the steps that count
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward); [`Error::ShapeMismatch`](crate::Error::ShapeMismatch)
    /// for a mask of another shape.
    pub fn forward_masked(
        &mut self,
        x: ArrayViewD<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
        training: bool,
    ) -> Result<(ArrayD<f32>, Option<Array2<bool>>)> {
        match self {
            Layer::GlobalAveragePooling1D(l) => Ok((l.forward_masked(x, mask, training)?, None)),
            Layer::Flatten(l) => Ok((l.forward(x, training)?, None)),
            other => {
                let y = other.forward(x, training)?;
                let keep = mask.filter(|_| y.ndim() >= 3).map(|m| m.to_owned());
                Ok((y, keep))
            }
        }
    }

    /// Returns the gradient with respect to the last training forward's
    /// input, and stores the gradients of the layer's parameters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`](crate::Error::InvalidState) without a
    /// training forward first; [`Error::ShapeMismatch`](crate::Error::ShapeMismatch)
    /// when `grad_out` does not have the forward output's shape.
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        match self {
            Layer::Flatten(l) => l.backward(grad_out),
            Layer::Dense(l) => l.backward(grad_out),
            Layer::Activation(l) => l.backward(grad_out),
            Layer::GlobalAveragePooling1D(l) => l.backward(grad_out),
            Layer::Dropout(l) => l.backward(grad_out),
        }
    }

    /// The trainable parameters and their gradients from the last
    /// [`backward`](Self::backward). Empty for layers without weights.
    pub fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        match self {
            Layer::Dense(l) => l.params_mut(),
            _ => Vec::new(),
        }
    }

    /// The activation applied last by this layer, if it ends in one
    /// (used to compute a cross-entropy from logits, as Keras does).
    pub fn output_activation(&self) -> Option<Activation> {
        match self {
            Layer::Dense(l) => Some(l.config().activation),
            Layer::Activation(l) => Some(l.activation()),
            _ => None,
        }
    }

    /// Backward pass that starts from the gradient with respect to the
    /// layer's pre-activation output (its logits), skipping the final
    /// activation. For layers without an activation this is
    /// [`backward`](Self::backward).
    ///
    /// # Errors
    ///
    /// As [`backward`](Self::backward).
    pub fn backward_from_logits(
        &mut self,
        grad_logits: ArrayViewD<'_, f32>,
    ) -> Result<ArrayD<f32>> {
        match self {
            Layer::Dense(l) => l.backward_from_logits(grad_logits),
            Layer::Activation(_) => Ok(grad_logits.to_owned()),
            other => other.backward(grad_logits),
        }
    }

    /// The pre-activation output of the last training forward, for layers
    /// that end in an activation.
    pub fn logits(&self) -> Option<ArrayViewD<'_, f32>> {
        match self {
            Layer::Dense(l) => l.logits(),
            Layer::Activation(l) => l.input(),
            _ => None,
        }
    }
}
