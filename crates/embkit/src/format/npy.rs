//! NumPy `.npy`: a 2-D float array `[rows, dim]`, with the words in a
//! vocabulary file beside it (`vectors.npy` → `vectors.vocab.txt`, one
//! word per line, in row order).
//!
//! Arrays of `f2`, `f4` or `f8` in either byte order are read (f8 values
//! outside the f32 range are errors); a Fortran-order array is read whole
//! and transposed. Files are written as little-endian `f4` in C order,
//! format version 1.0, with the header padded to 64 bytes as NumPy does.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::reader::{
    non_finite, open_file, At, MemoryRows, Problem, RawRow, ReadOptions, RowSource, Words,
};
use super::tensors::f16_to_f32;
use crate::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The largest header a reader accepts (1 MiB; NumPy's own limit is
/// 10 KB unless told otherwise).
const MAX_HEADER_BYTES: usize = 1 << 20;

/// The vocabulary file that goes with a `.npy` or safetensors file.
pub fn vocab_path_for(path: &Path) -> PathBuf {
    path.with_extension("vocab.txt")
}

/// The stored element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F16,
    F32,
    F64,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F16 => 2,
            Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    elem: Elem,
    big_endian: bool,
    fortran_order: bool,
    rows: usize,
    dim: usize,
    /// The byte offset of the data.
    data_start: u64,
}

/// Decodes one stored value.
fn decode(elem: Elem, big_endian: bool, b: &[u8]) -> f32 {
    match (elem, big_endian) {
        (Elem::F16, false) => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
        (Elem::F16, true) => f16_to_f32(u16::from_be_bytes([b[0], b[1]])),
        (Elem::F32, false) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        (Elem::F32, true) => f32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        (Elem::F64, big) => {
            let bytes = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
            let x = if big { f64::from_be_bytes(bytes) } else { f64::from_le_bytes(bytes) };
            x as f32
        }
    }
}

/// Reads the magic, version and header of a `.npy` file.
fn read_header(reader: &mut impl Read, path: &Path) -> Result<Header> {
    let bad = |offset: u64, reason: String| Error::BadBinaryFile {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut start = [0u8; 8];
    read_exact_or(reader, &mut start, path, || {
        bad(0, "the file is shorter than a .npy header".into())
    })?;
    if &start[..6] != MAGIC {
        return Err(bad(0, "not a .npy file (no \\x93NUMPY magic)".into()));
    }
    let (major, minor) = (start[6], start[7]);
    let len_bytes = match major {
        1 => 2,
        2 | 3 => 4,
        _ => return Err(bad(6, format!("unsupported .npy format version {major}.{minor}"))),
    };
    let mut len = [0u8; 4];
    read_exact_or(reader, &mut len[..len_bytes], path, || {
        bad(8, "the header is truncated".into())
    })?;
    let header_len = u32::from_le_bytes(len) as usize;
    if header_len > MAX_HEADER_BYTES {
        return Err(bad(8, format!("the header is {header_len} bytes long, more than 1 MiB")));
    }
    let mut text = vec![0u8; header_len];
    let header_start = 8 + len_bytes as u64;
    read_exact_or(reader, &mut text, path, || bad(header_start, "the header is truncated".into()))?;
    let data_start = header_start + header_len as u64;
    let text = std::str::from_utf8(&text)
        .map_err(|_| bad(header_start, "the header is not text".into()))?;
    let dict = parse_dict(text)
        .ok_or_else(|| bad(header_start, format!("cannot parse the header {:?}", text.trim())))?;
    let get = |key: &str| {
        dict.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| bad(header_start, format!("the header has no {key:?}")))
    };
    let Lit::Str(descr) = get("descr")? else {
        return Err(bad(header_start, "the header's descr is not a string".into()));
    };
    // Checked: a descr that starts with a multi-byte character (a damaged
    // header) is an unsupported dtype, not a panic.
    let (order, kind) = descr.split_at_checked(1).unwrap_or((descr.as_str(), ""));
    let big_endian = match order {
        "<" => false,
        ">" => true,
        "=" => cfg!(target_endian = "big"),
        _ => return Err(bad(header_start, format!("unsupported dtype {descr:?}"))),
    };
    let elem = match kind {
        "f2" => Elem::F16,
        "f4" => Elem::F32,
        "f8" => Elem::F64,
        _ => {
            return Err(bad(
                header_start,
                format!("the dtype is {descr:?}; only float arrays (f2, f4, f8) hold vectors"),
            ))
        }
    };
    let Lit::Bool(fortran_order) = get("fortran_order")? else {
        return Err(bad(header_start, "the header's fortran_order is not True or False".into()));
    };
    let Lit::Tuple(shape) = get("shape")? else {
        return Err(bad(header_start, "the header's shape is not a tuple".into()));
    };
    let [rows, dim] = shape[..] else {
        return Err(bad(
            header_start,
            format!("the array has shape {shape:?}; vectors are a 2-D array [rows, dim]"),
        ));
    };
    if dim == 0 {
        return Err(bad(header_start, format!("the array has shape {shape:?}: no columns")));
    }
    Ok(Header { elem, big_endian, fortran_order: *fortran_order, rows, dim, data_start })
}

