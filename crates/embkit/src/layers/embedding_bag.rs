//! The embedding bag: a table whose rows are looked up in bags and
//! reduced to one row per bag (sum, mean, max or `sum / sqrt(n)`), without
//! building the `[n, embedding_dim]` matrix of looked-up rows.
//!
//! This is PyTorch's `nn.EmbeddingBag`, with the `"sqrtn"` combiner of
//! TensorFlow's `embedding_lookup_sparse` (used by Keras recommenders) as a
//! fourth mode. Bags come either as one flat list of ids cut by offsets
//! ([`EmbeddingBag::forward`]) or as the rows of a 2-D array of equal-length
//! bags ([`EmbeddingBag::forward_fixed`]).

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::kernels::buffer::TableBuffer;
use crate::optim::Optimizer;
use crate::{kernels, Error, Init, Result, RowGrad, Threads};

/// How the rows of a bag are reduced to one row.
///
/// Entries equal to the table's `padding_idx` are left out of every mode,
/// including the count that `Mean` and `Sqrtn` divide by. A bag with no
/// other entry (an empty bag, or one of padding only) gives a row of zeros
/// in every mode, `Max` included, as in PyTorch.
///
/// Parses from and prints as the lowercase names PyTorch (`mode`) and
/// TensorFlow/Keras (`combiner`) use: `"sum"`, `"mean"`, `"max"`,
/// `"sqrtn"`. Serialised the same way.
///
/// # Examples
///
/// ```
/// use embkit::layers::BagMode;
///
/// let mode: BagMode = "sqrtn".parse()?;
/// assert_eq!(mode, BagMode::Sqrtn);
/// assert_eq!(BagMode::default(), BagMode::Mean);
/// assert_eq!(BagMode::Max.to_string(), "max");
///
/// let err = "avg".parse::<BagMode>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid mode: unknown bag mode "avg"; expected "sum", "mean", "max" or "sqrtn""#
/// );
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BagMode {
    /// `Σ wᵢ · rowᵢ` (`wᵢ = 1` without per-sample weights).
    Sum,
    /// `Σ rowᵢ / n`, with `n` the bag's entries other than padding.
    /// PyTorch's default.
    #[default]
    Mean,
    /// The element-wise maximum of the bag's rows, per dimension.
    Max,
    /// `Σ rowᵢ / sqrt(n)`; with per-sample weights
    /// `Σ wᵢ · rowᵢ / sqrt(Σ wᵢ²)` (zeros when `Σ wᵢ² = 0`), as
    /// TensorFlow's `embedding_lookup_sparse(combiner="sqrtn")`.
    Sqrtn,
}

impl BagMode {
    /// The mode's name as PyTorch and Keras spell it.
    pub fn name(self) -> &'static str {
        match self {
            BagMode::Sum => "sum",
            BagMode::Mean => "mean",
            BagMode::Max => "max",
            BagMode::Sqrtn => "sqrtn",
        }
    }

    /// Whether the mode takes per-sample weights: `Sum` (as PyTorch) and
    /// `Sqrtn` (as TensorFlow).
    pub fn takes_per_sample_weights(self) -> bool {
        matches!(self, BagMode::Sum | BagMode::Sqrtn)
    }
}

impl fmt::Display for BagMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BagMode {
    type Err = Error;

    /// Parses `"sum"`, `"mean"`, `"max"` or `"sqrtn"` (exact, lowercase).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for the field `mode`, naming the text and
    /// the accepted names.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sum" => Ok(BagMode::Sum),
            "mean" => Ok(BagMode::Mean),
            "max" => Ok(BagMode::Max),
            "sqrtn" => Ok(BagMode::Sqrtn),
            other => Err(Error::config(
                "mode",
                format!(r#"unknown bag mode {other:?}; expected "sum", "mean", "max" or "sqrtn""#),
            )),
        }
    }
}

/// Settings for an [`EmbeddingBag`].
///
/// Start from [`EmbeddingBagConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](EmbeddingBagConfig::init).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmbeddingBagConfig {
    /// Number of rows: one per id, usually the vocabulary size.
    pub num_embeddings: usize,
    /// Length of each row, and of each bag's output row.
    pub embedding_dim: usize,
    /// How a bag's rows are reduced. Default: [`BagMode::Mean`], as
    /// PyTorch.
    pub mode: BagMode,
    /// How rows are filled before training. Default: PyTorch's
    /// `nn.EmbeddingBag` initialiser, `Normal { std: 1.0 }` (Keras's
    /// `Embedding` uses `Uniform { bound: 0.05 }`).
    pub init: Init,
    /// Whether [`EmbeddingBag::step`] updates the table. `false` freezes it.
    pub trainable: bool,
    /// An id whose entries are left out of every bag (PyTorch
    /// `padding_idx`). Its row is zeroed by [`init`](Self::init) and never
    /// gets a gradient.
    pub padding_idx: Option<u32>,
    /// Whether the offsets given to [`EmbeddingBag::forward`] end with the
    /// end of the last bag (`offsets.len() - 1` bags, CSR style) instead of
    /// leaving it implicit (`offsets.len()` bags).
    pub include_last_offset: bool,
}

