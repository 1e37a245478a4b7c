//! Integration tests: the embedding table, its gather and its gradient,
//! and each option against the numbers of its reference (PyTorch 2.15 or
//! Keras 3.15 with TensorFlow 2.21, on CPU).
//!
//! Most tests share one table, one batch with repeated ids and one
//! upstream gradient. The loss is `Σ out ⊙ G`, so the gradient with
//! respect to the output is `G`. In Python:
//!
//! ```python
//! W = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 1.0, 0.5], [0.1, 0.2, -0.3]], np.float32)
//! G5 = np.array([[0.3, -0.2, 0.1], [0.7, 0.4, -0.5], [-0.6, 0.9, 0.2], [0.05, -0.15, 0.25],
//!                [1.1, -0.3, 0.6]], np.float32)
//! ids5 = [1, 2, 1, 3, 2]
//! def lit(a):  # shortest f32 literals
//!     return "[" + ", ".join(str(np.float32(x)) for x in np.asarray(a, np.float32).ravel()) + "]"
//! ```
//!
//! PyTorch runs (`torch_run`):
//!
//! ```python
//! def torch_run(ids, **options):
//!     e = torch.nn.Embedding.from_pretrained(torch.tensor(W), freeze=False, **options)
//!     opt = torch.optim.SGD(e.parameters(), lr=0.1)
//!     out = e(torch.tensor(ids)); print(lit(out))                # forward
//!     (out * torch.tensor(G5[:len(ids)])).sum().backward()
//!     print(lit(e.weight.grad))                                   # gradient, dense
//!     opt.step(); opt.zero_grad()
//!     for _ in range(2):
//!         (e(torch.tensor(ids)) * torch.tensor(G5)).sum().backward(); opt.step(); opt.zero_grad()
//!     print(lit(e.weight))                                        # after 3 SGD steps
//! ```
//!
//! Keras runs (`keras_run`, `KERAS_BACKEND=tensorflow`):
//!
//! ```python
//! def keras_run(layer, ids, G, steps):
//!     layer.build(); opt = keras.optimizers.SGD(0.1)
//!     for step in range(steps):
//!         with tf.GradientTape() as tape:
//!             out = layer(np.array([ids]))
//!             reg = tf.add_n(layer.losses) if layer.losses else tf.constant(0.0)
//!             loss = tf.reduce_sum(out * G[None]) + reg
//!         grads = tape.gradient(loss, layer.trainable_variables)
//!         if step == 0: print(lit(out), [lit(tf.convert_to_tensor(g)) for g in grads])
//!         opt.apply_gradients(zip(grads, layer.trainable_variables))  # then the constraints
//!     print([lit(v) for v in layer.weights])
//! ```

use embkit::layers::{Constraint, Regularizer};
use embkit::{
    one_hot, Embedding, EmbeddingConfig, Error, Init, Optimizer, OptimizerConfig, SgdConfig,
};
use ndarray::{arr2, array, aview1, Array2, ArrayView2};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

/// A table shape and a batch of ids that are all rows of it.
fn shape_and_ids() -> impl Strategy<Value = (usize, usize, Vec<u32>)> {
    (1usize..64, 1usize..9).prop_flat_map(|(rows, dim)| {
        let ids = prop::collection::vec(0..rows as u32, 0..32);
        (Just(rows), Just(dim), ids)
    })
}

/// The slow definition: build each one-hot row and multiply by `w`.
fn one_hot_times(w: &[f32], rows: usize, dim: usize, ids: &[u32]) -> Vec<f32> {
    let hot = one_hot(ids, rows).unwrap();
    let w = ArrayView2::from_shape((rows, dim), w).unwrap();
    hot.dot(&w).iter().copied().collect()
}

proptest! {
    /// The gather computes exactly the one-hot product it stands for.
    #[test]
    fn forward_equals_one_hot_product((rows, dim, ids) in shape_and_ids(), seed: u64) {
        let mut table = EmbeddingConfig::new(rows, dim)
            .with_init(Init::Normal { std: 1.0 })
            .init(&mut StdRng::seed_from_u64(seed))
            .unwrap();
        let want = one_hot_times(table.weights(), rows, dim, &ids);
        let got = table.forward(aview1(&ids)).unwrap();
        prop_assert_eq!(got.shape(), &[ids.len(), dim]);
        prop_assert_eq!(got.iter().copied().collect::<Vec<_>>(), want);
    }

    /// Any id at or past the last row is refused, never clamped.
    #[test]
    fn forward_rejects_ids_past_the_table(rows in 1usize..64, past in 0u32..8) {
        let mut table = EmbeddingConfig::new(rows, 2).init(&mut StdRng::seed_from_u64(0)).unwrap();
        prop_assert!(table.forward(aview1(&[rows as u32 + past])).is_err());
    }

    /// The row gradient scattered into a dense matrix equals the dense
    /// gradient of the gather, `one_hot(ids)ᵀ · grad_out`, repeated ids
    /// summed.
    #[test]
    fn row_gradient_scattered_equals_dense_gradient(
        (rows, dim, ids) in shape_and_ids(),
        seed: u64,
    ) {
        let mut table = EmbeddingConfig::new(rows, dim).init(&mut StdRng::seed_from_u64(seed)).unwrap();
        let grad_out = Init::Normal { std: 1.0 }
            .sample(ids.len(), dim, &mut StdRng::seed_from_u64(seed ^ 1))
            .unwrap();
        let g = table.backward(&ids, &grad_out).unwrap().clone();
        let hot = one_hot(&ids, rows).unwrap();
        let go = Array2::from_shape_vec((ids.len(), dim), grad_out).unwrap();
        let dense = hot.t().dot(&go);
        let sparse = Array2::from_shape_vec((rows, dim), g.to_dense(rows)).unwrap();
        for (a, b) in sparse.iter().zip(dense.iter()) {
            prop_assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{} vs {}", a, b);
        }
        // Sorted, unique, and only ids of the batch.
        prop_assert!(g.ids().windows(2).all(|w| w[0] < w[1]));
        prop_assert!(g.ids().iter().all(|id| ids.contains(id)));
        prop_assert!(g.len() <= ids.len());
    }

    /// With `scale_grad_by_freq`, the gradient is the finite-difference
    /// gradient of `Σ out ⊙ G` divided by each id's count in the batch.
    #[test]
    fn frequency_scaled_gradient_is_the_true_gradient_over_the_count(
        (rows, dim, ids) in shape_and_ids(),
        seed: u64,
    ) {
        let config = EmbeddingConfig::new(rows, dim)
            .with_init(Init::Normal { std: 1.0 })
            .with_scale_grad_by_freq(true);
        let mut table = config.init(&mut StdRng::seed_from_u64(seed)).unwrap();
        let g_out = Init::Normal { std: 1.0 }
            .sample(ids.len(), dim, &mut StdRng::seed_from_u64(seed ^ 1))
            .unwrap();
        let g = table.backward(&ids, &g_out).unwrap().clone();
        let numeric = table_numeric_gradient(&mut table, &ids, &g_out);
        for (k, (id, row)) in g.iter().enumerate() {
            let count = ids.iter().filter(|&&i| i == id).count() as f32;
            prop_assert_eq!(g.counts()[k] as f32, count);
            for (j, &x) in row.iter().enumerate() {
                let want = numeric[id as usize * dim + j] as f32 / count;
                prop_assert!((x - want).abs() <= 1e-3 * (1.0 + want.abs()), "{} vs {}", x, want);
            }
        }
    }
}

