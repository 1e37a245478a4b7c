//! `embkit plot`: figures of a trained model and of word vectors, as PNG
//! or SVG: training curves, a 2-D map of the vectors (PCA or t-SNE), and a
//! histogram of the vectors' lengths. Also the row selection, projection
//! and metadata colouring that `embkit projector` shares.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use embkit::format::SavedModel;
use embkit::projection::{tsne, Pca, TsneConfig};
use ndarray::Array2;

use super::neighbors::{Source, Table};
use crate::plot::{self, Curves, Histogram, Scatter, CATEGORY_COLORS};

/// Draw a figure of a model or of word vectors. The image type follows
/// the `--out` name: `.png` or `.svg`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub figure: Figure,
}

/// The figures.
#[derive(Debug, clap::Subcommand)]
pub enum Figure {
    /// Training curves of a saved model: the loss and each metric per
    /// epoch, on the training and the validation data.
    History(HistoryArgs),
    /// A 2-D map of the vectors by PCA or t-SNE, with some words labelled
    /// and, with `--metadata`, points coloured by a metadata column.
    Projection(ProjectionArgs),
    /// A histogram of the vectors' lengths (L2 norms).
    Norms(NormsArgs),
}

/// `embkit plot history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The model directory (as written by `embkit train` or `demo`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The image to write: `.png` or `.svg`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The figure's title (by default it names the model).
    #[arg(long)]
    pub title: Option<String>,
}

/// Which rows of the table to show.
#[derive(Debug, Clone, clap::Args)]
pub struct Rows {
    /// How many rows: the first N, which are the N most frequent words in
    /// embkit vocabularies and in word2vec, GloVe and fastText files
    /// (a model's mask and `[UNK]` rows are never shown).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub rows: usize,
}

/// How to map the vectors to few dimensions.
#[derive(Debug, Clone, clap::Args)]
pub struct Method {
    /// `pca`: the directions of largest variance (fast, keeps global
    /// structure); `tsne`: exact t-SNE (slower, O(rows²), keeps
    /// neighbourhoods; for up to a few thousand rows).
    #[arg(long, value_enum, default_value_t = MethodArg::Pca)]
    pub method: MethodArg,
    /// t-SNE: the effective number of neighbours of each point (default
    /// 30, or (rows - 1) / 3 for fewer than 91 rows).
    #[arg(long)]
    pub perplexity: Option<f64>,
    /// t-SNE: gradient steps (the first 250 with early exaggeration).
    #[arg(long, default_value_t = 1000)]
    pub iterations: usize,
    /// t-SNE: seed of the starting layout (the same seed gives the same
    /// map).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The projection methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Principal component analysis.
    Pca,
    /// t-distributed stochastic neighbour embedding (exact).
    Tsne,
}

/// Colouring points by a metadata column.
#[derive(Debug, Clone, clap::Args)]
pub struct Coloring {
    /// A TensorFlow-projector-style metadata file: a header row naming
    /// the columns, then one line per row. With a column named `word`,
    /// `token`, `label` or `name`, lines are matched to rows by that
    /// column; otherwise line i describes row i.
    #[arg(long, value_name = "FILE.tsv", requires = "color_by")]
    pub metadata: Option<PathBuf>,
    /// The metadata column whose values colour the points: up to 10
    /// values get a colour each; with more, the 9 most common do and the
    /// rest are grey.
    #[arg(long, value_name = "COLUMN", requires = "metadata")]
    pub color_by: Option<String>,
}

/// `embkit plot projection`.
#[derive(Debug, clap::Args)]
pub struct ProjectionArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub rows: Rows,
    #[command(flatten)]
    pub method: Method,
    #[command(flatten)]
    pub coloring: Coloring,
    /// A word to label (repeat for several); words outside `--rows` are
    /// added. By default the `--top-labels` most frequent words are.
    #[arg(long = "label", value_name = "WORD")]
    pub labels: Vec<String>,
    /// Without `--label`: how many of the most frequent words to label.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub top_labels: usize,
    /// The image to write: `.png` or `.svg`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The figure's title (by default it names the method and the
    /// vectors).
    #[arg(long)]
    pub title: Option<String>,
}

/// `embkit plot norms`.
#[derive(Debug, clap::Args)]
pub struct NormsArgs {
    #[command(flatten)]
    pub source: Source,
    /// Only the first N rows (the most frequent words); all by default.
    #[arg(long, value_name = "N")]
    pub rows: Option<usize>,
    /// The number of bins.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub bins: u16,
    /// The image to write: `.png` or `.svg`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The figure's title (by default it names the vectors).
    #[arg(long)]
    pub title: Option<String>,
}

/// Runs `embkit plot`.
pub fn run(args: Args) -> Result<()> {
    match args.figure {
        Figure::History(args) => history(args),
        Figure::Projection(args) => projection(args),
        Figure::Norms(args) => norms(args),
    }
}

