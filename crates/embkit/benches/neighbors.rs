//! Exact top-k by cosine similarity: `query::nearest_neighbors` over a
//! whole table.
//!
//! Cases are named by their parameters, `rows=…/dim=…/k=…`; throughput is
//! the bytes of the table read per query (`rows · dim · 4`).
//!
//! Run with `cargo bench -p embkit --bench neighbors`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use embkit::query::nearest_neighbors;
use embkit::Init;
use ndarray::ArrayView2;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// `(rows, dim, k)`.
const CASES: [(usize, usize, usize); 3] = [(10_000, 64, 10), (100_000, 64, 10), (100_000, 64, 100)];

fn neighbors(c: &mut Criterion) {
    let mut group = c.benchmark_group("nearest_neighbors");
    for (rows, dim, k) in CASES {
        let mut rng = StdRng::seed_from_u64(42);
        let values = Init::Normal { std: 1.0 }.sample(rows, dim, &mut rng).expect("valid");
        let table = ArrayView2::from_shape((rows, dim), &values).expect("rows * dim values");
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

fn main() {
    let mut c = Criterion::default().configure_from_args();
    neighbors(&mut c);
    c.final_summary();
}
