//! Integration tests: nearest neighbours against a brute-force oracle.

use embkit::query::{
    cosine_similarity, nearest_neighbors, nearest_neighbors_by, ExactIndex, Similarity,
};
use embkit::Threads;
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

/// A random table with some rows repeated (exact ties) and some scaled
/// copies (equal cosines).
fn random_table(rows: usize, dim: usize, seed: u64) -> Array2<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut table = Array2::from_shape_fn((rows, dim), |_| rng.random_range(-1.0f32..1.0));
    for r in 1..rows {
        match rng.random_range(0..8) {
            0 => {
                let copy = table.row(rng.random_range(0..r)).to_owned();
                table.row_mut(r).assign(&copy);
            }
            1 => {
                let copy = table.row(rng.random_range(0..r)).to_owned() * 2.0;
                table.row_mut(r).assign(&copy);
            }
            _ => {}
        }
    }
    table
}

fn similarity() -> impl Strategy<Value = Similarity> {
    prop::sample::select(Similarity::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// On random float tables, top-k is the first k of a full sort of
    /// the scores the index gives each row (largest first, ties by the
    /// smaller id).
    #[test]
    fn exact_index_top_k_equals_a_full_sort_of_its_scores(
        rows in 1usize..300,
        dim in 1usize..40,
        k in 0usize..20,
        seed: u64,
        similarity in similarity(),
    ) {
        let table = random_table(rows, dim, seed);
        let query = table.row(rows / 2).to_vec();
        let index = ExactIndex::new(table.view(), similarity, Threads::single());
        let got = index.search(&query, k, &[], Threads::new(2).unwrap()).unwrap();
        let mut all: Vec<(u32, f32)> =
            (0..rows as u32).map(|id| (id, index.score(&query, id))).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        let got: Vec<(u32, f32)> = got.iter().map(|n| (n.id, n.similarity)).collect();
        prop_assert_eq!(&got, &all);
        // The fast scores stay close to the f64 definition.
        for &(id, s) in &all {
            let row = table.row(id as usize);
            let want = similarity.score(&query, row.as_slice().unwrap());
            prop_assert!((s - want).abs() <= 1e-5 * want.abs().max(1.0), "{} vs {}", s, want);
        }
    }
}

proptest! {
    // Tables large enough to be split over threads; few cases.
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// One, two and three threads give the same neighbours and scores,
    /// bit for bit, from the free function and from the index.
    #[test]
    fn one_two_and_three_threads_agree(
        seed: u64,
        similarity in similarity(),
        k in 1usize..30,
    ) {
        let (rows, dim) = (13_000, 64);
        let table = random_table(rows, dim, seed);
        let query = table.row(7).to_vec();
        let exclude = [7, 100];
        let index = ExactIndex::new(table.view(), similarity, Threads::new(3).unwrap());
        let one = nearest_neighbors_by(
            table.view(), &query, k, &exclude, similarity, Threads::single(),
        ).unwrap();
        prop_assert_eq!(one.len(), k);
        for threads in [1, 2, 3] {
            let threads = Threads::new(threads).unwrap();
            prop_assert_eq!(&index.search(&query, k, &exclude, threads).unwrap(), &one);
            let free = nearest_neighbors_by(table.view(), &query, k, &exclude, similarity, threads)
                .unwrap();
            prop_assert_eq!(&free, &one);
        }
    }
}

proptest! {
    // Tables large enough for the index's 8-bit first pass; few cases.
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// The index's first pass over 8-bit rows changes nothing: the same
    /// neighbours and scores, bit for bit, as the full scan of
    /// `nearest_neighbors_by`.
    #[test]
    fn the_first_pass_of_a_large_index_gives_the_full_scans_answer(
        seed: u64,
        similarity in similarity(),
        k in prop_oneof![1usize..40, Just(1500)],
        threads in 1usize..4,
    ) {
        let (rows, dim) = (17_000, 20);
        let mut table = random_table(rows, dim, seed);
        // Rows the 8-bit pass cannot bound: NaN, infinite, huge.
        table[[11, 3]] = f32::NAN;
        table[[12_000, 0]] = f32::INFINITY;
        table.row_mut(13_000).fill(1e20);
        let threads = Threads::new(threads).unwrap();
        let index = ExactIndex::new(table.view(), similarity, threads);
        assert!(index.memory_bytes() >= rows * dim, "the 8-bit rows are kept");
        for q in [5, 16_999, 6] {
            let mut query = table.row(q).to_vec();
            if q == 6 {
                // A query far from every row: the bounds prune little.
                query.iter_mut().for_each(|x| *x *= -1e6);
            }
            let want = nearest_neighbors_by(
                table.view(), &query, k, &[5], similarity, Threads::single(),
            ).unwrap();
            let got = index.search(&query, k, &[5], threads).unwrap();
            prop_assert_eq!(got, want);
        }
    }
}
