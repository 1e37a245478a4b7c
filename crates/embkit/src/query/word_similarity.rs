//! Word-similarity evaluation: how well cosine similarities between word
//! vectors rank word pairs the way people scored them (Spearman's rank
//! correlation), as gensim's `evaluate_word_pairs`.

use std::collections::HashMap;
use std::io::BufRead;

use super::neighbors::cosine_similarity;
use crate::format::Vectors;
use crate::{Error, Result};

/// Spearman's rank correlation of `xs` and `ys`: the Pearson correlation
/// of their ranks, tied values sharing the average of their ranks (as
/// `scipy.stats.spearmanr`).
///
/// Returns `None` when it is undefined: fewer than two values, or all of
/// `xs` or all of `ys` equal. Values are ranked with [`f64::total_cmp`],
/// so a NaN does not panic (it ranks above every number).
///
/// # Panics
///
/// If `xs` and `ys` differ in length.
///
/// # Examples
///
/// ```
/// use embkit::query::spearman;
///
/// let rho = spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 40.0, 30.0]).unwrap_or(f64::NAN);
/// assert!((rho - 0.8).abs() < 1e-12);
/// let rho = spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap_or(f64::NAN);
/// assert!((rho + 1.0).abs() < 1e-12);
/// assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
/// ```
#[track_caller]
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    assert_eq!(xs.len(), ys.len(), "as many xs as ys");
    pearson(&ranks(xs), &ranks(ys))
}

/// 1-based ranks, ties given the average of the ranks they span.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut ranks = vec![0.0; xs.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && xs[order[end]].total_cmp(&xs[order[start]]).is_eq() {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson's correlation, or `None` with fewer than two values or a
/// constant side.
fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(xs), mean(ys));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&x, &y) in xs.iter().zip(ys) {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// What [`evaluate_similarity`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityReport {
    /// Spearman's correlation between the people's scores and the cosine
    /// similarities of the pairs used; `None` if undefined (fewer than two
    /// pairs, or constant scores).
    pub spearman: Option<f64>,
    /// Pearson's correlation of the same values.
    pub pearson: Option<f64>,
    /// Pairs with both words in the vocabulary.
    pub pairs_used: usize,
    /// Pairs skipped because a word is not in the vocabulary.
    pub pairs_oov: usize,
}

/// Scores a word-pair file against `vectors`: the Spearman correlation
/// between the file's scores and the cosine similarities of the pairs.
///
/// The file has a one-line header, then `word1<TAB>word2<TAB>score`
/// lines (as the WordSim-353 TSV files). Blank lines and lines starting
/// with `#` are ignored. Words are looked up case-insensitively: both
/// sides are lowercased, and when two rows lowercase to the same word the
/// first stands for it. Pairs with a word not in the vocabulary are
/// counted in `pairs_oov` and left out.
///
/// # Errors
///
/// [`Error::Io`] if reading fails; [`Error::InvalidConfig`] naming the
/// line for a line without three tab-separated fields or with a score
/// that is not a finite number.
///
/// # Examples
///
/// ```
/// use embkit::format::Vectors;
/// use embkit::query::evaluate_similarity;
///
/// let vectors = Vectors::new(
///     ["cat", "dog", "car"].map(String::from).to_vec(),
///     2,
///     vec![1.0, 0.1, 0.9, 0.3, 0.0, 1.0],
/// )?;
/// let pairs = "word1\tword2\tscore\nCat\tdog\t8.5\ncat\tcar\t1.0\ndog\tcar\t2.0\ncat\tmoon\t3\n";
/// let report = evaluate_similarity(&vectors, pairs.as_bytes())?;
/// assert_eq!((report.pairs_used, report.pairs_oov), (3, 1));
/// assert!((report.spearman.unwrap_or(f64::NAN) - 1.0).abs() < 1e-12);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn evaluate_similarity(vectors: &Vectors, pairs: impl BufRead) -> Result<SimilarityReport> {
    let mut index: HashMap<String, u32> = HashMap::with_capacity(vectors.len());
    for (id, word) in vectors.words().iter().enumerate() {
        index.entry(word.to_lowercase()).or_insert(id as u32);
    }
    let (mut human, mut model) = (Vec::new(), Vec::new());
    let mut pairs_oov = 0;
    for (n, line) in pairs.lines().enumerate() {
        let line = line.map_err(Error::io("read", "the word pairs"))?;
        if n == 0 || line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| Error::config("word pairs", format!("line {}: {reason}", n + 1));
        let fields: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        let [w1, w2, score] = fields.as_slice() else {
            return Err(bad(format!(
                "expected word1<TAB>word2<TAB>score, found {} fields",
                fields.len()
            )));
        };
        let score: f64 = match score.trim().parse() {
            Ok(s) if f64::is_finite(s) => s,
            _ => return Err(bad(format!("score {score:?} is not a finite number"))),
        };
        let lookup = |w: &str| index.get(&w.trim().to_lowercase()).copied();
        match (lookup(w1), lookup(w2)) {
            (Some(a), Some(b)) => {
                human.push(score);
                model.push(f64::from(cosine_similarity(vectors.row(a), vectors.row(b))));
            }
            _ => pairs_oov += 1,
        }
    }
    Ok(SimilarityReport {
        spearman: spearman(&human, &model),
        pearson: pearson(&human, &model),
        pairs_used: human.len(),
        pairs_oov,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_the_average_rank() {
        assert_eq!(ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 20.0]), [1.5, 4.0, 1.5, 6.0, 4.0, 4.0]);
    }

    #[test]
    fn nan_does_not_panic() {
        assert_eq!(ranks(&[f64::NAN, 1.0]), [2.0, 1.0]);
    }
}
