//! Vectors in tensor files: a 2-D tensor of a safetensors file (with the
//! words in a vocabulary file), and the embedding table of an embkit
//! saved model (with its `vocab.txt`).
//!
//! Safetensors tensors of dtype F32, F16, BF16 or F64 are read (F64 values
//! outside the f32 range are errors). Files are written with one F32
//! tensor named `embedding.weight`, as PyTorch names an `nn.Embedding`'s
//! table, and the words in `<name>.vocab.txt` beside it.

use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorInfo};

use super::reader::{MemoryRows, ReadOptions, RowSource, Words};
use super::{
    ModelKind, SavedMatrixFactorization, SavedModel, ITEMS_FILE, MODEL_FILE, USERS_FILE, VOCAB_FILE,
};
use crate::{Error, Result};

/// The tensor name safetensors files are written with, and read by
/// default when a file has several 2-D float tensors.
pub const DEFAULT_TENSOR: &str = "embedding.weight";

/// The f32 with the value of an IEEE binary16 number (exact).
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let negative = bits & 0x8000 != 0;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match exponent {
        // Zero and subnormals: mantissa · 2^-24, exact in f32.
        0 => mantissa as f32 * f32::from_bits(0x3380_0000),
        0x1f if mantissa == 0 => f32::INFINITY,
        0x1f => f32::NAN,
        _ => f32::from_bits(((exponent + 112) << 23) | (mantissa << 13)),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// The f32 with the value of a bfloat16 number (exact).
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64)
}

fn describe(name: &str, info: &TensorInfo) -> String {
    format!("`{name}` {:?} {:?}", info.shape, info.dtype)
}

/// Opens a safetensors file and its vocabulary; the tensor is decoded to
/// f32 in memory.
pub(crate) fn open_safetensors(path: &Path, options: &ReadOptions) -> Result<Box<dyn RowSource>> {
    let bytes = std::fs::read(path).map_err(Error::io("read", path))?;
    let bad = |offset: u64, reason: String| Error::BadBinaryFile {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    // `read_metadata` checks every tensor's size against the file length.
    let (header_len, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(0, format!("not a safetensors file, or damaged ({e})")))?;
    let mut tensors: Vec<(String, &TensorInfo)> = meta.tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let list = || tensors.iter().map(|(n, i)| describe(n, i)).collect::<Vec<_>>().join(", ");
    let name = match &options.tensor {
        Some(name) => name.clone(),
        None => {
            let candidates: Vec<&String> = tensors
                .iter()
                .filter(|(_, info)| info.shape.len() == 2 && is_float(info.dtype))
                .map(|(name, _)| name)
                .collect();
            match candidates[..] {
                [only] => only.clone(),
                _ if candidates.iter().any(|n| *n == DEFAULT_TENSOR) => DEFAULT_TENSOR.to_string(),
                [] => {
                    return Err(Error::config(
                        "tensor",
                        format!("{} has no 2-D float tensor (it has: {})", path.display(), list()),
                    ))
                }
                _ => {
                    return Err(Error::config(
                        "tensor",
                        format!(
                            "{} has several 2-D float tensors: name one ({})",
                            path.display(),
                            list()
                        ),
                    ))
                }
            }
        }
    };
    let Some(info) = meta.info(&name) else {
        return Err(Error::config(
            "tensor",
            format!("{} has no tensor `{name}` (it has: {})", path.display(), list()),
        ));
    };
    if !is_float(info.dtype) {
        return Err(Error::config(
            "tensor",
            format!("`{name}` is {:?}; vectors need F32, F16, BF16 or F64", info.dtype),
        ));
    }
    let (rows, dim) = match info.shape[..] {
        [rows, dim] if dim > 0 => (rows, dim),
        _ => {
            return Err(Error::shape("safetensors tensor", "[rows, dim] with dim > 0", &info.shape))
        }
    };
    let base = 8 + header_len + info.data_offsets.0;
    let raw = &bytes[base..8 + header_len + info.data_offsets.1];
    let data: Vec<f32> = match info.dtype {
        Dtype::F32 => super::f32s_from_le(raw),
        Dtype::F16 => {
            raw.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
        }
        Dtype::BF16 => {
            raw.chunks_exact(2).map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
        }
        _ => raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
    };
    let item = (info.dtype.bitsize() / 8) as u64;
    drop(tensors);
    let vocab = options.vocab.clone().unwrap_or_else(|| super::npy::vocab_path_for(path));
    let words = Words::open(&vocab)?;
    Ok(Box::new(MemoryRows::new(data, rows, dim, words, path, base as u64, item, false)))
}

/// The header of a safetensors file with one F32 tensor `[rows, dim]`
/// named `name`: its length as a little-endian u64, then the JSON padded
/// with spaces to a multiple of 8 bytes, as the `safetensors` crate does.
pub(crate) fn safetensors_header(name: &str, rows: usize, dim: usize) -> Result<Vec<u8>> {
    let bytes = rows
        .checked_mul(dim)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| Error::config("rows", format!("{rows} rows of {dim} f32 overflow")))?;
    let name = serde_json::to_string(name).map_err(|e| Error::config("tensor", e.to_string()))?;
    let mut json = format!(
        "{{{name}:{{\"dtype\":\"F32\",\"shape\":[{rows},{dim}],\"data_offsets\":[0,{bytes}]}}}}"
    );
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    Ok(out)
}

