//! The embedding layer: a table with one learned row per id.

use ndarray::{Array2, ArrayD, ArrayView, ArrayView2, Dimension, IxDyn};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Init, Result, RowGrad};

/// Settings for an [`Embedding`].
///
/// Start from [`EmbeddingConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](EmbeddingConfig::init). A config
/// is plain data and is saved with the weights, so a loaded model knows
/// how it was built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmbeddingConfig {
    /// Number of rows: one per id, usually the vocabulary size.
    pub num_embeddings: usize,
    /// Length of each row.
    pub embedding_dim: usize,
    /// How rows are filled before training. Default: Keras's
    /// `Uniform { bound: 0.05 }`; PyTorch's is `Normal { std: 1.0 }`.
    pub init: Init,
    /// Whether training updates the table. `false` freezes it (Keras
    /// `trainable=False`, PyTorch `freeze=True`).
    pub trainable: bool,
}

impl EmbeddingConfig {
    /// A config with the two required sizes; everything else at its
    /// default (Keras's uniform initialiser, trainable).
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Self {
        Self { num_embeddings, embedding_dim, init: Init::Uniform { bound: 0.05 }, trainable: true }
    }

    /// Sets [`init`](Self::init).
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Sets [`trainable`](Self::trainable).
    pub fn with_trainable(mut self, trainable: bool) -> Self {
        self.trainable = trainable;
        self
    }

    /// Checks the sizes and the initialiser.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a size is 0, the table would not fit
    /// `u32` ids, or the initialiser's parameters are invalid.
    pub fn validate(&self) -> Result<()> {
        if self.num_embeddings == 0 {
            return Err(Error::config("num_embeddings", "must be at least 1, got 0"));
        }
        if self.num_embeddings > u32::MAX as usize + 1 {
            return Err(Error::config(
                "num_embeddings",
                format!("ids are u32, so at most 2^32 rows; got {}", self.num_embeddings),
            ));
        }
        if self.embedding_dim == 0 {
            return Err(Error::config("embedding_dim", "must be at least 1, got 0"));
        }
        if self.num_embeddings.checked_mul(self.embedding_dim).is_none() {
            return Err(Error::config(
                "num_embeddings",
                format!("{} x {} values overflow", self.num_embeddings, self.embedding_dim),
            ));
        }
        self.init.validate()
    }

    /// Validates the config and draws the table.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::EmbeddingConfig;
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let table = EmbeddingConfig::new(1000, 64).init(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(table.weights().len(), 1000 * 64);
    /// assert!(EmbeddingConfig::new(1000, 0).init(&mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Embedding> {
        self.validate()?;
        let weights = self.init.sample(self.num_embeddings, self.embedding_dim, rng)?;
        Ok(Embedding::with_weights(self.clone(), weights))
    }
}

/// A table of `num_embeddings` rows of `embedding_dim` values: looking up
/// id `i` returns row `i`.
///
/// The lookup is the product `one_hot(ids) · W`, computed as a row copy
/// (constant time per id), never as a matrix product. Its gradient is a
/// [`RowGrad`]: one summed row per distinct id in the batch.
#[derive(Debug, Clone)]
pub struct Embedding {
    config: EmbeddingConfig,
    weights: Vec<f32>,
    grad: RowGrad,
    order: Vec<u32>,
}

impl Embedding {
    fn with_weights(config: EmbeddingConfig, weights: Vec<f32>) -> Self {
        let grad = RowGrad::new(config.embedding_dim);
        Self { config, weights, grad, order: Vec::new() }
    }

