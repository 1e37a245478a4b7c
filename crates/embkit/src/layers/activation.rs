//! [`Activation`] functions and the [`ActivationLayer`] that applies one
//! on its own.
//!
//! Every function is element-wise except softmax, which normalises over
//! the last axis. The backward passes are written in terms of the
//! activation's *output* `y`, which is what a layer keeps after a training
//! forward (for ReLU, `y > 0` exactly where `z > 0`).

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayViewD, Axis, Zip};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A function applied to a layer's output (Keras `activation=`).
///
/// The serde and [`FromStr`]/[`Display`](fmt::Display) names are Keras's:
/// `"linear"`, `"sigmoid"`, `"relu"`, `"tanh"`, `"softmax"`.
///
/// # Examples
///
/// ```
/// use embkit::Activation;
/// use ndarray::{arr1, arr2};
///
/// let softmax: Activation = "softmax".parse()?;
/// let y = softmax.apply(arr2(&[[1.0f32, 1.0]]).into_dyn().view());
/// assert_eq!(y, arr2(&[[0.5f32, 0.5]]).into_dyn());
///
/// // Stable for large inputs: no overflow to NaN.
/// let s = Activation::Sigmoid.apply(arr1(&[-1000.0f32, 1000.0]).into_dyn().view());
/// assert_eq!(s, arr1(&[0.0f32, 1.0]).into_dyn());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Activation {
    /// The identity, `y = z`.
    #[default]
    Linear,
    /// The logistic function, `y = 1 / (1 + exp(-z))`.
    Sigmoid,
    /// The rectifier, `y = max(z, 0)`.
    Relu,
    /// The hyperbolic tangent.
    Tanh,
    /// `y = exp(z) / sum(exp(z))` over the last axis, computed as
    /// `exp(z - max(z))` so large logits do not overflow.
    Softmax,
}

impl Activation {
    /// All activations, in declaration order.
    pub const ALL: [Activation; 5] = [
        Activation::Linear,
        Activation::Sigmoid,
        Activation::Relu,
        Activation::Tanh,
        Activation::Softmax,
    ];

    /// The Keras name of the function (`"relu"` ...).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }

    /// Applies the function to `z`.
    ///
    /// # Shapes
    ///
    /// - `z`: any shape; softmax normalises over the last axis (a 0-d
    ///   array counts as one lane of length 1)
    /// - returns: the shape of `z`
    pub fn apply(&self, z: ArrayViewD<'_, f32>) -> ArrayD<f32> {
        match self {
            Activation::Linear => z.to_owned(),
            Activation::Sigmoid => z.mapv(sigmoid),
            Activation::Relu => z.mapv(|v| if v > 0.0 { v } else { 0.0 }),
            Activation::Tanh => z.mapv(f32::tanh),
            Activation::Softmax => softmax(z),
        }
    }

    /// The gradient with respect to the input `z`, given the output
    /// `y = self.apply(z)` and the gradient `grad_y` with respect to `y`.
    ///
    /// Element-wise: linear `g`, sigmoid `g * y * (1 - y)`, relu
    /// `g * [y > 0]`, tanh `g * (1 - y²)`. Softmax, over the last axis:
    /// `y * (g - sum(g * y))`.
    ///
    /// # Shapes
    ///
    /// - `y`, `grad_y`: the same shape
    /// - returns: that shape
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `grad_y` does not have the shape of `y`.
    pub fn backward(
        &self,
        y: ArrayViewD<'_, f32>,
        grad_y: ArrayViewD<'_, f32>,
    ) -> Result<ArrayD<f32>> {
        if y.shape() != grad_y.shape() {
            return Err(Error::shape(
                "activation gradient",
                format!("{:?} (the activation's output)", y.shape()),
                grad_y.shape(),
            ));
        }
        let mut g = grad_y.to_owned();
        match self {
            Activation::Linear => {}
            Activation::Sigmoid => Zip::from(&mut g).and(&y).for_each(|g, &y| *g *= y * (1.0 - y)),
            Activation::Relu => Zip::from(&mut g).and(&y).for_each(|g, &y| {
                if y <= 0.0 {
                    *g = 0.0;
                }
            }),
            Activation::Tanh => Zip::from(&mut g).and(&y).for_each(|g, &y| *g *= 1.0 - y * y),
            Activation::Softmax => {
                if g.ndim() == 0 {
                    // One lane of length 1: y = 1 and the gradient is 0.
                    g.fill(0.0);
                } else {
                    let axis = Axis(g.ndim() - 1);
                    Zip::from(g.lanes_mut(axis)).and(y.lanes(axis)).for_each(|mut g, y| {
                        let dot: f32 = g.iter().zip(y).map(|(g, y)| g * y).sum();
                        g.zip_mut_with(&y, |g, &y| *g = y * (*g - dot));
                    });
                }
            }
        }
        Ok(g)
    }
}

