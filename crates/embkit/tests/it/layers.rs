//! Integration tests: layers and losses. Every backward pass is checked
//! against central finite differences with [`check_grad`].

use embkit::{
    Activation, ActivationLayer, Dense, DenseConfig, DropoutConfig, GlobalAveragePooling1D, Init,
    Layer, LayerConfig, Loss, Metric,
};
use ndarray::{ArrayD, Dimension, Ix1, Ix2, IxDyn};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Finite-difference step. Forward passes run in `f32`, so the step cannot
/// be much smaller without rounding noise taking over.
const EPS: f32 = 1e-3;

/// Tolerance of [`check_grad`]: `|numeric - analytic| <= TOL * max(1, |numeric|)`.
///
/// The truncation error of a central difference is `O(EPS²)`, about 1e-6
/// here; what remains is `f32` rounding of the outputs that one
/// perturbation changes (about 1e-7 relative, divided by `2 * EPS`), so a
/// few 1e-4 at worst. A wrong gradient (a missing factor, a transposed
/// kernel, a missed softmax term) is off by far more than 2e-3.
const TOL: f64 = 2e-3;

/// Checks `analytic`, the claimed gradient of the scalar `f` at `x`,
/// against central differences `(f(x + h e_i) - f(x - h e_i)) / 2h` for
/// every element `i`.
#[track_caller]
fn check_grad(
    what: &str,
    x: &ArrayD<f32>,
    analytic: &ArrayD<f32>,
    mut f: impl FnMut(&ArrayD<f32>) -> f64,
) {
    assert_eq!(x.shape(), analytic.shape(), "{what}: the gradient has the wrong shape");
    for (i, &a) in analytic.indexed_iter() {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[&i] += EPS;
        minus[&i] -= EPS;
        // The step as actually represented in f32.
        let h = plus[&i] as f64 - minus[&i] as f64;
        let numeric = (f(&plus) - f(&minus)) / h;
        let err = (numeric - a as f64).abs() / numeric.abs().max(1.0);
        assert!(err <= TOL, "{what}: at {i:?} analytic {a}, numeric {numeric} (error {err:.2e})");
    }
}

/// The checker itself: a gradient that is off by 1% fails.
#[test]
#[should_panic(expected = "numeric")]
fn check_grad_rejects_a_slightly_wrong_gradient() {
    let x = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5f32, -1.0, 2.0]).unwrap();
    // d/dx sum(x²) = 2x; claim 2.02x.
    let wrong = x.mapv(|v| 2.02 * v);
    check_grad("sum of squares", &x, &wrong, |x| x.iter().map(|&v| (v as f64).powi(2)).sum());
}

/// `sum(y * r)` in `f64`: a scalar whose gradient with respect to `y` is `r`.
fn weighted_sum(y: &ArrayD<f32>, r: &ArrayD<f32>) -> f64 {
    assert_eq!(y.shape(), r.shape());
    y.iter().zip(r).map(|(&y, &r)| y as f64 * r as f64).sum()
}

fn random(shape: &[usize], lo: f32, hi: f32, rng: &mut StdRng) -> ArrayD<f32> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(lo..hi))
}

/// Values at least 0.1 away from 0, so ReLU's kink is never crossed.
fn away_from_zero(shape: &[usize], rng: &mut StdRng) -> ArrayD<f32> {
    random(shape, -2.0, 2.0, rng).mapv(|v| v.signum() * (0.1 + v.abs()))
}

fn dense(in_features: usize, out_features: usize, activation: Activation, seed: u64) -> Dense {
    DenseConfig::new(in_features, out_features)
        .with_activation(activation)
        .with_bias_init(Init::Uniform { bound: 0.5 })
        .init(&mut StdRng::seed_from_u64(seed))
        .unwrap()
}

