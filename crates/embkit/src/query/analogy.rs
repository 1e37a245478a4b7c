//! Word analogies (`a` is to `b` as `c` is to ?) by 3CosAdd and 3CosMul,
//! and their evaluation on a questions-words file.

use std::collections::HashMap;
use std::io::BufRead;

use ndarray::ArrayView2;

use super::neighbors::{top_k, Neighbor};
use crate::format::Vectors;
use crate::{Error, Result};

/// The ε of 3CosMul, as in Levy & Goldberg (2014). gensim's
/// `most_similar_cosmul` uses `1e-6` instead; the two rank alike unless a
/// candidate is almost opposite to `a`.
pub const COSMUL_EPS: f32 = 1e-3;

/// How [`analogy`] scores a candidate row `x` for "`a` is to `b` as `c`
/// is to `x`". Every row is unit-normalised first (a zero row stays zero).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum AnalogyMethod {
    /// 3CosAdd: `cos(x, b - a + c)` on unit vectors, as gensim's
    /// `most_similar(positive=[b, c], negative=[a])`.
    #[default]
    Add,
    /// 3CosMul (Levy & Goldberg): `cos'(x, b) · cos'(x, c) / (cos'(x, a)
    /// + eps)` with `cos' = (cos + 1) / 2` in `[0, 1]`, as gensim's
    /// `most_similar_cosmul` (which uses `eps = 1e-6`).
    Mul {
        /// Keeps the quotient finite; [`COSMUL_EPS`] by default.
        eps: f32,
    },
}

impl AnalogyMethod {
    /// 3CosMul with [`COSMUL_EPS`].
    pub fn mul() -> Self {
        AnalogyMethod::Mul { eps: COSMUL_EPS }
    }
}

/// The first `rows` rows of a table, each scaled to unit length.
struct UnitRows {
    data: Vec<f32>,
    dim: usize,
}

impl UnitRows {
    fn new(table: ArrayView2<'_, f32>, rows: usize) -> Self {
        let dim = table.ncols();
        let mut data = Vec::with_capacity(rows * dim);
        for row in table.outer_iter().take(rows) {
            let norm = row.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
            data.extend(row.iter().map(|&x| x * scale));
        }
        Self { data, dim }
    }

    fn row(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// The score of every row for `a : b :: c : ?`.
    fn scores(&self, a: u32, b: u32, c: u32, method: AnalogyMethod) -> Vec<f32> {
        let (ua, ub, uc) = (self.row(a), self.row(b), self.row(c));
        let rows = self.data.chunks_exact(self.dim);
        match method {
            AnalogyMethod::Add => {
                let mut target: Vec<f32> =
                    ub.iter().zip(uc).zip(ua).map(|((&b, &c), &a)| b + c - a).collect();
                let norm = dot(&target, &target).sqrt();
                if norm > 0.0 {
                    target.iter_mut().for_each(|x| *x /= norm);
                }
                rows.map(|r| dot(r, &target)).collect()
            }
            AnalogyMethod::Mul { eps } => {
                let shifted = |r: &[f32], u: &[f32]| (dot(r, u) + 1.0) / 2.0;
                rows.map(|r| shifted(r, ub) * shifted(r, uc) / (shifted(r, ua) + eps)).collect()
            }
        }
    }
}

/// A dot product with eight partial sums, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The `k` rows that best complete "`a` is to `b` as `c` is to ?", best
/// first, with `a`, `b` and `c` left out. Scores are as described for
/// each [`AnalogyMethod`]; ties go to the smaller id.
///
/// # Shapes
///
/// - `table`: `[num_embeddings, embedding_dim]`
///
/// # Errors
///
/// [`Error::IdOutOfRange`] if `a`, `b` or `c` is not a row of `table`.
///
/// # Examples
///
/// ```
/// use embkit::query::{analogy, AnalogyMethod};
/// use ndarray::array;
///
/// // man, woman, king, queen, apple
/// let table = array![[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, -1.0, 0.2]];
/// let best = analogy(table.view(), 0, 1, 2, 1, AnalogyMethod::Add)?;
/// assert_eq!(best[0].id, 3);
/// let best = analogy(table.view(), 0, 1, 2, 1, AnalogyMethod::mul())?;
/// assert_eq!(best[0].id, 3);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn analogy(
    table: ArrayView2<'_, f32>,
    a: u32,
    b: u32,
    c: u32,
    k: usize,
    method: AnalogyMethod,
) -> Result<Vec<Neighbor>> {
    let rows = table.nrows();
    if let Some(&id) = [a, b, c].iter().find(|&&id| id as usize >= rows) {
        return Err(Error::IdOutOfRange { id, num_embeddings: rows });
    }
    let unit = UnitRows::new(table, rows);
    let scored = unit
        .scores(a, b, c, method)
        .into_iter()
        .enumerate()
        .filter(|&(id, _)| ![a, b, c].contains(&(id as u32)))
        .map(|(id, similarity)| Neighbor { id: id as u32, similarity })
        .collect();
    Ok(top_k(scored, k))
}

/// The score of one section of a questions-words file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SectionScore {
    /// The section's name (the text after `: `), or `total`.
    pub name: String,
    /// Questions whose best answer was the expected word.
    pub correct: usize,
    /// Questions answered with another word.
    pub incorrect: usize,
    /// Questions skipped because a word is not in the (restricted)
    /// vocabulary.
    pub skipped: usize,
}

