//! RMSprop: steps divided by a running root mean square of the gradient
//! (Keras 3's `RMSprop`, or PyTorch's `RMSprop`), optionally centered and
//! with momentum.
//!
//! Per element, with gradient `g` and `v`, `mg`, `mom` starting at 0 (`rho`
//! is PyTorch's `alpha`):
//!
//! ```text
//! v = rho * v + (1 - rho) * g²
//! centered: mg = rho * mg + (1 - rho) * g
//! Keras:    inc = lr * g / sqrt(v + eps)             (centered: sqrt(v - mg² + eps))
//!           momentum > 0: mom = momentum * mom + inc;  w -= mom
//!           otherwise:    w -= inc
//! PyTorch:  avg = sqrt(v) + eps                      (centered: sqrt(v - mg²) + eps)
//!           momentum > 0: mom = momentum * mom + g / avg;  w -= lr * mom
//!           otherwise:    w -= lr * g / avg
//! ```

use serde::{Deserialize, Serialize};

use super::{
    check_decay, check_learning_rate, check_non_negative, complement, lerp, stepper_optimizer,
    Flavour, Kernel, Rule, Slot, Stepper, TableUpdates,
};
use crate::Result;

/// Settings for [`RmsProp`], with Keras's defaults.
///
/// Start from [`RmsPropConfig::new`] (Keras) or [`RmsPropConfig::pytorch`],
/// change what you need with the `with_*` methods, then call
/// [`init`](RmsPropConfig::init). Fields missing from a serialised config
/// take their Keras default.
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
    /// Step size `lr`; finite and greater than 0. Default 0.001 (PyTorch:
    /// 0.01).
    pub learning_rate: f32,
    /// Decay of the running averages (PyTorch's `alpha`); in `[0, 1)`.
    /// Default 0.9 (PyTorch: 0.99).
    pub rho: f32,
    /// Decay of the momentum; in `[0, 1)`, 0 for none. Default 0.
    pub momentum: f32,
    /// Added to the mean square under the square root (Keras) or to the
    /// square root (PyTorch); finite and at least 0. Default 1e-7 (PyTorch:
    /// 1e-8).
    pub epsilon: f32,
    /// Whether to divide by the running variance (`v - mg²`) instead of
    /// the running mean square. Default `false`.
    pub centered: bool,
    /// Keras's or PyTorch's formula. Default Keras.
    pub flavour: Flavour,
    /// How tables are stepped. Default lazy; in the other modes the mean
    /// square of every row decays on every step, and with momentum every
    /// row keeps moving.
    pub table_updates: TableUpdates,
}

impl RmsPropConfig {
    /// Keras's defaults: `learning_rate` 0.001, `rho` 0.9, `momentum` 0,
    /// `epsilon` 1e-7, `centered` `false`.
    pub fn new() -> Self {
        Self {
            learning_rate: 0.001,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            flavour: Flavour::Keras,
            table_updates: TableUpdates::Lazy,
        }
    }

