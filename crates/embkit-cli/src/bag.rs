//! The fastText-style text classifier behind `train --architecture bag`,
//! `evaluate` and `eval-suite`: texts → [`TextVectorizer`] → word ids →
//! words and hashed bigrams → [`BagClassifier`], and its model directory
//! (the library's saved bag classifier plus the vectorizer's config and
//! the class names in the metadata).

use std::io::Cursor;
use std::path::Path;

use anyhow::{bail, Context, Result};
use embkit::data::LabelledTexts;
use embkit::format::{SavedBagClassifier, MODEL_FILE, VOCAB_FILE};
use embkit::model::{BagClassifier, BagClassifierConfig, BagWeighting};
use embkit::vocab::{TextVectorizer, TextVectorizerConfig};
use embkit::{Activation, Dataset, EarlyStopping, History, Observer, TrainConfig};
use ndarray::{Array1, Array2, ArrayD};
use rand::{rngs::StdRng, SeedableRng};

use crate::pipeline::{hold_out, optimizer_named, LrDecay, Prediction};

/// Metadata keys of the model directory (the same as the sequential text
/// classifier's).
const META_TASK: &str = "task";
const META_VECTORIZER: &str = "text_vectorizer";
const META_CLASSES: &str = "classes";
const TASK: &str = "text_classification";

/// How to build and train a bag classifier.
#[derive(Debug, Clone)]
pub struct BagSettings {
    /// Length of each row.
    pub embedding_dim: usize,
    /// Rows for hashed word bigrams (0: words only).
    pub bigram_buckets: usize,
    /// Vocabulary size, counting the mask and `[UNK]`; `None` keeps every
    /// word of the training texts.
    pub max_tokens: Option<usize>,
    /// Ids per document (words, then bigrams) at most; `None` keeps all.
    pub max_len: Option<usize>,
    /// Passes over the training data.
    pub epochs: usize,
    /// Documents per step.
    pub batch_size: usize,
    /// The optimizer's learning rate.
    pub learning_rate: f32,
    /// The optimizer: `adam`, `rmsprop`, `sgd` or `adagrad` (see
    /// [`optimizer_named`]).
    pub optimizer: String,
    /// How the learning rate changes over the run.
    pub lr_decay: LrDecay,
    /// Seed of the initial weights, the shuffling and the validation
    /// sample.
    pub seed: u64,
    /// Fraction of the training texts held out for validation (a seeded
    /// sample of each class) when no validation data is given.
    pub validation_split: f64,
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
    /// How a text's rows are pooled (mean, or TF-IDF weights summed).
    pub weighting: BagWeighting,
    /// Activation of the pooled vector before the output layer.
    pub hidden_activation: Activation,
    /// Dropout rate after it.
    pub dropout: f32,
    /// The vectorizer's n-grams (Keras's `ngrams`): 2 puts every word
    /// bigram of the training texts in the vocabulary (exact bigram rows,
    /// unlike the hashed `bigram_buckets`); 1 (default) keeps words.
    pub ngrams: usize,
    /// The rows are the class scores (no output matrix): a linear
    /// classifier on the weighted bag; `embedding_dim` is then ignored.
    pub rows_are_logits: bool,
}

impl BagSettings {
    /// The library's defaults (tuned on R8 and sentence polarity; see
    /// EVALUATION.md).
    pub fn defaults() -> Self {
        let train = BagClassifier::default_train_config();
        Self {
            embedding_dim: BagClassifierConfig::DEFAULT_EMBEDDING_DIM,
            bigram_buckets: BagClassifierConfig::DEFAULT_BIGRAM_BUCKETS,
            max_tokens: None,
            max_len: None,
            epochs: train.epochs,
            batch_size: train.batch_size,
            learning_rate: BagClassifier::DEFAULT_LEARNING_RATE,
            lr_decay: LrDecay::Linear,
            seed: 42,
            validation_split: 0.0,
            patience: None,
            weighting: BagWeighting::Mean,
            hidden_activation: Activation::Linear,
            dropout: 0.0,
            ngrams: 1,
            optimizer: "adam".into(),
            rows_are_logits: false,
        }
    }

    /// Keras's bag-of-bigrams model (Chollet, "Deep Learning with Python",
    /// 2nd ed., 11.3: `TextVectorization(ngrams=2, max_tokens=20000,
    /// output_mode="tf_idf") → Dense(16, "relu") → Dropout(0.5) → Dense`,
    /// compiled with RMSprop (Keras's defaults: learning rate 0.001), batches
    /// of 32, 10 epochs), as a TF-IDF-weighted bag of words and bigrams in
    /// its vocabulary (not hashed). The main difference: the table's rows
    /// are updated lazily (only the rows of a batch); also, `max_tokens`
    /// counts the mask and `[UNK]` here, and no best epoch is kept.
    pub fn keras_tf_idf() -> Self {
        Self {
            embedding_dim: 16,
            ngrams: 2,
            max_tokens: Some(20_000),
            bigram_buckets: 0,
            batch_size: 32,
            learning_rate: 0.001,
            optimizer: "rmsprop".into(),
            lr_decay: LrDecay::Constant,
            weighting: BagWeighting::TfIdf,
            hidden_activation: Activation::Relu,
            dropout: 0.5,
            ..Self::defaults()
        }
    }

