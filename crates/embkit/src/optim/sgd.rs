//! Stochastic gradient descent, with optional momentum and Nesterov
//! momentum (Keras 3's `SGD`).
//!
//! Per element, with gradient `g` and velocity `v` (starting at 0):
//!
//! ```text
//! momentum == 0:  w -= lr * g
//! otherwise:      v = momentum * v - lr * g
//!                 w += v                          (nesterov: w += momentum * v - lr * g)
//! ```

use serde::{Deserialize, Serialize};

use super::{check_decay, check_learning_rate, Optimizer, OptimizerConfig, SlotStore};
use crate::{Result, RowGrad};

/// Settings for [`Sgd`], with Keras's defaults.
///
/// Start from [`SgdConfig::new`], change what you need with the `with_*`
/// methods, then call [`init`](SgdConfig::init). Fields missing from a
/// serialised config take their default.
///
/// # Examples
///
/// ```
/// use embkit::{Optimizer, SgdConfig};
///
/// let mut sgd = SgdConfig::new().with_learning_rate(0.1).init()?;
/// let mut w = vec![1.0_f32, 2.0];
/// sgd.step_dense("w", &mut w, &[0.5, -1.0])?;
/// sgd.finish_step();
/// assert!((w[0] - 0.95).abs() < 1e-6 && (w[1] - 2.1).abs() < 1e-6);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SgdConfig {
    /// Step size `lr`; finite and greater than 0. Default 0.01.
    pub learning_rate: f32,
    /// Velocity decay; in `[0, 1)`, 0 for plain SGD. Default 0.
    pub momentum: f32,
    /// Whether to use Nesterov momentum (no effect when `momentum` is 0).
    /// Default `false`.
    pub nesterov: bool,
}