/// Checks the kernel, bias and input gradients of `layer` on an input of
/// `shape`, for the scalar `sum(forward(x) * r)`.
fn check_dense(mut layer: Dense, shape: &[usize], seed: u64) {
    let act = layer.config().activation;
    let mut rng = StdRng::seed_from_u64(seed);
    let x = random(shape, -1.0, 1.0, &mut rng);
    let y = layer.forward(x.view(), true).unwrap();
    let r = random(y.shape(), -1.0, 1.0, &mut rng);
    let grad_x = layer.backward(r.view()).unwrap();

    let eval =
        |l: &Dense, x: &ArrayD<f32>| weighted_sum(&l.clone().forward(x.view(), false).unwrap(), &r);
    check_grad(&format!("Dense {act} {shape:?} input"), &x, &grad_x, |x| eval(&layer, x));

    let kernel = layer.kernel().clone().into_dyn();
    let grad_k = layer.kernel_grad().clone().into_dyn();
    check_grad(&format!("Dense {act} {shape:?} kernel"), &kernel, &grad_k, |k| {
        let mut l = layer.clone();
        l.kernel_mut().assign(&k.view().into_dimensionality::<Ix2>().unwrap());
        eval(&l, &x)
    });

    if layer.config().use_bias {
        let bias = layer.bias().clone().into_dyn();
        let grad_b = layer.bias_grad().clone().into_dyn();
        check_grad(&format!("Dense {act} {shape:?} bias"), &bias, &grad_b, |b| {
            let mut l = layer.clone();
            l.bias_mut().assign(&b.view().into_dimensionality::<Ix1>().unwrap());
            eval(&l, &x)
        });
    }
}

#[test]
fn dense_gradients_match_finite_differences_on_rank_2_inputs() {
    for (seed, act) in Activation::ALL.into_iter().enumerate() {
        check_dense(dense(5, 4, act, seed as u64), &[3, 5], 100 + seed as u64);
    }
}

#[test]
fn dense_gradients_match_finite_differences_on_rank_3_inputs() {
    for (seed, act) in Activation::ALL.into_iter().enumerate() {
        check_dense(dense(4, 3, act, seed as u64), &[2, 3, 4], 200 + seed as u64);
    }
}

#[test]
fn dense_without_bias_gradients_match_finite_differences() {
    let layer = DenseConfig::new(3, 2)
        .with_activation(Activation::Tanh)
        .with_use_bias(false)
        .init(&mut StdRng::seed_from_u64(9))
        .unwrap();
    check_dense(layer, &[4, 3], 9);
}

#[test]
fn dense_backward_from_logits_matches_finite_differences_of_the_logits() {
    for act in [Activation::Sigmoid, Activation::Softmax] {
        let mut layer = dense(4, 3, act, 5);
        let mut rng = StdRng::seed_from_u64(6);
        let x = random(&[2, 3, 4], -1.0, 1.0, &mut rng);
        layer.forward(x.view(), true).unwrap();
        let r = random(&[2, 3, 3], -1.0, 1.0, &mut rng);
        let grad_x = layer.backward_from_logits(r.view()).unwrap();
        let logits_at = |l: &Dense, x: &ArrayD<f32>| {
            let mut l = l.clone();
            l.forward(x.view(), true).unwrap();
            weighted_sum(&l.logits().unwrap().to_owned(), &r)
        };
        check_grad(&format!("Dense {act} logits, input"), &x, &grad_x, |x| logits_at(&layer, x));
        let kernel = layer.kernel().clone().into_dyn();
        let grad_k = layer.kernel_grad().clone().into_dyn();
        check_grad(&format!("Dense {act} logits, kernel"), &kernel, &grad_k, |k| {
            let mut l = layer.clone();
            l.kernel_mut().assign(&k.view().into_dimensionality::<Ix2>().unwrap());
            logits_at(&l, &x)
        });
    }
}