/// The logistic function, without overflow for any `z`.
fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        // exp(z) underflows to 0 for very negative z instead of overflowing.
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Softmax over the last axis, max-subtracted.
fn softmax(z: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    if z.ndim() == 0 {
        return softmax(z.insert_axis(Axis(0))).remove_axis(Axis(0));
    }
    let axis = Axis(z.ndim() - 1);
    let mut y = z.to_owned();
    for mut lane in y.lanes_mut(axis) {
        let max = lane.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        lane.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = lane.sum();
        lane.mapv_inplace(|v| v / sum);
    }
    y
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses a Keras activation name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a name that is not one of the five.
    fn from_str(s: &str) -> Result<Self> {
        Activation::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            Error::config(
                "activation",
                format!(
                    "unknown activation {s:?}; expected linear, sigmoid, relu, tanh or softmax"
                ),
            )
        })
    }
}

/// An [`Activation`] as a layer of its own (Keras `Activation`).
///
/// # Shapes
///
/// - input: any shape `[batch, ...]`
/// - output: the same shape
///
/// # Examples
///
/// ```
/// use embkit::{Activation, ActivationLayer};
/// use ndarray::arr2;
///
/// let mut relu = ActivationLayer::new(Activation::Relu);
/// let x = arr2(&[[-1.0f32, 2.0]]).into_dyn();
/// let y = relu.forward(x.view(), true)?;
/// assert_eq!(y, arr2(&[[0.0f32, 2.0]]).into_dyn());
///
/// let g = relu.backward(arr2(&[[1.0f32, 1.0]]).into_dyn().view())?;
/// assert_eq!(g, arr2(&[[0.0f32, 1.0]]).into_dyn());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ActivationLayer {
    activation: Activation,
    input: Option<ArrayD<f32>>,
    output: Option<ArrayD<f32>>,
}

impl ActivationLayer {
    /// A layer that applies `activation`.
    pub fn new(activation: Activation) -> Self {
        Self { activation, input: None, output: None }
    }