impl SgdConfig {
    /// The defaults: `learning_rate` 0.01, `momentum` 0, `nesterov`
    /// `false`.
    pub fn new() -> Self {
        Self { learning_rate: 0.01, momentum: 0.0, nesterov: false }
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets [`momentum`](Self::momentum).
    pub fn with_momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets [`nesterov`](Self::nesterov).
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Checks the hyper-parameters and builds the optimizer, with no state
    /// yet and its iteration count at 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if
    /// `learning_rate` is not finite and positive, or `momentum` is not in
    /// `[0, 1)`.
    pub fn init(&self) -> Result<Sgd> {
        check_learning_rate(self.learning_rate)?;
        check_decay("momentum", self.momentum)?;
        let velocity = (self.momentum > 0.0).then_some(0.0);
        Ok(Sgd { config: self.clone(), state: SlotStore::new([velocity]), iterations: 0 })
    }
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Stochastic gradient descent with optional momentum, as Keras 3's `SGD`.
///
/// Per element, with gradient `g` and velocity `v` (starting at 0):
///
/// ```text
/// momentum == 0:  w -= lr * g
/// otherwise:      v = momentum * v - lr * g
///                 w += v                          (nesterov: w += momentum * v - lr * g)
/// ```
///
/// The velocity is only allocated when `momentum` is above 0. Built by
/// [`SgdConfig::init`].
#[derive(Debug, Clone)]
pub struct Sgd {
    config: SgdConfig,
    /// One slot: the velocity `v`.
    state: SlotStore<1>,
    iterations: u64,
}

impl Sgd {
    fn update(&self) -> SgdUpdate {
        let SgdConfig { learning_rate, momentum, nesterov } = self.config;
        SgdUpdate { learning_rate, momentum, nesterov }
    }
}

impl Optimizer for Sgd {
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
        OptimizerConfig::Sgd(self.config.clone())
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
struct SgdUpdate {
    learning_rate: f32,
    momentum: f32,
    nesterov: bool,
}

impl SgdUpdate {
    /// The update, over matching slices of weights, gradient and velocity
    /// (empty without momentum).
    fn apply(self, w: &mut [f32], g: &[f32], [velocity]: [&mut [f32]; 1]) {
        let Self { learning_rate: lr, momentum, nesterov } = self;
        if momentum == 0.0 {
            for (w, &g) in w.iter_mut().zip(g) {
                *w -= lr * g;
            }
            return;
        }
        debug_assert_eq!(velocity.len(), w.len(), "the velocity is allocated with momentum");
        for ((w, &g), v) in w.iter_mut().zip(g).zip(velocity) {
            *v = momentum * *v - lr * g;
            *w += if nesterov { momentum * *v - lr * g } else { *v };
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
        let c = SgdConfig::default();
        assert_eq!((c.learning_rate, c.momentum, c.nesterov), (0.01, 0.0, false));
        assert_eq!(c, SgdConfig::new());
    }

    // w = 1.0, g = 0.5, lr = 0.01: w = 1 - 0.01 * 0.5 = 0.995
    #[test]
    fn plain_step_matches_the_formula() -> Result<()> {
        let mut sgd = SgdConfig::new().init()?;
        let mut w = [1.0];
        sgd.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.995);
        Ok(())
    }

    // w = 1.0, g = 0.5 twice, lr = 0.01, momentum = 0.9:
    // step 1: v = 0.9 * 0 - 0.005 = -0.005;          w = 0.995
    // step 2: v = 0.9 * -0.005 - 0.005 = -0.0095;    w = 0.995 - 0.0095 = 0.9855
    #[test]
    fn momentum_steps_match_the_formula() -> Result<()> {
        let mut sgd = SgdConfig::new().with_momentum(0.9).init()?;
        let mut w = [1.0];
        sgd.step_dense("w", &mut w, &[0.5])?;
        sgd.finish_step();
        assert_close(w[0], 0.995);
        sgd.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.9855);
        Ok(())
    }

    // w = 1.0, g = 0.5 twice, lr = 0.01, momentum = 0.9, nesterov:
    // step 1: v = -0.005;   w = 1 + 0.9 * -0.005 - 0.005 = 0.9905
    // step 2: v = -0.0095;  w = 0.9905 + 0.9 * -0.0095 - 0.005 = 0.97695
    #[test]
    fn nesterov_steps_match_the_formula() -> Result<()> {
        let mut sgd = SgdConfig::new().with_momentum(0.9).with_nesterov(true).init()?;
        let mut w = [1.0];
        sgd.step_dense("w", &mut w, &[0.5])?;
        sgd.finish_step();
        assert_close(w[0], 0.9905);
        sgd.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 0.97695);
        Ok(())
    }

    #[test]
    fn row_step_is_the_dense_step_on_each_named_row() -> Result<()> {
        let mut sgd = SgdConfig::new().with_momentum(0.9).init()?;
        let mut table = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let grad = RowGrad::from_rows(&[2, 0, 2], &[0.25, 0.25, 1.0, 1.0, 0.25, 0.25], 2);
        sgd.step_rows("table", &mut table, &grad)?;
        // Row 0 gets g = 1.0, row 2 gets g = 0.5; row 1 is not touched.
        assert_eq!(table[2..4], [2.0, 2.0]);
        assert_close(table[0], 1.0 - 0.01);
        assert_close(table[4], 3.0 - 0.005);
        Ok(())
    }

    #[test]
    fn init_rejects_bad_hyper_parameters() {
        let bad = [
            ("learning_rate", SgdConfig::new().with_learning_rate(0.0)),
            ("learning_rate", SgdConfig::new().with_learning_rate(-0.1)),
            ("learning_rate", SgdConfig::new().with_learning_rate(f32::INFINITY)),
            ("learning_rate", SgdConfig::new().with_learning_rate(f32::NAN)),
            ("momentum", SgdConfig::new().with_momentum(1.0)),
            ("momentum", SgdConfig::new().with_momentum(-0.5)),
            ("momentum", SgdConfig::new().with_momentum(f32::NAN)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn finish_step_counts_iterations() -> Result<()> {
        let mut sgd = SgdConfig::new().init()?;
        assert_eq!(sgd.iterations(), 0);
        sgd.finish_step();
        sgd.finish_step();
        assert_eq!(sgd.iterations(), 2);
        Ok(())
    }
}
