//! Labelled data files: texts with a class label each, read from
//! `label<TAB>text` TSV files.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::path::Path;

use super::rows::{open_text, At, DataOptions, DataReport, Header, Parsed, Rows};
use crate::vocab::describe;
use crate::{Error, Result};

/// Texts with one class label each, in file order.
///
/// Read them from a TSV file with [`read_tsv`](Self::read_tsv) or any
/// reader with [`from_reader`](Self::from_reader). The format:
///
/// - UTF-8 text, one example per line: `label<TAB>text`. The line is
///   split at its **first** tab; the rest of the line is the text, so a
///   text may contain further tabs.
/// - Label and text are trimmed of surrounding whitespace, and neither
///   may be empty.
/// - A `\r` before the `\n` is dropped (CRLF files), as is a UTF-8 byte
///   order mark at the start of the file.
/// - Blank lines (empty or whitespace only) are skipped anywhere.
/// - The first non-blank line is skipped if it is the header
///   `label<TAB>text` (any case), or whatever it is with
///   [`Header::Present`].
/// - Any number of classes; a gzip file is decompressed as it is read.
///
/// # Examples
///
/// ```
/// use embkit::data::LabelledTexts;
///
/// let tsv = "label\ttext\npos\tA fine film.\n\nneg\tDull.\r\n";
/// let data = LabelledTexts::from_reader(tsv.as_bytes(), "reviews.tsv")?;
/// assert_eq!(data.len(), 2);
/// assert_eq!(data.iter().nth(1), Some(("neg", "Dull.")));
///
/// let classes = data.class_names();
/// assert_eq!(classes, ["neg", "pos"]);
/// assert_eq!(data.label_ids(&classes)?, [1, 0]);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelledTexts {
    labels: Vec<String>,
    texts: Vec<String>,
}

impl LabelledTexts {
    /// Pairs `labels[i]` with `texts[i]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the two lists differ in length.
    pub fn new(labels: Vec<String>, texts: Vec<String>) -> Result<Self> {
        if labels.len() != texts.len() {
            return Err(Error::shape(
                "texts",
                format!("[{}], one per label", labels.len()),
                &[texts.len()],
            ));
        }
        Ok(Self { labels, texts })
    }

    /// Reads a `label<TAB>text` file (format in the [type docs](Self)); a
    /// gzip file is decompressed.
    ///
    /// # Errors
    ///
    /// As [`from_reader`](Self::from_reader), plus [`Error::Io`] if the
    /// file cannot be opened.
    pub fn read_tsv(path: impl AsRef<Path>) -> Result<Self> {
        Self::read(path, &DataOptions::new()).map(|(data, _)| data)
    }

    /// Reads a `label<TAB>text` file with options: bad rows skipped and
    /// counted ([`DataOptions::skip_bad_rows`]), the header forced
    /// ([`DataOptions::header`]). A gzip file is decompressed.
    ///
    /// # Errors
    ///
    /// As [`from_reader`](Self::from_reader) (no [`Error::BadRow`] when
    /// bad rows are skipped), plus [`Error::Io`] if the file cannot be
    /// opened.
    pub fn read(path: impl AsRef<Path>, options: &DataOptions) -> Result<(Self, DataReport)> {
        Self::from_rows(Self::rows(path, options)?)
    }

    /// The `(label, text)` rows of a file, read one line at a time (for
    /// files larger than memory).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be opened; the items are errors
    /// as in [`from_reader`](Self::from_reader).
    pub fn rows(path: impl AsRef<Path>, options: &DataOptions) -> Result<Rows<(String, String)>> {
        let path = path.as_ref();
        Ok(Self::rows_from_reader(open_text(path)?, path, options))
    }

