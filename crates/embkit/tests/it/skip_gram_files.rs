//! Saved word2vec models ([`SavedSkipGram`]): round trips, the same bytes
//! on every save, the checks on load (kind, version, vocabulary against
//! the tables, damaged files), and the word vectors read from the
//! directory as a vector file.

use std::fs;
use std::path::{Path, PathBuf};

use embkit::format::{
    ModelKind, ReadOptions, SavedBagClassifier, SavedModel, SavedSkipGram, VectorFormat, Vectors,
};
use embkit::model::BagClassifierConfig;
use embkit::word2vec::{Architecture, SkipGram, SkipGramConfig, TrainReport, WordCounts};
use embkit::{Error, NoObserver, Threads};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

/// A directory of this test, removed when it is dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("embkit-it-sg-{name}-{}-{call}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A trained CBOW model (lowercased, with the loss computed) with its
/// report and caller metadata: every part of a saved model is set.
fn trained() -> SavedSkipGram {
    let lines: Vec<String> = (0..60)
        .map(|i| match i % 3 {
            0 => "The cat sat on the mat",
            1 => "the dog sat on the LOG",
            _ => "a cat and a dog",
        })
        .map(String::from)
        .collect();
    let config = SkipGramConfig::new()
        .with_architecture(Architecture::Cbow)
        .with_embedding_dim(6)
        .with_min_count(2)
        .with_epochs(2)
        .with_lowercase(true)
        .with_compute_loss(true)
        .with_seed(3);
    let (model, report) =
        SkipGram::fit(&config, &lines, Threads::single(), &mut NoObserver).unwrap();
    let mut saved = SavedSkipGram::new(model);
    saved.report = Some(report);
    saved.metadata.insert("tokenize".into(), "whitespace".into());
    saved
}

/// The safetensors bytes with their header's metadata changed by `edit`
/// (the data is kept; its offsets are relative to the end of the header).
fn edit_metadata(
    bytes: &[u8],
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(header["__metadata__"].as_object_mut().unwrap());
    let mut text = serde_json::to_vec(&header).unwrap();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Edits the JSON held in the metadata value `key`.
fn edit_json(bytes: &[u8], key: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    edit_metadata(bytes, |meta| {
        let mut value: serde_json::Value =
            serde_json::from_str(meta[key].as_str().unwrap()).unwrap();
        edit(&mut value);
        meta.insert(key.into(), value.to_string().into());
    })
}

/// The same report, up to the last bit of its seconds and losses:
/// serde_json (without its `float_roundtrip` feature) may read a 17-digit
/// f64 one unit in the last place off.
fn assert_same_report(got: &TrainReport, want: &TrainReport) {
    let close = |a: f64, b: f64| (a - b).abs() <= b.abs() * 4.0 * f64::EPSILON;
    assert_eq!(
        (got.epochs, got.words, got.effective_words, got.examples, got.threads),
        (want.epochs, want.words, want.effective_words, want.examples, want.threads)
    );
    assert!(close(got.seconds, want.seconds), "{} vs {}", got.seconds, want.seconds);
    assert_eq!(got.losses.len(), want.losses.len());
    for (a, b) in got.losses.iter().zip(&want.losses) {
        assert!(close(*a, *b) || (a.is_nan() && b.is_nan()), "loss {a} vs {b}");
    }
}

fn bad_model_file(result: embkit::Result<SavedSkipGram>) -> String {
    match result {
        Err(err @ Error::BadModelFile { .. }) => err.to_string(),
        other => panic!("expected BadModelFile, got {other:?}"),
    }
}

#[test]
fn save_then_load_gives_the_same_vectors_vocabulary_counts_and_config() {
    let saved = trained();
    let dir = Scratch::new("round-trip");
    saved.save(dir.path()).unwrap();

    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["model.safetensors", "vocab.txt"], "nothing temporary is left");
    let vocab = fs::read_to_string(dir.path().join("vocab.txt")).unwrap();
    assert_eq!(vocab.lines().collect::<Vec<_>>(), saved.model.vocab().words());
    assert_eq!(ModelKind::of_dir(dir.path()).unwrap(), ModelKind::SkipGram);

    let back = SavedSkipGram::load(dir.path()).unwrap();
    assert_eq!(back.model, saved.model);
    assert_same_report(back.report.as_ref().unwrap(), saved.report.as_ref().unwrap());
    let (m, b) = (&saved.model, &back.model);
    assert_eq!(b.input_weights(), m.input_weights());
    assert_eq!(b.output_weights(), m.output_weights());
    assert_eq!(b.vocab().words(), m.vocab().words());
    assert_eq!(b.vocab().counts(), m.vocab().counts());
    assert_eq!(b.vocab().corpus_words(), m.vocab().corpus_words());
    assert!(b.vocab().lowercase());
    assert_eq!(b.vector("CAT"), m.vector("cat"));
    assert_eq!(b.config(), m.config());
    assert_eq!(back.metadata, saved.metadata);

    // The loaded model trains on as the original does.
    let lines = ["the cat sat on the dog"];
    let (mut a, mut c) = (saved.model.clone(), back.model.clone());
    for model in [&mut a, &mut c] {
        let sentences = model.encode(lines);
        model.train(&sentences, Threads::single(), &mut NoObserver).unwrap();
    }
    assert_eq!(a, c);
}

