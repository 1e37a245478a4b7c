//! The embedding layer: a table with one learned row per id, with the
//! options of PyTorch's `nn.Embedding` (`padding_idx`, `max_norm`,
//! `scale_grad_by_freq`) and Keras 3's `Embedding` (`mask_zero`, a
//! regulariser, a constraint, LoRA).

use ndarray::{Array, Array2, ArrayD, ArrayView, ArrayView2, Dimension, IxDyn};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Constraint, Regularizer};
use crate::grad::GatherGrad;
use crate::kernels::buffer::TableBuffer;
use crate::optim::GradMut;
use crate::threads::MIN_FLOATS_PER_THREAD;
use crate::{kernels, Error, Init, Optimizer, Result, RowGrad, Threads};

/// Settings for an [`Embedding`].
///
/// Start from [`EmbeddingConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](EmbeddingConfig::init). A config
/// is plain data and is saved with the weights, so a loaded model knows
/// how it was built. Every option is off by default. Options left at
/// their default are not written when a config is serialised, and fields
/// missing from a serialised config take their default, so a table
/// without options saves exactly as before the options existed, and
/// older configs still load.
///
/// | option | reference | what it does |
/// | --- | --- | --- |
/// | [`padding_idx`](Self::padding_idx) | PyTorch | a row that starts at zero and gets no gradient |
/// | [`mask_zero`](Self::mask_zero) | Keras | id 0 is padding: [`Embedding::compute_mask`] |
/// | [`max_norm`](Self::max_norm), [`norm_type`](Self::norm_type) | PyTorch | looked-up rows are renormalised in place |
/// | [`scale_grad_by_freq`](Self::scale_grad_by_freq) | PyTorch | gradient rows divided by the id's count in the batch |
/// | [`regularizer`](Self::regularizer) | Keras | a weight penalty, applied to the rows of the batch |
/// | [`constraint`](Self::constraint) | Keras | a projection after each optimizer step |
/// | [`lora`](Self::lora) | Keras | a frozen table plus a trained low-rank update |
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
    /// `trainable=False`, PyTorch `freeze=True`): [`Embedding::step`]
    /// then changes nothing, LoRA factors included, and no penalty is
    /// computed.
    pub trainable: bool,
    /// PyTorch's `padding_idx`: a row that [`init`](Self::init) sets to
    /// zero and that never receives a gradient. Positions holding this id
    /// are left out of every gradient, so lazy optimizers never move the
    /// row; as in PyTorch, optimizers that change rows without a gradient
    /// in the dense and Keras table modes (AdamW's weight decay, FTRL) and
    /// table constraints can still change it;
    /// [`forward`](Embedding::forward) still returns whatever the row
    /// holds (a pretrained row is kept, as PyTorch's `from_pretrained`
    /// does). [`with_padding_idx`](Self::with_padding_idx) stores it
    /// normalised (`0..num_embeddings`); a negative value, counted from
    /// the end as in PyTorch, is accepted in a serialised config too.
    /// Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_idx: Option<i64>,
    /// Keras's `mask_zero`: id 0 is padding, and
    /// [`Embedding::compute_mask`] returns `id != 0`. Nothing else
    /// changes (Keras only attaches the mask; the output is not zeroed).
    /// Id 0 is then reserved, so `num_embeddings` must be the vocabulary
    /// size + 1, and at least 2. Default `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mask_zero: bool,
    /// PyTorch's `max_norm`: before each lookup, every distinct looked-up
    /// row whose `norm_type`-norm is above this is scaled in place to
    /// norm `max_norm` (see [`Embedding::forward_into`]). Greater than 0.
    /// Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_norm: Option<f32>,
    /// The `p` of the `p`-norm [`max_norm`](Self::max_norm) bounds:
    /// `(Σ |x|^p)^(1/p)`; `f32::INFINITY` for `max |x|`. Greater than 0.
    /// Default 2 (PyTorch's default).
    #[serde(
        default = "default_norm_type",
        skip_serializing_if = "is_default_norm_type",
        with = "norm_type_serde"
    )]
    pub norm_type: f32,
    /// PyTorch's `scale_grad_by_freq`: each gradient row is divided by the
    /// number of times its id occurs in the batch. PyTorch refuses it with
    /// `sparse=True`; for a [`RowGrad`] it is well defined. Default
    /// `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub scale_grad_by_freq: bool,
    /// Keras's `embeddings_regularizer`, applied lazily: see
    /// [`Embedding::regularization_loss`] for what matches Keras and what
    /// does not. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regularizer: Option<Regularizer>,
    /// Keras's `embeddings_constraint`, applied to the whole table after
    /// each [`Embedding::step`]. Mind the axis: Keras's default, 0, takes
    /// the norms of the *columns* (see [`Constraint`]). Not allowed with
    /// [`lora`](Self::lora) (Keras refuses it too). Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
    /// Keras's LoRA (`Embedding.enable_lora`): the table is frozen and a
    /// low-rank update `(alpha / rank) · A · B` is trained instead. Not
    /// allowed with [`constraint`](Self::constraint) (as in Keras) or
    /// [`max_norm`](Self::max_norm) (renormalising a sum of a frozen table
    /// and a product in place is not defined). Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraConfig>,
}

fn default_norm_type() -> f32 {
    2.0
}

fn is_default_norm_type(norm_type: &f32) -> bool {
    *norm_type == default_norm_type()
}

fn is_false(flag: &bool) -> bool {
    !flag
}

/// `norm_type` in JSON: a number, or `"inf"` for infinity, which JSON
/// numbers cannot hold.
mod norm_type_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &f32, s: S) -> Result<S::Ok, S::Error> {
        if *p == f32::INFINITY {
            s.serialize_str("inf")
        } else {
            s.serialize_f32(*p)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NormType {
            Number(f32),
            Name(String),
        }
        match NormType::deserialize(d)? {
            NormType::Number(p) => Ok(p),
            NormType::Name(name) if name == "inf" || name == "infinity" => Ok(f32::INFINITY),
            NormType::Name(name) => Err(D::Error::custom(format!(
                "norm_type must be a number or \"inf\", got {name:?}"
            ))),
        }
    }
}

/// The rank and scale of a LoRA update, as Keras 3's
/// `Embedding.enable_lora(rank, lora_alpha)`.
///
/// The effective row of id `i` is `base[i] + (alpha / rank) · (A[i] · B)`
/// with `A` of shape `[num_embeddings, rank]` (Keras's `he_uniform`) and
/// `B` of shape `[rank, embedding_dim]` (zeros), so training starts from
/// the base table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoraConfig {
    /// The inner dimension of `A · B`; at least 1.
    pub rank: usize,
    /// The numerator of the scale `alpha / rank`; finite. Keras's default
    /// is `rank`, a scale of 1.
    pub alpha: f32,
}

impl LoraConfig {
    /// A LoRA update of `rank`; `alpha` defaults to `rank`, as in Keras.
    pub fn new(rank: usize, alpha: Option<f32>) -> Self {
        Self { rank, alpha: alpha.unwrap_or(rank as f32) }
    }

    /// `alpha / rank`, computed in `f64` and rounded, as Keras computes
    /// it in Python.
    pub fn scale(&self) -> f32 {
        (self.alpha as f64 / self.rank as f64) as f32
    }

    fn validate(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(Error::config("lora", "rank must be at least 1, got 0"));
        }
        if !self.alpha.is_finite() {
            return Err(Error::config("lora", format!("alpha must be finite, got {}", self.alpha)));
        }
        Ok(())
    }
}

