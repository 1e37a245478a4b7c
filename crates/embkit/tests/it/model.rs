//! Integration tests: the Sequential model, training, saving and loading.

use embkit::format::SavedModel;
use embkit::{
    Activation, AdamConfig, Dataset, EarlyStopping, EmbeddingConfig, Error, Loss, Metric, Model,
    NoObserver, Observer, OptimizerConfig, RmsPropConfig, Sequential, SequentialConfig,
    TrainConfig,
};
use ndarray::{Array2, ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Documents of 6 ids from a vocabulary of 20; the label is 1 when id 1
/// ("good") occurs more often than id 2 ("bad"), with ties broken by id 3.
fn sentiment(n: usize, seed: u64) -> (Array2<u32>, ArrayD<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = Array2::from_shape_fn((n, 6), |_| rng.random_range(0..20u32));
    let labels = ids
        .outer_iter()
        .map(|row| {
            let good = row.iter().filter(|&&i| i == 1 || i == 3).count();
            let bad = row.iter().filter(|&&i| i == 2 || i == 4).count();
            f32::from(u8::from(good > bad || (good == bad && row[0] % 2 == 0)))
        })
        .collect::<Vec<_>>();
    (ids, ArrayD::from_shape_vec(IxDyn(&[n, 1]), labels).unwrap())
}

fn binary_model(seed: u64) -> Sequential {
    SequentialConfig::new(EmbeddingConfig::new(20, 4), 6)
        .flatten()
        .dense(1, Activation::Sigmoid)
        .init(&mut StdRng::seed_from_u64(seed))
        .unwrap()
}

fn adam(lr: f32) -> OptimizerConfig {
    AdamConfig::new().with_learning_rate(lr).into()
}

fn binary_config(epochs: usize) -> TrainConfig {
    TrainConfig::new(Loss::BinaryCrossentropy { from_logits: false }, adam(0.05))
        .with_metrics(vec![Metric::Accuracy])
        .with_epochs(epochs)
        .with_batch_size(16)
        .with_seed(7)
}

#[test]
fn fit_lowers_the_loss_and_learns_the_rule() {
    let (ids, y) = sentiment(600, 1);
    let mut model = binary_model(0);
    let data = Dataset::new(ids.view(), y.view()).unwrap();
    let history = model
        .fit(data, None, &binary_config(15).with_validation_split(0.2), &mut NoObserver)
        .unwrap();
    let losses: Vec<f64> = history.epochs.iter().map(|e| e.loss).collect();
    assert_eq!(losses.len(), 15);
    assert!(losses[14] < losses[0] * 0.7, "losses {losses:?}");
    let last = history.epochs.last().unwrap();
    assert!(last.val_loss.is_some());
    assert!(last.metrics["accuracy"] > 0.85, "{last:?}");
    assert!(last.val_metrics["accuracy"] > 0.8, "{last:?}");
}

#[test]
fn the_same_seed_gives_the_same_model() {
    let (ids, y) = sentiment(200, 2);
    let run = || {
        let mut model = binary_model(3);
        let data = Dataset::new(ids.view(), y.view()).unwrap();
        let h = model.fit(data, None, &binary_config(3), &mut NoObserver).unwrap();
        (h, model.embedding().weights().to_vec())
    };
    assert_eq!(run(), run());
}

#[test]
fn softmax_classifier_trains_with_sparse_labels() {
    // Three classes: the class is the first id modulo 3.
    let mut rng = StdRng::seed_from_u64(4);
    let ids = Array2::from_shape_fn((300, 3), |_| rng.random_range(0..9u32));
    let y = ArrayD::from_shape_vec(
        IxDyn(&[300]),
        ids.column(0).iter().map(|&i| (i % 3) as f32).collect(),
    )
    .unwrap();
    let mut model = SequentialConfig::new(EmbeddingConfig::new(9, 4), 3)
        .flatten()
        .dense(3, Activation::Softmax)
        .init(&mut StdRng::seed_from_u64(5))
        .unwrap();
    let config =
        TrainConfig::new(Loss::SparseCategoricalCrossentropy { from_logits: false }, adam(0.05))
            .with_metrics(vec![Metric::Accuracy])
            .with_epochs(20);
    let data = Dataset::new(ids.view(), y.view()).unwrap();
    let h = model.fit(data.clone(), None, &config, &mut NoObserver).unwrap();
    assert!(h.epochs.last().unwrap().metrics["accuracy"] > 0.95, "{:?}", h.epochs.last());
    let probs = model.predict(ids.view(), 64).unwrap();
    assert_eq!(probs.shape(), &[300, 3]);
    for row in probs.outer_iter() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
    let e = model.evaluate(data, &config.loss, &config.metrics, 32).unwrap();
    assert!(e.metrics["accuracy"] > 0.95);
}

/// Counts what the observer is told.
#[derive(Default)]
struct Recorder {
    batches: usize,
    epochs: Vec<usize>,
    stopped: Option<usize>,
}

impl Observer for Recorder {
    fn batch_end(&mut self, _: usize, _: usize, _: f64) {
        self.batches += 1;
    }
    fn epoch_end(&mut self, log: &embkit::EpochLog) {
        self.epochs.push(log.epoch);
    }
    fn stopped_early(&mut self, epoch: usize) {
        self.stopped = Some(epoch);
    }
}

#[test]
fn observer_sees_every_batch_and_epoch() {
    let (ids, y) = sentiment(50, 5);
    let mut model = binary_model(0);
    let mut rec = Recorder::default();
    model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &binary_config(2), &mut rec)
        .unwrap();
    // 50 samples in batches of 16: 4 batches per epoch.
    assert_eq!(rec.batches, 8);
    assert_eq!(rec.epochs, vec![1, 2]);
}

