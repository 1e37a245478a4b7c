//! [`Vectors`]: a table of word vectors in memory, the interchange
//! [`VectorFormat`]s, and [`convert`] between them.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ndarray::ArrayView2;

use super::reader::{ReadOptions, ReadReport, VectorReader};
use super::tsv::VECTORS_TSV;
use super::writer::VectorWriter;
use super::{npy, tsv, word2vec, MODEL_FILE};
use crate::{Embedding, Error, Result};

/// A file format for word vectors.
///
/// | format | name | layout |
/// | --- | --- | --- |
/// | [`Word2Vec`](Self::Word2Vec) | `word2vec` | text: a `<count> <dim>` line, then `word v1 v2 ...` per line |
/// | [`Word2VecBinary`](Self::Word2VecBinary) | `word2vec-bin` | the header line, then `word`, a space and `dim` little-endian f32 per row |
/// | [`Glove`](Self::Glove) | `glove` | text rows as word2vec, no header |
/// | [`FastTextVec`](Self::FastTextVec) | `fasttext-vec` | fastText's `.vec`: the same as word2vec text |
/// | [`Tsv`](Self::Tsv) | `tsv` | a folder: `vectors.tsv` (tab-separated rows) and `metadata.tsv` (the words), as the TensorFlow projector reads them |
/// | [`Npy`](Self::Npy) | `npy` | a NumPy 2-D float array; the words in `<name>.vocab.txt` beside it |
/// | [`Safetensors`](Self::Safetensors) | `safetensors` | a 2-D F32/F16/BF16/F64 tensor (`embedding.weight` when written); the words in `<name>.vocab.txt` |
/// | [`Model`](Self::Model) | `model` | an embkit model directory: the embedding table and `vocab.txt` (see [`SavedModel`](super::SavedModel)), or a matrix factorisation's item table (or, with [`ReadOptions::table`], its user table) named by its keys (see [`SavedMatrixFactorization`](super::SavedMatrixFactorization)), a bag classifier's word rows (see [`SavedBagClassifier`](super::SavedBagClassifier)), or a skip-gram model's word vectors (or its `output` table) named by its vocabulary (see [`SavedSkipGram`](super::SavedSkipGram)) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VectorFormat {
    /// word2vec text.
    Word2Vec,
    /// word2vec binary.
    Word2VecBinary,
    /// GloVe text (no header).
    Glove,
    /// fastText `.vec` text (the word2vec text layout).
    FastTextVec,
    /// TensorFlow projector TSV folder.
    Tsv,
    /// NumPy `.npy` with a vocabulary file.
    Npy,
    /// A safetensors tensor with a vocabulary file.
    Safetensors,
    /// An embkit saved model's embedding table.
    Model,
}

impl VectorFormat {
    /// Every format, in the order of the table above.
    pub const ALL: [VectorFormat; 8] = [
        VectorFormat::Word2Vec,
        VectorFormat::Word2VecBinary,
        VectorFormat::Glove,
        VectorFormat::FastTextVec,
        VectorFormat::Tsv,
        VectorFormat::Npy,
        VectorFormat::Safetensors,
        VectorFormat::Model,
    ];