impl EmbeddingBagConfig {
    /// A config with the two required sizes; everything else at its
    /// default: mean mode, PyTorch's `Normal { std: 1.0 }`, trainable, no
    /// padding, no last offset.
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Self {
        Self {
            num_embeddings,
            embedding_dim,
            mode: BagMode::Mean,
            init: Init::Normal { std: 1.0 },
            trainable: true,
            padding_idx: None,
            include_last_offset: false,
        }
    }

    /// Sets [`mode`](Self::mode).
    pub fn with_mode(mut self, mode: BagMode) -> Self {
        self.mode = mode;
        self
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

    /// Sets [`include_last_offset`](Self::include_last_offset).
    pub fn with_include_last_offset(mut self, include_last_offset: bool) -> Self {
        self.include_last_offset = include_last_offset;
        self
    }

    /// Sets [`padding_idx`](Self::padding_idx). As in PyTorch, a negative
    /// value counts from the end: `-1` is the last row.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `padding_idx` is not in
    /// `[-num_embeddings, num_embeddings)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::layers::EmbeddingBagConfig;
    ///
    /// let config = EmbeddingBagConfig::new(10, 4).with_padding_idx(-1)?;
    /// assert_eq!(config.padding_idx, Some(9));
    ///
    /// let err = EmbeddingBagConfig::new(10, 4).with_padding_idx(10).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid padding_idx: must be in [-10, 10) for a table of 10 rows, got 10"
    /// );
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn with_padding_idx(mut self, padding_idx: i64) -> Result<Self> {
        let rows = self.num_embeddings as i128;
        let given = i128::from(padding_idx);
        let id = if given < 0 { given + rows } else { given };
        match u32::try_from(id) {
            Ok(id) if i128::from(id) < rows => {
                self.padding_idx = Some(id);
                Ok(self)
            }
            _ => Err(Error::config(
                "padding_idx",
                format!(
                    "must be in [-{rows}, {rows}) for a table of {rows} rows, got {padding_idx}"
                ),
            )),
        }
    }

    /// Checks the sizes, the initialiser and the padding id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a size is 0, the table would not fit
    /// `u32` ids, the initialiser's parameters are invalid, or
    /// `padding_idx` is not a row of the table.
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
        self.init.validate()?;
        if let Some(pad) = self.padding_idx.filter(|&p| p as usize >= self.num_embeddings) {
            return Err(Error::config(
                "padding_idx",
                format!("is {pad}, but the table has {} rows", self.num_embeddings),
            ));
        }
        Ok(())
    }

    /// Validates the config, draws the table and zeroes the padding row.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::layers::{BagMode, EmbeddingBagConfig};
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let bag = EmbeddingBagConfig::new(100, 8)
    ///     .with_mode(BagMode::Sum)
    ///     .with_padding_idx(0)?
    ///     .init(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(bag.row(0), &[0.0; 8]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<EmbeddingBag> {
        self.validate()?;
        let mut weights = TableBuffer::zeroed(self.num_embeddings * self.embedding_dim);
        self.init.fill(self.num_embeddings, self.embedding_dim, &mut weights, rng)?;
        if let Some(pad) = self.padding_idx {
            let start = pad as usize * self.embedding_dim;
            weights[start..start + self.embedding_dim].fill(0.0);
        }
        Ok(EmbeddingBag::with_weights(self.clone(), weights))
    }
}

