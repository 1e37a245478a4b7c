//! [`VectorReader`]: rows of a word-vector file, one `(word, row)` pair at
//! a time, checked as they arrive.
//!
//! Each format has a row source (in `word2vec.rs`, `tsv.rs`, `npy.rs`,
//! `tensors.rs`) that parses its own layout and checks what only it can
//! check: the header against the rows, the number of values of each row,
//! values that are not finite. This module adds what is common to all of
//! them: duplicate words, lenient skipping, the report, and the line and
//! word readers the sources share.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::vectors::{VectorFormat, Vectors};
use crate::{Error, Result};

/// The longest line a text reader accepts (64 MiB). A longer "line" is
/// almost certainly a binary file read as text.
pub(crate) const MAX_LINE_BYTES: u64 = 1 << 26;

/// At most this many floats are reserved before rows arrive (64 MiB); a
/// header that declares more rows than that grows the table as rows come.
pub(crate) const MAX_RESERVED_FLOATS: usize = 1 << 24;

/// The fewest bytes a row of `dim` values takes in any format: a value
/// is at least one digit and a separator in text, and 2 bytes (f16) or
/// more in binary files.
fn min_row_bytes(dim: usize) -> u64 {
    // Saturating: a header may declare any dimension, up to usize::MAX.
    (dim.max(1) as u64).saturating_mul(2)
}

/// How many rows to reserve room for before reading: what the header
/// declares, but never more than the file can hold (`file_len`, `None`
/// when unknown: then nothing is reserved) nor more than
/// [`MAX_RESERVED_FLOATS`] values. A header is not trusted with memory.
fn rows_to_reserve(declared: usize, dim: usize, file_len: Option<u64>) -> usize {
    let Some(file_len) = file_len else { return 0 };
    let fits = usize::try_from(file_len / min_row_bytes(dim)).unwrap_or(usize::MAX);
    declared.min(fits).min(MAX_RESERVED_FLOATS / dim.max(1))
}

/// How many problems a [`ReadReport`] keeps.
pub const MAX_PROBLEMS: usize = 100;

/// Settings for reading a vectors file.
///
/// Start from [`ReadOptions::new`] (strict: the first bad row is an error)
/// and change what you need with the `with_*` methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Skip bad rows (unparsable, of the wrong length, with NaN or
    /// infinite values, with a word that is not UTF-8 or seen before) and
    /// count them in the [`ReadReport`], and accept a header whose row
    /// count does not match the rows (reported too). Damage that loses
    /// the position in the file (a truncated binary file, a line longer
    /// than 64 MiB, files of different lengths) is an error either way.
    pub lenient: bool,
    /// The tensor of a safetensors file to read. Without it the file's only
    /// 2-D float tensor is read, or `embedding.weight` when there are
    /// several.
    pub tensor: Option<String>,
    /// The vocabulary file of a `.npy` or safetensors file (one word per
    /// line, in row order). Without it, the file's name with the extension
    /// `.vocab.txt` (`vectors.npy` → `vectors.vocab.txt`).
    pub vocab: Option<PathBuf>,
    /// The table of a saved model to read: `embedding` (the only table of
    /// a sequential model); `items` (the default) or `users` for a
    /// matrix factorisation, whose rows are named by its item or user
    /// keys; `words` (the only one) for a bag classifier; `input` (the
    /// default, the word vectors) or `output` (the vectors of negative
    /// sampling) for a skip-gram model.
    pub table: Option<String>,
}

impl ReadOptions {
    /// Strict reading, default tensor and vocabulary names.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`lenient`](Self::lenient).
    pub fn with_lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// Sets [`tensor`](Self::tensor).
    pub fn with_tensor(mut self, name: impl Into<String>) -> Self {
        self.tensor = Some(name.into());
        self
    }

    /// Sets [`vocab`](Self::vocab).
    pub fn with_vocab(mut self, path: impl Into<PathBuf>) -> Self {
        self.vocab = Some(path.into());
        self
    }

    /// Sets [`table`](Self::table).
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }
}

/// What reading found besides the rows.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReadReport {
    /// Rows returned.
    pub rows: usize,
    /// Rows left out (lenient reading, or a converter that could not
    /// write their word).
    pub skipped: usize,
    /// Why: the first [`MAX_PROBLEMS`] skipped rows and header mismatches
    /// that lenient reading accepted.
    pub problems: Vec<Error>,
    /// Problems past the first [`MAX_PROBLEMS`], counted but not kept.
    pub unlisted_problems: usize,
}

