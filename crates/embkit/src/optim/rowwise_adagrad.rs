//! Row-wise Adagrad: one accumulator per table row instead of one per
//! value (FBGEMM's `EXACT_ROWWISE_ADAGRAD`, the usual optimizer for large
//! embedding tables in PyTorch recommendation models).
//!
//! Per row, with gradient row `g` of `embedding_dim` values and row
//! accumulator `acc` (starting at `initial_accumulator_value`):
//!
//! ```text
//! acc += mean(g²)                        (the mean over the row's values)
//! w -= lr / (sqrt(acc) + eps) * g
//! ```
//!
//! A dense parameter (whose shape the optimizer does not see) is one row:
//! it has a single accumulator, the mean over all its values.

use serde::{Deserialize, Serialize};

use super::{
    check_learning_rate, check_non_negative, stepper_optimizer, Kernel, Rule, Slot, Stepper,
    TableUpdates,
};
use crate::Result;

/// Settings for [`RowWiseAdagrad`], with FBGEMM's defaults.
///
/// Start from [`RowWiseAdagradConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](RowWiseAdagradConfig::init).
/// Fields missing from a serialised config take their default.
///
/// # Examples
///
/// ```
/// use embkit::optim::{Optimizer, RowWiseAdagradConfig};
/// use embkit::RowGrad;
///
/// let mut adagrad = RowWiseAdagradConfig::new().with_learning_rate(0.1).init()?;
/// let mut table = vec![0.0_f32; 2 * 2];
/// // Row 1: mean(g²) = (3² + 4²) / 2 = 12.5; both values share one step size.
/// adagrad.step_rows("embedding", &mut table, &RowGrad::from_rows(&[1], &[3.0, 4.0], 2))?;
/// let step = 0.1 / 12.5_f32.sqrt();
/// assert!((table[2] + 3.0 * step).abs() < 1e-6 && (table[3] + 4.0 * step).abs() < 1e-6);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RowWiseAdagradConfig {
    /// Step size `lr`; finite and greater than 0. Default 0.01.
    pub learning_rate: f32,
    /// Added to the square root of the accumulator; finite and at least 0.
    /// Default 1e-8.
    pub epsilon: f32,
    /// The value every row accumulator starts at; finite and at least 0.
    /// Default 0.
    pub initial_accumulator_value: f32,
    /// How tables are stepped. Default lazy; rows outside the gradient
    /// never change, so [`TableUpdates::Dense`] is the same, and
    /// [`TableUpdates::Keras`] adds the mean of `Σ gᵢ²` for an id seen
    /// several times in a batch instead of the mean of `(Σ gᵢ)²`.
    pub table_updates: TableUpdates,
}

impl RowWiseAdagradConfig {
    /// FBGEMM's defaults: `learning_rate` 0.01, `epsilon` 1e-8,
    /// `initial_accumulator_value` 0.
    pub fn new() -> Self {
        Self {
            learning_rate: 0.01,
            epsilon: 1e-8,
            initial_accumulator_value: 0.0,
            table_updates: TableUpdates::Lazy,
        }
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets [`epsilon`](Self::epsilon).
    pub fn with_epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Sets [`initial_accumulator_value`](Self::initial_accumulator_value).
    pub fn with_initial_accumulator_value(mut self, initial_accumulator_value: f32) -> Self {
        self.initial_accumulator_value = initial_accumulator_value;
        self
    }

    /// Sets [`table_updates`](Self::table_updates).
    pub fn with_table_updates(mut self, table_updates: TableUpdates) -> Self {
        self.table_updates = table_updates;
        self
    }

    /// Checks the hyper-parameters and builds the optimizer, with no state
    /// yet and its iteration count at 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if
    /// `learning_rate` is not finite and positive, or `epsilon` or
    /// `initial_accumulator_value` is negative or not finite.
    pub fn init(&self) -> Result<RowWiseAdagrad> {
        check_learning_rate(self.learning_rate)?;
        check_non_negative("epsilon", self.epsilon)?;
        check_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        Ok(RowWiseAdagrad(Stepper::new(self.clone())))
    }
}

impl Default for RowWiseAdagradConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Row-wise Adagrad, as FBGEMM's `EXACT_ROWWISE_ADAGRAD` (without its
/// weight decay modes): one accumulator per row.
///
/// Per row, with gradient row `g` and row accumulator `acc` (starting at
/// `initial_accumulator_value`):
///
/// ```text
/// acc += mean(g²)                        (the mean over the row's values)
/// w -= lr / (sqrt(acc) + eps) * g
/// ```
///
/// FBGEMM sums an id's occurrences before squaring (as
/// [`TableUpdates::Lazy`] does). The state is `num_embeddings` values per
/// table, not `num_embeddings × embedding_dim`. A dense parameter is
/// treated as a single row, with one accumulator. Built by
/// [`RowWiseAdagradConfig::init`].
#[derive(Debug, Clone)]
pub struct RowWiseAdagrad(Stepper<RowWiseAdagradConfig, 1>);

stepper_optimizer!(RowWiseAdagrad);

impl Rule<1> for RowWiseAdagradConfig {
    type Kernel = RowWiseAdagradKernel;

    fn slots(&self) -> [Slot; 1] {
        [Slot::Row(self.initial_accumulator_value)]
    }

    fn table_mode(&self) -> TableUpdates {
        self.table_updates
    }

    fn learning_rate_mut(&mut self) -> &mut f32 {
        &mut self.learning_rate
    }

