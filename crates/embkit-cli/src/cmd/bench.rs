//! `embkit bench`: the frozen workloads W1–W7 of `shared/bench/WORKLOADS.md`,
//! run through embkit's public API and, in the same process, through a
//! plain-loop baseline that does the same work, so every number comes with
//! a ratio measured on the same machine at the same time.
//!
//! | id | embkit | baseline (plain loops over slices) |
//! |----|--------|------------------------------------|
//! | W1, W2 | `Embedding::forward_into`, reused `Vec` | row `copy_from_slice` |
//! | W3 | `Embedding::forward_into` on a 10k x 8 table | the same loop |
//! | W4 | `EmbeddingBag::forward` (sum, offsets) | per-bag row sums |
//! | W5 | `forward_into` + `backward_step` (SGD in Keras's table mode, a step per occurrence; also PyTorch's, repeated ids summed first, and `backward` + `step`) | gather + fused `t[id] -= lr g` |
//! | W6 | `forward_into` + `backward_step`, SparseAdam / sparse Adagrad (also `backward` + `step`) | gather + slot-map coalescing + row update |
//! | W7 | `Sequential::fit`, RMSprop (dense table updates) | a hand-written training loop |
//!
//! Both sides run on the given thread count: embkit through
//! `set_threads` on the layer and the optimizer (W3 and W7 stay on one
//! thread: their calls are too small to split), the baseline by splitting
//! its work as `shared/bench/limit` does.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use embkit::layers::{BagMode, EmbeddingBag, EmbeddingBagConfig};
use embkit::{
    Activation, AdagradConfig, AdamConfig, Dataset, EmbeddingConfig, EpochLog, Init, Loss, Metric,
    Observer, OptimizerConfig, RmsPropConfig, SequentialConfig, SgdConfig, TableUpdates, Threads,
    TrainConfig,
};
use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::output::Out;
use crate::plot;

/// Rows of the big table (W1, W2, W4, W5, W6).
const ROWS: usize = 1_000_000;
/// Row length of the big table.
const DIM: usize = 64;
/// Bags (or sequences) per batch in W1, W2, W4, W5, W6.
const BATCH: usize = 4096;
/// Ids per bag (or sequence) in W1, W2, W4, W5, W6.
const SEQ: usize = 50;
/// Ids per call in W1, W2, W4, W5, W6.
const LOOKUPS: usize = BATCH * SEQ;
/// Bytes of one big-table row.
const ROW_BYTES: f64 = (DIM * 4) as f64;
/// W3: table rows, row length, batch and sequence length.
const SMALL: (usize, usize, usize, usize) = (10_000, 8, 32, 20);
/// W7: vocabulary, row length, sequence length, samples, batch size.
const W7_VOCAB: usize = 10_000;
const W7_DIM: usize = 8;
const W7_SEQ: usize = 20;
const W7_SAMPLES: usize = 25_000;
const W7_BATCH: usize = 32;
/// The exponent of W2's Zipf distribution.
const ZIPF_S: f64 = 1.05;
/// Learning rates of W5 (SGD), W6 (SparseAdam, Adagrad) and W7 (RMSprop).
const SGD_LR: f32 = 0.01;
const ADAM_LR: f32 = 0.001;
const ADAGRAD_LR: f32 = 0.01;
const RMSPROP_LR: f32 = 0.001;

/// Run the frozen embedding workloads W1–W7 with embkit and with a
/// plain-loop baseline, and compare with the PyTorch anchors.
///
/// Prints a Markdown table (or, with `--json`, one JSON object per
/// measurement with the anchors' fields: system, workload, threads,
/// median_s, metric, value, gbps, reps, min_s, p25_s, p75_s). Progress goes
/// to stderr. A full run takes a few minutes on two cores; `--quick` about
/// one.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder written by `shared/bench/ref/gen_data.py`
    /// (`manifest.json` and raw little-endian `.i64` / `.f32` files).
    /// Without it, the ids are drawn here from seeded generators of the
    /// same distributions (the same shapes, not the same ids).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Thread counts, comma-separated: embkit's layers and optimizers and
    /// the plain-loop baseline both split their work over that many
    /// threads.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Workloads to run, comma-separated: W1 … W7.
    #[arg(long, value_delimiter = ',', default_value = "W1,W2,W3,W4,W5,W6,W7")]
    pub workloads: Vec<String>,
    /// Fewer repetitions and 5,000 W7 samples: the whole run in about a
    /// minute.
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON object per measurement instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The peers' numbers (`ANCHORS.md`). Default: `ANCHORS.md` beside the
    /// data folder, else `../shared/bench/ANCHORS.md`. When it cannot be
    /// read or parsed, no anchor is shown.
    #[arg(long)]
    pub anchors: Option<PathBuf>,
    /// Also draw lookups/s per workload and system into this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Measure nothing: read the JSON lines of earlier `--json` runs (and
    /// of `shared/bench/limit` and PyTorch's `shared/bench/ref` scripts run
    /// on this machine, shown as "limit (here)" and "torch (here)") from
    /// these files, comma-separated, then print the table and draw
    /// `--plot`.
    #[arg(long, value_delimiter = ',')]
    pub replot: Vec<PathBuf>,
    /// Seed of the table values and upstream gradients (N(0, 1)).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs `embkit bench`.
pub fn run(args: Args) -> Result<()> {
    let anchors = load_anchors(&args);
    let mut out = Out::new(args.json && args.replot.is_empty());
    let records = if args.replot.is_empty() {
        measure(&args, &anchors, &mut out)?
    } else {
        let mut records = Vec::new();
        for path in &args.replot {
            records.extend(read_records(path)?);
        }
        records
    };
    if !args.json || !args.replot.is_empty() {
        let mut text = Out::new(false);
        for line in summary_table(&records, &anchors) {
            text.text(line)?;
        }
    }
    if let Some(path) = &args.plot {
        draw_plot(&records, &anchors, path)?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------- inputs

/// The ids (and W7 labels) of every workload.
struct Inputs {
    /// Where they come from, for the report.
    source: String,
    w1: Vec<u32>,
    w2: Vec<u32>,
    w3: Vec<u32>,
    w7_x: Vec<u32>,
    w7_y: Vec<f32>,
}

impl Inputs {
    /// Reads the files `gen_data.py` writes, checking them against
    /// `manifest.json`.
    fn load(dir: &Path) -> Result<Self> {
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let manifest: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", manifest_path.display()))?;
        let entry = |name: &str, shape: &[usize], dtype: &str| -> Result<PathBuf> {
            let e = manifest.get(name).with_context(|| format!("{name} is not in the manifest"))?;
            let got: Vec<usize> = e["shape"]
                .as_array()
                .with_context(|| format!("{name}: no shape in the manifest"))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .with_context(|| format!("{name}: a shape of non-integers"))?;
            ensure!(got == shape, "{name}: shape {got:?} in the manifest, expected {shape:?}");
            ensure!(
                e["dtype"] == dtype,
                "{name}: dtype {} in the manifest, expected {dtype}",
                e["dtype"]
            );
            Ok(dir.join(name))
        };
        let (sr, _, sb, ss) = SMALL;
        let w1 = read_ids(&entry("w1_ids.i64", &[BATCH, SEQ], "int64")?, LOOKUPS, 0, ROWS)?;
        let w2 = read_ids(&entry("w2_ids.i64", &[BATCH, SEQ], "int64")?, LOOKUPS, 0, ROWS)?;
        let w3 = read_ids(&entry("w3_ids.i64", &[sb, ss], "int64")?, sb * ss, 0, sr)?;
        let n7 = W7_SAMPLES * W7_SEQ;
        let w7_x = read_ids(&entry("w7_x.i64", &[W7_SAMPLES, W7_SEQ], "int64")?, n7, 1, W7_VOCAB)?;
        let y_path = entry("w7_y.f32", &[W7_SAMPLES], "float32")?;
        let bytes =
            std::fs::read(&y_path).with_context(|| format!("reading {}", y_path.display()))?;
        ensure!(
            bytes.len() == W7_SAMPLES * 4,
            "{}: {} bytes, expected {}",
            y_path.display(),
            bytes.len(),
            W7_SAMPLES * 4
        );
        let w7_y: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("chunks of 4")))
            .collect();
        ensure!(w7_y.iter().all(|&y| y == 0.0 || y == 1.0), "w7_y.f32: labels other than 0/1");
        Ok(Self { source: format!("{} (gen_data.py)", dir.display()), w1, w2, w3, w7_x, w7_y })
    }

    /// Draws ids of the same distributions with seeded generators: uniform
    /// (seeds 1, 3, 7), Zipf(1.05) by inverse CDF over ranks 1..=1,000,000
    /// (seed 2), W7 labels from per-id N(0, 1) weights (seed 77).
    fn generate() -> Result<Self> {
        let uniform = |seed: u64, n: usize, lo: usize, hi: usize| -> Vec<u32> {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..n).map(|_| rng.random_range(lo as u32..hi as u32)).collect()
        };
        let (sr, _, sb, ss) = SMALL;
        let w1 = uniform(1, LOOKUPS, 0, ROWS);
        let w2 = zipf_ids(&mut StdRng::seed_from_u64(2), ROWS, ZIPF_S, LOOKUPS);
        let w3 = uniform(3, sb * ss, 0, sr);
        let w7_x = uniform(7, W7_SAMPLES * W7_SEQ, 1, W7_VOCAB);
        let w = Init::Normal { std: 1.0 }.sample(W7_VOCAB, 1, &mut StdRng::seed_from_u64(77))?;
        let w7_y = w7_x
            .chunks_exact(W7_SEQ)
            .map(|s| {
                let sum: f64 = s.iter().map(|&id| f64::from(w[id as usize])).sum();
                if sum > 0.0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        Ok(Self { source: "generated (seeded, same distributions)".into(), w1, w2, w3, w7_x, w7_y })
    }
}

/// Reads `n` little-endian i64 ids in `lo..hi` as u32.
fn read_ids(path: &Path, n: usize, lo: usize, hi: usize) -> Result<Vec<u32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len() == n * 8,
        "{}: {} bytes, expected {} ({n} int64)",
        path.display(),
        bytes.len(),
        n * 8
    );
    bytes
        .chunks_exact(8)
        .map(|c| {
            let id = i64::from_le_bytes(c.try_into().expect("chunks of 8"));
            ensure!(
                (lo as i64..hi as i64).contains(&id),
                "{}: id {id} outside {lo}..{hi}",
                path.display()
            );
            Ok(id as u32)
        })
        .collect()
}

