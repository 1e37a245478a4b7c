//! Word-vector interchange formats: round trips between every pair, the
//! edge cases of each reader, damaged files, and the real files other
//! tools wrote (in ../shared/data; skipped when that folder is missing).

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use embkit::format::{
    convert, ReadOptions, VectorFormat, VectorReader, VectorWriter, Vectors, METADATA_TSV,
    VECTORS_TSV,
};
use embkit::query::nearest_neighbors;
use embkit::Error;
use proptest::prelude::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    // Unique per call: tests running at the same time may ask for the same name.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("embkit-formats-{name}-{}-{call}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file or folder name for `format` in a scratch directory.
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

/// A small table with the values text formats get wrong: signed zero,
/// subnormals, the largest f32, values with many digits, and words that
/// are not ASCII.
fn tricky_table() -> Vectors {
    let words = ["the", "köln", "[UNK]", "x1", "日本", "e"];
    let data = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        1e-30,
        f32::MAX,
        -1e-45,
        0.1,
        1.0 / 3.0,
        123_456.79,
        -2.5e-7,
        7e10,
        f32::MIN_POSITIVE,
        f32::EPSILON,
        1e9,
        999_999_940.0,
        0.3,
        -0.7,
        16_777_216.0,
        1e-5,
        -f32::MAX,
        2.0f32.powi(-149),
        -9.999_999e-6,
        0.999_999_94,
    ];
    Vectors::new(words.map(String::from).to_vec(), 4, data).unwrap()
}

/// Words equal and every value equal bit for bit.
fn assert_same(got: &Vectors, want: &Vectors, what: &str) {
    assert_eq!(got.words(), want.words(), "{what}");
    assert_eq!(got.dim(), want.dim(), "{what}");
    let bits = |v: &Vectors| v.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(got), bits(want), "{what}");
}

fn read_str(text: &str, format: VectorFormat, lenient: bool) -> embkit::Result<Vectors> {
    read_bytes(text.as_bytes().to_vec(), format, lenient).map(|(v, _)| v)
}

fn read_bytes(
    bytes: Vec<u8>,
    format: VectorFormat,
    lenient: bool,
) -> embkit::Result<(Vectors, embkit::format::ReadReport)> {
    let options = ReadOptions::new().with_lenient(lenient);
    VectorReader::from_reader(Cursor::new(bytes), "mem", format, &options)?.read_all()
}

/// The line of a `BadRow`, or a panic with the error.
fn bad_line(err: &Error) -> usize {
    match err {
        Error::BadRow { line, .. } => *line,
        other => panic!("expected a BadRow, got {other:?}"),
    }
}

fn binary_file(header: &str, rows: &[(&str, &[f32])], newline: bool) -> Vec<u8> {
    let mut out = header.as_bytes().to_vec();
    for (word, values) in rows {
        out.extend_from_slice(word.as_bytes());
        out.push(b' ');
        for x in *values {
            out.extend_from_slice(&x.to_le_bytes());
        }
        if newline {
            out.push(b'\n');
        }
    }
    out
}

// ---------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------

#[test]
fn every_format_round_trips_the_table_bit_exact() {
    let dir = scratch("roundtrip");
    let table = tricky_table();
    for format in VectorFormat::ALL {
        let path = dir.join(file_name(format));
        table.write(&path, format).unwrap();
        assert_same(&Vectors::read(&path, format).unwrap(), &table, format.name());
    }
}

#[test]
fn conversions_between_every_pair_of_formats_keep_words_and_values() {
    let dir = scratch("pairs");
    let table = tricky_table();
    for from in VectorFormat::ALL {
        let src = dir.join(format!("src-{}", file_name(from)));
        table.write(&src, from).unwrap();
        for to in VectorFormat::ALL {
            let dst = dir.join(format!("{}-to-{}", from.name(), file_name(to)));
            let report = convert(&src, from, &dst, to, &ReadOptions::new()).unwrap();
            assert_eq!((report.rows, report.skipped), (table.len(), 0), "{from} -> {to}");
            let back = Vectors::read(&dst, to).unwrap();
            assert_same(&back, &table, &format!("{from} -> {to}"));
        }
    }
}

#[test]
fn lenient_conversions_count_rows_first_for_formats_that_need_them() {
    // GloVe has no count; word2vec needs one: the input is read twice.
    let dir = scratch("count-first");
    let src = dir.join("in.txt");
    fs::write(&src, "a 1 2\nb 3\nc 5 6\na 7 8\nd nan 1\n").unwrap();
    let dst = dir.join("out.vec");
    let options = ReadOptions::new().with_lenient(true);
    let report =
        convert(&src, VectorFormat::Glove, &dst, VectorFormat::FastTextVec, &options).unwrap();
    assert_eq!((report.rows, report.skipped, report.problems.len()), (2, 3, 3));
    assert_eq!(fs::read_to_string(&dst).unwrap(), "2 2\na 1 2\nc 5 6\n");
    // Strict, the short row on line 2 stops it and the output is not written.
    let dst2 = dir.join("strict.vec");
    let err =
        convert(&src, VectorFormat::Glove, &dst2, VectorFormat::FastTextVec, &ReadOptions::new())
            .unwrap_err();
    assert_eq!(bad_line(&err), 2, "{err}");
    assert!(!dst2.exists());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "no temporary file is left");
}

