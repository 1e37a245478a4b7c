//! The `embkit` command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bag;
mod cmd;
mod output;
mod pipeline;
mod plot;
mod progress;

/// Build vocabularies, train embedding models and query them.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline on built-in data: vocabulary, ids, one-hot and
    /// gather, then a text classifier trained on passages of three authors.
    Demo(cmd::demo::Args),
    /// Train a text classifier on a `label<TAB>text` file (`--task
    /// classify`, the default) or a rating predictor on `user item rating`
    /// interactions (`--task ratings`).
    Train(Box<cmd::train::Args>),
    /// A trained model's metrics on a data file: accuracy and macro-F1 for
    /// a classifier, RMSE and MAE for a rating predictor.
    Evaluate(cmd::evaluate::Args),
    /// Predict the labels of texts with a trained model.
    Predict(cmd::predict::Args),
    /// The nearest neighbours of a word in a trained model's embedding table
    /// or a word-vectors file (cosine, dot product or Euclidean distance).
    Neighbors(cmd::neighbors::Args),
    /// Build an approximate nearest-neighbour index (HNSW) of word vectors
    /// for `neighbors --index`.
    Index(cmd::index::Args),
    /// Word analogies (A is to B as C is to ?) by 3CosAdd or 3CosMul, or the
    /// accuracy on a questions-words file.
    Analogy(cmd::analogy::Args),
    /// Spearman's correlation of the vectors' cosines with a word-pair file's
    /// human scores.
    Similarity(cmd::similarity::Args),
    /// Show a saved model's configs, sizes and training history.
    Inspect(cmd::inspect::Args),
    /// Convert word vectors between formats (word2vec, GloVe, fastText,
    /// TSV, npy, safetensors, model).
    Convert(cmd::convert::Args),
    /// Draw training curves, a 2-D map of the vectors (PCA or t-SNE) or a
    /// histogram of their lengths, as PNG or SVG.
    Plot(cmd::plot::Args),
    /// Write one self-contained HTML page to explore the vectors: a
    /// 2-D or 3-D map, search with nearest neighbours, labels on hover.
    Projector(cmd::projector::Args),
    /// Measure the frozen workloads W1-W7 against a plain-loop baseline.
    Bench(cmd::bench::Args),
    /// Train and evaluate on the real data sets of a data folder against
    /// published baselines; write EVALUATION.md and evaluation/*.json.
    EvalSuite(cmd::eval_suite::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Train(args) => cmd::train::run(*args),
        Command::Evaluate(args) => cmd::evaluate::run(args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Neighbors(args) => cmd::neighbors::run(args),
        Command::Index(args) => cmd::index::run(args),
        Command::Analogy(args) => cmd::analogy::run(args),
        Command::Similarity(args) => cmd::similarity::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::Plot(args) => cmd::plot::run(args),
        Command::Projector(args) => cmd::projector::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::EvalSuite(args) => cmd::eval_suite::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `embkit ... | head` closes stdout early: that is not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
