//! [`BagClassifier`]: a fastText-style text classifier (Joulin et al.
//! 2017, "Bag of Tricks for Efficient Text Classification"): the mean of
//! a document's word and hashed word-bigram rows ([`EmbeddingBag`]), then
//! a softmax [`Dense`] layer.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, Model};
use crate::layers::ParamMut;
use crate::model::{Evaluation, History, Observer, TrainConfig};
use crate::optim::{GradMut, GradientClipping};
use crate::{
    Activation, BagMode, Dense, DenseConfig, EmbeddingBag, EmbeddingBagConfig, Error, Init, Loss,
    Metric, Optimizer, Result,
};

/// Settings for a [`BagClassifier`].
///
/// The table has [`num_words`](Self::num_words) rows for words (ids from
/// a vocabulary, the padding id among them) followed by
/// [`bigram_buckets`](Self::bigram_buckets) rows for hashed word bigrams,
/// as fastText's input matrix: bigram `(a, b)` of word ids is row
/// `num_words + hash(a, b) % bigram_buckets`
/// ([`bigram_id`](Self::bigram_id)).
///
/// # Examples
///
/// ```
/// use embkit::model::BagClassifierConfig;
/// use rand::{rngs::StdRng, SeedableRng};
///
/// let config = BagClassifierConfig::new(1000, 4).with_bigram_buckets(5000);
/// let model = config.init(&mut StdRng::seed_from_u64(0))?;
/// assert_eq!(model.bag().num_embeddings(), 6000);
///
/// // Words 5 7 9 and their bigrams (5, 7), (7, 9); padding (0) left out.
/// let mut ids = Vec::new();
/// config.document_ids(&[5, 7, 9, 0, 0], &mut ids);
/// assert_eq!(&ids[..3], &[5, 7, 9]);
/// assert_eq!(ids[3], config.bigram_id(5, 7));
/// assert!(ids[3..].iter().all(|&id| id >= 1000));
///
/// assert!(BagClassifierConfig::new(1000, 1).init(&mut StdRng::seed_from_u64(0)).is_err());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BagClassifierConfig {
    /// Rows for word ids: ids `0..num_words`, usually the vocabulary size.
    pub num_words: usize,
    /// Rows for hashed word bigrams after the word rows; 0 uses words
    /// only. Default [`DEFAULT_BIGRAM_BUCKETS`](Self::DEFAULT_BIGRAM_BUCKETS).
    pub bigram_buckets: usize,
    /// Length of each row (fastText's `dim`). Default
    /// [`DEFAULT_EMBEDDING_DIM`](Self::DEFAULT_EMBEDDING_DIM).
    pub embedding_dim: usize,
    /// Classes of the softmax output; at least 2.
    pub num_classes: usize,
    /// The id that pads documents to a common length: left out of every
    /// bag, of the mean's count and of the bigrams. Default 0 (the mask id
    /// of a [`TextVectorizer`](crate::TextVectorizer)).
    pub padding_idx: u32,
    /// How the table's rows start. Default `Uniform { bound: 1 /
    /// embedding_dim }`, as fastText. The output layer starts at zero, as
    /// fastText's.
    pub init: Init,
}

impl BagClassifierConfig {
    /// The default [`embedding_dim`](Self::embedding_dim).
    pub const DEFAULT_EMBEDDING_DIM: usize = 50;
    /// The default [`bigram_buckets`](Self::bigram_buckets).
    pub const DEFAULT_BIGRAM_BUCKETS: usize = 200_000;

    /// A config for `num_words` word ids and `num_classes` classes;
    /// everything else at its default.
    pub fn new(num_words: usize, num_classes: usize) -> Self {
        let dim = Self::DEFAULT_EMBEDDING_DIM;
        Self {
            num_words,
            bigram_buckets: Self::DEFAULT_BIGRAM_BUCKETS,
            embedding_dim: dim,
            num_classes,
            padding_idx: 0,
            init: Init::Uniform { bound: 1.0 / dim as f32 },
        }
    }

    /// Sets [`bigram_buckets`](Self::bigram_buckets).
    pub fn with_bigram_buckets(mut self, bigram_buckets: usize) -> Self {
        self.bigram_buckets = bigram_buckets;
        self
    }

