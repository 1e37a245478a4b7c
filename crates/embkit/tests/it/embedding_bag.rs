//! Integration tests: the embedding bag's reductions and their gradients
//! against PyTorch's `F.embedding_bag`, its errors, and properties that tie
//! it to the plain embedding table.
//!
//! The pinned numbers come from this script (PyTorch 2.15 on CPU, numpy
//! 2.4 for `sqrtn`, which PyTorch does not have; its formula is
//! TensorFlow's `embedding_lookup_sparse(combiner="sqrtn")`):
//!
//! ```python
//! import numpy as np
//! import torch
//! import torch.nn.functional as F
//!
//! W0 = [[0.5, -1.0, 2.0],
//!       [1.5, 0.25, -0.75],
//!       [-2.0, 3.0, 0.125],
//!       [0.1, -0.5, 1.0],
//!       [4.0, 1.0, -3.0]]
//! ids = [1, 3, 1, 4, 2, 0, 3, 3]
//! offsets = [0, 3, 3, 5]  # bags [1, 3, 1], [], [4, 2], [0, 3, 3]
//! G = [[1.0, -2.0, 0.5], [3.0, 3.0, 3.0], [0.25, 1.0, -1.0], [2.0, 0.5, -0.5]]
//! psw = [0.5, 2.0, -1.0, 0.3, 1.5, 2.0, 0.7, 1.1]
//!
//! def fmt(t):
//!     a = np.asarray(t, dtype=np.float32)
//!     return "[" + ", ".join("[" + ", ".join(str(np.float32(x)) for x in row) + "]"
//!                            for row in a) + "]"
//!
//! def torch_case(name, mode, padding_idx=None, weights=None, offs=offsets, ilo=False,
//!                inp=ids):
//!     W = torch.tensor(W0, requires_grad=True)
//!     x = torch.tensor(inp)
//!     o = None if x.dim() == 2 else torch.tensor(offs)
//!     w = None if weights is None else torch.tensor(weights)
//!     out = F.embedding_bag(x, W, o, mode=mode, padding_idx=padding_idx,
//!                           per_sample_weights=w, include_last_offset=ilo)
//!     out.backward(torch.tensor(G[: out.shape[0]]))
//!     print(f"{name} out  {fmt(out.detach())}")
//!     print(f"{name} grad {fmt(W.grad)}")
//!
//! torch_case("sum", "sum")
//! torch_case("mean", "mean")
//! torch_case("max", "max")
//! torch_case("sum_pad3", "sum", padding_idx=3)
//! torch_case("mean_pad3", "mean", padding_idx=3)
//! torch_case("max_pad3", "max", padding_idx=3)
//! torch_case("sum_psw", "sum", weights=psw)
//! torch_case("sum_psw_pad3", "sum", weights=psw, padding_idx=3)
//! torch_case("mean_ilo", "mean", offs=offsets + [8], ilo=True)
//! torch_case("max_2d", "max", inp=[[1, 3, 1], [4, 2, 0]])
//! torch_case("mean_2d_pad1", "mean", padding_idx=1, inp=[[1, 3, 1], [4, 2, 0]])
//!
//! def sqrtn(name, padding_idx=None, weights=None):
//!     W = np.array(W0, np.float32)
//!     g = np.array(G, np.float32)
//!     out = np.zeros((4, 3), np.float32)
//!     grad = np.zeros_like(W)
//!     bounds = offsets + [len(ids)]
//!     for b in range(4):
//!         ps = [p for p in range(bounds[b], bounds[b + 1]) if ids[p] != padding_idx]
//!         w = [np.float32(1.0) if weights is None else np.float32(weights[p]) for p in ps]
//!         if not ps:
//!             continue
//!         s = np.zeros(3, np.float32)
//!         for p, wp in zip(ps, w):
//!             s = s + wp * W[ids[p]]
//!         d = np.float32(np.sqrt(np.float32(sum(np.float32(x) * np.float32(x) for x in w))))
//!         out[b] = s / d
//!         for p, wp in zip(ps, w):
//!             grad[ids[p]] += g[b] * (np.float32(1) / d * wp)
//!     print(f"{name} out  {fmt(out)}")
//!     print(f"{name} grad {fmt(grad)}")
//!
//! sqrtn("sqrtn")
//! sqrtn("sqrtn_pad3", padding_idx=3)
//! sqrtn("sqrtn_psw", weights=psw)
//! ```
//!
//! PyTorch's outputs and gradients are compared bit for bit: the bag
//! reduces in the same order with the same roundings (a fused
//! multiply-add for weighted sums, a division for the mean, a multiplication
//! by `1 / n` in the mean's backward).

use embkit::layers::{BagMode, EmbeddingBag, EmbeddingBagConfig};
use embkit::{EmbeddingConfig, Error, Init, Optimizer, SgdConfig};
use ndarray::{arr2, aview2, Array2, ArrayView2};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