/// The Keras 3 path (a cross-entropy computed from the logits, then
/// `backward_from_logits`) gives the gradient of the probability loss.
#[test]
fn loss_from_logits_gives_the_gradient_of_the_probability_loss() {
    let cases = [
        (Activation::Softmax, Loss::CategoricalCrossentropy { from_logits: false }, false),
        (Activation::Softmax, Loss::SparseCategoricalCrossentropy { from_logits: false }, true),
        (Activation::Sigmoid, Loss::BinaryCrossentropy { from_logits: false }, false),
    ];
    for (act, loss, sparse) in cases {
        let mut layer = dense(4, 3, act, 11);
        let mut rng = StdRng::seed_from_u64(12);
        let x = random(&[5, 4], -1.0, 1.0, &mut rng);
        let target = if sparse {
            ArrayD::from_shape_fn(IxDyn(&[5]), |i| (i[0] % 3) as f32)
        } else {
            ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| if i[1] == i[0] % 3 { 1.0 } else { 0.0 })
        };
        layer.forward(x.view(), true).unwrap();
        let logit_loss = loss.with_logits_for(act).unwrap();
        let logits = layer.logits().unwrap().to_owned();
        let (value, g) = logit_loss.forward_backward(logits.view(), target.view()).unwrap();
        layer.backward_from_logits(g.view()).unwrap();

        let y = layer.clone().forward(x.view(), false).unwrap();
        let prob_value = loss.value(y.view(), target.view()).unwrap();
        assert!((value - prob_value).abs() < 1e-5, "{loss}: {value} vs {prob_value}");

        let kernel = layer.kernel().clone().into_dyn();
        let grad_k = layer.kernel_grad().clone().into_dyn();
        check_grad(&format!("{loss} through {act}"), &kernel, &grad_k, |k| {
            let mut l = layer.clone();
            l.kernel_mut().assign(&k.view().into_dimensionality::<Ix2>().unwrap());
            let y = l.forward(x.view(), false).unwrap();
            loss.value(y.view(), target.view()).unwrap() as f64
        });
    }
}

#[test]
fn activation_layer_gradients_match_finite_differences() {
    for shape in [&[3, 4][..], &[2, 3, 4]] {
        for act in Activation::ALL {
            let mut rng = StdRng::seed_from_u64(21);
            let x = away_from_zero(shape, &mut rng);
            let mut layer = ActivationLayer::new(act);
            let y = layer.forward(x.view(), true).unwrap();
            let r = random(y.shape(), -1.0, 1.0, &mut rng);
            let grad_x = layer.backward(r.view()).unwrap();
            check_grad(&format!("ActivationLayer {act} {shape:?}"), &x, &grad_x, |x| {
                weighted_sum(&act.apply(x.view()), &r)
            });
        }
    }
}

#[test]
fn pooling_gradient_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(31);
    let x = random(&[2, 5, 3], -1.0, 1.0, &mut rng);
    let mut pool = GlobalAveragePooling1D::new();
    let y = pool.forward(x.view(), true).unwrap();
    assert_eq!(y.shape(), &[2, 3]);
    let r = random(&[2, 3], -1.0, 1.0, &mut rng);
    let grad_x = pool.backward(r.view()).unwrap();
    check_grad("GlobalAveragePooling1D", &x, &grad_x, |x| {
        weighted_sum(&GlobalAveragePooling1D::new().forward(x.view(), false).unwrap(), &r)
    });
}

/// A fresh layer from the same config draws the same first mask, so the
/// mask is fixed across the evaluations of the difference quotient.
#[test]
fn dropout_gradient_matches_finite_differences_with_a_fixed_mask() {
    let config = DropoutConfig::new(0.4).with_seed(17);
    let mut rng = StdRng::seed_from_u64(41);
    let x = random(&[4, 6], -1.0, 1.0, &mut rng);
    let mut drop = config.init().unwrap();
    let y = drop.forward(x.view(), true).unwrap();
    assert!(y.iter().any(|&v| v == 0.0), "some elements are dropped");
    let r = random(&[4, 6], -1.0, 1.0, &mut rng);
    let grad_x = drop.backward(r.view()).unwrap();
    check_grad("Dropout", &x, &grad_x, |x| {
        weighted_sum(&config.init().unwrap().forward(x.view(), true).unwrap(), &r)
    });
}

