//! `embkit index`: build an approximate nearest-neighbour index (HNSW)
//! for a table of word vectors, for `embkit neighbors --index`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use embkit::query::{HnswConfig, HnswIndex, Similarity};
use serde_json::json;

use super::neighbors::{MetricArg, Source, Table};
use crate::output::Out;

/// Build an HNSW index over the vectors of a model or a vectors file, and
/// write it to `--out` (the vectors are not copied into it: give the same
/// `--model` or `--vectors` to `embkit neighbors --index`, which refuses
/// vectors of another shape or with other values).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    /// The index file to write (through a temporary file, renamed).
    #[arg(long, value_name = "FILE.hnsw")]
    pub out: PathBuf,
    /// The metric the index is searched by.
    #[arg(long, value_enum, default_value_t = MetricArg::Cosine)]
    pub metric: MetricArg,
    /// Links per node (twice as many on the bottom layer): more gives
    /// better recall for more memory and a slower build.
    #[arg(long, default_value_t = HnswConfig::new().m)]
    pub m: usize,
    /// How hard each insertion looks for its neighbours.
    #[arg(long, default_value_t = HnswConfig::new().ef_construction)]
    pub ef_construction: usize,
    /// Seeds the graph's random levels: the same seed and vectors give the
    /// same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print a JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embkit index`.
pub fn run(args: Args) -> Result<()> {
    let table = Table::load(&args.source)?;
    let config = HnswConfig::new()
        .with_m(args.m)
        .with_ef_construction(args.ef_construction)
        .with_seed(args.seed);
    let similarity = Similarity::from(args.metric);
    let start = Instant::now();
    let index = HnswIndex::build(table.vectors.view(), similarity, &config)
        .context("building the index")?;
    let seconds = start.elapsed().as_secs_f64();
    index.save(&args.out).with_context(|| format!("writing {}", args.out.display()))?;
    let (rows, dim) = (index.num_embeddings(), index.embedding_dim());
    let mut out = Out::new(args.json);
    out.text(format!(
        "{}\t{rows} rows\t{dim} dims\t{similarity}\tm {}\tef_construction {}\t{seconds:.2} s",
        args.out.display(),
        config.m,
        config.ef_construction
    ))?;
    out.record(json!({
        "index": args.out,
        "rows": rows,
        "dim": dim,
        "metric": similarity.name(),
        "m": config.m,
        "ef_construction": config.ef_construction,
        "seed": config.seed,
        "seconds": seconds,
    }))?;
    Ok(())
}
