//! Integration tests: interaction logs, corpora, splits, streaming batches,
//! and the matrix factorisation (gradient, training, saving, vectors).

use std::io::Write;
use std::path::PathBuf;

use embkit::data::{
    k_fold, leave_last_out, ratio_split, Corpus, DataOptions, Delimiter, Header, InteractionStream,
    Interactions, KeyIndex, LabelledTexts, ShuffledBatches, UNKNOWN_ID,
};
use embkit::format::{
    ModelKind, ReadOptions, SavedMatrixFactorization, SavedModel, VectorFormat, Vectors,
};
use embkit::model::{MatrixFactorization, MatrixFactorizationConfig};
use embkit::{Batch, BatchStream, Dataset, Error, Loss, Model, NoObserver};
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

/// The low-rank ratings of `training_learns_a_low_rank_rating_matrix` as
/// file text: `u{u}\ti{i}\trating` for 30 users and 20 items.
fn low_rank_ratings(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let pu: Vec<[f32; 2]> =
        (0..30).map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]).collect();
    let qi: Vec<[f32; 2]> =
        (0..20).map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)]).collect();
    let mut text = String::new();
    for (u, p) in pu.iter().enumerate() {
        for (i, q) in qi.iter().enumerate() {
            let r = 3.0 + 1.5 * (p[0] * q[0] + p[1] * q[1]);
            text.push_str(&format!("u{u}\ti{i}\t{:.3}\n", r.clamp(1.0, 5.0)));
        }
    }
    text
}

/// The rows of every batch of one pass, as (user key, item key, rating).
fn stream_rows(stream: &mut InteractionStream, epoch: usize) -> Vec<(String, String, f32)> {
    let (users, items) = (stream.users().clone(), stream.items().clone());
    let mut rows = Vec::new();
    for batch in stream.batches(epoch).unwrap() {
        let batch = batch.unwrap();
        assert_eq!(batch.ids.ncols(), 2);
        assert_eq!(batch.targets.shape(), &[batch.ids.nrows(), 1]);
        for (ids, rating) in batch.ids.rows().into_iter().zip(batch.targets.iter()) {
            let user = users.key(ids[0]).unwrap().to_string();
            rows.push((user, items.key(ids[1]).unwrap().to_string(), *rating));
        }
    }
    rows
}

