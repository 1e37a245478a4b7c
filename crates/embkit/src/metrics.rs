//! Metrics: numbers reported during training that are not optimised,
//! here the accuracies of Keras and the mean squared and absolute errors.
//!
//! A metric returns a sum and a count per batch
//! ([`Metric::sum_and_count`]), so a trainer can average over an epoch
//! exactly, whatever the batch sizes.

use std::fmt;
use std::str::FromStr;

use ndarray::ArrayViewD;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// An accuracy or error metric (Keras `keras.metrics`).
///
/// - `BinaryAccuracy`: a prediction `p` counts as class 1 when
///   `p > threshold`; each element is one prediction, correct when that
///   class equals the target.
/// - `CategoricalAccuracy`: correct when the argmax over the last axis of
///   the prediction equals the argmax of the one-hot target.
/// - `SparseCategoricalAccuracy`: correct when the argmax equals the class
///   id in the target (stored as `f32`).
/// - `Accuracy` picks one of those from the shapes, as Keras's string
///   `"accuracy"` does: binary (threshold 0.5) if the prediction's last
///   axis has length 1 (or the prediction has rank 1), categorical if the
///   target has the prediction's shape, sparse otherwise.
///
/// Argmax ties go to the first index.
///
/// # Examples
///
/// ```
/// use embkit::Metric;
/// use ndarray::{arr1, arr2};
///
/// let pred = arr2(&[[0.1f32, 0.7, 0.2], [0.5, 0.4, 0.1]]).into_dyn();
/// let ids = arr1(&[1.0f32, 2.0]).into_dyn();
///
/// let acc: Metric = "accuracy".parse()?;
/// assert_eq!(acc.sum_and_count(pred.view(), ids.view())?, (1.0, 2));
///
/// let probs = arr2(&[[0.9f32], [0.2], [0.6]]).into_dyn();
/// let labels = arr2(&[[1.0f32], [1.0], [0.0]]).into_dyn();
/// assert_eq!(acc.sum_and_count(probs.view(), labels.view())?, (1.0, 3));
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Metric {
    /// Binary, categorical or sparse categorical accuracy, chosen from the
    /// shapes.
    Accuracy,
    /// Thresholded binary accuracy.
    BinaryAccuracy {
        /// A prediction above this counts as class 1. Keras's default is 0.5.
        threshold: f32,
    },
    /// Argmax accuracy against one-hot targets.
    CategoricalAccuracy,
    /// Argmax accuracy against class ids.
    SparseCategoricalAccuracy,
    /// Mean squared error, `mean((pred - target)²)`, over every element
    /// (Keras `mean_squared_error`, `mse`). Its square root is the RMSE.
    MeanSquaredError,
    /// Mean absolute error, `mean(|pred - target|)`, over every element
    /// (Keras `mean_absolute_error`, `mae`).
    MeanAbsoluteError,
}

