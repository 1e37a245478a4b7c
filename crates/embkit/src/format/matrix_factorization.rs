//! Saving and loading a [`MatrixFactorization`], and telling the kinds of
//! saved models apart ([`ModelKind`]).
//!
//! A saved matrix factorisation is a directory:
//!
//! - `model.safetensors`: the tables `users.weight`
//!   `[num_users, embedding_dim]`, `items.weight`
//!   `[num_items, embedding_dim]`, `user_bias.weight` `[num_users, 1]` and
//!   `item_bias.weight` `[num_items, 1]` (little-endian f32) and, in the
//!   safetensors metadata, `format` ([`MF_FORMAT_NAME`]),
//!   `format_version`, `model_kind` (`matrix_factorization`), the
//!   [`MatrixFactorizationConfig`] as JSON and optionally the training
//!   config, the history and caller metadata, as a [`SavedModel`];
//! - `users.txt` and `items.txt`: the raw user and item keys, one per
//!   line in id order (when the model has them).
//!
//! Sequential models keep their layout ([`SavedModel`]); files written
//! before the `model_kind` field existed are sequential models.
//!
//! [`SavedModel`]: super::SavedModel

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use super::model_file::{
    model_metadata, read_metadata, serialize_f32_tensors, Extras, F32Tensor, ModelFile,
};
use super::{lines_text, read_lines, write_model_dir, FORMAT_NAME, MODEL_FILE};
use crate::data::KeyIndex;
use crate::model::{MatrixFactorization, MatrixFactorizationConfig};
use crate::{Embedding, Error, History, Result, TrainConfig};

/// The `format` value in the metadata of a saved matrix factorisation.
pub const MF_FORMAT_NAME: &str = "embkit.matrix_factorization";
/// The metadata key that names a saved model's kind (see [`ModelKind`]).
pub const MODEL_KIND_KEY: &str = "model_kind";
/// The user keys inside a matrix factorisation's directory.
pub const USERS_FILE: &str = "users.txt";
/// The item keys inside a matrix factorisation's directory.
pub const ITEMS_FILE: &str = "items.txt";

/// What kind of model a model directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModelKind {
    /// A [`Sequential`](crate::Sequential), read by
    /// [`SavedModel`](super::SavedModel).
    Sequential,
    /// A [`MatrixFactorization`], read by [`SavedMatrixFactorization`].
    MatrixFactorization,
    /// A [`BagClassifier`](crate::model::BagClassifier), read by
    /// [`SavedBagClassifier`](super::SavedBagClassifier).
    BagClassifier,
    /// A word2vec [`SkipGram`](crate::word2vec::SkipGram) (skip-gram or
    /// CBOW), read by [`SavedSkipGram`](super::SavedSkipGram).
    SkipGram,
}

