//! The `model.safetensors` container that every saved model kind shares:
//! named little-endian f32 tensors plus string metadata (`format`,
//! `format_version`, `model_kind`, the model's config as JSON, and
//! optionally the training config, the history and caller metadata).
//!
//! [`model_metadata`] and [`serialize_f32_tensors`] write it;
//! [`ModelFile`] reads it back once and answers the questions each
//! loader asks, with the same error messages for every kind.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ndarray::{ArrayBase, Data, Dimension};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    f32s_from_le, ModelKind, FORMAT_NAME, FORMAT_VERSION, FORMAT_VERSION_BAG_FEATURES,
    MODEL_KIND_KEY,
};
use crate::{Error, History, Result, TrainConfig};

/// The metadata every saved model has: `format`, `format_version`,
/// `model_kind` (unless `kind` is `None`, as for sequential models),
/// `config`, and `train_config`, `history` and `user` when present.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if a value cannot be serialised.
pub(crate) fn model_metadata(
    format: &str,
    kind: Option<ModelKind>,
    config: &impl Serialize,
    train_config: Option<&TrainConfig>,
    history: Option<&History>,
    user: &BTreeMap<String, String>,
) -> Result<HashMap<String, String>> {
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), format.to_string());
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    if let Some(kind) = kind {
        meta.insert(MODEL_KIND_KEY.to_string(), kind.name().to_string());
    }
    meta.insert("config".to_string(), to_json("config", config)?);
    if let Some(tc) = train_config {
        meta.insert("train_config".to_string(), to_json("train_config", tc)?);
    }
    if let Some(h) = history {
        meta.insert("history".to_string(), to_json("history", h)?);
    }
    if !user.is_empty() {
        meta.insert("user".to_string(), to_json("metadata", user)?);
    }
    Ok(meta)
}

/// One named f32 tensor to be written by [`serialize_f32_tensors`].
pub(crate) struct F32Tensor<'a> {
    name: String,
    shape: Vec<usize>,
    values: Cow<'a, [f32]>,
}

impl<'a> F32Tensor<'a> {
    /// A tensor of `shape` over row-major `values`.
    pub(crate) fn new(name: impl Into<String>, shape: Vec<usize>, values: &'a [f32]) -> Self {
        Self { name: name.into(), shape, values: Cow::Borrowed(values) }
    }

    /// A tensor with the shape and the values of `array`, in row-major
    /// order whatever the array's memory layout.
    pub(crate) fn array<S, D>(name: impl Into<String>, array: &'a ArrayBase<S, D>) -> Self
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        let values = match array.as_slice() {
            Some(values) => Cow::Borrowed(values),
            None => Cow::Owned(array.iter().copied().collect()),
        };
        Self { name: name.into(), shape: array.shape().to_vec(), values }
    }
}

