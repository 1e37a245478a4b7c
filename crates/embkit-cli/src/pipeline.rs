//! The text classifier behind `demo`, `train`, `predict` and `neighbors`:
//! texts → [`TextVectorizer`] → ids → `Embedding → Flatten → Dense`, and
//! its model directory (the library's saved model plus the vectorizer's
//! config and the class names in the metadata).

use std::io::Cursor;
use std::path::Path;

use anyhow::{bail, Context, Result};
use embkit::data::{stratified_split, LabelledTexts};
use embkit::format::{SavedModel, MODEL_FILE, VOCAB_FILE};
use embkit::query::{neighbors_of_row, Neighbor};
use embkit::vocab::{TextVectorizer, TextVectorizerConfig};
use embkit::{
    Activation, AdamConfig, Dataset, EarlyStopping, EmbeddingConfig, History, LearningRateSchedule,
    Loss, Metric, Observer, Sequential, SequentialConfig, TrainConfig,
};
use ndarray::{ArrayD, IxDyn};
use rand::{rngs::StdRng, SeedableRng};

/// Metadata keys of a text classifier's model directory.
const META_TASK: &str = "task";
const META_VECTORIZER: &str = "text_vectorizer";
const META_CLASSES: &str = "classes";
const TASK: &str = "text_classification";

/// The ids reserved by the vectorizer: the mask (0) and `[UNK]` (1).
const RESERVED_IDS: u32 = 2;

/// The optimizer `--optimizer NAME` names (`adam`, `rmsprop`, `sgd`,
/// `adagrad`; Keras's defaults otherwise, lazy row updates of tables) at
/// `learning_rate`.
pub fn optimizer_named(name: &str, learning_rate: f32) -> Result<embkit::OptimizerConfig> {
    Ok(match name {
        "adam" => embkit::AdamConfig::new().with_learning_rate(learning_rate).into(),
        "rmsprop" => embkit::RmsPropConfig::new().with_learning_rate(learning_rate).into(),
        "sgd" => embkit::SgdConfig::new().with_learning_rate(learning_rate).into(),
        "adagrad" => embkit::AdagradConfig::new().with_learning_rate(learning_rate).into(),
        other => bail!("unknown optimizer {other:?}: expected adam, rmsprop, sgd or adagrad"),
    })
}

/// How the learning rate changes over a training run (`--lr-decay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrDecay {
    /// The optimizer's rate throughout.
    Constant,
    /// A straight line from the rate to 0 at the last step (fastText's and
    /// word2vec's decay).
    Linear,
    /// A half cosine from the rate to 0 at the last step (Keras
    /// `CosineDecay`).
    Cosine,
}

impl LrDecay {
    /// Reads `constant`, `linear` or `cosine`.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "constant" => LrDecay::Constant,
            "linear" => LrDecay::Linear,
            "cosine" => LrDecay::Cosine,
            other => {
                bail!("unknown learning-rate decay {other:?}: expected constant, linear or cosine")
            }
        })
    }

    /// The name [`parse`](Self::parse) reads.
    pub fn name(self) -> &'static str {
        match self {
            LrDecay::Constant => "constant",
            LrDecay::Linear => "linear",
            LrDecay::Cosine => "cosine",
        }
    }

    /// Sets `config`'s schedule for a run of `samples` training samples:
    /// from `learning_rate` at the first step to 0 at the last of
    /// `config.epochs` epochs (early stopping may end the run sooner).
    pub fn apply(self, config: &mut TrainConfig, learning_rate: f32, samples: usize) {
        let steps = (samples.div_ceil(config.batch_size.max(1)) * config.epochs).max(1) as u64;
        config.learning_rate_schedule = match self {
            LrDecay::Constant => None,
            LrDecay::Linear => Some(LearningRateSchedule::linear(learning_rate, steps)),
            LrDecay::Cosine => Some(LearningRateSchedule::CosineDecay {
                initial_learning_rate: learning_rate,
                decay_steps: steps,
                alpha: 0.0,
                warmup_target: None,
                warmup_steps: 0,
            }),
        };
    }
}

/// How to build and train a text classifier.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Length of each embedding row.
    pub embedding_dim: usize,
    /// Ids per text (padded or cut at the end).
    pub sequence_length: usize,
    /// Vocabulary size, counting the mask and `[UNK]`.
    pub max_tokens: Option<usize>,
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f32,
    /// How the learning rate changes over the run.
    pub lr_decay: LrDecay,
    /// Seed of the initial weights, the shuffling and the validation
    /// sample.
    pub seed: u64,
    /// Fraction of the training file held out for validation (a seeded
    /// sample of each class) when no validation file is given.
    pub validation_split: f64,
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
}

