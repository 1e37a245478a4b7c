//! Projections applied to a weight matrix after each optimizer step:
//! Keras 3's `MaxNorm`, `NonNeg`, `UnitNorm` and `MinMaxNorm` constraints.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Keras's `backend.epsilon()`, added to the norms before dividing.
const EPSILON: f32 = 1e-7;

/// A constraint: a projection of a weight matrix that an optimizer step is
/// followed by, as Keras 3's `keras.constraints`.
///
/// The norms are Euclidean, taken along `axis` as Keras does:
/// `norms = sqrt(Σ w² along axis)`, one per slice. Then, element by
/// element, with `eps = 1e-7`:
///
/// | variant | result |
/// | --- | --- |
/// | `MaxNorm { max_value, axis }` | `w · clip(norms, 0, max_value) / (eps + norms)` |
/// | `NonNeg` | `max(w, 0)` |
/// | `UnitNorm { axis }` | `w / (eps + norms)` |
/// | `MinMaxNorm { min_value, max_value, rate, axis }` | `w · desired / (eps + norms)`, `desired = rate · clip(norms, min_value, max_value) + (1 - rate) · norms` |
///
/// As in Keras, `MaxNorm` and `MinMaxNorm` multiply *every* slice by
/// `desired / (eps + norms)`, so a slice already within the bounds still
/// shrinks by a factor of about `1 - eps / norm` on each step. `NonNeg`
/// is Keras 3's `maximum(w, 0)` (older Keras wrote `w · (w >= 0)`, which
/// differs only in giving `-0.0` for negative values).
///
/// # Which axis
///
/// **Keras's default is `axis = 0`, and on a table
/// `[num_embeddings, embedding_dim]` that is the norm of each *column*,
/// taken over all ids, not the norm of each row.** That is what Keras
/// does with `Embedding(..., embeddings_constraint=MaxNorm())`, and it is
/// rarely what is wanted for embeddings: use
/// [`with_axis(1)`](Self::with_axis) to bound the norm of each row (each
/// id's vector), which is what PyTorch's `max_norm` does at lookup time.
/// `-1` and `-2` count from the end, so `-1` is `1` and `-2` is `0`.
///
/// The norms are summed in `f32` in index order, as TensorFlow does for
/// small tensors; a large tensor may differ from TensorFlow's tree
/// reduction in the last bit.
///
/// # Examples
///
/// ```
/// use embkit::layers::Constraint;
///
/// // Two rows of two: rows have norms 5 and 0.5, columns 3.04 and 4.03.
/// let mut w = [3.0, 4.0, 0.3, 0.4];
/// Constraint::max_norm(1.0).with_axis(1).apply(&mut w, 2, 2);
/// assert!((w[0] - 0.6).abs() < 1e-6 && (w[1] - 0.8).abs() < 1e-6);
/// // Within the bound, but Keras still multiplies by norm / (eps + norm).
/// assert!(w[2] < 0.3 && (w[2] - 0.3).abs() < 1e-6);
///
/// let mut w = [1.0, -2.0, -0.5, 3.0];
/// Constraint::non_neg().apply(&mut w, 2, 2);
/// assert_eq!(w, [1.0, 0.0, 0.0, 3.0]);
///
/// assert!(Constraint::max_norm(-1.0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Constraint {
    /// Scales down each slice whose norm is above `max_value` (Keras
    /// `MaxNorm`). Build it with [`Constraint::max_norm`].
    #[non_exhaustive]
    MaxNorm {
        /// The largest norm; finite and at least 0. Default 2.
        #[serde(default = "two")]
        max_value: f32,
        /// The axis the norms are taken along. Default 0 (see the type's
        /// docs).
        #[serde(default)]
        axis: i32,
    },
    /// Sets negative values to 0 (Keras `NonNeg`). Build it with
    /// [`Constraint::non_neg`].
    NonNeg,
    /// Scales each slice to norm 1 (Keras `UnitNorm`). Build it with
    /// [`Constraint::unit_norm`].
    #[non_exhaustive]
    UnitNorm {
        /// The axis the norms are taken along. Default 0 (see the type's
        /// docs).
        #[serde(default)]
        axis: i32,
    },
    /// Moves each slice's norm into `[min_value, max_value]`, at `rate`
    /// (Keras `MinMaxNorm`). Build it with [`Constraint::min_max_norm`].
    #[non_exhaustive]
    MinMaxNorm {
        /// The smallest norm; finite, at least 0 and at most `max_value`.
        /// Default 0.
        #[serde(default)]
        min_value: f32,
        /// The largest norm; finite. Default 1.
        #[serde(default = "one")]
        max_value: f32,
        /// How far to move: 1 enforces the bounds, less moves part of the
        /// way. In `[0, 1]`. Default 1.
        #[serde(default = "one")]
        rate: f32,
        /// The axis the norms are taken along. Default 0 (see the type's
        /// docs).
        #[serde(default)]
        axis: i32,
    },
}