// ---------------------------------------------------------------------
// Shared data and helpers.

const W: [[f32; 3]; 4] = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 1.0, 0.5], [0.1, 0.2, -0.3]];
const G5: [f32; 15] =
    [0.3, -0.2, 0.1, 0.7, 0.4, -0.5, -0.6, 0.9, 0.2, 0.05, -0.15, 0.25, 1.1, -0.3, 0.6];
const IDS5: [u32; 5] = [1, 2, 1, 3, 2];

/// `W` with the options of `config`, as PyTorch's `from_pretrained`.
fn table_with(config: EmbeddingConfig) -> Embedding {
    Embedding::from_pretrained_with(arr2(&W).view(), config).unwrap()
}

fn sgd(learning_rate: f32) -> Box<dyn Optimizer> {
    OptimizerConfig::from(SgdConfig::new().with_learning_rate(learning_rate)).build().unwrap()
}

/// `steps` training steps of `Σ out ⊙ g` with SGD at 0.1: forward,
/// backward, [`Embedding::step`], `finish_step`.
fn train(table: &mut Embedding, ids: &[u32], g: &[f32], steps: usize) {
    let mut optimizer = sgd(0.1);
    let mut out = Vec::new();
    for _ in 0..steps {
        table.forward_into(ids, &mut out).unwrap();
        table.backward(ids, g).unwrap();
        table.step(optimizer.as_mut(), "embedding").unwrap();
        optimizer.finish_step();
    }
}

fn forward(table: &mut Embedding, ids: &[u32]) -> Vec<f32> {
    let mut out = Vec::new();
    table.forward_into(ids, &mut out).unwrap();
    out
}

/// Asserts that `got` and `want` differ by at most `ulps` units in the
/// last place of `want` (with a floor at the spacing of 1.0, for values
/// near 0 that come from cancellation).
#[track_caller]
fn assert_close(got: &[f32], want: &[f32], ulps: f32) {
    assert_eq!(got.len(), want.len(), "lengths of {got:?} and {want:?}");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let tol = ulps * f32::EPSILON * b.abs().max(1.0);
        assert!((a - b).abs() <= tol, "index {i}: {a} vs {b} (tolerance {tol})\n{got:?}");
    }
}

/// `Σ forward(ids) ⊙ g_out + regularization_loss`, in `f64`: the loss
/// whose gradient [`Embedding::backward`] computes.
fn loss(table: &mut Embedding, ids: &[u32], g_out: &[f32]) -> f64 {
    let data: f64 = forward(table, ids).iter().zip(g_out).map(|(&o, &g)| o as f64 * g as f64).sum();
    table.backward(ids, g_out).unwrap();
    data + table.regularization_loss() as f64
}

/// Central finite differences of `loss_at(x)` with respect to each value
/// of `x`, with a step of 1e-2 (the losses here are at most quadratic, so
/// the differences are exact up to rounding).
fn numeric_gradient(x: &[f32], mut loss_at: impl FnMut(&[f32]) -> f64) -> Vec<f64> {
    let h = 1e-2f32;
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let w = x[i];
            x[i] = w + h;
            let up = loss_at(&x);
            x[i] = w - h;
            let down = loss_at(&x);
            x[i] = w;
            (up - down) / ((w + h) as f64 - (w - h) as f64)
        })
        .collect()
}

/// The gradient of the table's weights by finite differences.
fn table_numeric_gradient(table: &mut Embedding, ids: &[u32], g_out: &[f32]) -> Vec<f64> {
    let w0 = table.weights().to_vec();
    let numeric = numeric_gradient(&w0, |w| {
        table.weights_mut().copy_from_slice(w);
        loss(table, ids, g_out)
    });
    table.weights_mut().copy_from_slice(&w0);
    numeric
}

#[track_caller]
fn assert_near(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!((a as f64 - b).abs() <= tol * (1.0 + b.abs()), "index {i}: {a} vs {b}\n{got:?}");
    }
}

// ---------------------------------------------------------------------
// padding_idx (PyTorch).

/// `torch_run(ids5, padding_idx=1)`; `padding_idx=-3` prints the same.
#[test]
fn padding_row_gets_no_gradient_and_keeps_its_pretrained_value() {
    #[rustfmt::skip]
    let (want_out, want_grad, want_after) = (
        [1.5, 0.25, -0.75, -2.0, 1.0, 0.5, 1.5, 0.25, -0.75, 0.1, 0.2, -0.3, -2.0, 1.0, 0.5],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.8, 0.099999994, 0.100000024, 0.05, -0.15, 0.25],
        [0.5, -1.0, 2.0, 1.5, 0.25, -0.75,
         -2.5400002, 0.97, 0.47000003, 0.08499999, 0.245, -0.37500003],
    );
    for idx in [1, -3] {
        let mut table = table_with(EmbeddingConfig::new(4, 3).with_padding_idx(idx));
        assert_eq!(table.config().padding_idx, Some(1));
        // The padding row is returned as it is: from_pretrained keeps it.
        assert_eq!(forward(&mut table, &IDS5), want_out);
        let g = table.backward(&IDS5, &G5).unwrap();
        assert_eq!(g.ids(), &[2, 3], "no entry at all for the padding id");
        assert_eq!(g.counts(), &[2, 1]);
        assert_eq!(g.to_dense(4), want_grad);
        train(&mut table, &IDS5, &G5, 3);
        assert_close(table.weights(), &want_after, 2.0);
    }
}

#[test]
fn padding_row_starts_at_zero() {
    let config = EmbeddingConfig::new(6, 4).with_init(Init::Constant { value: 0.5 });
    let table = config.with_padding_idx(-2).init(&mut StdRng::seed_from_u64(0)).unwrap();
    assert_eq!(table.config().padding_idx, Some(4));
    assert_eq!(table.row(4), &[0.0; 4]);
    assert_eq!(table.weights().iter().filter(|&&x| x == 0.5).count(), 5 * 4);
}

