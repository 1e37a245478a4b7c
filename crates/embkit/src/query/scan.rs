//! The inner loops of the neighbour searches: dot products and squared
//! distances on plain slices, written so the compiler vectorises them
//! (fixed-width chunks, independent accumulators, no `unsafe`), and a
//! bounded top-k.
//!
//! Every function gives the same bits for the same inputs, whatever the
//! caller's thread split: the summation order depends only on the length.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::neighbors::Neighbor;

pub(crate) use crate::kernels::vector::{dot, squared_distance};

/// `1 / |v|` from `|v|²` in f64, and 0 for a zero vector (so its cosine
/// with anything is 0).
#[inline]
pub(crate) fn inverse_norm(squared_norm: f32) -> f64 {
    if squared_norm == 0.0 {
        0.0
    } else {
        1.0 / f64::from(squared_norm).sqrt()
    }
}

/// The cosine from a dot product and the two inverse norms.
#[inline(always)]
pub(crate) fn cosine(dot: f32, inv_query: f64, inv_row: f64) -> f32 {
    (f64::from(dot) * inv_query * inv_row) as f32
}

/// Minus the distance from a squared distance.
#[inline(always)]
pub(crate) fn minus_distance(squared: f32) -> f32 {
    -f64::from(squared).sqrt() as f32
}

/// The sort key of a score: NaN (a row with NaN values) ranks below
/// everything, and -0.0 ties with 0.0.
#[inline(always)]
pub(crate) fn rank_key(similarity: f32) -> f32 {
    if similarity.is_nan() {
        f32::NEG_INFINITY
    } else {
        similarity + 0.0
    }
}

/// The order of results: larger key first, then smaller id. A total order
/// on neighbours with distinct ids.
#[inline]
pub(crate) fn better_first(a: &Neighbor, b: &Neighbor) -> Ordering {
    rank_key(b.similarity).total_cmp(&rank_key(a.similarity)).then(a.id.cmp(&b.id))
}

/// A candidate in [`TopK`]'s heap, ordered so the *worst* is the largest.
#[derive(Debug, Clone, Copy)]
struct Worst {
    key: f32,
    id: u32,
    similarity: f32,
    /// A value the caller ranks by before computing the score (the
    /// squared distance for Euclidean); see [`TopK::worst_raw`].
    raw: f32,
}

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Worst {}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        // Smaller key is worse; on equal keys the larger id is worse.
        other.key.total_cmp(&self.key).then(self.id.cmp(&other.id))
    }
}

/// The best `k` of the candidates offered, in a bounded heap.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    /// The worst key kept once the heap is full; `NaN`-free.
    threshold: f32,
}

impl TopK {
    /// An empty top-`k`.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1),
            threshold: f32::NEG_INFINITY,
        }
    }

    /// Whether `k` candidates are kept already.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Whether a candidate with this score and id would be kept.
    #[inline(always)]
    pub fn accepts(&self, similarity: f32, id: u32) -> bool {
        if !self.is_full() {
            return true;
        }
        let key = rank_key(similarity);
        if key < self.threshold {
            return false;
        }
        // Full with k = 0: nothing is kept.
        let Some(worst) = self.heap.peek() else { return false };
        key > worst.key || (key == worst.key && id < worst.id)
    }

    /// Offers a candidate; `raw` is kept beside it (see
    /// [`worst_raw`](Self::worst_raw)). Returns whether it was kept.
    #[inline]
    #[allow(dead_code)]
    pub fn offer(&mut self, id: u32, similarity: f32, raw: f32) -> bool {
        if !self.accepts(similarity, id) {
            return false;
        }
        self.push(id, similarity, raw);
        true
    }

    /// Adds a candidate that [`accepts`](Self::accepts) said is kept.
    pub fn push(&mut self, id: u32, similarity: f32, raw: f32) {
        if self.is_full() {
            self.heap.pop();
        }
        self.heap.push(Worst { key: rank_key(similarity), id, similarity, raw });
        if self.is_full() {
            self.threshold = self.heap.peek().expect("full").key;
        }
    }

    /// The `raw` value of the worst kept candidate once full.
    #[inline]
    pub fn worst_raw(&self) -> Option<f32> {
        if self.is_full() {
            self.heap.peek().map(|w| w.raw)
        } else {
            None
        }
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Neighbor> {
        let mut out: Vec<Neighbor> = self
            .heap
            .into_iter()
            .map(|w| Neighbor { id: w.id, similarity: w.similarity })
            .collect();
        out.sort_by(better_first);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
    }

    #[test]
    fn kernels_agree_with_f64_sums_for_every_length() {
        for len in 0..70 {
            let a: Vec<f32> = (0..len).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
            let b: Vec<f32> = (0..len).map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0).collect();
            let want = plain_dot(&a, &b);
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-4, "len {len}");
            let diff: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
            let want = plain_dot(&diff, &diff);
            assert!((f64::from(squared_distance(&a, &b)) - want).abs() < 1e-4, "len {len}");
        }
    }

    #[test]
    fn top_k_keeps_the_best_with_ties_to_the_smaller_id() {
        let mut top = TopK::new(3);
        for (id, s) in [(5, 1.0), (2, 1.0), (9, f32::NAN), (1, 0.5), (7, 2.0), (3, 1.0)] {
            top.offer(id, s, 0.0);
        }
        let got: Vec<u32> = top.into_sorted().iter().map(|n| n.id).collect();
        assert_eq!(got, vec![7, 2, 3]);
        let mut none = TopK::new(0);
        assert!(!none.offer(0, 1.0, 0.0));
        assert!(none.into_sorted().is_empty());
    }
}
