//! word2vec (skip-gram and CBOW with negative sampling): the sub-sampling
//! rule, the noise distribution, the gradient, determinism, a corpus with
//! two clusters, typed errors.

use embkit::model::{EpochLog, Observer};
use embkit::query::nearest_neighbors;
use embkit::word2vec::{
    keep_probability, sgns_loss, sgns_step, Architecture, NoiseTable, Sentences, SkipGram,
    SkipGramConfig, WordCounts,
};
use embkit::{Error, NoObserver, Threads};
use rand::{rngs::StdRng, Rng, SeedableRng};

#[test]
fn keep_probability_matches_hand_computed_values() {
    // sample * total = 1e-3 * 1000 = 1.
    assert!((keep_probability(100, 1000, 1e-3) - 0.11).abs() < 1e-12);
    assert!((keep_probability(4, 1000, 1e-3) - 0.75).abs() < 1e-12);
    assert!((keep_probability(16, 1000, 1e-3) - 5.0 / 16.0).abs() < 1e-12);
    // (sqrt(1) + 1) * 1 / 1 = 2, capped at 1.
    assert_eq!(keep_probability(1, 1000, 1e-3), 1.0);
    // sample * total = 1000: (sqrt(10) + 1) * 1000 / 10000.
    let want = (10f64.sqrt() + 1.0) * 0.1;
    assert!((keep_probability(10_000, 1_000_000, 1e-3) - want).abs() < 1e-12);
    assert_eq!(keep_probability(10_000, 1_000_000, 0.0), 1.0);
}

#[test]
fn noise_table_matches_hand_computed_values() {
    // 16^0.75 = 8, 1^0.75 = 1.
    let p = NoiseTable::new(&[16, 1], 0.75).unwrap().probabilities();
    assert!((p[0] - 8.0 / 9.0).abs() < 1e-9 && (p[1] - 1.0 / 9.0).abs() < 1e-9);
    // 81^0.75 = 27, 16^0.75 = 8, 1: sum 36.
    let p = NoiseTable::new(&[81, 16, 1, 16], 0.75).unwrap().probabilities();
    for (got, want) in p.iter().zip([27.0 / 44.0, 8.0 / 44.0, 1.0 / 44.0, 8.0 / 44.0]) {
        assert!((got - want).abs() < 1e-9, "{p:?}");
    }
    // Exponent 0: uniform; exponent 1: the unigram distribution.
    let p = NoiseTable::new(&[5, 1, 100], 0.0).unwrap().probabilities();
    assert!(p.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-9));
    let p = NoiseTable::new(&[3, 1], 1.0).unwrap().probabilities();
    assert!((p[0] - 0.75).abs() < 1e-9);
}

#[test]
fn noise_draws_follow_the_table() {
    let counts = [1000, 300, 50, 7, 7, 2, 1];
    let table = NoiseTable::new(&counts, 0.75).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let n = 400_000;
    let mut seen = [0usize; 7];
    for _ in 0..n {
        seen[table.draw(rng.random()) as usize] += 1;
    }
    for (k, p) in table.probabilities().iter().enumerate() {
        let freq = seen[k] as f64 / n as f64;
        // Four standard deviations.
        assert!((freq - p).abs() < 4.0 * (p * (1.0 - p) / n as f64).sqrt() + 1e-4, "word {k}");
    }
}

