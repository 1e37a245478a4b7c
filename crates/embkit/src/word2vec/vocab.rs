//! The vocabulary of a word2vec run ([`WordCounts`]), the sub-sampling
//! rule ([`keep_probability`]) and the noise distribution
//! ([`NoiseTable`]).

use std::collections::HashMap;

use crate::{Error, Result};

/// The words of a corpus seen at least `min_count` times, most frequent
/// first, with their counts.
///
/// Ties are in order of first appearance (gensim sorts its vocabulary
/// stably by descending count). Words are what whitespace separates, as
/// word2vec reads them, optionally lowercased.
///
/// # Examples
///
/// ```
/// use embkit::word2vec::WordCounts;
///
/// let lines = ["b a b", "c a b", "d"];
/// let vocab = WordCounts::count(lines, false, 2)?;
/// assert_eq!(vocab.words(), ["b", "a"]);
/// assert_eq!(vocab.counts(), [3, 2]);
/// assert_eq!((vocab.total(), vocab.corpus_words()), (5, 7));
/// assert_eq!(vocab.id("a"), Some(1));
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordCounts {
    words: Vec<String>,
    counts: Vec<u64>,
    index: HashMap<String, u32>,
    corpus_words: u64,
    lowercase: bool,
}

impl WordCounts {
    /// Counts the words of `lines` and keeps those seen at least
    /// `min_count` times.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] if the lines hold no word, or none is seen
    /// `min_count` times; [`Error::InvalidConfig`] for more words than
    /// `u32` ids.
    pub fn count<S: AsRef<str>>(
        lines: impl IntoIterator<Item = S>,
        lowercase: bool,
        min_count: u64,
    ) -> Result<Self> {
        let mut seen: HashMap<String, (u64, usize)> = HashMap::new();
        let mut corpus_words = 0u64;
        let mut lowered = String::new();
        for line in lines {
            for word in line.as_ref().split_whitespace() {
                corpus_words += 1;
                let word = if lowercase {
                    lowered.clear();
                    lowered.extend(word.chars().flat_map(char::to_lowercase));
                    lowered.as_str()
                } else {
                    word
                };
                match seen.get_mut(word) {
                    Some(entry) => entry.0 += 1,
                    None => {
                        let first = seen.len();
                        seen.insert(word.to_owned(), (1, first));
                    }
                }
            }
        }
        if corpus_words == 0 {
            return Err(Error::EmptyData { what: "corpus: no words".into() });
        }
        let mut kept: Vec<(String, u64, usize)> = seen
            .into_iter()
            .filter(|(_, (n, _))| *n >= min_count)
            .map(|(w, (n, f))| (w, n, f))
            .collect();
        if kept.is_empty() {
            return Err(Error::EmptyData {
                what: format!(
                    "vocabulary: no word of the corpus ({corpus_words} words) is seen at least \
                     {min_count} times (min_count)"
                ),
            });
        }
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        let (words, counts): (Vec<String>, Vec<u64>) =
            kept.into_iter().map(|(w, n, _)| (w, n)).unzip();
        Self::from_counts(words, counts, corpus_words, lowercase)
    }

