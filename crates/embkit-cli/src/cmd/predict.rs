//! `embkit predict`: labels for texts with a trained model.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use embkit::format::ModelKind;
use serde_json::json;

use crate::bag::BagTextClassifier;
use crate::output::Out;
use crate::pipeline::{Prediction, TextClassifier};

/// Predict the label of each text with a text classifier written by
/// `train` (either architecture) or `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Texts, one per line (`-` for stdin). A `label<TAB>text` line is
    /// read as its text, and the accuracy against the labels is printed.
    #[arg(long)]
    pub data: PathBuf,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embkit predict`.
pub fn run(args: Args) -> Result<()> {
    let kind = ModelKind::of_dir(&args.model)
        .with_context(|| format!("loading the model in {}", args.model.display()))?;
    let mut classifier = match kind {
        ModelKind::Sequential => {
            Classifier::Sequence(Box::new(TextClassifier::load(&args.model)?.0))
        }
        ModelKind::BagClassifier => {
            Classifier::Bag(Box::new(BagTextClassifier::load(&args.model)?))
        }
        other => bail!(
            "{}: a {other} model does not label texts (predict takes a text classifier; word \
             vectors answer `embkit neighbors` and `embkit analogy`, and `embkit evaluate` scores \
             rating models)",
            args.model.display()
        ),
    };
    let reader: Box<dyn BufRead> = if args.data.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.data)
            .with_context(|| format!("cannot open {}", args.data.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line =
            line.with_context(|| format!("{}:{}: cannot read", args.data.display(), n + 1))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (n == 0 && line.eq_ignore_ascii_case("label\ttext")) {
            continue;
        }
        match line.split_once('\t') {
            Some((label, text)) => {
                labels.push(Some(label.trim().to_string()));
                texts.push(text.to_string());
            }
            None => {
                labels.push(None);
                texts.push(line.to_string());
            }
        }
    }
    if texts.is_empty() {
        anyhow::bail!("{}: no texts to predict", args.data.display());
    }
    let predictions = classifier.predict(&texts)?;
    let mut out = Out::new(args.json);
    let (mut right, mut labelled) = (0usize, 0usize);
    for ((text, label), p) in texts.iter().zip(&labels).zip(&predictions) {
        if let Some(label) = label {
            labelled += 1;
            right += usize::from(*label == p.label);
        }
        out.text(format!("{}\t{:.4}\t{}", p.label, p.probability, text))?;
        out.record(json!({
            "text": text,
            "label": p.label,
            "probability": p.probability,
            "probabilities": classifier.classes().iter().cloned().zip(p.probabilities.iter().copied()).collect::<std::collections::BTreeMap<_, _>>(),
            "true_label": label,
        }))?;
    }
    if labelled > 0 {
        let accuracy = right as f64 / labelled as f64;
        eprintln!("accuracy {accuracy:.4} on {labelled} labelled texts");
        out.record(json!({"event": "summary", "accuracy": accuracy, "labelled": labelled}))?;
    }
    Ok(())
}

/// A loaded text classifier of either architecture.
enum Classifier {
    Sequence(Box<TextClassifier>),
    Bag(Box<BagTextClassifier>),
}

impl Classifier {
    fn predict(&mut self, texts: &[String]) -> Result<Vec<Prediction>> {
        match self {
            Classifier::Sequence(c) => c.predict(texts),
            Classifier::Bag(c) => c.predict(texts),
        }
    }

    fn classes(&self) -> &[String] {
        match self {
            Classifier::Sequence(c) => &c.classes,
            Classifier::Bag(c) => &c.classes,
        }
    }
}
