//! Embedding bags: `EmbeddingBag::forward` with offsets (PyTorch's 1-D
//! input), sum and mean pooling.
//!
//! Cases are named by their parameters, `mode=…/rows=…/dim=…/bags=…x…`;
//! throughput is the bytes moved per call, rows read plus bag rows written
//! (`(ids + bags) · dim · 4`). The largest case is workload W4
//! (`shared/bench/WORKLOADS.md`).
//!
//! Run with `cargo bench -p embkit --bench bag`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use embkit::layers::{BagMode, EmbeddingBagConfig};
use embkit::{Init, Threads};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `(rows, dim, bags, ids per bag)`.
const CASES: [(usize, usize, usize, usize); 2] =
    [(100_000, 64, 512, 20), (1_000_000, 64, 4096, 50)];

fn bag(c: &mut Criterion) {
    let mut group = c.benchmark_group("embedding_bag_forward");
    for (rows, dim, bags, per_bag) in CASES {
        let mut rng = StdRng::seed_from_u64(42);
        let n = bags * per_bag;
        let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..rows as u32)).collect();
        let offsets: Vec<usize> = (0..bags).map(|b| b * per_bag).collect();
        group.throughput(Throughput::Bytes(((n + bags) * dim * 4) as u64));
        if n * dim > 1 << 20 {
            group.sample_size(20);
        }
        for mode in [BagMode::Sum, BagMode::Mean] {
            let config = EmbeddingBagConfig::new(rows, dim)
                .with_mode(mode)
                .with_init(Init::Normal { std: 1.0 });
            let mut table = config.init(&mut StdRng::seed_from_u64(7)).expect("a valid config");
            let thread_counts: &[usize] = if n * dim > 1 << 20 { &[1, 2] } else { &[1] };
            for &threads in thread_counts {
                table.set_threads(Threads::new(threads).expect("at least one thread"));
                let id = format!(
                    "mode={mode}/rows={rows}/dim={dim}/bags={bags}x{per_bag}/threads={threads}"
                );
                group.bench_function(BenchmarkId::from_parameter(id), |b| {
                    b.iter(|| {
                        let out = table.forward(black_box(&ids), &offsets, None, false);
                        black_box(out.expect("valid bags"))
                    })
                });
            }
        }
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bag(&mut c);
    c.final_summary();
}
