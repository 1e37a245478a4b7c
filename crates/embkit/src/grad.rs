//! Gradients: [`RowGrad`] for embedding tables (sparse rows), plain
//! slices for dense parameters.

use std::ops::Range;

use crate::kernels::segment::{key_id, key_position};
use crate::kernels::{counting_sort_by_id, simd, SortScratch};
use crate::threads::{split_evenly, Threads, MIN_FLOATS_PER_THREAD};

/// The gradient of an embedding table: sorted unique ids, one summed
/// gradient row each.
///
/// A table of `num_embeddings × embedding_dim` values that saw `n` ids in a
/// batch gets a gradient of at most `n` rows; the dense
/// `num_embeddings × embedding_dim` gradient is never built. Repeated ids
/// are summed, in the order they occur in the batch, so the result is the
/// same on every run.
#[derive(Debug, Clone, Default)]
pub struct RowGrad {
    ids: Vec<u32>,
    rows: Vec<f32>,
    /// Per id, how many times it occurred in the batch.
    counts: Vec<u32>,
    /// The indices (into `ids`) of the ids seen more than once, increasing.
    repeated: Vec<u32>,
    /// For each of `repeated`, the sum of the squares of its occurrences'
    /// rows (Σ gᵢ²), which Keras's optimizers accumulate instead of
    /// (Σ gᵢ)². For an id seen once the two agree, so they are not stored.
    repeated_squares: Vec<f32>,
    dim: usize,
    /// Scratch of the sort by id.
    sort: SortScratch,
    /// Scratch: where each id's run starts in the sorted keys.
    starts: Vec<u32>,
    /// Scratch of a [`GatherGrad`]: per batch position, whether its id
    /// occurs only there.
    singles: Vec<bool>,
    /// Scratch of a [`GatherGrad`]: per batch position whose id occurs
    /// several times, the index of that id in `repeated`, with
    /// [`FIRST_OCCURRENCE`] set at its first position (the values at
    /// positions of ids seen once are left from earlier batches).
    slots: Vec<u32>,
}

/// The bit of a [`GatherGrad`] slot that marks an id's first occurrence.
const FIRST_OCCURRENCE: u32 = 1 << 31;

/// Equal ids, rows, counts and [`squares`](RowGrad::squares).
impl PartialEq for RowGrad {
    fn eq(&self, other: &Self) -> bool {
        self.dim == other.dim
            && self.ids == other.ids
            && self.rows == other.rows
            && self.counts == other.counts
            && self.squares() == other.squares()
    }
}

/// How far ahead the segment sum prefetches upstream rows.
const PREFETCH_DISTANCE: usize = 8;

