//! Fuzzing the vector-file readers and the saved skip-gram model: valid
//! small files of every format, mutated (bit flips, truncation, inserted, removed and repeated bytes,
//! header counts like 10^12, `nan` and `inf` in place of numbers, bytes
//! that are not UTF-8), must read as a valid table or a typed error:
//! never a panic, and never a large allocation.
//!
//! Each format runs [`DEFAULT_CASES`] cases under `cargo test`; set
//! `EMBKIT_FUZZ_CASES` to run more, e.g.
//!
//! ```text
//! EMBKIT_FUZZ_CASES=100000 cargo test -p embkit --release --test it -- fuzz::
//! ```
//!
//! Allocations are watched by a counting allocator (the one `unsafe` in
//! the tests, a forwarder to the system allocator): while a file is read,
//! no single request may exceed [`MAX_ALLOCATION`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};

use embkit::format::{ReadOptions, VectorFormat, Vectors};
use embkit::Error;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Cases per format under a plain `cargo test`.
const DEFAULT_CASES: u32 = 200;

/// The largest single allocation a read of these tiny files may make.
/// Readers reserve room for the rows a header declares only up to what
/// the file can hold, so this is generous.
const MAX_ALLOCATION: usize = 8 << 20;

fn cases() -> u32 {
    std::env::var("EMBKIT_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_CASES)
}

// ---------------------------------------------------------------------
// The largest allocation, per thread
// ---------------------------------------------------------------------

/// The system allocator, recording the largest request of each thread
/// while that thread has asked for it ([`largest_allocation_in`]).
struct Watching;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown are not watched.
    if WATCHING.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
    }
}

#[allow(unsafe_code)]
// SAFETY: every call forwards to `System` with the caller's arguments, so
// `System`'s guarantees are ours; `note` only touches const-initialised
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// Runs `f` and returns its result and the largest single allocation it
/// made on this thread.
fn largest_allocation_in<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    WATCHING.with(|w| w.set(true));
    let out = f();
    WATCHING.with(|w| w.set(false));
    (out, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------
// Valid files
// ---------------------------------------------------------------------

/// The file or folder name of `format` in a scratch directory.
fn file_name(format: VectorFormat) -> &'static str {
    match format {
        VectorFormat::Word2Vec => "w2v.txt",
        VectorFormat::Word2VecBinary => "w2v.bin",
        VectorFormat::Glove => "glove.txt",
        VectorFormat::FastTextVec => "ft.vec",
        VectorFormat::Tsv => "projector",
        VectorFormat::Npy => "table.npy",
        VectorFormat::Safetensors => "table.safetensors",
        VectorFormat::Model => "model",
        other => panic!("no file name for {other}"),
    }
}

/// A scratch directory of this process, test and thread.
fn scratch(name: &str) -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    std::env::temp_dir().join(format!("embkit-fuzz-{name}-{}-{thread}", std::process::id()))
}

const WORDS: [&str; 8] = ["the", "köln", "[UNK]", "x1", "日本", "e", "nan", "-1"];