fn one() -> f32 {
    1.0
}

fn two() -> f32 {
    2.0
}

impl Constraint {
    /// Keras `MaxNorm(max_value)`, along axis 0 (Keras's default; see the
    /// type's docs). Keras's default `max_value` is 2.
    pub fn max_norm(max_value: f32) -> Self {
        Constraint::MaxNorm { max_value, axis: 0 }
    }

    /// Keras `NonNeg()`.
    pub fn non_neg() -> Self {
        Constraint::NonNeg
    }

    /// Keras `UnitNorm()`, along axis 0 (Keras's default).
    pub fn unit_norm() -> Self {
        Constraint::UnitNorm { axis: 0 }
    }

    /// Keras `MinMaxNorm(min_value, max_value)`, with `rate` 1 and axis 0
    /// (Keras's defaults; Keras's default bounds are 0 and 1).
    pub fn min_max_norm(min_value: f32, max_value: f32) -> Self {
        Constraint::MinMaxNorm { min_value, max_value, rate: 1.0, axis: 0 }
    }

    /// Sets the axis the norms are taken along: 0 (Keras's default, the
    /// columns of a table) or 1 (the rows); `-1` and `-2` count from the
    /// end. No effect on [`NonNeg`](Self::NonNeg).
    pub fn with_axis(mut self, new_axis: i32) -> Self {
        match &mut self {
            Constraint::MaxNorm { axis, .. }
            | Constraint::UnitNorm { axis }
            | Constraint::MinMaxNorm { axis, .. } => *axis = new_axis,
            Constraint::NonNeg => {}
        }
        self
    }

    /// Sets the `rate` of a [`MinMaxNorm`](Self::MinMaxNorm); no effect on
    /// the other variants.
    pub fn with_rate(mut self, new_rate: f32) -> Self {
        if let Constraint::MinMaxNorm { rate, .. } = &mut self {
            *rate = new_rate;
        }
        self
    }

