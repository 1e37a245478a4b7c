//! Plain corpora: one sentence or document per line.

use std::io::BufRead;
use std::path::Path;

use super::rows::{open_text, DataOptions, DataReport, Parsed, Rows};
use crate::Result;

/// A text corpus: one sentence or document per line, in file order.
///
/// Lines are trimmed; blank lines are skipped; CRLF line ends and a UTF-8
/// byte-order mark are accepted; a gzip file is decompressed. A line that
/// is not UTF-8 is a bad row (or, with
/// [`DataOptions::skip_bad_rows`], skipped and counted). There is no
/// header.
///
/// # Examples
///
/// ```
/// use embkit::data::{Corpus, DataOptions};
///
/// let text = "the cat sat\n\n  on the mat  \r\n";
/// let (corpus, _) = Corpus::from_reader(text.as_bytes(), "tiny.txt", &DataOptions::new())?;
/// assert_eq!(corpus.lines(), ["the cat sat", "on the mat"]);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corpus {
    lines: Vec<String>,
}

impl Corpus {
    /// A corpus of the given lines, as they are.
    pub fn new(lines: Vec<String>) -> Self {
        Self { lines }
    }

    /// Reads a corpus file.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if it cannot be opened or read;
    /// [`Error::BadRow`](crate::Error::BadRow) for a line that is not
    /// UTF-8 (unless skipped); [`Error::EmptyData`](crate::Error::EmptyData)
    /// if it has no non-blank line.
    pub fn read(path: impl AsRef<Path>, options: &DataOptions) -> Result<(Self, DataReport)> {
        Self::from_rows(Self::rows(path, options)?)
    }

    /// Reads a corpus from any reader; `source` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn from_reader(
        reader: impl BufRead,
        source: impl AsRef<Path>,
        options: &DataOptions,
    ) -> Result<(Self, DataReport)> {
        Self::from_rows(Self::rows_from_reader(reader, source, options))
    }

    /// The lines of a file, read one at a time (for corpora larger than
    /// memory).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if the file cannot be opened; the
    /// items are errors as in [`read`](Self::read).
    pub fn rows(path: impl AsRef<Path>, options: &DataOptions) -> Result<Rows<String>> {
        let path = path.as_ref();
        Ok(Self::rows_from_reader(open_text(path)?, path, options))
    }

    /// The lines of any reader; `source` names it in errors.
    pub fn rows_from_reader<R: BufRead>(
        reader: R,
        source: impl AsRef<Path>,
        options: &DataOptions,
    ) -> Rows<String, R> {
        let parser = Box::new(|line: &str, _first: bool, _at: super::rows::At<'_>| {
            Ok(Parsed::Row(line.trim().to_owned()))
        });
        Rows::new(reader, source.as_ref(), "text", options.skip_bad_rows, parser)
    }

    /// Collects rows into a corpus.
    ///
    /// # Errors
    ///
    /// The first error item.
    pub fn from_rows<R: BufRead>(mut rows: Rows<String, R>) -> Result<(Self, DataReport)> {
        let lines = (&mut rows).collect::<Result<Vec<_>>>()?;
        Ok((Self { lines }, rows.into_report()))
    }

    /// The lines, in file order.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are no lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}