#[test]
fn early_stopping_stops_and_restores_the_best_epoch() {
    // Validation labels are the opposite of the rule: the better the model
    // learns, the worse the validation loss gets.
    let (ids, y) = sentiment(300, 6);
    let (vids, vy) = sentiment(100, 7);
    let vy = vy.mapv(|v| 1.0 - v);
    let mut model = binary_model(1);
    let config = binary_config(40).with_early_stopping(
        EarlyStopping::new("val_loss").with_patience(2).with_restore_best_weights(true),
    );
    let mut rec = Recorder::default();
    let train = Dataset::new(ids.view(), y.view()).unwrap();
    let val = Dataset::new(vids.view(), vy.view()).unwrap();
    let h = model.fit(train, Some(val.clone()), &config, &mut rec).unwrap();
    let stopped = h.stopped_epoch.expect("training stops early");
    assert_eq!(rec.stopped, Some(stopped));
    let val_losses: Vec<f64> = h.epochs.iter().map(|e| e.val_loss.unwrap()).collect();
    let best = val_losses.iter().cloned().fold(f64::INFINITY, f64::min);
    let best_epoch = val_losses.iter().position(|&v| v == best).unwrap() + 1;
    // Keras's patience 2: training stops after the second epoch in a row
    // without improvement.
    assert_eq!(stopped, best_epoch + 2, "{val_losses:?}");
    assert_eq!(h.epochs.len(), stopped);
    assert_eq!(h.restored_epoch, Some(best_epoch));
    let now = model.evaluate(val, &config.loss, &[], 16).unwrap().loss;
    assert!((now - best).abs() < 1e-9, "{now} vs {best}");
}

#[test]
fn early_stopping_on_an_unknown_value_names_the_known_ones() {
    let (ids, y) = sentiment(40, 8);
    let mut model = binary_model(0);
    let config = binary_config(2).with_early_stopping(EarlyStopping::new("val_auc"));
    let err = model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver)
        .unwrap_err();
    assert!(err.to_string().contains("`val_auc` is not logged"), "{err}");
    assert!(err.to_string().contains("accuracy"), "{err}");
}

