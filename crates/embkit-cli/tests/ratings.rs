//! End-to-end tests of `embkit train --task ratings|classify`, `--config`
//! and `embkit evaluate`, on tiny generated data.

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

fn assert_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected a failure, got: {}", stdout(o));
    let err = stderr(o);
    assert!(err.contains("error"), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("embkit-cli-ratings-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Ratings of 40 users on 25 items from two hidden tastes, as `u.data`
/// (tab, timestamps, no header) or `ratings.csv` (commas, header); only the
/// pairs `k = user · 25 + item` that `keep` accepts.
fn write_ratings(path: &Path, csv: bool, keep: impl Fn(usize) -> bool) {
    let mut text = String::new();
    if csv {
        text.push_str("userId,movieId,rating,timestamp\n");
    }
    let mut t = 880_000_000u64;
    for u in 0..40usize {
        for i in 0..25usize {
            if !keep(u * 25 + i) {
                continue;
            }
            let likes = (u % 2 == 0) == (i % 2 == 0);
            let r = if likes { 4 + (u + i) % 2 } else { 1 + (u * i) % 2 };
            t += 7;
            let sep = if csv { "," } else { "\t" };
            text.push_str(&format!("u{u}{sep}m{i}{sep}{r}{sep}{t}\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn ratings_train_evaluate_and_export_round_trip() {
    let dir = scratch("round");
    let (train, test) = (dir.join("u.data"), dir.join("test.csv"));
    write_ratings(&train, false, |k| k % 7 != 0);
    write_ratings(&test, true, |k| k % 7 == 0);
    let model = dir.join("model");
    let o = embkit(&[
        "train",
        "--task",
        "ratings",
        "--data",
        s(&train),
        "--out",
        s(&model),
        "--epochs",
        "40",
        "--embedding-dim",
        "4",
        "--batch-size",
        "16",
        "--learning-rate",
        "0.01",
        "--quiet",
        "--json",
    ]);
    let summary = json(&o);
    assert_eq!(summary["task"], "ratings");
    assert_eq!((summary["users"].as_u64(), summary["items"].as_u64()), (Some(40), Some(25)));
    assert_eq!(summary["train_loss"].as_array().unwrap().len(), 40);
    assert!(summary["val_rmse"].as_f64().unwrap() < 0.9, "{summary}");
    for file in ["model.safetensors", "users.txt", "items.txt", "loss.png"] {
        assert!(model.join(file).exists(), "{file}");
    }

    // Held-out pairs in the other layout, by raw key.
    let report = json(&embkit(&["evaluate", "--model", s(&model), "--data", s(&test), "--json"]));
    assert_eq!(report["task"], "ratings");
    assert_eq!(report["ratings"], 143);
    assert_eq!(report["unknown_users"], 0);
    let rmse = report["rmse"].as_f64().unwrap();
    assert!(rmse < 1.0 && report["mae"].as_f64().unwrap() < rmse, "{report}");
    let o = embkit(&["evaluate", "--model", s(&model), "--data", s(&test)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("rmse            {rmse:.4}")), "{}", stdout(&o));

    // Unknown users and items are predicted from what is known.
    let cold = dir.join("cold.tsv");
    std::fs::write(&cold, "u1\tnew-movie\t3\nnew-user\tm1\t4\nu1\tm1\t5\n").unwrap();
    let report = json(&embkit(&["evaluate", "--model", s(&model), "--data", s(&cold), "--json"]));
    assert_eq!(
        (report["unknown_users"].as_u64(), report["unknown_items"].as_u64()),
        (Some(1), Some(1))
    );

    // predict labels texts: it says what to use instead.
    let o = embkit(&["predict", "--model", s(&model), "--data", s(&cold)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not label texts"), "{}", stderr(&o));

    // inspect knows the kind and its four tables.
    let info = json(&embkit(&["inspect", s(&model), "--json"]));
    assert_eq!(info["kind"], "matrix_factorization");
    assert_eq!((info["users"].as_u64(), info["items"].as_u64()), (Some(40), Some(25)), "{info}");
    let o = embkit(&["inspect", s(&model)]);
    assert!(stdout(&o).contains("item bias"), "{}", stdout(&o));

    // The item table (default) and the user table as vectors named by key.
    let items = dir.join("items.vec");
    let o = embkit(&["convert", s(&model), s(&items)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&items).unwrap();
    assert!(text.starts_with("25 4\nm1 "), "{text}");
    let users = dir.join("users.vec");
    let o = embkit(&["convert", s(&model), s(&users), "--table", "users"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&users).unwrap().starts_with("40 4\nu0 "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_toml_config_sets_defaults_and_flags_override_it() {
    let dir = scratch("config");
    let data = dir.join("ratings.csv");
    write_ratings(&data, true, |k| k % 3 != 0);
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        "task = \"ratings\"\nepochs = 2\nembedding_dim = 3\noptimizer = \"sgd\"\nlearning_rate = 0.05\nvalidation_split = 0.2\n",
    )
    .unwrap();
    let model = dir.join("m");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--config",
            s(&config),
            "--data",
            s(&data),
            "--out",
            s(&model),
            "--quiet",
            "--json",
        ];
        args.extend_from_slice(extra);
        embkit(&args)
    };
    let summary = json(&run(&[]));
    assert_eq!(summary["train_loss"].as_array().unwrap().len(), 2);
    assert_eq!(summary["validation_ratings"], 133);
    let summary = json(&run(&["--epochs", "3"]));
    assert_eq!(summary["train_loss"].as_array().unwrap().len(), 3);
    let saved = std::fs::read(model.join("model.safetensors")).unwrap();
    let saved = String::from_utf8_lossy(&saved);
    assert!(saved.contains("\\\"optimizer\\\":\\\"sgd\\\""), "the training config is saved");

    std::fs::write(&config, "task = \"ratings\"\nepoch = 2\n").unwrap();
    assert_error(&run(&[]), "unknown field `epoch`");
    std::fs::write(&config, "task = \"word2vec\"\nl2 = 0.1\n").unwrap();
    assert_error(&run(&[]), "l2 is not a setting of word2vec");
    std::fs::write(&config, "task = \"ratings\"\nl2 = -1.0\n").unwrap();
    assert_error(&run(&[]), "invalid l2: must be finite and at least 0, got -1");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_ratings_input_gets_clear_errors() {
    let dir = scratch("bad");
    let out = dir.join("m");
    let train = |file: &Path, extra: &[&str]| {
        let mut args =
            vec!["train", "--task", "ratings", "--quiet", "--data", s(file), "--out", s(&out)];
        args.extend_from_slice(extra);
        embkit(&args)
    };
    let bad = dir.join("bad.tsv");
    std::fs::write(&bad, "1\t2\t5\n1\t3\tgood\n2\t2\t1\n2\t3\t4\n").unwrap();
    assert_error(&train(&bad, &[]), "bad.tsv:2: expected a number in the rating column (3)");
    assert!(!out.join("model.safetensors").exists());
    let o = train(&bad, &["--skip-bad-rows", "--epochs", "1", "--validation-split", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped 1 bad rows"), "{}", stderr(&o));
    assert_error(
        &train(&bad, &["--sequence-length", "5"]),
        "sequence_length is a setting of the classify task",
    );
    assert_error(&train(&bad, &["--skip-bad-rows", "--optimizer", "lbfgs"]), "unknown optimizer");

    let o = embkit(&["train", "--task", "word2vec", "--data", s(&bad), "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("empty vocabulary"), "{}", stderr(&o));
    let o = embkit(&["train", "--task", "clusters", "--data", s(&bad), "--out", s(&out)]);
    assert!(stderr(&o).contains("the tasks are classify, ratings and word2vec"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn classify_stays_the_default_and_evaluates_with_macro_f1() {
    let dir = scratch("classify");
    let data = dir.join("texts.tsv");
    let mut text = String::new();
    for i in 0..60 {
        let (label, words) = match i % 3 {
            0 => ("sea", "whale ship wave salt"),
            1 => ("land", "horse hill farm grass"),
            _ => ("sky", "cloud bird wind star"),
        };
        text.push_str(&format!("{label}\t{words} {i}\n"));
    }
    std::fs::write(&data, text).unwrap();
    let model = dir.join("m");
    let summary = json(&embkit(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&model),
        "--epochs",
        "20",
        "--embedding-dim",
        "4",
        "--sequence-length",
        "5",
        "--learning-rate",
        "0.05",
        "--validation-split",
        "0",
        "--quiet",
        "--json",
    ]));
    assert_eq!(summary["task"], "classify");
    assert_eq!(summary["classes"], serde_json::json!(["land", "sea", "sky"]));
    let report = json(&embkit(&["evaluate", "--model", s(&model), "--data", s(&data), "--json"]));
    assert_eq!(report["task"], "classify");
    assert_eq!(report["texts"], 60);
    assert!(report["accuracy"].as_f64().unwrap() > 0.9, "{report}");
    assert!(report["macro_f1"].as_f64().unwrap() > 0.9, "{report}");
    let o = embkit(&["evaluate", "--model", s(&model), "--data", s(&data)]);
    assert!(stdout(&o).contains("macro_f1"), "{}", stdout(&o));
    assert_error(
        &embkit(&["train", "--data", s(&data), "--out", s(&model), "--l2", "0.1"]),
        "l2 is a setting of the ratings task",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ratings_stream_from_disk_with_a_shuffle_buffer() {
    let dir = scratch("stream");
    let (train, test) = (dir.join("u.data"), dir.join("test.csv"));
    write_ratings(&train, false, |k| k % 7 != 0);
    write_ratings(&test, true, |k| k % 7 == 0);
    let model = dir.join("model");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--task",
            "ratings",
            "--data",
            s(&train),
            "--out",
            s(&model),
            "--epochs",
            "40",
            "--embedding-dim",
            "4",
            "--batch-size",
            "16",
            "--learning-rate",
            "0.01",
            "--shuffle-buffer",
            "100",
            "--quiet",
            "--json",
        ];
        args.extend_from_slice(extra);
        embkit(&args)
    };
    // A hash sample of about 10 % held out, streamed too; it learns.
    let summary = json(&run(&[]));
    assert_eq!(summary["streamed"], true);
    let (n, held) = (summary["ratings"].as_u64().unwrap(), summary["validation_ratings"].as_u64());
    assert_eq!(n + held.unwrap(), 857);
    assert!((50..130).contains(&held.unwrap()), "{summary}");
    assert_eq!((summary["users"].as_u64(), summary["items"].as_u64()), (Some(40), Some(25)));
    assert!(summary["val_rmse"].as_f64().unwrap() < 0.9, "{summary}");
    // Seeded: the same run gives the same numbers.
    assert_eq!(json(&run(&[]))["val_loss"], summary["val_loss"]);
    // The buffer shuffles: a buffer of one (the file's order) trains
    // differently.
    let mut in_order = vec!["train", "--task", "ratings", "--data", s(&train), "--out", s(&model)];
    in_order.extend(["--epochs", "40", "--embedding-dim", "4", "--batch-size", "16"]);
    in_order.extend(["--learning-rate", "0.01", "--shuffle-buffer", "1", "--quiet", "--json"]);
    let ordered = json(&embkit(&in_order));
    assert_eq!(ordered["validation_ratings"], summary["validation_ratings"]);
    assert_ne!(ordered["val_loss"], summary["val_loss"]);
    // A validation file (other layout) streamed with the training keys;
    // the saved model is evaluated like an in-memory one.
    let summary = json(&run(&["--validation", s(&test), "--patience", "3"]));
    assert_eq!(
        (summary["ratings"].as_u64(), summary["validation_ratings"].as_u64()),
        (Some(857), Some(143))
    );
    let report = json(&embkit(&["evaluate", "--model", s(&model), "--data", s(&test), "--json"]));
    let rmse = report["rmse"].as_f64().unwrap();
    assert!((rmse - summary["val_rmse"].as_f64().unwrap()).abs() < 1e-4, "{report} {summary}");
    // Bad settings are errors that name the flag.
    let zero = ["train", "--task", "ratings", "--data", s(&train), "--out", s(&model)];
    let o = embkit(&[&zero[..], &["--shuffle-buffer", "0"]].concat());
    assert_error(&o, "--shuffle-buffer: invalid buffer_size: must be at least 1, got 0");
    assert_error(&run(&["--validation-split", "1"]), "--validation-split must be in [0, 1), got 1");
}
