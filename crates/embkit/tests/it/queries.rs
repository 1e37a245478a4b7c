//! Integration tests: neighbours by each similarity, analogies and
//! word-similarity evaluation.

use std::path::Path;

use embkit::format::{VectorFormat, Vectors};
use embkit::query::{
    analogy, evaluate_analogies, evaluate_similarity, nearest_neighbors_batch,
    nearest_neighbors_by, spearman, AnalogyMethod, Similarity,
};
use embkit::Threads;
use ndarray::{array, Array2};
use proptest::prelude::*;

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol
}

// scipy 1.17.1, with ties on both sides:
//     from scipy.stats import spearmanr
//     spearmanr([1, 2, 2, 3, 4, 4, 4, 5], [2, 1, 4, 3, 6, 5, 5, 7]).statistic
//     spearmanr([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]).statistic
//     spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic
const SCIPY_1: f64 = 0.9015094183400432;
const SCIPY_2: f64 = 0.19885368120992467;
const SCIPY_3: f64 = 0.8207826816681233;

#[test]
fn spearman_matches_scipy_with_ties() {
    let cases: [(&[f64], &[f64], f64); 3] = [
        (&[1., 2., 2., 3., 4., 4., 4., 5.], &[2., 1., 4., 3., 6., 5., 5., 7.], SCIPY_1),
        (&[3., 1., 4., 1., 5., 9., 2., 6.], &[2., 7., 1., 8., 2., 8., 1., 8.], SCIPY_2),
        (&[1., 2., 3., 4., 5.], &[5., 6., 7., 8., 7.], SCIPY_3),
    ];
    for (xs, ys, want) in cases {
        let got = spearman(xs, ys).unwrap();
        assert!(close(got, want, 1e-12), "{xs:?} {ys:?}: {got} != {want}");
    }
}

#[test]
fn spearman_is_undefined_for_constant_or_tiny_inputs() {
    assert_eq!(spearman(&[], &[]), None);
    assert_eq!(spearman(&[1.0], &[2.0]), None);
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]), None);
}

/// a = (1, 0), b = (0, 1), c = (0.6, 0.8); candidates (0, 2), (-1, 0),
/// (3, 4). 3CosAdd: cos(x, b - a + c) with b - a + c = (-0.4, 1.8), so
/// 1.8/√3.4, 0.4/√3.4, 1.2/√3.4. 3CosMul with cos' = (cos + 1)/2:
/// (0, 2): 1 · 0.9 / (0.5 + ε); (-1, 0): 0.5 · 0.2 / (0 + ε);
/// (3, 4): 0.9 · 1 / (0.8 + ε). The candidate opposite to `a` wins under
/// 3CosMul: its denominator is only ε.
fn analogy_table() -> Array2<f32> {
    array![[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.0, 2.0], [-1.0, 0.0], [3.0, 4.0]]
}

#[test]
fn three_cos_add_known_answer() {
    let table = analogy_table();
    let got = analogy(table.view(), 0, 1, 2, 10, AnalogyMethod::Add).unwrap();
    let ids: Vec<u32> = got.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![3, 5, 4], "inputs are left out");
    let root = 3.4f64.sqrt();
    for (n, want) in got.iter().zip([1.8 / root, 1.2 / root, 0.4 / root]) {
        assert!(close(f64::from(n.similarity), want, 1e-6), "{n:?} != {want}");
    }
}

#[test]
fn three_cos_mul_known_answer() {
    let table = analogy_table();
    for eps in [1e-3f32, 1e-6] {
        let got = analogy(table.view(), 0, 1, 2, 10, AnalogyMethod::Mul { eps }).unwrap();
        let ids: Vec<u32> = got.iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![4, 3, 5]);
        let eps = f64::from(eps);
        for (n, want) in got.iter().zip([0.1 / eps, 0.9 / (0.5 + eps), 0.9 / (0.8 + eps)]) {
            assert!(close(f64::from(n.similarity), want, want * 1e-4), "{n:?} != {want}");
        }
    }
    assert_eq!(AnalogyMethod::mul(), AnalogyMethod::Mul { eps: 1e-3 });
}

fn family_vectors() -> Vectors {
    // Axes: person, female, royal, young.
    let rows: [(&str, [f32; 4]); 7] = [
        ("man", [1.0, 0.0, 0.0, 0.0]),
        ("woman", [1.0, 1.0, 0.0, 0.0]),
        ("king", [1.0, 0.0, 1.0, 0.0]),
        ("queen", [1.0, 1.0, 1.0, 0.0]),
        ("boy", [1.0, 0.0, 0.0, 1.0]),
        ("girl", [1.0, 1.0, 0.0, 1.0]),
        // Lowercases to an earlier word: that row stands for "queen".
        ("Queen", [-1.0, 0.0, 0.0, -1.0]),
    ];
    Vectors::new(
        rows.iter().map(|(w, _)| w.to_string()).collect(),
        4,
        rows.iter().flat_map(|(_, v)| *v).collect(),
    )
    .unwrap()
}