const W0: [[f32; 3]; 5] =
    [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 3.0, 0.125], [0.1, -0.5, 1.0], [4.0, 1.0, -3.0]];
const IDS: [u32; 8] = [1, 3, 1, 4, 2, 0, 3, 3];
/// Bags `[1, 3, 1]`, `[]`, `[4, 2]`, `[0, 3, 3]`.
const OFFSETS: [usize; 4] = [0, 3, 3, 5];
const G: [[f32; 3]; 4] = [[1.0, -2.0, 0.5], [3.0, 3.0, 3.0], [0.25, 1.0, -1.0], [2.0, 0.5, -0.5]];
const PSW: [f32; 8] = [0.5, 2.0, -1.0, 0.3, 1.5, 2.0, 0.7, 1.1];

/// The 5 x 3 table `W0` with `mode` and an optional padding id.
fn table(mode: BagMode, padding_idx: Option<i64>) -> EmbeddingBag {
    let mut config = EmbeddingBagConfig::new(5, 3).with_mode(mode);
    if let Some(pad) = padding_idx {
        config = config.with_padding_idx(pad).unwrap();
    }
    EmbeddingBag::from_config_and_weights(config, W0.as_flattened().to_vec()).unwrap()
}

/// The bag's last gradient as a dense `[5, 3]` matrix.
fn dense_grad(bag: &EmbeddingBag) -> Array2<f32> {
    Array2::from_shape_vec((5, 3), bag.grad().to_dense(5)).unwrap()
}

/// Runs the offsets form on `IDS`/`OFFSETS` forward (training) and
/// backward with `G`; returns the output and the dense gradient.
fn run(bag: &mut EmbeddingBag, psw: Option<&[f32]>) -> (Array2<f32>, Array2<f32>) {
    let out = bag.forward(&IDS, &OFFSETS, psw, true).unwrap();
    bag.backward(aview2(&G)).unwrap();
    (out, dense_grad(bag))
}

fn assert_close(got: ArrayView2<'_, f32>, want: ArrayView2<'_, f32>, tol: f32) {
    assert_eq!(got.dim(), want.dim());
    for (g, w) in got.iter().zip(want.iter()) {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "got {got}\nwant {want}");
    }
}

#[test]
fn sum_matches_pytorch_with_repeated_ids_and_an_empty_bag() {
    let (out, grad) = run(&mut table(BagMode::Sum, None), None);
    assert_eq!(
        out,
        arr2(&[[3.1, 0.0, -0.5], [0.0, 0.0, 0.0], [2.0, 4.0, -2.875], [0.70000005, -2.0, 4.0]])
    );
    assert_eq!(
        grad,
        arr2(&[
            [2.0, 0.5, -0.5],
            [2.0, -4.0, 1.0],
            [0.25, 1.0, -1.0],
            [5.0, -1.0, -0.5],
            [0.25, 1.0, -1.0]
        ])
    );
}

#[test]
fn mean_matches_pytorch_with_repeated_ids_and_an_empty_bag() {
    let (out, grad) = run(&mut table(BagMode::Mean, None), None);
    assert_eq!(
        out,
        arr2(&[
            [1.0333333, 0.0, -0.16666667],
            [0.0, 0.0, 0.0],
            [1.0, 2.0, -1.4375],
            [0.23333335, -0.6666667, 1.3333334]
        ])
    );
    assert_eq!(
        grad,
        arr2(&[
            [0.6666667, 0.16666667, -0.16666667],
            [0.6666667, -1.3333334, 0.33333334],
            [0.125, 0.5, -0.5],
            [1.6666667, -0.3333333, -0.16666667],
            [0.125, 0.5, -0.5]
        ])
    );
}

#[test]
fn max_matches_pytorch_and_sends_each_dimension_to_its_arg_max() {
    let mut bag = table(BagMode::Max, None);
    let (out, grad) = run(&mut bag, None);
    assert_eq!(
        out,
        arr2(&[[1.5, 0.25, 1.0], [0.0, 0.0, 0.0], [4.0, 3.0, 0.125], [0.5, -0.5, 2.0]])
    );
    assert_eq!(
        grad,
        arr2(&[
            [2.0, 0.0, -0.5],
            [1.0, -2.0, 0.0],
            [0.0, 1.0, -1.0],
            [0.0, 0.5, 0.5],
            [0.25, 0.0, 0.0]
        ])
    );
}