    fn kernel(&self, _iterations: u64) -> RowWiseAdagradKernel {
        RowWiseAdagradKernel { learning_rate: self.learning_rate, epsilon: self.epsilon }
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowWiseAdagradKernel {
    learning_rate: f32,
    epsilon: f32,
}

impl Kernel<1> for RowWiseAdagradKernel {
    const SQUARES: bool = true;

    fn zero_gradient_is_identity(self) -> bool {
        true
    }

    /// The update of one row: weights, gradient, squared gradient and the
    /// row's accumulator (one value).
    #[inline(always)]
    fn apply(self, w: &mut [f32], g: &[f32], g2: &[f32], [accumulator]: [&mut [f32]; 1]) {
        if w.is_empty() {
            return;
        }
        // FBGEMM's CPU kernel: an f32 sum in order, divided by the length.
        let mean = g2.iter().sum::<f32>() / g2.len() as f32;
        let acc = &mut accumulator[0];
        *acc += mean;
        let multiplier = self.learning_rate / (acc.sqrt() + self.epsilon);
        for (w, &g) in w.iter_mut().zip(g) {
            *w -= g * multiplier;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;
    use crate::{Error, RowGrad};

    fn assert_close(got: f32, want: f64) {
        assert!((f64::from(got) - want).abs() < 1e-6, "got {got}, want {want}");
    }

    #[test]
    fn defaults_are_fbgemm_defaults() {
        let c = RowWiseAdagradConfig::default();
        assert_eq!((c.learning_rate, c.epsilon, c.initial_accumulator_value), (0.01, 1e-8, 0.0));
        assert_eq!(c.table_updates, TableUpdates::Lazy);
    }

    // lr 0.01, eps 1e-8, table of 3 rows of 2, in f64:
    // step 1: ids [2, 0, 2] with rows [1, -1], [3, 4], [1, 1]: row 2 = [2, 0], row 0 = [3, 4]
    //   row 0: acc = (9 + 16) / 2 = 12.5, m = 0.01 / (3.5355339 + 1e-8) = 0.0028284271
    //          w = [1 - 3m, 1 - 4m] = [0.9915147, 0.9886863]
    //   row 2: acc = (4 + 0) / 2 = 2, m = 0.01 / 1.4142136 = 0.0070710678
    //          w = [1 - 2m, 1] = [0.9858579, 1]
    // step 2: row 2 = [0, -2]: acc = 2 + 2 = 4, m = 0.005, w = [0.9858579, 1.01]
    #[test]
    fn steps_match_the_formula() -> Result<()> {
        let mut adagrad = RowWiseAdagradConfig::new().init()?;
        let mut table = [1.0; 6];
        let grad = RowGrad::from_rows(&[2, 0, 2], &[1.0, -1.0, 3.0, 4.0, 1.0, 1.0], 2);
        adagrad.step_rows("t", &mut table, &grad)?;
        adagrad.finish_step();
        let want = [0.991_514_718_6, 0.988_686_291_4, 1.0, 1.0, 0.985_857_864_4, 1.0];
        for (&got, want) in table.iter().zip(want) {
            assert_close(got, want);
        }
        adagrad.step_rows("t", &mut table, &RowGrad::from_rows(&[2], &[0.0, -2.0], 2))?;
        assert_close(table[4], 0.985_857_864_4);
        assert_close(table[5], 1.01);
        Ok(())
    }

    // Id 0 seen twice, with [1, 0] and [-1, 0]: the summed row is [0, 0].
    //   lazy: acc += mean([0, 0]²) = 0;   Keras: acc += mean([1 + 1, 0 + 0]) = 1
    // Then g = [1, 0] once: acc += 0.5, so lazy acc = 0.5, Keras acc = 1.5, and
    //   w = -0.1 * 1 / (sqrt(acc) + 1e-8)
    #[test]
    fn keras_mode_adds_the_mean_of_the_occurrences_squares() -> Result<()> {
        for (mode, acc) in [(TableUpdates::Lazy, 0.5_f64), (TableUpdates::Keras, 1.5)] {
            let mut adagrad = RowWiseAdagradConfig::new()
                .with_learning_rate(0.1)
                .with_table_updates(mode)
                .init()?;
            let mut table = [0.0, 0.0];
            let twice = RowGrad::from_rows(&[0, 0], &[1.0, 0.0, -1.0, 0.0], 2);
            adagrad.step_rows("t", &mut table, &twice)?;
            assert_eq!(table, [0.0, 0.0]);
            adagrad.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[1.0, 0.0], 2))?;
            assert_close(table[0], -0.1 / (acc.sqrt() + 1e-8));
        }
        Ok(())
    }

    // A dense parameter is one row: w = [1, 1, 1, 1], g = [1, 1, 1, 3]:
    //   acc = (1 + 1 + 1 + 9) / 4 = 3, m = 0.01 / sqrt(3) = 0.0057735027
    #[test]
    fn a_dense_parameter_is_one_row() -> Result<()> {
        let mut adagrad = RowWiseAdagradConfig::new().init()?;
        let mut w = [1.0; 4];
        adagrad.step_dense("w", &mut w, &[1.0, 1.0, 1.0, 3.0])?;
        assert_close(w[0], 1.0 - 0.005_773_502_7);
        assert_close(w[3], 1.0 - 3.0 * 0.005_773_502_7);
        Ok(())
    }

    #[test]
    fn init_rejects_bad_hyper_parameters() {
        let bad = [
            ("learning_rate", RowWiseAdagradConfig::new().with_learning_rate(0.0)),
            ("learning_rate", RowWiseAdagradConfig::new().with_learning_rate(f32::NAN)),
            ("epsilon", RowWiseAdagradConfig::new().with_epsilon(-1e-8)),
            ("epsilon", RowWiseAdagradConfig::new().with_epsilon(f32::INFINITY)),
            (
                "initial_accumulator_value",
                RowWiseAdagradConfig::new().with_initial_accumulator_value(-1.0),
            ),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
