//! Sparse training steps of a table: `Embedding::backward` (the upstream
//! rows scatter-added into a `RowGrad`), `Embedding::step` (a lazy optimizer
//! step on the rows of the gradient), `Embedding::backward_step` (the two
//! fused), and the whole step `forward_into + backward + step` of
//! workloads W5/W6
//! (`shared/bench/WORKLOADS.md`).
//!
//! Cases are named by their parameters, `rows=…/dim=…/ids=…`; throughput is
//! the bytes of the upstream gradient (`ids · dim · 4`), read once by every
//! case (the rows of the table and of the optimizer state read and written
//! come on top).
//!
//! Run with `cargo bench -p embkit --bench sparse_update`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use embkit::{
    AdagradConfig, AdamConfig, Embedding, EmbeddingConfig, Init, OptimizerConfig, SgdConfig,
    Threads,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `(rows, dim, ids)`; the largest is W5/W6.
const CASES: [(usize, usize, usize); 2] = [(100_000, 64, 16_384), (1_000_000, 64, 204_800)];

/// A seeded N(0, 1) table, uniform ids and an N(0, 1) upstream gradient.
fn inputs(rows: usize, dim: usize, n: usize) -> (Embedding, Vec<u32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(42);
    let normal = Init::Normal { std: 1.0 };
    let table =
        EmbeddingConfig::new(rows, dim).with_init(normal.clone()).init(&mut rng).expect("valid");
    let ids = (0..n).map(|_| rng.random_range(0..rows as u32)).collect();
    let grad = normal.sample(n, dim, &mut rng).expect("valid");
    (table, ids, grad)
}

fn optimizers() -> [(&'static str, OptimizerConfig); 3] {
    [
        ("sgd", SgdConfig::pytorch().with_learning_rate(0.01).into()),
        ("sparse_adam", AdamConfig::pytorch_sparse().into()),
        ("adagrad", AdagradConfig::pytorch().into()),
    ]
}

fn sparse_update(c: &mut Criterion) {
    let mut group = c.benchmark_group("embedding_backward");
    for (rows, dim, n) in CASES {
        let (mut table, ids, grad) = inputs(rows, dim, n);
        group.throughput(Throughput::Bytes((n * dim * 4) as u64));
        group.sample_size(20);
        group.bench_function(
            BenchmarkId::from_parameter(format!("rows={rows}/dim={dim}/ids={n}")),
            |b| b.iter(|| black_box(table.backward(black_box(&ids), &grad).expect("valid").len())),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("embedding_step");
    for (rows, dim, n) in CASES {
        let (mut table, ids, grad) = inputs(rows, dim, n);
        table.backward(&ids, &grad).expect("valid");
        group.throughput(Throughput::Bytes((n * dim * 4) as u64));
        group.sample_size(20);
        for (name, config) in optimizers() {
            let mut optimizer = config.build().expect("valid");
            let id = format!("opt={name}/rows={rows}/dim={dim}/ids={n}");
            group.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    table.step(optimizer.as_mut(), "embedding").expect("valid");
                    optimizer.finish_step();
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("embedding_backward_step");
    for (rows, dim, n) in CASES {
        let (mut table, ids, grad) = inputs(rows, dim, n);
        group.throughput(Throughput::Bytes((n * dim * 4) as u64));
        group.sample_size(20);
        for (name, config) in optimizers() {
            let mut optimizer = config.build().expect("valid");
            let id = format!("opt={name}/rows={rows}/dim={dim}/ids={n}");
            group.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    table
                        .backward_step(&ids, &grad, optimizer.as_mut(), "embedding")
                        .expect("valid");
                    optimizer.finish_step();
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("embedding_train_step");
    for (rows, dim, n) in CASES {
        let (mut table, ids, grad) = inputs(rows, dim, n);
        let mut out = Vec::new();
        group.throughput(Throughput::Bytes((n * dim * 4) as u64));
        group.sample_size(10);
        let thread_counts: &[usize] = if n * dim > 1 << 20 { &[1, 2] } else { &[1] };
        for ((name, config), &threads) in
            optimizers().into_iter().flat_map(|o| thread_counts.iter().map(move |t| (o.clone(), t)))
        {
            let threads = Threads::new(threads).expect("at least one thread");
            let mut optimizer = config.build().expect("valid");
            optimizer.set_threads(threads);
            table.set_threads(threads);
            let id = format!("opt={name}/rows={rows}/dim={dim}/ids={n}/threads={threads}");
            group.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    table.forward_into(black_box(&ids), &mut out).expect("valid");
                    black_box(&out);
                    table.backward(&ids, &grad).expect("valid");
                    table.step(optimizer.as_mut(), "embedding").expect("valid");
                    optimizer.finish_step();
                })
            });
        }
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    sparse_update(&mut c);
    c.final_summary();
}