#[test]
fn padding_entries_are_left_out_of_every_mode_and_its_gradient() {
    // padding_idx = 3 (given as -2): bag [0, 3, 3] is just [0], and the mean
    // divides by 1, not 3.
    let cases = [
        (
            BagMode::Sum,
            arr2(&[[3.0, 0.5, -1.5], [0.0, 0.0, 0.0], [2.0, 4.0, -2.875], [0.5, -1.0, 2.0]]),
            arr2(&[
                [2.0, 0.5, -0.5],
                [2.0, -4.0, 1.0],
                [0.25, 1.0, -1.0],
                [0.0, 0.0, 0.0],
                [0.25, 1.0, -1.0],
            ]),
        ),
        (
            BagMode::Mean,
            arr2(&[[1.5, 0.25, -0.75], [0.0, 0.0, 0.0], [1.0, 2.0, -1.4375], [0.5, -1.0, 2.0]]),
            arr2(&[
                [2.0, 0.5, -0.5],
                [1.0, -2.0, 0.5],
                [0.125, 0.5, -0.5],
                [0.0, 0.0, 0.0],
                [0.125, 0.5, -0.5],
            ]),
        ),
        (
            BagMode::Max,
            arr2(&[[1.5, 0.25, -0.75], [0.0, 0.0, 0.0], [4.0, 3.0, 0.125], [0.5, -1.0, 2.0]]),
            arr2(&[
                [2.0, 0.5, -0.5],
                [1.0, -2.0, 0.5],
                [0.0, 1.0, -1.0],
                [0.0, 0.0, 0.0],
                [0.25, 0.0, 0.0],
            ]),
        ),
    ];
    for (mode, want_out, want_grad) in cases {
        let mut bag = table(mode, Some(-2));
        let (out, grad) = run(&mut bag, None);
        assert_eq!(out, want_out, "{mode}");
        assert_eq!(grad, want_grad, "{mode}");
        assert!(!bag.grad().ids().contains(&3), "{mode}: padding is not in the gradient");
    }
}

#[test]
fn per_sample_weights_scale_the_sum_as_pytorch() {
    let (out, grad) = run(&mut table(BagMode::Sum, None), Some(&PSW));
    assert_eq!(
        out,
        arr2(&[
            [-0.55, -1.125, 2.375],
            [0.0, 0.0, 0.0],
            [-1.8, 4.8, -0.71250004],
            [1.1800001, -2.8999999, 5.7999997]
        ])
    );
    assert_eq!(
        grad,
        arr2(&[
            [4.0, 1.0, -1.0],
            [-0.5, 1.0, -0.25],
            [0.375, 1.5, -1.5],
            [5.6000004, -3.1000001, 0.099999964],
            [0.075, 0.3, -0.3]
        ])
    );

    let (out, grad) = run(&mut table(BagMode::Sum, Some(3)), Some(&PSW));
    assert_eq!(
        out,
        arr2(&[
            [-0.75, -0.125, 0.375],
            [0.0, 0.0, 0.0],
            [-1.8, 4.8, -0.71250004],
            [1.0, -2.0, 4.0]
        ])
    );
    assert_eq!(
        grad,
        arr2(&[
            [4.0, 1.0, -1.0],
            [-0.5, 1.0, -0.25],
            [0.375, 1.5, -1.5],
            [0.0, 0.0, 0.0],
            [0.075, 0.3, -0.3]
        ])
    );
}

#[test]
fn weighted_sum_rounds_once_per_entry_as_pytorch() {
    // PyTorch's CPU kernel accumulates `acc = fma(w, x, acc)`; rounding the
    // product first gives -0.23052803 here. Found with:
    //   F.embedding_bag(torch.tensor([0, 1]), torch.tensor([[0.264], [-0.314]]),
    //                   torch.tensor([0]), mode="sum",
    //                   per_sample_weights=torch.tensor([1.458, 1.96]))
    //   -> tensor([[-0.2305]]), as float32 -0.23052804
    let config = EmbeddingBagConfig::new(2, 1).with_mode(BagMode::Sum);
    let mut bag = EmbeddingBag::from_config_and_weights(config, vec![0.264, -0.314]).unwrap();
    let out = bag.forward(&[0, 1], &[0], Some(&[1.458, 1.96]), false).unwrap();
    assert_eq!(out, arr2(&[[-0.23052804]]));
}