impl EmbeddingConfig {
    /// A config with the two required sizes; everything else at its
    /// default (Keras's uniform initialiser, trainable, no option on).
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Self {
        Self {
            num_embeddings,
            embedding_dim,
            init: Init::Uniform { bound: 0.05 },
            trainable: true,
            padding_idx: None,
            mask_zero: false,
            max_norm: None,
            norm_type: default_norm_type(),
            scale_grad_by_freq: false,
            regularizer: None,
            constraint: None,
            lora: None,
        }
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

    /// Sets [`padding_idx`](Self::padding_idx), as PyTorch: a negative
    /// `idx` counts from the end (`-1` is the last row) and is stored as
    /// the row it names. A value outside `-num_embeddings..num_embeddings`
    /// is kept as it is, and [`validate`](Self::validate) refuses it.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::EmbeddingConfig;
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let config = EmbeddingConfig::new(10, 3).with_padding_idx(-1);
    /// assert_eq!(config.padding_idx, Some(9));
    /// let table = config.init(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(table.row(9), &[0.0, 0.0, 0.0]);
    ///
    /// let err = EmbeddingConfig::new(10, 3).with_padding_idx(10).validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid padding_idx: must be in -10..10 (negative counts from the end), got 10"
    /// );
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn with_padding_idx(mut self, idx: i64) -> Self {
        let rows = i64::try_from(self.num_embeddings).unwrap_or(i64::MAX);
        self.padding_idx = Some(if (-rows..0).contains(&idx) { idx + rows } else { idx });
        self
    }

    /// Sets [`mask_zero`](Self::mask_zero).
    pub fn with_mask_zero(mut self, mask_zero: bool) -> Self {
        self.mask_zero = mask_zero;
        self
    }

    /// Sets [`max_norm`](Self::max_norm).
    pub fn with_max_norm(mut self, max_norm: f32) -> Self {
        self.max_norm = Some(max_norm);
        self
    }

    /// Sets [`norm_type`](Self::norm_type).
    pub fn with_norm_type(mut self, norm_type: f32) -> Self {
        self.norm_type = norm_type;
        self
    }

    /// Sets [`scale_grad_by_freq`](Self::scale_grad_by_freq).
    pub fn with_scale_grad_by_freq(mut self, scale_grad_by_freq: bool) -> Self {
        self.scale_grad_by_freq = scale_grad_by_freq;
        self
    }

    /// Sets [`regularizer`](Self::regularizer).
    pub fn with_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.regularizer = Some(regularizer);
        self
    }

    /// Sets [`constraint`](Self::constraint).
    pub fn with_constraint(mut self, constraint: Constraint) -> Self {
        self.constraint = Some(constraint);
        self
    }

    /// Sets [`lora`](Self::lora) to a LoRA update of `rank`, scaled by
    /// `alpha / rank`; `alpha` defaults to `rank`, as Keras's
    /// `lora_alpha`.
    pub fn with_lora(mut self, rank: usize, alpha: Option<f32>) -> Self {
        self.lora = Some(LoraConfig::new(rank, alpha));
        self
    }

    /// The padding row, normalised to `0..num_embeddings`, if
    /// [`padding_idx`](Self::padding_idx) is set and valid.
    pub fn padding_row(&self) -> Option<u32> {
        let idx = self.padding_idx?;
        let rows = i64::try_from(self.num_embeddings).ok()?;
        let row = if idx < 0 { idx + rows } else { idx };
        (0..rows).contains(&row).then_some(row as u32)
    }

    /// Checks every setting, in field order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field, the rule and the value:
    /// a size of 0 or a table that does not fit `u32` ids; invalid
    /// initialiser parameters; `padding_idx` outside
    /// `-num_embeddings..num_embeddings`; `mask_zero` with fewer than 2
    /// rows; `max_norm` not greater than 0 (or NaN); `norm_type` not
    /// greater than 0; a negative or non-finite regulariser factor; an
    /// invalid constraint; a LoRA rank of 0, a non-finite alpha, or LoRA
    /// combined with a constraint or `max_norm`.
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
        if let Some(idx) = self.padding_idx {
            if self.padding_row().is_none() {
                let n = self.num_embeddings;
                return Err(Error::config(
                    "padding_idx",
                    format!("must be in -{n}..{n} (negative counts from the end), got {idx}"),
                ));
            }
        }
        if self.mask_zero && self.num_embeddings < 2 {
            return Err(Error::config(
                "mask_zero",
                format!(
                    "reserves id 0, so num_embeddings (vocabulary size + 1) must be at least 2, \
                     got {}",
                    self.num_embeddings
                ),
            ));
        }
        if let Some(max_norm) = self.max_norm {
            if max_norm.is_nan() || max_norm <= 0.0 {
                return Err(Error::config(
                    "max_norm",
                    format!("must be greater than 0, got {max_norm}"),
                ));
            }
        }
        if self.norm_type.is_nan() || self.norm_type <= 0.0 {
            return Err(Error::config(
                "norm_type",
                format!("must be greater than 0 (or infinity), got {}", self.norm_type),
            ));
        }
        if let Some(regularizer) = &self.regularizer {
            regularizer.validate()?;
        }
        if let Some(constraint) = &self.constraint {
            constraint.validate()?;
        }
        if let Some(lora) = &self.lora {
            lora.validate()?;
            if self.constraint.is_some() {
                return Err(Error::config(
                    "lora",
                    "cannot be combined with a constraint (Keras refuses it too)",
                ));
            }
            if self.max_norm.is_some() {
                return Err(Error::config(
                    "lora",
                    "cannot be combined with max_norm: the rows are a sum, not renormalisable \
                     in place",
                ));
            }
        }
        Ok(())
    }

    /// Validates the config and draws the table: the base rows from
    /// [`init`](Self::init), the padding row set to zero, then, with
    /// [`lora`](Self::lora), the factor `A` from Keras's `he_uniform`
    /// (uniform on `±sqrt(6 / num_embeddings)`; Keras's `fan_in` of a
    /// `[num_embeddings, rank]` matrix is `num_embeddings`), with the
    /// padding row of `A` set to zero, and `B` all zeros.
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
        let mut weights = TableBuffer::zeroed(self.num_embeddings * self.embedding_dim);
        self.init.fill(self.num_embeddings, self.embedding_dim, &mut weights, rng)?;
        let dim = self.embedding_dim;
        if let Some(pad) = self.padding_row() {
            weights[pad as usize * dim..(pad as usize + 1) * dim].fill(0.0);
        }
        let mut table = Embedding::with_weights(self.clone(), weights);
        if let Some(lora) = self.lora {
            table.lora = Some(Lora::init(self, lora, rng)?);
        }
        Ok(table)
    }
}

/// The LoRA factors of a table and their gradients.
#[derive(Debug, Clone)]
struct Lora {
    rank: usize,
    scale: f32,
    /// `[num_embeddings, rank]`, row-major.
    a: Vec<f32>,
    /// `[rank, embedding_dim]`, row-major.
    b: Vec<f32>,
    /// The gradient of `A`: one row per distinct id of the batch.
    grad_a: RowGrad,
    /// The gradient of `B`, dense.
    grad_b: Vec<f32>,
    /// Scratch: the gradient with respect to the effective rows.
    table_grad: RowGrad,
    /// Scratch: the rows of `grad_a` before they become a `RowGrad`.
    rows_a: Vec<f32>,
    /// Scratch: one scaled gradient row.
    scaled: Vec<f32>,
}

impl Lora {
    fn new(config: &EmbeddingConfig, lora: LoraConfig, a: Vec<f32>, b: Vec<f32>) -> Self {
        Self {
            rank: lora.rank,
            scale: lora.scale(),
            a,
            b,
            grad_a: RowGrad::new(lora.rank),
            grad_b: vec![0.0; lora.rank * config.embedding_dim],
            table_grad: RowGrad::new(config.embedding_dim),
            rows_a: Vec::new(),
            scaled: Vec::new(),
        }
    }

