//! [`MatrixFactorization`]: biased matrix factorisation for rating
//! prediction (Koren, Bell and Volinsky 2009; Surprise's `SVD`).

use ndarray::{Array1, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, Model};
use crate::data::Interactions;
use crate::layers::Regularizer;
use crate::model::{Evaluation, History, Observer, TrainConfig};
use crate::optim::GradientClipping;
use crate::{Embedding, EmbeddingConfig, Error, Init, Loss, Metric, Optimizer, Result};

/// Settings for a [`MatrixFactorization`].
///
/// Start from [`MatrixFactorizationConfig::new`] (or
/// [`for_interactions`](Self::for_interactions), which also takes the
/// global mean and the rating range from the training data), change what
/// you need with the `with_*` methods, then call [`init`](Self::init).
///
/// The defaults are tuned on MovieLens-100k (5-fold cross-validation,
/// with the training settings of
/// [`MatrixFactorization::default_train_config`]): RMSE 0.908, MAE 0.715
/// (`examples/movielens.rs`), where Surprise publishes 0.934 / 0.737 for
/// `SVD` and 0.919 / 0.721 for `SVD++`.
///
/// # Examples
///
/// ```
/// use embkit::model::MatrixFactorizationConfig;
/// use rand::{rngs::StdRng, SeedableRng};
///
/// let config = MatrixFactorizationConfig::new(943, 1682, 32)
///     .with_global_mean(3.53)
///     .with_rating_range(1.0, 5.0);
/// let model = config.init(&mut StdRng::seed_from_u64(0))?;
/// assert_eq!(model.users().num_embeddings(), 943);
/// assert!(MatrixFactorizationConfig::new(0, 10, 8).init(&mut StdRng::seed_from_u64(0)).is_err());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MatrixFactorizationConfig {
    /// Rows of the user tables: one per user id.
    pub num_users: usize,
    /// Rows of the item tables: one per item id.
    pub num_items: usize,
    /// Length of each user and item vector.
    pub embedding_dim: usize,
    /// How the user and item vectors start. Default `Normal { std: 0.05 }`.
    /// The biases start at 0.
    pub init: Init,
    /// The L2 factor on the user and item vectors, applied to the rows of
    /// each batch (see [`Regularizer`]). Default
    /// [`DEFAULT_L2`](Self::DEFAULT_L2).
    ///
    /// The penalty is added once per batch to each row the batch looks
    /// up, while the data term is a mean over the batch, so the strength
    /// per rating grows with the batch size: `l2 · batch_size` is the
    /// `reg` of a per-rating SGD such as Surprise's `SVD` (0.002 · 64 ≈
    /// 0.13). Change the two together. On MovieLens-100k the result is
    /// sensitive to it: 0.0015 and 0.0025 cost about 0.004 RMSE, 0.005
    /// about 0.04.
    pub l2: f32,
    /// The L2 factor on the biases, applied the same way. Default
    /// [`DEFAULT_BIAS_L2`](Self::DEFAULT_BIAS_L2).
    pub bias_l2: f32,
    /// Whether the user and item biases are learned; without them they
    /// stay 0. Default `true`.
    pub use_bias: bool,
    /// `mu`, the constant term of every prediction: the mean training
    /// rating. Not trained. Default 0.
    pub global_mean: f32,
    /// `(lowest, highest)`: predictions outside are clipped at inference
    /// (not in training). Default `None`.
    pub rating_range: Option<(f32, f32)>,
}

impl MatrixFactorizationConfig {
    /// The default [`l2`](Self::l2).
    pub const DEFAULT_L2: f32 = 0.002;
    /// The default [`bias_l2`](Self::bias_l2).
    pub const DEFAULT_BIAS_L2: f32 = 0.0001;
    /// The default [`embedding_dim`](Self::embedding_dim) of
    /// [`for_interactions`](Self::for_interactions)' callers (the CLI).
    pub const DEFAULT_EMBEDDING_DIM: usize = 64;

