//! Integration tests: interaction logs, corpora, splits, streaming batches,
//! and the matrix factorisation (gradient, training, saving, vectors).

use std::io::Write;
use std::path::PathBuf;

use embkit::data::{
    k_fold, leave_last_out, ratio_split, Corpus, DataOptions, Delimiter, Header, Interactions,
    KeyIndex, LabelledTexts, ShuffledBatches, UNKNOWN_ID,
};
use embkit::format::{
    ModelKind, ReadOptions, SavedMatrixFactorization, SavedModel, VectorFormat, Vectors,
};
use embkit::model::{MatrixFactorization, MatrixFactorizationConfig};
use embkit::{Dataset, Error, Loss, Model, NoObserver};
use ndarray::{array, Array2};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ratings").join(name)
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("embkit-it-ratings-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(text: &str, options: &DataOptions) -> embkit::Result<Interactions> {
    Interactions::from_reader(text.as_bytes(), "mem.tsv", options).map(|(d, _)| d)
}

fn bad_row(err: Error) -> (usize, String) {
    match &err {
        Error::BadRow { line, path, .. } => {
            assert_eq!(path.to_str(), Some("mem.tsv"));
            (*line, err.to_string())
        }
        other => panic!("expected BadRow, got {other:?}"),
    }
}

#[test]
fn movielens_u_data_and_ratings_csv_read_the_same() {
    let (tsv, _) = Interactions::read(fixture("u.data"), &DataOptions::new()).unwrap();
    let (csv, _) = Interactions::read(fixture("ratings.csv"), &DataOptions::new()).unwrap();
    assert_eq!(tsv.len(), 12);
    assert_eq!(tsv, csv);
    assert_eq!(tsv.user_index().keys()[..3], ["196", "186", "22"]);
    assert_eq!(tsv.users()[..4], [0, 1, 2, 0]);
    assert_eq!(tsv.timestamps().unwrap()[0], 881250949);
    assert_eq!(tsv.rating_range(), Some((1.0, 5.0)));
    assert_eq!(tsv.ids().shape(), [12, 2]);
    assert_eq!(tsv.targets().shape(), [12, 1]);
}