    /// The format's name, as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            VectorFormat::Word2Vec => "word2vec",
            VectorFormat::Word2VecBinary => "word2vec-bin",
            VectorFormat::Glove => "glove",
            VectorFormat::FastTextVec => "fasttext-vec",
            VectorFormat::Tsv => "tsv",
            VectorFormat::Npy => "npy",
            VectorFormat::Safetensors => "safetensors",
            VectorFormat::Model => "model",
        }
    }

    /// Whether a file of this format starts with its number of rows, so a
    /// [`VectorWriter`] must be told it up front.
    pub fn needs_len(self) -> bool {
        matches!(
            self,
            VectorFormat::Word2Vec
                | VectorFormat::FastTextVec
                | VectorFormat::Word2VecBinary
                | VectorFormat::Npy
                | VectorFormat::Safetensors
        )
    }

    /// The format of an existing file or folder, to read it.
    ///
    /// By extension: `.bin` is word2vec binary, `.vec` fastText, `.npy`,
    /// `.safetensors`; a `.txt` file is word2vec text if its first line is
    /// a `<count> <dim>` header and GloVe otherwise. A folder with a
    /// `model.safetensors` is a model, one with a `vectors.tsv` is TSV.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the format cannot be told;
    /// [`Error::Io`] if a `.txt` file cannot be read.
    pub fn detect(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Self::of_dir(path);
        }
        match extension(path).as_deref() {
            Some("txt") => {
                if word2vec::starts_with_header(path)? {
                    Ok(VectorFormat::Word2Vec)
                } else {
                    Ok(VectorFormat::Glove)
                }
            }
            _ => Self::of_extension(path),
        }
    }

    /// The format to write `path` in, from its extension as in
    /// [`detect`](Self::detect); a `.txt` file is written as word2vec
    /// text, an existing folder as what it holds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the format cannot be told.
    pub fn for_output(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Self::of_dir(path);
        }
        match extension(path).as_deref() {
            Some("txt") => Ok(VectorFormat::Word2Vec),
            _ => Self::of_extension(path),
        }
    }

    fn of_dir(path: &Path) -> Result<Self> {
        if path.join(MODEL_FILE).is_file() {
            Ok(VectorFormat::Model)
        } else if path.join(VECTORS_TSV).is_file() {
            Ok(VectorFormat::Tsv)
        } else {
            Err(Error::config(
                "format",
                format!(
                    "{} is a folder with neither {MODEL_FILE} nor {VECTORS_TSV}: name the format \
                     (tsv or model)",
                    path.display()
                ),
            ))
        }
    }

    fn of_extension(path: &Path) -> Result<Self> {
        match extension(path).as_deref() {
            Some("bin") => Ok(VectorFormat::Word2VecBinary),
            Some("vec") => Ok(VectorFormat::FastTextVec),
            Some("npy") => Ok(VectorFormat::Npy),
            Some("safetensors") => Ok(VectorFormat::Safetensors),
            _ => Err(Error::config(
                "format",
                format!(
                    "cannot tell the format of {} from its name: name it ({})",
                    path.display(),
                    Self::ALL.map(Self::name).join(", ")
                ),
            )),
        }
    }

    /// Checks that `word` can be written in this format: the formats
    /// separated by whitespace need a non-empty word without whitespace,
    /// TSV a word without tabs or line breaks, the formats with a
    /// vocabulary file a word without line breaks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the word and what is wrong with it.
    pub fn check_word(self, word: &str) -> Result<()> {
        let problem = match self {
            VectorFormat::Word2Vec
            | VectorFormat::FastTextVec
            | VectorFormat::Glove
            | VectorFormat::Word2VecBinary => word2vec::whitespace_word_problem(word),
            VectorFormat::Tsv => tsv::word_problem(word),
            VectorFormat::Npy | VectorFormat::Safetensors | VectorFormat::Model => {
                npy::word_problem(word)
            }
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(Error::config(
                "word",
                format!("{word:?} cannot be written as {self}: {problem}"),
            )),
        }
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase())
}

impl fmt::Display for VectorFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for VectorFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            Error::config(
                "format",
                format!("unknown format {s:?}; known: {}", Self::ALL.map(Self::name).join(", ")),
            )
        })
    }
}

