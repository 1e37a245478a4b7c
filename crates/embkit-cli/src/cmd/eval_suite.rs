//! `embkit eval-suite`: trains and evaluates embkit's models on the real
//! data sets of a data folder (`../shared/data`) with the published
//! protocols, and writes `EVALUATION.md` and `evaluation/eval-suite.json`
//! with every number next to its baseline.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use embkit::data::{k_fold, letter_sentences, Corpus, DataOptions, Interactions, LabelledTexts};
use embkit::format::write_atomically;
use embkit::model::{BagWeighting, MatrixFactorization, MatrixFactorizationConfig};
use embkit::query::{evaluate_analogies, evaluate_similarity, AnalogyMethod};
use embkit::vocab::TextVectorizerConfig;
use embkit::word2vec::{SkipGram, SkipGramConfig};
use embkit::{
    Activation, AdamConfig, Dataset, EmbeddingConfig, Loss, NoObserver, SequentialConfig, Threads,
    TrainConfig,
};
use ndarray::Array2;
use rand::{rngs::StdRng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::bag::{BagSettings, BagTextClassifier};
use crate::cmd::evaluate::accuracy_and_macro_f1;
use crate::pipeline::LrDecay;

/// Train and evaluate on the real data sets of a data folder against
/// published baselines (MovieLens-100k, sentence polarity, Reuters R8,
/// word2vec on a literary corpus); write EVALUATION.md and
/// evaluation/eval-suite.json. Data sets that are missing are skipped
/// with a note.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data folder (its README.md and BASELINES.md describe it).
    #[arg(long)]
    pub data: PathBuf,
    /// Fewer folds and epochs (listed in the output): under 5 minutes on 2
    /// cores. Results are labelled as quick.
    #[arg(long)]
    pub quick: bool,
    /// Where to write EVALUATION.md and evaluation/eval-suite.json
    /// (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Threads [every core].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// One measured number next to its baselines.
#[derive(Debug, Clone, Serialize)]
struct Row {
    dataset: String,
    protocol: String,
    model: String,
    metric: String,
    ours: f64,
    /// `(name, value)`; higher is better unless `lower_is_better`.
    baselines: Vec<(String, f64)>,
    lower_is_better: bool,
    /// How many decimals to print (accuracies as %, when `percent`).
    percent: bool,
    /// The standard error of `ours` minus the first baseline, when both
    /// are means over runs: a difference within two of them is "on par".
    standard_error: Option<f64>,
}

/// What one data set gave.
#[derive(Debug, Clone, Serialize)]
struct Section {
    name: String,
    /// `ran`, `skipped` or `failed`.
    status: &'static str,
    note: String,
    seconds: f64,
    rows: Vec<Row>,
    details: serde_json::Value,
}

/// Folds and epochs of the two modes.
#[derive(Debug, Clone, Serialize)]
struct Mode {
    name: &'static str,
    movielens_folds: usize,
    polarity_folds: usize,
    word2vec_epochs: usize,
    /// Seeds 1..=n of word2vec: one seed's analogy accuracy spreads by
    /// about 0.4 points (sd), more than any gap to gensim's.
    word2vec_seeds: u64,
}

impl Mode {
    fn new(quick: bool) -> Self {
        if quick {
            Mode {
                name: "quick",
                movielens_folds: 2,
                polarity_folds: 3,
                word2vec_epochs: 1,
                word2vec_seeds: 1,
            }
        } else {
            Mode {
                name: "full",
                movielens_folds: 5,
                polarity_folds: 10,
                word2vec_epochs: 5,
                word2vec_seeds: GENSIM_SEEDS.len() as u64,
            }
        }
    }

    fn describe(&self) -> String {
        if self.name == "quick" {
            format!(
                "QUICK mode: MovieLens {} of the 5 folds, polarity {} of the 10 folds, word2vec {} \
                 epoch and one seed instead of 5 epochs and {} seeds; the numbers are indicative only",
                self.movielens_folds,
                self.polarity_folds,
                self.word2vec_epochs,
                GENSIM_SEEDS.len()
            )
        } else {
            "full mode: every fold and epoch of the protocols".into()
        }
    }
}

struct Suite {
    data: PathBuf,
    mode: Mode,
    threads: Threads,
}

/// Runs `embkit eval-suite`.
pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    if !args.data.is_dir() {
        bail!("--data {}: not a directory (expected the shared data folder)", args.data.display());
    }
    let threads = match args.threads {
        Some(n) => Threads::new(n).context("--threads")?,
        None => Threads::available(),
    };
    let ctx = Suite { data: args.data.clone(), mode: Mode::new(args.quick), threads };
    eprintln!("eval-suite ({}), data in {}", ctx.mode.describe(), ctx.data.display());

    type Job = fn(&Suite) -> Result<Section>;
    let jobs: [(&str, &[&str], Job); 4] = [
        ("MovieLens-100k", &["movielens-100k/u.data.tsv"], movielens),
        ("sentence polarity", &["pang-lee-sentence-polarity-4k/sentences.tsv"], polarity),
        ("Reuters-21578 R8", &["reuters21578-r8/train.tsv", "reuters21578-r8/test.tsv"], r8),
        (
            "word2vec, literary corpus",
            &[
                "jane-austen-novels",
                "moby-dick/moby-dick.txt",
                "shakespeare-works/shakespeare-modern-42-works.txt.gz",
                "word-similarity/wordsim353.tsv",
                "word-analogy/google-questions-words.txt",
            ],
            word2vec,
        ),
    ];
    let mut sections = Vec::new();
    for (name, files, job) in jobs {
        let missing: Vec<&str> =
            files.iter().copied().filter(|f| !ctx.data.join(f).exists()).collect();
        if !missing.is_empty() {
            let note = format!("skipped: not found in the data folder: {}", missing.join(", "));
            eprintln!("{name}: {note}");
            sections.push(Section {
                name: name.to_string(),
                status: "skipped",
                note,
                seconds: 0.0,
                rows: Vec::new(),
                details: json!(null),
            });
            continue;
        }
        eprintln!("{name}: found, running");
        let t = Instant::now();
        let section = match job(&ctx) {
            Ok(mut s) => {
                s.seconds = t.elapsed().as_secs_f64();
                s
            }
            Err(err) => {
                eprintln!("{name}: failed: {err:#}");
                Section {
                    name: name.to_string(),
                    status: "failed",
                    note: format!("failed: {err:#}"),
                    seconds: t.elapsed().as_secs_f64(),
                    rows: Vec::new(),
                    details: json!(null),
                }
            }
        };
        for row in &section.rows {
            eprintln!("  {}: {} {}", row.model, row.metric, fmt_value(row, row.ours));
        }
        eprintln!("{name}: {:.1} s", section.seconds);
        sections.push(section);
    }
    let seconds = start.elapsed().as_secs_f64();
    let machine = machine();
    let date = today();
    let command = format!(
        "embkit eval-suite --data {}{} --out {}",
        args.data.display(),
        if args.quick { " --quick" } else { "" },
        args.out.display()
    );
    let markdown = render(&sections, &ctx.mode, &command, &machine, &date, seconds);
    std::fs::create_dir_all(args.out.join("evaluation"))
        .with_context(|| format!("cannot create {}", args.out.join("evaluation").display()))?;
    let md_path = args.out.join("EVALUATION.md");
    write_atomically(&md_path, markdown.as_bytes())?;
    let json_path = args.out.join("evaluation").join("eval-suite.json");
    let report = json!({
        "mode": ctx.mode,
        "quick": args.quick,
        "mode_note": ctx.mode.describe(),
        "command": command,
        "machine": machine,
        "date": date,
        "seconds": seconds,
        "threads": ctx.threads.get(),
        "sections": sections,
    });
    write_atomically(&json_path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("{}", table(&sections));
    println!("wrote {} and {} in {seconds:.0} s", md_path.display(), json_path.display());
    let failed: Vec<&str> =
        sections.iter().filter(|s| s.status == "failed").map(|s| s.name.as_str()).collect();
    if !failed.is_empty() {
        bail!("{} data set(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

fn sd(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len().max(2) - 1) as f64).sqrt()
}

/// `mean(a) - mean(b)` and its standard error (Welch's, independent
/// samples of at least 2 each; NaN otherwise).
fn difference_of_means(a: &[f64], b: &[f64]) -> (f64, f64) {
    if a.len() < 2 || b.len() < 2 {
        return (mean(a) - mean(b), f64::NAN);
    }
    let var = |xs: &[f64]| sd(xs).powi(2) / xs.len() as f64;
    (mean(a) - mean(b), (var(a) + var(b)).sqrt())
}

/// MovieLens-100k: 5-fold random split, RMSE and MAE of
/// `MatrixFactorization` with the library's defaults (the protocol of
/// `examples/movielens.rs`).
fn movielens(ctx: &Suite) -> Result<Section> {
    let path = ctx.data.join("movielens-100k/u.data.tsv");
    let (data, _) = Interactions::read(&path, &DataOptions::new())?;
    let seed = 0;
    let train =
        MatrixFactorization::default_train_config().with_seed(seed).with_threads(ctx.threads);
    let dim = MatrixFactorizationConfig::DEFAULT_EMBEDDING_DIM;
    let (mut rmses, mut maes) = (Vec::new(), Vec::new());
    for (k, fold) in k_fold(data.len(), 5, seed)?.iter().enumerate().take(ctx.mode.movielens_folds)
    {
        let (tr, te) = (data.subset(&fold.train), data.subset(&fold.test));
        let mut config = MatrixFactorizationConfig::for_interactions(&tr, dim);
        config.rating_range = data.rating_range();
        let mut model = config.init(&mut StdRng::seed_from_u64(seed + k as u64))?;
        let (ids, y) = (tr.ids(), tr.targets().into_dyn());
        model.fit(Dataset::new(ids.view(), y.view())?, None, &train, &mut NoObserver)?;
        let pred = model.predict_with_fallback(te.ids().view())?;
        let (rmse, mae) = crate::cmd::train::rmse_mae(
            pred.as_slice().expect("a fresh array is contiguous"),
            te.ratings(),
        );
        eprintln!("  fold {}: RMSE {rmse:.4}  MAE {mae:.4}", k + 1);
        rmses.push(rmse);
        maes.push(mae);
    }
    let folds = rmses.len();
    let protocol = if folds == 5 {
        "5-fold CV (random split, seed 0), mean over folds".to_string()
    } else {
        format!("first {folds} of the 5 folds (quick), mean")
    };
    let model = format!(
        "MatrixFactorization, library defaults (dim {dim}, {} epochs, batch {}, Adam lr {})",
        train.epochs,
        train.batch_size,
        MatrixFactorization::DEFAULT_LEARNING_RATE
    );
    let row = |metric: &str, ours: f64, svd: f64, svdpp: f64, base: f64| Row {
        dataset: "MovieLens-100k".into(),
        protocol: protocol.clone(),
        model: model.clone(),
        metric: metric.into(),
        ours,
        baselines: vec![
            ("Surprise SVD".into(), svd),
            ("SVD++".into(), svdpp),
            ("BaselineOnly".into(), base),
        ],
        lower_is_better: true,
        percent: false,
        standard_error: None,
    };
    Ok(Section {
        name: "MovieLens-100k".into(),
        status: "ran",
        note: format!(
            "{} ratings, {} users, {} items",
            data.len(),
            data.num_users(),
            data.num_items()
        ),
        seconds: 0.0,
        rows: vec![
            row("RMSE", mean(&rmses), 0.934, 0.919, 0.944),
            row("MAE", mean(&maes), 0.737, 0.721, 0.748),
        ],
        details: json!({ "rmse_per_fold": rmses, "mae_per_fold": maes }),
    })
}

/// Settings of the `Embedding → GlobalAveragePooling1D → Dense` classifier
/// of the polarity protocol.
const POOL_DIM: usize = 32;
const POOL_LEN: usize = 64;
const POOL_EPOCHS: usize = 10;
const POOL_LR: f32 = 0.005;

/// Trains `Embedding(mask_zero) → GlobalAveragePooling1D → Dense(sigmoid)`
/// on `train` and returns its accuracy on `test` (binary labels).
fn pooling_accuracy(
    train: &LabelledTexts,
    test: &LabelledTexts,
    seed: u64,
    threads: Threads,
) -> Result<f64> {
    let classes = train.class_names();
    let vectorizer =
        TextVectorizerConfig::new().with_output_sequence_length(POOL_LEN).adapt(train.texts())?;
    let mut model = SequentialConfig::new(
        EmbeddingConfig::new(vectorizer.vocab_size(), POOL_DIM).with_mask_zero(true),
        POOL_LEN,
    )
    .global_average_pooling_1d()
    .dense(1, Activation::Sigmoid)
    .init(&mut StdRng::seed_from_u64(seed))?;
    let config = TrainConfig::new(
        Loss::BinaryCrossentropy { from_logits: false },
        AdamConfig::new().with_learning_rate(POOL_LR).into(),
    )
    .with_epochs(POOL_EPOCHS)
    .with_batch_size(32)
    .with_seed(seed)
    .with_threads(threads);
    let mut config = config;
    LrDecay::Linear.apply(&mut config, POOL_LR, train.len());
    let ids = vectorizer.vectorize_batch(train.texts());
    let labels = train.label_ids(&classes)?;
    let y = Array2::from_shape_vec((labels.len(), 1), labels.iter().map(|&c| c as f32).collect())?
        .into_dyn();
    model.fit(Dataset::new(ids.view(), y.view())?, None, &config, &mut NoObserver)?;
    let pred = model.predict(vectorizer.vectorize_batch(test.texts()).view(), 256)?;
    let truth = test.label_ids(&classes)?;
    let right = pred.iter().zip(&truth).filter(|(&p, &t)| u32::from(p >= 0.5) == t).count() as f64;
    Ok(right / truth.len().max(1) as f64)
}

fn bag_accuracy(
    train: &LabelledTexts,
    test: &LabelledTexts,
    settings: BagSettings,
    seed: u64,
) -> Result<(f64, f64, BagSettings)> {
    let settings = BagSettings { seed, ..settings };
    let trained = BagTextClassifier::train(train, None, &settings, &mut NoObserver)?;
    let mut classifier = trained.classifier;
    let predictions = classifier.predict(test.texts())?;
    let predicted: Vec<&str> = predictions.iter().map(|p| p.label.as_str()).collect();
    let (accuracy, macro_f1, _) = accuracy_and_macro_f1(test.labels(), &predicted);
    Ok((accuracy, macro_f1, settings))
}

fn bag_model_name(s: &BagSettings) -> String {
    if s.weighting == BagWeighting::TfIdfL2 {
        let shape = if s.rows_are_logits {
            "logistic regression (unregularised) as a bag: rows of one score per class, plus a bias → softmax"
                .to_string()
        } else {
            format!("rows of {} → Dense(softmax)", s.embedding_dim)
        };
        return format!(
            "TF-IDF bag, scikit-learn's weights (count × idf, L2-normalised; a vocabulary of words \
             and bigrams up to n = {}): {shape}, {} epochs, batch {}, {} lr {}, {} decay",
            s.ngrams,
            s.epochs,
            s.batch_size,
            optimizer_title(&s.optimizer),
            s.learning_rate,
            s.lr_decay.name()
        );
    }
    if s.weighting == BagWeighting::TfIdf {
        return format!(
            "Keras's bag-of-bigrams (Chollet 11.3): TF-IDF bag (a vocabulary of words and bigrams \
             up to n = {}, rows of {}){} → {} → Dropout({}) → Dense(softmax), {} epochs, \
             batch {}, {} lr {} ({} decay; lazy row updates)",
            s.ngrams,
            s.embedding_dim,
            if s.hidden_activation == Activation::Linear { "" } else { " + bias" },
            s.hidden_activation.name(),
            s.dropout,
            s.epochs,
            s.batch_size,
            optimizer_title(&s.optimizer),
            s.learning_rate,
            s.lr_decay.name()
        );
    }
    format!(
        "fastText-style bag (words + {} bigram buckets, dim {}, {} epochs, batch {}, {} lr {}, {} decay)",
        s.bigram_buckets,
        s.embedding_dim,
        s.epochs,
        s.batch_size,
        optimizer_title(&s.optimizer),
        s.learning_rate,
        s.lr_decay.name()
    )
}

/// An optimizer's name as Keras writes it.
fn optimizer_title(name: &str) -> &str {
    match name {
        "adam" => "Adam",
        "rmsprop" => "RMSprop",
        "sgd" => "SGD",
        "adagrad" => "Adagrad",
        other => other,
    }
}

/// Makes the settings of one bag model.
type BagPreset = fn() -> BagSettings;

/// The bag classifiers of the text rows: a short name and the settings.
/// `tf_idf_l2`'s learning rate was chosen on R8's training texts,
/// `tf_idf_logistic`'s on polarity's training folds (see their docs).
const BAG_MODELS: [(&str, BagPreset); 4] = [
    ("fastText bag", BagSettings::defaults),
    ("Keras TF-IDF bag", BagSettings::keras_tf_idf),
    ("TF-IDF (L2) bag", BagSettings::tf_idf_l2),
    ("TF-IDF logistic", BagSettings::tf_idf_logistic),
];

/// Sentence polarity: 10-fold CV accuracy (folds of a seeded shuffle),
/// for the pooling classifier and the bags of [`BAG_MODELS`].
fn polarity(ctx: &Suite) -> Result<Section> {
    let path = ctx.data.join("pang-lee-sentence-polarity-4k/sentences.tsv");
    let (data, _) = LabelledTexts::read(&path, &DataOptions::new())?;
    let seed = 1;
    let mut pool = Vec::new();
    let mut bags: Vec<(BagSettings, Vec<f64>)> =
        BAG_MODELS.iter().map(|(_, settings)| (settings(), Vec::new())).collect();
    for (k, fold) in k_fold(data.len(), 10, seed)?.iter().enumerate().take(ctx.mode.polarity_folds)
    {
        let (tr, te) = (data.subset(&fold.train), data.subset(&fold.test));
        let p = pooling_accuracy(&tr, &te, seed + k as u64, ctx.threads)?;
        let mut line = format!("  fold {}: pooling {p:.4}", k + 1);
        for ((name, _), (settings, accs)) in BAG_MODELS.iter().zip(&mut bags) {
            let (a, _, s) = bag_accuracy(&tr, &te, settings.clone(), seed + k as u64)?;
            *settings = s;
            accs.push(a);
            line += &format!("  {name} {a:.4}");
        }
        eprintln!("{line}");
        pool.push(p);
    }
    let folds = pool.len();
    let protocol = if folds == 10 {
        "10-fold CV (seeded shuffle), mean accuracy".to_string()
    } else {
        format!("first {folds} of the 10 folds (quick), mean accuracy")
    };
    let baselines =
        vec![("TF-IDF + LR".to_string(), 0.741), ("TF-IDF + linear SVM".to_string(), 0.746)];
    let row = |model: String, ours: f64| Row {
        dataset: "sentence polarity (4k)".into(),
        protocol: protocol.clone(),
        model,
        metric: "accuracy".into(),
        ours,
        baselines: baselines.clone(),
        lower_is_better: false,
        percent: false,
        standard_error: None,
    };
    Ok(Section {
        name: "sentence polarity".into(),
        status: "ran",
        note: format!(
            "{} sentences; sd over folds: pooling {:.3}, {} (TF-IDF + LR: 0.017). \
             On these same 10 folds, scikit-learn 1.9 run here: TF-IDF + LR with default \
             settings 0.729 (0.720-0.727 over eight other shuffled fold assignments), TF-IDF of \
             word uni- and bigrams (sublinear, C = 10) + LR 0.750, multinomial naive Bayes on \
             binary uni- and bigrams 0.754: the listed 0.741 is above what default \
             settings give on any of these fold assignments",
            data.len(),
            sd(&pool),
            BAG_MODELS
                .iter()
                .zip(&bags)
                .map(|((name, _), (_, accs))| format!("{name} {:.3}", sd(accs)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        seconds: 0.0,
        rows: std::iter::once(row(
            format!(
                "Embedding({POOL_DIM}, mask_zero) → GlobalAveragePooling1D → Dense(sigmoid), \
                 {POOL_LEN} ids, {POOL_EPOCHS} epochs, Adam lr {POOL_LR} decaying linearly to 0"
            ),
            mean(&pool),
        ))
        .chain(bags.iter().map(|(settings, accs)| row(bag_model_name(settings), mean(accs))))
        .collect(),
        details: json!({
            "pooling_per_fold": pool,
            "bags_per_fold": BAG_MODELS
                .iter()
                .zip(&bags)
                .map(|((name, _), (_, accs))| (name.to_string(), json!(accs)))
                .collect::<serde_json::Map<_, _>>(),
        }),
    })
}

/// Reuters R8: the given split, accuracy and macro-F1 of the bags of
/// [`BAG_MODELS`].
fn r8(ctx: &Suite) -> Result<Section> {
    let dir = ctx.data.join("reuters21578-r8");
    let (train, _) = LabelledTexts::read(dir.join("train.tsv"), &DataOptions::new())?;
    let (test, _) = LabelledTexts::read(dir.join("test.tsv"), &DataOptions::new())?;
    let protocol = "the given train/test split".to_string();
    let mut rows = Vec::new();
    let mut details = serde_json::Map::new();
    for (name, settings) in BAG_MODELS {
        let (accuracy, macro_f1, settings) = bag_accuracy(&train, &test, settings(), 1)?;
        eprintln!("  {name}: accuracy {accuracy:.4}, macro-F1 {macro_f1:.4}");
        details.insert(name.into(), json!({ "accuracy": accuracy, "macro_f1": macro_f1 }));
        let row = |metric: &str, ours: f64, baselines: Vec<(String, f64)>| Row {
            dataset: "Reuters R8".into(),
            protocol: protocol.clone(),
            model: bag_model_name(&settings),
            metric: metric.into(),
            ours,
            baselines,
            lower_is_better: false,
            percent: false,
            standard_error: None,
        };
        rows.push(row(
            "accuracy",
            accuracy,
            vec![
                ("TF-IDF + linear SVM".into(), 0.9767),
                ("TF-IDF + LR".into(), 0.9685),
                ("fastText (Text GCN paper)".into(), 0.961),
            ],
        ));
        rows.push(row("macro-F1", macro_f1, Vec::new()));
    }
    Ok(Section {
        name: "Reuters-21578 R8".into(),
        status: "ran",
        note: format!(
            "{} training, {} test documents. The TF-IDF (L2) bag's learning rate was chosen on a \
             held-out seventh of the training texts (0.005 of 0.001-0.03: validation accuracy \
             0.972 over seeds 1-5, the fastText bag 0.964, scikit-learn's linear SVM 0.972 on \
             that split); the TF-IDF logistic bag's on held-out tenths of polarity's training \
             folds (0.01 of 0.003-0.1); neither looked at the test texts",
            train.len(),
            test.len()
        ),
        seconds: 0.0,
        rows,
        details: serde_json::Value::Object(details),
    })
}

/// gensim 4.4's skip-gram run here on the suite's sentences with the
/// suite's settings (`Word2Vec(vector_size=100, window=5, negative=5,
/// min_count=5, sample=1e-3, sg=1, workers=2, seed=s)`, 5 epochs), seeds
/// 1-16: WordSim-353 Spearman and Google-analogy accuracy (3CosAdd, 30k),
/// scored by embkit's `similarity` and `analogy --eval`. Seeds vary the
/// analogy accuracy by about 0.4 points (sd), so a mean over 8 seeds is
/// only good to about 0.15 points.
const GENSIM_SEEDS: [[f64; 2]; 16] = [
    [0.2644, 0.0910],
    [0.2297, 0.0957],
    [0.2225, 0.0955],
    [0.2498, 0.1008],
    [0.2237, 0.0959],
    [0.2697, 0.0886],
    [0.2522, 0.0929],
    [0.2540, 0.0961],
    [0.2749, 0.0914],
    [0.2228, 0.0946],
    [0.2319, 0.0923],
    [0.2545, 0.0886],
    [0.2518, 0.0874],
    [0.2516, 0.0899],
    [0.2472, 0.0929],
    [0.2589, 0.0854],
];

/// Seconds of gensim's `train` (after `build_vocab`), two threads, the
/// median of seeds 1-3 here at 17:34 on 2026-11-26 (20.06, 18.93,
/// 18.47 s), just before the run of EVALUATION.md, and 18.20, 18.53,
/// 19.37 s at 17:41 just after it. The machine's speed
/// drifts within a day (the same took 17.3 s at 16:31, 17.1 s at 16:56,
/// 16.8 s at 14:33 and 18.1 s at 13:57), so embkit's times are compared
/// with gensim's of the same hour.
const GENSIM_SECONDS: f64 = 18.9;

/// The tokens of 5 epochs, as gensim counts its words/s (raw words).
const GENSIM_TOKENS: f64 = 1_887_092.0 * 5.0;

/// word2vec on Austen + Moby Dick + Shakespeare with gensim's settings:
/// WordSim-353 Spearman, Google analogies (3CosAdd, restricted to 30,000
/// words), words/s.
fn word2vec(ctx: &Suite) -> Result<Section> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(ctx.data.join("jane-austen-novels"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files.push(ctx.data.join("moby-dick/moby-dick.txt"));
    files.push(ctx.data.join("shakespeare-works/shakespeare-modern-42-works.txt.gz"));
    let mut lines = Vec::new();
    for f in &files {
        let (corpus, _) = Corpus::read(f, &DataOptions::new())?;
        lines.extend(corpus.lines().iter().cloned());
    }
    let sentences = letter_sentences(&lines, 1000);
    let tokens: usize = sentences.iter().map(|s| s.split(' ').count()).sum();
    let threads = Threads::new(2)?;
    let open = |p: &str| -> Result<BufReader<File>> {
        let path = ctx.data.join(p);
        Ok(BufReader::new(
            File::open(&path).with_context(|| format!("cannot open {}", path.display()))?,
        ))
    };
    // One run per seed: WordSim-353 Spearman, analogy accuracy, seconds,
    // words/s, and the last run's model and evaluations for the notes.
    let mut runs: Vec<[f64; 4]> = Vec::new();
    let mut last = None;
    let mut config = SkipGramConfig::new().with_epochs(ctx.mode.word2vec_epochs);
    for seed in 1..=ctx.mode.word2vec_seeds {
        config = config.with_seed(seed);
        let (model, report) = SkipGram::fit(&config, &sentences, threads, &mut NoObserver)?;
        let vectors = model.vectors()?;
        let sim = evaluate_similarity(&vectors, open("word-similarity/wordsim353.tsv")?)?;
        let analogies = evaluate_analogies(
            &vectors,
            open("word-analogy/google-questions-words.txt")?,
            Some(30_000),
            AnalogyMethod::Add,
        )?;
        let accuracy = analogies.total.accuracy().unwrap_or(f64::NAN);
        let spearman = sim.spearman.unwrap_or(f64::NAN);
        eprintln!(
            "  seed {seed}: WordSim-353 {spearman:.3}  analogies {:.1} %  {:.1} s",
            accuracy * 100.0,
            report.seconds
        );
        runs.push([spearman, accuracy, report.seconds, report.words_per_second()]);
        last = Some((model, report, sim, analogies));
    }
    let (model, report, sim, analogies) = last.expect("at least one seed");
    // One thread trains in place (no private copies): timed on seed 1.
    let one_thread = SkipGram::fit(
        &config.clone().with_seed(1),
        &sentences,
        Threads::single(),
        &mut NoObserver,
    )?
    .1;
    eprintln!("  one thread, seed 1: {:.1} s", one_thread.seconds);
    let column = |k: usize| runs.iter().map(|r| r[k]).collect::<Vec<f64>>();
    let (spearmans, accuracies) = (column(0), column(1));
    let epochs = config.epochs;
    let protocol = format!(
        "{tokens} tokens ([a-z]+, lowercased, 1,000-token sentences), {epochs} epoch{}{}",
        if epochs == 1 { "" } else { "s" },
        if epochs == 5 { "" } else { " (quick; gensim's numbers are for 5)" }
    );
    let seeds = ctx.mode.word2vec_seeds;
    let seed_note =
        if seeds == 1 { "seed 1".to_string() } else { format!("mean of seeds 1-{seeds}") };
    let model_name = format!(
        "SkipGram: dim {}, window {}, negative {}, min_count {}, sample {}, {} threads, {} \
         ({} words)",
        config.embedding_dim,
        config.window,
        config.negative,
        config.min_count,
        config.sample,
        report.threads,
        seed_note,
        model.vocab().len()
    );
    let row =
        |metric: String, ours: f64, gensim: Vec<(String, f64)>, lower: bool, percent: bool| Row {
            dataset: "Austen + Moby Dick + Shakespeare".into(),
            protocol: protocol.clone(),
            model: model_name.clone(),
            metric,
            ours,
            baselines: gensim,
            lower_is_better: lower,
            percent,
            standard_error: None,
        };
    // gensim 4.4 run here on the same sentences and settings (first: the
    // same machine and seeds, so "vs. first" compares with it), then
    // BASELINES.md's run (seed 1, another machine).
    let gensim_runs = format!("gensim 4.4 run here (seeds 1-{})", GENSIM_SEEDS.len());
    let gensim_timed = "gensim 4.4 run here (seeds 1-3, timed the same hour)".to_string();
    let gensim = |published: f64, here: f64, label: &String| {
        vec![(label.clone(), here), ("gensim 4.4 skip-gram (BASELINES.md)".to_string(), published)]
    };
    let gensim_column = |k: usize| GENSIM_SEEDS.iter().map(|s| s[k]).collect::<Vec<f64>>();
    let gensim_mean = |k: usize| mean(&gensim_column(k));
    let (sim_diff, sim_se) = difference_of_means(&spearmans, &gensim_column(0));
    let (analogy_diff, analogy_se) = difference_of_means(&accuracies, &gensim_column(1));
    let difference = if sim_se.is_nan() {
        String::new()
    } else {
        format!(
            ". Ours minus gensim's mean: WordSim {sim_diff:+.3} (standard error {sim_se:.3}), \
             analogies {:+.2} points (standard error {:.2})",
            analogy_diff * 100.0,
            analogy_se * 100.0
        )
    };
    Ok(Section {
        name: "word2vec, literary corpus".into(),
        status: "ran",
        note: format!(
            "WordSim-353: {} pairs used, {} OOV; analogies: {} answered, {} skipped; per seed: \
             WordSim {}, analogies {} (gensim 4.4 run here, same seeds: {} and {}; its `train` \
             took {GENSIM_SECONDS} s on two threads here, against BASELINES.md's 26 s){difference}",
            sim.pairs_used,
            sim.pairs_oov,
            analogies.total.answered(),
            analogies.total.skipped,
            spearmans.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", "),
            accuracies.iter().map(|x| format!("{:.1} %", x * 100.0)).collect::<Vec<_>>().join(", "),
            GENSIM_SEEDS.iter().map(|s| format!("{:.3}", s[0])).collect::<Vec<_>>().join(", "),
            GENSIM_SEEDS
                .iter()
                .map(|s| format!("{:.1} %", s[1] * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        seconds: 0.0,
        rows: vec![
            Row {
                standard_error: Some(sim_se).filter(|se| se.is_finite()),
                ..row(
                    "WordSim-353 Spearman".into(),
                    mean(&spearmans),
                    gensim(0.261, gensim_mean(0), &gensim_runs),
                    false,
                    false,
                )
            },
            Row {
                standard_error: Some(analogy_se).filter(|se| se.is_finite()),
                ..row(
                    "Google analogies, 3CosAdd (30k)".into(),
                    mean(&accuracies),
                    gensim(0.096, gensim_mean(1), &gensim_runs),
                    false,
                    true,
                )
            },
            row(
                format!("training seconds ({epochs} epochs)"),
                mean(&column(2)),
                gensim(26.0, GENSIM_SECONDS, &gensim_timed),
                true,
                false,
            ),
            row(
                "words/s".into(),
                mean(&column(3)),
                gensim(GENSIM_TOKENS / 26.0, GENSIM_TOKENS / GENSIM_SECONDS, &gensim_timed),
                false,
                false,
            ),
            Row {
                model: "SkipGram as above on 1 thread, seed 1 (gensim: 2 threads)".to_string(),
                ..row(
                    format!("training seconds ({epochs} epochs)"),
                    one_thread.seconds,
                    gensim(26.0, GENSIM_SECONDS, &gensim_timed),
                    true,
                    false,
                )
            },
        ],
        details: json!({
            "tokens": tokens,
            "words": model.vocab().len(),
            "spearman": mean(&spearmans),
            "spearman_per_seed": spearmans,
            "analogy_accuracy_per_seed": accuracies,
            "pairs_used": sim.pairs_used,
            "pairs_oov": sim.pairs_oov,
            "analogy_accuracy": mean(&accuracies),
            "analogies_answered": analogies.total.answered(),
            "analogies_skipped": analogies.total.skipped,
            "seconds": mean(&column(2)),
            "words_per_second": mean(&column(3)),
            "one_thread_seconds": one_thread.seconds,
            "one_thread_words_per_second": one_thread.words_per_second(),
        }),
    })
}

fn fmt_value(row: &Row, x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if row.percent {
        format!("{:.1} %", 100.0 * x)
    } else if x >= 1000.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// "better", "worse" or "same" against the first baseline.
fn verdict(row: &Row) -> &'static str {
    let Some(&(_, base)) = row.baselines.first() else { return "" };
    let diff = row.ours - base;
    let rel = diff / base.abs().max(1e-12);
    // Within 0.5 %, or within two standard errors of a difference of
    // means (not significant at about 5 %).
    if rel.abs() < 0.005 || row.standard_error.is_some_and(|se| diff.abs() <= 2.0 * se) {
        "on par"
    } else if (diff < 0.0) == row.lower_is_better {
        "better"
    } else {
        "worse"
    }
}

fn table(sections: &[Section]) -> String {
    let mut t = String::new();
    let _ =
        writeln!(t, "| data set | protocol | our model | metric | ours | baselines | vs. first |");
    let _ = writeln!(t, "|---|---|---|---|---:|---|---|");
    for s in sections {
        if s.rows.is_empty() {
            let _ = writeln!(t, "| {} | {} | | | | | |", s.name, s.note);
        }
        for r in &s.rows {
            let baselines: Vec<String> = r
                .baselines
                .iter()
                .map(|(name, v)| format!("{name} {}", fmt_value(r, *v)))
                .collect();
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | **{}** | {} | {} |",
                r.dataset,
                r.protocol,
                r.model,
                r.metric,
                fmt_value(r, r.ours),
                if baselines.is_empty() { "—".into() } else { baselines.join("; ") },
                verdict(r)
            );
        }
    }
    t
}

fn render(
    sections: &[Section],
    mode: &Mode,
    command: &str,
    machine: &str,
    date: &str,
    seconds: f64,
) -> String {
    let mut md = String::new();
    let quick = mode.name == "quick";
    let _ = writeln!(md, "# embkit evaluation{}\n", if quick { " (QUICK MODE)" } else { "" });
    let _ = writeln!(
        md,
        "Written by `embkit eval-suite`: each model trained and scored on the shared data sets \
         with the published protocol, next to the baselines of the data folder's BASELINES.md \
         (same files and protocol; where a baseline was published on other data this says so). \
         \"vs. first\" compares with the first baseline listed (on par: within 0.5 %, or, for \
         means over seeds, within two standard errors of the difference); lower is better for \
         RMSE, MAE and seconds.\n"
    );
    let _ = writeln!(md, "- command: `{command}`");
    let _ = writeln!(md, "- mode: {}", mode.describe());
    let _ = writeln!(md, "- machine: {machine}");
    let _ = writeln!(md, "- date: {date}");
    let _ = writeln!(md, "- total time: {seconds:.0} s\n");
    let _ = writeln!(md, "## Results\n");
    md.push_str(&table(sections));
    let _ = writeln!(md, "\n## Notes by data set\n");
    for s in sections {
        let _ = writeln!(md, "- **{}** ({}, {:.0} s): {}", s.name, s.status, s.seconds, s.note);
    }
    let _ = writeln!(
        md,
        "\nBaselines: MovieLens from Surprise's README (5-fold CV); polarity measured on this 4k \
         sample with scikit-learn (published on the full 10,662-sentence set: TF-IDF + LR ~0.75, \
         fastText ~0.75, CNN ~0.81); R8 TF-IDF models measured with scikit-learn, fastText as \
         published in the Text GCN paper (same split); word2vec: gensim 4.4 with the same \
         settings and tokens, 2 threads. The machine-readable results are in \
         `evaluation/eval-suite.json`."
    );
    md
}

/// The CPU model and the number of cores, from `/proc/cpuinfo`.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    let cores = if cores == 0 { Threads::available().get() } else { cores };
    format!("{model}, {cores} cores ({} {})", std::env::consts::OS, std::env::consts::ARCH)
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Howard Hinnant's civil_from_days.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_direction() {
        let mut row = Row {
            dataset: String::new(),
            protocol: String::new(),
            model: String::new(),
            metric: String::new(),
            ours: 0.9,
            baselines: vec![("b".into(), 0.934)],
            lower_is_better: true,
            percent: false,
            standard_error: None,
        };
        assert_eq!(verdict(&row), "better");
        row.lower_is_better = false;
        assert_eq!(verdict(&row), "worse");
        row.ours = 0.935;
        assert_eq!(verdict(&row), "on par");
        // 0.9 against 0.934 is within two standard errors of 0.02.
        row.ours = 0.9;
        row.standard_error = Some(0.02);
        assert_eq!(verdict(&row), "on par");
        row.standard_error = Some(0.01);
        assert_eq!(verdict(&row), "worse");
    }

    /// Welch: se = sqrt(s_a^2 / n_a + s_b^2 / n_b) with sample variances;
    /// [1, 2, 3] (var 1) against [2, 4] (var 2): -1 and sqrt(1/3 + 1).
    #[test]
    fn differences_of_means_carry_their_standard_error() {
        let (d, se) = difference_of_means(&[1.0, 2.0, 3.0], &[2.0, 4.0]);
        assert_eq!(d, -1.0);
        assert!((se - (1.0f64 / 3.0 + 1.0).sqrt()).abs() < 1e-12, "{se}");
        let (d, se) = difference_of_means(&[5.0], &[2.0, 4.0]);
        assert_eq!(d, 2.0);
        assert!(se.is_nan());
    }

    #[test]
    fn dates_are_civil() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