#[test]
fn padding_idx_outside_the_table_is_refused_for_both_signs() {
    let mut rng = StdRng::seed_from_u64(0);
    for idx in [4, 5, -5, -100] {
        let err = EmbeddingConfig::new(4, 2).with_padding_idx(idx).init(&mut rng).unwrap_err();
        let want = format!(
            "invalid padding_idx: must be in -4..4 (negative counts from the end), got {idx}"
        );
        assert_eq!(err.to_string(), want);
    }
    for (idx, row) in [(3, 3), (-4, 0), (-1, 3), (0, 0)] {
        assert_eq!(EmbeddingConfig::new(4, 2).with_padding_idx(idx).padding_row(), Some(row));
    }
}

#[test]
fn frozen_pretrained_table_keeps_its_padding_row_and_does_not_train() {
    let config = EmbeddingConfig::new(4, 3).with_padding_idx(0).with_trainable(false);
    let mut table = table_with(config);
    assert_eq!(table.row(0), &[0.5, -1.0, 2.0]);
    train(&mut table, &IDS5, &G5, 2);
    assert_eq!(table.weights_view(), arr2(&W));
    // A matrix of another shape than the config's is refused.
    let err = Embedding::from_pretrained_with(arr2(&W).view(), EmbeddingConfig::new(4, 2));
    assert!(matches!(err, Err(Error::ShapeMismatch { .. })));
}

// ---------------------------------------------------------------------
// mask_zero (Keras).

/// `keras.layers.Embedding(5, 2, mask_zero=True).compute_mask(ids)` is
/// `ops.not_equal(ids, 0)`:
/// `[[True, True, False, False], [True, False, True, False]]`.
#[test]
fn mask_zero_masks_id_zero_and_leaves_the_output_alone() {
    let config = EmbeddingConfig::new(5, 2).with_mask_zero(true);
    let mut table = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
    let ids = array![[3u32, 1, 0, 0], [4, 0, 2, 0]];
    let mask = table.compute_mask(ids.view()).unwrap();
    assert_eq!(mask, array![[true, true, false, false], [true, false, true, false]]);
    let out = table.forward(ids.view()).unwrap();
    assert_eq!(out.slice(ndarray::s![1, 1, ..]).to_vec(), table.row(0).to_vec());
    assert!(table.row(0).iter().any(|&x| x != 0.0), "row 0 is not zeroed");
    // Row 0 is an ordinary row for the gradient too.
    assert_eq!(table.backward(&[0, 0], &[1.0; 4]).unwrap().ids(), &[0]);

    let plain = EmbeddingConfig::new(5, 2).init(&mut StdRng::seed_from_u64(0)).unwrap();
    assert_eq!(plain.compute_mask(ids.view()), None);
}

#[test]
fn mask_zero_needs_a_row_besides_zero() {
    let err = EmbeddingConfig::new(1, 2).with_mask_zero(true).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid mask_zero: reserves id 0, so num_embeddings (vocabulary size + 1) must be at \
         least 2, got 1"
    );
    assert!(EmbeddingConfig::new(2, 2).with_mask_zero(true).validate().is_ok());
}

// ---------------------------------------------------------------------
// max_norm, norm_type (PyTorch).

/// `torch_run(ids5, max_norm=1.0)`: rows 1 and 2 (norms 1.70 and 2.29)
/// are renormalised, each once; row 3 (norm 0.37) is not; row 0 (norm
/// 2.29) is not looked up and keeps its norm. The gradient is the plain
/// gather gradient. PyTorch's table after the first forward is
/// `renormed`, bit for bit.
#[test]
fn max_norm_renormalises_each_looked_up_row_once_before_the_gather() {
    #[rustfmt::skip]
    let (renormed, want_grad, want_after) = (
        [0.5, -1.0, 2.0, 0.8846517, 0.14744195, -0.44232586,
         -0.8728715, 0.43643576, 0.21821788, 0.1, 0.2, -0.3],
        [0.0, 0.0, 0.0, -0.3, 0.7, 0.3, 1.8, 0.099999994, 0.100000024, 0.05, -0.15, 0.25],
        [0.5, -1.0, 2.0, 0.91274375, -0.06516461, -0.49982956,
         -1.119629, 0.29921287, 0.13657632, 0.08499999, 0.245, -0.37500003],
    );
    let mut table = table_with(EmbeddingConfig::new(4, 3).with_max_norm(1.0));
    let out = forward(&mut table, &IDS5);
    assert_eq!(table.weights(), renormed);
    assert_eq!(out[..6], renormed[3..9]);
    assert_eq!(out[6..9], out[..3], "a repeated id is scaled once");
    assert_eq!(table.backward(&IDS5, &G5).unwrap().to_dense(4), want_grad);

    let mut table = table_with(EmbeddingConfig::new(4, 3).with_max_norm(1.0));
    train(&mut table, &IDS5, &G5, 3);
    assert_close(table.weights(), &want_after, 2.0);
}

/// `torch_run(ids5, max_norm=1.5, norm_type=1.0)`,
/// `torch_run(ids5, max_norm=0.8, norm_type=float("inf"))` and
/// `torch_run(ids5, max_norm=1.0, norm_type=3.0)`: the forward output and
/// the table after 3 SGD steps.
#[test]
fn max_norm_takes_the_norm_type_as_p() {
    #[rustfmt::skip]
    let cases: [(f32, f32, [f32; 15], [f32; 12]); 3] = [
        (1.5, 1.0,
         [0.9, 0.14999999, -0.45, -0.8571428, 0.4285714, 0.2142857, 0.9, 0.14999999, -0.45,
          0.1, 0.2, -0.3, -0.8571428, 0.4285714, 0.2142857],
         [0.5, -1.0, 2.0, 0.99000007, -0.06000001, -0.54,
          -1.1894975, 0.32273543, 0.14776702, 0.08499999, 0.245, -0.37500003]),
        (0.8, f32::INFINITY,
         [0.79999995, 0.13333333, -0.39999998, -0.79999995, 0.39999998, 0.19999999,
          0.79999995, 0.13333333, -0.39999998, 0.1, 0.2, -0.3,
          -0.79999995, 0.39999998, 0.19999999],
         [0.5, -1.0, 2.0, 0.8299999, -0.07863213, -0.458393,
          -0.97999996, 0.24172844, 0.10845061, 0.08499999, 0.245, -0.37500003]),
        (1.0, 3.0,
         [0.96018434, 0.16003072, -0.48009217, -0.957089, 0.4785445, 0.23927225,
          0.96018434, 0.16003072, -0.48009217, 0.1, 0.2, -0.3,
          -0.957089, 0.4785445, 0.23927225],
         [0.5, -1.0, 2.0, 0.9848207, -0.05347172, -0.5359321,
          -1.1659877, 0.324443, 0.14929393, 0.08499999, 0.245, -0.37500003]),
    ];
    for (max_norm, p, want_out, want_after) in cases {
        let config = EmbeddingConfig::new(4, 3).with_max_norm(max_norm).with_norm_type(p);
        let mut table = table_with(config.clone());
        assert_eq!(forward(&mut table, &IDS5), want_out, "p = {p}");
        let mut table = table_with(config);
        train(&mut table, &IDS5, &G5, 3);
        assert_close(table.weights(), &want_after, 4.0);
    }
}