    /// A vocabulary of the given words and counts, in that order (ids are
    /// positions); `corpus_words` is the number of words of the corpus
    /// they were counted in, rare words included.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] without words; [`Error::InvalidConfig`] if the
    /// lengths differ, a word appears twice, is empty or holds whitespace,
    /// a count is 0, the counts sum past `u64::MAX`, or there are more
    /// words than `u32` ids.
    pub fn from_counts(
        words: Vec<String>,
        counts: Vec<u64>,
        corpus_words: u64,
        lowercase: bool,
    ) -> Result<Self> {
        if words.is_empty() {
            return Err(Error::EmptyData { what: "vocabulary: no words".into() });
        }
        if words.len() != counts.len() {
            return Err(Error::config(
                "counts",
                format!("has {} entries for {} words", counts.len(), words.len()),
            ));
        }
        if u32::try_from(words.len()).is_err() {
            return Err(Error::config(
                "words",
                format!("{} words are more than u32 ids", words.len()),
            ));
        }
        if counts.iter().try_fold(0u64, |sum, &c| sum.checked_add(c)).is_none() {
            return Err(Error::config(
                "counts",
                format!("the {} counts sum past u64::MAX", counts.len()),
            ));
        }
        let mut index = HashMap::with_capacity(words.len());
        for (id, (word, &count)) in words.iter().zip(&counts).enumerate() {
            if word.is_empty() || word.contains(char::is_whitespace) {
                return Err(Error::config(
                    "words",
                    format!("{word:?} (row {}) is empty or holds whitespace", id + 1),
                ));
            }
            if count == 0 {
                return Err(Error::config("counts", format!("{word:?} has count 0")));
            }
            if let Some(first) = index.insert(word.clone(), id as u32) {
                return Err(Error::config(
                    "words",
                    format!("{word:?} appears twice (rows {} and {})", first + 1, id + 1),
                ));
            }
        }
        Ok(Self { words, counts, index, corpus_words, lowercase })
    }

    /// The words, in id order (most frequent first).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Each word's count, in id order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The id of `word` (lowercased first if the vocabulary was counted
    /// with lowercasing), if it is in the vocabulary.
    pub fn id(&self, word: &str) -> Option<u32> {
        if self.lowercase {
            self.index.get(&word.to_lowercase()).copied()
        } else {
            self.index.get(word).copied()
        }
    }

    /// Whether words are lowercased before they are looked up.
    pub fn lowercase(&self) -> bool {
        self.lowercase
    }

    /// The number of words in the vocabulary.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether the vocabulary has no words (never true for a built one).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The sum of the counts: how many words of the corpus are in the
    /// vocabulary (word2vec's `train_words`, the `total` of
    /// [`keep_probability`]).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// How many words the corpus had, rare words included.
    pub fn corpus_words(&self) -> u64 {
        self.corpus_words
    }
}

/// The probability that sub-sampling keeps an occurrence of a word seen
/// `count` times among `total` vocabulary words, with threshold `sample`:
/// word2vec's `(sqrt(f / (sample * total)) + 1) * (sample * total) / f`,
/// capped at 1. With `sample == 0` (or `count == 0`) every word is kept.
///
/// # Examples
///
/// ```
/// use embkit::word2vec::keep_probability;
///
/// // sample * total = 1: a word seen 100 times is kept 11 times in 100.
/// assert!((keep_probability(100, 1000, 1e-3) - 0.11).abs() < 1e-12);
/// assert_eq!(keep_probability(1, 1000, 1e-3), 1.0);
/// assert_eq!(keep_probability(500, 1000, 0.0), 1.0);
/// ```
pub fn keep_probability(count: u64, total: u64, sample: f64) -> f64 {
    if sample <= 0.0 || count == 0 {
        return 1.0;
    }
    let threshold = sample * total as f64;
    let f = count as f64;
    (((f / threshold).sqrt() + 1.0) * threshold / f).min(1.0)
}

/// Sub-sampling thresholds on 32 random bits: a word is kept when a
/// uniform `u32` is below its threshold (`2^32` keeps it always).
pub(crate) fn keep_thresholds(counts: &[u64], sample: f64) -> Vec<u64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| (keep_probability(c, total, sample) * 4_294_967_296.0).round() as u64)
        .collect()
}

/// The noise distribution of negative sampling: word `i` is drawn with
/// probability `count_i^exponent / Σ_j count_j^exponent` (word2vec's
/// unigram table with exponent 0.75).
///
/// word2vec fills a table of 10⁸ ids and gensim binary-searches a
/// cumulative table; this is Walker's alias method (Vose's construction),
/// exact to 2⁻³² per word and one random number per draw in constant
/// time, with two small arrays of one entry per word.
///
/// # Examples
///
/// ```
/// use embkit::word2vec::NoiseTable;
///
/// let table = NoiseTable::new(&[16, 1], 0.75)?;
/// let p = table.probabilities();
/// assert!((p[0] - 8.0 / 9.0).abs() < 1e-9);
/// assert!((p[1] - 1.0 / 9.0).abs() < 1e-9);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseTable {
    /// Per column, the threshold on 32 random bits below which the column's
    /// own word is drawn.
    threshold: Vec<u32>,
    /// Per column, the word drawn otherwise.
    alias: Vec<u32>,
}