    /// A config with the three sizes; everything else at its default.
    pub fn new(num_users: usize, num_items: usize, embedding_dim: usize) -> Self {
        Self {
            num_users,
            num_items,
            embedding_dim,
            init: Init::Normal { std: 0.05 },
            l2: Self::DEFAULT_L2,
            bias_l2: Self::DEFAULT_BIAS_L2,
            use_bias: true,
            global_mean: 0.0,
            rating_range: None,
        }
    }

    /// A config sized for `data` (its user and item ids), with its mean
    /// rating as [`global_mean`](Self::global_mean) and its lowest and
    /// highest ratings as [`rating_range`](Self::rating_range).
    pub fn for_interactions(data: &Interactions, embedding_dim: usize) -> Self {
        let mut config = Self::new(data.num_users(), data.num_items(), embedding_dim)
            .with_global_mean(data.mean_rating());
        config.rating_range = data.rating_range();
        config
    }

    /// Sets [`init`](Self::init).
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Sets [`l2`](Self::l2).
    pub fn with_l2(mut self, l2: f32) -> Self {
        self.l2 = l2;
        self
    }

    /// Sets [`bias_l2`](Self::bias_l2).
    pub fn with_bias_l2(mut self, bias_l2: f32) -> Self {
        self.bias_l2 = bias_l2;
        self
    }

    /// Sets [`use_bias`](Self::use_bias).
    pub fn with_use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Sets [`global_mean`](Self::global_mean).
    pub fn with_global_mean(mut self, global_mean: f32) -> Self {
        self.global_mean = global_mean;
        self
    }

    /// Sets [`rating_range`](Self::rating_range).
    pub fn with_rating_range(mut self, lowest: f32, highest: f32) -> Self {
        self.rating_range = Some((lowest, highest));
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the setting, the rule and the value.
    pub fn validate(&self) -> Result<()> {
        for (field, n) in [
            ("num_users", self.num_users),
            ("num_items", self.num_items),
            ("embedding_dim", self.embedding_dim),
        ] {
            if n == 0 {
                return Err(Error::config(field, "must be at least 1, got 0"));
            }
        }
        for (field, v) in [("l2", self.l2), ("bias_l2", self.bias_l2)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(
                    field,
                    format!("must be finite and at least 0, got {v}"),
                ));
            }
        }
        if !self.global_mean.is_finite() {
            return Err(Error::config(
                "global_mean",
                format!("must be finite, got {}", self.global_mean),
            ));
        }
        if let Some((lo, hi)) = self.rating_range {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(Error::config(
                    "rating_range",
                    format!("must be two finite numbers, lowest first, got ({lo}, {hi})"),
                ));
            }
        }
        self.user_table().validate()?;
        self.item_table().validate()
    }

    fn table(
        &self,
        rows: usize,
        dim: usize,
        init: Init,
        l2: f32,
        trainable: bool,
    ) -> EmbeddingConfig {
        let config = EmbeddingConfig::new(rows, dim).with_init(init).with_trainable(trainable);
        if l2 > 0.0 {
            config.with_regularizer(Regularizer::l2(l2))
        } else {
            config
        }
    }

    /// The config of the user vectors' table.
    pub fn user_table(&self) -> EmbeddingConfig {
        self.table(self.num_users, self.embedding_dim, self.init.clone(), self.l2, true)
    }

    /// The config of the item vectors' table.
    pub fn item_table(&self) -> EmbeddingConfig {
        self.table(self.num_items, self.embedding_dim, self.init.clone(), self.l2, true)
    }

    /// The config of the user biases' table (`[num_users, 1]`).
    pub fn user_bias_table(&self) -> EmbeddingConfig {
        self.table(self.num_users, 1, Init::Zeros, self.bias_l2, self.use_bias)
    }

    /// The config of the item biases' table (`[num_items, 1]`).
    pub fn item_bias_table(&self) -> EmbeddingConfig {
        self.table(self.num_items, 1, Init::Zeros, self.bias_l2, self.use_bias)
    }

    /// Validates the config and builds the model: the user table's initial
    /// rows are drawn from `rng` first, then the item table's.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] as [`validate`](Self::validate).
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<MatrixFactorization> {
        self.validate()?;
        let users = self.user_table().init(rng)?;
        let items = self.item_table().init(rng)?;
        let user_bias = self.user_bias_table().init(rng)?;
        let item_bias = self.item_bias_table().init(rng)?;
        MatrixFactorization::from_parts(self.clone(), users, items, user_bias, item_bias)
    }
}