#[test]
fn a_nan_loss_stops_training_and_keeps_the_last_good_weights() {
    let (mut ids, y) = sentiment(48, 9);
    // Row 19 is NaN and only the third batch of 16 (samples 32..48) uses it.
    ids.mapv_inplace(|id| id.min(18));
    ids[[40, 0]] = 19;
    let config = binary_config(1).with_shuffle(false);
    let poisoned = || {
        let mut m = binary_model(2);
        m.embedding_mut().weights_mut()[19 * 4] = f32::NAN;
        m
    };
    let mut model = poisoned();
    let err = model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver)
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteLoss { epoch: 1, batch: 3, .. }),
        "unexpected error: {err}"
    );
    assert!(err.to_string().contains("epoch 1, batch 3"), "{err}");

    // The same two good batches alone give exactly the weights kept.
    let mut reference = poisoned();
    let first = ids.slice_axis(Axis(0), (0..32).into());
    let first_y = y.slice_axis(Axis(0), (0..32).into());
    reference.fit(Dataset::new(first, first_y).unwrap(), None, &config, &mut NoObserver).unwrap();
    let bits =
        |m: &Sequential| m.embedding().weights().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&model), bits(&reference));
    assert_eq!(dense_kernel(&model), dense_kernel(&reference));
}

#[test]
fn a_nan_target_is_a_data_error() {
    let (ids, mut y) = sentiment(20, 9);
    y[[5, 0]] = f32::NAN;
    let mut model = binary_model(2);
    let err = model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &binary_config(1), &mut NoObserver)
        .unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (ids, y) = sentiment(20, 10);
    let mut model = binary_model(0);
    // An id past the table.
    let mut bad = ids.clone();
    bad[[3, 2]] = 20;
    let err = model
        .fit(Dataset::new(bad.view(), y.view()).unwrap(), None, &binary_config(1), &mut NoObserver)
        .unwrap_err();
    assert_eq!(err.to_string(), "id 20 is out of range for a table of 20 rows");
    // Wrong sequence length.
    let short = Array2::<u32>::zeros((2, 5));
    assert!(matches!(model.predict(short.view(), 8), Err(Error::ShapeMismatch { .. })));
    // Batch size 0.
    let err = model
        .fit(
            Dataset::new(ids.view(), y.view()).unwrap(),
            None,
            &binary_config(1).with_batch_size(0),
            &mut NoObserver,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid batch_size: must be at least 1, got 0");
    assert!(model.predict(ids.view(), 0).is_err());
    // No samples.
    let none = Array2::<u32>::zeros((0, 6));
    let none_y = ArrayD::<f32>::zeros(IxDyn(&[0, 1]));
    let err = model
        .fit(
            Dataset::new(none.view(), none_y.view()).unwrap(),
            None,
            &binary_config(1),
            &mut NoObserver,
        )
        .unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
    // Targets for a different number of samples.
    assert!(Dataset::new(ids.view(), none_y.view()).is_err());
    // Backward without a training forward.
    assert!(matches!(
        model.backward(&Loss::MeanSquaredError, y.view()),
        Err(Error::InvalidState(_))
    ));
}

#[test]
fn invalid_model_configs_are_refused() {
    let mut rng = StdRng::seed_from_u64(0);
    let err = SequentialConfig::new(EmbeddingConfig::new(10, 0), 4).init(&mut rng).unwrap_err();
    assert_eq!(err.to_string(), "invalid embedding_dim: must be at least 1, got 0");
    assert!(SequentialConfig::new(EmbeddingConfig::new(10, 2), 0).init(&mut rng).is_err());
    // Pooling after Flatten has no steps axis.
    let err = SequentialConfig::new(EmbeddingConfig::new(10, 2), 4)
        .flatten()
        .global_average_pooling_1d()
        .init(&mut rng)
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
}