fn read_exact_or(
    reader: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    short: impl FnOnce() -> Error,
) -> Result<()> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(short()),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// A value of the header's Python literal.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses the header's dict literal, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`.
fn parse_dict(text: &str) -> Option<Vec<(String, Lit)>> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    p.expect(b'{')?;
    let mut entries = Vec::new();
    loop {
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.expect(b':')?;
        let value = p.value()?;
        entries.push((key, value));
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    (p.i == p.s.len()).then_some(entries)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let found = self.s.get(self.i) == Some(&c);
        self.i += usize::from(found);
        found
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        self.skip_ws();
        let quote = *self.s.get(self.i).filter(|&&q| q == b'\'' || q == b'"')?;
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&c| c == quote)?;
        self.i = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec()).ok()
    }

    fn word(&mut self, word: &str) -> bool {
        self.skip_ws();
        let found = self.s[self.i..].starts_with(word.as_bytes());
        if found {
            self.i += word.len();
        }
        found
    }

    fn int(&mut self) -> Option<usize> {
        self.skip_ws();
        let len = self.s[self.i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let n = std::str::from_utf8(&self.s[self.i..self.i + len]).ok()?.parse().ok()?;
        self.i += len;
        // Python 2 wrote longs as `3L`.
        if self.s.get(self.i) == Some(&b'L') {
            self.i += 1;
        }
        Some(n)
    }

    fn value(&mut self) -> Option<Lit> {
        self.skip_ws();
        match self.s.get(self.i)? {
            b'\'' | b'"' => self.string().map(Lit::Str),
            b'(' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    items.push(self.int()?);
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        break;
                    }
                }
                Some(Lit::Tuple(items))
            }
            _ if self.word("True") => Some(Lit::Bool(true)),
            _ if self.word("False") => Some(Lit::Bool(false)),
            _ => None,
        }
    }
}

