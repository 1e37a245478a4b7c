//! Text to id sequences: [`TextVectorizer`], after Keras's
//! `TextVectorization` in `int` mode.
//!
//! A text is standardised ([`Standardize`]), split into tokens
//! ([`Split`]) and each token is looked up in a [`Vocabulary<String>`]
//! whose layout is Keras's: id 0 is the mask `""`, id 1 is `[UNK]` (every
//! unknown token), then the tokens by descending frequency, ties by
//! descending token.

use std::io::BufRead;
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{Order, Vocabulary, VocabularyBuilder, VocabularyConfig, OOV_TOKEN};
use crate::{Error, Result};

/// The id of the padding / mask token `""`.
const MASK_ID: u32 = 0;
/// The id every unknown token gets.
const OOV_ID: u32 = 1;

/// What is done to a text before it is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Standardize {
    /// [`Lower`](Self::Lower), then
    /// [`StripPunctuation`](Self::StripPunctuation). The default, as in
    /// Keras, with one deliberate difference: both steps work on all of
    /// Unicode, where Keras lowercases and strips ASCII only (Keras keeps
    /// `"ÀÉÎ"` and `"“quoted”"` as they are; embkit gives `"àéî"` and
    /// `"quoted"`). ASCII text gives the same tokens as Keras.
    #[default]
    LowerAndStripPunctuation,
    /// Unicode lowercase ([`str::to_lowercase`]); Keras lowercases ASCII
    /// letters only.
    Lower,
    /// Removes punctuation: every ASCII punctuation character (the set
    /// Keras strips, apostrophe included: ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``)
    /// and every non-ASCII character that is neither alphanumeric, nor
    /// whitespace, nor a combining mark (U+0300–036F, U+1AB0–1AFF,
    /// U+1DC0–1DFF, U+20D0–20FF, U+FE20–FE2F). That covers Unicode
    /// punctuation such as `“ ” ’ — …`, but also symbols such as `€` and
    /// emoji, which Keras keeps. Nothing is put in their place, so
    /// `"well-known"` becomes `"wellknown"`, as in Keras.
    StripPunctuation,
    /// The text as it is.
    None,
}

impl Standardize {
    /// Applies the standardisation to `text`.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::Standardize;
    ///
    /// let text = "Hello, World! Café’s";
    /// assert_eq!(Standardize::LowerAndStripPunctuation.apply(text), "hello world cafés");
    /// assert_eq!(Standardize::Lower.apply(text), "hello, world! café’s");
    /// ```
    pub fn apply(self, text: &str) -> String {
        match self {
            Standardize::LowerAndStripPunctuation => strip_punctuation(&text.to_lowercase()),
            Standardize::Lower => text.to_lowercase(),
            Standardize::StripPunctuation => strip_punctuation(text),
            Standardize::None => text.to_owned(),
        }
    }
}

fn strip_punctuation(text: &str) -> String {
    text.chars().filter(|&c| !is_punctuation(c)).collect()
}

/// The rule documented at [`Standardize::StripPunctuation`].
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation()
    } else {
        !c.is_alphanumeric() && !c.is_whitespace() && !is_combining_mark(c)
    }
}

fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// How a standardised text is cut into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Split {
    /// At runs of Unicode whitespace ([`str::split_whitespace`]); no
    /// empty tokens. (Keras splits at ASCII whitespace only.)
    #[default]
    Whitespace,
}

/// What [`TextVectorizer`] produces for a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputMode {
    /// One id per token (Keras `output_mode="int"`).
    #[default]
    Int,
}

