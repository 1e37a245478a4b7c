//! [`Dense`]: a fully connected layer, `activation(x · W + b)` on the last
//! axis, and its [`DenseConfig`].

use ndarray::linalg::general_mat_mul;
use ndarray::{
    Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, Axis, IxDyn,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Activation, ParamMut};
use crate::kernels::vector::dot;
use crate::{Error, Init, Result};

/// Settings for a [`Dense`] layer (Keras `Dense`).
///
/// Start from [`DenseConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](DenseConfig::init).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DenseConfig {
    /// Length of the input's last axis.
    pub in_features: usize,
    /// Length of the output's last axis (Keras `units`).
    pub out_features: usize,
    /// Applied to `x · W + b`. Default [`Activation::Linear`].
    pub activation: Activation,
    /// Whether the layer adds a learned bias. Default `true`.
    pub use_bias: bool,
    /// How the kernel is filled, sampled as an `[in_features,
    /// out_features]` matrix (so Glorot uses `fan_in + fan_out`). Default
    /// [`Init::GlorotUniform`].
    pub kernel_init: Init,
    /// How the bias is filled. Default [`Init::Zeros`]. Glorot on the bias
    /// uses Keras's fans for a vector, `fan_in = fan_out = out_features`.
    pub bias_init: Init,
}

impl DenseConfig {
    /// A config with the two sizes; everything else at its default (linear
    /// activation, a bias, Glorot-uniform kernel, zero bias).
    pub fn new(in_features: usize, out_features: usize) -> Self {
        Self {
            in_features,
            out_features,
            activation: Activation::Linear,
            use_bias: true,
            kernel_init: Init::GlorotUniform,
            bias_init: Init::Zeros,
        }
    }

    /// Sets [`activation`](Self::activation).
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets [`use_bias`](Self::use_bias).
    pub fn with_use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Sets [`kernel_init`](Self::kernel_init).
    pub fn with_kernel_init(mut self, init: Init) -> Self {
        self.kernel_init = init;
        self
    }

    /// Sets [`bias_init`](Self::bias_init).
    pub fn with_bias_init(mut self, init: Init) -> Self {
        self.bias_init = init;
        self
    }

    /// Checks the settings and draws the initial weights.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a size is zero or an initialiser's
    /// parameter is out of range (the field is `kernel_init` or
    /// `bias_init`).
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Dense> {
        self.validate()?;
        let (n_in, n_out) = (self.in_features, self.out_features);
        let kernel = self.kernel_init.sample(n_in, n_out, rng).map_err(rename("kernel_init"))?;
        let kernel = Array2::from_shape_vec((n_in, n_out), kernel).expect("sampled n_in * n_out");
        let bias = if self.use_bias {
            let init = match self.bias_init {
                // Keras's fans for a 1-D variable are both its length.
                Init::GlorotUniform => Init::Uniform { bound: (6.0 / (2 * n_out) as f32).sqrt() },
                ref other => other.clone(),
            };
            Array1::from(init.sample(1, n_out, rng).map_err(rename("bias_init"))?)
        } else {
            Array1::zeros(n_out)
        };
        Ok(Dense::with_weights(self.clone(), kernel, bias))
    }

    fn validate(&self) -> Result<()> {
        if self.in_features == 0 {
            return Err(Error::config("in_features", "must be at least 1, got 0"));
        }
        if self.out_features == 0 {
            return Err(Error::config("out_features", "must be at least 1, got 0"));
        }
        self.kernel_init.validate().map_err(rename("kernel_init"))?;
        if self.use_bias {
            self.bias_init.validate().map_err(rename("bias_init"))?;
        }
        Ok(())
    }
}

/// Puts the config field's name on an [`Init`] error.
fn rename(field: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::InvalidConfig { reason, .. } => Error::InvalidConfig { field, reason },
        other => other,
    }
}

/// What a training forward keeps for the backward pass.
#[derive(Debug, Clone)]
struct Cache {
    /// The input, reshaped to `[n, in_features]`.
    input: Array2<f32>,
    /// The input's original shape.
    input_shape: Vec<usize>,
    /// The pre-activation output `z = x · W + b`.
    z: ArrayD<f32>,
    /// The output `activation(z)`.
    y: ArrayD<f32>,
}