/// `n` ids with `p(rank k) ∝ k^-s` over `k = 1..=rows`, id = rank - 1,
/// sampled by inverse CDF (as `gen_data.py`).
fn zipf_ids(rng: &mut impl Rng, rows: usize, s: f64, n: usize) -> Vec<u32> {
    let mut cdf: Vec<f64> = Vec::with_capacity(rows);
    let mut acc = 0.0;
    for k in 1..=rows {
        acc += (k as f64).powf(-s);
        cdf.push(acc);
    }
    let total = acc;
    cdf.iter_mut().for_each(|c| *c /= total);
    (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            cdf.partition_point(|&c| c <= u).min(rows - 1) as u32
        })
        .collect()
}

/// A table of N(0, 1) values from `seed`, as the embkit tables get.
fn normal_table(rows: usize, dim: usize, seed: u64) -> Result<Vec<f32>> {
    Ok(Init::Normal { std: 1.0 }.sample(rows, dim, &mut StdRng::seed_from_u64(seed))?)
}

// ---------------------------------------------------------------- timing

/// How many times a measurement runs.
#[derive(Debug, Clone, Copy)]
struct Reps {
    warmup: usize,
    min_reps: usize,
    max_reps: usize,
    /// Seconds after which no more repetitions start once `min_reps` ran.
    min_time: f64,
}

impl Reps {
    fn new(quick: bool) -> Self {
        if quick {
            Self { warmup: 1, min_reps: 3, max_reps: 3, min_time: 0.0 }
        } else {
            Self { warmup: 3, min_reps: 15, max_reps: 200, min_time: 1.0 }
        }
    }
}

/// Per-call seconds of `f`: warm-up calls, then timed samples of `inner`
/// calls each (as `shared/bench/limit`).
fn time_fn(reps: Reps, inner: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..reps.warmup {
        f()?;
    }
    let start = Instant::now();
    let mut times = Vec::new();
    loop {
        let t0 = Instant::now();
        for _ in 0..inner {
            f()?;
        }
        times.push(t0.elapsed().as_secs_f64() / inner as f64);
        if times.len() >= reps.max_reps
            || (times.len() >= reps.min_reps && start.elapsed().as_secs_f64() >= reps.min_time)
        {
            return Ok(times);
        }
    }
}

/// The `q` quantile of sorted data, interpolated linearly.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Peak resident memory so far, in MB, from `VmHWM`.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak to the current resident size (Linux 4.0+); false if
/// that is not possible, in which case peaks include earlier workloads.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Which side of the comparison a measurement belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// embkit, the API the comparison is about.
    Embkit,
    /// embkit, another API for the same work (allocating output).
    EmbkitAlt,
    /// The plain-loop baseline measured in the same run.
    Baseline,
    /// `shared/bench/limit` run on this machine (read with `--replot`).
    LimitHere,
    /// PyTorch's reference scripts (`shared/bench/ref/torch_ops.py`,
    /// `train_torch.py`) run on this machine (read with `--replot`).
    TorchHere,
    /// Anything else.
    Other,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Embkit => "embkit",
            Role::EmbkitAlt => "embkit-alt",
            Role::Baseline => "baseline",
            Role::LimitHere => "limit-here",
            Role::TorchHere => "torch-here",
            Role::Other => "other",
        }
    }

    fn of(record: &Map<String, Value>) -> Role {
        match record.get("role").and_then(Value::as_str) {
            Some("embkit") => return Role::Embkit,
            Some("embkit-alt") => return Role::EmbkitAlt,
            Some("baseline") => return Role::Baseline,
            _ => {}
        }
        let system = record.get("system").and_then(Value::as_str).unwrap_or("");
        if system.starts_with("limit") {
            Role::LimitHere
        } else if system.starts_with("torch") {
            Role::TorchHere
        } else if system.starts_with("embkit") {
            Role::Embkit
        } else {
            Role::Other
        }
    }
}

/// What a timed call does, for its record.
struct Work<'a> {
    workload: &'a str,
    metric: &'a str,
    /// Lookups, calls or samples per timed call.
    units: f64,
    /// GB read + written per call, where WORKLOADS.md defines it.
    gbytes: Option<f64>,
}

/// One measurement as a JSON object with the anchors' fields.
fn record(
    system: &str,
    role: Role,
    work: &Work<'_>,
    threads: usize,
    threads_used: usize,
    times: &[f64],
) -> Map<String, Value> {
    let mut s = times.to_vec();
    s.sort_by(f64::total_cmp);
    let median = quantile(&s, 0.5);
    let mut r = Map::new();
    r.insert("system".into(), json!(system));
    r.insert("workload".into(), json!(work.workload));
    r.insert("threads".into(), json!(threads));
    r.insert("median_s".into(), json!(median));
    r.insert("metric".into(), json!(work.metric));
    r.insert("value".into(), json!(work.units / median));
    if let Some(gb) = work.gbytes {
        r.insert("gbps".into(), json!(gb / median));
    }
    r.insert("reps".into(), json!(s.len()));
    r.insert("min_s".into(), json!(s[0]));
    r.insert("p25_s".into(), json!(quantile(&s, 0.25)));
    r.insert("p75_s".into(), json!(quantile(&s, 0.75)));
    r.insert("role".into(), json!(role.name()));
    r.insert("threads_used".into(), json!(threads_used));
    r
}

fn progress(r: &Map<String, Value>) {
    let value = r["value"].as_f64().unwrap_or(0.0);
    let metric = r["metric"].as_str().unwrap_or("");
    let (value, metric) = match r.get("samples_per_s").and_then(Value::as_f64) {
        Some(sps) => (sps, "samples/s"),
        None => (value, metric),
    };
    eprintln!(
        "  {:<3} t={} {:<60} {:>10}  {} ({})",
        r["workload"].as_str().unwrap_or(""),
        r["threads"],
        r["system"].as_str().unwrap_or(""),
        fmt_seconds(r["median_s"].as_f64().unwrap_or(f64::NAN)),
        fmt_rate(value),
        metric,
    );
}

// ---------------------------------------------------------------- the run

fn measure(args: &Args, anchors: &Anchors, out: &mut Out) -> Result<Vec<Map<String, Value>>> {
    ensure!(!args.threads.is_empty(), "--threads: give at least one thread count");
    ensure!(args.threads.iter().all(|&t| t >= 1), "--threads: counts must be at least 1");
    let mut wanted = Vec::new();
    for w in &args.workloads {
        let w = w.trim().to_uppercase();
        if !matches!(w.as_str(), "W1" | "W2" | "W3" | "W4" | "W5" | "W6" | "W7") {
            bail!("--workloads: unknown workload {w:?}; expected W1 … W7");
        }
        wanted.push(w);
    }
    let want = |w: &str| wanted.iter().any(|x| x == w);
    let inputs = match &args.data {
        Some(dir) => Inputs::load(dir)?,
        None => Inputs::generate()?,
    };
    eprintln!(
        "embkit bench: ids from {}; threads {:?}; {}",
        inputs.source,
        args.threads,
        if args.quick { "quick" } else { "full" }
    );
    let reps = Reps::new(args.quick);
    let b = Bench { threads: &args.threads, reps, seed: args.seed, quick: args.quick };
    let mut all = Vec::new();
    let mut emit = |mut records: Vec<Map<String, Value>>, out: &mut Out| -> Result<()> {
        annotate(&mut records, anchors);
        for r in &records {
            progress(r);
            out.record(Value::Object(r.clone()))?;
        }
        all.extend(records);
        Ok(())
    };
    if want("W1") {
        emit(b.gather("W1", &inputs.w1, true)?, out)?;
    }
    if want("W2") {
        emit(b.gather("W2", &inputs.w2, false)?, out)?;
    }
    if want("W3") {
        emit(b.small(&inputs.w3)?, out)?;
    }
    if want("W4") {
        emit(b.bag(&inputs.w1)?, out)?;
    }
    if want("W5") {
        emit(b.sparse_step("W5", &inputs.w1, Opt::Sgd)?, out)?;
    }
    if want("W6") {
        emit(b.sparse_step("W6", &inputs.w1, Opt::Adam)?, out)?;
        emit(b.sparse_step("W6", &inputs.w1, Opt::Adagrad)?, out)?;
    }
    if want("W7") {
        emit(b.train(&inputs.w7_x, &inputs.w7_y)?, out)?;
    }
    Ok(all)
}