#[test]
fn rows_at_or_below_max_norm_are_left_bit_for_bit() {
    // A norm of exactly 1 is not strictly greater than max_norm 1.
    let config = EmbeddingConfig::new(2, 2).with_max_norm(1.0);
    let w = array![[0.6, 0.8], [0.0, 0.0]];
    let mut table = Embedding::from_pretrained_with(w.view(), config).unwrap();
    forward(&mut table, &[0, 1, 0]);
    assert_eq!(table.weights(), &[0.6, 0.8, 0.0, 0.0]);
}

#[test]
fn max_norm_and_norm_type_must_be_positive() {
    for bad in [0.0, -1.0, f32::NAN] {
        let err = EmbeddingConfig::new(4, 2).with_max_norm(bad).validate().unwrap_err();
        assert_eq!(err.to_string(), format!("invalid max_norm: must be greater than 0, got {bad}"));
        let err = EmbeddingConfig::new(4, 2).with_norm_type(bad).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid norm_type: must be greater than 0 (or infinity), got {bad}")
        );
    }
    assert!(EmbeddingConfig::new(4, 2).with_norm_type(f32::INFINITY).validate().is_ok());
}

#[test]
fn max_norm_checks_every_id_before_touching_a_row() {
    let mut table = table_with(EmbeddingConfig::new(4, 3).with_max_norm(0.1));
    let mut out = Vec::new();
    assert!(table.forward_into(&[0, 1, 9], &mut out).is_err());
    assert_eq!(table.weights_view(), arr2(&W));
}

// ---------------------------------------------------------------------
// scale_grad_by_freq (PyTorch).

/// `torch_run(ids5, scale_grad_by_freq=True)`, then with
/// `ids = [1, 2, 1, 3, 1]` (a count of 3, where `1/3` rounds) with and
/// without `padding_idx=2`. PyTorch's CPU kernel adds `(float)(1/count) ·
/// g` per occurrence with a fused multiply-add, so the gradients match
/// bit for bit.
#[test]
fn scale_grad_by_freq_divides_each_row_by_its_count() {
    #[rustfmt::skip]
    let (want_grad, want_after) = (
        [0.0, 0.0, 0.0, -0.15, 0.35, 0.15, 0.9, 0.049999997, 0.050000012, 0.05, -0.15, 0.25],
        [0.5, -1.0, 2.0, 1.545, 0.14500001, -0.79499996,
         -2.2699997, 0.985, 0.485, 0.08499999, 0.245, -0.37500003],
    );
    let mut table = table_with(EmbeddingConfig::new(4, 3).with_scale_grad_by_freq(true));
    let g = table.backward(&IDS5, &G5).unwrap();
    assert_eq!(g.counts(), &[2, 2, 1]);
    assert_eq!(g.to_dense(4), want_grad);
    train(&mut table, &IDS5, &G5, 3);
    assert_close(table.weights(), &want_after, 2.0);

    #[rustfmt::skip]
    let (want_grad, want_after, want_after_padded) = (
        [0.0, 0.0, 0.0, 0.26666668, 0.13333333, 0.3, 0.7, 0.4, -0.5, 0.05, -0.15, 0.25],
        [0.5, -1.0, 2.0, 1.4200001, 0.21, -0.8400001,
         -2.2099998, 0.87999994, 0.65000004, 0.08499999, 0.245, -0.37500003],
        [0.5, -1.0, 2.0, 1.4200001, 0.21, -0.8400001,
         -2.0, 1.0, 0.5, 0.08499999, 0.245, -0.37500003],
    );
    let ids = [1, 2, 1, 3, 1];
    let mut table = table_with(EmbeddingConfig::new(4, 3).with_scale_grad_by_freq(true));
    let g = table.backward(&ids, &G5).unwrap();
    assert_eq!(g.counts(), &[3, 1, 1]);
    assert_eq!(g.to_dense(4), want_grad);
    train(&mut table, &ids, &G5, 3);
    assert_close(table.weights(), &want_after, 2.0);

    let config = EmbeddingConfig::new(4, 3).with_scale_grad_by_freq(true).with_padding_idx(2);
    let mut table = table_with(config);
    let g = table.backward(&ids, &G5).unwrap();
    assert_eq!(g.ids(), &[1, 3]);
    assert_eq!(g.rows(), [&want_grad[3..6], &want_grad[9..]].concat());
    train(&mut table, &ids, &G5, 3);
    assert_close(table.weights(), &want_after_padded, 2.0);
}

#[test]
fn scale_grad_by_freq_scales_the_squares_by_the_count_squared() {
    let mut table = table_with(EmbeddingConfig::new(4, 3).with_scale_grad_by_freq(true));
    let g = table.backward(&[0, 0], &[1.0, 2.0, 3.0, 3.0, 2.0, 1.0]).unwrap();
    assert_eq!(g.rows(), &[2.0, 2.0, 2.0]);
    // (1² + 3²) / 4, (2² + 2²) / 4, (3² + 1²) / 4
    assert_eq!(g.squares(), &[2.5, 2.0, 2.5]);
}

// ---------------------------------------------------------------------
// Regularisers (Keras).

/// A batch that looks up every row, row 1 three times.
const IDS6: [u32; 6] = [1, 2, 1, 3, 0, 1];
#[rustfmt::skip]
const G6: [f32; 18] = [
    0.3, -0.2, 0.1, 0.7, 0.4, -0.5, -0.6, 0.9, 0.2,
    0.05, -0.15, 0.25, 1.1, -0.3, 0.6, -0.4, 0.35, -0.05,
];

