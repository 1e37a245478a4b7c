//! Loss functions: the number training minimises, and its gradient with
//! respect to the predictions.
//!
//! The formulas and the reduction are Keras 3's (TensorFlow backend): a
//! per-sample loss (the mean over the last axis for binary cross-entropy
//! and squared error, the sum over classes for the categorical ones), then
//! the mean over every sample (`"sum_over_batch_size"`). The gradient that
//! [`Loss::forward_backward`] returns is the exact derivative of that mean,
//! `1 / batch` factor included. Sums run in `f64`.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::{Activation, Error, Result};

/// Keras's `backend.epsilon()`: probabilities are clipped to
/// `[EPSILON, 1 - EPSILON]` before their logarithm is taken.
pub const EPSILON: f32 = 1e-7;

/// A loss function (Keras `keras.losses`).
///
/// With `from_logits: false` the predictions are probabilities (the output
/// of a sigmoid or softmax), clipped to `[1e-7, 1 - 1e-7]` as Keras does;
/// the gradient is zero where a prediction was clipped. With
/// `from_logits: true` they are the raw scores before that activation, and
/// the loss is computed in a stable closed form.
///
/// | variant | per-sample loss | targets |
/// |---|---|---|
/// | `BinaryCrossentropy` | `mean(-(y ln p + (1 - y) ln(1 - p)))` over the last axis; from logits `mean(max(z, 0) - z y + ln(1 + exp(-abs(z))))` | pred's shape |
/// | `CategoricalCrossentropy` | `-sum(y ln q)` over the last axis, `q = p / sum(p)` then clipped; from logits `-sum(y · log_softmax(z))` | pred's shape |
/// | `SparseCategoricalCrossentropy` | `-ln(p_c / sum(p))` with `p` clipped first; from logits `-log_softmax(z)_c` | pred's shape without its last axis (or with a last axis of 1), class ids stored as `f32` |
/// | `MeanSquaredError` | `mean((p - y)²)` over the last axis | pred's shape |
///
/// For the losses whose targets have pred's shape, a rank that differs by
/// a trailing axis of length 1 (`[batch]` against `[batch, 1]`) is
/// accepted, as Keras squeezes it.
///
/// # Examples
///
/// ```
/// use embkit::Loss;
/// use ndarray::arr2;
///
/// let bce = Loss::BinaryCrossentropy { from_logits: false };
/// let pred = arr2(&[[0.8f32], [0.4]]).into_dyn();
/// let target = arr2(&[[1.0f32], [0.0]]).into_dyn();
///
/// // (-ln 0.8 - ln 0.6) / 2
/// let (loss, grad) = bce.forward_backward(pred.view(), target.view())?;
/// assert!((loss - 0.366_985).abs() < 1e-5);
/// // d/dp of the mean: (p - y) / (p (1 - p)) / 2
/// assert!((grad[[0, 0]] + 0.625).abs() < 1e-6);
/// assert_eq!(bce.name(), "binary_crossentropy");
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Loss {
    /// Binary cross-entropy, one independent probability per element.
    BinaryCrossentropy {
        /// Whether the predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Categorical cross-entropy against one-hot (or soft) targets.
    CategoricalCrossentropy {
        /// Whether the predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Categorical cross-entropy against integer class ids.
    SparseCategoricalCrossentropy {
        /// Whether the predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Mean squared error.
    MeanSquaredError,
}

impl Loss {
    /// The Keras name (`"binary_crossentropy"`, `"categorical_crossentropy"`,
    /// `"sparse_categorical_crossentropy"`, `"mean_squared_error"`).
    pub fn name(&self) -> &'static str {
        match self {
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
        }
    }

    /// Whether the loss expects logits.
    pub fn from_logits(&self) -> bool {
        match *self {
            Loss::BinaryCrossentropy { from_logits }
            | Loss::CategoricalCrossentropy { from_logits }
            | Loss::SparseCategoricalCrossentropy { from_logits } => from_logits,
            Loss::MeanSquaredError => false,
        }
    }

    /// The mean loss over the batch and its gradient with respect to
    /// `pred`.
    ///
    /// # Shapes
    ///
    /// - `pred`: `[batch, ..., k]`
    /// - `target`: see the table on [`Loss`]
    /// - returns: the mean loss and a gradient of `pred`'s shape
    ///
    /// # Errors
    ///
    /// - [`Error::ShapeMismatch`] if `target`'s shape does not fit `pred`'s;
    /// - [`Error::InvalidConfig`] with field `"target"` for a target that
    ///   is not finite, or a class id that is not an integer in `0..k`;
    /// - [`Error::EmptyData`] if `pred` has no elements.
    pub fn forward_backward(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
    ) -> Result<(f32, ArrayD<f32>)> {
        self.forward_backward_masked(pred, target, None)
    }

    /// [`forward_backward`](Self::forward_backward) for sequence outputs
    /// with a mask (Keras's `mask_zero`): the loss is the mean over the
    /// unmasked predictions only, `Σ mask·loss / (Σ mask + 1e-7)` as Keras
    /// 3 computes it, and masked predictions get no gradient.
    ///
    /// # Shapes
    ///
    /// - `pred`: `[batch, steps, k]`
    /// - `mask`: `[batch, steps]` (`pred`'s shape without the last axis),
    ///   true for the predictions that count
    ///
    /// # Errors
    ///
    /// As [`forward_backward`](Self::forward_backward), and
    /// [`Error::ShapeMismatch`] for a mask of another shape.
    pub fn forward_backward_masked(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
        mask: Option<ArrayViewD<'_, bool>>,
    ) -> Result<(f32, ArrayD<f32>)> {
        let mut grad = vec![0.0; pred.len()];
        let loss = self.compute(pred.view(), target, mask, Some(&mut grad))?;
        let grad =
            ArrayD::from_shape_vec(IxDyn(pred.shape()), grad).expect("one gradient per prediction");
        Ok((loss, grad))
    }

    /// The mean loss over the batch, without the gradient.
    ///
    /// # Errors
    ///
    /// As [`forward_backward`](Self::forward_backward).
    pub fn value(&self, pred: ArrayViewD<'_, f32>, target: ArrayViewD<'_, f32>) -> Result<f32> {
        self.compute(pred, target, None, None)
    }

    /// The masked mean loss, without the gradient (see
    /// [`forward_backward_masked`](Self::forward_backward_masked)).
    ///
    /// # Errors
    ///
    /// As [`forward_backward_masked`](Self::forward_backward_masked).
    pub fn value_masked(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
        mask: Option<ArrayViewD<'_, bool>>,
    ) -> Result<f32> {
        self.compute(pred, target, mask, None)
    }

    /// The logits form of this loss, when it is a probability
    /// cross-entropy that undoes `activation`: binary cross-entropy after a
    /// sigmoid, (sparse) categorical cross-entropy after a softmax.
    /// Otherwise `None`.
    ///
    /// A model whose last activation is that sigmoid or softmax can compute
    /// the loss from the logits instead, as Keras 3 does: stable, and
    /// without the clipping.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{Activation, Loss};
    ///
    /// let cce = Loss::CategoricalCrossentropy { from_logits: false };
    /// assert_eq!(
    ///     cce.with_logits_for(Activation::Softmax),
    ///     Some(Loss::CategoricalCrossentropy { from_logits: true })
    /// );
    /// assert_eq!(cce.with_logits_for(Activation::Sigmoid), None);
    /// ```
    pub fn with_logits_for(&self, activation: Activation) -> Option<Loss> {
        match (*self, activation) {
            (Loss::BinaryCrossentropy { from_logits: false }, Activation::Sigmoid) => {
                Some(Loss::BinaryCrossentropy { from_logits: true })
            }
            (Loss::CategoricalCrossentropy { from_logits: false }, Activation::Softmax) => {
                Some(Loss::CategoricalCrossentropy { from_logits: true })
            }
            (Loss::SparseCategoricalCrossentropy { from_logits: false }, Activation::Softmax) => {
                Some(Loss::SparseCategoricalCrossentropy { from_logits: true })
            }
            _ => None,
        }
    }

    /// The mean loss; with `grad`, also writes its gradient there (one
    /// value per prediction, in row-major order).
    fn compute(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
        mask: Option<ArrayViewD<'_, bool>>,
        grad: Option<&mut [f32]>,
    ) -> Result<f32> {
        if pred.is_empty() {
            return Err(Error::EmptyData { what: "predictions".into() });
        }
        // Row-major copies: the layouts of `pred` and `target` do not matter.
        let p: Vec<f32> = pred.iter().copied().collect();
        let t: Vec<f32> = target.iter().copied().collect();
        // A "row" is one prediction: the last axis of `pred`.
        let k = class_axis(pred.shape())?;
        let w = row_weights(pred.shape(), p.len() / k, mask)?;
        let sum = match *self {
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                check_sparse_shape(pred.shape(), target.shape())?;
                let labels = class_ids(&t, k)?;
                sparse_cce(&p, &labels, k, from_logits, &w, grad)
            }
            Loss::CategoricalCrossentropy { from_logits } => {
                check_same_shape(pred.shape(), target.shape())?;
                check_finite(&t)?;
                cce(&p, &t, k, from_logits, &w, grad)
            }
            Loss::BinaryCrossentropy { from_logits } => {
                check_same_shape(pred.shape(), target.shape())?;
                check_finite(&t)?;
                bce(&p, &t, k, from_logits, &w, grad)
            }
            Loss::MeanSquaredError => {
                check_same_shape(pred.shape(), target.shape())?;
                check_finite(&t)?;
                mse(&p, &t, k, &w, grad)
            }
        };
        Ok(sum as f32)
    }
}

/// The weight of each row's loss in the total: `1 / rows` (the mean), or
/// with a mask Keras's masked mean, `mask / (valid + 1e-7)`, which makes
/// the loss the mean over the unmasked rows.
fn row_weights(
    pred: &[usize],
    rows: usize,
    mask: Option<ArrayViewD<'_, bool>>,
) -> Result<Vec<f64>> {
    let Some(mask) = mask else {
        return Ok(vec![1.0 / rows as f64; rows]);
    };
    let lead = &pred[..pred.len() - 1];
    if mask.shape() != lead {
        return Err(Error::shape(
            "mask",
            format!("{lead:?} (the predictions without the last axis)"),
            mask.shape(),
        ));
    }
    let valid = mask.iter().filter(|&&m| m).count() as f64;
    let denom = valid + f64::from(EPSILON);
    Ok(mask.iter().map(|&m| if m { 1.0 / denom } else { 0.0 }).collect())
}

/// The length of the class axis (the last), which must exist and be
/// non-empty.
fn class_axis(shape: &[usize]) -> Result<usize> {
    match shape.last() {
        Some(&k) if k > 0 => Ok(k),
        _ => Err(Error::shape("predictions", "[batch, ..., classes >= 1]", shape)),
    }
}

/// Target and prediction shapes are equal, up to a trailing axis of 1.
fn check_same_shape(pred: &[usize], target: &[usize]) -> Result<()> {
    let squeezed = |long: &[usize], short: &[usize]| {
        long.len() == short.len() + 1 && long.last() == Some(&1) && long[..short.len()] == *short
    };
    if pred == target || squeezed(pred, target) || squeezed(target, pred) {
        Ok(())
    } else {
        Err(Error::shape("targets", format!("{pred:?} (the predictions' shape)"), target))
    }
}

/// Sparse targets have pred's shape without the class axis, or with a
/// class axis of 1.
fn check_sparse_shape(pred: &[usize], target: &[usize]) -> Result<()> {
    let lead = &pred[..pred.len() - 1];
    let with_one = target.len() == pred.len() && target.last() == Some(&1);
    if target == lead || (with_one && target[..lead.len()] == *lead) {
        Ok(())
    } else {
        Err(Error::shape("targets", format!("{lead:?} or {lead:?} + [1] (class ids)"), target))
    }
}

fn check_finite(t: &[f32]) -> Result<()> {
    match t.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(Error::config("target", format!("target value {v} is not finite"))),
        None => Ok(()),
    }
}