    /// A table with given (for example pretrained) weights, as PyTorch's
    /// `Embedding.from_pretrained`. With `freeze` the table is not
    /// trainable.
    ///
    /// # Shapes
    ///
    /// - `weights`: `[num_embeddings, embedding_dim]`
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an empty matrix or a non-finite value.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::Embedding;
    /// use ndarray::array;
    ///
    /// let m = array![[1.0, 1.0], [1.0, 2.0], [2.0, 2.0], [3.0, 3.0]];
    /// let table = Embedding::from_pretrained(m.view(), true)?;
    /// assert_eq!(table.row(1), &[1.0, 2.0]);
    /// assert!(!table.config().trainable);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn from_pretrained(weights: ArrayView2<'_, f32>, freeze: bool) -> Result<Self> {
        let (rows, dim) = weights.dim();
        let mut config = EmbeddingConfig::new(rows, dim).with_trainable(!freeze);
        config.init = Init::Zeros;
        config.validate()?;
        if let Some((i, x)) = weights.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::config(
                "weights",
                format!("value {x} at row {}, column {} is not finite", i / dim, i % dim),
            ));
        }
        Ok(Self::with_weights(config, weights.iter().copied().collect()))
    }

    /// Rebuilds a table from its config and its row-major weights (used by
    /// loading).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid;
    /// [`Error::ShapeMismatch`] if `weights` does not hold
    /// `num_embeddings * embedding_dim` values.
    pub fn from_config_and_weights(config: EmbeddingConfig, weights: Vec<f32>) -> Result<Self> {
        config.validate()?;
        if weights.len() != config.num_embeddings * config.embedding_dim {
            return Err(Error::shape(
                "embedding weights",
                format!("[{}, {}]", config.num_embeddings, config.embedding_dim),
                &[weights.len()],
            ));
        }
        Ok(Self::with_weights(config, weights))
    }

    /// The config the table was built from.
    pub fn config(&self) -> &EmbeddingConfig {
        &self.config
    }

    /// Number of rows.
    pub fn num_embeddings(&self) -> usize {
        self.config.num_embeddings
    }

    /// Length of each row.
    pub fn embedding_dim(&self) -> usize {
        self.config.embedding_dim
    }

    /// All rows back to back, row-major `[num_embeddings, embedding_dim]`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Mutable access to the rows, row-major.
    pub fn weights_mut(&mut self) -> &mut [f32] {
        &mut self.weights
    }

    /// The table as a matrix view `[num_embeddings, embedding_dim]`.
    pub fn weights_view(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.num_embeddings(), self.embedding_dim()), &self.weights)
            .expect("weights hold num_embeddings * embedding_dim values")
    }

    /// The row for `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a row of the table. Use [`forward`](Self::forward)
    /// for ids that come from data.
    #[track_caller]
    pub fn row(&self, id: u32) -> &[f32] {
        let dim = self.config.embedding_dim;
        let start = id as usize * dim;
        &self.weights[start..start + dim]
    }

    /// Checks that every id is a row of the table.
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`] for the first id that is not.
    pub fn check_ids<'a>(&self, ids: impl IntoIterator<Item = &'a u32>) -> Result<()> {
        let rows = self.config.num_embeddings;
        match ids.into_iter().find(|&&id| id as usize >= rows) {
            Some(&id) => Err(Error::IdOutOfRange { id, num_embeddings: rows }),
            None => Ok(()),
        }
    }

    /// Looks up one row per id.
    ///
    /// This is the product `one_hot(ids) · W`, computed as a row gather.
    ///
    /// # Shapes
    ///
    /// - `ids`: any shape `[...]`, for example `[n]` or `[batch, seq_len]`
    /// - returns: `[..., embedding_dim]`
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`] for the first id that is not a row of the
    /// table, checked before any row is copied.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::EmbeddingConfig;
    /// use ndarray::Array2;
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let mut table = EmbeddingConfig::new(1000, 64).init(&mut StdRng::seed_from_u64(0))?;
    /// let docs = Array2::<u32>::zeros((32, 50));
    /// assert_eq!(table.forward(docs.view())?.shape(), &[32, 50, 64]);
    ///
    /// let err = table.forward(ndarray::aview1(&[3, 1000])).unwrap_err();
    /// assert_eq!(err.to_string(), "id 1000 is out of range for a table of 1000 rows");
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn forward<D: Dimension>(&mut self, ids: ArrayView<'_, u32, D>) -> Result<ArrayD<f32>> {
        let mut shape = ids.shape().to_vec();
        shape.push(self.embedding_dim());
        let ids = ids.as_standard_layout();
        let mut out = Vec::new();
        self.forward_into(ids.as_slice().expect("standard layout is contiguous"), &mut out)?;
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("one row per id"))
    }

    /// Looks up one row per id into `out`, which is cleared and reused, so
    /// a training loop does not allocate once `out` has grown.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n]`
    /// - `out`: becomes `[n, embedding_dim]`, row-major
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`] for the first id that is not a row of the
    /// table; `out` is left empty.
    pub fn forward_into(&mut self, ids: &[u32], out: &mut Vec<f32>) -> Result<()> {
        out.clear();
        self.check_ids(ids)?;
        let dim = self.config.embedding_dim;
        out.reserve(ids.len() * dim);
        for &id in ids {
            let start = id as usize * dim;
            out.extend_from_slice(&self.weights[start..start + dim]);
        }
        Ok(())
    }

    /// Computes the table's gradient from the ids of a forward pass and
    /// the gradient with respect to its output: one summed row per
    /// distinct id (see [`RowGrad::from_rows`]). The gradient is kept and
    /// returned; a later call replaces it.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n]`
    /// - `grad_out`: `[n, embedding_dim]`, row-major
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `grad_out` does not have one row per id;
    /// [`Error::IdOutOfRange`] for an id past the table.
    pub fn backward(&mut self, ids: &[u32], grad_out: &[f32]) -> Result<&RowGrad> {
        let dim = self.config.embedding_dim;
        if grad_out.len() != ids.len() * dim {
            return Err(Error::shape(
                "embedding gradient",
                format!("[{}, {dim}]", ids.len()),
                &[grad_out.len()],
            ));
        }
        self.check_ids(ids)?;
        self.grad.assign_from_rows(ids, grad_out, dim, &mut self.order);
        Ok(&self.grad)
    }

    /// The gradient of the last [`backward`](Self::backward).
    pub fn grad(&self) -> &RowGrad {
        &self.grad
    }

    /// The table and its last gradient, for an optimizer step.
    pub fn weights_and_grad(&mut self) -> (&mut [f32], &RowGrad) {
        (&mut self.weights, &self.grad)
    }
}