    /// Draws `A` (Keras's `he_uniform`, padding row zero) and sets `B` to
    /// zeros.
    fn init<R: Rng + ?Sized>(
        config: &EmbeddingConfig,
        lora: LoraConfig,
        rng: &mut R,
    ) -> Result<Self> {
        // Keras: scale = 2 / max(1, fan_in); limit = sqrt(3 * scale), in f64.
        let fan_in = (config.num_embeddings as f64).max(1.0);
        let bound = (3.0 * (2.0 / fan_in)).sqrt() as f32;
        let mut a = Init::Uniform { bound }.sample(config.num_embeddings, lora.rank, rng)?;
        if let Some(pad) = config.padding_row() {
            a[pad as usize * lora.rank..(pad as usize + 1) * lora.rank].fill(0.0);
        }
        let b = vec![0.0; lora.rank * config.embedding_dim];
        Ok(Self::new(config, lora, a, b))
    }

    /// Writes the effective row of `id`, `base + scale · (A[id] · B)`,
    /// to the end of `out`, with Keras's order of operations.
    fn push_row(&self, id: u32, base: &[f32], out: &mut Vec<f32>) {
        let dim = base.len();
        let a = &self.a[id as usize * self.rank..(id as usize + 1) * self.rank];
        for (j, &w) in base.iter().enumerate() {
            // A fused multiply-add per term, as TensorFlow's matmul.
            let mut ab = 0.0f32;
            for (r, &a_r) in a.iter().enumerate() {
                ab = a_r.mul_add(self.b[r * dim + j], ab);
            }
            out.push(w + self.scale * ab);
        }
    }

    /// From the gradient with respect to the effective rows
    /// (`table_grad`), computes `dM = scale · G`, `dA[i] = dM[i] · Bᵀ` per
    /// distinct id and `dB = Σ A[i]ᵀ · dM[i]`.
    fn backward(&mut self, dim: usize) {
        let rank = self.rank;
        self.grad_b.fill(0.0);
        self.rows_a.clear();
        for (id, g) in self.table_grad.iter() {
            self.scaled.clear();
            self.scaled.extend(g.iter().map(|&x| self.scale * x));
            let a = &self.a[id as usize * rank..(id as usize + 1) * rank];
            for (r, &a_r) in a.iter().enumerate() {
                let b_r = &self.b[r * dim..(r + 1) * dim];
                self.rows_a
                    .push(self.scaled.iter().zip(b_r).fold(0.0, |acc, (&m, &b)| m.mul_add(b, acc)));
                let db_r = &mut self.grad_b[r * dim..(r + 1) * dim];
                for (db, &m) in db_r.iter_mut().zip(&self.scaled) {
                    *db = a_r.mul_add(m, *db);
                }
            }
        }
        // One entry per id: as in Keras, where A's gradient is dense, the
        // squares are those of the summed rows.
        self.grad_a.assign_from_rows(self.table_grad.ids(), &self.rows_a, rank);
    }

    /// Adds the penalty's gradient to the rows of `A` in `grad_a` and to
    /// all of `B`; returns the penalty of those rows and of `B`.
    fn regularize(&mut self, regularizer: &Regularizer) -> f32 {
        let rank = self.rank;
        let ids = self.table_grad.ids();
        for (k, &id) in ids.iter().enumerate() {
            let a = &self.a[id as usize * rank..(id as usize + 1) * rank];
            regularizer.add_gradient(a, &mut self.grad_a.rows_mut()[k * rank..(k + 1) * rank]);
        }
        regularizer.add_gradient(&self.b, &mut self.grad_b);
        // A's gradient is dense in Keras: its accumulators square the rows.
        self.grad_a.square_summed_rows();
        // Keras adds the penalties of its two variables.
        let a_rows =
            ids.iter().flat_map(|&id| &self.a[id as usize * rank..(id as usize + 1) * rank]);
        regularizer.penalty_of(a_rows.copied()) + regularizer.penalty(&self.b)
    }

    fn gradients_are_finite(&self) -> bool {
        self.grad_a.rows().iter().chain(&self.grad_b).all(|x| x.is_finite())
    }
}

/// A table of `num_embeddings` rows of `embedding_dim` values: looking up
/// id `i` returns row `i`.
///
/// The lookup is the product `one_hot(ids) · W`, computed as a row copy
/// (constant time per id), never as a matrix product. Its gradient is a
/// [`RowGrad`]: one summed row per distinct id in the batch.
///
/// A training step is [`forward_into`](Self::forward_into) (or
/// [`forward`](Self::forward)), [`backward`](Self::backward), then
/// [`step`](Self::step), which applies every update the options call for;
/// the caller ends the step with [`Optimizer::finish_step`].
#[derive(Debug, Clone)]
pub struct Embedding {
    config: EmbeddingConfig,
    /// The table (with LoRA: the frozen base table), row-major.
    weights: TableBuffer,
    /// The gradient of `weights` (empty with LoRA).
    grad: RowGrad,
    /// Scratch: sorted ids or positions.
    order: Vec<u32>,
    /// Scratch: the ids of a batch without its padding positions.
    kept_ids: Vec<u32>,
    /// Scratch: the gradient rows of `kept_ids`.
    kept_grads: Vec<f32>,
    /// Scratch: the sorted ids of a [`backward_step`](Self::backward_step).
    fused: RowGrad,
    lora: Option<Lora>,
    /// The penalty of the rows of the last backward.
    regularization_loss: f32,
    /// Threads of the gather and the backward.
    threads: Threads,
}

impl Embedding {
    fn with_weights(config: EmbeddingConfig, weights: TableBuffer) -> Self {
        let grad = RowGrad::new(config.embedding_dim);
        Self {
            config,
            weights,
            grad,
            order: Vec::new(),
            kept_ids: Vec::new(),
            kept_grads: Vec::new(),
            fused: RowGrad::default(),
            lora: None,
            regularization_loss: 0.0,
            threads: Threads::single(),
        }
    }