/// Checks `loss`'s gradient at `pred` against finite differences of
/// [`Loss::value`].
fn check_loss(loss: Loss, pred: &ArrayD<f32>, target: &ArrayD<f32>) {
    let (value, grad) = loss.forward_backward(pred.view(), target.view()).unwrap();
    assert_eq!(value, loss.value(pred.view(), target.view()).unwrap());
    let what = format!("{loss:?} {:?}", pred.shape());
    check_grad(&what, pred, &grad, |p| loss.value(p.view(), target.view()).unwrap() as f64);
}

fn one_hot_rows(ids: &ArrayD<f32>, k: usize) -> ArrayD<f32> {
    let mut shape = ids.shape().to_vec();
    shape.push(k);
    ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        let (lead, class) = i.slice().split_at(i.ndim() - 1);
        if ids[lead] as usize == class[0] {
            1.0
        } else {
            0.0
        }
    })
}

#[test]
fn binary_crossentropy_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(51);
    let y = random(&[4, 3], 0.0, 1.0, &mut rng).mapv(f32::round);
    // Probabilities well inside the clipping range.
    let p = random(&[4, 3], 0.05, 0.95, &mut rng);
    check_loss(Loss::BinaryCrossentropy { from_logits: false }, &p, &y);
    // Soft targets are allowed too.
    let soft = random(&[4, 3], 0.0, 1.0, &mut rng);
    check_loss(Loss::BinaryCrossentropy { from_logits: false }, &p, &soft);
    let z = random(&[4, 3], -4.0, 4.0, &mut rng);
    check_loss(Loss::BinaryCrossentropy { from_logits: true }, &z, &y);
    check_loss(Loss::BinaryCrossentropy { from_logits: true }, &z, &soft);
}

#[test]
fn categorical_crossentropy_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(52);
    for shape in [&[4, 3][..], &[2, 3, 4]] {
        let k = shape[shape.len() - 1];
        let ids = random(&shape[..shape.len() - 1], 0.0, k as f32, &mut rng).mapv(f32::floor);
        let target = one_hot_rows(&ids, k);
        // Rows that do not sum to 1, so Keras's rescaling is exercised.
        let p = random(shape, 0.1, 0.6, &mut rng);
        check_loss(Loss::CategoricalCrossentropy { from_logits: false }, &p, &target);
        let z = random(shape, -3.0, 3.0, &mut rng);
        check_loss(Loss::CategoricalCrossentropy { from_logits: true }, &z, &target);
        // Soft targets.
        let soft = random(shape, 0.0, 1.0, &mut rng);
        check_loss(Loss::CategoricalCrossentropy { from_logits: true }, &z, &soft);
        check_loss(Loss::CategoricalCrossentropy { from_logits: false }, &p, &soft);
    }
}

#[test]
fn sparse_categorical_crossentropy_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(53);
    for shape in [&[4, 3][..], &[2, 3, 4]] {
        let k = shape[shape.len() - 1];
        let ids = random(&shape[..shape.len() - 1], 0.0, k as f32, &mut rng).mapv(f32::floor);
        let p = random(shape, 0.1, 0.6, &mut rng);
        check_loss(Loss::SparseCategoricalCrossentropy { from_logits: false }, &p, &ids);
        let z = random(shape, -3.0, 3.0, &mut rng);
        check_loss(Loss::SparseCategoricalCrossentropy { from_logits: true }, &z, &ids);
        // With a trailing axis of 1 on the ids.
        let ids1 = ids.clone().insert_axis(ndarray::Axis(ids.ndim()));
        check_loss(Loss::SparseCategoricalCrossentropy { from_logits: true }, &z, &ids1);
    }
}