/// Word vectors in memory: one row of `dim` values per word, row-major,
/// with a lookup by word.
///
/// Words are unique and every value is finite; the table has at least one
/// row.
///
/// # Shapes
///
/// - [`data`](Self::data): `[len, dim]`, row-major
///
/// # Examples
///
/// ```
/// use embkit::format::{VectorFormat, Vectors};
///
/// let vectors = Vectors::new(
///     vec!["cat".into(), "dog".into()],
///     3,
///     vec![1.0, 0.0, 0.0, 0.5, 0.5, 0.0],
/// )?;
/// assert_eq!(vectors.get("dog"), Some(&[0.5, 0.5, 0.0][..]));
/// assert_eq!(vectors.id("cat"), Some(0));
///
/// let path = std::env::temp_dir().join(format!("embkit-doc-vectors-{}.bin", std::process::id()));
/// vectors.write(&path, VectorFormat::Word2VecBinary)?;
/// assert_eq!(Vectors::read(&path, VectorFormat::Word2VecBinary)?, vectors);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    words: Vec<String>,
    dim: usize,
    data: Vec<f32>,
    index: HashMap<String, u32>,
}

impl Vectors {
    /// A table from its words and row-major values.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] without words; [`Error::InvalidConfig`] if
    /// `dim` is 0, a word appears twice or a value is not finite;
    /// [`Error::ShapeMismatch`] if `data` does not hold `words.len() * dim`
    /// values.
    pub fn new(words: Vec<String>, dim: usize, data: Vec<f32>) -> Result<Self> {
        if words.is_empty() {
            return Err(Error::EmptyData { what: "vectors: no words".into() });
        }
        if dim == 0 {
            return Err(Error::config("dim", "must be at least 1, got 0"));
        }
        if u32::try_from(words.len()).is_err() {
            return Err(Error::config(
                "words",
                format!("{} words are more than u32 ids", words.len()),
            ));
        }
        if words.len().checked_mul(dim) != Some(data.len()) {
            return Err(Error::shape(
                "vectors data",
                format!("[{} * {dim}] (one row per word)", words.len()),
                &[data.len()],
            ));
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::config(
                "vectors",
                format!("value {} of {:?} is {}, not finite", i % dim + 1, words[i / dim], data[i]),
            ));
        }
        let mut index = HashMap::with_capacity(words.len());
        for (id, word) in words.iter().enumerate() {
            if let Some(first) = index.insert(word.clone(), id as u32) {
                return Err(Error::config(
                    "words",
                    format!("{word:?} appears twice (rows {} and {})", first + 1, id + 1),
                ));
            }
        }
        Ok(Self { words, dim, data, index })
    }

    /// A table whose checks were done while reading.
    pub(crate) fn from_checked(words: Vec<String>, dim: usize, data: Vec<f32>) -> Self {
        let index = words.iter().enumerate().map(|(id, w)| (w.clone(), id as u32)).collect();
        Self { words, dim, data, index }
    }

    /// The rows of a table (merged, if it has LoRA), named by `words` in id
    /// order.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new): `words` must name every row once.
    pub fn from_embedding(table: &Embedding, words: Vec<String>) -> Result<Self> {
        let merged = table.merge_lora();
        Self::new(words, merged.embedding_dim(), merged.weights().to_vec())
    }

    /// A table with these rows, as PyTorch's `Embedding.from_pretrained`;
    /// ids are the rows' positions ([`id`](Self::id)).
    ///
    /// # Errors
    ///
    /// As [`Embedding::from_pretrained`].
    pub fn to_embedding(&self, freeze: bool) -> Result<Embedding> {
        Embedding::from_pretrained(self.view(), freeze)
    }

    /// Reads a whole file (strictly; see [`VectorReader`]).
    ///
    /// # Errors
    ///
    /// As [`VectorReader`].
    pub fn read(path: impl AsRef<Path>, format: VectorFormat) -> Result<Self> {
        Self::read_with(path, format, &ReadOptions::new()).map(|(vectors, _)| vectors)
    }

    /// Reads a whole file with options, and reports what was skipped.
    ///
    /// # Errors
    ///
    /// As [`VectorReader`].
    pub fn read_with(
        path: impl AsRef<Path>,
        format: VectorFormat,
        options: &ReadOptions,
    ) -> Result<(Self, ReadReport)> {
        VectorReader::open(path, format, options)?.read_all()
    }

    /// Writes the table to `path` (see [`VectorWriter`]).
    ///
    /// # Errors
    ///
    /// As [`VectorWriter`]: a word the format cannot hold, or a file that
    /// cannot be written.
    pub fn write(&self, path: impl AsRef<Path>, format: VectorFormat) -> Result<()> {
        let mut writer = VectorWriter::create(path, format, self.dim, Some(self.len()))?;
        for (word, row) in self.iter() {
            writer.write_row(word, row)?;
        }
        writer.finish()
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always `false`: a table has at least one row.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The row length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The words, in row order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// All values, row-major `[len, dim]`.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values as a `[len, dim]` matrix.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.len(), self.dim), &self.data)
            .expect("new checked len * dim values")
    }

    /// The row of `word`, if it has one.
    pub fn get(&self, word: &str) -> Option<&[f32]> {
        self.id(word).map(|id| self.row(id))
    }

    /// The position of `word`'s row.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// Row `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a row of the table.
    #[track_caller]
    pub fn row(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// The rows with their words, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f32])> {
        self.words.iter().map(String::as_str).zip(self.data.chunks_exact(self.dim))
    }

    /// The words and the row-major values.
    pub fn into_parts(self) -> (Vec<String>, usize, Vec<f32>) {
        (self.words, self.dim, self.data)
    }
}

