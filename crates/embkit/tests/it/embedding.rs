//! Integration tests: the embedding table, its gather and its gradient.

use embkit::{one_hot, EmbeddingConfig, Init};
use ndarray::{aview1, Array2, ArrayView2};
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
}