/// The class ids, checked to be integers in `0..k`.
fn class_ids(t: &[f32], k: usize) -> Result<Vec<usize>> {
    t.iter()
        .map(|&v| {
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && (v as usize) < k {
                Ok(v as usize)
            } else {
                Err(Error::config("target", format!("class index {v} is not in 0..{k}")))
            }
        })
        .collect()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(sum(exp(z)))`, max-subtracted.
fn log_sum_exp(z: &[f32]) -> f64 {
    let max = z.iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max);
    max + z.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}

/// Whether a probability lies inside the clipping range (and so has a
/// gradient).
fn unclipped(p: f64) -> bool {
    (EPSILON..=1.0 - EPSILON).contains(&(p as f32))
}

/// Clips a probability to `[1e-7, 1 - 1e-7]` in f32, as Keras does: the
/// upper bound is the f32 `1 - 1e-7` = 0.99999988, so a prediction of 1
/// for a target of 0 costs `-ln(1.1920929e-7)` = 15.942385, not 16.118.
/// Predictions come from f32, so the round trip through f32 is exact.
fn clip(p: f64) -> f64 {
    // `clamp` keeps a NaN prediction NaN (`max`/`min` would hide it).
    f64::from((p as f32).clamp(EPSILON, 1.0 - EPSILON))
}

/// The weighted sum of the row losses (a row's loss is the mean of its
/// `k` element losses, as Keras); its gradient goes to `grad`.
fn bce(
    p: &[f32],
    t: &[f32],
    k: usize,
    from_logits: bool,
    w: &[f64],
    grad: Option<&mut [f32]>,
) -> f64 {
    let mut sum = 0.0;
    let mut grad = grad;
    for (i, (&p, &y)) in p.iter().zip(t).enumerate() {
        let scale = w[i / k] / k as f64;
        let (p, y) = (p as f64, y as f64);
        let (loss, g) = if from_logits {
            (p.max(0.0) - p * y + (-p.abs()).exp().ln_1p(), sigmoid(p) - y)
        } else {
            let c = clip(p);
            let g = if unclipped(p) { (c - y) / (c * (1.0 - c)) } else { 0.0 };
            (-(y * c.ln() + (1.0 - y) * (1.0 - c).ln()), g)
        };
        sum += loss * scale;
        if let Some(grad) = grad.as_deref_mut() {
            grad[i] = (g * scale) as f32;
        }
    }
    sum
}

/// As [`bce`], for the squared error.
fn mse(p: &[f32], t: &[f32], k: usize, w: &[f64], grad: Option<&mut [f32]>) -> f64 {
    let mut sum = 0.0;
    let mut grad = grad;
    for (i, (&p, &y)) in p.iter().zip(t).enumerate() {
        let scale = w[i / k] / k as f64;
        let d = p as f64 - y as f64;
        sum += d * d * scale;
        if let Some(grad) = grad.as_deref_mut() {
            grad[i] = (2.0 * d * scale) as f32;
        }
    }
    sum
}

/// The weighted sum of the row losses; its gradient goes to `grad`.
fn cce(
    p: &[f32],
    t: &[f32],
    k: usize,
    from_logits: bool,
    w: &[f64],
    grad: Option<&mut [f32]>,
) -> f64 {
    let mut sum = 0.0;
    let mut grad = grad;
    let mut gq = vec![0.0f64; k];
    for (r, (pl, tl)) in p.chunks_exact(k).zip(t.chunks_exact(k)).enumerate() {
        let scale = w[r];
        let out = grad.as_deref_mut().map(|g| &mut g[r * k..(r + 1) * k]);
        if from_logits {
            let lse = log_sum_exp(pl);
            let ysum: f64 = tl.iter().map(|&y| y as f64).sum();
            sum -=
                scale * pl.iter().zip(tl).map(|(&z, &y)| y as f64 * (z as f64 - lse)).sum::<f64>();
            if let Some(out) = out {
                for ((o, &z), &y) in out.iter_mut().zip(pl).zip(tl) {
                    *o = (((z as f64 - lse).exp() * ysum - y as f64) * scale) as f32;
                }
            }
        } else {
            // Keras first rescales each row to sum to 1, then clips.
            let s: f64 = pl.iter().map(|&v| v as f64).sum();
            let mut dot = 0.0;
            for ((gq, &p), &y) in gq.iter_mut().zip(pl).zip(tl) {
                let q = p as f64 / s;
                sum -= scale * y as f64 * clip(q).ln();
                *gq = if unclipped(q) { -(y as f64) / q } else { 0.0 };
                dot += *gq * q;
            }
            if let Some(out) = out {
                // q = p / s, so dL/dp_i = (dL/dq_i - sum_j dL/dq_j q_j) / s.
                for (o, &gq) in out.iter_mut().zip(&gq) {
                    *o = ((gq - dot) / s * scale) as f32;
                }
            }
        }
    }
    sum
}

/// The weighted sum of the row losses; its gradient goes to `grad`.
fn sparse_cce(
    p: &[f32],
    labels: &[usize],
    k: usize,
    from_logits: bool,
    w: &[f64],
    grad: Option<&mut [f32]>,
) -> f64 {
    let mut sum = 0.0;
    let mut grad = grad;
    for (r, (pl, &c)) in p.chunks_exact(k).zip(labels).enumerate() {
        let scale = w[r];
        let out = grad.as_deref_mut().map(|g| &mut g[r * k..(r + 1) * k]);
        if from_logits {
            let lse = log_sum_exp(pl);
            sum += scale * (lse - pl[c] as f64);
            if let Some(out) = out {
                for (j, (o, &z)) in out.iter_mut().zip(pl).enumerate() {
                    let hot = if j == c { 1.0 } else { 0.0 };
                    *o = (((z as f64 - lse).exp() - hot) * scale) as f32;
                }
            }
        } else {
            // Keras clips, takes the log and applies a softmax cross-entropy
            // to it: -ln(clip(p_c) / sum(clip(p))).
            let s: f64 = pl.iter().map(|&v| clip(v as f64)).sum();
            sum += scale * (s.ln() - clip(pl[c] as f64).ln());
            if let Some(out) = out {
                for (j, (o, &p)) in out.iter_mut().zip(pl).enumerate() {
                    let p = p as f64;
                    let hot = if j == c { 1.0 } else { 0.0 };
                    let g = if unclipped(p) { 1.0 / s - hot / p } else { 0.0 };
                    *o = (g * scale) as f32;
                }
            }
        }
    }
    sum
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;

    /// Parses a Keras loss name (`"mse"` too) into the probability form of
    /// the loss.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an unknown name.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits: false },
            "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits: false },
            "sparse_categorical_crossentropy" => {
                Loss::SparseCategoricalCrossentropy { from_logits: false }
            }
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            _ => {
                return Err(Error::config(
                    "loss",
                    format!(
                        "unknown loss {s:?}; expected binary_crossentropy, \
                         categorical_crossentropy, sparse_categorical_crossentropy or \
                         mean_squared_error"
                    ),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2, arr3};

    const BCE: Loss = Loss::BinaryCrossentropy { from_logits: false };
    const BCE_LOGITS: Loss = Loss::BinaryCrossentropy { from_logits: true };
    const CCE: Loss = Loss::CategoricalCrossentropy { from_logits: false };
    const CCE_LOGITS: Loss = Loss::CategoricalCrossentropy { from_logits: true };
    const SPARSE: Loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    const SPARSE_LOGITS: Loss = Loss::SparseCategoricalCrossentropy { from_logits: true };

    fn value(loss: Loss, pred: ArrayD<f32>, target: ArrayD<f32>) -> f32 {
        loss.value(pred.view(), target.view()).unwrap()
    }

    fn assert_close(got: f32, want: f64, tol: f64) {
        assert!((got as f64 - want).abs() <= tol, "got {got}, want {want}");
    }

    // Reference values from Python's math module, e.g.
    //   python3 -c "import math; print(-math.log(0.8))"  # 0.2231435513142097
    #[test]
    fn binary_crossentropy_of_one_probability() {
        // -ln(0.8)
        let v = value(BCE, arr2(&[[0.8f32]]).into_dyn(), arr2(&[[1.0f32]]).into_dyn());
        assert_close(v, 0.223_143_55, 1e-7);
    }

    #[test]
    fn binary_crossentropy_matches_the_keras_docs_example() {
        // keras.losses.BinaryCrossentropy()([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) = 0.815
        // python: per = [(-log(.4) - log(.4)) / 2, (-log(.6) - log(.4)) / 2]; mean = 0.814924454847114
        let v = value(
            BCE,
            arr2(&[[0.6f32, 0.4], [0.4, 0.6]]).into_dyn(),
            arr2(&[[0.0f32, 1.0], [0.0, 0.0]]).into_dyn(),
        );
        assert_close(v, 0.814_924_45, 1e-6);
    }

    #[test]
    fn binary_crossentropy_from_logits_is_stable() {
        // ln(1 + e^2) = 2.1269280110429727
        let v = value(BCE_LOGITS, arr1(&[2.0f32]).into_dyn(), arr1(&[0.0f32]).into_dyn());
        assert_close(v, 2.126_928, 1e-6);
        // keras docs: BinaryCrossentropy(from_logits=True)([0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8])
        //   = 0.865; python: mean(max(z, 0) - z * y + log1p(exp(-abs(z)))) = 0.8654579497810972
        let v = value(
            BCE_LOGITS,
            arr1(&[-18.6f32, 0.51, 2.94, -12.8]).into_dyn(),
            arr1(&[0.0f32, 1.0, 0.0, 0.0]).into_dyn(),
        );
        assert_close(v, 0.865_457_95, 1e-6);
        // Huge logits: max(z, 0) - z y stays exact, no overflow.
        let (v, g) = BCE_LOGITS
            .forward_backward(
                arr1(&[1000.0f32, -1000.0]).into_dyn().view(),
                arr1(&[0.0f32, 0.0]).into_dyn().view(),
            )
            .unwrap();
        assert_close(v, 500.0, 1e-3);
        assert!(g.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn clipped_probabilities_give_the_keras_ceiling_and_no_gradient() {
        // p = 0, y = 1: -ln(1e-7) = 16.11809565095832
        let (v, g) = BCE
            .forward_backward(arr1(&[0.0f32]).into_dyn().view(), arr1(&[1.0f32]).into_dyn().view())
            .unwrap();
        assert_close(v, 16.118_095, 1e-5);
        assert_eq!(g[0], 0.0);
        let (v, g) = BCE
            .forward_backward(arr1(&[1.0f32]).into_dyn().view(), arr1(&[0.0f32]).into_dyn().view())
            .unwrap();
        // p = 1, y = 0: Keras clips in f32 to 1 - 1e-7 = 0.99999988079071,
        // so -ln(1 - 0.99999988079071) = -ln(1.1920929e-7) = 15.942385152878742
        // (keras.losses.binary_crossentropy([0.], [1.]) = 15.942385).
        assert_close(v, 15.942_385, 1e-5);
        assert_eq!(g[0], 0.0);
    }

    #[test]
    fn categorical_crossentropy_matches_the_keras_docs_example() {
        // keras.losses.CategoricalCrossentropy()([[0, 1, 0], [0, 0, 1]],
        //   [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]) = 1.177
        // python: (-log(0.95) - log(0.1)) / 2 = 1.176939193690798
        let pred = arr2(&[[0.05f32, 0.95, 0.0], [0.1, 0.8, 0.1]]).into_dyn();
        let v = value(CCE, pred.clone(), arr2(&[[0.0f32, 1.0, 0.0], [0.0, 0.0, 1.0]]).into_dyn());
        assert_close(v, 1.176_939_2, 1e-6);
        // The sparse form with ids [1, 2] is the same number.
        let v = value(SPARSE, pred.clone(), arr1(&[1.0f32, 2.0]).into_dyn());
        assert_close(v, 1.176_939_2, 1e-6);
        // ... also with a trailing axis of 1.
        let v = value(SPARSE, pred, arr2(&[[1.0f32], [2.0]]).into_dyn());
        assert_close(v, 1.176_939_2, 1e-6);
    }

    #[test]
    fn categorical_crossentropy_rescales_rows_that_do_not_sum_to_one() {
        // Keras divides by the row sum first: -ln(0.2 / 0.5) = 0.916290731874155
        let v = value(
            CCE,
            arr2(&[[0.2f32, 0.2, 0.1]]).into_dyn(),
            arr2(&[[1.0f32, 0.0, 0.0]]).into_dyn(),
        );
        assert_close(v, 0.916_290_7, 1e-6);
        // Sparse: clip, then log-softmax of the logs: -ln(0.5 / 1.5) = 1.0986122886681098
        let v = value(SPARSE, arr2(&[[0.5f32, 0.5, 0.5]]).into_dyn(), arr1(&[1.0f32]).into_dyn());
        assert_close(v, 1.098_612_3, 1e-6);
    }

    #[test]
    fn categorical_crossentropy_from_logits_uses_log_softmax() {
        // python: lse = log(e + e^2 + e^3); lse - 3 = 0.40760596444438013, lse - 1 = 2.40760596444438
        let z = arr2(&[[1.0f32, 2.0, 3.0]]).into_dyn();
        assert_close(
            value(CCE_LOGITS, z.clone(), arr2(&[[0.0f32, 0.0, 1.0]]).into_dyn()),
            0.407_605_96,
            1e-6,
        );
        assert_close(value(SPARSE_LOGITS, z, arr1(&[0.0f32]).into_dyn()), 2.407_605_96, 1e-6);
    }

    #[test]
    fn logits_gradient_is_softmax_minus_target() {
        let z = arr2(&[[0.0f32, 0.0]]).into_dyn();
        let (_, g) =
            SPARSE_LOGITS.forward_backward(z.view(), arr1(&[1.0f32]).into_dyn().view()).unwrap();
        assert_eq!(g, arr2(&[[0.5f32, -0.5]]).into_dyn());
        let (_, g) = BCE_LOGITS
            .forward_backward(z.view(), arr2(&[[1.0f32, 0.0]]).into_dyn().view())
            .unwrap();
        // (sigmoid(0) - y) / 2 elements
        assert_eq!(g, arr2(&[[-0.25f32, 0.25]]).into_dyn());
    }

    #[test]
    fn mean_squared_error_matches_the_keras_docs_example() {
        // keras.losses.MeanSquaredError()([[0, 1], [0, 0]], [[1, 1], [1, 0]]) = 0.5
        let (v, g) = Loss::MeanSquaredError
            .forward_backward(
                arr2(&[[1.0f32, 1.0], [1.0, 0.0]]).into_dyn().view(),
                arr2(&[[0.0f32, 1.0], [0.0, 0.0]]).into_dyn().view(),
            )
            .unwrap();
        assert_eq!(v, 0.5);
        // 2 (p - y) / 4
        assert_eq!(g, arr2(&[[0.5f32, 0.0], [0.5, 0.0]]).into_dyn());
    }

    #[test]
    fn rank_3_predictions_average_over_every_position() {
        // [batch = 1, steps = 2, classes = 2]: mean of ln 2 and ln 2
        let z = arr3(&[[[0.0f32, 0.0], [5.0, 5.0]]]).into_dyn();
        let v = value(SPARSE_LOGITS, z, arr2(&[[0.0f32, 1.0]]).into_dyn());
        assert_close(v, std::f64::consts::LN_2, 1e-6);
    }

    #[test]
    fn a_trailing_axis_of_one_is_squeezed() {
        let a = value(BCE, arr2(&[[0.8f32], [0.3]]).into_dyn(), arr1(&[1.0f32, 0.0]).into_dyn());
        let b = value(BCE, arr1(&[0.8f32, 0.3]).into_dyn(), arr2(&[[1.0f32], [0.0]]).into_dyn());
        assert_eq!(a, b);
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        let pred = arr2(&[[0.5f32, 0.5]]).into_dyn();
        for loss in [BCE, CCE, Loss::MeanSquaredError] {
            let err =
                loss.value(pred.view(), arr2(&[[1.0f32, 0.0, 0.0]]).into_dyn().view()).unwrap_err();
            assert!(matches!(err, Error::ShapeMismatch { .. }), "{loss}");
        }
        let err = SPARSE.value(pred.view(), arr1(&[1.0f32, 0.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }));
    }

    #[test]
    fn bad_class_ids_are_refused_by_value() {
        let pred = arr2(&[[0.5f32, 0.5]]).into_dyn();
        for bad in [2.0f32, -1.0, 0.5, f32::NAN] {
            let err = SPARSE_LOGITS.value(pred.view(), arr1(&[bad]).into_dyn().view()).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { field: "target", .. }), "{bad}");
            assert!(
                err.to_string().contains(&format!("class index {bad} is not in 0..2")),
                "{err}"
            );
        }
    }

    #[test]
    fn non_finite_targets_are_refused() {
        let err = BCE
            .value(arr1(&[0.5f32]).into_dyn().view(), arr1(&[f32::NAN]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "target", .. }));
        assert!(err.to_string().contains("NaN"));
    }

    #[test]
    fn empty_predictions_are_refused() {
        let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
        assert!(matches!(CCE.value(empty.view(), empty.view()), Err(Error::EmptyData { .. })));
    }

    #[test]
    fn logits_form_is_chosen_only_for_the_matching_activation() {
        assert_eq!(BCE.with_logits_for(Activation::Sigmoid), Some(BCE_LOGITS));
        assert_eq!(CCE.with_logits_for(Activation::Softmax), Some(CCE_LOGITS));
        assert_eq!(SPARSE.with_logits_for(Activation::Softmax), Some(SPARSE_LOGITS));
        assert_eq!(BCE.with_logits_for(Activation::Softmax), None);
        assert_eq!(CCE.with_logits_for(Activation::Sigmoid), None);
        assert_eq!(BCE_LOGITS.with_logits_for(Activation::Sigmoid), None);
        assert_eq!(Loss::MeanSquaredError.with_logits_for(Activation::Linear), None);
    }

    #[test]
    fn names_parse_and_serialise() {
        for loss in [BCE, CCE, SPARSE, Loss::MeanSquaredError] {
            assert_eq!(loss.name().parse::<Loss>().unwrap(), loss);
        }
        assert_eq!("mse".parse::<Loss>().unwrap(), Loss::MeanSquaredError);
        assert!(matches!("hinge".parse::<Loss>(), Err(Error::InvalidConfig { field: "loss", .. })));
        let json = serde_json::to_string(&SPARSE_LOGITS).unwrap();
        assert_eq!(json, r#"{"kind":"sparse_categorical_crossentropy","from_logits":true}"#);
        assert_eq!(serde_json::from_str::<Loss>(&json).unwrap(), SPARSE_LOGITS);
    }
}
