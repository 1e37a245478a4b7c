//! `embkit similarity`: how well the vectors' cosine similarities rank
//! word pairs the way people scored them.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use embkit::query::evaluate_similarity;
use serde_json::json;

use super::neighbors::{Source, Table};
use crate::output::Out;

/// Spearman's correlation between a word-pair file's scores
/// (`word1<TAB>word2<TAB>score` after a header line, as WordSim-353) and
/// the cosine similarities of the pairs, looked up case-insensitively;
/// pairs with an unknown word are counted and left out.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    /// The word-pair file.
    #[arg(long, value_name = "FILE")]
    pub pairs: PathBuf,
    /// Print one JSON object (spearman, pearson, pairs_used, pairs_oov)
    /// instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embkit similarity`.
pub fn run(args: Args) -> Result<()> {
    let table = Table::load(&args.source)?;
    let path = &args.pairs;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let report = evaluate_similarity(&table.vectors, BufReader::new(file))
        .with_context(|| format!("evaluating {}", path.display()))?;
    let mut out = Out::new(args.json);
    let show = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
    out.text(format!("spearman\t{}", show(report.spearman)))?;
    out.text(format!("pearson\t{}", show(report.pearson)))?;
    out.text(format!("pairs_used\t{}", report.pairs_used))?;
    out.text(format!("pairs_oov\t{}", report.pairs_oov))?;
    out.record(json!({
        "pairs": path.display().to_string(),
        "spearman": report.spearman,
        "pearson": report.pearson,
        "pairs_used": report.pairs_used,
        "pairs_oov": report.pairs_oov,
    }))
}
