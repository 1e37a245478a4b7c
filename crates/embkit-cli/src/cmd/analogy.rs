//! `embkit analogy`: "A is to B as C is to ?", or the accuracy on a
//! questions-words file.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use embkit::query::{analogy, evaluate_analogies, AnalogyMethod, SectionScore};
use serde_json::json;

use super::neighbors::{Source, Table};
use crate::output::Out;

/// How analogies are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// 3CosAdd: cos(x, B - A + C) on unit vectors (gensim's most_similar).
    Add,
    /// 3CosMul (Levy & Goldberg, eps 1e-3; gensim's most_similar_cosmul).
    Mul,
}

impl From<MethodArg> for AnalogyMethod {
    fn from(method: MethodArg) -> Self {
        match method {
            MethodArg::Add => AnalogyMethod::Add,
            MethodArg::Mul => AnalogyMethod::mul(),
        }
    }
}

/// Completes "A is to B as C is to ?" (prints `rank<TAB>word<TAB>score`),
/// or with `--eval` scores a questions-words file (`: section` headers,
/// then `a b c d` lines), case-insensitively, as gensim's
/// `evaluate_word_analogies`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    /// The three words A B C.
    #[arg(
        value_names = ["A", "B", "C"],
        num_args = 3,
        required_unless_present = "eval",
        conflicts_with = "eval"
    )]
    pub words: Vec<String>,
    /// How many answers.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// How to score candidates.
    #[arg(long, value_enum, default_value_t = MethodArg::Add)]
    pub method: MethodArg,
    /// Score every question of this file instead: accuracy per section
    /// and in total, and the questions skipped for unknown words.
    #[arg(long, value_name = "QUESTIONS")]
    pub eval: Option<PathBuf>,
    /// With `--eval`: only the first N rows (the most frequent words in a
    /// word2vec file) are the vocabulary and the candidate answers.
    #[arg(long, value_name = "N", requires = "eval")]
    pub restrict: Option<usize>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embkit analogy`.
pub fn run(args: Args) -> Result<()> {
    let table = Table::load(&args.source)?;
    let method = AnalogyMethod::from(args.method);
    let mut out = Out::new(args.json);
    if let Some(path) = &args.eval {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let report =
            evaluate_analogies(&table.vectors, BufReader::new(file), args.restrict, method)
                .with_context(|| format!("evaluating {}", path.display()))?;
        for section in report.sections.iter().chain([&report.total]) {
            print_section(&mut out, section)?;
        }
        return Ok(());
    }
    let ids = args.words.iter().map(|w| table.id(w)).collect::<Result<Vec<u32>>>()?;
    let [a, b, c] = ids[..] else { unreachable!("clap takes exactly three words") };
    let near = analogy(table.vectors.view(), a, b, c, args.k + table.reserved.len(), method)?;
    for (rank, n) in table.answers(near, args.k).iter().enumerate() {
        let (rank, word, score) = (rank + 1, table.word(n.id), n.similarity);
        out.text(format!("{rank}\t{word}\t{score:.4}"))?;
        out.record(json!({
            "a": args.words[0], "b": args.words[1], "c": args.words[2],
            "rank": rank, "word": word, "score": score,
        }))?;
    }
    Ok(())
}

fn print_section(out: &mut Out, s: &SectionScore) -> Result<()> {
    let accuracy = s.accuracy();
    let shown = accuracy.map_or("-".to_string(), |a| format!("{a:.4}"));
    out.text(format!(
        "{}\t{}/{}\t{shown}\tskipped {}",
        s.name,
        s.correct,
        s.answered(),
        s.skipped
    ))?;
    out.record(json!({
        "section": s.name, "correct": s.correct, "incorrect": s.incorrect,
        "skipped": s.skipped, "accuracy": accuracy,
    }))
}