const QUESTIONS: &str = "\
: family
MAN WOMAN KING QUEEN
man woman boy girl
king queen man woman
man woman prince princess

: wrong-answers
man king woman girl
";

#[test]
fn analogy_evaluation_counts_per_section() {
    let vectors = family_vectors();
    let report =
        evaluate_analogies(&vectors, QUESTIONS.as_bytes(), None, AnalogyMethod::Add).unwrap();
    let names: Vec<&str> = report.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["family", "wrong-answers"]);
    let family = &report.sections[0];
    assert_eq!((family.correct, family.incorrect, family.skipped), (3, 0, 1));
    let wrong = &report.sections[1];
    assert_eq!((wrong.correct, wrong.incorrect, wrong.skipped), (0, 1, 0));
    assert_eq!((report.total.correct, report.total.incorrect, report.total.skipped), (3, 1, 1));
    assert_eq!(report.total.accuracy(), Some(0.75));
    assert_eq!(report.total.name, "total");

    let mul =
        evaluate_analogies(&vectors, QUESTIONS.as_bytes(), None, AnalogyMethod::mul()).unwrap();
    assert_eq!(mul.total.answered(), 4);
}

#[test]
fn restricting_the_vocabulary_skips_rare_words() {
    let vectors = family_vectors();
    let report =
        evaluate_analogies(&vectors, QUESTIONS.as_bytes(), Some(4), AnalogyMethod::Add).unwrap();
    // boy and girl are rows 4 and 5, outside the first four: the three
    // questions with them (and the one with prince) are skipped.
    assert_eq!((report.total.correct, report.total.incorrect, report.total.skipped), (2, 0, 3));
}

#[test]
fn malformed_question_files_are_errors_naming_the_line() {
    let vectors = family_vectors();
    let err =
        evaluate_analogies(&vectors, "man woman king queen\n".as_bytes(), None, Default::default())
            .unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    let err =
        evaluate_analogies(&vectors, ": s\nman woman king\n".as_bytes(), None, Default::default())
            .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn similarity_evaluation_on_a_tiny_file() {
    let vectors = family_vectors();
    // Cosines: man-woman 0.707, king-queen 0.816, man-king 0.707,
    // boy-girl 0.816, woman-queen 0.816, man-girl 0.577.
    let pairs = "word1\tword2\tscore\n\
        Man\twoman\t5\n\
        king\tQUEEN\t8\n\
        # a comment\n\
        man\tking\t5\n\
        \n\
        boy\tgirl\t8\n\
        man\tgirl\t1\n\
        man\tprince\t3\n";
    let report = evaluate_similarity(&vectors, pairs.as_bytes()).unwrap();
    assert_eq!((report.pairs_used, report.pairs_oov), (5, 1));
    // The model's order equals the people's, ties included.
    assert!(close(report.spearman.unwrap(), 1.0, 1e-12), "{report:?}");
}

#[test]
fn similarity_evaluation_rejects_bad_lines() {
    let vectors = family_vectors();
    let err = evaluate_similarity(&vectors, "h\nman\twoman\n".as_bytes()).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = evaluate_similarity(&vectors, "h\nman\twoman\thigh\n".as_bytes()).unwrap_err();
    assert!(err.to_string().contains("\"high\""), "{err}");
}

const FIXTURES: &str = "/work/shared/data/word-vector-format-fixtures";
const WORDSIM: &str = "/work/shared/data/word-similarity/wordsim353.tsv";

/// WordSim-353 against the 2,747-word Lee-corpus vectors: every pair is
/// either used or out of vocabulary, and a sane share is used. Skipped
/// when the shared data folder is missing.
#[test]
fn wordsim353_on_the_lee_vectors() {
    if !Path::new(FIXTURES).is_dir() || !Path::new(WORDSIM).is_file() {
        eprintln!("skipped: {FIXTURES} or {WORDSIM} is missing");
        return;
    }
    let vectors = Vectors::read(
        Path::new(FIXTURES).join("euclidean_vectors.bin"),
        VectorFormat::Word2VecBinary,
    )
    .unwrap();
    let file = std::io::BufReader::new(std::fs::File::open(WORDSIM).unwrap());
    let report = evaluate_similarity(&vectors, file).unwrap();
    assert_eq!(report.pairs_used + report.pairs_oov, 353);
    assert!(report.pairs_used >= 20 && report.pairs_oov >= 20, "{report:?}");
    let rho = report.spearman.unwrap();
    assert!((-1.0..=1.0).contains(&rho), "{report:?}");
}

/// The cosine neighbours of the golden file (numpy, f64) come back in the
/// same order with the same scores.
#[test]
fn cosine_neighbours_match_the_golden_file() {
    let golden = Path::new(FIXTURES).join("euclidean_vectors.most_similar.golden.tsv");
    if !golden.is_file() {
        eprintln!("skipped: {} is missing", golden.display());
        return;
    }
    let vectors = Vectors::read(
        Path::new(FIXTURES).join("euclidean_vectors.bin"),
        VectorFormat::Word2VecBinary,
    )
    .unwrap();
    let text = std::fs::read_to_string(golden).unwrap();
    let mut checked = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (query, rank, word, cosine): (&str, usize, &str, f64) =
            (f[0], f[1].parse().unwrap(), f[2], f[3].parse().unwrap());
        let id = vectors.id(query).unwrap();
        let near = nearest_neighbors_by(
            vectors.view(),
            vectors.row(id),
            10,
            &[id],
            Similarity::Cosine,
            Threads::single(),
        )
        .unwrap();
        let got = near[rank - 1];
        assert_eq!(vectors.words()[got.id as usize], word, "{query} rank {rank}");
        assert!(close(f64::from(got.similarity), cosine, 1e-5));
        checked += 1;
    }
    assert_eq!(checked, 40);
}