/// Biased matrix factorisation: a rating is predicted as
///
/// ```text
/// r̂(u, i) = mu + b_u + b_i + <p_u, q_i>
/// ```
///
/// with `mu` the mean training rating, `b_u`, `b_i` learned biases (tables
/// of one column) and `p_u`, `q_i` learned vectors (tables of
/// `embedding_dim` columns). Input ids are `[batch, 2]` (user id, item
/// id), outputs `[batch, 1]`. Trained with [`fit`](crate::model::fit) (or
/// [`fit_stream`](crate::model::fit_stream) on an
/// [`InteractionStream`](crate::data::InteractionStream)) and
/// [`Loss::MeanSquaredError`]; the L2 penalties of the config apply to the
/// rows of each batch. At inference (not in training) predictions are
/// clipped to [`rating_range`](MatrixFactorizationConfig::rating_range).
///
/// # Examples
///
/// ```
/// use embkit::data::{DataOptions, Interactions};
/// use embkit::model::{MatrixFactorization, MatrixFactorizationConfig};
/// use embkit::{Dataset, NoObserver};
/// use rand::{rngs::StdRng, SeedableRng};
///
/// let tsv = "a\tx\t5\nb\tx\t1\na\ty\t4\nb\ty\t2\n";
/// let (data, _) = Interactions::from_reader(tsv.as_bytes(), "tiny.tsv", &DataOptions::new())?;
/// let mut model = MatrixFactorizationConfig::for_interactions(&data, 4)
///     .init(&mut StdRng::seed_from_u64(0))?;
/// let (ids, targets) = (data.ids(), data.targets().into_dyn());
/// let config = MatrixFactorization::default_train_config().with_epochs(200).with_batch_size(2);
/// model.fit(Dataset::new(ids.view(), targets.view())?, None, &config, &mut NoObserver)?;
/// let pred = model.predict(ids.view(), 64)?;
/// assert!(pred[0] > pred[1]); // user a likes item x more than user b does
/// assert!(pred.iter().all(|&r| (1.0..=5.0).contains(&r)));
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MatrixFactorization {
    config: MatrixFactorizationConfig,
    users: Embedding,
    items: Embedding,
    user_bias: Embedding,
    item_bias: Embedding,
    /// The user and item ids of the last training forward.
    user_ids: Vec<u32>,
    item_ids: Vec<u32>,
    /// Their rows, `[batch, embedding_dim]` each.
    p: Vec<f32>,
    q: Vec<f32>,
    /// Their biases.
    bu: Vec<f32>,
    bi: Vec<f32>,
    /// Output of the last training forward.
    output: Option<ArrayD<f32>>,
}