/// Settings for a [`TextVectorizer`].
///
/// Start from [`TextVectorizerConfig::new`], change what you need with the
/// `with_*` methods, then [`adapt`](Self::adapt) it to a corpus. The
/// config is plain data: a model saves it next to `vocab.txt` and
/// rebuilds the vectorizer with [`TextVectorizer::from_vocab_txt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TextVectorizerConfig {
    /// What is done to a text before it is split.
    pub standardize: Standardize,
    /// How a text is cut into tokens.
    pub split: Split,
    /// What a text becomes.
    pub output_mode: OutputMode,
    /// The most ids the vocabulary may have, counting the mask `""` and
    /// `[UNK]` (as Keras in `int` mode). The most frequent tokens are kept.
    pub max_tokens: Option<usize>,
    /// If set, every sequence is cut or padded with 0 at the end to this
    /// length, as Keras does.
    pub output_sequence_length: Option<usize>,
}

impl Default for TextVectorizerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TextVectorizerConfig {
    /// Keras's defaults: lowercase and strip punctuation, split at
    /// whitespace, `int` output, no size limit, sequences as long as
    /// their texts.
    pub fn new() -> Self {
        Self {
            standardize: Standardize::default(),
            split: Split::default(),
            output_mode: OutputMode::default(),
            max_tokens: None,
            output_sequence_length: None,
        }
    }

    /// Sets [`standardize`](Self::standardize).
    pub fn with_standardize(mut self, standardize: Standardize) -> Self {
        self.standardize = standardize;
        self
    }

    /// Sets [`split`](Self::split).
    pub fn with_split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Sets [`output_mode`](Self::output_mode).
    pub fn with_output_mode(mut self, output_mode: OutputMode) -> Self {
        self.output_mode = output_mode;
        self
    }

    /// Sets [`max_tokens`](Self::max_tokens).
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets [`output_sequence_length`](Self::output_sequence_length).
    pub fn with_output_sequence_length(mut self, output_sequence_length: usize) -> Self {
        self.output_sequence_length = Some(output_sequence_length);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `max_tokens` is below 3 (the mask,
    /// `[UNK]` and one token) or `output_sequence_length` is 0.
    pub fn validate(&self) -> Result<()> {
        if let Some(max) = self.max_tokens.filter(|&m| m < 3) {
            return Err(Error::config(
                "max_tokens",
                format!("counts the mask \"\" and [UNK], so it must be at least 3; got {max}"),
            ));
        }
        if self.output_sequence_length == Some(0) {
            return Err(Error::config("output_sequence_length", "must be at least 1, got 0"));
        }
        Ok(())
    }

    /// The layout of the vectorizer's vocabulary: mask `""`, one OOV id,
    /// frequency order, this config's `max_tokens`.
    pub fn vocabulary_config(&self) -> VocabularyConfig<String> {
        let config = VocabularyConfig::new()
            .with_order(Order::Frequency)
            .with_mask_token(String::new())
            .with_num_oov_indices(1);
        match self.max_tokens {
            Some(max) => config.with_max_tokens(max),
            None => config,
        }
    }

    /// Standardises `text` as [`standardize`](Self::standardize) says.
    pub fn standardize_text(&self, text: &str) -> String {
        self.standardize.apply(text)
    }

    /// Standardises and splits `text`.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let text = self.standardize.apply(text);
        match self.split {
            Split::Whitespace => text.split_whitespace().map(str::to_owned).collect(),
        }
    }

    /// Builds the vocabulary from the tokens of `texts` (Keras's `adapt`):
    /// the `max_tokens - 2` most frequent tokens, ties by descending
    /// token. A token that reads `[UNK]` is not counted.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] if the config is invalid.
    /// - [`Error::EmptyData`] if the texts have no tokens at all.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::TextVectorizerConfig;
    ///
    /// let texts = ["The cat sat.", "The dog sat!", "A cat?"];
    /// let vectorizer = TextVectorizerConfig::new().with_output_sequence_length(4).adapt(texts)?;
    /// let listed: Vec<_> = (0..vectorizer.vocab_size() as u32)
    ///     .filter_map(|id| vectorizer.vocabulary().token_str(id))
    ///     .collect();
    /// assert_eq!(listed, ["", "[UNK]", "the", "sat", "cat", "dog", "a"]);
    /// assert_eq!(vectorizer.vectorize("The bird sat"), [2, 1, 3, 0]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn adapt<I>(&self, texts: I) -> Result<TextVectorizer>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.validate()?;
        let mut builder = VocabularyBuilder::new(self.vocabulary_config());
        for text in texts {
            builder.extend(self.tokens(text.as_ref()).into_iter().filter(|t| t != OOV_TOKEN));
        }
        if builder.num_objects() == 0 {
            return Err(Error::EmptyData { what: "texts: adapt found no tokens".into() });
        }
        Ok(TextVectorizer { config: self.clone(), vocabulary: builder.build()? })
    }
}

