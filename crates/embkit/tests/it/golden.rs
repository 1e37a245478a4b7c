//! Golden files: a tiny model saved in format version 1 and committed, so
//! an accidental change of the format fails here.

use std::path::PathBuf;

use embkit::format::{SavedModel, FORMAT_VERSION};
use embkit::{Activation, EmbeddingConfig, SequentialConfig};
use ndarray::array;
use rand::{rngs::StdRng, SeedableRng};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/model-v1")
}

fn golden_model() -> SavedModel {
    let model = SequentialConfig::new(EmbeddingConfig::new(6, 3), 4)
        .global_average_pooling_1d()
        .dense(2, Activation::Softmax)
        .init(&mut StdRng::seed_from_u64(2024))
        .expect("valid config");
    let mut saved = SavedModel::new(model);
    saved.vocab = Some(["", "[UNK]", "cat", "dog", "snake", "mouse"].map(String::from).to_vec());
    saved.metadata.insert("note".into(), "golden file of format version 1".into());
    saved
}

/// Rewrites the golden files. Run by hand only when the format version
/// changes: `cargo test -p embkit --test it golden -- --ignored`.
#[test]
#[ignore]
fn regenerate_golden_model_v1() {
    golden_model().save(golden_dir()).unwrap();
}

#[test]
fn golden_model_v1_loads_and_predicts_the_pinned_numbers() {
    assert_eq!(FORMAT_VERSION, 1, "a new version needs its own golden file");
    let mut loaded = SavedModel::load(golden_dir()).unwrap();
    let built = golden_model();
    assert_eq!(loaded.model.config(), built.model.config());
    assert_eq!(loaded.model.embedding().weights(), built.model.embedding().weights());
    assert_eq!(loaded.vocab, built.vocab);
    assert_eq!(loaded.metadata, built.metadata);
    let ids = array![[2u32, 3, 0, 0], [5, 4, 1, 2]];
    let out = loaded.model.predict(ids.view(), 2).unwrap();
    for (got, want) in out.iter().zip(PINNED) {
        assert!((got - want).abs() < 1e-6, "{out:?}");
    }
    // A fresh save writes a file of the committed size (the committed file
    // was written before headers were sorted: its key order may differ,
    // its content may not), and the same bytes every time.
    let committed = std::fs::read(golden_dir().join("model.safetensors")).unwrap();
    let bytes = built.to_bytes().unwrap();
    assert_eq!(bytes.len(), committed.len());
    for _ in 0..5 {
        assert_eq!(built.to_bytes().unwrap(), bytes, "saving is not deterministic");
    }
}

/// Outputs of the golden model on the ids above, as printed when the file
/// was made.
const PINNED: [f32; 4] = [0.502424, 0.49757597, 0.5018049, 0.49819508];

// ---------------------------------------------------------------- the other kinds

use embkit::format::{SavedBagClassifier, SavedMatrixFactorization, SavedSkipGram};

fn golden_kind_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn golden_matrix_factorization() -> SavedMatrixFactorization {
    let config = embkit::model::MatrixFactorizationConfig::new(3, 4, 2);
    let model = config.init(&mut StdRng::seed_from_u64(2025)).expect("valid config");
    let mut saved = SavedMatrixFactorization::new(model);
    saved.metadata.insert("note".into(), "golden file of format version 1".into());
    saved
}

fn golden_bag_classifier() -> SavedBagClassifier {
    let config =
        embkit::model::BagClassifierConfig::new(5, 3).with_embedding_dim(2).with_bigram_buckets(4);
    let model = config.init(&mut StdRng::seed_from_u64(2026)).expect("valid config");
    let mut saved = SavedBagClassifier::new(model);
    saved.metadata.insert("note".into(), "golden file of format version 1".into());
    saved
}

fn golden_skip_gram() -> SavedSkipGram {
    use embkit::word2vec::{SkipGram, SkipGramConfig, WordCounts};
    let words = ["the", "cat", "sat"].map(String::from).to_vec();
    let vocab = WordCounts::from_counts(words, vec![5, 3, 2], 12, true).expect("valid counts");
    let input: Vec<f32> = (0..6).map(|i| i as f32 * 0.25 - 0.5).collect();
    let output: Vec<f32> = (0..6).map(|i| 0.125 - i as f32 * 0.0625).collect();
    let config = SkipGramConfig::new().with_embedding_dim(2);
    let model = SkipGram::from_parts(config, vocab, input, output).expect("valid parts");
    let mut saved = SavedSkipGram::new(model);
    saved.metadata.insert("note".into(), "golden file of format version 1".into());
    saved
}

/// Rewrites the golden files of the other kinds. Run by hand only when the
/// format version changes: `cargo test -p embkit --test it golden -- --ignored`.
#[test]
#[ignore]
fn regenerate_golden_kinds_v1() {
    golden_matrix_factorization().save(golden_kind_dir("matrix-factorization-v1")).unwrap();
    golden_bag_classifier().save(golden_kind_dir("bag-classifier-v1")).unwrap();
    golden_skip_gram().save(golden_kind_dir("skip-gram-v1")).unwrap();
}

/// Each kind's committed file loads to the model built here, and saving
/// that model writes the committed bytes.
#[test]
fn golden_kinds_v1_load_and_save_the_committed_bytes() {
    assert_eq!(FORMAT_VERSION, 1, "a new version needs its own golden files");
    let file = |name: &str| std::fs::read(golden_kind_dir(name).join("model.safetensors")).unwrap();

    let built = golden_matrix_factorization();
    let loaded =
        SavedMatrixFactorization::load(golden_kind_dir("matrix-factorization-v1")).unwrap();
    assert_eq!(loaded.model.config(), built.model.config());
    assert_eq!(loaded.model.users().weights(), built.model.users().weights());
    assert_eq!(loaded.model.items().weights(), built.model.items().weights());
    assert_eq!(loaded.metadata, built.metadata);
    assert_eq!(built.to_bytes().unwrap(), file("matrix-factorization-v1"));

    let built = golden_bag_classifier();
    let loaded = SavedBagClassifier::load(golden_kind_dir("bag-classifier-v1")).unwrap();
    assert_eq!(loaded.model.config(), built.model.config());
    assert_eq!(loaded.model.bag().weights(), built.model.bag().weights());
    assert_eq!(loaded.metadata, built.metadata);
    assert_eq!(built.to_bytes().unwrap(), file("bag-classifier-v1"));

    let built = golden_skip_gram();
    let loaded = SavedSkipGram::load(golden_kind_dir("skip-gram-v1")).unwrap();
    assert_eq!(loaded.model.config(), built.model.config());
    assert_eq!(loaded.model.input_weights(), built.model.input_weights());
    assert_eq!(loaded.model.output_weights(), built.model.output_weights());
    assert_eq!(loaded.metadata, built.metadata);
    assert_eq!(built.to_bytes().unwrap(), file("skip-gram-v1"));
}
