//! Adagrad: per-element step sizes that shrink with the sum of squared
//! gradients (Keras 3's `Adagrad`, or PyTorch's `Adagrad`).
//!
//! Per element, with gradient `g`, accumulator `acc` (starting at
//! `initial_accumulator_value`) and `t = iterations + 1`:
//!
//! ```text
//! clr = lr / (1 + (t - 1) * lr_decay)      (in f64; lr_decay is PyTorch's, 0 in Keras)
//! acc += g²
//! Keras:   w -= clr * g / sqrt(acc + eps)
//! PyTorch: w -= clr * g / (sqrt(acc) + eps)
//! ```

use serde::{Deserialize, Serialize};

use super::{
    check_learning_rate, check_non_negative, decimal, stepper_optimizer, Flavour, Kernel, Rule,
    Slot, Stepper, TableUpdates,
};
use crate::Result;

/// Settings for [`Adagrad`], with Keras's defaults.
///
/// Start from [`AdagradConfig::new`] (Keras) or [`AdagradConfig::pytorch`],
/// change what you need with the `with_*` methods, then call
/// [`init`](AdagradConfig::init). Fields missing from a serialised config
/// take their Keras default.
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
    /// Step size `lr`; finite and greater than 0. Default 0.001 (PyTorch:
    /// 0.01).
    pub learning_rate: f32,
    /// The value every accumulator starts at; finite and at least 0.
    /// Default 0.1 (PyTorch: 0).
    pub initial_accumulator_value: f32,
    /// Added to the accumulator under the square root (Keras) or to the
    /// square root (PyTorch); finite and at least 0. Default 1e-7 (PyTorch:
    /// 1e-10).
    pub epsilon: f32,
    /// PyTorch's learning-rate decay: step `t` uses
    /// `lr / (1 + (t - 1) * lr_decay)`. Keras has none; finite and at least
    /// 0. Default 0.
    pub lr_decay: f32,
    /// Keras's or PyTorch's formula. Default Keras.
    pub flavour: Flavour,
    /// How tables are stepped. Default lazy; [`TableUpdates::Keras`] adds
    /// `Σ gᵢ²` for an id seen several times in a batch.
    pub table_updates: TableUpdates,
}

impl AdagradConfig {
    /// Keras's defaults: `learning_rate` 0.001, `initial_accumulator_value`
    /// 0.1, `epsilon` 1e-7, `lr_decay` 0.
    pub fn new() -> Self {
        Self {
            learning_rate: 0.001,
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            lr_decay: 0.0,
            flavour: Flavour::Keras,
            table_updates: TableUpdates::Lazy,
        }
    }