impl ReadReport {
    pub(crate) fn skip(&mut self, err: Error) {
        self.skipped += 1;
        self.note(err);
    }

    pub(crate) fn note(&mut self, err: Error) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(err);
        } else {
            self.unlisted_problems += 1;
        }
    }
}

/// Where a row's word is, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// A 1-based line of a text file.
    Line(usize),
    /// A 1-based row of a binary file that starts at a byte offset.
    Record { row: usize, offset: u64 },
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Line(line) => write!(f, "line {line}"),
            At::Record { row, offset } => write!(f, "row {row} (byte {offset})"),
        }
    }
}

/// One row as a source parsed it.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub word: String,
    pub values: Vec<f32>,
    pub at: At,
}

/// Why a source could not give a row.
#[derive(Debug)]
pub(crate) enum Problem {
    /// This row (or line) is bad; the next one can still be read.
    Row(Error),
    /// The header's row count does not match the rows (found at the end).
    Count(Error),
    /// Reading cannot go on.
    Fatal(Error),
}

impl From<Error> for Problem {
    fn from(err: Error) -> Self {
        Problem::Fatal(err)
    }
}

/// A format's rows.
pub(crate) trait RowSource: Send {
    /// The next row; `Ok(None)` at the end.
    fn next_row(&mut self) -> Result<Option<RawRow>, Problem>;
    /// The row length, once the header or the first row has been read.
    fn dim(&self) -> Option<usize>;
    /// The number of rows the file says it has (not checked yet).
    fn declared_len(&self) -> Option<usize>;
    /// An error about the word of the row at `at`.
    fn word_error(&self, at: At, reason: String) -> Error;
}

/// Reads a vectors file row by row.
///
/// It is an iterator of `(word, row)` pairs, so a file larger than memory
/// can be converted or scanned; [`read_all`](Self::read_all) collects a
/// [`Vectors`]. Nothing in a header is trusted: declared counts and sizes
/// are checked against the rows as they arrive, and memory grows with the
/// rows read, not with what a header claims.
///
/// After an error the iterator ends.
///
/// # Errors
///
/// Each item is an error for a bad row (strict reading), and the last item
/// is an error when the file ends early or does not match its header:
///
/// - [`Error::BadRow`] for a line of a text file (the header, a row with
///   the wrong number of values, a value that is not a number or not
///   finite, a word that is not UTF-8 or seen before, an empty line);
/// - [`Error::BadBinaryFile`] for a binary file (a bad header, a truncated
///   row, a value that is not finite, a size that does not match);
/// - [`Error::EmptyData`] for a file with no rows;
/// - [`Error::Io`] when a file cannot be opened or read.
///
/// # Examples
///
/// ```
/// use embkit::format::{ReadOptions, VectorFormat, VectorReader};
///
/// let text = "2 3\ncat 1 0 0\ndog 0.5 0.5 0\n";
/// let rows = VectorReader::from_reader(
///     text.as_bytes(),
///     "inline.vec",
///     VectorFormat::Word2Vec,
///     &ReadOptions::new(),
/// )?;
/// let (vectors, report) = rows.read_all()?;
/// assert_eq!(vectors.get("dog"), Some(&[0.5, 0.5, 0.0][..]));
/// assert_eq!(report.rows, 2);
///
/// // A header that claims more rows than there are is an error...
/// let short = "3 3\ncat 1 0 0\n";
/// let rows = VectorReader::from_reader(
///     short.as_bytes(),
///     "short.vec",
///     VectorFormat::Word2Vec,
///     &ReadOptions::new(),
/// )?;
/// assert!(rows.read_all().is_err());
/// // ...unless reading is lenient, which reports it.
/// let lenient = ReadOptions::new().with_lenient(true);
/// let rows =
///     VectorReader::from_reader(short.as_bytes(), "short.vec", VectorFormat::Word2Vec, &lenient)?;
/// let (vectors, report) = rows.read_all()?;
/// assert_eq!((vectors.len(), report.problems.len()), (1, 1));
/// # Ok::<(), embkit::Error>(())
/// ```
pub struct VectorReader {
    format: VectorFormat,
    path: PathBuf,
    source: Box<dyn RowSource>,
    lenient: bool,
    seen: HashMap<String, At>,
    report: ReadReport,
    done: bool,
}