/// Opens the embedding table of a saved model directory and its words.
/// A LoRA table is read merged.
pub(crate) fn open_model(dir: &Path, options: &ReadOptions) -> Result<Box<dyn RowSource>> {
    match ModelKind::of_dir(dir)? {
        ModelKind::MatrixFactorization => {
            return open_matrix_factorization(dir, options.table.as_deref())
        }
        ModelKind::BagClassifier => return open_bag_classifier(dir, options.table.as_deref()),
        ModelKind::SkipGram => return open_skip_gram(dir, options.table.as_deref()),
        _ => {}
    }
    if let Some(table) = options.table.as_deref().filter(|&t| t != "embedding") {
        return Err(Error::config(
            "table",
            format!(
                "the sequential model in {} has one table, `embedding`; got {table:?}",
                dir.display()
            ),
        ));
    }
    let saved = SavedModel::load(dir)?;
    let table = saved.model.embedding().merge_lora();
    let Some(vocab) = saved.vocab else {
        return Err(Error::config(
            "vocab",
            format!(
                "the model in {} has no {VOCAB_FILE}, so its rows have no words",
                dir.display()
            ),
        ));
    };
    let (rows, dim) = (table.num_embeddings(), table.embedding_dim());
    if vocab.len() != rows {
        return Err(Error::shape(
            "model vocabulary",
            format!("{rows} tokens, one per row of the embedding table"),
            &[vocab.len()],
        ));
    }
    let words = Words::List { words: vocab.into_iter(), path: dir.join(VOCAB_FILE), line: 0 };
    Ok(Box::new(MemoryRows::new(
        table.weights().to_vec(),
        rows,
        dim,
        words,
        &dir.join(MODEL_FILE),
        0,
        4,
        false,
    )))
}

/// The word rows of a saved bag classifier (the bigram rows left out),
/// named by its vocabulary.
fn open_bag_classifier(dir: &Path, table: Option<&str>) -> Result<Box<dyn RowSource>> {
    if let Some(table) = table.filter(|&t| t != "words") {
        return Err(Error::config(
            "table",
            format!(
                "the bag classifier in {} exports one table, `words`; got {table:?}",
                dir.display()
            ),
        ));
    }
    let saved = super::SavedBagClassifier::load(dir)?;
    let Some(vocab) = saved.vocab else {
        return Err(Error::config(
            "vocab",
            format!(
                "the model in {} has no {VOCAB_FILE}, so its rows have no words",
                dir.display()
            ),
        ));
    };
    let (n, dim) = (saved.model.config().num_words, saved.model.config().embedding_dim);
    let words = Words::List { words: vocab.into_iter(), path: dir.join(VOCAB_FILE), line: 0 };
    Ok(Box::new(MemoryRows::new(
        saved.model.bag().weights()[..n * dim].to_vec(),
        n,
        dim,
        words,
        &dir.join(MODEL_FILE),
        0,
        4,
        false,
    )))
}