/// ```python
/// G6 = np.concatenate([G5, [[-0.4, 0.35, -0.05]]]).astype(np.float32); ids6 = [1, 2, 1, 3, 0, 1]
/// for reg in [keras.regularizers.L1(0.01), keras.regularizers.L2(0.02),
///             keras.regularizers.L1L2(0.01, 0.02)]:
///     keras_run(keras.layers.Embedding(4, 3, embeddings_regularizer=reg, weights=[W]), ids6, G6, 3)
/// ```
///
/// When a batch looks up every row, the lazy penalty is Keras's penalty:
/// the same gradient and loss, bit for bit, and the same table after 3
/// SGD steps.
#[test]
fn regularizer_matches_keras_when_the_batch_covers_the_table() {
    #[rustfmt::skip]
    let cases: [(Regularizer, [f32; 12], f32, [f32; 12]); 3] = [
        (Regularizer::l1(0.01),
         [1.11, -0.31, 0.61, -0.69000006, 1.06, 0.24, 0.69, 0.41, -0.49, 0.060000002, -0.14, 0.24],
         0.101,
         [0.167, -0.90699995, 1.817, 1.707, -0.068, -0.82199997,
          -2.207, 0.877, 0.6470001, 0.08200001, 0.242, -0.37199998]),
        (Regularizer::l2(0.02),
         [1.12, -0.34, 0.68, -0.64000005, 1.06, 0.22, 0.62, 0.44, -0.48, 0.054, -0.142, 0.238],
         0.2703,
         [0.16534221, -0.89840746, 1.7968149, 1.691233, -0.066729695, -0.81573635,
          -2.1852572, 0.86852723, 0.64342475, 0.08386471, 0.24242984, -0.3711148]),
        (Regularizer::l1_l2(0.01, 0.02),
         [1.13, -0.35, 0.69, -0.63000005, 1.0699999, 0.21, 0.61, 0.45, -0.47, 0.064, -0.132, 0.228],
         0.3713,
         [0.16235416, -0.8954194, 1.7938268, 1.6882449, -0.06971769, -0.8127484,
          -2.182269, 0.86553925, 0.64043677, 0.0808767, 0.23944181, -0.36812678]),
    ];
    for (reg, want_grad, want_penalty, want_after) in cases {
        let mut table = table_with(EmbeddingConfig::new(4, 3).with_regularizer(reg));
        let g = table.backward(&IDS6, &G6).unwrap();
        assert_eq!(g.ids(), &[0, 1, 2, 3]);
        assert_eq!(g.rows(), want_grad, "{reg:?}");
        assert_eq!(table.regularization_loss(), want_penalty, "{reg:?}");
        train(&mut table, &IDS6, &G6, 3);
        assert_close(table.weights(), &want_after, 4.0);
    }
}

/// ```python
/// keras_run(keras.layers.Embedding(4, 3, embeddings_regularizer=reg, weights=[W]), ids5, G5, 1)
/// print(lit([reg(tf.constant(W[1:]))]))   # the penalty of the looked-up rows
/// ```
///
/// Keras's gradient of rows 1 to 3 is matched bit for bit. Keras also
/// gives row 0, which the batch does not look up, the penalty's gradient
/// (for L1 `[0.01, -0.01, 0.01]`) and moves it; embkit leaves it alone,
/// and its loss covers rows 1 to 3 only (Keras's whole-table penalty is
/// 0.101 for L1).
#[test]
fn regularizer_is_lazy_matching_keras_on_the_looked_up_rows_only() {
    #[rustfmt::skip]
    let cases: [(Regularizer, [f32; 9], f32); 3] = [
        (Regularizer::l1(0.01),
         [-0.29000002, 0.71, 0.29000002, 1.79, 0.10999999, 0.11000002, 0.060000002, -0.14, 0.24],
         0.066),
        (Regularizer::l2(0.02),
         [-0.24000001, 0.71, 0.27, 1.7199999, 0.13999999, 0.12000002, 0.054, -0.142, 0.238],
         0.1653),
        (Regularizer::l1_l2(0.01, 0.02),
         [-0.23, 0.71999997, 0.26000002, 1.7099999, 0.14999999, 0.13000003, 0.064, -0.132, 0.228],
         0.2313),
    ];
    for (reg, want_grad, want_penalty) in cases {
        let mut table = table_with(EmbeddingConfig::new(4, 3).with_regularizer(reg));
        let g = table.backward(&IDS5, &G5).unwrap();
        assert_eq!(g.ids(), &[1, 2, 3]);
        assert_eq!(g.rows(), want_grad, "{reg:?}");
        // With the penalty's gradient added, Keras's gradient is dense, so
        // its accumulators square the summed rows, penalty included.
        let squared: Vec<f32> = want_grad.iter().map(|x| x * x).collect();
        assert_eq!(g.squares(), &squared[..], "{reg:?}");
        assert_eq!(table.regularization_loss(), want_penalty, "{reg:?}");
        train(&mut table, &IDS5, &G5, 1);
        assert_eq!(table.row(0), &W[0], "Keras would have moved row 0 by the penalty");
    }
}

/// The gradient of `Σ out ⊙ G + regularization_loss` by finite
/// differences, with the padding id in the batch.
#[test]
fn regularized_gradient_is_the_gradient_of_loss_plus_penalty() {
    let config = EmbeddingConfig::new(4, 3)
        .with_regularizer(Regularizer::l1_l2(0.3, 0.2))
        .with_padding_idx(3);
    let mut table = table_with(config);
    let g = table.backward(&IDS5, &G5).unwrap().to_dense(4);
    let numeric = table_numeric_gradient(&mut table, &IDS5, &G5);
    assert_near(&g[..9], &numeric[..9], 1e-4);
    // The padding row's output does change the loss, but as in PyTorch
    // it gets neither the data nor the penalty gradient.
    assert!(numeric[9..].iter().any(|&x| x != 0.0));
    assert_eq!(g[9..], [0.0; 3]);
}

#[test]
fn negative_or_non_finite_regularizer_factors_are_refused() {
    let config = EmbeddingConfig::new(4, 2).with_regularizer(Regularizer::l1(-0.01));
    let err = config.init(&mut StdRng::seed_from_u64(0)).unwrap_err();
    assert_eq!(err.to_string(), "invalid regularizer: l1 must be finite and at least 0, got -0.01");
    for reg in [Regularizer::l2(-1.0), Regularizer::l1_l2(0.0, f32::NAN)] {
        assert!(EmbeddingConfig::new(4, 2).with_regularizer(reg).validate().is_err());
    }
}

// ---------------------------------------------------------------------
// Constraints (Keras).

