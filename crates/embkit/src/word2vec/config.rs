//! [`SkipGramConfig`]: every setting of a word2vec run.

use serde::{Deserialize, Serialize};

use super::skipgram::SkipGram;
use super::vocab::WordCounts;
use crate::{Error, Result};

/// Which word2vec model is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Architecture {
    /// Skip-gram: each context word's input vector predicts the centre
    /// word (word2vec's `-cbow 0`, gensim's `sg=1`). The default.
    #[default]
    SkipGram,
    /// Continuous bag of words: the mean of the context's input vectors
    /// predicts the centre word, and every context word receives the whole
    /// error (word2vec's `-cbow 1`, gensim's `sg=0, cbow_mean=1`).
    Cbow,
}

/// Settings for a [`SkipGram`] model and its training.
///
/// Start from [`SkipGramConfig::new`] (gensim's and word2vec's defaults),
/// change what you need with the `with_*` methods, count a corpus with
/// [`build_vocab`](Self::build_vocab) and make the model with
/// [`init`](Self::init) (or do all of it and train with
/// [`SkipGram::fit`]).
///
/// gensim's names map as: `vector_size` → [`embedding_dim`](Self::embedding_dim),
/// `sg` → [`architecture`](Self::architecture), `epochs`, `window`,
/// `negative`, `ns_exponent`, `min_count`, `sample`, `alpha`,
/// `min_alpha`, `batch_words` and `seed` alike.
///
/// # Examples
///
/// ```
/// use embkit::word2vec::{Architecture, SkipGramConfig};
///
/// let config = SkipGramConfig::new().with_embedding_dim(50).with_architecture(Architecture::Cbow);
/// assert_eq!((config.window, config.negative, config.min_count), (5, 5, 5));
/// assert!(config.validate().is_ok());
/// assert!(SkipGramConfig::new().with_window(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SkipGramConfig {
    /// Skip-gram or CBOW. Default [`Architecture::SkipGram`].
    pub architecture: Architecture,
    /// Length of each word vector (gensim's `vector_size`). Default 100.
    pub embedding_dim: usize,
    /// The largest distance between the centre word and a context word.
    /// Each centre word uses a window drawn uniformly from `1..=window`
    /// (word2vec's dynamic window: `window - b`, `b` in `0..window`).
    /// Default 5.
    pub window: usize,
    /// Noise words drawn per positive example. Default 5.
    pub negative: usize,
    /// The noise distribution is the unigram distribution raised to this
    /// power. Default 0.75.
    pub ns_exponent: f64,
    /// Words seen fewer times are left out of the vocabulary (and of the
    /// sentences). Default 5.
    pub min_count: u64,
    /// The sub-sampling threshold: a word of count `f` among `total`
    /// vocabulary words is kept with probability
    /// `(sqrt(f / (sample * total)) + 1) * (sample * total) / f` (at most
    /// 1). 0 keeps every word. Default `1e-3`.
    pub sample: f64,
    /// The learning rate at the start. Default 0.025.
    pub alpha: f32,
    /// The learning rate at the end: it decays linearly from
    /// [`alpha`](Self::alpha) over all epochs' words. Default 0.0001.
    pub min_alpha: f32,
    /// Passes over the corpus. Default 5.
    pub epochs: usize,
    /// Lowercase words before counting and looking them up. Default
    /// `false` (word2vec does not).
    pub lowercase: bool,
    /// Words per job: a job is a run of sentences that one thread trains
    /// on against the weights as they were at the start of the round; a
    /// round is one job per thread, whose updates are then merged. A
    /// longer sentence is cut into pieces of this many words (gensim's
    /// `batch_words` and `MAX_WORDS_IN_BATCH`). Default 10,000.
    pub batch_words: usize,
    /// Compute the mean loss per epoch (costs one more logarithm per
    /// positive or noise word). Default `false`.
    pub compute_loss: bool,
    /// The seed of the initial vectors, the sub-sampling, the windows and
    /// the noise words. Default 1.
    pub seed: u64,
}

impl Default for SkipGramConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SkipGramConfig {
    /// The default [`embedding_dim`](Self::embedding_dim).
    pub const DEFAULT_EMBEDDING_DIM: usize = 100;

    /// A config with word2vec's and gensim's defaults.
    pub fn new() -> Self {
        Self {
            architecture: Architecture::SkipGram,
            embedding_dim: Self::DEFAULT_EMBEDDING_DIM,
            window: 5,
            negative: 5,
            ns_exponent: 0.75,
            min_count: 5,
            sample: 1e-3,
            alpha: 0.025,
            min_alpha: 0.0001,
            epochs: 5,
            lowercase: false,
            batch_words: 10_000,
            compute_loss: false,
            seed: 1,
        }
    }

