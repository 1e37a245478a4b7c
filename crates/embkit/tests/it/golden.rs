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
