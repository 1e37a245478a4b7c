//! End-to-end tests of `embkit convert`: chains of conversions that come
//! back to the same file, format detection, and the errors bad input gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn embkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embkit")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("embkit-convert-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn assert_success(o: &Output) {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", stdout(o), stderr(o));
}

/// Asserts a failed run: exit code 1, one `error: ` message with `needle`.
fn assert_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stdout: {}\nstderr: {}", stdout(o), stderr(o));
    let err = stderr(o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// GloVe text in the shortest float notation, so a round trip gives the
/// same bytes back.
const GLOVE: &str = "cat 0.5 -1 0\ndog 1e-7 2 -0\nköln 0.1 3.4028235e38 123456.79\n";

#[test]
fn convert_has_help_that_names_the_formats() {
    let o = embkit(&["convert", "--help"]);
    assert_success(&o);
    for name in ["word2vec-bin", "glove", "fasttext-vec", "tsv", "npy", "safetensors", "model"] {
        assert!(stdout(&o).contains(name), "{name}");
    }
}

#[test]
fn a_chain_through_every_format_gives_the_same_file_back() {
    let dir = scratch("chain");
    let start = dir.join("start.txt");
    std::fs::write(&start, GLOVE).unwrap();
    let steps: [(&str, &[&str]); 8] = [
        ("a.vec", &[]),
        ("b.bin", &[]),
        ("c.npy", &[]),
        ("tsv", &["--to", "tsv"]),
        ("d.safetensors", &[]),
        ("model", &["--to", "model"]),
        ("e.txt", &[]),
        ("back.txt", &["--to", "glove"]),
    ];
    let mut input = start.clone();
    for (name, extra) in steps {
        let output = dir.join(name);
        let mut args = vec!["convert", s(&input), s(&output)];
        args.extend_from_slice(extra);
        let o = embkit(&args);
        assert_success(&o);
        assert!(stdout(&o).ends_with(": 3 rows\n"), "{name}: {}", stdout(&o));
        input = output;
    }
    assert_eq!(std::fs::read_to_string(dir.join("back.txt")).unwrap(), GLOVE);
    // The .txt in the middle was written as word2vec text, with its header.
    let e = std::fs::read_to_string(dir.join("e.txt")).unwrap();
    assert!(e.starts_with("3 3\ncat 0.5 -1 0\n"), "{e}");
}

#[test]
fn bad_rows_stop_the_conversion_with_their_line() {
    let dir = scratch("bad-row");
    let input = dir.join("in.vec");
    std::fs::write(&input, "3 2\na 1 2\nb 1\nc 5 6\n").unwrap();
    let output = dir.join("out.npy");
    std::fs::write(&output, "old").unwrap();
    let o = embkit(&["convert", s(&input), s(&output)]);
    assert_error(&o, "in.vec:3: expected 2 values after the word (the header's dim), found 1");
    assert!(stderr(&o).contains("(fasttext-vec) to"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "old", "left alone");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "no temporary file is left");

    // --lenient skips it, says so, and the header's count is not met.
    let o = embkit(&["convert", s(&input), s(&output), "--lenient"]);
    assert_success(&o);
    assert!(stdout(&o).ends_with(": 2 rows, skipped 1\n"), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("warning: ") && err.contains("in.vec:3: expected 2 values"), "{err}");
    assert_eq!(std::fs::read(dir.join("out.vocab.txt")).unwrap(), b"a\nc\n");
}

#[test]
fn formats_that_cannot_be_told_need_naming() {
    let dir = scratch("names");
    let input = dir.join("vectors.data");
    std::fs::write(&input, GLOVE).unwrap();
    let o = embkit(&["convert", s(&input), s(&dir.join("out.vec"))]);
    assert_error(&o, "use --from");
    let o = embkit(&["convert", s(&input), s(&dir.join("out.vec")), "--from", "glove"]);
    assert_success(&o);
    let o = embkit(&["convert", s(&dir.join("out.vec")), s(&dir.join("out.data"))]);
    assert_error(&o, "use --to");
    let o = embkit(&["convert", s(&input), s(&dir.join("x.vec")), "--from", "csv"]);
    assert_eq!(o.status.code(), Some(2), "clap refuses an unknown format");
    assert!(stderr(&o).contains("invalid value 'csv'"), "{}", stderr(&o));
    let o = embkit(&["convert", s(&dir.join("missing.vec")), s(&dir.join("x.bin"))]);
    assert_error(&o, "cannot open");
}

#[test]
fn words_the_output_cannot_hold_are_refused_or_skipped() {
    let dir = scratch("words");
    let tsv = dir.join("tsv");
    std::fs::create_dir_all(&tsv).unwrap();
    std::fs::write(tsv.join("vectors.tsv"), "1\t2\n3\t4\n").unwrap();
    std::fs::write(tsv.join("metadata.tsv"), "new york\nparis\n").unwrap();
    let out = dir.join("out.vec");
    let o = embkit(&["convert", s(&tsv), s(&out)]);
    assert_error(&o, "\"new york\" cannot be written as fasttext-vec");
    let o = embkit(&["convert", s(&tsv), s(&out), "--lenient", "--json"]);
    assert_success(&o);
    let record: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(record["rows"], 1);
    assert_eq!(record["skipped"], 1);
    assert_eq!(record["from"], "tsv");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "1 2\nparis 3 4\n");
}

#[test]
fn safetensors_input_takes_a_tensor_and_a_vocabulary() {
    let dir = scratch("safetensors");
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../embkit/tests/data/vectors");
    let st = data.join("table.safetensors");
    let out = dir.join("out.txt");
    let o = embkit(&["convert", s(&st), s(&out)]);
    assert_error(&o, "several 2-D float tensors: name one");
    let o = embkit(&["convert", s(&st), s(&out), "--tensor", "proj.weight"]);
    assert_success(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("4 3\ncat 0.5 -0 1.25\n"), "{text}");
    let vocab = dir.join("words.txt");
    std::fs::write(&vocab, "w\nx\ny\nz\n").unwrap();
    let o = embkit(&["convert", s(&st), s(&out), "--tensor", "emb.weight", "--vocab", s(&vocab)]);
    assert_success(&o);
    assert!(std::fs::read_to_string(&out).unwrap().contains("\nz 0.000061035156 0.25 3\n"));
}

#[test]
fn the_gensim_binary_converts_to_text() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/word-vector-format-fixtures/euclidean_vectors.bin");
    if !shared.exists() {
        eprintln!("skipped: {} is missing", shared.display());
        return;
    }
    let dir = scratch("gensim");
    let out = dir.join("lee.vec");
    let o = embkit(&["convert", s(&shared), s(&out)]);
    assert_success(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("2747 10\nthe 0.42145327 "), "{}", &text[..60]);
    assert_eq!(text.lines().count(), 2748);
}
