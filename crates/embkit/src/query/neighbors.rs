//! Exact top-k nearest neighbours by cosine similarity, dot product or
//! Euclidean distance.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use ndarray::ArrayView2;

use super::prefilter::{self, Prefilter};
use super::scan::{self, TopK};
use crate::threads::split_evenly;
use crate::{Embedding, Error, Result, Threads};

/// A row of a table and its score against a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The row's id.
    pub id: u32,
    /// The score under the [`Similarity`] used; larger is nearer. Cosine
    /// similarity (in `[-1, 1]`) for [`nearest_neighbors`], the dot
    /// product, or *minus* the Euclidean distance.
    pub similarity: f32,
}

/// How [`nearest_neighbors_by`] scores a row against a query. Larger
/// scores are nearer for every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Similarity {
    /// Cosine similarity `q·r / (|q| |r|)`, in `[-1, 1]`; 0 when either
    /// vector is zero.
    #[default]
    Cosine,
    /// The dot product `q·r` (favours long rows).
    Dot,
    /// Minus the Euclidean distance, `-|q - r|`: the nearest row has the
    /// largest (least negative) score, and `-similarity` is the distance.
    Euclidean,
}

impl Similarity {
    /// Every variant.
    pub const ALL: [Similarity; 3] = [Similarity::Cosine, Similarity::Dot, Similarity::Euclidean];

    /// The name [`FromStr`] reads: `cosine`, `dot` or `euclidean`.
    pub fn name(self) -> &'static str {
        match self {
            Similarity::Cosine => "cosine",
            Similarity::Dot => "dot",
            Similarity::Euclidean => "euclidean",
        }
    }

    /// The score of `row` against `query`, computed in f64 (see the
    /// variants).
    ///
    /// # Panics
    ///
    /// If `query` and `row` differ in length.
    #[track_caller]
    pub fn score(self, query: &[f32], row: &[f32]) -> f32 {
        assert_eq!(query.len(), row.len(), "vectors of equal length");
        match self {
            Similarity::Cosine => cosine_similarity(query, row),
            Similarity::Dot => {
                query.iter().zip(row).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>()
                    as f32
            }
            Similarity::Euclidean => {
                let squared: f64 = query
                    .iter()
                    .zip(row)
                    .map(|(&x, &y)| {
                        let d = f64::from(x) - f64::from(y);
                        d * d
                    })
                    .sum();
                -squared.sqrt() as f32
            }
        }
    }
}

impl fmt::Display for Similarity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Similarity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            Error::config(
                "similarity",
                format!("unknown similarity {s:?}; known: cosine, dot, euclidean"),
            )
        })
    }
}

/// Cosine similarity `a·b / (|a| |b|)`, computed in f64. A zero vector
/// has similarity 0 with everything.
///
/// # Panics
///
/// If `a` and `b` differ in length.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors of equal length");
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}

/// The `k` rows of `table` most similar to `query` by cosine similarity,
/// most similar first, found by comparing with every row (exact) on the
/// caller's thread.
///
/// `exclude` leaves one id out (the query's own row when the query is a
/// row of the table). Ties are broken by the smaller id, so the answer is
/// the same on every run. Rows with a NaN value (similarity NaN) come
/// last. Fewer than `k` neighbours come back when the
/// table has fewer rows. For several threads, other similarities or many
/// queries on one table, see [`nearest_neighbors_by`] and [`ExactIndex`].
///
/// # Shapes
///
/// - `table`: `[num_embeddings, embedding_dim]`
/// - `query`: `[embedding_dim]`
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if `query` does not have `embedding_dim`
/// values; [`Error::InvalidConfig`] if the query has a NaN or infinite
/// value.
///
/// # Examples
///
/// ```
/// use embkit::query::nearest_neighbors;
/// use ndarray::array;
///
/// let table = array![[1.0, 1.0], [1.0, 2.0], [2.0, 2.0], [3.0, 3.0]];
/// let near = nearest_neighbors(table.view(), &[1.0, 1.0], 2, Some(0))?;
/// // Rows 2 and 3 point the same way as row 0; the tie goes to the smaller id.
/// assert_eq!(near.iter().map(|n| n.id).collect::<Vec<_>>(), vec![2, 3]);
/// assert!((near[0].similarity - 1.0).abs() < 1e-6);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn nearest_neighbors(
    table: ArrayView2<'_, f32>,
    query: &[f32],
    k: usize,
    exclude: Option<u32>,
) -> Result<Vec<Neighbor>> {
    nearest_neighbors_by(table, query, k, exclude.as_slice(), Similarity::Cosine, Threads::single())
}