#[test]
// The pinned reference values include sqrt(2) as numpy printed it.
#[allow(clippy::approx_constant)]
fn sqrtn_divides_by_the_root_of_the_count_or_of_the_squared_weights() {
    let (out, grad) = run(&mut table(BagMode::Sqrtn, None), None);
    assert_eq!(
        out,
        arr2(&[
            [1.7897859, 0.0, -0.28867513],
            [0.0, 0.0, 0.0],
            [1.4142135, 2.828427, -2.032932],
            [0.4041452, -1.1547005, 2.309401]
        ])
    );
    assert_eq!(
        grad,
        arr2(&[
            [1.1547005, 0.28867513, -0.28867513],
            [1.1547005, -2.309401, 0.57735026],
            [0.17677669, 0.70710677, -0.70710677],
            [2.8867512, -0.57735026, -0.28867513],
            [0.17677669, 0.70710677, -0.70710677]
        ])
    );

    let (out, grad) = run(&mut table(BagMode::Sqrtn, Some(3)), None);
    assert_eq!(
        out,
        arr2(&[
            [2.1213205, 0.35355338, -1.0606602],
            [0.0, 0.0, 0.0],
            [1.4142135, 2.828427, -2.032932],
            [0.5, -1.0, 2.0]
        ])
    );
    assert_eq!(
        grad,
        arr2(&[
            [2.0, 0.5, -0.5],
            [1.4142135, -2.828427, 0.70710677],
            [0.17677669, 0.70710677, -0.70710677],
            [0.0, 0.0, 0.0],
            [0.17677669, 0.70710677, -0.70710677]
        ])
    );

    // numpy rounds the weighted products separately where the bag fuses
    // them, so the last bit may differ.
    let (out, grad) = run(&mut table(BagMode::Sqrtn, None), Some(&PSW));
    let want_out = arr2(&[
        [-0.24003968, -0.49099025, 1.0365349],
        [0.0, 0.0, 0.0],
        [-1.1766968, 3.1378582, -0.46577585],
        [0.49424767, -1.2146764, 2.4293528],
    ]);
    let want_grad = arr2(&[
        [1.6754158, 0.41885394, -0.41885394],
        [-0.21821788, 0.43643576, -0.10910894],
        [0.24514517, 0.9805807, -0.9805807],
        [2.3807456, -1.3687745, 0.05946721],
        [0.049029034, 0.19611613, -0.19611613],
    ]);
    assert_close(out.view(), want_out.view(), 1e-6);
    assert_close(grad.view(), want_grad.view(), 1e-6);
}

#[test]
fn include_last_offset_reads_the_end_of_the_last_bag_from_the_offsets() {
    let config = EmbeddingBagConfig::new(5, 3).with_include_last_offset(true);
    let mut bag =
        EmbeddingBag::from_config_and_weights(config, W0.as_flattened().to_vec()).unwrap();
    let out = bag.forward(&IDS, &[0, 3, 3, 5, 8], None, true).unwrap();
    bag.backward(aview2(&G)).unwrap();
    // PyTorch's mean_ilo: the same as the plain mean.
    let (want_out, want_grad) = run(&mut table(BagMode::Mean, None), None);
    assert_eq!(out, want_out);
    assert_eq!(dense_grad(&bag), want_grad);
    assert_eq!(out[[0, 0]], 1.0333333);

    // A lone offset is zero bags.
    assert_eq!(bag.forward(&[], &[0], None, false).unwrap().dim(), (0, 3));
}

#[test]
fn fixed_bags_match_pytorch_2d_input() {
    let docs = arr2(&[[1u32, 3, 1], [4, 2, 0]]);

    let mut bag = table(BagMode::Max, None);
    let out = bag.forward_fixed(docs.view(), None, true).unwrap();
    bag.backward(aview2(&G[..2])).unwrap();
    assert_eq!(out, arr2(&[[1.5, 0.25, 1.0], [4.0, 3.0, 2.0]]));
    assert_eq!(
        dense_grad(&bag),
        arr2(&[
            [0.0, 0.0, 3.0],
            [1.0, -2.0, 0.0],
            [0.0, 3.0, 0.0],
            [0.0, 0.0, 0.5],
            [3.0, 0.0, 0.0]
        ])
    );

    let mut bag = table(BagMode::Mean, Some(1));
    let out = bag.forward_fixed(docs.view(), None, true).unwrap();
    bag.backward(aview2(&G[..2])).unwrap();
    assert_eq!(out, arr2(&[[0.1, -0.5, 1.0], [0.8333333, 1.0, -0.29166666]]));
    assert_eq!(
        dense_grad(&bag),
        arr2(&[
            [1.0, 1.0, 1.0],
            [0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0],
            [1.0, -2.0, 0.5],
            [1.0, 1.0, 1.0]
        ])
    );
}

#[test]
fn fixed_bags_read_transposed_views_in_logical_order() {
    let mut bag = table(BagMode::Sum, None);
    let stored = arr2(&[[1u32, 4], [3, 2], [1, 0]]);
    let weights = arr2(&[[0.5f32, 1.5], [2.0, 2.0], [-1.0, 0.3]]);
    let got = bag.forward_fixed(stored.t(), Some(weights.t()), false).unwrap();
    let want =
        bag.forward(&[1, 3, 1, 4, 2, 0], &[0, 3], Some(&[0.5, 2.0, -1.0, 1.5, 2.0, 0.3]), false);
    assert_eq!(got, want.unwrap());
}

