//! The fused gather-reduce of an embedding bag: each bag's rows are read
//! once, straight from the table, into the bag's output row; the
//! `[n, dim]` matrix of looked-up rows is never built.

use super::{simd, PREFETCH_DISTANCE, PREFETCH_MIN_TABLE_BYTES};
use crate::threads::{split_evenly, Threads, MIN_FLOATS_PER_THREAD};

/// The bags to reduce: bag `b` holds the entries `bounds[b]..bounds[b + 1]`
/// of `ids` (and of `weights`, when there are per-sample weights).
/// Entries equal to `padding` are left out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bags<'a> {
    pub table: &'a [f32],
    pub dim: usize,
    pub ids: &'a [u32],
    pub bounds: &'a [usize],
    /// Empty, or one weight per entry.
    pub weights: &'a [f32],
    pub padding: Option<u32>,
}

impl Bags<'_> {
    fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    fn prefetch(&self) -> bool {
        std::mem::size_of_val(self.table) >= PREFETCH_MIN_TABLE_BYTES
    }

    /// The ranges of bags of each thread.
    fn parts(&self, threads: Threads) -> Vec<std::ops::Range<usize>> {
        let parts = threads.parts_for(self.ids.len() * self.dim, MIN_FLOATS_PER_THREAD);
        split_evenly(self.len(), parts)
    }
}

/// Sums each bag's rows into its row of `out`, in entry order, each row
/// multiplied by its weight with a fused multiply-add when there are
/// weights (`acc = fma(w, x, acc)`, PyTorch's order). For each bag,
/// `counts[b]` is the number of entries other than padding and `sum_sq[b]`
/// the sum of their squared weights (0 without weights). A bag with no
/// entries gets a row of zeros.
///
/// # Panics
///
/// If the lengths do not match the bags, or an id is not a row of the
/// table (callers check ids first).
pub(crate) fn bag_sum(
    bags: Bags<'_>,
    out: &mut [f32],
    counts: &mut [u32],
    sum_sq: &mut [f32],
    threads: Threads,
) {
    let (n, dim) = (bags.len(), bags.dim);
    assert!(out.len() == n * dim && counts.len() == n && sum_sq.len() == n, "one row per bag");
    assert!(bags.weights.is_empty() || bags.weights.len() == bags.ids.len());
    let ranges = bags.parts(threads);
    let run =
        |range: std::ops::Range<usize>, out: &mut [f32], counts: &mut [u32], sq: &mut [f32]| {
            // Compiled for AVX2 where the processor has it: the adds of a
            // row take half the instructions (the same bits either way).
            simd::dispatch(
                #[inline(always)]
                || sum_bags(&bags, range, out, counts, sq),
            )
        };
    if ranges.len() <= 1 {
        run(0..n, out, counts, sum_sq);
        return;
    }
    std::thread::scope(|scope| {
        let run = &run;
        let (mut out, mut counts, mut sum_sq) = (out, counts, sum_sq);
        let last = ranges.len() - 1;
        for (k, range) in ranges.into_iter().enumerate() {
            let (o, rest_o) = out.split_at_mut(range.len() * dim);
            let (c, rest_c) = counts.split_at_mut(range.len());
            let (s, rest_s) = sum_sq.split_at_mut(range.len());
            (out, counts, sum_sq) = (rest_o, rest_c, rest_s);
            if k == last {
                run(range, o, c, s);
            } else {
                scope.spawn(move || run(range, o, c, s));
            }
        }
    });
}

/// [`bag_sum`] of the bags `range`, into their rows of `out` (which
/// starts at the first of them).
#[inline(always)]
fn sum_bags(
    bags: &Bags<'_>,
    range: std::ops::Range<usize>,
    out: &mut [f32],
    counts: &mut [u32],
    sum_sq: &mut [f32],
) {
    let dim = bags.dim;
    let first = range.start;
    for b in range {
        let k = b - first;
        let acc = &mut out[k * dim..(k + 1) * dim];
        let (count, s) = match dim {
            8 => sum_bag::<8>(bags, b, acc.try_into().expect("D floats")),
            16 => sum_bag::<16>(bags, b, acc.try_into().expect("D floats")),
            32 => sum_bag::<32>(bags, b, acc.try_into().expect("D floats")),
            64 => sum_bag::<64>(bags, b, acc.try_into().expect("D floats")),
            128 => sum_bag::<128>(bags, b, acc.try_into().expect("D floats")),
            _ => sum_bag_dyn(bags, b, acc),
        };
        counts[k] = count;
        sum_sq[k] = s;
    }
}

