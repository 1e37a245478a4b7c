//! RMSprop: steps divided by a running root mean square of the gradient
//! (Keras 3's `RMSprop`), optionally centered and with momentum.
//!
//! Per element, with gradient `g` and `v`, `mg`, `mom` starting at 0:
//!
//! ```text
//! v = rho * v + (1 - rho) * g²
//! centered:  mg = rho * mg + (1 - rho) * g;  denom = v - mg² + eps
//! otherwise: denom = v + eps
//! inc = lr * g / sqrt(denom)
//! momentum > 0: mom = momentum * mom + inc;  w -= mom
//! otherwise:    w -= inc
//! ```
//!
//! Keras puts `eps` inside the square root; PyTorch adds it outside.

use serde::{Deserialize, Serialize};

use super::{
    check_decay, check_learning_rate, check_non_negative, Optimizer, OptimizerConfig, SlotStore,
};
use crate::{Result, RowGrad};

/// Settings for [`RmsProp`], with Keras's defaults.
///
/// Start from [`RmsPropConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](RmsPropConfig::init). Fields
/// missing from a serialised config take their default.
///
/// # Examples
///
/// ```
/// use embkit::{Optimizer, RmsPropConfig};
///
/// let mut rmsprop = RmsPropConfig::new().with_momentum(0.9).with_centered(true).init()?;
/// let mut w = vec![1.0_f32];
/// rmsprop.step_dense("w", &mut w, &[0.5])?;
/// rmsprop.finish_step();
/// assert!(w[0] < 1.0);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RmsPropConfig {
    /// Step size `lr`; finite and greater than 0. Default 0.001.
    pub learning_rate: f32,
    /// Decay of the running averages; in `[0, 1)`. Default 0.9.
    pub rho: f32,
    /// Decay of the momentum; in `[0, 1)`, 0 for none. Default 0.
    pub momentum: f32,
    /// Added to the mean square under the square root; finite and at
    /// least 0. Default 1e-7.
    pub epsilon: f32,
    /// Whether to divide by the running variance (`v - mg²`) instead of
    /// the running mean square. Default `false`.
    pub centered: bool,
}

