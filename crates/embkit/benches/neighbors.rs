//! Exact top-k: `query::nearest_neighbors` (one query, norms computed as
//! it goes, one thread) and `query::ExactIndex::search` (norms computed
//! once; one or more threads) over a whole table.
//!
//! Cases are named by their parameters, `rows=…/dim=…/k=…[/threads=…]`;
//! throughput is the bytes of the table read per query (`rows · dim · 4`).
//!
//! Run with `cargo bench -p embkit --bench neighbors`, or one group with
//! `cargo bench -p embkit --bench neighbors -- exact_index`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use embkit::query::{nearest_neighbors, ExactIndex, Similarity};
use embkit::{Init, Threads};
use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;

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
    for (rows, dim, k) in INDEX_CASES {
        let values = table(rows, dim);
        let query = values.row(rows / 2).to_vec();
        group.throughput(Throughput::Bytes((rows * dim * 4) as u64));
        for similarity in Similarity::ALL {
            let index = ExactIndex::new(values.view(), similarity, Threads::available());
            for threads in [1, 2] {
                let threads = Threads::new(threads).expect("at least 1");
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

fn main() {
    let mut c = Criterion::default().configure_from_args();
    neighbors(&mut c);
    exact_index(&mut c);
    c.final_summary();
}