#[test]
fn gzip_files_are_read_transparently() {
    let dir = scratch("gz");
    let plain = std::fs::read(fixture("u.data")).unwrap();
    // Any name: gzip is recognised by its first bytes.
    let path = dir.join("u.data.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let (from_gz, _) = Interactions::read(&path, &DataOptions::new()).unwrap();
    let (from_plain, _) = Interactions::read(fixture("u.data"), &DataOptions::new()).unwrap();
    assert_eq!(from_gz, from_plain);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"label\ttext\npos\tgood film\nneg\tdull\n").unwrap();
    let path = dir.join("texts.tsv.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    assert_eq!(LabelledTexts::read_tsv(&path).unwrap().labels(), ["pos", "neg"]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn header_columns_are_found_by_name() {
    let data =
        read("timestamp,rating,movieId,userId\n10,4.5,m1,u1\n", &DataOptions::new()).unwrap();
    assert_eq!(data.user_index().key(0), Some("u1"));
    assert_eq!(data.item_index().key(0), Some("m1"));
    assert_eq!(data.ratings(), [4.5]);
    assert_eq!(data.timestamps(), Some(&[10][..]));
    // Header forced off: a first line that is not a number is a bad row.
    let err = read("user item rating\n1 2 3\n", &DataOptions::new().with_header(Header::Absent));
    assert_eq!(bad_row(err.unwrap_err()).0, 1);
}

#[test]
fn delimiters_are_detected_or_named() {
    for text in ["1\t2\t3\n", "1,2,3\n", "1::2::3\n", "1 2   3\n"] {
        assert_eq!(read(text, &DataOptions::new()).unwrap().ratings(), [3.0], "{text:?}");
    }
    let comma = DataOptions::new().with_delimiter(Delimiter::Comma);
    let err = read("1\t2\t3\n", &comma).unwrap_err();
    let (line, msg) = bad_row(err);
    assert_eq!(line, 1);
    assert!(msg.contains("expected 3 fields separated by comma"), "{msg}");
}

#[test]
fn bad_rows_name_file_line_and_expectation() {
    let text = "1\t2\t3\t100\n\n1\t3\t4\n";
    let (line, msg) = bad_row(read(text, &DataOptions::new()).unwrap_err());
    assert_eq!(line, 3);
    assert_eq!(
        msg,
        "mem.tsv:3: expected 4 fields separated by tab (`user item rating timestamp`), found 3"
    );
    let (_, msg) = bad_row(read("1\t2\t3\t1.5\n", &DataOptions::new()).unwrap_err());
    assert!(msg.contains("expected an integer in the timestamp column (4)"), "{msg}");
    let (_, msg) = bad_row(read("1\t2\tNaN\n", &DataOptions::new()).unwrap_err());
    assert!(msg.contains("expected a number in the rating column (3)"), "{msg}");
    let (_, msg) = bad_row(read("1\t\t3\n", &DataOptions::new()).unwrap_err());
    assert!(msg.contains("empty item key"), "{msg}");
    let err = Interactions::from_reader(&b"1\t2\t\xff\n"[..], "mem.tsv", &DataOptions::new());
    assert!(bad_row(err.unwrap_err()).1.contains("not valid UTF-8"));
}

#[test]
fn skip_bad_rows_counts_and_reports_them() {
    let text = "u\ti\t5\nu\ti\tfive\n\nv\ti\nv\tj\t1\n";
    let options = DataOptions::new().with_skip_bad_rows(true);
    let (data, report) = Interactions::from_reader(text.as_bytes(), "mem.tsv", &options).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!((report.rows, report.skipped), (2, 2));
    let lines: Vec<usize> = report
        .problems
        .iter()
        .map(|p| match p {
            Error::BadRow { line, .. } => *line,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lines, [2, 4]);
    // Nothing left: an empty-data error that says what was skipped.
    let err = Interactions::from_reader("a\tb\tc\nx\ty\tz\n".as_bytes(), "mem.tsv", &options)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "empty data in mem.tsv: no `user item rating` rows after skipping 1 bad rows"
    );
}

#[test]
fn labelled_texts_skip_bad_rows_and_accept_any_number_of_classes() {
    let text = "a\tone\nno tab\nb\ttwo\nc\tthree\n";
    let options = DataOptions::new().with_skip_bad_rows(true);
    let (data, report) =
        LabelledTexts::from_rows(LabelledTexts::rows_from_reader(text.as_bytes(), "t", &options))
            .unwrap();
    assert_eq!(data.class_names(), ["a", "b", "c"]);
    assert_eq!(report.skipped, 1);
    assert_eq!(data.subset(&[2, 0]).labels(), ["c", "a"]);
}

#[test]
fn corpora_stream_line_by_line() {
    let text = "first sentence\n\n second  \n";
    let rows = Corpus::rows_from_reader(text.as_bytes(), "c.txt", &DataOptions::new());
    let lines: Vec<String> = rows.collect::<embkit::Result<_>>().unwrap();
    assert_eq!(lines, ["first sentence", "second"]);
    assert!(Corpus::from_reader("\n \n".as_bytes(), "c.txt", &DataOptions::new()).is_err());
}

#[test]
fn unknown_keys_get_the_unknown_id_against_fixed_indexes() {
    let users = KeyIndex::from_keys(vec!["a".into(), "b".into()]).unwrap();
    let items = KeyIndex::from_keys(vec!["x".into()]).unwrap();
    let rows = Interactions::rows_from_reader(
        "a\tx\t1\nc\tx\t2\nb\ty\t3\n".as_bytes(),
        "t",
        &DataOptions::new(),
    );
    let (data, _) = Interactions::from_rows_with_keys(rows, users, items).unwrap();
    assert_eq!(data.users(), [0, UNKNOWN_ID, 1]);
    assert_eq!(data.items(), [0, 0, UNKNOWN_ID]);
    assert_eq!(data.unknown(), 2);
    assert!(KeyIndex::from_keys(vec!["a".into(), "a".into()]).is_err());
}

#[test]
fn splits_are_deterministic_and_partition_the_data() {
    let n = 103;
    for seed in [0, 1] {
        let s = ratio_split(n, 0.2, seed).unwrap();
        assert_eq!(s, ratio_split(n, 0.2, seed).unwrap());
        assert_eq!(s.test.len(), 21);
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
    assert_ne!(ratio_split(n, 0.2, 0).unwrap(), ratio_split(n, 0.2, 1).unwrap());
    let folds = k_fold(n, 5, 3).unwrap();
    assert_eq!(folds, k_fold(n, 5, 3).unwrap());
    for f in &folds {
        assert_eq!(f.train.len() + f.test.len(), n);
        assert!(f.test.iter().all(|i| f.train.binary_search(i).is_err()));
    }
}

#[test]
fn leave_last_out_holds_out_each_users_latest_rating() {
    let (data, _) = Interactions::read(fixture("u.data"), &DataOptions::new()).unwrap();
    let split = leave_last_out(data.users(), data.timestamps().unwrap()).unwrap();
    let ts = data.timestamps().unwrap();
    for &t in &split.test {
        let u = data.users()[t];
        assert!(split.train.iter().filter(|&&i| data.users()[i] == u).all(|&i| ts[i] <= ts[t]));
    }
    // One held out per user with at least two ratings.
    let mut users: Vec<u32> = split.test.iter().map(|&i| data.users()[i]).collect();
    users.dedup();
    assert_eq!(users.len(), split.test.len());
}

#[test]
fn streaming_batches_shuffle_within_the_buffer_deterministically() {
    let rows = || (0..50u32).map(Ok);
    let a: Vec<Vec<u32>> =
        ShuffledBatches::new(rows(), 8, 7, 9).unwrap().collect::<embkit::Result<_>>().unwrap();
    let b: Vec<Vec<u32>> =
        ShuffledBatches::new(rows(), 8, 7, 9).unwrap().collect::<embkit::Result<_>>().unwrap();
    assert_eq!(a, b);
    let flat = a.concat();
    assert_ne!(flat, (0..50).collect::<Vec<_>>());
    // A row leaves at most `buffer_size - 1` places early.
    for (pos, &row) in flat.iter().enumerate() {
        assert!(pos + 7 >= row as usize, "row {row} at {pos}");
    }
    let kept: Vec<u32> =
        ShuffledBatches::new(rows(), 1, 16, 0).unwrap().flat_map(|b| b.unwrap()).collect();
    assert_eq!(kept, (0..50).collect::<Vec<_>>());
    // Streaming from a file, with its errors.
    let file = Interactions::rows(fixture("u.data"), &DataOptions::new()).unwrap();
    let batches: Vec<_> = ShuffledBatches::new(file, 4, 5, 0).unwrap().collect();
    assert_eq!(batches.len(), 3);
    let bad = Interactions::rows_from_reader("1\t2\t3\nx\n".as_bytes(), "t", &DataOptions::new());
    let out: Vec<_> = ShuffledBatches::new(bad, 4, 5, 0).unwrap().collect();
    assert_eq!(out.len(), 1);
    assert!(out[0].is_err());
}

/// A small model with every weight random, biases included.
fn random_model(seed: u64) -> MatrixFactorization {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = MatrixFactorizationConfig::new(4, 5, 3)
        .with_global_mean(3.0)
        .with_l2(0.05)
        .with_bias_l2(0.02)
        .with_rating_range(1.0, 5.0)
        .init(&mut rng)
        .unwrap();
    for table in model.tables_mut() {
        for w in table.weights_mut() {
            *w = rng.random_range(-1.0..1.0);
        }
    }
    model
}

/// The training loss (MSE plus the penalty of the batch's rows).
fn loss_of(model: &mut MatrixFactorization, ids: &Array2<u32>, y: &Array2<f32>) -> f64 {
    Model::forward(model, ids.view(), true).unwrap();
    f64::from(Model::backward(model, &Loss::MeanSquaredError, y.view().into_dyn()).unwrap())
}

#[test]
fn gradient_matches_finite_differences() {
    let ids = array![[0u32, 1], [2, 1], [0, 4], [3, 3], [0, 1]];
    let y = array![[4.0f32], [2.0], [5.0], [1.0], [3.5]];
    let mut model = random_model(11);
    loss_of(&mut model, &ids, &y);
    let grads: Vec<(Vec<u32>, Vec<f32>, usize)> = {
        let m = &model;
        [m.users(), m.items(), m.user_bias(), m.item_bias()]
            .iter()
            .map(|t| (t.grad().ids().to_vec(), t.grad().rows().to_vec(), t.embedding_dim()))
            .collect()
    };
    let eps = 1e-2f32;
    let mut checked = 0;
    for (table, (ids_of_grad, rows, dim)) in grads.iter().enumerate() {
        for (k, &id) in ids_of_grad.iter().enumerate() {
            for c in 0..*dim {
                let at = id as usize * dim + c;
                let mut plus = model.clone();
                plus.tables_mut()[table].weights_mut()[at] += eps;
                let mut minus = model.clone();
                minus.tables_mut()[table].weights_mut()[at] -= eps;
                let numeric = (loss_of(&mut plus, &ids, &y) - loss_of(&mut minus, &ids, &y))
                    / (2.0 * eps as f64);
                let analytic = f64::from(rows[k * dim + c]);
                assert!(
                    (numeric - analytic).abs() < 2e-3 * (1.0 + analytic.abs()),
                    "table {table} id {id} column {c}: numeric {numeric}, analytic {analytic}"
                );
                checked += 1;
            }
        }
    }
    // users 0,2,3 and items 1,3,4 (3 columns each), then their biases.
    assert_eq!(checked, 9 + 9 + 3 + 3);
}

#[test]
fn training_learns_a_low_rank_rating_matrix() {
    // Ratings from hidden 2-D factors; hold out one rating in five.
    let mut rng = StdRng::seed_from_u64(5);
    let (nu, ni) = (30usize, 20usize);
    let pu: Vec<[f32; 2]> =
        (0..nu).map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]).collect();
    let qi: Vec<[f32; 2]> =
        (0..ni).map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]).collect();
    let mut text = String::new();
    for (u, p) in pu.iter().enumerate() {
        for (i, q) in qi.iter().enumerate() {
            let r = 3.0 + 1.5 * (p[0] * q[0] + p[1] * q[1]);
            text.push_str(&format!("u{u}\ti{i}\t{:.3}\n", r.clamp(1.0, 5.0)));
        }
    }
    let data = read(&text, &DataOptions::new()).unwrap();
    let split = ratio_split(data.len(), 0.2, 0).unwrap();
    let (train, test) = (data.subset(&split.train), data.subset(&split.test));
    let mut model = MatrixFactorizationConfig::for_interactions(&train, 8)
        .with_l2(0.0005)
        .init(&mut StdRng::seed_from_u64(0))
        .unwrap();
    let (ids, y) = (train.ids(), train.targets().into_dyn());
    let config = MatrixFactorization::default_train_config()
        .with_epochs(60)
        .with_batch_size(16)
        .with_threads(embkit::Threads::single());
    let history = model
        .fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver)
        .unwrap();
    assert!(history.epochs.last().unwrap().loss < history.epochs[0].loss / 4.0);
    let pred = model.predict(test.ids().view(), 32).unwrap();
    let mse: f32 = pred.iter().zip(test.ratings()).map(|(p, r)| (p - r).powi(2)).sum::<f32>()
        / test.len() as f32;
    let spread: f32 = test.ratings().iter().map(|r| (r - train.mean_rating()).powi(2)).sum::<f32>()
        / test.len() as f32;
    assert!(mse < spread / 3.0, "test MSE {mse} vs variance {spread}");
}