    /// Lets [`forward_into`](Self::forward_into),
    /// [`backward`](Self::backward) and the checks of
    /// [`backward_step`](Self::backward_step) use `threads` threads on large
    /// batches (the results do not depend on it). One thread by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{EmbeddingConfig, Threads};
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let mut table = EmbeddingConfig::new(1000, 64).init(&mut StdRng::seed_from_u64(0))?;
    /// table.set_threads(Threads::new(2)?);
    /// assert_eq!(table.threads().get(), 2);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn set_threads(&mut self, threads: Threads) {
        self.threads = threads;
    }

    /// The threads of [`set_threads`](Self::set_threads).
    pub fn threads(&self) -> Threads {
        self.threads
    }

    /// A table with given (for example pretrained) weights, as PyTorch's
    /// `Embedding.from_pretrained`. With `freeze` the table is not
    /// trainable. For other options (`padding_idx`, `max_norm` ...) use
    /// [`from_pretrained_with`](Self::from_pretrained_with).
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
        let config = EmbeddingConfig::new(rows, dim).with_init(Init::Zeros).with_trainable(!freeze);
        Self::from_pretrained_with(weights, config)
    }

    /// A table with given weights and any options, as PyTorch's
    /// `Embedding.from_pretrained(weights, freeze, padding_idx, max_norm,
    /// norm_type, scale_grad_by_freq)`: `config.trainable` plays the part
    /// of `!freeze`. The rows are kept as given, **the padding row
    /// included** (PyTorch does not zero it here either).
    ///
    /// # Shapes
    ///
    /// - `weights`: `[config.num_embeddings, config.embedding_dim]`
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `weights` is not of the config's shape;
    /// [`Error::InvalidConfig`] for an invalid config, a config with LoRA
    /// (call [`enable_lora`](Self::enable_lora) on the result instead), or
    /// a non-finite value.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{Embedding, EmbeddingConfig};
    /// use ndarray::array;
    ///
    /// let m = array![[0.5, 0.5], [1.0, 2.0], [2.0, 2.0]];
    /// let config = EmbeddingConfig::new(3, 2).with_padding_idx(0).with_trainable(false);
    /// let table = Embedding::from_pretrained_with(m.view(), config)?;
    /// assert_eq!(table.row(0), &[0.5, 0.5]); // kept, as PyTorch
    /// assert_eq!(table.config().padding_idx, Some(0));
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn from_pretrained_with(
        weights: ArrayView2<'_, f32>,
        config: EmbeddingConfig,
    ) -> Result<Self> {
        let (rows, dim) = weights.dim();
        if (rows, dim) != (config.num_embeddings, config.embedding_dim) {
            return Err(Error::shape(
                "pretrained weights",
                format!("[{}, {}]", config.num_embeddings, config.embedding_dim),
                &[rows, dim],
            ));
        }
        config.validate()?;
        if config.lora.is_some() {
            return Err(Error::config(
                "lora",
                "pretrained weights are the base table: build without lora, then call \
                 Embedding::enable_lora",
            ));
        }
        if let Some((i, x)) = weights.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::config(
                "weights",
                format!("value {x} at row {}, column {} is not finite", i / dim, i % dim),
            ));
        }
        Ok(Self::with_weights(
            config,
            TableBuffer::from_values(weights.iter().copied(), rows * dim),
        ))
    }

    /// Rebuilds a table from its config and its row-major weights (used by
    /// loading). The rows are kept as given, the padding row included.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid or has LoRA (use
    /// [`from_lora_parts`](Self::from_lora_parts));
    /// [`Error::ShapeMismatch`] if `weights` does not hold
    /// `num_embeddings * embedding_dim` values.
    pub fn from_config_and_weights(config: EmbeddingConfig, weights: Vec<f32>) -> Result<Self> {
        config.validate()?;
        if config.lora.is_some() {
            return Err(Error::config(
                "lora",
                "a LoRA table needs its factors: use Embedding::from_lora_parts",
            ));
        }
        check_len("embedding weights", &weights, config.num_embeddings, config.embedding_dim)?;
        Ok(Self::with_weights(config, TableBuffer::from(weights)))
    }

    /// Rebuilds a LoRA table from its config, its base table and its two
    /// factors (used by loading; see [`lora_a`](Self::lora_a),
    /// [`lora_b`](Self::lora_b)).
    ///
    /// # Shapes
    ///
    /// - `base`: `[num_embeddings, embedding_dim]`, row-major
    /// - `a`: `[num_embeddings, rank]`, row-major
    /// - `b`: `[rank, embedding_dim]`, row-major
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid or has no LoRA;
    /// [`Error::ShapeMismatch`] for a matrix of the wrong length.
    pub fn from_lora_parts(
        config: EmbeddingConfig,
        base: Vec<f32>,
        a: Vec<f32>,
        b: Vec<f32>,
    ) -> Result<Self> {
        config.validate()?;
        let Some(lora) = config.lora else {
            return Err(Error::config(
                "lora",
                "is not set: use Embedding::from_config_and_weights",
            ));
        };
        let (rows, dim) = (config.num_embeddings, config.embedding_dim);
        check_len("embedding weights", &base, rows, dim)?;
        check_len("lora_a", &a, rows, lora.rank)?;
        check_len("lora_b", &b, lora.rank, dim)?;
        let lora = Lora::new(&config, lora, a, b);
        let mut table = Self::with_weights(config, TableBuffer::from(base));
        table.lora = Some(lora);
        Ok(table)
    }

    /// Turns LoRA on for this table, as Keras's
    /// `Embedding.enable_lora(rank, lora_alpha)`: the current rows become
    /// the frozen base, `A` is drawn from `he_uniform` (padding row zero)
    /// and `B` starts at zero, so the output does not change until
    /// training moves `B`. The config records the LoRA settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if LoRA is already on (Keras refuses that
    /// too), `rank` is 0, `alpha` is not finite, or the config has a
    /// constraint or `max_norm`. The table is unchanged on an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::Embedding;
    /// use ndarray::{aview1, array};
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let mut table = Embedding::from_pretrained(array![[1.0, 2.0], [3.0, 4.0]].view(), false)?;
    /// table.enable_lora(1, None, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(table.lora_a().map(<[f32]>::len), Some(2));
    /// assert_eq!(table.lora_b(), Some(&[0.0, 0.0][..]));
    /// assert_eq!(table.forward(aview1(&[1]))?.into_raw_vec_and_offset().0, vec![3.0, 4.0]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn enable_lora<R: Rng + ?Sized>(
        &mut self,
        rank: usize,
        alpha: Option<f32>,
        rng: &mut R,
    ) -> Result<()> {
        if self.lora.is_some() {
            return Err(Error::config("lora", "is already enabled; it can be enabled only once"));
        }
        let mut config = self.config.clone();
        config.lora = Some(LoraConfig::new(rank, alpha));
        config.validate()?;
        let lora = Lora::init(&config, LoraConfig::new(rank, alpha), rng)?;
        self.config = config;
        self.lora = Some(lora);
        self.grad = RowGrad::new(self.config.embedding_dim);
        Ok(())
    }

    /// A plain table whose rows are this table's effective rows,
    /// `base + (alpha / rank) · A · B`, with LoRA removed from the config
    /// (Keras merges the same way when it saves a LoRA layer). Without
    /// LoRA, a copy of the table.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{Embedding, EmbeddingConfig};
    ///
    /// let config = EmbeddingConfig::new(2, 2).with_lora(1, Some(2.0));
    /// // scale = alpha / rank = 2; A = [[1], [0.5]], B = [[0.25, -1]]
    /// let table = Embedding::from_lora_parts(
    ///     config,
    ///     vec![1.0, 1.0, 0.0, 0.0],
    ///     vec![1.0, 0.5],
    ///     vec![0.25, -1.0],
    /// )?;
    /// let merged = table.merge_lora();
    /// assert_eq!(merged.weights(), &[1.5, -1.0, 0.25, -1.0]);
    /// assert_eq!(merged.config().lora, None);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn merge_lora(&self) -> Embedding {
        let mut config = self.config.clone();
        config.lora = None;
        let Some(lora) = &self.lora else {
            return Self::with_weights(config, self.weights.clone());
        };
        let dim = self.config.embedding_dim;
        let mut weights = Vec::with_capacity(self.weights.len());
        for (id, base) in self.weights.chunks_exact(dim).enumerate() {
            lora.push_row(id as u32, base, &mut weights);
        }
        Self::with_weights(config, TableBuffer::from(weights))
    }

    /// The LoRA factor `A`, `[num_embeddings, rank]` row-major, if LoRA is
    /// on.
    pub fn lora_a(&self) -> Option<&[f32]> {
        self.lora.as_ref().map(|l| &l.a[..])
    }

    /// The LoRA factor `B`, `[rank, embedding_dim]` row-major, if LoRA is
    /// on.
    pub fn lora_b(&self) -> Option<&[f32]> {
        self.lora.as_ref().map(|l| &l.b[..])
    }

    /// The gradient of `A` from the last [`backward`](Self::backward): one
    /// row of length `rank` per distinct id of the batch (padding id
    /// left out). Each entry counts once, since `A`'s gradient is a
    /// product, not a gather.
    pub fn lora_grad_a(&self) -> Option<&RowGrad> {
        self.lora.as_ref().map(|l| &l.grad_a)
    }

    /// The gradient of `B` from the last [`backward`](Self::backward),
    /// dense, `[rank, embedding_dim]` row-major.
    pub fn lora_grad_b(&self) -> Option<&[f32]> {
        self.lora.as_ref().map(|l| &l.grad_b[..])
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
    /// With LoRA, the frozen base table; [`merge_lora`](Self::merge_lora)
    /// gives the effective rows.
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

    /// The row for `id` (with LoRA, the base row).
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
    pub fn check_ids(&self, ids: &[u32]) -> Result<()> {
        let rows = self.config.num_embeddings;
        match kernels::first_id_out_of_range(ids, rows) {
            Some(id) => Err(Error::IdOutOfRange { id, num_embeddings: rows }),
            None => Ok(()),
        }
    }

    /// Keras's `compute_mask`: `id != 0` for each id (`true` = keep) with
    /// [`mask_zero`](EmbeddingConfig::mask_zero), `None` without. The
    /// output of [`forward`](Self::forward) is not changed by the mask;
    /// layers after the table use it.
    ///
    /// # Shapes
    ///
    /// - `ids`: any shape, usually `[batch, seq_len]`
    /// - returns: the same shape
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::EmbeddingConfig;
    /// use ndarray::array;
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let mut table = EmbeddingConfig::new(5, 2)
    ///     .with_mask_zero(true)
    ///     .init(&mut StdRng::seed_from_u64(0))?;
    /// let ids = array![[3, 1, 0, 0], [4, 0, 2, 0]];
    /// let mask = table.compute_mask(ids.view());
    /// assert_eq!(
    ///     mask,
    ///     Some(array![[true, true, false, false], [true, false, true, false]])
    /// );
    /// // Keras only attaches the mask: row 0 is still looked up.
    /// let out = table.forward(ids.view())?;
    /// assert_eq!(out.slice(ndarray::s![0, 2, ..]).to_vec(), table.row(0).to_vec());
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn compute_mask<D: Dimension>(&self, ids: ArrayView<'_, u32, D>) -> Option<Array<bool, D>> {
        self.config.mask_zero.then(|| ids.mapv(|id| id != 0))
    }

    /// Looks up one row per id.
    ///
    /// This is the product `one_hot(ids) · W`, computed as a row gather;
    /// see [`forward_into`](Self::forward_into) for what the options do.
    ///
    /// # Shapes
    ///
    /// - `ids`: any shape `[...]`, for example `[n]` or `[batch, seq_len]`
    /// - returns: `[..., embedding_dim]`
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`] for the first id that is not a row of the
    /// table, checked before any row is read or renormalised.
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
    /// With [`max_norm`](EmbeddingConfig::max_norm), first, as PyTorch's
    /// `embedding_renorm_`: each *distinct* id of `ids` (once, however
    /// often it occurs) whose row has a `norm_type`-norm strictly greater
    /// than `max_norm` has its row multiplied, in place, by
    /// `max_norm / (norm + 1e-7)`. This changes the table, in inference
    /// too, as in PyTorch. As there, the factor is computed in `f64` and
    /// rounded to `f32`; the norm is summed in `f64` and rounded to `f32`,
    /// where PyTorch sums in `f32` in an order that depends on the row
    /// length, so the two can differ in the last bit. The renormalisation
    /// is outside the gradient, as in PyTorch: [`backward`](Self::backward)
    /// is the plain gather gradient at the renormalised rows.
    ///
    /// With [`lora`](EmbeddingConfig::lora), the rows are the effective
    /// rows `base[i] + (alpha / rank) · (A[i] · B)`, as Keras.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n]`
    /// - `out`: becomes `[n, embedding_dim]`, row-major
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`] for the first id that is not a row of the
    /// table; `out` is left empty and no row is renormalised.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{Embedding, EmbeddingConfig};
    /// use ndarray::array;
    ///
    /// // PyTorch: nn.Embedding.from_pretrained(w, max_norm=1.0)
    /// let config = EmbeddingConfig::new(2, 2).with_max_norm(1.0);
    /// let w = array![[3.0, 4.0], [0.6, 0.8]];
    /// let mut table = Embedding::from_pretrained_with(w.view(), config)?;
    /// let mut out = Vec::new();
    /// table.forward_into(&[0, 0, 1], &mut out)?;
    /// // Row 0 (norm 5) is scaled by 1 / (5 + 1e-7), once; row 1 (norm 1) is not.
    /// assert_eq!(table.row(0), &[0.6, 0.8]);
    /// assert_eq!(&out[..2], &[0.6, 0.8]);
    /// assert_eq!(table.row(1), &[0.6, 0.8]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn forward_into(&mut self, ids: &[u32], out: &mut Vec<f32>) -> Result<()> {
        let dim = self.config.embedding_dim;
        // The gather checks the ids itself; the options that change the
        // table or read rows one by one check them first.
        if self.config.max_norm.is_some() || self.lora.is_some() || dim == 0 {
            if let Err(err) = self.check_ids(ids) {
                out.clear();
                return Err(err);
            }
        }
        if let Some(max_norm) = self.config.max_norm {
            renorm(&mut self.weights, dim, ids, max_norm, self.config.norm_type, &mut self.order);
        }
        match &self.lora {
            None => {
                // Every value is overwritten: a reused buffer of the right
                // length is neither cleared nor filled.
                let len = ids.len() * dim;
                if out.capacity() < len {
                    // A fresh zeroed allocation is mapped lazily by the
                    // system: the gather's writes are the first touch.
                    *out = vec![0.0; len];
                } else if out.len() < len {
                    out.resize(len, 0.0);
                } else {
                    out.truncate(len);
                }
                if let Err(id) = kernels::gather(&self.weights, dim, ids, out, self.threads) {
                    out.clear();
                    let num_embeddings = self.config.num_embeddings;
                    return Err(Error::IdOutOfRange { id, num_embeddings });
                }
            }
            Some(lora) => {
                out.clear();
                out.reserve(ids.len() * dim);
                for &id in ids {
                    let start = id as usize * dim;
                    lora.push_row(id, &self.weights[start..start + dim], out);
                }
            }
        }
        Ok(())
    }

    /// Computes the table's gradient from the ids of a forward pass and
    /// the gradient with respect to its output: one summed row per
    /// distinct id (see [`RowGrad::from_rows`]). The gradient is kept and
    /// returned; a later call replaces it.
    ///
    /// The options act in this order:
    ///
    /// 1. [`padding_idx`](EmbeddingConfig::padding_idx): positions holding
    ///    the padding id are dropped, so the id has no entry at all.
    /// 2. [`scale_grad_by_freq`](EmbeddingConfig::scale_grad_by_freq): the
    ///    row of an id seen `c` times is `Σ gᵢ · (1/c)`, accumulated with a
    ///    fused multiply-add in batch order with `1/c` rounded to `f32`,
    ///    exactly as PyTorch's CPU kernel; [`RowGrad::squares`] are scaled
    ///    by `1/c²`.
    /// 3. With [`lora`](EmbeddingConfig::lora), the base table gets no
    ///    gradient (the returned `RowGrad` is empty); with `G` the
    ///    gradient of the effective rows and `s = alpha / rank`, `A` gets
    ///    `dA[i] = (s · G[i]) · Bᵀ` per distinct id
    ///    ([`lora_grad_a`](Self::lora_grad_a)) and `B` gets
    ///    `dB = Σᵢ A[i]ᵀ · (s · G[i])` ([`lora_grad_b`](Self::lora_grad_b)).
    /// 4. With a [`regularizer`](EmbeddingConfig::regularizer) on a
    ///    trainable table, `∂R/∂w` of each row of the gradient is added to
    ///    it (with LoRA: to the rows of `A` and to all of `B`), and
    ///    [`regularization_loss`](Self::regularization_loss) becomes `R` of
    ///    those rows. [`RowGrad::squares`] become the squares of the
    ///    summed rows ([`RowGrad::square_summed_rows`]): Keras's gradient
    ///    is dense once the penalty's is added.
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
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{Embedding, EmbeddingConfig};
    /// use ndarray::array;
    ///
    /// let config = EmbeddingConfig::new(3, 1).with_padding_idx(0).with_scale_grad_by_freq(true);
    /// let mut table = Embedding::from_pretrained_with(array![[0.0], [1.0], [2.0]].view(), config)?;
    /// let g = table.backward(&[2, 0, 2, 1], &[1.0, 5.0, 3.0, 4.0])?;
    /// assert_eq!(g.ids(), &[1, 2]); // no entry for the padding id 0
    /// assert_eq!(g.rows(), &[4.0, 2.0]); // id 2: (1 + 3) / 2
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn backward(&mut self, ids: &[u32], grad_out: &[f32]) -> Result<&RowGrad> {
        let dim = self.config.embedding_dim;
        self.check_backward(ids, grad_out)?;
        self.regularization_loss = 0.0;

        let (ids, grad_out) = without_padding(
            self.config.padding_row(),
            ids,
            grad_out,
            dim,
            (&mut self.kept_ids, &mut self.kept_grads),
        );
        let by_freq = self.config.scale_grad_by_freq;
        let regularizer = self.config.regularizer.filter(|_| self.config.trainable);

        match &mut self.lora {
            None => {
                self.grad.assign_gather_grad(ids, grad_out, dim, by_freq, self.threads);
                if let Some(reg) = regularizer {
                    for k in 0..self.grad.len() {
                        let id = self.grad.ids()[k] as usize;
                        let w = &self.weights[id * dim..(id + 1) * dim];
                        reg.add_gradient(w, &mut self.grad.rows_mut()[k * dim..(k + 1) * dim]);
                    }
                    // Keras's gradient is dense once the penalty's is added:
                    // its accumulators square the summed rows.
                    self.grad.square_summed_rows();
                    let weights = &self.weights;
                    let rows = self.grad.ids().iter().map(|&id| id as usize * dim);
                    let values = rows.flat_map(|start| &weights[start..start + dim]);
                    self.regularization_loss = reg.penalty_of(values.copied());
                }
            }
            Some(lora) => {
                self.grad.assign_from_rows(&[], &[], dim);
                lora.table_grad.assign_gather_grad(ids, grad_out, dim, by_freq, self.threads);
                lora.backward(dim);
                if let Some(reg) = regularizer {
                    self.regularization_loss = lora.regularize(&reg);
                }
            }
        }
        Ok(&self.grad)
    }

    /// [`backward`](Self::backward) and [`step`](Self::step) in one call,
    /// as FBGEMM's fused backward-optimizer: the optimizer reads the
    /// upstream rows through a [`GatherGrad`] ([`Optimizer::step_gather`]).
    /// embkit's rules without a table-sized state (SGD without momentum,
    /// row-wise Adagrad) step each id seen once straight from its upstream
    /// row, in batch order, and sum only the repeated ids' rows, so no
    /// summed gradient is written out and read back; for the other rules
    /// ([`Optimizer::gather_sums_first`]) the rows are summed first, as
    /// `backward` does, and the sums checked as they are written, then
    /// [`Optimizer::step_rows`] steps them. Either way the table and the
    /// optimizer's state end with the same bits as after `backward` and
    /// `step`, and [`grad`](Self::grad) is empty afterwards.
    ///
    /// One exception, Keras's own: SGD without momentum in the
    /// [`TableUpdates::Keras`](crate::optim::TableUpdates::Keras) mode
    /// ([`Optimizer::steps_each_occurrence`]) steps each occurrence of an
    /// id on its own, in batch order, as Keras's `scatter_sub` does
    /// ([`Optimizer::step_occurrences`]; without
    /// [`scale_grad_by_freq`](EmbeddingConfig::scale_grad_by_freq)): an id
    /// seen twice ends at `(w − lr·g₁) − lr·g₂`, where `backward` and
    /// `step` give `w − lr·(g₁ + g₂)`, the same up to rounding. Ids seen
    /// once step alike; nothing is sorted or summed.
    ///
    /// With LoRA or a [`regularizer`](EmbeddingConfig::regularizer),
    /// `backward` and `step` run one after the other (the gradient is then
    /// kept). A frozen table only checks its input. It does not call
    /// [`Optimizer::finish_step`]; the optimizer's threads
    /// ([`Optimizer::set_threads`]) share the step.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n]`
    /// - `grad_out`: `[n, embedding_dim]`, row-major
    ///
    /// # Errors
    ///
    /// As [`backward`](Self::backward) and [`step`](Self::step), and
    /// [`Error::NonFiniteValue`] if a row of `grad_out` that reaches a
    /// trainable table (not at a padding position) holds a NaN or an
    /// infinity: a fused step cannot be checked afterwards, so its input is
    /// (finite rows whose sum overflows still step to infinity, as with
    /// `backward` and `step`; stepped one occurrence at a time they do not
    /// overflow). Nothing changes on an error, except as with `step`: with
    /// LoRA, `A` has taken its step when `B`'s key fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::optim::TableUpdates;
    /// use embkit::{Embedding, OptimizerConfig, SgdConfig};
    /// use ndarray::array;
    ///
    /// let mut table = Embedding::from_pretrained(array![[1.0], [1.0]].view(), false)?;
    /// let config = OptimizerConfig::from(SgdConfig::new().with_learning_rate(0.1));
    /// let mut sgd = config.build()?;
    /// table.backward_step(&[1, 0, 1], &[1.0, 1.0, 1.0], sgd.as_mut(), "embedding")?;
    /// sgd.finish_step();
    /// // Row 1, seen twice: 1 - 0.1 · (1 + 1), as `backward` and `step` do.
    /// assert_eq!(table.weights(), &[0.9, 0.8]);
    ///
    /// // In Keras's table mode a step per occurrence, as Keras's SGD:
    /// // (1 - 0.1) - 0.1 rounds to 0.79999995 in f32.
    /// let mut table = Embedding::from_pretrained(array![[1.0], [1.0]].view(), false)?;
    /// let mut sgd = config.with_table_updates(TableUpdates::Keras).build()?;
    /// table.backward_step(&[1, 0, 1], &[1.0, 1.0, 1.0], sgd.as_mut(), "embedding")?;
    /// assert_eq!(table.weights(), &[0.9, 0.799_999_95]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn backward_step(
        &mut self,
        ids: &[u32],
        grad_out: &[f32],
        optimizer: &mut dyn Optimizer,
        key: &str,
    ) -> Result<()> {
        let dim = self.config.embedding_dim;
        self.check_backward(ids, grad_out)?;
        if !self.config.trainable {
            return Ok(());
        }
        let pad = self.config.padding_row();
        let kept = (&mut self.kept_ids, &mut self.kept_grads);
        let (kept_ids, kept_grads) = without_padding(pad, ids, grad_out, dim, kept);
        let threads = self.threads;
        if self.lora.is_some() || self.config.regularizer.is_some() {
            if !kernels::all_finite_on(kept_grads, threads) {
                let err = first_non_finite(ids, grad_out, dim, pad);
                return Err(err.expect("a kept row is not finite"));
            }
            self.backward(ids, grad_out)?;
            return self.step(optimizer, key);
        }
        let by_freq = self.config.scale_grad_by_freq;
        if !by_freq && optimizer.steps_each_occurrence() {
            // Each occurrence steps on its own, straight from its upstream
            // row: nothing to sort or sum, only the check before.
            if !kernels::all_finite_on(kept_grads, threads) {
                let err = first_non_finite(ids, grad_out, dim, pad);
                return Err(err.expect("a kept row is not finite"));
            }
            optimizer.step_occurrences(key, &mut self.weights, kept_ids, kept_grads, dim)?;
            self.after_fused_step();
            return Ok(());
        }
        if optimizer.gather_sums_first() {
            // The optimizer would sum the rows first: they are summed here,
            // each sum checked as it is written (a sum of finite rows is
            // finite unless it overflows), instead of the upstream rows
            // before the sort. An overflow steps, as `backward` and `step`.
            let fused = &mut self.fused;
            if !fused.assign_gather_grad(kept_ids, kept_grads, dim, by_freq, threads) {
                if let Some(err) = first_non_finite(ids, grad_out, dim, pad) {
                    return Err(err);
                }
            }
            optimizer.step_rows(key, &mut self.weights, &self.fused)?;
            self.after_fused_step();
            return Ok(());
        }
        let fused = &mut self.fused;
        // The check of the upstream rows and the sort of the ids do not
        // depend on each other: with more than one thread, the others
        // check while this one sorts. The sort only fills scratch, so
        // nothing has moved when the check fails.
        let parts = threads.parts_for(kept_grads.len(), MIN_FLOATS_PER_THREAD);
        let (finite, grad) = match Threads::new(threads.get() - 1) {
            Ok(others) if parts > 1 => std::thread::scope(|scope| {
                let check = scope.spawn(|| kernels::all_finite_on(kept_grads, others));
                let grad = GatherGrad::index(fused, kept_ids, kept_grads, dim, by_freq);
                // `all_finite_on` does not panic.
                (check.join().expect("the check of the upstream rows panicked"), grad)
            }),
            _ => {
                let finite = kernels::all_finite_on(kept_grads, threads);
                (finite, GatherGrad::index(fused, kept_ids, kept_grads, dim, by_freq))
            }
        };
        if !finite {
            return Err(
                first_non_finite(ids, grad_out, dim, pad).expect("a kept row is not finite")
            );
        }
        optimizer.step_gather(key, &mut self.weights, &grad)?;
        self.after_fused_step();
        Ok(())
    }

    /// What [`backward_step`](Self::backward_step) leaves after its step:
    /// no gradient or penalty, and the constraint applied.
    fn after_fused_step(&mut self) {
        self.grad.assign_from_rows(&[], &[], self.config.embedding_dim);
        self.regularization_loss = 0.0;
        self.apply_constraint();
    }

    /// The [`constraint`](EmbeddingConfig::constraint), on the whole
    /// table, as Keras does after each optimizer step.
    fn apply_constraint(&mut self) {
        if let Some(constraint) = &self.config.constraint {
            constraint.apply(
                &mut self.weights,
                self.config.num_embeddings,
                self.config.embedding_dim,
            );
        }
    }

    /// Checks the input of a backward: one upstream row per id, every id
    /// in the table.
    fn check_backward(&self, ids: &[u32], grad_out: &[f32]) -> Result<()> {
        let dim = self.config.embedding_dim;
        if grad_out.len() != ids.len() * dim {
            return Err(Error::shape(
                "embedding gradient",
                format!("[{}, {dim}]", ids.len()),
                &[grad_out.len()],
            ));
        }
        self.check_ids(ids)
    }

    /// The gradient of the last [`backward`](Self::backward) (empty with
    /// LoRA; see [`lora_grad_a`](Self::lora_grad_a)).
    pub fn grad(&self) -> &RowGrad {
        &self.grad
    }

    /// The regulariser's penalty `R` of the rows of the last
    /// [`backward`](Self::backward), to add to the loss; 0 without a
    /// regulariser or for a frozen table.
    ///
    /// Keras (`embeddings_regularizer`) adds `R` of the **whole table** to
    /// the loss on every step, so its gradient is dense: every row `w`
    /// gets `∂R/∂w` on every step, looked up or not. embkit applies the
    /// penalty lazily, to the rows of the batch (the rows of the
    /// [`RowGrad`], padding row excluded). What matches Keras exactly, on
    /// any step: the gradient of each looked-up row, `Σ gᵢ + ∂R/∂w` at
    /// the row's current value, and so its update by a per-row optimizer
    /// such as SGD. What differs: rows that are not looked up get no
    /// penalty gradient (Keras shrinks them on every step), and this loss
    /// covers only the looked-up rows (Keras's covers the whole table).
    /// The two agree entirely on steps whose batch looks up every row.
    /// One more difference for Keras's optimizers that accumulate squared
    /// gradients: with a regulariser Keras's gradient is dense, so they
    /// square the summed row, and so does embkit then
    /// ([`RowGrad::square_summed_rows`]), penalty included.
    ///
    /// With LoRA, as in Keras, the frozen base is not penalised; `A` (its
    /// looked-up rows) and `B` (all of it) are.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{Embedding, EmbeddingConfig};
    /// use embkit::layers::Regularizer;
    /// use ndarray::array;
    ///
    /// let config = EmbeddingConfig::new(3, 2).with_regularizer(Regularizer::l2(0.5));
    /// let w = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
    /// let mut table = Embedding::from_pretrained_with(w.view(), config)?;
    /// let g = table.backward(&[1, 1], &[0.5, 0.5, 0.5, 0.5])?;
    /// // Data part 1 per entry, plus 2 · 0.5 · w of row 1.
    /// assert_eq!(g.rows(), &[4.0, 5.0]);
    /// // 0.5 · (3² + 4²); row 0 and row 2 are not counted.
    /// assert_eq!(table.regularization_loss(), 12.5);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn regularization_loss(&self) -> f32 {
        self.regularization_loss
    }

    /// Whether every gradient of the last [`backward`](Self::backward)
    /// (the table's, or with LoRA those of `A` and `B`) is finite.
    pub fn gradients_are_finite(&self) -> bool {
        kernels::all_finite(self.grad.rows())
            && self.lora.as_ref().is_none_or(Lora::gradients_are_finite)
    }

    /// Applies every update of a training step to the table, so a model
    /// does not need to know the options:
    ///
    /// - nothing at all if the table is frozen
    ///   ([`trainable`](EmbeddingConfig::trainable) is `false`);
    /// - without LoRA, the rows of the gradient, with
    ///   `optimizer.step_rows(key, …)`;
    /// - with LoRA, `A` with `step_rows("{key}.lora_a", …)` and `B` with
    ///   `step_dense("{key}.lora_b", …)`;
    /// - then the [`constraint`](EmbeddingConfig::constraint), on the whole
    ///   table, as Keras does after each optimizer step.
    ///
    /// It does not call [`Optimizer::finish_step`]: the caller does, once
    /// for all its parameters.
    ///
    /// # Errors
    ///
    /// As [`Optimizer::step_rows`] and [`Optimizer::step_dense`], for
    /// example if `key` was first used for a parameter of another size.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::{Embedding, EmbeddingConfig, OptimizerConfig, SgdConfig};
    /// use ndarray::array;
    ///
    /// let config = EmbeddingConfig::new(3, 1).with_padding_idx(0);
    /// let mut table = Embedding::from_pretrained_with(array![[0.0], [1.0], [2.0]].view(), config)?;
    /// let mut sgd = OptimizerConfig::from(SgdConfig::new().with_learning_rate(0.5)).build()?;
    /// table.backward(&[2, 0, 2], &[1.0, 1.0, 1.0])?;
    /// table.step(sgd.as_mut(), "embedding")?;
    /// sgd.finish_step();
    /// assert_eq!(table.weights(), &[0.0, 1.0, 1.0]); // row 2: 2 - 0.5 · (1 + 1)
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn step(&mut self, optimizer: &mut dyn Optimizer, key: &str) -> Result<()> {
        if !self.config.trainable {
            return Ok(());
        }
        match &mut self.lora {
            None => optimizer.step_rows(key, &mut self.weights, &self.grad)?,
            Some(lora) => {
                optimizer.step_rows(&format!("{key}.lora_a"), &mut lora.a, &lora.grad_a)?;
                optimizer.step_dense(&format!("{key}.lora_b"), &mut lora.b, &lora.grad_b)?;
            }
        }
        self.apply_constraint();
        Ok(())
    }

    /// The gradients [`step`](Self::step) applies, mutably, for gradient
    /// clipping: the table's [`RowGrad`], or with LoRA the factors'
    /// gradients. Empty for a frozen table.
    pub fn grads_mut(&mut self) -> Vec<GradMut<'_>> {
        if !self.config.trainable {
            return Vec::new();
        }
        match &mut self.lora {
            None => vec![GradMut::Rows(&mut self.grad)],
            Some(lora) => vec![GradMut::Rows(&mut lora.grad_a), GradMut::Dense(&mut lora.grad_b)],
        }
    }
}