/// The settings every workload shares.
struct Bench<'a> {
    threads: &'a [usize],
    reps: Reps,
    seed: u64,
    quick: bool,
}

/// The optimizer of a sparse step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Sgd,
    Adam,
    Adagrad,
}

impl Opt {
    fn config(self) -> OptimizerConfig {
        match self {
            // Only the rows of the batch move. SGD in Keras's table mode:
            // each occurrence steps on its own, as Keras and the plain loop
            // do (PyTorch's, summing first, is a line of its own).
            Opt::Sgd => OptimizerConfig::from(SgdConfig::new().with_learning_rate(SGD_LR))
                .with_table_updates(TableUpdates::Keras),
            Opt::Adam => AdamConfig::pytorch_sparse().with_learning_rate(ADAM_LR).into(),
            Opt::Adagrad => AdagradConfig::pytorch().with_learning_rate(ADAGRAD_LR).into(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Opt::Sgd => "sgd",
            Opt::Adam => "adam",
            Opt::Adagrad => "adagrad",
        }
    }
}

/// A sum of a spread of output values, to check that two sides computed
/// the same thing.
fn checksum(out: &[f32]) -> f64 {
    out.iter().step_by(997).map(|&x| f64::from(x)).sum()
}

impl Bench<'_> {
    /// W1 / W2: gather 4096 x 50 rows of a 1,000,000 x 64 table.
    fn gather(&self, workload: &str, ids: &[u32], peak: bool) -> Result<Vec<Map<String, Value>>> {
        let work = Work {
            workload,
            metric: "lookups/s",
            units: LOOKUPS as f64,
            gbytes: Some(LOOKUPS as f64 * ROW_BYTES * 2.0 / 1e9),
        };
        let mut records = Vec::new();

        // embkit
        let reset = reset_peak_rss();
        let config = EmbeddingConfig::new(ROWS, DIM).with_init(Init::Normal { std: 1.0 });
        let mut table = config.init(&mut StdRng::seed_from_u64(self.seed))?;
        let mut out = Vec::new();
        let mut embkit = Vec::new();
        for &t in self.threads {
            table.set_threads(Threads::new(t)?);
            let times = time_fn(self.reps, 1, || {
                table.forward_into(black_box(ids), &mut out)?;
                black_box(&out);
                Ok(())
            })?;
            let system = format!("embkit-{} Embedding::forward_into (reused Vec)", version());
            embkit.push(record(&system, Role::Embkit, &work, t, t, &times));
        }
        let embkit_sum = checksum(&out);
        let embkit_peak = peak_rss_mb();
        drop(out);
        let ids_2d = ArrayView2::from_shape((BATCH, SEQ), ids)?;
        for &t in self.threads {
            table.set_threads(Threads::new(t)?);
            let times = time_fn(self.reps, 1, || {
                black_box(table.forward(black_box(ids_2d))?);
                Ok(())
            })?;
            let system = format!("embkit-{} Embedding::forward (new array per call)", version());
            let mut r = record(&system, Role::EmbkitAlt, &work, t, t, &times);
            r.insert("label".into(), json!("`forward`, new array per call"));
            records.push(r);
        }
        drop(table);

        // baseline
        let reset = reset_peak_rss() && reset;
        let table = normal_table(ROWS, DIM, self.seed)?;
        let mut out = vec![0.0f32; LOOKUPS * DIM];
        let mut baseline = Vec::new();
        for &t in self.threads {
            let times = time_fn(self.reps, 1, || {
                plain::par_gather(t, &table, black_box(ids), &mut out);
                black_box(&out);
                Ok(())
            })?;
            let system = "baseline plain loop: gather copy_from_slice (preallocated)";
            baseline.push(record(system, Role::Baseline, &work, t, t, &times));
        }
        ensure!(checksum(&out) == embkit_sum, "{workload}: embkit and the baseline differ");
        let baseline_peak = peak_rss_mb();
        drop((table, out));

        if peak {
            add_peaks(&mut embkit, embkit_peak, reset);
            add_peaks(&mut baseline, baseline_peak, reset);
        }
        Ok(embkit.into_iter().chain(records).chain(baseline).collect())
    }

    /// W3: gather 32 x 20 rows of a 10,000 x 8 table; per-call overhead.
    fn small(&self, ids: &[u32]) -> Result<Vec<Map<String, Value>>> {
        let (rows, dim, batch, seq) = SMALL;
        let work = Work { workload: "W3", metric: "calls/s", units: 1.0, gbytes: None };
        let inner = if self.quick { 1_000 } else { 20_000 };
        let mut records = Vec::new();
        let config = EmbeddingConfig::new(rows, dim).with_init(Init::Normal { std: 1.0 });
        let mut table = config.init(&mut StdRng::seed_from_u64(self.seed))?;
        let plain_table = normal_table(rows, dim, self.seed)?;
        let ids_2d = ArrayView2::from_shape((batch, seq), ids)?;
        for &t in self.threads {
            let mut out = Vec::new();
            let times = time_fn(self.reps, inner, || {
                table.forward_into(black_box(ids), &mut out)?;
                black_box(&out);
                Ok(())
            })?;
            let system = format!("embkit-{} Embedding::forward_into (reused Vec)", version());
            records.push(record(&system, Role::Embkit, &work, t, 1, &times));
            let times = time_fn(self.reps, inner, || {
                black_box(table.forward(black_box(ids_2d))?);
                Ok(())
            })?;
            let system = format!("embkit-{} Embedding::forward (new array per call)", version());
            let mut r = record(&system, Role::EmbkitAlt, &work, t, 1, &times);
            r.insert("label".into(), json!("`forward`, new array per call"));
            records.push(r);
            let mut plain_out = vec![0.0f32; ids.len() * dim];
            let times = time_fn(self.reps, inner, || {
                for (o, &id) in plain_out.chunks_exact_mut(dim).zip(black_box(ids)) {
                    let s = id as usize * dim;
                    o.copy_from_slice(&plain_table[s..s + dim]);
                }
                black_box(&plain_out);
                Ok(())
            })?;
            ensure!(out == plain_out, "W3: embkit and the baseline differ");
            let system = "baseline plain loop: gather copy_from_slice (preallocated)";
            records.push(record(system, Role::Baseline, &work, t, 1, &times));
        }
        Ok(records)
    }

    /// W4: 4096 bags of 50 ids, sum pooling.
    fn bag(&self, ids: &[u32]) -> Result<Vec<Map<String, Value>>> {
        let work = Work {
            workload: "W4",
            metric: "lookups/s",
            units: LOOKUPS as f64,
            gbytes: Some((LOOKUPS as f64 * ROW_BYTES + BATCH as f64 * ROW_BYTES) / 1e9),
        };
        let offsets: Vec<usize> = (0..BATCH).map(|b| b * SEQ).collect();
        let mut records = Vec::new();

        let config = EmbeddingBagConfig::new(ROWS, DIM).with_mode(BagMode::Sum);
        let mut bag =
            EmbeddingBag::from_config_and_weights(config, normal_table(ROWS, DIM, self.seed)?)?;
        let mut last = Array2::zeros((0, 0));
        for &t in self.threads {
            bag.set_threads(Threads::new(t)?);
            let times = time_fn(self.reps, 1, || {
                last = bag.forward(black_box(ids), &offsets, None, false)?;
                black_box(&last);
                Ok(())
            })?;
            let system = format!("embkit-{} EmbeddingBag::forward (sum, offsets)", version());
            records.push(record(&system, Role::Embkit, &work, t, t, &times));
        }
        let embkit_out = last.into_raw_vec_and_offset().0;
        drop(bag);

        let table = normal_table(ROWS, DIM, self.seed)?;
        let mut out = vec![0.0f32; BATCH * DIM];
        for &t in self.threads {
            let times = time_fn(self.reps, 1, || {
                plain::par_bag_sum(t, &table, black_box(ids), SEQ, &mut out);
                black_box(&out);
                Ok(())
            })?;
            let system = "baseline plain loop: bag sum (preallocated)";
            records.push(record(system, Role::Baseline, &work, t, t, &times));
        }
        let max_diff = embkit_out.iter().zip(&out).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        ensure!(max_diff < 1e-3, "W4: embkit and the baseline differ by {max_diff}");
        Ok(records)
    }

    /// Per-step seconds of `forward_into` then `backward_step` of the
    /// batch `(ids, upstream)` with `optimizer`.
    fn time_backward_step(
        &self,
        table: &mut embkit::Embedding,
        out: &mut Vec<f32>,
        (ids, upstream): (&[u32], &[f32]),
        optimizer: &mut dyn embkit::Optimizer,
    ) -> Result<Vec<f64>> {
        time_fn(self.reps, 1, || {
            table.forward_into(black_box(ids), out)?;
            black_box(&out);
            table.backward_step(ids, upstream, optimizer, "embedding")?;
            optimizer.finish_step();
            Ok(())
        })
    }

