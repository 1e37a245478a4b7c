//! [`BagClassifier`]: a fastText-style text classifier (Joulin et al.
//! 2017, "Bag of Tricks for Efficient Text Classification"): the mean of
//! a document's word and hashed word-bigram rows ([`EmbeddingBag`]), then
//! a softmax [`Dense`] layer. With [`BagWeighting::TfIdf`] and a hidden
//! activation it is also the shape of Keras's bag-of-bigrams model
//! (`TextVectorization(ngrams=2, output_mode="tf_idf") → Dense(units,
//! "relu") → Dropout → Dense`), computed sparsely. With [`rows_are_logits`](BagClassifierConfig::rows_are_logits)
//! the rows are the class scores: a linear classifier on the weighted bag
//! (with [`BagWeighting::TfIdfL2`], unregularised logistic regression on
//! scikit-learn's TF-IDF vectors).

use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, Model};
use crate::layers::ParamMut;
use crate::layers::{ActivationLayer, Dropout, DropoutConfig};
use crate::model::{Evaluation, History, Observer, TrainConfig};
use crate::optim::{GradMut, GradientClipping};
use crate::{
    Activation, BagMode, Dense, DenseConfig, EmbeddingBag, EmbeddingBagConfig, Error, Init, Loss,
    Metric, Optimizer, Result,
};

/// How a [`BagClassifier`] pools the rows of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BagWeighting {
    /// The mean of the rows (fastText).
    #[default]
    Mean,
    /// The sum of the rows, each occurrence weighted by its row's inverse
    /// document frequency `ln(1 + N / (1 + df))` over the `N` training
    /// documents ([`BagClassifier::adapt`]): the product of Keras's
    /// `TextVectorization(output_mode="tf_idf")` vector (term count times
    /// idf) and the table, as a `Dense` layer on that vector computes it.
    TfIdf,
    /// The sum of the rows weighted as scikit-learn's `TfidfVectorizer()`
    /// (its defaults: `smooth_idf`, `norm="l2"`) weighs terms: a row that
    /// occurs `tf` times in the document weighs `tf · idf` with `idf =
    /// ln((1 + N) / (1 + df)) + 1`, and the document's weights are divided
    /// by their Euclidean norm, so long and short documents pool to the
    /// same scale. Rows no training document holds (and a vocabulary's
    /// unknown-token ids) weigh 0: they are left out, as the vectorizer
    /// leaves out terms outside its vocabulary.
    TfIdfL2,
}