/// The input vectors (the word vectors; or, with `table` `output`, the
/// output vectors of negative sampling) of a saved skip-gram model, named
/// by its vocabulary.
fn open_skip_gram(dir: &Path, table: Option<&str>) -> Result<Box<dyn RowSource>> {
    let saved = super::SavedSkipGram::load(dir)?;
    let model = saved.model;
    let weights = match table.unwrap_or("input") {
        "input" => model.input_weights(),
        "output" => model.output_weights(),
        other => {
            return Err(Error::config(
                "table",
                format!(
                    "the skip-gram model in {} has the tables `input` (the word vectors) and \
                     `output`; got {other:?}",
                    dir.display()
                ),
            ))
        }
    };
    let (n, dim) = (model.vocab().len(), model.config().embedding_dim);
    let words = Words::List {
        words: model.vocab().words().to_vec().into_iter(),
        path: dir.join(VOCAB_FILE),
        line: 0,
    };
    Ok(Box::new(MemoryRows::new(
        weights.to_vec(),
        n,
        dim,
        words,
        &dir.join(MODEL_FILE),
        0,
        4,
        false,
    )))
}

/// The user or item table of a saved matrix factorisation, its rows named
/// by their keys.
fn open_matrix_factorization(dir: &Path, table: Option<&str>) -> Result<Box<dyn RowSource>> {
    let saved = SavedMatrixFactorization::load(dir)?;
    let (rows, keys, file) = match table.unwrap_or("items") {
        "items" => (saved.model.items(), saved.items, ITEMS_FILE),
        "users" => (saved.model.users(), saved.users, USERS_FILE),
        other => {
            return Err(Error::config(
                "table",
                format!(
                    "the matrix factorisation in {} has the tables `items` and `users`; got \
                     {other:?}",
                    dir.display()
                ),
            ))
        }
    };
    let Some(keys) = keys else {
        return Err(Error::config(
            "keys",
            format!("the model in {} has no {file}, so its rows have no names", dir.display()),
        ));
    };
    let (n, dim) = (rows.num_embeddings(), rows.embedding_dim());
    let words =
        Words::List { words: keys.keys().to_vec().into_iter(), path: dir.join(file), line: 0 };
    Ok(Box::new(MemoryRows::new(
        rows.weights().to_vec(),
        n,
        dim,
        words,
        &dir.join(MODEL_FILE),
        0,
        4,
        false,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every binary16 bit pattern against the definition, in f64.
    #[test]
    fn f16_conversion_is_exact_for_every_value() {
        for bits in 0..=u16::MAX {
            let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
            let e = i32::from((bits >> 10) & 0x1f);
            let m = f64::from(bits & 0x3ff);
            let want = match e {
                0 => sign * m * 2f64.powi(-24),
                31 if m == 0.0 => sign * f64::INFINITY,
                31 => f64::NAN,
                _ => sign * (1.0 + m / 1024.0) * 2f64.powi(e - 15),
            };
            let got = f16_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(f64::from(got), want, "{bits:#06x}");
                assert_eq!(got.is_sign_negative(), bits & 0x8000 != 0, "{bits:#06x}");
            }
        }
    }

    #[test]
    fn bf16_is_the_top_half_of_an_f32() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
        assert!(bf16_to_f32(0x7fc0).is_nan());
    }

    #[test]
    fn written_headers_are_valid_safetensors() {
        let header = safetensors_header("embedding.weight", 2, 3).unwrap();
        let mut file = header.clone();
        for x in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            file.extend_from_slice(&x.to_le_bytes());
        }
        assert_eq!((header.len() - 8) % 8, 0);
        let st = SafeTensors::deserialize(&file).unwrap();
        let t = st.tensor("embedding.weight").unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.dtype(), Dtype::F32);
    }
}
