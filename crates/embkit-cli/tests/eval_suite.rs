//! End-to-end tests of `embkit train --task word2vec`, `train --task
//! classify --architecture bag` with `evaluate`, and `embkit eval-suite` on
//! a tiny fake data folder built here.

use std::fmt::Write as _;
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

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("embkit-cli-suite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Two topics of words, `n` lines of `len` words each.
fn corpus(n: usize, len: usize) -> String {
    let a = ["red", "green", "blue", "yellow", "purple"];
    let b = ["one", "two", "three", "four", "five"];
    let mut text = String::new();
    for i in 0..n {
        let words = if i % 2 == 0 { &a } else { &b };
        let line: Vec<&str> = (0..len).map(|k| words[(i * 7 + k * 3) % 5]).collect();
        let _ = writeln!(text, "{}", line.join(" "));
    }
    text
}

/// `label<TAB>text` lines: "good"/"bad" words decide the label; "not"
/// before them flips it, which only bigrams see.
fn labelled(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let (label, words) = match i % 4 {
            0 => ("pos", "a good film very good"),
            1 => ("neg", "a bad film very bad"),
            2 => ("pos", "the plot was good and fun"),
            _ => ("neg", "the plot was bad and dull"),
        };
        let _ = writeln!(text, "{label}\t{words}");
    }
    text
}

