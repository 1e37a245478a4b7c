//! A quantised first pass for exact top-k: the rows kept as 8-bit codes
//! (a quarter of the bytes), scored with error bounds, so that only the
//! few rows whose score *might* be in the top `k` are scored again from
//! the f32 rows. The answer is exactly that of the full f32 scan.
//!
//! Each row `r` is stored as a scale `s` and codes `c` in `-127..=127`
//! with `r = s·c + e`, together with `|s·c|` and `|e|`. For a query `q`
//! quantised the same way (`q = t·d + f`),
//!
//! ```text
//! q·r = t·s·(d·c) + s·(f·c) + q·e,   |s·(f·c)| ≤ |f|·|s·c|,   |q·e| ≤ |q|·|e|
//! ```
//!
//! and `d·c` is an exact integer. The f32 kernels' own rounding error is
//! bounded by `γ·|q|·|r|` with `γ = (dim + 64)·2⁻²²` plus an absolute term
//! for underflow, which is larger than the worst case of a 16-lane sum.
//! From the bounds on `q·r` come bounds on each similarity's score, a
//! little widened for the final rounding to f32.
//!
//! Let `L` be the k-th largest lower bound. Every row whose upper bound is
//! below `L` scores below `k` other rows, so it is not in the answer; the
//! others are scored exactly and ranked as in the full scan. Rows with
//! values beyond ±10¹⁵, NaN or infinite (which the bounds do not cover)
//! are always scored exactly.

use std::ops::Range;

use super::neighbors::{in_parts, ExactIndex, Neighbor, Similarity};
use super::scan;
use crate::kernels::simd;
use crate::Threads;

/// Tables with fewer rows are scanned directly: the first pass would not
/// pay for itself.
pub(crate) const MIN_ROWS: usize = 1 << 14;

/// Rows shorter than this are scanned directly (8-bit codes save little).
pub(crate) const MIN_DIM: usize = 16;

/// For larger `k` the full scan is used.
pub(crate) const MAX_K: usize = 1024;

/// Rows whose integer dot products are computed before their bounds.
const BLOCK: usize = 64;

/// Values beyond this (in rows or queries) are not quantised: products
/// stay far from f32 overflow below it.
const LIMIT: f64 = 1e15;

/// Per row: scale `s` (NaN for a row that is always rescored), an upper
/// bound of `|s·c|`, an upper bound of `|e|`, and for cosine `1/|r|`, for
/// Euclidean `|r|²`.
type Meta = [f32; 4];

/// The quantised rows of a table.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    dim: usize,
    codes: Vec<i8>,
    meta: Vec<Meta>,
}

/// A vector's quantisation: scale, `|s·c|`, `|e|` and `|x|²`, in f64.
#[derive(Debug, Clone, Copy)]
struct Quantized {
    scale: f64,
    coded_norm: f64,
    residual_norm: f64,
    squared_norm: f64,
}

/// Quantises `x` into `codes`; `None` for a vector with a value that is
/// not finite, beyond [`LIMIT`], or so small the scale underflows.
fn quantize(x: &[f32], codes: &mut [i8]) -> Option<Quantized> {
    let max = x.iter().map(|v| f64::from(v.abs())).fold(0.0f64, f64::max);
    if !x.iter().all(|v| v.is_finite()) || max > LIMIT {
        return None;
    }
    codes.fill(0);
    if max == 0.0 {
        return Some(Quantized {
            scale: 0.0,
            coded_norm: 0.0,
            residual_norm: 0.0,
            squared_norm: 0.0,
        });
    }
    // The scale is kept as an f32, so the f64 value used here is exact.
    let scale = f64::from((max / 127.0) as f32);
    if scale == 0.0 {
        return None;
    }
    let (mut cc, mut ee, mut xx) = (0.0f64, 0.0f64, 0.0f64);
    for (&v, code) in x.iter().zip(codes.iter_mut()) {
        let v = f64::from(v);
        let c = (v / scale).round().clamp(-127.0, 127.0);
        *code = c as i8;
        let e = v - scale * c;
        cc += c * c;
        ee += e * e;
        xx += v * v;
    }
    Some(Quantized {
        scale,
        coded_norm: scale * cc.sqrt(),
        residual_norm: ee.sqrt(),
        squared_norm: xx,
    })
}