/// The slow definition of each score, in the same f64 summation order.
fn oracle_score(similarity: Similarity, q: &[f32], r: &[f32]) -> f32 {
    let dot: f64 = q.iter().zip(r).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    match similarity {
        Similarity::Dot => dot as f32,
        Similarity::Euclidean => {
            let sq: f64 =
                q.iter().zip(r).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum();
            -sq.sqrt() as f32
        }
        _ => embkit::query::cosine_similarity(q, r),
    }
}

fn similarity() -> impl Strategy<Value = Similarity> {
    prop::sample::select(Similarity::ALL.to_vec())
}

proptest! {
    /// Top-k under each similarity is the first k of a full sort of every
    /// row's score (largest first, ties by smaller id), excluded ids left
    /// out.
    #[test]
    fn top_k_by_each_similarity_equals_a_full_sort(
        rows in 1usize..40,
        dim in 1usize..6,
        k in 0usize..45,
        exclude in prop::collection::vec(0u32..45, 0..4),
        similarity in similarity(),
        // Small integers make ties common.
        values in prop::collection::vec(-2i8..3, 40 * 6),
        query in prop::collection::vec(-2i8..3, 6),
    ) {
        let table = Array2::from_shape_fn((rows, dim), |(r, c)| f32::from(values[r * 6 + c]));
        let query: Vec<f32> = query[..dim].iter().map(|&x| f32::from(x)).collect();
        let got = nearest_neighbors_by(table.view(), &query, k, &exclude, similarity, Threads::single())
            .unwrap();

        let mut all: Vec<(u32, f32)> = (0..rows as u32)
            .filter(|id| !exclude.contains(id))
            .map(|id| {
                let row = table.row(id as usize);
                (id, oracle_score(similarity, &query, row.as_slice().unwrap()))
            })
            .collect();
        all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        all.truncate(k);
        let got: Vec<(u32, f32)> = got.iter().map(|n| (n.id, n.similarity)).collect();
        prop_assert_eq!(got, all);
    }

    /// The batch is the single-query search applied to each query.
    #[test]
    fn batch_equals_one_query_at_a_time(
        rows in 1usize..20,
        queries in 1usize..5,
        k in 0usize..8,
        similarity in similarity(),
        values in prop::collection::vec(-3i8..4, 20 * 3),
        qvalues in prop::collection::vec(-3i8..4, 5 * 3),
        threads in 1usize..4,
    ) {
        let table = Array2::from_shape_fn((rows, 3), |(r, c)| f32::from(values[r * 3 + c]));
        let qs = Array2::from_shape_fn((queries, 3), |(r, c)| f32::from(qvalues[r * 3 + c]));
        let exclude: Vec<Vec<u32>> = (0..queries as u32).map(|i| vec![i]).collect();
        let threads = Threads::new(threads).unwrap();
        let got = nearest_neighbors_batch(table.view(), qs.view(), k, &exclude, similarity, threads)
            .unwrap();
        for (i, near) in got.iter().enumerate() {
            let q = qs.row(i);
            let one = nearest_neighbors_by(
                table.view(), q.as_slice().unwrap(), k, &exclude[i], similarity, Threads::single(),
            ).unwrap();
            prop_assert_eq!(near, &one);
        }
    }
}