#[test]
fn max_ties_go_to_the_first_entry_as_in_pytorch() {
    // W = [[1, 5], [1, 2], [3, 5]], ids [1, 0, 2], one bag:
    // PyTorch: out [[3, 5]], W.grad [[0, 20], [0, 0], [10, 0]] for G [[10, 20]].
    // Dimension 1 ties between ids 0 and 2 (both 5): id 0 comes first.
    let config = EmbeddingBagConfig::new(3, 2).with_mode(BagMode::Max);
    let mut bag =
        EmbeddingBag::from_config_and_weights(config, vec![1.0, 5.0, 1.0, 2.0, 3.0, 5.0]).unwrap();
    let out = bag.forward(&[1, 0, 2], &[0], None, true).unwrap();
    assert_eq!(out, arr2(&[[3.0, 5.0]]));
    let g = bag.backward(aview2(&[[10.0, 20.0]])).unwrap();
    assert_eq!(g.to_dense(3), vec![0.0, 20.0, 0.0, 0.0, 10.0, 0.0]);
    // Dimension 0 also ties (ids 1 and 0 hold 1) but neither is the max:
    // id 1 is left out of the gradient.
    assert_eq!(g.ids(), &[0, 2]);
}

#[test]
fn max_skips_a_later_nan_and_keeps_a_first_one_as_pytorch() {
    // PyTorch: W = [[1, nan], [2, 3]]; ids [1, 0] -> [[2, 3]], ids [0, 1] -> [[2, nan]].
    let mut bag = EmbeddingBag::from_config_and_weights(
        EmbeddingBagConfig::new(2, 2).with_mode(BagMode::Max),
        vec![1.0, 0.0, 2.0, 3.0],
    )
    .unwrap();
    bag.weights_mut()[1] = f32::NAN;
    assert_eq!(bag.forward(&[1, 0], &[0], None, false).unwrap(), arr2(&[[2.0, 3.0]]));
    let out = bag.forward(&[0, 1], &[0], None, false).unwrap();
    assert_eq!(out[[0, 0]], 2.0);
    assert!(out[[0, 1]].is_nan());
}

#[test]
fn empty_bags_and_padding_only_bags_give_zeros_in_every_mode() {
    for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max, BagMode::Sqrtn] {
        let mut bag = table(mode, Some(3));
        // Bags [], [3, 3], [] and the 2-D [2, 0] (every bag empty).
        let out = bag.forward(&[3, 3], &[0, 0, 2], None, true).unwrap();
        assert_eq!(out, Array2::<f32>::zeros((3, 3)), "{mode}");
        let g = bag.backward(Array2::ones((3, 3)).view()).unwrap();
        assert!(g.is_empty(), "{mode}");
        let out = bag.forward_fixed(Array2::zeros((2, 0)).view(), None, false).unwrap();
        assert_eq!(out, Array2::<f32>::zeros((2, 3)), "{mode}");
    }
    // Max of rows that are all negative is negative: the zeros above are
    // not a clamp at 0.
    let mut bag = table(BagMode::Max, None);
    assert_eq!(bag.forward(&[0, 2], &[0], None, false).unwrap(), arr2(&[[0.5, 3.0, 2.0]]));
}

#[test]
fn sqrtn_with_all_zero_weights_gives_zeros_not_nan() {
    // TensorFlow divides with div_no_nan: Σ w² = 0 gives zeros.
    let mut bag = table(BagMode::Sqrtn, None);
    let out = bag.forward(&[1, 2], &[0], Some(&[0.0, 0.0]), true).unwrap();
    assert_eq!(out, Array2::<f32>::zeros((1, 3)));
    let g = bag.backward(aview2(&[[1.0, 1.0, 1.0]])).unwrap();
    assert!(g.rows().iter().all(|&x| x == 0.0));
}

/// `Σ G ⊙ out`, in f64, for the finite-difference check.
fn loss(bag: &mut EmbeddingBag, ids: &[u32], offsets: &[usize], psw: Option<&[f32]>) -> f64 {
    let out = bag.forward(ids, offsets, psw, false).unwrap();
    let g = grad_out_for(out.nrows(), out.ncols());
    out.iter().zip(g.iter()).map(|(&o, &g)| f64::from(o) * f64::from(g)).sum()
}

fn grad_out_for(bags: usize, dim: usize) -> Array2<f32> {
    Array2::from_shape_fn((bags, dim), |(b, d)| ((b * 7 + d * 3) % 5) as f32 - 1.7)
}