/// What [`EmbeddingBag::backward`] needs from a forward pass. A forward
/// fills a spare one and, when training, swaps it in, so an inference
/// forward never disturbs the trace of the last training forward and both
/// keep their buffers.
#[derive(Debug, Clone, Default)]
struct Trace {
    /// Whether this trace comes from a training forward.
    valid: bool,
    /// All ids, bag after bag.
    ids: Vec<u32>,
    /// `bags + 1` boundaries: bag `b` is `ids[bounds[b]..bounds[b + 1]]`.
    bounds: Vec<usize>,
    /// One weight per id, or empty without per-sample weights.
    per_sample_weights: Vec<f32>,
    /// Per bag, the factor each entry's gradient is multiplied by (before
    /// its own weight): `1`, `1 / n`, `1 / sqrt(n)` or `1 / sqrt(Σ w²)`;
    /// `0` for a bag without entries. Unused by `Max`.
    scales: Vec<f32>,
    /// `Max` only: `[bags, embedding_dim]`, the position in `ids` of the
    /// entry that gave each output value; [`NO_ENTRY`] for a bag without
    /// entries.
    argmax: Vec<usize>,
    /// Forward scratch: per bag, its entries other than padding.
    counts: Vec<u32>,
    /// Forward scratch: per bag, the sum of its squared weights.
    sum_sq: Vec<f32>,
}

/// The arg-max of a bag without entries.
const NO_ENTRY: usize = kernels::bag::NO_ENTRY;

/// A table of `num_embeddings` rows of `embedding_dim` values, looked up in
/// bags: each bag of ids gives one row, the reduction ([`BagMode`]) of its
/// ids' rows.
///
/// Each bag is gathered and reduced straight into its output row; the
/// `[n, embedding_dim]` matrix of looked-up rows is never built. Weighted
/// entries are accumulated with a fused multiply-add, as PyTorch's CPU
/// kernel does, so sums match PyTorch bit for bit (TensorFlow's weighted
/// `sqrtn` rounds the product first and may differ in the last bit). The
/// gradient of the table is a [`RowGrad`]: one summed row per distinct id
/// of the last training forward that received a gradient (padding left
/// out).
///
/// # Examples
///
/// ```
/// use embkit::layers::{BagMode, EmbeddingBag, EmbeddingBagConfig};
/// use ndarray::array;
///
/// // Rows [1, 0], [0, 2] and [4, 4].
/// let table = vec![1.0, 0.0, 0.0, 2.0, 4.0, 4.0];
/// let config = EmbeddingBagConfig::new(3, 2).with_mode(BagMode::Sum);
/// let mut bag = EmbeddingBag::from_config_and_weights(config, table)?;
///
/// // Two bags: ids [0, 1, 1] and [2].
/// let out = bag.forward(&[0, 1, 1, 2], &[0, 3], None, true)?;
/// assert_eq!(out, array![[1.0, 4.0], [4.0, 4.0]]);
///
/// // Each entry of a sum gets its bag's gradient; repeated ids add up.
/// let grad = bag.backward(array![[1.0, 1.0], [0.5, 0.5]].view())?;
/// assert_eq!(grad.ids(), &[0, 1, 2]);
/// assert_eq!(grad.rows(), &[1.0, 1.0, 2.0, 2.0, 0.5, 0.5]);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EmbeddingBag {
    config: EmbeddingBagConfig,
    weights: TableBuffer,
    grad: RowGrad,
    /// The last training forward.
    trace: Trace,
    /// Buffers for the next forward.
    spare: Trace,
    /// Backward scratch: one id and one gradient row per entry.
    entry_ids: Vec<u32>,
    entry_rows: Vec<f32>,
    /// Backward scratch for `Max`: the distinct arg-max positions of a bag.
    positions: Vec<usize>,
    /// Threads of the forward.
    threads: Threads,
}

impl EmbeddingBag {
    fn with_weights(config: EmbeddingBagConfig, weights: TableBuffer) -> Self {
        let grad = RowGrad::new(config.embedding_dim);
        Self {
            config,
            weights,
            grad,
            trace: Trace::default(),
            spare: Trace::default(),
            entry_ids: Vec::new(),
            entry_rows: Vec::new(),
            positions: Vec::new(),
            threads: Threads::single(),
        }
    }

    /// Lets the forward reduce large batches of bags on `threads` threads
    /// (the result does not depend on it). One thread by default.
    pub fn set_threads(&mut self, threads: Threads) {
        self.threads = threads;
    }