impl MatrixFactorization {
    /// Assembles a model from built tables (used by loading).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid or a table does
    /// not match it.
    pub fn from_parts(
        config: MatrixFactorizationConfig,
        users: Embedding,
        items: Embedding,
        user_bias: Embedding,
        item_bias: Embedding,
    ) -> Result<Self> {
        config.validate()?;
        for (name, table, want) in [
            ("users", &users, config.user_table()),
            ("items", &items, config.item_table()),
            ("user_bias", &user_bias, config.user_bias_table()),
            ("item_bias", &item_bias, config.item_bias_table()),
        ] {
            if table.config() != &want {
                return Err(Error::config(
                    "tables",
                    format!("the {name} table does not match the model's config"),
                ));
            }
        }
        Ok(Self {
            config,
            users,
            items,
            user_bias,
            item_bias,
            user_ids: Vec::new(),
            item_ids: Vec::new(),
            p: Vec::new(),
            q: Vec::new(),
            bu: Vec::new(),
            bi: Vec::new(),
            output: None,
        })
    }

    /// The training settings the defaults of
    /// [`MatrixFactorizationConfig`] were tuned with: mean squared error,
    /// [`DEFAULT_EPOCHS`](Self::DEFAULT_EPOCHS) epochs of
    /// [`DEFAULT_BATCH_SIZE`](Self::DEFAULT_BATCH_SIZE) ratings, lazy
    /// Adam with [`DEFAULT_LEARNING_RATE`](Self::DEFAULT_LEARNING_RATE),
    /// seed 0.
    pub fn default_train_config() -> TrainConfig {
        let adam = crate::AdamConfig::new().with_learning_rate(Self::DEFAULT_LEARNING_RATE);
        TrainConfig::new(Loss::MeanSquaredError, adam.into())
            .with_metrics(vec![Metric::MeanAbsoluteError])
            .with_epochs(Self::DEFAULT_EPOCHS)
            .with_batch_size(Self::DEFAULT_BATCH_SIZE)
    }

    /// Epochs of [`default_train_config`](Self::default_train_config).
    pub const DEFAULT_EPOCHS: usize = 20;
    /// Batch size of [`default_train_config`](Self::default_train_config).
    pub const DEFAULT_BATCH_SIZE: usize = 64;
    /// Adam's learning rate in
    /// [`default_train_config`](Self::default_train_config).
    pub const DEFAULT_LEARNING_RATE: f32 = 0.002;

    /// The config the model was built from.
    pub fn config(&self) -> &MatrixFactorizationConfig {
        &self.config
    }

    /// The user vectors, `[num_users, embedding_dim]`.
    pub fn users(&self) -> &Embedding {
        &self.users
    }

    /// The item vectors, `[num_items, embedding_dim]`.
    pub fn items(&self) -> &Embedding {
        &self.items
    }

    /// The user biases, `[num_users, 1]`.
    pub fn user_bias(&self) -> &Embedding {
        &self.user_bias
    }

    /// The item biases, `[num_items, 1]`.
    pub fn item_bias(&self) -> &Embedding {
        &self.item_bias
    }

    /// The four tables, mutably: users, items, user biases, item biases
    /// (for example to set weights in a test).
    pub fn tables_mut(&mut self) -> [&mut Embedding; 4] {
        [&mut self.users, &mut self.items, &mut self.user_bias, &mut self.item_bias]
    }

    fn clip(&self, r: f32) -> f32 {
        match self.config.rating_range {
            Some((lo, hi)) => r.clamp(lo, hi),
            None => r,
        }
    }

    fn check_input(ids: &ArrayView2<'_, u32>) -> Result<()> {
        if ids.ncols() != 2 {
            return Err(Error::shape("model input", "[batch, 2] (user id, item id)", ids.shape()));
        }
        Ok(())
    }

    /// The predicted rating of each `(user id, item id)` row, clipped to
    /// the rating range, `batch_size` rows at a time.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n, 2]`
    /// - returns: `[n]`
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a batch size of 0;
    /// [`Error::ShapeMismatch`] for ids that are not `[n, 2]`;
    /// [`Error::IdOutOfRange`] for an id past its table.
    pub fn predict(&mut self, ids: ArrayView2<'_, u32>, batch_size: usize) -> Result<Array1<f32>> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        Self::check_input(&ids)?;
        let mut out = Vec::with_capacity(ids.nrows());
        for chunk in ids.axis_chunks_iter(Axis(0), batch_size) {
            out.extend(Model::forward(self, chunk, false)?.iter().copied());
        }
        Ok(Array1::from(out))
    }

