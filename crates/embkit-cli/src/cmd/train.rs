//! `embkit train`: a text classifier from a `label<TAB>text` file
//! (`Embedding → Flatten → Dense`, or the fastText-style bag), a rating
//! predictor (matrix factorisation) from an interactions file, or word
//! vectors (word2vec) from plain-text corpora.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use embkit::data::{
    ratio_split, Corpus, DataOptions, DataReport, InteractionStream, Interactions, KeyIndex,
    LabelledTexts, LetterSentences, Rows, MAX_DATA_PROBLEMS,
};
use embkit::format::{
    write_atomically, SavedMatrixFactorization, SavedSkipGram, VectorFormat, MODEL_FILE,
};
use embkit::model::{BagWeighting, MatrixFactorization, MatrixFactorizationConfig};
use embkit::word2vec::{Architecture as SkipGramArchitecture, SkipGramConfig};
use embkit::{
    Activation, BatchStream, Dataset, EarlyStopping, EpochLog, History, Metric, Observer,
    RmsPropConfig, Threads, TrainConfig,
};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bag::{BagSettings, BagTextClassifier};
use crate::output::Out;
use crate::pipeline::{optimizer_named, LrDecay, Settings, TextClassifier};
use crate::plot;
use crate::progress::Bars;

/// What to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// A text classifier (`Embedding → Flatten → Dense`) on `label<TAB>text`.
    Classify,
    /// Rating prediction (matrix factorisation) on `user item rating
    /// [timestamp]`.
    Ratings,
    /// Word vectors (skip-gram or CBOW with negative sampling) from
    /// plain-text corpora.
    Word2vec,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Ratings => "ratings",
            Task::Word2vec => "word2vec",
        }
    }
}

/// The task names `--task` and the config accept.
pub fn parse_task(name: &str) -> Result<Task, String> {
    match name {
        "classify" => Ok(Task::Classify),
        "ratings" => Ok(Task::Ratings),
        "word2vec" => Ok(Task::Word2vec),
        other => {
            Err(format!("unknown task {other:?}: the tasks are classify, ratings and word2vec"))
        }
    }
}

/// The classifier of `--task classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// `Embedding → Flatten → Dense` on fixed-length id sequences.
    Sequence,
    /// fastText-style: the mean of word and hashed word-bigram rows, then
    /// a softmax `Dense`.
    Bag,
}

/// The names `--architecture` and the config accept.
pub fn parse_architecture(name: &str) -> Result<Architecture, String> {
    match name {
        "sequence" => Ok(Architecture::Sequence),
        "bag" | "fasttext" => Ok(Architecture::Bag),
        other => Err(format!(
            "unknown architecture {other:?}: expected sequence (Embedding, Flatten, Dense) or bag \
             (fastText-style; also spelt fasttext)"
        )),
    }
}

/// How `--task word2vec` splits lines into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokenize {
    /// Each line is a sentence, words split on whitespace, as they are.
    Whitespace,
    /// gensim's baseline: lowercase, words are the runs of `a`-`z`, the
    /// token stream of all files cut into 1,000-word sentences.
    Letters,
}

/// The names `--tokenize` and the config accept.
pub fn parse_tokenize(name: &str) -> Result<Tokenize, String> {
    match name {
        "whitespace" => Ok(Tokenize::Whitespace),
        "letters" => Ok(Tokenize::Letters),
        other => Err(format!("unknown tokenisation {other:?}: expected whitespace or letters")),
    }
}

