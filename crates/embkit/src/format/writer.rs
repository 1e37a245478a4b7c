//! [`VectorWriter`]: writes a vectors file row by row, through temporary
//! files that are renamed into place when the last row is written.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::ArrayView2;

use super::tsv::{METADATA_TSV, VECTORS_TSV};
use super::vectors::VectorFormat;
use super::{npy, tensors, word2vec, SavedModel};
use crate::{Embedding, Error, Result, Sequential, SequentialConfig};

/// A file written under a temporary name in its directory and renamed
/// over the real name by [`commit`](Self::commit); dropped uncommitted,
/// the temporary file is removed.
pub(crate) struct PartialFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl PartialFile {
    pub fn create(path: &Path) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}-{n}.partial", std::process::id()));
        let file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .as_mut()
            .expect("a PartialFile is written only before commit")
            .write_all(bytes)
            .map_err(Error::io("write", &self.tmp))
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("commit is called once");
        let file = out.into_inner().map_err(|e| Error::io("write", &self.tmp)(e.into_error()))?;
        file.sync_all().map_err(Error::io("sync", &self.tmp))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(Error::io("rename into place", &self.path))
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Where rows go, per format.
enum Sink {
    /// word2vec text, fastText `.vec`, GloVe.
    Text(PartialFile),
    Binary(PartialFile),
    /// `vectors.tsv`, `metadata.tsv`.
    Tsv(PartialFile, PartialFile),
    /// The numbers and the vocabulary (`.npy`, safetensors).
    WithVocab(PartialFile, PartialFile),
    /// A saved model is written whole by `finish`.
    Model {
        dir: PathBuf,
        words: Vec<String>,
        data: Vec<f32>,
    },
}