#[test]
fn saving_twice_writes_the_same_bytes() {
    let saved = trained();
    let (one, two) = (Scratch::new("bytes-1"), Scratch::new("bytes-2"));
    saved.save(one.path()).unwrap();
    saved.save(two.path()).unwrap();
    for file in ["model.safetensors", "vocab.txt"] {
        let a = fs::read(one.path().join(file)).unwrap();
        let b = fs::read(two.path().join(file)).unwrap();
        assert!(a == b, "{file} differs between two saves");
    }
    assert_eq!(saved.to_bytes().unwrap(), fs::read(one.path().join("model.safetensors")).unwrap());
    // Saving over a directory replaces both files.
    let mut other = trained();
    other.report = None;
    other.metadata.clear();
    other.save(one.path()).unwrap();
    let back = SavedSkipGram::load(one.path()).unwrap();
    assert_eq!((back.report, back.metadata.len()), (None, 0));
}

#[test]
fn a_loss_that_is_not_a_number_round_trips_as_nan() {
    let mut saved = trained();
    saved.report.as_mut().unwrap().losses[1] = f64::NAN;
    let back = SavedSkipGram::from_bytes(&saved.to_bytes().unwrap(), "m.safetensors").unwrap();
    assert_same_report(back.report.as_ref().unwrap(), saved.report.as_ref().unwrap());
    assert!(back.report.unwrap().losses[1].is_nan());
}

#[test]
fn truncated_and_damaged_files_are_typed_errors() {
    let bytes = trained().to_bytes().unwrap();
    for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let err = bad_model_file(SavedSkipGram::from_bytes(&bytes[..cut], "m.safetensors"));
        assert!(err.contains("m.safetensors: not a model file"), "cut at {cut}: {err}");
    }
    let err = bad_model_file(SavedSkipGram::from_bytes(b"not a model at all", "m"));
    assert!(err.contains("not a safetensors file or truncated"), "{err}");

    // A NaN in the last value of the output table.
    let mut nan = bytes.clone();
    let end = nan.len();
    nan[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = bad_model_file(SavedSkipGram::from_bytes(&nan, "m"));
    assert!(err.contains("tensor `output.weight` has the value NaN"), "{err}");

    let version = edit_metadata(&bytes, |meta| {
        meta.insert("format_version".into(), "9".into());
    });
    let err = bad_model_file(SavedSkipGram::from_bytes(&version, "m"));
    assert!(err.contains("format version 9 is not supported"), "{err}");

    let no_vocab = edit_metadata(&bytes, |meta| {
        meta.remove("vocab");
    });
    let err = bad_model_file(SavedSkipGram::from_bytes(&no_vocab, "m"));
    assert!(err.contains("metadata has no `vocab`"), "{err}");

    let bad_config = edit_json(&bytes, "config", |c| c["window"] = 0.into());
    let err = bad_model_file(SavedSkipGram::from_bytes(&bad_config, "m"));
    assert!(err.contains("bad model config: invalid window: must be at least 1"), "{err}");
}