/// Converts `input` (read as `from`) to `output` (written as `to`), one
/// row at a time, so files larger than memory convert in constant memory
/// (except into [`VectorFormat::Model`] and out of safetensors and model
/// files, which are held whole). Returns the report of what was read;
/// its `rows` are the rows written.
///
/// When `to` starts with the row count ([`VectorFormat::needs_len`]) and
/// `from` has no checked count to give (GloVe, TSV, or lenient reading,
/// which may skip rows), `input` is read twice: once to count.
///
/// With `options.lenient`, a word the output format cannot hold (say
/// `new york` into word2vec) skips its row, as a bad row does.
///
/// # Errors
///
/// As [`VectorReader`] and [`VectorWriter`]. On an error the output is
/// left as it was.
pub fn convert(
    input: &Path,
    from: VectorFormat,
    output: &Path,
    to: VectorFormat,
    options: &ReadOptions,
) -> Result<ReadReport> {
    let mut reader = VectorReader::open(input, from, options)?;
    let (word, values) = reader.next().unwrap_or_else(|| {
        Err(Error::EmptyData { what: format!("{from} file {}: no rows", input.display()) })
    })?;
    let len = match reader.declared_len() {
        _ if !to.needs_len() => None,
        Some(len) if !options.lenient => Some(len),
        _ => Some(count_writable(input, from, to, options)?),
    };
    let mut writer = VectorWriter::create(output, to, values.len(), len)?;
    let mut refused = ReadReport::default();
    let mut write = |word: String, values: Vec<f32>| -> Result<()> {
        if options.lenient {
            if let Err(err) = to.check_word(&word) {
                refused.skip(err);
                return Ok(());
            }
        }
        writer.write_row(&word, &values)
    };
    write(word, values)?;
    for row in &mut reader {
        let (word, values) = row?;
        write(word, values)?;
    }
    writer.finish()?;
    let mut report = reader.into_report();
    report.rows -= refused.skipped;
    report.skipped += refused.skipped;
    for err in refused.problems {
        report.note(err);
    }
    report.unlisted_problems += refused.unlisted_problems;
    Ok(report)
}

/// The rows of `input` that a writer of `to` will take.
fn count_writable(
    input: &Path,
    from: VectorFormat,
    to: VectorFormat,
    options: &ReadOptions,
) -> Result<usize> {
    let mut n = 0;
    for row in VectorReader::open(input, from, options)? {
        let (word, _) = row?;
        if !options.lenient || to.check_word(&word).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}
