//! `embkit neighbors`: the nearest words in a trained embedding table.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::output::Out;
use crate::pipeline::TextClassifier;

/// The words whose vectors are closest (by cosine similarity) to a word's.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// The word to look up (standardised as in training: lowercase, no
    /// punctuation).
    #[arg(long)]
    pub word: String,
    /// How many neighbours.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embkit neighbors`.
pub fn run(args: Args) -> Result<()> {
    let (classifier, _) = TextClassifier::load(&args.model)?;
    let near = classifier.neighbors(&args.word, args.k)?;
    let mut out = Out::new(args.json);
    for (rank, (word, similarity)) in near.iter().enumerate() {
        out.text(format!("{}\t{word}\t{similarity:.4}", rank + 1))?;
        out.record(
            json!({"query": args.word, "rank": rank + 1, "word": word, "similarity": similarity}),
        )?;
    }
    Ok(())
}
