//! Weight penalties added to the loss: Keras 3's `L1`, `L2` and `L1L2`
//! regularisers.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A weight penalty, as Keras 3's `keras.regularizers`.
///
/// | variant | penalty `R(w)` | gradient `∂R/∂w` |
/// | --- | --- | --- |
/// | `L1 { l1 }` | `l1 · Σ |w|` | `l1 · sign(w)` (0 at `w = 0`) |
/// | `L2 { l2 }` | `l2 · Σ w²` | `2 · l2 · w` |
/// | `L1L2 { l1, l2 }` | both, added | both, added |
///
/// Keras's string identifiers `"l1"`, `"l2"` and `"l1_l2"` use a factor of
/// 0.01 ([`KERAS_DEFAULT`](Self::KERAS_DEFAULT)); [`FromStr`] parses them
/// the same way, and a serialised variant without a factor gets 0.01 too.
/// (The Python class `L1L2()` itself defaults both factors to 0.)
///
/// On an [`Embedding`](crate::Embedding) the penalty is applied lazily, to
/// the rows a batch looked up; see
/// [`EmbeddingConfig::regularizer`](crate::EmbeddingConfig::regularizer).
///
/// # Examples
///
/// ```
/// use embkit::layers::Regularizer;
///
/// let reg = Regularizer::l1_l2(0.1, 0.5);
/// let w = [1.0, -2.0, 0.0];
/// // 0.1 · (1 + 2 + 0) + 0.5 · (1 + 4 + 0) = 2.8
/// assert!((reg.penalty(&w) - 2.8).abs() < 1e-6);
/// let mut grad = [0.0; 3];
/// reg.add_gradient(&w, &mut grad);
/// // 0.1 · sign(w) + 2 · 0.5 · w
/// assert_eq!(grad, [1.1, -2.1, 0.0]);
///
/// let keras: Regularizer = "l2".parse()?;
/// assert_eq!(keras, Regularizer::L2 { l2: 0.01 });
/// assert!(Regularizer::l1(-1.0).validate().is_err());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Regularizer {
    /// `l1 · Σ |w|` (Keras `L1`).
    L1 {
        /// The factor; finite and at least 0. Default 0.01.
        #[serde(default = "keras_default")]
        l1: f32,
    },
    /// `l2 · Σ w²` (Keras `L2`).
    L2 {
        /// The factor; finite and at least 0. Default 0.01.
        #[serde(default = "keras_default")]
        l2: f32,
    },
    /// `l1 · Σ |w| + l2 · Σ w²` (Keras `L1L2`).
    L1L2 {
        /// The L1 factor; finite and at least 0. Default 0.01.
        #[serde(default = "keras_default")]
        l1: f32,
        /// The L2 factor; finite and at least 0. Default 0.01.
        #[serde(default = "keras_default")]
        l2: f32,
    },
}

fn keras_default() -> f32 {
    Regularizer::KERAS_DEFAULT
}

impl Regularizer {
    /// The factor of Keras's string identifiers `"l1"`, `"l2"` and
    /// `"l1_l2"`: 0.01.
    pub const KERAS_DEFAULT: f32 = 0.01;

    /// `l1 · Σ |w|`.
    pub fn l1(l1: f32) -> Self {
        Regularizer::L1 { l1 }
    }

    /// `l2 · Σ w²`.
    pub fn l2(l2: f32) -> Self {
        Regularizer::L2 { l2 }
    }

    /// `l1 · Σ |w| + l2 · Σ w²`.
    pub fn l1_l2(l1: f32, l2: f32) -> Self {
        Regularizer::L1L2 { l1, l2 }
    }

    /// The two factors `(l1, l2)`, 0 for the one a variant does not have.
    pub fn factors(&self) -> (f32, f32) {
        match *self {
            Regularizer::L1 { l1 } => (l1, 0.0),
            Regularizer::L2 { l2 } => (0.0, l2),
            Regularizer::L1L2 { l1, l2 } => (l1, l2),
        }
    }