/// The `k` rows of `table` nearest to `query` under `similarity`,
/// nearest first, found by scoring every row (exact) on up to `threads`
/// threads.
///
/// Rows whose ids are in `exclude` are left out. Ties are broken by the
/// smaller id; rows with a NaN score (rows with NaN values) come last.
/// For [`Similarity::Euclidean`] the scores are minus the distances, so
/// the order is still largest first. Fewer than `k` neighbours come back
/// when the table has fewer rows. The answer is the same for every
/// thread count: each thread keeps the top `k` of a contiguous block of
/// rows, and the blocks' results are merged by the same order.
///
/// Scores are summed in f32 (see [`ExactIndex::score`]). For many queries
/// by cosine on one table, build an [`ExactIndex`] once: it keeps the row
/// norms, which this function computes as it goes.
///
/// # Shapes
///
/// - `table`: `[num_embeddings, embedding_dim]`
/// - `query`: `[embedding_dim]`
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if `query` does not have `embedding_dim`
/// values; [`Error::InvalidConfig`] if the query has a NaN or infinite
/// value.
///
/// # Examples
///
/// ```
/// use embkit::query::{nearest_neighbors_by, Similarity};
/// use embkit::Threads;
/// use ndarray::array;
///
/// let table = array![[1.0, 0.0], [10.0, 0.0], [0.9, 0.1]];
/// let ids = |s| -> embkit::Result<Vec<u32>> {
///     let near = nearest_neighbors_by(table.view(), &[1.0, 0.0], 3, &[], s, Threads::new(2)?)?;
///     Ok(near.iter().map(|n| n.id).collect())
/// };
/// assert_eq!(ids(Similarity::Cosine)?, vec![0, 1, 2]);
/// assert_eq!(ids(Similarity::Dot)?, vec![1, 0, 2]);
/// assert_eq!(ids(Similarity::Euclidean)?, vec![0, 2, 1]);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn nearest_neighbors_by(
    table: ArrayView2<'_, f32>,
    query: &[f32],
    k: usize,
    exclude: &[u32],
    similarity: Similarity,
    threads: Threads,
) -> Result<Vec<Neighbor>> {
    check_query(table.ncols(), query)?;
    let rows = table.as_standard_layout();
    let scan = Scan {
        rows: rows.as_slice().expect("standard layout"),
        num_embeddings: table.nrows(),
        dim: table.ncols(),
        similarity,
        inverse_norms: None,
    };
    Ok(scan.top_k(query, k, exclude, threads))
}

/// [`nearest_neighbors_by`] for each row of `queries`, in order.
///
/// `exclude` is empty (nothing left out) or holds one list of ids per
/// query. With several threads, the queries are shared out between them
/// when there are at least as many queries as threads, and otherwise each
/// query's rows are; the answer is the same either way.
///
/// # Shapes
///
/// - `table`: `[num_embeddings, embedding_dim]`
/// - `queries`: `[n, embedding_dim]`
/// - returns: `n` lists of at most `k` neighbours
///
/// # Errors
///
/// As [`nearest_neighbors_by`] for the first query that fails;
/// [`Error::ShapeMismatch`] if `exclude` is neither empty nor one list
/// per query.
///
/// # Examples
///
/// ```
/// use embkit::query::{nearest_neighbors_batch, Similarity};
/// use embkit::Threads;
/// use ndarray::array;
///
/// let table = array![[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]];
/// let near = nearest_neighbors_batch(
///     table.view(), table.view(), 1, &[vec![0], vec![1], vec![2]], Similarity::Cosine,
///     Threads::single(),
/// )?;
/// assert_eq!(near.iter().map(|n| n[0].id).collect::<Vec<_>>(), vec![2, 2, 0]);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn nearest_neighbors_batch(
    table: ArrayView2<'_, f32>,
    queries: ArrayView2<'_, f32>,
    k: usize,
    exclude: &[Vec<u32>],
    similarity: Similarity,
    threads: Threads,
) -> Result<Vec<Vec<Neighbor>>> {
    ExactIndex::new(table, similarity, threads).search_batch(queries, k, exclude, threads)
}

