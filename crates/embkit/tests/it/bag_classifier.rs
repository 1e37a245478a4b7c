//! Integration tests: the fastText-style bag classifier, its gradient,
//! training, saving and loading.

use embkit::format::{ModelKind, SavedBagClassifier, SavedModel, VectorFormat, Vectors};
use embkit::model::{BagClassifier, BagClassifierConfig, BagWeighting};
use embkit::{
    Activation, AdamConfig, Dataset, Error, Loss, Metric, Model, NoObserver, TrainConfig,
};
use ndarray::{array, Array1, Array2, ArrayD};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn small_model(seed: u64) -> BagClassifier {
    let config = BagClassifierConfig::new(6, 3).with_embedding_dim(4).with_bigram_buckets(5);
    let mut model = config.init(&mut StdRng::seed_from_u64(seed)).unwrap();
    // The output layer starts at zero; give it values so every path has a
    // gradient.
    let mut rng = StdRng::seed_from_u64(seed + 1);
    model.dense_mut().kernel_mut().mapv_inplace(|_| rng.random_range(-1.0..1.0));
    model.dense_mut().bias_mut().mapv_inplace(|_| rng.random_range(-0.5..0.5));
    model
}

fn loss_of(model: &mut BagClassifier, ids: &Array2<u32>, y: &ArrayD<f32>) -> f64 {
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    f64::from(model.evaluate_batch(ids.view(), &loss, y.view()).unwrap().0)
}

/// Every gradient of a training step (the table's rows and the output
/// layer) matches central differences of the loss.
#[test]
fn gradient_matches_finite_differences() {
    let model = small_model(3);
    let docs: Vec<&[u32]> = vec![&[1, 2, 3, 2], &[4, 5], &[2, 0, 1], &[5, 5, 5, 3, 1]];
    let ids = model.config().documents(docs, None);
    check_gradients(model, &ids);
}

/// The same through TF-IDF weights and a hidden ReLU (Keras's
/// bag-of-bigrams model; dropout 0 so the loss is deterministic).
#[test]
fn tf_idf_and_hidden_relu_gradients_match_finite_differences() {
    let config = BagClassifierConfig::new(6, 3)
        .with_embedding_dim(4)
        .with_bigram_buckets(5)
        .with_weighting(BagWeighting::TfIdf)
        .with_hidden(Activation::Relu, 0.0);
    let mut model = config.init(&mut StdRng::seed_from_u64(5)).unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    // Rows away from ReLU's kink at 0 for the differences.
    model.bag_mut().weights_mut().iter_mut().for_each(|w| *w = rng.random_range(-1.0..1.0));
    // Keras's Dense(units, "relu") has a bias: so does the hidden layer.
    assert!(config.hidden_bias);
    model.set_hidden_bias(vec![0.3, -0.2, 0.1, -0.4]).unwrap();
    let docs: Vec<&[u32]> = vec![&[1, 2, 3, 2], &[4, 5], &[2, 0, 1], &[5, 5, 5, 3, 1]];
    let ids = config.documents(docs, None);
    model.adapt(ids.view(), &[]).unwrap();
    check_gradients(model, &ids);
}

