//! Saving and loading a word2vec [`SkipGram`].
//!
//! A saved skip-gram (or CBOW) model is a directory:
//!
//! - `model.safetensors`: the tensors `input.weight`
//!   `[words, embedding_dim]` (the word vectors, word2vec's `syn0`) and
//!   `output.weight` `[words, embedding_dim]` (the vectors of negative
//!   sampling, word2vec's `syn1neg`), little-endian f32, and, in the
//!   safetensors metadata, `format` ([`SKIP_GRAM_FORMAT_NAME`]),
//!   `format_version`, `model_kind` (`skip_gram`), the [`SkipGramConfig`]
//!   as JSON (`config`), the vocabulary as JSON (`vocab`: the words in id
//!   order, their counts, which the noise distribution and sub-sampling
//!   are made from, the number of words of the corpus and whether words
//!   are lowercased), optionally the [`TrainReport`] (`report`) and caller
//!   metadata (`user`);
//! - `vocab.txt`: the words again, one per line in id order, for tools
//!   that read a model directory's rows by name. Loading checks that it
//!   matches the model file.
//!
//! The model file alone is enough to rebuild the model
//! ([`SavedSkipGram::from_bytes`]). Its header holds the vocabulary, and a
//! safetensors header holds at most 100,000,000 bytes: a few million
//! words.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model_file::{model_metadata, serialize_f32_tensors, Extras, F32Tensor, ModelFile};
use super::{lines_text, read_lines, write_model_dir, ModelKind, MODEL_FILE, VOCAB_FILE};
use crate::word2vec::{SkipGram, SkipGramConfig, TrainReport, WordCounts};
use crate::{Error, Result};

/// The `format` value in the metadata of a saved skip-gram model.
pub const SKIP_GRAM_FORMAT_NAME: &str = "embkit.skip_gram";

/// The tensor of the input vectors (the word vectors).
const INPUT: &str = "input.weight";
/// The tensor of the output vectors of negative sampling.
const OUTPUT: &str = "output.weight";
/// The largest safetensors header the `safetensors` crate reads.
const MAX_HEADER_BYTES: usize = 100_000_000;

/// The vocabulary as the `vocab` metadata field holds it.
#[derive(Serialize, Deserialize)]
struct VocabMeta<'a> {
    words: Cow<'a, [String]>,
    counts: Cow<'a, [u64]>,
    corpus_words: u64,
    lowercase: bool,
}

/// A word2vec [`SkipGram`] with everything saved beside it.
///
/// # Examples
///
/// ```
/// use embkit::format::{ModelKind, SavedSkipGram};
/// use embkit::word2vec::{SkipGram, SkipGramConfig};
/// use embkit::{NoObserver, Threads};
///
/// let lines = ["the cat sat on the mat", "the dog sat on the log"];
/// let config = SkipGramConfig::new().with_min_count(1).with_embedding_dim(4).with_epochs(1);
/// let (model, report) = SkipGram::fit(&config, &lines, Threads::single(), &mut NoObserver)?;
/// let mut saved = SavedSkipGram::new(model);
/// saved.report = Some(report);
///
/// let dir = std::env::temp_dir().join(format!("embkit-doc-sg-{}", std::process::id()));
/// saved.save(&dir)?;
/// assert_eq!(ModelKind::of_dir(&dir)?, ModelKind::SkipGram);
/// let back = SavedSkipGram::load(&dir)?;
/// assert_eq!(back.model, saved.model);
/// assert_eq!(back.model.vocab().counts()[0], 4); // "the"
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSkipGram {
    /// The model: config, vocabulary with counts, and both tables.
    pub model: SkipGram,
    /// What training did (words, seconds, epochs, threads, losses).
    pub report: Option<TrainReport>,
    /// Free-form string metadata of the caller (for example how the
    /// corpus was split into words).
    pub metadata: BTreeMap<String, String>,
}

impl SavedSkipGram {
    /// A saved model with only the model itself.
    pub fn new(model: SkipGram) -> Self {
        Self { model, report: None, metadata: BTreeMap::new() }
    }