/// Turns texts into sequences of ids, as Keras's `TextVectorization` in
/// `int` mode.
///
/// Made by [`TextVectorizerConfig::adapt`], or from a saved config and
/// `vocab.txt` by [`from_vocab_txt`](Self::from_vocab_txt).
///
/// # Examples
///
/// ```
/// use embkit::vocab::{TextVectorizer, TextVectorizerConfig};
///
/// let config = TextVectorizerConfig::new().with_output_sequence_length(3);
/// let vectorizer = config.adapt(["b a b", "c b"])?;
/// let ids = vectorizer.vectorize_batch(["B, b!", "a c b a"]);
/// assert_eq!(ids, ndarray::array![[2, 2, 0], [4, 3, 2]]);
///
/// // A model saves the config (serde) and vocab.txt, and rebuilds it so:
/// let mut vocab_txt = Vec::new();
/// vectorizer.vocabulary().write_vocab_txt(&mut vocab_txt, "vocab.txt")?;
/// let config = vectorizer.config().clone();
/// let back = TextVectorizer::from_vocab_txt(config, &vocab_txt[..], "vocab.txt")?;
/// assert_eq!(back.vocabulary().tokens(), vectorizer.vocabulary().tokens());
/// assert_eq!(back.vectorize_batch(["B, b!", "a c b a"]), ids);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextVectorizer {
    config: TextVectorizerConfig,
    vocabulary: Vocabulary<String>,
}

impl TextVectorizer {
    /// A vectorizer from its config and a vocabulary with its layout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid, or the
    /// vocabulary's mask is not `""`, it does not have exactly one OOV id,
    /// or it has more ids than `max_tokens`.
    pub fn new(config: TextVectorizerConfig, vocabulary: Vocabulary<String>) -> Result<Self> {
        config.validate()?;
        let layout = vocabulary.config();
        if layout.mask_token.as_deref() != Some("") || layout.num_oov_indices != 1 {
            return Err(Error::config(
                "vocabulary",
                format!(
                    "a TextVectorizer needs the mask \"\" and one OOV id; this one has mask {:?} \
                     and {} OOV ids",
                    layout.mask_token, layout.num_oov_indices
                ),
            ));
        }
        if let Some(max) = config.max_tokens.filter(|&m| vocabulary.len() > m) {
            return Err(Error::config(
                "max_tokens",
                format!("is {max}, but the vocabulary has {} ids", vocabulary.len()),
            ));
        }
        Ok(Self { config, vocabulary })
    }

    /// Rebuilds a vectorizer from its config and its `vocab.txt` (as
    /// written by [`Vocabulary::write_vocab_txt`]: `""`, `[UNK]`, then the
    /// tokens). `path` only names the source in errors.
    ///
    /// # Errors
    ///
    /// As [`Vocabulary::from_vocab_txt`] and [`new`](Self::new).
    pub fn from_vocab_txt(
        config: TextVectorizerConfig,
        r: impl BufRead,
        path: impl AsRef<Path>,
    ) -> Result<Self> {
        config.validate()?;
        let vocabulary = Vocabulary::from_vocab_txt(r, path, &config.vocabulary_config())?;
        Self::new(config, vocabulary)
    }