    /// The `(label, text)` rows of any reader; `source` names it in
    /// errors.
    pub fn rows_from_reader<R: BufRead>(
        reader: R,
        source: impl AsRef<Path>,
        options: &DataOptions,
    ) -> Rows<(String, String), R> {
        let header = options.header;
        let parser = Box::new(move |line: &str, first: bool, at: At<'_>| {
            if first {
                let is_header = match header {
                    Header::Auto => line.trim().eq_ignore_ascii_case("label\ttext"),
                    Header::Present => true,
                    Header::Absent => false,
                };
                if is_header {
                    return Ok(Parsed::Skip);
                }
            }
            let Some((label, text)) = line.split_once('\t') else {
                return Err(at.bad("expected `label<TAB>text`, found no tab"));
            };
            let (label, text) = (label.trim(), text.trim());
            if label.is_empty() {
                return Err(at.bad("empty label before the tab"));
            }
            if text.is_empty() {
                return Err(at.bad("empty text after the tab"));
            }
            Ok(Parsed::Row((label.to_owned(), text.to_owned())))
        });
        Rows::new(reader, source.as_ref(), "`label<TAB>text`", options.skip_bad_rows, parser)
    }

    /// Collects rows (from [`rows`](Self::rows)) into examples.
    ///
    /// # Errors
    ///
    /// The first error item.
    pub fn from_rows<R: BufRead>(
        mut rows: Rows<(String, String), R>,
    ) -> Result<(Self, DataReport)> {
        let mut data = Self::default();
        for row in &mut rows {
            let (label, text) = row?;
            data.labels.push(label);
            data.texts.push(text);
        }
        Ok((data, rows.into_report()))
    }

    /// Reads `label<TAB>text` lines (format in the [type docs](Self)) from
    /// `reader`. `source` names the input in errors.
    ///
    /// # Errors
    ///
    /// - [`Error::BadRow`] with `source` and the 1-based line number for
    ///   the first line that is not UTF-8, has no tab, or has an empty
    ///   label or text.
    /// - [`Error::EmptyData`] naming `source` if there is no example.
    /// - [`Error::Io`] if reading fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::data::LabelledTexts;
    ///
    /// let err = LabelledTexts::from_reader("a\tok\nb only\n".as_bytes(), "x.tsv").unwrap_err();
    /// assert_eq!(err.to_string(), "x.tsv:2: expected `label<TAB>text`, found no tab");
    /// ```
    pub fn from_reader(reader: impl BufRead, source: impl AsRef<Path>) -> Result<Self> {
        Self::from_rows(Self::rows_from_reader(reader, source, &DataOptions::new()))
            .map(|(data, _)| data)
    }

    /// The examples at `indices`, in that order (for example one side of
    /// a [`Split`](super::Split)).
    ///
    /// # Panics
    ///
    /// If an index is not below [`len`](Self::len).
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            labels: indices.iter().map(|&i| self.labels[i].clone()).collect(),
            texts: indices.iter().map(|&i| self.texts[i].clone()).collect(),
        }
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The labels, one per example.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The texts, one per example.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// Example `i` as `(label, text)`.
    pub fn get(&self, i: usize) -> Option<(&str, &str)> {
        Some((self.labels.get(i)?, self.texts.get(i)?))
    }

    /// The examples as `(label, text)`, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.labels.iter().zip(&self.texts).map(|(l, t)| (l.as_str(), t.as_str()))
    }

    /// The distinct labels, sorted (byte order): class `i` is
    /// `class_names()[i]`.
    pub fn class_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self.labels.iter().map(String::as_str).collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Each example's class id: the position of its label in
    /// `class_names` (usually [`class_names`](Self::class_names), or the
    /// list a trained model was saved with). If a name is listed twice its
    /// first position counts.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownToken`] naming the first label that is not in
    /// `class_names`.
    pub fn label_ids<S: AsRef<str>>(&self, class_names: &[S]) -> Result<Vec<u32>> {
        let mut ids: HashMap<&str, u32> = HashMap::with_capacity(class_names.len());
        for (i, name) in class_names.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| {
                Error::config(
                    "class_names",
                    format!("ids are u32; got {} names", class_names.len()),
                )
            })?;
            ids.entry(name.as_ref()).or_insert(id);
        }
        self.labels
            .iter()
            .map(|label| {
                ids.get(label.as_str())
                    .copied()
                    .ok_or_else(|| Error::UnknownToken { token: describe(label) })
            })
            .collect()
    }
}
