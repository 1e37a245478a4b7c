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
/// gensim baseline cut its corpus into 1,000-token chunks.
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
    assert!(sentence_len > 0, "sentences need at least one token");
    let mut tokens = Vec::new();
    for line in lines {
        letter_tokens(line.as_ref(), &mut tokens);
    }
    tokens.chunks(sentence_len).map(|chunk| chunk.join(" ")).collect()
}