/// Train a model and save it: a text classifier (`--task classify`, the
/// default), a rating predictor (`--task ratings`) or word vectors
/// (`--task word2vec`). Every setting has a default; a `--config` file sets
/// any of them, and flags override it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to train: `classify` (texts with labels), `ratings` (user-item
    /// ratings) or `word2vec` (word vectors from plain text). Default
    /// classify.
    #[arg(long, value_parser = parse_task)]
    pub task: Option<Task>,
    /// classify: the model, `sequence` (`Embedding → Flatten → Dense`, the
    /// default) or `bag` (fastText-style: the mean of the rows of a text's
    /// words and hashed word bigrams, then a softmax; also `fasttext`).
    #[arg(long, value_parser = parse_architecture)]
    pub architecture: Option<Architecture>,
    /// Training data. classify: one `label<TAB>text` per line (a
    /// `label<TAB>text` header is allowed; two labels give a sigmoid
    /// output, more a softmax). ratings: `user item rating [timestamp]` per
    /// line, tab-, comma-, `::`- or space-separated, header optional
    /// (MovieLens u.data and ratings.csv both work). word2vec: plain-text
    /// files, one or more (`--data a.txt b.txt`), read twice (so files,
    /// not pipes). `.gz` files are read as they are.
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// Where to write the model (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Validation data in the same format. Without it, `--validation-split`
    /// of `--data` is held out.
    #[arg(long)]
    pub validation: Option<PathBuf>,
    /// Settings in a TOML (or, by extension, JSON) file: the long names of
    /// these flags with underscores (`embedding_dim = 32`, `task =
    /// "ratings"`). Flags given on the command line win.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Fraction of `--data` held out for validation when there is no
    /// `--validation` file; 0 trains on everything. classify: a seeded
    /// sample with each class in proportion, so a file sorted by label
    /// works (default 0.2); ratings: a seeded random sample (default 0.1).
    #[arg(long)]
    pub validation_split: Option<f64>,
    /// Passes over the training data [classify: 10 (bag: 10), ratings:
    /// 20, word2vec: 5].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Length of each word, user or item vector [classify: 16 (bag: 50;
    /// the number of classes with `--rows-are-logits`, which refuses this
    /// flag), ratings: 64, word2vec: 100].
    #[arg(long, visible_alias = "dim")]
    pub embedding_dim: Option<usize>,
    /// classify: words per text; longer texts are cut, shorter ones padded
    /// [32]. With `--architecture bag`: ids (words, then bigrams) per text
    /// at most [no limit].
    #[arg(long)]
    pub sequence_length: Option<usize>,
    /// classify: vocabulary size, counting the padding and unknown-word ids
    /// [20000; bag: every word].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// classify with `--architecture bag`: rows for hashed word bigrams; 0
    /// uses words only [200000].
    #[arg(long)]
    pub bigram_buckets: Option<usize>,
    /// Samples per training step [classify: 32 (bag: 16), ratings: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// The optimizer's learning rate [classify: 0.001 (bag: 0.01; 0.001,
    /// Keras's default, with rmsprop), ratings: 0.002 for adam, 0.001 for
    /// rmsprop, 0.01 for sgd and adagrad; word2vec: 0.025, decaying
    /// linearly to 0.0001].
    #[arg(long)]
    pub learning_rate: Option<f32>,
    /// classify and ratings: how the learning rate changes over the run,
    /// `constant`, `linear` (to 0 at the last step, as fastText) or
    /// `cosine` (Keras `CosineDecay` to 0) [bag: linear; others: constant].
    /// word2vec always decays linearly.
    #[arg(long, value_name = "DECAY")]
    pub lr_decay: Option<String>,
    /// word2vec: the largest distance of a context word [5].
    #[arg(long)]
    pub window: Option<usize>,
    /// word2vec: noise words per positive example [5].
    #[arg(long)]
    pub negative: Option<usize>,
    /// word2vec: words seen fewer times are left out [5].
    #[arg(long)]
    pub min_count: Option<u64>,
    /// word2vec: the sub-sampling threshold; 0 keeps every word [0.001].
    #[arg(long)]
    pub sample: Option<f64>,
    /// word2vec: train CBOW instead of skip-gram.
    #[arg(long)]
    pub cbow: bool,
    /// word2vec: how lines become words, `whitespace` (each line a
    /// sentence, words as they are) or `letters` (lowercase runs of a-z,
    /// 1,000-word sentences, as gensim's baseline in BASELINES.md)
    /// [whitespace].
    #[arg(long, value_parser = parse_tokenize)]
    pub tokenize: Option<Tokenize>,
    /// word2vec: the vectors' file format: word2vec-bin (`vectors.bin`),
    /// word2vec (`vectors.txt`), fasttext-vec (`vectors.vec`), npy
    /// (`vectors.npy` and `vectors.vocab.txt`) or safetensors
    /// (`vectors.safetensors`) [word2vec-bin]. The model is saved beside
    /// them whatever the format (`model.safetensors` and `vocab.txt`).
    #[arg(long)]
    pub format: Option<String>,
    /// word2vec: threads [1]. The vectors depend on the seed and the number
    /// of threads only. With several, each thread trains on private copies
    /// of the rows it touches, about 1.7 times as slowly as one thread
    /// training in place, so on two cores one thread is faster (11.3 s
    /// against 15.1 s on the evaluation suite's corpus): more threads pay
    /// off only with more cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// ratings and classify with `--architecture bag`: the optimizer,
    /// `adam`, `rmsprop`, `sgd` or `adagrad` (Keras's other
    /// hyper-parameters; the learning rate is `--learning-rate`'s), all
    /// with lazy row updates [adam]. The sequence classifier uses adam.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// ratings: L2 factor on the user and item vectors of each batch
    /// [0.002].
    #[arg(long)]
    pub l2: Option<f32>,
    /// ratings: L2 factor on the user and item biases of each batch
    /// [0.0001].
    #[arg(long)]
    pub bias_l2: Option<f32>,
    /// classify with `--architecture bag`: how a text's rows are pooled,
    /// `mean` (fastText), `tf-idf` (each occurrence weighted by its row's
    /// inverse document frequency in the training texts and summed: Keras's
    /// `TextVectorization(output_mode="tf_idf")` followed by `Dense`) or
    /// `tf-idf-l2` (scikit-learn's `TfidfVectorizer()` weights: term count
    /// times idf, divided by the document's L2 norm; unknown words left
    /// out) [mean].
    #[arg(long)]
    pub bag_weights: Option<String>,
    /// classify with `--architecture bag`: word n-grams of the vocabulary,
    /// as Keras's `TextVectorization(ngrams=N)`: 2 gives every bigram of
    /// the training texts its own row (usually with `--bigram-buckets 0`)
    /// [1].
    #[arg(long)]
    pub ngrams: Option<usize>,
    /// classify with `--architecture bag`: an activation of the pooled
    /// vector before the output layer, `relu`, `tanh` or `sigmoid` (the
    /// table is then a hidden layer); `linear` is fastText's model
    /// [linear].
    #[arg(long)]
    pub hidden_activation: Option<String>,
    /// classify with `--architecture bag`: the dropout rate after the
    /// hidden activation, in training [0].
    #[arg(long)]
    pub dropout: Option<f32>,
    /// classify with `--architecture bag`: the rows are the class scores
    /// (one value per class, no output matrix; only a bias is added): a
    /// linear classifier on the weighted bag, unregularised logistic
    /// regression on TF-IDF with `--bag-weights tf-idf-l2`. The embedding
    /// dimension is then the number of classes.
    #[arg(long)]
    pub rows_are_logits: bool,
    /// ratings: stream the file from disk for each epoch through a shuffle
    /// buffer of this many ratings instead of reading it into memory, for
    /// files larger than memory (a buffer of at least the number of
    /// ratings is a full shuffle). The `--validation-split` is then a
    /// seeded hash sample of the rows, streamed too; a `--validation` file
    /// is streamed as well.
    #[arg(long)]
    pub shuffle_buffer: Option<usize>,
    /// Stop after this many epochs without a lower validation loss, and
    /// keep the best epoch's weights.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Seed of the initial weights, the shuffling and the validation
    /// sample [42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Skip rows that cannot be read (counted, and the first ones listed on
    /// stderr) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Print one JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The settings of a `--config` file: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    task: Option<String>,
    architecture: Option<String>,
    validation_split: Option<f64>,
    epochs: Option<usize>,
    embedding_dim: Option<usize>,
    sequence_length: Option<usize>,
    max_tokens: Option<usize>,
    bigram_buckets: Option<usize>,
    batch_size: Option<usize>,
    learning_rate: Option<f32>,
    lr_decay: Option<String>,
    window: Option<usize>,
    negative: Option<usize>,
    min_count: Option<u64>,
    sample: Option<f64>,
    cbow: Option<bool>,
    tokenize: Option<String>,
    format: Option<String>,
    threads: Option<usize>,
    optimizer: Option<String>,
    l2: Option<f32>,
    bias_l2: Option<f32>,
    bag_weights: Option<String>,
    ngrams: Option<usize>,
    hidden_activation: Option<String>,
    dropout: Option<f32>,
    rows_are_logits: Option<bool>,
    shuffle_buffer: Option<usize>,
    patience: Option<usize>,
    seed: Option<u64>,
    skip_bad_rows: Option<bool>,
}

