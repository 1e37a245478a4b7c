//! `embkit evaluate`: a trained model's metrics on a labelled file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use embkit::data::{DataOptions, Interactions, LabelledTexts, UNKNOWN_ID};
use embkit::format::{ModelKind, SavedMatrixFactorization, ITEMS_FILE, USERS_FILE};
use serde_json::json;

use crate::bag::BagTextClassifier;
use crate::cmd::train::{rmse_mae, warn_skipped};
use crate::output::Out;
use crate::pipeline::TextClassifier;

/// Measure a model written by `train` on a data file of its task: accuracy
/// and macro-F1 for a classifier (`label<TAB>text`), RMSE and MAE for a
/// rating predictor (`user item rating [timestamp]`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// The data to evaluate on, in the format the model was trained on.
    #[arg(long)]
    pub data: PathBuf,
    /// Skip rows that cannot be read instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embkit evaluate`.
pub fn run(args: Args) -> Result<()> {
    let kind = ModelKind::of_dir(&args.model)
        .with_context(|| format!("loading the model in {}", args.model.display()))?;
    let options = DataOptions::new().with_skip_bad_rows(args.skip_bad_rows);
    let mut out = Out::new(args.json);
    match kind {
        ModelKind::MatrixFactorization => ratings(&args, &options, &mut out),
        ModelKind::Sequential => classify(&args, &options, &mut out),
        ModelKind::BagClassifier => classify_bag(&args, &options, &mut out),
        other => bail!("{}: cannot evaluate a {other} model", args.model.display()),
    }
}

fn ratings(args: &Args, options: &DataOptions, out: &mut Out) -> Result<()> {
    let saved = SavedMatrixFactorization::load(&args.model)
        .with_context(|| format!("loading the model in {}", args.model.display()))?;
    let (Some(users), Some(items)) = (saved.users, saved.items) else {
        bail!(
            "{}: the model has no {USERS_FILE} and {ITEMS_FILE}, so ratings by key cannot be \
             matched to its rows",
            args.model.display()
        );
    };
    let rows = Interactions::rows(&args.data, options)?;
    let (data, report) = Interactions::from_rows_with_keys(rows, users, items)?;
    warn_skipped(&args.data, &report);
    let pred = saved.model.predict_with_fallback(data.ids().view())?;
    let (rmse, mae) = rmse_mae(pred.as_slice().expect("contiguous"), data.ratings());
    let unknown_users = data.users().iter().filter(|&&u| u == UNKNOWN_ID).count();
    let unknown_items = data.items().iter().filter(|&&i| i == UNKNOWN_ID).count();
    out.record(json!({
        "task": "ratings",
        "model": args.model,
        "data": args.data,
        "rmse": rmse,
        "mae": mae,
        "ratings": data.len(),
        "unknown_users": unknown_users,
        "unknown_items": unknown_items,
        "skipped_rows": report.skipped,
    }))?;
    out.text(format!("{:<16}{}", "metric", "value"))?;
    out.text(format!("{:<16}{rmse:.4}", "rmse"))?;
    out.text(format!("{:<16}{mae:.4}", "mae"))?;
    out.text(format!("{:<16}{}", "ratings", data.len()))?;
    if unknown_users + unknown_items > 0 {
        out.text(format!(
            "{:<16}{unknown_users} ratings by unknown users, {unknown_items} of unknown items \
             (predicted from the biases)",
            "unknown"
        ))?;
    }
    Ok(())
}

fn classify(args: &Args, options: &DataOptions, out: &mut Out) -> Result<()> {
    let (mut classifier, _) = TextClassifier::load(&args.model)?;
    let (data, report) = LabelledTexts::read(&args.data, options)?;
    warn_skipped(&args.data, &report);
    let predictions = classifier.predict(data.texts())?;
    report_classes(args, &data, &predictions, report.skipped, "sequence", out)
}

fn classify_bag(args: &Args, options: &DataOptions, out: &mut Out) -> Result<()> {
    let mut classifier = BagTextClassifier::load(&args.model)?;
    let (data, report) = LabelledTexts::read(&args.data, options)?;
    warn_skipped(&args.data, &report);
    let predictions = classifier.predict(data.texts())?;
    report_classes(args, &data, &predictions, report.skipped, "bag", out)
}

fn report_classes(
    args: &Args,
    data: &LabelledTexts,
    predictions: &[crate::pipeline::Prediction],
    skipped: usize,
    architecture: &str,
    out: &mut Out,
) -> Result<()> {
    let predicted: Vec<&str> = predictions.iter().map(|p| p.label.as_str()).collect();
    let (accuracy, macro_f1, per_class) = accuracy_and_macro_f1(data.labels(), &predicted);
    out.record(json!({
        "task": "classify",
        "architecture": architecture,
        "model": args.model,
        "data": args.data,
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "texts": data.len(),
        "f1": per_class,
        "skipped_rows": skipped,
    }))?;
    out.text(format!("{:<16}{}", "metric", "value"))?;
    out.text(format!("{:<16}{accuracy:.4}", "accuracy"))?;
    out.text(format!("{:<16}{macro_f1:.4}", "macro_f1"))?;
    out.text(format!("{:<16}{}", "texts", data.len()))?;
    for (class, f1) in &per_class {
        out.text(format!("{:<16}{f1:.4}", format!("f1[{class}]")))?;
    }
    Ok(())
}

/// Accuracy, macro-F1 and each class's F1, over the labels seen in either
/// list (scikit-learn's `f1_score(average="macro")`; a class never
/// predicted and never true does not count; an F1 with no true and no
/// predicted positive is 0).
pub fn accuracy_and_macro_f1(
    truth: &[String],
    predicted: &[&str],
) -> (f64, f64, BTreeMap<String, f64>) {
    let mut counts: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new(); // tp, fp, fn
    let mut right = 0;
    for (t, &p) in truth.iter().zip(predicted) {
        if t == p {
            right += 1;
            counts.entry(p).or_default().0 += 1;
        } else {
            counts.entry(p).or_default().1 += 1;
            counts.entry(t.as_str()).or_default().2 += 1;
        }
    }
    let per_class: BTreeMap<String, f64> = counts
        .iter()
        .map(|(&class, &(tp, fp, fn_))| {
            let denom = 2 * tp + fp + fn_;
            let f1 = if denom == 0 { 0.0 } else { 2.0 * tp as f64 / denom as f64 };
            (class.to_string(), f1)
        })
        .collect();
    let macro_f1 = per_class.values().sum::<f64>() / per_class.len().max(1) as f64;
    (right as f64 / truth.len().max(1) as f64, macro_f1, per_class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_averages_the_classes_f1() {
        let truth: Vec<String> = ["a", "a", "b", "b", "c"].map(String::from).to_vec();
        let predicted = ["a", "b", "b", "b", "a"];
        let (acc, f1, per) = accuracy_and_macro_f1(&truth, &predicted);
        assert_eq!(acc, 0.6);
        // a: tp 1, fp 1, fn 1 -> 0.5; b: tp 2, fp 1 -> 0.8; c: fn 1 -> 0.
        assert_eq!(per["a"], 0.5);
        assert!((per["b"] - 0.8).abs() < 1e-12);
        assert_eq!(per["c"], 0.0);
        assert!((f1 - 1.3 / 3.0).abs() < 1e-12);
    }
}