impl Metric {
    /// The Keras name (`"accuracy"`, `"binary_accuracy"`,
    /// `"categorical_accuracy"`, `"sparse_categorical_accuracy"`).
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy { .. } => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::MeanSquaredError => "mean_squared_error",
            Metric::MeanAbsoluteError => "mean_absolute_error",
        }
    }

    /// The number of correct predictions in a batch and the number of
    /// predictions. Their ratio is the accuracy; summing both over the
    /// batches of an epoch gives the epoch's accuracy.
    ///
    /// # Shapes
    ///
    /// - binary: `pred` `[batch, ...]`, `target` the same shape (a
    ///   trailing axis of 1 may be missing on either side); one prediction
    ///   per element
    /// - categorical: `pred` and `target` `[batch, ..., k]`; one prediction
    ///   per position before the last axis
    /// - sparse: `pred` `[batch, ..., k]`, `target` `[batch, ...]` or
    ///   `[batch, ..., 1]`
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the shapes do not fit;
    /// [`Error::InvalidConfig`] with field `"target"` for a sparse target
    /// that is not an integer class id in `0..k`.
    pub fn sum_and_count(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
    ) -> Result<(f64, usize)> {
        self.sum_and_count_masked(pred, target, None)
    }

    /// [`sum_and_count`](Self::sum_and_count) for sequence outputs with a
    /// mask (Keras's `mask_zero`): only the predictions whose mask is true
    /// count, as Keras passes the mask as sample weights.
    ///
    /// # Shapes
    ///
    /// - `pred`: `[batch, steps, k]`
    /// - `mask`: `[batch, steps]`, `pred`'s shape without the last axis
    ///
    /// # Errors
    ///
    /// As [`sum_and_count`](Self::sum_and_count), and
    /// [`Error::ShapeMismatch`] for a mask of another shape.
    pub fn sum_and_count_masked(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
        mask: Option<ArrayViewD<'_, bool>>,
    ) -> Result<(f64, usize)> {
        if matches!(self, Metric::MeanSquaredError | Metric::MeanAbsoluteError) {
            return self.error_sum_and_count(pred, target, mask);
        }
        // One verdict per unit; `per_row` units share a row of the mask.
        let (correct, per_row) = match self.resolve(pred.shape(), target.shape()) {
            Metric::BinaryAccuracy { threshold } => {
                let per_row = if pred.ndim() <= 1 { 1 } else { pred.shape()[pred.ndim() - 1] };
                (binary(pred.view(), target, threshold)?, per_row.max(1))
            }
            Metric::CategoricalAccuracy => (categorical(pred.view(), target)?, 1),
            _ => (sparse_categorical(pred.view(), target)?, 1),
        };
        let Some(mask) = mask else {
            return Ok((correct.iter().filter(|&&c| c).count() as f64, correct.len()));
        };
        let lead = &pred.shape()[..pred.ndim().saturating_sub(1)];
        if mask.shape() != lead {
            return Err(Error::shape(
                "mask",
                format!("{lead:?} (the predictions without the last axis)"),
                mask.shape(),
            ));
        }
        let mask: Vec<bool> = mask.iter().copied().collect();
        let (mut sum, mut count) = (0.0, 0);
        for (i, &c) in correct.iter().enumerate() {
            if mask[i / per_row] {
                count += 1;
                sum += f64::from(u8::from(c));
            }
        }
        Ok((sum, count))
    }

    /// The summed squared or absolute errors and their count, for the
    /// regression metrics. `pred` and `target` have the same number of
    /// elements and the same batch axis (a trailing axis of 1 may be
    /// missing on either side).
    fn error_sum_and_count(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
        mask: Option<ArrayViewD<'_, bool>>,
    ) -> Result<(f64, usize)> {
        if pred.len() != target.len() || pred.shape().first() != target.shape().first() {
            return Err(Error::shape(
                "metric targets",
                format!("{:?} (one target per prediction)", pred.shape()),
                target.shape(),
            ));
        }
        let squared = matches!(self, Metric::MeanSquaredError);
        let per_row = match &mask {
            Some(mask) if !mask.is_empty() && pred.len() % mask.len() == 0 => {
                pred.len() / mask.len()
            }
            Some(mask) => {
                return Err(Error::shape(
                    "mask",
                    format!("a divisor of the {} predictions", pred.len()),
                    mask.shape(),
                ))
            }
            None => 1,
        };
        let mask: Option<Vec<bool>> = mask.map(|m| m.iter().copied().collect());
        let (mut sum, mut count) = (0.0, 0);
        for (k, (&p, &t)) in pred.iter().zip(target.iter()).enumerate() {
            if mask.as_ref().is_some_and(|m| !m[k / per_row]) {
                continue;
            }
            let e = f64::from(p) - f64::from(t);
            sum += if squared { e * e } else { e.abs() };
            count += 1;
        }
        Ok((sum, count))
    }

    /// The concrete metric `Accuracy` stands for with these shapes; other
    /// metrics are returned unchanged.
    pub fn resolve(&self, pred: &[usize], target: &[usize]) -> Metric {
        match self {
            Metric::Accuracy if pred.len() <= 1 || pred.last() == Some(&1) => {
                Metric::BinaryAccuracy { threshold: 0.5 }
            }
            Metric::Accuracy if pred == target => Metric::CategoricalAccuracy,
            Metric::Accuracy => Metric::SparseCategoricalAccuracy,
            other => *other,
        }
    }
}

/// Whether each prediction is right, one verdict per element.
fn binary(
    pred: ArrayViewD<'_, f32>,
    target: ArrayViewD<'_, f32>,
    threshold: f32,
) -> Result<Vec<bool>> {
    let (p, t) = (pred.shape(), target.shape());
    let squeezed = |long: &[usize], short: &[usize]| {
        long.len() == short.len() + 1 && long.last() == Some(&1) && long[..short.len()] == *short
    };
    if !(p == t || squeezed(p, t) || squeezed(t, p)) {
        return Err(Error::shape("targets", format!("{p:?} (the predictions' shape)"), t));
    }
    // Both iterate in row-major order, which lines them up even when one
    // has the extra trailing axis of 1.
    Ok(pred
        .iter()
        .zip(target.iter())
        .map(|(&p, &y)| (if p > threshold { 1.0 } else { 0.0 }) == y)
        .collect())
}

