//! Gradient clipping, as Keras 3's optimizer arguments `clipnorm`,
//! `clipvalue` and `global_clipnorm`: applied to every gradient of a step
//! before the optimizer sees them.
//!
//! ```text
//! clipvalue:       g = clip(g, -clipvalue, clipvalue)                   (element-wise)
//! clipnorm:        g = g * clipnorm / max(norm(g), clipnorm)            (per parameter)
//! global_clipnorm: g = g * clipnorm * min(1 / global_norm, 1 / clipnorm) (all parameters)
//! ```
//!
//! `global_norm` is `sqrt(Σ norm(g)²)` over every parameter. A table's
//! [`RowGrad`] is its parameter's gradient: rows it does not name are 0.

use serde::{Deserialize, Serialize};

use crate::{Error, Result, RowGrad};

/// Which norm a [`RowGrad`] has when clipping by norm.
///
/// The two differ only for ids seen several times in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RowNorm {
    /// The norm of the summed rows, `sqrt(Σ_rows (Σ gᵢ)²)`: the norm of the
    /// table's gradient. PyTorch's `clip_grad_norm_` measures this, for
    /// sparse and dense embedding gradients.
    #[default]
    Summed,
    /// The norm of the occurrences, `sqrt(Σ_rows Σ gᵢ²)` (from
    /// [`RowGrad::squares`]): what Keras 3 with the TensorFlow backend
    /// measures, since an embedding's gradient there holds one row per
    /// occurrence.
    Occurrences,
}

/// One parameter's gradient, as [`GradientClipping::apply`] changes it.
#[derive(Debug)]
pub enum GradMut<'a> {
    /// The gradient of a dense parameter.
    Dense(&'a mut [f32]),
    /// The gradient of a table.
    Rows(&'a mut RowGrad),
}

/// Gradient clipping, as Keras 3's optimizer arguments; at most one of the
/// three may be set, as in Keras.
///
/// The model calls [`apply`](Self::apply) with every gradient of a step
/// (dense parameters and tables) before the optimizer's steps.
///
/// - `clipvalue` clamps each value to `[-clipvalue, clipvalue]`. For a
///   table it clamps the summed rows of the [`RowGrad`], which is what
///   PyTorch's `clip_grad_value_` does to a dense gradient. Keras clamps
///   each occurrence of an id before they are summed, which a `RowGrad`
///   cannot redo, so for an id seen several times in a batch the results
///   differ; for ids seen once they agree, squares included (the square
///   of an id seen once is that of its clipped row). For an id seen
///   several times [`RowGrad::squares`] keeps the sum of the unclipped
///   occurrences' squares, so [`TableUpdates::Keras`](crate::optim::TableUpdates)
///   accumulates those.
/// - `clipnorm` scales each parameter's gradient whose L2 norm is above
///   `clipnorm` down to that norm (Keras's `clip_by_norm`: `g * clipnorm /
///   max(norm, clipnorm)`).
/// - `global_clipnorm` scales every gradient by the same factor when the
///   norm of all of them together is above it (Keras's
///   `clip_by_global_norm`: `g * clipnorm * min(1 / norm, 1 / clipnorm)`,
///   in `f32`).
///
/// The norm of a table's gradient is set by [`row_norm`](Self::row_norm).
/// Scaling a [`RowGrad`] scales its squares by the square of the factor,
/// so they stay the squares of the scaled occurrences. Norms are summed in
/// `f64`. A gradient with a NaN or infinite value makes the global factor
/// NaN, as in Keras; check gradients for finiteness first.
///
/// # Examples
///
/// ```
/// use embkit::optim::{GradMut, GradientClipping};
/// use embkit::RowGrad;
///
/// let clipping = GradientClipping::new().with_global_clipnorm(1.0);
/// let mut bias = [3.0_f32, 0.0];
/// let mut table = RowGrad::from_rows(&[2], &[0.0, 4.0], 2);
/// // The global norm is sqrt(3² + 4²) = 5: everything is scaled by 1 / 5.
/// clipping.apply(&mut [GradMut::Dense(&mut bias), GradMut::Rows(&mut table)])?;
/// assert!((bias[0] - 0.6).abs() < 1e-6 && (table.rows()[1] - 0.8).abs() < 1e-6);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GradientClipping {
    /// The largest L2 norm of each parameter's gradient; finite and greater
    /// than 0. Default none.
    pub clipnorm: Option<f32>,
    /// The largest absolute value of each gradient value; finite and
    /// greater than 0. Default none.
    pub clipvalue: Option<f32>,
    /// The largest L2 norm of all gradients together; finite and greater
    /// than 0. Default none.
    pub global_clipnorm: Option<f32>,
    /// How the norm of a table's gradient is measured. Default
    /// [`RowNorm::Summed`]; Keras's numbers need [`RowNorm::Occurrences`].
    pub row_norm: RowNorm,
}

impl GradientClipping {
    /// No clipping.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`clipnorm`](Self::clipnorm).
    pub fn with_clipnorm(mut self, clipnorm: f32) -> Self {
        self.clipnorm = Some(clipnorm);
        self
    }