impl fmt::Debug for VectorReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorReader")
            .field("format", &self.format)
            .field("path", &self.path)
            .field("lenient", &self.lenient)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl VectorReader {
    /// Opens `path` to read it as `format`.
    ///
    /// For [`VectorFormat::Tsv`] and [`VectorFormat::Model`], `path` is a
    /// directory. The header (if the format has one) is read and checked
    /// here; the rows are read by iterating.
    ///
    /// # Errors
    ///
    /// As for the rows (see the type's docs), for the header and the files
    /// that are read whole (safetensors, a model, a Fortran-order `.npy`).
    pub fn open(
        path: impl AsRef<Path>,
        format: VectorFormat,
        options: &ReadOptions,
    ) -> Result<Self> {
        let path = path.as_ref();
        let lenient = options.lenient;
        let source: Box<dyn RowSource> = match format {
            VectorFormat::Word2Vec | VectorFormat::FastTextVec | VectorFormat::Glove => {
                Box::new(super::word2vec::TextRows::new(open_file(path)?, path, format, lenient)?)
            }
            VectorFormat::Word2VecBinary => {
                Box::new(super::word2vec::BinaryRows::new(open_file(path)?, path, lenient)?)
            }
            VectorFormat::Tsv => super::tsv::open(path)?,
            VectorFormat::Npy => super::npy::open(path, options)?,
            VectorFormat::Safetensors => super::tensors::open_safetensors(path, options)?,
            VectorFormat::Model => super::tensors::open_model(path, options)?,
        };
        Ok(Self::with_source(format, path, source, lenient))
    }

    /// Reads a one-file format from any reader (`path` only names it in
    /// errors): [`Word2Vec`](VectorFormat::Word2Vec),
    /// [`FastTextVec`](VectorFormat::FastTextVec),
    /// [`Glove`](VectorFormat::Glove) or
    /// [`Word2VecBinary`](VectorFormat::Word2VecBinary).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a format of several files; otherwise as
    /// [`open`](Self::open).
    pub fn from_reader(
        reader: impl BufRead + Send + 'static,
        path: impl AsRef<Path>,
        format: VectorFormat,
        options: &ReadOptions,
    ) -> Result<Self> {
        let path = path.as_ref();
        let lenient = options.lenient;
        let source: Box<dyn RowSource> = match format {
            VectorFormat::Word2Vec | VectorFormat::FastTextVec | VectorFormat::Glove => {
                Box::new(super::word2vec::TextRows::new(reader, path, format, lenient)?)
            }
            VectorFormat::Word2VecBinary => {
                Box::new(super::word2vec::BinaryRows::new(reader, path, lenient)?)
            }
            other => {
                return Err(Error::config(
                    "format",
                    format!("{other} is made of several files: use VectorReader::open"),
                ))
            }
        };
        Ok(Self::with_source(format, path, source, lenient))
    }

    fn with_source(
        format: VectorFormat,
        path: &Path,
        source: Box<dyn RowSource>,
        lenient: bool,
    ) -> Self {
        Self {
            format,
            path: path.to_path_buf(),
            source,
            lenient,
            seen: HashMap::new(),
            report: ReadReport::default(),
            done: false,
        }
    }

    /// The format being read.
    pub fn format(&self) -> VectorFormat {
        self.format
    }

    /// The row length: known after the header, or after the first row for
    /// formats without one (GloVe, TSV).
    pub fn dim(&self) -> Option<usize> {
        self.source.dim()
    }

    /// The number of rows the header (or array shape) declares. It is
    /// checked against the rows when the file ends.
    pub fn declared_len(&self) -> Option<usize> {
        self.source.declared_len()
    }

    /// What has been read and skipped so far.
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// The report, once reading is over.
    pub fn into_report(self) -> ReadReport {
        self.report
    }

    /// Reads the remaining rows into a [`Vectors`].
    ///
    /// # Errors
    ///
    /// The first error of the rows (see the type's docs).
    pub fn read_all(mut self) -> Result<(Vectors, ReadReport)> {
        let mut words = Vec::new();
        let mut data = Vec::new();
        if let (Some(len), Some(dim)) = (self.declared_len(), self.dim()) {
            // Only a file's length bounds what a header may claim; a
            // directory or a stream reserves nothing and grows as rows come.
            let file_len =
                std::fs::metadata(&self.path).ok().filter(|m| m.is_file()).map(|m| m.len());
            let rows = rows_to_reserve(len, dim, file_len);
            words.reserve(rows);
            data.reserve(rows * dim);
        }
        let mut dim = 0;
        for row in &mut self {
            let (word, values) = row?;
            dim = values.len();
            words.push(word);
            data.extend_from_slice(&values);
        }
        let vectors = Vectors::from_checked(words, dim, data);
        Ok((vectors, self.report))
    }

    /// Marks `word` as seen at `at`; an error if it was seen before.
    fn check_duplicate(&mut self, word: &str, at: At) -> Result<(), Error> {
        if let Some(first) = self.seen.get(word) {
            return Err(self
                .source
                .word_error(at, format!("duplicate word {word:?} (first at {first})")));
        }
        self.seen.insert(word.to_string(), at);
        Ok(())
    }
}