    /// W5 / W6: forward, backward of an N(0, 1) upstream gradient and a
    /// lazy optimizer step, per step.
    fn sparse_step(
        &self,
        workload: &str,
        ids: &[u32],
        opt: Opt,
    ) -> Result<Vec<Map<String, Value>>> {
        let work = Work { workload, metric: "lookups/s", units: LOOKUPS as f64, gbytes: None };
        let upstream = normal_table(LOOKUPS, DIM, self.seed + 1)?;
        let mut embkit = Vec::new();

        let reset = reset_peak_rss();
        let config = EmbeddingConfig::new(ROWS, DIM).with_init(Init::Normal { std: 1.0 });
        let mut table = config.init(&mut StdRng::seed_from_u64(self.seed))?;
        let mut out = Vec::new();
        for &t in self.threads {
            // A fresh optimizer per thread count; its state is allocated
            // during the warm-up steps.
            let mut optimizer = opt.config().build()?;
            optimizer.set_threads(Threads::new(t)?);
            table.set_threads(Threads::new(t)?);
            // Both public paths: `backward_step` (the headline: fused
            // where the rule fuses, SGD; Adam and Adagrad sum the rows
            // first, checking them as they are written) and `backward`
            // then `step` (the summed gradient written out and read back).
            let step = (ids, &upstream[..]);
            let fused = self.time_backward_step(&mut table, &mut out, step, optimizer.as_mut())?;
            let apart = time_fn(self.reps, 1, || {
                table.forward_into(black_box(ids), &mut out)?;
                black_box(&out);
                table.backward(ids, &upstream)?;
                table.step(optimizer.as_mut(), "embedding")?;
                optimizer.finish_step();
                Ok(())
            })?;
            let fused_name = format!("forward_into + backward_step ({})", opt_label(opt));
            let apart_name = format!("forward_into + backward + step ({})", opt_label(opt));
            let system = format!("embkit-{} {fused_name}", version());
            embkit.push(record(&system, Role::Embkit, &work, t, t, &fused));
            let system = format!("embkit-{} {apart_name}", version());
            let mut r = record(&system, Role::EmbkitAlt, &work, t, t, &apart);
            r.insert("label".into(), json!("`backward`, then `step`"));
            embkit.push(r);
            if opt == Opt::Sgd {
                // PyTorch's SGD sums the rows of a repeated id before its
                // step: the fused step sorts the ids to find them.
                let config = SgdConfig::pytorch().with_learning_rate(SGD_LR);
                let mut optimizer = OptimizerConfig::from(config).build()?;
                optimizer.set_threads(Threads::new(t)?);
                let summed =
                    self.time_backward_step(&mut table, &mut out, step, optimizer.as_mut())?;
                let system =
                    format!("embkit-{} forward_into + backward_step (SGD, PyTorch's)", version());
                let mut r = record(&system, Role::EmbkitAlt, &work, t, t, &summed);
                r.insert("label".into(), json!("PyTorch's SGD (repeated ids summed first)"));
                embkit.push(r);
            }
        }
        let embkit_peak = peak_rss_mb();
        drop((table, out));

        let reset = reset_peak_rss() && reset;
        let mut table = normal_table(ROWS, DIM, self.seed)?;
        let mut out = vec![0.0f32; LOOKUPS * DIM];
        let mut baseline = Vec::new();
        let max_threads = self.threads.iter().copied().max().unwrap_or(1);
        for &t in self.threads {
            let mut state = plain::SparseOpt::new(opt, ROWS, LOOKUPS, max_threads);
            let times = time_fn(self.reps, 1, || {
                plain::par_gather(t, &table, black_box(ids), &mut out);
                black_box(&out);
                state.step(t, &mut table, ids, &upstream);
                Ok(())
            })?;
            let system = match opt {
                Opt::Sgd => "baseline plain loop: gather + fused scatter SGD".to_string(),
                _ => format!("baseline plain loop: gather + coalesce + {}", opt_label(opt)),
            };
            baseline.push(record(&system, Role::Baseline, &work, t, t, &times));
        }
        let baseline_peak = peak_rss_mb();
        drop((table, out));

        add_peaks(&mut embkit, embkit_peak, reset);
        add_peaks(&mut baseline, baseline_peak, reset);
        let mut records: Vec<_> = embkit.into_iter().chain(baseline).collect();
        if opt != Opt::Sgd {
            for r in &mut records {
                r.insert("optimizer".into(), json!(opt.name()));
            }
        }
        for r in &mut records {
            r.insert("update".into(), json!("sparse (rows of the batch only)"));
        }
        Ok(records)
    }

    /// W7: `Embedding(10000, 8) → Flatten → Dense(1, sigmoid)`, binary
    /// cross-entropy, RMSprop, batch 32; epoch 1 is the warm-up, the
    /// others are timed.
    fn train(&self, x: &[u32], y: &[f32]) -> Result<Vec<Map<String, Value>>> {
        let n = if self.quick { 5_000 } else { W7_SAMPLES };
        let (epochs, runs) = if self.quick { (2, 1) } else { (3, 3) };
        let x = &x[..n * W7_SEQ];
        let y = &y[..n];
        let ids = ArrayView2::from_shape((n, W7_SEQ), x)?;
        let targets = ArrayView2::from_shape((n, 1), y)?.into_dyn();
        let work = Work { workload: "W7", metric: "s/epoch", units: 1.0, gbytes: None };
        let model_config = SequentialConfig::new(EmbeddingConfig::new(W7_VOCAB, W7_DIM), W7_SEQ)
            .flatten()
            .dense(1, Activation::Sigmoid);
        // Both references step every row of the table: PyTorch's dense
        // gradient (`sparse=False`) and Keras's update of the embedding
        // decay every row's mean square on every step. The headline runs
        // PyTorch's formula with the hyper-parameters of the PyTorch
        // reference script (alpha 0.9, eps 1e-7: Keras's defaults) and
        // dense table updates; the other line Keras's formula and table
        // updates. (Lazy updates, embkit's default, leave the mean square
        // of rows outside the batch as it is and reach a lower accuracy
        // here.)
        let train_config = |seed: u64, epochs: usize, optimizer: RmsPropConfig| {
            TrainConfig::new(Loss::BinaryCrossentropy { from_logits: false }, optimizer.into())
                .with_epochs(epochs)
                .with_batch_size(W7_BATCH)
                .with_metrics(vec![Metric::Accuracy])
                .with_seed(seed)
        };
        let modes = [
            (
                RmsPropConfig::pytorch()
                    .with_rho(0.9)
                    .with_epsilon(1e-7)
                    .with_table_updates(TableUpdates::Dense),
                Role::Embkit,
                "RMSprop, PyTorch formula as the reference script, dense table updates",
            ),
            (
                RmsPropConfig::new().with_table_updates(TableUpdates::Keras),
                Role::EmbkitAlt,
                "RMSprop, Keras formula and table updates",
            ),
        ];

        let mut records = Vec::new();
        for &t in self.threads {
            for (optimizer, role, label) in &modes {
                let optimizer = optimizer.clone().with_learning_rate(RMSPROP_LR);
                let (mut first, mut timed, mut accuracy) = (Vec::new(), Vec::new(), None);
                for run in 0..runs {
                    let seed = self.seed + run as u64;
                    let mut model = model_config.init(&mut StdRng::seed_from_u64(seed))?;
                    let mut timer = EpochTimer::default();
                    let history = model.fit(
                        Dataset::new(ids, targets.clone())?,
                        None,
                        &train_config(seed, epochs, optimizer.clone()),
                        &mut timer,
                    )?;
                    first.push(timer.seconds[0]);
                    timed.extend_from_slice(&timer.seconds[1..]);
                    let last = history.epochs.last();
                    accuracy = last.and_then(|e| e.metrics.get("accuracy").copied());
                }
                // Validation accuracy, untimed: the same training on the first 80%.
                let mut model = model_config.init(&mut StdRng::seed_from_u64(self.seed))?;
                let history = model.fit(
                    Dataset::new(ids, targets.clone())?,
                    None,
                    &train_config(self.seed, epochs, optimizer.clone()).with_validation_split(0.2),
                    &mut embkit::NoObserver,
                )?;
                let last = history.epochs.last();
                let val_accuracy = last.and_then(|e| e.val_metrics.get("accuracy").copied());
                let system = format!("embkit-{} Sequential::fit ({label})", version());
                let mut r = record(&system, *role, &work, t, 1, &timed);
                w7_extras(&mut r, n, &first, accuracy);
                r.insert("val_accuracy".into(), json!(val_accuracy));
                r.insert("samples".into(), json!(n));
                r.insert("label".into(), json!(label));
                records.push(r);
            }

            let (mut first, mut timed, mut accuracy) = (Vec::new(), Vec::new(), 0.0);
            for run in 0..runs {
                let seed = self.seed + run as u64;
                let (seconds, acc) = plain::train_w7(x, y, epochs, seed)?;
                first.push(seconds[0]);
                timed.extend_from_slice(&seconds[1..]);
                accuracy = acc;
            }
            let system = "baseline plain loop: hand-written W7 training (RMSprop, dense)";
            let mut r = record(system, Role::Baseline, &work, t, 1, &timed);
            w7_extras(&mut r, n, &first, Some(accuracy));
            r.insert("samples".into(), json!(n));
            records.push(r);
        }
        Ok(records)
    }
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn opt_label(opt: Opt) -> &'static str {
    match opt {
        Opt::Sgd => "SGD",
        Opt::Adam => "SparseAdam",
        Opt::Adagrad => "Adagrad",
    }
}