    /// A bag table with given (for example pretrained) weights and the
    /// default settings (mean mode, no padding), as PyTorch's
    /// `EmbeddingBag.from_pretrained`. With `freeze` the table is not
    /// trainable. Use
    /// [`from_config_and_weights`](Self::from_config_and_weights) for other
    /// settings.
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
    /// use embkit::layers::EmbeddingBag;
    /// use ndarray::array;
    ///
    /// let mut bag = EmbeddingBag::from_pretrained(array![[1.0, 2.0], [3.0, 6.0]].view(), true)?;
    /// assert_eq!(bag.forward(&[0, 1], &[0], None, false)?, array![[2.0, 4.0]]);
    /// assert!(!bag.config().trainable);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn from_pretrained(weights: ArrayView2<'_, f32>, freeze: bool) -> Result<Self> {
        let (rows, dim) = weights.dim();
        let config =
            EmbeddingBagConfig::new(rows, dim).with_trainable(!freeze).with_init(Init::Zeros);
        Self::from_config_and_weights(config, weights.iter().copied().collect())
    }

    /// A bag table with the given config and row-major weights (pretrained
    /// weights with chosen settings, or a loaded model). The padding row
    /// is kept as given, as PyTorch's `from_pretrained` does; it is left
    /// out of every bag anyway.
    ///
    /// # Shapes
    ///
    /// - `weights`: `num_embeddings * embedding_dim` values, row-major
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid or a value is not
    /// finite; [`Error::ShapeMismatch`] if `weights` does not hold
    /// `num_embeddings * embedding_dim` values.
    pub fn from_config_and_weights(config: EmbeddingBagConfig, weights: Vec<f32>) -> Result<Self> {
        config.validate()?;
        let dim = config.embedding_dim;
        if weights.len() != config.num_embeddings * dim {
            return Err(Error::shape(
                "EmbeddingBag weights",
                format!(
                    "{} values, [{}, {dim}]",
                    config.num_embeddings * dim,
                    config.num_embeddings
                ),
                &[weights.len()],
            ));
        }
        if let Some((i, x)) = weights.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::config(
                "weights",
                format!("value {x} at row {}, column {} is not finite", i / dim, i % dim),
            ));
        }
        Ok(Self::with_weights(config, TableBuffer::from(weights)))
    }

    /// The config the table was built from.
    pub fn config(&self) -> &EmbeddingBagConfig {
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

    /// Reduces bags of ids given as one flat list cut by offsets (PyTorch's
    /// 1-D input): bag `b` is `ids[offsets[b]..offsets[b + 1]]`, the last
    /// bag runs to the end of `ids`. With
    /// [`include_last_offset`](EmbeddingBagConfig::include_last_offset),
    /// the last offset is the end of the last bag and must equal
    /// `ids.len()`, so there are `offsets.len() - 1` bags.
    ///
    /// `per_sample_weights`, one per id, scale each entry's row; only
    /// [`BagMode::Sum`] and [`BagMode::Sqrtn`] take them. With `training`,
    /// keeps what [`backward`](Self::backward) needs; a forward without it
    /// leaves the last training forward's trace alone.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n]`
    /// - `offsets`: `[bags]`, or `[bags + 1]` with `include_last_offset`
    /// - `per_sample_weights`: `[n]`
    /// - returns: `[bags, embedding_dim]`
    ///
    /// # Errors
    ///
    /// Checked in this order, before anything is computed:
    ///
    /// - [`Error::InvalidConfig`] (field `mode`) for per-sample weights in
    ///   mode `mean` or `max`;
    /// - [`Error::ShapeMismatch`] if `offsets` is empty, does not start at
    ///   0, decreases, goes past `ids.len()`, or (with
    ///   `include_last_offset`) does not end at `ids.len()`; or if
    ///   `per_sample_weights` does not have one weight per id;
    /// - [`Error::IdOutOfRange`] for the first id that is not a row of the
    ///   table.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::layers::{BagMode, EmbeddingBagConfig};
    /// use ndarray::array;
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let mut bag = EmbeddingBagConfig::new(10, 3)
    ///     .with_mode(BagMode::Max)
    ///     .init(&mut StdRng::seed_from_u64(0))?;
    /// // Three bags: [1, 2], [] and [4, 5, 9]; the empty bag gives zeros.
    /// let out = bag.forward(&[1, 2, 4, 5, 9], &[0, 2, 2], None, false)?;
    /// assert_eq!(out.dim(), (3, 3));
    /// assert_eq!(out.row(1), array![0.0, 0.0, 0.0]);
    ///
    /// let err = bag.forward(&[1, 2], &[1], None, false).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "shape mismatch in EmbeddingBag offsets: expected a first offset of 0 \
    ///      (the first bag starts at the first id), got [1]"
    /// );
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn forward(
        &mut self,
        ids: &[u32],
        offsets: &[usize],
        per_sample_weights: Option<&[f32]>,
        training: bool,
    ) -> Result<Array2<f32>> {
        self.check_weights_allowed(per_sample_weights.is_some())?;
        check_offsets(ids.len(), offsets, self.config.include_last_offset)?;
        if let Some(w) = per_sample_weights.filter(|w| w.len() != ids.len()) {
            return Err(Error::shape(
                "EmbeddingBag per_sample_weights",
                format!("[{}], one weight per id", ids.len()),
                &[w.len()],
            ));
        }
        self.check_ids(ids.iter())?;

        let spare = &mut self.spare;
        spare.ids.clear();
        spare.ids.extend_from_slice(ids);
        spare.bounds.clear();
        spare.bounds.extend_from_slice(offsets);
        if !self.config.include_last_offset {
            spare.bounds.push(ids.len());
        }
        spare.per_sample_weights.clear();
        spare.per_sample_weights.extend_from_slice(per_sample_weights.unwrap_or_default());
        Ok(self.run(training))
    }

    /// Reduces bags of equal length given as the rows of a 2-D array
    /// (PyTorch's 2-D input): row `b` of `ids` is bag `b`.
    /// [`include_last_offset`](EmbeddingBagConfig::include_last_offset)
    /// does not apply (as in PyTorch). Otherwise as
    /// [`forward`](Self::forward), which it equals with
    /// `offsets = [0, bag_len, 2 * bag_len, ...]`.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[bags, bag_len]`; `bag_len` may be 0 (every bag empty)
    /// - `per_sample_weights`: `[bags, bag_len]`
    /// - returns: `[bags, embedding_dim]`
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] (field `mode`) for per-sample weights in
    /// mode `mean` or `max`; [`Error::ShapeMismatch`] if
    /// `per_sample_weights` does not have the shape of `ids`;
    /// [`Error::IdOutOfRange`] for the first id (row by row) that is not a
    /// row of the table.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::layers::{BagMode, EmbeddingBag, EmbeddingBagConfig};
    /// use ndarray::array;
    ///
    /// let config = EmbeddingBagConfig::new(3, 1).with_mode(BagMode::Sum).with_padding_idx(0)?;
    /// let mut bag = EmbeddingBag::from_config_and_weights(config, vec![100.0, 1.0, 2.0])?;
    ///
    /// // Id 0 is padding: left out of the sum.
    /// let docs = array![[1, 2, 0], [2, 2, 2]];
    /// assert_eq!(bag.forward_fixed(docs.view(), None, false)?, array![[3.0], [6.0]]);
    ///
    /// let weights = array![[0.5, 2.0, 1.0], [1.0, 0.0, -1.0]];
    /// let out = bag.forward_fixed(docs.view(), Some(weights.view()), false)?;
    /// assert_eq!(out, array![[4.5], [0.0]]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn forward_fixed(
        &mut self,
        ids: ArrayView2<'_, u32>,
        per_sample_weights: Option<ArrayView2<'_, f32>>,
        training: bool,
    ) -> Result<Array2<f32>> {
        self.check_weights_allowed(per_sample_weights.is_some())?;
        let (bags, bag_len) = ids.dim();
        if let Some(w) = per_sample_weights.filter(|w| w.dim() != (bags, bag_len)) {
            return Err(Error::shape(
                "EmbeddingBag per_sample_weights",
                format!("[{bags}, {bag_len}], the shape of the ids"),
                w.shape(),
            ));
        }
        self.check_ids(ids.iter())?;

        let spare = &mut self.spare;
        spare.ids.clear();
        spare.ids.extend(ids.iter().copied());
        spare.bounds.clear();
        spare.bounds.extend((0..=bags).map(|b| b * bag_len));
        spare.per_sample_weights.clear();
        if let Some(w) = per_sample_weights {
            spare.per_sample_weights.extend(w.iter().copied());
        }
        Ok(self.run(training))
    }

    /// Computes the table's gradient from the gradient with respect to the
    /// output of the last training forward, as one row per entry summed by
    /// id (see [`RowGrad::from_rows`]). The gradient is kept and returned;
    /// a later call replaces it.
    ///
    /// An entry of bag `b` with weight `w` (1 without per-sample weights)
    /// and `n` entries other than padding in its bag gets:
    ///
    /// - `Sum`: `w · grad_out[b]`;
    /// - `Mean`: `grad_out[b] / n`;
    /// - `Sqrtn`: `grad_out[b] / sqrt(n)`, or with weights
    ///   `w · grad_out[b] / sqrt(Σ w²)`;
    /// - `Max`: for each dimension, `grad_out[b]` goes to the entry that
    ///   gave the maximum: the first entry with the largest value, as
    ///   PyTorch's CPU kernel (it replaces the running maximum only on a
    ///   strictly larger value, so a NaN after the first entry is skipped
    ///   and a NaN first entry stays). Entries that gave no maximum get
    ///   nothing.
    ///
    /// Padding entries and empty bags get nothing: they are not in the
    /// gradient at all.
    ///
    /// # Shapes
    ///
    /// - `grad_out`: `[bags, embedding_dim]`, the shape of the forward
    ///   output
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] without a training forward first;
    /// [`Error::ShapeMismatch`] if `grad_out` does not have the forward
    /// output's shape.
    pub fn backward(&mut self, grad_out: ArrayView2<'_, f32>) -> Result<&RowGrad> {
        let trace = &self.trace;
        if !trace.valid {
            return Err(Error::InvalidState(
                "EmbeddingBag::backward before a training forward".into(),
            ));
        }
        let dim = self.config.embedding_dim;
        let bags = trace.bounds.len() - 1;
        if grad_out.dim() != (bags, dim) {
            return Err(Error::shape(
                "EmbeddingBag gradient",
                format!("[{bags}, {dim}], the shape of the forward output"),
                grad_out.shape(),
            ));
        }
        let padding = self.config.padding_idx;
        let weighted = !trace.per_sample_weights.is_empty();
        self.entry_ids.clear();
        self.entry_rows.clear();
        for (b, g) in grad_out.rows().into_iter().enumerate() {
            let entries = trace.bounds[b]..trace.bounds[b + 1];
            if self.config.mode == BagMode::Max {
                let argmax = &trace.argmax[b * dim..(b + 1) * dim];
                if argmax[0] == NO_ENTRY {
                    continue;
                }
                self.positions.clear();
                self.positions.extend_from_slice(argmax);
                self.positions.sort_unstable();
                self.positions.dedup();
                for &p in &self.positions {
                    self.entry_ids.push(trace.ids[p]);
                    self.entry_rows
                        .extend(argmax.iter().zip(&g).map(|(&a, &x)| if a == p { x } else { 0.0 }));
                }
            } else {
                let scale = trace.scales[b];
                for p in entries {
                    let id = trace.ids[p];
                    if Some(id) == padding {
                        continue;
                    }
                    let factor = if weighted { scale * trace.per_sample_weights[p] } else { scale };
                    self.entry_ids.push(id);
                    self.entry_rows.extend(g.iter().map(|&x| x * factor));
                }
            }
        }
        self.grad.assign_from_rows(&self.entry_ids, &self.entry_rows, dim);
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

    /// The last gradient, mutably, for gradient clipping before a step
    /// (empty for a table that is not trainable, as
    /// [`Embedding::grads_mut`](crate::Embedding::grads_mut)).
    pub fn grads_mut(&mut self) -> Vec<crate::optim::GradMut<'_>> {
        if !self.config.trainable {
            return Vec::new();
        }
        vec![crate::optim::GradMut::Rows(&mut self.grad)]
    }

    /// Applies the last gradient with `optimizer` under the parameter name
    /// `key` ([`Optimizer::step_rows`]): only the rows in the gradient
    /// change. Does nothing for a table that is not
    /// [`trainable`](EmbeddingBagConfig::trainable). The caller ends the
    /// training step with [`Optimizer::finish_step`].
    ///
    /// # Errors
    ///
    /// As [`Optimizer::step_rows`]; nothing changes on an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::layers::{BagMode, EmbeddingBag, EmbeddingBagConfig};
    /// use embkit::{Optimizer, SgdConfig};
    /// use ndarray::array;
    ///
    /// let config = EmbeddingBagConfig::new(3, 1).with_mode(BagMode::Mean);
    /// let mut bag = EmbeddingBag::from_config_and_weights(config, vec![1.0, 2.0, 3.0])?;
    /// let mut sgd = SgdConfig::new().with_learning_rate(0.5).init()?;
    ///
    /// bag.forward(&[0, 2], &[0], None, true)?;
    /// bag.backward(array![[1.0]].view())?;
    /// bag.step(&mut sgd, "bag")?;
    /// sgd.finish_step();
    /// // Each entry of the mean got 1 / 2; SGD moved it by 0.5 · 0.5.
    /// assert_eq!(bag.weights(), &[0.75, 2.0, 2.75]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn step(&mut self, optimizer: &mut dyn Optimizer, key: &str) -> Result<()> {
        if !self.config.trainable {
            return Ok(());
        }
        optimizer.step_rows(key, &mut self.weights, &self.grad)
    }

    fn check_weights_allowed(&self, weighted: bool) -> Result<()> {
        let mode = self.config.mode;
        if weighted && !mode.takes_per_sample_weights() {
            return Err(Error::config(
                "mode",
                format!("per_sample_weights need mode sum or sqrtn, but mode is {mode}"),
            ));
        }
        Ok(())
    }

    fn check_ids<'a>(&self, mut ids: impl Iterator<Item = &'a u32>) -> Result<()> {
        let rows = self.config.num_embeddings;
        match ids.find(|&&id| id as usize >= rows) {
            Some(&id) => Err(Error::IdOutOfRange { id, num_embeddings: rows }),
            None => Ok(()),
        }
    }

    /// Reduces the bags described by `self.spare` (checked by the caller)
    /// into a new output and, when training, makes it the trace.
    fn run(&mut self, training: bool) -> Array2<f32> {
        let bags = self.spare.bounds.len() - 1;
        let mut out = Array2::zeros((bags, self.config.embedding_dim));
        reduce_bags(
            &self.weights,
            &self.config,
            &mut self.spare,
            out.as_slice_mut().expect("a new array is contiguous"),
            self.threads,
        );
        if training {
            std::mem::swap(&mut self.trace, &mut self.spare);
            self.trace.valid = true;
        }
        out
    }
}

