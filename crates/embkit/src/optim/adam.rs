//! Adam: steps scaled by running estimates of the gradient's first and
//! second moments (Keras 3's `Adam`, PyTorch's `Adam` or `SparseAdam`),
//! with optional AMSGrad.
//!
//! Per element, with gradient `g`, moments `m`, `v` (starting at 0) and
//! `t = iterations + 1`:
//!
//! ```text
//! m = m + (1 - beta_1) * (g - m)
//! v = v + (1 - beta_2) * (g² - v)
//! amsgrad: v_hat = max(v_hat, v), and v_hat replaces v below
//! Keras, SparseAdam: w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + eps)
//! PyTorch Adam:      w -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + eps)
//! ```
//!
//! The two placements differ only in where `eps` goes: Keras and
//! `SparseAdam` add it to the uncorrected `sqrt(v)`, PyTorch's `Adam` to
//! the bias-corrected one.

use serde::{Deserialize, Serialize};

use super::{
    check_decay, check_learning_rate, check_non_negative, complement, decimal, lerp,
    stepper_optimizer, Kernel, Rule, Slot, Stepper, TableUpdates,
};
use crate::Result;

/// Which reference's Adam formula [`Adam`] and [`AdamW`](crate::optim::AdamW)
/// compute: the rounding of each and, for PyTorch's `Adam`, where `eps`
/// goes.
///
/// The flavour sets formulas only; each reference's defaults come from the
/// config's constructors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AdamFlavour {
    /// Keras 3's `Adam`: `eps` added to the uncorrected `sqrt(v)`, the bias
    /// correction folded into the step size in `f32`.
    #[default]
    #[serde(rename = "keras")]
    Keras,
    /// PyTorch's (dense) `Adam`: `eps` added to the bias-corrected
    /// `sqrt(v) / sqrt(1 - beta_2^t)`.
    #[serde(rename = "pytorch")]
    PyTorch,
    /// PyTorch's `SparseAdam`: Keras's placement of `eps`, with PyTorch's
    /// rounding.
    #[serde(rename = "pytorch_sparse")]
    PyTorchSparse,
}

/// Settings for [`Adam`], with Keras's defaults.
///
/// Start from [`AdamConfig::new`] (Keras), [`AdamConfig::pytorch`]
/// (`Adam`) or [`AdamConfig::pytorch_sparse`] (`SparseAdam`), change what
/// you need with the `with_*` methods, then call
/// [`init`](AdamConfig::init). Fields missing from a serialised config take
/// their Keras default.
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
    /// Added to the square root in the denominator; finite and at least 0.
    /// Default 1e-7 (PyTorch: 1e-8).
    pub epsilon: f32,
    /// Whether to divide by the largest `v` seen so far (AMSGrad; PyTorch's
    /// `SparseAdam` has no such option, this crate allows it). Default
    /// `false`.
    pub amsgrad: bool,
    /// Keras's, PyTorch `Adam`'s or PyTorch `SparseAdam`'s formula. Default
    /// Keras.
    pub flavour: AdamFlavour,
    /// How tables are stepped. Default lazy, as `SparseAdam`; Keras and
    /// PyTorch's dense `Adam` decay the moments of every row on every step
    /// ([`TableUpdates::Keras`], [`TableUpdates::Dense`]).
    pub table_updates: TableUpdates,
}

impl AdamConfig {
    /// Keras's defaults: `learning_rate` 0.001, `beta_1` 0.9, `beta_2`
    /// 0.999, `epsilon` 1e-7, `amsgrad` `false`.
    pub fn new() -> Self {
        Self {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            flavour: AdamFlavour::Keras,
            table_updates: TableUpdates::Lazy,
        }
    }

    /// PyTorch's `Adam` and its defaults: `learning_rate` 0.001, betas
    /// (0.9, 0.999), `epsilon` 1e-8 added to the bias-corrected `sqrt(v)`
    /// (no `weight_decay`: use [`AdamWConfig`](crate::optim::AdamWConfig) for
    /// decoupled decay).
    pub fn pytorch() -> Self {
        Self { epsilon: 1e-8, flavour: AdamFlavour::PyTorch, ..Self::new() }
    }