#[test]
fn interaction_streams_hold_out_the_same_rows_every_pass() {
    let dir = scratch("stream-hold-out");
    let path = dir.join("ratings.tsv");
    std::fs::write(&path, low_rank_ratings(5)).unwrap();
    let (all, _) = Interactions::read(&path, &DataOptions::new()).unwrap();
    let (train, validation) = InteractionStream::open(&path, &DataOptions::new(), 0.25, 3).unwrap();
    let mut train = train.with_batch_size(7).unwrap().with_buffer_size(50).unwrap();
    let mut validation = validation.unwrap();
    // Every user and item indexed in first-appearance order, as `read`.
    assert_eq!(train.users().keys(), all.user_index().keys());
    assert_eq!(validation.items().keys(), all.item_index().keys());
    assert_eq!(train.len() + validation.len(), 600);
    assert!((100..200).contains(&validation.len()), "{} held out", validation.len());
    assert_eq!(train.num_batches(), Some(train.len().div_ceil(7)));
    let (a, b) = (stream_rows(&mut train, 1), stream_rows(&mut train, 2));
    let held = stream_rows(&mut validation, 1);
    assert_eq!((a.len(), held.len()), (train.len(), validation.len()));
    // Each epoch a new order of the same rows; the held-out rows apart.
    assert_ne!(a, b);
    let sorted = |mut rows: Vec<(String, String, f32)>| {
        rows.sort_by(|x, y| x.partial_cmp(y).unwrap());
        rows
    };
    assert_eq!(sorted(a.clone()), sorted(b));
    assert_eq!(sorted(a.clone()), sorted(stream_rows(&mut train, 1)));
    let mut union = sorted([a.clone(), held.clone()].concat());
    union.dedup();
    assert_eq!(union.len(), 600);
    let expected: Vec<_> = (0..all.len())
        .map(|i| {
            let (u, it) = (all.users()[i], all.items()[i]);
            let user = all.user_index().key(u).unwrap().to_string();
            (user, all.item_index().key(it).unwrap().to_string(), all.ratings()[i])
        })
        .collect();
    assert_eq!(union, sorted(expected.clone()));
    // The mean is the training rows'; a buffer of one keeps the file order.
    let mean = a.iter().map(|r| f64::from(r.2)).sum::<f64>() / a.len() as f64;
    assert!((f64::from(train.mean_rating()) - mean).abs() < 1e-4);
    assert_eq!(train.rating_range(), all.rating_range());
    let mut in_order = train.with_buffer_size(1).unwrap();
    let first = stream_rows(&mut in_order, 1);
    let order: Vec<usize> =
        first.iter().map(|r| expected.iter().position(|e| e == r).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn interaction_streams_report_bad_input() {
    let dir = scratch("stream-errors");
    let path = dir.join("u.data");
    std::fs::write(&path, "1\t10\t4\n2\t20\tlots\n3\t10\t2\n").unwrap();
    let err = InteractionStream::open(&path, &DataOptions::new(), 0.0, 0).unwrap_err();
    assert!(err.to_string().contains("u.data:2: expected a number"), "{err}");
    let skip = DataOptions::new().with_skip_bad_rows(true);
    let (mut stream, _) = InteractionStream::open(&path, &skip, 0.0, 0).unwrap();
    assert_eq!((stream.len(), stream.report().skipped), (2, 1));
    assert_eq!(stream_rows(&mut stream, 1).len(), 2);
    let err = InteractionStream::open(&path, &skip, 1.0, 0).unwrap_err();
    assert_eq!(err.to_string(), "invalid validation_fraction: must be in [0, 1), got 1");
    let err = stream.with_buffer_size(0).unwrap_err();
    assert_eq!(err.to_string(), "invalid buffer_size: must be at least 1, got 0");
    let empty = dir.join("empty.tsv");
    std::fs::write(&empty, "\n").unwrap();
    assert!(matches!(
        InteractionStream::open(&empty, &DataOptions::new(), 0.0, 0),
        Err(Error::EmptyData { .. })
    ));
    let missing = InteractionStream::open(dir.join("missing.tsv"), &DataOptions::new(), 0.0, 0);
    assert!(missing.unwrap_err().to_string().contains("missing.tsv"));
    // A file damaged after the first reading: the pass stops at the row.
    let good = dir.join("good.tsv");
    std::fs::write(&good, "1\t10\t4\n2\t20\t1\n3\t10\t2\n").unwrap();
    let (mut stream, _) = InteractionStream::open(&good, &DataOptions::new(), 0.0, 0).unwrap();
    std::fs::write(&good, "1\t10\t4\n2\t20\tlots\n3\t10\t2\n").unwrap();
    let err = stream.batches(1).unwrap().find_map(Result::err).unwrap();
    assert!(err.to_string().contains("good.tsv:2: expected a number"), "{err}");
    // A file changed since: more rows, or a new user, is an error too.
    for changed in ["1\t10\t4\n2\t20\t1\n3\t10\t2\n1\t20\t5\n", "1\t10\t4\n2\t20\t1\n9\t10\t2\n"] {
        std::fs::write(&good, changed).unwrap();
        let err = stream.batches(1).unwrap().find_map(Result::err).unwrap();
        assert!(err.to_string().contains("changed since it was first read"), "{err}");
    }
    // Another file mapped with these keys leaves unknown users out.
    let other = dir.join("test.tsv");
    std::fs::write(&other, "1\t10\t5\n9\t10\t1\n3\t20\t2\n").unwrap();
    let (base, _) = InteractionStream::open(dir.join("u.data"), &skip, 0.0, 0).unwrap();
    let mut test = base.with_keys_of(&other, &DataOptions::new()).unwrap();
    assert_eq!((test.len(), test.unknown()), (1, 2));
    assert_eq!(stream_rows(&mut test, 1), [("1".to_string(), "10".to_string(), 5.0)]);
}

/// Batches given as they are, in order, every epoch.
struct Fixed(Vec<Batch>);

impl BatchStream for Fixed {
    fn batches(
        &mut self,
        _epoch: usize,
    ) -> embkit::Result<Box<dyn Iterator<Item = embkit::Result<Batch>> + '_>> {
        Ok(Box::new(self.0.iter().cloned().map(Ok)))
    }
}

#[test]
fn fit_stream_trains_as_fit_on_the_same_batches() {
    let text = low_rank_ratings(5);
    let data = read(&text, &DataOptions::new()).unwrap();
    let (ids, y) = (data.ids(), data.targets().into_dyn());
    let batches: Vec<Batch> = (0..data.len())
        .step_by(32)
        .map(|start| {
            let end = (start + 32).min(data.len());
            Batch {
                ids: ids.slice(ndarray::s![start..end, ..]).to_owned(),
                targets: y.slice(ndarray::s![start..end, ..]).to_owned().into_dyn(),
            }
        })
        .collect();
    let val_rows = 3 * 32;
    // Early stopping that never sees an improvement after epoch 1 (a
    // huge min_delta): it stops after epoch 2 and restores epoch 1.
    let mut config = MatrixFactorization::default_train_config()
        .with_epochs(4)
        .with_batch_size(32)
        .with_shuffle(false)
        .with_metrics(vec![embkit::Metric::MeanAbsoluteError])
        .with_early_stopping(
            embkit::EarlyStopping::new("val_loss")
                .with_patience(1)
                .with_min_delta(1e9)
                .with_restore_best_weights(true),
        )
        .with_threads(embkit::Threads::single());
    config.learning_rate_schedule = Some(embkit::LearningRateSchedule::linear(0.01, 60));
    let model = MatrixFactorizationConfig::for_interactions(&data, 4)
        .init(&mut StdRng::seed_from_u64(1))
        .unwrap();
    let (mut a, mut b) = (model.clone(), model);
    let train = Dataset::new(ids.view(), y.view()).unwrap();
    let val = Dataset::new(
        ids.slice(ndarray::s![..val_rows, ..]),
        y.slice(ndarray::s![..val_rows, ..]).into_dyn(),
    )
    .unwrap();
    let ha = a.fit(train, Some(val.clone()), &config, &mut NoObserver).unwrap();
    let mut validation = Fixed(batches[..3].to_vec());
    let mut stream = Fixed(batches);
    let hb = embkit::fit_stream(
        &mut b,
        &mut stream,
        Some(&mut validation as &mut dyn BatchStream),
        &config,
        &mut NoObserver,
    )
    .unwrap();
    // Same steps, same bits, the same stop and restore.
    assert_eq!((hb.stopped_epoch, hb.restored_epoch, hb.epochs.len()), (Some(2), Some(1), 2));
    assert_eq!((ha.stopped_epoch, ha.restored_epoch), (hb.stopped_epoch, hb.restored_epoch));
    for (x, y) in ha.epochs.iter().zip(&hb.epochs) {
        assert_eq!(x.loss, y.loss);
        assert_eq!(x.metrics, y.metrics);
        assert_eq!(x.val_loss, y.val_loss);
        assert_eq!(x.val_metrics, y.val_metrics);
    }
    for (ta, tb) in a.tables_mut().into_iter().zip(b.tables_mut()) {
        assert_eq!(ta.weights(), tb.weights());
    }
    // The restored model is epoch 1's: its validation loss is epoch 1's.
    let e1 = embkit::evaluate_stream(&mut b, &mut validation, &config.loss, &[]).unwrap();
    assert_eq!(Some(e1.loss), hb.epochs[0].val_loss);
    // A validation stream is scored as `evaluate` scores the same rows.
    let e =
        embkit::evaluate_stream(&mut b, &mut validation, &config.loss, &config.metrics).unwrap();
    let f = embkit::evaluate(&mut b, val, &config.loss, &config.metrics, 32).unwrap();
    assert_eq!(e.loss, f.loss);
    assert_eq!(e.metrics, f.metrics);
    // Bad settings and empty streams are errors, not panics.
    let split = config.clone().with_validation_split(0.2);
    let err =
        embkit::fit_stream(&mut b, &mut Fixed(vec![]), None, &split, &mut NoObserver).unwrap_err();
    assert!(err.to_string().contains("cannot split a stream"), "{err}");
    let err =
        embkit::fit_stream(&mut b, &mut Fixed(vec![]), None, &config, &mut NoObserver).unwrap_err();
    assert_eq!(err.to_string(), "empty training stream (epoch 1 gave no samples)");
}

#[test]
fn streamed_training_learns_a_low_rank_rating_matrix() {
    let dir = scratch("stream-fit");
    let path = dir.join("ratings.tsv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, low_rank_ratings(5).as_bytes()).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let (train, validation) = InteractionStream::open(&path, &DataOptions::new(), 0.2, 0).unwrap();
    let mut train = train.with_batch_size(16).unwrap().with_buffer_size(100).unwrap();
    let mut validation = validation.unwrap();
    let mut model = MatrixFactorizationConfig::new(train.users().len(), train.items().len(), 8)
        .with_global_mean(train.mean_rating())
        .with_l2(0.0005)
        .init(&mut StdRng::seed_from_u64(0))
        .unwrap();
    let config = MatrixFactorization::default_train_config()
        .with_epochs(60)
        .with_early_stopping(embkit::EarlyStopping::new("val_loss").with_patience(5))
        .with_threads(embkit::Threads::single());
    let history = embkit::fit_stream(
        &mut model,
        &mut train,
        Some(&mut validation as &mut dyn BatchStream),
        &config,
        &mut NoObserver,
    )
    .unwrap();
    let first = &history.epochs[0];
    let last = history.epochs.last().unwrap();
    assert!(last.loss < first.loss / 4.0, "{} -> {}", first.loss, last.loss);
    // Held-out ratings of users and items seen in training: MSE well
    // under their variance (as the in-memory test).
    let held = stream_rows(&mut validation, 1);
    let mean = held.iter().map(|r| r.2).sum::<f32>() / held.len() as f32;
    let spread = held.iter().map(|r| (r.2 - mean).powi(2)).sum::<f32>() / held.len() as f32;
    let mse = last.val_loss.unwrap() as f32;
    assert!(mse < spread / 3.0, "validation MSE {mse} vs variance {spread}");
}
