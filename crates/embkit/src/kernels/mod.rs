//! The hot loops of embedding layers and their optimizers, on plain slices:
//! the row gather, the bag reduce, the backward's segment sum and the
//! split of a row update over threads.
//!
//! Layers check their inputs (ids in range, shapes) and then call these;
//! a kernel panics only if a caller broke that contract. Every kernel
//! gives the same bits for any [`Threads`]: threads own disjoint output
//! rows, and each output row is computed by one thread in the same order
//! as on one thread. `unsafe` lives in [`simd`] only.

pub(crate) mod bag;
pub(crate) mod buffer;
pub(crate) mod segment;
pub(crate) mod simd;
pub(crate) mod vector;

pub(crate) use segment::{counting_sort_by_id, SortScratch};

use crate::threads::{split_evenly, Threads, MIN_FLOATS_PER_THREAD};

/// How far ahead of the row being copied the gather prefetches.
const PREFETCH_DISTANCE: usize = 16;

/// Tables smaller than this are assumed to sit in the cache: no prefetch.
const PREFETCH_MIN_TABLE_BYTES: usize = 4 << 20;

/// Outputs at least this large are written with streaming stores: they
/// would not fit in the cache anyway, and streaming saves reading each
/// output line before writing it.
const STREAM_MIN_OUTPUT_BYTES: usize = 8 << 20;

/// `out[i, :] = table[ids[i], :]` for rows of `dim` floats.
///
/// # Errors
///
/// The first id (in the order of `ids`) that is not a row of `table`;
/// `out` is then partly written.
///
/// # Panics
///
/// If `out.len() != ids.len() * dim`.
pub(crate) fn gather(
    table: &[f32],
    dim: usize,
    ids: &[u32],
    out: &mut [f32],
    threads: Threads,
) -> Result<(), u32> {
    assert_eq!(out.len(), ids.len() * dim, "one output row per id");
    if dim == 0 {
        return first_id_out_of_range(ids, 0).map_or(Ok(()), Err);
    }
    if ids.is_empty() {
        return Ok(());
    }
    let prefetch = std::mem::size_of_val(table) >= PREFETCH_MIN_TABLE_BYTES;
    let stream =
        std::mem::size_of_val(out) >= STREAM_MIN_OUTPUT_BYTES && simd::can_stream(out, dim);
    let parts = threads.parts_for(ids.len() * dim, MIN_FLOATS_PER_THREAD);
    let run = |ids: &[u32], out: &mut [f32]| match dim {
        // Fixed lengths compile to a few vector moves instead of a call
        // to `memcpy` per row, which dominates for short rows.
        4 => gather_fixed::<4>(table, ids, out, prefetch, stream),
        8 => gather_fixed::<8>(table, ids, out, prefetch, stream),
        16 => gather_fixed::<16>(table, ids, out, prefetch, stream),
        32 => gather_fixed::<32>(table, ids, out, prefetch, stream),
        64 => gather_fixed::<64>(table, ids, out, prefetch, stream),
        128 => gather_fixed::<128>(table, ids, out, prefetch, stream),
        _ => gather_part(table, dim, ids, out, prefetch, stream, <[f32]>::copy_from_slice),
    };
    if parts <= 1 {
        return run(ids, out);
    }
    let mut first_bad = vec![None; parts];
    for_each_part(ids, out, dim, &mut first_bad, |ids, out, bad| {
        *bad = run(ids, out).err();
    });
    first_bad.into_iter().flatten().next().map_or(Ok(()), Err)
}

/// `table[ids[i], :] = rows[i, :]` for rows of `dim` floats, with the
/// fixed-width copies of [`gather`] (ids already checked to be rows of
/// `table`).
///
/// # Panics
///
/// If `rows.len() != ids.len() * dim` or an id is past the table.
pub(crate) fn scatter(table: &mut [f32], dim: usize, ids: &[u32], rows: &[f32]) {
    assert_eq!(rows.len(), ids.len() * dim, "one row per id");
    fn run(
        table: &mut [f32],
        dim: usize,
        ids: &[u32],
        rows: &[f32],
        copy: impl Fn(&mut [f32], &[f32]),
    ) {
        for (&id, row) in ids.iter().zip(rows.chunks_exact(dim)) {
            copy(&mut table[id as usize * dim..][..dim], row);
        }
    }
    match dim {
        0 => {}
        4 => run(table, 4, ids, rows, copy_fixed::<4>),
        8 => run(table, 8, ids, rows, copy_fixed::<8>),
        16 => run(table, 16, ids, rows, copy_fixed::<16>),
        32 => run(table, 32, ids, rows, copy_fixed::<32>),
        64 => run(table, 64, ids, rows, copy_fixed::<64>),
        128 => run(table, 128, ids, rows, copy_fixed::<128>),
        _ => run(table, dim, ids, rows, <[f32]>::copy_from_slice),
    }
}