impl FileConfig {
    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config {}", path.display()))?;
        let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let config = if json {
            serde_json::from_str(&text).map_err(anyhow::Error::from)
        } else {
            toml::from_str(&text).map_err(anyhow::Error::from)
        };
        config.with_context(|| format!("bad config {}", path.display()))
    }
}

/// The settings once flags, file and defaults are merged.
#[derive(Debug, Clone)]
struct Merged {
    file: FileConfig,
}

/// A flag if given, else the file's value, else the task's default.
macro_rules! pick {
    ($args:expr, $merged:expr, $field:ident, $default:expr) => {
        $args.$field.clone().or($merged.file.$field.clone()).unwrap_or($default)
    };
}

/// Runs `embkit train`.
pub fn run(args: Args) -> Result<()> {
    let file = match &args.config {
        Some(path) => FileConfig::read(path)?,
        None => FileConfig::default(),
    };
    let task = match (args.task, &file.task) {
        (Some(task), _) => task,
        (None, Some(name)) => parse_task(name).map_err(anyhow::Error::msg).with_context(|| {
            format!("task in {}", args.config.as_deref().unwrap_or(Path::new("")).display())
        })?,
        (None, None) => Task::Classify,
    };
    let merged = Merged { file };
    let skip = args.skip_bad_rows || merged.file.skip_bad_rows.unwrap_or(false);
    let options = DataOptions::new().with_skip_bad_rows(skip);
    if task != Task::Word2vec && args.data.len() > 1 {
        bail!(
            "--data takes one file for --task {}, got {}; several files are for --task word2vec",
            task.name(),
            args.data.len()
        );
    }
    let architecture = match (args.architecture, &merged.file.architecture) {
        (Some(a), _) => a,
        (None, Some(name)) => parse_architecture(name).map_err(anyhow::Error::msg)?,
        (None, None) => Architecture::Sequence,
    };
    if task != Task::Classify && (args.architecture.is_some() || merged.file.architecture.is_some())
    {
        bail!("architecture is a setting of the classify task, not of {}", task.name());
    }
    match task {
        Task::Classify if architecture == Architecture::Bag => {
            classify_bag(&args, &merged, &options)
        }
        Task::Classify => classify(&args, &merged, &options),
        Task::Ratings => ratings(&args, &merged, &options),
        Task::Word2vec => word2vec(&args, &merged, &options),
    }
}

/// The one data file of the classify and ratings tasks.
fn data_file(args: &Args) -> &Path {
    &args.data[0]
}

/// Refuses settings of other tasks.
fn refuse(given: &[(bool, &str)], task: &str) -> Result<()> {
    for &(given, name) in given {
        if given {
            bail!("{name} is not a setting of {task}");
        }
    }
    Ok(())
}

/// Settings that only word2vec takes, and whether each was given.
fn word2vec_only(args: &Args, merged: &Merged) -> Vec<(bool, &'static str)> {
    let f = &merged.file;
    vec![
        (args.window.or(f.window).is_some(), "window"),
        (args.negative.or(f.negative).is_some(), "negative"),
        (args.min_count.or(f.min_count).is_some(), "min_count"),
        (args.sample.or(f.sample).is_some(), "sample"),
        (args.cbow || f.cbow.is_some(), "cbow"),
        (args.tokenize.is_some() || f.tokenize.is_some(), "tokenize"),
        (args.format.is_some() || f.format.is_some(), "format"),
        (args.threads.or(f.threads).is_some(), "threads"),
    ]
}

/// Settings that only the bag classifier takes, and whether each was
/// given.
fn bag_only(args: &Args, merged: &Merged) -> Vec<(bool, &'static str)> {
    let f = &merged.file;
    vec![
        (args.bigram_buckets.or(f.bigram_buckets).is_some(), "bigram_buckets"),
        (args.bag_weights.is_some() || f.bag_weights.is_some(), "bag_weights"),
        (args.ngrams.or(f.ngrams).is_some(), "ngrams"),
        (args.hidden_activation.is_some() || f.hidden_activation.is_some(), "hidden_activation"),
        (args.dropout.or(f.dropout).is_some(), "dropout"),
        (args.rows_are_logits || f.rows_are_logits.is_some(), "rows_are_logits"),
    ]
}

/// Prints what skipping bad rows left out.
pub fn warn_skipped(path: &Path, report: &DataReport) {
    if report.skipped == 0 {
        return;
    }
    eprintln!("warning: {}: skipped {} bad rows", path.display(), report.skipped);
    for problem in report.problems.iter().take(10) {
        eprintln!("  {problem}");
    }
    let more = report.skipped.min(MAX_DATA_PROBLEMS).saturating_sub(10) + report.unlisted_problems;
    if more > 0 {
        eprintln!("  and {more} more");
    }
}