impl RowGrad {
    /// An empty gradient for rows of length `dim`.
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Self::default() }
    }

    /// Builds the gradient of a gather: `grads` holds one upstream row of
    /// length `dim` per entry of `ids`; rows of equal ids are summed, in
    /// the order they occur in `ids`.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n]`
    /// - `grads`: `[n, dim]`, row-major
    ///
    /// # Panics
    ///
    /// If `grads.len() != ids.len() * dim` (callers build both from the
    /// same forward pass).
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::RowGrad;
    ///
    /// let g = RowGrad::from_rows(&[3, 1, 3], &[1.0, 2.0, 10.0, 20.0, 100.0, 200.0], 2);
    /// assert_eq!(g.ids(), &[1, 3]);
    /// assert_eq!(g.rows(), &[10.0, 20.0, 101.0, 202.0]);
    /// ```
    pub fn from_rows(ids: &[u32], grads: &[f32], dim: usize) -> Self {
        let mut g = Self::new(dim);
        g.assign_from_rows(ids, grads, dim);
        g
    }

    /// Like [`from_rows`](Self::from_rows) but reuses this gradient's
    /// buffers, so a training loop does not allocate once they have grown.
    ///
    /// # Panics
    ///
    /// If `grads.len() != ids.len() * dim`.
    pub fn assign_from_rows(&mut self, ids: &[u32], grads: &[f32], dim: usize) {
        self.assign_gather_grad(ids, grads, dim, false, Threads::single());
    }

    /// The backward of a gather, on `threads` threads (the same bits for
    /// any number): sorts the positions by id (radix sort), then sums each
    /// id's rows in batch order. With `by_freq`, PyTorch's
    /// `scale_grad_by_freq`: the row of an id seen `c` times is built, in
    /// batch order, as `acc = fma(gᵢ, (f32)(1/c), acc)` from zero, as
    /// PyTorch's CPU kernel, and its squares are scaled by `(1/c)²`.
    /// Returns whether every summed row is finite (checked as it is
    /// written: a NaN or infinite upstream value, or a sum that
    /// overflows, makes it false).
    pub(crate) fn assign_gather_grad(
        &mut self,
        ids: &[u32],
        grads: &[f32],
        dim: usize,
        by_freq: bool,
        threads: Threads,
    ) -> bool {
        assert_eq!(grads.len(), ids.len() * dim, "one gradient row per id");
        self.assign_gather_index(ids, dim);
        // Every value below is written by the sum: resizing without
        // clearing keeps a grown buffer as it is, without a fill.
        resize_for_overwrite(&mut self.rows, self.ids.len() * dim);
        resize_for_overwrite(&mut self.repeated_squares, self.repeated.len() * dim);
        if dim == 0 || self.ids.is_empty() {
            return true;
        }
        let sums = Sums { keys: self.sort.keys(), starts: &self.starts, repeated: &self.repeated };
        sums.run(grads, dim, by_freq, threads, &mut self.rows, &mut self.repeated_squares)
    }

    /// The first half of the backward of a gather: sorts the positions of
    /// `ids` by id (radix sort, into `self.sort`) and sets the
    /// [`ids`](Self::ids), their [`counts`](Self::counts), the starts of
    /// their runs and the repeated ones. The rows and their squares are
    /// left as they were.
    fn assign_gather_index(&mut self, ids: &[u32], dim: usize) {
        self.dim = dim;
        self.ids.clear();
        self.counts.clear();
        self.repeated.clear();
        self.starts.clear();
        let keys = counting_sort_by_id(ids, &mut self.sort);
        // One pass over the sorted keys: each run of equal ids gives its id,
        // start, count and, when longer than one, a place among the
        // repeated ones.
        let mut k = 0;
        while k < keys.len() {
            let id = key_id(keys[k]);
            let start = k;
            k += 1;
            while k < keys.len() && key_id(keys[k]) == id {
                k += 1;
            }
            let count = (k - start) as u32;
            if count > 1 {
                self.repeated.push(self.ids.len() as u32);
            }
            self.ids.push(id);
            self.starts.push(start as u32);
            self.counts.push(count);
        }
        self.starts.push(keys.len() as u32);
    }

    /// The sorted, unique ids that have a gradient row.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// All gradient rows back to back, in the order of [`ids`](Self::ids).
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// Per id, in the order of [`ids`](Self::ids), the sum of the squares
    /// of its occurrences' gradient rows (`Σ gᵢ²`, element-wise), back to
    /// back, as a new vector (for tests and inspection; optimizers read
    /// one row at a time with [`row_squares`](Self::row_squares)). Keras's
    /// optimizers accumulate this for repeated ids, where PyTorch's sparse
    /// optimizers use the square of the sum, `(Σ gᵢ)²`.
    ///
    /// For an id seen once this is the square of its row as it is now, so
    /// changing the row with [`rows_mut`](Self::rows_mut) (value clipping)
    /// changes it, as Keras clips each occurrence before squaring. For an
    /// id seen several times it is stored when the gradient is built:
    /// [`rows_mut`](Self::rows_mut) does not change it, and
    /// [`scale_row`](Self::scale_row) scales it with the row.
    pub fn squares(&self) -> Vec<f32> {
        let mut scratch = Vec::new();
        let mut out = Vec::with_capacity(self.rows.len());
        for i in 0..self.len() {
            out.extend_from_slice(self.row_squares(i, &mut scratch));
        }
        out
    }

    /// The sums of squares of row `i` (see [`squares`](Self::squares)):
    /// stored for an id seen several times, otherwise computed into
    /// `scratch` from the row.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    #[inline]
    pub fn row_squares<'a>(&'a self, i: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        let dim = self.dim;
        match self.repeated.binary_search(&(i as u32)) {
            Ok(k) => &self.repeated_squares[k * dim..(k + 1) * dim],
            Err(_) => {
                scratch.clear();
                scratch.extend(self.rows[i * dim..(i + 1) * dim].iter().map(|x| x * x));
                scratch
            }
        }
    }

    /// The sum of all of [`squares`](Self::squares), in `f64`: the squared
    /// norm of the gradient counted per occurrence, as Keras clips it.
    pub fn sum_of_squares(&self) -> f64 {
        let dim = self.dim;
        let mut repeated = self.repeated.iter().peekable();
        let mut total = 0.0;
        for (i, row) in self.rows.chunks_exact(dim.max(1)).enumerate() {
            if repeated.next_if(|&&r| r as usize == i).is_none() {
                total += row.iter().map(|&x| f64::from(x * x)).sum::<f64>();
            }
        }
        total + self.repeated_squares.iter().map(|&x| f64::from(x)).sum::<f64>()
    }

    /// Per id, in the order of [`ids`](Self::ids), how many times it
    /// occurred in the batch.
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// Multiplies row `i` (the `i`-th id) by `factor`, and its sum of
    /// squares by `factor²`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn scale_row(&mut self, i: usize, factor: f32) {
        let dim = self.dim;
        self.rows[i * dim..(i + 1) * dim].iter_mut().for_each(|x| *x *= factor);
        if let Ok(k) = self.repeated.binary_search(&(i as u32)) {
            let squares = &mut self.repeated_squares[k * dim..(k + 1) * dim];
            squares.iter_mut().for_each(|x| *x *= factor * factor);
        }
    }

    /// Sets the sums of squares to the squares of the summed rows,
    /// `(Σ gᵢ)²`: what Keras accumulates once the gradient is dense in
    /// TensorFlow (a regulariser's gradient added to the table's makes it
    /// so). Call after changing the rows with [`rows_mut`](Self::rows_mut).
    pub fn square_summed_rows(&mut self) {
        self.repeated.clear();
        self.repeated_squares.clear();
    }

    /// Mutable access to the rows (for scaling, clipping, regularisers).
    pub fn rows_mut(&mut self) -> &mut [f32] {
        &mut self.rows
    }

    /// The length of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of rows (unique ids).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no row has a gradient.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Pairs of `(id, gradient row)` in increasing id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[f32])> + '_ {
        self.ids.iter().copied().zip(self.rows.chunks_exact(self.dim.max(1)))
    }

    /// Scatters the rows into a dense `[num_embeddings, dim]` matrix. For
    /// tests and small tables only: this is the matrix the row format
    /// exists to avoid.
    ///
    /// # Panics
    ///
    /// If an id is not below `num_embeddings`.
    pub fn to_dense(&self, num_embeddings: usize) -> Vec<f32> {
        let mut out = vec![0.0; num_embeddings * self.dim];
        for (id, row) in self.iter() {
            let start = id as usize * self.dim;
            out[start..start + self.dim].copy_from_slice(row);
        }
        out
    }
}

