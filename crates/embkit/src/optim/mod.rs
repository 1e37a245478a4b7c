//! Optimizers: apply gradients to dense parameters and, row by row, to
//! embedding tables.
//!
//! Every optimizer implements [`Optimizer`]. State (momentum, moments,
//! accumulators) is kept per parameter, keyed by the name the model gives
//! it (`"embedding"`, `"layers.1.kernel"`), and is allocated on first use.
//! Table updates through [`Optimizer::step_rows`] are lazy: rows that are
//! not in the gradient, and their state, do not change (PyTorch's sparse
//! semantics). Keras's formulas and default hyper-parameters are used;
//! each optimizer's docs give the formula it implements.
//!
//! Two differences from Keras follow from the row format. A
//! [`RowGrad`] sums the rows of an id seen several times in a batch before
//! the optimizer squares anything, so Adagrad and RMSprop accumulate
//! `(g₁ + g₂)²` where Keras accumulates `g₁² + g₂²` (PyTorch sums first,
//! as here). And Adam leaves the moments of rows outside the batch alone,
//! as PyTorch's `SparseAdam` does, where Keras decays them on every step.
//! The iteration count, which Adam's bias correction uses, is one counter
//! for the whole optimizer, advanced by [`Optimizer::finish_step`].
//!
//! # Examples
//!
//! ```
//! use embkit::{AdamConfig, OptimizerConfig, RowGrad};
//!
//! let config = OptimizerConfig::from(AdamConfig::new().with_learning_rate(0.01));
//! let mut optimizer = config.build()?;
//!
//! // A table of 4 rows of 2 and a dense bias.
//! let mut table = vec![0.5_f32; 4 * 2];
//! let mut bias = vec![0.0_f32; 2];
//! // The batch looked up ids 2, 0, 2: row 2 gets the sum of its two rows.
//! let grad = RowGrad::from_rows(&[2, 0, 2], &[0.1, 0.1, 0.2, 0.2, 0.3, 0.3], 2);
//! optimizer.step_rows("embedding", &mut table, &grad)?;
//! optimizer.step_dense("bias", &mut bias, &[0.5, -0.5])?;
//! optimizer.finish_step();
//!
//! assert_eq!(optimizer.iterations(), 1);
//! assert!(table[0] < 0.5 && table[4] < 0.5);
//! assert_eq!(table[2..4], [0.5, 0.5]); // row 1 was not in the batch
//! assert!(bias[0] < 0.0 && bias[1] > 0.0);
//! # Ok::<(), embkit::Error>(())
//! ```