fn classify(args: &Args, merged: &Merged, options: &DataOptions) -> Result<()> {
    let optimizer = pick!(args, merged, optimizer, "adam".to_string());
    if optimizer != "adam" {
        bail!(
            "--optimizer {optimizer}: the sequence classifier trains with adam only (the bag, \
             --architecture bag, takes adam, rmsprop, sgd or adagrad)"
        );
    }
    for (given, name) in [
        (args.l2.or(merged.file.l2).is_some(), "l2"),
        (args.bias_l2.or(merged.file.bias_l2).is_some(), "bias_l2"),
        (args.shuffle_buffer.or(merged.file.shuffle_buffer).is_some(), "shuffle_buffer"),
    ] {
        if given {
            bail!("{name} is a setting of the ratings task, not of classify");
        }
    }
    let mut others = word2vec_only(args, merged);
    others.extend(bag_only(args, merged));
    refuse(&others, "classify with the sequence architecture")?;
    let data = data_file(args);
    let (train, report) = LabelledTexts::read(data, options)?;
    warn_skipped(data, &report);
    let validation = match &args.validation {
        Some(path) => {
            let (v, report) = LabelledTexts::read(path, options)?;
            warn_skipped(path, &report);
            Some(v)
        }
        None => None,
    };
    let split = pick!(args, merged, validation_split, 0.2);
    let settings = Settings {
        embedding_dim: pick!(args, merged, embedding_dim, 16),
        sequence_length: pick!(args, merged, sequence_length, 32),
        max_tokens: Some(pick!(args, merged, max_tokens, 20_000)),
        epochs: pick!(args, merged, epochs, 10),
        batch_size: pick!(args, merged, batch_size, 32),
        learning_rate: pick!(args, merged, learning_rate, 0.001),
        lr_decay: LrDecay::parse(&pick!(args, merged, lr_decay, "constant".to_string()))?,
        seed: pick!(args, merged, seed, 42),
        validation_split: if validation.is_some() { 0.0 } else { split },
        patience: args.patience.or(merged.file.patience),
    };
    let mut bars = Bars::new(args.quiet);
    let trained = TextClassifier::train(&train, validation.as_ref(), &settings, &mut bars)?;
    trained.classifier.save(&args.out, &trained.config, &trained.history)?;
    let plot_path = args.out.join("loss.png");
    plot::loss_curve(&trained.history, "training loss", &plot_path)?;

    let mut out = Out::new(args.json);
    let last = trained.history.epochs.last().context("training ran no epoch")?;
    out.text(format!(
        "trained {} epochs on {} texts{}: loss {:.4}{}",
        trained.history.epochs.len(),
        trained.trained_on,
        held_out(trained.validated_on, validation.is_some()),
        last.loss,
        last.val_metrics
            .get("accuracy")
            .map(|a| format!(", validation accuracy {a:.4}"))
            .unwrap_or_default()
    ))?;
    out.text(format!("model: {}", args.out.display()))?;
    out.text(format!("loss curve: {}", plot_path.display()))?;
    out.record(json!({
        "event": "summary",
        "task": Task::Classify.name(),
        "train_texts": trained.trained_on,
        "validation_texts": trained.validated_on,
        "train_loss": trained.history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        "val_loss": trained.history.epochs.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
        "val_accuracy": last.val_metrics.get("accuracy"),
        "classes": trained.classifier.classes,
        "skipped_rows": report.skipped,
        "model": args.out,
        "plot": plot_path,
    }))?;
    Ok(())
}

/// Adds `rmse` (the square root of the mean squared error) to each epoch
/// line the bars print.
struct WithRmse<'a>(&'a mut Bars);

impl Observer for WithRmse<'_> {
    fn train_begin(&mut self, epochs: usize, batches: usize) {
        self.0.train_begin(epochs, batches);
    }

    fn epoch_begin(&mut self, epoch: usize) {
        self.0.epoch_begin(epoch);
    }

    fn batch_end(&mut self, epoch: usize, batch: usize, mean_loss: f64) {
        self.0.batch_end(epoch, batch, mean_loss);
    }

    fn epoch_end(&mut self, log: &EpochLog) {
        let mut log = log.clone();
        for metrics in [&mut log.metrics, &mut log.val_metrics] {
            if let Some(mse) = metrics.remove("mean_squared_error") {
                metrics.insert("rmse".into(), mse.sqrt());
            }
            if let Some(mae) = metrics.remove("mean_absolute_error") {
                metrics.insert("mae".into(), mae);
            }
        }
        self.0.epoch_end(&log);
    }

    fn stopped_early(&mut self, epoch: usize) {
        self.0.stopped_early(epoch);
    }
}

/// RMSE and MAE of predictions against ratings.
pub fn rmse_mae(pred: &[f32], ratings: &[f32]) -> (f64, f64) {
    let (mut se, mut ae) = (0.0f64, 0.0f64);
    for (&p, &r) in pred.iter().zip(ratings) {
        let e = f64::from(p) - f64::from(r);
        se += e * e;
        ae += e.abs();
    }
    let n = pred.len().max(1) as f64;
    ((se / n).sqrt(), ae / n)
}

fn ratings(args: &Args, merged: &Merged, options: &DataOptions) -> Result<()> {
    for (given, name) in [
        (args.sequence_length.or(merged.file.sequence_length).is_some(), "sequence_length"),
        (args.max_tokens.or(merged.file.max_tokens).is_some(), "max_tokens"),
    ] {
        if given {
            bail!("{name} is a setting of the classify task, not of ratings");
        }
    }
    refuse(&word2vec_only(args, merged), "ratings")?;
    refuse(&bag_only(args, merged), "ratings")?;
    let seed = pick!(args, merged, seed, 42);
    if let Some(buffer) = args.shuffle_buffer.or(merged.file.shuffle_buffer) {
        return ratings_streamed(args, merged, options, seed, buffer);
    }
    let (data, report) = Interactions::read(data_file(args), options)?;
    warn_skipped(data_file(args), &report);
    let (train, validation) = match &args.validation {
        Some(path) => {
            let rows = Interactions::rows(path, options)?;
            let (v, report) = Interactions::from_rows_with_keys(
                rows,
                data.user_index().clone(),
                data.item_index().clone(),
            )?;
            warn_skipped(path, &report);
            let known: Vec<usize> = (0..v.len())
                .filter(|&i| {
                    v.users()[i] != embkit::data::UNKNOWN_ID
                        && v.items()[i] != embkit::data::UNKNOWN_ID
                })
                .collect();
            warn_unknown(path, v.len() - known.len(), v.len());
            if known.is_empty() {
                bail!("{}: no rating of a known user and item to validate on", path.display());
            }
            (data.clone(), Some(v.subset(&known)))
        }
        None => {
            let fraction = pick!(args, merged, validation_split, 0.1);
            if fraction == 0.0 {
                (data.clone(), None)
            } else {
                let split =
                    ratio_split(data.len(), fraction, seed).context("--validation-split")?;
                (data.subset(&split.train), Some(data.subset(&split.test)))
            }
        }
    };

    let tables = (data.num_users(), data.num_items());
    let mut model =
        ratings_model(args, merged, tables, train.mean_rating(), data.rating_range(), seed)?;
    let train_config = ratings_train_config(args, merged, train.len(), validation.is_some(), seed)?;
    let (ids, y) = (train.ids(), train.targets().into_dyn());
    let val_arrays = validation.as_ref().map(|v| (v.ids(), v.targets().into_dyn()));
    let val_data = match &val_arrays {
        Some((ids, y)) => Some(Dataset::new(ids.view(), y.view())?),
        None => None,
    };
    let mut bars = Bars::new(args.quiet);
    let history = model
        .fit(Dataset::new(ids.view(), y.view())?, val_data, &train_config, &mut WithRmse(&mut bars))
        .context("training")?;
    let val = validation.as_ref().map(|v| {
        let pred = model.predict_with_fallback(v.ids().view()).expect("[n, 2] ids");
        rmse_mae(pred.as_slice().expect("contiguous"), v.ratings())
    });
    ratings_results(
        args,
        &model,
        (data.user_index(), data.item_index()),
        &train_config,
        &history,
        RatingsCounts {
            ratings: train.len(),
            validation: validation.as_ref().map(Interactions::len),
            skipped: report.skipped,
            shuffle_buffer: None,
        },
        val,
    )
}