#[test]
fn words_the_output_cannot_hold_are_errors_or_skipped_when_lenient() {
    let dir = scratch("unwritable");
    // A model's vocabulary may hold the empty mask token; word2vec cannot.
    let model = dir.join("model");
    let words = vec![String::new(), "[UNK]".into(), "new york".into(), "cat".into()];
    Vectors::new(words, 2, vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
        .unwrap()
        .write(&model, VectorFormat::Model)
        .unwrap();
    let out = dir.join("out.bin");
    let err = convert(
        &model,
        VectorFormat::Model,
        &out,
        VectorFormat::Word2VecBinary,
        &ReadOptions::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"\" cannot be written as word2vec-bin"), "{err}");
    assert!(!out.exists());
    let lenient = ReadOptions::new().with_lenient(true);
    let report =
        convert(&model, VectorFormat::Model, &out, VectorFormat::Word2VecBinary, &lenient).unwrap();
    assert_eq!((report.rows, report.skipped), (2, 2));
    let back = Vectors::read(&out, VectorFormat::Word2VecBinary).unwrap();
    assert_eq!(back.words(), ["[UNK]", "cat"]);
    // TSV and vocabulary files hold spaces and the empty word.
    let tsv = dir.join("tsv");
    convert(&model, VectorFormat::Model, &tsv, VectorFormat::Tsv, &ReadOptions::new()).unwrap();
    assert_eq!(
        Vectors::read(&tsv, VectorFormat::Tsv).unwrap().words()[..3],
        ["", "[UNK]", "new york"]
    );
}

#[test]
fn a_failed_write_leaves_the_old_file_alone() {
    let dir = scratch("atomic");
    let path = dir.join("v.vec");
    fs::write(&path, "old").unwrap();
    let mut writer = VectorWriter::create(&path, VectorFormat::FastTextVec, 2, Some(3)).unwrap();
    writer.write_row("a", &[1.0, 2.0]).unwrap();
    assert!(writer.write_row("b", &[f32::NAN, 2.0]).is_err());
    assert!(writer.write_row("b", &[1.0]).is_err());
    // Two rows of the promised three.
    writer.write_row("b", &[1.0, 2.0]).unwrap();
    assert!(matches!(writer.finish(), Err(Error::ShapeMismatch { .. })));
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");
    // A writer dropped half way leaves nothing either.
    let mut writer =
        VectorWriter::create(dir.join("n.npy"), VectorFormat::Npy, 2, Some(1)).unwrap();
    writer.write_row("a", &[1.0, 2.0]).unwrap();
    drop(writer);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    // Formats that start with the count need it.
    assert!(VectorWriter::create(dir.join("x.bin"), VectorFormat::Word2VecBinary, 2, None).is_err());
}

#[test]
fn vectors_refuse_duplicates_non_finite_values_and_bad_shapes() {
    let two = || vec!["a".to_string(), "b".to_string()];
    assert!(Vectors::new(two(), 2, vec![1.0; 4]).is_ok());
    assert!(matches!(
        Vectors::new(vec!["a".into(), "a".into()], 2, vec![1.0; 4]),
        Err(Error::InvalidConfig { field: "words", .. })
    ));
    assert!(matches!(Vectors::new(two(), 2, vec![1.0; 3]), Err(Error::ShapeMismatch { .. })));
    assert!(Vectors::new(two(), 2, vec![1.0, 1.0, f32::INFINITY, 1.0]).is_err());
    assert!(Vectors::new(two(), 0, vec![]).is_err());
    assert!(matches!(Vectors::new(vec![], 2, vec![]), Err(Error::EmptyData { .. })));
}

#[test]
fn vectors_look_up_by_word_and_make_an_embedding_table() {
    let table = tricky_table();
    assert_eq!(table.id("köln"), Some(1));
    assert_eq!(table.get("x1"), Some(table.row(3)));
    assert_eq!(table.get("missing"), None);
    assert_eq!(table.view().shape(), &[6, 4]);
    let embedding = table.to_embedding(true).unwrap();
    assert_eq!(embedding.row(4), table.row(4));
    let back = Vectors::from_embedding(&embedding, table.words().to_vec()).unwrap();
    assert_same(&back, &table, "from_embedding");
    let (words, dim, data) = back.into_parts();
    assert_eq!((words.len(), dim, data.len()), (6, 4, 24));
}

#[test]
fn formats_come_from_names_and_contents() {
    let dir = scratch("detect");
    let table = tricky_table();
    for format in VectorFormat::ALL {
        let path = dir.join(file_name(format));
        table.write(&path, format).unwrap();
        let found = VectorFormat::detect(&path).unwrap();
        // fastText .vec and word2vec text are the same layout.
        assert_eq!(found, format, "{}", path.display());
        assert_eq!(found.name().parse::<VectorFormat>().unwrap(), found);
    }
    assert_eq!(VectorFormat::for_output(Path::new("x.txt")).unwrap(), VectorFormat::Word2Vec);
    assert!(VectorFormat::detect(Path::new("x.csv")).is_err());
    assert!(VectorFormat::for_output(&dir).is_err(), "a folder of neither tsv nor a model");
    assert!("word2vec-text".parse::<VectorFormat>().is_err());
}