#[test]
fn sgns_step_is_minus_alpha_times_the_finite_difference_gradient() {
    let mut rng = StdRng::seed_from_u64(11);
    for (dim, k) in [(1, 1), (5, 3), (12, 5)] {
        let input: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let outputs: Vec<f32> = (0..dim * (k + 1)).map(|_| rng.random_range(-1.0..1.0)).collect();
        let alpha = 0.5;
        let (mut h, mut u) = (input.clone(), outputs.clone());
        let loss = sgns_step(&mut h, &mut u, alpha);
        assert!((f64::from(loss) - sgns_loss(&input, &outputs)).abs() < 1e-5);

        let eps = 1e-2f32;
        let numeric = |which: usize, i: usize| {
            let (mut hp, mut up) = (input.clone(), outputs.clone());
            let (mut hm, mut um) = (input.clone(), outputs.clone());
            if which == 0 {
                hp[i] += eps;
                hm[i] -= eps;
            } else {
                up[i] += eps;
                um[i] -= eps;
            }
            (sgns_loss(&hp, &up) - sgns_loss(&hm, &um)) / (2.0 * f64::from(eps))
        };
        // σ comes from word2vec's table, within 0.003 of the exact value:
        // each row's gradient `(σ(h·u) - label)·x` is off by at most
        // 0.003·|x| beyond the finite difference's own error.
        const TABLE: f64 = 0.0031;
        for i in 0..dim {
            let step = f64::from(h[i] - input[i]) / f64::from(-alpha);
            let rows: f64 = (0..=k).map(|j| f64::from(outputs[j * dim + i].abs())).sum();
            let tolerance = 1e-3 + TABLE * rows;
            assert!(
                (step - numeric(0, i)).abs() < tolerance,
                "input {i}: {step} vs {}",
                numeric(0, i)
            );
        }
        for i in 0..dim * (k + 1) {
            let step = f64::from(u[i] - outputs[i]) / f64::from(-alpha);
            let tolerance = 1e-3 + TABLE * f64::from(input[i % dim].abs());
            assert!((step - numeric(1, i)).abs() < tolerance, "output {i}");
        }
    }
}

