//! word2vec text and binary, GloVe text and fastText `.vec` rows.
//!
//! - **word2vec text** and **fastText `.vec`** (the same layout): a header
//!   line `<count> <dim>`, then one row per line, `word v1 v2 ...`,
//!   separated by spaces (tabs and a trailing space are accepted).
//! - **GloVe text**: the same rows with no header; the first row sets the
//!   dimension.
//! - **word2vec binary**: the header line, then for each row the word's
//!   UTF-8 bytes, a space and `dim` little-endian f32. The original C tool
//!   writes a `\n` after each vector; gensim writes none. Both are read:
//!   whitespace before a word is skipped.
//!
//! Floats are written with Rust's shortest representation that reads
//! back to the same f32, so text round trips are bit-exact.

use std::fmt::Write as _;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use super::reader::{excerpt, is_blank, At, Lines, Problem, RawRow, RowSource};
use super::vectors::VectorFormat;
use crate::{Error, Result};

/// The longest word a binary reader accepts (1 MiB).
const MAX_WORD_BYTES: u64 = 1 << 20;

/// The first bytes of a fastText model file (`.bin`): 793712314 as a
/// little-endian i32.
const FASTTEXT_MAGIC: [u8; 4] = [0xba, 0x16, 0x4f, 0x2f];

/// Parses a `<count> <dim>` header line; `None` if it is not one.
fn parse_header(line: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut tokens = text.split_ascii_whitespace();
    let count = tokens.next()?.parse().ok()?;
    let dim = tokens.next()?.parse().ok()?;
    tokens.next().is_none().then_some((count, dim))
}

/// Whether the first line of the file at `path` is a `<count> <dim>`
/// header.
pub(crate) fn starts_with_header(path: &Path) -> Result<bool> {
    let mut lines = Lines::new(super::reader::open_file(path)?, path);
    Ok(lines.advance()? && parse_header(&lines.buf).is_some())
}

/// Reads and checks the header line of a word2vec file (text or binary).
fn read_header<R: BufRead>(lines: &mut Lines<R>, format: VectorFormat) -> Result<(usize, usize)> {
    if !lines.advance()? {
        return Err(Error::EmptyData {
            what: format!("{format} file {}: no header", lines.path().display()),
        });
    }
    if lines.buf.starts_with(&FASTTEXT_MAGIC) {
        return Err(lines.bad(
            "this is a fastText model (.bin), which is not word2vec binary: read its .vec export \
             (fasttext-vec) instead",
        ));
    }
    let Some((count, dim)) = parse_header(&lines.buf) else {
        let hint = if format == VectorFormat::Word2VecBinary {
            ""
        } else {
            "; a file without a header is GloVe text (read it as glove)"
        };
        return Err(lines.bad(format!(
            "expected a header `<count> <dim>` (two whole numbers), found {}{hint}",
            excerpt(&lines.buf)
        )));
    };
    if dim == 0 {
        return Err(lines.bad("the header's dim is 0"));
    }
    if format == VectorFormat::Word2VecBinary && dim.checked_mul(4).is_none() {
        return Err(lines.bad(format!("the header's dim {dim} is too large")));
    }
    Ok((count, dim))
}

/// Rows of word2vec text, fastText `.vec` or GloVe text.
pub(crate) struct TextRows<R> {
    lines: Lines<R>,
    state: TextState,
    /// A row parsed after a run of empty lines, returned after the error
    /// for the first of them.
    pending: Option<Result<Option<RawRow>, Problem>>,
    ended: bool,
}

struct TextState {
    format: VectorFormat,
    lenient: bool,
    declared: Option<usize>,
    dim: Option<usize>,
    /// The line the GloVe dimension was taken from.
    dim_line: usize,
    /// Rows (non-empty lines) seen so far, good or bad.
    records: usize,
    /// GloVe: line 1 when it looks like a word2vec header.
    header_like: Option<String>,
}