/// The files (path relative to the folder, bytes) of a valid table of
/// `rows` rows and `dim` values written as `format`.
fn valid_files(format: VectorFormat, rows: usize, dim: usize, values: &[f32]) -> Vec<Part> {
    let dir = scratch(&format!("valid-{}", format.name()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let words: Vec<String> = WORDS[..rows].iter().map(|w| w.to_string()).collect();
    let table = Vectors::new(words, dim, values[..rows * dim].to_vec()).unwrap();
    table.write(dir.join(file_name(format)), format).unwrap();
    let mut files = Vec::new();
    let mut walk = vec![dir.clone()];
    while let Some(d) = walk.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk.push(p);
            } else {
                let rel = p.strip_prefix(&dir).unwrap().to_path_buf();
                files.push(Part { rel, bytes: fs::read(&p).unwrap() });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    fs::remove_dir_all(&dir).unwrap();
    files
}

/// One file of a table.
#[derive(Debug, Clone)]
struct Part {
    rel: PathBuf,
    bytes: Vec<u8>,
}

// ---------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------

/// Numbers that break headers and values.
const NUMBERS: [&str; 16] = [
    "1000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "2147483648",
    "0",
    "-1",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "-1e-400",
    "0x10",
    "",
    "1.5.2",
];

/// Little-endian integers to overwrite binary lengths with.
const WORDS_U64: [u64; 7] = [u64::MAX, 1 << 40, 1_000_000_000_000, u32::MAX as u64, 1 << 31, 0, 7];

/// Byte strings to insert.
const INSERTS: [&[u8]; 12] = [
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\0",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"nan",
    b"1e39 ",
    b"\xef\xbb\xbf",
    b"99999999999999999999",
];

/// A change to the bytes of one file.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    /// Copies a range of the file to another place (repeated rows).
    Repeat {
        from: usize,
        len: usize,
        to: usize,
    },
    /// Replaces the n-th run of ASCII digits (a count, a shape, a value,
    /// an offset) with another number or a non-number.
    Number(usize, &'static str),
    /// Overwrites 8 (or fewer) bytes with a little-endian integer (the
    /// header length of safetensors, the length field of `.npy`).
    Integer(usize, u64, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::sample::select(INSERTS.to_vec()))
            .prop_map(|(i, b)| Mutation::Insert(i, b.to_vec())),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..12).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<usize>(), 1usize..40, any::<usize>()).prop_map(|(from, len, to)| Mutation::Repeat {
            from,
            len,
            to
        }),
        (0usize..12, prop::sample::select(NUMBERS.to_vec()))
            .prop_map(|(n, s)| Mutation::Number(n, s)),
        (0usize..16, prop::sample::select(WORDS_U64.to_vec()), prop::sample::select(vec![2, 4, 8]))
            .prop_map(|(at, v, width)| Mutation::Integer(at, v, width)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match m {
        Mutation::FlipBit(i, bit) if len > 0 => bytes[i % len] ^= 1 << bit,
        Mutation::Set(i, b) if len > 0 => bytes[i % len] = *b,
        Mutation::FlipBit(..) | Mutation::Set(..) => {}
        Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
        Mutation::Insert(i, new) => {
            let i = i % (len + 1);
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let i = i % (len + 1);
            bytes.drain(i..(i + n).min(len));
        }
        Mutation::Repeat { from, len: n, to } => {
            let from = from % (len + 1);
            let piece = bytes[from..(from + n).min(len)].to_vec();
            let to = to % (len + 1);
            bytes.splice(to..to, piece);
        }
        Mutation::Number(n, new) => {
            let runs = digit_runs(bytes);
            if !runs.is_empty() {
                let (start, end) = runs[n % runs.len()];
                bytes.splice(start..end, new.bytes());
            }
        }
        Mutation::Integer(at, value, width) => {
            if len >= *width {
                let at = at % (len - width + 1);
                bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..*width]);
            }
        }
    }
}

/// The byte ranges of the runs of ASCII digits of `bytes`.
fn digit_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, bytes.len()));
    }
    runs
}

// ---------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------