// ---------------------------------------------------------------------
// Text readers
// ---------------------------------------------------------------------

#[test]
fn headers_are_checked_against_the_rows() {
    let w2v = VectorFormat::Word2Vec;
    assert_eq!(read_str("2 2\na 1 2\nb 3 4\n", w2v, false).unwrap().len(), 2);
    // Fewer rows than declared: as gensim's pretrained.vec fixture.
    let err = read_str("3 2\na 1 2\n", w2v, false).unwrap_err();
    assert_eq!(bad_line(&err), 1);
    assert!(err.to_string().contains("declares 3 rows, but the file has 1"), "{err}");
    // More rows than declared: an error at the first extra row.
    let err = read_str("1 2\na 1 2\nb 3 4\n", w2v, false).unwrap_err();
    assert_eq!(bad_line(&err), 3, "{err}");
    // Lenient reading takes the rows and reports the header.
    let (v, report) = read_bytes(b"3 2\na 1 2\n".to_vec(), w2v, true).unwrap();
    assert_eq!((v.len(), report.skipped, report.problems.len()), (1, 0, 1));
    // A row shorter or longer than the header's dim.
    let err = read_str("2 3\na 1 2 3\nb 1 2\n", w2v, false).unwrap_err();
    assert_eq!(bad_line(&err), 3);
    assert!(err
        .to_string()
        .contains("expected 3 values after the word (the header's dim), found 2"));
    assert_eq!(bad_line(&read_str("1 2\na 1 2 3\n", w2v, false).unwrap_err()), 2);
    // Not a header.
    for text in ["the 0.1 0.2\n", "2\n", "2 x\n", "2 0\n", "-1 2\n", "2 3 4\n"] {
        let err = read_str(text, w2v, false).unwrap_err();
        assert_eq!(bad_line(&err), 1, "{text:?}: {err}");
    }
    assert!(read_str("the 0.1 0.2\n", w2v, false).unwrap_err().to_string().contains("glove"));
    assert!(matches!(read_str("", w2v, false), Err(Error::EmptyData { .. })));
    assert!(matches!(read_str("0 3\n", w2v, false), Err(Error::EmptyData { .. })));
}

#[test]
fn a_header_claiming_a_trillion_rows_allocates_nothing_for_them() {
    let text = "1000000000000 3\na 1 2 3\nb 4 5 6\n";
    let err = read_str(text, VectorFormat::Word2Vec, false).unwrap_err();
    assert!(err.to_string().contains("declares 1000000000000 rows"), "{err}");
    let (v, report) = read_bytes(text.as_bytes().to_vec(), VectorFormat::Word2Vec, true).unwrap();
    assert_eq!((v.len(), report.problems.len()), (2, 1));
    // The same in binary, and a trillion values per row.
    let bin = binary_file("1000000000000 2\n", &[("a", &[1.0, 2.0])], false);
    assert!(read_bytes(bin, VectorFormat::Word2VecBinary, false).is_err());
    let bin = binary_file("1 1000000000000\n", &[("a", &[1.0, 2.0])], false);
    let err = read_bytes(bin, VectorFormat::Word2VecBinary, false).unwrap_err();
    assert!(matches!(err, Error::BadBinaryFile { .. }), "{err}");
    assert!(err.to_string().contains("ends after 8 of the vector's 4000000000000 bytes"), "{err}");
    // And an array that says so.
    let dir = scratch("trillion");
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 3), }\n";
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend_from_slice(&[0; 12]);
    fs::write(dir.join("t.npy"), npy).unwrap();
    fs::write(dir.join("t.vocab.txt"), "a\n").unwrap();
    let err = Vectors::read(dir.join("t.npy"), VectorFormat::Npy).unwrap_err();
    assert!(err.to_string().contains("needs 12000000000000 bytes of data"), "{err}");
}

#[test]
fn bad_values_are_errors_with_their_line() {
    let glove = VectorFormat::Glove;
    for (text, needle) in [
        ("a 1 2\nb 1 nan\n", "value 2 (nan) is not a finite f32"),
        ("a 1 2\nb inf 1\n", "not a finite f32"),
        ("a 1 2\nb 1e39 1\n", "value 1 (1e39) is not a finite f32"),
        ("a 1 2\nb 1 x\n", "value 2 (\"x\") is not a number"),
        ("a 1 2\nb 1,5 2\n", "is not a number"),
        ("a 1 2\nb\n", "expected 2 values after the word (as on line 1), found 0"),
        ("a 1 2\nb 1 2 3\n", "found 3"),
        ("a 1 2\na 3 4\n", "duplicate word \"a\" (first at line 1)"),
    ] {
        let err = read_str(text, glove, false).unwrap_err();
        assert_eq!(bad_line(&err), 2, "{text:?}");
        assert!(err.to_string().contains(needle), "{text:?}: {err}");
        // Lenient: the good row stays, the bad one is counted.
        let (v, report) = read_bytes(text.as_bytes().to_vec(), glove, true).unwrap();
        assert_eq!((v.len(), report.skipped), (1, 1), "{text:?}");
        assert_eq!(v.get("a"), Some(&[1.0, 2.0][..]), "{text:?}");
    }
    // A file whose rows are all bad has nothing to give.
    let err = read_str("a x\n", glove, true).unwrap_err();
    assert!(err.to_string().contains("no rows after skipping 1 bad rows"), "{err}");
}

