//! FTRL-Proximal ("Follow The Regularized Leader"), as Keras 3's `Ftrl`.
//!
//! Per element, with gradient `g`, accumulator `n` (starting at
//! `initial_accumulator_value`), linear term `z` (starting at 0) and
//! `p = -learning_rate_power`, in `f32` as Keras:
//!
//! ```text
//! g_shrunk = g + 2 * l2_shrinkage * w
//! n_new = n + g²
//! z += g_shrunk - (n_new^p - n^p) / lr * w
//! w = (clip(z, -l1, l1) - z) / (n_new^p / lr + 2 * (l2 + beta / (2 * lr)))
//! n = n_new
//! ```
//!
//! The weights are a function of the state: the step overwrites `w`, whose
//! old value enters only through `z`. PyTorch has no FTRL.

use serde::{Deserialize, Serialize};

use super::{
    check_learning_rate, check_non_negative, decimal, stepper_optimizer, Kernel, Rule, Slot,
    Stepper, TableUpdates,
};
use crate::{Error, Result};

/// Settings for [`Ftrl`], with Keras's defaults.
///
/// Start from [`FtrlConfig::new`], change what you need with the `with_*`
/// methods, then call [`init`](FtrlConfig::init). Fields missing from a
/// serialised config take their default.
///
/// # Examples
///
/// ```
/// use embkit::optim::{FtrlConfig, Optimizer};
///
/// let mut ftrl = FtrlConfig::new()
///     .with_learning_rate(0.1)
///     .with_l1_regularization_strength(1.0)
///     .init()?;
/// let mut w = vec![0.0_f32, 0.0];
/// // A small gradient leaves |z| under the L1 strength: the weight is 0.
/// ftrl.step_dense("w", &mut w, &[0.1, 5.0])?;
/// assert_eq!(w[0], 0.0);
/// assert!(w[1] < 0.0);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FtrlConfig {
    /// Step size `lr`; finite and greater than 0. Default 0.001.
    pub learning_rate: f32,
    /// How the step size falls as the accumulator grows; finite and at most
    /// 0 (0 for a fixed rate). Default -0.5.
    pub learning_rate_power: f32,
    /// The value every accumulator `n` starts at; finite and at least 0,
    /// and greater than 0 unless `l2_regularization_strength` or `beta`
    /// is (else a zero gradient would give `0 / 0`). Default 0.1.
    pub initial_accumulator_value: f32,
    /// L1 strength: weights whose `|z|` is at most this are exactly 0;
    /// finite and at least 0. Default 0.
    pub l1_regularization_strength: f32,
    /// L2 strength (a stabilisation penalty on the FTRL objective); finite
    /// and at least 0. Default 0.
    pub l2_regularization_strength: f32,
    /// L2 shrinkage: adds `2 * l2_shrinkage * w` to the gradient (a penalty
    /// on the weights' size); finite and at least 0. Default 0.
    pub l2_shrinkage_regularization_strength: f32,
    /// The `beta` of the FTRL-Proximal paper, added to `n^p` in the
    /// denominator (as `beta / (2 lr)` in the L2 strength); finite and at
    /// least 0. Default 0.
    pub beta: f32,
    /// How tables are stepped. Default lazy. Keras ([`TableUpdates::Keras`])
    /// recomputes every row on every step: a row never looked up becomes 0
    /// (or its L1/L2 solution) after the first step, and the shrinkage
    /// applies to every row.
    pub table_updates: TableUpdates,
}