impl SectionScore {
    /// The questions answered (`correct + incorrect`).
    pub fn answered(&self) -> usize {
        self.correct + self.incorrect
    }

    /// `correct / answered`, or `None` when nothing was answered.
    pub fn accuracy(&self) -> Option<f64> {
        let answered = self.answered();
        (answered > 0).then(|| self.correct as f64 / answered as f64)
    }

    fn add(&mut self, other: &SectionScore) {
        self.correct += other.correct;
        self.incorrect += other.incorrect;
        self.skipped += other.skipped;
    }
}

/// What [`evaluate_analogies`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnalogyReport {
    /// One score per section, in file order.
    pub sections: Vec<SectionScore>,
    /// The sums over all sections (named `total`).
    pub total: SectionScore,
}

/// Answers every question of a questions-words file (as word2vec's
/// `questions-words.txt`: `: section` header lines, then `a b c d` lines
/// meaning "`a` is to `b` as `c` is to `d`") and counts the correct
/// answers, as gensim's `evaluate_word_analogies`.
///
/// Words are compared case-insensitively: the vocabulary's words and the
/// questions' are lowercased, and when two rows lowercase to the same
/// word the first (the more frequent in a file sorted by frequency, as
/// word2vec's) stands for it. With `restrict_vocab = Some(n)` only the
/// first `n` rows are the vocabulary, both for looking up the question's
/// words and as candidate answers (gensim's default is 300000). A
/// question with a word outside it is skipped and counted. The answer is
/// the best candidate by `method` other than `a`, `b` and `c`
/// (gensim uses [`AnalogyMethod::Add`]). Blank lines are ignored.
///
/// # Errors
///
/// [`Error::Io`] if reading fails; [`Error::InvalidConfig`] naming the
/// line for a question before the first section header or a line that is
/// not four words.
///
/// # Examples
///
/// ```
/// use embkit::format::Vectors;
/// use embkit::query::{evaluate_analogies, AnalogyMethod};
///
/// let vectors = Vectors::new(
///     ["man", "woman", "king", "queen"].map(String::from).to_vec(),
///     3,
///     vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0],
/// )?;
/// let questions = ": family\nMan Woman King Queen\nman woman prince princess\n";
/// let report = evaluate_analogies(&vectors, questions.as_bytes(), None, AnalogyMethod::Add)?;
/// assert_eq!(report.total.correct, 1);
/// assert_eq!(report.total.skipped, 1);
/// assert_eq!(report.sections[0].accuracy(), Some(1.0));
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn evaluate_analogies(
    vectors: &Vectors,
    questions: impl BufRead,
    restrict_vocab: Option<usize>,
    method: AnalogyMethod,
) -> Result<AnalogyReport> {
    let rows = restrict_vocab.unwrap_or(vectors.len()).min(vectors.len());
    let unit = UnitRows::new(vectors.view(), rows);
    let lower: Vec<String> = vectors.words()[..rows].iter().map(|w| w.to_lowercase()).collect();
    let mut index: HashMap<&str, u32> = HashMap::with_capacity(rows);
    for (id, word) in lower.iter().enumerate() {
        index.entry(word.as_str()).or_insert(id as u32);
    }

    let mut report = AnalogyReport::default();
    for (n, line) in questions.lines().enumerate() {
        let line = line.map_err(Error::io("read", "the analogy questions"))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix(':') {
            report
                .sections
                .push(SectionScore { name: name.trim().to_string(), ..SectionScore::default() });
            continue;
        }
        let Some(section) = report.sections.last_mut() else {
            return Err(bad_line(n, "a question before the first `: section` header"));
        };
        let words: Vec<String> = line.split_whitespace().map(str::to_lowercase).collect();
        let [a, b, c, d] = words.as_slice() else {
            return Err(bad_line(n, format!("expected four words, found {}", words.len())));
        };
        let ids: Option<Vec<u32>> =
            [a, b, c, d].iter().map(|w| index.get(w.as_str()).copied()).collect();
        let Some(&[ia, ib, ic, _]) = ids.as_deref() else {
            section.skipped += 1;
            continue;
        };
        let inputs = [a.as_str(), b.as_str(), c.as_str()];
        let scored = unit
            .scores(ia, ib, ic, method)
            .into_iter()
            .enumerate()
            .filter(|&(id, _)| !inputs.contains(&lower[id].as_str()))
            .map(|(id, similarity)| Neighbor { id: id as u32, similarity })
            .collect();
        match top_k(scored, 1).first() {
            Some(best) if lower[best.id as usize] == *d => section.correct += 1,
            _ => section.incorrect += 1,
        }
    }
    report.total.name = "total".into();
    for section in &report.sections {
        report.total.add(section);
    }
    Ok(report)
}

fn bad_line(n: usize, reason: impl Into<String>) -> Error {
    Error::config("analogy questions", format!("line {}: {}", n + 1, reason.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }

    #[test]
    fn inputs_out_of_range_are_errors() {
        let table = ndarray::array![[1.0, 0.0], [0.0, 1.0]];
        assert!(analogy(table.view(), 0, 1, 2, 1, AnalogyMethod::Add).is_err());
    }
}