/// A trained text classifier.
#[derive(Debug, Clone)]
pub struct TextClassifier {
    /// `Embedding → Flatten → Dense`.
    pub model: Sequential,
    /// Texts to ids.
    pub vectorizer: TextVectorizer,
    /// Label of each class id.
    pub classes: Vec<String>,
}

/// One prediction.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub probability: f32,
    /// Every class's probability, in class order.
    pub probabilities: Vec<f32>,
}

/// What training produced besides the classifier.
pub struct Trained {
    /// The classifier.
    pub classifier: TextClassifier,
    /// How it was trained.
    pub config: TrainConfig,
    /// Its epochs.
    pub history: History,
    /// Texts trained on.
    pub trained_on: usize,
    /// Texts validated on (0 without validation).
    pub validated_on: usize,
}

fn is_binary(classes: &[String]) -> bool {
    classes.len() == 2
}

/// Targets for `labels` (class ids): `[n, 1]` 0/1 for two classes, `[n]`
/// class ids for more.
fn targets(label_ids: &[u32], binary: bool) -> ArrayD<f32> {
    let shape = if binary { vec![label_ids.len(), 1] } else { vec![label_ids.len()] };
    ArrayD::from_shape_vec(IxDyn(&shape), label_ids.iter().map(|&c| c as f32).collect())
        .expect("one target per label")
}

impl TextClassifier {
    /// Adapts a vectorizer to the training texts, builds
    /// `Embedding → Flatten → Dense` (sigmoid for two classes, softmax for
    /// more) and trains it with Adam.
    pub fn train(
        train: &LabelledTexts,
        validation: Option<&LabelledTexts>,
        settings: &Settings,
        observer: &mut dyn Observer,
    ) -> Result<Trained> {
        let classes = train.class_names();
        if classes.len() < 2 {
            bail!(
                "a classifier needs at least two classes; the training data has only {:?}",
                classes
            );
        }
        let binary = is_binary(&classes);

        let (train, validation) = match validation {
            Some(v) => (train.clone(), Some(v.clone())),
            None if settings.validation_split > 0.0 => {
                let (a, b) = hold_out(train, settings.validation_split, settings.seed)?;
                (a, Some(b))
            }
            None => (train.clone(), None),
        };
        let (trained_on, validated_on) = (train.len(), validation.as_ref().map_or(0, |v| v.len()));

        let mut vconfig =
            TextVectorizerConfig::new().with_output_sequence_length(settings.sequence_length);
        if let Some(max) = settings.max_tokens {
            vconfig = vconfig.with_max_tokens(max);
        }
        let vectorizer = vconfig
            .adapt(train.texts())
            .context("building the vocabulary from the training texts")?;

        let mconfig = SequentialConfig::new(
            EmbeddingConfig::new(vectorizer.vocab_size(), settings.embedding_dim),
            settings.sequence_length,
        )
        .flatten()
        .dense(
            if binary { 1 } else { classes.len() },
            if binary { Activation::Sigmoid } else { Activation::Softmax },
        );
        for warning in mconfig.warnings() {
            eprintln!("warning: {warning}");
        }
        let mut model = mconfig
            .init(&mut StdRng::seed_from_u64(settings.seed))
            .context("building the model")?;

        let loss = if binary {
            Loss::BinaryCrossentropy { from_logits: false }
        } else {
            Loss::SparseCategoricalCrossentropy { from_logits: false }
        };
        let mut config = TrainConfig::new(
            loss,
            AdamConfig::new().with_learning_rate(settings.learning_rate).into(),
        )
        .with_metrics(vec![Metric::Accuracy])
        .with_epochs(settings.epochs)
        .with_batch_size(settings.batch_size)
        .with_seed(settings.seed);
        settings.lr_decay.apply(&mut config, settings.learning_rate, train.len());
        if let Some(patience) = settings.patience {
            config = config.with_early_stopping(
                EarlyStopping::new("val_loss")
                    .with_patience(patience)
                    .with_restore_best_weights(true),
            );
        }

        let ids = vectorizer.vectorize_batch(train.texts());
        let y = targets(&train.label_ids(&classes)?, binary);
        let val = match &validation {
            Some(v) => {
                let ids = vectorizer.vectorize_batch(v.texts());
                let y = targets(
                    &v.label_ids(&classes).context("a validation label is not a training class")?,
                    binary,
                );
                Some((ids, y))
            }
            None => None,
        };
        let train_data = Dataset::new(ids.view(), y.view())?;
        let val_data = match &val {
            Some((ids, y)) => Some(Dataset::new(ids.view(), y.view())?),
            None => None,
        };
        let history = model.fit(train_data, val_data, &config, observer).context("training")?;
        Ok(Trained {
            classifier: TextClassifier { model, vectorizer, classes },
            config,
            history,
            trained_on,
            validated_on,
        })
    }