    /// A bag of words and bigrams (every bigram of the training texts its
    /// own row) weighted as scikit-learn's `TfidfVectorizer()` (count times
    /// idf, L2-normalised per text), rows of 50 → `Dense(softmax)`, Adam at
    /// 0.005 decaying linearly: the learning rate chosen on a held-out
    /// seventh of R8's training texts (0.003-0.005 best of 0.001-0.03).
    pub fn tf_idf_l2() -> Self {
        Self {
            ngrams: 2,
            bigram_buckets: 0,
            learning_rate: 0.005,
            weighting: BagWeighting::TfIdfL2,
            ..Self::defaults()
        }
    }

    /// Unregularised logistic regression on the same TF-IDF vectors as
    /// [`tf_idf_l2`](Self::tf_idf_l2), as a bag whose rows are the class
    /// scores (no output matrix), Adam at 0.01 decaying linearly: the
    /// learning rate chosen on held-out tenths of polarity training folds
    /// (best of 0.003-0.1).
    pub fn tf_idf_logistic() -> Self {
        Self { rows_are_logits: true, learning_rate: 0.01, ..Self::tf_idf_l2() }
    }
}

/// A trained bag classifier with its vectorizer and class names.
#[derive(Debug, Clone)]
pub struct BagTextClassifier {
    /// The model.
    pub model: BagClassifier,
    /// Texts to word ids.
    pub vectorizer: TextVectorizer,
    /// Label of each class id.
    pub classes: Vec<String>,
    /// Ids per document at most.
    pub max_len: Option<usize>,
}

/// What training produced.
pub struct TrainedBag {
    /// The classifier.
    pub classifier: BagTextClassifier,
    /// How it was trained.
    pub config: TrainConfig,
    /// Its epochs.
    pub history: History,
    /// Texts trained on.
    pub trained_on: usize,
    /// Texts validated on (0 without validation).
    pub validated_on: usize,
}

/// The bags of `texts`, padded: `[texts, longest bag]`.
fn featurize<S: AsRef<str>>(
    vectorizer: &TextVectorizer,
    config: &BagClassifierConfig,
    texts: &[S],
    max_len: Option<usize>,
) -> Array2<u32> {
    let words: Vec<Vec<u32>> = texts.iter().map(|t| vectorizer.vectorize(t.as_ref())).collect();
    config.documents(words.iter().map(Vec::as_slice), max_len)
}

fn targets(label_ids: &[u32]) -> ArrayD<f32> {
    Array1::from(label_ids.iter().map(|&c| c as f32).collect::<Vec<_>>()).into_dyn()
}

impl BagTextClassifier {
    /// Adapts a vectorizer to the training texts, builds the bag
    /// classifier (softmax over every class, two included) and trains it
    /// with the optimizer `settings.optimizer` names.
    pub fn train(
        train: &LabelledTexts,
        validation: Option<&LabelledTexts>,
        settings: &BagSettings,
        observer: &mut dyn Observer,
    ) -> Result<TrainedBag> {
        let classes = train.class_names();
        if classes.len() < 2 {
            bail!(
                "a classifier needs at least two classes; the training data has only {classes:?}"
            );
        }
        let (train, validation) = match validation {
            Some(v) => (train.clone(), Some(v.clone())),
            None if settings.validation_split > 0.0 => {
                let (a, b) = hold_out(train, settings.validation_split, settings.seed)?;
                (a, Some(b))
            }
            None => (train.clone(), None),
        };
        let (trained_on, validated_on) = (train.len(), validation.as_ref().map_or(0, |v| v.len()));
        let mut vconfig = TextVectorizerConfig::new();
        if settings.ngrams == 0 {
            bail!("--ngrams must be at least 1, got 0");
        }
        if settings.ngrams > 1 {
            if settings.bigram_buckets > 0 {
                bail!(
                    "--ngrams {} puts the n-grams in the vocabulary; hashed bigrams of that \
                     sequence would pair n-grams: give --bigram-buckets 0",
                    settings.ngrams
                );
            }
            vconfig = vconfig.with_ngrams(settings.ngrams);
        }
        if let Some(max) = settings.max_tokens {
            vconfig = vconfig.with_max_tokens(max);
        }
        let vectorizer = vconfig
            .adapt(train.texts())
            .context("building the vocabulary from the training texts")?;
        let mut mconfig = BagClassifierConfig::new(vectorizer.vocab_size(), classes.len())
            .with_embedding_dim(settings.embedding_dim)
            .with_bigram_buckets(settings.bigram_buckets)
            .with_weighting(settings.weighting)
            .with_hidden(settings.hidden_activation, settings.dropout);
        if settings.rows_are_logits {
            mconfig = mconfig.with_rows_as_logits();
        }
        let mut model = mconfig
            .init(&mut StdRng::seed_from_u64(settings.seed))
            .context("building the model")?;
        let mut config = BagClassifier::default_train_config()
            .with_epochs(settings.epochs)
            .with_batch_size(settings.batch_size)
            .with_seed(settings.seed);
        config.optimizer = optimizer_named(&settings.optimizer, settings.learning_rate)?;
        settings.lr_decay.apply(&mut config, settings.learning_rate, train.len());
        if let Some(patience) = settings.patience {
            if validation.is_none() {
                bail!("--patience watches the validation loss: give --validation or a --validation-split above 0");
            }
            config = config.with_early_stopping(
                EarlyStopping::new("val_loss")
                    .with_patience(patience)
                    .with_restore_best_weights(true),
            );
        }
        let ids = featurize(&vectorizer, &mconfig, train.texts(), settings.max_len);
        if settings.weighting.uses_idf() {
            let oov: Vec<u32> = vectorizer.vocabulary().oov_ids().collect();
            model.adapt(ids.view(), &oov).context("the idf weights of the training texts")?;
        }
        let y = targets(&train.label_ids(&classes)?);
        let val = match &validation {
            Some(v) => {
                let ids = featurize(&vectorizer, &mconfig, v.texts(), settings.max_len);
                let y = targets(
                    &v.label_ids(&classes).context("a validation label is not a training class")?,
                );
                Some((ids, y))
            }
            None => None,
        };
        let val_data = match &val {
            Some((ids, y)) => Some(Dataset::new(ids.view(), y.view())?),
            None => None,
        };
        let history = model
            .fit(Dataset::new(ids.view(), y.view())?, val_data, &config, observer)
            .context("training")?;
        let classifier =
            BagTextClassifier { model, vectorizer, classes, max_len: settings.max_len };
        Ok(TrainedBag { classifier, config, history, trained_on, validated_on })
    }

