//! `embkit train`: a text classifier from a `label<TAB>text` file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use embkit::data::LabelledTexts;
use serde_json::json;

use crate::output::Out;
use crate::pipeline::{Settings, TextClassifier};
use crate::plot;
use crate::progress::Bars;

/// Train `Embedding → Flatten → Dense` on labelled texts and save it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Training data: one `label<TAB>text` per line (a `label<TAB>text`
    /// header is allowed). Two labels give a sigmoid output, more a softmax.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the model (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Validation data in the same format. Without it, the last
    /// `--validation-split` of `--data` is held out.
    #[arg(long)]
    pub validation: Option<PathBuf>,
    /// Fraction of `--data` held out for validation when there is no
    /// `--validation` file (taken from the end, as Keras).
    #[arg(long, default_value_t = 0.2)]
    pub validation_split: f64,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Length of each word vector.
    #[arg(long, default_value_t = 16)]
    pub embedding_dim: usize,
    /// Words per text: longer texts are cut, shorter ones padded.
    #[arg(long, default_value_t = 32)]
    pub sequence_length: usize,
    /// Vocabulary size, counting the padding and unknown-word ids.
    #[arg(long, default_value_t = 20_000)]
    pub max_tokens: usize,
    /// Samples per training step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub learning_rate: f32,
    /// Stop after this many epochs without a lower validation loss, and
    /// keep the best epoch's weights.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Seed of the initial weights and the shuffling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `embkit train`.
pub fn run(args: Args) -> Result<()> {
    let train = LabelledTexts::read_tsv(&args.data)?;
    let validation = args.validation.as_ref().map(LabelledTexts::read_tsv).transpose()?;
    let settings = Settings {
        embedding_dim: args.embedding_dim,
        sequence_length: args.sequence_length,
        max_tokens: Some(args.max_tokens),
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        seed: args.seed,
        validation_split: if validation.is_some() { 0.0 } else { args.validation_split },
        patience: args.patience,
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
        "train_loss": trained.history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        "val_loss": trained.history.epochs.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
        "val_accuracy": last.val_metrics.get("accuracy"),
        "classes": trained.classifier.classes,
        "model": args.out,
        "plot": plot_path,
    }))?;
    Ok(())
}