    /// Sets [`architecture`](Self::architecture).
    pub fn with_architecture(mut self, architecture: Architecture) -> Self {
        self.architecture = architecture;
        self
    }

    /// Sets [`embedding_dim`](Self::embedding_dim).
    pub fn with_embedding_dim(mut self, embedding_dim: usize) -> Self {
        self.embedding_dim = embedding_dim;
        self
    }

    /// Sets [`window`](Self::window).
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// Sets [`negative`](Self::negative).
    pub fn with_negative(mut self, negative: usize) -> Self {
        self.negative = negative;
        self
    }

    /// Sets [`ns_exponent`](Self::ns_exponent).
    pub fn with_ns_exponent(mut self, ns_exponent: f64) -> Self {
        self.ns_exponent = ns_exponent;
        self
    }

    /// Sets [`min_count`](Self::min_count).
    pub fn with_min_count(mut self, min_count: u64) -> Self {
        self.min_count = min_count;
        self
    }

    /// Sets [`sample`](Self::sample).
    pub fn with_sample(mut self, sample: f64) -> Self {
        self.sample = sample;
        self
    }

    /// Sets [`alpha`](Self::alpha) and [`min_alpha`](Self::min_alpha).
    pub fn with_alpha(mut self, alpha: f32, min_alpha: f32) -> Self {
        self.alpha = alpha;
        self.min_alpha = min_alpha;
        self
    }

    /// Sets [`epochs`](Self::epochs).
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets [`lowercase`](Self::lowercase).
    pub fn with_lowercase(mut self, lowercase: bool) -> Self {
        self.lowercase = lowercase;
        self
    }

    /// Sets [`batch_words`](Self::batch_words).
    pub fn with_batch_words(mut self, batch_words: usize) -> Self {
        self.batch_words = batch_words;
        self
    }

    /// Sets [`compute_loss`](Self::compute_loss).
    pub fn with_compute_loss(mut self, compute_loss: bool) -> Self {
        self.compute_loss = compute_loss;
        self
    }

    /// Sets [`seed`](Self::seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the setting, the rule and the value:
    /// `embedding_dim`, `window`, `negative`, `epochs` and `batch_words`
    /// must be at least 1; `alpha` finite and above 0; `min_alpha` finite,
    /// at least 0 and at most `alpha`; `sample` finite and at least 0;
    /// `ns_exponent` finite.
    pub fn validate(&self) -> Result<()> {
        for (field, n) in [
            ("embedding_dim", self.embedding_dim),
            ("window", self.window),
            ("negative", self.negative),
            ("epochs", self.epochs),
            ("batch_words", self.batch_words),
        ] {
            if n == 0 {
                return Err(Error::config(field, "must be at least 1, got 0"));
            }
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::config(
                "alpha",
                format!("must be finite and above 0, got {}", self.alpha),
            ));
        }
        if !(self.min_alpha.is_finite() && self.min_alpha >= 0.0 && self.min_alpha <= self.alpha) {
            return Err(Error::config(
                "min_alpha",
                format!(
                    "must be finite, at least 0 and at most alpha ({}), got {}",
                    self.alpha, self.min_alpha
                ),
            ));
        }
        if !(self.sample.is_finite() && self.sample >= 0.0) {
            return Err(Error::config(
                "sample",
                format!("must be finite and at least 0, got {}", self.sample),
            ));
        }
        if !self.ns_exponent.is_finite() {
            return Err(Error::config(
                "ns_exponent",
                format!("must be finite, got {}", self.ns_exponent),
            ));
        }
        Ok(())
    }

    /// Counts the words of `lines` (one sentence per line, words separated
    /// by whitespace, lowercased with [`lowercase`](Self::lowercase)) and
    /// keeps those seen at least [`min_count`](Self::min_count) times, most
    /// frequent first (ties in order of first appearance, as gensim).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an invalid config;
    /// [`Error::EmptyData`] if the lines hold no word, or no word is seen
    /// `min_count` times.
    pub fn build_vocab<S: AsRef<str>>(
        &self,
        lines: impl IntoIterator<Item = S>,
    ) -> Result<WordCounts> {
        self.validate()?;
        WordCounts::count(lines, self.lowercase, self.min_count)
    }

    /// A model for `vocab`: input vectors uniform in
    /// `[-1 / embedding_dim, 1 / embedding_dim)` (from
    /// [`seed`](Self::seed)), output vectors zero, as gensim (word2vec.c
    /// draws from half that range).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an invalid config or a table of more
    /// than `usize::MAX` values.
    pub fn init(&self, vocab: WordCounts) -> Result<SkipGram> {
        self.validate()?;
        SkipGram::new(self.clone(), vocab)
    }
}