/// Adds the peak resident memory of a side to its records.
fn add_peaks(records: &mut [Map<String, Value>], peak: Option<f64>, reset: bool) {
    for r in records {
        r.insert("peak_rss_mb".into(), json!(peak));
        if !reset {
            r.insert("peak_rss_note".into(), json!("not reset: includes earlier workloads"));
        }
    }
}

/// The W7 fields besides seconds per epoch.
fn w7_extras(r: &mut Map<String, Value>, samples: usize, first: &[f64], accuracy: Option<f64>) {
    let median = r["median_s"].as_f64().unwrap_or(f64::NAN);
    let mut first = first.to_vec();
    first.sort_by(f64::total_cmp);
    r.insert("value".into(), json!(median));
    r.insert("samples_per_s".into(), json!(samples as f64 / median));
    r.insert("first_epoch_s".into(), json!(quantile(&first, 0.5)));
    r.insert("train_accuracy".into(), json!(accuracy));
}

/// Times each epoch of a `fit` (training only: no validation is given).
#[derive(Default)]
struct EpochTimer {
    start: Option<Instant>,
    seconds: Vec<f64>,
}

impl Observer for EpochTimer {
    fn epoch_begin(&mut self, _epoch: usize) {
        self.start = Some(Instant::now());
    }

    fn epoch_end(&mut self, _log: &EpochLog) {
        if let Some(start) = self.start.take() {
            self.seconds.push(start.elapsed().as_secs_f64());
        }
    }
}

// ---------------------------------------------------------------- the baseline

/// The plain-loop baseline: straightforward loops over slices, split over
/// threads with `std::thread::scope` (by output rows for gathers, by table
/// rows for updates, so no two threads write one row).
mod plain {
    use super::{Opt, DIM};
    use anyhow::Result;
    use embkit::Init;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use std::time::Instant;

    /// `out[i] = table[ids[i]]`.
    pub fn gather(table: &[f32], ids: &[u32], out: &mut [f32]) {
        for (o, &id) in out.chunks_exact_mut(DIM).zip(ids) {
            let s = id as usize * DIM;
            o.copy_from_slice(&table[s..s + DIM]);
        }
    }

    /// [`gather`] over `threads` contiguous parts of the ids.
    pub fn par_gather(threads: usize, table: &[f32], ids: &[u32], out: &mut [f32]) {
        if threads <= 1 {
            return gather(table, ids, out);
        }
        let per = ids.len().div_ceil(threads);
        std::thread::scope(|s| {
            for (ic, oc) in ids.chunks(per).zip(out.chunks_mut(per * DIM)) {
                s.spawn(move || gather(table, ic, oc));
            }
        });
    }

    /// Bag `b` of `bag` ids summed into `out[b]`.
    pub fn bag_sum(table: &[f32], ids: &[u32], bag: usize, out: &mut [f32]) {
        for (o, bag_ids) in out.chunks_exact_mut(DIM).zip(ids.chunks_exact(bag)) {
            let mut acc = [0f32; DIM];
            for &id in bag_ids {
                let s = id as usize * DIM;
                for (a, &x) in acc.iter_mut().zip(&table[s..s + DIM]) {
                    *a += x;
                }
            }
            o.copy_from_slice(&acc);
        }
    }

    /// [`bag_sum`] over `threads` contiguous parts of the bags.
    pub fn par_bag_sum(threads: usize, table: &[f32], ids: &[u32], bag: usize, out: &mut [f32]) {
        if threads <= 1 {
            return bag_sum(table, ids, bag, out);
        }
        let bags = out.len() / DIM;
        let per = bags.div_ceil(threads);
        std::thread::scope(|s| {
            for (ic, oc) in ids.chunks(per * bag).zip(out.chunks_mut(per * DIM)) {
                s.spawn(move || bag_sum(table, ic, bag, oc));
            }
        });
    }

    /// The optimizer state of a sparse step, and its scratch.
    pub struct SparseOpt {
        opt: Opt,
        /// Adagrad: the sum of squares; Adam: `m`.
        s1: Vec<f32>,
        /// Adam: `v`.
        s2: Vec<f32>,
        /// Per table row, its slot in `acc` during a step, else `u32::MAX`.
        slot: Vec<u32>,
        /// Per thread: the summed gradient rows and their (part-relative) rows.
        acc: Vec<Vec<f32>>,
        uniq: Vec<Vec<u32>>,
        step: i32,
    }

    /// The constants of one update.
    #[derive(Clone, Copy)]
    struct Consts {
        opt: Opt,
        lr: f32,
        b1: f32,
        b2: f32,
        eps: f32,
        step_size: f32,
    }

    impl SparseOpt {
        pub fn new(opt: Opt, rows: usize, max_ids: usize, max_threads: usize) -> Self {
            let (n1, n2, slots, acc) = match opt {
                Opt::Sgd => (0, 0, 0, 0),
                Opt::Adagrad => (rows * DIM, 0, rows, max_ids * DIM),
                Opt::Adam => (rows * DIM, rows * DIM, rows, max_ids * DIM),
            };
            Self {
                opt,
                s1: vec![0.0; n1],
                s2: vec![0.0; n2],
                slot: vec![u32::MAX; slots],
                acc: (0..max_threads).map(|_| vec![0.0; acc]).collect(),
                uniq: (0..max_threads).map(|_| Vec::with_capacity(max_ids.min(rows))).collect(),
                step: 0,
            }
        }

        /// One update of `table` from the upstream rows `g` (one per id).
        pub fn step(&mut self, threads: usize, table: &mut [f32], ids: &[u32], g: &[f32]) {
            self.step += 1;
            let (lr, b1, b2, eps) = match self.opt {
                Opt::Sgd => (super::SGD_LR, 0.0, 0.0, 0.0),
                Opt::Adagrad => (super::ADAGRAD_LR, 0.0, 0.0, 1e-10),
                Opt::Adam => (super::ADAM_LR, 0.9, 0.999, 1e-8),
            };
            let bc1 = 1.0 - 0.9f64.powi(self.step);
            let bc2 = 1.0 - 0.999f64.powi(self.step);
            let step_size = (f64::from(lr) * bc2.sqrt() / bc1) as f32;
            let c = Consts { opt: self.opt, lr, b1, b2, eps, step_size };
            let rows = table.len() / DIM;
            let split = rows.div_ceil(threads.max(1));
            if threads <= 1 {
                let (acc, uniq) = (&mut self.acc[0], &mut self.uniq[0]);
                work(c, 0, table, &mut self.s1, &mut self.s2, &mut self.slot, acc, uniq, ids, g);
                return;
            }
            let s1 = parts(&mut self.s1, split * DIM, threads);
            let s2 = parts(&mut self.s2, split * DIM, threads);
            let slot = parts(&mut self.slot, split, threads);
            std::thread::scope(|s| {
                let parts = table
                    .chunks_mut(split * DIM)
                    .zip(s1)
                    .zip(s2)
                    .zip(slot)
                    .zip(self.acc.iter_mut().zip(self.uniq.iter_mut()));
                for (k, ((((tp, s1p), s2p), slotp), (acc, uniq))) in parts.enumerate() {
                    s.spawn(move || work(c, k * split, tp, s1p, s2p, slotp, acc, uniq, ids, g));
                }
            });
        }
    }

    /// `v` in chunks of `n`, or `threads` empty slices if `v` is empty (an
    /// unused state).
    fn parts<T>(v: &mut [T], n: usize, threads: usize) -> Vec<&mut [T]> {
        if v.is_empty() {
            (0..threads).map(|_| &mut [][..]).collect()
        } else {
            v.chunks_mut(n).collect()
        }
    }