/// Checks that a row-major matrix holds `rows * cols` values.
fn check_len(what: &'static str, values: &[f32], rows: usize, cols: usize) -> Result<()> {
    if values.len() != rows * cols {
        return Err(Error::shape(what, format!("[{rows}, {cols}]"), &[values.len()]));
    }
    Ok(())
}

/// PyTorch's `embedding_renorm_`: scales each distinct row of `ids` whose
/// `norm_type`-norm is above `max_norm` by `max_norm / (norm + 1e-7)`.
fn renorm(
    weights: &mut [f32],
    dim: usize,
    ids: &[u32],
    max_norm: f32,
    norm_type: f32,
    order: &mut Vec<u32>,
) {
    order.clear();
    order.extend_from_slice(ids);
    order.sort_unstable();
    order.dedup();
    // PyTorch receives `max_norm` as the Python double the user wrote.
    let max_norm: f64 = max_norm.to_string().parse().expect("an f32's Display parses as f64");
    for &id in order.iter() {
        let row = &mut weights[id as usize * dim..(id as usize + 1) * dim];
        // PyTorch's norm is an f32 tensor, read back as a double.
        let norm = p_norm(row, norm_type) as f64;
        if norm > max_norm {
            let scale = (max_norm / (norm + 1e-7)) as f32;
            row.iter_mut().for_each(|x| *x *= scale);
        }
    }
}