/// ```python
/// for c in [keras.constraints.MaxNorm(1.0, axis=0), keras.constraints.MaxNorm(1.0, axis=1),
///           keras.constraints.MaxNorm(), keras.constraints.NonNeg(),
///           keras.constraints.UnitNorm(axis=0), keras.constraints.UnitNorm(axis=1),
///           keras.constraints.MinMaxNorm(0.5, 1.0, rate=0.7, axis=0),
///           keras.constraints.MinMaxNorm(1.0, 2.0, rate=0.7, axis=1)]:
///     print(lit(c(tf.constant(W))))
/// ```
#[test]
fn constraints_match_keras_on_both_axes() {
    #[rustfmt::skip]
    let cases: [(Constraint, [f32; 12]); 8] = [
        (Constraint::max_norm(1.0),
         [0.19596544, -0.6896551, 0.9032775, 0.58789635, 0.17241378, -0.33872908,
          -0.78386176, 0.6896551, 0.22581938, 0.03919309, 0.13793103, -0.13549164]),
        (Constraint::max_norm(1.0).with_axis(1),
         [0.21821788, -0.43643576, 0.8728715, 0.88465166, 0.14744194, -0.44232583,
          -0.8728715, 0.43643576, 0.21821788, 0.09999998, 0.19999996, -0.29999995]),
        (Constraint::max_norm(2.0),
         [0.39193088, -0.99999994, 1.806555, 1.1757927, 0.24999999, -0.67745817,
          -1.5677235, 0.99999994, 0.45163876, 0.07838618, 0.19999999, -0.27098328]),
        (Constraint::non_neg(),
         [0.5, 0.0, 2.0, 1.5, 0.25, 0.0, 0.0, 1.0, 0.5, 0.1, 0.2, 0.0]),
        (Constraint::unit_norm(),
         [0.19596544, -0.6896551, 0.9032775, 0.58789635, 0.17241378, -0.33872905,
          -0.78386176, 0.6896551, 0.22581938, 0.03919309, 0.13793103, -0.13549162]),
        (Constraint::unit_norm().with_axis(-1),
         [0.21821788, -0.43643576, 0.8728715, 0.88465166, 0.14744194, -0.44232583,
          -0.8728715, 0.43643576, 0.21821788, 0.26726115, 0.5345223, -0.8017835]),
        (Constraint::min_max_norm(0.5, 1.0).with_rate(0.7),
         [0.2871758, -0.7827586, 1.2322943, 0.86152744, 0.19568965, -0.46211037,
          -1.1487032, 0.7827586, 0.30807358, 0.057435162, 0.15655172, -0.18484415]),
        (Constraint::min_max_norm(1.0, 2.0).with_rate(0.7).with_axis(1),
         [0.45550504, -0.9110101, 1.8220202, 1.5, 0.25, -0.75,
          -1.8220202, 0.9110101, 0.45550504, 0.21708278, 0.43416557, -0.6512484]),
    ];
    for (constraint, want) in cases {
        let mut w: Vec<f32> = W.iter().flatten().copied().collect();
        constraint.apply(&mut w, 4, 3);
        assert_eq!(w, want, "{constraint:?}");
    }
}

/// ```python
/// keras_run(keras.layers.Embedding(4, 3, weights=[W],
///     embeddings_constraint=keras.constraints.MaxNorm(1.0, axis=1)), ids5, G5, 3)
/// keras_run(keras.layers.Embedding(4, 3, weights=[W],
///     embeddings_constraint=keras.constraints.MaxNorm(2.0)), ids5, G5, 3)
/// ```
///
/// The constraint projects the whole table after each step, including
/// row 0, which the batch does not look up.
#[test]
fn constraint_is_applied_to_the_whole_table_after_each_step() {
    #[rustfmt::skip]
    let cases: [(Constraint, [f32; 12]); 2] = [
        (Constraint::max_norm(1.0).with_axis(1),
         [0.21821783, -0.43643567, 0.87287134, 0.8788324, -0.035489693, -0.47580856,
          -0.94949114, 0.28436965, 0.132666, 0.084999934, 0.24499986, -0.3749998]),
        (Constraint::max_norm(2.0),
         [0.31483117, -0.9999998, 1.7745185, 1.0166928, 0.03999998, -0.75149024,
          -1.6925197, 0.96999973, 0.41494772, 0.050933037, 0.24499996, -0.3378827]),
    ];
    for (constraint, want) in cases {
        let mut table = table_with(EmbeddingConfig::new(4, 3).with_constraint(constraint));
        // The lookup and the gradient do not see the constraint.
        assert_eq!(forward(&mut table, &IDS5)[..3], [1.5, 0.25, -0.75]);
        train(&mut table, &IDS5, &G5, 3);
        assert_close(table.weights(), &want, 4.0);
    }
}

#[test]
fn invalid_constraints_are_refused_by_the_config() {
    let config = EmbeddingConfig::new(4, 3).with_constraint(Constraint::max_norm(-2.0));
    let err = config.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid constraint: max_value must be finite and at least 0, got -2"
    );
}

// ---------------------------------------------------------------------
// LoRA (Keras).

const LORA_A: [f32; 8] = [0.3, -0.1, 0.2, 0.4, -0.5, 0.6, 0.05, -0.25];
const LORA_B: [f32; 6] = [0.1, -0.2, 0.3, 0.4, 0.05, -0.6];

/// `W` as the base, `A` and `B` as the factors, rank 2 and alpha 3 (a
/// scale of 1.5).
fn lora_table(config: EmbeddingConfig) -> Embedding {
    let base = W.iter().flatten().copied().collect();
    let config = config.with_lora(2, Some(3.0));
    Embedding::from_lora_parts(config, base, LORA_A.to_vec(), LORA_B.to_vec()).unwrap()
}