/// `v` as an f32 no smaller than `v` (for `v ≥ 0`).
fn up(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) < v {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

/// The exact integer `a·b` of two code vectors.
///
/// A plain sum of widened products: integer sums are exact, so the
/// compiler may reorder them, and its loop vectoriser turns the reduction
/// into `vpmaddwd` (16 products at once with AVX2; see
/// [`dispatch`](crate::kernels::simd::dispatch)).
///
/// # Panics
///
/// If the lengths differ.
#[inline(always)]
fn dot_codes(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len(), "codes of equal length");
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

/// The query, quantised, with what the bounds need.
struct Query {
    codes: Vec<i8>,
    q: Quantized,
    norm: f64,
    /// `1/|q|` for cosine, exactly as [`ExactIndex::score`] has it.
    inverse_norm: f64,
    /// `(dim + 64)·2⁻²²`: a bound of the f32 kernels' relative error.
    gamma: f64,
    /// A bound of the kernels' absolute error from underflow.
    tiny: f64,
}

impl Prefilter {
    /// Quantises the rows of a `[rows.len() / dim, dim]` table on up to
    /// `threads` threads. `inverse_norms` are the exact index's (cosine).
    pub fn new(
        rows: &[f32],
        dim: usize,
        similarity: Similarity,
        inverse_norms: &[f64],
        threads: Threads,
    ) -> Self {
        let n = rows.len() / dim;
        let parts = threads.parts_for(n * dim, 1 << 18);
        let quantize_part = |ids: Range<usize>| {
            let mut codes = vec![0i8; ids.len() * dim];
            let meta: Vec<Meta> = ids
                .clone()
                .zip(codes.chunks_exact_mut(dim))
                .map(|(id, out)| match quantize(&rows[id * dim..(id + 1) * dim], out) {
                    None => [f32::NAN, 0.0, 0.0, 0.0],
                    Some(q) => {
                        let extra = match similarity {
                            Similarity::Cosine => inverse_norms[id] as f32,
                            Similarity::Euclidean => q.squared_norm as f32,
                            Similarity::Dot => 0.0,
                        };
                        // (`scale` is an f32 value already.)
                        [q.scale as f32, up(q.coded_norm), up(q.residual_norm), extra]
                    }
                })
                .collect();
            (codes, meta)
        };
        let mut codes = Vec::with_capacity(n * dim);
        let mut meta = Vec::with_capacity(n);
        for (c, m) in in_parts(n, parts, quantize_part) {
            codes.extend_from_slice(&c);
            meta.extend_from_slice(&m);
        }
        Self { dim, codes, meta }
    }

    /// The bytes this first pass keeps.
    pub fn memory_bytes(&self) -> usize {
        self.codes.len() + std::mem::size_of_val(self.meta.as_slice())
    }

    /// The exact top `k` of `index` for `query`, or `None` when the query
    /// cannot be quantised (a value beyond 10¹⁵): then scan directly.
    pub fn top_k(
        &self,
        index: &ExactIndex<'_>,
        query: &[f32],
        k: usize,
        exclude: &[u32],
        threads: Threads,
    ) -> Option<Vec<Neighbor>> {
        if k == 0 {
            return Some(Vec::new());
        }
        let dim = self.dim;
        let mut codes = vec![0i8; dim];
        let q = quantize(query, &mut codes)?;
        let norm = q.squared_norm.sqrt();
        let query_info = Query {
            codes,
            q,
            norm,
            // As the exact score computes it (from the f32 kernel, which
            // may underflow for tiny queries), so both scale alike.
            inverse_norm: scan::inverse_norm(scan::dot(query, query)),
            gamma: (dim as f64 + 64.0) * f64::powi(2.0, -22),
            tiny: (dim as f64 + 64.0) * 1e-44,
        };
        let n = self.meta.len();
        let parts = threads.parts_for(n * dim, 1 << 18);
        let similarity = index.similarity();
        let found = in_parts(n, parts, |ids| {
            simd::dispatch(
                #[inline(always)]
                || self.part(&query_info, similarity, ids, k, exclude),
            )
        });
        // The k-th largest lower bound of all rows.
        let mut lows: Vec<f64> = found.iter().flat_map(|(lows, _)| lows.iter().copied()).collect();
        let threshold = if lows.len() >= k {
            lows.sort_by(|a, b| b.total_cmp(a));
            lows[k - 1]
        } else {
            f64::NEG_INFINITY
        };
        let mut near: Vec<Neighbor> = found
            .iter()
            .flat_map(|(_, cands)| cands.iter())
            .filter(|&&(_, hi)| hi >= threshold)
            .map(|&(id, _)| Neighbor { id, similarity: index.score(query, id) })
            .collect();
        near.sort_by(scan::better_first);
        near.truncate(k);
        Some(near)
    }

    /// One part of the first pass: the `k` largest lower bounds of rows
    /// `ids`, and the rows whose upper bound reached the k-th largest
    /// lower bound seen so far (with that upper bound).
    #[inline(always)]
    fn part(
        &self,
        query: &Query,
        similarity: Similarity,
        ids: Range<usize>,
        k: usize,
        exclude: &[u32],
    ) -> (Vec<f64>, Vec<(u32, f64)>) {
        let dim = self.dim;
        let codes = &self.codes[ids.start * dim..ids.end * dim];
        let meta = &self.meta[ids.clone()];
        // The k largest lower bounds, smallest first (k is small).
        let mut lows: Vec<f64> = Vec::with_capacity(k + 1);
        let mut threshold = f64::NEG_INFINITY;
        let mut cands: Vec<(u32, f64)> = Vec::new();
        let q = &query.q;
        // t = (e + γ·|q|·|r| + tiny)·(1 + 1e-9) with e = |f|·|s·c| + |q|·|e_r|
        // and |r| ≤ |s·c| + |e_r|, as two products per row.
        let (c_coded, c_residual, c_tiny) = (
            (q.residual_norm + query.gamma * query.norm) * (1.0 + 1e-9),
            (query.norm + query.gamma * query.norm) * (1.0 + 1e-9),
            query.tiny * (1.0 + 1e-9),
        );
        // For Euclidean: skip a row when its smallest squared distance is
        // above this (the threshold in squared distances, no square root).
        let mut cut_d2 = f64::INFINITY;
        // The integer dot products of a block of rows first, in a loop
        // with no branch on the data, so the processor streams the codes;
        // then the bounds of those rows.
        let mut dots = [0i32; BLOCK];
        for start in (0..ids.len()).step_by(BLOCK) {
            let end = (start + BLOCK).min(ids.len());
            for (dot, row) in dots.iter_mut().zip(codes[start * dim..end * dim].chunks_exact(dim)) {
                *dot = dot_codes(&query.codes, row);
            }
            for ((j, m), &dot) in (start..end).zip(&meta[start..end]).zip(&dots) {
                let id = (ids.start + j) as u32;
                let [scale, coded_norm, residual_norm, extra] = m.map(f64::from);
                if scale.is_nan() {
                    if !exclude.contains(&id) {
                        cands.push((id, f64::INFINITY));
                    }
                    continue;
                }
                let approx = q.scale * scale * f64::from(dot);
                let (lo, hi) = match similarity {
                    Similarity::Dot => {
                        let t = c_coded * coded_norm + c_residual * residual_norm + c_tiny;
                        if approx + t < threshold {
                            continue;
                        }
                        (approx - t, approx + t)
                    }
                    Similarity::Cosine => {
                        let t = c_coded * coded_norm + c_residual * residual_norm + c_tiny;
                        let scale = query.inverse_norm * extra;
                        let (lo, hi) = widen((approx - t) * scale, (approx + t) * scale, 1e-6);
                        if hi < threshold {
                            continue;
                        }
                        (lo, hi)
                    }
                    Similarity::Euclidean => {
                        // Bounds of the real q·r (no kernel term), then of the
                        // squared distance the f32 kernel computes.
                        let e = q.residual_norm * coded_norm + query.norm * residual_norm;
                        let base = q.squared_norm + extra;
                        let slack = query.gamma * 2.0 * (base + 1.0e-30) + query.tiny;
                        let d2_lo = (base - 2.0 * (approx + e) - slack).max(0.0);
                        if d2_lo > cut_d2 {
                            continue;
                        }
                        let d2_hi = base - 2.0 * (approx - e) + slack;
                        widen(-d2_hi.max(0.0).sqrt(), -d2_lo.sqrt(), 1e-6)
                    }
                };
                if hi < threshold || exclude.contains(&id) {
                    continue;
                }
                cands.push((id, hi));
                if lows.len() < k {
                    let at = lows.partition_point(|&x| x < lo);
                    lows.insert(at, lo);
                    if lows.len() == k {
                        threshold = lows[0];
                    }
                } else if lo > threshold {
                    lows.remove(0);
                    let at = lows.partition_point(|&x| x < lo);
                    lows.insert(at, lo);
                    threshold = lows[0];
                } else {
                    continue;
                }
                if threshold > f64::NEG_INFINITY {
                    // hi = -(1 - 1e-6)·√d2_lo + 1e-37 < threshold exactly when
                    // √d2_lo > m; squared with a margin, so no row is skipped
                    // that should not be.
                    let m = (1e-37 - threshold) / (1.0 - 1e-6);
                    cut_d2 = if m < 0.0 { f64::NEG_INFINITY } else { m * m * (1.0 + 1e-12) };
                }
            }
        }
        (lows, cands)
    }
}

/// Widens score bounds by `rel` of their size, for the rounding of the
/// final score to f32 and of the stored norms.
#[inline(always)]
fn widen(lo: f64, hi: f64, rel: f64) -> (f64, f64) {
    (lo - rel * lo.abs() - 1e-37, hi + rel * hi.abs() + 1e-37)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn quantisation_bounds_hold() {
        let mut rng = StdRng::seed_from_u64(0);
        for _ in 0..200 {
            let x: Vec<f32> = (0..37).map(|_| rng.random_range(-3.0f32..3.0)).collect();
            let mut codes = vec![0; 37];
            let q = quantize(&x, &mut codes).unwrap();
            let back: Vec<f64> = codes.iter().map(|&c| q.scale * f64::from(c)).collect::<Vec<_>>();
            let res: f64 =
                x.iter().zip(&back).map(|(&v, b)| (f64::from(v) - b).powi(2)).sum::<f64>().sqrt();
            assert!((res - q.residual_norm).abs() < 1e-9);
            assert!(f64::from(up(q.residual_norm)) >= q.residual_norm);
        }
        assert!(quantize(&[1e16, 0.0], &mut [0; 2]).is_none());
        assert!(quantize(&[f32::NAN, 0.0], &mut [0; 2]).is_none());
        assert_eq!(dot_codes(&[127; 40], &[-127; 40]), -127 * 127 * 40);
    }

    /// Rows of several kinds: repeated rows and scaled copies (ties),
    /// zero rows, tiny and huge rows, rows with NaN.
    fn table(rows: usize, dim: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut t = Array2::from_shape_fn((rows, dim), |_| rng.random_range(-1.0f32..1.0));
        for r in 1..rows {
            match rng.random_range(0..24) {
                0 => {
                    let copy = t.row(rng.random_range(0..r)).to_owned();
                    t.row_mut(r).assign(&copy);
                }
                1 => {
                    let copy = t.row(rng.random_range(0..r)).to_owned() * 3.0;
                    t.row_mut(r).assign(&copy);
                }
                2 => t.row_mut(r).fill(0.0),
                3 => t.row_mut(r).mapv_inplace(|x| x * 1e-30),
                4 => t.row_mut(r).mapv_inplace(|x| x * 1e20),
                5 => t[[r, 0]] = f32::NAN,
                6 => t.row_mut(r).mapv_inplace(|x| (x * 4.0).round()),
                _ => {}
            }
        }
        t
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The first pass changes nothing: the same neighbours and scores,
        /// bit for bit, as the full scan, for any split over threads.
        #[test]
        fn the_first_pass_gives_the_full_scans_answer(
            rows in 1usize..400,
            dim in 1usize..40,
            k in 0usize..25,
            seed: u64,
            similarity in prop::sample::select(Similarity::ALL.to_vec()),
            threads in 1usize..4,
            query_kind in 0usize..4,
        ) {
            let t = table(rows, dim, seed);
            let index = ExactIndex::new(t.view(), similarity, Threads::single());
            let prefilter = Prefilter::new(
                t.as_slice().unwrap(), dim, similarity, index.inverse_norms(),
                Threads::new(threads).unwrap(),
            );
            let mut query = t.row(seed as usize % rows).to_vec();
            match query_kind {
                0 => {}
                1 => query.iter_mut().enumerate().for_each(|(i, x)| *x = (i % 3) as f32 - 1.0),
                2 => query.iter_mut().for_each(|x| *x *= 1e-20),
                _ => query.iter_mut().for_each(|x| *x = 0.0),
            }
            if query.iter().any(|x| !x.is_finite() || x.abs() > 1e15) {
                query.iter_mut().for_each(|x| *x = 0.5);
            }
            let exclude = [(seed % 7) as u32, 3];
            let want = index.full_scan(&query, k, &exclude);
            let threads = Threads::new(threads).unwrap();
            let got = prefilter.top_k(&index, &query, k, &exclude, threads).unwrap();
            let bits = |v: &[Neighbor]| -> Vec<(u32, u32)> {
                v.iter().map(|n| (n.id, n.similarity.to_bits())).collect()
            };
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }
}