/// Writes `files` into a scratch folder and reads them as `format`,
/// strict and lenient: a valid table or a typed error, and no
/// allocation larger than [`MAX_ALLOCATION`].
fn read_mutated(format: VectorFormat, files: &[Part]) -> Result<(), TestCaseError> {
    let dir = scratch(&format!("read-{}", format.name()));
    let _ = fs::remove_dir_all(&dir);
    for file in files {
        let path = dir.join(&file.rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, &file.bytes).unwrap();
    }
    let path = dir.join(file_name(format));
    for lenient in [false, true] {
        let options = ReadOptions::new().with_lenient(lenient);
        let (result, largest) =
            largest_allocation_in(|| Vectors::read_with(&path, format, &options));
        prop_assert!(
            largest <= MAX_ALLOCATION,
            "{format} (lenient {lenient}): an allocation of {largest} bytes"
        );
        match result {
            Ok((v, report)) => check_table(&v, report.rows)?,
            Err(err) => check_error(&err, &dir)?,
        }
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

fn check_table(v: &Vectors, reported: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(v.len() * v.dim(), v.data().len());
    prop_assert!(v.data().iter().all(|x| x.is_finite()));
    prop_assert_eq!(reported, v.len());
    prop_assert!(!v.is_empty());
    // What was read is a valid table: no duplicate words.
    Vectors::new(v.words().to_vec(), v.dim(), v.data().to_vec())
        .map_err(|e| TestCaseError::fail(format!("read a table that is not valid: {e}")))?;
    Ok(())
}

/// Errors are typed and name a file of the folder; their messages are
/// short (no dump of the file).
fn check_error(err: &Error, dir: &Path) -> Result<(), TestCaseError> {
    let path = match err {
        Error::BadRow { path, .. }
        | Error::BadBinaryFile { path, .. }
        | Error::BadModelFile { path, .. }
        | Error::Io { path, .. } => Some(path),
        Error::EmptyData { .. } | Error::InvalidConfig { .. } => None,
        other => return Err(TestCaseError::fail(format!("unexpected error kind: {other:?}"))),
    };
    if let Some(path) = path {
        prop_assert!(path.starts_with(dir), "{} is outside {}", path.display(), dir.display());
    }
    prop_assert!(err.to_string().len() < 2_000, "a long message: {}", err);
    Ok(())
}

/// A valid table's shape and values: 1-4 rows, 1-3 columns, values
/// with tricky text forms.
fn table() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    let value = prop::sample::select(vec![
        0.0f32,
        -0.0,
        1.0,
        -2.5,
        1e-3,
        f32::MAX,
        f32::MIN_POSITIVE,
        1e-45,
        0.1,
        123456.79,
    ]);
    (1usize..5, 1usize..4, prop::collection::vec(value, 12))
}

fn fuzz(format: VectorFormat) {
    fuzz_files(
        &format.to_string(),
        |rows, dim, values| valid_files(format, rows, dim, values),
        |files| read_mutated(format, files),
    );
}

/// Mutates one or two of the files `valid` makes for a random table and
/// hands them to `read`.
fn fuzz_files(
    what: &str,
    valid: impl Fn(usize, usize, &[f32]) -> Vec<Part>,
    read: impl Fn(&[Part]) -> Result<(), TestCaseError>,
) {
    let config = ProptestConfig { cases: cases(), failure_persistence: None, ..Default::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy =
        (table(), any::<usize>(), prop::collection::vec(mutation(), 1..5), any::<bool>());
    let result = runner.run(&strategy, |((rows, dim, values), file, mutations, two_files)| {
        let mut files = valid(rows, dim, &values);
        let picks = if two_files { vec![file, file / 7] } else { vec![file] };
        for (n, m) in mutations.iter().enumerate() {
            let i = picks[n % picks.len()] % files.len();
            apply(&mut files[i].bytes, m);
        }
        read(&files)
    });
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

#[test]
fn word2vec_text_readers_never_panic() {
    fuzz(VectorFormat::Word2Vec);
}

#[test]
fn word2vec_binary_readers_never_panic() {
    fuzz(VectorFormat::Word2VecBinary);
}

#[test]
fn glove_readers_never_panic() {
    fuzz(VectorFormat::Glove);
}

#[test]
fn fasttext_readers_never_panic() {
    fuzz(VectorFormat::FastTextVec);
}

#[test]
fn tsv_readers_never_panic() {
    fuzz(VectorFormat::Tsv);
}

#[test]
fn npy_readers_never_panic() {
    fuzz(VectorFormat::Npy);
}

#[test]
fn safetensors_readers_never_panic() {
    fuzz(VectorFormat::Safetensors);
}

#[test]
fn model_readers_never_panic() {
    fuzz(VectorFormat::Model);
}

/// The files of a saved skip-gram model over a valid table (as input and,
/// reversed, output vectors), with counts, a training report and caller
/// metadata, so that every field of the metadata is there to mutate.
fn valid_skip_gram_files(rows: usize, dim: usize, values: &[f32]) -> Vec<Part> {
    use embkit::format::SavedSkipGram;
    use embkit::word2vec::{SkipGram, SkipGramConfig, WordCounts};
    static REPORT: std::sync::OnceLock<embkit::word2vec::TrainReport> = std::sync::OnceLock::new();
    let report = REPORT.get_or_init(|| {
        let config = SkipGramConfig::new().with_min_count(1).with_embedding_dim(2).with_epochs(1);
        let lines = ["a b c a b", "c a b"];
        SkipGram::fit(&config, &lines, embkit::Threads::single(), &mut embkit::NoObserver)
            .unwrap()
            .1
    });
    let words: Vec<String> = WORDS[..rows].iter().map(|w| w.to_string()).collect();
    let counts: Vec<u64> = (0..rows as u64).map(|i| 1 + 1000 / (i + 1)).collect();
    let total = counts.iter().sum::<u64>() + 3;
    let vocab = WordCounts::from_counts(words, counts, total, false).unwrap();
    let input = values[..rows * dim].to_vec();
    let output = input.iter().rev().copied().collect();
    let config = SkipGramConfig::new().with_embedding_dim(dim).with_compute_loss(true);
    let mut saved = SavedSkipGram::new(SkipGram::from_parts(config, vocab, input, output).unwrap());
    saved.report = Some(report.clone());
    saved.metadata.insert("tokenize".into(), "whitespace".into());

    model_dir_parts("valid-skip-gram", |dir| saved.save(dir).unwrap())
}

/// Loads mutated skip-gram files with [`SavedSkipGram::load`] and reads
/// them as vectors ([`read_mutated`]): a valid model or a typed error,
/// and no large allocation.
///
/// [`SavedSkipGram::load`]: embkit::format::SavedSkipGram::load
fn load_mutated_skip_gram(files: &[Part]) -> Result<(), TestCaseError> {
    let load = |p: &Path| embkit::format::SavedSkipGram::load(p);
    load_mutated_dir("read-skip-gram", files, load, |saved| {
        let model = &saved.model;
        let values = model.vocab().len() * model.config().embedding_dim;
        prop_assert_eq!(model.input_weights().len(), values);
        prop_assert_eq!(model.output_weights().len(), values);
        prop_assert!(model.input_weights().iter().all(|x| x.is_finite()));
        prop_assert!(model.config().validate().is_ok());
        // What was loaded is a valid model: it saves again.
        prop_assert!(saved.to_bytes().is_ok());
        Ok(())
    })?;
    read_mutated(VectorFormat::Model, files)
}

#[test]
fn skip_gram_model_files_never_panic() {
    fuzz_files("skip-gram model", valid_skip_gram_files, load_mutated_skip_gram);
}

#[test]
fn the_mutations_do_what_they_say() {
    let mut b = b"3 2\nab 1 2\n".to_vec();
    apply(&mut b, &Mutation::Number(0, "1000000000000"));
    assert_eq!(b, b"1000000000000 2\nab 1 2\n");
    apply(&mut b, &Mutation::Number(3, "nan"));
    assert_eq!(b, b"1000000000000 2\nab 1 nan\n");
    let mut b = vec![0u8; 10];
    apply(&mut b, &Mutation::Integer(0, u64::MAX, 8));
    assert_eq!(&b[..9], &[255, 255, 255, 255, 255, 255, 255, 255, 0]);
    let (_, largest) = largest_allocation_in(|| vec![0u8; 12345]);
    assert!(largest >= 12345);
}

/// Regression: a header declaring 10^12 rows of one value made
/// `read_all` reserve 2^24 words (384 MiB of `String`s) and 64 MiB of
/// floats for a file of 20 bytes. Now the reservation is bounded by the
/// file's length.
#[test]
fn a_huge_row_count_in_a_header_allocates_little() {
    let dir = scratch("huge-count");
    fs::create_dir_all(&dir).unwrap();
    for (format, bytes) in [
        (VectorFormat::Word2Vec, &b"1000000000000 1\na 1\n"[..]),
        (VectorFormat::FastTextVec, &b"1000000000000 2\na 1 2\n"[..]),
        (VectorFormat::Word2VecBinary, &b"1000000000000 1\na \0\0\x80?\n"[..]),
    ] {
        let path = dir.join(file_name(format));
        fs::write(&path, bytes).unwrap();
        for lenient in [false, true] {
            let options = ReadOptions::new().with_lenient(lenient);
            let (result, largest) =
                largest_allocation_in(|| Vectors::read_with(&path, format, &options));
            // The 64 KiB buffer of the file reader is the largest.
            assert!(largest <= 1 << 16, "{format}: an allocation of {largest} bytes");
            match result {
                Ok((v, report)) => {
                    assert!(lenient, "{format}: strict reading accepted the count");
                    assert_eq!((v.len(), report.problems.len()), (1, 1));
                }
                Err(err) => {
                    assert!(!lenient, "{format}: {err}");
                    assert!(matches!(err, Error::BadRow { .. } | Error::BadBinaryFile { .. }));
                }
            }
        }
        // Read from a stream (no length known): nothing is reserved.
        let reader = std::io::Cursor::new(bytes.to_vec());
        let (_, largest) = largest_allocation_in(|| {
            embkit::format::VectorReader::from_reader(reader, &path, format, &ReadOptions::new())
                .and_then(|r| r.read_all())
        });
        assert!(largest <= 1 << 16, "{format} stream: an allocation of {largest} bytes");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Mutated HNSW index files: a typed error or an index, never a panic or
/// a large allocation (the loader checks sizes against the file length
/// before allocating).
#[test]
fn hnsw_index_files_never_panic() {
    use embkit::query::{HnswConfig, HnswIndex, Similarity};
    use embkit::Threads;
    let table = ndarray::Array2::from_shape_fn((30, 3), |(r, c)| ((r * 7 + c * 3) % 11) as f32);
    let index = HnswIndex::build(table.view(), Similarity::Euclidean, &HnswConfig::new().with_m(3))
        .unwrap();
    let bytes = index.to_bytes();
    let config = ProptestConfig { cases: cases(), failure_persistence: None, ..Default::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(mutation(), 1..4), |mutations| {
        let mut damaged = bytes.clone();
        for m in &mutations {
            apply(&mut damaged, m);
        }
        let (result, largest) = largest_allocation_in(|| {
            HnswIndex::from_bytes(&damaged, "x.hnsw", table.view(), Threads::single())
                .and_then(|index| index.search(&[1.0, 2.0, 3.0], 5, 16, &[]))
        });
        prop_assert!(largest <= MAX_ALLOCATION, "an allocation of {} bytes", largest);
        if let Err(err) = result {
            prop_assert!(
                matches!(
                    err,
                    Error::BadBinaryFile { .. }
                        | Error::ShapeMismatch { .. }
                        | Error::InvalidConfig { .. }
                ),
                "{err:?}"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Regression (found by `npy_readers_never_panic` with 8,000 cases): a
/// `.npy` header whose dtype starts with a multi-byte character (here a
/// byte-order mark) panicked when the byte order was split off.
#[test]
fn an_npy_dtype_starting_with_a_multibyte_character_is_an_error() {
    let dir = scratch("npy-descr");
    fs::create_dir_all(&dir).unwrap();
    let dict = "{'descr': '\u{feff}<f4', 'fortran_order': False, 'shape': (1, 2), }\n";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.extend_from_slice(&[1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat());
    let path = dir.join("t.npy");
    fs::write(&path, bytes).unwrap();
    fs::write(dir.join("t.vocab.txt"), "a\n").unwrap();
    let err = Vectors::read(&path, VectorFormat::Npy).unwrap_err();
    assert!(matches!(err, Error::BadBinaryFile { .. }), "{err:?}");
    assert!(err.to_string().contains("unsupported dtype"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

/// The files of a model directory written by `save` (named as
/// [`VectorFormat::Model`]'s files, so [`read_mutated`] reads them too), as
/// parts.
fn model_dir_parts(name: &str, save: impl FnOnce(&Path)) -> Vec<Part> {
    let dir = scratch(name);
    let _ = fs::remove_dir_all(&dir);
    let model = dir.join(file_name(VectorFormat::Model));
    save(&model);
    let mut files: Vec<Part> = fs::read_dir(&model)
        .unwrap()
        .map(|entry| {
            let p = entry.unwrap().path();
            let rel = p.strip_prefix(&dir).unwrap().to_path_buf();
            Part { rel, bytes: fs::read(&p).unwrap() }
        })
        .collect();
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    fs::remove_dir_all(&dir).unwrap();
    files
}

/// Writes mutated parts back and loads them with `load`: a model that
/// passes `check`, or a typed error, and no large allocation.
fn load_mutated_dir<T>(
    name: &str,
    files: &[Part],
    load: impl Fn(&Path) -> embkit::Result<T>,
    check: impl Fn(T) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let dir = scratch(name);
    let _ = fs::remove_dir_all(&dir);
    for file in files {
        let path = dir.join(&file.rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, &file.bytes).unwrap();
    }
    let (result, largest) =
        largest_allocation_in(|| load(&dir.join(file_name(VectorFormat::Model))));
    prop_assert!(largest <= MAX_ALLOCATION, "{name}: an allocation of {largest} bytes");
    match result {
        Ok(model) => check(model)?,
        Err(err) => {
            prop_assert!(
                matches!(err, Error::BadModelFile { .. } | Error::Io { .. }),
                "unexpected error kind: {err:?}"
            );
            check_error(&err, &dir)?;
        }
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn matrix_factorization_model_files_never_panic() {
    use embkit::format::SavedMatrixFactorization;
    use embkit::model::MatrixFactorizationConfig;
    use rand::{rngs::StdRng, SeedableRng};
    fuzz_files(
        "matrix factorization model",
        |rows, dim, _| {
            model_dir_parts("valid-mf", |dir| {
                let config = MatrixFactorizationConfig::new(rows, rows + 1, dim);
                let model = config.init(&mut StdRng::seed_from_u64(rows as u64)).unwrap();
                SavedMatrixFactorization::new(model).save(dir).unwrap();
            })
        },
        |files| {
            let load = |p: &Path| SavedMatrixFactorization::load(p);
            load_mutated_dir("read-mf", files, load, |saved| {
                // What was loaded is a valid model: it saves again.
                prop_assert!(saved.to_bytes().is_ok());
                Ok(())
            })
        },
    );
}

#[test]
fn bag_classifier_model_files_never_panic() {
    use embkit::format::SavedBagClassifier;
    use embkit::model::BagClassifierConfig;
    use rand::{rngs::StdRng, SeedableRng};
    fuzz_files(
        "bag classifier model",
        |rows, dim, _| {
            model_dir_parts("valid-bag", |dir| {
                let config = BagClassifierConfig::new(rows + 1, 3)
                    .with_embedding_dim(dim)
                    .with_bigram_buckets(rows);
                let model = config.init(&mut StdRng::seed_from_u64(rows as u64)).unwrap();
                SavedBagClassifier::new(model).save(dir).unwrap();
            })
        },
        |files| {
            let load = |p: &Path| SavedBagClassifier::load(p);
            load_mutated_dir("read-bag", files, load, |saved| {
                // What was loaded is a valid model: it saves again.
                prop_assert!(saved.to_bytes().is_ok());
                Ok(())
            })
        },
    );
}