#[test]
fn backward_matches_finite_differences() {
    // A seeded N(0, 1) table (values far apart, so max has no ties within
    // eps), repeated ids, an empty bag and padding id 5.
    let ids = [3u32, 5, 3, 0, 7, 1, 5, 6, 2, 2, 4];
    let offsets = [0usize, 4, 4, 6, 9];
    let psw = [0.5f32, 1.0, -2.0, 1.5, 0.25, 3.0, 1.0, -0.5, 2.0, 0.75, 1.25];
    let cases = [
        (BagMode::Sum, None),
        (BagMode::Sum, Some(&psw[..])),
        (BagMode::Mean, None),
        (BagMode::Sqrtn, None),
        (BagMode::Sqrtn, Some(&psw[..])),
        (BagMode::Max, None),
    ];
    for (mode, psw) in cases {
        let mut bag = EmbeddingBagConfig::new(8, 4)
            .with_mode(mode)
            .with_padding_idx(5)
            .unwrap()
            .init(&mut StdRng::seed_from_u64(7))
            .unwrap();
        let out = bag.forward(&ids, &offsets, psw, true).unwrap();
        let analytic = bag.backward(grad_out_for(out.nrows(), 4).view()).unwrap().to_dense(8);
        let eps = 1e-2f32;
        for (i, &a) in analytic.iter().enumerate() {
            let x = bag.weights()[i];
            bag.weights_mut()[i] = x + eps;
            let up = loss(&mut bag, &ids, &offsets, psw);
            bag.weights_mut()[i] = x - eps;
            let down = loss(&mut bag, &ids, &offsets, psw);
            bag.weights_mut()[i] = x;
            let numeric = (up - down) / (2.0 * f64::from(eps));
            let a = f64::from(a);
            assert!(
                (numeric - a).abs() <= 2e-3 * (1.0 + a.abs()),
                "{mode} (weighted: {}): entry {i}: numeric {numeric}, backward {a}",
                psw.is_some()
            );
        }
    }
}

#[test]
fn step_moves_only_the_rows_of_the_batch_and_never_the_padding_row() {
    let mut bag = table(BagMode::Sum, Some(3));
    let before = bag.weights().to_vec();
    bag.forward(&[1, 3, 1], &[0], None, true).unwrap();
    bag.backward(aview2(&[[1.0, -2.0, 0.5]])).unwrap();
    let mut sgd = SgdConfig::new().with_learning_rate(0.5).init().unwrap();
    bag.step(&mut sgd, "bag").unwrap();
    sgd.finish_step();
    // Row 1 was in the bag twice: w - 0.5 * 2 * g.
    assert_eq!(bag.row(1), &[0.5, 2.25, -1.25]);
    for id in [0u32, 2, 3, 4] {
        let start = id as usize * 3;
        assert_eq!(bag.row(id), &before[start..start + 3], "row {id}");
    }
}

#[test]
fn config_round_trips_through_json_with_snake_case_modes() {
    let config = EmbeddingBagConfig::new(10, 4)
        .with_mode(BagMode::Sqrtn)
        .with_padding_idx(-1)
        .unwrap()
        .with_include_last_offset(true)
        .with_init(Init::Zeros);
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains(r#""mode":"sqrtn""#), "{json}");
    assert!(json.contains(r#""padding_idx":9"#), "{json}");
    assert_eq!(serde_json::from_str::<EmbeddingBagConfig>(&json).unwrap(), config);
}

// ---- errors: each case with its message ----

fn forward_err(
    bag: &mut EmbeddingBag,
    ids: &[u32],
    offsets: &[usize],
    psw: Option<&[f32]>,
) -> Error {
    bag.forward(ids, offsets, psw, true).unwrap_err()
}

#[test]
fn forward_rejects_empty_offsets() {
    let err = forward_err(&mut table(BagMode::Sum, None), &[1, 2], &[], None);
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag offsets: expected at least one offset, \
         the start of the first bag, got []"
    );
}

#[test]
fn forward_rejects_offsets_that_do_not_start_at_zero() {
    let err = forward_err(&mut table(BagMode::Sum, None), &[1, 2, 3], &[1, 2], None);
    assert!(matches!(err, Error::ShapeMismatch { ref got, .. } if got == &[1]), "{err}");
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag offsets: expected a first offset of 0 \
         (the first bag starts at the first id), got [1]"
    );
}

#[test]
fn forward_rejects_decreasing_offsets() {
    let err = forward_err(&mut table(BagMode::Mean, None), &[1, 2, 3, 4], &[0, 3, 2], None);
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag offsets: expected offsets that never decrease, \
         but offsets[2] < offsets[1], got [3, 2]"
    );
}

#[test]
fn forward_rejects_offsets_past_the_ids() {
    let err = forward_err(&mut table(BagMode::Max, None), &[1, 2, 3], &[0, 2, 7], None);
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag offsets: expected offsets of at most 3, \
         the number of ids, got [7]"
    );
}