#[test]
fn word2vec_writes_vectors_and_config() {
    let dir = scratch("w2v");
    let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
    std::fs::write(&a, corpus(40, 12)).unwrap();
    std::fs::write(&b, corpus(40, 12)).unwrap();
    let out = dir.join("vectors");
    let o = embkit(&[
        "train",
        "--task",
        "word2vec",
        "--data",
        s(&a),
        s(&b),
        "--out",
        s(&out),
        "--dim",
        "8",
        "--epochs",
        "2",
        "--min-count",
        "1",
        "--window",
        "2",
        "--negative",
        "3",
        "--sample",
        "0",
        "--threads",
        "2",
        "--seed",
        "3",
        "--json",
        "-q",
    ]);
    let summary = json(&o);
    assert_eq!(summary["task"], "word2vec");
    assert_eq!(summary["words"], 10);
    assert_eq!(summary["sentences"], 80);
    assert!(out.join("vectors.bin").is_file());
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("word2vec.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["embedding_dim"], 8);
    assert_eq!(config["tokenize"], "whitespace");

    // The vectors answer queries; another format and CBOW work too.
    let o = embkit(&[
        "neighbors",
        "--vectors",
        s(&out.join("vectors.bin")),
        "--word",
        "red",
        "-k",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out2 = dir.join("cbow");
    let o = embkit(&[
        "train",
        "--task",
        "word2vec",
        "--data",
        s(&a),
        "--out",
        s(&out2),
        "--dim",
        "4",
        "--epochs",
        "1",
        "--min-count",
        "1",
        "--cbow",
        "--format",
        "word2vec",
        "--tokenize",
        "letters",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("CBOW"), "{}", stdout(&o));
    assert!(std::fs::read_to_string(out2.join("vectors.txt")).unwrap().starts_with("10 4\n"));
    let o = embkit(&["inspect", s(&out2)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("word2vec CBOW"), "{}", stdout(&o));
}

/// The corpus is read in two lazy passes: a line that is not UTF-8 ends
/// training with the file and line, or with `--skip-bad-rows` is skipped
/// and reported once; a missing second file is an error, not a model of
/// the first.
#[test]
fn word2vec_corpus_errors_name_the_file_and_line() {
    let dir = scratch("w2v-bad");
    let (good, bad) = (dir.join("good.txt"), dir.join("bad.txt"));
    std::fs::write(&good, corpus(20, 12)).unwrap();
    let mut bytes = corpus(3, 12).into_bytes();
    bytes.extend_from_slice(b"red \xff green\n");
    bytes.extend_from_slice(corpus(3, 12).as_bytes());
    std::fs::write(&bad, bytes).unwrap();
    let out = dir.join("out");
    let run = |files: &[&std::path::Path], extra: &[&str]| {
        let mut args = vec!["train", "--task", "word2vec", "--out", s(&out), "--min-count", "1"];
        args.extend(["--dim", "4", "--epochs", "1", "-q", "--data"]);
        args.extend(files.iter().map(|f| s(f)));
        args.extend_from_slice(extra);
        embkit(&args)
    };
    let o = run(&[&good, &bad], &[]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("bad.txt:4:"), "{}", stderr(&o));
    let o = run(&[&good, &bad], &["--skip-bad-rows", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches("skipped 1 bad rows").count(), 1, "{}", stderr(&o));
    assert_eq!(json(&o)["sentences"], 26);
    let o = run(&[&good, &dir.join("missing.txt")], &[]);
    assert!(!o.status.success() && stderr(&o).contains("missing.txt"), "{}", stderr(&o));
    // The read error is the message, not what a cut corpus would count.
    let missing = dir.join("missing.txt");
    for files in [&[missing.as_path(), &good][..], &[bad.as_path()][..]] {
        let o = run(files, &[]);
        let err = stderr(&o);
        assert!(!o.status.success() && (err.contains("missing.txt") || err.contains("bad.txt:4:")));
        assert!(!err.contains("no words") && !err.contains("vocabulary"), "{err}");
    }
    // Something that cannot be read twice (a pipe, a folder) is refused.
    let o = run(&[&good, &dir], &[]);
    assert!(stderr(&o).contains("is not a regular file: word2vec reads its files twice"));
}

/// The folder `train --task word2vec` writes is a model: `inspect` shows
/// it, `convert` exports its word vectors (the same rows as the vectors
/// file), `neighbors --model` queries it.
#[test]
fn word2vec_writes_a_model_that_inspect_convert_and_neighbors_open() {
    let dir = scratch("w2v-model");
    let data = dir.join("a.txt");
    std::fs::write(&data, corpus(40, 12)).unwrap();
    let out = dir.join("model");
    let o = embkit(&[
        "train",
        "--task",
        "word2vec",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--dim",
        "8",
        "--epochs",
        "2",
        "--min-count",
        "1",
        "--threads",
        "2",
        "--json",
        "-q",
    ]);
    let summary = json(&o);
    assert_eq!(summary["model"], s(&out));
    for file in ["model.safetensors", "vocab.txt", "vectors.bin", "word2vec.json"] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }

    let info = json(&embkit(&["inspect", s(&out), "--json"]));
    assert_eq!(info["kind"], "skip_gram");
    assert_eq!(info["vocab_size"], 10);
    assert_eq!(info["corpus_words"], 40 * 12);
    assert_eq!(info["tables"]["input"], serde_json::json!([10, 8]));
    assert_eq!(info["tables"]["output"], serde_json::json!([10, 8]));
    assert_eq!(info["parameters"], 2 * 10 * 8);
    assert_eq!(info["config"]["embedding_dim"], 8);
    assert_eq!(info["config"]["architecture"], "skip_gram");
    assert_eq!(info["report"]["epochs"], 2);
    assert_eq!(info["report"]["words"], 2 * 40 * 12);
    assert_eq!(info["report"]["threads"], summary["threads"]);
    assert!(info["words_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(info["metadata"]["tokenize"], "whitespace");
    let o = embkit(&["inspect", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in ["word2vec skip-gram", "vocabulary 10 words", "input      10 x 8", "words/s"] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }

    // The model's input table is what the vectors file holds.
    let from_model = dir.join("from-model.txt");
    let from_file = dir.join("from-file.txt");
    let info = json(&embkit(&["convert", s(&out), s(&from_model), "--json"]));
    assert_eq!((&info["from"], &info["rows"]), (&Value::from("model"), &Value::from(10)));
    json(&embkit(&["convert", s(&out.join("vectors.bin")), s(&from_file), "--json"]));
    let model_text = std::fs::read_to_string(&from_model).unwrap();
    assert!(model_text.starts_with("10 8\n"), "{model_text}");
    assert_eq!(model_text, std::fs::read_to_string(&from_file).unwrap());
    let output = dir.join("output.txt");
    json(&embkit(&["convert", s(&out), s(&output), "--table", "output", "--json"]));
    assert_ne!(std::fs::read_to_string(&output).unwrap(), model_text);

    let by_model = embkit(&["neighbors", "--model", s(&out), "--word", "red", "-k", "3"]);
    let by_file = embkit(&[
        "neighbors",
        "--vectors",
        s(&out.join("vectors.bin")),
        "--word",
        "red",
        "-k",
        "3",
    ]);
    assert!(by_model.status.success(), "{}", stderr(&by_model));
    assert_eq!(stdout(&by_model), stdout(&by_file));
    assert_eq!(stdout(&by_model).lines().count(), 3);
}

#[test]
fn word2vec_errors_are_readable() {
    let dir = scratch("w2v-errors");
    let a = dir.join("a.txt");
    std::fs::write(&a, corpus(4, 5)).unwrap();
    let out = dir.join("out");
    let o = embkit(&[
        "train",
        "--task",
        "word2vec",
        "--data",
        s(&a),
        "--out",
        s(&out),
        "--window",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("error: word2vec settings: invalid window"), "{}", stderr(&o));
    let o = embkit(&[
        "train",
        "--task",
        "word2vec",
        "--data",
        s(&a),
        "--out",
        s(&out),
        "--batch-size",
        "4",
    ]);
    assert!(stderr(&o).contains("batch_size is not a setting of word2vec"), "{}", stderr(&o));
    let o = embkit(&["train", "--task", "ratings", "--data", s(&a), s(&a), "--out", s(&out)]);
    assert!(stderr(&o).contains("--data takes one file for --task ratings"), "{}", stderr(&o));
    let o = embkit(&["train", "--data", s(&a), "--out", s(&out), "--architecture", "cnn"]);
    assert!(stderr(&o).contains("unknown architecture \"cnn\""), "{}", stderr(&o));
}

#[test]
fn bag_classifier_trains_saves_and_evaluates() {
    let dir = scratch("bag");
    let data = dir.join("train.tsv");
    std::fs::write(&data, labelled(80)).unwrap();
    let model = dir.join("model");
    let o = embkit(&[
        "train",
        "--architecture",
        "bag",
        "--data",
        s(&data),
        "--out",
        s(&model),
        "--epochs",
        "15",
        "--embedding-dim",
        "8",
        "--bigram-buckets",
        "100",
        "--validation-split",
        "0.25",
        "--json",
        "-q",
    ]);
    let summary = json(&o);
    assert_eq!(summary["architecture"], "bag");
    assert_eq!(summary["bigram_buckets"], 100);
    assert!(summary["val_accuracy"].as_f64().unwrap() > 0.9, "{summary}");
    let o = embkit(&["evaluate", "--model", s(&model), "--data", s(&data), "--json"]);
    let result = json(&o);
    assert_eq!(result["architecture"], "bag");
    assert_eq!(result["accuracy"], 1.0);
    assert_eq!(result["texts"], 80);
    // predict labels texts with it, and scores labelled lines.
    let texts = dir.join("texts.txt");
    std::fs::write(&texts, "a good film very good\nneg\ta bad film very bad\n").unwrap();
    let o = embkit(&["predict", "--model", s(&model), "--data", s(&texts)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    let lines: Vec<&str> = printed.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(lines, ["pos", "neg"], "{}", stdout(&o));
    assert!(stderr(&o).contains("accuracy 1.0000 on 1 labelled texts"), "{}", stderr(&o));
    // inspect knows the kind, its sizes and the training history.
    let o = embkit(&["inspect", s(&model), "--json"]);
    let info = json(&o);
    assert_eq!(info["kind"], "bag_classifier");
    assert!(info["parameters"].as_u64().unwrap() > 0, "{info}");
    assert!(info["history"]["epochs"].as_array().is_some_and(|e| e.len() == 15), "{info}");
    let o = embkit(&["inspect", s(&model)]);
    assert!(stdout(&o).contains("bag classifier (fastText-style)"), "{}", stdout(&o));
    // The word rows export as vectors.
    let vectors = dir.join("words.txt");
    let o = embkit(&["convert", s(&model), s(&vectors), "--lenient"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&vectors).unwrap();
    assert!(text.lines().any(|l| l.starts_with("good ")), "{text}");
}

#[test]
fn eval_suite_runs_what_it_finds_and_skips_the_rest() {
    let dir = scratch("suite");
    let data = dir.join("data");
    let r8 = data.join("reuters21578-r8");
    std::fs::create_dir_all(&r8).unwrap();
    std::fs::write(r8.join("train.tsv"), labelled(40)).unwrap();
    std::fs::write(r8.join("test.tsv"), labelled(12)).unwrap();
    let pol = data.join("pang-lee-sentence-polarity-4k");
    std::fs::create_dir_all(&pol).unwrap();
    std::fs::write(pol.join("sentences.tsv"), labelled(30)).unwrap();
    let out = dir.join("out");
    let o = embkit(&["eval-suite", "--data", s(&data), "--quick", "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("MovieLens-100k: skipped: not found"), "{err}");
    assert!(err.contains("Reuters-21578 R8: found, running"), "{err}");
    let md = std::fs::read_to_string(out.join("EVALUATION.md")).unwrap();
    assert!(md.contains("QUICK MODE"), "{md}");
    assert!(md.contains("| Reuters R8 |"), "{md}");
    assert!(md.contains("TF-IDF + linear SVM 0.977"), "{md}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("evaluation/eval-suite.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["quick"], true);
    let statuses: Vec<&str> = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["skipped", "ran", "ran", "skipped"]);

    // A folder that is not there is an error, not a panic.
    let o = embkit(&["eval-suite", "--data", s(&dir.join("nope")), "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}

#[test]
fn lr_decay_is_saved_with_the_model_and_bad_names_are_refused() {
    let dir = scratch("decay");
    let data = dir.join("train.tsv");
    std::fs::write(&data, labelled(40)).unwrap();
    let train = |model: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            s(&data),
            "--out",
            s(model),
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "-q",
        ];
        args.extend_from_slice(extra);
        embkit(&args)
    };
    // The bag decays linearly by default: 40 texts less 20 % validation =
    // 32, 4 steps an epoch, 12 steps from 0.01 to 0.
    let model = dir.join("bag");
    let o = train(&model, &["--architecture", "bag"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info = json(&embkit(&["inspect", s(&model), "--json"]));
    let schedule = &info["train_config"]["learning_rate_schedule"];
    assert_eq!(schedule["schedule"], "polynomial_decay", "{info}");
    assert_eq!(schedule["decay_steps"], 12, "{info}");
    assert_eq!(schedule["end_learning_rate"], 0.0, "{info}");
    // The sequence classifier keeps a constant rate unless told.
    let model = dir.join("seq");
    let o = train(&model, &["--lr-decay", "cosine"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info = json(&embkit(&["inspect", s(&model), "--json"]));
    assert_eq!(info["train_config"]["learning_rate_schedule"]["schedule"], "cosine_decay");
    let o = train(&dir.join("bad"), &["--lr-decay", "step"]);
    assert!(
        stderr(&o)
            .contains("unknown learning-rate decay \"step\": expected constant, linear or cosine"),
        "{}",
        stderr(&o)
    );
    let o = embkit(&[
        "train",
        "--task",
        "word2vec",
        "--data",
        s(&data),
        "--out",
        s(&dir.join("w2v")),
        "--lr-decay",
        "linear",
    ]);
    assert!(stderr(&o).contains("lr_decay is not a setting of word2vec"), "{}", stderr(&o));
}

#[test]
fn keras_tf_idf_bags_train_from_the_command_line() {
    let dir = scratch("tfidf");
    let data = dir.join("train.tsv");
    std::fs::write(&data, labelled(60)).unwrap();
    let model = dir.join("model");
    let keras = [
        "--architecture",
        "bag",
        "--bag-weights",
        "tf-idf",
        "--ngrams",
        "2",
        "--bigram-buckets",
        "0",
        "--hidden-activation",
        "relu",
        "--dropout",
        "0.5",
        "--dim",
        "8",
        "--optimizer",
        "rmsprop",
        "--epochs",
        "60",
    ];
    let mut args = vec!["train", "--data", s(&data), "--out", s(&model), "-q", "--json"];
    args.extend_from_slice(&keras);
    let summary = json(&embkit(&args));
    assert!(summary["val_accuracy"].as_f64().is_some(), "{summary}");
    let info = json(&embkit(&["inspect", s(&model), "--json"]));
    assert_eq!(info["config"]["weighting"], "tf_idf", "{info}");
    assert_eq!(info["config"]["hidden_activation"], "relu", "{info}");
    assert_eq!(info["config"]["hidden_bias"], true, "{info}");
    assert_eq!(info["train_config"]["optimizer"]["optimizer"], "rmsprop", "{info}");
    // RMSprop without --learning-rate starts at Keras's default, 0.001.
    let rate = info["train_config"]["optimizer"]["learning_rate"].as_f64().unwrap();
    assert!((rate - 0.001).abs() < 1e-9, "{info}");
    assert_eq!(info["config"]["bigram_buckets"], 0, "{info}");
    let o = embkit(&["evaluate", "--model", s(&model), "--data", s(&data), "--json"]);
    let report = json(&o);
    assert!(report["accuracy"].as_f64().unwrap() > 0.5, "{report}");
    // Bad values and other tasks' flags are refused with their names.
    let bad = |extra: &[&str], needle: &str| {
        let mut args = vec!["train", "--data", s(&data), "--out", s(&model), "-q"];
        args.extend_from_slice(extra);
        let o = embkit(&args);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{}", stderr(&o));
    };
    bad(&["--architecture", "bag", "--bag-weights", "bm25"], "expected mean, tf-idf or tf-idf-l2");
    bad(&["--architecture", "bag", "--hidden-activation", "gelu"], "expected linear, relu");
    bad(
        &["--architecture", "bag", "--optimizer", "lbfgs"],
        "expected adam, rmsprop, sgd or adagrad",
    );
    bad(&["--optimizer", "rmsprop"], "the sequence classifier trains with adam only");
    bad(&["--architecture", "bag", "--dropout", "1"], "dropout: must be in [0, 1), got 1");
    bad(&["--dropout", "0.5"], "dropout is not a setting of classify with the sequence");
    bad(&["--architecture", "bag", "--ngrams", "0"], "--ngrams must be at least 1, got 0");
    bad(&["--architecture", "bag", "--ngrams", "2"], "give --bigram-buckets 0");
    bad(&["--task", "ratings", "--ngrams", "2"], "ngrams is not a setting of ratings");
}

#[test]
fn tf_idf_logistic_bags_train_from_the_command_line() {
    let dir = scratch("tfidfl2");
    let data = dir.join("train.tsv");
    std::fs::write(&data, labelled(60)).unwrap();
    let model = dir.join("model");
    let args = [
        "train",
        "--data",
        s(&data),
        "--out",
        s(&model),
        "-q",
        "--json",
        "--architecture",
        "bag",
        "--bag-weights",
        "tf-idf-l2",
        "--ngrams",
        "2",
        "--bigram-buckets",
        "0",
        "--rows-are-logits",
    ];
    let summary = json(&embkit(&args));
    assert!(summary["val_accuracy"].as_f64().is_some(), "{summary}");
    let info = json(&embkit(&["inspect", s(&model), "--json"]));
    assert_eq!(info["config"]["weighting"], "tf_idf_l2", "{info}");
    assert_eq!(info["config"]["rows_are_logits"], true, "{info}");
    let classes = info["config"]["num_classes"].clone();
    assert_eq!(info["config"]["embedding_dim"], classes, "{info}");
    let o = embkit(&["evaluate", "--model", s(&model), "--data", s(&data), "--json"]);
    assert!(json(&o)["accuracy"].as_f64().unwrap() > 0.5, "{}", stdout(&o));
    let mut with_dim = args[..args.len()].to_vec();
    with_dim.extend(["--embedding-dim", "8"]);
    let o = embkit(&with_dim);
    assert!(
        !o.status.success() && stderr(&o).contains("leave out --embedding-dim"),
        "{}",
        stderr(&o)
    );
    let o = embkit(&["train", "--data", s(&data), "--out", s(&model), "-q", "--rows-are-logits"]);
    assert!(
        stderr(&o).contains("rows_are_logits is not a setting of classify with the sequence"),
        "{}",
        stderr(&o)
    );
}