/// Sums bag `b` into `acc`, a local array the compiler keeps in
/// registers; returns the count and the sum of squared weights.
#[inline(always)]
fn sum_bag<const D: usize>(bags: &Bags<'_>, b: usize, out: &mut [f32; D]) -> (u32, f32) {
    let mut acc = [0.0f32; D];
    let (mut count, mut sum_sq) = (0, 0.0f32);
    let prefetch = bags.prefetch();
    for p in bags.bounds[b]..bags.bounds[b + 1] {
        if prefetch {
            if let Some(&next) = bags.ids.get(p + PREFETCH_DISTANCE) {
                simd::prefetch(bags.table, next as usize * D, D);
            }
        }
        let id = bags.ids[p];
        if Some(id) == bags.padding {
            continue;
        }
        count += 1;
        let start = id as usize * D;
        let row: &[f32; D] = bags.table[start..start + D].try_into().expect("a row of D floats");
        if bags.weights.is_empty() {
            for (a, &x) in acc.iter_mut().zip(row) {
                *a += x;
            }
        } else {
            let w = bags.weights[p];
            sum_sq += w * w;
            for (a, &x) in acc.iter_mut().zip(row) {
                *a = w.mul_add(x, *a);
            }
        }
    }
    *out = acc;
    (count, sum_sq)
}

#[inline(always)]
fn sum_bag_dyn(bags: &Bags<'_>, b: usize, acc: &mut [f32]) -> (u32, f32) {
    let dim = bags.dim;
    acc.fill(0.0);
    let (mut count, mut sum_sq) = (0, 0.0f32);
    let prefetch = bags.prefetch();
    for p in bags.bounds[b]..bags.bounds[b + 1] {
        if prefetch {
            if let Some(&next) = bags.ids.get(p + PREFETCH_DISTANCE) {
                simd::prefetch(bags.table, next as usize * dim, dim);
            }
        }
        let id = bags.ids[p];
        if Some(id) == bags.padding {
            continue;
        }
        count += 1;
        let row = &bags.table[id as usize * dim..][..dim];
        if bags.weights.is_empty() {
            acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x);
        } else {
            let w = bags.weights[p];
            sum_sq += w * w;
            acc.iter_mut().zip(row).for_each(|(a, &x)| *a = w.mul_add(x, *a));
        }
    }
    (count, sum_sq)
}

/// Marks an output element that no entry gave (an empty bag).
pub(crate) const NO_ENTRY: usize = usize::MAX;