/// The gradient of a gather whose rows are summed only as they are used:
/// the sorted unique ids of a batch, where each one's occurrences are,
/// and the upstream rows.
///
/// An optimizer's fused step ([`Optimizer::step_gather`]) reads it as it
/// updates the table, so the summed rows of a [`RowGrad`] are never
/// written and read back: for an id seen once the row is the upstream row
/// itself; for one seen several times the sum is built in a scratch row
/// in batch order, the same bits as the [`RowGrad`] of
/// [`Embedding::backward`](crate::Embedding::backward). This is
/// FBGEMM's "fused backward and optimizer" for tables. Made by
/// [`Embedding::backward_step`](crate::Embedding::backward_step).
///
/// [`Optimizer::step_gather`]: crate::Optimizer::step_gather
#[derive(Debug, Clone, Copy)]
pub struct GatherGrad<'a> {
    /// The ids, counts, run starts, singles and slots of the repeated ids
    /// (its rows are unused).
    index: &'a RowGrad,
    /// The positions sorted by id.
    keys: &'a [u64],
    /// The id of each batch position.
    batch: &'a [u32],
    /// One upstream row per batch position.
    upstream: &'a [f32],
    by_freq: bool,
}

impl<'a> GatherGrad<'a> {
    /// Sorts the positions of `ids` by id into `index` and views the
    /// gradient of `upstream`, one row of `dim` per id, with PyTorch's
    /// `scale_grad_by_freq` if `by_freq` (see
    /// [`RowGrad::assign_gather_grad`]).
    ///
    /// # Panics
    ///
    /// If `upstream.len() != ids.len() * dim`.
    pub(crate) fn index(
        index: &'a mut RowGrad,
        ids: &'a [u32],
        upstream: &'a [f32],
        dim: usize,
        by_freq: bool,
    ) -> Self {
        assert_eq!(upstream.len(), ids.len() * dim, "one gradient row per id");
        index.assign_gather_index(ids, dim);
        index.rows.clear();
        index.repeated_squares.clear();
        index.singles.clear();
        index.singles.resize(ids.len(), false);
        // Slots count the repeated ids and flag first occurrences in 32
        // bits: at most 2^32 positions make fewer than 2^31 repeated ids.
        resize_for_overwrite(&mut index.slots, ids.len());
        let keys = index.sort.keys();
        let mut k = 0;
        for (i, &count) in index.counts.iter().enumerate() {
            let run = &keys[index.starts[i] as usize..index.starts[i + 1] as usize];
            if count == 1 {
                index.singles[key_position(run[0])] = true;
                continue;
            }
            index.slots[key_position(run[0])] = k | FIRST_OCCURRENCE;
            for &key in &run[1..] {
                index.slots[key_position(key)] = k;
            }
            k += 1;
        }
        let index = &*index;
        Self { index, keys: index.sort.keys(), batch: ids, upstream, by_freq }
    }