    /// The update of the table rows `lo..lo + tp.len() / DIM` (`tp` and the
    /// state slices hold only those rows).
    #[allow(clippy::too_many_arguments)]
    fn work(
        c: Consts,
        lo: usize,
        tp: &mut [f32],
        s1: &mut [f32],
        s2: &mut [f32],
        slot: &mut [u32],
        acc: &mut [f32],
        uniq: &mut Vec<u32>,
        ids: &[u32],
        g: &[f32],
    ) {
        let hi = lo + tp.len() / DIM;
        if c.opt == Opt::Sgd {
            // Fused: each occurrence steps its row straight from the upstream row.
            for (&id, gr) in ids.iter().zip(g.chunks_exact(DIM)) {
                let id = id as usize;
                if (lo..hi).contains(&id) {
                    let r = &mut tp[(id - lo) * DIM..(id - lo + 1) * DIM];
                    for (w, &x) in r.iter_mut().zip(gr) {
                        *w -= c.lr * x;
                    }
                }
            }
            return;
        }
        // Coalesce the occurrences of each row, in batch order.
        uniq.clear();
        for (&id, gr) in ids.iter().zip(g.chunks_exact(DIM)) {
            let id = id as usize;
            if !(lo..hi).contains(&id) {
                continue;
            }
            let r = id - lo;
            match slot[r] {
                u32::MAX => {
                    let k = uniq.len();
                    slot[r] = k as u32;
                    uniq.push(r as u32);
                    acc[k * DIM..(k + 1) * DIM].copy_from_slice(gr);
                }
                k => {
                    let a = &mut acc[k as usize * DIM..(k as usize + 1) * DIM];
                    for (a, &x) in a.iter_mut().zip(gr) {
                        *a += x;
                    }
                }
            }
        }
        for (k, &r) in uniq.iter().enumerate() {
            let r = r as usize;
            let gr = &acc[k * DIM..(k + 1) * DIM];
            let p = &mut tp[r * DIM..(r + 1) * DIM];
            let st = &mut s1[r * DIM..(r + 1) * DIM];
            match c.opt {
                Opt::Adagrad => {
                    for ((w, s), &x) in p.iter_mut().zip(st).zip(gr) {
                        *s += x * x;
                        *w -= c.lr * x / (s.sqrt() + c.eps);
                    }
                }
                _ => {
                    let v = &mut s2[r * DIM..(r + 1) * DIM];
                    for (((w, m), v), &x) in p.iter_mut().zip(st).zip(v).zip(gr) {
                        *m = c.b1 * *m + (1.0 - c.b1) * x;
                        *v = c.b2 * *v + (1.0 - c.b2) * x * x;
                        *w -= c.step_size * *m / (v.sqrt() + c.eps);
                    }
                }
            }
            slot[r] = u32::MAX;
        }
    }

    /// W7 by hand: `Embedding(10000, 8)` (uniform ±0.05) → flatten →
    /// `Dense(1)` (Glorot uniform, bias 0) → sigmoid, binary cross-entropy
    /// from the logit, lazy RMSprop (Keras's formula) on the rows of the
    /// batch and on the dense weights, batches of 32 reshuffled every
    /// epoch. Returns the seconds of each epoch and the last epoch's
    /// training accuracy.
    pub fn train_w7(x: &[u32], y: &[f32], epochs: usize, seed: u64) -> Result<(Vec<f64>, f64)> {
        use super::{RMSPROP_LR, W7_BATCH, W7_DIM, W7_SEQ, W7_VOCAB};
        const FEATURES: usize = W7_SEQ * W7_DIM;
        let (rho, eps) = (0.9f32, 1e-7f32);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut emb = Init::Uniform { bound: 0.05 }.sample(W7_VOCAB, W7_DIM, &mut rng)?;
        let mut kernel = Init::GlorotUniform.sample(FEATURES, 1, &mut rng)?;
        let mut bias = 0.0f32;
        let (mut v_emb, mut v_kernel, mut v_bias) =
            (vec![0.0f32; W7_VOCAB * W7_DIM], vec![0.0f32; FEATURES], 0.0f32);
        let n = y.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut slot = vec![u32::MAX; W7_VOCAB];
        let mut touched: Vec<u32> = Vec::new();
        let mut g_emb: Vec<f32> = Vec::new();
        // PyTorch's RMSprop (eps outside the root), as the headline.
        let rms = |w: &mut f32, v: &mut f32, g: f32| {
            *v = rho * *v + (1.0 - rho) * g * g;
            *w -= RMSPROP_LR * (g / (v.sqrt() + eps));
        };
        let (mut seconds, mut accuracy) = (Vec::new(), 0.0);
        for _ in 0..epochs {
            let start = Instant::now();
            order.shuffle(&mut rng);
            let mut correct = 0usize;
            for batch in order.chunks(W7_BATCH) {
                let mut g_kernel = [0.0f32; FEATURES];
                let mut g_bias = 0.0f32;
                touched.clear();
                g_emb.clear();
                for &s in batch {
                    let xs = &x[s * W7_SEQ..(s + 1) * W7_SEQ];
                    let mut z = bias;
                    for (t, &id) in xs.iter().enumerate() {
                        let row = &emb[id as usize * W7_DIM..(id as usize + 1) * W7_DIM];
                        let k = &kernel[t * W7_DIM..(t + 1) * W7_DIM];
                        z += row.iter().zip(k).map(|(a, b)| a * b).sum::<f32>();
                    }
                    let p = 1.0 / (1.0 + (-z).exp());
                    correct += usize::from((p > 0.5) == (y[s] > 0.5));
                    let dz = (p - y[s]) / batch.len() as f32;
                    g_bias += dz;
                    for (t, &id) in xs.iter().enumerate() {
                        let id = id as usize;
                        let row = &emb[id * W7_DIM..(id + 1) * W7_DIM];
                        let gk = &mut g_kernel[t * W7_DIM..(t + 1) * W7_DIM];
                        for (g, &e) in gk.iter_mut().zip(row) {
                            *g += dz * e;
                        }
                        if slot[id] == u32::MAX {
                            slot[id] = touched.len() as u32;
                            touched.push(id as u32);
                            g_emb.resize(g_emb.len() + W7_DIM, 0.0);
                        }
                        let k = slot[id] as usize;
                        let ge = &mut g_emb[k * W7_DIM..(k + 1) * W7_DIM];
                        for (g, &w) in ge.iter_mut().zip(&kernel[t * W7_DIM..(t + 1) * W7_DIM]) {
                            *g += dz * w;
                        }
                    }
                }
                // Dense updates: every row's mean square decays (a zero
                // gradient elsewhere), then the batch's rows step.
                v_emb.iter_mut().for_each(|v| *v *= rho);
                for (k, &id) in touched.iter().enumerate() {
                    let id = id as usize;
                    let rows = id * W7_DIM..(id + 1) * W7_DIM;
                    let ge = &g_emb[k * W7_DIM..(k + 1) * W7_DIM];
                    for ((w, v), &g) in emb[rows.clone()].iter_mut().zip(&mut v_emb[rows]).zip(ge) {
                        *v += (1.0 - rho) * g * g;
                        *w -= RMSPROP_LR * (g / (v.sqrt() + eps));
                    }
                    slot[id] = u32::MAX;
                }
                for ((w, v), &g) in kernel.iter_mut().zip(&mut v_kernel).zip(&g_kernel) {
                    rms(w, v, g);
                }
                rms(&mut bias, &mut v_bias, g_bias);
            }
            accuracy = correct as f64 / n as f64;
            seconds.push(start.elapsed().as_secs_f64());
        }
        Ok((seconds, accuracy))
    }
}

// ---------------------------------------------------------------- anchors

/// The peer families of ANCHORS.md, in table order.
const FAMILIES: [&str; 5] = ["limit", "torch", "keras/tf", "candle", "burn"];

/// The best value per (workload key, threads, family) in ANCHORS.md, and
/// the variant that reached it.
#[derive(Debug, Default)]
struct Anchors {
    source: Option<PathBuf>,
    best: BTreeMap<(String, usize, &'static str), (f64, String)>,
}

impl Anchors {
    /// The best value of `family` at `threads`. For the limit program a
    /// run with fewer threads counts too (its W3 has only 1 thread), as
    /// ANCHORS.md compares.
    fn get(&self, key: &str, threads: usize, family: &str) -> Option<&(f64, String)> {
        if family == "limit" {
            (1..=threads)
                .rev()
                .filter_map(|t| self.best.get(&(key.to_string(), t, "limit")))
                .max_by(|a, b| a.0.total_cmp(&b.0))
        } else {
            let family = FAMILIES.iter().find(|&&f| f == family)?;
            self.best.get(&(key.to_string(), threads, family))
        }
    }
}

fn load_anchors(args: &Args) -> Anchors {
    let candidates: Vec<PathBuf> = match (&args.anchors, &args.data) {
        (Some(path), _) => vec![path.clone()],
        (None, Some(data)) => {
            vec![data.join("..").join("ANCHORS.md"), PathBuf::from("../shared/bench/ANCHORS.md")]
        }
        (None, None) => vec![PathBuf::from("../shared/bench/ANCHORS.md")],
    };
    for path in candidates {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut anchors = parse_anchors(&text);
            if anchors.best.is_empty() {
                eprintln!("note: no anchor numbers parsed from {}; none shown", path.display());
                return Anchors::default();
            }
            anchors.source = Some(path);
            return anchors;
        }
    }
    eprintln!("note: ANCHORS.md not found (see --anchors); no anchor numbers shown");
    Anchors::default()
}

