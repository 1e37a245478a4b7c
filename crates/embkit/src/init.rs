//! How a table or kernel is filled before training.

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// An initialiser: the distribution the first values are drawn from.
///
/// Defaults follow the references: Keras `Embedding` uses
/// `Uniform { bound: 0.05 }`, PyTorch `nn.Embedding` uses
/// `Normal { std: 1.0 }`, Keras `Dense` kernels use `GlorotUniform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Init {
    /// Uniform on `[-bound, bound]` (Keras `RandomUniform(-bound, bound)`).
    Uniform {
        /// Half-width of the interval; must be finite and non-negative.
        bound: f32,
    },
    /// Normal with mean 0 and standard deviation `std` (PyTorch `normal_`).
    Normal {
        /// Standard deviation; must be finite and non-negative.
        std: f32,
    },
    /// Glorot (Xavier) uniform: uniform on `[-l, l]` with
    /// `l = sqrt(6 / (fan_in + fan_out))`. For a table `fan_in` is
    /// `num_embeddings` and `fan_out` is `embedding_dim` (Keras's fans for
    /// a 2-D variable of shape `[rows, cols]`).
    GlorotUniform,
    /// All zeros.
    Zeros,
    /// Every value equal to `value`.
    Constant {
        /// The value.
        value: f32,
    },
}

impl Init {
    /// Checks that the parameters are finite and in range.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the parameter and its value.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Init::Uniform { bound } if !(bound.is_finite() && bound >= 0.0) => Err(Error::config(
                "init",
                format!("uniform bound must be finite and >= 0, got {bound}"),
            )),
            Init::Normal { std } if !(std.is_finite() && std >= 0.0) => {
                Err(Error::config("init", format!("normal std must be finite and >= 0, got {std}")))
            }
            Init::Constant { value } if !value.is_finite() => {
                Err(Error::config("init", format!("constant must be finite, got {value}")))
            }
            _ => Ok(()),
        }
    }

    /// Draws `rows * cols` values for a row-major `[rows, cols]` matrix.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the parameters are invalid (see
    /// [`validate`](Self::validate)).
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::Init;
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let w = Init::Uniform { bound: 0.05 }.sample(3, 4, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(w.len(), 12);
    /// assert!(w.iter().all(|x| x.abs() <= 0.05));
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn sample<R: Rng + ?Sized>(
        &self,
        rows: usize,
        cols: usize,
        rng: &mut R,
    ) -> Result<Vec<f32>> {
        self.validate()?;
        let n = rows.checked_mul(cols).ok_or_else(|| {
            Error::config("init", format!("{rows} x {cols} values do not fit in memory"))
        })?;
        let mut values = vec![0.0; n];
        self.fill(rows, cols, &mut values, rng)?;
        Ok(values)
    }

    /// Draws the values of a row-major `[rows, cols]` matrix into `out`
    /// (`rows * cols` long), the same values in the same order as
    /// [`sample`](Self::sample) with the same `rng`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the parameters are invalid;
    /// [`Error::ShapeMismatch`] if `out` is not `rows * cols` long.
    pub fn fill<R: Rng + ?Sized>(
        &self,
        rows: usize,
        cols: usize,
        out: &mut [f32],
        rng: &mut R,
    ) -> Result<()> {
        self.validate()?;
        if Some(out.len()) != rows.checked_mul(cols) {
            return Err(Error::shape("init output", format!("[{rows} * {cols}]"), &[out.len()]));
        }
        match *self {
            Init::Uniform { bound } => uniform(out, bound, rng),
            Init::Normal { std } => {
                if std == 0.0 {
                    out.fill(0.0);
                } else {
                    let dist = Normal::new(0.0f32, std)
                        .map_err(|e| Error::config("init", e.to_string()))?;
                    out.iter_mut().for_each(|x| *x = dist.sample(rng));
                }
            }
            Init::GlorotUniform => {
                let fans = (rows + cols).max(1) as f32;
                uniform(out, (6.0 / fans).sqrt(), rng)
            }
            Init::Zeros => out.fill(0.0),
            Init::Constant { value } => out.fill(value),
        }
        Ok(())
    }
}

fn uniform<R: Rng + ?Sized>(out: &mut [f32], bound: f32, rng: &mut R) {
    if bound == 0.0 {
        out.fill(0.0);
        return;
    }
    // `new_inclusive` only fails for non-finite or reversed bounds, which
    // `validate` has ruled out.
    let dist = Uniform::new_inclusive(-bound, bound).expect("validated bound");
    out.iter_mut().for_each(|x| *x = dist.sample(rng));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn uniform_stays_in_bound_and_is_seeded() {
        let a = Init::Uniform { bound: 0.05 }.sample(10, 8, &mut StdRng::seed_from_u64(1)).unwrap();
        let b = Init::Uniform { bound: 0.05 }.sample(10, 8, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|x| x.abs() <= 0.05));
        assert!(a.iter().any(|x| *x != a[0]));
    }

    #[test]
    fn normal_has_roughly_the_asked_std() {
        let w = Init::Normal { std: 1.0 }.sample(200, 50, &mut StdRng::seed_from_u64(2)).unwrap();
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / w.len() as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 0.05, "std {}", var.sqrt());
    }

    #[test]
    fn glorot_bound_uses_both_fans() {
        // Keras: limit = sqrt(6 / (fan_in + fan_out)) = sqrt(6 / 10)
        let w = Init::GlorotUniform.sample(6, 4, &mut StdRng::seed_from_u64(3)).unwrap();
        let limit = (6.0f32 / 10.0).sqrt();
        assert!(w.iter().all(|x| x.abs() <= limit));
        assert!(w.iter().any(|x| x.abs() > limit * 0.8));
    }

    #[test]
    fn constant_and_zeros_fill() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(Init::Zeros.sample(2, 2, &mut rng).unwrap(), vec![0.0; 4]);
        assert_eq!(Init::Constant { value: 1.5 }.sample(1, 3, &mut rng).unwrap(), vec![1.5; 3]);
    }

    #[test]
    fn sizes_that_overflow_are_refused() {
        let err = Init::Zeros.sample(usize::MAX, 2, &mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(err.to_string().contains("do not fit"), "{err}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut rng = StdRng::seed_from_u64(0);
        assert!(Init::Uniform { bound: -1.0 }.sample(1, 1, &mut rng).is_err());
        assert!(Init::Normal { std: f32::NAN }.sample(1, 1, &mut rng).is_err());
        assert!(Init::Constant { value: f32::INFINITY }.sample(1, 1, &mut rng).is_err());
    }

    #[test]
    fn fill_draws_what_sample_draws_and_checks_the_length() {
        for init in [
            Init::Uniform { bound: 0.3 },
            Init::Normal { std: 2.0 },
            Init::GlorotUniform,
            Init::Constant { value: -1.5 },
        ] {
            let want = init.sample(7, 5, &mut StdRng::seed_from_u64(4)).unwrap();
            let mut got = vec![9.0; 35];
            init.fill(7, 5, &mut got, &mut StdRng::seed_from_u64(4)).unwrap();
            assert_eq!(got, want, "{init:?}");
        }
        let err = Init::Zeros.fill(2, 3, &mut [0.0; 5], &mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    }
}
