//! [`Flatten`]: `[batch, d1, d2, ...]` to `[batch, d1 * d2 * ...]`.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::{Error, Result};

/// Flattens every sample into one vector, keeping the batch axis (Keras
/// `Flatten`).
///
/// # Shapes
///
/// - input: `[batch, d1, d2, ...]`
/// - output: `[batch, d1 * d2 * ...]`
///
/// # Examples
///
/// ```
/// use embkit::Flatten;
/// use ndarray::{ArrayD, IxDyn};
///
/// let mut flat = Flatten::new();
/// let x = ArrayD::<f32>::zeros(IxDyn(&[2, 50, 64]));
/// assert_eq!(flat.forward(x.view(), false)?.shape(), &[2, 3200]);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    input_shape: Option<Vec<usize>>,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reshapes `x` to `[batch, rest]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for an input without a batch axis.
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        let shape = x.shape();
        let Some((&batch, rest)) = shape.split_first() else {
            return Err(Error::shape("Flatten input", "[batch, ...]", shape));
        };
        let features: usize = rest.iter().product();
        if training {
            self.input_shape = Some(shape.to_vec());
        }
        let flat = x.as_standard_layout().into_owned();
        Ok(flat.into_shape_with_order(IxDyn(&[batch, features])).expect("same element count"))
    }

    /// [`forward`](Self::forward) of an owned array: a standard-layout
    /// input is reshaped in place, without a copy.
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward).
    pub fn forward_owned(&mut self, x: ArrayD<f32>, training: bool) -> Result<ArrayD<f32>> {
        if !x.is_standard_layout() {
            return self.forward(x.view(), training);
        }
        let shape = x.shape().to_vec();
        let Some((&batch, rest)) = shape.split_first() else {
            return Err(Error::shape("Flatten input", "[batch, ...]", &shape));
        };
        let features: usize = rest.iter().product();
        let out = x.into_shape_with_order(IxDyn(&[batch, features])).expect("same element count");
        if training {
            self.input_shape = Some(shape);
        }
        Ok(out)
    }

    /// Reshapes the gradient back to the input's shape.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] without a training forward;
    /// [`Error::ShapeMismatch`] if `grad_out` has the wrong size.
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let shape = self.input_shape.as_ref().ok_or_else(|| {
            Error::InvalidState("Flatten::backward before a training forward".into())
        })?;
        if grad_out.len() != shape.iter().product::<usize>() || grad_out.ndim() != 2 {
            return Err(Error::shape(
                "Flatten gradient",
                format!("{shape:?} flattened"),
                grad_out.shape(),
            ));
        }
        let g = grad_out.as_standard_layout().into_owned();
        Ok(g.into_shape_with_order(IxDyn(shape)).expect("same element count"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_restores_the_input_shape() {
        let mut f = Flatten::new();
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 12 + i[1] * 4 + i[2]) as f32);
        let y = f.forward(x.view(), true).unwrap();
        assert_eq!(y.shape(), &[2, 12]);
        assert_eq!(y[[1, 5]], 17.0);
        let g = f.backward(y.view()).unwrap();
        assert_eq!(g, x);
    }

    #[test]
    fn backward_needs_a_training_forward() {
        let mut f = Flatten::new();
        let g = ArrayD::<f32>::zeros(IxDyn(&[1, 2]));
        assert!(matches!(f.backward(g.view()), Err(Error::InvalidState(_))));
    }

    #[test]
    fn forward_owned_reshapes_in_place_like_forward() {
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 12 + i[1] * 4 + i[2]) as f32);
        let mut a = Flatten::new();
        let mut b = Flatten::new();
        let want = a.forward(x.view(), true).unwrap();
        let ptr = x.as_ptr();
        let got = b.forward_owned(x, true).unwrap();
        assert_eq!(got, want);
        assert_eq!(got.as_ptr(), ptr, "no copy");
        let g = ArrayD::from_shape_fn(IxDyn(&[2, 12]), |i| i[1] as f32);
        assert_eq!(b.backward(g.view()).unwrap(), a.backward(g.view()).unwrap());
        // A transposed input is copied, as by `forward`.
        let t = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |i| i[0] as f32).reversed_axes();
        assert_eq!(b.forward_owned(t.clone(), false).unwrap(), a.forward(t.view(), false).unwrap());
    }
}