/// Runs `run` on `results.len()` contiguous parts of `items` and of `out`
/// (`dim` outputs per item), one thread each, each with its own result
/// slot; the last part runs on the caller's thread.
pub(crate) fn for_each_part<T: Sync, R: Send>(
    items: &[T],
    out: &mut [f32],
    dim: usize,
    results: &mut [R],
    run: impl Fn(&[T], &mut [f32], &mut R) + Sync,
) {
    if results.len() <= 1 {
        if let Some(result) = results.first_mut() {
            run(items, out, result);
        }
        return;
    }
    let ranges = split_evenly(items.len(), results.len());
    std::thread::scope(|scope| {
        let run = &run;
        let mut rest = out;
        let mut last = None;
        for (k, (range, result)) in ranges.iter().zip(results.iter_mut()).enumerate() {
            let (mine, tail) = rest.split_at_mut(range.len() * dim);
            rest = tail;
            let items = &items[range.clone()];
            if k + 1 == ranges.len() {
                last = Some((items, mine, result));
            } else {
                scope.spawn(move || run(items, mine, result));
            }
        }
        if let Some((items, mine, result)) = last {
            run(items, mine, result);
        }
    });
}

/// Calls `write(i, row)` with the table row of each id, in order,
/// prefetching later rows of a large table; stops at the first id that is
/// not a row of the table.
#[inline(always)]
fn for_each_row(
    table: &[f32],
    dim: usize,
    ids: &[u32],
    prefetch: bool,
    mut write: impl FnMut(usize, &[f32]),
) -> Result<(), u32> {
    for (i, &id) in ids.iter().enumerate() {
        if prefetch {
            if let Some(&next) = ids.get(i + PREFETCH_DISTANCE) {
                simd::prefetch(table, next as usize * dim, dim);
            }
        }
        // Checked arithmetic: `id * dim` must not wrap where usize is small.
        let start = (id as usize).checked_mul(dim).ok_or(id)?;
        let row = start.checked_add(dim).and_then(|end| table.get(start..end)).ok_or(id)?;
        write(i, row);
    }
    Ok(())
}

/// The gather of one part: each row streamed, or copied with `copy`.
#[inline(always)]
fn gather_part(
    table: &[f32],
    dim: usize,
    ids: &[u32],
    out: &mut [f32],
    prefetch: bool,
    stream: bool,
    copy: impl Fn(&mut [f32], &[f32]),
) -> Result<(), u32> {
    if stream {
        let mut writer = simd::StreamingWriter::new(out);
        return for_each_row(table, dim, ids, prefetch, |i, row| writer.write(i * dim, row));
    }
    for_each_row(table, dim, ids, prefetch, |i, row| copy(&mut out[i * dim..(i + 1) * dim], row))
}

/// The gather of one part for rows of `D` floats. Written to the cache,
/// each row costs one check of its id and `D` floats of vector moves (with
/// the processor's widest, [`simd::dispatch`]); streamed, as
/// [`gather_part`].
#[inline(always)]
fn gather_fixed<const D: usize>(
    table: &[f32],
    ids: &[u32],
    out: &mut [f32],
    prefetch: bool,
    stream: bool,
) -> Result<(), u32> {
    if stream {
        return gather_part(table, D, ids, out, prefetch, stream, copy_fixed::<D>);
    }
    let rows = table.len() / D;
    simd::dispatch(
        #[inline(always)]
        || {
            for (i, (&id, out)) in ids.iter().zip(out.chunks_exact_mut(D)).enumerate() {
                if prefetch {
                    if let Some(&next) = ids.get(i + PREFETCH_DISTANCE) {
                        simd::prefetch(table, next as usize * D, D);
                    }
                }
                if id as usize >= rows {
                    return Err(id);
                }
                copy_fixed::<D>(out, &table[id as usize * D..][..D]);
            }
            Ok(())
        },
    )
}

/// `dst.copy_from_slice(src)` for rows of `D` floats, as array moves.
#[inline(always)]
fn copy_fixed<const D: usize>(dst: &mut [f32], src: &[f32]) {
    let dst: &mut [f32; D] = dst.try_into().expect("D floats");
    *dst = src.try_into().expect("a row of D floats");
}

/// Whether every value is finite (no NaN, no infinity): checked in
/// blocks without early exit inside a block, which the compiler
/// vectorises, where `iter().all(is_finite)` tests one value at a time.
pub(crate) fn all_finite(values: &[f32]) -> bool {
    let mut blocks = values.chunks_exact(32);
    let blocks_ok = blocks.all(|b| b.iter().fold(true, |ok, x| ok & x.is_finite()));
    blocks_ok && blocks.remainder().iter().all(|x| x.is_finite())
}