/// Checks PyTorch's rules for offsets, and the stricter ones: no decrease,
/// and with `include_last_offset` an exact end.
fn check_offsets(num_ids: usize, offsets: &[usize], include_last_offset: bool) -> Result<()> {
    const WHAT: &str = "EmbeddingBag offsets";
    let Some(&first) = offsets.first() else {
        return Err(Error::shape(WHAT, "at least one offset, the start of the first bag", &[]));
    };
    if first != 0 {
        return Err(Error::shape(
            WHAT,
            "a first offset of 0 (the first bag starts at the first id)",
            &[first],
        ));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::shape(
            WHAT,
            format!("offsets that never decrease, but offsets[{}] < offsets[{i}]", i + 1),
            &offsets[i..i + 2],
        ));
    }
    let last = offsets[offsets.len() - 1];
    if last > num_ids {
        return Err(Error::shape(
            WHAT,
            format!("offsets of at most {num_ids}, the number of ids"),
            &[last],
        ));
    }
    if include_last_offset && last != num_ids {
        return Err(Error::shape(
            WHAT,
            format!("a last offset of {num_ids}, the number of ids (include_last_offset is set)"),
            &[last],
        ));
    }
    Ok(())
}

/// The fused forward: gathers and reduces each bag of `trace` straight
/// into its row of `out`, and records the per-bag scales (or, for `Max`,
/// the arg-max positions) for the backward pass.
fn reduce_bags(
    table: &[f32],
    config: &EmbeddingBagConfig,
    trace: &mut Trace,
    out: &mut [f32],
    threads: Threads,
) {
    let bags = kernels::bag::Bags {
        table,
        dim: config.embedding_dim,
        ids: &trace.ids,
        bounds: &trace.bounds,
        weights: &trace.per_sample_weights,
        padding: config.padding_idx,
    };
    let n = trace.bounds.len() - 1;
    trace.scales.clear();
    trace.argmax.clear();
    if config.mode == BagMode::Max {
        trace.argmax.resize(out.len(), NO_ENTRY);
        kernels::bag::bag_max(bags, out, &mut trace.argmax, threads);
        return;
    }
    trace.counts.clear();
    trace.counts.resize(n, 0);
    trace.sum_sq.clear();
    trace.sum_sq.resize(n, 0.0);
    kernels::bag::bag_sum(bags, out, &mut trace.counts, &mut trace.sum_sq, threads);
    let weighted = !trace.per_sample_weights.is_empty();
    let dim = config.embedding_dim;
    for ((acc, &count), &sum_sq) in out.chunks_exact_mut(dim).zip(&trace.counts).zip(&trace.sum_sq)
    {
        let divisor = match config.mode {
            BagMode::Sum => 1.0,
            BagMode::Mean => count as f32,
            BagMode::Sqrtn if weighted => sum_sq.sqrt(),
            BagMode::Sqrtn => (count as f32).sqrt(),
            BagMode::Max => unreachable!("max bags are reduced above"),
        };
        if count == 0 || divisor == 0.0 {
            // No entries, or sqrtn weights that are all 0 (TensorFlow's
            // `div_no_nan`): a row of zeros that passes no gradient back.
            acc.fill(0.0);
            trace.scales.push(0.0);
        } else {
            if divisor != 1.0 {
                acc.iter_mut().for_each(|a| *a /= divisor);
            }
            trace.scales.push(1.0 / divisor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::{rngs::StdRng, SeedableRng};

    fn table(mode: BagMode) -> EmbeddingBag {
        let config = EmbeddingBagConfig::new(3, 2).with_mode(mode);
        EmbeddingBag::from_config_and_weights(config, vec![1.0, -1.0, 2.0, 0.0, 3.0, 4.0]).unwrap()
    }

    #[test]
    fn bag_modes_parse_from_pytorch_and_keras_names() {
        for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max, BagMode::Sqrtn] {
            assert_eq!(mode.name().parse::<BagMode>().unwrap(), mode);
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{mode}\""));
            assert_eq!(serde_json::from_str::<BagMode>(&json).unwrap(), mode);
        }
        let err = "Mean".parse::<BagMode>().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "mode", .. }), "{err}");
    }

    #[test]
    fn default_config_follows_pytorch() {
        let config = EmbeddingBagConfig::new(10, 4);
        assert_eq!(config.mode, BagMode::Mean);
        assert_eq!(config.init, Init::Normal { std: 1.0 });
        assert!(config.trainable && !config.include_last_offset);
        assert_eq!(config.padding_idx, None);
    }

    #[test]
    fn negative_padding_idx_counts_from_the_end() {
        let config = EmbeddingBagConfig::new(4, 2);
        assert_eq!(config.clone().with_padding_idx(-4).unwrap().padding_idx, Some(0));
        assert_eq!(config.clone().with_padding_idx(3).unwrap().padding_idx, Some(3));
        for bad in [-5, 4, i64::MIN, i64::MAX] {
            let err = config.clone().with_padding_idx(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid padding_idx: must be in [-4, 4) for a table of 4 rows, got {bad}")
            );
        }
    }

    #[test]
    fn validate_rejects_a_padding_idx_set_past_the_table() {
        let mut config = EmbeddingBagConfig::new(4, 2);
        config.padding_idx = Some(4);
        let err = config.init(&mut StdRng::seed_from_u64(0)).unwrap_err();
        assert_eq!(err.to_string(), "invalid padding_idx: is 4, but the table has 4 rows");
    }

    #[test]
    fn padding_row_starts_at_zero() {
        let bag = EmbeddingBagConfig::new(5, 3)
            .with_padding_idx(-2)
            .unwrap()
            .init(&mut StdRng::seed_from_u64(1))
            .unwrap();
        assert_eq!(bag.row(3), &[0.0; 3]);
        assert!(bag.row(4).iter().any(|&x| x != 0.0));
    }

    #[test]
    fn inference_forward_keeps_the_training_trace() {
        let mut bag = table(BagMode::Sum);
        bag.forward(&[0, 1], &[0], None, true).unwrap();
        bag.forward(&[2, 2, 2], &[0, 1, 2], None, false).unwrap();
        let g = bag.backward(array![[1.0, 2.0]].view()).unwrap();
        assert_eq!(g.ids(), &[0, 1]);
        assert_eq!(g.rows(), &[1.0, 2.0, 1.0, 2.0]);
    }

    #[test]
    fn backward_before_a_training_forward_is_refused() {
        let mut bag = table(BagMode::Mean);
        bag.forward(&[0], &[0], None, false).unwrap();
        let err = bag.backward(array![[1.0, 1.0]].view()).unwrap_err();
        assert!(matches!(err, Error::InvalidState(_)), "{err}");
    }

    #[test]
    fn max_backward_leaves_out_entries_that_gave_no_maximum() {
        // Rows: 0 = [1, -1], 1 = [2, 0], 2 = [3, 4]; bag [0, 1, 0]: max [2, 0]
        // both from id 1; id 0 gets nothing and is not in the gradient.
        let mut bag = table(BagMode::Max);
        let out = bag.forward(&[0, 1, 0], &[0], None, true).unwrap();
        assert_eq!(out, array![[2.0, 0.0]]);
        let g = bag.backward(array![[5.0, 7.0]].view()).unwrap();
        assert_eq!(g.ids(), &[1]);
        assert_eq!(g.rows(), &[5.0, 7.0]);
    }

    #[test]
    fn frozen_table_does_not_step() {
        let config = EmbeddingBagConfig::new(3, 2).with_trainable(false);
        let mut bag =
            EmbeddingBag::from_config_and_weights(config, vec![1.0, -1.0, 2.0, 0.0, 3.0, 4.0])
                .unwrap();
        bag.forward(&[0], &[0], None, true).unwrap();
        bag.backward(array![[1.0, 1.0]].view()).unwrap();
        let mut sgd = crate::SgdConfig::new().init().unwrap();
        bag.step(&mut sgd, "bag").unwrap();
        assert_eq!(bag.weights(), &[1.0, -1.0, 2.0, 0.0, 3.0, 4.0]);
    }
}