impl NoiseTable {
    /// The table for these counts.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] without counts; [`Error::InvalidConfig`] if
    /// `exponent` is not finite, the weights do not sum to a positive
    /// finite number, or there are more words than `u32` ids.
    pub fn new(counts: &[u64], exponent: f64) -> Result<Self> {
        if counts.is_empty() {
            return Err(Error::EmptyData { what: "noise table: no words".into() });
        }
        if !exponent.is_finite() {
            return Err(Error::config("ns_exponent", format!("must be finite, got {exponent}")));
        }
        let n = counts.len();
        if u32::try_from(n).is_err() {
            return Err(Error::config("words", format!("{n} words are more than u32 ids")));
        }
        let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(exponent)).collect();
        let sum: f64 = weights.iter().sum();
        if !(sum.is_finite() && sum > 0.0) {
            return Err(Error::config(
                "ns_exponent",
                format!("{exponent} gives noise weights that sum to {sum}"),
            ));
        }
        // Vose: scaled weights (mean 1) split into small and large; each
        // small column is topped up by a large one.
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut threshold = vec![u32::MAX; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            threshold[s] = to_threshold(scaled[s]);
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is full up to rounding: always its own word.
        for i in small.into_iter().chain(large) {
            threshold[i] = u32::MAX;
            alias[i] = i as u32;
        }
        Ok(Self { threshold, alias })
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.alias.len()
    }

    /// Whether there are no words (never true for a built table).
    pub fn is_empty(&self) -> bool {
        self.alias.is_empty()
    }

    /// The word drawn for 64 random bits: the high 32 pick a column, the
    /// low 32 choose between the column's word and its alias.
    #[inline(always)]
    pub fn draw(&self, random: u64) -> u32 {
        let column = (((random >> 32) * self.alias.len() as u64) >> 32) as usize;
        // A full column's alias is itself, so `u32::MAX` needs no case.
        if (random as u32) < self.threshold[column] {
            column as u32
        } else {
            self.alias[column]
        }
    }

    /// The probability of drawing each word, as the table stores it (for
    /// tests and inspection; O(words)).
    pub fn probabilities(&self) -> Vec<f64> {
        let n = self.alias.len();
        let mut p = vec![0.0; n];
        let full = 4_294_967_296.0;
        for (column, (&t, &alias)) in self.threshold.iter().zip(&self.alias).enumerate() {
            if alias as usize == column {
                p[column] += 1.0;
            } else {
                p[column] += f64::from(t) / full;
                p[alias as usize] += (full - f64::from(t)) / full;
            }
        }
        p.iter().map(|x| x / n as f64).collect()
    }
}

fn to_threshold(fraction: f64) -> u32 {
    (fraction * 4_294_967_296.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_table_reproduces_the_weights() {
        let counts = [1000, 1, 7, 7, 300, 2, 50];
        let table = NoiseTable::new(&counts, 0.75).unwrap();
        let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
        let sum: f64 = weights.iter().sum();
        for (p, w) in table.probabilities().iter().zip(&weights) {
            assert!((p - w / sum).abs() < 1e-8, "{p} vs {}", w / sum);
        }
    }

    #[test]
    fn draws_cover_every_column_and_alias() {
        let table = NoiseTable::new(&[3, 1], 1.0).unwrap();
        // Column 1 (weight 0.5 of mean) is word 1 below half, word 0 above.
        assert_eq!(table.draw(1 << 63), 1);
        assert_eq!(table.draw((1 << 63) | 0xFFFF_FFFF), 0);
        assert_eq!(table.draw(0), 0);
    }
}