fn check_gradients(mut model: BagClassifier, ids: &Array2<u32>) {
    let config = model.config().clone();
    let ids = ids.clone();
    let y = Array1::from(vec![0.0f32, 2.0, 1.0, 2.0]).into_dyn();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    model.forward(ids.view(), true).unwrap();
    model.backward(&loss, y.view()).unwrap();
    let table_grad = model.bag().grad().to_dense(config.num_embeddings());
    let kernel_grad = model.dense().kernel_grad().clone();
    let bias_grad = model.dense().bias_grad().clone();
    assert!(table_grad.iter().any(|&g| g != 0.0));

    let eps = 1e-2f32;
    let check = |numeric: f64, analytic: f32, what: String| {
        let diff = (numeric - f64::from(analytic)).abs();
        assert!(
            diff < 2e-3 + 1e-2 * numeric.abs(),
            "{what}: numeric {numeric}, analytic {analytic}"
        );
    };
    // Table rows (padding row 0 gets no gradient and is left out of bags).
    for (i, &g) in table_grad.iter().enumerate() {
        let orig = model.bag().weights()[i];
        model.bag_mut().weights_mut()[i] = orig + eps;
        let up = loss_of(&mut model, &ids, &y);
        model.bag_mut().weights_mut()[i] = orig - eps;
        let down = loss_of(&mut model, &ids, &y);
        model.bag_mut().weights_mut()[i] = orig;
        check((up - down) / (2.0 * f64::from(eps)), g, format!("table[{i}]"));
    }
    for ((r, c), &g) in kernel_grad.indexed_iter() {
        let orig = model.dense().kernel()[[r, c]];
        model.dense_mut().kernel_mut()[[r, c]] = orig + eps;
        let up = loss_of(&mut model, &ids, &y);
        model.dense_mut().kernel_mut()[[r, c]] = orig - eps;
        let down = loss_of(&mut model, &ids, &y);
        model.dense_mut().kernel_mut()[[r, c]] = orig;
        check((up - down) / (2.0 * f64::from(eps)), g, format!("kernel[{r}, {c}]"));
    }
    if let Some(hidden_grad) = model.hidden_bias_grad().cloned() {
        assert!(hidden_grad.iter().any(|&g| g != 0.0));
        for (c, &g) in hidden_grad.iter().enumerate() {
            let orig = model.hidden_bias().unwrap().to_vec();
            let mut moved = orig.clone();
            moved[c] = orig[c] + eps;
            model.set_hidden_bias(moved.clone()).unwrap();
            let up = loss_of(&mut model, &ids, &y);
            moved[c] = orig[c] - eps;
            model.set_hidden_bias(moved).unwrap();
            let down = loss_of(&mut model, &ids, &y);
            model.set_hidden_bias(orig).unwrap();
            check((up - down) / (2.0 * f64::from(eps)), g, format!("hidden bias[{c}]"));
        }
    }
    for (c, &g) in bias_grad.iter().enumerate() {
        let orig = model.dense().bias()[c];
        model.dense_mut().bias_mut()[c] = orig + eps;
        let up = loss_of(&mut model, &ids, &y);
        model.dense_mut().bias_mut()[c] = orig - eps;
        let down = loss_of(&mut model, &ids, &y);
        model.dense_mut().bias_mut()[c] = orig;
        check((up - down) / (2.0 * f64::from(eps)), g, format!("bias[{c}]"));
    }
}

/// Padding a batch to a longer length changes nothing.
#[test]
fn padding_does_not_change_the_output() {
    let mut model = small_model(0);
    let short = array![[1u32, 2, 3], [4, 0, 0]];
    let long = array![[1u32, 2, 3, 0, 0, 0], [4, 0, 0, 0, 0, 0]];
    assert_eq!(model.predict(short.view(), 8).unwrap(), model.predict(long.view(), 1).unwrap());
}

/// Training separates two classes told apart by a bigram only: the
/// words are the same, their order differs.
#[test]
fn bigrams_tell_word_order_apart() {
    let config = BagClassifierConfig::new(4, 2).with_embedding_dim(8).with_bigram_buckets(64);
    let docs: Vec<Vec<u32>> =
        (0..40).map(|i| if i % 2 == 0 { vec![1, 2, 3] } else { vec![3, 2, 1] }).collect();
    let ids = config.documents(docs.iter().map(Vec::as_slice), None);
    let y = Array1::from((0..40).map(|i| (i % 2) as f32).collect::<Vec<_>>()).into_dyn();
    let mut model = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
    let train = TrainConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        AdamConfig::new().with_learning_rate(0.05).into(),
    )
    .with_metrics(vec![Metric::Accuracy])
    .with_epochs(20)
    .with_batch_size(4);
    model.fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &train, &mut NoObserver).unwrap();
    let e = model
        .evaluate(Dataset::new(ids.view(), y.view()).unwrap(), &train.loss, &train.metrics, 16)
        .unwrap();
    assert_eq!(e.metrics["accuracy"], 1.0);

    let words_only = BagClassifierConfig::new(4, 2).with_bigram_buckets(0);
    let ids = words_only.documents(docs.iter().map(Vec::as_slice), None);
    let reversed: Vec<u32> = ids.row(1).iter().rev().copied().collect();
    assert_eq!(ids.row(0).to_vec(), reversed);
}