/// ```python
/// A = np.array([[0.3, -0.1], [0.2, 0.4], [-0.5, 0.6], [0.05, -0.25]], np.float32)
/// B = np.array([[0.1, -0.2, 0.3], [0.4, 0.05, -0.6]], np.float32)
/// def lora_layer(reg=None):
///     e = keras.layers.Embedding(4, 3, weights=[W], embeddings_regularizer=reg)
///     e.enable_lora(2, lora_alpha=3)
///     e.lora_embeddings_a.assign(A); e.lora_embeddings_b.assign(B)
///     return e
/// e = lora_layer(); print(lit(e.embeddings)); keras_run(e, ids5, G5, 3); print(lit(e.embeddings))
/// ```
///
/// The effective rows, the output and `dB` match bit for bit (a fused
/// multiply-add per term, as TensorFlow's matmul); `dA` to an ulp
/// (TensorFlow sums the three terms of each entry in another order).
#[test]
fn lora_matches_keras_forward_gradients_and_sgd_steps() {
    #[rustfmt::skip]
    let (effective, want_out, want_grad_a, want_grad_b) = (
        [0.485, -1.0975, 2.225, 1.77, 0.22, -1.02,
         -1.7149999, 1.195, -0.2650001, -0.042499997, 0.16625, -0.05250001],
        [1.77, 0.22, -1.02, -1.7149999, 1.195, -0.2650001, 1.77, 0.22, -1.02,
         -0.042499997, 0.16625, -0.05250001, -1.7149999, 1.195, -0.2650001],
        [-0.11999999, -0.3975, 0.285, 0.9974999, 0.165, -0.20625001],
        [-1.43625, 0.12374999, 0.033749986, 1.42125, 0.56624997, 0.17625004],
    );
    #[rustfmt::skip]
    let (want_a, want_b, want_effective) = (
        [0.3, -0.1, 0.26022288, 0.5218453, -0.70337397, 0.41154876, -0.0032959487, -0.18699065],
        [0.5667231, -0.24101678, 0.29166186, 0.048675127, -0.12713347, -0.6566976],
        [0.7477242, -1.0893875, 2.2297525, 1.7593129, 0.05640687, -1.1501962,
         -2.5678792, 1.175805, -0.21311563, 0.083545476, 0.23685072, -0.11724751],
    );
    let mut table = lora_table(EmbeddingConfig::new(4, 3));
    assert_eq!(table.merge_lora().weights(), effective);
    assert_eq!(forward(&mut table, &IDS5), want_out);
    table.backward(&IDS5, &G5).unwrap();
    assert!(table.grad().is_empty(), "the base table is frozen");
    let grad_a = table.lora_grad_a().unwrap();
    // Keras's row 0 of dA is 0: it is not looked up.
    assert_eq!(grad_a.ids(), &[1, 2, 3]);
    assert_close(grad_a.rows(), &want_grad_a, 2.0);
    assert_eq!(table.lora_grad_b().unwrap(), want_grad_b);

    train(&mut table, &IDS5, &G5, 3);
    assert_eq!(table.weights_view(), arr2(&W), "the base does not move");
    assert_close(table.lora_a().unwrap(), &want_a, 4.0);
    assert_close(table.lora_b().unwrap(), &want_b, 4.0);
    let mut merged = table.merge_lora();
    assert_close(merged.weights(), &want_effective, 4.0);
    assert_eq!(merged.config().lora, None);
    assert_eq!(forward(&mut merged, &IDS5), forward(&mut table, &IDS5));
}

/// ```python
/// e = lora_layer(keras.regularizers.L2(0.02)); keras_run(e, ids5, G5, 1)
/// r = keras.regularizers.L2(0.02); print(lit([r(tf.constant(A[1:])) + r(tf.constant(B))]))
/// ```
///
/// As in Keras, the penalty applies to the factors, not to the frozen
/// base: to the looked-up rows of `A` (Keras also gives row 0 of `A`
/// `[0.012, -0.004]`) and to all of `B`.
#[test]
fn lora_regularizer_penalises_the_factors_as_keras() {
    let mut table = lora_table(EmbeddingConfig::new(4, 3).with_regularizer(Regularizer::l2(0.02)));
    table.backward(&IDS5, &G5).unwrap();
    #[rustfmt::skip]
    let (want_grad_a, want_grad_b) = (
        [-0.11199999, -0.3815, 0.265, 1.0214999, 0.16700001, -0.21625002],
        [-1.43225, 0.115749985, 0.045749985, 1.43725, 0.56824994, 0.15225004],
    );
    assert_close(table.lora_grad_a().unwrap().rows(), &want_grad_a, 2.0);
    assert_eq!(table.lora_grad_b().unwrap(), want_grad_b);
    assert_eq!(table.regularization_loss(), 0.030749999);
}

/// The gradients of `A` and `B` are those of `Σ out ⊙ G +
/// regularization_loss`, by finite differences, with repeated ids and a
/// penalty; with `scale_grad_by_freq`, those of the loss whose upstream
/// rows are divided by their id's count.
#[test]
fn lora_gradients_match_finite_differences() {
    let config = EmbeddingConfig::new(4, 3).with_regularizer(Regularizer::l1_l2(0.1, 0.3));
    let mut table = lora_table(config.clone());
    table.backward(&IDS5, &G5).unwrap();
    let dense_a = table.lora_grad_a().unwrap().to_dense(4);
    let grad_b = table.lora_grad_b().unwrap().to_vec();
    let base: Vec<f32> = W.iter().flatten().copied().collect();
    let lora_config = config.with_lora(2, Some(3.0));
    let rebuild = |a: &[f32], b: &[f32]| {
        let (base, a, b) = (base.clone(), a.to_vec(), b.to_vec());
        Embedding::from_lora_parts(lora_config.clone(), base, a, b).unwrap()
    };
    let numeric_a = numeric_gradient(&LORA_A, |a| loss(&mut rebuild(a, &LORA_B), &IDS5, &G5));
    let numeric_b = numeric_gradient(&LORA_B, |b| loss(&mut rebuild(&LORA_A, b), &IDS5, &G5));
    assert_near(&dense_a, &numeric_a, 1e-4);
    assert_near(&grad_b, &numeric_b, 1e-4);

    // Ids 1 and 2 occur twice, id 3 once.
    let mut scaled = lora_table(EmbeddingConfig::new(4, 3).with_scale_grad_by_freq(true));
    scaled.backward(&IDS5, &G5).unwrap();
    let halved: Vec<f32> = G5
        .chunks(3)
        .zip(IDS5)
        .flat_map(|(g, id)| g.iter().map(move |&x| if id == 3 { x } else { x / 2.0 }))
        .collect();
    let mut plain = lora_table(EmbeddingConfig::new(4, 3));
    let numeric_a =
        numeric_gradient(&LORA_A, |a| loss(&mut rebuild_plain(a, &LORA_B), &IDS5, &halved));
    let numeric_b =
        numeric_gradient(&LORA_B, |b| loss(&mut rebuild_plain(&LORA_A, b), &IDS5, &halved));
    assert_near(&scaled.lora_grad_a().unwrap().to_dense(4), &numeric_a, 1e-4);
    assert_near(scaled.lora_grad_b().unwrap(), &numeric_b, 1e-4);
    plain.backward(&IDS5, &halved).unwrap();
    assert_close(scaled.lora_grad_b().unwrap(), plain.lora_grad_b().unwrap(), 2.0);
}

/// A LoRA table of `W`, `a`, `b` with no other option.
fn rebuild_plain(a: &[f32], b: &[f32]) -> Embedding {
    let base = W.iter().flatten().copied().collect();
    let config = EmbeddingConfig::new(4, 3).with_lora(2, Some(3.0));
    Embedding::from_lora_parts(config, base, a.to_vec(), b.to_vec()).unwrap()
}