    /// Checks that the factors are finite and not negative, as Keras does.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for field `regularizer`, naming the factor
    /// and its value.
    pub fn validate(&self) -> Result<()> {
        let (l1, l2) = self.factors();
        for (name, value) in [("l1", l1), ("l2", l2)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::config(
                    "regularizer",
                    format!("{name} must be finite and at least 0, got {value}"),
                ));
            }
        }
        Ok(())
    }

    /// The penalty `R(w)` of the values `w`. Each sum (`Σ |w|`, `Σ w²`) is
    /// taken in `f64` and rounded to `f32`; the factors are applied in
    /// `f32`, as Keras does (`l1 · Σ |w|`, then `+ l2 · Σ w²`).
    pub fn penalty(&self, w: &[f32]) -> f32 {
        self.penalty_of(w.iter().copied())
    }

    /// [`penalty`](Self::penalty) of any sequence of values, for example
    /// the rows a batch looked up.
    pub(crate) fn penalty_of(&self, w: impl Iterator<Item = f32> + Clone) -> f32 {
        let (l1, l2) = self.factors();
        let mut total = 0.0f32;
        if l1 != 0.0 {
            total += l1 * w.clone().map(|x| (x as f64).abs()).sum::<f64>() as f32;
        }
        if l2 != 0.0 {
            total += l2 * w.map(|x| x as f64 * x as f64).sum::<f64>() as f32;
        }
        total
    }

    /// Adds the penalty's gradient `∂R/∂w` to `grad`, element by element:
    /// `2 · l2 · w`, then `l1 · sign(w)` (0 where `w` is 0, as
    /// TensorFlow's `sign`), in the order TensorFlow adds them.
    ///
    /// # Panics
    ///
    /// If `w` and `grad` differ in length.
    #[track_caller]
    pub fn add_gradient(&self, w: &[f32], grad: &mut [f32]) {
        assert_eq!(w.len(), grad.len(), "one gradient value per weight");
        let (l1, l2) = self.factors();
        // TensorFlow adds the L2 term to the data gradient first, then the
        // L1 term: the same order gives Keras's numbers bit for bit.
        for (g, &x) in grad.iter_mut().zip(w) {
            if l2 != 0.0 {
                *g += l2 * (2.0 * x);
            }
            if l1 != 0.0 {
                *g += l1 * sign(x);
            }
        }
    }
}

/// `-1`, `0` or `1` (TensorFlow's `sign`; Rust's `signum` gives 1 at 0).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl FromStr for Regularizer {
    type Err = Error;

    /// Parses Keras's string identifiers: `"l1"`, `"l2"`, `"l1_l2"` (or
    /// `"l1l2"`), each with the factor 0.01.
    fn from_str(s: &str) -> Result<Self> {
        let d = Self::KERAS_DEFAULT;
        match s {
            "l1" => Ok(Self::l1(d)),
            "l2" => Ok(Self::l2(d)),
            "l1_l2" | "l1l2" => Ok(Self::l1_l2(d, d)),
            other => Err(Error::config(
                "regularizer",
                format!("expected \"l1\", \"l2\" or \"l1_l2\", got {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_of_zero_is_zero_so_l1_does_not_push_zero_weights() {
        let mut g = [0.0; 3];
        Regularizer::l1(0.5).add_gradient(&[0.0, -0.0, 2.0], &mut g);
        assert_eq!(g, [0.0, 0.0, 0.5]);
    }

    #[test]
    fn serialised_regularizers_default_to_the_keras_factor() {
        let r: Regularizer = serde_json::from_str(r#"{"kind":"l1_l2","l2":0.5}"#).unwrap();
        assert_eq!(r, Regularizer::l1_l2(0.01, 0.5));
        let json = serde_json::to_string(&Regularizer::l2(0.25)).unwrap();
        assert_eq!(json, r#"{"kind":"l2","l2":0.25}"#);
    }

    #[test]
    fn negative_and_non_finite_factors_are_refused() {
        let err = Regularizer::l1_l2(0.1, -0.5).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid regularizer: l2 must be finite and at least 0, got -0.5"
        );
        assert!(Regularizer::l1(f32::NAN).validate().is_err());
        assert!(Regularizer::l2(f32::INFINITY).validate().is_err());
        assert!(Regularizer::l1(0.0).validate().is_ok());
    }

    #[test]
    fn unknown_identifiers_are_refused() {
        assert!("l3".parse::<Regularizer>().is_err());
        assert_eq!("l1".parse::<Regularizer>().unwrap(), Regularizer::l1(0.01));
    }
}
