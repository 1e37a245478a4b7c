//! AdamW: Adam with decoupled weight decay (Keras 3's `AdamW`, or
//! PyTorch's `AdamW`).
//!
//! Each step first decays the weights, then takes [`Adam`](crate::optim::Adam)'s
//! step (whose formulas, with `eps` placed per [`AdamFlavour`], apply
//! unchanged):
//!
//! ```text
//! Keras:   w -= w * weight_decay * lr
//! PyTorch: w *= 1 - lr * weight_decay       (the factor in f64, then rounded)
//! then the Adam step
//! ```

use serde::{Deserialize, Serialize};

use super::adam::AdamKernel;
use super::{
    check_non_negative, decimal, stepper_optimizer, AdamConfig, AdamFlavour, Kernel, Rule, Slot,
    Stepper, TableUpdates,
};
use crate::Result;

/// Settings for [`AdamW`], with Keras's defaults.
///
/// Start from [`AdamWConfig::new`] (Keras) or [`AdamWConfig::pytorch`],
/// change what you need with the `with_*` methods, then call
/// [`init`](AdamWConfig::init). Fields missing from a serialised config
/// take their Keras default.
///
/// # Examples
///
/// ```
/// use embkit::optim::{AdamWConfig, Optimizer};
///
/// let mut adamw = AdamWConfig::new().with_weight_decay(0.1).init()?;
/// let mut w = vec![1.0_f32];
/// // With a zero gradient only the decay moves the weight: w -= w * 0.1 * 0.001.
/// adamw.step_dense("w", &mut w, &[0.0])?;
/// assert!((w[0] - 0.9999).abs() < 1e-7);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AdamWConfig {
    /// Step size `lr`; finite and greater than 0. Default 0.001.
    pub learning_rate: f32,
    /// The decoupled decay: each step scales the weights by
    /// `1 - lr * weight_decay`; finite and at least 0. Default 0.004
    /// (PyTorch: 0.01).
    pub weight_decay: f32,
    /// Decay of the first moment `m`; in `[0, 1)`. Default 0.9.
    pub beta_1: f32,
    /// Decay of the second moment `v`; in `[0, 1)`. Default 0.999.
    pub beta_2: f32,
    /// Added to the square root in the denominator; finite and at least 0.
    /// Default 1e-7 (PyTorch: 1e-8).
    pub epsilon: f32,
    /// Whether to divide by the largest `v` seen so far (AMSGrad). Default
    /// `false`.
    pub amsgrad: bool,
    /// Keras's or PyTorch's formulas for the decay and the Adam step
    /// ([`AdamFlavour::PyTorchSparse`] takes PyTorch's decay and
    /// `SparseAdam`'s step). Default Keras.
    pub flavour: AdamFlavour,
    /// How tables are stepped. Default lazy: only the rows of the batch
    /// decay. Keras ([`TableUpdates::Keras`]) and PyTorch on a dense
    /// gradient ([`TableUpdates::Dense`]) decay every row on every step.
    pub table_updates: TableUpdates,
}

impl AdamWConfig {
    /// Keras's defaults: `learning_rate` 0.001, `weight_decay` 0.004,
    /// `beta_1` 0.9, `beta_2` 0.999, `epsilon` 1e-7, `amsgrad` `false`.
    pub fn new() -> Self {
        Self {
            learning_rate: 0.001,
            weight_decay: 0.004,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            flavour: AdamFlavour::Keras,
            table_updates: TableUpdates::Lazy,
        }
    }