/// Reads the per-workload tables of ANCHORS.md (`## W1 …` sections with a
/// `threads` column and a `lookups/s`, `calls/s` or `samples/s` column).
fn parse_anchors(text: &str) -> Anchors {
    let mut anchors = Anchors::default();
    let mut key: Option<String> = None;
    let mut columns: Option<(usize, usize)> = None;
    let mut header_seen = false;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            key = section_key(heading);
            columns = None;
            header_seen = false;
            continue;
        }
        let Some(key) = &key else { continue };
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if !header_seen {
            header_seen = true;
            let threads = cells.iter().position(|c| *c == "threads");
            let value =
                cells.iter().position(|c| matches!(*c, "lookups/s" | "calls/s" | "samples/s"));
            columns = threads.zip(value);
            continue;
        }
        let Some((ti, vi)) = columns else { continue };
        if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':'))) {
            continue;
        }
        let (Some(system), Some(threads), Some(value)) =
            (cells.first(), cells.get(ti), cells.get(vi))
        else {
            continue;
        };
        let (Some(family), Ok(threads), Some(value)) =
            (family_of(system), threads.parse::<usize>(), parse_rate(value))
        else {
            continue;
        };
        let entry =
            anchors.best.entry((key.clone(), threads, family)).or_insert((0.0, String::new()));
        if value > entry.0 {
            *entry = (value, (*system).to_string());
        }
    }
    anchors
}

/// `W1 gather-uniform` → `W1`; `W6 sparse Adam step` → `W6 adam`.
fn section_key(heading: &str) -> Option<String> {
    let first = heading.split_whitespace().next()?;
    let is_workload = first.len() == 2
        && first.starts_with('W')
        && first[1..].chars().all(|c| c.is_ascii_digit());
    if !is_workload {
        return None;
    }
    let lower = heading.to_lowercase();
    Some(match first {
        "W6" if lower.contains("adagrad") => "W6 adagrad".into(),
        "W6" if lower.contains("adam") => "W6 adam".into(),
        "W6" => return None,
        w => w.to_string(),
    })
}

fn family_of(system: &str) -> Option<&'static str> {
    let s = system.to_lowercase();
    if s.starts_with("limit") {
        Some("limit")
    } else if s.starts_with("torch") {
        Some("torch")
    } else if s.starts_with("keras") || s.starts_with("tf-") {
        Some("keras/tf")
    } else if s.starts_with("candle") {
        Some("candle")
    } else if s.starts_with("burn") {
        Some("burn")
    } else {
        None
    }
}

/// `40.36 M/s` → 40.36e6; `201.0 k/s` → 201e3.
fn parse_rate(cell: &str) -> Option<f64> {
    let mut parts = cell.split_whitespace();
    let number: f64 = parts.next()?.parse().ok()?;
    let scale = match parts.next()? {
        "/s" => 1.0,
        "k/s" => 1e3,
        "M/s" => 1e6,
        "G/s" => 1e9,
        _ => return None,
    };
    Some(number * scale)
}

// ---------------------------------------------------------------- report

/// `W1`, or `W6 adam` for records with an optimizer.
fn key_of(r: &Map<String, Value>) -> String {
    let workload = r.get("workload").and_then(Value::as_str).unwrap_or("?");
    match r.get("optimizer").and_then(Value::as_str) {
        Some(opt) => format!("{workload} {opt}"),
        None => workload.to_string(),
    }
}

/// The higher-is-better number of a record: samples/s for W7, else its
/// value.
fn rate_of(r: &Map<String, Value>) -> Option<f64> {
    r.get("samples_per_s").and_then(Value::as_f64).or_else(|| r.get("value")?.as_f64())
}

fn threads_of(r: &Map<String, Value>) -> usize {
    r.get("threads").and_then(Value::as_u64).unwrap_or(1) as usize
}

/// The first record of `role` for `key` at `threads`; for the limit
/// program, the best of its variants at `threads` or fewer (its W3 has one
/// thread only), and for PyTorch the best at `threads`, as ANCHORS.md
/// compares.
fn find<'a>(
    records: &'a [Map<String, Value>],
    key: &str,
    threads: usize,
    role: Role,
) -> Option<&'a Map<String, Value>> {
    let mut matching = records.iter().filter(|r| Role::of(r) == role && key_of(r) == key);
    if role == Role::LimitHere {
        matching
            .filter(|r| threads_of(r) <= threads)
            .max_by(|a, b| rate_of(a).unwrap_or(0.0).total_cmp(&rate_of(b).unwrap_or(0.0)))
    } else if role == Role::TorchHere {
        matching
            .filter(|r| threads_of(r) == threads)
            .max_by(|a, b| rate_of(a).unwrap_or(0.0).total_cmp(&rate_of(b).unwrap_or(0.0)))
    } else {
        matching.find(|r| threads_of(r) == threads)
    }
}

/// Adds to each embkit record its ratios to the baseline measured with it
/// and to the PyTorch anchor.
fn annotate(records: &mut [Map<String, Value>], anchors: &Anchors) {
    let snapshot = records.to_vec();
    for r in records.iter_mut() {
        let role = Role::of(r);
        if !matches!(role, Role::Embkit | Role::EmbkitAlt) {
            continue;
        }
        let (key, threads) = (key_of(r), threads_of(r));
        let Some(rate) = rate_of(r) else { continue };
        if let Some(base) = find(&snapshot, &key, threads, Role::Baseline).and_then(rate_of) {
            r.insert("baseline_value".into(), json!(base));
            r.insert("ratio_baseline".into(), json!(rate / base));
        }
        if let Some((torch, variant)) = anchors.get(&key, threads, "torch") {
            r.insert("torch_anchor_value".into(), json!(torch));
            r.insert("torch_anchor_variant".into(), json!(variant));
            r.insert("ratio_torch".into(), json!(rate / torch));
        }
    }
}

/// The workload keys in report order.
const KEYS: [&str; 8] = ["W1", "W2", "W3", "W4", "W5", "W6 adam", "W6 adagrad", "W7"];

fn unit_of(key: &str) -> &'static str {
    match key {
        "W3" => "calls/s",
        "W7" => "samples/s",
        _ => "lookups/s",
    }
}

/// The comparison as two Markdown tables: this run (embkit, the baseline,
/// the limit program here if read with `--replot`, peak memory), then the
/// anchors of ANCHORS.md next to embkit's ratios.
fn summary_table(records: &[Map<String, Value>], anchors: &Anchors) -> Vec<String> {
    let mut records = records.to_vec();
    annotate(&mut records, anchors);
    let here = records.iter().any(|r| Role::of(r) == Role::LimitHere);
    let torch_here = records.iter().any(|r| Role::of(r) == Role::TorchHere);
    let mut threads: Vec<usize> = records.iter().map(threads_of).collect();
    threads.sort_unstable();
    threads.dedup();
    let rate = |v: Option<f64>| v.map_or("-".to_string(), fmt_rate);
    let ratio = |a: Option<f64>, b: Option<f64>| {
        a.zip(b).map_or("-".to_string(), |(a, b)| format!("{:.2}", a / b))
    };
    let header = |cells: &[&str]| {
        vec![format!("| {} |", cells.join(" | ")), format!("|{}", "---|".repeat(cells.len()))]
    };

    let mut head = vec!["workload", "thr", "embkit", "baseline", "embkit ÷ baseline"];
    if here {
        head.extend(["limit (here)", "embkit ÷ limit (here)"]);
    }
    if torch_here {
        head.extend(["torch (here)", "embkit ÷ torch (here)"]);
    }
    head.push("peak RSS embkit / baseline");
    let mut lines = vec!["This machine, one run:".to_string(), String::new()];
    lines.extend(header(&head));
    let mut rows_b = Vec::new();
    for key in KEYS {
        for &t in &threads {
            let embkit = find(&records, key, t, Role::Embkit);
            let baseline = find(&records, key, t, Role::Baseline);
            if embkit.is_none() && baseline.is_none() {
                continue;
            }
            let label = format!("{key} ({})", unit_of(key));
            let e_rate = embkit.and_then(rate_of);
            let b_rate = baseline.and_then(rate_of);
            let l_rate = find(&records, key, t, Role::LimitHere).and_then(rate_of);
            let t_rate = find(&records, key, t, Role::TorchHere).and_then(rate_of);
            let mut row = vec![label.clone(), t.to_string(), rate(e_rate), rate(b_rate)];
            row.push(ratio(e_rate, b_rate));
            if here {
                row.extend([rate(l_rate), ratio(e_rate, l_rate)]);
            }
            if torch_here {
                row.extend([rate(t_rate), ratio(e_rate, t_rate)]);
            }
            let peak = |r: Option<&Map<String, Value>>| {
                r.and_then(|r| r.get("peak_rss_mb")?.as_f64()).map(|mb| format!("{mb:.0} MB"))
            };
            row.push(match (peak(embkit), peak(baseline)) {
                (Some(e), Some(b)) => format!("{e} / {b}"),
                _ => "-".into(),
            });
            lines.push(format!("| {} |", row.join(" | ")));
            let alts = records.iter().filter(|r| {
                Role::of(r) == Role::EmbkitAlt && key_of(r) == key && threads_of(r) == t
            });
            for alt in alts {
                let a_rate = rate_of(alt);
                let mut row = vec![
                    format!("{key}: {}", alt.get("label").and_then(Value::as_str).unwrap_or("alt")),
                    t.to_string(),
                    rate(a_rate),
                    rate(b_rate),
                    ratio(a_rate, b_rate),
                ];
                if here {
                    row.extend([rate(l_rate), ratio(a_rate, l_rate)]);
                }
                if torch_here {
                    row.extend([rate(t_rate), ratio(a_rate, t_rate)]);
                }
                row.push("-".into());
                lines.push(format!("| {} |", row.join(" | ")));
            }

            let limit = anchors.get(key, t, "limit").map(|a| a.0);
            let torch = anchors.get(key, t, "torch").map(|a| a.0);
            let mut row = vec![label, t.to_string()];
            row.extend(FAMILIES.iter().map(|f| rate(anchors.get(key, t, f).map(|a| a.0))));
            row.push(ratio(torch, limit));
            if here {
                row.push(ratio(e_rate, l_rate));
            }
            row.push(ratio(e_rate, torch));
            rows_b.push(format!("| {} |", row.join(" | ")));
        }
    }
    lines.push(String::new());
    lines.push(
        "embkit and the baseline split their work over thr threads (W3 and W7: one thread; \
         their calls are too small to split)."
            .into(),
    );
    lines.push(String::new());
    let Some(source) = &anchors.source else {
        lines.push("No anchors read (see --anchors).".into());
        return lines;
    };
    lines.push(format!(
        "Anchors (†, best variant per family, from {}: another machine and day):",
        source.display()
    ));
    lines.push(String::new());
    let mut head = vec!["workload", "thr", "limit †", "torch †", "keras/tf †", "candle †"];
    head.extend(["burn †", "torch † ÷ limit †"]);
    if here {
        head.push("embkit ÷ limit (here)");
    }
    head.push("embkit ÷ torch † (across machines)");
    lines.extend(header(&head));
    lines.extend(rows_b);
    lines
}