    /// PyTorch's `RMSprop` and its defaults: `learning_rate` 0.01, `rho`
    /// (`alpha`) 0.99, `momentum` 0, `epsilon` 1e-8 outside the square
    /// root, `centered` `false` (no `weight_decay`, which this optimizer
    /// does not have).
    pub fn pytorch() -> Self {
        Self {
            learning_rate: 0.01,
            rho: 0.99,
            epsilon: 1e-8,
            flavour: Flavour::PyTorch,
            ..Self::new()
        }
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

    /// Sets [`flavour`](Self::flavour).
    pub fn with_flavour(mut self, flavour: Flavour) -> Self {
        self.flavour = flavour;
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
    /// `learning_rate` is not finite and positive, `rho` or `momentum` is
    /// not in `[0, 1)`, or `epsilon` is negative or not finite.
    pub fn init(&self) -> Result<RmsProp> {
        check_learning_rate(self.learning_rate)?;
        check_decay("rho", self.rho)?;
        check_decay("momentum", self.momentum)?;
        check_non_negative("epsilon", self.epsilon)?;
        Ok(RmsProp(Stepper::new(self.clone())))
    }
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// RMSprop, as Keras 3's `RMSprop` or PyTorch's `RMSprop`.
///
/// Per element, with gradient `g` and `v`, `mg`, `mom` starting at 0 (`rho`
/// is PyTorch's `alpha`):
///
/// ```text
/// v = rho * v + (1 - rho) * g²
/// centered: mg = rho * mg + (1 - rho) * g
/// Keras:    inc = lr * g / sqrt(v + eps)             (centered: sqrt(v - mg² + eps))
///           momentum > 0: mom = momentum * mom + inc;  w -= mom
///           otherwise:    w -= inc
/// PyTorch:  avg = sqrt(v) + eps                      (centered: sqrt(v - mg²) + eps)
///           momentum > 0: mom = momentum * mom + g / avg;  w -= lr * mom
///           otherwise:    w -= lr * g / avg
/// ```
///
/// `mg` is allocated only when centered, `mom` only with momentum. With a
/// constant learning rate the two momentum forms give the same weights up
/// to rounding (Keras's `mom` is PyTorch's times `lr`). Built by
/// [`RmsPropConfig::init`].
#[derive(Debug, Clone)]
pub struct RmsProp(Stepper<RmsPropConfig, 3>);

stepper_optimizer!(RmsProp);

impl Rule<3> for RmsPropConfig {
    type Kernel = RmsPropKernel;

    fn slots(&self) -> [Slot; 3] {
        let used = |on: bool| if on { Slot::Element(0.0) } else { Slot::Unused };
        [Slot::Element(0.0), used(self.centered), used(self.momentum > 0.0)]
    }

    fn table_mode(&self) -> TableUpdates {
        self.table_updates
    }

    fn learning_rate_mut(&mut self) -> &mut f32 {
        &mut self.learning_rate
    }

    fn kernel(&self, _iterations: u64) -> RmsPropKernel {
        RmsPropKernel {
            learning_rate: self.learning_rate,
            rho: self.rho,
            one_minus_rho: complement(self.rho),
            momentum: self.momentum,
            epsilon: self.epsilon,
            centered: self.centered,
            flavour: self.flavour,
        }
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
pub(super) struct RmsPropKernel {
    learning_rate: f32,
    rho: f32,
    one_minus_rho: f32,
    momentum: f32,
    epsilon: f32,
    centered: bool,
    flavour: Flavour,
}

impl Kernel<3> for RmsPropKernel {
    const SQUARES: bool = true;

    fn zero_gradient_is_identity(self) -> bool {
        false
    }

    /// Without `centered` and momentum a zero-gradient step multiplies `v`
    /// by `rho` and leaves `w` (see
    /// [`apply_zero_gradient`](Kernel::apply_zero_gradient)).
    fn zero_gradient_scales_state(self) -> Option<[f32; 3]> {
        // With rho 0 an infinite `v` (from a huge finite gradient) becomes
        // NaN at the next zero-gradient step, and `w` with it: the eager
        // step does that. With epsilon 0 a `v` of 0 makes the step 0 / 0,
        // so `w` NaN: that needs each row's `v` at each step, eagerly too.
        (!self.centered && self.momentum <= 0.0 && self.rho > 0.0 && self.epsilon > 0.0)
            .then_some([self.rho, 1.0, 1.0])
    }

    /// The update, over matching slices of weights, gradient, squared
    /// gradient, `v`, `mg` (empty unless centered) and `mom` (empty without
    /// momentum). One loop per variant, so each stays simple enough to
    /// vectorise.
    #[inline(always)]
    fn apply(self, w: &mut [f32], g: &[f32], g2: &[f32], [v, mg, mom]: [&mut [f32]; 3]) {
        let steps = w.iter_mut().zip(g).zip(g2).zip(v);
        match (self.centered, self.momentum > 0.0) {
            (false, false) => {
                for (((w, &g), &g2), v) in steps {
                    self.element(w, g, g2, v, None, None);
                }
            }
            (true, false) => {
                for ((((w, &g), &g2), v), mg) in steps.zip(mg) {
                    self.element(w, g, g2, v, Some(mg), None);
                }
            }
            (false, true) => {
                for ((((w, &g), &g2), v), mom) in steps.zip(mom) {
                    self.element(w, g, g2, v, None, Some(mom));
                }
            }
            (true, true) => {
                for (((((w, &g), &g2), v), mg), mom) in steps.zip(mg).zip(mom) {
                    self.element(w, g, g2, v, Some(mg), Some(mom));
                }
            }
        }
    }

    /// Without `centered` and momentum, a zero gradient only decays `v`:
    /// both flavours compute `v = rho · v + (1 - rho) · 0`, which is
    /// `rho · v` exactly (`v` is never `-0`), and move `w` by
    /// `lr · 0 / d = 0` for the positive denominator `d`, leaving it as it
    /// is unless `v` is NaN (then `w` becomes NaN, as the full formula
    /// makes it). Dense and Keras table updates step every row of the
    /// table, so this is most of their work.
    #[inline(always)]
    fn apply_zero_gradient(self, w: &mut [f32], zeros: &[f32], state: [&mut [f32]; 3]) {
        if self.centered || self.momentum > 0.0 {
            self.apply(w, zeros, zeros, state);
            return;
        }
        let [v, _, _] = state;
        // `w` moves by `lr · 0 / √(v + ε)` (Keras) or `lr · 0 / (√v + ε)`
        // (PyTorch): by 0, except that it is NaN where `v` is NaN, or `v`
        // and `ε` are both 0 (0 / 0).
        let epsilon_zero = self.epsilon == 0.0;
        for (w, v) in w.iter_mut().zip(v) {
            *v *= self.rho;
            // A select, not a branch, so the loop vectorises.
            let nan = v.is_nan() | (epsilon_zero & (*v == 0.0));
            *w = if nan { f32::NAN } else { *w };
        }
    }
}

impl RmsPropKernel {
    /// One element's step, in the flavour's formula and rounding.
    #[inline(always)]
    fn element(
        self,
        w: &mut f32,
        g: f32,
        g2: f32,
        v: &mut f32,
        mg: Option<&mut f32>,
        mom: Option<&mut f32>,
    ) {
        let Self { learning_rate: lr, rho, one_minus_rho, momentum, epsilon, .. } = self;
        match self.flavour {
            Flavour::Keras => {
                *v = rho * *v + one_minus_rho * g2;
                let denominator = match mg {
                    Some(mg) => {
                        *mg = rho * *mg + one_minus_rho * g;
                        *v - *mg * *mg + epsilon
                    }
                    None => *v + epsilon,
                };
                let increment = lr * g / denominator.sqrt();
                match mom {
                    Some(mom) => {
                        *mom = momentum * *mom + increment;
                        *w -= *mom;
                    }
                    None => *w -= increment,
                }
            }
            Flavour::PyTorch => {
                *v = *v * rho + one_minus_rho * g2;
                let average = match mg {
                    Some(mg) => {
                        *mg = lerp(*mg, g, one_minus_rho);
                        (*v - *mg * *mg).sqrt() + epsilon
                    }
                    None => v.sqrt() + epsilon,
                };
                match mom {
                    Some(buffer) => {
                        *buffer = *buffer * momentum + g / average;
                        *w += -lr * *buffer;
                    }
                    None => *w += -lr * (g / average),
                }
            }
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
    fn defaults_are_keras_defaults() {
        let c = RmsPropConfig::default();
        assert_eq!(
            (c.learning_rate, c.rho, c.momentum, c.epsilon, c.centered),
            (0.001, 0.9, 0.0, 1e-7, false)
        );
        assert_eq!((c.flavour, c.table_updates), (Flavour::Keras, TableUpdates::Lazy));
    }

    #[test]
    fn pytorch_defaults_are_pytorch_defaults() {
        let c = RmsPropConfig::pytorch();
        assert_eq!(
            (c.learning_rate, c.rho, c.momentum, c.epsilon, c.centered),
            (0.01, 0.99, 0.0, 1e-8, false)
        );
        assert_eq!(c.flavour, Flavour::PyTorch);
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
    fn epsilon_placement_follows_the_flavour() -> Result<()> {
        for (flavour, want) in
            [(Flavour::Keras, 0.950_613_520_167_520_5), (Flavour::PyTorch, 0.956_826_4)]
        {
            let mut rmsprop = RmsPropConfig::new()
                .with_learning_rate(0.1)
                .with_epsilon(1.0)
                .with_flavour(flavour)
                .init()?;
            let mut w = [1.0];
            rmsprop.step_dense("w", &mut w, &[0.5])?;
            assert_close(w[0], want);
        }
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

    // PyTorch, centered with momentum: lr 0.01, alpha 0.99, eps 1e-8, momentum 0.5,
    // w = 1.0, g = 0.5 then -1.0, in f64:
    // step 1: v = 0.01 * 0.25 = 0.0025, mg = 0.01 * 0.5 = 0.005
    //         avg = sqrt(0.0025 - 0.000025) + 1e-8 = 0.04974938
    //         mom = 0.5 / 0.04974938 = 10.0503761, w = 1 - 0.100503761 = 0.8994962
    // step 2: v = 0.0025 * 0.99 + 0.01 * 1 = 0.012475
    //         mg = 0.005 + 0.01 * (-1 - 0.005) = -0.00505
    //         avg = sqrt(0.012475 - 0.0000255025) + 1e-8 = 0.11157733
    //         mom = 0.5 * 10.0503761 - 1 / 0.11157733 = -3.9372063
    //         w = 0.8994962 + 0.039372063 = 0.9388683
    #[test]
    fn pytorch_centered_momentum_steps_match_the_formula() -> Result<()> {
        let mut rmsprop = RmsPropConfig::pytorch().with_momentum(0.5).with_centered(true).init()?;
        let mut w = [1.0];
        rmsprop.step_dense("w", &mut w, &[0.5])?;
        rmsprop.finish_step();
        assert_close(w[0], 0.899_496_238_7);
        rmsprop.step_dense("w", &mut w, &[-1.0])?;
        assert_close(w[0], 0.938_868_301_7);
        Ok(())
    }

    #[test]
    fn centered_momentum_rows_match_the_dense_step() -> Result<()> {
        for flavour in [Flavour::Keras, Flavour::PyTorch] {
            let config =
                RmsPropConfig::new().with_momentum(0.5).with_centered(true).with_flavour(flavour);
            let (mut sparse, mut dense) = (config.init()?, config.init()?);
            let mut table = [1.0, -1.0, 0.5, 2.0];
            let mut row = [0.5, 2.0];
            for g in [[0.5, -0.25], [1.0, 3.0]] {
                sparse.step_rows("t", &mut table, &RowGrad::from_rows(&[1], &g, 2))?;
                dense.step_dense("row", &mut row, &g)?;
            }
            assert_eq!(table, [1.0, -1.0, row[0], row[1]]);
        }
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
            ("rho", RmsPropConfig::pytorch().with_rho(1.0)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
