//! `embkit neighbors`: the nearest words to a word, in a trained model's
//! embedding table or a word-vectors file. Also the vector source that
//! `analogy` and `similarity` share.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::builder::TypedValueParser;
use embkit::format::{VectorFormat, Vectors};
use embkit::query::{nearest_neighbors_by, HnswIndex, Neighbor, Similarity, DEFAULT_EF_SEARCH};
use embkit::vocab::TextVectorizer;
use embkit::Threads;
use serde_json::json;

use crate::output::Out;
use crate::pipeline::TextClassifier;

/// Where the word vectors come from: `--model DIR` or `--vectors FILE`.
#[derive(Debug, clap::Args)]
pub struct Source {
    #[command(flatten)]
    pub input: Input,
    /// The format of `--vectors`; by default it comes from the name, as
    /// in `embkit convert`.
    #[arg(long, value_name = "FMT", requires = "vectors", value_parser = format_parser())]
    pub format: Option<VectorFormat>,
}

/// `--model DIR` or `--vectors FILE`, exactly one.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Input {
    /// A model directory: its embedding table and `vocab.txt` (a word2vec
    /// model's word vectors). A text classifier's query words are
    /// standardised as in training (lowercase, no punctuation), and its
    /// mask and `[UNK]` rows are never answers.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// A word-vectors file (word2vec text or binary, GloVe, fastText
    /// .vec, a TSV folder, .npy or safetensors with a vocabulary file).
    #[arg(long, value_name = "FILE")]
    pub vectors: Option<PathBuf>,
}

/// The format names, checked by clap so `--help` lists them.
fn format_parser() -> impl TypedValueParser<Value = VectorFormat> {
    clap::builder::PossibleValuesParser::new(VectorFormat::ALL.map(VectorFormat::name))
        .map(|name| name.parse::<VectorFormat>().expect("clap let only a listed name through"))
}

/// Word vectors loaded from a [`Source`].
pub struct Table {
    /// The words and their rows.
    pub vectors: Vectors,
    /// Rows that are never answers (a text classifier's mask and `[UNK]`).
    pub reserved: Vec<u32>,
    /// A text classifier's vectorizer, which standardises query words.
    vectorizer: Option<TextVectorizer>,
    /// What was loaded, for messages.
    origin: String,
}

impl Table {
    /// Loads the vectors `source` names.
    pub fn load(source: &Source) -> Result<Self> {
        if source.input.model.is_some() && source.format.is_some() {
            bail!("--format names the format of --vectors; a --model directory needs none");
        }
        match (&source.input.model, &source.input.vectors) {
            (Some(dir), _) => match TextClassifier::load(dir) {
                Ok((classifier, _)) => {
                    let vocab = classifier.vectorizer.vocabulary();
                    let words: Vec<String> = (0..vocab.len() as u32)
                        .map(|id| vocab.token_str(id).expect("id below len").to_string())
                        .collect();
                    let mut reserved: Vec<u32> = vocab.oov_ids().collect();
                    reserved.extend(vocab.mask_id());
                    let vectors = Vectors::from_embedding(classifier.model.embedding(), words)
                        .with_context(|| format!("reading the table of {}", dir.display()))?;
                    let origin = format!("the model's vocabulary of {} tokens", vocab.len());
                    Ok(Self { vectors, reserved, vectorizer: Some(classifier.vectorizer), origin })
                }
                // Not a text classifier: any model directory with a vocabulary.
                Err(_) => {
                    let vectors = Vectors::read(dir, VectorFormat::Model)
                        .with_context(|| format!("reading the model in {}", dir.display()))?;
                    let origin = format!("the model's vocabulary of {} words", vectors.len());
                    Ok(Self { vectors, reserved: Vec::new(), vectorizer: None, origin })
                }
            },
            (None, Some(file)) => {
                let format = match source.format {
                    Some(format) => format,
                    None => VectorFormat::detect(file).context("use --format to name it")?,
                };
                let vectors = Vectors::read(file, format)
                    .with_context(|| format!("reading {} ({format})", file.display()))?;
                let origin = format!("{} ({} words)", file.display(), vectors.len());
                Ok(Self { vectors, reserved: Vec::new(), vectorizer: None, origin })
            }
            (None, None) => bail!("give --model or --vectors"),
        }
    }

