//! Reading data files line by line: gzip detection, line numbers, bad-row
//! handling ([`DataOptions::skip_bad_rows`], [`DataReport`]) and the
//! streaming [`Rows`] iterator every reader of this module is built on.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The longest line accepted (64 MiB): a longer "line" is almost
/// certainly a binary file read as text.
const MAX_LINE_BYTES: u64 = 1 << 26;

/// How many problems a [`DataReport`] keeps.
pub const MAX_DATA_PROBLEMS: usize = 100;

/// Whether a file starts with a header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Header {
    /// Decided from the first non-blank line: for interactions, a header
    /// is a line whose rating column is not a number; for labelled texts,
    /// the line `label<TAB>text`. The default.
    #[default]
    Auto,
    /// The first non-blank line is a header.
    Present,
    /// There is no header: the first line is data.
    Absent,
}

/// What separates the fields of an interactions file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delimiter {
    /// A tab (MovieLens `u.data`).
    Tab,
    /// A comma (MovieLens `ratings.csv`).
    Comma,
    /// `::` (MovieLens 1M `ratings.dat`).
    DoubleColon,
    /// Any run of spaces or tabs.
    Whitespace,
}

impl Delimiter {
    /// The delimiter of a line: a tab if it has one, else `::`, else a
    /// comma, else whitespace.
    pub fn detect(line: &str) -> Self {
        if line.contains('\t') {
            Delimiter::Tab
        } else if line.contains("::") {
            Delimiter::DoubleColon
        } else if line.contains(',') {
            Delimiter::Comma
        } else {
            Delimiter::Whitespace
        }
    }

    /// The fields of `line`, trimmed.
    pub fn split(self, line: &str) -> Vec<&str> {
        match self {
            Delimiter::Tab => line.split('\t').map(str::trim).collect(),
            Delimiter::Comma => line.split(',').map(str::trim).collect(),
            Delimiter::DoubleColon => line.split("::").map(str::trim).collect(),
            Delimiter::Whitespace => line.split_whitespace().collect(),
        }
    }

    /// How the delimiter is named in messages.
    pub fn name(self) -> &'static str {
        match self {
            Delimiter::Tab => "tab",
            Delimiter::Comma => "comma",
            Delimiter::DoubleColon => "`::`",
            Delimiter::Whitespace => "whitespace",
        }
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to read a data file.
///
/// Start from [`DataOptions::new`] (strict: the first bad row is an
/// error; header and delimiter detected) and change what you need with
/// the `with_*` methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataOptions {
    /// Skip bad rows and count them in the [`DataReport`] instead of
    /// stopping at the first. Damage that stops reading altogether (an
    /// I/O error, a broken gzip stream, a line longer than 64 MiB) is an
    /// error either way. Default `false`.
    pub skip_bad_rows: bool,
    /// Whether the file has a header line. Default [`Header::Auto`].
    pub header: Header,
    /// The field separator of an interactions file; `None` detects it
    /// from the first non-blank line ([`Delimiter::detect`]).
    pub delimiter: Option<Delimiter>,
}

impl DataOptions {
    /// Strict reading; header and delimiter detected.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`skip_bad_rows`](Self::skip_bad_rows).
    pub fn with_skip_bad_rows(mut self, skip: bool) -> Self {
        self.skip_bad_rows = skip;
        self
    }

    /// Sets [`header`](Self::header).
    pub fn with_header(mut self, header: Header) -> Self {
        self.header = header;
        self
    }

    /// Sets [`delimiter`](Self::delimiter).
    pub fn with_delimiter(mut self, delimiter: Delimiter) -> Self {
        self.delimiter = Some(delimiter);
        self
    }
}

/// What reading a data file found besides the rows.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct DataReport {
    /// Rows returned.
    pub rows: usize,
    /// Bad rows left out ([`DataOptions::skip_bad_rows`]).
    pub skipped: usize,
    /// Why: the first [`MAX_DATA_PROBLEMS`] skipped rows.
    pub problems: Vec<Error>,
    /// Problems past the first [`MAX_DATA_PROBLEMS`], counted but not
    /// kept.
    pub unlisted_problems: usize,
}

impl DataReport {
    pub(crate) fn skip(&mut self, err: Error) {
        self.skipped += 1;
        if self.problems.len() < MAX_DATA_PROBLEMS {
            self.problems.push(err);
        } else {
            self.unlisted_problems += 1;
        }
    }
}

/// Opens a data file for buffered reading. A gzip file (recognised by its
/// magic bytes, whatever its name) is decompressed as it is read.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be opened or read.
pub fn open_text(path: impl AsRef<Path>) -> Result<Box<dyn BufRead + Send>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(Error::io("open", path))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(Error::io("read", path))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)))
    } else {
        Ok(Box::new(reader))
    }
}

/// The lines of a text stream, numbered from 1, without `\n`, `\r\n` or a
/// UTF-8 byte-order mark on line 1.
pub(crate) struct LineReader<R> {
    reader: R,
    source: PathBuf,
    line: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(reader: R, source: &Path) -> Self {
        Self { reader, source: source.to_path_buf(), line: 0, buf: Vec::new() }
    }

