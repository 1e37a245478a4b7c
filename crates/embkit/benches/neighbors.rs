//! Exact top-k: `query::nearest_neighbors` (one query, norms computed as
//! it goes, one thread), `query::nearest_neighbors_by` (the full f32 scan,
//! `…/full_scan`, row norms computed as it goes) and
//! `query::ExactIndex::search` (row norms and, on large tables, 8-bit rows
//! for a bounded first pass computed once) over a whole table, on one or
//! more threads.
//!
//! Cases are named by their parameters, `rows=…/dim=…/k=…[/threads=…]`;
//! throughput is the bytes of the table read per query (`rows · dim · 4`).
//! The index cases use Gaussian rows, except
//! `exact_index/cosine/clustered/…` (rows as for the `hnsw` group, one
//! held-out query), which shows how the first pass's bounds prune when
//! the scores bunch up.
//!
//! The `hnsw` group builds an [`HnswIndex`] over clustered rows (1,000
//! centres, noise half their spread) and over Gaussian rows with no
//! structure (the hardest case), `EMBKIT_BENCH_HNSW_ROWS` of them (100,000
//! by default, 64 values), prints the build time and the recall@10 of 200
//! held-out queries against the exact search to stderr, and times one
//! query by the index and by the exact scan.
//!
//! Run with `cargo bench -p embkit --bench neighbors`, or one group with
//! `cargo bench -p embkit --bench neighbors -- exact_index`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use std::time::Instant;

use embkit::query::{
    nearest_neighbors, nearest_neighbors_by, ExactIndex, HnswConfig, HnswIndex, Similarity,
};
use embkit::{Init, Threads};
use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// `(rows, dim, k)`.
const CASES: [(usize, usize, usize); 3] = [(10_000, 64, 10), (100_000, 64, 10), (100_000, 64, 100)];

/// `(rows, dim, k)` for the index, each at 1 and 2 threads.
const INDEX_CASES: [(usize, usize, usize); 2] = [(100_000, 64, 10), (1_000_000, 64, 10)];

fn table(rows: usize, dim: usize) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(42);
    let values = Init::Normal { std: 1.0 }.sample(rows, dim, &mut rng).expect("valid");
    Array2::from_shape_vec((rows, dim), values).expect("rows * dim values")
}

fn neighbors(c: &mut Criterion) {
    let mut group = c.benchmark_group("nearest_neighbors");
    for (rows, dim, k) in CASES {
        let values = table(rows, dim);
        let table: ArrayView2<'_, f32> = values.view();
        let query = table.row(rows / 2).to_vec();
        group.throughput(Throughput::Bytes((rows * dim * 4) as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("rows={rows}/dim={dim}/k={k}")),
            |b| {
                b.iter(|| {
                    black_box(nearest_neighbors(table, black_box(&query), k, None).expect("valid"))
                })
            },
        );
    }
    group.finish();
}

