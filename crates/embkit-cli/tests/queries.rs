//! End-to-end tests of `embkit neighbors`, `analogy` and `similarity` on
//! word-vector files and model directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn embkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embkit")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("embkit-queries-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect()
}

/// Word vectors on the axes person, female, royal, young, written as
/// word2vec text.
fn write_family(dir: &Path) -> PathBuf {
    let path = dir.join("family.txt");
    std::fs::write(
        &path,
        "7 4\n\
         man 1 0 0 0\n\
         woman 1 1 0 0\n\
         king 1 0 1 0\n\
         queen 1 1 1 0\n\
         boy 1 0 0 1\n\
         girl 1 1 0 1\n\
         long 10 0 0 0\n",
    )
    .unwrap();
    path
}

fn words(o: &Output) -> Vec<String> {
    stdout(o).lines().map(|l| l.split('\t').nth(1).unwrap().to_string()).collect()
}

#[test]
fn the_query_commands_have_help() {
    for (cmd, needle) in
        [("neighbors", "--metric"), ("analogy", "--method"), ("similarity", "--pairs")]
    {
        let o = embkit(&[cmd, "--help"]);
        assert_success(&o);
        assert!(stdout(&o).contains("--vectors"), "{cmd}");
        assert!(stdout(&o).contains(needle), "{cmd}");
    }
}