    /// Sets [`clipvalue`](Self::clipvalue).
    pub fn with_clipvalue(mut self, clipvalue: f32) -> Self {
        self.clipvalue = Some(clipvalue);
        self
    }

    /// Sets [`global_clipnorm`](Self::global_clipnorm).
    pub fn with_global_clipnorm(mut self, global_clipnorm: f32) -> Self {
        self.global_clipnorm = Some(global_clipnorm);
        self
    }

    /// Sets [`row_norm`](Self::row_norm).
    pub fn with_row_norm(mut self, row_norm: RowNorm) -> Self {
        self.row_norm = row_norm;
        self
    }

    /// Whether any clipping is set.
    pub fn is_active(&self) -> bool {
        self.clipnorm.is_some() || self.clipvalue.is_some() || self.global_clipnorm.is_some()
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a limit is not finite and positive, or
    /// more than one of `clipnorm`, `clipvalue` and `global_clipnorm` is
    /// set (Keras allows one).
    pub fn validate(&self) -> Result<()> {
        let limits = [
            ("clipnorm", self.clipnorm),
            ("clipvalue", self.clipvalue),
            ("global_clipnorm", self.global_clipnorm),
        ];
        let mut set = None;
        for (field, limit) in limits {
            let Some(limit) = limit else { continue };
            if !(limit.is_finite() && limit > 0.0) {
                return Err(Error::config(
                    field,
                    format!("must be finite and greater than 0, got {limit}"),
                ));
            }
            if let Some(first) = set {
                return Err(Error::config(
                    field,
                    format!(
                        "cannot be set together with {first}: only one of clipnorm, clipvalue \
                         and global_clipnorm can be set, got {limit}"
                    ),
                ));
            }
            set = Some(field);
        }
        Ok(())
    }

    /// Clips the gradients of one step in place. Without a limit set, does
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] as [`validate`](Self::validate), before
    /// anything changes.
    pub fn apply(&self, grads: &mut [GradMut<'_>]) -> Result<()> {
        self.validate()?;
        if let Some(limit) = self.clipvalue {
            for grad in grads.iter_mut() {
                let values = match grad {
                    GradMut::Dense(values) => &mut **values,
                    GradMut::Rows(rows) => rows.rows_mut(),
                };
                for x in values {
                    *x = x.clamp(-limit, limit);
                }
            }
        }
        if let Some(limit) = self.clipnorm {
            for grad in grads.iter_mut() {
                let norm = squared_norm(grad, self.row_norm).sqrt() as f32;
                scale(grad, limit / norm.max(limit));
            }
        }
        if let Some(limit) = self.global_clipnorm {
            let squared: f64 = grads.iter().map(|grad| squared_norm(grad, self.row_norm)).sum();
            let norm = squared.sqrt() as f32;
            // Keras adds `norm - norm` to make the factor NaN when the norm
            // is not finite.
            let nan_unless_finite = if norm.is_finite() { 0.0 } else { f32::NAN };
            let factor = limit * (1.0 / norm).min(1.0 / limit) + nan_unless_finite;
            for grad in grads.iter_mut() {
                scale(grad, factor);
            }
        }
        Ok(())
    }
}

/// The squared L2 norm of one gradient, in `f64`.
fn squared_norm(grad: &GradMut<'_>, row_norm: RowNorm) -> f64 {
    let values = match (grad, row_norm) {
        (GradMut::Dense(values), _) => &values[..],
        (GradMut::Rows(rows), RowNorm::Summed) => rows.rows(),
        (GradMut::Rows(rows), RowNorm::Occurrences) => {
            return rows.sum_of_squares();
        }
    };
    values.iter().map(|&x| f64::from(x) * f64::from(x)).sum()
}

/// Multiplies a gradient by `factor` (a [`RowGrad`]'s squares by
/// `factor²`). A factor of exactly 1 changes nothing.
fn scale(grad: &mut GradMut<'_>, factor: f32) {
    if factor == 1.0 {
        return;
    }
    match grad {
        GradMut::Dense(values) => values.iter_mut().for_each(|x| *x *= factor),
        GradMut::Rows(rows) => {
            for i in 0..rows.len() {
                rows.scale_row(i, factor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_all_close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (&got, &want) in got.iter().zip(want) {
            assert!((f64::from(got) - want).abs() < 1e-6, "got {got}, want {want}");
        }
    }

    #[test]
    fn no_limit_changes_nothing() -> Result<()> {
        let mut g = [100.0, -100.0];
        GradientClipping::new().apply(&mut [GradMut::Dense(&mut g)])?;
        assert_eq!(g, [100.0, -100.0]);
        assert!(!GradientClipping::new().is_active());
        Ok(())
    }

    #[test]
    fn clipvalue_clamps_each_value() -> Result<()> {
        let mut g = [0.5, -2.0, 3.0];
        let mut rows = RowGrad::from_rows(&[1, 1], &[0.5, 0.5, 0.5, -0.25], 2);
        GradientClipping::new()
            .with_clipvalue(0.6)
            .apply(&mut [GradMut::Dense(&mut g), GradMut::Rows(&mut rows)])?;
        assert_eq!(g, [0.5, -0.6, 0.6]);
        // The summed row (1.0, 0.25) is clamped; its squares stay unclipped.
        assert_eq!(rows.rows(), &[0.6, 0.25]);
        assert_eq!(rows.squares(), &[0.5, 0.3125]);
        Ok(())
    }

    // Per parameter: g = [3, 4] has norm 5 > 2, scaled by 2 / 5; h = [0.3, 0.4] (norm 0.5) stays.
    #[test]
    fn clipnorm_scales_each_parameter_on_its_own() -> Result<()> {
        let (mut g, mut h) = ([3.0, 4.0], [0.3, 0.4]);
        GradientClipping::new()
            .with_clipnorm(2.0)
            .apply(&mut [GradMut::Dense(&mut g), GradMut::Dense(&mut h)])?;
        assert_all_close(&g, &[1.2, 1.6]);
        assert_eq!(h, [0.3, 0.4]);
        Ok(())
    }

    // Id 0 twice with rows [3, 0] and [0, 4]: the summed row [3, 4] has norm 5; the
    // occurrences have norm sqrt(9 + 16) = 5 too; id 1 once with [-3, 0] is added:
    //   summed:      sqrt(9 + 16 + 9) = 5.8309519
    // With [3, 0] and [3, 0] instead: summed [6, 0] has norm 6, occurrences sqrt(18) = 4.2426407.
    #[test]
    fn row_norm_chooses_summed_rows_or_occurrences() -> Result<()> {
        for (row_norm, norm) in [(RowNorm::Summed, 6.0_f64), (RowNorm::Occurrences, 18f64.sqrt())] {
            let mut rows = RowGrad::from_rows(&[0, 0], &[3.0, 0.0, 3.0, 0.0], 2);
            GradientClipping::new()
                .with_clipnorm(1.0)
                .with_row_norm(row_norm)
                .apply(&mut [GradMut::Rows(&mut rows)])?;
            assert_all_close(rows.rows(), &[6.0 / norm, 0.0]);
            // The squares scale with the square of the factor.
            assert_all_close(&rows.squares(), &[18.0 / (norm * norm), 0.0]);
        }
        Ok(())
    }

    // Global: [3] and [4] have a global norm of 5; with a limit of 10 nothing changes,
    // with a limit of 1 both are scaled by 1 * min(1 / 5, 1 / 1) = 0.2.
    #[test]
    fn global_clipnorm_scales_every_gradient_alike() -> Result<()> {
        let (mut a, mut b) = ([3.0], [4.0]);
        let clipping = GradientClipping::new().with_global_clipnorm(10.0);
        clipping.apply(&mut [GradMut::Dense(&mut a), GradMut::Dense(&mut b)])?;
        assert_eq!((a, b), ([3.0], [4.0]));
        let clipping = GradientClipping::new().with_global_clipnorm(1.0);
        clipping.apply(&mut [GradMut::Dense(&mut a), GradMut::Dense(&mut b)])?;
        assert_all_close(&a, &[0.6]);
        assert_all_close(&b, &[0.8]);
        Ok(())
    }

    #[test]
    fn a_non_finite_gradient_makes_the_global_factor_nan() -> Result<()> {
        let (mut a, mut b) = ([f32::INFINITY], [1.0]);
        let clipping = GradientClipping::new().with_global_clipnorm(1.0);
        clipping.apply(&mut [GradMut::Dense(&mut a), GradMut::Dense(&mut b)])?;
        assert!(b[0].is_nan());
        Ok(())
    }

    #[test]
    fn validate_rejects_bad_limits_and_more_than_one() {
        let bad = [
            ("clipnorm", GradientClipping::new().with_clipnorm(0.0)),
            ("clipnorm", GradientClipping::new().with_clipnorm(f32::NAN)),
            ("clipvalue", GradientClipping::new().with_clipvalue(-1.0)),
            ("global_clipnorm", GradientClipping::new().with_global_clipnorm(f32::INFINITY)),
            (
                "global_clipnorm",
                GradientClipping::new().with_clipnorm(1.0).with_global_clipnorm(1.0),
            ),
            ("clipvalue", GradientClipping::new().with_clipnorm(1.0).with_clipvalue(1.0)),
            (
                "global_clipnorm",
                GradientClipping::new().with_clipvalue(1.0).with_global_clipnorm(1.0),
            ),
        ];
        for (want, clipping) in bad {
            match clipping.validate() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, want, "{clipping:?}"),
                other => panic!("{clipping:?} gave {other:?}"),
            }
            let mut g = [5.0];
            assert!(clipping.apply(&mut [GradMut::Dense(&mut g)]).is_err());
            assert_eq!(g, [5.0]);
        }
        let err = GradientClipping::new().with_clipnorm(1.0).with_global_clipnorm(2.0);
        assert_eq!(
            err.validate().unwrap_err().to_string(),
            "invalid global_clipnorm: cannot be set together with clipnorm: only one of \
             clipnorm, clipvalue and global_clipnorm can be set, got 2"
        );
    }
}