    /// The function this layer applies.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The input of the last training forward: the logits, when the
    /// activation is a sigmoid or softmax.
    pub fn input(&self) -> Option<ArrayViewD<'_, f32>> {
        self.input.as_ref().map(|a| a.view())
    }

    /// Applies the activation. With `training`, keeps the input and the
    /// output for [`backward`](Self::backward).
    ///
    /// # Errors
    ///
    /// None at present; the `Result` matches the other layers.
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        let y = self.activation.apply(x.view());
        if training {
            self.input = Some(x.to_owned());
            self.output = Some(y.clone());
        }
        Ok(y)
    }

    /// The gradient with respect to the last training forward's input.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] without a training forward;
    /// [`Error::ShapeMismatch`] if `grad_out` does not have the output's
    /// shape.
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let y = self.output.as_ref().ok_or_else(|| {
            Error::InvalidState("ActivationLayer::backward before a training forward".into())
        })?;
        self.activation.backward(y.view(), grad_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2};

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn sigmoid_is_finite_for_huge_inputs() {
        let y = Activation::Sigmoid
            .apply(arr1(&[-1000.0f32, -80.0, 0.0, 80.0, 1000.0]).into_dyn().view());
        assert!(y.iter().all(|v| v.is_finite()));
        assert_eq!(y[0], 0.0);
        assert_eq!(y[2], 0.5);
        assert_eq!(y[4], 1.0);
        // python: 1 / (1 + math.exp(-2)) = 0.8807970779778823
        let s = Activation::Sigmoid.apply(arr1(&[2.0f32]).into_dyn().view());
        assert!(close(s[0], 0.880_797_1, 1e-7));
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_logits() {
        let z = arr2(&[[1000.0f32, 1000.0, 1000.0], [1.0, 2.0, 3.0]]).into_dyn();
        let y = Activation::Softmax.apply(z.view());
        assert!(y.iter().all(|v| v.is_finite()));
        for v in &y.as_slice().unwrap()[..3] {
            assert!(close(*v, 1.0 / 3.0, 1e-7));
        }
        // python: [math.exp(i) / sum(math.exp(j) for j in (1, 2, 3)) for i in (1, 2, 3)]
        //       = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219]
        assert!(close(y[[1, 0]], 0.090_030_57, 1e-7));
        assert!(close(y[[1, 1]], 0.244_728_47, 1e-7));
        assert!(close(y[[1, 2]], 0.665_240_96, 1e-7));
    }

    #[test]
    fn softmax_normalises_the_last_axis_of_a_rank_3_input() {
        let z = ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3, 4]), |i| {
            (i[0] + 2 * i[1] + 3 * i[2]) as f32 * 0.1
        });
        let y = Activation::Softmax.apply(z.view());
        for lane in y.lanes(Axis(2)) {
            assert!(close(lane.sum(), 1.0, 1e-6));
        }
    }

    #[test]
    fn relu_and_tanh_values() {
        let z = arr1(&[-2.0f32, 0.0, 3.0]).into_dyn();
        assert_eq!(Activation::Relu.apply(z.view()), arr1(&[0.0f32, 0.0, 3.0]).into_dyn());
        // python: math.tanh(3) = 0.9950547536867305
        assert!(close(Activation::Tanh.apply(z.view())[2], 0.995_054_7, 1e-7));
        assert_eq!(Activation::Linear.apply(z.view()), z);
    }

    #[test]
    fn relu_gradient_is_zero_at_zero() {
        let y = arr1(&[0.0f32, 2.0]).into_dyn();
        let g =
            Activation::Relu.backward(y.view(), arr1(&[5.0f32, 5.0]).into_dyn().view()).unwrap();
        assert_eq!(g, arr1(&[0.0f32, 5.0]).into_dyn());
    }

    #[test]
    fn softmax_gradient_of_a_constant_upstream_is_zero() {
        let y = Activation::Softmax.apply(arr2(&[[0.3f32, -1.0, 2.0]]).into_dyn().view());
        let g = Activation::Softmax.backward(y.view(), ArrayD::ones(y.raw_dim()).view()).unwrap();
        assert!(g.iter().all(|v| v.abs() < 1e-7));
    }

    #[test]
    fn backward_rejects_a_gradient_of_another_shape() {
        let y = arr1(&[0.5f32, 0.5]).into_dyn();
        let g = arr1(&[1.0f32]).into_dyn();
        assert!(matches!(
            Activation::Tanh.backward(y.view(), g.view()),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn names_round_trip_through_parse_display_and_serde() {
        for a in Activation::ALL {
            assert_eq!(a.to_string().parse::<Activation>().unwrap(), a);
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
        }
        assert_eq!(Activation::default(), Activation::Linear);
    }

    #[test]
    fn unknown_names_are_refused() {
        let err = "gelu".parse::<Activation>().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "activation", .. }));
        assert!(err.to_string().contains("gelu"));
    }

    #[test]
    fn layer_backward_needs_a_training_forward() {
        let mut layer = ActivationLayer::new(Activation::Sigmoid);
        let x = arr2(&[[1.0f32]]).into_dyn();
        layer.forward(x.view(), false).unwrap();
        assert!(layer.input().is_none());
        assert!(matches!(layer.backward(x.view()), Err(Error::InvalidState(_))));
    }

    #[test]
    fn layer_keeps_its_input_as_logits() {
        let mut layer = ActivationLayer::new(Activation::Softmax);
        let x = arr2(&[[1.0f32, 2.0]]).into_dyn();
        layer.forward(x.view(), true).unwrap();
        assert_eq!(layer.input().unwrap(), x.view());
    }
}