    /// Like [`predict`](Self::predict), but a user or item id past its
    /// table (such as [`UNKNOWN_ID`](crate::data::UNKNOWN_ID) for a key
    /// the model was not trained on) counts as unknown: its bias and
    /// vector are taken as 0, so an unknown user gets `mu + b_i`, an
    /// unknown item `mu + b_u`, and both `mu`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for ids that are not `[n, 2]`.
    pub fn predict_with_fallback(&self, ids: ArrayView2<'_, u32>) -> Result<Array1<f32>> {
        Self::check_input(&ids)?;
        let dim = self.config.embedding_dim;
        let (nu, ni) = (self.config.num_users as u32, self.config.num_items as u32);
        Ok(ids
            .outer_iter()
            .map(|row| {
                let (u, i) = (row[0], row[1]);
                let mut r = self.config.global_mean;
                if u < nu {
                    r += self.user_bias.row(u)[0];
                }
                if i < ni {
                    r += self.item_bias.row(i)[0];
                }
                if u < nu && i < ni {
                    r += dot(self.users.row(u), self.items.row(i), dim);
                }
                self.clip(r)
            })
            .collect())
    }

    /// Trains the model; see [`fit`](crate::model::fit).
    ///
    /// # Errors
    ///
    /// As [`fit`](crate::model::fit).
    pub fn fit<'a>(
        &mut self,
        train: Dataset<'a>,
        validation: Option<Dataset<'a>>,
        config: &TrainConfig,
        observer: &mut dyn Observer,
    ) -> Result<History> {
        super::fit(self, train, validation, config, observer)
    }

    /// Loss and metrics on a data set; see
    /// [`evaluate`](crate::model::evaluate).
    ///
    /// # Errors
    ///
    /// As [`evaluate`](crate::model::evaluate).
    pub fn evaluate(
        &mut self,
        data: Dataset<'_>,
        loss: &Loss,
        metrics: &[Metric],
        batch_size: usize,
    ) -> Result<Evaluation> {
        super::evaluate(self, data, loss, metrics, batch_size)
    }

    fn tables(&self) -> [&Embedding; 4] {
        [&self.users, &self.items, &self.user_bias, &self.item_bias]
    }
}

/// `<a, b>` over `dim` values, summed in `f32` in order.
fn dot(a: &[f32], b: &[f32], dim: usize) -> f32 {
    a[..dim].iter().zip(&b[..dim]).map(|(x, y)| x * y).sum()
}