/// Warns that `unknown` of `total` validation ratings are left out.
fn warn_unknown(path: &Path, unknown: usize, total: usize) {
    if unknown > 0 {
        eprintln!(
            "warning: {}: {unknown} of {total} ratings have a user or item that is not in the \
             training data; validation leaves them out",
            path.display(),
        );
    }
}

/// `train --task ratings --shuffle-buffer N`: the ratings streamed from
/// disk for each epoch ([`InteractionStream`]).
fn ratings_streamed(
    args: &Args,
    merged: &Merged,
    options: &DataOptions,
    seed: u64,
    buffer: usize,
) -> Result<()> {
    let fraction =
        if args.validation.is_some() { 0.0 } else { pick!(args, merged, validation_split, 0.1) };
    if !(0.0..1.0).contains(&fraction) {
        bail!("--validation-split must be in [0, 1), got {fraction}");
    }
    // The settings are checked before the first reading of a large file.
    let validated = args.validation.is_some() || fraction > 0.0;
    ratings_train_config(args, merged, 1, validated, seed)?.validate()?;
    let (train, held_out) = InteractionStream::open(data_file(args), options, fraction, seed)?;
    warn_skipped(data_file(args), train.report());
    let batch_size = pick!(args, merged, batch_size, MatrixFactorization::DEFAULT_BATCH_SIZE);
    let mut train = train
        .with_batch_size(batch_size)
        .context("--batch-size")?
        .with_buffer_size(buffer)
        .context("--shuffle-buffer")?;
    let validation = match &args.validation {
        Some(path) => {
            let v = train.with_keys_of(path, options)?;
            warn_skipped(path, v.report());
            warn_unknown(path, v.unknown(), v.len() + v.unknown());
            Some(v)
        }
        None => held_out,
    };
    let mut validation = validation.map(|v| v.with_batch_size(batch_size)).transpose()?;
    let tables = (train.users().len(), train.items().len());
    let mut model =
        ratings_model(args, merged, tables, train.mean_rating(), train.rating_range(), seed)?;
    let train_config = ratings_train_config(args, merged, train.len(), validation.is_some(), seed)?;
    let mut bars = Bars::new(args.quiet);
    let history = embkit::fit_stream(
        &mut model,
        &mut train,
        validation.as_mut().map(|v| v as &mut dyn BatchStream),
        &train_config,
        &mut WithRmse(&mut bars),
    )
    .context("training")?;
    // The last epoch's validation scores the final model unless early
    // stopping went back to a better epoch: then one more pass.
    let val_metrics = match (validation.as_mut(), history.restored_epoch) {
        (None, _) => None,
        (Some(_), None) => history.epochs.last().map(|e| e.val_metrics.clone()),
        (Some(v), Some(_)) => {
            let metrics = &train_config.metrics;
            Some(embkit::evaluate_stream(&mut model, v, &train_config.loss, metrics)?.metrics)
        }
    };
    let val = val_metrics.map(|m| {
        let metric = |name: &str| m.get(name).copied().unwrap_or(f64::NAN);
        (metric("mean_squared_error").sqrt(), metric("mean_absolute_error"))
    });
    ratings_results(
        args,
        &model,
        (train.users(), train.items()),
        &train_config,
        &history,
        RatingsCounts {
            ratings: train.len(),
            validation: validation.as_ref().map(InteractionStream::len),
            skipped: train.report().skipped,
            shuffle_buffer: Some(buffer),
        },
        val,
    )
}

/// The model of the ratings task: `(users, items)` rows, the training
/// ratings' mean and the rating range, with the flags' dimension and L2
/// factors, seeded.
fn ratings_model(
    args: &Args,
    merged: &Merged,
    (users, items): (usize, usize),
    global_mean: f32,
    rating_range: Option<(f32, f32)>,
    seed: u64,
) -> Result<MatrixFactorization> {
    let dim = pick!(args, merged, embedding_dim, MatrixFactorizationConfig::DEFAULT_EMBEDDING_DIM);
    let mut config = MatrixFactorizationConfig::new(users, items, dim)
        .with_global_mean(global_mean)
        .with_l2(pick!(args, merged, l2, MatrixFactorizationConfig::DEFAULT_L2))
        .with_bias_l2(pick!(args, merged, bias_l2, MatrixFactorizationConfig::DEFAULT_BIAS_L2));
    config.rating_range = rating_range;
    config.init(&mut StdRng::seed_from_u64(seed)).context("building the model")
}

