//! `embkit convert`: word vectors from one file format to another.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::builder::TypedValueParser;
use embkit::format::{convert, ReadOptions, VectorFormat, MAX_PROBLEMS};
use serde_json::json;

use crate::output::Out;

/// Converts word vectors between formats, one row at a time.
///
/// tsv is a folder with vectors.tsv and metadata.tsv (as the TensorFlow
/// projector reads them); npy and safetensors keep the words in
/// NAME.vocab.txt beside the file (safetensors is written as one tensor
/// `embedding.weight`); model is an embkit model folder (written as a model
/// that is just the embedding table).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file (a folder for tsv and model) to read.
    pub input: PathBuf,
    /// The file (a folder for tsv and model) to write. It is replaced only
    /// once everything was written.
    pub output: PathBuf,
    /// The input's format. By default it comes from the name: .bin, .vec,
    /// .npy, .safetensors; a .txt file is word2vec when its first line is a
    /// `<count> <dim>` header and glove otherwise; a folder holding
    /// model.safetensors or vectors.tsv.
    #[arg(long, value_name = "FMT", value_parser = format_parser())]
    pub from: Option<VectorFormat>,
    /// The output's format. By default it comes from the name, as for
    /// --from; a .txt file is written as word2vec.
    #[arg(long, value_name = "FMT", value_parser = format_parser())]
    pub to: Option<VectorFormat>,
    /// Skip bad rows instead of stopping at the first (and rows whose word
    /// the output format cannot hold, and accept a header whose row count
    /// is wrong); what was skipped is listed on stderr.
    #[arg(long)]
    pub lenient: bool,
    /// The tensor to read from a safetensors input (default: its only 2-D
    /// float tensor, or `embedding.weight`).
    #[arg(long, value_name = "NAME")]
    pub tensor: Option<String>,
    /// The vocabulary of an npy or safetensors input, one word per line
    /// (default: the input's name with the extension .vocab.txt).
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
    /// The table of a model input: `items` (the default) or `users` for a
    /// rating model (`train --task ratings`), its rows named by their
    /// keys; `embedding` for a text model; `input` (the default, the word
    /// vectors) or `output` (negative sampling's vectors) for a word2vec
    /// model (`train --task word2vec`).
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Print a JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The format names, checked by clap so `--help` lists them.
fn format_parser() -> impl TypedValueParser<Value = VectorFormat> {
    clap::builder::PossibleValuesParser::new(VectorFormat::ALL.map(VectorFormat::name))
        .map(|name| name.parse::<VectorFormat>().expect("clap let only a listed name through"))
}

/// Runs `embkit convert`.
pub fn run(args: Args) -> Result<()> {
    let from = match args.from {
        Some(format) => format,
        None => VectorFormat::detect(&args.input).context("use --from to name the format")?,
    };
    let to = match args.to {
        Some(format) => format,
        None => VectorFormat::for_output(&args.output).context("use --to to name the format")?,
    };
    let mut options = ReadOptions::new().with_lenient(args.lenient);
    options.tensor = args.tensor;
    options.vocab = args.vocab;
    options.table = args.table;
    let report = convert(&args.input, from, &args.output, to, &options).with_context(|| {
        let hint = if args.lenient {
            ""
        } else {
            " (--lenient skips and counts bad rows, such as a model's empty padding token)"
        };
        format!(
            "converting {} ({from}) to {} ({to}){hint}",
            args.input.display(),
            args.output.display()
        )
    })?;

    for problem in &report.problems {
        eprintln!("warning: {problem}");
    }
    if report.unlisted_problems > 0 {
        eprintln!(
            "warning: and {} more (only the first {MAX_PROBLEMS} are listed)",
            report.unlisted_problems
        );
    }
    let mut out = Out::new(args.json);
    let skipped = match report.skipped {
        0 => String::new(),
        n => format!(", skipped {n}"),
    };
    let rows = match report.rows {
        1 => "1 row".to_string(),
        n => format!("{n} rows"),
    };
    out.text(format!(
        "{} ({from}) -> {} ({to}): {rows}{skipped}",
        args.input.display(),
        args.output.display()
    ))?;
    out.record(json!({
        "input": args.input,
        "from": from.name(),
        "output": args.output,
        "to": to.name(),
        "rows": report.rows,
        "skipped": report.skipped,
        "problems": report.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    }))?;
    Ok(())
}