#[test]
fn invalid_utf8_is_a_bad_row() {
    let mut bytes = b"2 2\na 1 2\n".to_vec();
    bytes.extend_from_slice(b"b\xff\xfe 3 4\n");
    let err = read_bytes(bytes.clone(), VectorFormat::Word2Vec, false).unwrap_err();
    assert_eq!(bad_line(&err), 3);
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    let (v, report) = read_bytes(bytes, VectorFormat::Word2Vec, true).unwrap();
    // The bad row still counts as one of the header's two.
    assert_eq!((v.len(), report.skipped, report.problems.len()), (1, 1, 1));
}

#[test]
fn legitimate_text_variants_are_accepted() {
    let want = Vectors::new(vec!["ö".into(), "b".into()], 2, vec![0.5, -1.0, 1e-7, 2.0]).unwrap();
    for text in [
        "2 2\nö 0.5 -1\nb 1e-7 2\n",
        // fastText's trailing space, a missing final newline
        "2 2\nö 0.5 -1 \nb 1e-7 2 ",
        // CRLF, tabs, a byte-order mark, and blank lines at the end
        "\u{feff}2 2\r\nö\t0.5\t-1\r\nb  1E-7 +2.0\r\n\n\n",
        // %.18e as numpy writes it
        "2 2\nö 5.000000000000000000e-01 -1.000000000000000000e+00\nb 9.999999974752427e-08 2\n",
    ] {
        let got = read_str(text, VectorFormat::Word2Vec, false).unwrap();
        assert_same(&got, &want, text);
    }
    let glove = read_str("ö 0.5 -1\nb 1e-7 2\n", VectorFormat::Glove, false).unwrap();
    assert_same(&glove, &want, "glove");
}

#[test]
fn empty_lines_between_rows_are_bad_rows() {
    let text = "3 1\na 1\n\n\nb 2\nc 3\n";
    let err = read_str(text, VectorFormat::Word2Vec, false).unwrap_err();
    assert_eq!(bad_line(&err), 3);
    let (v, report) = read_bytes(text.as_bytes().to_vec(), VectorFormat::Word2Vec, true).unwrap();
    assert_eq!((v.words(), report.skipped), (&["a", "b", "c"].map(String::from)[..], 1));
}

#[test]
fn format_mixups_get_a_hint() {
    // GloVe reader, word2vec file.
    let err = read_str("2 2\na 1 2\nb 3 4\n", VectorFormat::Glove, false).unwrap_err();
    assert!(err.to_string().contains("looks like a word2vec header"), "{err}");
    // Binary reader, text file.
    let err = read_str("2 4\nab 0.1 0.2 0.3 0.4\nb 1 2 3 4\n", VectorFormat::Word2VecBinary, false)
        .unwrap_err();
    assert!(err.to_string().contains("read the file as word2vec"), "{err}");
    // Text reader, binary file.
    let bin = binary_file("1 2\n", &[("a", &[0.123, -7.5])], false);
    let err = read_bytes(bin, VectorFormat::Word2Vec, false).unwrap_err();
    assert!(err.to_string().contains("word2vec-bin"), "{err}");
}

// ---------------------------------------------------------------------
// word2vec binary
// ---------------------------------------------------------------------

#[test]
fn binary_rows_with_or_without_a_newline_read_the_same() {
    let rows: [(&str, &[f32]); 3] =
        [("a", &[1.0, -0.0]), ("köln", &[f32::MIN_POSITIVE, 3.5]), ("\u{2028}", &[10.0, 32.0])];
    let with = binary_file("3 2\n", &rows, true);
    let without = binary_file("3 2\n", &rows, false);
    let a = read_bytes(with, VectorFormat::Word2VecBinary, false).unwrap().0;
    let b = read_bytes(without, VectorFormat::Word2VecBinary, false).unwrap().0;
    assert_same(&a, &b, "newline or not");
    assert_eq!(a.words()[1], "köln");
    // Values whose bytes are whitespace (10.0 = 0x41200000, 32.0 ends in 0x42)
    // are read as values, not skipped.
    assert_eq!(a.get("\u{2028}"), Some(&[10.0, 32.0][..]));
}

#[test]
fn truncated_binary_files_are_errors_at_their_offset() {
    let full = binary_file("2 3\n", &[("ab", &[1.0, 2.0, 3.0]), ("cd", &[4.0, 5.0, 6.0])], false);
    for cut in 4..full.len() {
        let err =
            read_bytes(full[..cut].to_vec(), VectorFormat::Word2VecBinary, false).unwrap_err();
        match err {
            Error::BadBinaryFile { offset, .. } => assert!(offset as usize <= cut, "{cut}"),
            Error::BadRow { line: 1, .. } => {} // a row count of 1 found at the end
            other => panic!("{cut}: {other}"),
        }
        // Lenient or not, a file cut inside a row is damaged.
        if cut != 4 + 2 + 1 + 12 {
            assert!(read_bytes(full[..cut].to_vec(), VectorFormat::Word2VecBinary, true).is_err());
        }
    }
    assert_eq!(read_bytes(full, VectorFormat::Word2VecBinary, false).unwrap().0.len(), 2);
}

