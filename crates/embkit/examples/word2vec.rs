//! word2vec on plain-text files: trains skip-gram (or CBOW) with negative
//! sampling and scores the vectors on WordSim-353 and the Google
//! analogies, next to gensim's numbers for the literary corpus
//! (`/work/shared/data/BASELINES.md`).
//!
//! ```text
//! cargo run --release -p embkit --example word2vec -- <files...> [options]
//! ```
//!
//! The text is tokenised as the gensim baseline was: lowercased, tokens are
//! the runs of `a`-`z`, the token stream of all files (in the order given)
//! is cut into 1,000-token sentences. Options: `--threads N` (default 2),
//! `--cbow`, `--epochs N`, `--dim N`, `--window N`, `--negative N`,
//! `--min-count N`, `--sample X`, `--seed N`, `--batch-words N`, `--wordsim FILE`,
//! `--analogies FILE`, `--restrict N` (analogy vocabulary, default 30000),
//! `--save FILE` (word vectors; the format from the extension, `.txt` is
//! word2vec text).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use embkit::data::{letter_tokens, Corpus, DataOptions};
use embkit::format::VectorFormat;
use embkit::query::{evaluate_analogies, evaluate_similarity, AnalogyMethod};
use embkit::word2vec::{Architecture, SkipGramConfig};
use embkit::{NoObserver, Threads};

/// gensim's numbers on the literary corpus (BASELINES.md): WordSim-353
/// Spearman, analogy accuracy, seconds for 5 epochs on 2 threads.
const GENSIM_SKIPGRAM: (f64, f64, f64) = (0.261, 0.096, 26.0);
const GENSIM_CBOW: (f64, f64, f64) = (0.202, 0.076, 6.0);
/// The baseline corpus's tokens.
const GENSIM_TOKENS: f64 = 1_887_092.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = PathBuf::from("/work/shared/data");
    let mut files = Vec::new();
    let mut config = SkipGramConfig::new();
    let mut threads = 2;
    let mut wordsim = data.join("word-similarity/wordsim353.tsv");
    let mut analogies = data.join("word-analogy/google-questions-words.txt");
    let mut restrict = 30_000;
    let mut save = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cbow" {
            config = config.with_architecture(Architecture::Cbow);
            continue;
        }
        if !arg.starts_with("--") {
            files.push(PathBuf::from(arg));
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--threads" => threads = value.parse()?,
            "--epochs" => config = config.with_epochs(value.parse()?),
            "--dim" => config = config.with_embedding_dim(value.parse()?),
            "--window" => config = config.with_window(value.parse()?),
            "--negative" => config = config.with_negative(value.parse()?),
            "--min-count" => config = config.with_min_count(value.parse()?),
            "--sample" => config = config.with_sample(value.parse()?),
            "--seed" => config = config.with_seed(value.parse()?),
            "--batch-words" => config = config.with_batch_words(value.parse()?),
            "--wordsim" => wordsim = value.into(),
            "--analogies" => analogies = value.into(),
            "--restrict" => restrict = value.parse()?,
            "--save" => save = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if files.is_empty() {
        return Err("usage: word2vec <files...> [--threads N --cbow --epochs N ...]".into());
    }
    let threads = Threads::new(threads)?;

    let start = Instant::now();
    let mut tokens = Vec::new();
    for file in &files {
        let (corpus, _) = Corpus::read(file, &DataOptions::new())?;
        for line in corpus.lines() {
            letter_tokens(line, &mut tokens);
        }
    }
    let lines: Vec<String> = tokens.chunks(1000).map(|chunk| chunk.join(" ")).collect();
    let vocab = config.build_vocab(&lines)?;
    let mut model = config.init(vocab)?;
    let sentences = model.encode(&lines);
    println!(
        "{} files, {} tokens, {} sentences; {} words with min_count {} ({} s to read and count)",
        files.len(),
        tokens.len(),
        lines.len(),
        model.vocab().len(),
        config.min_count,
        fmt(start.elapsed().as_secs_f64(), 1),
    );

    let report = model.train(&sentences, threads, &mut NoObserver)?;
    let vectors = model.vectors()?;
    let similarity = evaluate_similarity(&vectors, BufReader::new(File::open(&wordsim)?))?;
    let analogy = evaluate_analogies(
        &vectors,
        BufReader::new(File::open(&analogies)?),
        Some(restrict),
        AnalogyMethod::Add,
    )?;
    if let Some(path) = &save {
        vectors.write(path, VectorFormat::for_output(path)?)?;
    }

    let (name, gensim) = match config.architecture {
        Architecture::Cbow => ("CBOW", GENSIM_CBOW),
        _ => ("skip-gram", GENSIM_SKIPGRAM),
    };
    let spearman = similarity.spearman.unwrap_or(f64::NAN);
    let accuracy = analogy.total.accuracy().unwrap_or(f64::NAN);
    println!(
        "{name}, dim {}, window {}, negative {}, sample {}, {} epochs, {} threads, seed {}",
        config.embedding_dim,
        config.window,
        config.negative,
        config.sample,
        config.epochs,
        report.threads,
        config.seed,
    );
    println!(
        "{} words trained, {} after sub-sampling, {} examples",
        report.words, report.effective_words, report.examples
    );
    println!("measure\tembkit\tgensim");
    println!(
        "WordSim-353 Spearman ({} pairs, {} OOV)\t{}\t{}",
        similarity.pairs_used,
        similarity.pairs_oov,
        fmt(spearman, 3),
        gensim.0
    );
    println!(
        "Google analogies, 3CosAdd ({} answered, {} skipped)\t{} %\t{} %",
        analogy.total.answered(),
        analogy.total.skipped,
        fmt(100.0 * accuracy, 1),
        fmt(100.0 * gensim.1, 1)
    );
    println!(
        "training seconds, {} epochs\t{}\t{}",
        config.epochs,
        fmt(report.seconds, 1),
        gensim.2
    );
    println!(
        "words/s\t{}\t{}",
        fmt(report.words_per_second(), 0),
        fmt(GENSIM_TOKENS * 5.0 / gensim.2, 0)
    );
    Ok(())
}

fn fmt(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}
