//! Exact top-k nearest neighbours by cosine similarity.

use ndarray::ArrayView2;

use crate::{Embedding, Error, Result};

/// A row of a table and its similarity to a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The row's id.
    pub id: u32,
    /// Cosine similarity to the query, in `[-1, 1]`.
    pub similarity: f32,
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
    if query.len() != table.ncols() {
        return Err(Error::shape("query", format!("[{}]", table.ncols()), &[query.len()]));
    }
    if let Some(x) = query.iter().find(|x| !x.is_finite()) {
        return Err(Error::config("query", format!("value {x} is not finite")));
    }
    let mut scored: Vec<Neighbor> = table
        .outer_iter()
        .enumerate()
        .filter(|(id, _)| exclude != Some(*id as u32))
        .map(|(id, row)| {
            let row = row.as_standard_layout();
            Neighbor {
                id: id as u32,
                similarity: cosine_similarity(query, row.as_slice().expect("contiguous")),
            }
        })
        .collect();
    // A total order: NaN similarities (rows with NaN values) come last.
    let key = |n: &Neighbor| if n.similarity.is_nan() { f32::NEG_INFINITY } else { n.similarity };
    let order = |a: &Neighbor, b: &Neighbor| key(b).total_cmp(&key(a)).then(a.id.cmp(&b.id));
    let k = k.min(scored.len());
    if k == 0 {
        return Ok(Vec::new());
    }
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.sort_by(order);
    Ok(scored)
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
    fn k_zero_gives_nothing() {
        let table = array![[1.0, 0.0]];
        assert!(nearest_neighbors(table.view(), &[1.0, 0.0], 0, None).unwrap().is_empty());
    }
}
