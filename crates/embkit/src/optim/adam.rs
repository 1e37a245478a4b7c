//! Adam: steps scaled by running estimates of the gradient's first and
//! second moments (Keras 3's `Adam`), with optional AMSGrad.
//!
//! Per element, with gradient `g`, moments `m`, `v` (starting at 0) and
//! `t = iterations + 1`:
//!
//! ```text
//! alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)     (powers in f64)
//! m += (g - m) * (1 - beta_1)
//! v += (g² - v) * (1 - beta_2)
//! amsgrad: v_hat = max(v_hat, v), and v_hat replaces v below
//! w -= alpha * m / (sqrt(v) + eps)
//! ```
//!
//! On tables the update is lazy, as PyTorch's `SparseAdam`: only the rows
//! in the gradient move, and `t` is the optimizer's single iteration count.

use serde::{Deserialize, Serialize};

use super::{
    check_decay, check_learning_rate, check_non_negative, Optimizer, OptimizerConfig, SlotStore,
};
use crate::{Result, RowGrad};

/// Settings for [`Adam`], with Keras's defaults.
///
/// Start from [`AdamConfig::new`], change what you need with the `with_*`
/// methods, then call [`init`](AdamConfig::init). Fields missing from a
/// serialised config take their default.
///
/// # Examples
///
/// ```
/// use embkit::{AdamConfig, Optimizer};
///
/// let mut adam = AdamConfig::new().with_learning_rate(0.01).init()?;
/// let mut w = vec![1.0_f32, -1.0];
/// adam.step_dense("w", &mut w, &[0.5, -0.5])?;
/// adam.finish_step();
/// // The first step moves every weight by about the learning rate.
/// assert!((w[0] - 0.99).abs() < 1e-5 && (w[1] + 0.99).abs() < 1e-5);
/// assert_eq!(adam.iterations(), 1);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AdamConfig {
    /// Step size `lr`; finite and greater than 0. Default 0.001.
    pub learning_rate: f32,
    /// Decay of the first moment `m`; in `[0, 1)`. Default 0.9.
    pub beta_1: f32,
    /// Decay of the second moment `v`; in `[0, 1)`. Default 0.999.
    pub beta_2: f32,
    /// Added to `sqrt(v)` in the denominator; finite and at least 0.
    /// Default 1e-7.
    pub epsilon: f32,
    /// Whether to divide by the largest `v` seen so far (AMSGrad).
    /// Default `false`.
    pub amsgrad: bool,
}