    /// Writes the directory `dir` (created if missing): `vocab.txt` and
    /// then `model.safetensors`, each written to a temporary name and
    /// renamed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be written;
    /// [`Error::InvalidConfig`] as in [`to_bytes`](Self::to_bytes).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_bytes()?;
        // Words were checked for whitespace by `WordCounts`; this cannot fail.
        let vocab = lines_text(self.model.vocab().words(), |id, word| {
            Error::config("vocab", format!("word {word:?} (id {id}) contains a line break"))
        })?;
        write_model_dir(dir.as_ref(), vec![(VOCAB_FILE, Some(vocab))], &bytes)
    }

    /// Reads a directory written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be read; [`Error::BadModelFile`]
    /// for a file that is truncated, not a skip-gram model (the message
    /// names the kind it is), of another format version, whose config or
    /// vocabulary is invalid, whose tables do not have one row of
    /// `embedding_dim` values per word or hold NaN or infinite values, or
    /// whose `vocab.txt` is missing or lists other words.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(MODEL_FILE);
        let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
        let saved = Self::from_bytes(&bytes, &path)?;
        let vocab_path = dir.join(VOCAB_FILE);
        let lines = read_lines(&vocab_path)?;
        let words = saved.model.vocab().words();
        let bad = |reason: String| Error::BadModelFile { path: vocab_path.clone(), reason };
        if lines.len() != words.len() {
            return Err(bad(format!(
                "has {} words, but the model has {} (one per row)",
                lines.len(),
                words.len()
            )));
        }
        if let Some(i) = lines.iter().zip(words).position(|(line, word)| line != word) {
            return Err(bad(format!(
                "line {} is {:?}, but the model's word {i} is {:?}",
                i + 1,
                lines[i],
                words[i]
            )));
        }
        Ok(saved)
    }

    /// The bytes of `model.safetensors`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the metadata cannot be serialised or is
    /// too large for a safetensors header (a vocabulary of many millions
    /// of words).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let m = &self.model;
        let mut meta = model_metadata(
            SKIP_GRAM_FORMAT_NAME,
            Some(ModelKind::SkipGram),
            m.config(),
            None,
            None,
            &self.metadata,
        )?;
        let vocab = m.vocab();
        let vocab_meta = VocabMeta {
            words: Cow::Borrowed(vocab.words()),
            counts: Cow::Borrowed(vocab.counts()),
            corpus_words: vocab.corpus_words(),
            lowercase: vocab.lowercase(),
        };
        meta.insert("vocab".to_string(), to_json("vocab", &vocab_meta)?);
        if let Some(report) = &self.report {
            meta.insert("report".to_string(), to_json("report", report)?);
        }
        check_header_size(&meta, vocab.len())?;
        let shape = vec![vocab.len(), m.config().embedding_dim];
        let tensors = [
            F32Tensor::new(INPUT, shape.clone(), m.input_weights()),
            F32Tensor::new(OUTPUT, shape, m.output_weights()),
        ];
        serialize_f32_tensors(&tensors, meta)
    }

    /// Parses the bytes of a `model.safetensors` (`path` is only used in
    /// error messages). They hold the whole model, vocabulary included.
    ///
    /// # Errors
    ///
    /// [`Error::BadModelFile`] as in [`load`](Self::load), `vocab.txt`
    /// aside.
    pub fn from_bytes(bytes: &[u8], path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let file = ModelFile::open(
            bytes,
            &path,
            ModelKind::SkipGram,
            "a skip-gram model (see ModelKind for the loader of each kind)",
        )?;
        let config: SkipGramConfig = file.config()?;
        config.validate().map_err(|e| file.bad(format!("bad model config: {e}")))?;
        // A skip-gram has no `TrainConfig` or `History`; only the caller's
        // metadata is read.
        let Extras { metadata, .. } = file.extras()?;
        let vocab: VocabMeta<'static> = serde_json::from_str(file.get("vocab")?)
            .map_err(|e| file.bad(format!("bad vocabulary: {e}")))?;
        let vocab = WordCounts::from_counts(
            vocab.words.into_owned(),
            vocab.counts.into_owned(),
            vocab.corpus_words,
            vocab.lowercase,
        )
        .map_err(|e| file.bad(format!("bad vocabulary: {e}")))?;
        let report = file
            .opt("report")
            .map(serde_json::from_str::<TrainReport>)
            .transpose()
            .map_err(|e| file.bad(format!("bad training report: {e}")))?;

        let (words, dim) = (vocab.len(), config.embedding_dim);
        let mut tables = Vec::with_capacity(2);
        for name in [INPUT, OUTPUT] {
            if let Some([rows, cols]) = file.tensor_shape(name).as_deref() {
                if *rows != words {
                    return Err(file.bad(format!(
                        "tensor `{name}` has {rows} rows, but the vocabulary has {words} words \
                         (one row per word)"
                    )));
                }
                if *cols != dim {
                    return Err(file.bad(format!(
                        "tensor `{name}` has rows of {cols} values, but the config's \
                         embedding_dim is {dim}"
                    )));
                }
            }
            tables.push(file.tensor_f32(name, &[words, dim])?);
        }
        let output = tables.pop().expect("two tables were read");
        let input = tables.pop().expect("two tables were read");
        let model = SkipGram::from_parts(config, vocab, input, output)
            .map_err(|e| file.bad(e.to_string()))?;
        Ok(Self { model, report, metadata })
    }
}

/// Refuses metadata that would not fit in a safetensors header, with a
/// message that says why (the `safetensors` crate only says "too large").
fn check_header_size(meta: &HashMap<String, String>, words: usize) -> Result<()> {
    let mut bytes = 0;
    for (key, value) in meta {
        bytes += to_json("metadata", key)?.len() + to_json("metadata", value)?.len() + 2;
    }
    // Room for the braces and the two tensors' entries.
    if bytes + 1_000 > MAX_HEADER_BYTES {
        return Err(Error::config(
            "vocab",
            format!(
                "the metadata of {words} words takes {bytes} bytes, more than a safetensors \
                 header holds ({MAX_HEADER_BYTES}); write the vectors to a vector file instead"
            ),
        ));
    }
    Ok(())
}

fn to_json<T: Serialize + ?Sized>(field: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::config(field, e.to_string()))
}
