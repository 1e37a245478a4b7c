//! Exact top-k nearest neighbours by cosine similarity, dot product or
//! Euclidean distance.

use std::fmt;
use std::str::FromStr;

use ndarray::ArrayView2;

use crate::{Embedding, Error, Result};

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
/// most similar first, found by comparing with every row (exact).
///
/// `exclude` leaves one id out (the query's own row when the query is a
/// row of the table). Ties are broken by the smaller id, so the answer is
/// the same on every run. Rows with a NaN value (similarity NaN) come
/// last. Fewer than `k` neighbours come back when the
/// table has fewer rows.
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
    nearest_neighbors_by(table, query, k, exclude.as_slice(), Similarity::Cosine)
}

/// The `k` rows of `table` nearest to `query` under `similarity`,
/// nearest first, found by scoring every row (exact).
///
/// Rows whose ids are in `exclude` are left out. Ties are broken by the
/// smaller id; rows with a NaN score (rows with NaN values) come last.
/// For [`Similarity::Euclidean`] the scores are minus the distances, so
/// the order is still largest first. Fewer than `k` neighbours come back
/// when the table has fewer rows.
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
/// use ndarray::array;
///
/// let table = array![[1.0, 0.0], [10.0, 0.0], [0.9, 0.1]];
/// let ids = |s| -> embkit::Result<Vec<u32>> {
///     Ok(nearest_neighbors_by(table.view(), &[1.0, 0.0], 3, &[], s)?.iter().map(|n| n.id).collect())
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
) -> Result<Vec<Neighbor>> {
    check_query(table, query)?;
    let scored = table
        .outer_iter()
        .enumerate()
        .filter(|(id, _)| !exclude.contains(&(*id as u32)))
        .map(|(id, row)| {
            let row = row.as_standard_layout();
            Neighbor {
                id: id as u32,
                similarity: similarity.score(query, row.as_slice().expect("standard layout")),
            }
        })
        .collect();
    Ok(top_k(scored, k))
}

/// [`nearest_neighbors_by`] for each row of `queries`, in order.
///
/// `exclude` is empty (nothing left out) or holds one list of ids per
/// query.
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
/// use ndarray::array;
///
/// let table = array![[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]];
/// let near = nearest_neighbors_batch(
///     table.view(), table.view(), 1, &[vec![0], vec![1], vec![2]], Similarity::Cosine,
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
) -> Result<Vec<Vec<Neighbor>>> {
    if !exclude.is_empty() && exclude.len() != queries.nrows() {
        return Err(Error::shape(
            "exclude lists",
            format!("none or one per query ({})", queries.nrows()),
            &[exclude.len()],
        ));
    }
    queries
        .outer_iter()
        .enumerate()
        .map(|(i, query)| {
            let query = query.as_standard_layout();
            let skip = exclude.get(i).map_or(&[][..], Vec::as_slice);
            nearest_neighbors_by(
                table,
                query.as_slice().expect("standard layout"),
                k,
                skip,
                similarity,
            )
        })
        .collect()
}

fn check_query(table: ArrayView2<'_, f32>, query: &[f32]) -> Result<()> {
    if query.len() != table.ncols() {
        return Err(Error::shape("query", format!("[{}]", table.ncols()), &[query.len()]));
    }
    if let Some(x) = query.iter().find(|x| !x.is_finite()) {
        return Err(Error::config("query", format!("value {x} is not finite")));
    }
    Ok(())
}

/// The `k` best of `scored`, best first: largest score, then smaller id;
/// NaN scores last.
pub(crate) fn top_k(mut scored: Vec<Neighbor>, k: usize) -> Vec<Neighbor> {
    // A total order: NaN similarities (rows with NaN values) come last,
    // and -0.0 ties with 0.0 (`+ 0.0` turns -0.0 into 0.0).
    let key =
        |n: &Neighbor| if n.similarity.is_nan() { f32::NEG_INFINITY } else { n.similarity + 0.0 };
    let order = |a: &Neighbor, b: &Neighbor| key(b).total_cmp(&key(a)).then(a.id.cmp(&b.id));
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.sort_by(order);
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
        let got =
            nearest_neighbors_batch(table.view(), table.view(), 1, &[vec![0]], Similarity::Dot);
        assert!(got.is_err());
    }

    #[test]
    fn k_zero_gives_nothing() {
        let table = array![[1.0, 0.0]];
        assert!(nearest_neighbors(table.view(), &[1.0, 0.0], 0, None).unwrap().is_empty());
    }
}