/// Rows a thread should have at least before a scan is split, in floats
/// (`rows · embedding_dim`): a thread costs some tens of microseconds to
/// start, about the time to scan this many.
const MIN_FLOATS_PER_THREAD: usize = 1 << 18;

/// A table prepared for exact searches: the rows (borrowed when the view
/// is contiguous), for cosine similarity the inverse norm of each row,
/// and on tables of at least 16,384 rows of at least 16 values an 8-bit
/// copy of the rows (a quarter of the table's bytes, plus 16 bytes a
/// row; see [`memory_bytes`](Self::memory_bytes)), all computed once.
///
/// A search for up to 1,024 neighbours first scores the 8-bit rows, with
/// bounds on the error, and scores again from the f32 rows only the rows
/// that could be among the best; otherwise it scores every row. Either
/// way the answer is exact: the same as [`nearest_neighbors_by`]'s, bit
/// for bit, for any thread count. The first pass reads a quarter of the
/// bytes, which is what limits a scan of a large table.
///
/// # Examples
///
/// ```
/// use embkit::query::{ExactIndex, Similarity};
/// use embkit::Threads;
/// use ndarray::array;
///
/// let table = array![[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]];
/// let index = ExactIndex::new(table.view(), Similarity::Cosine, Threads::single());
/// let near = index.search(&[1.0, 0.1], 2, &[], Threads::new(2)?)?;
/// assert_eq!(near.iter().map(|n| n.id).collect::<Vec<_>>(), vec![0, 2]);
/// assert_eq!(near[0].similarity, index.score(&[1.0, 0.1], 0));
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExactIndex<'a> {
    rows: Cow<'a, [f32]>,
    num_embeddings: usize,
    dim: usize,
    similarity: Similarity,
    /// `1 / |row|` (0 for a zero row) for cosine; empty otherwise.
    inverse_norms: Vec<f64>,
    /// 8-bit codes of the rows for a first pass, on large tables.
    prefilter: Option<Prefilter>,
}

impl<'a> ExactIndex<'a> {
    /// Prepares `table` for searches by `similarity`, computing the row
    /// norms (for cosine) on up to `threads` threads. The table is
    /// borrowed when it is in standard (row-major, contiguous) layout and
    /// copied otherwise.
    ///
    /// # Shapes
    ///
    /// - `table`: `[num_embeddings, embedding_dim]`
    pub fn new(table: ArrayView2<'a, f32>, similarity: Similarity, threads: Threads) -> Self {
        Self::build(table, similarity, threads, true)
    }

    /// [`new`](Self::new) without the 8-bit first pass (for callers that
    /// only score single rows, such as the HNSW index).
    pub(crate) fn without_prefilter(
        table: ArrayView2<'a, f32>,
        similarity: Similarity,
        threads: Threads,
    ) -> Self {
        Self::build(table, similarity, threads, false)
    }

    fn build(
        table: ArrayView2<'a, f32>,
        similarity: Similarity,
        threads: Threads,
        prefilter: bool,
    ) -> Self {
        let (num_embeddings, dim) = table.dim();
        let rows = match table.to_slice() {
            Some(slice) => Cow::Borrowed(slice),
            None => Cow::Owned(table.iter().copied().collect()),
        };
        let inverse_norms = if similarity == Similarity::Cosine {
            let parts = threads.parts_for(num_embeddings * dim, MIN_FLOATS_PER_THREAD);
            let norms = |ids: Range<usize>| -> Vec<f64> {
                ids.map(|id| {
                    let row = &rows[id * dim..(id + 1) * dim];
                    scan::inverse_norm(scan::dot(row, row))
                })
                .collect()
            };
            in_parts(num_embeddings, parts, norms).concat()
        } else {
            Vec::new()
        };
        let prefilter =
            (prefilter && num_embeddings >= prefilter::MIN_ROWS && dim >= prefilter::MIN_DIM)
                .then(|| Prefilter::new(&rows, dim, similarity, &inverse_norms, threads));
        Self { rows, num_embeddings, dim, similarity, inverse_norms, prefilter }
    }