/// The model's whole backward (embedding row gradients through Flatten,
/// Dense and the loss computed from logits) against central differences.
#[test]
fn sequential_gradient_matches_finite_differences() {
    for (activation, loss, targets) in [
        (
            Activation::Sigmoid,
            Loss::BinaryCrossentropy { from_logits: false },
            ArrayD::from_shape_vec(IxDyn(&[3, 1]), vec![1.0, 0.0, 1.0]).unwrap(),
        ),
        (
            Activation::Softmax,
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            ArrayD::from_shape_vec(IxDyn(&[3]), vec![2.0, 0.0, 1.0]).unwrap(),
        ),
    ] {
        let units = if activation == Activation::Sigmoid { 1 } else { 3 };
        let mut model = SequentialConfig::new(
            EmbeddingConfig::new(5, 3).with_init(embkit::Init::Uniform { bound: 0.5 }),
            4,
        )
        .global_average_pooling_1d()
        .dense(units, activation)
        .init(&mut StdRng::seed_from_u64(11))
        .unwrap();
        let ids = Array2::from_shape_vec((3, 4), vec![0, 1, 1, 4, 2, 2, 2, 0, 3, 1, 4, 4]).unwrap();
        model.forward(ids.view(), true).unwrap();
        model.backward(&loss, targets.view()).unwrap();
        let grad = model.embedding().grad().clone();
        let dense = grad.to_dense(5);
        let loss_at = |m: &mut Sequential| {
            m.forward(ids.view(), true).unwrap();
            f64::from(m.backward(&loss, targets.view()).unwrap())
        };
        let eps = 1e-2f32;
        for (i, &analytic) in dense.iter().enumerate() {
            let mut plus = model.clone();
            plus.embedding_mut().weights_mut()[i] += eps;
            let mut minus = model.clone();
            minus.embedding_mut().weights_mut()[i] -= eps;
            let numeric = (loss_at(&mut plus) - loss_at(&mut minus)) / (2.0 * f64::from(eps));
            assert!(
                (numeric - f64::from(analytic)).abs() < 2e-3,
                "{activation:?} weight {i}: numeric {numeric} vs analytic {analytic}"
            );
        }
        // Row 3 and 4 were seen, so they have rows; every id is there.
        assert_eq!(grad.ids(), &[0, 1, 2, 3, 4]);
    }
}

#[test]
fn a_frozen_table_does_not_move() {
    let (ids, y) = sentiment(64, 12);
    let mut model = SequentialConfig::new(EmbeddingConfig::new(20, 4).with_trainable(false), 6)
        .flatten()
        .dense(1, Activation::Sigmoid)
        .init(&mut StdRng::seed_from_u64(0))
        .unwrap();
    let before = model.embedding().weights().to_vec();
    let kernel_before = dense_kernel(&model);
    model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &binary_config(2), &mut NoObserver)
        .unwrap();
    assert_eq!(model.embedding().weights(), &before[..]);
    assert_ne!(dense_kernel(&model), kernel_before);
}

fn dense_kernel(model: &Sequential) -> Vec<f32> {
    match &model.layers()[1] {
        embkit::Layer::Dense(d) => d.kernel().iter().copied().collect(),
        other => panic!("expected Dense, got {other:?}"),
    }
}