#[test]
fn saved_matrix_factorizations_round_trip_and_export_their_tables() {
    let dir = scratch("save");
    let model = random_model(3);
    let mut saved = SavedMatrixFactorization::new(model.clone());
    saved.users =
        Some(KeyIndex::from_keys(["a", "b", "c", "d"].map(String::from).to_vec()).unwrap());
    saved.items =
        Some(KeyIndex::from_keys(["v", "w", "x", "y", "z"].map(String::from).to_vec()).unwrap());
    saved.metadata.insert("task".into(), "ratings".into());
    saved.save(&dir).unwrap();
    assert_eq!(ModelKind::of_dir(&dir).unwrap(), ModelKind::MatrixFactorization);

    let back = SavedMatrixFactorization::load(&dir).unwrap();
    assert_eq!(back.model.config(), model.config());
    for (a, b) in [
        (back.model.users(), model.users()),
        (back.model.items(), model.items()),
        (back.model.user_bias(), model.user_bias()),
        (back.model.item_bias(), model.item_bias()),
    ] {
        assert_eq!(a.weights(), b.weights());
    }
    assert_eq!(back.users, saved.users);
    assert_eq!(back.metadata, saved.metadata);
    let ids = array![[0u32, 1], [3, 4]];
    assert_eq!(
        back.model.predict_with_fallback(ids.view()).unwrap(),
        model.predict_with_fallback(ids.view()).unwrap()
    );

    // The item table (default) and the user table as vectors, by key.
    let items = Vectors::read(&dir, VectorFormat::Model).unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items.get("x"), Some(model.items().row(2)));
    let (users, _) =
        Vectors::read_with(&dir, VectorFormat::Model, &ReadOptions::new().with_table("users"))
            .unwrap();
    assert_eq!(users.get("d"), Some(model.users().row(3)));
    let err =
        Vectors::read_with(&dir, VectorFormat::Model, &ReadOptions::new().with_table("biases"))
            .unwrap_err();
    assert!(err.to_string().contains("`items` and `users`"), "{err}");

    // Each loader names the other kind.
    let err = SavedModel::load(&dir).unwrap_err();
    assert!(err.to_string().contains("is a matrix_factorization model"), "{err}");
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/model-v1");
    assert_eq!(ModelKind::of_dir(&golden).unwrap(), ModelKind::Sequential);
    let err = SavedMatrixFactorization::load(&golden).unwrap_err();
    assert!(err.to_string().contains("is a sequential model"), "{err}");

    // Keys that do not match the saved tables are refused.
    std::fs::write(dir.join("items.txt"), "v\nw\n").unwrap();
    let err = SavedMatrixFactorization::load(&dir).unwrap_err();
    assert!(err.to_string().contains("has 2 keys, but the table has 5 rows"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