/// The training settings of the ratings task for `samples` training
/// ratings: optimizer, epochs, batches, decay, early stopping.
fn ratings_train_config(
    args: &Args,
    merged: &Merged,
    samples: usize,
    validated: bool,
    seed: u64,
) -> Result<TrainConfig> {
    let optimizer = pick!(args, merged, optimizer, "adam".to_string());
    let default_rate = match optimizer.as_str() {
        "adam" => MatrixFactorization::DEFAULT_LEARNING_RATE,
        "rmsprop" => RmsPropConfig::new().learning_rate,
        _ => 0.01,
    };
    let optimizer = optimizer_named(&optimizer, pick!(args, merged, learning_rate, default_rate))?;
    let mut train_config = MatrixFactorization::default_train_config()
        .with_metrics(vec![Metric::MeanSquaredError, Metric::MeanAbsoluteError])
        .with_epochs(pick!(args, merged, epochs, MatrixFactorization::DEFAULT_EPOCHS))
        .with_batch_size(pick!(args, merged, batch_size, MatrixFactorization::DEFAULT_BATCH_SIZE))
        .with_seed(seed);
    train_config.optimizer = optimizer;
    let learning_rate = train_config.optimizer.learning_rate();
    LrDecay::parse(&pick!(args, merged, lr_decay, "constant".to_string()))?.apply(
        &mut train_config,
        learning_rate,
        samples,
    );
    if let Some(patience) = args.patience.or(merged.file.patience) {
        if !validated {
            bail!("--patience watches the validation loss: give --validation or a --validation-split above 0");
        }
        train_config = train_config.with_early_stopping(
            EarlyStopping::new("val_loss").with_patience(patience).with_restore_best_weights(true),
        );
    }
    Ok(train_config)
}

/// What the summary of a ratings run counts.
struct RatingsCounts {
    ratings: usize,
    validation: Option<usize>,
    skipped: usize,
    /// The shuffle buffer of a streamed run.
    shuffle_buffer: Option<usize>,
}

/// Saves a trained ratings model with its keys, plots its loss and prints
/// the summary (`val`: validation RMSE and MAE).
fn ratings_results(
    args: &Args,
    model: &MatrixFactorization,
    (users, items): (&KeyIndex, &KeyIndex),
    train_config: &TrainConfig,
    history: &History,
    counts: RatingsCounts,
    val: Option<(f64, f64)>,
) -> Result<()> {
    let mut saved = SavedMatrixFactorization::new(model.clone());
    saved.users = Some(users.clone());
    saved.items = Some(items.clone());
    saved.train_config = Some(train_config.clone());
    saved.history = Some(history.clone());
    saved.metadata.insert("task".into(), Task::Ratings.name().into());
    if let Some(buffer) = counts.shuffle_buffer {
        // The order of a streamed run: its buffer with the config's seed.
        saved.metadata.insert("shuffle_buffer".into(), buffer.to_string());
    }
    saved.save(&args.out).with_context(|| format!("saving the model to {}", args.out.display()))?;
    let plot_path = args.out.join("loss.png");
    plot::loss_curve(history, "training loss", &plot_path)?;

    let last = history.epochs.last().context("training ran no epoch")?;
    let mut out = Out::new(args.json);
    out.text(format!(
        "trained {} epochs on {} ratings{} ({} users, {} items): loss {:.4}{}",
        history.epochs.len(),
        counts.ratings,
        if counts.shuffle_buffer.is_some() { " streamed from disk" } else { "" },
        users.len(),
        items.len(),
        last.loss,
        val.map(|(rmse, mae)| format!(", validation RMSE {rmse:.4}, MAE {mae:.4}"))
            .unwrap_or_default()
    ))?;
    out.text(format!("model: {}", args.out.display()))?;
    out.text(format!("loss curve: {}", plot_path.display()))?;
    out.record(json!({
        "event": "summary",
        "task": Task::Ratings.name(),
        "train_loss": history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        "val_loss": history.epochs.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
        "val_rmse": val.map(|v| v.0),
        "val_mae": val.map(|v| v.1),
        "ratings": counts.ratings,
        "validation_ratings": counts.validation,
        "streamed": counts.shuffle_buffer.is_some(),
        "users": users.len(),
        "items": items.len(),
        "global_mean": model.config().global_mean,
        "skipped_rows": counts.skipped,
        "stopped_epoch": history.stopped_epoch,
        "restored_epoch": history.restored_epoch,
        "model": args.out,
        "plot": plot_path,
    }))?;
    Ok(())
}

