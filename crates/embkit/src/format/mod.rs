//! Saving and loading trained models.
//!
//! A saved model is a directory:
//!
//! - `model.safetensors`: the tensors by name (`embedding.weight`
//!   `[num_embeddings, embedding_dim]`; with LoRA also `embedding.lora_a`
//!   `[num_embeddings, rank]` and `embedding.lora_b` `[rank, embedding_dim]`
//!   (or call [`Sequential::merge_lora`] first to save one plain table);
//!   `layers.{i}.kernel`
//!   `[in_features, out_features]`, `layers.{i}.bias` `[out_features]`, all
//!   little-endian f32) and, in the safetensors metadata, the format name
//!   and version, the [`SequentialConfig`] as JSON, and optionally the
//!   training config, the training [`History`] and caller metadata;
//! - `vocab.txt`: one token per line, in id order (when the model has a
//!   vocabulary).
//!
//! Each file is written to a temporary name in the same directory and
//! renamed, so a crash never leaves half a file under the real name.
//!
//! A [`MatrixFactorization`](crate::model::MatrixFactorization) is saved
//! in a directory of its own layout ([`SavedMatrixFactorization`]), and so
//! is a [`BagClassifier`](crate::model::BagClassifier)
//! ([`SavedBagClassifier`]) and a word2vec
//! [`SkipGram`](crate::word2vec::SkipGram) ([`SavedSkipGram`]); the
//! `model_kind` metadata field tells them apart ([`ModelKind`]), and a
//! model without it is a [`Sequential`] one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use ndarray::{Array1, Array2};

// Word vectors in interchange formats (word2vec, GloVe, fastText, TSV,
// .npy, safetensors): `Vectors`, `VectorReader`, `VectorWriter`, `convert`.
mod bag_classifier;
mod matrix_factorization;
mod model_file;
mod npy;
mod reader;
mod skip_gram;
mod tensors;
mod tsv;
mod vectors;
mod word2vec;
mod writer;

pub use bag_classifier::{SavedBagClassifier, BAG_FORMAT_NAME};
pub use matrix_factorization::{
    ModelKind, SavedMatrixFactorization, ITEMS_FILE, MF_FORMAT_NAME, MODEL_KIND_KEY, USERS_FILE,
};
pub use npy::vocab_path_for;
pub use reader::{ReadOptions, ReadReport, VectorReader, MAX_PROBLEMS};
pub use skip_gram::{SavedSkipGram, SKIP_GRAM_FORMAT_NAME};
pub use tensors::DEFAULT_TENSOR;
pub use tsv::{METADATA_TSV, VECTORS_TSV};
pub use vectors::{convert, VectorFormat, Vectors};
pub use writer::VectorWriter;

use model_file::{model_metadata, serialize_f32_tensors, Extras, F32Tensor, ModelFile};

use crate::{
    Dense, Embedding, Error, History, Layer, LayerConfig, Result, Sequential, SequentialConfig,
    TrainConfig,
};

/// The `format` value in the metadata of a saved model.
pub const FORMAT_NAME: &str = "embkit.sequential";
/// The version of the saved-model layout this crate writes for every
/// model but the bag classifiers of [`FORMAT_VERSION_BAG_FEATURES`].
pub const FORMAT_VERSION: u32 = 1;
/// The version of a saved bag classifier with TF-IDF weights, a hidden
/// activation, dropout or rows that are the logits: their config fields
/// and the `bag.idf` tensor
/// are new in it, so a reader of version 1 only refuses the file instead
/// of loading a fastText bag without them. This crate reads versions 1 and 2.
pub const FORMAT_VERSION_BAG_FEATURES: u32 = 2;
/// The weights file inside a model directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The vocabulary file inside a model directory.
pub const VOCAB_FILE: &str = "vocab.txt";

/// A model with everything saved beside it.
#[derive(Debug, Clone)]
pub struct SavedModel {
    /// The model, weights included.
    pub model: Sequential,
    /// The tokens of the model's ids, in id order (`vocab.txt`).
    pub vocab: Option<Vec<String>>,
    /// How the model was trained.
    pub train_config: Option<TrainConfig>,
    /// What training measured.
    pub history: Option<History>,
    /// Free-form string metadata of the caller (for example a text
    /// vectoriser's config as JSON, or class names).
    pub metadata: BTreeMap<String, String>,
}