/// Whether each row's arg-max is the target's, one verdict per row.
fn categorical(pred: ArrayViewD<'_, f32>, target: ArrayViewD<'_, f32>) -> Result<Vec<bool>> {
    let k = class_axis(pred.shape())?;
    if pred.shape() != target.shape() {
        return Err(Error::shape(
            "targets",
            format!("{:?} (the predictions' shape)", pred.shape()),
            target.shape(),
        ));
    }
    let (p, t): (Vec<f32>, Vec<f32>) =
        (pred.iter().copied().collect(), target.iter().copied().collect());
    Ok(p.chunks_exact(k).zip(t.chunks_exact(k)).map(|(p, t)| argmax(p) == argmax(t)).collect())
}

/// Whether each row's arg-max is its class id, one verdict per row.
fn sparse_categorical(pred: ArrayViewD<'_, f32>, target: ArrayViewD<'_, f32>) -> Result<Vec<bool>> {
    let k = class_axis(pred.shape())?;
    let (p_shape, t_shape) = (pred.shape(), target.shape());
    let lead = &p_shape[..p_shape.len() - 1];
    let with_one = t_shape.len() == p_shape.len()
        && t_shape.last() == Some(&1)
        && t_shape[..lead.len()] == *lead;
    if !(t_shape == lead || with_one) {
        return Err(Error::shape(
            "targets",
            format!("{lead:?} or {lead:?} + [1] (class ids)"),
            t_shape,
        ));
    }
    let p: Vec<f32> = pred.iter().copied().collect();
    p.chunks_exact(k)
        .zip(target.iter())
        .map(|(row, &id)| {
            if !(id.is_finite() && id >= 0.0 && id.fract() == 0.0 && (id as usize) < k) {
                return Err(Error::config("target", format!("class index {id} is not in 0..{k}")));
            }
            Ok(argmax(row) == id as usize)
        })
        .collect()
}

fn class_axis(shape: &[usize]) -> Result<usize> {
    match shape.last() {
        Some(&k) if k > 0 => Ok(k),
        _ => Err(Error::shape("predictions", "[batch, ..., classes >= 1]", shape)),
    }
}