fn classify_bag(args: &Args, merged: &Merged, options: &DataOptions) -> Result<()> {
    let mut others = word2vec_only(args, merged);
    others.push((args.l2.or(merged.file.l2).is_some(), "l2"));
    others.push((args.bias_l2.or(merged.file.bias_l2).is_some(), "bias_l2"));
    others.push((args.shuffle_buffer.or(merged.file.shuffle_buffer).is_some(), "shuffle_buffer"));
    refuse(&others, "classify")?;
    let optimizer = pick!(args, merged, optimizer, BagSettings::defaults().optimizer);
    optimizer_named(&optimizer, 0.01)?; // a misspelt name fails before the data is read
    let data = data_file(args);
    let (train, report) = LabelledTexts::read(data, options)?;
    warn_skipped(data, &report);
    let validation = match &args.validation {
        Some(path) => {
            let (v, report) = LabelledTexts::read(path, options)?;
            warn_skipped(path, &report);
            Some(v)
        }
        None => None,
    };
    let d = BagSettings::defaults();
    let split = pick!(args, merged, validation_split, 0.2);
    let settings = BagSettings {
        embedding_dim: pick!(args, merged, embedding_dim, d.embedding_dim),
        bigram_buckets: pick!(args, merged, bigram_buckets, d.bigram_buckets),
        max_tokens: args.max_tokens.or(merged.file.max_tokens),
        max_len: args.sequence_length.or(merged.file.sequence_length),
        epochs: pick!(args, merged, epochs, d.epochs),
        batch_size: pick!(args, merged, batch_size, d.batch_size),
        learning_rate: {
            let rmsprop = optimizer == "rmsprop";
            pick!(
                args,
                merged,
                learning_rate,
                if rmsprop { RmsPropConfig::new().learning_rate } else { d.learning_rate }
            )
        },
        lr_decay: LrDecay::parse(&pick!(args, merged, lr_decay, d.lr_decay.name().to_string()))?,
        seed: pick!(args, merged, seed, d.seed),
        validation_split: if validation.is_some() { 0.0 } else { split },
        patience: args.patience.or(merged.file.patience),
        weighting: match pick!(args, merged, bag_weights, "mean".to_string()).as_str() {
            "mean" => BagWeighting::Mean,
            "tf-idf" | "tf_idf" | "tfidf" => BagWeighting::TfIdf,
            "tf-idf-l2" | "tf_idf_l2" | "tfidf-l2" => BagWeighting::TfIdfL2,
            other => {
                bail!("unknown --bag-weights {other:?}: expected mean, tf-idf or tf-idf-l2")
            }
        },
        hidden_activation: {
            let name = pick!(args, merged, hidden_activation, "linear".to_string());
            // Keras's names; softmax belongs to the output layer.
            name.parse::<Activation>().ok().filter(|&a| a != Activation::Softmax).with_context(
                || format!("unknown --hidden-activation {name:?}: expected linear, relu, tanh or sigmoid"),
            )?
        },
        dropout: pick!(args, merged, dropout, 0.0),
        ngrams: pick!(args, merged, ngrams, 1),
        optimizer,
        rows_are_logits: args.rows_are_logits || merged.file.rows_are_logits == Some(true),
    };
    if settings.rows_are_logits && args.embedding_dim.or(merged.file.embedding_dim).is_some() {
        bail!(
            "--rows-are-logits makes each row one score per class: its length is the number of \
             classes, so leave out --embedding-dim"
        );
    }
    let mut bars = Bars::new(args.quiet);
    let trained = BagTextClassifier::train(&train, validation.as_ref(), &settings, &mut bars)?;
    trained.classifier.save(&args.out, &trained.config, &trained.history)?;
    let plot_path = args.out.join("loss.png");
    plot::loss_curve(&trained.history, "training loss", &plot_path)?;

    let mut out = Out::new(args.json);
    let last = trained.history.epochs.last().context("training ran no epoch")?;
    out.text(format!(
        "trained the bag classifier {} epochs on {} texts{}: loss {:.4}{}",
        trained.history.epochs.len(),
        trained.trained_on,
        held_out(trained.validated_on, validation.is_some()),
        last.loss,
        last.val_metrics
            .get("accuracy")
            .map(|a| format!(", validation accuracy {a:.4}"))
            .unwrap_or_default()
    ))?;
    out.text(format!("model: {}", args.out.display()))?;
    out.text(format!("loss curve: {}", plot_path.display()))?;
    let config = trained.classifier.model.config();
    out.record(json!({
        "event": "summary",
        "task": Task::Classify.name(),
        "architecture": "bag",
        "train_texts": trained.trained_on,
        "validation_texts": trained.validated_on,
        "train_loss": trained.history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        "val_loss": trained.history.epochs.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
        "val_accuracy": last.val_metrics.get("accuracy"),
        "classes": trained.classifier.classes,
        "words": config.num_words,
        "bigram_buckets": config.bigram_buckets,
        "embedding_dim": config.embedding_dim,
        "skipped_rows": report.skipped,
        "model": args.out,
        "plot": plot_path,
    }))?;
    Ok(())
}

/// The vectors' file name in the output directory for a `--format`.
fn vectors_file(format: VectorFormat) -> Result<&'static str> {
    Ok(match format {
        VectorFormat::Word2VecBinary => "vectors.bin",
        VectorFormat::Word2Vec => "vectors.txt",
        VectorFormat::FastTextVec => "vectors.vec",
        VectorFormat::Npy => "vectors.npy",
        VectorFormat::Safetensors => "vectors.safetensors",
        other => bail!(
            "--format {other}: word2vec writes word2vec-bin, word2vec, fasttext-vec, npy or \
             safetensors"
        ),
    })
}

/// The config file written beside word2vec's vectors.
pub const WORD2VEC_CONFIG: &str = "word2vec.json";

/// One pass over the lines of `--task word2vec`'s files, read lazily
/// (nothing of the corpus is held but the line being read). It ends early
/// at a bad row or an unreadable file; [`finish`](Self::finish) says so.
struct CorpusPass<'a> {
    files: std::slice::Iter<'a, PathBuf>,
    options: &'a DataOptions,
    current: Option<(&'a Path, Rows<String>)>,
    reports: Vec<(&'a Path, DataReport)>,
    error: Option<embkit::Error>,
}

impl<'a> CorpusPass<'a> {
    fn new(files: &'a [PathBuf], options: &'a DataOptions) -> Self {
        Self { files: files.iter(), options, current: None, reports: Vec::new(), error: None }
    }

    /// The sentences of the pass: its lines, or with `letters` their
    /// letter tokens cut into 1,000-token sentences.
    fn sentences(&mut self, tokenize: Tokenize) -> Box<dyn Iterator<Item = String> + '_> {
        match tokenize {
            Tokenize::Whitespace => Box::new(self),
            Tokenize::Letters => Box::new(LetterSentences::new(self, 1000)),
        }
    }

    /// Ends the pass: with `warn`, prints what it skipped in each file it
    /// read through; then the error that ended it, if one did.
    fn finish(self, warn: bool) -> Result<()> {
        if warn {
            for (path, report) in &self.reports {
                warn_skipped(path, report);
            }
        }
        match self.error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

impl Iterator for CorpusPass<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            if let Some((path, rows)) = &mut self.current {
                match rows.next() {
                    Some(Ok(line)) => return Some(line),
                    Some(Err(e)) => {
                        self.error = Some(e);
                        self.current = None;
                        self.files = [].iter();
                        return None;
                    }
                    None => {
                        let path = *path;
                        let (_, rows) = self.current.take().expect("a file is open");
                        self.reports.push((path, rows.into_report()));
                    }
                }
            }
            let path = self.files.next()?;
            match Corpus::rows(path, self.options) {
                Ok(rows) => self.current = Some((path, rows)),
                Err(e) => {
                    self.error = Some(e);
                    self.files = [].iter();
                    return None;
                }
            }
        }
    }
}