/// One-hot encodes ids: row `i` of the result is all zeros except a 1 in
/// column `ids[i]`.
///
/// `one_hot(ids, num_embeddings) · W` equals [`Embedding::forward`]; the
/// embedding computes it without building this matrix.
///
/// # Shapes
///
/// - `ids`: `[n]`
/// - returns: `[n, num_classes]`
///
/// # Errors
///
/// [`Error::IdOutOfRange`] for an id that is not below `num_classes`.
///
/// # Examples
///
/// ```
/// use embkit::one_hot;
///
/// let m = one_hot(&[1, 0], 3)?;
/// assert_eq!(m, ndarray::array![[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn one_hot(ids: &[u32], num_classes: usize) -> Result<Array2<f32>> {
    let mut out = Array2::zeros((ids.len(), num_classes));
    for (i, &id) in ids.iter().enumerate() {
        if id as usize >= num_classes {
            return Err(Error::IdOutOfRange { id, num_embeddings: num_classes });
        }
        out[[i, id as usize]] = 1.0;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};
    use rand::{rngs::StdRng, SeedableRng};

    fn seed_table() -> Embedding {
        // The table M of the seed example.
        Embedding::from_pretrained(
            array![[1.0, 1.0], [1.0, 2.0], [2.0, 2.0], [3.0, 3.0]].view(),
            false,
        )
        .unwrap()
    }

    #[test]
    fn seed_example_gathers_rows() {
        let mut table = seed_table();
        let ids = [0u32, 1, 2, 1, 3, 0, 1, 2, 1];
        let out = table.forward(ndarray::aview1(&ids)).unwrap();
        assert_eq!(out.shape(), &[9, 2]);
        assert_eq!(out.slice(ndarray::s![4, ..]).to_vec(), vec![3.0, 3.0]);
        let by_product = one_hot(&ids, 4).unwrap().dot(&table.weights_view());
        assert_eq!(out.into_dimensionality::<ndarray::Ix2>().unwrap(), by_product);
    }

    #[test]
    fn batch_of_documents_gives_one_block_per_document() {
        let mut table = EmbeddingConfig::new(1000, 64).init(&mut StdRng::seed_from_u64(0)).unwrap();
        let docs = Array2::from_shape_fn((3, 50), |(b, s)| (b * 50 + s) as u32);
        let out = table.forward(docs.view()).unwrap();
        assert_eq!(out.shape(), &[3, 50, 64]);
        assert_eq!(out.slice(ndarray::s![2, 7, ..]).to_vec(), table.row(107).to_vec());
    }

    #[test]
    fn forward_rejects_ids_past_the_table_before_writing() {
        let mut table = seed_table();
        let mut out = vec![9.0; 3];
        let err = table.forward_into(&[0, 4, 1], &mut out).unwrap_err();
        assert!(matches!(err, Error::IdOutOfRange { id: 4, num_embeddings: 4 }));
        assert!(out.is_empty());
    }

    #[test]
    fn zero_sizes_are_refused_with_the_field_name() {
        let mut rng = StdRng::seed_from_u64(0);
        let err = EmbeddingConfig::new(10, 0).init(&mut rng).unwrap_err();
        assert_eq!(err.to_string(), "invalid embedding_dim: must be at least 1, got 0");
        let err = EmbeddingConfig::new(0, 4).init(&mut rng).unwrap_err();
        assert_eq!(err.to_string(), "invalid num_embeddings: must be at least 1, got 0");
    }

    #[test]
    fn keras_default_init_is_uniform_005() {
        let table = EmbeddingConfig::new(100, 8).init(&mut StdRng::seed_from_u64(1)).unwrap();
        assert!(table.weights().iter().all(|x| x.abs() <= 0.05));
        let torch = EmbeddingConfig::new(100, 8)
            .with_init(Init::Normal { std: 1.0 })
            .init(&mut StdRng::seed_from_u64(1))
            .unwrap();
        assert!(torch.weights().iter().any(|x| x.abs() > 1.0));
    }

    #[test]
    fn pretrained_weights_are_kept_and_can_be_frozen() {
        let table = Embedding::from_pretrained(array![[0.5, -1.0]].view(), true).unwrap();
        assert_eq!(table.weights(), &[0.5, -1.0]);
        assert!(!table.config().trainable);
        let nan = Embedding::from_pretrained(array![[0.5, f32::NAN]].view(), false).unwrap_err();
        assert!(nan.to_string().contains("row 0, column 1"), "{nan}");
    }

    #[test]
    fn backward_sums_repeated_ids() {
        let mut table = seed_table();
        let g = table.backward(&[3, 0, 3], &[1.0, 1.0, 2.0, 2.0, 0.5, 0.25]).unwrap();
        assert_eq!(g.ids(), &[0, 3]);
        assert_eq!(g.rows(), &[2.0, 2.0, 1.5, 1.25]);
        assert!(table.backward(&[3], &[1.0]).is_err());
    }

    #[test]
    fn one_hot_rejects_ids_past_the_classes() {
        assert!(matches!(one_hot(&[3], 3), Err(Error::IdOutOfRange { id: 3, num_embeddings: 3 })));
    }
}