/// Writes a vectors file row by row.
///
/// Every file is written under a temporary name and renamed into place by
/// [`finish`](Self::finish); a writer dropped before that (after an error,
/// say) removes its temporary files and leaves any existing file alone.
/// Memory stays constant, except for [`VectorFormat::Model`], whose table
/// is built in memory.
///
/// Formats that start with the number of rows (see
/// [`VectorFormat::needs_len`]) must be told it when the writer is created,
/// and `finish` checks it.
///
/// Words are checked against what the format can hold: the formats
/// separated by whitespace need a non-empty word without whitespace, TSV
/// a word without tabs or line breaks, vocabulary files a word without line
/// breaks. Duplicate words are not checked here (a [`Vectors`] has none,
/// and a [`VectorReader`] refuses them).
///
/// [`Vectors`]: super::Vectors
/// [`VectorReader`]: super::VectorReader
///
/// # Examples
///
/// ```
/// use embkit::format::{ReadOptions, VectorFormat, VectorReader, VectorWriter};
///
/// let path = std::env::temp_dir().join(format!("embkit-doc-writer-{}.vec", std::process::id()));
///
/// let mut writer = VectorWriter::create(&path, VectorFormat::FastTextVec, 2, Some(2))?;
/// writer.write_row("cat", &[1.0, 0.25])?;
/// writer.write_row("dog", &[-0.5, 1e-30])?;
/// assert!(writer.write_row("two words", &[0.0, 0.0]).is_err());
/// writer.finish()?;
///
/// let back = VectorReader::open(&path, VectorFormat::FastTextVec, &ReadOptions::new())?
///     .collect::<embkit::Result<Vec<_>>>()?;
/// assert_eq!(back[1], ("dog".to_string(), vec![-0.5, 1e-30]));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), embkit::Error>(())
/// ```
pub struct VectorWriter {
    format: VectorFormat,
    path: PathBuf,
    dim: usize,
    len: Option<usize>,
    written: usize,
    sink: Sink,
    line: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for VectorWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorWriter")
            .field("format", &self.format)
            .field("path", &self.path)
            .field("dim", &self.dim)
            .field("len", &self.len)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl VectorWriter {
    /// Starts writing `path` as `format`, rows of `dim` values. `len` is
    /// the number of rows that will be written: required by the formats
    /// that store it first, checked by `finish` when given.
    ///
    /// For [`VectorFormat::Tsv`] and [`VectorFormat::Model`], `path` is a
    /// directory, created if missing. For `.npy` and safetensors, the
    /// words go to `path` with the extension `.vocab.txt`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `dim` is 0 or `len` is missing for a
    /// format that needs it; [`Error::Io`] if a file cannot be created.
    pub fn create(
        path: impl AsRef<Path>,
        format: VectorFormat,
        dim: usize,
        len: Option<usize>,
    ) -> Result<Self> {
        let path = path.as_ref();
        if dim == 0 {
            return Err(Error::config("dim", "must be at least 1, got 0"));
        }
        let needed = || match len {
            Some(len) => Ok(len),
            None => Err(Error::config(
                "len",
                format!("{format} starts with the number of rows: give it to the writer"),
            )),
        };
        let sink = match format {
            VectorFormat::Word2Vec | VectorFormat::FastTextVec => {
                let len = needed()?;
                let mut file = PartialFile::create(path)?;
                file.write(format!("{len} {dim}\n").as_bytes())?;
                Sink::Text(file)
            }
            VectorFormat::Glove => Sink::Text(PartialFile::create(path)?),
            VectorFormat::Word2VecBinary => {
                let len = needed()?;
                let mut file = PartialFile::create(path)?;
                file.write(format!("{len} {dim}\n").as_bytes())?;
                Sink::Binary(file)
            }
            VectorFormat::Tsv => {
                fs::create_dir_all(path).map_err(Error::io("create directory", path))?;
                Sink::Tsv(
                    PartialFile::create(&path.join(VECTORS_TSV))?,
                    PartialFile::create(&path.join(METADATA_TSV))?,
                )
            }
            VectorFormat::Npy => {
                let len = needed()?;
                let mut file = PartialFile::create(path)?;
                file.write(&npy::header_bytes(len, dim))?;
                Sink::WithVocab(file, PartialFile::create(&npy::vocab_path_for(path))?)
            }
            VectorFormat::Safetensors => {
                let len = needed()?;
                let header = tensors::safetensors_header(tensors::DEFAULT_TENSOR, len, dim)?;
                let mut file = PartialFile::create(path)?;
                file.write(&header)?;
                Sink::WithVocab(file, PartialFile::create(&npy::vocab_path_for(path))?)
            }
            VectorFormat::Model => {
                Sink::Model { dir: path.to_path_buf(), words: Vec::new(), data: Vec::new() }
            }
        };
        Ok(Self {
            format,
            path: path.to_path_buf(),
            dim,
            len,
            written: 0,
            sink,
            line: String::new(),
            bytes: Vec::new(),
        })
    }

    /// The format being written.
    pub fn format(&self) -> VectorFormat {
        self.format
    }

    /// Rows written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Checks that `word` can be written in this format.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the word and what is wrong with it.
    pub fn check_word(&self, word: &str) -> Result<()> {
        self.format.check_word(word)
    }

    /// Writes one row.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `values` does not have `dim` values or
    /// more rows than `len` are written; [`Error::InvalidConfig`] for a
    /// value that is not finite or a word the format cannot hold;
    /// [`Error::Io`] if writing fails.
    pub fn write_row(&mut self, word: &str, values: &[f32]) -> Result<()> {
        if values.len() != self.dim {
            return Err(Error::shape("row", format!("[{}]", self.dim), &[values.len()]));
        }
        if let Some(len) = self.len.filter(|&len| self.written == len) {
            return Err(Error::shape(
                "rows written",
                format!("{len} rows, as the writer was told"),
                &[len + 1],
            ));
        }
        if let Some((i, x)) = values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::config(
                "vectors",
                format!("value {} of {word:?} is {x}, only finite values can be written", i + 1),
            ));
        }
        self.check_word(word)?;
        match &mut self.sink {
            Sink::Text(file) => {
                word2vec::text_row(&mut self.line, word, values, ' ');
                file.write(self.line.as_bytes())?;
            }
            Sink::Binary(file) => {
                word2vec::binary_row(&mut self.bytes, word, values);
                file.write(&self.bytes)?;
            }
            Sink::Tsv(vectors, metadata) => {
                self.line.clear();
                for (i, &x) in values.iter().enumerate() {
                    if i > 0 {
                        self.line.push('\t');
                    }
                    word2vec::push_f32(&mut self.line, x);
                }
                self.line.push('\n');
                vectors.write(self.line.as_bytes())?;
                metadata.write(word.as_bytes())?;
                metadata.write(b"\n")?;
            }
            Sink::WithVocab(data, vocab) => {
                self.bytes.clear();
                for &x in values {
                    self.bytes.extend_from_slice(&x.to_le_bytes());
                }
                data.write(&self.bytes)?;
                vocab.write(word.as_bytes())?;
                vocab.write(b"\n")?;
            }
            Sink::Model { words, data, .. } => {
                words.push(word.to_string());
                data.extend_from_slice(values);
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Renames the files into place.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] if no row was written; [`Error::ShapeMismatch`]
    /// if fewer rows than `len` were written; [`Error::Io`] if a file
    /// cannot be synced or renamed. The temporary files are removed.
    pub fn finish(self) -> Result<()> {
        if self.written == 0 {
            return Err(Error::EmptyData {
                what: format!("{} output {}: no rows", self.format, self.path.display()),
            });
        }
        if let Some(len) = self.len.filter(|&len| len != self.written) {
            return Err(Error::shape(
                "rows written",
                format!("{len} rows, as the writer was told"),
                &[self.written],
            ));
        }
        match self.sink {
            Sink::Text(file) | Sink::Binary(file) => file.commit(),
            Sink::Tsv(first, second) | Sink::WithVocab(first, second) => {
                second.commit()?;
                first.commit()
            }
            Sink::Model { dir, words, data } => {
                let view = ArrayView2::from_shape((words.len(), self.dim), &data)
                    .expect("rows of dim values each");
                let table = Embedding::from_pretrained(view, false)?;
                let config = SequentialConfig::new(table.config().clone(), 1);
                let model = Sequential::from_parts(config, table, Vec::new())?;
                let mut saved = SavedModel::new(model);
                saved.vocab = Some(words);
                saved.save(dir)
            }
        }
    }
}