impl Iterator for VectorReader {
    type Item = Result<(String, Vec<f32>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let err = match self.source.next_row() {
                Ok(Some(row)) => match self.check_duplicate(&row.word, row.at) {
                    Ok(()) => {
                        self.report.rows += 1;
                        return Some(Ok((row.word, row.values)));
                    }
                    Err(err) => Problem::Row(err),
                },
                Ok(None) => {
                    self.done = true;
                    if self.report.rows > 0 {
                        return None;
                    }
                    let skipped = match self.report.skipped {
                        0 => String::new(),
                        n => format!(" after skipping {n} bad rows"),
                    };
                    return Some(Err(Error::EmptyData {
                        what: format!(
                            "{} file {}: no rows{skipped}",
                            self.format,
                            self.path.display()
                        ),
                    }));
                }
                Err(problem) => problem,
            };
            match err {
                Problem::Row(err) if self.lenient => self.report.skip(err),
                Problem::Count(err) if self.lenient => self.report.note(err),
                Problem::Row(err) | Problem::Count(err) | Problem::Fatal(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
    }
}

/// Opens a file for buffered reading.
pub(crate) fn open_file(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).map_err(Error::io("open", path))?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

/// The lines of a text file as bytes, numbered from 1, without their
/// `\n` or `\r\n`, and without a UTF-8 byte-order mark on line 1.
pub(crate) struct Lines<R> {
    reader: R,
    path: PathBuf,
    /// The number of the line in `buf`.
    pub line: usize,
    /// The last line read.
    pub buf: Vec<u8>,
    /// Bytes read so far, line ends included.
    pub consumed: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, path: &Path) -> Self {
        Self { reader, path: path.to_path_buf(), line: 0, buf: Vec::new(), consumed: 0 }
    }

    /// The reader, positioned after the last line read.
    pub fn into_inner(self) -> R {
        self.reader
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next line into [`buf`](Self::buf); `false` at the end.
    ///
    /// # Errors
    ///
    /// [`Error::Io`]; [`Error::BadRow`] for a line longer than
    /// [`MAX_LINE_BYTES`].
    pub fn advance(&mut self) -> Result<bool> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(Error::io("read", &self.path))?;
        if n == 0 {
            return Ok(false);
        }
        self.consumed += n as u64;
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n as u64 > MAX_LINE_BYTES {
            return Err(Error::BadRow {
                path: self.path.clone(),
                line: self.line,
                reason: format!(
                    "the line is longer than {} MiB (is this a binary file?)",
                    MAX_LINE_BYTES >> 20
                ),
            });
        }
        if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        Ok(true)
    }

    /// An [`Error::BadRow`] for the current line.
    pub fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadRow { path: self.path.clone(), line: self.line, reason: reason.into() }
    }
}

/// Whether a line holds only ASCII whitespace.
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// A short, printable excerpt of a line for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
    let more = if bytes.len() > 60 { "..." } else { "" };
    format!("{:?}{more}", text.trim_end())
}

/// The words of a vocabulary file (one per line, in row order) or of an
/// in-memory list, for the formats that keep words beside the numbers.
pub(crate) enum Words {
    File(Lines<BufReader<File>>),
    List { words: std::vec::IntoIter<String>, path: PathBuf, line: usize },
}