impl FtrlConfig {
    /// Keras's defaults: `learning_rate` 0.001, `learning_rate_power` -0.5,
    /// `initial_accumulator_value` 0.1, every regularization strength and
    /// `beta` 0.
    pub fn new() -> Self {
        Self {
            learning_rate: 0.001,
            learning_rate_power: -0.5,
            initial_accumulator_value: 0.1,
            l1_regularization_strength: 0.0,
            l2_regularization_strength: 0.0,
            l2_shrinkage_regularization_strength: 0.0,
            beta: 0.0,
            table_updates: TableUpdates::Lazy,
        }
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets [`learning_rate_power`](Self::learning_rate_power).
    pub fn with_learning_rate_power(mut self, learning_rate_power: f32) -> Self {
        self.learning_rate_power = learning_rate_power;
        self
    }

    /// Sets [`initial_accumulator_value`](Self::initial_accumulator_value).
    pub fn with_initial_accumulator_value(mut self, initial_accumulator_value: f32) -> Self {
        self.initial_accumulator_value = initial_accumulator_value;
        self
    }

    /// Sets [`l1_regularization_strength`](Self::l1_regularization_strength).
    pub fn with_l1_regularization_strength(mut self, strength: f32) -> Self {
        self.l1_regularization_strength = strength;
        self
    }

    /// Sets [`l2_regularization_strength`](Self::l2_regularization_strength).
    pub fn with_l2_regularization_strength(mut self, strength: f32) -> Self {
        self.l2_regularization_strength = strength;
        self
    }

    /// Sets
    /// [`l2_shrinkage_regularization_strength`](Self::l2_shrinkage_regularization_strength).
    pub fn with_l2_shrinkage_regularization_strength(mut self, strength: f32) -> Self {
        self.l2_shrinkage_regularization_strength = strength;
        self
    }

    /// Sets [`beta`](Self::beta).
    pub fn with_beta(mut self, beta: f32) -> Self {
        self.beta = beta;
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
    /// [`Error::InvalidConfig`] if `learning_rate` is not finite and
    /// positive, `learning_rate_power` is positive or not finite, any other
    /// value is negative or not finite, or `initial_accumulator_value`,
    /// `l2_regularization_strength` and `beta` are all 0 while
    /// `learning_rate_power` is not.
    pub fn init(&self) -> Result<Ftrl> {
        check_learning_rate(self.learning_rate)?;
        let power = self.learning_rate_power;
        if !(power.is_finite() && power <= 0.0) {
            return Err(Error::config(
                "learning_rate_power",
                format!("must be finite and at most 0, got {power}"),
            ));
        }
        check_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check_non_negative("l1_regularization_strength", self.l1_regularization_strength)?;
        check_non_negative("l2_regularization_strength", self.l2_regularization_strength)?;
        check_non_negative(
            "l2_shrinkage_regularization_strength",
            self.l2_shrinkage_regularization_strength,
        )?;
        check_non_negative("beta", self.beta)?;
        if self.initial_accumulator_value == 0.0
            && power != 0.0
            && self.l2_regularization_strength == 0.0
            && self.beta == 0.0
        {
            return Err(Error::config(
                "initial_accumulator_value",
                "must be greater than 0 when l2_regularization_strength and beta are 0 \
                 (a zero gradient would give 0 / 0), got 0",
            ));
        }
        Ok(Ftrl(Stepper::new(self.clone())))
    }
}

impl Default for FtrlConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// FTRL-Proximal, as Keras 3's `Ftrl`.
///
/// Per element, with gradient `g`, accumulator `n` (starting at
/// `initial_accumulator_value`), linear term `z` (starting at 0) and
/// `p = -learning_rate_power`, in `f32` as Keras:
///
/// ```text
/// g_shrunk = g + 2 * l2_shrinkage * w
/// n_new = n + g²
/// z += g_shrunk - (n_new^p - n^p) / lr * w
/// w = (clip(z, -l1, l1) - z) / (n_new^p / lr + 2 * (l2 + beta / (2 * lr)))
/// n = n_new
/// ```
///
/// Two slots per element: `n` and `z`. With [`TableUpdates::Lazy`] only the
/// rows in the gradient are recomputed (and shrunk), as TensorFlow's sparse
/// FTRL kernels do; in the other modes every row is. Built by
/// [`FtrlConfig::init`].
#[derive(Debug, Clone)]
pub struct Ftrl(Stepper<FtrlConfig, 2>);

stepper_optimizer!(Ftrl);

impl Rule<2> for FtrlConfig {
    type Kernel = FtrlKernel;

    fn slots(&self) -> [Slot; 2] {
        [Slot::Element(self.initial_accumulator_value), Slot::Element(0.0)]
    }

    fn table_mode(&self) -> TableUpdates {
        self.table_updates
    }

    fn learning_rate_mut(&mut self) -> &mut f32 {
        &mut self.learning_rate
    }

    fn kernel(&self, _iterations: u64) -> FtrlKernel {
        let lr = self.learning_rate;
        // Keras: l2 + beta / (2.0 * lr), with lr an f32 tensor.
        let l2 = self.l2_regularization_strength + self.beta / (2.0 * lr);
        FtrlKernel {
            learning_rate: lr,
            power: -self.learning_rate_power,
            l1: self.l1_regularization_strength,
            two_l2: 2.0 * l2,
            // Keras: 2 * l2_shrinkage, in Python floats.
            two_shrinkage: (2.0 * decimal(self.l2_shrinkage_regularization_strength)) as f32,
        }
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
pub(super) struct FtrlKernel {
    learning_rate: f32,
    /// `-learning_rate_power`.
    power: f32,
    l1: f32,
    /// `2 * (l2 + beta / (2 * lr))`.
    two_l2: f32,
    /// `2 * l2_shrinkage`.
    two_shrinkage: f32,
}

impl Kernel<2> for FtrlKernel {
    const SQUARES: bool = true;

    fn zero_gradient_is_identity(self) -> bool {
        false
    }

    /// The update, over matching slices of weights, gradient, squared
    /// gradient, `n` and `z`.
    #[inline(always)]
    fn apply(self, w: &mut [f32], g: &[f32], g2: &[f32], [n, z]: [&mut [f32]; 2]) {
        let Self { learning_rate: lr, power, l1, two_l2, two_shrinkage } = self;
        for ((((w, &g), &g2), n), z) in w.iter_mut().zip(g).zip(g2).zip(n).zip(z) {
            let shrunk = g + two_shrinkage * *w;
            let n_new = *n + g2;
            let n_new_power = n_new.powf(power);
            *z += shrunk - (n_new_power - n.powf(power)) / lr * *w;
            let quadratic = n_new_power / lr + two_l2;
            *w = (z.clamp(-l1, l1) - *z) / quadratic;
            *n = n_new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;
    use crate::RowGrad;

    fn assert_close(got: f32, want: f64) {
        assert!((f64::from(got) - want).abs() < 1e-6, "got {got}, want {want}");
    }

    #[test]
    fn defaults_are_keras_defaults() {
        let c = FtrlConfig::default();
        assert_eq!(
            (c.learning_rate, c.learning_rate_power, c.initial_accumulator_value),
            (0.001, -0.5, 0.1)
        );
        assert_eq!(
            (
                c.l1_regularization_strength,
                c.l2_regularization_strength,
                c.l2_shrinkage_regularization_strength,
                c.beta
            ),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(c.table_updates, TableUpdates::Lazy);
    }

    // lr 0.1, other defaults, w = 0.5, g = 0.5 then -1.0, in f64:
    // step 1: n = 0.1 + 0.25 = 0.35
    //         z = 0 + 0.5 - (sqrt(0.35) - sqrt(0.1)) / 0.1 * 0.5 = 0.5 - 1.3769011 = -0.8769011
    //         w = (0 + 0.8769011) / (sqrt(0.35) / 0.1) = 0.8769011 / 5.9160798 = 0.1482233
    // step 2: n = 1.35
    //         z = -0.8769011 - 1.0 - (sqrt(1.35) - sqrt(0.35)) / 0.1 * 0.1482233 = -2.7221995
    //         w = 2.7221995 / (sqrt(1.35) / 0.1) = 0.2342896
    #[test]
    fn steps_match_the_formula() -> Result<()> {
        let mut ftrl = FtrlConfig::new().with_learning_rate(0.1).init()?;
        let mut w = [0.5];
        ftrl.step_dense("w", &mut w, &[0.5])?;
        ftrl.finish_step();
        assert_close(w[0], 0.148_223_3);
        ftrl.step_dense("w", &mut w, &[-1.0])?;
        assert_close(w[0], 0.234_289_6);
        Ok(())
    }

    // Every term: lr 0.1, power -0.6, acc0 0.2, l1 0.01, l2 0.02, shrinkage 0.05, beta 0.5,
    // w = 0.5, g = 0.5, in f64:
    //   g_shrunk = 0.5 + 0.1 * 0.5 = 0.55
    //   n = 0.45;  n^0.6 = 0.6189, 0.2^0.6 = 0.3807308
    //   z = 0.55 - (0.6189 - 0.3807) / 0.1 * 0.5 = -0.6410
    //   quadratic = 6.1890 + 2 * (0.02 + 0.5 / 0.2) = 11.2290
    //   w = (-0.01 + 0.6410) / 11.2290
    #[test]
    fn regularization_terms_match_the_formula() -> Result<()> {
        let mut ftrl = FtrlConfig::new()
            .with_learning_rate(0.1)
            .with_learning_rate_power(-0.6)
            .with_initial_accumulator_value(0.2)
            .with_l1_regularization_strength(0.01)
            .with_l2_regularization_strength(0.02)
            .with_l2_shrinkage_regularization_strength(0.05)
            .with_beta(0.5)
            .init()?;
        let n_new = 0.45_f64.powf(0.6);
        let z = 0.55 - (n_new - 0.2_f64.powf(0.6)) / 0.1 * 0.5;
        let want = (-0.01 - z) / (n_new / 0.1 + 2.0 * (0.02 + 0.5 / 0.2));
        let mut w = [0.5];
        ftrl.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], want);
        Ok(())
    }

    // A weight whose |z| stays within l1 is exactly 0.
    #[test]
    fn l1_makes_small_weights_exactly_zero() -> Result<()> {
        let mut ftrl = FtrlConfig::new()
            .with_learning_rate(0.1)
            .with_l1_regularization_strength(10.0)
            .init()?;
        let mut w = [0.5, -0.25];
        ftrl.step_dense("w", &mut w, &[0.5, 2.0])?;
        assert_eq!(w, [0.0, 0.0]);
        Ok(())
    }

    // Keras recomputes rows outside the batch: with z = 0 a row becomes 0.
    #[test]
    fn keras_mode_recomputes_every_row() -> Result<()> {
        for (mode, want) in [(TableUpdates::Lazy, 0.7), (TableUpdates::Keras, 0.0)] {
            let mut ftrl =
                FtrlConfig::new().with_learning_rate(0.1).with_table_updates(mode).init()?;
            let mut table = [0.5, 0.7];
            ftrl.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[0.5], 1))?;
            assert_close(table[0], 0.148_223_3);
            assert_eq!(table[1], want);
        }
        Ok(())
    }

    #[test]
    fn init_rejects_bad_hyper_parameters() {
        let bad = [
            ("learning_rate", FtrlConfig::new().with_learning_rate(0.0)),
            ("learning_rate_power", FtrlConfig::new().with_learning_rate_power(0.5)),
            ("learning_rate_power", FtrlConfig::new().with_learning_rate_power(f32::NAN)),
            ("learning_rate_power", FtrlConfig::new().with_learning_rate_power(f32::NEG_INFINITY)),
            ("initial_accumulator_value", FtrlConfig::new().with_initial_accumulator_value(-0.1)),
            ("initial_accumulator_value", FtrlConfig::new().with_initial_accumulator_value(0.0)),
            ("l1_regularization_strength", FtrlConfig::new().with_l1_regularization_strength(-1.0)),
            (
                "l2_regularization_strength",
                FtrlConfig::new().with_l2_regularization_strength(f32::NAN),
            ),
            (
                "l2_shrinkage_regularization_strength",
                FtrlConfig::new().with_l2_shrinkage_regularization_strength(-0.5),
            ),
            ("beta", FtrlConfig::new().with_beta(-1.0)),
            ("beta", FtrlConfig::new().with_beta(f32::INFINITY)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_zero_accumulator_is_fine_with_l2_beta_or_a_fixed_rate() -> Result<()> {
        let zero = FtrlConfig::new().with_initial_accumulator_value(0.0);
        zero.clone().with_l2_regularization_strength(0.1).init()?;
        zero.clone().with_beta(0.1).init()?;
        let mut ftrl = zero.with_learning_rate_power(0.0).init()?;
        let mut w = [1.0];
        ftrl.step_dense("w", &mut w, &[0.0])?;
        assert!(w[0].is_finite());
        Ok(())
    }
}
