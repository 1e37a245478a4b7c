//! [`Dropout`]: zeroes random elements while training (inverted dropout,
//! as Keras).

use ndarray::{ArrayD, ArrayViewD};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Settings for a [`Dropout`] layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DropoutConfig {
    /// The probability that an element is zeroed, in `[0, 1)`.
    pub rate: f32,
    /// Seed of the layer's own random generator. Default 0.
    pub seed: u64,
}

impl DropoutConfig {
    /// A config with `rate` and seed 0.
    pub fn new(rate: f32) -> Self {
        Self { rate, seed: 0 }
    }

    /// Sets [`seed`](Self::seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the rate and builds the layer, its generator seeded from
    /// [`seed`](Self::seed).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `rate` is not in `[0, 1)`.
    pub fn init(&self) -> Result<Dropout> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::config("rate", format!("must be in [0, 1), got {}", self.rate)));
        }
        Ok(Dropout { config: self.clone(), rng: StdRng::seed_from_u64(self.seed), mask: None })
    }
}

/// Inverted dropout (Keras `Dropout`).
///
/// In training each element is zeroed with probability `rate` and the
/// others are scaled by `1 / (1 - rate)`, so the expected value of every
/// element is unchanged. Outside training the layer is the identity. The
/// masks come from the layer's own generator, so two layers built from the
/// same config draw the same masks.
///
/// # Shapes
///
/// - input: any shape
/// - output: the same shape
///
/// # Examples
///
/// ```
/// use embkit::DropoutConfig;
/// use ndarray::{ArrayD, IxDyn};
///
/// let mut drop = DropoutConfig::new(0.5).with_seed(7).init()?;
/// let x = ArrayD::<f32>::ones(IxDyn(&[4, 8]));
///
/// let y = drop.forward(x.view(), true)?;
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
///
/// assert_eq!(drop.forward(x.view(), false)?, x);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    config: DropoutConfig,
    rng: StdRng,
    /// The scaled mask of the last training forward: `0` or `1 / (1 - rate)`.
    mask: Option<ArrayD<f32>>,
}

impl Dropout {
    /// The config this layer was built from.
    pub fn config(&self) -> &DropoutConfig {
        &self.config
    }

    /// The scaled mask (`0` or `1 / (1 - rate)` per element) of the last
    /// training forward.
    pub fn mask(&self) -> Option<ArrayViewD<'_, f32>> {
        self.mask.as_ref().map(|m| m.view())
    }

    /// With `training`, draws a new mask and returns `x * mask`; otherwise
    /// returns `x` unchanged.
    ///
    /// # Errors
    ///
    /// None at present; the `Result` matches the other layers.
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        if !training {
            return Ok(x.to_owned());
        }
        let rate = self.config.rate;
        let mask = if rate == 0.0 {
            ArrayD::ones(x.raw_dim())
        } else {
            let keep = 1.0 - rate;
            let scale = 1.0 / keep;
            let rng = &mut self.rng;
            ArrayD::from_shape_simple_fn(x.raw_dim(), || {
                if rng.random::<f32>() < keep {
                    scale
                } else {
                    0.0
                }
            })
        };
        let y = &x * &mask;
        self.mask = Some(mask);
        Ok(y)
    }

    /// Multiplies the gradient by the mask of the last training forward.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] without a training forward;
    /// [`Error::ShapeMismatch`] if `grad_out` does not have the input's
    /// shape.
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let mask = self.mask.as_ref().ok_or_else(|| {
            Error::InvalidState("Dropout::backward before a training forward".into())
        })?;
        if grad_out.shape() != mask.shape() {
            return Err(Error::shape(
                "Dropout gradient",
                format!("{:?}", mask.shape()),
                grad_out.shape(),
            ));
        }
        Ok(&grad_out * mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn ones(shape: &[usize]) -> ArrayD<f32> {
        ArrayD::ones(IxDyn(shape))
    }

    #[test]
    fn same_seed_gives_the_same_masks() {
        let config = DropoutConfig::new(0.3).with_seed(42);
        let (mut a, mut b) = (config.init().unwrap(), config.init().unwrap());
        let x = ones(&[8, 16]);
        for _ in 0..3 {
            assert_eq!(a.forward(x.view(), true).unwrap(), b.forward(x.view(), true).unwrap());
        }
        let mut c = config.with_seed(43).init().unwrap();
        assert_ne!(a.forward(x.view(), true).unwrap(), c.forward(x.view(), true).unwrap());
    }

    #[test]
    fn rate_zero_is_the_identity_in_training() {
        let mut d = DropoutConfig::new(0.0).init().unwrap();
        let x = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] * 4 + i[1]) as f32);
        assert_eq!(d.forward(x.view(), true).unwrap(), x);
        assert_eq!(d.backward(x.view()).unwrap(), x);
    }

    #[test]
    fn eval_mode_is_the_identity_and_keeps_no_mask() {
        let mut d = DropoutConfig::new(0.9).init().unwrap();
        let x = ones(&[5, 5]);
        assert_eq!(d.forward(x.view(), false).unwrap(), x);
        assert!(d.mask().is_none());
        assert!(matches!(d.backward(x.view()), Err(Error::InvalidState(_))));
    }

    #[test]
    fn kept_elements_are_scaled_and_the_mean_is_roughly_preserved() {
        let mut d = DropoutConfig::new(0.25).with_seed(1).init().unwrap();
        let x = ones(&[100, 100]);
        let y = d.forward(x.view(), true).unwrap();
        let scale = 1.0 / 0.75;
        assert!(y.iter().all(|&v| v == 0.0 || v == scale));
        let zeroed = y.iter().filter(|&&v| v == 0.0).count() as f32 / y.len() as f32;
        assert!((zeroed - 0.25).abs() < 0.02, "zeroed fraction {zeroed}");
        let mean = y.mean().unwrap();
        assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
    }

    #[test]
    fn backward_multiplies_by_the_mask() {
        let mut d = DropoutConfig::new(0.5).with_seed(3).init().unwrap();
        let x = ones(&[4, 6]);
        let y = d.forward(x.view(), true).unwrap();
        let g = d.backward(ones(&[4, 6]).view()).unwrap();
        assert_eq!(g, y);
        assert!(matches!(d.backward(ones(&[4, 5]).view()), Err(Error::ShapeMismatch { .. })));
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        for rate in [1.0, -0.1, 1.5, f32::NAN] {
            let err = DropoutConfig::new(rate).init().unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { field: "rate", .. }), "{rate}");
        }
    }
}
