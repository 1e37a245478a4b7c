//! Saving and loading a [`BagClassifier`].
//!
//! A saved bag classifier is a directory:
//!
//! - `model.safetensors`: the tensors `bag.weight`
//!   `[num_words + bigram_buckets, embedding_dim]`, `dense.kernel`
//!   `[embedding_dim, num_classes]`, `dense.bias` `[num_classes]` and,
//!   for TF-IDF weights, `bag.idf` `[num_words + bigram_buckets]`; with a
//!   hidden bias (`hidden_bias`), `hidden.bias` `[embedding_dim]`
//!   (little-endian f32) and, in the safetensors metadata, `format`
//!   ([`BAG_FORMAT_NAME`]), `format_version`, `model_kind`
//!   (`bag_classifier`), the [`BagClassifierConfig`] as JSON and
//!   optionally the training config, the history and caller metadata, as
//!   a [`SavedModel`](super::SavedModel);
//! - `vocab.txt`: the words of the word rows, one per line in id order
//!   (when the model has them).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};

use super::model_file::{model_metadata, serialize_f32_tensors, Extras, F32Tensor, ModelFile};
use super::{
    lines_text, read_lines, write_model_dir, ModelKind, FORMAT_VERSION,
    FORMAT_VERSION_BAG_FEATURES, MODEL_FILE, VOCAB_FILE,
};
use crate::model::{BagClassifier, BagClassifierConfig};
use crate::{Dense, EmbeddingBag, Error, History, Result, TrainConfig};

/// The `format` value in the metadata of a saved bag classifier.
pub const BAG_FORMAT_NAME: &str = "embkit.bag_classifier";

/// A [`BagClassifier`] with everything saved beside it.
///
/// # Examples
///
/// ```
/// use embkit::format::{ModelKind, SavedBagClassifier};
/// use embkit::model::BagClassifierConfig;
/// use rand::{rngs::StdRng, SeedableRng};
///
/// let config = BagClassifierConfig::new(3, 2).with_embedding_dim(4).with_bigram_buckets(5);
/// let mut saved = SavedBagClassifier::new(config.init(&mut StdRng::seed_from_u64(0))?);
/// saved.vocab = Some(vec!["".into(), "[UNK]".into(), "good".into()]);
///
/// let dir = std::env::temp_dir().join(format!("embkit-doc-bag-{}", std::process::id()));
/// saved.save(&dir)?;
/// assert_eq!(ModelKind::of_dir(&dir)?, ModelKind::BagClassifier);
/// let back = SavedBagClassifier::load(&dir)?;
/// assert_eq!(back.model.bag().weights(), saved.model.bag().weights());
/// assert_eq!(back.vocab, saved.vocab);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SavedBagClassifier {
    /// The model, weights included.
    pub model: BagClassifier,
    /// The words of the word ids, in id order (`vocab.txt`):
    /// [`num_words`](BagClassifierConfig::num_words) of them.
    pub vocab: Option<Vec<String>>,
    /// How the model was trained.
    pub train_config: Option<TrainConfig>,
    /// What training measured.
    pub history: Option<History>,
    /// Free-form string metadata of the caller (for example a text
    /// vectoriser's config as JSON, or class names).
    pub metadata: BTreeMap<String, String>,
}

impl SavedBagClassifier {
    /// A saved model with only the model itself.
    pub fn new(model: BagClassifier) -> Self {
        Self { model, vocab: None, train_config: None, history: None, metadata: BTreeMap::new() }
    }