#[test]
fn sparse_and_one_hot_categorical_crossentropy_agree() {
    let mut rng = StdRng::seed_from_u64(54);
    let ids = random(&[6], 0.0, 4.0, &mut rng).mapv(f32::floor);
    let target = one_hot_rows(&ids, 4);
    for from_logits in [false, true] {
        // Normalised probabilities, so the two Keras formulas coincide.
        let p = ActivationLayer::new(Activation::Softmax)
            .forward(random(&[6, 4], -2.0, 2.0, &mut rng).view(), false)
            .unwrap();
        let (a, ga) = Loss::SparseCategoricalCrossentropy { from_logits }
            .forward_backward(p.view(), ids.view())
            .unwrap();
        let (b, gb) = Loss::CategoricalCrossentropy { from_logits }
            .forward_backward(p.view(), target.view())
            .unwrap();
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        if from_logits {
            assert!(ga.iter().zip(&gb).all(|(x, y)| (x - y).abs() < 1e-6));
        }
    }
}

#[test]
fn mean_squared_error_gradient_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(55);
    for shape in [&[5][..], &[4, 3], &[2, 3, 2]] {
        let p = random(shape, -2.0, 2.0, &mut rng);
        let y = random(shape, -2.0, 2.0, &mut rng);
        check_loss(Loss::MeanSquaredError, &p, &y);
    }
}

/// The same checks through the [`Layer`] enum a model holds.
#[test]
fn layer_enum_backward_matches_finite_differences() {
    let configs = [
        LayerConfig::Dense(DenseConfig::new(4, 3).with_activation(Activation::Tanh)),
        LayerConfig::Activation { activation: Activation::Softmax },
        LayerConfig::Dropout(DropoutConfig::new(0.25).with_seed(3)),
        LayerConfig::Flatten,
    ];
    for config in configs {
        let mut rng = StdRng::seed_from_u64(61);
        let layer: Layer = config.init(&mut StdRng::seed_from_u64(62)).unwrap();
        let x = random(&[2, 3, 4], -1.0, 1.0, &mut rng);
        let mut trained = layer.clone();
        let y = trained.forward(x.view(), true).unwrap();
        let out_shape = config.output_shape(&x.shape()[1..]).unwrap();
        assert_eq!(&y.shape()[1..], out_shape.as_slice(), "{config:?}");
        let r = random(y.shape(), -1.0, 1.0, &mut rng);
        let grad_x = trained.backward(r.view()).unwrap();
        check_grad(&format!("{config:?}"), &x, &grad_x, |x| {
            // A fresh clone: the dropout mask is the same for every call.
            weighted_sum(&layer.clone().forward(x.view(), true).unwrap(), &r)
        });
    }
}

#[test]
fn dense_maps_a_sequence_of_embeddings_position_by_position() {
    let mut layer = dense(64, 8, Activation::Relu, 71);
    let mut rng = StdRng::seed_from_u64(72);
    let x = random(&[3, 50, 64], -1.0, 1.0, &mut rng);
    let y = layer.forward(x.view(), false).unwrap();
    assert_eq!(y.shape(), &[3, 50, 8]);
    // Position (1, 7) alone, as a batch of one row, gives the same output.
    let row =
        x.slice(ndarray::s![1, 7.., ..]).slice_move(ndarray::s![..1, ..]).to_owned().into_dyn();
    let alone = layer.forward(row.view(), false).unwrap();
    let same = y.slice(ndarray::s![1, 7, ..]);
    assert!(alone.iter().zip(same).all(|(a, b)| (a - b).abs() < 1e-5));
}

#[test]
fn softmax_output_with_accuracy_counts_each_sample_once() {
    let mut layer = dense(3, 4, Activation::Softmax, 81);
    let x = random(&[10, 3], -1.0, 1.0, &mut StdRng::seed_from_u64(82));
    let y = layer.forward(x.view(), false).unwrap();
    let ids = ArrayD::from_shape_fn(IxDyn(&[10]), |i| (i[0] % 4) as f32);
    let (correct, count) = Metric::Accuracy.sum_and_count(y.view(), ids.view()).unwrap();
    assert_eq!(count, 10);
    assert!((0.0..=10.0).contains(&correct));
    let one_hot = one_hot_rows(&ids, 4);
    assert_eq!(
        Metric::Accuracy.sum_and_count(y.view(), one_hot.view()).unwrap(),
        (correct, count),
        "one-hot and sparse targets agree"
    );
}