#[test]
fn binary_words_that_are_not_utf8_and_non_finite_values_are_bad_rows() {
    let mut bin = binary_file("3 1\n", &[("a", &[1.0])], false);
    bin.extend_from_slice(b"\xc3\x28 ");
    bin.extend_from_slice(&2.0f32.to_le_bytes());
    bin.extend_from_slice(&binary_file("", &[("c", &[f32::NAN])], false));
    let err = read_bytes(bin.clone(), VectorFormat::Word2VecBinary, false).unwrap_err();
    assert!(
        matches!(&err, Error::BadBinaryFile { offset: 10, reason, .. } if reason.contains("row 2")),
        "{err}"
    );
    let (v, report) = read_bytes(bin, VectorFormat::Word2VecBinary, true).unwrap();
    assert_eq!((v.words(), report.skipped), (&["a".to_string()][..], 2));
}

// ---------------------------------------------------------------------
// TSV
// ---------------------------------------------------------------------

fn write_tsv(dir: &Path, vectors: &str, metadata: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(VECTORS_TSV), vectors).unwrap();
    fs::write(dir.join(METADATA_TSV), metadata).unwrap();
}

#[test]
fn tsv_metadata_with_several_columns_has_a_header_row() {
    let dir = scratch("tsv-columns");
    write_tsv(&dir, "1\t2\n3\t4\n", "Index\tWord\tcount\n0\tcat\t5\n1\tdog house\t3\n");
    let v = Vectors::read(&dir, VectorFormat::Tsv).unwrap();
    assert_eq!(v.words(), ["cat", "dog house"]);
    assert_eq!(v.get("dog house"), Some(&[3.0, 4.0][..]));
    // No column called word: the first.
    write_tsv(&dir, "1\t2\n3\t4\n", "id\tcount\n7\t5\n8\t3\n");
    assert_eq!(Vectors::read(&dir, VectorFormat::Tsv).unwrap().words(), ["7", "8"]);
    // A row with a missing column.
    write_tsv(&dir, "1\t2\n3\t4\n", "word\tcount\ncat\t5\ndog\n");
    let err = Vectors::read(&dir, VectorFormat::Tsv).unwrap_err();
    assert_eq!(bad_line(&err), 3);
    assert!(err.to_string().contains("metadata.tsv:3: expected 2 columns"), "{err}");
}

#[test]
fn tsv_files_of_different_lengths_are_errors() {
    let dir = scratch("tsv-lengths");
    write_tsv(&dir, "1\t2\n3\t4\n5\t6\n", "a\nb\n");
    let err = Vectors::read(&dir, VectorFormat::Tsv).unwrap_err();
    assert!(err.to_string().contains("metadata.tsv:3: metadata.tsv ends here"), "{err}");
    write_tsv(&dir, "1\t2\n", "a\nb\n");
    let err = Vectors::read(&dir, VectorFormat::Tsv).unwrap_err();
    assert!(err.to_string().contains("more rows than the 1 of vectors.tsv"), "{err}");
    // Trailing blank lines are not rows.
    write_tsv(&dir, "1\t2\n\n", "a\n\n");
    assert_eq!(Vectors::read(&dir, VectorFormat::Tsv).unwrap().len(), 1);
    // A bad vector line is skipped with its word when lenient.
    write_tsv(&dir, "1\t2\n3\n5\t6\n", "a\nb\nc\n");
    let err = Vectors::read(&dir, VectorFormat::Tsv).unwrap_err();
    assert!(err.to_string().contains("vectors.tsv:2: expected 2 values"), "{err}");
    let lenient = ReadOptions::new().with_lenient(true);
    let (v, _) = Vectors::read_with(&dir, VectorFormat::Tsv, &lenient).unwrap();
    assert_eq!(v.words(), ["a", "c"]);
    // A missing metadata.tsv.
    fs::remove_file(dir.join(METADATA_TSV)).unwrap();
    assert!(matches!(Vectors::read(&dir, VectorFormat::Tsv), Err(Error::Io { .. })));
}

// ---------------------------------------------------------------------
// npy and safetensors
// ---------------------------------------------------------------------

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors")
}

/// The table every file in tests/data/vectors holds (see make_fixtures.py).
fn fixture_table() -> Vectors {
    let words = ["cat", "dog", "köln", "[UNK]"].map(String::from).to_vec();
    let data = vec![
        0.5,
        -0.0,
        1.25,
        2.0,
        -3.5,
        0.125,
        2f32.powi(-10),
        1024.0,
        -1.0,
        2f32.powi(-14),
        0.25,
        3.0,
    ];
    Vectors::new(words, 3, data).unwrap()
}