/// `(Σ |x|^p)^(1/p)`, or `max |x|` for an infinite `p`, summed in `f64`
/// and rounded to `f32`.
fn p_norm(row: &[f32], p: f32) -> f32 {
    let abs = row.iter().map(|&x| (x as f64).abs());
    let norm = if p == f32::INFINITY {
        abs.fold(0.0, f64::max)
    } else if p == 1.0 {
        abs.sum()
    } else if p == 2.0 {
        abs.map(|x| x * x).sum::<f64>().sqrt()
    } else {
        let p = p as f64;
        abs.map(|x| x.powf(p)).sum::<f64>().powf(1.0 / p)
    };
    norm as f32
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

/// The error of a backward whose upstream rows hold a NaN or an infinity
/// that would reach the table: the first such value outside the rows of
/// `pad`, and its index in `grad_out`; `None` if there is none.
fn first_non_finite(ids: &[u32], grad_out: &[f32], dim: usize, pad: Option<u32>) -> Option<Error> {
    let rows = ids.iter().zip(grad_out.chunks_exact(dim)).enumerate();
    let (index, value) = rows
        .filter(|(_, (&id, _))| Some(id) != pad)
        .flat_map(|(i, (_, row))| row.iter().enumerate().map(move |(k, &x)| (i * dim + k, x)))
        .find(|(_, x)| !x.is_finite())?;
    Some(Error::NonFiniteValue { what: "the embedding gradient", index, value })
}

/// `ids` and their upstream rows without the positions holding the
/// padding row `pad` (copied into `kept` if there are any).
fn without_padding<'a>(
    pad: Option<u32>,
    ids: &'a [u32],
    grad_out: &'a [f32],
    dim: usize,
    kept: (&'a mut Vec<u32>, &'a mut Vec<f32>),
) -> (&'a [u32], &'a [f32]) {
    match pad {
        Some(pad) if ids.contains(&pad) => {
            let (kept_ids, kept_grads) = kept;
            kept_ids.clear();
            kept_grads.clear();
            for (&id, g) in ids.iter().zip(grad_out.chunks_exact(dim)) {
                if id != pad {
                    kept_ids.push(id);
                    kept_grads.extend_from_slice(g);
                }
            }
            (kept_ids, kept_grads)
        }
        _ => (ids, grad_out),
    }
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

    #[test]
    fn configs_saved_before_the_options_existed_still_load() {
        let json = r#"{"num_embeddings":4,"embedding_dim":2,
                       "init":{"kind":"uniform","bound":0.05},"trainable":true}"#;
        let config: EmbeddingConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config, EmbeddingConfig::new(4, 2));
    }

    #[test]
    fn options_left_at_their_default_are_not_serialised() {
        let json = serde_json::to_string(&EmbeddingConfig::new(4, 2)).unwrap();
        assert_eq!(
            json,
            r#"{"num_embeddings":4,"embedding_dim":2,"init":{"kind":"uniform","bound":0.05},"trainable":true}"#
        );
    }

    #[test]
    fn configs_with_every_option_round_trip_through_json() {
        let config = EmbeddingConfig::new(4, 2)
            .with_padding_idx(-1)
            .with_mask_zero(true)
            .with_scale_grad_by_freq(true)
            .with_regularizer(Regularizer::l1_l2(0.01, 0.02))
            .with_lora(2, Some(4.0));
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<EmbeddingConfig>(&json).unwrap(), config);
        let config = EmbeddingConfig::new(4, 2)
            .with_max_norm(1.5)
            .with_norm_type(f32::INFINITY)
            .with_constraint(Constraint::max_norm(3.0).with_axis(1));
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""norm_type":"inf""#), "{json}");
        assert_eq!(serde_json::from_str::<EmbeddingConfig>(&json).unwrap(), config);
    }

    #[test]
    fn negative_padding_idx_in_a_saved_config_counts_from_the_end() {
        let mut config = EmbeddingConfig::new(5, 2);
        config.padding_idx = Some(-2);
        assert_eq!(config.padding_row(), Some(3));
        let table = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
        assert_eq!(table.row(3), &[0.0, 0.0]);
    }

    #[test]
    fn frozen_table_is_not_stepped_or_penalised() {
        let config = EmbeddingConfig::new(2, 1)
            .with_trainable(false)
            .with_regularizer(Regularizer::l2(1.0))
            .with_constraint(Constraint::non_neg());
        let mut table =
            Embedding::from_pretrained_with(array![[-1.0], [2.0]].view(), config).unwrap();
        let mut sgd = crate::SgdConfig::new().init().unwrap();
        table.backward(&[0, 1], &[1.0, 1.0]).unwrap();
        assert_eq!(table.grad().rows(), &[1.0, 1.0]);
        assert_eq!(table.regularization_loss(), 0.0);
        table.step(&mut sgd, "embedding").unwrap();
        assert_eq!(table.weights(), &[-1.0, 2.0]);
    }

    #[test]
    fn lora_cannot_be_enabled_twice_or_with_a_constraint() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut table = EmbeddingConfig::new(3, 2).with_lora(1, None).init(&mut rng).unwrap();
        assert!(table.enable_lora(1, None, &mut rng).is_err());
        let err = EmbeddingConfig::new(3, 2)
            .with_constraint(Constraint::max_norm(2.0))
            .with_lora(1, None)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("constraint"), "{err}");
        let err = EmbeddingConfig::new(3, 2).with_max_norm(1.0).with_lora(1, None).validate();
        assert!(err.is_err());
        let mut plain = EmbeddingConfig::new(3, 2)
            .with_constraint(Constraint::non_neg())
            .init(&mut rng)
            .unwrap();
        assert!(plain.enable_lora(1, None, &mut rng).is_err());
        assert!(plain.lora_a().is_none());
        assert_eq!(plain.config().lora, None);
    }

    #[test]
    fn lora_a_is_he_uniform_over_num_embeddings_with_a_zero_padding_row() {
        let table = EmbeddingConfig::new(24, 3)
            .with_padding_idx(5)
            .with_lora(4, None)
            .init(&mut StdRng::seed_from_u64(3))
            .unwrap();
        let a = table.lora_a().unwrap();
        assert_eq!(a.len(), 24 * 4);
        let limit = (6.0f32 / 24.0).sqrt(); // 0.5
        assert!(a.iter().all(|x| x.abs() <= limit));
        assert!(a.iter().any(|x| x.abs() > 0.8 * limit));
        assert_eq!(&a[20..24], &[0.0; 4]);
        assert_eq!(table.lora_b().unwrap(), &[0.0; 12]);
    }

    #[test]
    fn lora_tables_need_their_factors_to_load() {
        let config = EmbeddingConfig::new(2, 2).with_lora(1, None);
        assert!(Embedding::from_config_and_weights(config.clone(), vec![0.0; 4]).is_err());
        let err = Embedding::from_lora_parts(config, vec![0.0; 4], vec![0.0; 3], vec![0.0; 2]);
        assert!(matches!(err, Err(Error::ShapeMismatch { what: "lora_a", .. })));
    }
}