#[test]
fn ids_past_the_table_are_errors() {
    let mut model = small_model(0);
    let err = model.predict(array![[1u32, 11]].view(), 4).unwrap_err();
    assert!(matches!(err, Error::IdOutOfRange { id: 11, .. }), "{err}");
    // Also when weights are looked up before the table (TF-IDF).
    for weighting in [BagWeighting::TfIdf, BagWeighting::TfIdfL2] {
        let config =
            BagClassifierConfig::new(6, 3).with_bigram_buckets(5).with_weighting(weighting);
        let mut model = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
        model.adapt(array![[1u32, 2]].view(), &[]).unwrap();
        // The first id past the table in input order is named.
        let err = model.predict(array![[1u32, 12, 11]].view(), 4).unwrap_err();
        assert!(
            matches!(err, Error::IdOutOfRange { id: 12, num_embeddings: 11 }),
            "{weighting:?}: {err}"
        );
    }
}

/// Save → load gives the same weights, configs and vocabulary; the kind
/// is recorded, a sequential loader refuses the file, and the word rows
/// export as vectors.
#[test]
fn save_load_round_trip() {
    let mut model = small_model(7);
    let ids = array![[1u32, 2, 3], [4, 5, 0]];
    let mut saved = SavedBagClassifier::new(model.clone());
    saved.vocab = Some(["", "[UNK]", "a", "b", "c", "d"].map(String::from).to_vec());
    saved.train_config = Some(BagClassifier::default_train_config());
    saved.metadata.insert("classes".into(), "[\"x\",\"y\",\"z\"]".into());
    let path = std::env::temp_dir().join(format!("embkit-bag-{}", std::process::id()));
    let dir = TempDir(path);
    saved.save(dir.path()).unwrap();
    assert_eq!(ModelKind::of_dir(dir.path()).unwrap(), ModelKind::BagClassifier);
    let mut back = SavedBagClassifier::load(dir.path()).unwrap();
    assert_eq!(back.model.config(), model.config());
    assert_eq!(back.model.bag().weights(), model.bag().weights());
    assert_eq!(back.model.dense().kernel(), model.dense().kernel());
    assert_eq!(back.vocab, saved.vocab);
    assert_eq!(back.train_config, saved.train_config);
    assert_eq!(back.metadata, saved.metadata);
    assert_eq!(back.model.predict(ids.view(), 2).unwrap(), model.predict(ids.view(), 2).unwrap());
    let err = SavedModel::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("bag_classifier"), "{err}");

    let vectors = Vectors::read(dir.path(), VectorFormat::Model).unwrap();
    assert_eq!((vectors.len(), vectors.dim()), (6, 4));
    assert_eq!(vectors.get("b").unwrap(), &model.bag().weights()[12..16]);

    // A vocabulary of the wrong size is refused on load.
    std::fs::write(dir.path().join("vocab.txt"), "a\nb\n").unwrap();
    let err = SavedBagClassifier::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("has 2 words"), "{err}");
}