#[test]
fn lora_steps_its_factors_under_their_own_optimizer_keys() {
    let mut table = lora_table(EmbeddingConfig::new(4, 3));
    let mut optimizer = sgd(0.1);
    table.backward(&IDS5, &G5).unwrap();
    table.step(optimizer.as_mut(), "emb").unwrap();
    // "emb.lora_b" was first seen with 2 x 3 values.
    let err = optimizer.step_dense("emb.lora_b", &mut [0.0; 5], &[0.0; 5]).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert!(optimizer.step_dense("emb", &mut [0.0; 5], &[0.0; 5]).is_ok(), "no state for the base");
}

#[test]
fn enabling_lora_on_a_pretrained_table_keeps_its_output() {
    let mut table = table_with(EmbeddingConfig::new(4, 3).with_padding_idx(2));
    let before = forward(&mut table, &IDS5);
    table.enable_lora(2, None, &mut StdRng::seed_from_u64(7)).unwrap();
    assert_eq!(table.config().lora.map(|l| (l.rank, l.alpha)), Some((2, 2.0)));
    assert_eq!(forward(&mut table, &IDS5), before, "B starts at zero");
    let a = table.lora_a().unwrap();
    let limit = (6.0f32 / 4.0).sqrt(); // he_uniform, fan_in = num_embeddings
    assert!(a.iter().all(|x| x.abs() <= limit));
    assert_eq!(&a[4..6], &[0.0, 0.0], "the padding row of A is zero");
    train(&mut table, &IDS5, &G5, 2);
    assert_eq!(table.weights_view(), arr2(&W));
    let after = forward(&mut table, &IDS5);
    assert_ne!(after, before);
    assert_eq!(after[3..6], before[3..6], "the padding row's effective row does not move");
}

#[test]
fn lora_needs_a_positive_rank_and_a_finite_alpha() {
    let mut rng = StdRng::seed_from_u64(0);
    let err = EmbeddingConfig::new(4, 2).with_lora(0, None).init(&mut rng).unwrap_err();
    assert_eq!(err.to_string(), "invalid lora: rank must be at least 1, got 0");
    assert!(EmbeddingConfig::new(4, 2).with_lora(1, Some(f32::NAN)).validate().is_err());
    let mut table = table_with(EmbeddingConfig::new(4, 3));
    assert!(table.enable_lora(0, None, &mut rng).is_err());
    assert_eq!(table.config().lora, None, "the table is unchanged on an error");
}

// ---------------------------------------------------------------------
// The training entry point.

#[test]
fn gradients_are_finite_covers_the_table_and_the_lora_factors() {
    let mut nan_g = G5;
    nan_g[4] = f32::NAN;
    for mut table in
        [table_with(EmbeddingConfig::new(4, 3)), lora_table(EmbeddingConfig::new(4, 3))]
    {
        table.backward(&IDS5, &G5).unwrap();
        assert!(table.gradients_are_finite());
        table.backward(&IDS5, &nan_g).unwrap();
        assert!(!table.gradients_are_finite());
    }
}

#[test]
fn pytorch_options_combine_and_the_padding_row_is_renormalised_but_never_stepped() {
    // PyTorch renormalises every looked-up row, the padding row included.
    let config = EmbeddingConfig::new(4, 3)
        .with_padding_idx(2)
        .with_max_norm(1.0)
        .with_scale_grad_by_freq(true);
    let mut table = table_with(config);
    train(&mut table, &IDS5, &G5, 3);
    assert_eq!(table.row(2), &[-0.8728715, 0.43643576, 0.21821788]);
    let g = table.backward(&IDS5, &G5).unwrap();
    assert_eq!(g.ids(), &[1, 3]);
    assert_eq!(g.rows()[3..], G5[9..12]);
}

/// With a regulariser, Keras's table gradient is dense (the penalty's
/// gradient is added to it), so its accumulators square the summed rows;
/// `TableUpdates::Keras` must do the same. Keras 3.15 / TF 2.21:
///
/// ```text
/// W0 = [[0.5,-0.25],[1.0,2.0],[-1.5,0.75]]; ids = [1,1,2]; G = [[0.3,-0.7],[0.9,0.2],[0.1,0.4]]
/// emb = keras.layers.Embedding(3, 2, embeddings_regularizer=keras.regularizers.L2(0.1))
/// two steps of: loss = sum(emb(ids) * G) + sum(emb.losses); opt.apply(grads)
/// adagrad(0.1): [ 0.44258896,-0.21989533, 0.8331354 , 2.057411  ,-1.4014021 , 0.59900695]
/// rmsprop(0.1): [ 0.069544256,-0.018792637, 0.4594453, 2.4304557, -0.9988755, 0.21806093]
/// adam(0.1):    [ 0.3011946 ,-0.05426351, 0.80004215, 2.1988053 ,-1.3004166 , 0.5501163 ]
/// ```
///
/// Rows 1 and 2 (looked up) must match; row 0 is never looked up, so the
/// lazy regulariser leaves it alone where Keras shrinks it (documented).
#[test]
fn keras_table_updates_with_a_regularizer_match_keras() {
    use embkit::{
        AdagradConfig, AdamConfig, Embedding, OptimizerConfig, Regularizer, RmsPropConfig,
        TableUpdates,
    };
    let w0 = ndarray::array![[0.5f32, -0.25], [1.0, 2.0], [-1.5, 0.75]];
    let g = [0.3f32, -0.7, 0.9, 0.2, 0.1, 0.4];
    let cases: [(OptimizerConfig, [f32; 4]); 3] = [
        (
            AdagradConfig::new().with_learning_rate(0.1).into(),
            [0.8331354, 2.057411, -1.4014021, 0.59900695],
        ),
        (
            RmsPropConfig::new().with_learning_rate(0.1).into(),
            [0.4594453, 2.4304557, -0.9988755, 0.21806093],
        ),
        (
            AdamConfig::new().with_learning_rate(0.1).into(),
            [0.80004215, 2.1988053, -1.3004166, 0.5501163],
        ),
    ];
    for (optimizer, want) in cases {
        let config = EmbeddingConfig::new(3, 2).with_regularizer(Regularizer::l2(0.1));
        let mut table = Embedding::from_pretrained_with(w0.view(), config).unwrap();
        let mut opt = optimizer.clone().with_table_updates(TableUpdates::Keras).build().unwrap();
        for _ in 0..2 {
            table.forward(ndarray::aview1(&[1u32, 1, 2])).unwrap();
            table.backward(&[1, 1, 2], &g).unwrap();
            table.step(opt.as_mut(), "embedding").unwrap();
            opt.finish_step();
        }
        for (got, want) in table.weights()[2..].iter().zip(want) {
            assert!((got - want).abs() < 2e-6, "{}: {:?}", optimizer.name(), table.weights());
        }
    }
}