impl Model for MatrixFactorization {
    fn forward(&mut self, ids: ArrayView2<'_, u32>, training: bool) -> Result<ArrayD<f32>> {
        Self::check_input(&ids)?;
        let n = ids.nrows();
        self.user_ids.clear();
        self.item_ids.clear();
        self.user_ids.extend(ids.column(0).iter().copied());
        self.item_ids.extend(ids.column(1).iter().copied());
        self.users.forward_into(&self.user_ids, &mut self.p)?;
        self.items.forward_into(&self.item_ids, &mut self.q)?;
        self.user_bias.forward_into(&self.user_ids, &mut self.bu)?;
        self.item_bias.forward_into(&self.item_ids, &mut self.bi)?;
        let dim = self.config.embedding_dim;
        let mu = self.config.global_mean;
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let r = mu + self.bu[k] + self.bi[k] + dot(&self.p[k * dim..], &self.q[k * dim..], dim);
            out.push(if training { r } else { self.clip(r) });
        }
        let out = ArrayD::from_shape_vec(IxDyn(&[n, 1]), out).expect("one rating per row");
        self.output = training.then(|| out.clone());
        Ok(out)
    }

    fn backward(&mut self, loss: &Loss, targets: ArrayViewD<'_, f32>) -> Result<f32> {
        let output = self.output.take().ok_or_else(|| {
            Error::InvalidState("MatrixFactorization::backward before a training forward".into())
        })?;
        let (value, grad) = loss.forward_backward(output.view(), targets)?;
        let g = grad.as_slice().expect("a fresh gradient is contiguous");
        let dim = self.config.embedding_dim;
        // d/dp_u = g · q_i and d/dq_i = g · p_u, row by row.
        let mut grad_p = vec![0.0; self.p.len()];
        let mut grad_q = vec![0.0; self.q.len()];
        for (k, &gk) in g.iter().enumerate() {
            let rows = k * dim..(k + 1) * dim;
            for ((gp, gq), (&p, &q)) in grad_p[rows.clone()]
                .iter_mut()
                .zip(&mut grad_q[rows.clone()])
                .zip(self.p[rows.clone()].iter().zip(&self.q[rows]))
            {
                *gp = gk * q;
                *gq = gk * p;
            }
        }
        self.users.backward(&self.user_ids, &grad_p)?;
        self.items.backward(&self.item_ids, &grad_q)?;
        self.user_bias.backward(&self.user_ids, g)?;
        self.item_bias.backward(&self.item_ids, g)?;
        let penalty: f32 = self.tables().iter().map(|t| t.regularization_loss()).sum();
        Ok(value + penalty)
    }

    fn clip_gradients(&mut self, clipping: &GradientClipping) -> Result<()> {
        let mut grads = self.users.grads_mut();
        grads.extend(self.items.grads_mut());
        grads.extend(self.user_bias.grads_mut());
        grads.extend(self.item_bias.grads_mut());
        clipping.apply(&mut grads)
    }

    fn gradients_are_finite(&mut self) -> bool {
        self.tables().iter().all(|t| t.gradients_are_finite())
    }

    fn step(&mut self, optimizer: &mut dyn Optimizer) -> Result<()> {
        self.users.step(optimizer, "users")?;
        self.items.step(optimizer, "items")?;
        self.user_bias.step(optimizer, "user_bias")?;
        self.item_bias.step(optimizer, "item_bias")?;
        optimizer.finish_step();
        Ok(())
    }

    fn set_threads(&mut self, threads: crate::Threads) {
        for table in self.tables_mut() {
            table.set_threads(threads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn invalid_settings_name_the_field() {
        let err = MatrixFactorizationConfig::new(3, 4, 2).with_l2(-1.0).validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid l2: must be finite and at least 0, got -1");
        let err = MatrixFactorizationConfig::new(3, 4, 2)
            .with_rating_range(5.0, 1.0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid rating_range"), "{err}");
    }

    #[test]
    fn inference_clips_and_training_does_not() {
        let mut model = MatrixFactorizationConfig::new(1, 1, 1)
            .with_global_mean(10.0)
            .with_rating_range(1.0, 5.0)
            .init(&mut StdRng::seed_from_u64(0))
            .unwrap();
        let ids = array![[0u32, 0]];
        assert_eq!(model.forward(ids.view(), false).unwrap()[[0, 0]], 5.0);
        assert!(model.forward(ids.view(), true).unwrap()[[0, 0]] > 9.0);
    }

    #[test]
    fn unknown_ids_fall_back_to_the_biases() {
        let mut model = MatrixFactorizationConfig::new(2, 2, 1)
            .with_global_mean(3.0)
            .init(&mut StdRng::seed_from_u64(0))
            .unwrap();
        model.tables_mut()[3].weights_mut().copy_from_slice(&[0.5, -0.5]);
        let ids = array![[u32::MAX, 0], [u32::MAX, u32::MAX]];
        assert_eq!(model.predict_with_fallback(ids.view()).unwrap().to_vec(), [3.5, 3.0]);
        assert!(model.predict(ids.view(), 8).is_err());
    }
}