    /// Sets [`embedding_dim`](Self::embedding_dim), and the default
    /// initialiser's bound to `1 / embedding_dim` if the initialiser is
    /// still the default of the old size.
    pub fn with_embedding_dim(mut self, embedding_dim: usize) -> Self {
        let old_default = Init::Uniform { bound: 1.0 / self.embedding_dim.max(1) as f32 };
        if self.init == old_default {
            self.init = Init::Uniform { bound: 1.0 / embedding_dim.max(1) as f32 };
        }
        self.embedding_dim = embedding_dim;
        self
    }

    /// Sets [`padding_idx`](Self::padding_idx).
    pub fn with_padding_idx(mut self, padding_idx: u32) -> Self {
        self.padding_idx = padding_idx;
        self
    }

    /// Sets [`init`](Self::init).
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Rows of the table: words, then bigram buckets.
    pub fn num_embeddings(&self) -> usize {
        self.num_words + self.bigram_buckets
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the setting, the rule and the value.
    pub fn validate(&self) -> Result<()> {
        for (field, n) in [("num_words", self.num_words), ("embedding_dim", self.embedding_dim)] {
            if n == 0 {
                return Err(Error::config(field, "must be at least 1, got 0"));
            }
        }
        if self.num_classes < 2 {
            return Err(Error::config(
                "num_classes",
                format!("must be at least 2, got {}", self.num_classes),
            ));
        }
        if self.padding_idx as usize >= self.num_words {
            return Err(Error::config(
                "padding_idx",
                format!(
                    "is {}, but there are {} word ids (it must be one of them)",
                    self.padding_idx, self.num_words
                ),
            ));
        }
        if self.num_embeddings() > u32::MAX as usize {
            return Err(Error::config(
                "bigram_buckets",
                format!(
                    "{} words and {} buckets do not fit u32 ids",
                    self.num_words, self.bigram_buckets
                ),
            ));
        }
        self.bag_table().validate()
    }

    /// The config of the table: mean mode, padding left out.
    pub fn bag_table(&self) -> EmbeddingBagConfig {
        let mut config = EmbeddingBagConfig::new(self.num_embeddings(), self.embedding_dim)
            .with_mode(BagMode::Mean)
            .with_init(self.init.clone());
        config.padding_idx = Some(self.padding_idx);
        config
    }

    /// The config of the output layer: `[embedding_dim, num_classes]`,
    /// softmax, starting at zero.
    pub fn output_layer(&self) -> DenseConfig {
        DenseConfig::new(self.embedding_dim, self.num_classes)
            .with_activation(Activation::Softmax)
            .with_kernel_init(Init::Zeros)
    }

    /// The row of the word bigram `(a, b)`: `num_words + h % bigram_buckets`
    /// with `h` a 64-bit mix (SplitMix64's finaliser) of `a · 2^32 + b`.
    ///
    /// # Panics
    ///
    /// If [`bigram_buckets`](Self::bigram_buckets) is 0.
    #[track_caller]
    pub fn bigram_id(&self, a: u32, b: u32) -> u32 {
        assert!(self.bigram_buckets > 0, "bigram_id needs bigram buckets");
        let h = mix((u64::from(a) << 32) | u64::from(b));
        (self.num_words as u64 + h % self.bigram_buckets as u64) as u32
    }

    /// Appends the bag of one document to `out`: its word ids other than
    /// padding, in order, then (with bigram buckets) the row of each pair
    /// of consecutive words ([`bigram_id`](Self::bigram_id)), as
    /// fastText's `wordNgrams 2`.
    pub fn document_ids(&self, word_ids: &[u32], out: &mut Vec<u32>) {
        let start = out.len();
        out.extend(word_ids.iter().copied().filter(|&id| id != self.padding_idx));
        if self.bigram_buckets > 0 {
            let end = out.len();
            for k in start + 1..end {
                let id = self.bigram_id(out[k - 1], out[k]);
                out.push(id);
            }
        }
    }

    /// The bags of several documents ([`document_ids`](Self::document_ids)),
    /// one row each, padded with [`padding_idx`](Self::padding_idx) to the
    /// longest; with `max_len`, bags are cut to that many ids (words
    /// first, so a cut drops bigrams before words).
    ///
    /// # Shapes
    ///
    /// - returns: `[documents, longest bag]`
    pub fn documents<'a>(
        &self,
        word_ids: impl IntoIterator<Item = &'a [u32]>,
        max_len: Option<usize>,
    ) -> Array2<u32> {
        let mut bags: Vec<Vec<u32>> = Vec::new();
        for doc in word_ids {
            let mut bag = Vec::new();
            self.document_ids(doc, &mut bag);
            if let Some(max) = max_len {
                bag.truncate(max);
            }
            bags.push(bag);
        }
        let len = bags.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut out = Array2::from_elem((bags.len(), len), self.padding_idx);
        for (mut row, bag) in out.rows_mut().into_iter().zip(&bags) {
            for (o, &id) in row.iter_mut().zip(bag) {
                *o = id;
            }
        }
        out
    }

