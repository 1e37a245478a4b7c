//! `embkit demo`: the main job on data built into the binary.
//!
//! Part one walks through the idea of an embedding layer on the seed
//! example (objects → vocabulary → ids → one-hot → table → vectors, and
//! the gather equal to the one-hot product). Part two trains
//! `Embedding → Flatten → Dense(softmax)` to tell passages of Austen,
//! Melville and Shakespeare apart, then shows what the table learned.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use embkit::data::LabelledTexts;
use embkit::vocab::{Vocabulary, VocabularyConfig};
use embkit::{one_hot, Embedding};
use flate2::read::GzDecoder;
use ndarray::{array, aview1, Ix2};
use serde_json::json;

use crate::output::{matrix_lines, Out};
use crate::pipeline::{LrDecay, Settings, TextClassifier};
use crate::plot;
use crate::progress::Bars;

/// The labelled passages (see `crates/embkit-cli/data/README.md`).
const AUTHORS_TSV_GZ: &[u8] = include_bytes!("../../data/authors.tsv.gz");

/// Words whose neighbours the demo prints (those in the vocabulary).
const PROBE_WORDS: &[&str] = &["whale", "sea", "thou", "lord", "sister", "marriage"];

/// Walk through the seed example, then train a text classifier on
/// built-in passages of three authors.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the trained model and the loss curve.
    #[arg(long, default_value = "embkit-demo")]
    pub out: PathBuf,
    /// Passes over the training passages.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Print one JSON object per line instead of tables.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `embkit demo`.
pub fn run(args: Args) -> Result<()> {
    let mut out = Out::new(args.json);
    seed_example(&mut out)?;
    train_authors(&args, &mut out)
}

fn seed_example(out: &mut Out) -> Result<()> {
    let objects = ["cat", "dog", "snake", "dog", "mouse", "cat", "dog", "snake", "dog"];
    let vocab: Vocabulary = Vocabulary::from_objects(objects, &VocabularyConfig::new())?;
    let ids = vocab.ids(objects)?;
    let hot = one_hot(&ids, vocab.len())?;
    let m = array![[1.0f32, 1.0], [1.0, 2.0], [2.0, 2.0], [3.0, 3.0]];
    let mut table = Embedding::from_pretrained(m.view(), false)?;
    let gathered = table.forward(aview1(&ids))?.into_dimensionality::<Ix2>()?;
    let product = hot.dot(&m);
    let same = gathered == product;
    ensure!(same, "the gather differs from the one-hot product");
    let tokens: Vec<&str> = (0..vocab.len() as u32).filter_map(|i| vocab.token_str(i)).collect();

    out.text("== 1. Objects get ids from a vocabulary (first-appearance order)")?;
    out.text(format!("objects     {}", objects.join(" ")))?;
    out.text(format!(
        "vocabulary  {}",
        tokens.iter().enumerate().map(|(i, t)| format!("{i}:{t}")).collect::<Vec<_>>().join("  ")
    ))?;
    out.text(format!(
        "ids         {}",
        ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
    ))?;
    out.text("")?;
    out.text(format!("== 2. Each id as a one-hot vector ({} x {})", ids.len(), vocab.len()))?;
    for line in matrix_lines(
        objects
            .iter()
            .zip(hot.outer_iter())
            .map(|(o, r)| (o.to_string(), r.to_slice().unwrap_or(&[]))),
        0,
    ) {
        out.text(line)?;
    }
    out.text("")?;
    out.text("== 3. The embedding table M: one row of 2 numbers per id")?;
    for line in matrix_lines(
        tokens
            .iter()
            .zip(m.outer_iter())
            .map(|(t, r)| (t.to_string(), r.to_slice().unwrap_or(&[]))),
        0,
    ) {
        out.text(line)?;
    }
    out.text("")?;
    out.text("== 4. Looked-up vectors: row ids[i] of M, copied (a gather, no multiplication)")?;
    for line in matrix_lines(
        objects
            .iter()
            .zip(gathered.outer_iter())
            .map(|(o, r)| (o.to_string(), r.to_slice().unwrap_or(&[]))),
        0,
    ) {
        out.text(line)?;
    }
    out.text(format!("one_hot(ids) · M equals the gather: {same}"))?;
    out.text("")?;
    out.record(json!({
        "event": "seed_example",
        "objects": objects,
        "vocabulary": tokens,
        "ids": ids,
        "one_hot": hot.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
        "table": m.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
        "vectors": gathered.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
        "gather_equals_one_hot_product": same,
    }))?;
    Ok(())
}

