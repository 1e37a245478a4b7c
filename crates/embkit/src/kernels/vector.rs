//! Dot products and squared distances on plain slices, written so the
//! compiler vectorises them (fixed-width chunks, independent
//! accumulators, no `unsafe`). The summation order depends only on the
//! length, so every caller gets the same bits for the same inputs,
//! whatever its thread split or instruction set.

/// Values summed per step: 16 independent accumulators, which the
/// compiler turns into a few vector registers.
const LANES: usize = 16;

/// Adds the 16 accumulators, in order.
///
/// A sequential sum on purpose: when the reduction is a tree the
/// compiler can vectorise, LLVM's SLP vectoriser (as of Rust 1.95)
/// vectorises the whole kernel 2 lanes wide instead of 4 (8-byte loads),
/// which costs about 15% on the scan. The out-of-order core overlaps this
/// short chain with the next row's products.
#[inline(always)]
fn reduce(acc: [f32; LANES]) -> f32 {
    acc.iter().fold(0.0, |sum, &x| sum + x)
}

/// `a·b` in f32.
///
/// # Panics
///
/// If the lengths differ.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors of equal length");
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let x: &[f32; LANES] = x.try_into().expect("chunk of LANES");
        let y: &[f32; LANES] = y.try_into().expect("chunk of LANES");
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    reduce(acc) + tail
}

/// `|a - b|²` in f32.
///
/// # Panics
///
/// If the lengths differ.
#[inline(always)]
pub(crate) fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors of equal length");
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let x: &[f32; LANES] = x.try_into().expect("chunk of LANES");
        let y: &[f32; LANES] = y.try_into().expect("chunk of LANES");
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        tail += d * d;
    }
    reduce(acc) + tail
}