impl<R: BufRead> TextRows<R> {
    /// Reads the header (word2vec, fastText) and gets ready for the rows.
    pub fn new(reader: R, path: &Path, format: VectorFormat, lenient: bool) -> Result<Self> {
        let mut lines = Lines::new(reader, path);
        let (declared, dim) = if format == VectorFormat::Glove {
            (None, None)
        } else {
            let (count, dim) = read_header(&mut lines, format)?;
            (Some(count), Some(dim))
        };
        let state = TextState {
            format,
            lenient,
            declared,
            dim,
            dim_line: 1,
            records: 0,
            header_like: None,
        };
        Ok(Self { lines, state, pending: None, ended: false })
    }
}

impl<R: BufRead + Send> RowSource for TextRows<R> {
    fn next_row(&mut self) -> Result<Option<RawRow>, Problem> {
        if let Some(pending) = self.pending.take() {
            return pending;
        }
        if self.ended {
            return Ok(None);
        }
        let mut blank = None;
        loop {
            if !self.lines.advance()? {
                self.ended = true;
                return self.state.check_count(&self.lines);
            }
            if is_blank(&self.lines.buf) {
                blank.get_or_insert(self.lines.line);
                continue;
            }
            let row = self.state.parse(&self.lines);
            return match blank {
                None => row,
                Some(line) => {
                    self.pending = Some(row);
                    Err(Problem::Row(Error::BadRow {
                        path: self.lines.path().to_path_buf(),
                        line,
                        reason: "empty line".into(),
                    }))
                }
            };
        }
    }

    fn dim(&self) -> Option<usize> {
        self.state.dim
    }

    fn declared_len(&self) -> Option<usize> {
        self.state.declared
    }

    fn word_error(&self, at: At, reason: String) -> Error {
        let line = match at {
            At::Line(line) => line,
            At::Record { row, .. } => row,
        };
        Error::BadRow { path: self.lines.path().to_path_buf(), line, reason }
    }
}

impl TextState {
    /// Parses the non-blank line in `lines.buf`.
    fn parse<R>(&mut self, lines: &Lines<R>) -> Result<Option<RawRow>, Problem>
    where
        R: BufRead,
    {
        let line = lines.line;
        self.records += 1;
        if let Some(declared) = self.declared.filter(|&d| self.records > d && !self.lenient) {
            return Err(Problem::Fatal(
                lines.bad(format!("the header declares {declared} rows, but the file has more")),
            ));
        }
        let text = match std::str::from_utf8(&lines.buf) {
            Ok(text) => text,
            Err(e) => {
                let hint = if self.declared.is_some() && self.records == 1 {
                    " (a binary file? read it as word2vec-bin)"
                } else {
                    ""
                };
                return Err(Problem::Row(lines.bad(format!(
                    "not valid UTF-8 (byte {} of the line){hint}",
                    e.valid_up_to()
                ))));
            }
        };
        if self.format == VectorFormat::Glove
            && self.records == 1
            && parse_header(&lines.buf).is_some()
        {
            self.header_like = Some(text.trim().to_string());
        }
        let mut tokens = text.split_ascii_whitespace();
        let word = tokens.next().expect("the line is not blank");
        let mut values = Vec::with_capacity(self.dim.unwrap_or(0).min(1 << 16));
        for (i, token) in tokens.enumerate() {
            let Ok(x) = token.parse::<f32>() else {
                return Err(Problem::Row(lines.bad(format!(
                    "value {} ({}) is not a number",
                    i + 1,
                    excerpt(token.as_bytes())
                ))));
            };
            if !x.is_finite() {
                return Err(Problem::Row(
                    lines.bad(format!("value {} ({token}) is not a finite f32", i + 1)),
                ));
            }
            values.push(x);
        }
        match self.dim {
            Some(dim) if values.len() != dim => {
                let origin = match self.declared {
                    Some(_) => "the header's dim".to_string(),
                    None => format!("as on line {}", self.dim_line),
                };
                let hint = match &self.header_like {
                    Some(header) => format!(
                        "; line 1 ({header:?}) looks like a word2vec header: read the file as word2vec"
                    ),
                    None => String::new(),
                };
                return Err(Problem::Row(lines.bad(format!(
                    "expected {dim} values after the word ({origin}), found {}{hint}",
                    values.len()
                ))));
            }
            Some(_) => {}
            None if values.is_empty() => {
                return Err(Problem::Row(lines.bad("no values after the word")));
            }
            None => {
                self.dim = Some(values.len());
                self.dim_line = line;
            }
        }
        Ok(Some(RawRow { word: word.to_string(), values, at: At::Line(line) }))
    }