#[test]
fn neighbors_of_a_vectors_file_by_each_metric() {
    let dir = scratch("neighbors");
    let file = write_family(&dir);
    let run = |metric: &str| {
        let o = embkit(&[
            "neighbors",
            "--vectors",
            s(&file),
            "--word",
            "man",
            "-k",
            "2",
            "--metric",
            metric,
        ]);
        assert_success(&o);
        o
    };
    // `long` points the same way as `man`; it is also the longest row and
    // the farthest one.
    assert_eq!(words(&run("cosine")), ["long", "woman"]);
    assert_eq!(words(&run("dot")), ["long", "woman"]);
    assert_eq!(words(&run("euclidean")), ["woman", "king"]);
    let euclid = run("euclidean");
    assert_eq!(stdout(&euclid).lines().next().unwrap(), "1\twoman\t1.0000");

    let o = embkit(&[
        "neighbors",
        "--vectors",
        s(&file),
        "--word",
        "MAN",
        "--metric",
        "euclidean",
        "-k",
        "1",
        "--json",
    ]);
    assert_success(&o);
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["word"], "woman");
    assert_eq!(lines[0]["distance"], 1.0);

    let o = embkit(&["neighbors", "--vectors", s(&file), "--word", "prince"]);
    assert_error(&o, "\"prince\" is not in");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn analogy_add_mul_and_errors() {
    let dir = scratch("analogy");
    let file = write_family(&dir);
    for method in ["add", "mul"] {
        let o = embkit(&[
            "analogy",
            "--vectors",
            s(&file),
            "man",
            "woman",
            "king",
            "-k",
            "1",
            "--method",
            method,
        ]);
        assert_success(&o);
        assert_eq!(words(&o), ["queen"], "{method}");
    }
    let o = embkit(&["analogy", "--vectors", s(&file), "man", "woman", "boy", "--json", "-k", "3"]);
    assert_success(&o);
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["word"], "girl");
    assert!(lines.iter().all(|l| !["man", "woman", "boy"].contains(&l["word"].as_str().unwrap())));

    let o = embkit(&["analogy", "--vectors", s(&file), "man", "woman", "duke"]);
    assert_error(&o, "\"duke\"");
    let o = embkit(&["analogy", "--vectors", s(&file), "man", "woman"]);
    assert!(!o.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn analogy_evaluation_per_section() {
    let dir = scratch("analogy-eval");
    let file = write_family(&dir);
    let questions = dir.join("questions.txt");
    std::fs::write(
        &questions,
        ": family\nMan Woman King Queen\nman woman boy girl\nman woman prince princess\n\
         : wrong\nman king woman girl\n",
    )
    .unwrap();
    let o = embkit(&["analogy", "--vectors", s(&file), "--eval", s(&questions), "--json"]);
    assert_success(&o);
    let lines = json_lines(&o);
    let names: Vec<&str> = lines.iter().map(|l| l["section"].as_str().unwrap()).collect();
    assert_eq!(names, ["family", "wrong", "total"]);
    assert_eq!(lines[0]["correct"], 2);
    assert_eq!(lines[0]["skipped"], 1);
    assert_eq!(lines[1]["incorrect"], 1);
    assert_eq!(lines[2]["accuracy"], 2.0 / 3.0);

    let o = embkit(&["analogy", "--vectors", s(&file), "--eval", s(&questions), "--restrict", "4"]);
    assert_success(&o);
    let total = stdout(&o).lines().last().unwrap().to_string();
    assert_eq!(total, "total\t1/1\t1.0000\tskipped 3");

    let bad = dir.join("bad.txt");
    std::fs::write(&bad, ": s\nman woman\n").unwrap();
    let o = embkit(&["analogy", "--vectors", s(&file), "--eval", s(&bad)]);
    assert_error(&o, "line 2");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn similarity_reports_spearman_and_pair_counts() {
    let dir = scratch("similarity");
    let file = write_family(&dir);
    let pairs = dir.join("pairs.tsv");
    std::fs::write(
        &pairs,
        "word1\tword2\tscore\nMan\twoman\t5\nking\tQUEEN\t8\nman\tgirl\t1\nman\tprince\t3\n",
    )
    .unwrap();
    let o = embkit(&["similarity", "--vectors", s(&file), "--pairs", s(&pairs), "--json"]);
    assert_success(&o);
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["pairs_used"], 3);
    assert_eq!(lines[0]["pairs_oov"], 1);
    assert!((lines[0]["spearman"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{}", lines[0]);

    let o = embkit(&["similarity", "--vectors", s(&file), "--pairs", s(&pairs)]);
    assert_success(&o);
    assert!(stdout(&o).contains("pairs_used\t3\n"), "{}", stdout(&o));

    let o = embkit(&["similarity", "--vectors", s(&file), "--pairs", s(&dir.join("missing.tsv"))]);
    assert_error(&o, "missing.tsv");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model directory written by `convert` (no text classifier) answers
/// all three commands.
#[test]
fn a_converted_model_directory_is_a_source() {
    let dir = scratch("model-dir");
    let file = write_family(&dir);
    let model = dir.join("model");
    let o = embkit(&["convert", s(&file), s(&model), "--to", "model"]);
    assert_success(&o);
    let o = embkit(&["neighbors", "--model", s(&model), "--word", "man", "-k", "2"]);
    assert_success(&o);
    assert_eq!(words(&o), ["long", "woman"]);
    let o = embkit(&["analogy", "--model", s(&model), "man", "woman", "king", "-k", "1"]);
    assert_success(&o);
    assert_eq!(words(&o), ["queen"]);
    let o = embkit(&["neighbors", "--model", s(&model), "--word", "prince"]);
    assert_error(&o, "\"prince\" is not in the model's vocabulary");
    let o = embkit(&["neighbors", "--model", s(&model), "--format", "glove", "--word", "man"]);
    assert_error(&o, "--format");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A trained text classifier: query words are standardised as in
/// training, and the mask and `[UNK]` rows never come back.
#[test]
fn a_text_classifier_model_is_a_source() {
    let dir = scratch("classifier");
    let data = dir.join("train.tsv");
    let mut text = String::from("label\ttext\n");
    for i in 0..60 {
        if i % 2 == 0 {
            text.push_str("sea\tthe whale swam in the deep sea near a ship\n");
        } else {
            text.push_str("land\tthe horse ran over the green hill near a farm\n");
        }
    }
    std::fs::write(&data, text).unwrap();
    let model = dir.join("model");
    let o = embkit(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&model),
        "--epochs",
        "2",
        "--embedding-dim",
        "4",
        "--sequence-length",
        "8",
        "--quiet",
        "--json",
    ]);
    assert_success(&o);
    for metric in ["cosine", "dot", "euclidean"] {
        let o = embkit(&[
            "neighbors",
            "--model",
            s(&model),
            "--word",
            "Whale!",
            "-k",
            "50",
            "--metric",
            metric,
            "--json",
        ]);
        assert_success(&o);
        let lines = json_lines(&o);
        let got: Vec<&str> = lines.iter().map(|l| l["word"].as_str().unwrap()).collect();
        assert!(!got.is_empty());
        assert!(!got.iter().any(|w| ["", "[UNK]", "whale"].contains(w)), "{got:?}");
    }
    let o = embkit(&["analogy", "--model", s(&model), "whale", "sea", "horse", "-k", "50"]);
    assert_success(&o);
    assert!(!words(&o).iter().any(|w| w == "[UNK]"));
    let pairs = dir.join("pairs.tsv");
    std::fs::write(
        &pairs,
        "a\tb\tscore\nwhale\tsea\t9\nhorse\thill\t8\nwhale\tfarm\t1\nzebra\tsea\t2\n",
    )
    .unwrap();
    let o = embkit(&["similarity", "--model", s(&model), "--pairs", s(&pairs), "--json"]);
    assert_success(&o);
    let report = &json_lines(&o)[0];
    assert_eq!((report["pairs_used"].as_u64(), report["pairs_oov"].as_u64()), (Some(3), Some(1)));
    let o = embkit(&["neighbors", "--model", s(&model), "--word", "zebra"]);
    assert_error(&o, "\"zebra\" is not in the model's vocabulary");
    std::fs::remove_dir_all(&dir).unwrap();
}

const LEE_VECTORS: &str = "/work/shared/data/word-vector-format-fixtures/euclidean_vectors.bin";
const WORDSIM: &str = "/work/shared/data/word-similarity/wordsim353.tsv";

/// WordSim-353 on the Lee-corpus vectors; skipped when the shared data
/// folder is missing.
#[test]
fn wordsim353_on_the_lee_vectors() {
    if !Path::new(LEE_VECTORS).is_file() || !Path::new(WORDSIM).is_file() {
        eprintln!("skipped: {LEE_VECTORS} or {WORDSIM} is missing");
        return;
    }
    let o = embkit(&["similarity", "--vectors", LEE_VECTORS, "--pairs", WORDSIM, "--json"]);
    assert_success(&o);
    let report = &json_lines(&o)[0];
    let used = report["pairs_used"].as_u64().unwrap();
    let oov = report["pairs_oov"].as_u64().unwrap();
    assert_eq!(used + oov, 353);
    assert!(used >= 20, "{report}");
    assert!(report["spearman"].as_f64().unwrap().abs() <= 1.0);
}

#[test]
fn an_index_gives_the_exact_neighbours_of_a_small_file_and_refuses_other_vectors() {
    let dir = scratch("index");
    let vectors = write_family(&dir);
    let index = dir.join("family.hnsw");
    let o = embkit(&["index", "--vectors", s(&vectors), "--out", s(&index), "--json"]);
    assert_success(&o);
    assert_eq!(json_lines(&o)[0]["rows"], 7);
    for metric in ["cosine", "dot", "euclidean"] {
        let built = dir.join(format!("{metric}.hnsw"));
        let o =
            embkit(&["index", "--vectors", s(&vectors), "--out", s(&built), "--metric", metric]);
        assert_success(&o);
        let exact = embkit(&[
            "neighbors",
            "--vectors",
            s(&vectors),
            "--word",
            "king",
            "--metric",
            metric,
            "--threads",
            "2",
        ]);
        let approx = embkit(&[
            "neighbors",
            "--vectors",
            s(&vectors),
            "--word",
            "king",
            "--index",
            s(&built),
            "--ef",
            "16",
        ]);
        assert_success(&approx);
        // A graph over 7 rows reaches every row: the answers are exact.
        assert_eq!(stdout(&approx), stdout(&exact), "{metric}");
    }
    let o = embkit(&[
        "neighbors",
        "--vectors",
        s(&vectors),
        "--word",
        "king",
        "--index",
        s(&index),
        "--metric",
        "dot",
    ]);
    assert_error(&o, "was built for cosine");

    // Other values, another shape, a damaged file.
    let text = std::fs::read_to_string(&vectors).unwrap();
    let changed = dir.join("changed.txt");
    std::fs::write(&changed, text.replace("queen 1 1 1 0", "queen 1 1 1 0.5")).unwrap();
    let o =
        embkit(&["neighbors", "--vectors", s(&changed), "--word", "king", "--index", s(&index)]);
    assert_error(&o, "rebuild the index");
    let fewer = dir.join("fewer.txt");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&fewer, format!("6 4\n{}\n", lines[1..7].join("\n"))).unwrap();
    let o = embkit(&["neighbors", "--vectors", s(&fewer), "--word", "king", "--index", s(&index)]);
    assert_error(&o, "shape mismatch");
    let bytes = std::fs::read(&index).unwrap();
    let cut = dir.join("cut.hnsw");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let o = embkit(&["neighbors", "--vectors", s(&vectors), "--word", "king", "--index", s(&cut)]);
    assert_error(&o, "byte");
    let o = embkit(&["index", "--vectors", s(&vectors), "--out", s(&index), "--m", "1"]);
    assert_error(&o, "invalid m: must be 2 to 256, got 1");
    let o = embkit(&["neighbors", "--vectors", s(&vectors), "--word", "king", "--threads", "0"]);
    assert_eq!(o.status.code(), Some(2));
}