fn word2vec(args: &Args, merged: &Merged, options: &DataOptions) -> Result<()> {
    let f = &merged.file;
    refuse(
        &[
            (args.sequence_length.or(f.sequence_length).is_some(), "sequence_length"),
            (args.max_tokens.or(f.max_tokens).is_some(), "max_tokens"),
            (args.batch_size.or(f.batch_size).is_some(), "batch_size"),
            (args.optimizer.is_some() || f.optimizer.is_some(), "optimizer"),
            (args.l2.or(f.l2).is_some(), "l2"),
            (args.bias_l2.or(f.bias_l2).is_some(), "bias_l2"),
            (args.shuffle_buffer.or(f.shuffle_buffer).is_some(), "shuffle_buffer"),
            (args.patience.or(f.patience).is_some(), "patience"),
            (args.validation.is_some(), "validation"),
            (args.validation_split.or(f.validation_split).is_some(), "validation_split"),
            (args.lr_decay.is_some() || f.lr_decay.is_some(), "lr_decay"),
        ],
        "word2vec",
    )?;
    refuse(&bag_only(args, merged), "word2vec")?;
    let d = SkipGramConfig::new();
    let mut config = SkipGramConfig::new()
        .with_embedding_dim(pick!(args, merged, embedding_dim, d.embedding_dim))
        .with_window(pick!(args, merged, window, d.window))
        .with_negative(pick!(args, merged, negative, d.negative))
        .with_min_count(pick!(args, merged, min_count, d.min_count))
        .with_sample(pick!(args, merged, sample, d.sample))
        .with_epochs(pick!(args, merged, epochs, d.epochs))
        .with_seed(pick!(args, merged, seed, d.seed))
        .with_alpha(pick!(args, merged, learning_rate, d.alpha), d.min_alpha);
    if args.cbow || f.cbow == Some(true) {
        config = config.with_architecture(SkipGramArchitecture::Cbow);
    }
    config.validate().context("word2vec settings")?;
    let tokenize = match (args.tokenize, &f.tokenize) {
        (Some(t), _) => t,
        (None, Some(name)) => parse_tokenize(name).map_err(anyhow::Error::msg)?,
        (None, None) => Tokenize::Whitespace,
    };
    let format_name = args.format.clone().or(f.format.clone()).unwrap_or("word2vec-bin".into());
    let format: VectorFormat = format_name.parse().context("--format")?;
    let file = vectors_file(format)?;
    let threads = match args.threads.or(f.threads) {
        Some(n) => Threads::new(n).context("--threads")?,
        None => Threads::single(),
    };

    // Two passes over the files, as gensim's LineSentence: one counts the
    // words, one keeps each sentence as ids (4 bytes a word); of the text,
    // only the line being read is held (and, with letters, the tokens of
    // the sentence being cut). A pipe cannot be read twice.
    if let Some(path) = args.data.iter().find(|p| p.metadata().is_ok_and(|m| !m.is_file())) {
        bail!(
            "{} is not a regular file: word2vec reads its files twice (to count the words, then \
             to keep the sentences as ids); save the text to a file first",
            path.display()
        );
    }
    let mut pass = CorpusPass::new(&args.data, options);
    let vocab = config.build_vocab(pass.sentences(tokenize));
    // A read error ends the pass early: it is the cause, not what the
    // counts of a cut corpus say.
    pass.finish(true)?;
    let mut model = config.init(vocab.context("counting the words")?)?;
    let mut pass = CorpusPass::new(&args.data, options);
    let mut num_sentences = 0usize;
    let sentences = model.encode(pass.sentences(tokenize).inspect(|_| num_sentences += 1));
    pass.finish(false)?;
    let mut bars = Bars::new(args.quiet);
    let report = model.train(&sentences, threads, &mut bars).context("training word2vec")?;
    drop(sentences);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let vectors_path = args.out.join(file);
    model
        .vectors()?
        .write(&vectors_path, format)
        .with_context(|| format!("writing {}", vectors_path.display()))?;
    let config_path = args.out.join(WORD2VEC_CONFIG);
    let saved = json!({
        "config": config,
        "tokenize": tokenize,
        "data": args.data,
        "threads": report.threads,
        "words": model.vocab().len(),
        "format": format.name(),
        "vectors": file,
        "model": MODEL_FILE,
    });
    write_atomically(&config_path, serde_json::to_string_pretty(&saved)?.as_bytes())?;
    // The model itself (both tables, the vocabulary with its counts), so
    // that `inspect`, `convert` and `neighbors --model` open the folder.
    let mut saved = SavedSkipGram::new(model);
    saved.report = Some(report.clone());
    let tokenize_name = match serde_json::to_value(tokenize)? {
        serde_json::Value::String(name) => name,
        other => other.to_string(),
    };
    saved.metadata.insert("tokenize".into(), tokenize_name);
    saved.metadata.insert("data".into(), serde_json::to_string(&args.data)?);
    saved.save(&args.out).with_context(|| format!("saving the model in {}", args.out.display()))?;
    let model = &saved.model;

    let mut out = Out::new(args.json);
    out.text(format!(
        "trained {} {} epoch{} on {} words ({} sentences) on {} thread{}: {} words in the \
         vocabulary, {:.0} words/s",
        match config.architecture {
            SkipGramArchitecture::Cbow => "CBOW",
            _ => "skip-gram",
        },
        report.epochs,
        if report.epochs == 1 { "" } else { "s" },
        report.words / report.epochs.max(1) as u64,
        num_sentences,
        report.threads,
        if report.threads == 1 { "" } else { "s" },
        model.vocab().len(),
        report.words_per_second(),
    ))?;
    out.text(format!("vectors: {}", vectors_path.display()))?;
    out.text(format!("model: {}", args.out.display()))?;
    out.text(format!("config: {}", config_path.display()))?;
    out.record(json!({
        "event": "summary",
        "task": Task::Word2vec.name(),
        "words": model.vocab().len(),
        "corpus_words": report.words / report.epochs.max(1) as u64,
        "sentences": num_sentences,
        "epochs": report.epochs,
        "threads": report.threads,
        "seconds": report.seconds,
        "words_per_second": report.words_per_second(),
        "vectors": vectors_path,
        "model": args.out,
        "config": config_path,
    }))?;
    Ok(())
}

/// " (N held out for validation)" when the validation texts came from
/// `--data`.
fn held_out(validated_on: usize, from_file: bool) -> String {
    if validated_on == 0 || from_file {
        String::new()
    } else {
        format!(" ({validated_on} held out for validation)")
    }
}