    /// The similarity searches use.
    pub fn similarity(&self) -> Similarity {
        self.similarity
    }

    /// The number of rows.
    pub fn num_embeddings(&self) -> usize {
        self.num_embeddings
    }

    /// The length of each row.
    pub fn embedding_dim(&self) -> usize {
        self.dim
    }

    /// Row `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a row of the table.
    #[track_caller]
    pub fn row(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.rows[start..start + self.dim]
    }

    /// `1 / |row id|` (0 for a zero row), kept for cosine similarity.
    ///
    /// # Panics
    ///
    /// If the similarity is not cosine or `id` is not a row.
    pub(crate) fn inverse_norm(&self, id: u32) -> f64 {
        self.inverse_norms[id as usize]
    }

    /// The score a search gives row `id` for `query`: the dot product
    /// summed in f32 (16 partial sums, added in a fixed order), for cosine
    /// scaled by both inverse norms in f64, for Euclidean the square root
    /// of the f32 sum of squared differences, negated. It agrees with
    /// [`Similarity::score`] (all f64) to about `1e-6` relative.
    ///
    /// # Panics
    ///
    /// If `id` is not a row of the table or `query` does not have
    /// `embedding_dim` values.
    #[track_caller]
    pub fn score(&self, query: &[f32], id: u32) -> f32 {
        let row = self.row(id);
        match self.similarity {
            Similarity::Dot => scan::dot(query, row),
            Similarity::Cosine => scan::cosine(
                scan::dot(query, row),
                scan::inverse_norm(scan::dot(query, query)),
                self.inverse_norms[id as usize],
            ),
            Similarity::Euclidean => scan::minus_distance(scan::squared_distance(query, row)),
        }
    }

    /// The `k` rows nearest to `query`, nearest first, without the ids in
    /// `exclude`, scanning on up to `threads` threads. See
    /// [`nearest_neighbors_by`] for the order, ties and NaN rows.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `query` does not have `embedding_dim`
    /// values; [`Error::InvalidConfig`] if the query has a NaN or infinite
    /// value.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        exclude: &[u32],
        threads: Threads,
    ) -> Result<Vec<Neighbor>> {
        check_query(self.dim, query)?;
        Ok(self.top_k(query, k, exclude, threads))
    }

    /// The search of a checked query: through the 8-bit first pass when
    /// there is one and `k` is small, otherwise by the full scan. Both give
    /// the same answer.
    fn top_k(&self, query: &[f32], k: usize, exclude: &[u32], threads: Threads) -> Vec<Neighbor> {
        if let Some(prefilter) = &self.prefilter {
            if (1..=prefilter::MAX_K).contains(&k) {
                if let Some(found) = prefilter.top_k(self, query, k, exclude, threads) {
                    return found;
                }
            }
        }
        self.scan().top_k(query, k, exclude, threads)
    }

    /// The full scan, without the first pass.
    #[cfg(test)]
    pub(crate) fn full_scan(&self, query: &[f32], k: usize, exclude: &[u32]) -> Vec<Neighbor> {
        self.scan().top_k(query, k, exclude, Threads::single())
    }

    /// `1 / |row|` of every row for cosine; empty otherwise.
    #[cfg(test)]
    pub(crate) fn inverse_norms(&self) -> &[f64] {
        &self.inverse_norms
    }

    /// The bytes kept besides the table: row norms and the first pass's
    /// 8-bit codes.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self.inverse_norms.as_slice())
            + self.prefilter.as_ref().map_or(0, Prefilter::memory_bytes)
            + match &self.rows {
                Cow::Borrowed(_) => 0,
                Cow::Owned(rows) => std::mem::size_of_val(rows.as_slice()),
            }
    }

    /// [`search`](Self::search) for each row of `queries`; see
    /// [`nearest_neighbors_batch`].
    ///
    /// # Errors
    ///
    /// As [`nearest_neighbors_batch`].
    pub fn search_batch(
        &self,
        queries: ArrayView2<'_, f32>,
        k: usize,
        exclude: &[Vec<u32>],
        threads: Threads,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let n = queries.nrows();
        if !exclude.is_empty() && exclude.len() != n {
            return Err(Error::shape(
                "exclude lists",
                format!("none or one per query ({n})"),
                &[exclude.len()],
            ));
        }
        if queries.ncols() != self.dim {
            return Err(Error::shape(
                "queries",
                format!("[n, {}]", self.dim),
                &[n, queries.ncols()],
            ));
        }
        let queries = queries.as_standard_layout();
        let flat = queries.as_slice().expect("standard layout");
        for i in 0..n {
            check_query(self.dim, &flat[i * self.dim..(i + 1) * self.dim])?;
        }
        let one = |i: usize, threads: Threads| {
            let skip = exclude.get(i).map_or(&[][..], Vec::as_slice);
            self.top_k(&flat[i * self.dim..(i + 1) * self.dim], k, skip, threads)
        };
        if n >= threads.get() && n > 1 {
            // Each thread answers a block of queries on its own.
            let parts = threads.parts_for(n, 1);
            Ok(in_parts(n, parts, |ids| ids.map(|i| one(i, Threads::single())).collect::<Vec<_>>())
                .into_iter()
                .flatten()
                .collect())
        } else {
            Ok((0..n).map(|i| one(i, threads)).collect())
        }
    }

    fn scan(&self) -> Scan<'_> {
        Scan {
            rows: &self.rows,
            num_embeddings: self.num_embeddings,
            dim: self.dim,
            similarity: self.similarity,
            inverse_norms: (self.similarity == Similarity::Cosine)
                .then_some(self.inverse_norms.as_slice()),
        }
    }
}