/// The header of a little-endian f32 C-order `[rows, dim]` array,
/// padded so that the data starts at a multiple of 64 bytes.
pub(crate) fn header_bytes(rows: usize, dim: usize) -> Vec<u8> {
    let mut dict =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    // magic (6) + version (2) + length (2) + dict + padding + '\n'
    let total = (10 + dict.len() + 1).next_multiple_of(64);
    while 10 + dict.len() + 1 < total {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Opens a `.npy` file and its vocabulary.
pub(crate) fn open(path: &Path, options: &ReadOptions) -> Result<Box<dyn RowSource>> {
    let file_len = std::fs::metadata(path).map_err(Error::io("read", path))?.len();
    let mut reader = open_file(path)?;
    let header = read_header(&mut reader, path)?;
    let data_len = (header.rows as u64)
        .checked_mul(header.dim as u64)
        .and_then(|n| n.checked_mul(header.elem.size() as u64));
    let actual = file_len.saturating_sub(header.data_start);
    if data_len != Some(actual) {
        let need = match data_len {
            Some(n) => format!("{n} bytes"),
            None => "more bytes than a u64 can count".into(),
        };
        return Err(Error::BadBinaryFile {
            path: path.to_path_buf(),
            offset: header.data_start,
            reason: format!(
                "the shape ({}, {}) needs {need} of data, but the file has {actual} after the header",
                header.rows, header.dim
            ),
        });
    }
    let vocab = options.vocab.clone().unwrap_or_else(|| vocab_path_for(path));
    let words = Words::open(&vocab)?;
    let size = header.elem.size();
    if header.fortran_order {
        // The size was checked against the file: this allocates no more
        // than the file holds.
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(Error::io("read", path))?;
        let (rows, dim) = (header.rows, header.dim);
        let mut data = vec![0.0; rows * dim];
        for (i, b) in bytes.chunks_exact(size).enumerate() {
            let (col, row) = (i / rows, i % rows);
            data[row * dim + col] = decode(header.elem, header.big_endian, b);
        }
        return Ok(Box::new(MemoryRows::new(
            data,
            rows,
            dim,
            words,
            path,
            header.data_start,
            size as u64,
            true,
        )));
    }
    Ok(Box::new(NpyRows {
        reader,
        path: path.to_path_buf(),
        offset: header.data_start,
        header,
        next: 0,
        buf: Vec::new(),
        words,
    }))
}

/// Rows of a C-order `.npy`, read one at a time.
struct NpyRows {
    reader: BufReader<File>,
    path: PathBuf,
    header: Header,
    next: usize,
    offset: u64,
    buf: Vec<u8>,
    words: Words,
}

impl RowSource for NpyRows {
    fn next_row(&mut self) -> Result<Option<RawRow>, Problem> {
        let Header { elem, big_endian, rows, dim, .. } = self.header;
        if self.next == rows {
            self.words.check_end(rows)?;
            return Ok(None);
        }
        let row = self.next;
        self.next += 1;
        let word = self.words.next_word()?;
        let want = dim * elem.size();
        self.buf.clear();
        let start = self.offset;
        let n = (&mut self.reader)
            .take(want as u64)
            .read_to_end(&mut self.buf)
            .map_err(Error::io("read", &self.path))?;
        self.offset += n as u64;
        if n < want {
            return Err(Problem::Fatal(Error::BadBinaryFile {
                path: self.path.clone(),
                offset: start,
                reason: format!(
                    "row {}: the file ends after {n} of the row's {want} bytes",
                    row + 1
                ),
            }));
        }
        let Some((line, word)) = word else {
            return Err(Problem::Fatal(self.words.too_short(row, rows)));
        };
        let word = word.map_err(Problem::Row)?;
        let values: Vec<f32> =
            self.buf.chunks_exact(elem.size()).map(|b| decode(elem, big_endian, b)).collect();
        if let Some((col, reason)) = non_finite(&values) {
            return Err(Problem::Row(Error::BadBinaryFile {
                path: self.path.clone(),
                offset: start + (col * elem.size()) as u64,
                reason: format!("row {} ({word:?}): {reason}", row + 1),
            }));
        }
        Ok(Some(RawRow { word, values, at: At::Line(line) }))
    }

    fn dim(&self) -> Option<usize> {
        Some(self.header.dim)
    }

    fn declared_len(&self) -> Option<usize> {
        Some(self.header.rows)
    }

    fn word_error(&self, at: At, reason: String) -> Error {
        let line = match at {
            At::Line(line) => line,
            At::Record { row, .. } => row,
        };
        Error::BadRow { path: self.words.path().to_path_buf(), line, reason }
    }
}

/// Why `word` cannot be a line of a vocabulary file.
pub(crate) fn word_problem(word: &str) -> Option<&'static str> {
    word.contains(['\n', '\r']).then_some("it contains a line break")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_numpy_writes_parse() {
        let dict =
            parse_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }").unwrap();
        assert_eq!(dict[0], ("descr".into(), Lit::Str("<f4".into())));
        assert_eq!(dict[1], ("fortran_order".into(), Lit::Bool(false)));
        assert_eq!(dict[2], ("shape".into(), Lit::Tuple(vec![3, 2])));
        let py2 = parse_dict("{\"descr\": \">f8\", \"fortran_order\": True, \"shape\": (3L, 2L)}");
        assert_eq!(py2.unwrap()[2].1, Lit::Tuple(vec![3, 2]));
        assert_eq!(parse_dict("{'shape': (7,), }").unwrap()[0].1, Lit::Tuple(vec![7]));
        assert!(parse_dict("{'shape': (3, 2)").is_none());
        assert!(parse_dict("{'shape': (3, -2)}").is_none());
    }

    #[test]
    fn written_headers_are_aligned_and_read_back() {
        for (rows, dim) in [(1, 1), (3, 300), (1_000_000_000_000, 7)] {
            let bytes = header_bytes(rows, dim);
            assert_eq!(bytes.len() % 64, 0);
            assert_eq!(bytes.last(), Some(&b'\n'));
            let header = read_header(&mut &bytes[..], Path::new("x.npy")).unwrap();
            assert_eq!((header.rows, header.dim, header.elem), (rows, dim, Elem::F32));
            assert_eq!(header.data_start, bytes.len() as u64);
        }
    }
}
