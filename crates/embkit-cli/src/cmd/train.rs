//! `embkit train`: a text classifier from a `label<TAB>text` file, or a
//! rating predictor (matrix factorisation) from an interactions file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use embkit::data::{
    ratio_split, DataOptions, DataReport, Interactions, LabelledTexts, MAX_DATA_PROBLEMS,
};
use embkit::format::SavedMatrixFactorization;
use embkit::model::{MatrixFactorization, MatrixFactorizationConfig};
use embkit::{
    AdagradConfig, AdamConfig, Dataset, EarlyStopping, EpochLog, Metric, Observer, OptimizerConfig,
    SgdConfig,
};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::output::Out;
use crate::pipeline::{Settings, TextClassifier};
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
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Ratings => "ratings",
        }
    }
}

/// The task names `--task` and the config accept; `word2vec` is refused
/// with a message that says it is planned.
pub fn parse_task(name: &str) -> Result<Task, String> {
    match name {
        "classify" => Ok(Task::Classify),
        "ratings" => Ok(Task::Ratings),
        "word2vec" => Err("word2vec training is not available yet (it will come later); the \
                           tasks are classify and ratings"
            .into()),
        other => Err(format!(
            "unknown task {other:?}: the tasks are classify and ratings (word2vec will come later)"
        )),
    }
}

