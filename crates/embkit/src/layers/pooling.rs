//! [`GlobalAveragePooling1D`]: the mean over the steps of a sequence.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis};

use crate::{Error, Result};

/// Averages over the steps axis (Keras `GlobalAveragePooling1D`, without
/// a mask).
///
/// # Shapes
///
/// - input: `[batch, steps, features]`, `steps >= 1`
/// - output: `[batch, features]`
///
/// # Examples
///
/// ```
/// use embkit::GlobalAveragePooling1D;
/// use ndarray::{arr2, arr3};
///
/// let mut pool = GlobalAveragePooling1D::new();
/// let x = arr3(&[[[1.0f32, 10.0], [3.0, 30.0]]]).into_dyn();
/// assert_eq!(pool.forward(x.view(), false)?, arr2(&[[2.0f32, 20.0]]).into_dyn());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct GlobalAveragePooling1D {
    input_shape: Option<Vec<usize>>,
    /// The mask of the last training forward, if it had one.
    mask: Option<Array2<bool>>,
}

impl GlobalAveragePooling1D {
    /// A pooling layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean over axis 1. With `training`, keeps the input's shape for
    /// [`backward`](Self::backward).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not of rank 3 or has no steps.
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        self.forward_masked(x, None, training)
    }

    /// The mean over the unmasked steps only, as Keras's
    /// `GlobalAveragePooling1D` with a mask (from `mask_zero`):
    /// `Σ mask·x / Σ mask` per sample and feature. A sample whose steps are
    /// all masked gives NaN (0 / 0), as in Keras.
    ///
    /// # Shapes
    ///
    /// - `x`: `[batch, steps, features]`
    /// - `mask`: `[batch, steps]`, true for the steps that count
    /// - returns: `[batch, features]`
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for an input that is not
    /// `[batch, steps >= 1, features]` or a mask of another shape.
    pub fn forward_masked(
        &mut self,
        x: ArrayViewD<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
        training: bool,
    ) -> Result<ArrayD<f32>> {
        let shape = x.shape();
        if shape.len() != 3 || shape[1] == 0 {
            return Err(Error::shape(
                "GlobalAveragePooling1D input",
                "[batch, steps >= 1, features]",
                shape,
            ));
        }
        if let Some(m) = &mask {
            if m.shape() != &shape[..2] {
                return Err(Error::shape(
                    "GlobalAveragePooling1D mask",
                    format!("[{}, {}]", shape[0], shape[1]),
                    m.shape(),
                ));
            }
        }
        if training {
            self.input_shape = Some(shape.to_vec());
            self.mask = mask.map(|m| m.to_owned());
        }
        let Some(mask) = mask else {
            return Ok(x.sum_axis(Axis(1)) / shape[1] as f32);
        };
        let mut out = ArrayD::zeros(ndarray::IxDyn(&[shape[0], shape[2]]));
        for (b, (sample, keep)) in x.outer_iter().zip(mask.outer_iter()).enumerate() {
            let valid = keep.iter().filter(|&&k| k).count() as f32;
            let mut row = out.index_axis_mut(Axis(0), b);
            for (step, _) in sample.outer_iter().zip(keep).filter(|(_, &k)| k) {
                row += &step;
            }
            row /= valid;
        }
        Ok(out)
    }

    /// Spreads the gradient evenly over the steps: every step of a sample
    /// gets `grad_out / steps`.
    ///
    /// # Shapes
    ///
    /// - `grad_out`: `[batch, features]`
    /// - returns: `[batch, steps, features]`
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] without a training forward;
    /// [`Error::ShapeMismatch`] if `grad_out` does not have the output's
    /// shape.
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let shape = self.input_shape.as_ref().ok_or_else(|| {
            Error::InvalidState("GlobalAveragePooling1D::backward before a training forward".into())
        })?;
        let (batch, steps, features) = (shape[0], shape[1], shape[2]);
        if grad_out.shape() != [batch, features] {
            return Err(Error::shape(
                "GlobalAveragePooling1D gradient",
                format!("[{batch}, {features}]"),
                grad_out.shape(),
            ));
        }
        let Some(mask) = &self.mask else {
            let g = &grad_out / steps as f32;
            return Ok(g
                .insert_axis(Axis(1))
                .broadcast(shape.as_slice())
                .expect("[batch, 1, features] broadcasts to [batch, steps, features]")
                .to_owned());
        };
        // Each unmasked step gets grad / valid; masked steps get nothing.
        let mut out = ArrayD::zeros(ndarray::IxDyn(shape));
        for (b, keep) in mask.outer_iter().enumerate() {
            let valid = keep.iter().filter(|&&k| k).count() as f32;
            let g = grad_out.index_axis(Axis(0), b);
            for (s, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
                out.index_axis_mut(Axis(0), b).index_axis_mut(Axis(0), s).assign(&(&g / valid));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn forward_averages_the_steps() {
        let mut p = GlobalAveragePooling1D::new();
        let x =
            ArrayD::from_shape_fn(IxDyn(&[2, 4, 3]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f32);
        let y = p.forward(x.view(), false).unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        // mean of 10 * (0, 1, 2, 3) = 15
        assert_eq!(y[[0, 0]], 15.0);
        assert_eq!(y[[1, 2]], 117.0);
    }

    #[test]
    fn backward_spreads_the_gradient_over_the_steps() {
        let mut p = GlobalAveragePooling1D::new();
        p.forward(ArrayD::zeros(IxDyn(&[1, 4, 2])).view(), true).unwrap();
        let g = ndarray::arr2(&[[4.0f32, 8.0]]).into_dyn();
        let gi = p.backward(g.view()).unwrap();
        assert_eq!(gi.shape(), &[1, 4, 2]);
        assert!(gi.index_axis(Axis(2), 0).iter().all(|&v| v == 1.0));
        assert!(gi.index_axis(Axis(2), 1).iter().all(|&v| v == 2.0));
    }

    #[test]
    fn masked_steps_are_left_out_of_the_mean_and_the_gradient() {
        // Keras: sum(x * mask) / sum(mask) over the steps.
        let mut p = GlobalAveragePooling1D::new();
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 1]), |i| (1 + i[0] * 3 + i[1]) as f32);
        let mask = ndarray::arr2(&[[true, false, true], [false, false, false]]);
        let y = p.forward_masked(x.view(), Some(mask.view()), true).unwrap();
        assert_eq!(y[[0, 0]], 2.0); // (1 + 3) / 2
        assert!(y[[1, 0]].is_nan()); // 0 / 0, as Keras
        let g = p.backward(ndarray::arr2(&[[1.0f32], [1.0]]).into_dyn().view()).unwrap();
        assert_eq!(g.iter().copied().collect::<Vec<_>>(), vec![0.5, 0.0, 0.5, 0.0, 0.0, 0.0]);
        let bad = ndarray::Array2::from_elem((2, 2), true);
        assert!(p.forward_masked(x.view(), Some(bad.view()), false).is_err());
    }

    #[test]
    fn other_ranks_and_empty_sequences_are_refused() {
        let mut p = GlobalAveragePooling1D::new();
        for shape in [&[2, 3][..], &[2, 3, 4, 5], &[2, 0, 4]] {
            let x = ArrayD::<f32>::zeros(IxDyn(shape));
            assert!(
                matches!(p.forward(x.view(), true), Err(Error::ShapeMismatch { .. })),
                "{shape:?}"
            );
        }
    }

    #[test]
    fn backward_needs_a_training_forward_and_the_right_shape() {
        let mut p = GlobalAveragePooling1D::new();
        let g = ArrayD::<f32>::zeros(IxDyn(&[1, 2]));
        assert!(matches!(p.backward(g.view()), Err(Error::InvalidState(_))));
        p.forward(ArrayD::zeros(IxDyn(&[1, 3, 2])).view(), true).unwrap();
        let bad = ArrayD::<f32>::zeros(IxDyn(&[1, 3]));
        assert!(matches!(p.backward(bad.view()), Err(Error::ShapeMismatch { .. })));
    }
}
