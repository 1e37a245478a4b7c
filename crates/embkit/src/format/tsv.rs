//! TensorFlow projector TSV: a folder with `vectors.tsv` (one row per line,
//! values separated by tabs, no header) and `metadata.tsv` (the words, one
//! per line, in the same order).
//!
//! As in the projector, `metadata.tsv` has a header row when it has
//! several columns: a first line with a tab names the columns, and the
//! words are taken from the column named `word`, `token`, `label` or
//! `name` (in any case), else from the first. A file with one column has
//! no header. Files are written with one column.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::reader::{excerpt, is_blank, open_file, At, Lines, Problem, RawRow, RowSource};
use crate::{Error, Result};

/// The vectors file inside a TSV folder.
pub const VECTORS_TSV: &str = "vectors.tsv";
/// The words file inside a TSV folder.
pub const METADATA_TSV: &str = "metadata.tsv";

/// Opens the two files of the folder `dir`.
pub(crate) fn open(dir: &Path) -> Result<Box<dyn RowSource>> {
    let vectors = Lines::new(open_file(&dir.join(VECTORS_TSV))?, &dir.join(VECTORS_TSV));
    let mut metadata = Lines::new(open_file(&dir.join(METADATA_TSV))?, &dir.join(METADATA_TSV));
    let mut columns = None;
    let mut word_column = 0;
    let mut meta_pending = false;
    if metadata.advance()? {
        if metadata.buf.contains(&b'\t') {
            let header = std::str::from_utf8(&metadata.buf)
                .map_err(|_| metadata.bad("the header row is not valid UTF-8"))?;
            let names: Vec<&str> = header.split('\t').collect();
            word_column = names
                .iter()
                .position(|name| {
                    let name = name.trim().to_ascii_lowercase();
                    matches!(name.as_str(), "word" | "token" | "label" | "name")
                })
                .unwrap_or(0);
            columns = Some(names.len());
        } else {
            meta_pending = true;
        }
    }
    Ok(Box::new(TsvRows {
        vectors,
        metadata,
        columns,
        word_column,
        meta_pending,
        dim: None,
        dim_line: 0,
        records: 0,
        ended: false,
    }))
}

struct TsvRows {
    vectors: Lines<BufReader<File>>,
    metadata: Lines<BufReader<File>>,
    /// The number of metadata columns, when there is a header row.
    columns: Option<usize>,
    word_column: usize,
    /// `metadata.buf` holds a data line not used yet.
    meta_pending: bool,
    dim: Option<usize>,
    dim_line: usize,
    records: usize,
    ended: bool,
}

impl TsvRows {
    /// After the last vector: the metadata may only have blank lines left.
    fn check_metadata_end(&mut self) -> Result<(), Problem> {
        loop {
            let has_line = if self.meta_pending {
                self.meta_pending = false;
                true
            } else {
                self.metadata.advance()?
            };
            if !has_line {
                return Ok(());
            }
            if !is_blank(&self.metadata.buf) {
                return Err(Problem::Fatal(self.metadata.bad(format!(
                    "{METADATA_TSV} has more rows than the {} of {VECTORS_TSV}",
                    self.records
                ))));
            }
        }
    }

    fn parse_values(&mut self) -> Result<Vec<f32>, Problem> {
        let text = std::str::from_utf8(&self.vectors.buf).map_err(|e| {
            Problem::Row(
                self.vectors.bad(format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to())),
            )
        })?;
        let mut values = Vec::with_capacity(self.dim.unwrap_or(0).min(1 << 16));
        for (i, field) in text.split('\t').enumerate() {
            let field = field.trim();
            let Ok(x) = field.parse::<f32>() else {
                return Err(Problem::Row(self.vectors.bad(format!(
                    "value {} ({}) is not a number",
                    i + 1,
                    excerpt(field.as_bytes())
                ))));
            };
            if !x.is_finite() {
                return Err(Problem::Row(
                    self.vectors.bad(format!("value {} ({field}) is not a finite f32", i + 1)),
                ));
            }
            values.push(x);
        }
        match self.dim {
            Some(dim) if dim != values.len() => Err(Problem::Row(self.vectors.bad(format!(
                "expected {dim} values (as on line {}), found {}",
                self.dim_line,
                values.len()
            )))),
            Some(_) => Ok(values),
            None => {
                self.dim = Some(values.len());
                self.dim_line = self.vectors.line;
                Ok(values)
            }
        }
    }

    fn parse_word(&self) -> Result<String, Problem> {
        let text =
            std::str::from_utf8(&self.metadata.buf).map_err(|e| {
                Problem::Row(self.metadata.bad(format!(
                    "the word is not valid UTF-8 (byte {} of the line)",
                    e.valid_up_to()
                )))
            })?;
        let Some(columns) = self.columns else {
            return Ok(text.to_string());
        };
        let fields: Vec<&str> = text.split('\t').collect();
        if fields.len() != columns {
            return Err(Problem::Row(self.metadata.bad(format!(
                "expected {columns} columns as in the header row, found {}",
                fields.len()
            ))));
        }
        Ok(fields[self.word_column].to_string())
    }
}

impl RowSource for TsvRows {
    fn next_row(&mut self) -> Result<Option<RawRow>, Problem> {
        if self.ended {
            return Ok(None);
        }
        let mut blank = None;
        loop {
            if !self.vectors.advance()? {
                self.ended = true;
                self.check_metadata_end()?;
                return Ok(None);
            }
            if is_blank(&self.vectors.buf) {
                blank.get_or_insert(self.vectors.line);
                continue;
            }
            if let Some(line) = blank {
                return Err(Problem::Fatal(Error::BadRow {
                    path: self.vectors.path().to_path_buf(),
                    line,
                    reason: format!("empty line (each line of {VECTORS_TSV} is a row)"),
                }));
            }
            break;
        }
        self.records += 1;
        let has_word = if self.meta_pending {
            self.meta_pending = false;
            true
        } else {
            self.metadata.advance()?
        };
        if !has_word {
            return Err(Problem::Fatal(Error::BadRow {
                path: self.metadata.path().to_path_buf(),
                line: self.metadata.line + 1,
                reason: format!(
                    "{METADATA_TSV} ends here, but {VECTORS_TSV} has more rows (line {})",
                    self.vectors.line
                ),
            }));
        }
        let values = self.parse_values();
        let word = self.parse_word()?;
        Ok(Some(RawRow { word, values: values?, at: At::Line(self.metadata.line) }))
    }

    fn dim(&self) -> Option<usize> {
        self.dim
    }

    fn declared_len(&self) -> Option<usize> {
        None
    }

    fn word_error(&self, at: At, reason: String) -> Error {
        let line = match at {
            At::Line(line) => line,
            At::Record { row, .. } => row,
        };
        Error::BadRow { path: self.metadata.path().to_path_buf(), line, reason }
    }
}

/// Why `word` cannot be a line of a one-column `metadata.tsv`.
pub(crate) fn word_problem(word: &str) -> Option<&'static str> {
    if word.contains(['\t', '\n', '\r']) {
        Some("it contains a tab or line break")
    } else {
        None
    }
}
