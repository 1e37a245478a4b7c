//! Saving and loading a [`BagClassifier`].
//!
//! A saved bag classifier is a directory:
//!
//! - `model.safetensors`: the tensors `bag.weight`
//!   `[num_words + bigram_buckets, embedding_dim]`, `dense.kernel`
//!   `[embedding_dim, num_classes]` and `dense.bias` `[num_classes]`
//!   (little-endian f32) and, in the safetensors metadata, `format`
//!   ([`BAG_FORMAT_NAME`]), `format_version`, `model_kind`
//!   (`bag_classifier`), the [`BagClassifierConfig`] as JSON and
//!   optionally the training config, the history and caller metadata, as
//!   a [`SavedModel`](super::SavedModel);
//! - `vocab.txt`: the words of the word rows, one per line in id order
//!   (when the model has them).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{f32s_from_le, le_bytes, to_json, write_atomically, FORMAT_VERSION, MODEL_FILE};
use super::{ModelKind, MODEL_KIND_KEY, VOCAB_FILE};
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
        let vocab_text = match &self.vocab {
            Some(vocab) => {
                let mut text = String::new();
                for (id, word) in vocab.iter().enumerate() {
                    if word.contains(['\n', '\r']) {
                        return Err(Error::config(
                            "vocab",
                            format!("word {word:?} (id {id}) contains a line break"),
                        ));
                    }
                    text.push_str(word);
                    text.push('\n');
                }
                Some(text)
            }
            None => None,
        };
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let vocab_path = dir.join(VOCAB_FILE);
        match vocab_text {
            Some(text) => write_atomically(&vocab_path, text.as_bytes())?,
            // A vocabulary of an earlier model must not be read with this one.
            None if vocab_path.exists() => {
                fs::remove_file(&vocab_path).map_err(Error::io("remove", &vocab_path))?
            }
            None => {}
        }
        write_atomically(&dir.join(MODEL_FILE), &bytes)
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
            let text = fs::read_to_string(&vocab_path).map_err(Error::io("read", &vocab_path))?;
            let vocab: Vec<String> = text.lines().map(str::to_string).collect();
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
    /// [`Error::InvalidConfig`] if the configs cannot be serialised or the
    /// vocabulary does not have one word per word row.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let config = self.model.config();
        if let Some(vocab) = self.vocab.as_ref().filter(|v| v.len() != config.num_words) {
            return Err(Error::config(
                "vocab",
                format!("{} words for {} word rows", vocab.len(), config.num_words),
            ));
        }
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), BAG_FORMAT_NAME.to_string());
        meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
        meta.insert(MODEL_KIND_KEY.to_string(), ModelKind::BagClassifier.name().to_string());
        meta.insert("config".to_string(), to_json("config", config)?);
        if let Some(tc) = &self.train_config {
            meta.insert("train_config".to_string(), to_json("train_config", tc)?);
        }
        if let Some(h) = &self.history {
            meta.insert("history".to_string(), to_json("history", h)?);
        }
        if self.vocab.is_some() {
            meta.insert("vocab".to_string(), "true".to_string());
        }
        if !self.metadata.is_empty() {
            meta.insert("user".to_string(), to_json("metadata", &self.metadata)?);
        }
        let m = &self.model;
        let dense = m.dense();
        let tensors: [(&str, Vec<usize>, Vec<u8>); 3] = [
            (
                "bag.weight",
                vec![m.bag().num_embeddings(), m.bag().embedding_dim()],
                le_bytes(m.bag().weights()),
            ),
            (
                "dense.kernel",
                dense.kernel().shape().to_vec(),
                le_bytes(dense.kernel().as_standard_layout().as_slice().expect("contiguous")),
            ),
            (
                "dense.bias",
                dense.bias().shape().to_vec(),
                le_bytes(dense.bias().as_standard_layout().as_slice().expect("contiguous")),
            ),
        ];
        let views = tensors
            .iter()
            .map(|(name, shape, data)| {
                TensorView::new(Dtype::F32, shape.clone(), data)
                    .map(|v| (name.to_string(), v))
                    .map_err(|e| Error::config("tensor", format!("{name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::config("tensor", e.to_string()))
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
        let path = path.to_path_buf();
        let bad = |reason: String| Error::BadModelFile { path: path.clone(), reason };
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a safetensors file or truncated ({e})")))?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a safetensors file or truncated ({e})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let kind = ModelKind::of_metadata(&meta).map_err(bad)?;
        if kind != ModelKind::BagClassifier {
            return Err(bad(format!("is a {kind} model, not a bag classifier")));
        }
        let get = |key: &str| meta.get(key).ok_or_else(|| bad(format!("metadata has no `{key}`")));
        let version = get("format_version")?;
        if version != &FORMAT_VERSION.to_string() {
            return Err(bad(format!(
                "format version {version} is not supported (this embkit reads version {FORMAT_VERSION})"
            )));
        }
        let config: BagClassifierConfig = serde_json::from_str(get("config")?)
            .map_err(|e| bad(format!("bad model config: {e}")))?;
        config.validate().map_err(|e| bad(e.to_string()))?;
        let opt = |key: &str| meta.get(key).map(String::as_str);
        let train_config = opt("train_config")
            .map(serde_json::from_str::<TrainConfig>)
            .transpose()
            .map_err(|e| bad(format!("bad training config: {e}")))?;
        let history = opt("history")
            .map(serde_json::from_str::<History>)
            .transpose()
            .map_err(|e| bad(format!("bad history: {e}")))?;
        let metadata = opt("user")
            .map(serde_json::from_str::<BTreeMap<String, String>>)
            .transpose()
            .map_err(|e| bad(format!("bad metadata: {e}")))?
            .unwrap_or_default();

        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = tensors.tensor(name).map_err(|_| bad(format!("no tensor `{name}`")))?;
            if t.dtype() != Dtype::F32 {
                return Err(bad(format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
            }
            if t.shape() != shape {
                return Err(bad(format!(
                    "tensor `{name}` has shape {:?}, the config says {shape:?}",
                    t.shape()
                )));
            }
            let values = f32s_from_le(t.data());
            if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                return Err(bad(format!(
                    "tensor `{name}` has the value {} at index {i}",
                    values[i]
                )));
            }
            Ok(values)
        };
        let (rows, dim, classes) =
            (config.num_embeddings(), config.embedding_dim, config.num_classes);
        let bag = EmbeddingBag::from_config_and_weights(
            config.bag_table(),
            tensor("bag.weight", &[rows, dim])?,
        )
        .map_err(|e| bad(e.to_string()))?;
        let kernel =
            Array2::from_shape_vec((dim, classes), tensor("dense.kernel", &[dim, classes])?)
                .expect("shape checked");
        let bias = Array1::from(tensor("dense.bias", &[classes])?);
        let dense = Dense::from_weights(config.output_layer(), kernel, bias)
            .map_err(|e| bad(e.to_string()))?;
        let model =
            BagClassifier::from_parts(config, bag, dense).map_err(|e| bad(e.to_string()))?;
        let with_vocab = opt("vocab") == Some("true");
        Ok((Self { model, vocab: None, train_config, history, metadata }, with_vocab))
    }
}
