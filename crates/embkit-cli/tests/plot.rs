//! End-to-end tests of `embkit plot`: training curves, projections and
//! norm histograms as PNG and SVG, and the errors bad input gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn embkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embkit")).args(args).output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("embkit-plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_success(o: &Output) {
    assert!(o.status.success(), "stderr: {}", stderr(o));
}

/// Asserts a failed run: exit code 1, one `error: ` message with `needle`.
fn assert_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Asserts `path` is a non-empty PNG.
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() > 1000, "{}: {} bytes", path.display(), bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
}

/// Asserts `path` is an SVG drawing holding each of `texts`.
fn assert_svg(path: &Path, texts: &[&str]) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in texts {
        assert!(svg.contains(text), "{text:?} not in {}", path.display());
    }
}

/// No temporary file is left in `dir`.
fn assert_no_temporary_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "{name} left in {}", dir.display());
    }
}

/// Word vectors in three groups of 12 (sea, land and sky words around
/// their own axis), as word2vec text, with a metadata file of their
/// groups.
fn write_groups(dir: &Path) -> (PathBuf, PathBuf) {
    let groups = ["sea", "land", "sky"];
    let mut text = String::from("36 3\n");
    let mut meta = String::from("word\tgroup\tlength\n");
    for i in 0..36 {
        let g = i % 3;
        let mut v = [0.1 * ((i * 7 % 5) as f32), 0.1 * ((i * 3 % 4) as f32), 0.05 * (i % 2) as f32];
        v[g] += 5.0;
        let word = format!("{}{i}", groups[g]);
        text.push_str(&format!("{word} {} {} {}\n", v[0], v[1], v[2]));
        meta.push_str(&format!("{word}\t{}\t{}\n", groups[g], word.len()));
    }
    let vectors = dir.join("groups.txt");
    let metadata = dir.join("groups.meta.tsv");
    std::fs::write(&vectors, text).unwrap();
    std::fs::write(&metadata, meta).unwrap();
    (vectors, metadata)
}

/// A small trained text classifier with a history (train and validation).
fn train_model(dir: &Path) -> PathBuf {
    let data = dir.join("train.tsv");
    let mut text = String::from("label\ttext\n");
    for i in 0..120 {
        if i % 2 == 0 {
            text.push_str(&format!("sea\tthe whale swam in the deep sea near ship {i}\n"));
        } else {
            text.push_str(&format!("land\tthe horse ran over the green hill near farm {i}\n"));
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
        "3",
        "--embedding-dim",
        "4",
        "--sequence-length",
        "10",
        "--quiet",
    ]);
    assert_success(&o);
    model
}

#[test]
fn history_is_drawn_as_png_and_svg() {
    let dir = scratch("history");
    let model = train_model(&dir);
    let png = dir.join("history.png");
    assert_success(&embkit(&["plot", "history", "--model", s(&model), "--out", s(&png)]));
    assert_png(&png);
    let svg = dir.join("history.SVG");
    let o =
        embkit(&["plot", "history", "--model", s(&model), "--out", s(&svg), "--title", "Run 1"]);
    assert_success(&o);
    assert!(stderr(&o).contains("3 epochs: loss, accuracy"), "{}", stderr(&o));
    assert_svg(
        &svg,
        &["Run 1", "training loss", "validation loss", "validation accuracy", "epoch"],
    );
    assert_no_temporary_files(&dir);
}

