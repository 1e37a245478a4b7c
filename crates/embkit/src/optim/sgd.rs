//! Stochastic gradient descent, with optional momentum and Nesterov
//! momentum (Keras 3's `SGD`, or PyTorch's `SGD` with `dampening` 0).
//!
//! Per element, with gradient `g` and velocity `v` (starting at 0):
//!
//! ```text
//! momentum == 0:  w -= lr * g                                  (both)
//! Keras:          v = momentum * v - lr * g
//!                 w += v              (nesterov: w += momentum * v - lr * g)
//! PyTorch:        v = momentum * v + g
//!                 w -= lr * v         (nesterov: w -= lr * (g + momentum * v))
//! ```
//!
//! With a constant learning rate the two momentum forms give the same
//! weights up to rounding (Keras's velocity is PyTorch's times `-lr`).

use serde::{Deserialize, Serialize};

use super::{
    check_decay, check_learning_rate, stepper_optimizer, Flavour, Kernel, Rule, Slot, Stepper,
    TableUpdates,
};
use crate::Result;

/// Settings for [`Sgd`], with Keras's defaults.
///
/// Start from [`SgdConfig::new`] (Keras) or [`SgdConfig::pytorch`], change
/// what you need with the `with_*` methods, then call
/// [`init`](SgdConfig::init). Fields missing from a serialised config take
/// their Keras default.
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
    /// Step size `lr`; finite and greater than 0. Default 0.01 (PyTorch:
    /// 0.001).
    pub learning_rate: f32,
    /// Velocity decay; in `[0, 1)`, 0 for plain SGD. Default 0.
    pub momentum: f32,
    /// Whether to use Nesterov momentum (no effect when `momentum` is 0).
    /// Default `false`.
    pub nesterov: bool,
    /// Keras's or PyTorch's momentum formula. Default Keras.
    pub flavour: Flavour,
    /// How tables are stepped. Default lazy. With momentum, both references
    /// keep moving rows outside the batch ([`TableUpdates::Dense`] or
    /// [`TableUpdates::Keras`]).
    pub table_updates: TableUpdates,
}

impl SgdConfig {
    /// Keras's defaults: `learning_rate` 0.01, `momentum` 0, `nesterov`
    /// `false`.
    pub fn new() -> Self {
        Self {
            learning_rate: 0.01,
            momentum: 0.0,
            nesterov: false,
            flavour: Flavour::Keras,
            table_updates: TableUpdates::Lazy,
        }
    }