    fn check_count<R: BufRead>(&self, lines: &Lines<R>) -> Result<Option<RawRow>, Problem> {
        match self.declared {
            Some(declared) if declared != self.records => Err(Problem::Count(Error::BadRow {
                path: lines.path().to_path_buf(),
                line: 1,
                reason: format!(
                    "the header declares {declared} rows, but the file has {}",
                    self.records
                ),
            })),
            _ => Ok(None),
        }
    }
}

/// Rows of a word2vec binary file.
pub(crate) struct BinaryRows<R> {
    reader: R,
    path: PathBuf,
    lenient: bool,
    declared: usize,
    dim: usize,
    /// Bytes consumed so far.
    offset: u64,
    records: usize,
    word: Vec<u8>,
    vector: Vec<u8>,
    ended: bool,
}

impl<R: BufRead> BinaryRows<R> {
    /// Reads the header and gets ready for the rows.
    pub fn new(reader: R, path: &Path, lenient: bool) -> Result<Self> {
        let mut lines = Lines::new(reader, path);
        let (declared, dim) = read_header(&mut lines, VectorFormat::Word2VecBinary)?;
        let offset = lines.consumed;
        Ok(Self {
            reader: lines.into_inner(),
            path: path.to_path_buf(),
            lenient,
            declared,
            dim,
            offset,
            records: 0,
            word: Vec::new(),
            vector: Vec::new(),
            ended: false,
        })
    }

    fn bad(&self, offset: u64, reason: String) -> Error {
        Error::BadBinaryFile { path: self.path.clone(), offset, reason }
    }

    /// Skips whitespace; `false` at the end of the file.
    fn skip_whitespace(&mut self) -> Result<bool> {
        loop {
            let available = self.reader.fill_buf().map_err(Error::io("read", &self.path))?;
            if available.is_empty() {
                return Ok(false);
            }
            let n = available.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let more = n < available.len();
            self.reader.consume(n);
            self.offset += n as u64;
            if more {
                return Ok(true);
            }
        }
    }
}

impl<R: BufRead + Send> RowSource for BinaryRows<R> {
    fn next_row(&mut self) -> Result<Option<RawRow>, Problem> {
        if self.ended {
            return Ok(None);
        }
        if !self.skip_whitespace()? {
            self.ended = true;
            if self.records != self.declared {
                return Err(Problem::Count(Error::BadRow {
                    path: self.path.clone(),
                    line: 1,
                    reason: format!(
                        "the header declares {} rows, but the file has {}",
                        self.declared, self.records
                    ),
                }));
            }
            return Ok(None);
        }
        let start = self.offset;
        self.records += 1;
        let row = self.records;
        if self.records > self.declared && !self.lenient {
            return Err(Problem::Fatal(self.bad(
                start,
                format!(
                    "row {row}: the header declares {} rows, but the file has more",
                    self.declared
                ),
            )));
        }
        self.word.clear();
        let n = (&mut self.reader)
            .take(MAX_WORD_BYTES + 1)
            .read_until(b' ', &mut self.word)
            .map_err(Error::io("read", &self.path))?;
        self.offset += n as u64;
        if self.word.last() != Some(&b' ') {
            let reason = if n as u64 > MAX_WORD_BYTES {
                format!(
                    "row {row}: no space after the word within {} MiB (not a word2vec binary file?)",
                    MAX_WORD_BYTES >> 20
                )
            } else {
                format!("row {row}: the file ends inside the word {}", excerpt(&self.word))
            };
            return Err(Problem::Fatal(self.bad(start, reason)));
        }
        self.word.pop();
        let want = self.dim * 4;
        self.vector.clear();
        let n = (&mut self.reader)
            .take(want as u64)
            .read_to_end(&mut self.vector)
            .map_err(Error::io("read", &self.path))?;
        let vector_start = self.offset;
        self.offset += n as u64;
        if n < want {
            return Err(Problem::Fatal(self.bad(
                vector_start,
                format!(
                    "row {row} ({}): the file ends after {n} of the vector's {want} bytes",
                    excerpt(&self.word)
                ),
            )));
        }
        if row == 1
            && want >= 16
            && self.vector.iter().all(|b| b"0123456789.-+eE \t\r\n".contains(b))
        {
            return Err(Problem::Fatal(self.bad(
                vector_start,
                format!(
                    "row 1: the vector is text ({}), not binary floats: read the file as word2vec",
                    excerpt(&self.vector)
                ),
            )));
        }
        let at = At::Record { row, offset: start };
        let word = match String::from_utf8(std::mem::take(&mut self.word)) {
            Ok(word) => word,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                self.word = e.into_bytes();
                return Err(Problem::Row(
                    self.word_error(at, format!("the word is not valid UTF-8 (byte {valid})")),
                ));
            }
        };
        if word.contains(['\n', '\r', '\t']) {
            return Err(Problem::Row(
                self.word_error(at, format!("the word {word:?} contains a line break or tab")),
            ));
        }
        let values = super::f32s_from_le(&self.vector);
        if let Some((i, reason)) = super::reader::non_finite(&values) {
            return Err(Problem::Row(
                self.bad(vector_start + 4 * i as u64, format!("row {row} ({word:?}): {reason}")),
            ));
        }
        Ok(Some(RawRow { word, values, at }))
    }

    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }

    fn declared_len(&self) -> Option<usize> {
        Some(self.declared)
    }

    fn word_error(&self, at: At, reason: String) -> Error {
        let (row, offset) = match at {
            At::Record { row, offset } => (row, offset),
            At::Line(line) => (line, 0),
        };
        self.bad(offset, format!("row {row}: {reason}"))
    }
}