#[test]
fn numpy_and_safetensors_fixtures_read_the_same_table() {
    let want = fixture_table();
    for name in ["table.npy", "table_f8_fortran.npy", "table_f2_big.npy"] {
        let got = Vectors::read(fixtures().join(name), VectorFormat::Npy).unwrap();
        assert_same(&got, &want, name);
    }
    let st = fixtures().join("table.safetensors");
    for tensor in ["emb.weight", "proj.weight"] {
        let options = ReadOptions::new().with_tensor(tensor);
        let (got, _) = Vectors::read_with(&st, VectorFormat::Safetensors, &options).unwrap();
        assert_same(&got, &want, tensor);
    }
    // Two 2-D tensors and no `embedding.weight`: one must be named.
    let err = Vectors::read(&st, VectorFormat::Safetensors).unwrap_err();
    assert!(err.to_string().contains("several 2-D float tensors"), "{err}");
    assert!(err.to_string().contains("`proj.weight` [4, 3] BF16"), "{err}");
    for (tensor, needle) in [("emb.bias", "[rows, dim]"), ("nope", "no tensor `nope`")] {
        let options = ReadOptions::new().with_tensor(tensor);
        let err = Vectors::read_with(&st, VectorFormat::Safetensors, &options).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let err = Vectors::read(fixtures().join("vector_1d.npy"), VectorFormat::Npy).unwrap_err();
    assert!(err.to_string().contains("2-D"), "{err}");
}

#[test]
fn vocabulary_files_must_match_the_rows() {
    let dir = scratch("vocab");
    fs::copy(fixtures().join("table.npy"), dir.join("t.npy")).unwrap();
    let npy = dir.join("t.npy");
    let other = dir.join("other.txt");
    for (vocab, line) in [("a\nb\nc\n", 4), ("a\nb\nc\nd\ne\n", 5), ("a\nb\na\nd\n", 3)] {
        fs::write(&other, vocab).unwrap();
        let options = ReadOptions::new().with_vocab(&other);
        let err = Vectors::read_with(&npy, VectorFormat::Npy, &options).unwrap_err();
        assert_eq!(bad_line(&err), line, "{vocab:?}: {err}");
    }
    // Without --vocab the default name is used, and must exist.
    assert!(matches!(Vectors::read(&npy, VectorFormat::Npy), Err(Error::Io { .. })));
    // A duplicate is skipped when lenient, its row with it.
    let options = ReadOptions::new().with_vocab(&other).with_lenient(true);
    let (v, report) = Vectors::read_with(&npy, VectorFormat::Npy, &options).unwrap();
    assert_eq!((v.words(), report.skipped), (&["a", "b", "d"].map(String::from)[..], 1));
    assert_eq!(v.get("d"), fixture_table().get("[UNK]"));
}

#[test]
fn npy_sizes_are_checked_against_the_file() {
    let dir = scratch("npy-size");
    let bytes = fs::read(fixtures().join("table.npy")).unwrap();
    fs::write(dir.join("t.vocab.txt"), "a\nb\nc\nd\n").unwrap();
    for (name, data) in
        [("short", &bytes[..bytes.len() - 1]), ("long", &[&bytes[..], &[0]].concat())]
    {
        fs::write(dir.join("t.npy"), data).unwrap();
        let err = Vectors::read(dir.join("t.npy"), VectorFormat::Npy).unwrap_err();
        assert!(matches!(err, Error::BadBinaryFile { .. }), "{name}: {err}");
    }
}

#[test]
fn model_directories_give_their_table_and_vocabulary() {
    // The golden model has the mask token "" and "[UNK]".
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/model-v1");
    let v = Vectors::read(&golden, VectorFormat::Model).unwrap();
    assert_eq!(v.words(), ["", "[UNK]", "cat", "dog", "snake", "mouse"]);
    let saved = embkit::format::SavedModel::load(&golden).unwrap();
    assert_eq!(v.data(), saved.model.embedding().weights());
    assert_eq!(VectorFormat::detect(&golden).unwrap(), VectorFormat::Model);
}

// ---------------------------------------------------------------------
// Damaged files never panic
// ---------------------------------------------------------------------

/// The files of a tiny table written as `format`, by name.
fn valid_files(format: VectorFormat) -> Vec<(String, Vec<u8>)> {
    let dir = scratch(&format!("valid-{}", format.name()));
    let table = Vectors::new(
        vec!["ab".into(), "ö".into(), "c".into()],
        2,
        vec![0.5, -1.0, 2.0, 1e-3, 0.0, 7.0],
    )
    .unwrap();
    let path = dir.join(file_name(format));
    table.write(&path, format).unwrap();
    let mut files = Vec::new();
    let mut walk = vec![dir.clone()];
    while let Some(d) = walk.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk.push(p);
            } else {
                let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
                files.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    fs::remove_dir_all(&dir).unwrap();
    files
}

/// Writes `files` into `dir` and reads them as `format`, strict and
/// lenient. Anything but a panic is fine; what is read must be a valid
/// table.
fn read_damaged(dir: &Path, format: VectorFormat, files: &[(String, Vec<u8>)]) {
    let _ = fs::remove_dir_all(dir);
    for (rel, bytes) in files {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    for lenient in [false, true] {
        let options = ReadOptions::new().with_lenient(lenient).with_tensor("embedding.weight");
        if let Ok((v, report)) = Vectors::read_with(dir.join(file_name(format)), format, &options) {
            assert_eq!(v.len() * v.dim(), v.data().len());
            assert!(v.data().iter().all(|x| x.is_finite()));
            assert_eq!(report.rows, v.len());
            // What was read is a valid table.
            Vectors::new(v.words().to_vec(), v.dim(), v.data().to_vec()).unwrap();
        }
    }
}

#[test]
fn every_truncation_of_every_file_is_read_without_panicking() {
    let dir = scratch("truncate");
    for format in VectorFormat::ALL {
        let files = valid_files(format);
        for (i, (_, bytes)) in files.iter().enumerate() {
            for cut in 0..bytes.len() {
                let mut damaged = files.clone();
                damaged[i].1.truncate(cut);
                read_damaged(&dir, format, &damaged);
            }
        }
    }
}

/// A change to the bytes of one file: overwrite, insert or remove bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        b' ', b'\n', b'\t', b'\r', 0, 0xff, 0x80, b'-', b'9', b'e', b'.',
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Set(i, b) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] = *b;
        }
        Mutation::Set(..) => {}
        Mutation::Insert(i, new) => {
            let i = i % (bytes.len() + 1);
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let i = i % (bytes.len() + 1);
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Mutated bytes of valid files, in every format: errors, never panics.
    #[test]
    fn mutated_files_are_read_without_panicking(
        format in prop::sample::select(VectorFormat::ALL.to_vec()),
        file in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut files = valid_files(format);
        let i = file % files.len();
        for m in &mutations {
            apply(&mut files[i].1, m);
        }
        let dir = std::env::temp_dir()
            .join(format!("embkit-formats-fuzz-{}-{}", format.name(), std::process::id()));
        read_damaged(&dir, format, &files);
    }

    /// Any finite f32 survives every text format bit for bit.
    #[test]
    fn text_formats_keep_every_f32(bits in prop::collection::vec(any::<u32>(), 1..16)) {
        let values: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).filter(|x| x.is_finite()).collect();
        prop_assume!(!values.is_empty());
        let n = values.len();
        let table = Vectors::new(vec!["w".into()], n, values).unwrap();
        let dir = std::env::temp_dir().join(format!("embkit-formats-f32-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for format in [VectorFormat::Word2Vec, VectorFormat::Glove, VectorFormat::Tsv] {
            let path = dir.join(file_name(format));
            table.write(&path, format).unwrap();
            let back = Vectors::read(&path, format).unwrap();
            let same = back.data().iter().zip(table.data()).all(|(a, b)| a.to_bits() == b.to_bits());
            prop_assert!(same, "{}: {:?} != {:?}", format, back.data(), table.data());
        }
    }
}