const QUESTIONS_WORDS: &str = "/work/shared/data/word-analogy/google-questions-words.txt";

// gensim 4.4.0 (pip, in a venv), on the same files:
//     from gensim.models import KeyedVectors
//     kv = KeyedVectors.load_word2vec_format(".../euclidean_vectors.bin", binary=True)
//     kv.evaluate_word_pairs(".../wordsim353.tsv")
//     # ((0.24425010544844747, ...), (0.2736024134516744, ...), 69.12181303116147)
//     score, sections = kv.evaluate_word_analogies(".../google-questions-words.txt")
//     [(s["section"], len(s["correct"]), len(s["incorrect"])) for s in sections]
//     kv.evaluate_word_analogies(..., restrict_vocab=1000)  # total: 2 correct, 34 incorrect
//     kv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)
//     kv.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=3)
/// The Lee-corpus vectors give gensim's numbers for word pairs, the
/// Google analogies (per section, and restricted) and both analogy
/// methods. Skipped when the shared data folder is missing.
#[test]
fn lee_vectors_match_gensim() {
    if !Path::new(FIXTURES).is_dir() || !Path::new(WORDSIM).is_file() {
        eprintln!("skipped: {FIXTURES} or {WORDSIM} is missing");
        return;
    }
    let vectors = Vectors::read(
        Path::new(FIXTURES).join("euclidean_vectors.bin"),
        VectorFormat::Word2VecBinary,
    )
    .unwrap();
    let pairs = std::fs::read(WORDSIM).unwrap();
    let report = evaluate_similarity(&vectors, pairs.as_slice()).unwrap();
    assert!(close(report.spearman.unwrap(), 0.2736024134516744, 1e-9), "{report:?}");
    assert!(close(report.pearson.unwrap(), 0.24425010544844747, 1e-6), "{report:?}");
    assert!(close(report.pairs_oov as f64 / 353.0 * 100.0, 69.12181303116147, 1e-9));

    let word = |w: &str| vectors.id(w).unwrap();
    let (man, king, woman) = (word("man"), word("king"), word("woman"));
    let gensim_add = [
        ("sides", 0.9249380826950073),
        ("wake", 0.8860051035881042),
        ("communities", 0.8742090463638306),
    ];
    let gensim_mul = [
        ("major", 2.1263248920440674),
        ("towns", 1.6312041282653809),
        ("damage", 1.6300352811813354),
    ];
    for (method, want) in
        [(AnalogyMethod::Add, gensim_add), (AnalogyMethod::Mul { eps: 1e-6 }, gensim_mul)]
    {
        let got = analogy(vectors.view(), man, woman, king, 3, method).unwrap();
        for (n, (w, score)) in got.iter().zip(want) {
            assert_eq!(vectors.words()[n.id as usize], w, "{method:?}");
            assert!(close(f64::from(n.similarity), score, 1e-5), "{method:?} {n:?}");
        }
    }

    if !Path::new(QUESTIONS_WORDS).is_file() {
        eprintln!("skipped: {QUESTIONS_WORDS} is missing");
        return;
    }
    let questions = std::fs::read(QUESTIONS_WORDS).unwrap();
    let report =
        evaluate_analogies(&vectors, questions.as_slice(), None, AnalogyMethod::Add).unwrap();
    let got: Vec<(&str, usize, usize)> =
        report.sections.iter().map(|s| (s.name.as_str(), s.correct, s.incorrect)).collect();
    assert_eq!(
        got,
        [
            ("capital-common-countries", 0, 20),
            ("capital-world", 0, 14),
            ("currency", 0, 2),
            ("city-in-state", 0, 0),
            ("family", 1, 19),
            ("gram1-adjective-to-adverb", 0, 6),
            ("gram2-opposite", 0, 6),
            ("gram3-comparative", 0, 56),
            ("gram4-superlative", 0, 20),
            ("gram5-present-participle", 0, 56),
            ("gram6-nationality-adjective", 0, 41),
            ("gram7-past-tense", 0, 110),
            ("gram8-plural", 0, 56),
            ("gram9-plural-verbs", 0, 2),
        ]
    );
    assert_eq!(report.total.answered() + report.total.skipped, 19544);
    let restricted =
        evaluate_analogies(&vectors, questions.as_slice(), Some(1000), AnalogyMethod::Add).unwrap();
    assert_eq!((restricted.total.correct, restricted.total.incorrect), (2, 34));
}