impl RmsPropConfig {
    /// The defaults: `learning_rate` 0.001, `rho` 0.9, `momentum` 0,
    /// `epsilon` 1e-7, `centered` `false`.
    pub fn new() -> Self {
        Self { learning_rate: 0.001, rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false }
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets [`rho`](Self::rho).
    pub fn with_rho(mut self, rho: f32) -> Self {
        self.rho = rho;
        self
    }

    /// Sets [`momentum`](Self::momentum).
    pub fn with_momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets [`epsilon`](Self::epsilon).
    pub fn with_epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Sets [`centered`](Self::centered).
    pub fn with_centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// Checks the hyper-parameters and builds the optimizer, with no state
    /// yet and its iteration count at 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if
    /// `learning_rate` is not finite and positive, `rho` or `momentum` is
    /// not in `[0, 1)`, or `epsilon` is negative or not finite.
    pub fn init(&self) -> Result<RmsProp> {
        check_learning_rate(self.learning_rate)?;
        check_decay("rho", self.rho)?;
        check_decay("momentum", self.momentum)?;
        check_non_negative("epsilon", self.epsilon)?;
        let mean_grad = self.centered.then_some(0.0);
        let momentum = (self.momentum > 0.0).then_some(0.0);
        Ok(RmsProp {
            config: self.clone(),
            state: SlotStore::new([Some(0.0), mean_grad, momentum]),
            iterations: 0,
        })
    }
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// RMSprop, as Keras 3's `RMSprop`.
///
/// Per element, with gradient `g` and `v`, `mg`, `mom` starting at 0:
///
/// ```text
/// v = rho * v + (1 - rho) * g²
/// centered:  mg = rho * mg + (1 - rho) * g;  denom = v - mg² + eps
/// otherwise: denom = v + eps
/// inc = lr * g / sqrt(denom)
/// momentum > 0: mom = momentum * mom + inc;  w -= mom
/// otherwise:    w -= inc
/// ```
///
/// `mg` is allocated only when centered, `mom` only with momentum. Built by
/// [`RmsPropConfig::init`].
#[derive(Debug, Clone)]
pub struct RmsProp {
    config: RmsPropConfig,
    /// Three slots: `v`, `mg` (centered only) and `mom` (momentum only).
    state: SlotStore<3>,
    iterations: u64,
}

impl RmsProp {
    fn update(&self) -> RmsPropUpdate {
        let c = &self.config;
        RmsPropUpdate {
            learning_rate: c.learning_rate,
            rho: c.rho,
            one_minus_rho: 1.0 - c.rho,
            momentum: c.momentum,
            epsilon: c.epsilon,
            centered: c.centered,
        }
    }
}

impl Optimizer for RmsProp {
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
        OptimizerConfig::RmsProp(self.config.clone())
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
struct RmsPropUpdate {
    learning_rate: f32,
    rho: f32,
    one_minus_rho: f32,
    momentum: f32,
    epsilon: f32,
    centered: bool,
}

impl RmsPropUpdate {
    /// The update, over matching slices of weights, gradient, `v`, `mg`
    /// (empty unless centered) and `mom` (empty without momentum). One
    /// loop per variant, so each stays simple enough to vectorise.
    fn apply(self, w: &mut [f32], g: &[f32], [v, mg, mom]: [&mut [f32]; 3]) {
        let pairs = w.iter_mut().zip(g).zip(v);
        match (self.centered, self.momentum > 0.0) {
            (false, false) => {
                for ((w, &g), v) in pairs {
                    *w -= self.increment(g, self.mean_square(g, v));
                }
            }
            (true, false) => {
                for (((w, &g), v), mg) in pairs.zip(mg) {
                    *w -= self.increment(g, self.variance(g, v, mg));
                }
            }
            (false, true) => {
                for (((w, &g), v), mom) in pairs.zip(mom) {
                    *w -= self.accelerate(self.increment(g, self.mean_square(g, v)), mom);
                }
            }
            (true, true) => {
                for ((((w, &g), v), mg), mom) in pairs.zip(mg).zip(mom) {
                    *w -= self.accelerate(self.increment(g, self.variance(g, v, mg)), mom);
                }
            }
        }
    }

    /// `v = rho * v + (1 - rho) * g²`; returns `v`.
    #[inline(always)]
    fn mean_square(self, g: f32, v: &mut f32) -> f32 {
        *v = self.rho * *v + self.one_minus_rho * (g * g);
        *v
    }

    /// Updates `v` and `mg = rho * mg + (1 - rho) * g`; returns `v - mg²`.
    #[inline(always)]
    fn variance(self, g: f32, v: &mut f32, mg: &mut f32) -> f32 {
        let v = self.mean_square(g, v);
        *mg = self.rho * *mg + self.one_minus_rho * g;
        v - *mg * *mg
    }

    /// `inc = lr * g / sqrt(spread + eps)`, where `spread` is `v`, or
    /// `v - mg²` when centered.
    #[inline(always)]
    fn increment(self, g: f32, spread: f32) -> f32 {
        self.learning_rate * g / (spread + self.epsilon).sqrt()
    }

    /// `mom = momentum * mom + inc`; returns `mom`.
    #[inline(always)]
    fn accelerate(self, inc: f32, mom: &mut f32) -> f32 {
        *mom = self.momentum * *mom + inc;
        *mom
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
        let c = RmsPropConfig::default();
        assert_eq!(
            (c.learning_rate, c.rho, c.momentum, c.epsilon, c.centered),
            (0.001, 0.9, 0.0, 1e-7, false)
        );
    }

    // w = 1.0, g = 0.5, defaults (lr 0.001, rho 0.9, eps 1e-7), in f64:
    //   v = 0.9 * 0 + 0.1 * 0.25 = 0.025
    //   w = 1 - 0.001 * 0.5 / sqrt(0.025 + 1e-7) = 1 - 0.0031622713 = 0.9968377
    #[test]
    fn step_matches_the_formula() -> Result<()> {
        let mut rmsprop = RmsPropConfig::new().init()?;
        let mut w = [1.0];
        rmsprop.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.996_837_728_664_367_9);
        Ok(())
    }

    // Keras adds eps under the square root. w = 1.0, g = 0.5, lr 0.1, eps 1.0:
    //   v = 0.025, w = 1 - 0.1 * 0.5 / sqrt(0.025 + 1) = 0.9506135
    //   (eps outside, as PyTorch: 1 - 0.05 / (sqrt(0.025) + 1) = 0.9568264)
    #[test]
    fn epsilon_is_inside_the_square_root() -> Result<()> {
        let mut rmsprop = RmsPropConfig::new().with_learning_rate(0.1).with_epsilon(1.0).init()?;
        let mut w = [1.0];
        rmsprop.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.950_613_520_167_520_5);
        Ok(())
    }

    // w = 1.0, g = 0.5, centered, other defaults, in f64:
    //   v = 0.025, mg = 0.9 * 0 + 0.1 * 0.5 = 0.05
    //   denom = 0.025 - 0.05² + 1e-7 = 0.0225001
    //   w = 1 - 0.001 * 0.5 / sqrt(0.0225001) = 1 - 0.0033333259 = 0.9966667
    #[test]
    fn centered_step_matches_the_formula() -> Result<()> {
        let mut rmsprop = RmsPropConfig::new().with_centered(true).init()?;
        let mut w = [1.0];
        rmsprop.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.996_666_674_074_049_4);
        Ok(())
    }