    /// PyTorch's `SGD` and its defaults: `learning_rate` 0.001, `momentum`
    /// 0, `nesterov` `false`, PyTorch's momentum formula (with `dampening`
    /// 0 and no `weight_decay`, which this optimizer does not have).
    pub fn pytorch() -> Self {
        Self { learning_rate: 0.001, flavour: Flavour::PyTorch, ..Self::new() }
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
    /// `learning_rate` is not finite and positive, or `momentum` is not in
    /// `[0, 1)`.
    pub fn init(&self) -> Result<Sgd> {
        check_learning_rate(self.learning_rate)?;
        check_decay("momentum", self.momentum)?;
        Ok(Sgd(Stepper::new(self.clone())))
    }
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Stochastic gradient descent with optional momentum, as Keras 3's `SGD`
/// or PyTorch's `SGD`.
///
/// Per element, with gradient `g` and velocity `v` (starting at 0):
///
/// ```text
/// momentum == 0:  w -= lr * g                                  (both)
/// Keras:          v = momentum * v - lr * g
///                 w += v              (nesterov: w += momentum * v - lr * g)
/// PyTorch:        v = momentum * v + g
///                 w -= lr * v         (nesterov: w -= lr * (g + momentum * v))
/// ```
///
/// The velocity is only allocated when `momentum` is above 0. Built by
/// [`SgdConfig::init`].
#[derive(Debug, Clone)]
pub struct Sgd(Stepper<SgdConfig, 1>);

stepper_optimizer!(Sgd);

impl Rule<1> for SgdConfig {
    type Kernel = SgdKernel;

    fn slots(&self) -> [Slot; 1] {
        [if self.momentum > 0.0 { Slot::Element(0.0) } else { Slot::Unused }]
    }

    fn table_mode(&self) -> TableUpdates {
        self.table_updates
    }

    fn learning_rate_mut(&mut self) -> &mut f32 {
        &mut self.learning_rate
    }

    fn kernel(&self, _iterations: u64) -> SgdKernel {
        SgdKernel {
            learning_rate: self.learning_rate,
            momentum: self.momentum,
            nesterov: self.nesterov,
            flavour: self.flavour,
        }
    }
}

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
pub(super) struct SgdKernel {
    learning_rate: f32,
    momentum: f32,
    nesterov: bool,
    flavour: Flavour,
}

impl Kernel<1> for SgdKernel {
    const SQUARES: bool = false;

    fn zero_gradient_is_identity(self) -> bool {
        self.momentum == 0.0
    }

    /// Without momentum, a step is `w -= lr·g` and needs no state: in the
    /// Keras table mode the occurrences of a gather step one by one, as
    /// Keras's `scatter_sub` subtracts `lr · gᵢ` once per occurrence.
    fn occurrence_step(self) -> Option<f32> {
        (self.momentum == 0.0).then_some(self.learning_rate)
    }

    /// The update, over matching slices of weights, gradient and velocity
    /// (empty without momentum).
    #[inline(always)]
    fn apply(self, w: &mut [f32], g: &[f32], _g2: &[f32], [velocity]: [&mut [f32]; 1]) {
        let Self { learning_rate: lr, momentum, nesterov, flavour } = self;
        if momentum == 0.0 {
            for (w, &g) in w.iter_mut().zip(g) {
                *w -= lr * g;
            }
            return;
        }
        debug_assert_eq!(velocity.len(), w.len(), "the velocity is allocated with momentum");
        let steps = w.iter_mut().zip(g).zip(velocity);
        match (flavour, nesterov) {
            (Flavour::Keras, false) => {
                for ((w, &g), v) in steps {
                    *v = momentum * *v - lr * g;
                    *w += *v;
                }
            }
            (Flavour::Keras, true) => {
                for ((w, &g), v) in steps {
                    *v = momentum * *v - lr * g;
                    *w += momentum * *v - lr * g;
                }
            }
            (Flavour::PyTorch, false) => {
                for ((w, &g), v) in steps {
                    *v = momentum * *v + g;
                    *w -= lr * *v;
                }
            }
            (Flavour::PyTorch, true) => {
                for ((w, &g), v) in steps {
                    *v = momentum * *v + g;
                    *w -= lr * (g + momentum * *v);
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
        let c = SgdConfig::default();
        assert_eq!((c.learning_rate, c.momentum, c.nesterov), (0.01, 0.0, false));
        assert_eq!((c.flavour, c.table_updates), (Flavour::Keras, TableUpdates::Lazy));
        assert_eq!(c, SgdConfig::new());
    }

    #[test]
    fn pytorch_defaults_are_pytorch_defaults() {
        let c = SgdConfig::pytorch();
        assert_eq!((c.learning_rate, c.momentum, c.nesterov), (0.001, 0.0, false));
        assert_eq!((c.flavour, c.table_updates), (Flavour::PyTorch, TableUpdates::Lazy));
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

    // PyTorch, w = 1.0, g = 0.5 then 0.25 then -1.0, lr = 0.1, momentum = 0.9:
    // step 1: v = 0.5;                         w = 1 - 0.05 = 0.95
    // step 2: v = 0.45 + 0.25 = 0.7;           w = 0.95 - 0.07 = 0.88
    // step 3: v = 0.63 - 1.0 = -0.37;          w = 0.88 + 0.037 = 0.917
    // nesterov:
    // step 1: v = 0.5;   w = 1 - 0.1 * (0.5 + 0.45) = 0.905
    // step 2: v = 0.7;   w = 0.905 - 0.1 * (0.25 + 0.63) = 0.817
    // step 3: v = -0.37; w = 0.817 - 0.1 * (-1.0 - 0.333) = 0.9503
    #[test]
    fn pytorch_momentum_steps_match_the_formula() -> Result<()> {
        for (nesterov, want) in [(false, [0.95, 0.88, 0.917]), (true, [0.905, 0.817, 0.9503])] {
            let mut sgd = SgdConfig::pytorch()
                .with_learning_rate(0.1)
                .with_momentum(0.9)
                .with_nesterov(nesterov)
                .init()?;
            let mut w = [1.0];
            for (g, want) in [0.5, 0.25, -1.0].into_iter().zip(want) {
                sgd.step_dense("w", &mut w, &[g])?;
                sgd.finish_step();
                assert_close(w[0], want);
            }
        }
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
            ("momentum", SgdConfig::pytorch().with_momentum(1.0)),
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