    /// PyTorch's `AdamW` and its defaults: `learning_rate` 0.001,
    /// `weight_decay` 0.01, betas (0.9, 0.999), `epsilon` 1e-8 added to the
    /// bias-corrected `sqrt(v)`.
    pub fn pytorch() -> Self {
        Self { weight_decay: 0.01, epsilon: 1e-8, flavour: AdamFlavour::PyTorch, ..Self::new() }
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets [`weight_decay`](Self::weight_decay).
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
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
    /// `learning_rate` is not finite and positive, `weight_decay` or
    /// `epsilon` is negative or not finite, or `beta_1` or `beta_2` is not
    /// in `[0, 1)`.
    pub fn init(&self) -> Result<AdamW> {
        self.adam().validate()?;
        check_non_negative("weight_decay", self.weight_decay)?;
        Ok(AdamW(Stepper::new(self.clone())))
    }

    /// The Adam part of the config.
    fn adam(&self) -> AdamConfig {
        AdamConfig {
            learning_rate: self.learning_rate,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            amsgrad: self.amsgrad,
            flavour: self.flavour,
            table_updates: self.table_updates,
        }
    }
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// AdamW, as Keras 3's `AdamW` or PyTorch's `AdamW`: Adam with decoupled
/// weight decay.
///
/// Each step first decays the weights, then takes [`Adam`](crate::optim::Adam)'s
/// step:
///
/// ```text
/// Keras:   w -= w * weight_decay * lr
/// PyTorch: w *= 1 - lr * weight_decay       (the factor in f64, then rounded)
/// then the Adam step
/// ```
///
/// With [`TableUpdates::Lazy`] only the rows of the batch decay (a row's
/// decay waits until it is looked up, and the steps it missed are not made
/// up); in the other modes every row decays on every step. Built by
/// [`AdamWConfig::init`].
#[derive(Debug, Clone)]
pub struct AdamW(Stepper<AdamWConfig, 3>);

stepper_optimizer!(AdamW);

impl Rule<3> for AdamWConfig {
    type Kernel = AdamWKernel;

    fn slots(&self) -> [Slot; 3] {
        self.adam().adam_slots()
    }

    fn table_mode(&self) -> TableUpdates {
        self.table_updates
    }

    fn learning_rate_mut(&mut self) -> &mut f32 {
        &mut self.learning_rate
    }

    fn kernel(&self, iterations: u64) -> AdamWKernel {
        let decay = match self.flavour {
            AdamFlavour::Keras => {
                Decay::Keras { learning_rate: self.learning_rate, weight_decay: self.weight_decay }
            }
            AdamFlavour::PyTorch | AdamFlavour::PyTorchSparse => Decay::PyTorch {
                factor: (1.0 - decimal(self.learning_rate) * decimal(self.weight_decay)) as f32,
            },
        };
        AdamWKernel { decay, adam: self.adam().adam_kernel(iterations) }
    }
}

/// How the weights decay before the Adam step.
#[derive(Debug, Clone, Copy)]
enum Decay {
    /// `w -= w * weight_decay * lr`.
    Keras { learning_rate: f32, weight_decay: f32 },
    /// `w *= factor`, `factor = 1 - lr * weight_decay`.
    PyTorch { factor: f32 },
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdamWKernel {
    decay: Decay,
    adam: AdamKernel,
}

impl Kernel<3> for AdamWKernel {
    const SQUARES: bool = true;

    fn zero_gradient_is_identity(self) -> bool {
        false
    }

    /// Decays `w`, then applies Adam's update.
    #[inline(always)]
    fn apply(self, w: &mut [f32], g: &[f32], g2: &[f32], state: [&mut [f32]; 3]) {
        match self.decay {
            Decay::Keras { learning_rate, weight_decay } => {
                for w in w.iter_mut() {
                    *w -= *w * weight_decay * learning_rate;
                }
            }
            Decay::PyTorch { factor } => {
                for w in w.iter_mut() {
                    *w *= factor;
                }
            }
        }
        self.adam.apply(w, g, g2, state);
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
        let c = AdamWConfig::default();
        assert_eq!(
            (c.learning_rate, c.weight_decay, c.beta_1, c.beta_2, c.epsilon, c.amsgrad),
            (0.001, 0.004, 0.9, 0.999, 1e-7, false)
        );
        assert_eq!((c.flavour, c.table_updates), (AdamFlavour::Keras, TableUpdates::Lazy));
    }

    #[test]
    fn pytorch_defaults_are_pytorch_defaults() {
        let c = AdamWConfig::pytorch();
        assert_eq!(
            (c.learning_rate, c.weight_decay, c.beta_1, c.beta_2, c.epsilon, c.amsgrad),
            (0.001, 0.01, 0.9, 0.999, 1e-8, false)
        );
        assert_eq!(c.flavour, AdamFlavour::PyTorch);
    }

    // Keras, lr 0.1, weight_decay 0.5, w = 2.0, g = 0.5 twice, in f64:
    // step 1: decay: w = 2 - 2 * 0.5 * 0.1 = 1.9
    //         Adam: alpha = 0.1 * sqrt(0.001) / 0.1 = 0.0316227766, m = 0.05, v = 0.00025
    //         w = 1.9 - 0.0316227766 * 0.05 / (0.0158113883 + 1e-7) = 1.8000006
    // step 2: decay: w = 1.8000006 * 0.95 = 1.7100006
    //         Adam: alpha = 0.0235316725, m = 0.095, v = 0.00049975
    //         w = 1.7100006 - 0.0235316725 * 0.095 / (0.0223550889 + 1e-7) = 1.6100010
    // Keras computes alpha in f32 (1 - 0.999 is 0.0009999871 there) and gives
    // 1.8000013 and 1.6100026, which are pinned
    // (keras.optimizers.AdamW(0.1, weight_decay=0.5).apply on a Variable, TF 2.21).
    #[test]
    fn keras_steps_decay_then_take_the_adam_step() -> Result<()> {
        let mut adamw = AdamWConfig::new().with_learning_rate(0.1).with_weight_decay(0.5).init()?;
        let mut w = [2.0];
        adamw.step_dense("w", &mut w, &[0.5])?;
        adamw.finish_step();
        assert_close(w[0], 1.800_001_263_6);
        adamw.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 1.610_002_636_9);
        Ok(())
    }

    // PyTorch, lr 0.1, weight_decay 0.5, eps 1e-8, w = 2.0, g = 0.5, in f64:
    //   decay: w = 2 * (1 - 0.05) = 1.9
    //   Adam:  w = 1.9 - (0.1 / 0.1) * 0.05 / (sqrt(0.00025) / sqrt(0.001) + 1e-8) = 1.8
    #[test]
    fn pytorch_step_decays_then_takes_the_adam_step() -> Result<()> {
        let mut adamw =
            AdamWConfig::pytorch().with_learning_rate(0.1).with_weight_decay(0.5).init()?;
        let mut w = [2.0];
        adamw.step_dense("w", &mut w, &[0.5])?;
        assert_close(w[0], 1.800_000_002);
        Ok(())
    }

    // Lazy tables decay only the rows of the batch; dense ones every row.
    // lr 0.1, weight_decay 0.5, Keras: row 1 (w = 1.0) is not in the batch.
    #[test]
    fn only_dense_modes_decay_rows_outside_the_batch() -> Result<()> {
        for (mode, want) in [(TableUpdates::Lazy, 1.0), (TableUpdates::Keras, 0.95)] {
            let mut adamw = AdamWConfig::new()
                .with_learning_rate(0.1)
                .with_weight_decay(0.5)
                .with_table_updates(mode)
                .init()?;
            let mut table = [2.0, 1.0];
            adamw.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[0.5], 1))?;
            assert_close(table[0], 1.800_001_263_6);
            assert_close(table[1], want);
        }
        Ok(())
    }

    #[test]
    fn init_rejects_bad_hyper_parameters() {
        let bad = [
            ("learning_rate", AdamWConfig::new().with_learning_rate(0.0)),
            ("weight_decay", AdamWConfig::new().with_weight_decay(-0.1)),
            ("weight_decay", AdamWConfig::pytorch().with_weight_decay(f32::NAN)),
            ("beta_1", AdamWConfig::new().with_beta_1(1.0)),
            ("beta_2", AdamWConfig::new().with_beta_2(-0.5)),
            ("epsilon", AdamWConfig::new().with_epsilon(f32::INFINITY)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