/// Keras's `TextVectorization(output_mode="tf_idf")` weighs a token by
/// `idf = ln(1 + N / (1 + df))` over the `N` documents of `adapt`, times
/// its count; a `Dense` layer on that vector is the sum of its kernel rows
/// so weighted, which the TF-IDF bag computes.
#[test]
fn tf_idf_bags_sum_rows_weighted_by_keras_idf() {
    let config = BagClassifierConfig::new(5, 2)
        .with_embedding_dim(2)
        .with_bigram_buckets(0)
        .with_weighting(BagWeighting::TfIdf);
    let mut model = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
    let ids = array![[1u32, 2, 2], [1, 3, 0]];
    let err = model.predict(ids.view(), 2).unwrap_err();
    assert!(err.to_string().contains("call adapt"), "{err}");
    model.adapt(ids.view(), &[]).unwrap();
    // N = 2: word 1 in both (df 2), words 2 and 3 in one each (df 1; word
    // 2 twice in its document still counts once).
    let (i1, i2) = ((1.0f64 + 2.0 / 3.0).ln(), (1.0f64 + 2.0 / 2.0).ln());
    let mean = (i1 + 2.0 * i2) / 3.0; // rows no bag holds (0 and 4)
    let want = [mean, i1, i2, i2, mean];
    for (got, want) in model.idf().unwrap().iter().zip(want) {
        assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
    }
    // Rows r_k: document 1 pools idf1·r1 + 2·idf2·r2, document 2
    // idf1·r1 + idf2·r3 (padding left out); identity kernel, zero bias.
    let rows = [[0.0f32, 0.0], [1.0, 0.5], [-0.5, 2.0], [0.25, -1.0], [0.0, 0.0]];
    model.bag_mut().weights_mut().copy_from_slice(rows.as_flattened());
    model.dense_mut().kernel_mut().assign(&array![[1.0, 0.0], [0.0, 1.0]]);
    let (a, b) = (i1 as f32, i2 as f32);
    let pooled = [[a - 2.0 * b * 0.5, a * 0.5 + 2.0 * b * 2.0], [a + b * 0.25, a * 0.5 - b]];
    let p = model.predict(ids.view(), 2).unwrap();
    for (row, z) in p.rows().into_iter().zip(pooled) {
        let softmax1 = 1.0 / (1.0 + (z[0] - z[1]).exp());
        assert!((row[1] - softmax1).abs() < 1e-6, "{row} vs {z:?}");
    }
    // Bad weights are refused; a mean bag has none.
    let err = model.set_idf(vec![1.0; 4]).unwrap_err();
    assert!(err.to_string().contains("one per row"), "{err}");
    let err = model.set_idf(vec![1.0, f32::NAN, 1.0, 1.0, 1.0]).unwrap_err();
    assert!(err.to_string().contains("row 1 has NaN"), "{err}");
    let mut mean_bag = BagClassifierConfig::new(5, 2).init(&mut StdRng::seed_from_u64(0)).unwrap();
    assert!(mean_bag.set_idf(vec![1.0; 200_005]).is_err());
    assert!(model.adapt(array![[7u32]].view(), &[]).is_err(), "an id past the table");
    assert!(model.adapt(ids.view(), &[9]).is_err(), "an OOV id past the table");
}