impl Words {
    /// Opens a vocabulary file.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Words::File(Lines::new(open_file(path)?, path)))
    }

    /// The file the words come from (for errors).
    pub fn path(&self) -> &Path {
        match self {
            Words::File(lines) => lines.path(),
            Words::List { path, .. } => path,
        }
    }

    /// The next word and its line; the inner error is a word that is not
    /// UTF-8 (the rest can still be read).
    pub fn next_word(&mut self) -> Result<Option<(usize, Result<String, Error>)>> {
        match self {
            Words::File(lines) => {
                if !lines.advance()? {
                    return Ok(None);
                }
                let word = match std::str::from_utf8(&lines.buf) {
                    Ok(word) => Ok(word.to_string()),
                    Err(e) => Err(lines.bad(format!(
                        "the word is not valid UTF-8 (byte {} of the line)",
                        e.valid_up_to()
                    ))),
                };
                Ok(Some((lines.line, word)))
            }
            Words::List { words, line, .. } => Ok(words.next().map(|w| {
                *line += 1;
                (*line, Ok(w))
            })),
        }
    }

    /// Checks that nothing but blank lines is left once `rows` words were
    /// read.
    pub fn check_end(&mut self, rows: usize) -> Result<()> {
        while let Some((line, word)) = self.next_word()? {
            if !word.as_deref().is_ok_and(|w| w.trim().is_empty()) {
                return Err(Error::BadRow {
                    path: self.path().to_path_buf(),
                    line,
                    reason: format!("more words than the {rows} rows of the vectors"),
                });
            }
        }
        Ok(())
    }

    /// The error for a vocabulary that ends before row `row` (0-based).
    pub fn too_short(&self, row: usize, rows: usize) -> Error {
        Error::BadRow {
            path: self.path().to_path_buf(),
            line: row + 1,
            reason: format!("the vocabulary ends here, but there are {rows} rows (one word each)"),
        }
    }
}

/// The first value of `values` that is not finite, as a reason.
pub(crate) fn non_finite(values: &[f32]) -> Option<(usize, String)> {
    values
        .iter()
        .position(|x| !x.is_finite())
        .map(|i| (i, format!("value {} is {}, only finite values are accepted", i + 1, values[i])))
}

/// Rows of a table already in memory (a safetensors tensor, a saved
/// model, a Fortran-order `.npy`), paired with their words.
pub(crate) struct MemoryRows {
    data: Vec<f32>,
    dim: usize,
    rows: usize,
    next: usize,
    words: Words,
    /// Where the numbers came from, for errors about values.
    data_path: PathBuf,
    /// The byte offset of the first value in `data_path`.
    base: u64,
    /// The size of one stored value in bytes.
    item: u64,
    /// Whether the file stored the table column by column.
    column_major: bool,
}

impl MemoryRows {
    /// `data` is row-major `[rows, dim]`; `base`, `item` and `column_major`
    /// describe how the file stored it (for the offsets in errors).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data: Vec<f32>,
        rows: usize,
        dim: usize,
        words: Words,
        data_path: &Path,
        base: u64,
        item: u64,
        column_major: bool,
    ) -> Self {
        debug_assert_eq!(data.len(), rows * dim);
        Self {
            data,
            dim,
            rows,
            next: 0,
            words,
            data_path: data_path.to_path_buf(),
            base,
            item,
            column_major,
        }
    }
}

impl RowSource for MemoryRows {
    fn next_row(&mut self) -> Result<Option<RawRow>, Problem> {
        if self.next == self.rows {
            self.words.check_end(self.rows)?;
            return Ok(None);
        }
        let row = self.next;
        self.next += 1;
        let Some((line, word)) = self.words.next_word()? else {
            return Err(Problem::Fatal(self.words.too_short(row, self.rows)));
        };
        let word = word.map_err(Problem::Row)?;
        let values = self.data[row * self.dim..(row + 1) * self.dim].to_vec();
        if let Some((col, reason)) = non_finite(&values) {
            let index =
                if self.column_major { col * self.rows + row } else { row * self.dim + col };
            return Err(Problem::Row(Error::BadBinaryFile {
                path: self.data_path.clone(),
                offset: self.base + self.item * index as u64,
                reason: format!("row {} ({word:?}): {reason}", row + 1),
            }));
        }
        Ok(Some(RawRow { word, values, at: At::Line(line) }))
    }

    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }

    fn declared_len(&self) -> Option<usize> {
        Some(self.rows)
    }

    fn word_error(&self, at: At, reason: String) -> Error {
        let line = match at {
            At::Line(line) => line,
            At::Record { row, .. } => row,
        };
        Error::BadRow { path: self.words.path().to_path_buf(), line, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reserves_no_more_than_the_file_can_hold() {
        // 10^12 rows of one value declared in a 20-byte file.
        assert_eq!(rows_to_reserve(1_000_000_000_000, 1, Some(20)), 10);
        assert_eq!(rows_to_reserve(3, 300, Some(1 << 30)), 3);
        assert_eq!(rows_to_reserve(usize::MAX, 1, Some(u64::MAX)), MAX_RESERVED_FLOATS);
        assert_eq!(rows_to_reserve(usize::MAX, 0, Some(u64::MAX)), MAX_RESERVED_FLOATS);
        assert_eq!(rows_to_reserve(1_000, 4, None), 0);
        // A header may declare any dimension: no overflow.
        assert_eq!(rows_to_reserve(5, usize::MAX, Some(100)), 0);
    }
}