fn exact_index(c: &mut Criterion) {
    let mut group = c.benchmark_group("exact_index");
    group.sample_size(20);
    // Clustered rows (as for the HNSW group), by cosine: the 8-bit first
    // pass prunes by bounds, which depend on how the scores spread.
    let (rows, dim, k) = (1_000_000, 64, 10);
    let name = format!("cosine/clustered/rows={rows}/dim={dim}/k={k}");
    if c_filter_matches(&format!("exact_index/{name}")) {
        let values = rows_for_hnsw(rows + 1, dim, true, 7);
        let table = values.slice(ndarray::s![..rows, ..]);
        let query = values.row(rows).to_vec();
        let index = ExactIndex::new(table, Similarity::Cosine, Threads::available());
        group.throughput(Throughput::Bytes((rows * dim * 4) as u64));
        for threads in [1, 2] {
            let threads = Threads::new(threads).expect("at least 1");
            group.bench_function(
                BenchmarkId::from_parameter(format!("{name}/threads={threads}")),
                |b| {
                    b.iter(|| {
                        black_box(index.search(black_box(&query), k, &[], threads).expect("valid"))
                    })
                },
            );
        }
    }
    for (rows, dim, k) in INDEX_CASES {
        let values = table(rows, dim);
        let query = values.row(rows / 2).to_vec();
        group.throughput(Throughput::Bytes((rows * dim * 4) as u64));
        for similarity in Similarity::ALL {
            let index = ExactIndex::new(values.view(), similarity, Threads::available());
            for threads in [1, 2] {
                let threads = Threads::new(threads).expect("at least 1");
                // The free function: row norms computed as it goes.
                group.bench_function(
                    BenchmarkId::from_parameter(format!(
                        "{similarity}/rows={rows}/dim={dim}/k={k}/threads={threads}/full_scan"
                    )),
                    |b| {
                        b.iter(|| {
                            black_box(
                                nearest_neighbors_by(
                                    values.view(),
                                    black_box(&query),
                                    k,
                                    &[],
                                    similarity,
                                    threads,
                                )
                                .expect("valid"),
                            )
                        })
                    },
                );
                group.bench_function(
                    BenchmarkId::from_parameter(format!(
                        "{similarity}/rows={rows}/dim={dim}/k={k}/threads={threads}"
                    )),
                    |b| {
                        b.iter(|| {
                            black_box(
                                index.search(black_box(&query), k, &[], threads).expect("valid"),
                            )
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

/// `rows` rows of `dim` values: around 1,000 random centres with noise of
/// half their spread (`clusters`), or plain Gaussian; seeded.
fn rows_for_hnsw(rows: usize, dim: usize, clusters: bool, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).expect("valid");
    let centres: Vec<f32> = (0..1000 * dim).map(|_| normal.sample(&mut rng)).collect();
    let mut table = Array2::zeros((rows, dim));
    for mut row in table.rows_mut() {
        let c = rng.random_range(0..1000);
        for (j, x) in row.iter_mut().enumerate() {
            let noise = normal.sample(&mut rng);
            *x = if clusters { centres[c * dim + j] + noise / 2.0 } else { noise };
        }
    }
    table
}

fn hnsw(c: &mut Criterion) {
    let rows: usize = std::env::var("EMBKIT_BENCH_HNSW_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let (dim, k, queries) = (64, 10, 200);
    let mut group = c.benchmark_group("hnsw");
    for (data, clusters) in [("clustered", true), ("gaussian", false)] {
        let all = rows_for_hnsw(rows + queries, dim, clusters, 7);
        let table = all.slice(ndarray::s![..rows, ..]);
        let held_out = all.slice(ndarray::s![rows.., ..]);
        for similarity in [Similarity::Cosine, Similarity::Euclidean, Similarity::Dot] {
            let name = format!("{similarity}/{data}/rows={rows}/dim={dim}/k={k}");
            if !c_filter_matches(&format!("hnsw/{name}")) {
                continue;
            }
            let start = Instant::now();
            let index = HnswIndex::build(table, similarity, &HnswConfig::new()).expect("valid");
            let build = start.elapsed();
            let exact = index.exact();
            let truth = exact.search_batch(held_out, k, &[], Threads::available()).expect("ok");
            for ef in [16, 32, 64, 128, 256, 1024] {
                let found =
                    index.search_batch(held_out, k, ef, &[], Threads::single()).expect("ok");
                let hits: usize = found
                    .iter()
                    .zip(&truth)
                    .map(|(f, t)| f.iter().filter(|n| t.iter().any(|e| e.id == n.id)).count())
                    .sum();
                eprintln!(
                    "hnsw/{name}: m=16 ef_construction=200 build {:.1} s; ef={ef}: recall@{k} {:.4}",
                    build.as_secs_f64(),
                    hits as f64 / (queries * k) as f64
                );
            }
            let query = held_out.row(0).to_vec();
            for ef in [32, 64, 128] {
                group.bench_function(BenchmarkId::from_parameter(format!("{name}/ef={ef}")), |b| {
                    b.iter(|| {
                        black_box(index.search(black_box(&query), k, ef, &[]).expect("valid"))
                    })
                });
            }
            group.bench_function(BenchmarkId::from_parameter(format!("{name}/exact")), |b| {
                b.iter(|| {
                    black_box(
                        exact.search(black_box(&query), k, &[], Threads::single()).expect("ok"),
                    )
                })
            });
        }
    }
    group.finish();
}

/// Whether `name` contains the command line's filter (the first free
/// argument): an index is only built for cases that will run. Give a
/// plain prefix such as `hnsw/cosine/clustered`, not a regex.
fn c_filter_matches(name: &str) -> bool {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    filter.is_none_or(|f| name.contains(&f))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    neighbors(&mut c);
    exact_index(&mut c);
    hnsw(&mut c);
    c.final_summary();
}