    /// Writes the model directory.
    pub fn save(&self, dir: &Path, config: &TrainConfig, history: &History) -> Result<()> {
        let mut saved = SavedModel::new(self.model.clone());
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
        saved.save(dir).with_context(|| format!("saving the model to {}", dir.display()))
    }

    /// Reads a model directory written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<(Self, SavedModel)> {
        let saved = SavedModel::load(dir)
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
        let vocab_file = dir.join(VOCAB_FILE);
        let lines =
            saved.vocab.as_ref().with_context(|| format!("{} is missing", vocab_file.display()))?;
        let mut text = lines.join("\n");
        text.push('\n');
        let vectorizer = TextVectorizer::from_vocab_txt(vconfig, Cursor::new(text), &vocab_file)?;
        let model = saved.model.clone();
        if vectorizer.vocab_size() != model.embedding().num_embeddings() {
            bail!(
                "{} has {} tokens but the model's table has {} rows",
                vocab_file.display(),
                vectorizer.vocab_size(),
                model.embedding().num_embeddings()
            );
        }
        let outputs = model.config().output_shape()?;
        let expected = if is_binary(&classes) { 1 } else { classes.len() };
        if outputs != [expected] {
            bail!(
                "{}: the model has outputs {outputs:?} but {} classes",
                model_file.display(),
                classes.len()
            );
        }
        Ok((Self { model, vectorizer, classes }, saved))
    }

    /// Class probabilities of each text.
    pub fn predict<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<Vec<Prediction>> {
        let ids = self.vectorizer.vectorize_batch(texts);
        let out = self.model.predict(ids.view(), 256)?;
        let binary = is_binary(&self.classes);
        Ok(out
            .outer_iter()
            .map(|row| {
                let probabilities: Vec<f32> = if binary {
                    vec![1.0 - row[[0]], row[[0]]]
                } else {
                    row.iter().copied().collect()
                };
                let (best, &probability) = probabilities
                    .iter()
                    .enumerate()
                    .fold((0, &f32::MIN), |acc, (i, p)| if *p > *acc.1 { (i, p) } else { acc });
                Prediction { label: self.classes[best].clone(), probability, probabilities }
            })
            .collect())
    }

    /// The `k` words nearest to `word` in the embedding table, by cosine
    /// similarity (the mask and `[UNK]` rows left out).
    pub fn neighbors(&self, word: &str, k: usize) -> Result<Vec<(String, f32)>> {
        let tokens = self.vectorizer.tokens(word);
        let [token] = tokens.as_slice() else {
            bail!("{word:?} is {} tokens after standardisation; give one word", tokens.len());
        };
        let vocab = self.vectorizer.vocabulary();
        if !vocab.contains(token.as_str()) {
            bail!("{word:?} is not in the model's vocabulary of {} tokens", vocab.len());
        }
        let id = vocab.id(token.as_str())?;
        let near: Vec<Neighbor> =
            neighbors_of_row(self.model.embedding(), id, k + RESERVED_IDS as usize)?;
        Ok(near
            .into_iter()
            .filter(|n| n.id >= RESERVED_IDS)
            .take(k)
            .map(|n| (vocab.token_str(n.id).unwrap_or_default().to_string(), n.similarity))
            .collect())
    }
}

/// Holds out `fraction` of `data` for validation, each class in
/// proportion, a seeded sample ([`stratified_split`]): a file sorted by
/// label still gives a validation set with every class. Returns
/// `(train, validation)`.
pub fn hold_out(
    data: &LabelledTexts,
    fraction: f64,
    seed: u64,
) -> Result<(LabelledTexts, LabelledTexts)> {
    if !(0.0..1.0).contains(&fraction) {
        bail!("--validation-split must be in [0, 1), got {fraction}");
    }
    let split = stratified_split(data.labels(), fraction, seed).with_context(|| {
        format!(
            "holding out {fraction} of {} texts for validation (give --validation FILE, or \
             --validation-split 0 to train on all)",
            data.len()
        )
    })?;
    Ok((data.subset(&split.train), data.subset(&split.test)))
}