#[test]
fn include_last_offset_rejects_a_last_offset_short_of_the_ids() {
    // PyTorch silently drops the ids past the last offset here (and its
    // mean still counts them); embkit refuses.
    let config = EmbeddingBagConfig::new(5, 3).with_include_last_offset(true);
    let mut bag = EmbeddingBag::from_config_and_weights(config, vec![0.0; 15]).unwrap();
    let err = forward_err(&mut bag, &[1, 2, 3, 0, 1], &[0, 2, 4], None);
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag offsets: expected a last offset of 5, \
         the number of ids (include_last_offset is set), got [4]"
    );
    // A lone offset still has to be the end of the ids.
    assert!(bag.forward(&[1], &[0], None, false).is_err());
}

#[test]
fn forward_rejects_per_sample_weights_of_the_wrong_length_or_shape() {
    let mut bag = table(BagMode::Sum, None);
    let err = forward_err(&mut bag, &[1, 2, 3], &[0], Some(&[1.0, 2.0]));
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag per_sample_weights: expected [3], one weight per id, \
         got [2]"
    );
    let ids = arr2(&[[1u32, 2], [3, 4]]);
    let err = bag.forward_fixed(ids.view(), Some(Array2::ones((2, 3)).view()), true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag per_sample_weights: expected [2, 2], the shape of \
         the ids, got [2, 3]"
    );
}

#[test]
fn per_sample_weights_are_refused_for_mean_and_max() {
    for mode in [BagMode::Mean, BagMode::Max] {
        let mut bag = table(mode, None);
        let err = forward_err(&mut bag, &[1, 2], &[0], Some(&[1.0, 1.0]));
        assert_eq!(
            err.to_string(),
            format!("invalid mode: per_sample_weights need mode sum or sqrtn, but mode is {mode}")
        );
        let err = bag
            .forward_fixed(arr2(&[[1u32]]).view(), Some(arr2(&[[1.0f32]]).view()), false)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "mode", .. }), "{err}");
    }
}

#[test]
fn forward_rejects_ids_past_the_table() {
    let mut bag = table(BagMode::Sum, None);
    let err = forward_err(&mut bag, &[1, 5, 9], &[0, 1], None);
    assert!(matches!(err, Error::IdOutOfRange { id: 5, num_embeddings: 5 }), "{err}");
    assert_eq!(err.to_string(), "id 5 is out of range for a table of 5 rows");
    let err = bag.forward_fixed(arr2(&[[0u32, 1], [2, 7]]).view(), None, false).unwrap_err();
    assert_eq!(err.to_string(), "id 7 is out of range for a table of 5 rows");
}

#[test]
fn a_failed_forward_keeps_the_last_training_trace() {
    let mut bag = table(BagMode::Sum, None);
    bag.forward(&[0, 1], &[0, 1], None, true).unwrap();
    assert!(bag.forward(&[0, 9, 1], &[0], None, true).is_err());
    // Still the two bags of the good forward.
    let g = bag.backward(aview2(&[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])).unwrap();
    assert_eq!(g.rows(), &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
}

#[test]
fn backward_rejects_a_gradient_of_another_shape() {
    let mut bag = table(BagMode::Mean, None);
    bag.forward(&IDS, &OFFSETS, None, true).unwrap();
    let err = bag.backward(Array2::zeros((3, 3)).view()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag gradient: expected [4, 3], the shape of the forward \
         output, got [3, 3]"
    );
}

#[test]
fn backward_before_a_training_forward_is_refused() {
    let err = table(BagMode::Sum, None).backward(aview2(&G)).unwrap_err();
    assert_eq!(err.to_string(), "EmbeddingBag::backward before a training forward");
}

#[test]
fn config_errors_name_the_field_and_the_value() {
    let mut rng = StdRng::seed_from_u64(0);
    let err = EmbeddingBagConfig::new(5, 0).init(&mut rng).unwrap_err();
    assert_eq!(err.to_string(), "invalid embedding_dim: must be at least 1, got 0");
    let err = EmbeddingBagConfig::new(5, 3).with_padding_idx(-6).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid padding_idx: must be in [-5, 5) for a table of 5 rows, got -6"
    );
    let err = "average".parse::<BagMode>().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid mode: unknown bag mode "average"; expected "sum", "mean", "max" or "sqrtn""#
    );
    let err = EmbeddingBag::from_config_and_weights(EmbeddingBagConfig::new(2, 2), vec![0.0; 3])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape mismatch in EmbeddingBag weights: expected 4 values, [2, 2], got [3]"
    );
}

// ---- properties ----

/// A table shape, `bags` equal-length bags of ids in it (possibly all
/// empty), and a padding id that may or may not occur.
fn shape_and_bags() -> impl Strategy<Value = (usize, usize, Array2<u32>, Option<i64>)> {
    (1usize..16, 1usize..6, 1usize..6, 0usize..5).prop_flat_map(|(rows, dim, bags, bag_len)| {
        let ids = prop::collection::vec(0..rows as u32, bags * bag_len)
            .prop_map(move |ids| Array2::from_shape_vec((bags, bag_len), ids).unwrap());
        let pad = prop::option::of(0..rows as i64);
        (Just(rows), Just(dim), ids, pad)
    })
}