impl BagWeighting {
    /// Whether the weighting needs idf weights from
    /// [`BagClassifier::adapt`].
    pub fn uses_idf(self) -> bool {
        self != Self::Mean
    }
}

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
#[serde(deny_unknown_fields)]
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
    /// embedding_dim }`, as fastText. The output layer starts as
    /// [`output_layer`](Self::output_layer) says.
    pub init: Init,
    /// How a document's rows are pooled. Default [`BagWeighting::Mean`].
    /// (This field and the four after it are saved only when not at their
    /// defaults, so a fastText model's file is as format version 1 wrote
    /// it.)
    #[serde(default, skip_serializing_if = "is_default")]
    pub weighting: BagWeighting,
    /// Applied to the pooled vector before the output layer (the table is
    /// then the kernel of a hidden `Dense(embedding_dim, activation)`, with
    /// [`hidden_bias`](Self::hidden_bias) when set, as
    /// [`with_hidden`](Self::with_hidden) does). Default [`Activation::Linear`]: fastText's linear
    /// model. Not softmax.
    #[serde(default, skip_serializing_if = "is_default")]
    pub hidden_activation: Activation,
    /// Dropout rate after the hidden activation, in training. Default 0.
    #[serde(default, skip_serializing_if = "is_default")]
    pub dropout: f32,
    /// A learned bias added to the pooled vector before the hidden
    /// activation (it starts at zero), as Keras's `Dense(units,
    /// activation)` has one (`use_bias=True`). Only with a hidden
    /// activation; [`with_hidden`](Self::with_hidden) sets it. Default false.
    #[serde(default, skip_serializing_if = "is_default")]
    pub hidden_bias: bool,
    /// The rows are the class scores: a document's pooled row is its
    /// logits (`embedding_dim == num_classes`), and the output layer adds
    /// only its bias (its kernel stays the identity and is not trained).
    /// The model is then a linear classifier on the weighted bag: with
    /// [`BagWeighting::TfIdf`] Keras's `TextVectorization(output_mode=
    /// "tf_idf") → Dense(num_classes, "softmax")`, with
    /// [`BagWeighting::TfIdfL2`] unregularised logistic regression on
    /// scikit-learn's TF-IDF vectors. Default false (an output matrix after the rows).
    /// See [`with_rows_as_logits`](Self::with_rows_as_logits).
    #[serde(default, skip_serializing_if = "is_default")]
    pub rows_are_logits: bool,
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
            weighting: BagWeighting::Mean,
            hidden_activation: Activation::Linear,
            dropout: 0.0,
            hidden_bias: false,
            rows_are_logits: false,
        }
    }

    /// Whether the model uses what format version 1 could not save: TF-IDF
    /// weights, a hidden activation, dropout or rows that are the logits.
    pub fn uses_bag_features(&self) -> bool {
        self.weighting != BagWeighting::Mean
            || self.hidden_activation != Activation::Linear
            || self.dropout != 0.0
            || self.rows_are_logits
    }

    /// Makes the rows the class scores ([`rows_are_logits`](Self::rows_are_logits)):
    /// `embedding_dim` becomes `num_classes`, and the rows start at zero,
    /// as a linear model's weights (the gradient of the first step moves
    /// them; there is no product of two layers to break the symmetry of).
    pub fn with_rows_as_logits(mut self) -> Self {
        self.embedding_dim = self.num_classes;
        self.init = Init::Zeros;
        self.rows_are_logits = true;
        self
    }

    /// Sets [`weighting`](Self::weighting).
    pub fn with_weighting(mut self, weighting: BagWeighting) -> Self {
        self.weighting = weighting;
        self
    }

    /// Sets [`hidden_activation`](Self::hidden_activation) and
    /// [`dropout`](Self::dropout). A hidden layer is Keras's `Dense(units,
    /// activation)`: a [`hidden_bias`](Self::hidden_bias) (for any
    /// activation but linear), and it starts as Keras's does: the table,
    /// still at fastText's default initialiser, becomes Glorot-uniform over
    /// `[rows, embedding_dim]`, and the output layer's kernel is
    /// Glorot-uniform too (see [`output_layer`](Self::output_layer)).
    pub fn with_hidden(mut self, activation: Activation, dropout: f32) -> Self {
        let fasttext = Init::Uniform { bound: 1.0 / self.embedding_dim.max(1) as f32 };
        if activation != Activation::Linear && self.init == fasttext {
            self.init = Init::GlorotUniform;
        }
        self.hidden_activation = activation;
        self.hidden_bias = activation != Activation::Linear;
        self.dropout = dropout;
        self
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
        if self.hidden_activation == Activation::Softmax {
            return Err(Error::config(
                "hidden_activation",
                "softmax is the output's; the hidden layer takes linear, relu, sigmoid or tanh",
            ));
        }
        if self.rows_are_logits {
            if self.embedding_dim != self.num_classes {
                return Err(Error::config(
                    "rows_are_logits",
                    format!(
                        "the rows are the logits, so embedding_dim ({}) must equal num_classes ({})",
                        self.embedding_dim, self.num_classes
                    ),
                ));
            }
            if self.hidden_activation != Activation::Linear || self.dropout != 0.0 {
                return Err(Error::config(
                    "rows_are_logits",
                    format!(
                        "the rows are the logits: there is no hidden layer for an activation or \
                         dropout (hidden_activation {}, dropout {})",
                        self.hidden_activation.name(),
                        self.dropout
                    ),
                ));
            }
        }
        if self.hidden_bias && self.hidden_activation == Activation::Linear {
            return Err(Error::config(
                "hidden_bias",
                "a hidden bias needs a hidden activation (hidden_activation is linear: the output \
                 layer's bias already does its work)",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "dropout",
                format!("must be in [0, 1), got {}", self.dropout),
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

    /// The config of the table: mean mode (sum mode for TF-IDF weights),
    /// padding left out.
    pub fn bag_table(&self) -> EmbeddingBagConfig {
        let mode = match self.weighting {
            BagWeighting::Mean => BagMode::Mean,
            BagWeighting::TfIdf | BagWeighting::TfIdfL2 => BagMode::Sum,
        };
        let mut config = EmbeddingBagConfig::new(self.num_embeddings(), self.embedding_dim)
            .with_mode(mode)
            .with_init(self.init.clone());
        config.padding_idx = Some(self.padding_idx);
        config
    }

    /// The config of the output layer: `[embedding_dim, num_classes]`,
    /// softmax, starting at zero as fastText's, or, after a hidden
    /// activation, Glorot-uniform as Keras's `Dense` (a zero kernel would
    /// give the hidden layer no gradient to start from). With
    /// [`rows_are_logits`](Self::rows_are_logits) the model sets the kernel
    /// to the identity and trains only the bias.
    pub fn output_layer(&self) -> DenseConfig {
        let kernel = if self.hidden_activation == Activation::Linear {
            Init::Zeros
        } else {
            Init::GlorotUniform
        };
        DenseConfig::new(self.embedding_dim, self.num_classes)
            .with_activation(Activation::Softmax)
            .with_kernel_init(kernel)
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
    /// rows from `rng` (the output layer starts as
    /// [`output_layer`](Self::output_layer) says).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] as [`validate`](Self::validate).
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<BagClassifier> {
        self.validate()?;
        let bag = self.bag_table().init(rng)?;
        let mut dense = self.output_layer().init(rng)?;
        if self.rows_are_logits {
            dense.kernel_mut().assign(&Array2::eye(self.num_classes));
        }
        let mut model = BagClassifier::from_parts(self.clone(), bag, dense)?;
        if self.dropout > 0.0 {
            let seed = rng.next_u64();
            model.dropout = Some(DropoutConfig::new(self.dropout).with_seed(seed).init()?);
        }
        Ok(model)
    }
}

/// With [`rows_are_logits`](BagClassifierConfig::rows_are_logits), the
/// output kernel must be the identity.
///
/// # Errors
///
/// [`Error::InvalidConfig`] naming the first entry that is not.
pub(crate) fn check_identity_kernel(config: &BagClassifierConfig, dense: &Dense) -> Result<()> {
    if !config.rows_are_logits {
        return Ok(());
    }
    let off =
        dense.kernel().indexed_iter().find(|&((r, c), &v)| v != if r == c { 1.0 } else { 0.0 });
    match off {
        None => Ok(()),
        Some(((r, c), v)) => Err(Error::config(
            "dense",
            format!(
                "the rows are the logits, so the output kernel must be the identity; \
                 kernel[{r}, {c}] is {v}"
            ),
        )),
    }
}

/// Whether a setting is at its default (left out of saved configs).
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// One SplitMix64 step from `z`: the golden-ratio increment, then the
/// finaliser.
fn mix(z: u64) -> u64 {
    crate::data::mix64(z.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// A fastText-style classifier: the mean of a document's rows (words and
/// hashed word bigrams, see [`BagClassifierConfig`]) through a softmax
/// [`Dense`] layer; or the rows pooled with TF-IDF weights
/// ([`BagWeighting`]), a hidden activation and dropout, or rows that are
/// the class scores ([`rows_are_logits`](BagClassifierConfig::rows_are_logits)).
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
    /// The hidden activation, unless linear.
    hidden: Option<ActivationLayer>,
    /// Dropout after it, when the rate is above 0.
    dropout: Option<Dropout>,
    /// The hidden layer's bias and its gradient
    /// ([`hidden_bias`](BagClassifierConfig::hidden_bias)).
    hidden_bias: Option<(Array1<f32>, Array1<f32>)>,
    dense: Dense,
    /// TF-IDF weightings: one inverse document frequency per row.
    idf: Option<Vec<f32>>,
    /// The ids of a batch without padding, and where each bag starts.
    flat: Vec<u32>,
    offsets: Vec<usize>,
    /// TF-IDF: the weight of each id of `flat`.
    weights: Vec<f32>,
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
        check_identity_kernel(&config, &dense)?;
        let hidden = (config.hidden_activation != Activation::Linear)
            .then(|| ActivationLayer::new(config.hidden_activation));
        let dropout = if config.dropout > 0.0 {
            Some(DropoutConfig::new(config.dropout).init()?)
        } else {
            None
        };
        let hidden_bias = config
            .hidden_bias
            .then(|| (Array1::zeros(config.embedding_dim), Array1::zeros(config.embedding_dim)));
        Ok(Self {
            config,
            bag,
            hidden,
            dropout,
            hidden_bias,
            dense,
            idf: None,
            flat: Vec::new(),
            offsets: Vec::new(),
            weights: Vec::new(),
            output: None,
        })
    }

    /// TF-IDF weightings: learns each row's inverse document frequency
    /// from the `N` training bags (one per row of `bags`, padding left out;
    /// a row in several places of a bag counts once in its `df`).
    /// [`BagWeighting::TfIdf`]: `ln(1 + N / (1 + df))`, as Keras's
    /// `TextVectorization.adapt` does for its tokens; the `oov` rows (a
    /// vocabulary's unknown-token ids) and rows no bag holds get the mean
    /// of the other rows' idf, as Keras gives its OOV token.
    /// [`BagWeighting::TfIdfL2`]: `ln((1 + N) / (1 + df)) + 1`, as
    /// scikit-learn's `TfidfVectorizer`; the `oov` rows and rows no bag
    /// holds get 0 (left out of the documents). Call it before training;
    /// it is saved with the model.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] for no bags; [`Error::IdOutOfRange`] for an id
    /// past the table; as [`set_idf`](Self::set_idf).
    pub fn adapt(&mut self, bags: ArrayView2<'_, u32>, oov: &[u32]) -> Result<()> {
        if bags.nrows() == 0 {
            return Err(Error::EmptyData { what: "bags: adapt needs training documents".into() });
        }
        let rows = self.config.num_embeddings();
        let pad = self.config.padding_idx;
        let mut df = vec![0u32; rows];
        let mut last_seen = vec![u32::MAX; rows];
        for (doc, bag) in bags.rows().into_iter().enumerate() {
            for &id in bag.iter().filter(|&&id| id != pad) {
                let Some(seen) = last_seen.get_mut(id as usize) else {
                    return Err(Error::IdOutOfRange { id, num_embeddings: rows });
                };
                if *seen != doc as u32 {
                    *seen = doc as u32;
                    df[id as usize] += 1;
                }
            }
        }
        for &id in oov {
            // Marked as unseen: the mean below (Keras) or 0 (scikit-learn).
            *df.get_mut(id as usize).ok_or(Error::IdOutOfRange { id, num_embeddings: rows })? = 0;
        }
        let n = bags.nrows() as f64;
        let idf: Vec<f32> = match self.config.weighting {
            BagWeighting::TfIdfL2 => {
                // scikit-learn: idf = ln((1 + n) / (1 + df)) + 1 (smooth_idf).
                let idf = |d: u32| ((1.0 + n) / (1.0 + f64::from(d))).ln() + 1.0;
                df.iter().map(|&d| if d > 0 { idf(d) as f32 } else { 0.0 }).collect()
            }
            _ => {
                // Keras: idf = ln(1 + n / (1 + df)); OOV takes the mean.
                let idf = |d: u32| (1.0 + n / (1.0 + f64::from(d))).ln();
                let seen: Vec<f64> = df.iter().filter(|&&d| d > 0).map(|&d| idf(d)).collect();
                let mean = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
                df.iter().map(|&d| (if d > 0 { idf(d) } else { mean }) as f32).collect()
            }
        };
        self.set_idf(idf)
    }

    /// Sets the inverse document frequencies of a TF-IDF weighting (one
    /// per row; as a saved model holds them).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless one per row; [`Error::InvalidConfig`]
    /// for a negative or non-finite value, or a model that does not weight
    /// by TF-IDF.
    pub fn set_idf(&mut self, idf: Vec<f32>) -> Result<()> {
        if !self.config.weighting.uses_idf() {
            return Err(Error::config(
                "idf",
                "only a TF-IDF bag (weighting tf_idf or tf_idf_l2) has idf weights",
            ));
        }
        let rows = self.config.num_embeddings();
        if idf.len() != rows {
            return Err(Error::shape("idf", format!("[{rows}], one per row"), &[idf.len()]));
        }
        if let Some((id, w)) = idf.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(Error::config(
                "idf",
                format!("row {id} has {w}; weights are finite and at least 0"),
            ));
        }
        self.idf = Some(idf);
        Ok(())
    }

    /// The hidden layer's bias
    /// ([`hidden_bias`](BagClassifierConfig::hidden_bias)).
    pub fn hidden_bias(&self) -> Option<&Array1<f32>> {
        self.hidden_bias.as_ref().map(|(value, _)| value)
    }

    /// The gradient of the hidden layer's bias from the last `backward`.
    pub fn hidden_bias_grad(&self) -> Option<&Array1<f32>> {
        self.hidden_bias.as_ref().map(|(_, grad)| grad)
    }

    /// Sets the hidden layer's bias (as a saved model holds it).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a model without one or a non-finite
    /// value; [`Error::ShapeMismatch`] unless one per row dimension.
    pub fn set_hidden_bias(&mut self, bias: Vec<f32>) -> Result<()> {
        let dim = self.config.embedding_dim;
        let Some((value, _)) = &mut self.hidden_bias else {
            return Err(Error::config("hidden_bias", "the model has no hidden bias"));
        };
        if bias.len() != dim {
            return Err(Error::shape("hidden_bias", format!("[{dim}]"), &[bias.len()]));
        }
        if let Some((i, b)) = bias.iter().enumerate().find(|(_, b)| !b.is_finite()) {
            return Err(Error::config("hidden_bias", format!("entry {i} is {b}; must be finite")));
        }
        *value = Array1::from(bias);
        Ok(())
    }

    /// The rows' inverse document frequencies (TF-IDF weightings, after
    /// [`adapt`](Self::adapt)).
    pub fn idf(&self) -> Option<&[f32]> {
        self.idf.as_deref()
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
        let weights = match (self.config.weighting, &self.idf) {
            (BagWeighting::Mean, _) => None,
            (BagWeighting::TfIdf, Some(idf)) => {
                self.weights.clear();
                let weight = |id: &u32| idf.get(*id as usize).copied().unwrap_or(0.0);
                self.weights.extend(self.flat.iter().map(weight));
                Some(&self.weights[..])
            }
            (BagWeighting::TfIdfL2, Some(idf)) => {
                tf_idf_l2(&mut self.flat, &mut self.offsets, idf, &mut self.weights)?;
                Some(&self.weights[..])
            }
            (_, None) => {
                return Err(Error::InvalidState(
                    "a TF-IDF bag needs its idf weights: call adapt on the training bags first"
                        .into(),
                ))
            }
        };
        let mut pooled = self.bag.forward(&self.flat, &self.offsets, weights, training)?;
        if let Some((bias, _)) = &self.hidden_bias {
            pooled += bias;
        }
        let mut x = pooled.into_dyn();
        if let Some(hidden) = &mut self.hidden {
            x = hidden.forward(x.view(), training)?;
        }
        if let Some(dropout) = &mut self.dropout {
            x = dropout.forward(x.view(), training)?;
        }
        let y = self.dense.forward(x.view(), training || keep_logits)?;
        self.output = training.then(|| y.clone());
        Ok(y)
    }

    fn dense_params(&mut self) -> Vec<ParamMut<'_>> {
        self.dense.params_mut()
    }

    /// Whether the output kernel is the fixed identity
    /// ([`rows_are_logits`](BagClassifierConfig::rows_are_logits)).
    fn frozen_kernel(&self) -> bool {
        self.config.rows_are_logits
    }
}

/// Rewrites each bag of `flat` (starting at `offsets`) as its distinct
/// rows of non-zero idf, each once, weighted `tf · idf / ‖tf · idf‖₂`
/// ([`BagWeighting::TfIdfL2`]); the sum of these rows is the product of
/// scikit-learn's `TfidfVectorizer()` vector of the document and the table.
/// A bag without such rows becomes empty (it pools to zeros).
///
/// # Errors
///
/// [`Error::IdOutOfRange`] for an id past the table (one idf per row).
fn tf_idf_l2(
    flat: &mut Vec<u32>,
    offsets: &mut [usize],
    idf: &[f32],
    weights: &mut Vec<f32>,
) -> Result<()> {
    weights.clear();
    if let Some(&id) = flat.iter().find(|&&id| id as usize >= idf.len()) {
        // The first in input order, as the table reports it.
        return Err(Error::IdOutOfRange { id, num_embeddings: idf.len() });
    }
    let end_of_all = flat.len();
    let mut write = 0;
    for b in 0..offsets.len() {
        let (start, end) = (offsets[b], offsets.get(b + 1).copied().unwrap_or(end_of_all));
        offsets[b] = write;
        flat[start..end].sort_unstable();
        let first = write;
        let mut i = start;
        while i < end {
            let id = flat[i];
            let run = flat[i..end].iter().take_while(|&&x| x == id).count();
            i += run;
            let w = idf[id as usize];
            if w > 0.0 {
                flat[write] = id;
                weights.push(run as f32 * w);
                write += 1;
            }
        }
        let norm = weights[first..].iter().map(|w| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            weights[first..].iter_mut().for_each(|w| *w /= norm);
        }
    }
    flat.truncate(write);
    Ok(())
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
        let mut grad_x = grad_x;
        if let Some(dropout) = &mut self.dropout {
            grad_x = dropout.backward(grad_x.view())?;
        }
        if let Some(hidden) = &mut self.hidden {
            grad_x = hidden.backward(grad_x.view())?;
        }
        let grad_x = grad_x.into_dimensionality::<Ix2>().expect("the bag's output is [batch, dim]");
        if let Some((_, grad)) = &mut self.hidden_bias {
            *grad = grad_x.sum_axis(Axis(0));
        }
        self.bag.backward(grad_x.view())?;
        Ok(value)
    }

    fn clip_gradients(&mut self, clipping: &GradientClipping) -> Result<()> {
        let frozen = self.frozen_kernel();
        let mut grads = self.bag.grads_mut();
        grads.extend(
            self.dense
                .params_mut()
                .into_iter()
                .filter(|p| !(frozen && p.name == "kernel"))
                .map(|p| GradMut::Dense(p.grad)),
        );
        if let Some((_, grad)) = &mut self.hidden_bias {
            grads.push(GradMut::Dense(grad.as_slice_mut().expect("a contiguous bias")));
        }
        clipping.apply(&mut grads)
    }

    fn gradients_are_finite(&mut self) -> bool {
        crate::kernels::all_finite(self.bag.grad().rows())
            && self.dense_params().iter().all(|p| crate::kernels::all_finite(p.grad))
            && self.hidden_bias.as_ref().is_none_or(|(_, g)| g.iter().all(|v| v.is_finite()))
    }

    fn step(&mut self, optimizer: &mut dyn Optimizer) -> Result<()> {
        self.bag.step(optimizer, "bag")?;
        if let Some((value, grad)) = &mut self.hidden_bias {
            let value = value.as_slice_mut().expect("a contiguous bias");
            optimizer.step_dense("hidden.bias", value, grad.as_slice().expect("contiguous"))?;
        }
        let frozen = self.frozen_kernel();
        for p in self.dense.params_mut() {
            if !(frozen && p.name == "kernel") {
                optimizer.step_dense(&format!("dense.{}", p.name), p.value, p.grad)?;
            }
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