/// `adapt` over a vectorizer's ids gives its tokens the idf of Keras's
/// `tf_idf` mode (embkit's `TextVectorizer` computes them as Keras, and is
/// checked against Keras's numbers elsewhere) and its OOV id their mean.
#[test]
fn adapt_matches_the_keras_tf_idf_vectorizer() {
    use embkit::vocab::{OutputMode, TextVectorizerConfig};
    // Four tokens kept: the rarer words are the OOV id's, in the bags too
    // (int mode counts the mask in max_tokens, tf_idf mode has no mask).
    let texts = ["the cat sat", "the dog sat down", "a cat and a dog", "the end"];
    let ids_of = TextVectorizerConfig::new().with_max_tokens(6).adapt(texts).unwrap();
    let tf_idf = TextVectorizerConfig::new()
        .with_max_tokens(5)
        .with_output_mode(OutputMode::TfIdf)
        .adapt(texts)
        .unwrap();
    let want = tf_idf.idf_weights().unwrap(); // [UNK], then the tokens
    let words: Vec<Vec<u32>> = texts.iter().map(|t| ids_of.vectorize(t)).collect();
    assert!(words.iter().flatten().any(|&id| id == 1), "the bags hold the OOV id");
    let config = BagClassifierConfig::new(ids_of.vocab_size(), 2)
        .with_bigram_buckets(0)
        .with_weighting(BagWeighting::TfIdf);
    let bags = config.documents(words.iter().map(Vec::as_slice), None);
    let mut model = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
    let oov: Vec<u32> = ids_of.vocabulary().oov_ids().collect();
    assert_eq!(oov, [1]);
    model.adapt(bags.view(), &oov).unwrap();
    // Row 0 is the mask (padding), rows 1.. the vectorizer's columns 0..
    let got = &model.idf().unwrap()[1..];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

/// Dropout acts in training only; a TF-IDF bag with a hidden layer saves
/// and loads with its idf weights.
#[test]
fn hidden_layers_and_idf_round_trip() {
    let config = BagClassifierConfig::new(6, 3)
        .with_embedding_dim(4)
        .with_bigram_buckets(5)
        .with_weighting(BagWeighting::TfIdf)
        .with_hidden(Activation::Relu, 0.5);
    assert_eq!(config.init, embkit::Init::GlorotUniform);
    let mut model = config.init(&mut StdRng::seed_from_u64(1)).unwrap();
    let ids = array![[1u32, 2, 3], [4, 5, 0], [2, 2, 1]];
    model.adapt(ids.view(), &[]).unwrap();
    assert_eq!(model.hidden_bias().unwrap(), Array1::<f32>::zeros(4), "it starts at zero");
    model.set_hidden_bias(vec![0.5, -0.25, 0.0, 1.0]).unwrap();
    assert!(model.set_hidden_bias(vec![0.0; 3]).is_err());
    assert!(model.set_hidden_bias(vec![f32::NAN, 0.0, 0.0, 0.0]).is_err());
    let once = model.predict(ids.view(), 3).unwrap();
    assert_eq!(model.predict(ids.view(), 3).unwrap(), once);
    let trained = model.forward(ids.view(), true).unwrap();
    assert_ne!(trained, once.clone().into_dyn(), "dropout in training");
    let dir =
        TempDir(std::env::temp_dir().join(format!("embkit-bag-tfidf-{}", std::process::id())));
    SavedBagClassifier::new(model.clone()).save(dir.path()).unwrap();
    let mut back = SavedBagClassifier::load(dir.path()).unwrap().model;
    assert_eq!(back.config(), model.config());
    assert_eq!(back.idf(), model.idf());
    assert_eq!(back.hidden_bias(), model.hidden_bias());
    assert_eq!(back.predict(ids.view(), 3).unwrap(), once);
    // Settings that cannot work are errors that name them.
    let bad = config.clone().with_hidden(Activation::Softmax, 0.0);
    assert!(bad.validate().unwrap_err().to_string().contains("hidden_activation"));
    let mut bad = BagClassifierConfig::new(6, 3);
    bad.hidden_bias = true;
    assert!(bad.validate().unwrap_err().to_string().starts_with(
        "invalid hidden_bias: a hidden bias needs a hidden activation (hidden_activation is linear"
    ));
    let bad = config.with_hidden(Activation::Relu, 1.0);
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "invalid dropout: must be in [0, 1), got 1"
    );
    // A mean bag's file with idf weights, or a TF-IDF file without them,
    // is refused on load.
    let mean_file = SavedBagClassifier::new(
        BagClassifierConfig::new(6, 3).init(&mut StdRng::seed_from_u64(1)).unwrap(),
    )
    .to_bytes()
    .unwrap();
    let with_idf = SavedBagClassifier::new(model.clone()).to_bytes().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(text(&with_idf).contains("bag.idf") && !text(&mean_file).contains("bag.idf"));
    // The new features are format version 2 (a version-1 reader refuses
    // the file); a fastText bag stays version 1.
    assert!(text(&with_idf).contains(r#""format_version":"2""#));
    assert!(text(&mean_file).contains(r#""format_version":"1""#));
    let mut as_v1 = with_idf.clone();
    let at = with_idf.windows(18).position(|w| w == br#""format_version":""#).unwrap() + 18;
    as_v1[at] = b'1';
    let err = SavedBagClassifier::from_bytes(&as_v1, "m.safetensors").unwrap_err();
    assert!(err.to_string().contains("needs version 2"), "{err}");
    let header_len = u64::from_le_bytes(with_idf[..8].try_into().unwrap()) as usize;
    let header = text(&with_idf[8..8 + header_len]);
    let as_mean = header.replace(r#"\"weighting\":\"tf_idf\","#, "");
    assert_ne!(as_mean, header, "the weighting is in the header");
    let padded = format!("{as_mean:<width$}", width = header_len);
    let mut bytes = with_idf.clone();
    bytes[8..8 + header_len].copy_from_slice(padded.as_bytes());
    let err = SavedBagClassifier::from_bytes(&bytes, "m.safetensors").unwrap_err();
    assert!(err.to_string().contains("pools by the mean"), "{err}");
    // A hidden bias in the file but not in the config, or the other way
    // round, is refused.
    let without_bias = header.replace(r#",\"hidden_bias\":true"#, "");
    assert_ne!(without_bias, header, "the hidden bias is in the header");
    let mut bytes = with_idf.clone();
    bytes[8..8 + header_len]
        .copy_from_slice(format!("{without_bias:<width$}", width = header_len).as_bytes());
    let err = SavedBagClassifier::from_bytes(&bytes, "m.safetensors").unwrap_err();
    assert!(err.to_string().contains("has a hidden bias (hidden.bias), but its config"), "{err}");
    let no_tensor = header.replace(r#""hidden.bias":"#, r#""hidden.bia_":"#);
    assert_ne!(no_tensor, header);
    let mut bytes = with_idf.clone();
    bytes[8..8 + header_len].copy_from_slice(no_tensor.as_bytes());
    let err = SavedBagClassifier::from_bytes(&bytes, "m.safetensors").unwrap_err();
    assert!(err.to_string().contains("hidden.bias"), "{err}");
    // Saving before adapt says why.
    let fresh = BagClassifierConfig::new(6, 3)
        .with_weighting(BagWeighting::TfIdf)
        .init(&mut StdRng::seed_from_u64(1))
        .unwrap();
    let err = SavedBagClassifier::new(fresh).save(dir.path()).unwrap_err();
    assert!(err.to_string().contains("after adapt"), "{err}");
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `TfIdfL2` weighs as scikit-learn 1.9's `TfidfVectorizer()` (count ·
/// idf, `idf = ln((1 + N) / (1 + df)) + 1`, L2-normalised per document,
/// terms outside the vocabulary left out). With the rows as the logits and
/// an identity table, a document's logits are its TF-IDF vector. Reference
/// values from `TfidfVectorizer(analyzer=lambda d: d)` fitted on the three
/// token lists below.
#[test]
fn tf_idf_l2_bags_match_scikit_learns_vectorizer() {
    // Ids: 0 padding, 1 the OOV id, 2-5 the words a, b, c, d.
    let config = BagClassifierConfig::new(6, 6)
        .with_bigram_buckets(0)
        .with_weighting(BagWeighting::TfIdfL2)
        .with_rows_as_logits();
    assert_eq!((config.embedding_dim, config.init.clone()), (6, embkit::Init::Zeros));
    let mut model = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
    // [a b b c], [a c], [b d d]
    let train = array![[2u32, 3, 3, 4], [2, 4, 0, 0], [3, 5, 5, 0]];
    model.adapt(train.view(), &[1]).unwrap();
    // idf_ = [1.287682072, 1.287682072, 1.287682072, 1.693147181]; padding,
    // the OOV id: 0.
    let want_idf: [f64; 6] = [0.0, 0.0, 1.287_682_072, 1.287_682_072, 1.287_682_072, 1.693_147_181];
    for (got, want) in model.idf().unwrap().iter().zip(want_idf) {
        assert!((f64::from(*got) - want).abs() < 1e-6, "{:?}", model.idf());
    }
    let mut identity = Array2::<f32>::eye(6);
    model.bag_mut().weights_mut().copy_from_slice(identity.as_slice_mut().unwrap());
    // transform([a b b c], [a c], [b d d], [a b b OOV d], [OOV]); the
    // order of a bag's ids does not matter.
    use std::f64::consts::FRAC_1_SQRT_2;
    let docs = array![
        [2u32, 3, 3, 4, 0],
        [4, 2, 0, 0, 0],
        [5, 3, 5, 0, 0],
        [3, 2, 1, 5, 3],
        [1, 0, 0, 0, 0]
    ];
    let want = [
        [0.408_248_29, 0.816_496_58, 0.408_248_29, 0.0],
        [FRAC_1_SQRT_2, 0.0, FRAC_1_SQRT_2, 0.0], // 0.707106781 both
        [0.0, 0.355_432_47, 0.0, 0.934_701_96],
        [0.385_502_92, 0.771_005_84, 0.0, 0.506_890_02],
        [0.0, 0.0, 0.0, 0.0],
    ];
    let p = model.predict(docs.view(), 5).unwrap();
    for (row, tf_idf) in p.rows().into_iter().zip(want) {
        // Softmax of the logits [0, 0, tf_idf...] (zero bias).
        let z: Vec<f64> = [0.0, 0.0].into_iter().chain(tf_idf).collect();
        let total: f64 = z.iter().map(|v| v.exp()).sum();
        for (got, zi) in row.iter().zip(&z) {
            assert!((f64::from(*got) - zi.exp() / total).abs() < 1e-6, "{row} vs {tf_idf:?}");
        }
    }
}

/// Gradients through L2-normalised TF-IDF weights with the rows as the
/// logits (the output kernel, fixed at the identity, still has its true
/// gradient; the step leaves it out).
#[test]
fn tf_idf_l2_logit_rows_gradients_match_finite_differences() {
    let config = BagClassifierConfig::new(6, 3)
        .with_bigram_buckets(5)
        .with_weighting(BagWeighting::TfIdfL2)
        .with_rows_as_logits();
    let mut model = config.init(&mut StdRng::seed_from_u64(5)).unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    model.bag_mut().weights_mut().iter_mut().for_each(|w| *w = rng.random_range(-1.0..1.0));
    let docs: Vec<&[u32]> = vec![&[1, 2, 3, 2], &[4, 5], &[2, 0, 1], &[5, 5, 5, 3, 1]];
    let ids = config.documents(docs, None);
    model.adapt(ids.view(), &[]).unwrap();
    check_gradients(model, &ids);
}

/// With the rows as the logits, training moves the rows and the bias but
/// never the identity kernel; the model saves and loads (format version
/// 2), and files or settings that break the rule are refused.
#[test]
fn logit_rows_train_the_rows_and_bias_only() {
    let config = BagClassifierConfig::new(6, 3)
        .with_bigram_buckets(0)
        .with_weighting(BagWeighting::TfIdfL2)
        .with_rows_as_logits();
    let mut model = config.init(&mut StdRng::seed_from_u64(2)).unwrap();
    let ids = array![[1u32, 2, 0], [3, 4, 4], [5, 5, 1], [2, 3, 0]];
    let y = Array1::from(vec![0.0f32, 1.0, 2.0, 0.0]).into_dyn();
    model.adapt(ids.view(), &[]).unwrap();
    let train = TrainConfig::new(
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        AdamConfig::new().with_learning_rate(0.1).into(),
    )
    .with_epochs(20)
    .with_batch_size(2)
    .with_clipping(embkit::GradientClipping::new().with_global_clipnorm(1.0));
    let history = model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &train, &mut NoObserver)
        .unwrap();
    assert!(history.epochs.last().unwrap().loss < history.epochs[0].loss);
    assert_eq!(model.dense().kernel(), Array2::<f32>::eye(3));
    assert!(model.dense().bias().iter().any(|&b| b != 0.0));
    let p = model.predict(ids.view(), 4).unwrap();
    for (row, want) in p.rows().into_iter().zip([0, 1, 2, 0]) {
        assert!(row[want] > 0.5, "{row}");
    }
    let bytes = SavedBagClassifier::new(model.clone()).to_bytes().unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.contains(r#""format_version":"2""#) && text.contains("rows_are_logits"));
    let mut back = SavedBagClassifier::from_bytes(&bytes, "m.safetensors").unwrap().model;
    assert_eq!(back.predict(ids.view(), 4).unwrap(), p);
    // A kernel that is not the identity is refused by save and by load.
    let mut bent = model.clone();
    bent.dense_mut().kernel_mut()[[0, 1]] = 0.5;
    let err = SavedBagClassifier::new(bent).to_bytes().unwrap_err();
    assert!(err.to_string().ends_with("must be the identity; kernel[0, 1] is 0.5"), "{err}");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = header["dense.kernel"]["data_offsets"][0].as_u64().unwrap() as usize;
    let at = 8 + header_len + start + 4; // kernel[0, 1], little-endian f32
    let mut bent_file = bytes.clone();
    bent_file[at..at + 4].copy_from_slice(&0.5f32.to_le_bytes());
    let err = SavedBagClassifier::from_bytes(&bent_file, "m.safetensors").unwrap_err();
    assert!(err.to_string().ends_with("must be the identity; kernel[0, 1] is 0.5"), "{err}");
    // Settings that break the rule name it.
    let bad = config.clone().with_embedding_dim(4);
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "invalid rows_are_logits: the rows are the logits, so embedding_dim (4) must equal \
         num_classes (3)"
    );
    let bad = config.with_hidden(Activation::Relu, 0.0);
    assert!(
        bad.validate().unwrap_err().to_string().ends_with(
            "there is no hidden layer for an activation or dropout (hidden_activation relu, \
             dropout 0)"
        ),
        "{:?}",
        bad.validate()
    );
}