impl SavedModel {
    /// A saved model with only the model itself.
    pub fn new(model: Sequential) -> Self {
        Self { model, vocab: None, train_config: None, history: None, metadata: BTreeMap::new() }
    }

    /// Writes the directory `dir` (created if missing): `model.safetensors`
    /// and, with a vocabulary, `vocab.txt`, each written to a temporary
    /// name and renamed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be written;
    /// [`Error::InvalidConfig`] for a token that contains a line break.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let bytes = self.to_bytes()?;
        let vocab_path = dir.join(VOCAB_FILE);
        if self.vocab.is_none() && vocab_path.exists() {
            // A vocabulary of an earlier model must not be read with this one.
            fs::remove_file(&vocab_path).map_err(Error::io("remove", &vocab_path))?;
        }
        if let Some(vocab) = &self.vocab {
            let text = lines_text(vocab, |id, token| {
                Error::config("vocab", format!("token {token:?} (id {id}) contains a line break"))
            })?;
            write_atomically(&vocab_path, text.as_bytes())?;
        }
        write_atomically(&dir.join(MODEL_FILE), &bytes)
    }

    /// Reads a model directory written by [`save`](Self::save).
    ///
    /// The model file records how many tokens its `vocab.txt` has, so a
    /// vocabulary that does not belong to the model (left from another
    /// save, or missing) is an error.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be read; [`Error::BadModelFile`]
    /// for a file that is truncated, not safetensors, not an embkit model,
    /// of another format version, whose tensors do not match its config or
    /// hold NaN or infinite values, or whose `vocab.txt` is missing or of
    /// another size.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(MODEL_FILE);
        let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
        let (mut saved, vocab_size) = Self::parse(&bytes, &path)?;
        if let Some(expected) = vocab_size {
            let vocab_path = dir.join(VOCAB_FILE);
            let vocab = read_lines(&vocab_path)?;
            if vocab.len() != expected {
                return Err(Error::BadModelFile {
                    path: vocab_path,
                    reason: format!(
                        "has {} tokens, but the model was saved with {expected}",
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
    /// [`Error::InvalidConfig`] if the configs cannot be serialised.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // The table's own config: options set on it after the model was built
        // (`embedding_mut().enable_lora(..)`) are saved too.
        let mut config = self.model.config().clone();
        config.embedding = self.model.embedding().config().clone();
        let mut meta = model_metadata(
            FORMAT_NAME,
            None,
            &config,
            self.train_config.as_ref(),
            self.history.as_ref(),
            &self.metadata,
        )?;
        if let Some(vocab) = &self.vocab {
            meta.insert("vocab_size".to_string(), vocab.len().to_string());
        }

        let emb = self.model.embedding();
        let mut tensors = vec![F32Tensor::new(
            "embedding.weight",
            vec![emb.num_embeddings(), emb.embedding_dim()],
            emb.weights(),
        )];
        if let (Some(lora), Some(a), Some(b)) = (&emb.config().lora, emb.lora_a(), emb.lora_b()) {
            tensors.push(F32Tensor::new(
                "embedding.lora_a",
                vec![emb.num_embeddings(), lora.rank],
                a,
            ));
            tensors.push(F32Tensor::new(
                "embedding.lora_b",
                vec![lora.rank, emb.embedding_dim()],
                b,
            ));
        }
        for (i, layer) in self.model.layers().iter().enumerate() {
            if let Layer::Dense(d) = layer {
                tensors.push(F32Tensor::array(format!("layers.{i}.kernel"), d.kernel()));
                if d.config().use_bias {
                    tensors.push(F32Tensor::array(format!("layers.{i}.bias"), d.bias()));
                }
            }
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

    /// [`from_bytes`](Self::from_bytes), plus the number of tokens the
    /// model's `vocab.txt` had when it was saved.
    fn parse(bytes: &[u8], path: &Path) -> Result<(Self, Option<usize>)> {
        let file = ModelFile::open(
            bytes,
            path,
            ModelKind::Sequential,
            "a sequential one (see ModelKind: each kind loads with its own type, \
             SavedMatrixFactorization, SavedBagClassifier or SavedSkipGram)",
        )?;
        let config: SequentialConfig = file.config()?;
        let Extras { train_config, history, metadata } = file.extras()?;
        let vocab_size = file
            .opt("vocab_size")
            .map(|v| v.parse::<usize>().map_err(|e| file.bad(format!("bad vocab_size {v:?}: {e}"))))
            .transpose()?;

        let ec = &config.embedding;
        let weights =
            file.tensor_f32("embedding.weight", &[ec.num_embeddings, ec.embedding_dim])?;
        let embedding = match &ec.lora {
            None if file.has_tensor("embedding.lora_a") => {
                return Err(file.bad("has LoRA factors but its config has no LoRA"));
            }
            None => Embedding::from_config_and_weights(ec.clone(), weights),
            Some(lora) => {
                let a = file.tensor_f32("embedding.lora_a", &[ec.num_embeddings, lora.rank])?;
                let b = file.tensor_f32("embedding.lora_b", &[lora.rank, ec.embedding_dim])?;
                Embedding::from_lora_parts(ec.clone(), weights, a, b)
            }
        }
        .map_err(|e| file.bad(e.to_string()))?;
        // Layers without weights draw nothing; the seed is never used.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let mut layers = Vec::with_capacity(config.layers.len());
        for (i, lc) in config.layers.iter().enumerate() {
            let layer = match lc {
                LayerConfig::Dense(dc) => {
                    let kernel = file.tensor_f32(
                        &format!("layers.{i}.kernel"),
                        &[dc.in_features, dc.out_features],
                    )?;
                    let bias = if dc.use_bias {
                        file.tensor_f32(&format!("layers.{i}.bias"), &[dc.out_features])?
                    } else {
                        vec![0.0; dc.out_features]
                    };
                    let kernel = Array2::from_shape_vec((dc.in_features, dc.out_features), kernel)
                        .expect("shape checked");
                    Layer::Dense(
                        Dense::from_weights(dc.clone(), kernel, Array1::from(bias))
                            .map_err(|e| file.bad(e.to_string()))?,
                    )
                }
                other => other.init(&mut rng).map_err(|e| file.bad(e.to_string()))?,
            };
            layers.push(layer);
        }
        let model = Sequential::from_parts(config, embedding, layers)
            .map_err(|e| file.bad(e.to_string()))?;
        Ok((Self { model, vocab: None, train_config, history, metadata }, vocab_size))
    }
}

/// Little-endian f32 bytes back to values (a trailing partial value is
/// ignored; callers check lengths first).
pub(crate) fn f32s_from_le(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Writes `bytes` to `path` through a temporary file in the same
/// directory, flushed to disk, then renamed over `path`.
///
/// # Errors
///
/// [`Error::Io`] naming the file that could not be written or renamed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per process and call, so concurrent saves never share a file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, AtomicOrdering::Relaxed);
    let tmp = path.with_file_name(format!(".{file_name}.{}-{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
        f.write_all(bytes).map_err(Error::io("write", &tmp))?;
        f.sync_all().map_err(Error::io("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(Error::io("rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a model directory: creates `dir`, writes each side file whose
/// text is given and removes one whose text is not (a file of an earlier
/// model must not be read with this one), then writes `model` as
/// `model.safetensors`, each file through [`write_atomically`].
fn write_model_dir(
    dir: &Path,
    side_files: Vec<(&str, Option<String>)>,
    model: &[u8],
) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    for (file, text) in side_files {
        let path = dir.join(file);
        match text {
            Some(text) => write_atomically(&path, text.as_bytes())?,
            None if path.exists() => fs::remove_file(&path).map_err(Error::io("remove", &path))?,
            None => {}
        }
    }
    write_atomically(&dir.join(MODEL_FILE), model)
}

/// `items` one per line, each followed by a line break; `on_break(id,
/// item)` is the error for the first item that contains a line break.
fn lines_text(items: &[String], on_break: impl FnOnce(usize, &str) -> Error) -> Result<String> {
    let mut text = String::new();
    for (id, item) in items.iter().enumerate() {
        if item.contains(['\n', '\r']) {
            return Err(on_break(id, item));
        }
        text.push_str(item);
        text.push('\n');
    }
    Ok(text)
}

/// The lines of the text file `path`, without their line breaks.
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).map_err(Error::io("read", path))?;
    Ok(text.lines().map(str::to_string).collect())
}