    /// Writes the directory `dir` (created if missing): `model.safetensors`
    /// and, with a vocabulary, `vocab.txt`, each written to a temporary
    /// name and renamed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be written;
    /// [`Error::InvalidConfig`] for a vocabulary of the wrong size or a
    /// word that contains a line break.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let bytes = self.to_bytes()?;
        let vocab_text = self
            .vocab
            .as_deref()
            .map(|vocab| {
                lines_text(vocab, |id, word| {
                    Error::config("vocab", format!("word {word:?} (id {id}) contains a line break"))
                })
            })
            .transpose()?;
        write_model_dir(dir, vec![(VOCAB_FILE, vocab_text)], &bytes)
    }

    /// Reads a directory written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be read; [`Error::BadModelFile`]
    /// for a file that is truncated, not a bag classifier, of another
    /// format version, whose tensors do not match its config or hold NaN
    /// or infinite values, or whose `vocab.txt` is missing or of another
    /// size.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(MODEL_FILE);
        let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
        let (mut saved, with_vocab) = Self::parse(&bytes, &path)?;
        if with_vocab {
            let vocab_path = dir.join(VOCAB_FILE);
            let vocab = read_lines(&vocab_path)?;
            let expected = saved.model.config().num_words;
            if vocab.len() != expected {
                return Err(Error::BadModelFile {
                    path: vocab_path,
                    reason: format!(
                        "has {} words, but the model has {expected} word rows",
                        vocab.len()
                    ),
                });
            }
            saved.vocab = Some(vocab);
        }
        Ok(saved)
    }

    /// The bytes of `model.safetensors`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the configs cannot be serialised, the
    /// vocabulary does not have one word per word row, or a model whose
    /// rows are the logits has an output kernel that is not the identity
    /// (changed through `dense_mut`; loading would refuse the file).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let config = self.model.config();
        crate::model::check_identity_kernel(config, self.model.dense())?;
        if let Some(vocab) = self.vocab.as_ref().filter(|v| v.len() != config.num_words) {
            return Err(Error::config(
                "vocab",
                format!("{} words for {} word rows", vocab.len(), config.num_words),
            ));
        }
        let mut meta = model_metadata(
            BAG_FORMAT_NAME,
            Some(ModelKind::BagClassifier),
            config,
            self.train_config.as_ref(),
            self.history.as_ref(),
            &self.metadata,
        )?;
        if self.vocab.is_some() {
            meta.insert("vocab".to_string(), "true".to_string());
        }
        if config.uses_bag_features() {
            meta.insert("format_version".to_string(), FORMAT_VERSION_BAG_FEATURES.to_string());
        }
        let m = &self.model;
        let (bag, dense) = (m.bag(), m.dense());
        let mut tensors = vec![
            F32Tensor::new(
                "bag.weight",
                vec![bag.num_embeddings(), bag.embedding_dim()],
                bag.weights(),
            ),
            F32Tensor::array("dense.kernel", dense.kernel()),
            F32Tensor::array("dense.bias", dense.bias()),
        ];
        if config.weighting.uses_idf() {
            let idf = m.idf().ok_or_else(|| {
                Error::config("idf", "a TF-IDF bag is saved after adapt (it has no idf weights)")
            })?;
            tensors.push(F32Tensor::new("bag.idf", vec![idf.len()], idf));
        }
        if let Some(bias) = m.hidden_bias() {
            tensors.push(F32Tensor::array("hidden.bias", bias));
        }
        serialize_f32_tensors(&tensors, meta)
    }

    /// Parses the bytes of a `model.safetensors` (`path` is only used in
    /// error messages). The vocabulary is not part of these bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BadModelFile`] as in [`load`](Self::load).
    pub fn from_bytes(bytes: &[u8], path: impl Into<PathBuf>) -> Result<Self> {
        Self::parse(bytes, &path.into()).map(|(saved, _)| saved)
    }

    /// [`from_bytes`](Self::from_bytes), plus whether a vocabulary was
    /// saved with the model.
    fn parse(bytes: &[u8], path: &Path) -> Result<(Self, bool)> {
        let file = ModelFile::open(bytes, path, ModelKind::BagClassifier, "a bag classifier")?;
        let config: BagClassifierConfig = file.config()?;
        config.validate().map_err(|e| file.bad(e.to_string()))?;
        let version = file.get("format_version")?;
        if config.uses_bag_features() && version == FORMAT_VERSION.to_string() {
            return Err(file.bad(format!(
                "says format version {version}, but its config needs version \
                 {FORMAT_VERSION_BAG_FEATURES} (TF-IDF weights, a hidden activation, dropout or rows \
                 that are the logits)"
            )));
        }
        let Extras { train_config, history, metadata } = file.extras()?;

        let (rows, dim, classes) =
            (config.num_embeddings(), config.embedding_dim, config.num_classes);
        let bag = EmbeddingBag::from_config_and_weights(
            config.bag_table(),
            file.tensor_f32("bag.weight", &[rows, dim])?,
        )
        .map_err(|e| file.bad(e.to_string()))?;
        let kernel = Array2::from_shape_vec(
            (dim, classes),
            file.tensor_f32("dense.kernel", &[dim, classes])?,
        )
        .expect("shape checked");
        let bias = Array1::from(file.tensor_f32("dense.bias", &[classes])?);
        let dense = Dense::from_weights(config.output_layer(), kernel, bias)
            .map_err(|e| file.bad(e.to_string()))?;
        let tf_idf = config.weighting.uses_idf();
        let mut model =
            BagClassifier::from_parts(config, bag, dense).map_err(|e| file.bad(e.to_string()))?;
        if tf_idf {
            let idf = file.tensor_f32("bag.idf", &[rows])?;
            model.set_idf(idf).map_err(|e| file.bad(e.to_string()))?;
        } else if file.has_tensor("bag.idf") {
            return Err(file.bad("has idf weights (bag.idf), but its config pools by the mean"));
        }
        if model.config().hidden_bias {
            let bias = file.tensor_f32("hidden.bias", &[dim])?;
            model.set_hidden_bias(bias).map_err(|e| file.bad(e.to_string()))?;
        } else if file.has_tensor("hidden.bias") {
            return Err(file.bad("has a hidden bias (hidden.bias), but its config has none"));
        }
        let with_vocab = file.opt("vocab") == Some("true");
        Ok((Self { model, vocab: None, train_config, history, metadata }, with_vocab))
    }
}