fn train_authors(args: &Args, out: &mut Out) -> Result<()> {
    let data = LabelledTexts::from_reader(
        BufReader::new(GzDecoder::new(AUTHORS_TSV_GZ)),
        "built-in authors.tsv.gz",
    )
    .context("reading the built-in passages")?;
    let settings = Settings {
        embedding_dim: 16,
        sequence_length: 30,
        max_tokens: Some(10_000),
        epochs: args.epochs,
        batch_size: 32,
        learning_rate: 0.002,
        lr_decay: LrDecay::Constant,
        seed: 42,
        validation_split: 0.2,
        patience: None,
    };
    let classes = data.class_names();
    out.text("== 5. Training Embedding → Flatten → Dense(softmax) to tell three authors apart")?;
    out.text(format!(
        "data        {} passages of 20-30 words from {} (public domain, built in)",
        data.len(),
        classes.join(", ")
    ))?;
    out.text(format!(
        "model       Embedding({} ids, {}) → Flatten → Dense({}, softmax); Adam, batch {}, {} epochs; {:.0}% of each author held out",
        settings.max_tokens.unwrap_or(0),
        settings.embedding_dim,
        classes.len(),
        settings.batch_size,
        settings.epochs,
        settings.validation_split * 100.0
    ))?;
    let mut bars = Bars::new(args.quiet);
    let trained = TextClassifier::train(&data, None, &settings, &mut bars)?;
    let mut classifier = trained.classifier;
    let history = &trained.history;

    out.text("")?;
    out.text("epoch   loss     accuracy   val_loss   val_accuracy")?;
    for e in &history.epochs {
        out.text(format!(
            "{:>5}   {:.4}   {:.4}     {:.4}     {:.4}",
            e.epoch,
            e.loss,
            e.metrics.get("accuracy").copied().unwrap_or(f64::NAN),
            e.val_loss.unwrap_or(f64::NAN),
            e.val_metrics.get("accuracy").copied().unwrap_or(f64::NAN),
        ))?;
        out.record(json!({
            "event": "epoch",
            "epoch": e.epoch,
            "loss": e.loss,
            "accuracy": e.metrics.get("accuracy"),
            "val_loss": e.val_loss,
            "val_accuracy": e.val_metrics.get("accuracy"),
        }))?;
    }

    // A few held-out passages and what the model says about them.
    let held_out = (data.len() as f64 * 0.8).floor() as usize;
    let samples: Vec<(&str, &str)> = data.iter().skip(held_out).take(3).collect();
    let texts: Vec<&str> = samples.iter().map(|(_, t)| *t).collect();
    let predictions = classifier.predict(&texts)?;
    out.text("")?;
    out.text("== 6. Held-out passages")?;
    for ((label, text), p) in samples.iter().zip(&predictions) {
        let short: String = text.chars().take(70).collect();
        out.text(format!("{label:<12} → {:<12} ({:.2})  {short}…", p.label, p.probability))?;
        out.record(json!({"event": "prediction", "text": text, "true_label": label, "label": p.label, "probability": p.probability}))?;
    }

    out.text("")?;
    out.text("== 7. Nearest neighbours in the learned table (cosine similarity)")?;
    for word in PROBE_WORDS {
        let Ok(near) = classifier.neighbors(word, 5) else { continue };
        out.text(format!(
            "{word:<10} {}",
            near.iter().map(|(w, s)| format!("{w} ({s:.2})")).collect::<Vec<_>>().join(", ")
        ))?;
        out.record(json!({
            "event": "neighbors",
            "word": word,
            "neighbors": near.iter().map(|(w, s)| json!({"word": w, "similarity": s})).collect::<Vec<_>>(),
        }))?;
    }

    let model_dir = args.out.join("model");
    classifier.save(&model_dir, &trained.config, history)?;
    let plot_path = args.out.join("loss.png");
    plot::loss_curve(history, "embkit demo: three authors", &plot_path)?;
    let last = history.epochs.last().context("training ran no epoch")?;
    let val_accuracy = last.val_metrics.get("accuracy").copied();
    out.text("")?;
    out.text(format!(
        "validation accuracy {:.4} (chance is {:.4})",
        val_accuracy.unwrap_or(f64::NAN),
        1.0 / classes.len() as f64
    ))?;
    out.text(format!("model       {}", model_dir.display()))?;
    out.text(format!("loss curve  {}", plot_path.display()))?;
    out.text(format!("next        embkit neighbors --model {} --word whale", model_dir.display()))?;
    out.record(json!({
        "event": "summary",
        "train_loss": history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        "val_loss": history.epochs.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
        "val_accuracy": val_accuracy,
        "model": model_dir,
        "plot": plot_path,
    }))?;
    Ok(())
}