impl AdamConfig {
    /// The defaults: `learning_rate` 0.001, `beta_1` 0.9, `beta_2` 0.999,
    /// `epsilon` 1e-7, `amsgrad` `false`.
    pub fn new() -> Self {
        Self { learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets [`beta_1`](Self::beta_1).
    pub fn with_beta_1(mut self, beta_1: f32) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Sets [`beta_2`](Self::beta_2).
    pub fn with_beta_2(mut self, beta_2: f32) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Sets [`epsilon`](Self::epsilon).
    pub fn with_epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Sets [`amsgrad`](Self::amsgrad).
    pub fn with_amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Checks the hyper-parameters and builds the optimizer, with no state
    /// yet and its iteration count at 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if
    /// `learning_rate` is not finite and positive, `beta_1` or `beta_2` is
    /// not in `[0, 1)`, or `epsilon` is negative or not finite.
    pub fn init(&self) -> Result<Adam> {
        check_learning_rate(self.learning_rate)?;
        check_decay("beta_1", self.beta_1)?;
        check_decay("beta_2", self.beta_2)?;
        check_non_negative("epsilon", self.epsilon)?;
        let v_hat = self.amsgrad.then_some(0.0);
        Ok(Adam {
            config: self.clone(),
            state: SlotStore::new([Some(0.0), Some(0.0), v_hat]),
            iterations: 0,
        })
    }
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Adam, as Keras 3's `Adam`, lazy on tables as PyTorch's `SparseAdam`.
///
/// Per element, with gradient `g`, moments `m`, `v` (starting at 0) and
/// `t = iterations + 1`:
///
/// ```text
/// alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)     (powers in f64)
/// m += (g - m) * (1 - beta_1)
/// v += (g² - v) * (1 - beta_2)
/// amsgrad: v_hat = max(v_hat, v), and v_hat replaces v below
/// w -= alpha * m / (sqrt(v) + eps)
/// ```
///
/// Through [`step_rows`](Optimizer::step_rows) only the rows in the
/// gradient and their moments change, and `t` is the optimizer's single
/// iteration count, so a row first seen at step 10 is corrected with
/// `t = 10`, as in `SparseAdam`. Keras instead decays the moments of every
/// row on every step. Built by [`AdamConfig::init`].
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    /// Three slots: `m`, `v`, and `v_hat` (allocated with AMSGrad only).
    state: SlotStore<3>,
    iterations: u64,
}

impl Adam {
    /// The constants of the coming step, with the bias correction of
    /// `t = iterations + 1`.
    fn update(&self) -> AdamUpdate {
        let c = &self.config;
        // As an f64 exponent, t is exact up to 2^53 steps.
        let t = (self.iterations + 1) as f64;
        let correction_1 = 1.0 - f64::from(c.beta_1).powf(t);
        let correction_2 = 1.0 - f64::from(c.beta_2).powf(t);
        AdamUpdate {
            alpha: (f64::from(c.learning_rate) * correction_2.sqrt() / correction_1) as f32,
            one_minus_beta_1: 1.0 - c.beta_1,
            one_minus_beta_2: 1.0 - c.beta_2,
            epsilon: c.epsilon,
            amsgrad: c.amsgrad,
        }
    }
}

impl Optimizer for Adam {
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
        OptimizerConfig::Adam(self.config.clone())
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
struct AdamUpdate {
    alpha: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    epsilon: f32,
    amsgrad: bool,
}

impl AdamUpdate {
    /// The update, over matching slices of weights, gradient, `m`, `v` and
    /// `v_hat` (empty without AMSGrad).
    fn apply(self, w: &mut [f32], g: &[f32], [m, v, v_hat]: [&mut [f32]; 3]) {
        if self.amsgrad {
            debug_assert_eq!(v_hat.len(), w.len(), "v_hat is allocated with amsgrad");
            for ((((w, &g), m), v), v_hat) in w.iter_mut().zip(g).zip(m).zip(v).zip(v_hat) {
                self.moments(g, m, v);
                *v_hat = v_hat.max(*v);
                self.descend(w, *m, *v_hat);
            }
        } else {
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
                self.moments(g, m, v);
                self.descend(w, *m, *v);
            }
        }
    }

    /// `m += (g - m) * (1 - beta_1)`, `v += (g² - v) * (1 - beta_2)`.
    #[inline(always)]
    fn moments(self, g: f32, m: &mut f32, v: &mut f32) {
        *m += (g - *m) * self.one_minus_beta_1;
        *v += (g * g - *v) * self.one_minus_beta_2;
    }

    /// `w -= alpha * m / (sqrt(v) + eps)`.
    #[inline(always)]
    fn descend(self, w: &mut f32, m: f32, v: f32) {
        *w -= self.alpha * m / (v.sqrt() + self.epsilon);
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
        let c = AdamConfig::default();
        assert_eq!(
            (c.learning_rate, c.beta_1, c.beta_2, c.epsilon, c.amsgrad),
            (0.001, 0.9, 0.999, 1e-7, false)
        );
    }

    // w = 1.0, g = 0.5 twice, defaults (lr 0.001, beta_1 0.9, beta_2 0.999, eps 1e-7), in f64:
    // step 1: t = 1, alpha = 0.001 * sqrt(1 - 0.999) / (1 - 0.9) = 0.000316227766
    //         m = 0 + (0.5 - 0) * 0.1 = 0.05
    //         v = 0 + (0.25 - 0) * 0.001 = 0.00025
    //         w = 1 - 0.000316227766 * 0.05 / (sqrt(0.00025) + 1e-7)
    //           = 1 - 0.000316227766 * 0.05 / 0.0158114388 = 0.9990000
    // step 2: t = 2, alpha = 0.001 * sqrt(1 - 0.999²) / (1 - 0.9²) = 0.000235316725
    //         m = 0.05 + (0.5 - 0.05) * 0.1 = 0.095
    //         v = 0.00025 + (0.25 - 0.00025) * 0.001 = 0.00049975
    //         w = 0.9990000063 - 0.000235316725 * 0.095 / (sqrt(0.00049975) + 1e-7)
    //           = 0.9980000
    #[test]
    fn steps_match_the_formula() -> Result<()> {
        let mut adam = AdamConfig::new().init()?;
        let mut w = [1.0];
        adam.step_dense("w", &mut w, &[0.5])?;
        adam.finish_step();
        assert_close(w[0], 0.999_000_006_324_515_4);
        adam.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.998_000_010_797_749_8);
        Ok(())
    }

    // Keras (and PyTorch) add eps to sqrt(v). w = 1.0, g = 0.5, lr 0.1, eps 1.0:
    //   alpha = 0.1 * sqrt(0.001) / 0.1 = 0.0316227766, m = 0.05, v = 0.00025
    //   w = 1 - 0.0316227766 * 0.05 / (sqrt(0.00025) + 1) = 0.9984435
    //   (eps under the root: 1 - 0.0316227766 * 0.05 / sqrt(1.00025) = 0.9984191)
    #[test]
    fn epsilon_is_added_to_the_square_root() -> Result<()> {
        let mut adam = AdamConfig::new().with_learning_rate(0.1).with_epsilon(1.0).init()?;
        let mut w = [1.0];
        adam.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.998_443_472_037_925_3);
        Ok(())
    }

