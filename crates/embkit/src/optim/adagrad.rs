//! Adagrad: per-element step sizes that shrink with the sum of squared
//! gradients (Keras 3's `Adagrad`).
//!
//! Per element, with gradient `g` and accumulator `acc` (starting at
//! `initial_accumulator_value`):
//!
//! ```text
//! acc += g²
//! w -= lr * g / sqrt(acc + eps)
//! ```
//!
//! Keras puts `eps` inside the square root; PyTorch adds it outside.

use serde::{Deserialize, Serialize};

use super::{check_learning_rate, check_non_negative, Optimizer, OptimizerConfig, SlotStore};
use crate::{Result, RowGrad};

/// Settings for [`Adagrad`], with Keras's defaults.
///
/// Start from [`AdagradConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](AdagradConfig::init). Fields
/// missing from a serialised config take their default.
///
/// # Examples
///
/// ```
/// use embkit::{AdagradConfig, Optimizer, RowGrad};
///
/// let mut adagrad = AdagradConfig::new().with_learning_rate(0.1).init()?;
/// // A table of 3 rows of 2; the gradient names row 1 only.
/// let mut table = vec![0.0_f32; 3 * 2];
/// let grad = RowGrad::from_rows(&[1], &[1.0, -1.0], 2);
/// adagrad.step_rows("embedding", &mut table, &grad)?;
/// adagrad.finish_step();
/// assert!(table[2] < 0.0 && table[3] > 0.0);
/// assert_eq!(table[..2], [0.0, 0.0]);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AdagradConfig {
    /// Step size `lr`; finite and greater than 0. Default 0.001.
    pub learning_rate: f32,
    /// The value every accumulator starts at; finite and at least 0.
    /// Default 0.1.
    pub initial_accumulator_value: f32,
    /// Added to the accumulator under the square root; finite and at
    /// least 0. Default 1e-7.
    pub epsilon: f32,
}

