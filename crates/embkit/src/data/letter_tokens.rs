//! The tokenisation of gensim's word2vec baseline on the literary corpus
//! (`BASELINES.md`): lowercase, tokens are the runs of `a`-`z`, the token
//! stream cut into sentences of a fixed number of tokens.

/// Appends the tokens of `line` to `tokens`: the line lowercased, then
/// every run of the letters `a`-`z` (anything else separates tokens), as
/// the regex `[a-z]+` on the lowercased text.
///
/// # Examples
///
/// ```
/// use embkit::data::letter_tokens;
///
/// let mut tokens = Vec::new();
/// letter_tokens("Call me Ishmael. Some years ago--never mind", &mut tokens);
/// letter_tokens("don't", &mut tokens);
/// assert_eq!(tokens, ["call", "me", "ishmael", "some", "years", "ago", "never", "mind", "don", "t"]);
/// ```
pub fn letter_tokens(line: &str, tokens: &mut Vec<String>) {
    let mut word = String::new();
    for c in line.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() {
            word.push(c);
        } else if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
}

/// The [`letter_tokens`] of all `lines`, in order, joined with spaces
/// into sentences of `sentence_len` tokens (the last one shorter), as the
/// gensim baseline cut its corpus into 1,000-token chunks. See
/// [`LetterSentences`] for the same sentences one at a time.
///
/// # Panics
///
/// If `sentence_len` is 0.
///
/// # Examples
///
/// ```
/// use embkit::data::letter_sentences;
///
/// let sentences = letter_sentences(["The whale!", "THE sea, the ship."], 2);
/// assert_eq!(sentences, ["the whale", "the sea", "the ship"]);
/// ```
#[track_caller]
pub fn letter_sentences<S: AsRef<str>>(
    lines: impl IntoIterator<Item = S>,
    sentence_len: usize,
) -> Vec<String> {
    LetterSentences::new(lines, sentence_len).collect()
}

/// The sentences of [`letter_sentences`], made as they are asked for:
/// lines are read only as far as the next sentence needs, so a corpus
/// read lazily (a file of any size) is never held whole, only the tokens
/// of the sentence being cut and of the line that completed it.
///
/// # Examples
///
/// ```
/// use embkit::data::LetterSentences;
///
/// let mut sentences = LetterSentences::new(["The whale!", "THE sea, the ship."], 2);
/// assert_eq!(sentences.next().as_deref(), Some("the whale"));
/// assert_eq!(sentences.collect::<Vec<_>>(), ["the sea", "the ship"]);
/// ```
#[derive(Debug)]
pub struct LetterSentences<I> {
    lines: std::iter::Fuse<I>,
    sentence_len: usize,
    /// Tokens read and not yet in a sentence.
    tokens: std::collections::VecDeque<String>,
    /// The tokens of the last line read.
    line_tokens: Vec<String>,
}

impl<S: AsRef<str>, I: Iterator<Item = S>> LetterSentences<I> {
    /// Sentences of `sentence_len` tokens from `lines`.
    ///
    /// # Panics
    ///
    /// If `sentence_len` is 0.
    #[track_caller]
    pub fn new(lines: impl IntoIterator<IntoIter = I>, sentence_len: usize) -> Self {
        assert!(sentence_len > 0, "sentences need at least one token");
        Self {
            lines: lines.into_iter().fuse(),
            sentence_len,
            tokens: std::collections::VecDeque::new(),
            line_tokens: Vec::new(),
        }
    }
}

impl<S: AsRef<str>, I: Iterator<Item = S>> std::iter::FusedIterator for LetterSentences<I> {}

impl<S: AsRef<str>, I: Iterator<Item = S>> Iterator for LetterSentences<I> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        while self.tokens.len() < self.sentence_len {
            let Some(line) = self.lines.next() else { break };
            letter_tokens(line.as_ref(), &mut self.line_tokens);
            self.tokens.extend(self.line_tokens.drain(..));
        }
        if self.tokens.is_empty() {
            return None;
        }
        let n = self.sentence_len.min(self.tokens.len());
        let mut sentence = String::new();
        for (i, token) in self.tokens.drain(..n).enumerate() {
            if i > 0 {
                sentence.push(' ');
            }
            sentence.push_str(&token);
        }
        Some(sentence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cut of all tokens at once, as `letter_sentences` was first
    /// written.
    fn all_at_once(lines: &[&str], n: usize) -> Vec<String> {
        let mut tokens = Vec::new();
        for line in lines {
            letter_tokens(line, &mut tokens);
        }
        tokens.chunks(n).map(|chunk| chunk.join(" ")).collect()
    }

    #[test]
    fn sentences_made_lazily_are_the_cut_of_all_tokens() {
        let long = "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(7);
        let cases: [&[&str]; 6] = [
            &[],
            &["", "123 !!", ""],
            &["One", "two three", "", "four five six seven", "eight"],
            &[&long, "tail end"],
            &["x", &long, "", &long],
            &["Ünïcode wörds—and don't", "ÉCOLE"],
        ];
        for lines in cases {
            for n in [1, 2, 3, 7, 1000] {
                let lazy: Vec<String> = LetterSentences::new(lines.iter(), n).collect();
                assert_eq!(lazy, all_at_once(lines, n), "{lines:?} in sentences of {n}");
            }
        }
    }
}