/// Why `word` cannot be written in a format whose fields are separated by
/// whitespace; `None` if it can.
pub(crate) fn whitespace_word_problem(word: &str) -> Option<&'static str> {
    if word.is_empty() {
        Some("it is empty")
    } else if word.bytes().any(|b| b.is_ascii_whitespace() || b == b'\x0b') {
        Some("it contains whitespace, which separates the fields")
    } else {
        None
    }
}

/// Appends `x` with the fewest digits that read back as the same f32:
/// plain notation for moderate magnitudes, scientific otherwise.
pub(crate) fn push_f32(out: &mut String, x: f32) {
    let magnitude = x.abs();
    if magnitude == 0.0 || (1e-5..1e9).contains(&magnitude) {
        write!(out, "{x}").expect("writing to a String cannot fail");
    } else {
        write!(out, "{x:e}").expect("writing to a String cannot fail");
    }
}

/// A text row: `word v1 v2 ...\n`.
pub(crate) fn text_row(out: &mut String, word: &str, values: &[f32], separator: char) {
    out.clear();
    out.push_str(word);
    for &x in values {
        out.push(separator);
        push_f32(out, x);
    }
    out.push('\n');
}

/// A binary row: the word, a space, the little-endian floats and a `\n`
/// (as the original word2vec tool writes it).
pub(crate) fn binary_row(out: &mut Vec<u8>, word: &str, values: &[f32]) {
    out.clear();
    out.extend_from_slice(word.as_bytes());
    out.push(b' ');
    for &x in values {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_floats_read_back_bit_exact() {
        let mut s = String::new();
        for x in [0.0f32, -0.0, 1.0, -1.5e-7, 3.4028235e38, 1e-45, 1.1754944e-38, 0.1, 123456.79] {
            s.clear();
            push_f32(&mut s, x);
            assert_eq!(s.parse::<f32>().unwrap().to_bits(), x.to_bits(), "{s}");
        }
    }

    #[test]
    fn headers_are_two_whole_numbers() {
        assert_eq!(parse_header(b"2747 10"), Some((2747, 10)));
        assert_eq!(parse_header(b" 3\t5 "), Some((3, 5)));
        assert_eq!(parse_header(b"3 5 7"), None);
        assert_eq!(parse_header(b"the 0.5"), None);
        assert_eq!(parse_header(b"-3 5"), None);
    }

    #[test]
    fn words_with_whitespace_cannot_be_written() {
        assert!(whitespace_word_problem("new york").is_some());
        assert!(whitespace_word_problem("").is_some());
        assert!(whitespace_word_problem("tab\there").is_some());
        assert!(whitespace_word_problem("köln").is_none());
    }
}