    /// The id of each position of the batch.
    pub fn batch_ids(&self) -> &'a [u32] {
        self.batch
    }

    /// Per position of the batch, whether its id occurs only there: its
    /// gradient row is then the upstream row of the position (see
    /// [`single_row`](Self::single_row)).
    pub fn singles(&self) -> &'a [bool] {
        &self.index.singles
    }

    /// For batch position `p` whose id occurs several times: the index of
    /// that id in [`repeated`](Self::repeated), and whether `p` is its
    /// first occurrence.
    #[inline(always)]
    pub(crate) fn repeated_slot(&self, p: usize) -> (usize, bool) {
        debug_assert!(!self.singles()[p], "position {p} holds an id seen once");
        let slot = self.index.slots[p];
        ((slot & !FIRST_OCCURRENCE) as usize, slot & FIRST_OCCURRENCE != 0)
    }

    /// Adds the upstream row of batch position `p`, an occurrence of the
    /// `k`-th repeated id ([`repeated_slot`](Self::repeated_slot)), to
    /// that id's gradient row in `sum` and, if given, to its sums of
    /// squares in `squares`, both started at its first occurrence. Called
    /// for every occurrence in batch order, then
    /// [`finish_squares`](Self::finish_squares), this gives the bits of
    /// [`row`](Self::row) and [`row_squares`](Self::row_squares), reading
    /// the upstream rows in sequence instead of by id.
    #[inline(always)]
    pub(crate) fn add_occurrence(
        &self,
        p: usize,
        k: usize,
        first: bool,
        sum: &mut [f32],
        squares: Option<&mut [f32]>,
    ) {
        let dim = self.index.dim;
        let g = &self.upstream[p * dim..][..dim];
        let factor = self.by_freq.then(|| {
            let count = self.index.counts[self.index.repeated[k] as usize];
            count_factor(count as usize)
        });
        add_row(sum, g, first, factor);
        if let Some(squares) = squares {
            add_square(squares, g, first);
        }
    }

    /// Ends the sums of squares that [`add_occurrence`](Self::add_occurrence)
    /// gathered for the `k`-th repeated id: with `scale_grad_by_freq`
    /// scales them by `(1/count)²`.
    #[inline(always)]
    pub(crate) fn finish_squares(&self, k: usize, squares: &mut [f32]) {
        if self.by_freq {
            let count = self.index.counts[self.index.repeated[k] as usize];
            scale_squares(squares, count as usize);
        }
    }

    /// The indices (into [`ids`](Self::ids)) of the ids seen more than
    /// once, increasing.
    pub fn repeated(&self) -> &'a [u32] {
        &self.index.repeated
    }

    /// The gradient row of batch position `p` whose id occurs only there:
    /// its upstream row, or with `scale_grad_by_freq` `fma(g, 1, 0)` of it
    /// in `buf` (as [`row`](Self::row), which turns -0 into 0).
    ///
    /// # Panics
    ///
    /// If `p` is not a batch position or `buf` is not `dim` floats long.
    #[inline(always)]
    pub fn single_row<'s>(&'s self, p: usize, buf: &'s mut [f32]) -> &'s [f32] {
        debug_assert!(self.singles()[p], "position {p} holds an id seen several times");
        let dim = self.index.dim;
        if !self.by_freq {
            return &self.upstream[p * dim..(p + 1) * dim];
        }
        assert_eq!(buf.len(), dim, "a scratch row of `dim` floats");
        let key = (u64::from(self.batch[p]) << 32) | p as u64;
        sum_run(&[key], self.upstream, true, buf);
        buf
    }

    /// The sorted, unique ids that have a gradient row.
    pub fn ids(&self) -> &'a [u32] {
        &self.index.ids
    }

    /// Per id, how many times it occurred in the batch.
    pub fn counts(&self) -> &'a [u32] {
        &self.index.counts
    }

    /// The length of each row.
    pub fn dim(&self) -> usize {
        self.index.dim
    }

    /// The number of rows (unique ids).
    pub fn len(&self) -> usize {
        self.index.ids.len()
    }

    /// Whether no row has a gradient.
    pub fn is_empty(&self) -> bool {
        self.index.ids.is_empty()
    }

    /// The sorted keys (id, position) of the occurrences of row `i`.
    #[inline(always)]
    fn run(&self, i: usize) -> &'a [u64] {
        let starts = &self.index.starts;
        &self.keys[starts[i] as usize..starts[i + 1] as usize]
    }

    /// The upstream row of an occurrence.
    #[inline(always)]
    fn upstream(&self, key: u64) -> &'a [f32] {
        let dim = self.index.dim;
        &self.upstream[key_position(key) * dim..][..dim]
    }

    /// Gradient row `i` (the `i`-th id): the upstream row of an id seen
    /// once, otherwise its occurrences summed in batch order into `buf`
    /// (`dim` floats), as [`RowGrad`] sums them (with `scale_grad_by_freq`
    /// always into `buf`).
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`, or `buf` is not `dim` floats long when used.
    #[inline(always)]
    pub fn row<'s>(&'s self, i: usize, buf: &'s mut [f32]) -> &'s [f32] {
        let run = self.run(i);
        if let ([key], false) = (run, self.by_freq) {
            return self.upstream(*key);
        }
        assert_eq!(buf.len(), self.dim(), "a scratch row of `dim` floats");
        sum_run(run, self.upstream, self.by_freq, buf);
        buf
    }

    /// The sums of squares of the occurrences of row `i`, as
    /// [`RowGrad::row_squares`], written into `scratch`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn row_squares<'s>(&self, i: usize, scratch: &'s mut Vec<f32>) -> &'s [f32] {
        scratch.clear();
        scratch.resize(self.dim(), 0.0);
        // For an id seen once this is the square of its row, `g²` (with
        // `by_freq`, `0 + g²` times `1²`: the same bits).
        sum_run_squares(self.run(i), self.upstream, self.by_freq, scratch);
        scratch
    }

    /// The summed gradient, in `out` (reusing its buffers), as
    /// [`RowGrad::from_rows`] would build it, on `threads` threads.
    pub fn sum_into(&self, out: &mut RowGrad, threads: Threads) {
        let index = self.index;
        let dim = index.dim;
        out.dim = dim;
        out.ids.clone_from(&index.ids);
        out.counts.clone_from(&index.counts);
        out.repeated.clone_from(&index.repeated);
        out.starts.clone_from(&index.starts);
        resize_for_overwrite(&mut out.rows, out.ids.len() * dim);
        resize_for_overwrite(&mut out.repeated_squares, out.repeated.len() * dim);
        if dim == 0 || out.ids.is_empty() {
            return;
        }
        let sums = Sums { keys: self.keys, starts: &index.starts, repeated: &index.repeated };
        sums.run(
            self.upstream,
            dim,
            self.by_freq,
            threads,
            &mut out.rows,
            &mut out.repeated_squares,
        );
    }

    /// The summed gradient as a new [`RowGrad`].
    pub fn to_row_grad(&self) -> RowGrad {
        let mut out = RowGrad::new(self.dim());
        self.sum_into(&mut out, Threads::single());
        out
    }
}

/// Resizes `v` to `len` without writing the values it keeps: for buffers
/// the caller overwrites entirely.
fn resize_for_overwrite<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    } else {
        v.truncate(len);
    }
}

/// The index of a gather's backward: the positions sorted by id, where
/// each id's run starts, and the indices of the ids seen more than once.
#[derive(Clone, Copy)]
struct Sums<'a> {
    keys: &'a [u64],
    starts: &'a [u32],
    repeated: &'a [u32],
}

impl Sums<'_> {
    /// Sums each id's upstream rows of `grads` in batch order into `rows`
    /// (one row per id) and the repeated ids' squares into `squares`, on
    /// `threads` threads (the same bits for any number). Returns whether
    /// every row of `rows` is finite.
    fn run(
        self,
        grads: &[f32],
        dim: usize,
        by_freq: bool,
        threads: Threads,
        rows: &mut [f32],
        squares: &mut [f32],
    ) -> bool {
        let Sums { keys, starts, repeated } = self;
        let ids_len = starts.len() - 1;
        let parts = threads.parts_for(keys.len() * dim, MIN_FLOATS_PER_THREAD);
        let ranges = split_evenly(ids_len, parts);
        let sum = |ids: Range<usize>, rows: &mut [f32], repeated: &[u32], squares: &mut [f32]| {
            let runs = Runs { keys, starts, grads };
            match (dim, by_freq) {
                (8, false) => sum_runs_fixed::<8>(runs, ids, rows, repeated, squares),
                (16, false) => sum_runs_fixed::<16>(runs, ids, rows, repeated, squares),
                (32, false) => sum_runs_fixed::<32>(runs, ids, rows, repeated, squares),
                (64, false) => sum_runs_fixed::<64>(runs, ids, rows, repeated, squares),
                (128, false) => sum_runs_fixed::<128>(runs, ids, rows, repeated, squares),
                _ => sum_runs(keys, starts, ids, grads, dim, by_freq, rows, repeated, squares),
            }
        };
        if ranges.len() == 1 {
            return sum(0..ids_len, rows, repeated, squares);
        }
        std::thread::scope(|scope| {
            let sum = &sum;
            let (mut rows, mut squares, mut repeated) = (rows, squares, repeated);
            let last = ranges.len() - 1;
            let mut finite = true;
            let mut others = Vec::new();
            for (k, range) in ranges.into_iter().enumerate() {
                let (my_rows, rest) = rows.split_at_mut(range.len() * dim);
                rows = rest;
                let n_rep = repeated.partition_point(|&i| (i as usize) < range.end);
                let (my_rep, rest) = repeated.split_at(n_rep);
                repeated = rest;
                let (my_squares, rest) = squares.split_at_mut(n_rep * dim);
                squares = rest;
                if k == last {
                    finite &= sum(range, my_rows, my_rep, my_squares);
                } else {
                    others.push(scope.spawn(move || sum(range, my_rows, my_rep, my_squares)));
                }
            }
            // The sums do not panic: a failed join counts as not finite.
            others.into_iter().fold(finite, |ok, other| other.join().unwrap_or(false) && ok)
        })
    }
}

/// The sorted keys of a batch, where each id's run starts, and the
/// upstream rows.
#[derive(Clone, Copy)]
struct Runs<'a> {
    keys: &'a [u64],
    starts: &'a [u32],
    grads: &'a [f32],
}

/// [`sum_runs`] without `by_freq` for rows of `D` floats, summed in local
/// arrays (registers) rather than through the output row.
fn sum_runs_fixed<const D: usize>(
    runs: Runs<'_>,
    ids: Range<usize>,
    rows: &mut [f32],
    repeated: &[u32],
    squares: &mut [f32],
) -> bool {
    let Runs { keys, starts, grads } = runs;
    let mut finite = true;
    let upstream = |key: u64| -> &[f32; D] {
        let start = key_position(key) * D;
        grads[start..start + D].try_into().expect("a row of D floats")
    };
    let mut repeated = repeated.iter().zip(squares.chunks_exact_mut(D)).peekable();
    for (u, out) in ids.zip(rows.chunks_exact_mut(D)) {
        let run = &keys[starts[u] as usize..starts[u + 1] as usize];
        if let Some(&next) = keys.get(starts[u + 1] as usize + PREFETCH_DISTANCE) {
            simd::prefetch(grads, key_position(next) * D, D);
        }
        let mut acc = *upstream(run[0]);
        for &key in &run[1..] {
            for (a, &g) in acc.iter_mut().zip(upstream(key)) {
                *a += g;
            }
        }
        out.copy_from_slice(&acc);
        finite &= acc.iter().fold(true, |ok, x| ok & x.is_finite());
        if let Some((_, sq)) = repeated.next_if(|(&r, _)| r as usize == u) {
            let mut acc = [0.0f32; D];
            for (s, &g) in acc.iter_mut().zip(upstream(run[0])) {
                *s = g * g;
            }
            for &key in &run[1..] {
                for (s, &g) in acc.iter_mut().zip(upstream(key)) {
                    *s += g * g;
                }
            }
            sq.copy_from_slice(&acc);
        }
    }
    finite
}

/// Sums the runs of equal ids `ids` (indices into `starts`) of the sorted
/// `keys` into `rows` (one row per id of the range, from its start);
/// `repeated` are the indices of the range's ids seen several times and
/// `squares` their sums of squares.
#[allow(clippy::too_many_arguments)]
fn sum_runs(
    keys: &[u64],
    starts: &[u32],
    ids: Range<usize>,
    grads: &[f32],
    dim: usize,
    by_freq: bool,
    rows: &mut [f32],
    repeated: &[u32],
    squares: &mut [f32],
) -> bool {
    let mut finite = true;
    let mut repeated = repeated.iter().zip(squares.chunks_exact_mut(dim)).peekable();
    for (u, acc) in ids.zip(rows.chunks_exact_mut(dim)) {
        let run = &keys[starts[u] as usize..starts[u + 1] as usize];
        if let Some(&next) = keys.get(starts[u + 1] as usize + PREFETCH_DISTANCE) {
            simd::prefetch(grads, key_position(next) * dim, dim);
        }
        sum_run(run, grads, by_freq, acc);
        finite &= acc.iter().fold(true, |ok, x| ok & x.is_finite());
        if let Some((_, sq)) = repeated.next_if(|(&r, _)| r as usize == u) {
            sum_run_squares(run, grads, by_freq, sq);
        }
    }
    finite
}

/// The gradient row of one id: its occurrences' upstream rows (`run`, its
/// sorted keys) summed in batch order into `acc`. With `by_freq`,
/// PyTorch's `grad_weight[id] += (float)(1.0 / count) * g`, fused, from
/// zero, per occurrence in batch order.
#[inline(always)]
fn sum_run(run: &[u64], grads: &[f32], by_freq: bool, acc: &mut [f32]) {
    let dim = acc.len();
    let factor = by_freq.then(|| count_factor(run.len()));
    for (j, &key) in run.iter().enumerate() {
        add_row(acc, &grads[key_position(key) * dim..][..dim], j == 0, factor);
    }
}

/// The sums of the squares of one id's occurrences (`run`) in batch order
/// into `sq`, scaled by `(1/count)²` with `by_freq`.
#[inline(always)]
fn sum_run_squares(run: &[u64], grads: &[f32], by_freq: bool, sq: &mut [f32]) {
    let dim = sq.len();
    for (j, &key) in run.iter().enumerate() {
        add_square(sq, &grads[key_position(key) * dim..][..dim], j == 0);
    }
    if by_freq {
        scale_squares(sq, run.len());
    }
}

/// PyTorch's `scale_grad_by_freq` factor of an id seen `count` times:
/// `(float)(1.0 / count)`.
#[inline(always)]
fn count_factor(count: usize) -> f32 {
    (1.0 / count as f64) as f32
}

/// One occurrence's row `g` added to the sum `acc` of its id's rows, in
/// batch order: the first one copied, the others added; with a `factor`
/// (`scale_grad_by_freq`) `acc = fma(g, factor, acc)` from zero.
#[inline(always)]
fn add_row(acc: &mut [f32], g: &[f32], first: bool, factor: Option<f32>) {
    match factor {
        Some(factor) => {
            if first {
                acc.fill(0.0);
            }
            for (a, &g) in acc.iter_mut().zip(g) {
                *a = g.mul_add(factor, *a);
            }
        }
        None if first => acc.copy_from_slice(g),
        None => {
            for (a, &g) in acc.iter_mut().zip(g) {
                *a += g;
            }
        }
    }
}

/// One occurrence's `g²` added to the sums of squares `sq`: the first one
/// written (`0 + g²` has the same bits: `g²` is never -0).
#[inline(always)]
fn add_square(sq: &mut [f32], g: &[f32], first: bool) {
    if first {
        for (s, &g) in sq.iter_mut().zip(g) {
            *s = g * g;
        }
    } else {
        for (s, &g) in sq.iter_mut().zip(g) {
            *s += g * g;
        }
    }
}

/// The sums of squares of an id seen `count` times scaled by `(1/count)²`
/// (`scale_grad_by_freq`).
#[inline(always)]
fn scale_squares(sq: &mut [f32], count: usize) {
    let factor = count_factor(count);
    sq.iter_mut().for_each(|s| *s *= factor * factor);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_ids_are_summed_and_sorted() {
        let g = RowGrad::from_rows(&[5, 2, 5, 5], &[1.0, 2.0, 3.0, 4.0], 1);
        assert_eq!(g.ids(), &[2, 5]);
        assert_eq!(g.rows(), &[2.0, 8.0]);
        assert_eq!(g.to_dense(6), vec![0.0, 0.0, 2.0, 0.0, 0.0, 8.0]);
    }

    #[test]
    fn counts_and_squares_follow_the_occurrences() {
        let mut g = RowGrad::from_rows(&[5, 2, 5, 5], &[1.0, 2.0, 3.0, 4.0], 1);
        assert_eq!(g.counts(), &[1, 3]);
        // id 2: 2² = 4; id 5: 1² + 3² + 4² = 26 (the square of the sum is 64).
        assert_eq!(g.squares(), &[4.0, 26.0]);
        g.scale_row(1, 0.5);
        assert_eq!(g.rows(), &[2.0, 4.0]);
        assert_eq!(g.squares(), &[4.0, 6.5]);
    }

    #[test]
    fn empty_batch_gives_empty_gradient() {
        let g = RowGrad::from_rows(&[], &[], 4);
        assert!(g.is_empty());
        assert_eq!(g.dim(), 4);
        assert_eq!(g.iter().count(), 0);
    }

    #[test]
    fn buffers_are_reused() {
        let mut g = RowGrad::new(2);
        g.assign_from_rows(&[1, 0], &[1.0, 1.0, 2.0, 2.0], 2);
        g.assign_from_rows(&[4], &[3.0, 3.0], 2);
        assert_eq!(g.ids(), &[4]);
        assert_eq!(g.rows(), &[3.0, 3.0]);
    }

    /// The plain version: for each distinct id in increasing order, its
    /// rows summed in batch order, and the sums of their squares.
    fn reference(ids: &[u32], grads: &[f32], dim: usize) -> (Vec<u32>, Vec<f32>, Vec<f32>) {
        let mut positions: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
        for (i, &id) in ids.iter().enumerate() {
            positions.entry(id).or_default().push(i);
        }
        let unique: Vec<u32> = positions.keys().copied().collect();
        let (mut rows, mut squares) = (Vec::new(), Vec::new());
        for at in positions.values() {
            let mut acc: Option<Vec<f32>> = None;
            let mut sq = vec![0.0f32; dim];
            for &i in at {
                let g = &grads[i * dim..(i + 1) * dim];
                match &mut acc {
                    None => acc = Some(g.to_vec()),
                    Some(a) => a.iter_mut().zip(g).for_each(|(a, &g)| *a += g),
                }
                sq.iter_mut().zip(g).for_each(|(s, &g)| *s += g * g);
            }
            rows.extend(acc.expect("the id occurs"));
            squares.extend(sq);
        }
        (unique, rows, squares)
    }

    #[test]
    fn radix_backward_matches_the_plain_sum_on_any_thread_count() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(11);
        for (n, rows, dim) in [(10, 4, 3), (3000, 100, 8), (20_000, 5000, 5), (60_000, 20_000, 16)]
        {
            let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..rows)).collect();
            let grads: Vec<f32> = (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect();
            let (unique, sums, squares) = reference(&ids, &grads, dim);
            for threads in 1..=3 {
                let mut g = RowGrad::new(dim);
                g.assign_gather_grad(&ids, &grads, dim, false, Threads::new(threads).unwrap());
                assert_eq!(g.ids(), &unique[..]);
                assert_eq!(g.rows(), &sums[..], "n {n}, threads {threads}");
                assert_eq!(g.squares(), squares);
                let total: f64 = squares.iter().map(|&x| f64::from(x)).sum();
                assert!((g.sum_of_squares() - total).abs() <= 1e-9 * total.max(1.0));
                let mut by_freq = RowGrad::new(dim);
                by_freq.assign_gather_grad(&ids, &grads, dim, true, Threads::new(threads).unwrap());
                let mut single = RowGrad::new(dim);
                single.assign_gather_grad(&ids, &grads, dim, true, Threads::single());
                assert_eq!(by_freq, single);
            }
        }
    }
}