/// The index of the largest value; ties (and NaNs) go to the first index.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = i;
        }
    }
    best
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = Error;

    /// Parses a Keras metric name; `"acc"` is `"accuracy"` and
    /// `"binary_accuracy"` has Keras's threshold of 0.5.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an unknown name.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "accuracy" | "acc" => Metric::Accuracy,
            "binary_accuracy" => Metric::BinaryAccuracy { threshold: 0.5 },
            "categorical_accuracy" => Metric::CategoricalAccuracy,
            "sparse_categorical_accuracy" => Metric::SparseCategoricalAccuracy,
            "mean_squared_error" | "mse" => Metric::MeanSquaredError,
            "mean_absolute_error" | "mae" => Metric::MeanAbsoluteError,
            _ => {
                return Err(Error::config(
                    "metric",
                    format!(
                        "unknown metric {s:?}; expected accuracy, binary_accuracy, \
                         categorical_accuracy, sparse_categorical_accuracy, \
                         mean_squared_error or mean_absolute_error"
                    ),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2, arr3, ArrayD};

    fn run(m: Metric, pred: ArrayD<f32>, target: ArrayD<f32>) -> (f64, usize) {
        m.sum_and_count(pred.view(), target.view()).unwrap()
    }

    #[test]
    fn binary_accuracy_thresholds_strictly_above() {
        // keras.metrics.binary_accuracy([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]) -> 3 of 4
        let pred = arr2(&[[0.98f32], [1.0], [0.0], [0.6]]).into_dyn();
        let target = arr2(&[[1.0f32], [1.0], [0.0], [0.0]]).into_dyn();
        assert_eq!(run(Metric::BinaryAccuracy { threshold: 0.5 }, pred, target), (3.0, 4));
        // 0.5 is not above 0.5.
        let (c, n) = run(
            Metric::BinaryAccuracy { threshold: 0.5 },
            arr1(&[0.5f32]).into_dyn(),
            arr1(&[0.0f32]).into_dyn(),
        );
        assert_eq!((c, n), (1.0, 1));
        let (c, _) = run(
            Metric::BinaryAccuracy { threshold: 0.9 },
            arr1(&[0.8f32]).into_dyn(),
            arr1(&[1.0f32]).into_dyn(),
        );
        assert_eq!(c, 0.0);
    }

    #[test]
    fn binary_accuracy_counts_every_element() {
        let pred = arr2(&[[0.9f32, 0.1], [0.8, 0.7]]).into_dyn();
        let target = arr2(&[[1.0f32, 0.0], [0.0, 1.0]]).into_dyn();
        assert_eq!(run(Metric::BinaryAccuracy { threshold: 0.5 }, pred, target), (3.0, 4));
    }

    #[test]
    fn categorical_accuracy_compares_argmaxes() {
        // keras.metrics.categorical_accuracy([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        //   -> [0, 1]
        let pred = arr2(&[[0.1f32, 0.9, 0.8], [0.05, 0.95, 0.0]]).into_dyn();
        let target = arr2(&[[0.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]]).into_dyn();
        assert_eq!(run(Metric::CategoricalAccuracy, pred, target), (1.0, 2));
    }

    #[test]
    fn sparse_categorical_accuracy_compares_with_ids() {
        // keras.metrics.sparse_categorical_accuracy([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
        //   -> [0, 1]
        let pred = arr2(&[[0.1f32, 0.6, 0.3], [0.05, 0.95, 0.0]]).into_dyn();
        assert_eq!(
            run(
                Metric::SparseCategoricalAccuracy,
                pred.clone(),
                arr2(&[[2.0f32], [1.0]]).into_dyn()
            ),
            (1.0, 2)
        );
        assert_eq!(
            run(Metric::SparseCategoricalAccuracy, pred, arr1(&[2.0f32, 1.0]).into_dyn()),
            (1.0, 2)
        );
    }

    #[test]
    fn sparse_accuracy_counts_every_step_of_a_sequence() {
        let pred = arr3(&[[[0.9f32, 0.1], [0.2, 0.8], [0.6, 0.4]]]).into_dyn();
        let ids = arr2(&[[0.0f32, 1.0, 1.0]]).into_dyn();
        assert_eq!(run(Metric::Accuracy, pred, ids), (2.0, 3));
    }

    #[test]
    fn argmax_ties_go_to_the_first_index() {
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), 1);
        let pred = arr2(&[[0.5f32, 0.5]]).into_dyn();
        assert_eq!(
            run(Metric::SparseCategoricalAccuracy, pred.clone(), arr1(&[0.0f32]).into_dyn()),
            (1.0, 1)
        );
        assert_eq!(
            run(Metric::SparseCategoricalAccuracy, pred, arr1(&[1.0f32]).into_dyn()),
            (0.0, 1)
        );
    }

    #[test]
    fn accuracy_resolves_from_the_shapes() {
        let acc = Metric::Accuracy;
        assert_eq!(acc.resolve(&[4, 1], &[4, 1]), Metric::BinaryAccuracy { threshold: 0.5 });
        assert_eq!(acc.resolve(&[4, 1], &[4]), Metric::BinaryAccuracy { threshold: 0.5 });
        assert_eq!(acc.resolve(&[4], &[4]), Metric::BinaryAccuracy { threshold: 0.5 });
        assert_eq!(acc.resolve(&[4, 3], &[4, 3]), Metric::CategoricalAccuracy);
        assert_eq!(acc.resolve(&[4, 3], &[4]), Metric::SparseCategoricalAccuracy);
        assert_eq!(acc.resolve(&[4, 3], &[4, 1]), Metric::SparseCategoricalAccuracy);
        assert_eq!(
            Metric::CategoricalAccuracy.resolve(&[4, 1], &[4, 1]),
            Metric::CategoricalAccuracy
        );
    }

    #[test]
    fn bad_ids_and_shapes_are_refused() {
        let pred = arr2(&[[0.5f32, 0.5]]).into_dyn();
        let err = Metric::SparseCategoricalAccuracy
            .sum_and_count(pred.view(), arr1(&[3.0f32]).into_dyn().view())
            .unwrap_err();
        assert!(err.to_string().contains("class index 3 is not in 0..2"), "{err}");
        let err = Metric::CategoricalAccuracy
            .sum_and_count(pred.view(), arr2(&[[1.0f32, 0.0, 0.0]]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }));
        let err = Metric::BinaryAccuracy { threshold: 0.5 }
            .sum_and_count(pred.view(), arr1(&[1.0f32, 0.0]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }));
    }

    #[test]
    fn an_empty_batch_counts_nothing() {
        let pred = ArrayD::<f32>::zeros(ndarray::IxDyn(&[0, 3]));
        let ids = ArrayD::<f32>::zeros(ndarray::IxDyn(&[0]));
        assert_eq!(run(Metric::Accuracy, pred, ids), (0.0, 0));
    }

    #[test]
    fn names_parse_display_and_serialise() {
        for m in [
            Metric::Accuracy,
            Metric::BinaryAccuracy { threshold: 0.5 },
            Metric::CategoricalAccuracy,
            Metric::SparseCategoricalAccuracy,
        ] {
            assert_eq!(m.to_string().parse::<Metric>().unwrap(), m);
        }
        assert_eq!("acc".parse::<Metric>().unwrap(), Metric::Accuracy);
        assert!(matches!(
            "auc".parse::<Metric>(),
            Err(Error::InvalidConfig { field: "metric", .. })
        ));
        let json = serde_json::to_string(&Metric::BinaryAccuracy { threshold: 0.7 }).unwrap();
        assert_eq!(json, r#"{"kind":"binary_accuracy","threshold":0.7}"#);
    }
}