    // w = 1.0, g = 0.5 twice, momentum 0.9, other defaults, in f64:
    // step 1: v = 0.025, inc = 0.001 * 0.5 / sqrt(0.0250001) = 0.0031622713
    //         mom = 0.9 * 0 + 0.0031622713 = 0.0031622713, w = 0.9968377
    // step 2: v = 0.9 * 0.025 + 0.1 * 0.25 = 0.0475
    //         inc = 0.001 * 0.5 / sqrt(0.0475001) = 0.0022941549
    //         mom = 0.9 * 0.0031622713 + 0.0022941549 = 0.0051401991
    //         w = 0.9968377287 - 0.0051401991 = 0.9916975
    #[test]
    fn momentum_steps_match_the_formula() -> Result<()> {
        let mut rmsprop = RmsPropConfig::new().with_momentum(0.9).init()?;
        let mut w = [1.0];
        rmsprop.step_dense("w", &mut w, &[0.5])?;
        rmsprop.finish_step();
        assert_close(w[0], 0.996_837_728_664_367_9);
        rmsprop.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.991_697_529_538_492_1);
        Ok(())
    }

    #[test]
    fn centered_momentum_rows_match_the_dense_step() -> Result<()> {
        let config = RmsPropConfig::new().with_momentum(0.5).with_centered(true);
        let (mut sparse, mut dense) = (config.init()?, config.init()?);
        let mut table = [1.0, -1.0, 0.5, 2.0];
        let mut row = [0.5, 2.0];
        for g in [[0.5, -0.25], [1.0, 3.0]] {
            sparse.step_rows("t", &mut table, &RowGrad::from_rows(&[1], &g, 2))?;
            dense.step_dense("row", &mut row, &g)?;
        }
        assert_eq!(table, [1.0, -1.0, row[0], row[1]]);
        Ok(())
    }

    #[test]
    fn init_rejects_bad_hyper_parameters() {
        let bad = [
            ("learning_rate", RmsPropConfig::new().with_learning_rate(0.0)),
            ("learning_rate", RmsPropConfig::new().with_learning_rate(f32::NEG_INFINITY)),
            ("rho", RmsPropConfig::new().with_rho(1.0)),
            ("rho", RmsPropConfig::new().with_rho(-0.9)),
            ("momentum", RmsPropConfig::new().with_momentum(1.0)),
            ("momentum", RmsPropConfig::new().with_momentum(f32::NAN)),
            ("epsilon", RmsPropConfig::new().with_epsilon(-1.0)),
            ("epsilon", RmsPropConfig::new().with_epsilon(f32::NAN)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