impl ModelKind {
    /// The kind's name, as the `model_kind` metadata field spells it.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Sequential => "sequential",
            ModelKind::MatrixFactorization => "matrix_factorization",
            ModelKind::BagClassifier => "bag_classifier",
            ModelKind::SkipGram => "skip_gram",
        }
    }

    /// The kind of the model in `dir`, from its metadata only.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `model.safetensors` cannot be read;
    /// [`Error::BadModelFile`] if it is not an embkit model.
    pub fn of_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().join(MODEL_FILE);
        let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
        Self::of_bytes(&bytes, &path)
    }

    /// The kind of the model in the bytes of a `model.safetensors`
    /// (`path` names it in errors).
    ///
    /// # Errors
    ///
    /// [`Error::BadModelFile`] if it is not an embkit model.
    pub fn of_bytes(bytes: &[u8], path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let meta = read_metadata(bytes, &path)?;
        Self::of_metadata(&meta).map_err(|reason| Error::BadModelFile { path, reason })
    }

    pub(crate) fn of_metadata(meta: &HashMap<String, String>) -> Result<Self, String> {
        match (meta.get(MODEL_KIND_KEY).map(String::as_str), meta.get("format").map(String::as_str))
        {
            (Some("sequential"), _) | (None, Some(FORMAT_NAME)) => Ok(ModelKind::Sequential),
            (Some("matrix_factorization"), _) | (None, Some(MF_FORMAT_NAME)) => {
                Ok(ModelKind::MatrixFactorization)
            }
            (Some("bag_classifier"), _) | (None, Some(super::BAG_FORMAT_NAME)) => {
                Ok(ModelKind::BagClassifier)
            }
            (Some("skip_gram"), _) | (None, Some(super::SKIP_GRAM_FORMAT_NAME)) => {
                Ok(ModelKind::SkipGram)
            }
            (Some(kind), _) => Err(format!(
                "model kind {kind:?} is not known to this embkit (sequential, \
                 matrix_factorization, bag_classifier, skip_gram)"
            )),
            (None, Some(format)) => Err(format!("format is {format:?}, not an embkit model")),
            (None, None) => Err("metadata has no `format`: not an embkit model".into()),
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A [`MatrixFactorization`] with everything saved beside it.
///
/// # Examples
///
/// ```
/// use embkit::data::KeyIndex;
/// use embkit::format::{ModelKind, SavedMatrixFactorization};
/// use embkit::model::MatrixFactorizationConfig;
/// use rand::{rngs::StdRng, SeedableRng};
///
/// let model = MatrixFactorizationConfig::new(2, 3, 4)
///     .with_global_mean(3.5)
///     .init(&mut StdRng::seed_from_u64(0))?;
/// let mut saved = SavedMatrixFactorization::new(model);
/// saved.users = Some(KeyIndex::from_keys(vec!["ann".into(), "bob".into()])?);
/// saved.items = Some(KeyIndex::from_keys(vec!["x".into(), "y".into(), "z".into()])?);
///
/// let dir = std::env::temp_dir().join(format!("embkit-doc-mf-{}", std::process::id()));
/// saved.save(&dir)?;
/// assert_eq!(ModelKind::of_dir(&dir)?, ModelKind::MatrixFactorization);
/// let back = SavedMatrixFactorization::load(&dir)?;
/// assert_eq!(back.model.items().weights(), saved.model.items().weights());
/// assert_eq!(back.items.unwrap().id("y"), Some(1));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SavedMatrixFactorization {
    /// The model, weights included.
    pub model: MatrixFactorization,
    /// The raw user keys of the user ids (`users.txt`).
    pub users: Option<KeyIndex>,
    /// The raw item keys of the item ids (`items.txt`).
    pub items: Option<KeyIndex>,
    /// How the model was trained.
    pub train_config: Option<TrainConfig>,
    /// What training measured.
    pub history: Option<History>,
    /// Free-form string metadata of the caller.
    pub metadata: BTreeMap<String, String>,
}

const TABLES: [&str; 4] = ["users.weight", "items.weight", "user_bias.weight", "item_bias.weight"];

impl SavedMatrixFactorization {
    /// A saved model with only the model itself.
    pub fn new(model: MatrixFactorization) -> Self {
        Self {
            model,
            users: None,
            items: None,
            train_config: None,
            history: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Writes the directory `dir` (created if missing): `model.safetensors`
    /// and, with keys, `users.txt` and `items.txt`, each written to a
    /// temporary name and renamed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be written;
    /// [`Error::InvalidConfig`] for keys that do not match the tables or
    /// contain a line break.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let bytes = self.to_bytes()?;
        let mut key_files = Vec::new();
        for (file, keys) in [(USERS_FILE, &self.users), (ITEMS_FILE, &self.items)] {
            let text = keys
                .as_ref()
                .map(|keys| {
                    lines_text(keys.keys(), |id, key| {
                        Error::config(
                            "keys",
                            format!("key {key:?} (id {id}) of {file} contains a line break"),
                        )
                    })
                })
                .transpose()?;
            key_files.push((file, text));
        }
        write_model_dir(dir, key_files, &bytes)
    }

    /// Reads a directory written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be read; [`Error::BadModelFile`]
    /// for a file that is truncated, not a matrix factorisation, of
    /// another format version, whose tensors do not match its config or
    /// hold NaN or infinite values, or whose key files are missing, of
    /// another length, or list a key twice.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(MODEL_FILE);
        let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
        let (mut saved, with_keys) = Self::parse(&bytes, &path)?;
        if with_keys {
            let config = saved.model.config();
            for (file, rows, slot) in [
                (USERS_FILE, config.num_users, &mut saved.users),
                (ITEMS_FILE, config.num_items, &mut saved.items),
            ] {
                let path = dir.join(file);
                let keys = read_lines(&path)?;
                if keys.len() != rows {
                    return Err(Error::BadModelFile {
                        path,
                        reason: format!("has {} keys, but the table has {rows} rows", keys.len()),
                    });
                }
                let index = KeyIndex::from_keys(keys).map_err(|e| Error::BadModelFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                *slot = Some(index);
            }
        }
        Ok(saved)
    }

    /// The bytes of `model.safetensors`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the configs cannot be serialised, or
    /// if keys are given for only one side or do not match the tables.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let config = self.model.config();
        let with_keys = match (&self.users, &self.items) {
            (Some(users), Some(items)) => {
                for (what, keys, rows) in
                    [("users", users, config.num_users), ("items", items, config.num_items)]
                {
                    if keys.len() != rows {
                        return Err(Error::config(
                            "keys",
                            format!("{} {what} keys for a table of {rows} rows", keys.len()),
                        ));
                    }
                }
                true
            }
            (None, None) => false,
            _ => {
                return Err(Error::config("keys", "give both the user and the item keys, or none"))
            }
        };
        let mut meta = model_metadata(
            MF_FORMAT_NAME,
            Some(ModelKind::MatrixFactorization),
            config,
            self.train_config.as_ref(),
            self.history.as_ref(),
            &self.metadata,
        )?;
        if with_keys {
            meta.insert("keys".to_string(), "true".to_string());
        }
        let m = &self.model;
        let tensors: Vec<F32Tensor<'_>> = TABLES
            .iter()
            .zip([m.users(), m.items(), m.user_bias(), m.item_bias()])
            .map(|(&name, t)| {
                F32Tensor::new(name, vec![t.num_embeddings(), t.embedding_dim()], t.weights())
            })
            .collect();
        serialize_f32_tensors(&tensors, meta)
    }

    /// Parses the bytes of a `model.safetensors` (`path` is only used in
    /// error messages). The keys are not part of these bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BadModelFile`] as in [`load`](Self::load).
    pub fn from_bytes(bytes: &[u8], path: impl Into<PathBuf>) -> Result<Self> {
        Self::parse(bytes, &path.into()).map(|(saved, _)| saved)
    }

    /// [`from_bytes`](Self::from_bytes), plus whether key files were
    /// saved with the model.
    fn parse(bytes: &[u8], path: &Path) -> Result<(Self, bool)> {
        let file = ModelFile::open(
            bytes,
            path,
            ModelKind::MatrixFactorization,
            "a matrix factorisation (load it with SavedModel)",
        )?;
        let config: MatrixFactorizationConfig = file.config()?;
        config.validate().map_err(|e| file.bad(e.to_string()))?;
        let Extras { train_config, history, metadata } = file.extras()?;

        let table = |name: &str, config: crate::EmbeddingConfig| -> Result<Embedding> {
            let values = file.tensor_f32(name, &[config.num_embeddings, config.embedding_dim])?;
            Embedding::from_config_and_weights(config, values).map_err(|e| file.bad(e.to_string()))
        };
        let model = MatrixFactorization::from_parts(
            config.clone(),
            table(TABLES[0], config.user_table())?,
            table(TABLES[1], config.item_table())?,
            table(TABLES[2], config.user_bias_table())?,
            table(TABLES[3], config.item_bias_table())?,
        )
        .map_err(|e| file.bad(e.to_string()))?;
        let with_keys = file.opt("keys") == Some("true");
        let saved = Self { model, users: None, items: None, train_config, history, metadata };
        Ok((saved, with_keys))
    }
}