    /// Reads the next line; `false` at the end.
    ///
    /// # Errors
    ///
    /// [`Error::Io`]; [`Error::BadRow`] for a line longer than 64 MiB.
    pub fn advance(&mut self) -> Result<bool> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(Error::io("read", &self.source))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n as u64 > MAX_LINE_BYTES {
            return Err(self.bad(format!(
                "the line is longer than {} MiB (is this a binary file?)",
                MAX_LINE_BYTES >> 20
            )));
        }
        if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        Ok(true)
    }

    /// The current line as text.
    ///
    /// # Errors
    ///
    /// [`Error::BadRow`] if it is not UTF-8.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.buf)
            .map_err(|e| self.bad(format!("not valid UTF-8 (at byte {})", e.valid_up_to())))
    }

    /// An [`Error::BadRow`] for the current line.
    pub fn bad(&self, reason: impl Into<String>) -> Error {
        self.at().bad(reason)
    }

    /// Where the current line is.
    pub fn at(&self) -> At<'_> {
        At { source: &self.source, line: self.line }
    }
}

/// A line of a file, for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    source: &'a Path,
    line: usize,
}

impl At<'_> {
    /// An [`Error::BadRow`] for this line.
    pub fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadRow { path: self.source.to_path_buf(), line: self.line, reason: reason.into() }
    }
}

/// What a row parser makes of one non-blank line.
pub(crate) enum Parsed<T> {
    /// A row.
    Row(T),
    /// A line to pass over (a header).
    Skip,
}

/// A row parser: the line, whether it is the first non-blank line, and
/// where the line is (for errors).
pub(crate) type Parser<T> = Box<dyn FnMut(&str, bool, At<'_>) -> Result<Parsed<T>> + Send>;

/// The rows of a data file, read and checked one line at a time, so a
/// file larger than memory can be streamed (see
/// [`ShuffledBatches`](super::ShuffledBatches)).
///
/// Blank lines (empty or whitespace only) are skipped anywhere. With
/// [`DataOptions::skip_bad_rows`] a bad row is counted in the
/// [`report`](Self::report) and passed over; otherwise it is an error
/// item and the iterator ends. A file without any row ends with an
/// [`Error::EmptyData`] item.
///
/// `R` is the underlying reader: a file (decompressed when it is gzip) for
/// the `rows` constructors, any [`BufRead`] for the `*_from_reader` ones.
pub struct Rows<T, R = Box<dyn BufRead + Send>> {
    lines: LineReader<R>,
    parser: Parser<T>,
    what: &'static str,
    skip_bad_rows: bool,
    seen_content: bool,
    report: DataReport,
    done: bool,
}

impl<T, R> fmt::Debug for Rows<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows")
            .field("source", &self.lines.source)
            .field("line", &self.lines.line)
            .field("what", &self.what)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<T, R: BufRead> Rows<T, R> {
    pub(crate) fn new(
        reader: R,
        source: &Path,
        what: &'static str,
        skip_bad_rows: bool,
        parser: Parser<T>,
    ) -> Self {
        Self {
            lines: LineReader::new(reader, source),
            parser,
            what,
            skip_bad_rows,
            seen_content: false,
            report: DataReport::default(),
            done: false,
        }
    }

    /// The file (or name) being read.
    pub fn source(&self) -> &Path {
        &self.lines.source
    }

    /// What has been read and skipped so far.
    pub fn report(&self) -> &DataReport {
        &self.report
    }

    /// The report, once reading is over.
    pub fn into_report(self) -> DataReport {
        self.report
    }

    fn next_row(&mut self) -> Result<Option<T>> {
        loop {
            if !self.lines.advance()? {
                return Ok(None);
            }
            let parsed = self.lines.text().and_then(|line| {
                if line.trim().is_empty() {
                    return Ok(Parsed::Skip);
                }
                let first = !self.seen_content;
                self.seen_content = true;
                (self.parser)(line, first, self.lines.at())
            });
            match parsed {
                Ok(Parsed::Row(row)) => return Ok(Some(row)),
                Ok(Parsed::Skip) => {}
                Err(err @ Error::BadRow { .. }) if self.skip_bad_rows => self.report.skip(err),
                Err(err) => return Err(err),
            }
        }
    }
}

impl<T, R: BufRead> Iterator for Rows<T, R> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_row() {
            Ok(Some(row)) => {
                self.report.rows += 1;
                Some(Ok(row))
            }
            Ok(None) => {
                self.done = true;
                if self.report.rows > 0 {
                    return None;
                }
                let skipped = match self.report.skipped {
                    0 => String::new(),
                    n => format!(" after skipping {n} bad rows"),
                };
                Some(Err(Error::EmptyData {
                    what: format!(
                        "data in {}: no {} rows{skipped}",
                        self.lines.source.display(),
                        self.what
                    ),
                }))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}