#[test]
fn the_vocabulary_must_match_the_tables() {
    let saved = trained();
    let bytes = saved.to_bytes().unwrap();
    let (words, dim) = (saved.model.vocab().len(), saved.model.config().embedding_dim);

    // One word fewer than the tables have rows.
    let short = edit_json(&bytes, "vocab", |v| {
        v["words"].as_array_mut().unwrap().pop();
        v["counts"].as_array_mut().unwrap().pop();
    });
    let err = bad_model_file(SavedSkipGram::from_bytes(&short, "m"));
    let want = format!(
        "tensor `input.weight` has {words} rows, but the vocabulary has {} words",
        words - 1
    );
    assert!(err.contains(&want), "{err}");

    let wide = edit_json(&bytes, "config", |c| c["embedding_dim"] = (dim + 2).into());
    let err = bad_model_file(SavedSkipGram::from_bytes(&wide, "m"));
    let want = format!(
        "tensor `input.weight` has rows of {dim} values, but the config's embedding_dim is {}",
        dim + 2
    );
    assert!(err.contains(&want), "{err}");

    let counts = edit_json(&bytes, "vocab", |v| {
        v["counts"].as_array_mut().unwrap().pop();
    });
    let err = bad_model_file(SavedSkipGram::from_bytes(&counts, "m"));
    let want =
        format!("bad vocabulary: invalid counts: has {} entries for {words} words", words - 1);
    assert!(err.contains(&want), "{err}");

    let zero = edit_json(&bytes, "vocab", |v| v["counts"][0] = 0.into());
    let err = bad_model_file(SavedSkipGram::from_bytes(&zero, "m"));
    assert!(err.contains("has count 0"), "{err}");

    let twice = edit_json(&bytes, "vocab", |v| v["words"][1] = v["words"][0].clone());
    let err = bad_model_file(SavedSkipGram::from_bytes(&twice, "m"));
    assert!(err.contains("appears twice"), "{err}");

    // vocab.txt must list the model's words.
    let dir = Scratch::new("vocab-file");
    saved.save(dir.path()).unwrap();
    let vocab_path = dir.path().join("vocab.txt");
    let text = fs::read_to_string(&vocab_path).unwrap();
    fs::write(&vocab_path, text.replacen("cat", "cow", 1)).unwrap();
    let err = bad_model_file(SavedSkipGram::load(dir.path()));
    assert!(err.contains("vocab.txt: not a model file: line"), "{err}");
    assert!(err.contains("\"cow\", but the model's word"), "{err}");
    fs::write(&vocab_path, "the\n").unwrap();
    let err = bad_model_file(SavedSkipGram::load(dir.path()));
    assert!(err.contains(&format!("has 1 words, but the model has {words}")), "{err}");
    fs::remove_file(&vocab_path).unwrap();
    let err = SavedSkipGram::load(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if path == &vocab_path), "{err:?}");
}

#[test]
fn other_kinds_say_what_they_are() {
    let dir = Scratch::new("kinds");
    let bag = BagClassifierConfig::new(3, 2).with_embedding_dim(4);
    let mut saved_bag = SavedBagClassifier::new(bag.init(&mut StdRng::seed_from_u64(0)).unwrap());
    saved_bag.vocab = Some(["", "[UNK]", "good"].map(String::from).to_vec());
    saved_bag.save(dir.path()).unwrap();
    let err = bad_model_file(SavedSkipGram::load(dir.path()));
    assert!(err.contains("is a bag_classifier model, not a skip-gram model"), "{err}");

    trained().save(dir.path()).unwrap();
    assert_eq!(ModelKind::of_dir(dir.path()).unwrap(), ModelKind::SkipGram);
    assert_eq!(ModelKind::SkipGram.name(), "skip_gram");
    let err = SavedBagClassifier::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is a skip_gram model, not a bag classifier"), "{err}");
    let err = SavedModel::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is a skip_gram model"), "{err}");

    let unknown = edit_metadata(&trained().to_bytes().unwrap(), |meta| {
        meta.insert("model_kind".into(), "glove".into());
    });
    let err = bad_model_file(SavedSkipGram::from_bytes(&unknown, "m"));
    assert!(err.contains("model kind \"glove\" is not known"), "{err}");
}