    /// PyTorch's `SparseAdam` and its defaults: `learning_rate` 0.001,
    /// betas (0.9, 0.999), `epsilon` 1e-8 added to the uncorrected
    /// `sqrt(v)`, lazy on tables.
    pub fn pytorch_sparse() -> Self {
        Self { epsilon: 1e-8, flavour: AdamFlavour::PyTorchSparse, ..Self::new() }
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

    /// Sets [`flavour`](Self::flavour).
    pub fn with_flavour(mut self, flavour: AdamFlavour) -> Self {
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
    /// `learning_rate` is not finite and positive, `beta_1` or `beta_2` is
    /// not in `[0, 1)`, or `epsilon` is negative or not finite.
    pub fn init(&self) -> Result<Adam> {
        self.validate()?;
        Ok(Adam(Stepper::new(self.clone())))
    }

    pub(super) fn validate(&self) -> Result<()> {
        check_learning_rate(self.learning_rate)?;
        check_decay("beta_1", self.beta_1)?;
        check_decay("beta_2", self.beta_2)?;
        check_non_negative("epsilon", self.epsilon)
    }

    /// The slots: `m`, `v`, and `v_hat` with AMSGrad only.
    pub(super) fn adam_slots(&self) -> [Slot; 3] {
        let v_hat = if self.amsgrad { Slot::Element(0.0) } else { Slot::Unused };
        [Slot::Element(0.0), Slot::Element(0.0), v_hat]
    }

    /// The constants of the step after `iterations` finished steps.
    pub(super) fn adam_kernel(&self, iterations: u64) -> AdamKernel {
        let (lr, beta_1, beta_2) = (self.learning_rate, self.beta_1, self.beta_2);
        let (step_size, denominator_scale) = match self.flavour {
            AdamFlavour::Keras => {
                // Keras computes the step size in f32 tensors.
                let t = (iterations + 1) as f32;
                let alpha = lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
                (alpha, 1.0)
            }
            AdamFlavour::PyTorch | AdamFlavour::PyTorchSparse => {
                // PyTorch computes them in Python floats from the literals.
                // As an f64 exponent, t is exact up to 2^53 steps.
                let t = (iterations + 1) as f64;
                let correction_1 = 1.0 - decimal(beta_1).powf(t);
                let correction_2 = 1.0 - decimal(beta_2).powf(t);
                if self.flavour == AdamFlavour::PyTorch {
                    ((decimal(lr) / correction_1) as f32, correction_2.sqrt() as f32)
                } else {
                    ((decimal(lr) * correction_2.sqrt() / correction_1) as f32, 1.0)
                }
            }
        };
        AdamKernel {
            step_size,
            denominator_scale,
            beta_2,
            one_minus_beta_1: complement(beta_1),
            one_minus_beta_2: complement(beta_2),
            epsilon: self.epsilon,
            amsgrad: self.amsgrad,
            flavour: self.flavour,
        }
    }
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Adam, as Keras 3's `Adam`, PyTorch's `Adam` or PyTorch's `SparseAdam`.
///
/// Per element, with gradient `g`, moments `m`, `v` (starting at 0) and
/// `t = iterations + 1`:
///
/// ```text
/// m = m + (1 - beta_1) * (g - m)
/// v = v + (1 - beta_2) * (g² - v)
/// amsgrad: v_hat = max(v_hat, v), and v_hat replaces v below
/// Keras, SparseAdam: w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + eps)
/// PyTorch Adam:      w -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + eps)
/// ```
///
/// `t` is the optimizer's single iteration count. With
/// [`TableUpdates::Lazy`] only the rows in the gradient and their moments
/// change, so a row first seen at step 10 is corrected with `t = 10`, as in
/// `SparseAdam`. With [`TableUpdates::Dense`] (PyTorch's `Adam` on a dense
/// gradient) and [`TableUpdates::Keras`] the moments of every row decay on
/// every step and every row with a non-zero `m` moves. Built by
/// [`AdamConfig::init`].
#[derive(Debug, Clone)]
pub struct Adam(Stepper<AdamConfig, 3>);

stepper_optimizer!(Adam);

impl Rule<3> for AdamConfig {
    type Kernel = AdamKernel;

    fn slots(&self) -> [Slot; 3] {
        self.adam_slots()
    }

    fn table_mode(&self) -> TableUpdates {
        self.table_updates
    }

    fn learning_rate_mut(&mut self) -> &mut f32 {
        &mut self.learning_rate
    }

    fn kernel(&self, iterations: u64) -> AdamKernel {
        self.adam_kernel(iterations)
    }
}

/// The constants of one step, shared with AdamW.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdamKernel {
    /// Keras: `alpha`; PyTorch `Adam`: `lr / (1 - beta_1^t)`;
    /// `SparseAdam`: `lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    step_size: f32,
    /// PyTorch `Adam`: `sqrt(1 - beta_2^t)`; otherwise 1 (unused).
    denominator_scale: f32,
    beta_2: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    epsilon: f32,
    amsgrad: bool,
    flavour: AdamFlavour,
}

impl Kernel<3> for AdamKernel {
    const SQUARES: bool = true;

    fn zero_gradient_is_identity(self) -> bool {
        false
    }

    /// The update, over matching slices of weights, gradient, squared
    /// gradient, `m`, `v` and `v_hat` (empty without AMSGrad).
    #[inline(always)]
    fn apply(self, w: &mut [f32], g: &[f32], g2: &[f32], [m, v, v_hat]: [&mut [f32]; 3]) {
        let steps = w.iter_mut().zip(g).zip(g2).zip(m).zip(v);
        if self.amsgrad {
            debug_assert_eq!(v_hat.len(), g.len(), "v_hat is allocated with amsgrad");
            for (((((w, &g), &g2), m), v), v_hat) in steps.zip(v_hat) {
                self.moments(g, g2, m, v);
                *v_hat = v_hat.max(*v);
                self.descend(w, *m, *v_hat);
            }
        } else {
            for ((((w, &g), &g2), m), v) in steps {
                self.moments(g, g2, m, v);
                self.descend(w, *m, *v);
            }
        }
    }
}

impl AdamKernel {
    /// Updates `m` and `v` from `g` and `g2` in the flavour's rounding.
    #[inline(always)]
    fn moments(self, g: f32, g2: f32, m: &mut f32, v: &mut f32) {
        match self.flavour {
            // m += (g - m) * (1 - beta_1); v += (g² - v) * (1 - beta_2)
            AdamFlavour::Keras | AdamFlavour::PyTorchSparse => {
                *m += (g - *m) * self.one_minus_beta_1;
                *v += (g2 - *v) * self.one_minus_beta_2;
            }
            // m.lerp_(g, 1 - beta_1); v.mul_(beta_2).addcmul_(g, g, 1 - beta_2)
            AdamFlavour::PyTorch => {
                *m = lerp(*m, g, self.one_minus_beta_1);
                *v = *v * self.beta_2 + self.one_minus_beta_2 * g2;
            }
        }
    }

    /// Moves `w` by the flavour's step from `m` and `v`.
    #[inline(always)]
    fn descend(self, w: &mut f32, m: f32, v: f32) {
        match self.flavour {
            AdamFlavour::Keras => *w -= m * self.step_size / (v.sqrt() + self.epsilon),
            AdamFlavour::PyTorch => {
                *w += -self.step_size * (m / (v.sqrt() / self.denominator_scale + self.epsilon));
            }
            AdamFlavour::PyTorchSparse => {
                *w += -self.step_size * (m / (v.sqrt() + self.epsilon));
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
        let c = AdamConfig::default();
        assert_eq!(
            (c.learning_rate, c.beta_1, c.beta_2, c.epsilon, c.amsgrad),
            (0.001, 0.9, 0.999, 1e-7, false)
        );
        assert_eq!((c.flavour, c.table_updates), (AdamFlavour::Keras, TableUpdates::Lazy));
    }

    #[test]
    fn pytorch_defaults_are_pytorch_defaults() {
        for (c, flavour) in [
            (AdamConfig::pytorch(), AdamFlavour::PyTorch),
            (AdamConfig::pytorch_sparse(), AdamFlavour::PyTorchSparse),
        ] {
            assert_eq!(
                (c.learning_rate, c.beta_1, c.beta_2, c.epsilon, c.amsgrad),
                (0.001, 0.9, 0.999, 1e-8, false)
            );
            assert_eq!(c.flavour, flavour);
        }
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

    // Keras (and SparseAdam) add eps to sqrt(v). w = 1.0, g = 0.5, lr 0.1, eps 1.0:
    //   alpha = 0.1 * sqrt(0.001) / 0.1 = 0.0316227766, m = 0.05, v = 0.00025
    //   w = 1 - 0.0316227766 * 0.05 / (sqrt(0.00025) + 1) = 0.9984435
    // PyTorch's Adam adds it to sqrt(v) / sqrt(1 - beta_2):
    //   w = 1 - (0.1 / 0.1) * 0.05 / (sqrt(0.00025) / sqrt(0.001) + 1) = 1 - 0.05 / 1.5 = 0.9666667
    #[test]
    fn epsilon_placement_follows_the_flavour() -> Result<()> {
        for (flavour, want) in [
            (AdamFlavour::Keras, 0.998_443_472_037_925_3),
            (AdamFlavour::PyTorchSparse, 0.998_443_472_037_925_3),
            (AdamFlavour::PyTorch, 0.966_666_666_666_666_7),
        ] {
            let mut adam = AdamConfig::new()
                .with_learning_rate(0.1)
                .with_epsilon(1.0)
                .with_flavour(flavour)
                .init()?;
            let mut w = [1.0];
            adam.step_dense("w", &mut w, &[0.5])?;
            assert_close(w[0], want);
        }
        Ok(())
    }

    // PyTorch's Adam, w = 1.0, g = 0.5 then -0.25, lr 0.1, betas (0.9, 0.999), eps 1e-8, in f64:
    // step 1: m = 0.05, v = 0.00025, bc1 = 0.1, bc2 = 0.001
    //         w = 1 - (0.1 / 0.1) * 0.05 / (sqrt(0.00025) / sqrt(0.001) + 1e-8)
    //           = 1 - 0.05 / 0.50000001 = 0.90000000
    // step 2: m = 0.05 + 0.1 * (-0.25 - 0.05) = 0.02
    //         v = 0.00025 * 0.999 + 0.001 * 0.0625 = 0.00031225
    //         bc1 = 0.19, bc2 = 0.001999
    //         w = 0.9 - (0.1 / 0.19) * 0.02 / (sqrt(0.00031225) / sqrt(0.001999) + 1e-8)
    //           = 0.9 - 0.52631579 * 0.02 / 0.39522538 = 0.87336630
    #[test]
    fn pytorch_steps_match_the_formula() -> Result<()> {
        let mut adam = AdamConfig::pytorch().with_learning_rate(0.1).init()?;
        let mut w = [1.0];
        adam.step_dense("w", &mut w, &[0.5])?;
        adam.finish_step();
        assert_close(w[0], 0.900_000_002);
        adam.step_dense("w", &mut w, &[-0.25])?;
        assert_close(w[0], 0.873_366_299);
        Ok(())
    }

    // w = 1.0, g = 0.5 then g = 0.0, lr 0.1, other defaults, in f64:
    // step 1 (both): alpha = 0.0316227766, m = 0.05, v = 0.00025, w = 0.9000006
    // step 2: alpha = 0.0235316725, m = 0.05 + (0 - 0.05) * 0.1 = 0.045,
    //         v = 0.00025 + (0 - 0.00025) * 0.001 = 0.00024975 (smaller than before)
    //   plain:   w = 0.9000006325 - 0.0235316725 * 0.045 / (sqrt(0.00024975) + 1e-7) = 0.8329952
    //   amsgrad: v_hat = max(0.00025, 0.00024975) = 0.00025
    //            w = 0.9000006325 - 0.0235316725 * 0.045 / (sqrt(0.00025) + 1e-7) = 0.8330287
    // Keras computes alpha in f32, where 1 - 0.999 is 0.0009999871, so its
    // weights are 0.9000013, then 0.8329965 and 0.8330301; those are pinned
    // (keras.optimizers.Adam(0.1, amsgrad=...).apply on a Variable, TF 2.21).
    #[test]
    fn amsgrad_divides_by_the_largest_second_moment() -> Result<()> {
        for (amsgrad, want) in [(false, 0.832_996_547_2), (true, 0.833_030_104_6)] {
            let mut adam =
                AdamConfig::new().with_learning_rate(0.1).with_amsgrad(amsgrad).init()?;
            let mut w = [1.0];
            adam.step_dense("w", &mut w, &[0.5])?;
            adam.finish_step();
            assert_close(w[0], 0.900_001_287_5);
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

    // Dense mode: row 0 keeps moving on its momentum at step 2.
    //   step 2, row 0: m = 0.045, v = 0.00024975, alpha = 0.000235316725
    //   w = 0.9990000063 - 0.000235316725 * 0.045 / (sqrt(0.00024975) + 1e-7) = 0.9983299
    #[test]
    fn dense_mode_moves_rows_outside_the_batch() -> Result<()> {
        let mut adam = AdamConfig::new().with_table_updates(TableUpdates::Dense).init()?;
        let mut table = [1.0, 1.0];
        adam.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[0.5], 1))?;
        adam.finish_step();
        adam.step_rows("t", &mut table, &RowGrad::from_rows(&[1], &[0.5], 1))?;
        assert_close(table[0], 0.998_329_952_3);
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
            ("beta_1", AdamConfig::pytorch().with_beta_1(1.0)),
            ("epsilon", AdamConfig::pytorch_sparse().with_epsilon(f32::NAN)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
