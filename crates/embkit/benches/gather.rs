//! Embedding lookups: `Embedding::forward_into` (a reused output buffer)
//! and `Embedding::forward` (a new array per call).
//!
//! Cases are named by their parameters, `rows=…/dim=…/ids=…`; throughput is
//! the bytes moved per call, rows read plus rows written
//! (`2 · ids · dim · 4`), so reports read as bandwidth. The largest case is
//! the shape of workload W1 (`shared/bench/WORKLOADS.md`), the smallest the
//! per-call overhead of W3.
//!
//! Run with `cargo bench -p embkit --bench gather`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use embkit::{Embedding, EmbeddingConfig, Init, Threads};
use ndarray::ArrayView2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `(rows, dim, batch, seq_len)`: ids come as `[batch, seq_len]`.
const CASES: [(usize, usize, usize, usize); 3] =
    [(10_000, 8, 32, 20), (100_000, 64, 4096, 1), (1_000_000, 64, 4096, 50)];

/// A table of N(0, 1) rows and uniform ids, both seeded.
fn inputs(rows: usize, dim: usize, n: usize) -> (Embedding, Vec<u32>) {
    let mut rng = StdRng::seed_from_u64(42);
    let config = EmbeddingConfig::new(rows, dim).with_init(Init::Normal { std: 1.0 });
    let table = config.init(&mut rng).expect("a valid config");
    let ids = (0..n).map(|_| rng.random_range(0..rows as u32)).collect();
    (table, ids)
}

fn gather(c: &mut Criterion) {
    let mut group = c.benchmark_group("embedding_forward_into");
    for (rows, dim, batch, seq) in CASES {
        let n = batch * seq;
        let (mut table, ids) = inputs(rows, dim, n);
        let mut out = Vec::new();
        group.throughput(Throughput::Bytes((2 * n * dim * 4) as u64));
        if n * dim > 1 << 20 {
            group.sample_size(20);
        }
        // Threads only pay on large calls; the small ones run on one.
        let thread_counts: &[usize] = if n * dim > 1 << 20 { &[1, 2] } else { &[1] };
        for &threads in thread_counts {
            table.set_threads(Threads::new(threads).expect("at least one thread"));
            group.bench_function(
                BenchmarkId::from_parameter(format!(
                    "rows={rows}/dim={dim}/ids={n}/threads={threads}"
                )),
                |b| {
                    b.iter(|| {
                        table.forward_into(black_box(&ids), &mut out).expect("ids in range");
                        black_box(&out);
                    })
                },
            );
        }
    }
    group.finish();

    let mut group = c.benchmark_group("embedding_forward_new_array");
    for (rows, dim, batch, seq) in CASES {
        let n = batch * seq;
        let (mut table, ids) = inputs(rows, dim, n);
        let ids = ArrayView2::from_shape((batch, seq), &ids).expect("batch * seq ids");
        group.throughput(Throughput::Bytes((2 * n * dim * 4) as u64));
        if n * dim > 1 << 20 {
            group.sample_size(20);
        }
        group.bench_function(
            BenchmarkId::from_parameter(format!("rows={rows}/dim={dim}/ids={n}")),
            |b| b.iter(|| black_box(table.forward(black_box(ids)).expect("ids in range"))),
        );
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    gather(&mut c);
    c.final_summary();
}
