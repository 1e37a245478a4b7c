//! Integration tests: nearest neighbours against a brute-force oracle.

use embkit::query::{cosine_similarity, nearest_neighbors};
use ndarray::Array2;
use proptest::prelude::*;

proptest! {
    /// Top-k is the first k of a full sort of every row's score (most
    /// similar first, ties by smaller id), with the excluded id left out.
    #[test]
    fn top_k_equals_a_full_sort(
        rows in 1usize..40,
        dim in 1usize..6,
        k in 0usize..45,
        exclude in proptest::option::of(0u32..45),
        // Small integers make ties common.
        values in prop::collection::vec(-2i8..3, 40 * 6),
        query in prop::collection::vec(-2i8..3, 6),
    ) {
        let table = Array2::from_shape_fn((rows, dim), |(r, c)| f32::from(values[r * 6 + c]));
        let query: Vec<f32> = query[..dim].iter().map(|&x| f32::from(x)).collect();
        let got = nearest_neighbors(table.view(), &query, k, exclude).unwrap();

        let mut all: Vec<(u32, f32)> = (0..rows as u32)
            .filter(|&id| Some(id) != exclude)
            .map(|id| (id, cosine_similarity(&query, table.row(id as usize).as_slice().unwrap())))
            .collect();
        all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        all.truncate(k);
        let got: Vec<(u32, f32)> = got.iter().map(|n| (n.id, n.similarity)).collect();
        prop_assert_eq!(got, all);
    }
}
