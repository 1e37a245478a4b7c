//! End-to-end tests of the `embkit` binary: what a user types, what they
//! see, and the errors bad input gets.

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
    let dir = std::env::temp_dir().join(format!("embkit-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two classes that differ in their words.
fn write_tsv(path: &Path, n: usize) {
    let mut text = String::from("label\ttext\n");
    for i in 0..n {
        if i % 2 == 0 {
            text.push_str(&format!("sea\tthe whale swam in the deep sea near ship {i}\n"));
        } else {
            text.push_str(&format!("land\tthe horse ran over the green hill near farm {i}\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

/// Asserts a failed run: exit code 1, one `error: ` message with `needle`.
fn assert_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stdout: {}\nstderr: {}", stdout(o), stderr(o));
    let err = stderr(o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn every_command_has_help() {
    for cmd in [&[][..], &["demo"], &["train"], &["predict"], &["neighbors"], &["inspect"]] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let o = embkit(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage"), "{args:?}");
    }
}

#[test]
fn demo_trains_writes_its_files_and_repeats_itself() {
    let dir = scratch("demo");
    let run = |out: &Path| {
        embkit(&["demo", "--json", "--quiet", "--epochs", "3", "--out", out.to_str().unwrap()])
    };
    let first = run(&dir.join("a"));
    assert!(first.status.success(), "{}", stderr(&first));
    let lines: Vec<serde_json::Value> =
        stdout(&first).lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect();
    assert_eq!(lines[0]["event"], "seed_example");
    assert_eq!(lines[0]["ids"], serde_json::json!([0, 1, 2, 1, 3, 0, 1, 2, 1]));
    assert_eq!(lines[0]["gather_equals_one_hot_product"], true);
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    let losses: Vec<f64> =
        summary["train_loss"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(losses.len(), 3);
    assert!(losses[2] < losses[0], "{losses:?}");
    assert!(summary["val_accuracy"].as_f64().unwrap() > 0.6, "{summary}");
    assert!(dir.join("a/model/model.safetensors").exists());
    assert!(dir.join("a/model/vocab.txt").exists());
    let png = std::fs::read(dir.join("a/loss.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    // Seeded: a second run prints the same results (paths aside).
    let second = run(&dir.join("b"));
    let strip = |o: &Output| {
        stdout(o)
            .replace(dir.join("a").to_str().unwrap(), "")
            .replace(dir.join("b").to_str().unwrap(), "")
    };
    assert_eq!(strip(&first), strip(&second));

    // The saved model answers the other commands.
    let model = dir.join("a/model");
    let o =
        embkit(&["neighbors", "--model", model.to_str().unwrap(), "--word", "Whale", "-k", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3);
    let o = embkit(&["inspect", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("embedding  10000 x 16"), "{}", stdout(&o));
    assert!(stdout(&o).contains("epoch   3"), "{}", stdout(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_predict_neighbors_inspect_round_trip() {
    let dir = scratch("train");
    let data = dir.join("train.tsv");
    write_tsv(&data, 200);
    let model = dir.join("model");
    let o = embkit(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--epochs",
        "5",
        "--embedding-dim",
        "4",
        "--sequence-length",
        "10",
        "--quiet",
        "--learning-rate",
        "0.01",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(summary["classes"], serde_json::json!(["land", "sea"]));
    assert!(summary["val_accuracy"].as_f64().unwrap() > 0.9, "{summary}");
    assert!(model.join("loss.png").exists());

    let texts = dir.join("texts.txt");
    std::fs::write(&texts, "sea\tthe whale swam in the deep sea near ship 7\nland\tthe horse ran over the green hill near farm 8\n").unwrap();
    let o =
        embkit(&["predict", "--model", model.to_str().unwrap(), "--data", texts.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    let labels: Vec<&str> =
        printed.lines().map(|l| l.split('\t').next().unwrap()).collect::<Vec<_>>();
    assert_eq!(labels, vec!["sea", "land"]);
    assert!(stderr(&o).contains("accuracy 1.0000 on 2 labelled texts"), "{}", stderr(&o));

    let o = embkit(&["neighbors", "--model", model.to_str().unwrap(), "--word", "zebra"]);
    assert_error(&o, "\"zebra\" is not in the model's vocabulary");

    let o = embkit(&["inspect", model.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let info: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(info["history"]["epochs"].as_array().unwrap().len(), 5);

    // A truncated model file is a clear error.
    let file = model.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let o =
        embkit(&["predict", "--model", model.to_str().unwrap(), "--data", texts.to_str().unwrap()]);
    assert_error(&o, "not a model file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_sorted_by_label_is_validated_on_every_class() {
    // 160 texts of one class, then 40 of the other: the file's last 20%
    // (Keras's validation split) would leave one class to train on.
    let dir = scratch("sorted");
    let data = dir.join("sorted.tsv");
    let mut text = String::new();
    for i in 0..200 {
        if i < 160 {
            text.push_str(&format!("sea\tthe whale swam in the deep sea near ship {i}\n"));
        } else {
            text.push_str(&format!("land\tthe horse ran over the green hill near farm {i}\n"));
        }
    }
    std::fs::write(&data, text).unwrap();
    for arch in ["sequence", "bag"] {
        let model = dir.join(arch);
        let o = embkit(&[
            "train",
            "--architecture",
            arch,
            "--data",
            data.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--epochs",
            "5",
            "--learning-rate",
            "0.01",
            "--quiet",
            "--json",
        ]);
        assert!(o.status.success(), "{arch}: {}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        // 20% of each class: 32 + 8 held out.
        assert_eq!(summary["train_texts"], 160, "{arch}: {summary}");
        assert_eq!(summary["validation_texts"], 40, "{arch}: {summary}");
        assert!(summary["val_accuracy"].as_f64().unwrap() > 0.9, "{arch}: {summary}");
    }
    let o = embkit(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.join("text").to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("on 160 texts (40 held out for validation)"), "{}", stdout(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_training_input_gets_clear_errors() {
    let dir = scratch("bad");
    let out = dir.join("m");
    let train = |file: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--quiet",
            "--data",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        embkit(&args)
    };
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };

    let empty = write("empty.tsv", "");
    assert_error(&train(&empty, &[]), "empty");
    let no_tab = write("no_tab.tsv", "sea\tthe sea\nthis line has no tab\n");
    assert_error(&train(&no_tab, &[]), "no_tab.tsv:2:");
    let no_label = write("no_label.tsv", "sea\tthe sea\n\tno label here\n");
    assert_error(&train(&no_label, &[]), "no_label.tsv:2:");
    let no_text = write("no_text.tsv", "sea\tthe sea\nland\t  \n");
    assert_error(&train(&no_text, &[]), "no_text.tsv:2:");
    let one_class = write("one.tsv", "sea\tthe sea\nsea\tthe ocean\n");
    assert_error(&train(&one_class, &[]), "at least two classes");

    let good = dir.join("good.tsv");
    write_tsv(&good, 40);
    assert_error(
        &train(&good, &["--embedding-dim", "0"]),
        "embedding_dim: must be at least 1, got 0",
    );
    assert_error(&train(&good, &["--batch-size", "0"]), "batch_size: must be at least 1, got 0");
    assert_error(&train(&good, &["--validation-split", "1.5"]), "validation");
    let missing = dir.join("missing.tsv");
    assert_error(&train(&missing, &[]), "missing.tsv");
    // Nothing was written by the failed runs.
    assert!(!out.join("model.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_model_names_the_path() {
    let o = embkit(&["inspect", "/nonexistent/embkit-model"]);
    assert_error(&o, "/nonexistent/embkit-model");
}