// ---------------------------------------------------------------------
// Files written by other tools (../shared/data)
// ---------------------------------------------------------------------

/// The shared fixtures folder, or `None` (the test is skipped) when it is
/// not there.
fn shared_fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/word-vector-format-fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is missing", dir.display());
        None
    }
}

#[test]
fn gensim_binary_without_newlines_is_read() {
    let Some(dir) = shared_fixtures() else { return };
    let path = dir.join("euclidean_vectors.bin");
    assert_eq!(VectorFormat::detect(&path).unwrap(), VectorFormat::Word2VecBinary);
    let v = Vectors::read(&path, VectorFormat::Word2VecBinary).unwrap();
    assert_eq!((v.len(), v.dim()), (2747, 10));
    assert_eq!(v.words()[0], "the");
    // The bytes right after "the " and "fly ", read off a hex dump.
    assert_eq!(v.row(0)[0], f32::from_le_bytes([0xb9, 0xc8, 0xd7, 0x3e]));
    assert_eq!(v.words()[2746], "fly");
    assert_eq!(v.row(2746)[0], f32::from_le_bytes([0x8f, 0x35, 0x33, 0x3f]));
    assert_eq!(v.row(2746)[9], f32::from_le_bytes([0x8d, 0xda, 0xae, 0x3e]));
}

#[test]
fn text_files_of_gensim_fasttext_and_glove_are_read() {
    let Some(dir) = shared_fixtures() else { return };
    let lee = Vectors::read(dir.join("lee_fasttext.vec"), VectorFormat::FastTextVec).unwrap();
    assert_eq!((lee.len(), lee.dim()), (1762, 10));
    assert_eq!(lee.get("the").unwrap()[..2], [-0.65992, 0.20966]);

    let path = dir.join("test_glove.txt");
    assert_eq!(VectorFormat::detect(&path).unwrap(), VectorFormat::Glove);
    let glove = Vectors::read(&path, VectorFormat::Glove).unwrap();
    assert_eq!((glove.len(), glove.dim()), (76, 50));
    assert_eq!(glove.get("the").unwrap()[..3], [0.418, 0.24968, -0.41242]);
    assert_eq!(glove.get("ö").unwrap()[0], 0.013441);
    assert!(Vectors::read(&path, VectorFormat::Word2Vec).is_err(), "no header");

    let toy = Vectors::read(dir.join("toy-model.vec"), VectorFormat::FastTextVec).unwrap();
    assert_eq!((toy.len(), toy.dim()), (22, 5));
    let err = Vectors::read(dir.join("toy-model.bin"), VectorFormat::Word2VecBinary).unwrap_err();
    assert!(err.to_string().contains("fastText model"), "{err}");
}