    /// Writes the model directory.
    pub fn save(&self, dir: &Path, config: &TrainConfig, history: &History) -> Result<()> {
        let mut saved = SavedBagClassifier::new(self.model.clone());
        let vocab = self.vectorizer.vocabulary();
        saved.vocab = Some(
            (0..vocab.len() as u32)
                .map(|id| vocab.token_str(id).expect("id below len").to_string())
                .collect(),
        );
        saved.train_config = Some(config.clone());
        saved.history = Some(history.clone());
        saved.metadata.insert(META_TASK.into(), TASK.into());
        saved
            .metadata
            .insert(META_VECTORIZER.into(), serde_json::to_string(self.vectorizer.config())?);
        saved.metadata.insert(META_CLASSES.into(), serde_json::to_string(&self.classes)?);
        if let Some(max) = self.max_len {
            saved.metadata.insert("max_len".into(), max.to_string());
        }
        saved.save(dir).with_context(|| format!("saving the model to {}", dir.display()))
    }

    /// Reads a model directory written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self> {
        let saved = SavedBagClassifier::load(dir)
            .with_context(|| format!("loading the model in {}", dir.display()))?;
        let model_file = dir.join(MODEL_FILE);
        let meta = |key: &str| {
            saved.metadata.get(key).with_context(|| {
                format!(
                    "{}: not a text classifier (no `{key}` in its metadata)",
                    model_file.display()
                )
            })
        };
        if meta(META_TASK)? != TASK {
            bail!("{}: not a text classifier", model_file.display());
        }
        let vconfig: TextVectorizerConfig = serde_json::from_str(meta(META_VECTORIZER)?)
            .with_context(|| format!("{}: bad vectorizer config", model_file.display()))?;
        let classes: Vec<String> = serde_json::from_str(meta(META_CLASSES)?)
            .with_context(|| format!("{}: bad class names", model_file.display()))?;
        let max_len = match saved.metadata.get("max_len") {
            Some(v) => Some(
                v.parse::<usize>()
                    .with_context(|| format!("{}: bad max_len {v:?}", model_file.display()))?,
            ),
            None => None,
        };
        let vocab_file = dir.join(VOCAB_FILE);
        let lines =
            saved.vocab.as_ref().with_context(|| format!("{} is missing", vocab_file.display()))?;
        let mut text = lines.join("\n");
        text.push('\n');
        let vectorizer = TextVectorizer::from_vocab_txt(vconfig, Cursor::new(text), &vocab_file)?;
        if classes.len() != saved.model.config().num_classes {
            bail!(
                "{}: the model has {} outputs but {} class names",
                model_file.display(),
                saved.model.config().num_classes,
                classes.len()
            );
        }
        Ok(Self { model: saved.model, vectorizer, classes, max_len })
    }

    /// Class probabilities of each text.
    pub fn predict<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<Vec<Prediction>> {
        let ids = featurize(&self.vectorizer, self.model.config(), texts, self.max_len);
        let out = self.model.predict(ids.view(), 256)?;
        Ok(out
            .outer_iter()
            .map(|row| {
                let probabilities: Vec<f32> = row.to_vec();
                let (best, &probability) = probabilities
                    .iter()
                    .enumerate()
                    .fold((0, &f32::MIN), |acc, (i, p)| if *p > *acc.1 { (i, p) } else { acc });
                Prediction { label: self.classes[best].clone(), probability, probabilities }
            })
            .collect())
    }
}
