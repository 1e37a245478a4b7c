//! `embkit inspect`: what a saved model is and how it was trained.

use std::path::PathBuf;

use anyhow::{Context, Result};
use embkit::format::{
    ModelKind, SavedBagClassifier, SavedMatrixFactorization, SavedModel, SavedSkipGram, MODEL_FILE,
};
use embkit::word2vec::Architecture;
use embkit::{History, Layer, TrainConfig};
use serde_json::json;

use crate::output::Out;

/// Show a saved model's configs, sizes and training history.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model directory.
    pub model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embkit inspect`.
pub fn run(args: Args) -> Result<()> {
    let context = || format!("loading the model in {}", args.model.display());
    match ModelKind::of_dir(&args.model).with_context(context)? {
        ModelKind::MatrixFactorization => {
            let saved = SavedMatrixFactorization::load(&args.model).with_context(context)?;
            return inspect_matrix_factorization(&args, &saved);
        }
        ModelKind::BagClassifier => {
            let saved = SavedBagClassifier::load(&args.model).with_context(context)?;
            return inspect_bag_classifier(&args, &saved);
        }
        ModelKind::SkipGram => {
            let saved = SavedSkipGram::load(&args.model).with_context(context)?;
            return inspect_skip_gram(&args, &saved);
        }
        _ => {}
    }
    let saved = SavedModel::load(&args.model).with_context(context)?;
    let model = &saved.model;
    let config = model.config();
    let emb = model.embedding();
    let file_size = std::fs::metadata(args.model.join(MODEL_FILE)).map(|m| m.len()).unwrap_or(0);
    let mut params = emb.weights().len();
    let mut layers = Vec::new();
    let mut shape = vec![config.input_length, emb.embedding_dim()];
    for (layer, lc) in model.layers().iter().zip(&config.layers) {
        shape = lc.output_shape(&shape)?;
        let n = match layer {
            Layer::Dense(d) => {
                d.kernel().len() + if d.config().use_bias { d.bias().len() } else { 0 }
            }
            _ => 0,
        };
        params += n;
        layers.push((serde_json::to_value(lc)?, shape.clone(), n));
    }

    let mut out = Out::new(args.json);
    out.record(json!({
        "model": args.model,
        "file_bytes": file_size,
        "config": config,
        "parameters": params,
        "vocab_size": saved.vocab.as_ref().map(Vec::len),
        "train_config": saved.train_config,
        "history": saved.history,
        "metadata": saved.metadata,
    }))?;
    out.text(format!("model      {}  ({file_size} bytes)", args.model.display()))?;
    out.text(format!(
        "input      [batch, {}] ids; vocabulary {}",
        config.input_length,
        saved.vocab.as_ref().map_or("none".to_string(), |v| format!("{} tokens", v.len()))
    ))?;
    out.text(format!(
        "embedding  {} x {}  ({} parameters, {}trainable, init {})",
        emb.num_embeddings(),
        emb.embedding_dim(),
        emb.weights().len(),
        if emb.config().trainable { "" } else { "not " },
        serde_json::to_string(&emb.config().init)?
    ))?;
    for (i, (lc, shape, n)) in layers.iter().enumerate() {
        out.text(format!("layer {i}    {lc}  -> [batch, {}]  ({n} parameters)", join(shape)))?;
    }
    out.text(format!("parameters {params}"))?;
    training(&mut out, saved.train_config.as_ref(), saved.history.as_ref(), &saved.metadata)
}

/// The training config, the history per epoch and the metadata, as text.
fn training(
    out: &mut Out,
    train_config: Option<&TrainConfig>,
    history: Option<&History>,
    metadata: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    if let Some(tc) = train_config {
        out.text(format!(
            "training   loss {}, optimizer {}, {} epochs, batch {}, seed {}",
            tc.loss.name(),
            serde_json::to_string(&tc.optimizer)?,
            tc.epochs,
            tc.batch_size,
            tc.seed
        ))?;
        if let Some(schedule) = &tc.learning_rate_schedule {
            out.text(format!("lr         {}", serde_json::to_string(schedule)?))?;
        }
    }
    if let Some(h) = history {
        for e in &h.epochs {
            let mut line = format!("epoch {:>3}  loss {:.4}", e.epoch, e.loss);
            for (k, v) in &e.metrics {
                line.push_str(&format!("  {k} {v:.4}"));
            }
            if let Some(v) = e.val_loss {
                line.push_str(&format!("  val_loss {v:.4}"));
            }
            for (k, v) in &e.val_metrics {
                line.push_str(&format!("  val_{k} {v:.4}"));
            }
            out.text(line)?;
        }
        if let Some(e) = h.stopped_epoch {
            out.text(format!("stopped early after epoch {e}"))?;
        }
        if let Some(e) = h.restored_epoch {
            out.text(format!("weights restored from epoch {e}"))?;
        }
    }
    for (k, v) in metadata {
        out.text(format!("meta       {k} = {v}"))?;
    }
    Ok(())
}

/// `inspect` of a saved [`MatrixFactorization`](embkit::MatrixFactorization).
fn inspect_matrix_factorization(args: &Args, saved: &SavedMatrixFactorization) -> Result<()> {
    let model = &saved.model;
    let file_size = std::fs::metadata(args.model.join(MODEL_FILE)).map(|m| m.len()).unwrap_or(0);
    let tables = [
        ("users", model.users()),
        ("items", model.items()),
        ("user bias", model.user_bias()),
        ("item bias", model.item_bias()),
    ];
    let params: usize = tables.iter().map(|(_, t)| t.weights().len()).sum();
    let mut out = Out::new(args.json);
    out.record(json!({
        "model": args.model,
        "kind": "matrix_factorization",
        "file_bytes": file_size,
        "config": model.config(),
        "parameters": params,
        "users": saved.users.as_ref().map(|k| k.len()),
        "items": saved.items.as_ref().map(|k| k.len()),
        "train_config": saved.train_config,
        "history": saved.history,
        "metadata": saved.metadata,
    }))?;
    out.text(format!("model      {}  ({file_size} bytes)", args.model.display()))?;
    out.text(format!(
        "kind       matrix factorisation: {}",
        serde_json::to_string(model.config())?
    ))?;
    for (name, table) in tables {
        out.text(format!(
            "{name:<10} {} x {}  ({} parameters)",
            table.num_embeddings(),
            table.embedding_dim(),
            table.weights().len()
        ))?;
    }
    out.text(format!("parameters {params}"))?;
    training(&mut out, saved.train_config.as_ref(), saved.history.as_ref(), &saved.metadata)
}

/// `inspect` of a saved [`BagClassifier`](embkit::BagClassifier).
fn inspect_bag_classifier(args: &Args, saved: &SavedBagClassifier) -> Result<()> {
    let model = &saved.model;
    let file_size = std::fs::metadata(args.model.join(MODEL_FILE)).map(|m| m.len()).unwrap_or(0);
    let bag = model.bag();
    let dense = model.dense();
    let dense_params =
        dense.kernel().len() + if dense.config().use_bias { dense.bias().len() } else { 0 };
    let hidden_params = model.hidden_bias().map_or(0, |b| b.len());
    let params = bag.weights().len() + hidden_params + dense_params;
    let mut out = Out::new(args.json);
    out.record(json!({
        "model": args.model,
        "kind": "bag_classifier",
        "file_bytes": file_size,
        "config": model.config(),
        "parameters": params,
        "vocab_size": saved.vocab.as_ref().map(Vec::len),
        "train_config": saved.train_config,
        "history": saved.history,
        "metadata": saved.metadata,
    }))?;
    out.text(format!("model      {}  ({file_size} bytes)", args.model.display()))?;
    out.text(format!(
        "kind       bag classifier (fastText-style): {}",
        serde_json::to_string(model.config())?
    ))?;
    let config = model.config();
    let pooling = match config.weighting {
        embkit::model::BagWeighting::Mean => "mean",
        embkit::model::BagWeighting::TfIdfL2 => "sum of TF-IDF-weighted rows, L2-normalised",
        _ => "sum of TF-IDF-weighted rows",
    };
    let mut hidden = match config.hidden_activation {
        embkit::Activation::Linear => String::new(),
        a => format!(", then {}", a.name()),
    };
    if config.hidden_bias {
        hidden = format!(", plus a bias ({hidden_params} parameters){hidden}");
    }
    if config.dropout > 0.0 {
        hidden.push_str(&format!(", dropout {}", config.dropout));
    }
    if config.rows_are_logits {
        hidden.push_str(", the rows are the class scores");
    }
    out.text(format!(
        "bag        {} x {} ({} vocabulary rows, {} hashed bigram rows; {pooling}{hidden})  ({} \
         parameters)",
        bag.num_embeddings(),
        bag.embedding_dim(),
        config.num_words,
        config.bigram_buckets,
        bag.weights().len()
    ))?;
    let fixed = if config.rows_are_logits { ", kernel fixed at the identity" } else { "" };
    out.text(format!(
        "dense      {}  ({dense_params} parameters{fixed})",
        serde_json::to_string(dense.config())?
    ))?;
    out.text(format!("parameters {params}"))?;
    training(&mut out, saved.train_config.as_ref(), saved.history.as_ref(), &saved.metadata)
}

/// `inspect` of a saved word2vec [`SkipGram`](embkit::word2vec::SkipGram).
fn inspect_skip_gram(args: &Args, saved: &SavedSkipGram) -> Result<()> {
    let model = &saved.model;
    let config = model.config();
    let vocab = model.vocab();
    let file_size = std::fs::metadata(args.model.join(MODEL_FILE)).map(|m| m.len()).unwrap_or(0);
    let (words, dim) = (vocab.len(), config.embedding_dim);
    let params = model.input_weights().len() + model.output_weights().len();
    let report = saved.report.as_ref();
    let mut out = Out::new(args.json);
    out.record(json!({
        "model": args.model,
        "kind": "skip_gram",
        "file_bytes": file_size,
        "config": config,
        "parameters": params,
        "vocab_size": words,
        "vocab_total": vocab.total(),
        "corpus_words": vocab.corpus_words(),
        "lowercase": vocab.lowercase(),
        "tables": { "input": [words, dim], "output": [words, dim] },
        "report": report,
        "words_per_second": report.map(|r| r.words_per_second()),
        "metadata": saved.metadata,
    }))?;
    let architecture = match config.architecture {
        Architecture::Cbow => "CBOW",
        _ => "skip-gram",
    };
    out.text(format!("model      {}  ({file_size} bytes)", args.model.display()))?;
    out.text(format!("kind       word2vec {architecture}: {}", serde_json::to_string(config)?))?;
    out.text(format!(
        "vocabulary {words} words, seen {} times in a corpus of {} words{}",
        vocab.total(),
        vocab.corpus_words(),
        if vocab.lowercase() { ", lowercased" } else { "" }
    ))?;
    out.text(format!(
        "input      {words} x {dim} (the word vectors)  ({} parameters)",
        model.input_weights().len()
    ))?;
    out.text(format!(
        "output     {words} x {dim} (negative sampling)  ({} parameters)",
        model.output_weights().len()
    ))?;
    out.text(format!("parameters {params}"))?;
    if let Some(r) = report {
        out.text(format!(
            "training   {} epoch{} on {} thread{}: {} words in {:.2} s ({:.0} words/s), {} after \
             sub-sampling, {} examples",
            r.epochs,
            if r.epochs == 1 { "" } else { "s" },
            r.threads,
            if r.threads == 1 { "" } else { "s" },
            r.words,
            r.seconds,
            r.words_per_second(),
            r.effective_words,
            r.examples
        ))?;
        for (epoch, loss) in r.losses.iter().enumerate() {
            out.text(format!("epoch {:>3}  loss {loss:.4}", epoch + 1))?;
        }
    }
    for (k, v) in &saved.metadata {
        out.text(format!("meta       {k} = {v}"))?;
    }
    Ok(())
}

fn join(shape: &[usize]) -> String {
    shape.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