/// Runs `work` on the parts of `0..len` split into `parts` contiguous
/// ranges, each part but the first on a thread of its own, and returns
/// the results in the order of the parts.
pub(crate) fn in_parts<T: Send>(
    len: usize,
    parts: usize,
    work: impl Fn(Range<usize>) -> T + Sync,
) -> Vec<T> {
    let ranges = split_evenly(len, parts);
    if ranges.len() <= 1 {
        return vec![work(0..len)];
    }
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> =
            ranges[1..].iter().map(|r| scope.spawn(move || work(r.clone()))).collect();
        let mut out = Vec::with_capacity(ranges.len());
        out.push(work(ranges[0].clone()));
        out.extend(handles.into_iter().map(|h| h.join().expect("a search thread panicked")));
        out
    })
}

/// One exact scan: the rows, and the inverse row norms when they are
/// known (cosine with an [`ExactIndex`]).
struct Scan<'t> {
    rows: &'t [f32],
    num_embeddings: usize,
    dim: usize,
    similarity: Similarity,
    inverse_norms: Option<&'t [f64]>,
}

impl Scan<'_> {
    /// The top `k` of all rows: each part of the rows keeps its own top
    /// `k`, and the parts' results are merged by the same total order.
    fn top_k(&self, query: &[f32], k: usize, exclude: &[u32], threads: Threads) -> Vec<Neighbor> {
        let n = self.num_embeddings;
        if k == 0 || n == 0 {
            return Vec::new();
        }
        let parts = threads.parts_for(n * self.dim.max(1), MIN_FLOATS_PER_THREAD);
        self.top_k_in_parts(query, k, exclude, parts)
    }

    /// [`top_k`](Self::top_k) with the rows split into `parts` parts.
    fn top_k_in_parts(
        &self,
        query: &[f32],
        k: usize,
        exclude: &[u32],
        parts: usize,
    ) -> Vec<Neighbor> {
        let n = self.num_embeddings;
        if k == 0 || n == 0 {
            return Vec::new();
        }
        let mut found: Vec<Neighbor> =
            in_parts(n, parts, |ids| self.part(query, ids, k, exclude)).concat();
        found.sort_by(scan::better_first);
        found.truncate(k);
        found
    }

    /// The top `k` of rows `ids`, scanned in ascending order.
    fn part(&self, query: &[f32], ids: Range<usize>, k: usize, exclude: &[u32]) -> Vec<Neighbor> {
        let dim = self.dim;
        if dim == 0 {
            let rows = std::iter::repeat_n(&[][..], ids.len());
            return self.part_rows(query, ids.start, rows, k, exclude);
        }
        let rows = self.rows[ids.start * dim..ids.end * dim].chunks_exact(dim);
        self.part_rows(query, ids.start, rows, k, exclude)
    }

    /// The top `k` of `rows`, the first of which is row `first`.
    fn part_rows<'r>(
        &self,
        query: &[f32],
        first: usize,
        rows: impl Iterator<Item = &'r [f32]>,
        k: usize,
        exclude: &[u32],
    ) -> Vec<Neighbor> {
        let mut top = TopK::new(k);
        // The exclusion list is checked only for rows that would be kept.
        let keep = |top: &mut TopK, id: usize, similarity: f32, raw: f32| {
            let id = id as u32;
            if top.accepts(similarity, id) && !exclude.contains(&id) {
                top.push(id, similarity, raw);
            }
        };
        let ids_and_rows = (first..).zip(rows);
        match (self.similarity, self.inverse_norms) {
            (Similarity::Dot, _) => {
                for (id, row) in ids_and_rows {
                    keep(&mut top, id, scan::dot(query, row), 0.0);
                }
            }
            (Similarity::Cosine, norms) => {
                let inv_query = scan::inverse_norm(scan::dot(query, query));
                match norms {
                    Some(norms) => {
                        for (id, row) in ids_and_rows {
                            let s = scan::cosine(scan::dot(query, row), inv_query, norms[id]);
                            keep(&mut top, id, s, 0.0);
                        }
                    }
                    None => {
                        for (id, row) in ids_and_rows {
                            // Two kernels, not one fused: the fused loop's 32
                            // accumulators are not vectorised (Rust 1.95).
                            let (dot, squared) = (scan::dot(query, row), scan::dot(row, row));
                            let s = scan::cosine(dot, inv_query, scan::inverse_norm(squared));
                            keep(&mut top, id, s, 0.0);
                        }
                    }
                }
            }
            (Similarity::Euclidean, _) => {
                // Rows are scanned in ascending id order, so once `k` rows
                // are kept, a row no nearer than the worst kept one can
                // never replace it: skip the square root for it. The bound
                // is NaN (skips nothing) until then, so rows at an infinite
                // distance are kept while there is room.
                let mut bound = f32::NAN;
                for (id, row) in ids_and_rows {
                    let squared = scan::squared_distance(query, row);
                    if squared >= bound {
                        continue;
                    }
                    keep(&mut top, id, scan::minus_distance(squared), squared);
                    if let Some(worst) = top.worst_raw() {
                        bound = worst;
                    }
                }
            }
        }
        top.into_sorted()
    }
}