    /// The row of `word`: for a text classifier after standardisation,
    /// otherwise the exact word or else the first word equal to it
    /// ignoring case.
    pub fn id(&self, word: &str) -> Result<u32> {
        let id = match &self.vectorizer {
            Some(vectorizer) => {
                let tokens = vectorizer.tokens(word);
                let [token] = tokens.as_slice() else {
                    bail!(
                        "{word:?} is {} tokens after standardisation; give one word",
                        tokens.len()
                    );
                };
                self.vectors.id(token).filter(|id| !self.reserved.contains(id))
            }
            None => self.vectors.id(word).or_else(|| {
                let lower = word.to_lowercase();
                self.vectors
                    .words()
                    .iter()
                    .position(|w| w.to_lowercase() == lower)
                    .map(|i| i as u32)
            }),
        };
        id.with_context(|| format!("{word:?} is not in {}", self.origin))
    }

    /// The word of row `id`.
    pub fn word(&self, id: u32) -> &str {
        &self.vectors.words()[id as usize]
    }

    /// `near` without the reserved rows, at most `k`.
    pub fn answers(&self, near: Vec<Neighbor>, k: usize) -> Vec<Neighbor> {
        near.into_iter().filter(|n| !self.reserved.contains(&n.id)).take(k).collect()
    }
}

/// How neighbours are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricArg {
    /// Cosine similarity.
    Cosine,
    /// Dot product.
    Dot,
    /// Euclidean distance (printed as a distance: smaller is nearer).
    Euclidean,
}

impl From<MetricArg> for Similarity {
    fn from(metric: MetricArg) -> Self {
        match metric {
            MetricArg::Cosine => Similarity::Cosine,
            MetricArg::Dot => Similarity::Dot,
            MetricArg::Euclidean => Similarity::Euclidean,
        }
    }
}

/// The words whose vectors are nearest to a word's: by cosine similarity,
/// dot product or Euclidean distance. Prints `rank<TAB>word<TAB>score`,
/// where the score is the similarity, or the distance for `euclidean`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    /// The word to look up.
    #[arg(long)]
    pub word: String,
    /// How many neighbours.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// How to compare vectors [default: cosine, or the metric the
    /// `--index` was built for].
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// An approximate index built by `embkit index` for these vectors:
    /// faster on large tables, but may miss some neighbours.
    #[arg(long, value_name = "FILE.hnsw")]
    pub index: Option<PathBuf>,
    /// With `--index`: the candidates the search keeps; more is slower
    /// and finds more true neighbours.
    #[arg(long, value_name = "N", requires = "index", default_value_t = DEFAULT_EF_SEARCH)]
    pub ef: usize,
    /// Print JSON lines instead of text (`similarity`, or `distance` for
    /// `euclidean`).
    #[arg(long)]
    pub json: bool,
    /// Threads for the exact search (default: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<Threads>,
}

/// Parses a thread count of at least 1.
pub fn parse_threads(text: &str) -> std::result::Result<Threads, String> {
    let n: usize = text.parse().map_err(|e| format!("{e}"))?;
    Threads::new(n).map_err(|e| e.to_string())
}

/// Runs `embkit neighbors`.
pub fn run(args: Args) -> Result<()> {
    let table = Table::load(&args.source)?;
    let id = table.id(&args.word)?;
    let threads = args.threads.unwrap_or_else(Threads::available);
    let mut exclude = table.reserved.clone();
    exclude.push(id);
    let (near, similarity) = match &args.index {
        Some(path) => {
            let index = HnswIndex::load(path, table.vectors.view(), threads)
                .with_context(|| format!("loading the index {}", path.display()))?;
            let similarity = index.similarity();
            if let Some(metric) = args.metric.map(Similarity::from) {
                if metric != similarity {
                    bail!(
                        "--metric {metric}, but {} was built for {similarity}: \
                         leave --metric out or build another index",
                        path.display()
                    );
                }
            }
            (index.search(table.vectors.row(id), args.k, args.ef, &exclude)?, similarity)
        }
        None => {
            let similarity = args.metric.map_or(Similarity::Cosine, Similarity::from);
            let near = nearest_neighbors_by(
                table.vectors.view(),
                table.vectors.row(id),
                args.k,
                &exclude,
                similarity,
                threads,
            )?;
            (near, similarity)
        }
    };
    let mut out = Out::new(args.json);
    for (rank, n) in near.iter().enumerate() {
        let word = table.word(n.id);
        let rank = rank + 1;
        if similarity == Similarity::Euclidean {
            let distance = -n.similarity;
            out.text(format!("{rank}\t{word}\t{distance:.4}"))?;
            out.record(
                json!({"query": args.word, "rank": rank, "word": word, "distance": distance}),
            )?;
        } else {
            let s = n.similarity;
            out.text(format!("{rank}\t{word}\t{s:.4}"))?;
            out.record(json!({"query": args.word, "rank": rank, "word": word, "similarity": s}))?;
        }
    }
    Ok(())
}