/// A fully connected layer: `y = activation(x · W + b)` on the last axis
/// (Keras `Dense`).
///
/// The kernel `W` is `[in_features, out_features]` and the bias `b` is
/// `[out_features]`. Inputs of rank above 2 are treated as a stack of
/// rows: every leading axis is kept, as Keras does.
///
/// # Shapes
///
/// - input: `[batch, ..., in_features]` (rank 2 or more)
/// - output: `[batch, ..., out_features]`
///
/// # Examples
///
/// ```
/// use embkit::{Activation, DenseConfig};
/// use ndarray::{ArrayD, IxDyn};
/// use rand::{rngs::StdRng, SeedableRng};
///
/// let mut dense = DenseConfig::new(64, 3)
///     .with_activation(Activation::Softmax)
///     .init(&mut StdRng::seed_from_u64(0))?;
///
/// let x = ArrayD::<f32>::ones(IxDyn(&[2, 50, 64]));
/// let y = dense.forward(x.view(), true)?;
/// assert_eq!(y.shape(), &[2, 50, 3]);
///
/// let grad_in = dense.backward(ArrayD::ones(IxDyn(&[2, 50, 3])).view())?;
/// assert_eq!(grad_in.shape(), x.shape());
/// assert_eq!(dense.kernel_grad().shape(), &[64, 3]);
///
/// // The last axis must match in_features.
/// assert!(dense.forward(ArrayD::zeros(IxDyn(&[2, 63])).view(), false).is_err());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dense {
    config: DenseConfig,
    kernel: Array2<f32>,
    bias: Array1<f32>,
    kernel_grad: Array2<f32>,
    bias_grad: Array1<f32>,
    cache: Option<Cache>,
}

impl Dense {
    /// Builds a layer from saved weights (used when loading a model).
    ///
    /// When `config.use_bias` is false the bias is unused and must be all
    /// zeros (pass `Array1::zeros(out_features)`).
    ///
    /// # Shapes
    ///
    /// - `kernel`: `[in_features, out_features]`
    /// - `bias`: `[out_features]`
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an invalid config or a non-zero bias
    /// without `use_bias`; [`Error::ShapeMismatch`] if a weight's shape
    /// does not match the config.
    pub fn from_weights(
        config: DenseConfig,
        kernel: Array2<f32>,
        bias: Array1<f32>,
    ) -> Result<Dense> {
        config.validate()?;
        let (n_in, n_out) = (config.in_features, config.out_features);
        if kernel.shape() != [n_in, n_out] {
            return Err(Error::shape("Dense kernel", format!("[{n_in}, {n_out}]"), kernel.shape()));
        }
        if bias.shape() != [n_out] {
            return Err(Error::shape("Dense bias", format!("[{n_out}]"), bias.shape()));
        }
        if !config.use_bias && bias.iter().any(|&b| b != 0.0) {
            return Err(Error::config("bias", "must be all zeros when use_bias is false"));
        }
        let kernel = kernel.as_standard_layout().into_owned();
        let bias = bias.as_standard_layout().into_owned();
        Ok(Dense::with_weights(config, kernel, bias))
    }

    fn with_weights(config: DenseConfig, kernel: Array2<f32>, bias: Array1<f32>) -> Dense {
        let kernel_grad = Array2::zeros(kernel.raw_dim());
        let bias_grad = Array1::zeros(bias.raw_dim());
        Dense { config, kernel, bias, kernel_grad, bias_grad, cache: None }
    }

    /// The config this layer was built from.
    pub fn config(&self) -> &DenseConfig {
        &self.config
    }

    /// The kernel `W`, `[in_features, out_features]`.
    pub fn kernel(&self) -> &Array2<f32> {
        &self.kernel
    }

    /// The bias `b`, `[out_features]`; all zeros and never trained when
    /// [`use_bias`](DenseConfig::use_bias) is false.
    pub fn bias(&self) -> &Array1<f32> {
        &self.bias
    }

