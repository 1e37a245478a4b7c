//! Labelled data files: texts with a class label each, read from
//! `label<TAB>text` TSV files.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

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
///   `label<TAB>text` (any case).
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

    /// Reads a `label<TAB>text` file (format in the [type docs](Self)).
    ///
    /// # Errors
    ///
    /// As [`from_reader`](Self::from_reader), plus [`Error::Io`] if the
    /// file cannot be opened.
    pub fn read_tsv(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(Error::io("open", path))?;
        Self::from_reader(BufReader::new(file), path)
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
    pub fn from_reader(mut reader: impl BufRead, source: impl AsRef<Path>) -> Result<Self> {
        let source = source.as_ref();
        let bad = |line: usize, reason: &str| Error::BadRow {
            path: source.to_owned(),
            line,
            reason: reason.to_owned(),
        };
        let mut data = Self::default();
        let mut buf = Vec::new();
        let mut line_no = 0;
        let mut seen_content = false;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(Error::io("read", source))? == 0 {
                break;
            }
            line_no += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            let mut line = std::str::from_utf8(&buf).map_err(|e| {
                bad(line_no, &format!("not valid UTF-8 (at byte {})", e.valid_up_to()))
            })?;
            if line_no == 1 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if line.trim().is_empty() {
                continue;
            }
            if !seen_content {
                seen_content = true;
                if line.trim().eq_ignore_ascii_case("label\ttext") {
                    continue;
                }
            }
            let Some((label, text)) = line.split_once('\t') else {
                return Err(bad(line_no, "expected `label<TAB>text`, found no tab"));
            };
            let (label, text) = (label.trim(), text.trim());
            if label.is_empty() {
                return Err(bad(line_no, "empty label before the tab"));
            }
            if text.is_empty() {
                return Err(bad(line_no, "empty text after the tab"));
            }
            data.labels.push(label.to_owned());
            data.texts.push(text.to_owned());
        }
        if data.is_empty() {
            return Err(Error::EmptyData {
                what: format!("data in {}: no `label<TAB>text` rows", source.display()),
            });
        }
        Ok(data)
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