fn any_mode() -> impl Strategy<Value = BagMode> {
    prop_oneof![Just(BagMode::Sum), Just(BagMode::Mean), Just(BagMode::Max), Just(BagMode::Sqrtn)]
}

fn bag_table(rows: usize, dim: usize, mode: BagMode, pad: Option<i64>, seed: u64) -> EmbeddingBag {
    let mut config = EmbeddingBagConfig::new(rows, dim).with_mode(mode);
    if let Some(pad) = pad {
        config = config.with_padding_idx(pad).unwrap();
    }
    config.init(&mut StdRng::seed_from_u64(seed)).unwrap()
}

proptest! {
    /// Equal-length bags give the same output and gradient in the offsets
    /// form and the 2-D form.
    #[test]
    fn offsets_form_equals_fixed_form(
        (rows, dim, fixed, pad) in shape_and_bags(),
        mode in any_mode(),
        seed: u64,
    ) {
        let (bags, bag_len) = fixed.dim();
        let ids: Vec<u32> = fixed.iter().copied().collect();
        let offsets: Vec<usize> = (0..bags).map(|b| b * bag_len).collect();
        let mut a = bag_table(rows, dim, mode, pad, seed);
        let mut b = a.clone();
        let by_offsets = a.forward(&ids, &offsets, None, true).unwrap();
        let by_rows = b.forward_fixed(fixed.view(), None, true).unwrap();
        prop_assert_eq!(&by_offsets, &by_rows);
        let g = grad_out_for(bags, dim);
        prop_assert_eq!(a.backward(g.view()).unwrap(), b.backward(g.view()).unwrap());
    }

    /// A sum bag is the sum of the embedding table's rows, padding left out.
    #[test]
    fn sum_mode_equals_the_sum_of_embedding_rows(
        (rows, dim, fixed, pad) in shape_and_bags(),
        seed: u64,
    ) {
        let table = EmbeddingConfig::new(rows, dim)
            .with_init(Init::Normal { std: 1.0 })
            .init(&mut StdRng::seed_from_u64(seed))
            .unwrap();
        let mut config = EmbeddingBagConfig::new(rows, dim).with_mode(BagMode::Sum);
        if let Some(pad) = pad {
            config = config.with_padding_idx(pad).unwrap();
        }
        let mut bag = EmbeddingBag::from_config_and_weights(config, table.weights().to_vec()).unwrap();
        let pad = bag.config().padding_idx;
        let out = bag.forward_fixed(fixed.view(), None, false).unwrap();
        for (b, bag_ids) in fixed.rows().into_iter().enumerate() {
            let mut want = vec![0.0f32; dim];
            for &id in bag_ids.iter().filter(|&&id| Some(id) != pad) {
                want.iter_mut().zip(table.row(id)).for_each(|(w, &x)| *w += x);
            }
            prop_assert_eq!(out.row(b).to_vec(), want);
        }
    }

    /// The row gradient scattered into a dense matrix equals the dense
    /// gradient `Bᵀ · grad_out`, where `B[b, id]` adds up the factors each
    /// entry of bag `b` gets (1, 1 / n or 1 / sqrt(n)).
    #[test]
    fn row_gradient_equals_the_dense_bag_gradient(
        (rows, dim, fixed, pad) in shape_and_bags(),
        mode in prop_oneof![Just(BagMode::Sum), Just(BagMode::Mean), Just(BagMode::Sqrtn)],
        seed: u64,
    ) {
        let mut bag = bag_table(rows, dim, mode, pad, seed);
        let pad = bag.config().padding_idx;
        let bags = fixed.nrows();
        bag.forward_fixed(fixed.view(), None, true).unwrap();
        let g = grad_out_for(bags, dim);
        let sparse = bag.backward(g.view()).unwrap().to_dense(rows);
        let mut b_matrix = Array2::<f32>::zeros((bags, rows));
        for (b, bag_ids) in fixed.rows().into_iter().enumerate() {
            let kept: Vec<u32> = bag_ids.iter().copied().filter(|&id| Some(id) != pad).collect();
            let n = kept.len() as f32;
            let factor = match mode {
                BagMode::Sum => 1.0,
                BagMode::Mean => 1.0 / n,
                _ => 1.0 / n.sqrt(),
            };
            for id in kept {
                b_matrix[[b, id as usize]] += factor;
            }
        }
        let dense = b_matrix.t().dot(&g);
        for (s, d) in sparse.iter().zip(dense.iter()) {
            prop_assert!((s - d).abs() <= 1e-5 * (1.0 + d.abs()), "{} vs {}", s, d);
        }
    }
}