/// The bytes of a safetensors file holding `tensors` (little-endian f32)
/// and `meta`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if a shape does not match its values or the
/// file cannot be laid out.
pub(crate) fn serialize_f32_tensors(
    tensors: &[F32Tensor<'_>],
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let data: Vec<Vec<u8>> = tensors.iter().map(|t| le_bytes(&t.values)).collect();
    let views = tensors
        .iter()
        .zip(&data)
        .map(|(t, bytes)| {
            let name = &t.name;
            TensorView::new(Dtype::F32, t.shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::config("tensor", format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::config("tensor", e.to_string()))?;
    Ok(with_sorted_header(bytes))
}

/// Rewrites the JSON header of safetensors `bytes` with its top-level keys
/// and its `__metadata__` keys in sorted order, so that the same model gives
/// the same bytes on every run (the safetensors crate writes these maps in
/// hash order). Data offsets are explicit in the header, so the data is
/// untouched; the header has the same content and so the same length, and
/// keeps safetensors' padding with spaces.
fn with_sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    use serde_json::Value;
    let Some(len) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    else {
        return bytes;
    };
    let Some(header) = usize::try_from(len).ok().and_then(|n| bytes.get(8..8 + n)) else {
        return bytes;
    };
    let Ok(Value::Object(entries)) = serde_json::from_slice::<Value>(header) else {
        return bytes;
    };
    let sorted: BTreeMap<String, Value> = entries
        .into_iter()
        .map(|(key, value)| match value {
            Value::Object(meta) if key == "__metadata__" => {
                let sorted: BTreeMap<String, Value> = meta.into_iter().collect();
                (key, Value::Object(sorted.into_iter().collect()))
            }
            other => (key, other),
        })
        .collect();
    let Ok(text) = serde_json::to_vec(&sorted) else { return bytes };
    let n = header.len();
    if text.len() > n {
        return bytes;
    }
    bytes[8..8 + text.len()].copy_from_slice(&text);
    bytes[8 + text.len()..8 + n].fill(b' ');
    bytes
}

/// The caller-facing extras a saved model may carry beside its config.
pub(crate) struct Extras {
    pub(crate) train_config: Option<TrainConfig>,
    pub(crate) history: Option<History>,
    pub(crate) metadata: BTreeMap<String, String>,
}

/// A parsed `model.safetensors`: its metadata and tensors, and the path
/// that names it in errors.
pub(crate) struct ModelFile<'a> {
    path: PathBuf,
    meta: HashMap<String, String>,
    tensors: SafeTensors<'a>,
}

impl<'a> ModelFile<'a> {
    /// Parses `bytes` and checks that they hold a model of kind `expected`
    /// in this crate's format version. `not_expected` completes the
    /// message for a model of another kind: "is a {kind} model, not
    /// {not_expected}".
    ///
    /// # Errors
    ///
    /// [`Error::BadModelFile`] for bytes that are truncated, not
    /// safetensors, not a model of kind `expected` or of another format
    /// version.
    pub(crate) fn open(
        bytes: &'a [u8],
        path: &Path,
        expected: ModelKind,
        not_expected: &str,
    ) -> Result<Self> {
        let path = path.to_path_buf();
        let meta = read_metadata(bytes, &path)?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(&path, format!("not a safetensors file or truncated ({e})")))?;
        let file = Self { path, meta, tensors };
        file.check_kind(expected, not_expected)?;
        let version = file.get("format_version")?;
        let known = [FORMAT_VERSION, FORMAT_VERSION_BAG_FEATURES].map(|v| v.to_string());
        if !known.contains(&version.to_string()) {
            return Err(file.bad(format!(
                "format version {version} is not supported (this embkit reads versions \
                 {FORMAT_VERSION} and {FORMAT_VERSION_BAG_FEATURES})"
            )));
        }
        Ok(file)
    }

    fn check_kind(&self, expected: ModelKind, not_expected: &str) -> Result<()> {
        if expected == ModelKind::Sequential {
            // Sequential models were saved before `model_kind` existed, so
            // they are told apart by their `format` alone.
            if let Some(kind) = self.opt(MODEL_KIND_KEY).filter(|&kind| kind != "sequential") {
                return Err(self.bad(format!("is a {kind} model, not {not_expected}")));
            }
            let format = self.get("format")?;
            if format != FORMAT_NAME {
                return Err(self.bad(format!("format is {format:?}, expected {FORMAT_NAME:?}")));
            }
            return Ok(());
        }
        let kind = ModelKind::of_metadata(&self.meta).map_err(|reason| self.bad(reason))?;
        if kind != expected {
            return Err(self.bad(format!("is a {kind} model, not {not_expected}")));
        }
        Ok(())
    }

    /// An [`Error::BadModelFile`] for this file.
    pub(crate) fn bad(&self, reason: impl Into<String>) -> Error {
        bad(&self.path, reason)
    }

    /// The metadata value of `key`, which must be there.
    pub(crate) fn get(&self, key: &str) -> Result<&str> {
        self.opt(key).ok_or_else(|| self.bad(format!("metadata has no `{key}`")))
    }

    /// The metadata value of `key`, if any.
    pub(crate) fn opt(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }

    /// The model's config, from the JSON in `config`.
    pub(crate) fn config<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(self.get("config")?)
            .map_err(|e| self.bad(format!("bad model config: {e}")))
    }

    /// The training config, history and caller metadata, where saved.
    pub(crate) fn extras(&self) -> Result<Extras> {
        let train_config = self
            .opt("train_config")
            .map(serde_json::from_str::<TrainConfig>)
            .transpose()
            .map_err(|e| self.bad(format!("bad training config: {e}")))?;
        let history = self
            .opt("history")
            .map(serde_json::from_str::<History>)
            .transpose()
            .map_err(|e| self.bad(format!("bad history: {e}")))?;
        let metadata = self
            .opt("user")
            .map(serde_json::from_str::<BTreeMap<String, String>>)
            .transpose()
            .map_err(|e| self.bad(format!("bad metadata: {e}")))?
            .unwrap_or_default();
        Ok(Extras { train_config, history, metadata })
    }

    /// The shape of the tensor `name`, if the file has it.
    pub(crate) fn tensor_shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.tensor(name).ok().map(|t| t.shape().to_vec())
    }

    /// Whether the file has a tensor called `name`.
    pub(crate) fn has_tensor(&self, name: &str) -> bool {
        self.tensors.tensor(name).is_ok()
    }

    /// The values of the f32 tensor `name`, which must have `shape` (from
    /// the config) and hold only finite values.
    pub(crate) fn tensor_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.tensors.tensor(name).map_err(|_| self.bad(format!("no tensor `{name}`")))?;
        if t.dtype() != Dtype::F32 {
            return Err(self.bad(format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
        }
        if t.shape() != shape {
            return Err(self.bad(format!(
                "tensor `{name}` has shape {:?}, the config says {shape:?}",
                t.shape()
            )));
        }
        let values = f32s_from_le(t.data());
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(
                self.bad(format!("tensor `{name}` has the value {} at index {i}", values[i]))
            );
        }
        Ok(values)
    }
}

/// The metadata of a safetensors file, read without touching its tensors
/// (the header is checked against the length of `bytes` before anything
/// is allocated for them).
///
/// # Errors
///
/// [`Error::BadModelFile`] for bytes that are truncated or not
/// safetensors.
pub(crate) fn read_metadata(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(path, format!("not a safetensors file or truncated ({e})")))?;
    Ok(header.metadata().clone().unwrap_or_default())
}

fn to_json<T: serde::Serialize>(field: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::config(field, e.to_string()))
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadModelFile { path: path.to_path_buf(), reason: reason.into() }
}