    /// PyTorch's `Adagrad` and its defaults: `learning_rate` 0.01,
    /// `initial_accumulator_value` 0, `epsilon` 1e-10 outside the square
    /// root, `lr_decay` 0 (no `weight_decay`, which this optimizer does not
    /// have).
    pub fn pytorch() -> Self {
        Self {
            learning_rate: 0.01,
            initial_accumulator_value: 0.0,
            epsilon: 1e-10,
            flavour: Flavour::PyTorch,
            ..Self::new()
        }
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

    /// Sets [`lr_decay`](Self::lr_decay).
    pub fn with_lr_decay(mut self, lr_decay: f32) -> Self {
        self.lr_decay = lr_decay;
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
    /// `learning_rate` is not finite and positive, or
    /// `initial_accumulator_value`, `epsilon` or `lr_decay` is negative or
    /// not finite.
    pub fn init(&self) -> Result<Adagrad> {
        check_learning_rate(self.learning_rate)?;
        check_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check_non_negative("epsilon", self.epsilon)?;
        check_non_negative("lr_decay", self.lr_decay)?;
        Ok(Adagrad(Stepper::new(self.clone())))
    }
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Adagrad, as Keras 3's `Adagrad` or PyTorch's `Adagrad`.
///
/// Per element, with gradient `g`, accumulator `acc` (starting at
/// `initial_accumulator_value`) and `t = iterations + 1`:
///
/// ```text
/// clr = lr / (1 + (t - 1) * lr_decay)      (in f64; lr_decay is PyTorch's, 0 in Keras)
/// acc += g²
/// Keras:   w -= clr * g / sqrt(acc + eps)
/// PyTorch: w -= clr * g / (sqrt(acc) + eps)
/// ```
///
/// For a table in the lazy and dense modes, `g` is the row gradient with
/// repeated ids already summed (PyTorch's order), so an id seen twice in a
/// batch adds `(g₁ + g₂)²`; in the Keras mode it adds `g₁² + g₂²`. Rows
/// outside the gradient never change. Built by [`AdagradConfig::init`].
#[derive(Debug, Clone)]
pub struct Adagrad(Stepper<AdagradConfig, 1>);

stepper_optimizer!(Adagrad);

impl Rule<1> for AdagradConfig {
    type Kernel = AdagradKernel;

    fn slots(&self) -> [Slot; 1] {
        [Slot::Element(self.initial_accumulator_value)]
    }

    fn table_mode(&self) -> TableUpdates {
        self.table_updates
    }

    fn learning_rate_mut(&mut self) -> &mut f32 {
        &mut self.learning_rate
    }

    fn kernel(&self, iterations: u64) -> AdagradKernel {
        let learning_rate = if self.lr_decay == 0.0 {
            self.learning_rate
        } else {
            // PyTorch: lr / (1 + (step - 1) * lr_decay), in Python floats.
            (decimal(self.learning_rate) / (1.0 + iterations as f64 * decimal(self.lr_decay)))
                as f32
        };
        AdagradKernel { learning_rate, epsilon: self.epsilon, flavour: self.flavour }
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdagradKernel {
    learning_rate: f32,
    epsilon: f32,
    flavour: Flavour,
}

impl Kernel<1> for AdagradKernel {
    const SQUARES: bool = true;

    fn zero_gradient_is_identity(self) -> bool {
        true
    }

    /// The update, over matching slices of weights, gradient, squared
    /// gradient and accumulator.
    #[inline(always)]
    fn apply(self, w: &mut [f32], g: &[f32], g2: &[f32], [accumulator]: [&mut [f32]; 1]) {
        let Self { learning_rate: lr, epsilon, flavour } = self;
        let steps = w.iter_mut().zip(g).zip(g2).zip(accumulator);
        match flavour {
            Flavour::Keras => {
                for (((w, &g), &g2), acc) in steps {
                    *acc += g2;
                    *w -= lr * g / (*acc + epsilon).sqrt();
                }
            }
            Flavour::PyTorch => {
                for (((w, &g), &g2), acc) in steps {
                    *acc += g2;
                    *w -= lr * (g / (acc.sqrt() + epsilon));
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
        let c = AdagradConfig::default();
        assert_eq!((c.learning_rate, c.initial_accumulator_value, c.epsilon), (0.001, 0.1, 1e-7));
        assert_eq!((c.lr_decay, c.flavour), (0.0, Flavour::Keras));
    }

    #[test]
    fn pytorch_defaults_are_pytorch_defaults() {
        let c = AdagradConfig::pytorch();
        assert_eq!((c.learning_rate, c.initial_accumulator_value, c.epsilon), (0.01, 0.0, 1e-10));
        assert_eq!((c.lr_decay, c.flavour), (0.0, Flavour::PyTorch));
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
    fn epsilon_placement_follows_the_flavour() -> Result<()> {
        for (flavour, want) in
            [(Flavour::Keras, 0.956_966_851_708_806_5), (Flavour::PyTorch, 0.968_585_2)]
        {
            let mut adagrad = AdagradConfig::new()
                .with_learning_rate(0.1)
                .with_epsilon(1.0)
                .with_flavour(flavour)
                .init()?;
            let mut w = [1.0];
            adagrad.step_dense("w", &mut w, &[0.5])?;
            assert_close(w[0], want);
        }
        Ok(())
    }

    // PyTorch with lr_decay 0.5, lr 0.1, acc0 0, eps 1e-10, w = 1.0, g = 1.0 then 1.0 then -2.0:
    // step 1: clr = 0.1;              acc = 1; w = 1 - 0.1 * 1 / 1 = 0.9
    // step 2: clr = 0.1 / 1.5;        acc = 2; w = 0.9 - 0.0666667 / sqrt(2) = 0.8528595
    // step 3: clr = 0.1 / 2 = 0.05;   acc = 6; w = 0.8528595 + 0.05 * 2 / sqrt(6) = 0.8936844
    #[test]
    fn pytorch_lr_decay_shrinks_the_step() -> Result<()> {
        let mut adagrad =
            AdagradConfig::pytorch().with_learning_rate(0.1).with_lr_decay(0.5).init()?;
        let mut w = [1.0];
        for (g, want) in [(1.0, 0.9), (1.0, 0.852_859_547_7), (-2.0, 0.893_684_377_0)] {
            adagrad.step_dense("w", &mut w, &[g])?;
            adagrad.finish_step();
            assert_close(w[0], want);
        }
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

    // Id 0 seen twice with g = 1.0 and g = -1.0: the summed gradient is 0.
    // lr 0.1, acc0 0.1, eps 0, w = 1.0, then a second step with g = 1.0 (seen once):
    //   lazy:  acc = 0.1 + 0² = 0.1, w = 1;  then acc = 1.1, w = 1 - 0.1 / sqrt(1.1) = 0.9046537
    //   keras: acc = 0.1 + 1 + 1 = 2.1, w = 1; then acc = 3.1, w = 1 - 0.1 / sqrt(3.1) = 0.9432038
    #[test]
    fn keras_mode_accumulates_the_squares_of_the_occurrences() -> Result<()> {
        for (mode, want) in [(TableUpdates::Lazy, 0.904_653_7), (TableUpdates::Keras, 0.943_203_8)]
        {
            let mut adagrad = AdagradConfig::new()
                .with_learning_rate(0.1)
                .with_epsilon(0.0)
                .with_table_updates(mode)
                .init()?;
            let mut table = [1.0];
            adagrad.step_rows("t", &mut table, &RowGrad::from_rows(&[0, 0], &[1.0, -1.0], 1))?;
            adagrad.finish_step();
            assert_eq!(table, [1.0]);
            adagrad.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[1.0], 1))?;
            assert_close(table[0], want);
        }
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
            ("lr_decay", AdagradConfig::pytorch().with_lr_decay(-0.1)),
            ("lr_decay", AdagradConfig::pytorch().with_lr_decay(f32::INFINITY)),
        ];
        for (want, config) in bad {
            match config.init() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{config:?}"),
                other => panic!("{config:?} gave {other:?}"),
            }
        }
    }
}