#[test]
fn projections_are_drawn_with_labels_and_colours() {
    let dir = scratch("projection");
    let (vectors, metadata) = write_groups(&dir);
    let pca = dir.join("pca.svg");
    let o = embkit(&[
        "plot",
        "projection",
        "--vectors",
        s(&vectors),
        "--label",
        "sea0",
        "--label",
        "SKY2",
        "--metadata",
        s(&metadata),
        "--color-by",
        "group",
        "--out",
        s(&pca),
    ]);
    assert_success(&o);
    assert_svg(
        &pca,
        &["PCA", "PC1 (", "% of variance)", "sea0", "sky2", ">\nsea\n<", ">\nland\n<"],
    );
    let svg = std::fs::read_to_string(&pca).unwrap();
    assert!(!svg.contains(">\nland1\n<"), "only the chosen words are labelled");

    // The most frequent words by default; t-SNE; PNG.
    let tsne = dir.join("tsne.png");
    let o = embkit(&[
        "plot",
        "projection",
        "--vectors",
        s(&vectors),
        "--method",
        "tsne",
        "--perplexity",
        "5",
        "--iterations",
        "300",
        "--out",
        s(&tsne),
    ]);
    assert_success(&o);
    assert!(stderr(&o).contains("t-SNE (perplexity 5), 36 points"), "{}", stderr(&o));
    assert_png(&tsne);
    let first = std::fs::read(&tsne).unwrap();
    assert_success(&embkit(&[
        "plot",
        "projection",
        "--vectors",
        s(&vectors),
        "--method",
        "tsne",
        "--perplexity",
        "5",
        "--iterations",
        "300",
        "--out",
        s(&tsne),
    ]));
    assert_eq!(first, std::fs::read(&tsne).unwrap(), "the same seed draws the same map");

    // A model directory, and a colour column matched by line.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embkit/tests/data/vectors");
    let by_line = dir.join("by_line.tsv");
    std::fs::write(&by_line, "kind\tn\nanimal\t1\nanimal\t2\ncity\t3\nnone\t4\n").unwrap();
    let png = dir.join("fixture.png");
    assert_success(&embkit(&[
        "plot",
        "projection",
        "--vectors",
        s(&fixture.join("table.npy")),
        "--metadata",
        s(&by_line),
        "--color-by",
        "kind",
        "--out",
        s(&png),
    ]));
    assert_png(&png);
    assert_no_temporary_files(&dir);
}

#[test]
fn norms_are_drawn_as_a_histogram() {
    let dir = scratch("norms");
    let (vectors, _) = write_groups(&dir);
    let svg = dir.join("norms.svg");
    let o = embkit(&["plot", "norms", "--vectors", s(&vectors), "--bins", "10", "--out", s(&svg)]);
    assert_success(&o);
    assert_svg(&svg, &["L2 norm of the vector", "36 values in 10 bins", "mean 5."]);
    let png = dir.join("norms.png");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embkit/tests/data/model-v1");
    assert_success(&embkit(&["plot", "norms", "--model", s(&model), "--out", s(&png)]));
    assert_png(&png);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = scratch("errors");
    let (vectors, metadata) = write_groups(&dir);
    let v = s(&vectors);
    let out = dir.join("out.png");
    let o = s(&out);

    let jpg = dir.join("out.jpg");
    assert_error(
        &embkit(&["plot", "norms", "--vectors", v, "--out", s(&jpg)]),
        "must end in .png or .svg",
    );
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embkit/tests/data/model-v1");
    assert_error(
        &embkit(&["plot", "history", "--model", s(&golden), "--out", o]),
        "has no training history",
    );
    assert_error(
        &embkit(&["plot", "history", "--model", s(&dir.join("missing")), "--out", o]),
        "loading the model",
    );
    assert_error(
        &embkit(&["plot", "projection", "--vectors", v, "--label", "whale", "--out", o]),
        "\"whale\" is not in",
    );
    assert_error(
        &embkit(&[
            "plot",
            "projection",
            "--vectors",
            v,
            "--metadata",
            s(&metadata),
            "--color-by",
            "colour",
            "--out",
            o,
        ]),
        "no column \"colour\"; the header row names \"word\", \"group\", \"length\"",
    );
    let short = dir.join("short.tsv");
    std::fs::write(&short, "kind\tn\na\t1\n").unwrap();
    assert_error(
        &embkit(&[
            "plot",
            "projection",
            "--vectors",
            v,
            "--metadata",
            s(&short),
            "--color-by",
            "kind",
            "--out",
            o,
        ]),
        "1 lines after the header for 36 rows",
    );
    assert_error(
        &embkit(&[
            "plot",
            "projection",
            "--vectors",
            v,
            "--method",
            "tsne",
            "--perplexity",
            "40",
            "--out",
            o,
        ]),
        "perplexity: 40 is too large for 36 rows",
    );
    assert_error(
        &embkit(&["plot", "projection", "--vectors", v, "--rows", "1", "--out", o]),
        "PCA needs at least 2 rows, got 1",
    );
    let nowhere = dir.join("no/such/dir/out.png");
    assert_error(&embkit(&["plot", "norms", "--vectors", v, "--out", s(&nowhere)]), "drawing");
    // clap's own errors (exit code 2) for a missing source or a lone
    // --color-by.
    let o2 = embkit(&["plot", "norms", "--out", o]);
    assert_eq!(o2.status.code(), Some(2), "{}", stderr(&o2));
    let o2 = embkit(&["plot", "projection", "--vectors", v, "--color-by", "group", "--out", o]);
    assert_eq!(o2.status.code(), Some(2), "{}", stderr(&o2));
    assert!(!out.exists());
    assert_no_temporary_files(&dir);
}