    // w = 1.0, g = 0.5 then g = 0.0, lr 0.1, other defaults, in f64:
    // step 1 (both): alpha = 0.0316227766, m = 0.05, v = 0.00025, w = 0.9000006
    // step 2: alpha = 0.0235316725, m = 0.05 + (0 - 0.05) * 0.1 = 0.045,
    //         v = 0.00025 + (0 - 0.00025) * 0.001 = 0.00024975 (smaller than before)
    //   plain:   w = 0.9000006325 - 0.0235316725 * 0.045 / (sqrt(0.00024975) + 1e-7) = 0.8329952
    //   amsgrad: v_hat = max(0.00025, 0.00024975) = 0.00025
    //            w = 0.9000006325 - 0.0235316725 * 0.045 / (sqrt(0.00025) + 1e-7) = 0.8330287
    #[test]
    fn amsgrad_divides_by_the_largest_second_moment() -> Result<()> {
        for (amsgrad, want) in [(false, 0.832_995_231_029_295), (true, 0.833_028_741_897_930_4)] {
            let mut adam =
                AdamConfig::new().with_learning_rate(0.1).with_amsgrad(amsgrad).init()?;
            let mut w = [1.0];
            adam.step_dense("w", &mut w, &[0.5])?;
            adam.finish_step();
            assert_close(w[0], 0.900_000_632_451_532_1);
            adam.step_dense("w", &mut w, &[0.0])?;
            assert_close(w[0], want);
        }
        Ok(())
    }

    // A row first touched at step 2 starts from zero moments but is
    // corrected with the global t = 2 (SparseAdam), w = 1.0, g = 0.5, defaults:
    //   alpha = 0.000235316725, m = 0.05, v = 0.00025
    //   w = 1 - 0.000235316725 * 0.05 / (sqrt(0.00025) + 1e-7) = 0.9992559
    #[test]
    fn rows_use_the_global_step_count() -> Result<()> {
        let mut adam = AdamConfig::new().init()?;
        let mut table = [1.0, 1.0];
        adam.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[0.5], 1))?;
        adam.finish_step();
        adam.step_rows("t", &mut table, &RowGrad::from_rows(&[1], &[0.5], 1))?;
        assert_close(table[0], 0.999_000_006_324_515_4);
        assert_close(table[1], 0.999_255_867_882_737_8);
        Ok(())
    }

    #[test]
    fn init_rejects_bad_hyper_parameters() {
        let bad = [
            ("learning_rate", AdamConfig::new().with_learning_rate(-1.0)),
            ("learning_rate", AdamConfig::new().with_learning_rate(f32::INFINITY)),
            ("beta_1", AdamConfig::new().with_beta_1(1.0)),
            ("beta_1", AdamConfig::new().with_beta_1(-0.1)),
            ("beta_2", AdamConfig::new().with_beta_2(1.5)),
            ("beta_2", AdamConfig::new().with_beta_2(f32::NAN)),
            ("epsilon", AdamConfig::new().with_epsilon(-1e-8)),
            ("epsilon", AdamConfig::new().with_epsilon(f32::INFINITY)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
