//! End to end on synthetic data: a vocabulary, `Embedding → GlobalAveragePooling1D →
//! Dense(sigmoid)` trained with Adam, saved, loaded, and queried for neighbours.
//!
//! Run with `cargo run --release -p embkit --example train_tiny`.

use embkit::format::SavedModel;
use embkit::query::neighbors_of_row;
use embkit::{
    Activation, AdamConfig, Dataset, EarlyStopping, EmbeddingConfig, EpochLog, Loss, Metric,
    Observer, SequentialConfig, TrainConfig, Vocabulary, VocabularyConfig,
};
use ndarray::{Array2, ArrayD, IxDyn};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Prints one line per epoch.
struct Print;

impl Observer for Print {
    fn epoch_end(&mut self, log: &EpochLog) {
        println!(
            "epoch {:>2}  loss {:.4}  accuracy {:.3}  val_loss {:.4}  val_accuracy {:.3}",
            log.epoch,
            log.loss,
            log.metrics["accuracy"],
            log.val_loss.unwrap_or(f64::NAN),
            log.val_metrics.get("accuracy").copied().unwrap_or(f64::NAN),
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reviews of 8 words from a vocabulary of good, bad and neutral words;
    // a review is positive when it has more good words than bad ones.
    let good = ["great", "fine", "lovely", "superb", "delightful"];
    let bad = ["awful", "poor", "dull", "terrible", "boring"];
    let neutral = ["the", "a", "film", "plot", "actor", "scene", "it", "was", "and", "story"];
    let words: Vec<&str> = good.iter().chain(&bad).chain(&neutral).copied().collect();
    let vocab: Vocabulary =
        Vocabulary::from_objects(words.iter().copied(), &VocabularyConfig::new())?;

    let mut rng = StdRng::seed_from_u64(7);
    let n = 2000;
    let mut ids = Array2::<u32>::zeros((n, 8));
    let mut labels = Vec::with_capacity(n);
    for mut review in ids.outer_iter_mut() {
        let mut score = 0i32;
        for slot in review.iter_mut() {
            let word = words[rng.random_range(0..words.len())];
            score += i32::from(good.contains(&word)) - i32::from(bad.contains(&word));
            *slot = vocab.id(word)?;
        }
        labels.push(if score > 0 || (score == 0 && rng.random_bool(0.5)) { 1.0 } else { 0.0 });
    }
    let labels = ArrayD::from_shape_vec(IxDyn(&[n, 1]), labels)?;

    let mut model = SequentialConfig::new(EmbeddingConfig::new(vocab.len(), 4), 8)
        .global_average_pooling_1d()
        .dense(1, Activation::Sigmoid)
        .init(&mut StdRng::seed_from_u64(1))?;
    let config = TrainConfig::new(
        Loss::BinaryCrossentropy { from_logits: false },
        AdamConfig::new().with_learning_rate(0.02).into(),
    )
    .with_metrics(vec![Metric::Accuracy])
    .with_epochs(30)
    .with_validation_split(0.2)
    .with_early_stopping(
        EarlyStopping::new("val_loss").with_patience(3).with_restore_best_weights(true),
    );
    let history = model.fit(Dataset::new(ids.view(), labels.view())?, None, &config, &mut Print)?;
    if let Some(epoch) = history.stopped_epoch {
        println!("stopped after epoch {epoch}; weights of epoch {:?}", history.restored_epoch);
    }

    let dir = std::env::temp_dir().join("embkit-train-tiny");
    let mut saved = SavedModel::new(model);
    saved.vocab = Some(words.iter().map(|w| w.to_string()).collect());
    saved.history = Some(history);
    saved.save(&dir)?;
    let loaded = SavedModel::load(&dir)?;
    println!("saved and loaded {}", dir.display());

    for word in ["great", "awful", "film"] {
        let near = neighbors_of_row(loaded.model.embedding(), vocab.id(word)?, 3)?;
        let names: Vec<String> = near
            .iter()
            .map(|n| format!("{} ({:.2})", words[n.id as usize], n.similarity))
            .collect();
        println!("{word:<6} -> {}", names.join(", "));
    }
    Ok(())
}