mod adagrad;
mod adam;
mod rmsprop;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result, RowGrad};

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
    /// [`Error::ShapeMismatch`] if `grad` and `value` differ in length, or
    /// `value` differs in length from the parameter first seen under `key`.
    /// Nothing changes on an error.
    fn step_dense(&mut self, key: &str, value: &mut [f32], grad: &[f32]) -> Result<()>;

    /// Updates, in place, the rows of the table `key` (row-major,
    /// `[num_embeddings, grad.dim()]`) that `grad` names. Other rows and
    /// their state are untouched (lazy semantics). An empty `grad` is a
    /// no-op.
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`] for an id past the table;
    /// [`Error::ShapeMismatch`] if the rows of `grad` are empty, the table's
    /// length is not a multiple of the row length, or it differs from the
    /// table first seen under `key`. Everything is checked before any row
    /// or state changes.
    fn step_rows(&mut self, key: &str, table: &mut [f32], grad: &RowGrad) -> Result<()>;

    /// Ends a training step: advances the iteration counter.
    fn finish_step(&mut self);

    /// The number of finished steps.
    fn iterations(&self) -> u64;

    /// The config this optimizer was built from.
    fn config(&self) -> OptimizerConfig;
}

/// The settings of any optimizer: what
/// [`TrainConfig`](crate::model::TrainConfig) stores and saved models
/// record.
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
    /// [`RmsProp`]. Tagged `"rmsprop"`, the name Keras uses.
    #[serde(rename = "rmsprop", alias = "rms_prop")]
    RmsProp(RmsPropConfig),
}

impl OptimizerConfig {
    /// Validates the hyper-parameters and builds the optimizer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the hyper-parameter and its value.
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

impl From<SgdConfig> for OptimizerConfig {
    fn from(config: SgdConfig) -> Self {
        OptimizerConfig::Sgd(config)
    }
}

impl From<AdagradConfig> for OptimizerConfig {
    fn from(config: AdagradConfig) -> Self {
        OptimizerConfig::Adagrad(config)
    }
}

impl From<AdamConfig> for OptimizerConfig {
    fn from(config: AdamConfig) -> Self {
        OptimizerConfig::Adam(config)
    }
}

impl From<RmsPropConfig> for OptimizerConfig {
    fn from(config: RmsPropConfig) -> Self {
        OptimizerConfig::RmsProp(config)
    }
}

/// The state of one parameter: its length and `N` slot vectors, each
/// either that long or empty (a slot the config does not use).
#[derive(Debug, Clone)]
struct Slots<const N: usize> {
    len: usize,
    slots: [Vec<f32>; N],
}

/// Per-key optimizer state with `N` slots per parameter (momentum,
/// moments, accumulators), allocated on first use, plus the two ways of
/// applying an elementwise update: to a whole parameter, or to the rows of
/// a table named by a [`RowGrad`].
///
/// Each optimizer writes its update once, as a function of the weights,
/// the gradient and the matching slices of its slots; this store hands it
/// either whole vectors or one row of each.
#[derive(Debug, Clone)]
struct SlotStore<const N: usize> {
    /// The value each slot starts at; `None` for a slot the config does
    /// not use, which stays empty.
    init: [Option<f32>; N],
    params: HashMap<String, Slots<N>>,
}

impl<const N: usize> SlotStore<N> {
    fn new(init: [Option<f32>; N]) -> Self {
        Self { init, params: HashMap::new() }
    }

    /// The slots of `key`, allocated for a parameter of `len` values if
    /// this is the first time `key` is seen.
    fn slots(&mut self, key: &str, len: usize) -> Result<&mut [Vec<f32>; N]> {
        if !self.params.contains_key(key) {
            let slots = self.init.map(|init| init.map_or_else(Vec::new, |x| vec![x; len]));
            self.params.insert(key.to_owned(), Slots { len, slots });
        }
        let param = self.params.get_mut(key).expect("the state of `key` was inserted above");
        if param.len != len {
            return Err(Error::shape(
                "optimizer state",
                format!("[{}], the length first seen under {key:?}", param.len),
                &[len],
            ));
        }
        Ok(&mut param.slots)
    }

    /// Applies `update` once to the whole of `value`.
    fn step_dense<F>(
        &mut self,
        key: &str,
        value: &mut [f32],
        grad: &[f32],
        mut update: F,
    ) -> Result<()>
    where
        F: FnMut(&mut [f32], &[f32], [&mut [f32]; N]),
    {
        if grad.len() != value.len() {
            return Err(Error::shape(
                "gradient",
                format!("[{}], the length of the parameter", value.len()),
                &[grad.len()],
            ));
        }
        let slots = self.slots(key, value.len())?;
        update(value, grad, slots.each_mut().map(Vec::as_mut_slice));
        Ok(())
    }

    /// Applies `update` to each row of `table` that `grad` names, with the
    /// same rows of the slots. Everything is checked before anything
    /// changes; an empty `grad` is a no-op.
    fn step_rows<F>(
        &mut self,
        key: &str,
        table: &mut [f32],
        grad: &RowGrad,
        mut update: F,
    ) -> Result<()>
    where
        F: FnMut(&mut [f32], &[f32], [&mut [f32]; N]),
    {
        if grad.is_empty() {
            return Ok(());
        }
        let dim = grad.dim();
        if dim == 0 {
            return Err(Error::shape(
                "gradient rows",
                "rows of length at least 1",
                &[grad.len(), 0],
            ));
        }
        if table.len() % dim != 0 {
            return Err(Error::shape(
                "table",
                format!("a length that is a multiple of the row length {dim}"),
                &[table.len()],
            ));
        }
        let num_embeddings = table.len() / dim;
        // Ids are sorted: the first one past the table is found by bisection.
        let first_past = grad.ids().partition_point(|&id| (id as usize) < num_embeddings);
        if let Some(&id) = grad.ids().get(first_past) {
            return Err(Error::IdOutOfRange { id, num_embeddings });
        }
        let slots = self.slots(key, table.len())?;
        for (id, g) in grad.iter() {
            let rows = id as usize * dim..(id as usize + 1) * dim;
            let state = slots.each_mut().map(|slot| {
                if slot.is_empty() {
                    &mut [][..]
                } else {
                    &mut slot[rows.clone()]
                }
            });
            update(&mut table[rows], g, state);
        }
        Ok(())
    }
}

/// Checks that a learning rate is finite and positive.
fn check_learning_rate(value: f32) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            "learning_rate",
            format!("must be finite and greater than 0, got {value}"),
        ))
    }
}

/// Checks that a decay rate (momentum, beta, rho) is in `[0, 1)`.
fn check_decay(field: &'static str, value: f32) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::config(field, format!("must be at least 0 and less than 1, got {value}")))
    }
}

/// Checks that a value (epsilon, an initial accumulator) is finite and
/// not negative.
fn check_non_negative(field: &'static str, value: f32) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(field, format!("must be finite and at least 0, got {value}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_the_length_it_was_first_seen_with() -> Result<()> {
        let mut adam = AdamConfig::new().init()?;
        adam.step_dense("w", &mut [1.0, 2.0], &[0.1, 0.1])?;
        let err = adam.step_dense("w", &mut [1.0, 2.0, 3.0], &[0.1; 3]).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { ref got, .. } if got == &[3]), "{err}");
        // Tables share the rule, and other keys are independent.
        let err = adam.step_rows("w", &mut [0.0; 4], &RowGrad::from_rows(&[0], &[1.0], 1));
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })));
        adam.step_dense("b", &mut [1.0, 2.0, 3.0], &[0.1; 3])?;
        Ok(())
    }

    #[test]
    fn step_dense_rejects_a_gradient_of_another_length() -> Result<()> {
        let mut sgd = SgdConfig::new().init()?;
        let mut w = [1.0, 2.0];
        let err = sgd.step_dense("w", &mut w, &[0.1]).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { ref got, .. } if got == &[1]), "{err}");
        assert_eq!(w, [1.0, 2.0]);
        Ok(())
    }

    #[test]
    fn step_rows_rejects_a_table_that_is_not_whole_rows() -> Result<()> {
        let mut rmsprop = RmsPropConfig::new().init()?;
        let mut table = [1.0; 5];
        let err = rmsprop.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[1.0, 1.0], 2));
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })));
        assert_eq!(table, [1.0; 5]);
        Ok(())
    }

    #[test]
    fn step_rows_checks_every_id_before_changing_a_row() -> Result<()> {
        let mut adagrad = AdagradConfig::new().init()?;
        let mut table = [1.0; 6];
        let grad = RowGrad::from_rows(&[0, 7, 2, 3], &[1.0; 8], 2);
        let err = adagrad.step_rows("t", &mut table, &grad).unwrap_err();
        assert!(matches!(err, Error::IdOutOfRange { id: 3, num_embeddings: 3 }), "{err}");
        assert_eq!(table, [1.0; 6]);
        // No state was allocated: the key can still take another length.
        adagrad.step_dense("t", &mut [1.0], &[1.0])?;
        Ok(())
    }

    #[test]
    fn an_empty_row_gradient_is_a_no_op() -> Result<()> {
        let mut adam = AdamConfig::new().init()?;
        let mut table = [1.0; 4];
        adam.step_rows("t", &mut table, &RowGrad::new(2))?;
        assert_eq!(table, [1.0; 4]);
        Ok(())
    }

    #[test]
    fn errors_state_the_rule_and_the_value() {
        let err = SgdConfig::new().with_momentum(1.5).init().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid momentum: must be at least 0 and less than 1, got 1.5"
        );
        let err = AdamConfig::new().with_learning_rate(0.0).init().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid learning_rate: must be finite and greater than 0, got 0"
        );
        let err = AdagradConfig::new().with_epsilon(-1.0).init().unwrap_err();
        assert_eq!(err.to_string(), "invalid epsilon: must be finite and at least 0, got -1");
    }

    #[test]
    fn the_iteration_count_is_shared_by_all_keys() -> Result<()> {
        for config in [
            OptimizerConfig::from(SgdConfig::new()),
            AdagradConfig::new().into(),
            AdamConfig::new().into(),
            RmsPropConfig::new().into(),
        ] {
            let mut opt = config.build()?;
            opt.step_dense("a", &mut [1.0], &[1.0])?;
            opt.step_dense("b", &mut [1.0, 2.0], &[1.0, 1.0])?;
            assert_eq!(opt.iterations(), 0);
            opt.finish_step();
            assert_eq!(opt.iterations(), 1, "{}", config.name());
        }
        Ok(())
    }
}