#[test]
fn the_directory_reads_as_word_vectors() {
    let saved = trained();
    let dir = Scratch::new("vectors");
    saved.save(dir.path()).unwrap();
    assert_eq!(VectorFormat::detect(dir.path()).unwrap(), VectorFormat::Model);
    let vectors = Vectors::read(dir.path(), VectorFormat::Model).unwrap();
    assert_eq!(vectors, saved.model.vectors().unwrap());

    let options = ReadOptions::new().with_table("output");
    let (output, _) = Vectors::read_with(dir.path(), VectorFormat::Model, &options).unwrap();
    assert_eq!(output.data(), saved.model.output_weights());
    assert_eq!(output.words(), saved.model.vocab().words());

    let options = ReadOptions::new().with_table("users");
    let err = Vectors::read_with(dir.path(), VectorFormat::Model, &options).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "table", .. }), "{err}");
    assert!(err.to_string().contains("`input` (the word vectors) and `output`"), "{err}");
}

#[test]
fn from_parts_checks_the_tables_and_the_counts() {
    let config = SkipGramConfig::new().with_embedding_dim(2);
    let vocab =
        WordCounts::from_counts(vec!["a".into(), "b".into(), "c".into()], vec![5, 2, 1], 9, false)
            .unwrap();
    let ok = SkipGram::from_parts(config.clone(), vocab.clone(), vec![0.1; 6], vec![0.0; 6]);
    assert_eq!(ok.unwrap().vector("c"), Some(&[0.1, 0.1][..]));

    let err = SkipGram::from_parts(config.clone(), vocab.clone(), vec![0.1; 4], vec![0.0; 6])
        .unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { what: "input table", got, .. } if got == &[4]),
        "{err}"
    );
    assert!(err.to_string().contains("3 words x 2 (embedding_dim) values"), "{err}");
    let err = SkipGram::from_parts(config.clone(), vocab.clone(), vec![0.1; 6], vec![0.0; 7])
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { what: "output table", .. }), "{err}");

    let mut output = vec![0.0; 6];
    output[3] = f32::INFINITY;
    let err =
        SkipGram::from_parts(config.clone(), vocab.clone(), vec![0.1; 6], output).unwrap_err();
    assert!(err.to_string().contains("the output table has the value inf at row 1, column 1"));

    let err = SkipGram::from_parts(config.with_negative(0), vocab, vec![0.1; 6], vec![0.0; 6])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "negative", .. }), "{err}");

    let err = WordCounts::from_counts(vec!["a".into(), "b".into()], vec![u64::MAX, 1], 0, false)
        .unwrap_err();
    assert!(err.to_string().contains("sum past u64::MAX"), "{err}");
}

/// A model of `words` words of `dim` values from `seed`, built from parts.
fn random_model(words: usize, dim: usize, seed: u64) -> SkipGram {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let names: Vec<String> = (0..words).map(|i| format!("w{i}é")).collect();
    let counts: Vec<u64> = (0..words).map(|_| rng.random_range(1..1_000_000)).collect();
    let total = counts.iter().sum::<u64>() + rng.random_range(0..100);
    let vocab = WordCounts::from_counts(names, counts, total, rng.random()).unwrap();
    let config = SkipGramConfig::new()
        .with_embedding_dim(dim)
        .with_window(rng.random_range(1..10))
        // A decimal of a few digits, as a user writes it: serde_json (without
        // its `float_roundtrip` feature) may read a 17-digit f64 one unit in
        // the last place off.
        .with_sample(format!("{:.6}", rng.random_range(0.0..0.01)).parse().unwrap())
        .with_alpha(rng.random_range(0.01..0.1), 0.0001)
        .with_seed(rng.random());
    let mut values = || (0..words * dim).map(|_| rng.random_range(-1e3f32..1e3)).collect();
    let (input, output) = (values(), values());
    SkipGram::from_parts(config, vocab, input, output).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// to_bytes → from_bytes gives an equal model, in memory.
    #[test]
    fn bytes_round_trip(words in 1usize..40, dim in 1usize..9, seed: u64) {
        let saved = SavedSkipGram::new(random_model(words, dim, seed));
        let bytes = saved.to_bytes().unwrap();
        prop_assert_eq!(SavedSkipGram::from_bytes(&bytes, "mem").unwrap(), saved);
    }
}