/// Lookups/s of the lookup workloads, per system, 1 panel per thread count.
fn draw_plot(records: &[Map<String, Value>], anchors: &Anchors, path: &Path) -> Result<()> {
    let keys = ["W1", "W2", "W4", "W5", "W6 adam", "W6 adagrad"];
    let mut threads: Vec<usize> = records.iter().map(threads_of).collect();
    threads.sort_unstable();
    threads.dedup();
    let here = records.iter().any(|r| Role::of(r) == Role::LimitHere);
    let torch_here = records.iter().any(|r| Role::of(r) == Role::TorchHere);
    let mut series: Vec<String> = vec!["embkit".into(), "baseline (plain loop)".into()];
    if here {
        series.push("limit (here)".into());
    }
    if torch_here {
        series.push("torch (here)".into());
    }
    series.extend(FAMILIES.iter().map(|f| format!("{f} †")));
    let panels: Vec<plot::BarPanel> = threads
        .iter()
        .map(|&t| {
            let mut values: Vec<Vec<Option<f64>>> = Vec::new();
            let from =
                |role| keys.iter().map(|k| find(records, k, t, role).and_then(rate_of)).collect();
            values.push(from(Role::Embkit));
            values.push(from(Role::Baseline));
            if here {
                values.push(from(Role::LimitHere));
            }
            if torch_here {
                values.push(from(Role::TorchHere));
            }
            for family in FAMILIES {
                values.push(keys.iter().map(|k| anchors.get(k, t, family).map(|a| a.0)).collect());
            }
            plot::BarPanel { title: format!("{t} thread{}", if t == 1 { "" } else { "s" }), values }
        })
        .collect();
    let groups: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    plot::grouped_bars(
        path,
        "embkit, a plain loop in the same run, and peers († ANCHORS.md, another machine)",
        "lookups/s (log scale)",
        &groups,
        &series,
        &panels,
    )
}

/// Reads JSON lines (one record per line; other lines are skipped).
fn read_records(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| match serde_json::from_str::<Value>(line.trim()) {
            Ok(Value::Object(map)) if map.contains_key("workload") => Some(map),
            _ => None,
        })
        .collect())
}

/// `40363000` → `40.36 M/s`.
fn fmt_rate(v: f64) -> String {
    let (x, prefix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{x:.2} {prefix}/s")
}

fn fmt_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.2} µs", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline's updates are the library's (SparseAdam, Adagrad, SGD),
    /// up to rounding, on a small table with repeated ids.
    #[test]
    fn baseline_steps_match_embkit() -> Result<()> {
        let rows = 50;
        let ids: Vec<u32> = (0..400).map(|i| (i * 7 % 37) as u32).collect();
        let g = normal_table(ids.len(), DIM, 3)?;
        for opt in [Opt::Sgd, Opt::Adam, Opt::Adagrad] {
            for threads in [1, 2] {
                let config = EmbeddingConfig::new(rows, DIM).with_init(Init::Normal { std: 1.0 });
                let mut table = config.init(&mut StdRng::seed_from_u64(9))?;
                let mut optimizer = opt.config().build()?;
                let mut plain_table = normal_table(rows, DIM, 9)?;
                assert_eq!(table.weights(), &plain_table[..]);
                let mut state = plain::SparseOpt::new(opt, rows, ids.len(), 2);
                for step in 0..4 {
                    if step % 2 == 0 {
                        table.backward(&ids, &g)?;
                        table.step(optimizer.as_mut(), "embedding")?;
                    } else {
                        table.backward_step(&ids, &g, optimizer.as_mut(), "embedding")?;
                    }
                    optimizer.finish_step();
                    state.step(threads, &mut plain_table, &ids, &g);
                }
                let diff = table
                    .weights()
                    .iter()
                    .zip(&plain_table)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(diff < 1e-4, "{opt:?}, {threads} threads: differs by {diff}");
            }
        }
        Ok(())
    }

    #[test]
    fn gathers_and_bags_split_over_threads() {
        let table: Vec<f32> = (0..20 * DIM).map(|i| i as f32).collect();
        let ids: Vec<u32> = (0..30).map(|i| (i * 3 % 20) as u32).collect();
        let mut one = vec![0.0; ids.len() * DIM];
        let mut two = vec![0.0; ids.len() * DIM];
        plain::par_gather(1, &table, &ids, &mut one);
        plain::par_gather(2, &table, &ids, &mut two);
        assert_eq!(one, two);
        assert_eq!(&one[DIM..2 * DIM], &table[3 * DIM..4 * DIM]);
        let mut one = vec![0.0; 6 * DIM];
        let mut two = vec![0.0; 6 * DIM];
        plain::par_bag_sum(1, &table, &ids, 5, &mut one);
        plain::par_bag_sum(2, &table, &ids, 5, &mut two);
        assert_eq!(one, two);
        // Bag 0 holds ids 0, 3, 6, 9, 12; element 0 of row r is r * DIM.
        assert_eq!(one[0], 30.0 * DIM as f32);
    }

    #[test]
    fn zipf_ids_favour_low_ranks() {
        let ids = zipf_ids(&mut StdRng::seed_from_u64(2), 1_000_000, ZIPF_S, 20_000);
        let share0 = ids.iter().filter(|&&id| id == 0).count() as f64 / ids.len() as f64;
        // gen_data.py's sample: 9.5% of the lookups hit id 0.
        assert!((0.08..0.11).contains(&share0), "{share0}");
        assert!(ids.iter().all(|&id| id < 1_000_000));
    }

    #[test]
    fn anchors_are_parsed_per_workload_family_and_threads() {
        let text = "\
## Summary\n\
| workload | threads | torch |\n|---|---|---|\n| W1 | 1 | 40.36 M/s |\n\
## W1 gather-uniform\n\
| system | threads | median time | lookups/s | GB/s |\n\
|---|---|---|---|---|\n\
| limit gather +prefetch | 1 | 2.49 ms | 82.42 M/s | 42.2 |\n\
| torch-2.15.0 nn.Embedding | 1 | 24.97 ms | 8.22 M/s | 4.2 |\n\
| torch-2.15.0 index_select(out=) preallocated | 1 | 5.07 ms | 40.36 M/s | 20.7 |\n\
## W6 sparse Adagrad step\n\
| system | threads | median time | lookups/s |\n|---|---|---|---|\n\
| torch-2.15.0 Embedding(sparse=True)+Adagrad | 2 | 137.25 ms | 1.49 M/s |\n\
## W7 end-to-end train (seconds/epoch)\n\
| system | threads | median time | samples/s |\n|---|---|---|---|\n\
| keras-3.15.1 fit (tf-2.21.0) | 1 | 516.81 ms | 48.4 k/s |\n";
        let a = parse_anchors(text);
        let (v, variant) = a.get("W1", 1, "torch").expect("W1 torch");
        assert_eq!(
            (*v, variant.as_str()),
            (40.36e6, "torch-2.15.0 index_select(out=) preallocated")
        );
        assert_eq!(a.get("W1", 2, "limit").map(|x| x.0), Some(82.42e6)); // fewer threads count
        assert_eq!(a.get("W6 adagrad", 2, "torch").map(|x| x.0), Some(1.49e6));
        assert_eq!(a.get("W7", 1, "keras/tf").map(|x| x.0), Some(48.4e3));
        assert!(a.get("W1", 2, "torch").is_none());
        assert_eq!(a.best.len(), 4);
    }

    #[test]
    fn the_shared_anchors_parse_if_present() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/ANCHORS.md");
        if let Ok(text) = std::fs::read_to_string(path) {
            let a = parse_anchors(&text);
            for key in KEYS {
                assert!(a.get(key, 1, "torch").is_some(), "{key}");
            }
        }
    }
}