    /// The kernel, writable in place (its shape cannot change).
    pub fn kernel_mut(&mut self) -> ArrayViewMut2<'_, f32> {
        self.kernel.view_mut()
    }

    /// The bias, writable in place (its shape cannot change).
    pub fn bias_mut(&mut self) -> ArrayViewMut1<'_, f32> {
        self.bias.view_mut()
    }

    /// The gradient of the loss with respect to the kernel, from the last
    /// backward (zeros before any).
    pub fn kernel_grad(&self) -> &Array2<f32> {
        &self.kernel_grad
    }

    /// The gradient with respect to the bias, summed over every leading
    /// axis of the input, from the last backward (zeros before any, and
    /// always without `use_bias`).
    pub fn bias_grad(&self) -> &Array1<f32> {
        &self.bias_grad
    }

    /// Computes `activation(x · W + b)` on the last axis of `x`. With
    /// `training`, keeps the input, the logits `z = x · W + b` and the
    /// output for [`backward`](Self::backward).
    ///
    /// # Shapes
    ///
    /// - `x`: `[batch, ..., in_features]`
    /// - returns: `[batch, ..., out_features]`
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` has rank below 2 or its last axis is
    /// not `in_features` long.
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        let rows = self.check_input(x.shape())?;
        let n_in = self.config.in_features;
        let x2 = x.to_shape((rows, n_in)).expect("same element count");
        let (z, y) = self.linear(x2.view(), x.shape());
        if training {
            let input_shape = x.shape().to_vec();
            // In standard layout: the backward reads it row by row.
            let input = x2.as_standard_layout().into_owned();
            self.cache = Some(Cache { input, input_shape, z, y: y.clone() });
        }
        Ok(y)
    }

    /// [`forward`](Self::forward) of an owned array: when training, a
    /// standard-layout input is kept for the backward as it is, without a
    /// copy.
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward).
    pub fn forward_owned(&mut self, x: ArrayD<f32>, training: bool) -> Result<ArrayD<f32>> {
        if !training || !x.is_standard_layout() {
            return self.forward(x.view(), training);
        }
        let rows = self.check_input(x.shape())?;
        let input_shape = x.shape().to_vec();
        let x2 =
            x.into_shape_with_order((rows, self.config.in_features)).expect("same element count");
        let (z, y) = self.linear(x2.view(), &input_shape);
        self.cache = Some(Cache { input: x2, input_shape, z, y: y.clone() });
        Ok(y)
    }

    /// The rows of an input of `shape`, checked: `[batch, ..., in_features]`.
    fn check_input(&self, shape: &[usize]) -> Result<usize> {
        let n_in = self.config.in_features;
        if shape.len() < 2 || shape[shape.len() - 1] != n_in {
            return Err(Error::shape("Dense input", format!("[batch, ..., {n_in}]"), shape));
        }
        Ok(shape.iter().product::<usize>() / n_in)
    }

    /// `z = x2 · W + b` shaped as the input with its last axis
    /// `out_features`, and `activation(z)`.
    fn linear(&self, x2: ArrayView2<'_, f32>, shape: &[usize]) -> (ArrayD<f32>, ArrayD<f32>) {
        let (n_in, n_out) = (self.config.in_features, self.config.out_features);
        let rows = x2.nrows();
        let mut z = Array2::zeros((rows, n_out));
        if is_small(rows, n_in, n_out) {
            // z[r, o] = x[r] · W[:, o], one vectorised dot product each.
            let x2 = x2.as_standard_layout();
            let wt = self.kernel.t().as_standard_layout().into_owned();
            for (xr, mut zr) in x2.rows().into_iter().zip(z.rows_mut()) {
                let xr = xr.to_slice().expect("standard layout");
                for (z, wo) in zr.iter_mut().zip(wt.rows()) {
                    *z = dot(xr, wo.to_slice().expect("standard layout"));
                }
            }
        } else {
            general_mat_mul(1.0, &x2, &self.kernel, 0.0, &mut z);
        }
        if self.config.use_bias {
            z += &self.bias;
        }
        let mut out_shape = shape.to_vec();
        *out_shape.last_mut().expect("rank >= 2") = n_out;
        let z = z.into_shape_with_order(IxDyn(&out_shape)).expect("same element count");
        let y = self.config.activation.apply(z.view());
        (z, y)
    }

    /// Returns the gradient with respect to the last training forward's
    /// input, and stores the kernel and bias gradients.
    ///
    /// The gradient goes through the activation first, then the linear
    /// part: `dW = xᵀ · dz`, `db = sum(dz)` over all leading axes,
    /// `dx = dz · Wᵀ`.
    ///
    /// # Shapes
    ///
    /// - `grad_out`: the shape of the forward output
    /// - returns: the shape of the forward input
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] without a training forward first;
    /// [`Error::ShapeMismatch`] if `grad_out` does not have the output's
    /// shape.
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let cache = self.cache()?;
        let grad_z = self.config.activation.backward(cache.y.view(), grad_out)?;
        self.backward_linear(grad_z.view())
    }

    /// Like [`backward`](Self::backward), but starts from the gradient with
    /// respect to the logits `z`, skipping the activation (for a loss
    /// computed from logits).
    ///
    /// # Errors
    ///
    /// As [`backward`](Self::backward).
    pub fn backward_from_logits(&mut self, grad_z: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let cache = self.cache()?;
        if grad_z.shape() != cache.z.shape() {
            return Err(Error::shape(
                "Dense logits gradient",
                format!("{:?}", cache.z.shape()),
                grad_z.shape(),
            ));
        }
        self.backward_linear(grad_z)
    }

    /// The logits `z = x · W + b` of the last training forward.
    pub fn logits(&self) -> Option<ArrayViewD<'_, f32>> {
        self.cache.as_ref().map(|c| c.z.view())
    }

    /// The kernel and, with `use_bias`, the bias, with their gradients
    /// from the last backward, named `"kernel"` and `"bias"`.
    pub fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        let Dense { config, kernel, bias, kernel_grad, bias_grad, .. } = self;
        let mut params = vec![ParamMut {
            name: "kernel",
            value: kernel.as_slice_mut().expect("the kernel is kept in standard layout"),
            grad: kernel_grad
                .as_slice_mut()
                .expect("the kernel gradient is kept in standard layout"),
        }];
        if config.use_bias {
            params.push(ParamMut {
                name: "bias",
                value: bias.as_slice_mut().expect("the bias is kept in standard layout"),
                grad: bias_grad
                    .as_slice_mut()
                    .expect("the bias gradient is kept in standard layout"),
            });
        }
        params
    }

    fn cache(&self) -> Result<&Cache> {
        self.cache
            .as_ref()
            .ok_or_else(|| Error::InvalidState("Dense::backward before a training forward".into()))
    }

    /// The linear part of the backward pass; `grad_z` has the shape of `z`.
    fn backward_linear(&mut self, grad_z: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let cache = self.cache.as_ref().expect("checked by the caller");
        let (n_in, n_out) = (self.config.in_features, self.config.out_features);
        let rows = cache.input.nrows();
        let g = grad_z.to_shape((rows, n_out)).expect("grad_z has the shape of z");
        if self.config.use_bias {
            self.bias_grad.assign(&g.sum_axis(Axis(0)));
        }
        let mut grad_in = Array2::zeros((rows, n_in));
        if is_small(rows, n_in, n_out) {
            // dW[:, o] = Σ_r g[r, o] x[r] and dx[r] = Σ_o g[r, o] W[:, o],
            // row updates in batch order.
            let wt = self.kernel.t().as_standard_layout().into_owned();
            let mut dwt = Array2::<f32>::zeros((n_out, n_in));
            for ((xr, gr), mut dxr) in
                cache.input.rows().into_iter().zip(g.rows()).zip(grad_in.rows_mut())
            {
                let xr = xr.to_slice().expect("the cached input is in standard layout");
                let dxr = dxr.as_slice_mut().expect("a fresh array is in standard layout");
                for ((&go, mut dwo), wo) in gr.iter().zip(dwt.rows_mut()).zip(wt.rows()) {
                    let dwo = dwo.as_slice_mut().expect("a fresh array is in standard layout");
                    axpy(dwo, go, xr);
                    axpy(dxr, go, wo.to_slice().expect("standard layout"));
                }
            }
            self.kernel_grad.assign(&dwt.t());
        } else {
            general_mat_mul(1.0, &cache.input.t(), &g, 0.0, &mut self.kernel_grad);
            general_mat_mul(1.0, &g, &self.kernel.t(), 0.0, &mut grad_in);
        }
        Ok(grad_in.into_shape_with_order(IxDyn(&cache.input_shape)).expect("same element count"))
    }
}

/// Products of at most this many multiply-adds with at most
/// [`SMALL_OUT`] outputs per row run as vectorised dot products and row
/// updates: matrixmultiply's packing costs more than such a product (a
/// batch of 32 through `Dense(160, 1)`).
const SMALL_PRODUCT: usize = 1 << 16;

/// See [`SMALL_PRODUCT`].
const SMALL_OUT: usize = 8;

fn is_small(rows: usize, n_in: usize, n_out: usize) -> bool {
    n_out <= SMALL_OUT && rows.saturating_mul(n_in).saturating_mul(n_out) <= SMALL_PRODUCT
}

/// `y += a · x`.
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2};
    use rand::{rngs::StdRng, SeedableRng};

    fn rng() -> StdRng {
        StdRng::seed_from_u64(0)
    }

    #[test]
    fn forward_keeps_the_leading_axes() {
        let mut d = DenseConfig::new(64, 7).init(&mut rng()).unwrap();
        let x = ArrayD::<f32>::ones(IxDyn(&[3, 50, 64]));
        assert_eq!(d.forward(x.view(), false).unwrap().shape(), &[3, 50, 7]);
        let x = ArrayD::<f32>::ones(IxDyn(&[3, 64]));
        assert_eq!(d.forward(x.view(), false).unwrap().shape(), &[3, 7]);
    }

    #[test]
    fn forward_computes_x_times_w_plus_b() {
        let config = DenseConfig::new(2, 2);
        let d = Dense::from_weights(config, arr2(&[[1.0, 2.0], [3.0, 4.0]]), arr1(&[0.5, -0.5]));
        let mut d = d.unwrap();
        let y = d.forward(arr2(&[[1.0f32, 1.0], [2.0, 0.0]]).into_dyn().view(), false).unwrap();
        assert_eq!(y, arr2(&[[4.5f32, 5.5], [2.5, 3.5]]).into_dyn());
    }

    #[test]
    fn forward_rejects_the_wrong_last_axis_and_rank_one_inputs() {
        let mut d = DenseConfig::new(4, 2).init(&mut rng()).unwrap();
        for shape in [&[2, 3][..], &[2, 5, 3], &[4]] {
            let x = ArrayD::<f32>::zeros(IxDyn(shape));
            assert!(
                matches!(d.forward(x.view(), true), Err(Error::ShapeMismatch { .. })),
                "{shape:?}"
            );
        }
    }

    #[test]
    fn backward_needs_a_training_forward() {
        let mut d = DenseConfig::new(4, 2).init(&mut rng()).unwrap();
        let g = ArrayD::<f32>::zeros(IxDyn(&[1, 2]));
        assert!(matches!(d.backward(g.view()), Err(Error::InvalidState(_))));
        assert!(matches!(d.backward_from_logits(g.view()), Err(Error::InvalidState(_))));
        assert!(d.logits().is_none());
        d.forward(ArrayD::zeros(IxDyn(&[1, 4])).view(), false).unwrap();
        assert!(matches!(d.backward(g.view()), Err(Error::InvalidState(_))));
    }

    #[test]
    fn backward_rejects_a_gradient_of_another_shape() {
        let mut d = DenseConfig::new(4, 2).init(&mut rng()).unwrap();
        d.forward(ArrayD::zeros(IxDyn(&[3, 4])).view(), true).unwrap();
        let g = ArrayD::<f32>::zeros(IxDyn(&[3, 3]));
        assert!(matches!(d.backward(g.view()), Err(Error::ShapeMismatch { .. })));
        assert!(matches!(d.backward_from_logits(g.view()), Err(Error::ShapeMismatch { .. })));
    }

    #[test]
    fn kernel_is_glorot_bounded_and_bias_starts_at_zero() {
        // Keras: limit = sqrt(6 / (fan_in + fan_out)) = sqrt(6 / (64 + 16))
        let d = DenseConfig::new(64, 16).init(&mut rng()).unwrap();
        let limit = (6.0f32 / 80.0).sqrt();
        assert_eq!(d.kernel().shape(), &[64, 16]);
        assert!(d.kernel().iter().all(|w| w.abs() <= limit));
        assert!(d.kernel().iter().any(|w| w.abs() > 0.9 * limit));
        assert!(d.bias().iter().all(|&b| b == 0.0));
        assert_eq!(d.bias().len(), 16);
    }

    #[test]
    fn the_same_seed_gives_the_same_weights() {
        let c = DenseConfig::new(5, 3).with_bias_init(Init::Uniform { bound: 0.1 });
        let (a, b) = (c.init(&mut rng()).unwrap(), c.init(&mut rng()).unwrap());
        assert_eq!(a.kernel(), b.kernel());
        assert_eq!(a.bias(), b.bias());
        assert!(a.bias().iter().any(|&v| v != 0.0));
    }

    #[test]
    fn zero_sizes_and_bad_inits_are_refused_by_field() {
        let err = DenseConfig::new(0, 3).init(&mut rng()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "in_features", .. }));
        assert!(err.to_string().contains("got 0"));
        let err = DenseConfig::new(3, 0).init(&mut rng()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "out_features", .. }));
        let err = DenseConfig::new(3, 2)
            .with_kernel_init(Init::Uniform { bound: -1.0 })
            .init(&mut rng())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "kernel_init", .. }));
        let err = DenseConfig::new(3, 2)
            .with_bias_init(Init::Normal { std: f32::NAN })
            .init(&mut rng())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "bias_init", .. }));
    }

    #[test]
    fn bias_gradient_sums_over_every_leading_axis() {
        let mut d = DenseConfig::new(2, 3).init(&mut rng()).unwrap();
        d.forward(ArrayD::ones(IxDyn(&[2, 5, 2])).view(), true).unwrap();
        d.backward(ArrayD::ones(IxDyn(&[2, 5, 3])).view()).unwrap();
        assert_eq!(d.bias_grad(), &arr1(&[10.0f32, 10.0, 10.0]));
        // dW = xᵀ · g = 10 everywhere for all-ones x and g
        assert!(d.kernel_grad().iter().all(|&v| v == 10.0));
    }

    #[test]
    fn params_are_kernel_and_bias_unless_there_is_no_bias() {
        let mut d = DenseConfig::new(4, 2).init(&mut rng()).unwrap();
        let names: Vec<_> =
            d.params_mut().iter().map(|p| (p.name, p.value.len(), p.grad.len())).collect();
        assert_eq!(names, vec![("kernel", 8, 8), ("bias", 2, 2)]);

        let mut d = DenseConfig::new(4, 2).with_use_bias(false).init(&mut rng()).unwrap();
        d.forward(ArrayD::ones(IxDyn(&[1, 4])).view(), true).unwrap();
        d.backward(ArrayD::ones(IxDyn(&[1, 2])).view()).unwrap();
        assert_eq!(d.params_mut().len(), 1);
        assert!(d.bias().iter().chain(d.bias_grad()).all(|&v| v == 0.0));
    }

    #[test]
    fn an_optimizer_step_through_params_mut_changes_the_kernel() {
        let mut d = DenseConfig::new(2, 1).init(&mut rng()).unwrap();
        let before = d.kernel().clone();
        d.forward(ArrayD::ones(IxDyn(&[1, 2])).view(), true).unwrap();
        d.backward(ArrayD::ones(IxDyn(&[1, 1])).view()).unwrap();
        for p in d.params_mut() {
            for (v, g) in p.value.iter_mut().zip(p.grad) {
                *v -= 0.5 * *g;
            }
        }
        assert_eq!(d.kernel(), &(&before - 0.5));
        assert_eq!(d.bias(), &arr1(&[-0.5f32]));
    }

    #[test]
    fn from_weights_checks_shapes() {
        let c = DenseConfig::new(3, 2);
        assert!(Dense::from_weights(c.clone(), Array2::zeros((3, 2)), Array1::zeros(2)).is_ok());
        let err =
            Dense::from_weights(c.clone(), Array2::zeros((2, 3)), Array1::zeros(2)).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { what: "Dense kernel", .. }));
        let err =
            Dense::from_weights(c.clone(), Array2::zeros((3, 2)), Array1::zeros(3)).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { what: "Dense bias", .. }));
        let err =
            Dense::from_weights(c.with_use_bias(false), Array2::zeros((3, 2)), Array1::ones(2));
        assert!(matches!(err, Err(Error::InvalidConfig { field: "bias", .. })));
    }

    #[test]
    fn from_weights_accepts_a_transposed_kernel_and_keeps_it_contiguous() {
        let k = arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]).reversed_axes();
        let mut d =
            Dense::from_weights(DenseConfig::new(3, 2), k.clone(), Array1::zeros(2)).unwrap();
        assert_eq!(d.kernel(), &k);
        assert_eq!(d.params_mut()[0].value, &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn logits_are_the_pre_activation_output() {
        let mut d =
            DenseConfig::new(3, 4).with_activation(Activation::Softmax).init(&mut rng()).unwrap();
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| i[0] as f32 - i[1] as f32);
        let y = d.forward(x.view(), true).unwrap();
        let z = d.logits().unwrap().to_owned();
        assert_eq!(Activation::Softmax.apply(z.view()), y);
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = DenseConfig::new(3, 4).with_activation(Activation::Relu).with_use_bias(false);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""activation":"relu""#), "{json}");
        assert_eq!(serde_json::from_str::<DenseConfig>(&json).unwrap(), c);
    }

    #[test]
    fn small_products_match_the_matrix_product() {
        use rand::Rng;
        let mut rng = rng();
        for (rows, n_in, n_out) in [(32, 160, 1), (7, 33, 3), (5, 8, 8)] {
            assert!(is_small(rows, n_in, n_out));
            let config = DenseConfig::new(n_in, n_out);
            let mut d = config.init(&mut rng).unwrap();
            let x = Array2::from_shape_fn((rows, n_in), |_| rng.random::<f32>() - 0.5);
            let g = Array2::from_shape_fn((rows, n_out), |_| rng.random::<f32>() - 0.5);
            let z = d.forward(x.view().into_dyn(), true).unwrap();
            let want = x.dot(&d.kernel) + &d.bias;
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * (1.0 + b.abs());
            assert!(z.iter().zip(want.iter()).all(|(&a, &b)| close(a, b)));
            let dx = d.backward_from_logits(g.view().into_dyn()).unwrap();
            let want_dx = g.dot(&d.kernel.t());
            let want_dw = x.t().dot(&g);
            assert!(dx.iter().zip(want_dx.iter()).all(|(&a, &b)| close(a, b)));
            assert!(d.kernel_grad.iter().zip(want_dw.iter()).all(|(&a, &b)| close(a, b)));
        }
    }

    #[test]
    fn forward_owned_keeps_the_input_and_computes_the_same() {
        use rand::Rng;
        let mut rng = rng();
        let config = DenseConfig::new(6, 3).with_activation(Activation::Sigmoid);
        let mut a = config.init(&mut StdRng::seed_from_u64(4)).unwrap();
        let mut b = a.clone();
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 5, 6]), |_| rng.random::<f32>() - 0.5);
        let g = ArrayD::from_shape_fn(IxDyn(&[2, 5, 3]), |_| rng.random::<f32>() - 0.5);
        let ptr = x.as_ptr();
        assert_eq!(a.forward(x.view(), true).unwrap(), b.forward_owned(x, true).unwrap());
        assert_eq!(b.cache.as_ref().unwrap().input.as_ptr(), ptr, "kept, not copied");
        assert_eq!(a.backward(g.view()).unwrap(), b.backward(g.view()).unwrap());
        assert_eq!(a.kernel_grad, b.kernel_grad);
        let err = b.forward_owned(ArrayD::zeros(IxDyn(&[2, 5])), true).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    }

    #[test]
    fn a_transposed_training_input_steps_back_like_a_standard_one() {
        // A column-major [4, 6] input (the transpose of a [6, 4] array).
        let config = DenseConfig::new(6, 3);
        let mut a = config.init(&mut StdRng::seed_from_u64(5)).unwrap();
        let mut b = a.clone();
        let xt = Array2::from_shape_fn((6, 4), |(i, j)| (i * 4 + j) as f32 * 0.1);
        let x = xt.t();
        let standard = x.as_standard_layout().into_owned();
        assert_eq!(
            a.forward(x.into_dyn(), true).unwrap(),
            b.forward(standard.view().into_dyn(), true).unwrap()
        );
        let g = ArrayD::from_elem(IxDyn(&[4, 3]), 0.5f32);
        assert_eq!(a.backward(g.view()).unwrap(), b.backward(g.view()).unwrap());
        assert_eq!(a.kernel_grad, b.kernel_grad);
    }
}