    /// The axis the norms are taken along, in `0..2`, or `None` for
    /// [`NonNeg`](Self::NonNeg) or an axis out of range.
    pub fn axis(&self) -> Option<usize> {
        let axis = match *self {
            Constraint::MaxNorm { axis, .. }
            | Constraint::UnitNorm { axis }
            | Constraint::MinMaxNorm { axis, .. } => axis,
            Constraint::NonNeg => return None,
        };
        match axis {
            0 | -2 => Some(0),
            1 | -1 => Some(1),
            _ => None,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for field `constraint` if the axis is not
    /// one of `-2, -1, 0, 1`, a bound is not finite or is negative,
    /// `min_value > max_value`, or `rate` is not in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::config("constraint", reason));
        if let Some(axis) = match *self {
            Constraint::MaxNorm { axis, .. }
            | Constraint::UnitNorm { axis }
            | Constraint::MinMaxNorm { axis, .. } => Some(axis),
            Constraint::NonNeg => None,
        } {
            if self.axis().is_none() {
                return bad(format!(
                    "axis must be 0 (columns), 1 (rows), -1 or -2 for a 2-D weight, got {axis}"
                ));
            }
        }
        match *self {
            Constraint::MaxNorm { max_value, .. }
                if !(max_value.is_finite() && max_value >= 0.0) =>
            {
                bad(format!("max_value must be finite and at least 0, got {max_value}"))
            }
            Constraint::MinMaxNorm { min_value, max_value, rate, .. } => {
                if !(min_value.is_finite() && min_value >= 0.0) {
                    bad(format!("min_value must be finite and at least 0, got {min_value}"))
                } else if !(max_value.is_finite() && max_value >= min_value) {
                    bad(format!(
                        "max_value must be finite and at least min_value {min_value}, got {max_value}"
                    ))
                } else if !(0.0..=1.0).contains(&rate) {
                    bad(format!("rate must be in [0, 1], got {rate}"))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Projects the row-major matrix `weights` (`[rows, cols]`) in place.
    ///
    /// # Shapes
    ///
    /// - `weights`: `[rows, cols]`, row-major
    ///
    /// # Panics
    ///
    /// If `weights.len() != rows * cols`, or the constraint is invalid
    /// (an axis out of range): configs are validated before use.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::layers::Constraint;
    ///
    /// // Keras: UnitNorm(axis=0)(w) scales each column to norm 1.
    /// let mut w = [3.0, 0.0, 4.0, 2.0];
    /// Constraint::unit_norm().apply(&mut w, 2, 2);
    /// assert!((w[0] - 0.6).abs() < 1e-6 && (w[2] - 0.8).abs() < 1e-6);
    /// assert!((w[1]).abs() < 1e-6 && (w[3] - 1.0).abs() < 1e-6);
    /// ```
    #[track_caller]
    pub fn apply(&self, weights: &mut [f32], rows: usize, cols: usize) {
        assert_eq!(weights.len(), rows * cols, "weights hold rows * cols values");
        if let Constraint::NonNeg = self {
            for w in weights.iter_mut() {
                if *w < 0.0 {
                    *w = 0.0;
                }
            }
            return;
        }
        let axis = self.axis().expect("the constraint's axis was validated");
        let norms = norms(weights, rows, cols, axis);
        // One factor per slice: w · desired / (eps + norms), or
        // w / (eps + norms) for UnitNorm.
        let scale = |w: &mut f32, norm: f32| match *self {
            Constraint::MaxNorm { max_value, .. } => {
                let desired = norm.clamp(0.0, max_value);
                *w *= desired / (EPSILON + norm);
            }
            Constraint::UnitNorm { .. } => *w /= EPSILON + norm,
            Constraint::MinMaxNorm { min_value, max_value, rate, .. } => {
                // Keras computes `1 - rate` in Python's f64.
                let keep = (1.0 - rate as f64) as f32;
                let desired = rate * norm.clamp(min_value, max_value) + keep * norm;
                *w *= desired / (EPSILON + norm);
            }
            Constraint::NonNeg => unreachable!("handled above"),
        };
        for (i, w) in weights.iter_mut().enumerate() {
            let slice = if axis == 0 { i % cols } else { i / cols };
            scale(w, norms[slice]);
        }
    }
}

/// `sqrt(Σ w²)` along `axis`: one norm per column for axis 0, one per row
/// for axis 1, summed in `f32` in index order.
fn norms(weights: &[f32], rows: usize, cols: usize, axis: usize) -> Vec<f32> {
    if axis == 0 {
        let mut sums = vec![0.0f32; cols];
        for row in weights.chunks_exact(cols.max(1)) {
            for (s, &w) in sums.iter_mut().zip(row) {
                *s += w * w;
            }
        }
        sums.iter().map(|s| s.sqrt()).collect()
    } else {
        let mut out = Vec::with_capacity(rows);
        for row in weights.chunks_exact(cols.max(1)) {
            out.push(row.iter().fold(0.0f32, |s, &w| s + w * w).sqrt());
        }
        out.resize(rows, 0.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_axis_is_the_columns_as_in_keras() {
        assert_eq!(Constraint::max_norm(2.0).axis(), Some(0));
        assert_eq!(Constraint::unit_norm().with_axis(-1).axis(), Some(1));
        let c: Constraint = serde_json::from_str(r#"{"kind":"max_norm"}"#).unwrap();
        assert_eq!(c, Constraint::max_norm(2.0));
        let c: Constraint = serde_json::from_str(r#"{"kind":"min_max_norm"}"#).unwrap();
        assert_eq!(c, Constraint::min_max_norm(0.0, 1.0));
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let err = Constraint::unit_norm().with_axis(2).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid constraint: axis must be 0 (columns), 1 (rows), -1 or -2 for a 2-D weight, got 2"
        );
        assert!(Constraint::max_norm(f32::NAN).validate().is_err());
        assert!(Constraint::min_max_norm(2.0, 1.0).validate().is_err());
        assert!(Constraint::min_max_norm(0.0, 1.0).with_rate(1.5).validate().is_err());
        assert!(Constraint::non_neg().validate().is_ok());
    }

    #[test]
    fn zero_slices_stay_zero() {
        let mut w = [0.0, 1.0, 0.0, 1.0];
        Constraint::unit_norm().apply(&mut w, 2, 2);
        assert_eq!(w[0], 0.0);
        assert_eq!(w[2], 0.0);
        let mut w = [0.0; 4];
        Constraint::min_max_norm(1.0, 2.0).with_axis(1).apply(&mut w, 2, 2);
        assert_eq!(w, [0.0; 4]);
    }
}
