//! `embkit projector` end to end: the page is self-contained, and in a
//! real headless browser (Debian's chromium, when installed) a search
//! given in the address lists the same neighbours as `embkit::query`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use embkit::format::{VectorFormat, Vectors};
use embkit::query::{nearest_neighbors_by, Similarity};
use embkit::Threads;

const CHROMIUM: &str = "/usr/bin/chromium";

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
    let dir = std::env::temp_dir().join(format!("embkit-projector-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../embkit/tests/data/vectors").join(name)
}

/// Writes the page of `args` into `out` and checks it is one file that
/// needs no network.
fn write_page(args: &[&str], out: &Path) -> String {
    let mut all = vec!["projector"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", s(out)]);
    let o = embkit(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(out).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for needle in ["http://", "https://", "<link", "<script src", "<img", "@import", "url("] {
        assert!(!page.contains(needle), "the page refers to something outside it: {needle}");
    }
    assert!(!page.contains("/*EMBKIT_DATA*/"), "the data is in the page");
    page
}

/// The expected neighbours: `embkit::query` on the same rows.
fn expected(vectors: &Vectors, word: &str, k: usize) -> Vec<(String, f32)> {
    let id = vectors.id(word).unwrap();
    nearest_neighbors_by(
        vectors.view(),
        vectors.row(id),
        k,
        &[id],
        Similarity::Cosine,
        Threads::single(),
    )
    .unwrap()
    .into_iter()
    .map(|n| (vectors.words()[n.id as usize].clone(), n.similarity))
    .collect()
}

/// Loads `url` in headless chromium and returns the DOM after the page's
/// scripts ran, or `None` when chromium is not installed.
fn dump_dom(url: &str, scratch: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return None;
    }
    let profile = scratch.join(format!("chromium-profile-{}", url.len()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // Read stdout on a thread so a full pipe never blocks chromium.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = reader.join().unwrap().expect("chromium writes UTF-8");
    assert!(status.success(), "chromium failed on {url}: {status}");
    let _ = std::fs::remove_dir_all(&profile);
    Some(dom)
}

/// The neighbours listed in the page: `(data-word, data-similarity)` of
/// each `<li>` of `<ol id="neighbors">`, in order.
fn listed(dom: &str) -> Vec<(String, f32)> {
    let start = dom.find("<ol id=\"neighbors\">").expect("the neighbour list is in the page");
    let end = start + dom[start..].find("</ol>").unwrap();
    let list = &dom[start..end];
    let attr = |item: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        let from = item.find(&key).unwrap_or_else(|| panic!("{name} in {item}")) + key.len();
        item[from..from + item[from..].find('"').unwrap()].to_string()
    };
    list.split("<li ")
        .skip(1)
        .map(|item| (attr(item, "data-word"), attr(item, "data-similarity").parse().unwrap()))
        .collect()
}

fn file_url(path: &Path, fragment: &str) -> String {
    format!("file://{}#{fragment}", path.canonicalize().unwrap().display())
}

fn assert_same_neighbours(got: &[(String, f32)], want: &[(String, f32)], context: &str) {
    let words = |v: &[(String, f32)]| v.iter().map(|(w, _)| w.clone()).collect::<Vec<_>>();
    assert_eq!(words(got), words(want), "{context}");
    for ((w, a), (_, b)) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{context}: {w}: page {a}, embkit {b}");
    }
}

#[test]
fn the_page_lists_the_neighbours_embkit_finds() {
    let dir = scratch("fixture");

    // The 4 x 3 fixture table (cat, dog, köln, [UNK]), read as .npy.
    let npy = fixture("table.npy");
    let page = dir.join("page.html");
    write_page(&["--vectors", s(&npy)], &page);
    let vectors = Vectors::read(&npy, VectorFormat::Npy).unwrap();

    // Word vectors in three groups, written as word2vec text: t-SNE in 3-D.
    let groups = ["sea", "land", "sky"];
    let mut text = String::from("45 4\n");
    for i in 0..45 {
        let g = i % 3;
        let mut v = [
            0.3 * ((i * 7 % 5) as f32),
            0.2 * ((i * 3 % 4) as f32),
            0.1 * (i % 2) as f32,
            0.25 * ((i * 5 % 3) as f32),
        ];
        v[g] += 3.0;
        text.push_str(&format!("{}{i} {} {} {} {}\n", groups[g], v[0], v[1], v[2], v[3]));
    }
    let w2v = dir.join("groups.txt");
    std::fs::write(&w2v, text).unwrap();
    let page3 = dir.join("groups.html");
    write_page(
        &[
            "--vectors",
            s(&w2v),
            "--method",
            "tsne",
            "--perplexity",
            "8",
            "--iterations",
            "250",
            "--dims",
            "3",
        ],
        &page3,
    );
    let groups_vectors = Vectors::read(&w2v, VectorFormat::Word2Vec).unwrap();

    let cases = [
        (&page, &vectors, "cat", "search=cat", 10),
        (&page, &vectors, "köln", "search=K%C3%B6ln&k=2", 2),
        (&page3, &groups_vectors, "sky5", "search=sky5&k=6", 6),
        (&page3, &groups_vectors, "sea0", "search=sea0", 10),
    ];
    let mut ran = false;
    for (page, vectors, word, fragment, k) in cases {
        let url = file_url(page, fragment);
        let Some(dom) = dump_dom(&url, &dir) else {
            continue;
        };
        ran = true;
        let want = expected(vectors, word, k);
        assert!(!want.is_empty());
        assert_same_neighbours(&listed(&dom), &want, &url);
        assert!(dom.contains(&format!("data-query=\"{word}\"")), "{url}");
    }
    if ran {
        // A word that is not there says so and lists nothing.
        let dom = dump_dom(&file_url(&page, "search=whale"), &dir).unwrap();
        assert!(listed(&dom).is_empty());
        assert!(dom.contains("data-found=\"false\""), "{dom}");
        assert!(dom.contains("is not among the 4 words of this page"));
    } else {
        eprintln!(
            "{CHROMIUM} is not installed: skipped the browser part (the pages were checked to \
             be self-contained)"
        );
    }
}

#[test]
fn the_page_is_written_atomically_and_bad_input_is_refused() {
    let dir = scratch("errors");
    let npy = fixture("table.npy");
    let page = dir.join("page.html");
    let html = write_page(&["--vectors", s(&npy), "--rows", "3", "--dims", "3"], &page);
    // Three rows (the first three words), their full vectors inlined.
    assert!(html.contains("\"words\":[\"cat\",\"dog\",\"köln\"]"), "{html}");
    assert!(html.contains("\"dims\":3"));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["page.html"], "no temporary file is left");

    // Colours from a metadata column, matched by word.
    let meta = dir.join("meta.tsv");
    std::fs::write(&meta, "word\tkind\ncat\tanimal\ndog\tanimal\nköln\tcity\n").unwrap();
    let coloured = dir.join("coloured.html");
    let html = write_page(
        &["--vectors", s(&npy), "--metadata", s(&meta), "--color-by", "kind"],
        &coloured,
    );
    assert!(html.contains("\"category\":[0,0,1,-1]"), "{html}");
    assert!(html.contains("\"categories\":[\"animal\",\"city\"]"));
    assert!(html.contains("\"other\":\"no metadata (1)\""));
    std::fs::remove_file(&coloured).unwrap();
    std::fs::remove_file(&meta).unwrap();

    let o = embkit(&["projector", "--vectors", s(&npy), "--out", s(&dir.join("page.png"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("must end in .html"), "{}", stderr(&o));
    let o = embkit(&[
        "projector",
        "--vectors",
        s(&npy),
        "--method",
        "tsne",
        "--perplexity",
        "5",
        "--out",
        s(&dir.join("t.html")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("perplexity"), "{}", stderr(&o));
    let o = embkit(&["projector", "--vectors", s(&npy), "--dims", "4", "--out", s(&page)]);
    assert_eq!(o.status.code(), Some(2), "clap refuses --dims 4");
}