#[test]
fn scientific_notation_with_eighteen_digits_is_read() {
    let Some(dir) = shared_fixtures() else { return };
    let en = Vectors::read(dir.join("EN.1-10.w2v.txt"), VectorFormat::Word2Vec).unwrap();
    let it = Vectors::read(dir.join("IT.1-10.w2v.txt"), VectorFormat::Word2Vec).unwrap();
    assert_eq!((en.len(), en.dim(), it.len(), it.dim()), (20, 300, 20, 300));
    // gensim's path: parse as f64, then round to f32.
    let gensim = |text: &str| text.parse::<f64>().unwrap() as f32;
    assert_eq!(en.get("one").unwrap()[0], gensim("-1.671300083398818970e-02"));
    assert_eq!(en.get("one").unwrap()[1], gensim("7.239600270986557007e-02"));
    // Every pair of the translation dictionary has both words.
    let dict = fs::read_to_string(dir.join("en_it_one2ten.dict.txt")).unwrap();
    let pairs: Vec<(&str, &str)> =
        dict.lines().map(|l| l.split_once(' ').expect("two words")).collect();
    assert_eq!(pairs.len(), 20);
    for (e, i) in pairs {
        assert!(en.get(e).is_some() && it.get(i).is_some(), "{e} {i}");
    }
}

#[test]
fn high_precision_text_and_binary_agree() {
    let Some(dir) = shared_fixtures() else { return };
    let text = Vectors::read(dir.join("high_precision.kv.txt"), VectorFormat::Word2Vec).unwrap();
    let bin =
        Vectors::read(dir.join("high_precision.kv.bin"), VectorFormat::Word2VecBinary).unwrap();
    assert_eq!(text.words(), ["kangaroo.n.01", "horse.n.01"]);
    // The binary holds the values at half precision (the low 13 bits of
    // each f32 are zero); the text, in full.
    assert_eq!(bin.words(), text.words());
    for (a, b) in text.data().iter().zip(bin.data()) {
        assert_eq!(b.to_bits() & 0x1fff, 0, "{b}");
        assert!((a - b).abs() <= a.abs() * 2f32.powi(-10), "{a} vs {b}");
    }
    assert_eq!(text.row(0)[0], -0.0007369244245224787f64 as f32);
}

#[test]
fn a_header_that_lies_is_an_error() {
    let Some(dir) = shared_fixtures() else { return };
    let path = dir.join("pretrained.vec");
    let err = Vectors::read(&path, VectorFormat::FastTextVec).unwrap_err();
    assert_eq!(bad_line(&err), 1);
    assert!(err.to_string().contains("declares 3 rows, but the file has 1"), "{err}");
    let lenient = ReadOptions::new().with_lenient(true);
    let (v, report) = Vectors::read_with(&path, VectorFormat::FastTextVec, &lenient).unwrap();
    assert_eq!((v.words(), v.dim(), report.problems.len()), (&["dummy".to_string()][..], 5, 1));
}

#[test]
fn golden_nearest_neighbours_match() {
    let Some(dir) = shared_fixtures() else { return };
    let v = Vectors::read(dir.join("euclidean_vectors.bin"), VectorFormat::Word2VecBinary).unwrap();
    let golden = fs::read_to_string(dir.join("euclidean_vectors.most_similar.golden.tsv")).unwrap();
    let mut checked = 0;
    for line in golden.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [query, rank, neighbour, cosine] = fields[..] else { panic!("{line}") };
        let rank: usize = rank.parse().unwrap();
        let cosine: f32 = cosine.parse().unwrap();
        let id = v.id(query).unwrap();
        let near = nearest_neighbors(v.view(), v.row(id), 10, Some(id)).unwrap();
        let got = near[rank - 1];
        assert_eq!(v.words()[got.id as usize], neighbour, "{query} #{rank}");
        assert!((got.similarity - cosine).abs() < 1e-5, "{query} #{rank}: {}", got.similarity);
        checked += 1;
    }
    assert_eq!(checked, 40);
}

#[test]
fn real_files_convert_through_every_format() {
    let Some(dir) = shared_fixtures() else { return };
    let out = scratch("real");
    let src = dir.join("euclidean_vectors.bin");
    let want = Vectors::read(&src, VectorFormat::Word2VecBinary).unwrap();
    let mut from = (src, VectorFormat::Word2VecBinary);
    for to in [
        VectorFormat::Glove,
        VectorFormat::Tsv,
        VectorFormat::Npy,
        VectorFormat::Safetensors,
        VectorFormat::Model,
        VectorFormat::Word2Vec,
        VectorFormat::Word2VecBinary,
    ] {
        let path = out.join(file_name(to));
        convert(&from.0, from.1, &path, to, &ReadOptions::new()).unwrap();
        from = (path, to);
    }
    assert_same(&Vectors::read(&from.0, from.1).unwrap(), &want, "chain");
}