pub(crate) fn check_query(dim: usize, query: &[f32]) -> Result<()> {
    if query.len() != dim {
        return Err(Error::shape("query", format!("[{dim}]"), &[query.len()]));
    }
    if let Some(x) = query.iter().find(|x| !x.is_finite()) {
        return Err(Error::config("query", format!("value {x} is not finite")));
    }
    Ok(())
}

/// The `k` best of `scored`, best first: largest score, then smaller id;
/// NaN scores last.
pub(crate) fn top_k(mut scored: Vec<Neighbor>, k: usize) -> Vec<Neighbor> {
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, scan::better_first);
        scored.truncate(k);
    }
    scored.sort_by(scan::better_first);
    scored
}

/// The `k` rows most similar to row `id` of `table`, the row itself
/// left out. See [`nearest_neighbors`].
///
/// # Errors
///
/// [`Error::IdOutOfRange`] if `id` is not a row of the table.
///
/// # Examples
///
/// ```
/// use embkit::{query::neighbors_of_row, Embedding};
/// use ndarray::array;
///
/// let table = Embedding::from_pretrained(array![[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]].view(), true)?;
/// let near = neighbors_of_row(&table, 0, 1)?;
/// assert_eq!(near[0].id, 1);
/// assert!(neighbors_of_row(&table, 3, 1).is_err());
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn neighbors_of_row(table: &Embedding, id: u32, k: usize) -> Result<Vec<Neighbor>> {
    table.check_ids(&[id])?;
    nearest_neighbors(table.weights_view(), table.row(id), k, Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn zero_vectors_have_zero_similarity() {
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn opposite_vectors_come_last() {
        let table = array![[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]];
        let near = nearest_neighbors(table.view(), &[1.0, 0.0], 10, None).unwrap();
        assert_eq!(near.iter().map(|n| n.id).collect::<Vec<_>>(), vec![0, 2, 1]);
        assert_eq!(near[2].similarity, -1.0);
    }

    #[test]
    fn wrong_query_length_is_an_error() {
        let table = array![[1.0, 0.0]];
        assert!(nearest_neighbors(table.view(), &[1.0], 1, None).is_err());
        assert!(nearest_neighbors(table.view(), &[f32::NAN, 0.0], 1, None).is_err());
    }

    #[test]
    fn rows_with_nan_come_last_without_panicking() {
        let mut table = ndarray::Array2::<f32>::ones((64, 3));
        for r in (0..64).step_by(3) {
            table[[r, 1]] = f32::NAN;
        }
        let near = nearest_neighbors(table.view(), &[1.0, 1.0, 1.0], 64, None).unwrap();
        assert_eq!(near.len(), 64);
        assert!(near[..42].iter().all(|n| n.similarity.is_finite()));
        assert!(near[42..].iter().all(|n| n.similarity.is_nan()));
    }

    #[test]
    fn euclidean_scores_are_minus_distances() {
        assert_eq!(Similarity::Euclidean.score(&[0.0, 0.0], &[3.0, 4.0]), -5.0);
        assert_eq!(Similarity::Dot.score(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
        assert_eq!("euclidean".parse::<Similarity>().unwrap(), Similarity::Euclidean);
        assert!("manhattan".parse::<Similarity>().is_err());
    }

    #[test]
    fn batch_needs_one_exclude_list_per_query() {
        let table = array![[1.0, 0.0], [0.0, 1.0]];
        let got = nearest_neighbors_batch(
            table.view(),
            table.view(),
            1,
            &[vec![0]],
            Similarity::Dot,
            Threads::single(),
        );
        assert!(got.is_err());
    }

    proptest::proptest! {
        /// Any split of the rows over threads gives the same answer, bit
        /// for bit, as one part.
        #[test]
        fn every_split_gives_the_same_answer(
            rows in 1usize..80,
            dim in 0usize..20,
            k in 0usize..12,
            seed in 0u64..1000,
            similarity in proptest::sample::select(Similarity::ALL.to_vec()),
            cached in proptest::bool::ANY,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            // Coarse values make equal scores (ties) common.
            let table = ndarray::Array2::from_shape_fn((rows, dim), |_| {
                f32::from(rng.random_range(-3i8..4)) * 0.5
            });
            let query: Vec<f32> = (0..dim).map(|_| rng.random_range(-2.0f32..2.0)).collect();
            let exclude = [rng.random_range(0..rows as u32)];
            let index = ExactIndex::new(table.view(), similarity, Threads::single());
            let mut scan = index.scan();
            if !cached {
                scan.inverse_norms = None;
            }
            let one = scan.top_k_in_parts(&query, k, &exclude, 1);
            for parts in 2..6 {
                proptest::prop_assert_eq!(&scan.top_k_in_parts(&query, k, &exclude, parts), &one);
            }
        }
    }

    /// Regression: rows at an infinite Euclidean distance (their squared
    /// distance overflows f32) were skipped even when fewer than `k` rows
    /// were kept, so fewer neighbours than rows came back.
    #[test]
    fn rows_at_an_infinite_distance_are_kept_while_there_is_room() {
        let table = array![[1e20, 0.0], [0.0, 1.0], [-1e20, 3.0]];
        for threads in [1, 2] {
            let near = nearest_neighbors_by(
                table.view(),
                &[0.0, 0.0],
                3,
                &[],
                Similarity::Euclidean,
                Threads::new(threads).unwrap(),
            )
            .unwrap();
            let got: Vec<(u32, f32)> = near.iter().map(|n| (n.id, n.similarity)).collect();
            assert_eq!(got, vec![(1, -1.0), (0, f32::NEG_INFINITY), (2, f32::NEG_INFINITY)]);
        }
    }

    #[test]
    fn k_zero_gives_nothing() {
        let table = array![[1.0, 0.0]];
        assert!(nearest_neighbors(table.view(), &[1.0, 0.0], 0, None).unwrap().is_empty());
    }
}