fn history(args: HistoryArgs) -> Result<()> {
    plot::ImageFormat::from_path(&args.out)?;
    let dir = &args.model;
    let saved =
        SavedModel::load(dir).with_context(|| format!("loading the model in {}", dir.display()))?;
    let Some(history) = saved.history.filter(|h| !h.epochs.is_empty()) else {
        bail!(
            "{} has no training history to plot (models written by `embkit train` and \
             `embkit demo` have one)",
            dir.display()
        );
    };
    let title = args.title.unwrap_or_else(|| format!("Training of {}", dir.display()));
    let figure = Curves::from_history(&history, &title);
    plot::save(&figure, &args.out)?;
    let names: Vec<&str> = figure.panels.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "wrote {} ({} epochs: {})",
        args.out.display(),
        history.epochs.len(),
        names.join(", ")
    );
    Ok(())
}

fn projection(args: ProjectionArgs) -> Result<()> {
    plot::ImageFormat::from_path(&args.out)?;
    let table = Table::load(&args.source)?;
    let labelled: Vec<u32> = args.labels.iter().map(|w| table.id(w)).collect::<Result<Vec<_>>>()?;
    let ids = select_rows(&table, args.rows.rows, &labelled)?;
    let projected = project(&table, &ids, &args.method, 2)?;
    let colors = match (&args.coloring.metadata, &args.coloring.color_by) {
        (Some(path), Some(column)) => {
            Some(Categories::new(&read_metadata(path, column, &table)?, &ids))
        }
        _ => None,
    };
    let labels: Vec<(usize, String)> = if labelled.is_empty() {
        ids.iter()
            .take(args.top_labels)
            .enumerate()
            .map(|(i, &id)| (i, table.word(id).into()))
            .collect()
    } else {
        labelled
            .iter()
            .filter_map(|id| Some((ids.iter().position(|x| x == id)?, table.word(*id).to_string())))
            .collect()
    };
    let title = args.title.unwrap_or_else(|| {
        format!("{} of {} words of {}", projected.method, ids.len(), source_name(&args.source))
    });
    let (category, categories, other) = match colors {
        Some(c) => (c.of_point, c.names, c.other),
        None => (vec![None; ids.len()], Vec::new(), None),
    };
    let figure = Scatter {
        title,
        x_desc: projected.axes[0].clone(),
        y_desc: projected.axes[1].clone(),
        points: projected.coords.outer_iter().map(|r| (f64::from(r[0]), f64::from(r[1]))).collect(),
        category,
        categories,
        other,
        labels,
    };
    plot::save(&figure, &args.out)?;
    eprintln!("wrote {} ({}, {} points)", args.out.display(), projected.method, ids.len());
    Ok(())
}

fn norms(args: NormsArgs) -> Result<()> {
    plot::ImageFormat::from_path(&args.out)?;
    let table = Table::load(&args.source)?;
    let ids = select_rows(&table, args.rows.unwrap_or(usize::MAX), &[])?;
    let values: Vec<f64> = ids
        .iter()
        .map(|&id| table.vectors.row(id).iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt())
        .collect();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let title = args.title.unwrap_or_else(|| {
        format!(
            "Lengths of {} vectors of {} (median {median:.3})",
            ids.len(),
            source_name(&args.source)
        )
    });
    let figure = Histogram {
        title,
        x_desc: "L2 norm of the vector".into(),
        y_desc: "number of words".into(),
        values,
        bins: usize::from(args.bins),
    };
    plot::save(&figure, &args.out)?;
    eprintln!("wrote {} ({} norms)", args.out.display(), ids.len());
    Ok(())
}

/// A short name of the vectors for titles: the file or directory name.
pub fn source_name(source: &Source) -> String {
    let path = source.input.model.as_ref().or(source.input.vectors.as_ref());
    path.map(|p| {
        let p = p.canonicalize().unwrap_or_else(|_| p.clone());
        // A model directory is often called `model`: name its parent too.
        let parts: Vec<String> =
            p.iter().rev().take(2).map(|c| c.to_string_lossy().into_owned()).collect();
        match parts.as_slice() {
            [last, parent] if source.input.model.is_some() && parent != "/" => {
                format!("{parent}/{last}")
            }
            [last, ..] => last.clone(),
            [] => p.display().to_string(),
        }
    })
    .unwrap_or_default()
}

/// The first `rows` rows that are not reserved (the most frequent words),
/// then those of `extra` not among them.
///
/// # Errors
///
/// When no row is left.
pub fn select_rows(table: &Table, rows: usize, extra: &[u32]) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = (0..table.vectors.len() as u32)
        .filter(|id| !table.reserved.contains(id))
        .take(rows)
        .collect();
    for &id in extra {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        bail!("there are no vectors to show (--rows {rows} of {} rows)", table.vectors.len());
    }
    Ok(ids)
}

/// Coordinates of some rows in few dimensions.
pub struct Projected {
    /// `[rows, dims]`
    pub coords: Array2<f32>,
    /// A name per axis, for people (`PC1 (12.3% of variance)`).
    pub axes: Vec<String>,
    /// The method and its main setting, for titles.
    pub method: String,
}

