//! Gradients: [`RowGrad`] for embedding tables (sparse rows), plain
//! slices for dense parameters.

/// The gradient of an embedding table: sorted unique ids, one summed
/// gradient row each.
///
/// A table of `num_embeddings × embedding_dim` values that saw `n` ids in a
/// batch gets a gradient of at most `n` rows; the dense
/// `num_embeddings × embedding_dim` gradient is never built. Repeated ids
/// are summed, in the order they occur in the batch, so the result is the
/// same on every run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowGrad {
    ids: Vec<u32>,
    rows: Vec<f32>,
    /// Per id, the sum of the squares of its occurrences' rows (Σ gᵢ²),
    /// which Keras's optimizers accumulate instead of (Σ gᵢ)².
    squares: Vec<f32>,
    /// Per id, how many times it occurred in the batch.
    counts: Vec<u32>,
    dim: usize,
}

impl RowGrad {
    /// An empty gradient for rows of length `dim`.
    pub fn new(dim: usize) -> Self {
        Self { ids: Vec::new(), rows: Vec::new(), squares: Vec::new(), counts: Vec::new(), dim }
    }

    /// Builds the gradient of a gather: `grads` holds one upstream row of
    /// length `dim` per entry of `ids`; rows of equal ids are summed.
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
        g.assign_from_rows(ids, grads, dim, &mut Vec::new());
        g
    }

    /// Like [`from_rows`](Self::from_rows) but reuses this gradient's
    /// buffers and the caller's scratch `order`, so a training loop does
    /// not allocate once the buffers have grown.
    ///
    /// # Panics
    ///
    /// If `grads.len() != ids.len() * dim`.
    pub fn assign_from_rows(
        &mut self,
        ids: &[u32],
        grads: &[f32],
        dim: usize,
        order: &mut Vec<u32>,
    ) {
        assert_eq!(grads.len(), ids.len() * dim, "one gradient row per id");
        self.dim = dim;
        self.ids.clear();
        self.rows.clear();
        self.squares.clear();
        self.counts.clear();
        order.clear();
        order.extend(0..ids.len() as u32);
        // Stable: equal ids keep their batch order, so sums are reproducible.
        order.sort_by_key(|&i| ids[i as usize]);
        for &i in order.iter() {
            let i = i as usize;
            let id = ids[i];
            let src = &grads[i * dim..(i + 1) * dim];
            if self.ids.last() == Some(&id) {
                let start = self.rows.len() - dim;
                for ((acc, sq), &x) in
                    self.rows[start..].iter_mut().zip(&mut self.squares[start..]).zip(src)
                {
                    *acc += x;
                    *sq += x * x;
                }
                *self.counts.last_mut().expect("one count per id") += 1;
            } else {
                self.ids.push(id);
                self.rows.extend_from_slice(src);
                self.squares.extend(src.iter().map(|x| x * x));
                self.counts.push(1);
            }
        }
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
    /// back. Keras's optimizers accumulate this for repeated ids, where
    /// PyTorch's sparse optimizers use the square of the sum,
    /// `(Σ gᵢ)²`. Scaling the rows with [`rows_mut`](Self::rows_mut) does
    /// not change it; use [`scale_row`](Self::scale_row) to scale both.
    pub fn squares(&self) -> &[f32] {
        &self.squares
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
        let range = i * self.dim..(i + 1) * self.dim;
        self.rows[range.clone()].iter_mut().for_each(|x| *x *= factor);
        self.squares[range].iter_mut().for_each(|x| *x *= factor * factor);
    }

    /// Sets the sums of squares to the squares of the summed rows,
    /// `(Σ gᵢ)²`: what Keras accumulates once the gradient is dense in
    /// TensorFlow (a regulariser's gradient added to the table's makes it
    /// so). Call after changing the rows with [`rows_mut`](Self::rows_mut).
    pub fn square_summed_rows(&mut self) {
        for (sq, &x) in self.squares.iter_mut().zip(&self.rows) {
            *sq = x * x;
        }
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
        let mut order = Vec::new();
        g.assign_from_rows(&[1, 0], &[1.0, 1.0, 2.0, 2.0], 2, &mut order);
        g.assign_from_rows(&[4], &[3.0, 3.0], 2, &mut order);
        assert_eq!(g.ids(), &[4]);
        assert_eq!(g.rows(), &[3.0, 3.0]);
    }
}