    /// Validates the config and builds the model, drawing the table's
    /// rows from `rng` (the output layer starts at zero).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] as [`validate`](Self::validate).
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<BagClassifier> {
        self.validate()?;
        let bag = self.bag_table().init(rng)?;
        let dense = self.output_layer().init(rng)?;
        BagClassifier::from_parts(self.clone(), bag, dense)
    }
}

/// One SplitMix64 step from `z`: the golden-ratio increment, then the
/// finaliser.
fn mix(z: u64) -> u64 {
    crate::data::mix64(z.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// A fastText-style classifier: the mean of a document's rows (words and
/// hashed word bigrams, see [`BagClassifierConfig`]) through a softmax
/// [`Dense`] layer.
///
/// Input ids are `[batch, seq_len]`: each row one document's bag
/// ([`BagClassifierConfig::documents`]), padded with
/// [`padding_idx`](BagClassifierConfig::padding_idx), which is left out of
/// the mean; outputs are class probabilities `[batch, num_classes]`.
/// Trained with [`fit`](crate::model::fit) and
/// [`Loss::SparseCategoricalCrossentropy`] (computed from the logits, as
/// [`Sequential`](crate::Sequential) does).
///
/// # Examples
///
/// ```
/// use embkit::model::BagClassifierConfig;
/// use embkit::{AdamConfig, Dataset, Loss, NoObserver, TrainConfig};
/// use ndarray::Array1;
/// use rand::{rngs::StdRng, SeedableRng};
///
/// // Words 1-2 mean class 0, words 3-4 class 1; 0 is padding.
/// let config = BagClassifierConfig::new(5, 2).with_embedding_dim(4).with_bigram_buckets(8);
/// let docs: Vec<&[u32]> = vec![&[1, 2, 1], &[3, 4], &[2, 1], &[4, 3, 3]];
/// let ids = config.documents(docs, None);
/// let y = Array1::from(vec![0.0f32, 1.0, 0.0, 1.0]).into_dyn();
/// let mut model = config.init(&mut StdRng::seed_from_u64(0))?;
/// let train = TrainConfig::new(
///     Loss::SparseCategoricalCrossentropy { from_logits: false },
///     AdamConfig::new().with_learning_rate(0.1).into(),
/// )
/// .with_epochs(30)
/// .with_batch_size(2);
/// model.fit(Dataset::new(ids.view(), y.view())?, None, &train, &mut NoObserver)?;
/// let p = model.predict(ids.view(), 8)?;
/// assert!(p[[0, 0]] > 0.5 && p[[1, 1]] > 0.5);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BagClassifier {
    config: BagClassifierConfig,
    bag: EmbeddingBag,
    dense: Dense,
    /// The ids of a batch without padding, and where each bag starts.
    flat: Vec<u32>,
    offsets: Vec<usize>,
    /// Output of the last training forward.
    output: Option<ArrayD<f32>>,
}

impl BagClassifier {
    /// Assembles a model from built layers (used by loading).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid or a layer does
    /// not match it.
    pub fn from_parts(
        config: BagClassifierConfig,
        bag: EmbeddingBag,
        dense: Dense,
    ) -> Result<Self> {
        config.validate()?;
        if bag.config() != &config.bag_table() {
            return Err(Error::config("bag", "the table does not match the model's config"));
        }
        let want = config.output_layer();
        let got = dense.config();
        if (got.in_features, got.out_features, got.activation, got.use_bias)
            != (want.in_features, want.out_features, want.activation, want.use_bias)
        {
            return Err(Error::config(
                "dense",
                "the output layer does not match the model's config",
            ));
        }
        Ok(Self { config, bag, dense, flat: Vec::new(), offsets: Vec::new(), output: None })
    }

    /// The training settings the defaults were tuned with: sparse
    /// categorical cross-entropy, accuracy, Adam with
    /// [`DEFAULT_LEARNING_RATE`](Self::DEFAULT_LEARNING_RATE) (lazy on the
    /// table's rows), [`DEFAULT_EPOCHS`](Self::DEFAULT_EPOCHS) epochs of
    /// [`DEFAULT_BATCH_SIZE`](Self::DEFAULT_BATCH_SIZE) documents, seed 0.
    pub fn default_train_config() -> TrainConfig {
        let adam = crate::AdamConfig::new().with_learning_rate(Self::DEFAULT_LEARNING_RATE);
        TrainConfig::new(Loss::SparseCategoricalCrossentropy { from_logits: false }, adam.into())
            .with_metrics(vec![Metric::Accuracy])
            .with_epochs(Self::DEFAULT_EPOCHS)
            .with_batch_size(Self::DEFAULT_BATCH_SIZE)
    }

    /// Epochs of [`default_train_config`](Self::default_train_config).
    pub const DEFAULT_EPOCHS: usize = 10;
    /// Batch size of [`default_train_config`](Self::default_train_config).
    pub const DEFAULT_BATCH_SIZE: usize = 16;
    /// Adam's learning rate in
    /// [`default_train_config`](Self::default_train_config).
    pub const DEFAULT_LEARNING_RATE: f32 = 0.01;

    /// The config the model was built from.
    pub fn config(&self) -> &BagClassifierConfig {
        &self.config
    }

    /// The table: word rows, then bigram rows.
    pub fn bag(&self) -> &EmbeddingBag {
        &self.bag
    }

    /// The table, mutably (for example to set weights in a test).
    pub fn bag_mut(&mut self) -> &mut EmbeddingBag {
        &mut self.bag
    }

    /// The output layer.
    pub fn dense(&self) -> &Dense {
        &self.dense
    }

    /// The output layer, mutably.
    pub fn dense_mut(&mut self) -> &mut Dense {
        &mut self.dense
    }

    /// The word rows of the table (`[num_words, embedding_dim]`, the
    /// bigram rows left out) as word vectors named by `words`, one per
    /// word id.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `words` does not have one word per word
    /// id; as [`Vectors::new`](crate::format::Vectors::new) otherwise.
    pub fn word_vectors(&self, words: Vec<String>) -> Result<crate::format::Vectors> {
        let (n, dim) = (self.config.num_words, self.config.embedding_dim);
        if words.len() != n {
            return Err(Error::shape(
                "words",
                format!("{n}, one per word row of the table"),
                &[words.len()],
            ));
        }
        crate::format::Vectors::new(words, dim, self.bag.weights()[..n * dim].to_vec())
    }

    /// Class probabilities of each document, `batch_size` documents at a
    /// time.
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n, seq_len]`
    /// - returns: `[n, num_classes]`
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a batch size of 0;
    /// [`Error::IdOutOfRange`] for an id past the table.
    pub fn predict(&mut self, ids: ArrayView2<'_, u32>, batch_size: usize) -> Result<Array2<f32>> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        let mut out = Array2::zeros((ids.nrows(), self.config.num_classes));
        let mut start = 0;
        for chunk in ids.axis_chunks_iter(Axis(0), batch_size) {
            let pred = self.run(chunk, false, false)?;
            let end = start + chunk.nrows();
            out.slice_axis_mut(Axis(0), (start..end).into())
                .assign(&pred.into_dimensionality::<Ix2>().expect("[batch, classes]"));
            start = end;
        }
        Ok(out)
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

    /// The forward pass. With `keep_logits`, the output layer keeps its
    /// logits even when not training (it computes the same in both
    /// modes).
    fn run(
        &mut self,
        ids: ArrayView2<'_, u32>,
        training: bool,
        keep_logits: bool,
    ) -> Result<ArrayD<f32>> {
        let pad = self.config.padding_idx;
        self.flat.clear();
        self.offsets.clear();
        for row in ids.rows() {
            self.offsets.push(self.flat.len());
            self.flat.extend(row.iter().copied().filter(|&id| id != pad));
        }
        if self.offsets.is_empty() {
            return Ok(ArrayD::zeros(ndarray::IxDyn(&[0, self.config.num_classes])));
        }
        let x = self.bag.forward(&self.flat, &self.offsets, None, training)?;
        let y = self.dense.forward(x.into_dyn().view(), training || keep_logits)?;
        self.output = training.then(|| y.clone());
        Ok(y)
    }

    fn dense_params(&mut self) -> Vec<ParamMut<'_>> {
        self.dense.params_mut()
    }
}

impl Model for BagClassifier {
    fn forward(&mut self, ids: ArrayView2<'_, u32>, training: bool) -> Result<ArrayD<f32>> {
        self.run(ids, training, false)
    }

    fn evaluate_batch(
        &mut self,
        ids: ArrayView2<'_, u32>,
        loss: &Loss,
        targets: ArrayViewD<'_, f32>,
    ) -> Result<(f32, ArrayD<f32>)> {
        let fused = loss.with_logits_for(Activation::Softmax);
        let pred = self.run(ids, false, fused.is_some())?;
        let value = match fused {
            Some(logit_loss) => {
                let logits = self.dense.logits().expect("the output layer kept its logits");
                logit_loss.value(logits, targets)?
            }
            None => loss.value(pred.view(), targets)?,
        };
        Ok((value, pred))
    }

    fn backward(&mut self, loss: &Loss, targets: ArrayViewD<'_, f32>) -> Result<f32> {
        let output = self.output.take().ok_or_else(|| {
            Error::InvalidState("BagClassifier::backward before a training forward".into())
        })?;
        let (value, grad_x) = match loss.with_logits_for(Activation::Softmax) {
            Some(logit_loss) => {
                let logits = self.dense.logits().expect("a training forward keeps them").to_owned();
                let (value, g) = logit_loss.forward_backward(logits.view(), targets)?;
                (value, self.dense.backward_from_logits(g.view())?)
            }
            None => {
                let (value, g) = loss.forward_backward(output.view(), targets)?;
                (value, self.dense.backward(g.view())?)
            }
        };
        let grad_x = grad_x.into_dimensionality::<Ix2>().expect("the bag's output is [batch, dim]");
        self.bag.backward(grad_x.view())?;
        Ok(value)
    }

    fn clip_gradients(&mut self, clipping: &GradientClipping) -> Result<()> {
        let mut grads = self.bag.grads_mut();
        grads.extend(self.dense.params_mut().into_iter().map(|p| GradMut::Dense(p.grad)));
        clipping.apply(&mut grads)
    }

    fn gradients_are_finite(&mut self) -> bool {
        crate::kernels::all_finite(self.bag.grad().rows())
            && self.dense_params().iter().all(|p| crate::kernels::all_finite(p.grad))
    }

    fn step(&mut self, optimizer: &mut dyn Optimizer) -> Result<()> {
        self.bag.step(optimizer, "bag")?;
        for p in self.dense.params_mut() {
            optimizer.step_dense(&format!("dense.{}", p.name), p.value, p.grad)?;
        }
        optimizer.finish_step();
        Ok(())
    }

    fn set_threads(&mut self, threads: crate::Threads) {
        self.bag.set_threads(threads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn invalid_settings_name_the_field() {
        let err = BagClassifierConfig::new(10, 2).with_padding_idx(10).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid padding_idx: is 10, but there are 10 word ids (it must be one of them)"
        );
        let err = BagClassifierConfig::new(10, 1).validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid num_classes: must be at least 2, got 1");
    }

    #[test]
    fn padding_is_left_out_of_the_mean() {
        let config = BagClassifierConfig::new(4, 2).with_embedding_dim(2).with_bigram_buckets(0);
        let mut model = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
        model.dense_mut().kernel_mut().assign(&array![[1.0, 0.0], [0.0, 1.0]]);
        let a = model.forward(array![[1u32, 2]].view(), false).unwrap();
        let b = model.forward(array![[1u32, 0, 2, 0, 0]].view(), false).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn bigrams_stay_in_their_rows() {
        let config = BagClassifierConfig::new(7, 2).with_bigram_buckets(3);
        for a in 0..50 {
            for b in 0..50 {
                let id = config.bigram_id(a, b);
                assert!((7..10).contains(&id), "{id}");
            }
        }
    }
}