impl AdagradConfig {
    /// The defaults: `learning_rate` 0.001, `initial_accumulator_value`
    /// 0.1, `epsilon` 1e-7.
    pub fn new() -> Self {
        Self { learning_rate: 0.001, initial_accumulator_value: 0.1, epsilon: 1e-7 }
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets [`initial_accumulator_value`](Self::initial_accumulator_value).
    pub fn with_initial_accumulator_value(mut self, initial_accumulator_value: f32) -> Self {
        self.initial_accumulator_value = initial_accumulator_value;
        self
    }

    /// Sets [`epsilon`](Self::epsilon).
    pub fn with_epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Checks the hyper-parameters and builds the optimizer, with no state
    /// yet and its iteration count at 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if
    /// `learning_rate` is not finite and positive, or
    /// `initial_accumulator_value` or `epsilon` is negative or not finite.
    pub fn init(&self) -> Result<Adagrad> {
        check_learning_rate(self.learning_rate)?;
        check_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check_non_negative("epsilon", self.epsilon)?;
        let accumulator = Some(self.initial_accumulator_value);
        Ok(Adagrad { config: self.clone(), state: SlotStore::new([accumulator]), iterations: 0 })
    }
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Adagrad, as Keras 3's `Adagrad`.
///
/// Per element, with gradient `g` and accumulator `acc` (starting at
/// `initial_accumulator_value`):
///
/// ```text
/// acc += g²
/// w -= lr * g / sqrt(acc + eps)
/// ```
///
/// For a table, `g` is the row gradient with repeated ids already summed
/// (PyTorch's order), so an id seen twice in a batch adds `(g₁ + g₂)²`,
/// where Keras adds `g₁² + g₂²`. Built by [`AdagradConfig::init`].
#[derive(Debug, Clone)]
pub struct Adagrad {
    config: AdagradConfig,
    /// One slot: the accumulator `acc`.
    state: SlotStore<1>,
    iterations: u64,
}

impl Adagrad {
    fn update(&self) -> AdagradUpdate {
        AdagradUpdate { learning_rate: self.config.learning_rate, epsilon: self.config.epsilon }
    }
}

impl Optimizer for Adagrad {
    fn step_dense(&mut self, key: &str, value: &mut [f32], grad: &[f32]) -> Result<()> {
        let update = self.update();
        self.state.step_dense(key, value, grad, |w, g, slots| update.apply(w, g, slots))
    }

    fn step_rows(&mut self, key: &str, table: &mut [f32], grad: &RowGrad) -> Result<()> {
        let update = self.update();
        self.state.step_rows(key, table, grad, |w, g, slots| update.apply(w, g, slots))
    }

    fn finish_step(&mut self) {
        self.iterations += 1;
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn config(&self) -> OptimizerConfig {
        OptimizerConfig::Adagrad(self.config.clone())
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
struct AdagradUpdate {
    learning_rate: f32,
    epsilon: f32,
}

impl AdagradUpdate {
    /// The update, over matching slices of weights, gradient and
    /// accumulator.
    fn apply(self, w: &mut [f32], g: &[f32], [accumulator]: [&mut [f32]; 1]) {
        let Self { learning_rate: lr, epsilon } = self;
        for ((w, &g), acc) in w.iter_mut().zip(g).zip(accumulator) {
            *acc += g * g;
            *w -= lr * g / (*acc + epsilon).sqrt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn assert_close(got: f32, want: f64) {
        assert!((f64::from(got) - want).abs() < 1e-6, "got {got}, want {want}");
    }

    #[test]
    fn defaults_are_keras_defaults() {
        let c = AdagradConfig::default();
        assert_eq!((c.learning_rate, c.initial_accumulator_value, c.epsilon), (0.001, 0.1, 1e-7));
    }

    // w = 1.0, g = 0.5 twice, defaults (lr 0.001, acc0 0.1, eps 1e-7), in f64:
    // step 1: acc = 0.1 + 0.25 = 0.35
    //         w = 1 - 0.001 * 0.5 / sqrt(0.35 + 1e-7) = 1 - 0.0008451541339922 = 0.9991548
    // step 2: acc = 0.35 + 0.25 = 0.6
    //         w = 0.9991548459 - 0.001 * 0.5 / sqrt(0.6000001) = 0.9985093
    #[test]
    fn steps_match_the_formula() -> Result<()> {
        let mut adagrad = AdagradConfig::new().init()?;
        let mut w = [1.0];
        adagrad.step_dense("w", &mut w, &[0.5])?;
        adagrad.finish_step();
        assert_close(w[0], 0.999_154_845_866_007_8);
        adagrad.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.998_509_348_695_431_3);
        Ok(())
    }

    // Keras adds eps under the square root. w = 1.0, g = 0.5, lr 0.1, eps 1.0, acc0 0.1:
    //   acc = 0.35, w = 1 - 0.1 * 0.5 / sqrt(0.35 + 1) = 0.9569669
    //   (eps outside, as PyTorch: 1 - 0.05 / (sqrt(0.35) + 1) = 0.9685852)
    #[test]
    fn epsilon_is_inside_the_square_root() -> Result<()> {
        let mut adagrad = AdagradConfig::new().with_learning_rate(0.1).with_epsilon(1.0).init()?;
        let mut w = [1.0];
        adagrad.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.956_966_851_708_806_5);
        Ok(())
    }

    // The accumulator of every row starts at initial_accumulator_value,
    // also for a row first touched after other rows were updated:
    // w = 0.0, g = -1.0, lr 0.1, acc0 0.0, eps 0: acc = 1, w = 0 + 0.1 * 1 / 1 = 0.1
    #[test]
    fn rows_start_from_the_initial_accumulator() -> Result<()> {
        let mut adagrad = AdagradConfig::new()
            .with_learning_rate(0.1)
            .with_initial_accumulator_value(0.0)
            .with_epsilon(0.0)
            .init()?;
        let mut table = [0.0; 4];
        adagrad.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[5.0, 5.0], 2))?;
        adagrad.finish_step();
        adagrad.step_rows("t", &mut table, &RowGrad::from_rows(&[1], &[-1.0, -1.0], 2))?;
        assert_close(table[2], 0.1);
        assert_close(table[3], 0.1);
        Ok(())
    }

    #[test]
    fn init_rejects_bad_hyper_parameters() {
        let bad = [
            ("learning_rate", AdagradConfig::new().with_learning_rate(0.0)),
            ("learning_rate", AdagradConfig::new().with_learning_rate(f32::NAN)),
            (
                "initial_accumulator_value",
                AdagradConfig::new().with_initial_accumulator_value(-0.1),
            ),
            (
                "initial_accumulator_value",
                AdagradConfig::new().with_initial_accumulator_value(f32::INFINITY),
            ),
            ("epsilon", AdagradConfig::new().with_epsilon(-1e-7)),
            ("epsilon", AdagradConfig::new().with_epsilon(f32::NAN)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