/// [`all_finite`] on `threads` threads for a long slice.
pub(crate) fn all_finite_on(values: &[f32], threads: Threads) -> bool {
    let parts = threads.parts_for(values.len(), MIN_FLOATS_PER_THREAD);
    if parts <= 1 {
        return all_finite(values);
    }
    let ranges = split_evenly(values.len(), parts);
    std::thread::scope(|scope| {
        let others: Vec<_> = ranges[1..]
            .iter()
            .map(|r| scope.spawn(move || all_finite(&values[r.clone()])))
            .collect();
        let first = all_finite(&values[ranges[0].clone()]);
        // `all_finite` does not panic: a failed join counts as not finite.
        others.into_iter().fold(first, |ok, other| other.join().unwrap_or(false) && ok)
    })
}

/// The first id of `ids` that is not below `rows`, if any. Finds the
/// largest id first (a loop the compiler vectorises), so the common case,
/// all ids valid, costs one quick pass.
pub(crate) fn first_id_out_of_range(ids: &[u32], rows: usize) -> Option<u32> {
    let max = ids.iter().copied().fold(0, u32::max);
    if (max as usize) < rows {
        return None;
    }
    ids.iter().copied().find(|&id| id as usize >= rows)
}

/// `n` in tests, or a size miri runs in seconds (it interprets every
/// instruction; the `unsafe` code it checks is exercised by small inputs).
#[cfg(test)]
pub(crate) fn test_size(n: usize) -> usize {
    if cfg!(miri) {
        n / 50
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn reference_gather(table: &[f32], dim: usize, ids: &[u32]) -> Vec<f32> {
        ids.iter().flat_map(|&id| table[id as usize * dim..][..dim].iter().copied()).collect()
    }

    #[test]
    fn gather_matches_the_plain_loop_for_every_dim_and_thread_count() {
        let mut rng = StdRng::seed_from_u64(3);
        for dim in [1, 3, 4, 8, 13, 16, 32, 64, 128] {
            let rows = 50;
            let table: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>()).collect();
            let ids: Vec<u32> =
                (0..test_size(20_000)).map(|_| rng.random_range(0..rows as u32)).collect();
            let expected = reference_gather(&table, dim, &ids);
            for threads in 1..=3 {
                let mut out = vec![f32::NAN; ids.len() * dim];
                gather(&table, dim, &ids, &mut out, Threads::new(threads).unwrap()).unwrap();
                assert_eq!(out, expected, "dim {dim}, threads {threads}");
                let mut bad = ids.clone();
                bad[ids.len() / 2 + 1] = rows as u32 + 7;
                bad[ids.len() - 1] = rows as u32;
                let err = gather(&table, dim, &bad, &mut out, Threads::new(threads).unwrap());
                assert_eq!(err, Err(rows as u32 + 7));
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "8 MiB: too large for miri; the streaming copy is tested in simd")]
    fn large_outputs_stream_and_large_tables_prefetch_with_the_same_result() {
        // 2^17 rows of 16 (8 MiB table), 2^17 lookups (8 MiB output).
        let (rows, dim) = (1 << 17, 16);
        let mut rng = StdRng::seed_from_u64(4);
        let table: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>()).collect();
        let ids: Vec<u32> = (0..rows).map(|_| rng.random_range(0..rows as u32)).collect();
        let mut out = vec![0.0; ids.len() * dim];
        gather(&table, dim, &ids, &mut out, Threads::new(2).unwrap()).unwrap();
        assert_eq!(out, reference_gather(&table, dim, &ids));
    }

    #[test]
    fn all_finite_finds_any_nan_or_infinity() {
        for len in [0, 1, 31, 32, 33, 100] {
            let mut values = vec![1.5f32; len];
            assert!(all_finite(&values));
            for i in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    values[i] = bad;
                    assert!(!all_finite(&values), "len {len}, at {i}");
                    values[i] = 1.5;
                }
            }
        }
    }

    #[test]
    fn all_finite_on_threads_finds_a_nan_in_any_part() {
        let len = 3 * MIN_FLOATS_PER_THREAD + 5;
        let mut values = vec![0.5f32; test_size(len)];
        let threads = Threads::new(3).expect("three threads");
        assert!(all_finite_on(&values, threads));
        for at in [0, values.len() / 2, values.len() - 1] {
            values[at] = f32::NAN;
            assert!(!all_finite_on(&values, threads), "NaN at {at}");
            values[at] = 0.5;
        }
    }

    #[test]
    fn first_out_of_range_id_is_found_in_order() {
        assert_eq!(first_id_out_of_range(&[1, 2, 3], 4), None);
        assert_eq!(first_id_out_of_range(&[1, 9, 4, 2], 4), Some(9));
        assert_eq!(first_id_out_of_range(&[], 0), None);
    }
}