/// Projects the rows `ids` of `table` to `dims` dimensions by `method`.
pub fn project(table: &Table, ids: &[u32], method: &Method, dims: usize) -> Result<Projected> {
    let dim = table.vectors.dim();
    let mut data = Array2::zeros((ids.len(), dim));
    for (mut row, &id) in data.outer_iter_mut().zip(ids) {
        row.assign(&ndarray::aview1(table.vectors.row(id)));
    }
    match method.method {
        MethodArg::Pca => {
            let pca = Pca::fit(data.view(), dims).context("PCA")?;
            let coords = pca.transform(data.view())?;
            let axes = pca
                .explained_variance_ratio
                .iter()
                .enumerate()
                .map(|(i, r)| format!("PC{} ({:.1}% of variance)", i + 1, r * 100.0))
                .collect();
            let total: f64 = pca.explained_variance_ratio.iter().sum();
            Ok(Projected {
                coords,
                axes,
                method: format!("PCA ({:.0}% of variance shown)", total * 100.0),
            })
        }
        MethodArg::Tsne => {
            let n = ids.len();
            let perplexity =
                method.perplexity.unwrap_or_else(|| 30f64.min(((n as f64 - 1.0) / 3.0).max(1.0)));
            let config = TsneConfig::new()
                .with_components(dims)
                .with_perplexity(perplexity)
                .with_iterations(method.iterations)
                .with_exaggeration_iterations(250.min(method.iterations))
                .with_seed(method.seed);
            if n > 2000 {
                eprintln!("t-SNE of {n} rows is O(rows²) per iteration: this takes a while");
            }
            let coords = tsne(data.view(), &config).context("t-SNE")?;
            let axes = (1..=dims).map(|i| format!("t-SNE {i}")).collect();
            Ok(Projected { coords, axes, method: format!("t-SNE (perplexity {perplexity})") })
        }
    }
}

/// The value of a metadata column for each row of a table (`None` where
/// the metadata has no line for the row).
pub fn read_metadata(path: &Path, column: &str, table: &Table) -> Result<Vec<Option<String>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the metadata {}", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        bail!("{}: empty; a metadata file starts with a header row", path.display());
    };
    let names: Vec<&str> = header.split('\t').map(str::trim).collect();
    let Some(col) = names.iter().position(|n| *n == column) else {
        bail!(
            "{}: no column {column:?}; the header row names {}",
            path.display(),
            names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
        );
    };
    let key = names.iter().position(|n| {
        matches!(n.to_ascii_lowercase().as_str(), "word" | "token" | "label" | "name")
    });
    let mut values = vec![None; table.vectors.len()];
    let mut count = 0;
    let mut by_word: HashMap<&str, u32> = HashMap::new();
    if key.is_some() {
        for (id, w) in table.vectors.words().iter().enumerate() {
            by_word.entry(w.as_str()).or_insert(id as u32);
        }
    }
    for (i, line) in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != names.len() {
            bail!(
                "{}:{}: {} columns, but the header row has {}",
                path.display(),
                i + 1,
                fields.len(),
                names.len()
            );
        }
        let value = fields[col].trim().to_string();
        match key {
            Some(k) => {
                if let Some(&id) = by_word.get(fields[k]) {
                    values[id as usize] = Some(value);
                }
            }
            None => {
                if count < values.len() {
                    values[count] = Some(value);
                }
            }
        }
        count += 1;
    }
    if key.is_none() && count != values.len() {
        bail!(
            "{}: {count} lines after the header for {} rows; without a word column (word, \
             token, label or name) line i must describe row i",
            path.display(),
            values.len()
        );
    }
    Ok(values)
}

/// Points grouped by a metadata value: the most common values get a
/// colour each, the rest share grey.
pub struct Categories {
    /// The coloured values, most common first.
    pub names: Vec<String>,
    /// Each point's index into `names`, or `None`.
    pub of_point: Vec<Option<usize>>,
    /// The legend entry of the grey points, if there are any.
    pub other: Option<String>,
}

impl Categories {
    /// Groups the points `ids` by `values[id]`.
    pub fn new(values: &[Option<String>], ids: &[u32]) -> Self {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for &id in ids {
            if let Some(v) = &values[id as usize] {
                *counts.entry(v.as_str()).or_default() += 1;
            }
        }
        let mut order: Vec<(&str, usize)> = counts.into_iter().collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let max = CATEGORY_COLORS.len();
        let keep = if order.len() <= max { order.len() } else { max - 1 };
        let names: Vec<String> = order[..keep].iter().map(|(v, _)| v.to_string()).collect();
        let of_point: Vec<Option<usize>> = ids
            .iter()
            .map(|&id| values[id as usize].as_ref().and_then(|v| names.iter().position(|n| n == v)))
            .collect();
        let rest_values = order.len() - keep;
        let missing = ids.iter().filter(|&&id| values[id as usize].is_none()).count();
        let other = match (rest_values, missing) {
            (0, 0) => None,
            (0, m) => Some(format!("no metadata ({m})")),
            (r, 0) => Some(format!("{r} other values")),
            (r, m) => Some(format!("{r} other values, or none ({m})")),
        };
        Self { names, of_point, other }
    }
}