    /// Reads `vocab.txt` from `path` (see
    /// [`from_vocab_txt`](Self::from_vocab_txt)).
    ///
    /// # Errors
    ///
    /// As [`from_vocab_txt`](Self::from_vocab_txt), plus [`Error::Io`] if
    /// the file cannot be opened.
    pub fn load_vocab_txt(config: TextVectorizerConfig, path: impl AsRef<Path>) -> Result<Self> {
        config.validate()?;
        let vocabulary = Vocabulary::load_vocab_txt(path, &config.vocabulary_config())?;
        Self::new(config, vocabulary)
    }

    /// The settings.
    pub fn config(&self) -> &TextVectorizerConfig {
        &self.config
    }

    /// The vocabulary: `""`, `[UNK]`, then the tokens.
    pub fn vocabulary(&self) -> &Vocabulary<String> {
        &self.vocabulary
    }

    /// The number of ids, the mask and `[UNK]` included (Keras's
    /// `vocabulary_size()`): the `num_embeddings` of an embedding table
    /// that takes these ids.
    pub fn vocab_size(&self) -> usize {
        self.vocabulary.len()
    }

    /// `text` standardised as the config says.
    pub fn standardize(&self, text: &str) -> String {
        self.config.standardize_text(text)
    }

    /// The tokens of `text`: standardised, then split.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        self.config.tokens(text)
    }

    /// The ids of the tokens of `text`; 1 for unknown tokens. With
    /// `output_sequence_length` set, cut or padded with 0 at the end to
    /// that length.
    pub fn vectorize(&self, text: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .tokens(text)
            .iter()
            .map(|t| self.vocabulary.lookup(t.as_str()).unwrap_or(OOV_ID))
            .collect();
        if let Some(len) = self.config.output_sequence_length {
            ids.resize(len, MASK_ID);
        }
        ids
    }

    /// The ids of a batch of texts, one row each, padded with 0 at the end.
    ///
    /// Rows are `output_sequence_length` long when that is set (longer
    /// texts are cut at the end), else as long as the longest text in the
    /// batch, as Keras does.
    ///
    /// # Shapes
    ///
    /// - returns: `[batch, seq_len]`
    pub fn vectorize_batch<I>(&self, texts: I) -> Array2<u32>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let rows: Vec<Vec<u32>> = texts.into_iter().map(|t| self.vectorize(t.as_ref())).collect();
        let seq_len = self
            .config
            .output_sequence_length
            .unwrap_or_else(|| rows.iter().map(Vec::len).max().unwrap_or(0));
        let mut out = Array2::from_elem((rows.len(), seq_len), MASK_ID);
        for (mut out_row, row) in out.rows_mut().into_iter().zip(&rows) {
            for (o, &id) in out_row.iter_mut().zip(row) {
                *o = id;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_punctuation_is_exactly_keras_strip_set() {
        let keras = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'";
        for c in (0u8..128).map(char::from) {
            assert_eq!(is_punctuation(c), keras.contains(c), "{c:?}");
        }
    }

    #[test]
    fn combining_accents_survive_stripping() {
        assert_eq!(Standardize::StripPunctuation.apply("Cafe\u{301}!"), "Cafe\u{301}");
    }

    #[test]
    fn unicode_punctuation_and_symbols_are_stripped() {
        assert_eq!(Standardize::StripPunctuation.apply("“Quoted” — x… ¿y? 5€"), "Quoted  x y 5");
    }

    #[test]
    fn lowercasing_is_unicode_aware() {
        assert_eq!(Standardize::Lower.apply("ÀÉÎ ΣΑΣ"), "àéî σας");
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = TextVectorizerConfig::new()
            .with_standardize(Standardize::Lower)
            .with_max_tokens(10)
            .with_output_sequence_length(5);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"standardize\":\"lower\""), "{json}");
        let back: TextVectorizerConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn new_rejects_a_vocabulary_without_the_text_layout() {
        let vocab = Vocabulary::from_objects(["a"], &VocabularyConfig::keras_lookup()).unwrap();
        let err = TextVectorizer::new(TextVectorizerConfig::new(), vocab).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "vocabulary", .. }), "{err}");
    }
}