/// Sentences over words `a0..a{n}` or `b0..b{n}`, never mixed.
fn two_clusters(sentences: usize, words: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..sentences)
        .map(|s| {
            let cluster = if s % 2 == 0 { "a" } else { "b" };
            (0..12)
                .map(|_| format!("{cluster}{}", rng.random_range(0..words)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn small_config() -> SkipGramConfig {
    SkipGramConfig::new()
        .with_embedding_dim(16)
        .with_min_count(1)
        .with_epochs(5)
        .with_batch_words(200)
}

/// The bits training gives, pinned: any change to the order of the random
/// draws, the update or the merge of threads shows here. A deliberate
/// change of the algorithm updates these hashes and says why in its
/// commit (x86-64 Linux; `exp` of another libm could differ in a last bit).
#[test]
fn training_gives_the_pinned_bits() {
    let lines = two_clusters(300, 10, 1);
    let mut got = Vec::new();
    for architecture in [Architecture::SkipGram, Architecture::Cbow] {
        for threads in [1, 2, 3] {
            let config = small_config().with_architecture(architecture).with_seed(7);
            let threads = Threads::new(threads).unwrap();
            let (m, _) = SkipGram::fit(&config, &lines, threads, &mut NoObserver).unwrap();
            let mut hash = 0xcbf2_9ce4_8422_2325_u64;
            for x in m.input_weights().iter().chain(m.output_weights()) {
                for byte in x.to_bits().to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
            got.push(format!("{hash:016x}"));
        }
    }
    // Skip-gram on 1, 2, 3 threads, then CBOW.
    let want = [
        "1bb51b78b5f81bf1",
        "963ef1b469e996e7",
        "7252c7fd28fe68cc",
        "0f8a6f9f547695dc",
        "7a4cc8e9f2b774ee",
        "865662d72cf76b25",
    ];
    assert_eq!(got, want);
}

#[test]
fn same_seed_and_threads_give_the_same_bits() {
    let lines = two_clusters(300, 10, 1);
    for architecture in [Architecture::SkipGram, Architecture::Cbow] {
        for threads in [1, 2, 3] {
            let config = small_config().with_architecture(architecture).with_seed(7);
            let threads = Threads::new(threads).unwrap();
            let (a, _) = SkipGram::fit(&config, &lines, threads, &mut NoObserver).unwrap();
            let (b, _) = SkipGram::fit(&config, &lines, threads, &mut NoObserver).unwrap();
            let bits = |m: &SkipGram| {
                m.input_weights()
                    .iter()
                    .chain(m.output_weights())
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&a), bits(&b), "{architecture:?}, {threads} threads");
        }
    }
    let config = small_config().with_seed(8);
    let (c, _) = SkipGram::fit(&config, &lines, Threads::single(), &mut NoObserver).unwrap();
    let (d, _) =
        SkipGram::fit(&config.with_seed(9), &lines, Threads::single(), &mut NoObserver).unwrap();
    assert_ne!(c.input_weights(), d.input_weights());
}

#[test]
fn initial_vectors_are_gensim_s() {
    // gensim's prep_vectors: (rng.random() * 2 - 1) / vector_size.
    let config = small_config();
    let vocab = config.build_vocab(["x y z x"]).unwrap();
    let model = config.init(vocab).unwrap();
    let bound = 1.0 / 16.0;
    let input = model.input_weights();
    assert!(input.iter().all(|&x| (-bound..bound).contains(&x)));
    // word2vec.c's half-width range would leave these empty.
    assert!(input.iter().any(|&x| x > 0.5 * bound) && input.iter().any(|&x| x < -0.5 * bound));
    assert!(model.output_weights().iter().all(|&x| x == 0.0));
}

#[test]
fn sgns_step_skips_a_saturated_row_as_gensim() {
    // input·u: 7.5 for the positive word, -7.5 and 0.6 for the noise words.
    let input = [3.0f32, 0.0];
    let outputs = [2.5f32, 0.0, -2.5, 0.0, 0.2, 0.5];
    // A badly wrong pair is left alone too: the positive word at -7.5.
    let (mut h, mut u) = (input, [-2.5f32, 0.0]);
    sgns_step(&mut h, &mut u, 0.5);
    assert_eq!((h, u), (input, [-2.5, 0.0]));
    let (mut h, mut u) = (input, outputs);
    let loss = sgns_step(&mut h, &mut u, 0.5);
    // The loss counts every row.
    assert!((f64::from(loss) - sgns_loss(&input, &outputs)).abs() < 1e-5);
    assert_eq!(u[..4], outputs[..4], "rows with |f| >= 6 are left alone");
    // The third row moves by g·input, g = (0 - σ(0.6)) · 0.5, and the
    // input by g·u₃ (u₃ before its update) only.
    let g = -0.5 / (1.0 + (-0.6f32).exp());
    assert!((u[4] - (0.2 + g * 3.0)).abs() < 1e-6 && (u[5] - 0.5).abs() < 1e-6, "{u:?}");
    assert!((h[0] - (3.0 + g * 0.2)).abs() < 1e-6 && (h[1] - g * 0.5).abs() < 1e-6, "{h:?}");
}

#[test]
fn two_clusters_end_up_apart() {
    let lines = two_clusters(600, 8, 2);
    for architecture in [Architecture::SkipGram, Architecture::Cbow] {
        let config = small_config().with_architecture(architecture).with_epochs(10);
        let (model, report) =
            SkipGram::fit(&config, &lines, Threads::new(2).unwrap(), &mut NoObserver).unwrap();
        assert_eq!(report.words, 600 * 12 * 10);
        let vectors = model.vectors().unwrap();
        for (id, word) in vectors.words().iter().enumerate() {
            let near =
                nearest_neighbors(vectors.view(), vectors.row(id as u32), 3, Some(id as u32))
                    .unwrap();
            for n in near {
                let other = &vectors.words()[n.id as usize];
                assert_eq!(other[..1], word[..1], "{architecture:?}: {word} near {other}");
            }
        }
    }
}

#[derive(Default)]
struct Recording {
    rounds: usize,
    losses: Vec<f64>,
    round_losses: Vec<f64>,
}

impl Observer for Recording {
    fn batch_end(&mut self, _epoch: usize, _batch: usize, mean_loss: f64) {
        self.rounds += 1;
        self.round_losses.push(mean_loss);
    }

    fn epoch_end(&mut self, log: &EpochLog) {
        self.losses.push(log.loss);
    }
}

#[test]
fn observer_sees_rounds_and_a_falling_loss() {
    let lines = two_clusters(400, 8, 3);
    let config = small_config().with_compute_loss(true).with_epochs(4);
    let mut seen = Recording::default();
    let (_, report) = SkipGram::fit(&config, &lines, Threads::new(2).unwrap(), &mut seen).unwrap();
    // 400 sentences of 12 words in jobs of at most 200 words: 16 sentences
    // a job, 25 jobs, 13 rounds of (at most) 2 per epoch.
    assert_eq!(seen.rounds, 4 * 13);
    assert_eq!(seen.losses, report.losses);
    assert!(seen.losses.windows(2).all(|w| w[1] < w[0]), "{:?}", seen.losses);
    assert!(report.effective_words <= report.words && report.examples > 0);
    assert!(seen.round_losses.iter().all(|l| l.is_finite() && *l > 0.0));

    // Without the loss: NaN for epochs and rounds alike, not a loss of 0.
    let mut quiet = Recording::default();
    SkipGram::fit(&config.with_compute_loss(false), &lines, Threads::single(), &mut quiet).unwrap();
    assert!(quiet.losses.iter().all(|l| l.is_nan()));
    assert!(!quiet.round_losses.is_empty() && quiet.round_losses.iter().all(|l| l.is_nan()));
}

#[test]
fn vocabulary_is_by_frequency_then_first_appearance_and_lowercased_on_request() {
    let lines = ["The cat the dog", "THE Dog cat bird"];
    let vocab = WordCounts::count(lines, true, 2).unwrap();
    assert_eq!(vocab.words(), ["the", "cat", "dog"]);
    assert_eq!(vocab.counts(), [3, 2, 2]);
    assert_eq!(vocab.id("DOG"), Some(2));
    let exact = WordCounts::count(lines, false, 1).unwrap();
    assert_eq!(exact.words(), ["cat", "The", "the", "dog", "THE", "Dog", "bird"]);

    let config = SkipGramConfig::new().with_min_count(2).with_lowercase(true).with_batch_words(2);
    let model = config.init(config.build_vocab(lines).unwrap()).unwrap();
    let sentences = model.encode(["the bird cat dog cat", "bird"]);
    // "bird" is rare; pieces of at most 2 words.
    let pieces: Vec<&[u32]> = sentences.iter().collect();
    assert_eq!(pieces, [&[0, 1][..], &[2, 1][..]]);
}

#[test]
fn trained_vectors_are_written_and_read_back() {
    let lines = two_clusters(50, 5, 4);
    let (model, _) =
        SkipGram::fit(&small_config(), &lines, Threads::single(), &mut NoObserver).unwrap();
    let vectors = model.vectors().unwrap();
    assert_eq!(vectors.get("a0"), model.vector("a0"));
    let path = std::env::temp_dir().join(format!(
        "embkit-it-skipgram-{}-{:?}.bin",
        std::process::id(),
        std::thread::current().id()
    ));
    vectors.write(&path, embkit::format::VectorFormat::Word2VecBinary).unwrap();
    let back = embkit::format::Vectors::read(&path, embkit::format::VectorFormat::Word2VecBinary);
    std::fs::remove_file(&path).ok();
    assert_eq!(back.unwrap(), vectors);
}

fn invalid_field(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
    match result {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn bad_settings_and_data_are_typed_errors() {
    let lines = ["a b c a b c"];
    let fit = |config: SkipGramConfig| {
        SkipGram::fit(&config.with_min_count(1), &lines, Threads::single(), &mut NoObserver)
            .map(|_| ())
    };
    let c = SkipGramConfig::new;
    assert_eq!(invalid_field(fit(c().with_window(0))), "window");
    assert_eq!(invalid_field(fit(c().with_negative(0))), "negative");
    assert_eq!(invalid_field(fit(c().with_embedding_dim(0))), "embedding_dim");
    assert_eq!(invalid_field(fit(c().with_epochs(0))), "epochs");
    assert_eq!(invalid_field(fit(c().with_batch_words(0))), "batch_words");
    assert_eq!(invalid_field(fit(c().with_alpha(0.0, 0.0))), "alpha");
    assert_eq!(invalid_field(fit(c().with_alpha(f32::NAN, 0.0))), "alpha");
    assert_eq!(invalid_field(fit(c().with_alpha(0.01, 0.1))), "min_alpha");
    assert_eq!(invalid_field(fit(c().with_sample(-1.0))), "sample");
    assert_eq!(invalid_field(fit(c().with_ns_exponent(f64::INFINITY))), "ns_exponent");

    let config = SkipGramConfig::new();
    let empty: [&str; 0] = [];
    assert!(matches!(config.build_vocab(empty), Err(Error::EmptyData { .. })));
    assert!(matches!(config.build_vocab(["", "  \t "]), Err(Error::EmptyData { .. })));
    // min_count 5 leaves nothing of a six-word corpus.
    let err = config.build_vocab(lines).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }) && err.to_string().contains("min_count"));

    let config = config.with_min_count(1);
    let mut model = config.init(config.build_vocab(lines).unwrap()).unwrap();
    let mut out_of_range = Sentences::new();
    out_of_range.push(&[0, 3]);
    assert!(matches!(
        model.train(&out_of_range, Threads::single(), &mut NoObserver),
        Err(Error::IdOutOfRange { id: 3, num_embeddings: 3 })
    ));
    assert!(matches!(
        model.train(&model.encode(["x y z"]), Threads::single(), &mut NoObserver),
        Err(Error::EmptyData { .. })
    ));

    assert!(matches!(NoiseTable::new(&[], 0.75), Err(Error::EmptyData { .. })));
    assert_eq!(invalid_field(NoiseTable::new(&[1, 2], f64::NAN)), "ns_exponent");
    assert_eq!(
        invalid_field(WordCounts::from_counts(vec!["a".into()], vec![1, 2], 3, false)),
        "counts"
    );
    assert_eq!(
        invalid_field(WordCounts::from_counts(vec!["a".into(), "a".into()], vec![1, 2], 3, false)),
        "words"
    );
    assert_eq!(
        invalid_field(WordCounts::from_counts(vec!["a b".into()], vec![1], 3, false)),
        "words"
    );
}

/// Two threads merge their changes often enough that a row both change
/// all the time (the output vector of the most frequent word) ends near
/// where one thread's sequence puts it, not at the sum of two long runs
/// from the same start.
#[test]
fn two_threads_stay_near_one_thread_on_frequent_rows() {
    let lines = two_clusters(2000, 40, 5);
    let config = SkipGramConfig::new()
        .with_embedding_dim(16)
        .with_min_count(1)
        .with_epochs(2)
        .with_sample(0.0)
        .with_batch_words(6000);
    let fit = |threads| SkipGram::fit(&config, &lines, threads, &mut NoObserver).unwrap().0;
    let (one, two) = (fit(Threads::single()), fit(Threads::new(2).unwrap()));
    let norm = |m: &SkipGram| {
        let dim = config.embedding_dim;
        let rows = m.output_weights().chunks_exact(dim).take(10);
        rows.map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt()).sum::<f32>() / 10.0
    };
    // Merging only after each thread's whole 6,000-word job gave 1.061.
    let ratio = norm(&two) / norm(&one);
    assert!(ratio < 1.03, "two threads' frequent output rows are {ratio} times as long");
}