#[test]
fn saved_model_predicts_the_same_after_loading() {
    let (ids, y) = sentiment(100, 13);
    let mut model = binary_model(4);
    let config = binary_config(2);
    let history = model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver)
        .unwrap();
    let before = model.predict(ids.view(), 32).unwrap();

    let dir = std::env::temp_dir().join(format!("embkit-it-save-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut saved = SavedModel::new(model);
    saved.vocab = Some((0..20).map(|i| format!("tok{i}")).collect());
    saved.history = Some(history.clone());
    saved.train_config = Some(config.clone());
    saved.metadata.insert("classes".into(), "neg pos".into());
    saved.save(&dir).unwrap();
    // Nothing temporary is left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["model.safetensors", "vocab.txt"]);

    let mut loaded = SavedModel::load(&dir).unwrap();
    assert_eq!(loaded.model.predict(ids.view(), 32).unwrap(), before);
    assert_eq!(loaded.history, Some(history));
    assert_eq!(loaded.train_config, Some(config));
    assert_eq!(loaded.vocab.as_ref().unwrap()[7], "tok7");
    assert_eq!(loaded.metadata["classes"], "neg pos");

    // A truncated file is a clear error.
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = SavedModel::load(&dir).unwrap_err();
    assert!(matches!(err, Error::BadModelFile { .. }), "{err}");
    assert!(err.to_string().contains("not a model file"), "{err}");
    // So is a file that is not safetensors at all.
    std::fs::write(&path, b"hello world, not a model").unwrap();
    assert!(matches!(SavedModel::load(&dir), Err(Error::BadModelFile { .. })));
    // A missing directory names the file.
    let err = SavedModel::load(dir.join("nope")).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_foreign_safetensors_file_is_refused() {
    let data = vec![0u8; 16];
    let view = safetensors_view(&data);
    let bytes = view.unwrap();
    let err = SavedModel::from_bytes(&bytes, "foreign.safetensors").unwrap_err();
    assert!(err.to_string().contains("metadata has no `format`"), "{err}");
}

fn safetensors_view(data: &[u8]) -> Option<Vec<u8>> {
    // A valid safetensors file (one f32 tensor) written by hand: an 8-byte
    // little-endian header length, a JSON header, then the data.
    let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    Some(out)
}

#[test]
fn another_format_version_is_refused() {
    let model = binary_model(0);
    let bytes = SavedModel::new(model).to_bytes().unwrap();
    let needle = br#""format_version":"1""#;
    let pos = bytes.windows(needle.len()).position(|w| w == needle).expect("version in the header");
    let mut changed = bytes.clone();
    changed[pos + needle.len() - 2] = b'9';
    let err = SavedModel::from_bytes(&changed, "m.safetensors").unwrap_err();
    assert!(err.to_string().contains("format version 9 is not supported"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// save → load gives a model that computes the same outputs, in memory.
    #[test]
    fn save_load_round_trip(
        rows in 1usize..30,
        dim in 1usize..6,
        seq in 1usize..5,
        units in 1usize..4,
        pool in any::<bool>(),
        seed: u64,
    ) {
        let base = SequentialConfig::new(EmbeddingConfig::new(rows, dim), seq);
        let base = if pool { base.global_average_pooling_1d() } else { base.flatten() };
        let config = base.dense(units, Activation::Tanh).dropout(0.5, 3).dense(units, Activation::Softmax);
        let mut model = config.init(&mut StdRng::seed_from_u64(seed)).unwrap();
        let bytes = SavedModel::new(model.clone()).to_bytes().unwrap();
        let mut loaded = SavedModel::from_bytes(&bytes, "mem").unwrap().model;
        prop_assert_eq!(loaded.config(), model.config());
        prop_assert_eq!(loaded.embedding().weights(), model.embedding().weights());
        let mut rng = StdRng::seed_from_u64(seed ^ 5);
        let ids = Array2::from_shape_fn((4, seq), |_| rng.random_range(0..rows as u32));
        prop_assert_eq!(loaded.predict(ids.view(), 3).unwrap(), model.predict(ids.view(), 3).unwrap());
    }
}

#[test]
fn rmsprop_training_is_reproducible_without_shuffling() {
    let (ids, y) = sentiment(64, 14);
    let config = TrainConfig::new(
        Loss::BinaryCrossentropy { from_logits: false },
        RmsPropConfig::new().into(),
    )
    .with_epochs(3)
    .with_batch_size(16)
    .with_shuffle(false);
    let run = || {
        let mut m = binary_model(5);
        m.fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver)
            .unwrap()
            .epochs
            .iter()
            .map(|e| e.loss)
            .collect::<Vec<_>>()
    };
    let losses = run();
    assert_eq!(losses, run());
    assert!(losses[2] < losses[0]);
}

#[test]
fn validation_split_takes_the_same_samples_as_keras() {
    // Keras: split_at = floor(n * (1 - split)); 0.2 of 10 leaves 8 for
    // training (an f32 0.2 would leave 7).
    let (ids, y) = sentiment(10, 15);
    let mut model = binary_model(0);
    let mut rec = Recorder::default();
    let config = binary_config(1).with_batch_size(1).with_validation_split(0.2);
    model.fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut rec).unwrap();
    assert_eq!(rec.batches, 8);
}

#[test]
fn evaluate_computes_the_loss_from_logits_as_training_does() {
    // A bias of 100 on a sigmoid output: the probability is 1.0 in f32, so
    // a clipped probability would give 15.94; the logits give 100.
    let (ids, _) = sentiment(4, 16);
    let zeros = ArrayD::<f32>::zeros(IxDyn(&[4, 1]));
    let mut model = binary_model(0);
    model.embedding_mut().weights_mut().fill(0.0);
    if let embkit::Layer::Dense(d) = &mut model.layers_mut()[1] {
        d.bias_mut().fill(100.0);
    }
    let loss = Loss::BinaryCrossentropy { from_logits: false };
    let e = model.evaluate(Dataset::new(ids.view(), zeros.view()).unwrap(), &loss, &[], 2).unwrap();
    assert!((e.loss - 100.0).abs() < 1e-4, "{}", e.loss);
    model.forward(ids.view(), true).unwrap();
    let train_loss = model.backward(&loss, zeros.view()).unwrap();
    assert!((f64::from(train_loss) - e.loss).abs() < 1e-4);
}

#[test]
fn a_vocabulary_that_does_not_belong_to_the_model_is_refused() {
    let dir = std::env::temp_dir().join(format!("embkit-it-vocab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut saved = SavedModel::new(binary_model(0));
    saved.vocab = Some((0..20).map(|i| format!("w{i}")).collect());
    saved.save(&dir).unwrap();
    // A later save without a vocabulary removes the old one.
    SavedModel::new(binary_model(1)).save(&dir).unwrap();
    assert!(!dir.join("vocab.txt").exists());
    assert_eq!(SavedModel::load(&dir).unwrap().vocab, None);
    // A vocab.txt of another size than the one saved is an error.
    saved.save(&dir).unwrap();
    std::fs::write(dir.join("vocab.txt"), "a\nb\n").unwrap();
    let err = SavedModel::load(&dir).unwrap_err();
    assert!(err.to_string().contains("has 2 tokens, but the model was saved with 20"), "{err}");
    std::fs::remove_file(dir.join("vocab.txt")).unwrap();
    assert!(matches!(SavedModel::load(&dir), Err(Error::Io { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_model_file_with_nan_weights_is_refused() {
    let mut model = binary_model(0);
    model.embedding_mut().weights_mut()[5] = f32::NAN;
    let bytes = SavedModel::new(model).to_bytes().unwrap();
    let err = SavedModel::from_bytes(&bytes, "nan.safetensors").unwrap_err();
    assert!(
        err.to_string().contains("tensor `embedding.weight` has the value NaN at index 5"),
        "{err}"
    );
}

fn masked_pooling_model(seed: u64) -> Sequential {
    SequentialConfig::new(EmbeddingConfig::new(6, 3).with_mask_zero(true), 4)
        .global_average_pooling_1d()
        .dense(1, Activation::Sigmoid)
        .init(&mut StdRng::seed_from_u64(seed))
        .unwrap()
}

#[test]
fn mask_zero_pools_only_the_real_steps() {
    let mut model = masked_pooling_model(0);
    let ids = ndarray::array![[1u32, 2, 0, 0], [3, 0, 0, 0], [1, 2, 3, 4]];
    let before = model.predict(ids.view(), 8).unwrap();
    // Row 0 is the mask: whatever it holds, the outputs do not change.
    model.embedding_mut().weights_mut()[..3].copy_from_slice(&[9.0, -9.0, 5.0]);
    assert_eq!(model.predict(ids.view(), 8).unwrap(), before);
    // [1, 2, 0, 0] pools to the mean of rows 1 and 2 (Keras: Σ mask·x / Σ mask).
    let w = model.embedding().weights().to_vec();
    let mean: Vec<f32> = (0..3).map(|j| (w[3 + j] + w[6 + j]) / 2.0).collect();
    let embkit::Layer::Dense(d) = &model.layers()[1] else { unreachable!() };
    let z: f32 = mean.iter().zip(d.kernel().iter()).map(|(a, b)| a * b).sum::<f32>() + d.bias()[0];
    assert!((before[[0, 0]] - 1.0 / (1.0 + (-z).exp())).abs() < 1e-6);
    assert!(model.config().warnings().is_empty());
}

#[test]
fn mask_zero_trains_and_flatten_warns_that_it_drops_the_mask() {
    let (ids, y) = sentiment(200, 17);
    let mut ids = ids.slice(ndarray::s![.., ..4]).mapv(|i| i % 6);
    // Padding (id 0) anywhere but the first step: no sequence is all
    // padding (it would pool to NaN, as in Keras).
    ids.column_mut(0).mapv_inplace(|i| i.max(1));
    let mut model = masked_pooling_model(1);
    let config = TrainConfig::new(Loss::BinaryCrossentropy { from_logits: false }, adam(0.05))
        .with_epochs(5);
    let h = model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver)
        .unwrap();
    assert!(h.epochs[4].loss < h.epochs[0].loss);

    let flat = SequentialConfig::new(EmbeddingConfig::new(6, 3).with_mask_zero(true), 4)
        .flatten()
        .dense(1, Activation::Sigmoid);
    let warnings = flat.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("does not support masking"), "{warnings:?}");
}

#[test]
fn sequence_losses_and_metrics_leave_masked_steps_out() {
    // One prediction per step: Embedding(mask_zero) → Dense(1, sigmoid).
    let mut model = SequentialConfig::new(EmbeddingConfig::new(5, 2).with_mask_zero(true), 3)
        .dense(1, Activation::Sigmoid)
        .init(&mut StdRng::seed_from_u64(3))
        .unwrap();
    let ids = ndarray::array![[1u32, 2, 0], [3, 0, 0]];
    let loss = Loss::BinaryCrossentropy { from_logits: false };
    let targets = |masked: f32| {
        ArrayD::from_shape_vec(IxDyn(&[2, 3, 1]), vec![1.0, 0.0, masked, 1.0, masked, masked])
            .unwrap()
    };
    let eval = |m: &mut Sequential, t: &ArrayD<f32>| {
        m.evaluate(Dataset::new(ids.view(), t.view()).unwrap(), &loss, &[Metric::Accuracy], 2)
            .unwrap()
    };
    let a = eval(&mut model, &targets(0.0));
    let b = eval(&mut model, &targets(1.0));
    assert_eq!(a, b, "targets at masked steps must not count");
    // Keras's masked mean: the loss of the three real steps over 3 (+1e-7).
    let probs = model.predict(ids.view(), 2).unwrap();
    let bce = |p: f32, y: f32| -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
    let want =
        (bce(probs[[0, 0, 0]], 1.0) + bce(probs[[0, 1, 0]], 0.0) + bce(probs[[1, 0, 0]], 1.0))
            / (3.0 + 1e-7);
    assert!((a.loss - f64::from(want)).abs() < 1e-5, "{} vs {want}", a.loss);
    // Accuracy over the three real steps only: a multiple of 1/3.
    let acc = a.metrics["accuracy"] * 3.0;
    assert!((acc - acc.round()).abs() < 1e-9, "{}", a.metrics["accuracy"]);
}

#[test]
fn lora_tables_train_save_load_and_merge() {
    let (ids, y) = sentiment(100, 18);
    let mut model = SequentialConfig::new(EmbeddingConfig::new(20, 4).with_lora(2, None), 6)
        .flatten()
        .dense(1, Activation::Sigmoid)
        .init(&mut StdRng::seed_from_u64(4))
        .unwrap();
    let base = model.embedding().weights().to_vec();
    model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &binary_config(2), &mut NoObserver)
        .unwrap();
    // The base table is frozen; the factors learned.
    assert_eq!(model.embedding().weights(), &base[..]);
    assert!(model.embedding().lora_b().unwrap().iter().any(|&x| x != 0.0));
    let before = model.predict(ids.view(), 32).unwrap();

    let bytes = SavedModel::new(model.clone()).to_bytes().unwrap();
    let mut loaded = SavedModel::from_bytes(&bytes, "lora").unwrap().model;
    assert_eq!(loaded.predict(ids.view(), 32).unwrap(), before);

    model.merge_lora();
    assert!(model.config().embedding.lora.is_none());
    let merged = model.predict(ids.view(), 32).unwrap();
    for (a, b) in merged.iter().zip(before.iter()) {
        assert!((a - b).abs() < 1e-6);
    }
    let bytes = SavedModel::new(model).to_bytes().unwrap();
    let mut loaded = SavedModel::from_bytes(&bytes, "merged").unwrap().model;
    assert_eq!(loaded.predict(ids.view(), 32).unwrap(), merged);
}

#[test]
fn gradient_clipping_bounds_the_step() {
    // With clipvalue 1e-3 and SGD(lr 1), no weight moves more than 1e-3 per step.
    let (ids, y) = sentiment(16, 19);
    let mut model = binary_model(5);
    let before = model.embedding().weights().to_vec();
    let config = TrainConfig::new(
        Loss::BinaryCrossentropy { from_logits: false },
        embkit::SgdConfig::new().with_learning_rate(1.0).into(),
    )
    .with_batch_size(16)
    .with_clipping(embkit::GradientClipping::new().with_clipvalue(1e-3));
    model.fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver).unwrap();
    let moved = model.embedding().weights().iter().zip(&before).map(|(a, b)| (a - b).abs());
    assert!(moved.clone().all(|d| d <= 1e-3 + 1e-7));
    assert!(moved.fold(0.0, f32::max) > 5e-4);
    let bad = config.clone().with_clipping(embkit::GradientClipping::new().with_clipnorm(-1.0));
    assert!(bad.validate().is_err());
}

#[test]
fn lora_enabled_on_the_table_after_building_is_saved() {
    let (ids, y) = sentiment(64, 20);
    let mut model = binary_model(6);
    model.embedding_mut().enable_lora(2, None, &mut StdRng::seed_from_u64(1)).unwrap();
    model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &binary_config(2), &mut NoObserver)
        .unwrap();
    let before = model.predict(ids.view(), 32).unwrap();
    let bytes = SavedModel::new(model).to_bytes().unwrap();
    let mut loaded = SavedModel::from_bytes(&bytes, "lora-later").unwrap().model;
    assert!(loaded.config().embedding.lora.is_some());
    assert_eq!(loaded.predict(ids.view(), 32).unwrap(), before);
}

#[test]
fn a_learning_rate_schedule_sets_the_rate_of_every_step() {
    use embkit::{LearningRateSchedule, SgdConfig};
    // Two batches of 16 without shuffling. A piecewise schedule of 0.1 for
    // the first step and 0 after it must give the model of training on the
    // first batch alone at 0.1, and a schedule that repeats the constant
    // the model of no schedule.
    let (ids, y) = sentiment(32, 4);
    let sgd = |lr: f32| -> OptimizerConfig { SgdConfig::new().with_learning_rate(lr).into() };
    let config = |schedule: Option<LearningRateSchedule>| {
        let mut c = TrainConfig::new(Loss::BinaryCrossentropy { from_logits: false }, sgd(0.7))
            .with_batch_size(16)
            .with_shuffle(false);
        c.learning_rate_schedule = schedule;
        c
    };
    let train = |rows: usize, config: &TrainConfig| {
        let mut model = binary_model(5);
        let data = Dataset::new(
            ids.slice(ndarray::s![..rows, ..]),
            y.slice(ndarray::s![..rows, ..]).into_dyn(),
        )
        .unwrap();
        model.fit(data, None, config, &mut NoObserver).unwrap();
        model.embedding().weights().to_vec()
    };
    let piecewise = LearningRateSchedule::PiecewiseConstantDecay {
        boundaries: vec![0],
        values: vec![0.1, 0.0],
    };
    let mut first_only = config(None);
    first_only.optimizer = sgd(0.1);
    assert_eq!(train(32, &config(Some(piecewise))), train(16, &first_only));
    let constant =
        LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![], values: vec![0.7] };
    assert_eq!(train(32, &config(Some(constant))), train(32, &config(None)));
    assert_ne!(train(32, &config(None)), train(16, &first_only));

    // A bad schedule is refused before training, naming the setting.
    let err = binary_model(5)
        .fit(
            Dataset::new(ids.view(), y.view()).unwrap(),
            None,
            &config(Some(LearningRateSchedule::linear(0.1, 0))),
            &mut NoObserver,
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("decay_steps"), "{err}");
}