/// The element-wise maximum of each bag's rows into its row of `out`, and
/// in `argmax` the entry that gave each element: the first entry with the
/// largest value (a running maximum replaced only by a strictly larger
/// value, as PyTorch's CPU kernel). An empty bag gets zeros and
/// [`NO_ENTRY`].
///
/// # Panics
///
/// As [`bag_sum`].
pub(crate) fn bag_max(bags: Bags<'_>, out: &mut [f32], argmax: &mut [usize], threads: Threads) {
    let (n, dim) = (bags.len(), bags.dim);
    assert!(out.len() == n * dim && argmax.len() == n * dim, "one row per bag");
    let ranges = bags.parts(threads);
    let prefetch = bags.prefetch();
    let run = |range: std::ops::Range<usize>, out: &mut [f32], argmax: &mut [usize]| {
        let first = range.start;
        for b in range {
            let k = b - first;
            let acc = &mut out[k * dim..(k + 1) * dim];
            let arg = &mut argmax[k * dim..(k + 1) * dim];
            acc.fill(0.0);
            arg.fill(NO_ENTRY);
            for p in bags.bounds[b]..bags.bounds[b + 1] {
                if prefetch {
                    if let Some(&next) = bags.ids.get(p + PREFETCH_DISTANCE) {
                        simd::prefetch(bags.table, next as usize * dim, dim);
                    }
                }
                let id = bags.ids[p];
                if Some(id) == bags.padding {
                    continue;
                }
                let row = &bags.table[id as usize * dim..][..dim];
                if arg[0] == NO_ENTRY {
                    acc.copy_from_slice(row);
                    arg.fill(p);
                    continue;
                }
                for ((a, m), &x) in acc.iter_mut().zip(arg.iter_mut()).zip(row) {
                    if x > *a {
                        *a = x;
                        *m = p;
                    }
                }
            }
        }
    };
    if ranges.len() <= 1 {
        run(0..n, out, argmax);
        return;
    }
    std::thread::scope(|scope| {
        let run = &run;
        let (mut out, mut argmax) = (out, argmax);
        let last = ranges.len() - 1;
        for (k, range) in ranges.into_iter().enumerate() {
            let (o, rest_o) = out.split_at_mut(range.len() * dim);
            let (a, rest_a) = argmax.split_at_mut(range.len() * dim);
            (out, argmax) = (rest_o, rest_a);
            if k == last {
                run(range, o, a);
            } else {
                scope.spawn(move || run(range, o, a));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn fixed_and_dynamic_sums_agree_on_any_thread_count() {
        let mut rng = StdRng::seed_from_u64(8);
        for dim in [3, 8, 64] {
            let rows = 40;
            let table: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>() - 0.5).collect();
            let ids: Vec<u32> = (0..super::super::test_size(30_000))
                .map(|_| rng.random_range(0..rows as u32))
                .collect();
            let weights: Vec<f32> = ids.iter().map(|_| rng.random::<f32>()).collect();
            let mut bounds: Vec<usize> = (0..ids.len()).step_by(7).collect();
            bounds.insert(3, 14); // an empty bag
            bounds.push(ids.len());
            for weights in [&[][..], &weights[..]] {
                let bags = Bags {
                    table: &table,
                    dim,
                    ids: &ids,
                    bounds: &bounds,
                    weights,
                    padding: Some(3),
                };
                let n = bounds.len() - 1;
                let mut expected = vec![0.0f32; n * dim];
                for b in 0..n {
                    for p in bounds[b]..bounds[b + 1] {
                        if ids[p] == 3 {
                            continue;
                        }
                        for j in 0..dim {
                            let x = table[ids[p] as usize * dim + j];
                            let a = &mut expected[b * dim + j];
                            *a =
                                if weights.is_empty() { *a + x } else { weights[p].mul_add(x, *a) };
                        }
                    }
                }
                for threads in 1..=3 {
                    let (mut out, mut counts, mut sq) =
                        (vec![f32::NAN; n * dim], vec![0; n], vec![0.0; n]);
                    bag_sum(bags, &mut out, &mut counts, &mut sq, Threads::new(threads).unwrap());
                    assert_eq!(out, expected, "dim {dim}, threads {threads}");
                    assert_eq!(counts[2], 0, "bag 2 is empty");
                }
            }
        }
    }

    #[test]
    fn max_keeps_the_first_largest_entry_on_any_thread_count() {
        let mut rng = StdRng::seed_from_u64(9);
        let (rows, dim) = (30, 8);
        let table: Vec<f32> = (0..rows * dim).map(|_| rng.random_range(0..4) as f32).collect();
        let ids: Vec<u32> = (0..super::super::test_size(100_000))
            .map(|_| rng.random_range(0..rows as u32))
            .collect();
        let bounds: Vec<usize> = (0..=ids.len()).step_by(10).collect();
        let bags =
            Bags { table: &table, dim, ids: &ids, bounds: &bounds, weights: &[], padding: None };
        let n = bounds.len() - 1;
        let (mut one, mut one_arg) = (vec![0.0; n * dim], vec![0; n * dim]);
        bag_max(bags, &mut one, &mut one_arg, Threads::single());
        for b in 0..n {
            for j in 0..dim {
                let entries = bounds[b]..bounds[b + 1];
                let best = entries
                    .clone()
                    .map(|p| table[ids[p] as usize * dim + j])
                    .fold(f32::MIN, f32::max);
                let first =
                    entries.clone().find(|&p| table[ids[p] as usize * dim + j] == best).unwrap();
                assert_eq!((one[b * dim + j], one_arg[b * dim + j]), (best, first));
            }
        }
        let (mut two, mut two_arg) = (vec![0.0; n * dim], vec![0; n * dim]);
        bag_max(bags, &mut two, &mut two_arg, Threads::new(2).unwrap());
        assert_eq!((one, one_arg), (two, two_arg));
    }
}