/// Train a model and save it: a text classifier (`--task classify`, the
/// default) or a rating predictor (`--task ratings`). Every setting has a
/// default; a `--config` file sets any of them, and flags override it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to train: `classify` (texts with labels) or `ratings` (user-item
    /// ratings). Default classify. (word2vec will come later.)
    #[arg(long, value_parser = parse_task)]
    pub task: Option<Task>,
    /// Training data. classify: one `label<TAB>text` per line (a
    /// `label<TAB>text` header is allowed; two labels give a sigmoid
    /// output, more a softmax). ratings: `user item rating [timestamp]` per
    /// line, tab-, comma-, `::`- or space-separated, header optional
    /// (MovieLens u.data and ratings.csv both work). `.gz` files are read
    /// as they are.
    #[arg(long)]
    pub data: PathBuf,
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
    /// `--validation` file; 0 trains on everything. classify: the end of
    /// the file, as Keras (default 0.2); ratings: a seeded random sample
    /// (default 0.1).
    #[arg(long)]
    pub validation_split: Option<f64>,
    /// Passes over the training data [classify: 10, ratings: 20].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Length of each word, user or item vector [classify: 16, ratings: 64].
    #[arg(long)]
    pub embedding_dim: Option<usize>,
    /// classify: words per text; longer texts are cut, shorter ones padded
    /// [32].
    #[arg(long)]
    pub sequence_length: Option<usize>,
    /// classify: vocabulary size, counting the padding and unknown-word ids
    /// [20000].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Samples per training step [classify: 32, ratings: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// The optimizer's learning rate [classify: 0.001, ratings: 0.002 for
    /// adam; 0.01 for sgd and adagrad].
    #[arg(long)]
    pub learning_rate: Option<f32>,
    /// ratings: the optimizer, `adam`, `sgd` or `adagrad`, all with lazy row
    /// updates [adam]. classify always uses adam.
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
    validation_split: Option<f64>,
    epochs: Option<usize>,
    embedding_dim: Option<usize>,
    sequence_length: Option<usize>,
    max_tokens: Option<usize>,
    batch_size: Option<usize>,
    learning_rate: Option<f32>,
    optimizer: Option<String>,
    l2: Option<f32>,
    bias_l2: Option<f32>,
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
    match task {
        Task::Classify => classify(&args, &merged, &options),
        Task::Ratings => ratings(&args, &merged, &options),
    }
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
        bail!("--optimizer {optimizer}: the classify task trains with adam only");
    }
    for (given, name) in [
        (args.l2.or(merged.file.l2).is_some(), "l2"),
        (args.bias_l2.or(merged.file.bias_l2).is_some(), "bias_l2"),
    ] {
        if given {
            bail!("{name} is a setting of the ratings task, not of classify");
        }
    }
    let (train, report) = LabelledTexts::read(&args.data, options)?;
    warn_skipped(&args.data, &report);
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
        "trained {} epochs on {} texts: loss {:.4}{}",
        trained.history.epochs.len(),
        train.len(),
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
    let seed = pick!(args, merged, seed, 42);
    let (data, report) = Interactions::read(&args.data, options)?;
    warn_skipped(&args.data, &report);
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
            if known.len() < v.len() {
                eprintln!(
                    "warning: {}: {} of {} ratings have a user or item that is not in the \
                     training data; validation leaves them out",
                    path.display(),
                    v.len() - known.len(),
                    v.len()
                );
            }
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

    let dim = pick!(args, merged, embedding_dim, MatrixFactorizationConfig::DEFAULT_EMBEDDING_DIM);
    let mut config = MatrixFactorizationConfig::for_interactions(&train, dim)
        .with_l2(pick!(args, merged, l2, MatrixFactorizationConfig::DEFAULT_L2))
        .with_bias_l2(pick!(args, merged, bias_l2, MatrixFactorizationConfig::DEFAULT_BIAS_L2));
    config.rating_range = data.rating_range();
    let mut model = config.init(&mut StdRng::seed_from_u64(seed)).context("building the model")?;

    let optimizer = pick!(args, merged, optimizer, "adam".to_string());
    let optimizer: OptimizerConfig = match optimizer.as_str() {
        "adam" => AdamConfig::new()
            .with_learning_rate(pick!(
                args,
                merged,
                learning_rate,
                MatrixFactorization::DEFAULT_LEARNING_RATE
            ))
            .into(),
        "sgd" => {
            SgdConfig::new().with_learning_rate(pick!(args, merged, learning_rate, 0.01)).into()
        }
        "adagrad" => {
            AdagradConfig::new().with_learning_rate(pick!(args, merged, learning_rate, 0.01)).into()
        }
        other => bail!("unknown optimizer {other:?}: expected adam, sgd or adagrad"),
    };
    let mut train_config = MatrixFactorization::default_train_config()
        .with_metrics(vec![Metric::MeanSquaredError, Metric::MeanAbsoluteError])
        .with_epochs(pick!(args, merged, epochs, MatrixFactorization::DEFAULT_EPOCHS))
        .with_batch_size(pick!(args, merged, batch_size, MatrixFactorization::DEFAULT_BATCH_SIZE))
        .with_seed(seed);
    train_config.optimizer = optimizer;
    if let Some(patience) = args.patience.or(merged.file.patience) {
        if validation.is_none() {
            bail!("--patience watches the validation loss: give --validation or a --validation-split above 0");
        }
        train_config = train_config.with_early_stopping(
            EarlyStopping::new("val_loss").with_patience(patience).with_restore_best_weights(true),
        );
    }

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

    let mut saved = SavedMatrixFactorization::new(model.clone());
    saved.users = Some(data.user_index().clone());
    saved.items = Some(data.item_index().clone());
    saved.train_config = Some(train_config.clone());
    saved.history = Some(history.clone());
    saved.metadata.insert("task".into(), Task::Ratings.name().into());
    saved.save(&args.out).with_context(|| format!("saving the model to {}", args.out.display()))?;
    let plot_path = args.out.join("loss.png");
    plot::loss_curve(&history, "training loss", &plot_path)?;

    let val = validation.as_ref().map(|v| {
        let pred = model.predict_with_fallback(v.ids().view()).expect("[n, 2] ids");
        rmse_mae(pred.as_slice().expect("contiguous"), v.ratings())
    });
    let last = history.epochs.last().context("training ran no epoch")?;
    let mut out = Out::new(args.json);
    out.text(format!(
        "trained {} epochs on {} ratings ({} users, {} items): loss {:.4}{}",
        history.epochs.len(),
        train.len(),
        data.num_users(),
        data.num_items(),
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
        "ratings": train.len(),
        "validation_ratings": validation.as_ref().map(Interactions::len),
        "users": data.num_users(),
        "items": data.num_items(),
        "global_mean": model.config().global_mean,
        "skipped_rows": report.skipped,
        "stopped_epoch": history.stopped_epoch,
        "restored_epoch": history.restored_epoch,
        "model": args.out,
        "plot": plot_path,
    }))?;
    Ok(())
}
