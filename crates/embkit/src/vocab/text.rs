//! Text to ids or to per-text vectors: [`TextVectorizer`], after Keras's
//! `TextVectorization`.
//!
//! A text is standardised ([`Standardize`]), split into tokens ([`Split`]),
//! optionally joined into n-grams, and each token is looked up in a
//! [`Vocabulary<String>`] whose layout is Keras's. In `int` mode id 0 is
//! the mask `""`, id 1 is `[UNK]` (every unknown token), then the tokens
//! by descending frequency, ties by descending token. In the other modes
//! ([`OutputMode`]) there is no mask id: `[UNK]` is 0 and the tokens
//! follow.
//!
//! # Keras parity
//!
//! With the default `unicode: false`, every step is Keras's (checked
//! against Keras 3.15 / TensorFlow 2.21 in the tests):
//!
//! - lowercasing is ASCII only (`tf.strings.lower` without an encoding):
//!   `"ÀÉÎ"` stays `"ÀÉÎ"`;
//! - punctuation is the ASCII set of Keras's regex
//!   ``[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']``, removed without a
//!   replacement (`"well-known"` becomes `"wellknown"`); Unicode
//!   punctuation such as `“ ” ’ —` is kept;
//! - whitespace splitting is at runs of ASCII whitespace (space, `\t`,
//!   `\n`, `\v`, `\f`, `\r`); a no-break space or U+3000 is part of a token;
//! - character splitting yields Unicode scalar values (`unicode_split`).
//!
//! `unicode: true` lowercases per Unicode, strips Unicode punctuation and
//! symbols and splits at Unicode whitespace instead (see
//! [`Standardize::apply_unicode`]). It is what embkit did before it
//! matched Keras, and a saved config without the field gets it, so older
//! models keep their tokens.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{Order, Vocabulary, VocabularyBuilder, VocabularyConfig, OOV_TOKEN};
use crate::{Error, Result};

/// The id of the padding / mask token `""` in `int` mode.
const MASK_ID: u32 = 0;

/// What is done to a text before it is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Standardize {
    /// [`Lower`](Self::Lower), then
    /// [`StripPunctuation`](Self::StripPunctuation). The default, as in
    /// Keras.
    #[default]
    LowerAndStripPunctuation,
    /// Lowercases ASCII letters, as Keras (`tf.strings.lower`); other
    /// letters are kept as they are.
    Lower,
    /// Removes the ASCII punctuation characters Keras removes
    /// (``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``), with nothing in their
    /// place.
    StripPunctuation,
    /// The text as it is.
    None,
}

impl Standardize {
    /// Applies the standardisation to `text` as Keras does (ASCII rules,
    /// see the [module docs](self)).
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::Standardize;
    ///
    /// let text = "Hello, World! ÀÉÎ café’s";
    /// assert_eq!(Standardize::LowerAndStripPunctuation.apply(text), "hello world ÀÉÎ café’s");
    /// assert_eq!(Standardize::Lower.apply(text), "hello, world! ÀÉÎ café’s");
    /// ```
    pub fn apply(self, text: &str) -> String {
        let strip = |t: &str| t.chars().filter(|c| !c.is_ascii_punctuation()).collect();
        match self {
            Standardize::LowerAndStripPunctuation => strip(&text.to_ascii_lowercase()),
            Standardize::Lower => text.to_ascii_lowercase(),
            Standardize::StripPunctuation => strip(text),
            Standardize::None => text.to_owned(),
        }
    }

    /// Applies the standardisation with Unicode rules: lowercasing by
    /// [`str::to_lowercase`], and stripping every ASCII punctuation
    /// character plus every non-ASCII character that is neither
    /// alphanumeric, nor whitespace, nor a combining mark (U+0300–036F,
    /// U+1AB0–1AFF, U+1DC0–1DFF, U+20D0–20FF, U+FE20–FE2F). That covers
    /// Unicode punctuation such as `“ ” ’ — …`, but also symbols such as
    /// `€` and emoji. Keras does neither.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::Standardize;
    ///
    /// let text = "Hello, World! ÀÉÎ café’s";
    /// let std = Standardize::LowerAndStripPunctuation;
    /// assert_eq!(std.apply_unicode(text), "hello world àéî cafés");
    /// ```
    pub fn apply_unicode(self, text: &str) -> String {
        match self {
            Standardize::LowerAndStripPunctuation => strip_unicode(&text.to_lowercase()),
            Standardize::Lower => text.to_lowercase(),
            Standardize::StripPunctuation => strip_unicode(text),
            Standardize::None => text.to_owned(),
        }
    }
}

fn strip_unicode(text: &str) -> String {
    text.chars().filter(|&c| !is_unicode_punctuation(c)).collect()
}

/// The rule documented at [`Standardize::apply_unicode`].
fn is_unicode_punctuation(c: char) -> bool {
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

/// Whitespace as TensorFlow's `tf.strings.split` sees it (`isspace` in the
/// C locale).
fn is_ascii_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// How a standardised text is cut into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Split {
    /// At runs of whitespace, with no empty tokens (Keras `"whitespace"`).
    /// ASCII whitespace as in Keras, Unicode whitespace with `unicode`.
    #[default]
    Whitespace,
    /// Every character (Unicode scalar value) is a token, spaces included
    /// (Keras `"character"`).
    Character,
    /// The whole standardised text is one token (Keras `split=None`).
    None,
}

/// What [`TextVectorizer`] produces for a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputMode {
    /// One id per token (Keras `output_mode="int"`):
    /// [`TextVectorizer::vectorize_batch`].
    #[default]
    Int,
    /// One row per text, 1 at the id of each token it has, OOV included
    /// (Keras `"multi_hot"`): [`TextVectorizer::encode_batch`].
    MultiHot,
    /// As `MultiHot`, with how often each id occurs (Keras `"count"`).
    Count,
    /// As `Count`, each count times the id's inverse document frequency
    /// `ln(1 + num_documents / (1 + document_frequency))`, learned by
    /// `adapt`; `[UNK]` gets the mean of the tokens' weights (Keras
    /// `"tf_idf"`).
    TfIdf,
}

fn legacy_unicode() -> bool {
    true
}

/// Settings for a [`TextVectorizer`].
///
/// Start from [`TextVectorizerConfig::new`], change what you need with the
/// `with_*` methods, then [`adapt`](Self::adapt) it to a corpus. The
/// config is plain data: a model saves it next to `vocab.txt` and
/// rebuilds the vectorizer with [`TextVectorizer::from_vocab_txt`] (or
/// saves the whole vectorizer with serde).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TextVectorizerConfig {
    /// What is done to a text before it is split.
    pub standardize: Standardize,
    /// How a text is cut into tokens.
    pub split: Split,
    /// N-gram widths: the tokens become the n-grams of each width in this
    /// order (all 1-grams, then all 2-grams ...), words joined by one
    /// space, as Keras's `ngrams`. Empty: the tokens as split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ngrams: Vec<usize>,
    /// What a text becomes.
    pub output_mode: OutputMode,
    /// The most ids the vocabulary may have, counting `[UNK]` and, in
    /// `int` mode only, the mask `""` (as Keras). The most frequent tokens
    /// are kept.
    pub max_tokens: Option<usize>,
    /// `int` mode only: every sequence is cut or padded with 0 at the end
    /// to this length, as Keras does.
    pub output_sequence_length: Option<usize>,
    /// Modes other than `int`: rows are `max_tokens` wide even when the
    /// vocabulary is smaller (Keras `pad_to_max_tokens`).
    #[serde(default)]
    pub pad_to_max_tokens: bool,
    /// Unicode lowercasing, punctuation and whitespace instead of Keras's
    /// ASCII rules (see the [module docs](self)). `false` in
    /// [`new`](Self::new); a saved config without the field reads as
    /// `true`, the rules it was saved with.
    #[serde(default = "legacy_unicode")]
    pub unicode: bool,
}

impl Default for TextVectorizerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TextVectorizerConfig {
    /// Keras's defaults: lowercase and strip punctuation (ASCII rules),
    /// split at whitespace, no n-grams, `int` output, no size limit,
    /// sequences as long as their texts.
    pub fn new() -> Self {
        Self {
            standardize: Standardize::default(),
            split: Split::default(),
            ngrams: Vec::new(),
            output_mode: OutputMode::default(),
            max_tokens: None,
            output_sequence_length: None,
            pad_to_max_tokens: false,
            unicode: false,
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

    /// N-grams of widths `1..=n`, as Keras's `ngrams=n`.
    pub fn with_ngrams(mut self, n: usize) -> Self {
        self.ngrams = (1..=n).collect();
        self
    }

    /// N-grams of the given widths, in this order, as Keras's
    /// `ngrams=(w1, w2, ...)`.
    pub fn with_ngram_widths(mut self, widths: impl IntoIterator<Item = usize>) -> Self {
        self.ngrams = widths.into_iter().collect();
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

    /// Sets [`pad_to_max_tokens`](Self::pad_to_max_tokens).
    pub fn with_pad_to_max_tokens(mut self, pad_to_max_tokens: bool) -> Self {
        self.pad_to_max_tokens = pad_to_max_tokens;
        self
    }

    /// Sets [`unicode`](Self::unicode).
    pub fn with_unicode(mut self, unicode: bool) -> Self {
        self.unicode = unicode;
        self
    }

    /// The number of ids before the tokens: the mask and `[UNK]` in `int`
    /// mode, `[UNK]` only in the others.
    pub fn num_reserved(&self) -> usize {
        if self.output_mode == OutputMode::Int {
            2
        } else {
            1
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the setting if `max_tokens` leaves
    /// no room for a token after the reserved ids (3 in `int` mode, 2 in
    /// the others), `output_sequence_length` is 0 or set outside `int`
    /// mode, `pad_to_max_tokens` is set without `max_tokens`, or an n-gram
    /// width is 0.
    pub fn validate(&self) -> Result<()> {
        let reserved = self.num_reserved();
        if let Some(max) = self.max_tokens.filter(|&m| m <= reserved) {
            return Err(Error::config(
                "max_tokens",
                format!(
                    "counts the {} in {:?} mode, so it must be at least {}; got {max}",
                    if reserved == 2 { "mask \"\" and [UNK]" } else { "[UNK] id" },
                    self.output_mode,
                    reserved + 1
                ),
            ));
        }
        if self.output_sequence_length == Some(0) {
            return Err(Error::config("output_sequence_length", "must be at least 1, got 0"));
        }
        if self.output_sequence_length.is_some() && self.output_mode != OutputMode::Int {
            return Err(Error::config(
                "output_sequence_length",
                format!("applies to int mode only; the output mode is {:?}", self.output_mode),
            ));
        }
        if self.pad_to_max_tokens && self.max_tokens.is_none() {
            return Err(Error::config("pad_to_max_tokens", "is set but max_tokens is not"));
        }
        if self.ngrams.contains(&0) {
            return Err(Error::config(
                "ngrams",
                format!("widths must be at least 1; got {:?}", self.ngrams),
            ));
        }
        Ok(())
    }

    /// The layout of the vectorizer's vocabulary: mask `""` (in `int` mode
    /// only), one OOV id, frequency order, this config's `max_tokens`.
    pub fn vocabulary_config(&self) -> VocabularyConfig<String> {
        let mut config =
            VocabularyConfig::new().with_order(Order::Frequency).with_num_oov_indices(1);
        if self.output_mode == OutputMode::Int {
            config = config.with_mask_token(String::new());
        }
        match self.max_tokens {
            Some(max) => config.with_max_tokens(max),
            None => config,
        }
    }

    /// Standardises `text` as [`standardize`](Self::standardize) and
    /// [`unicode`](Self::unicode) say.
    pub fn standardize_text(&self, text: &str) -> String {
        if self.unicode {
            self.standardize.apply_unicode(text)
        } else {
            self.standardize.apply(text)
        }
    }

    /// Standardises and splits `text`, then makes the n-grams.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::TextVectorizerConfig;
    ///
    /// let config = TextVectorizerConfig::new().with_ngrams(2);
    /// assert_eq!(config.tokens("The cat sat."), ["the", "cat", "sat", "the cat", "cat sat"]);
    /// ```
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let text = self.standardize_text(text);
        let tokens: Vec<String> = match self.split {
            Split::Whitespace if self.unicode => {
                text.split_whitespace().map(str::to_owned).collect()
            }
            Split::Whitespace => {
                text.split(is_ascii_space).filter(|t| !t.is_empty()).map(str::to_owned).collect()
            }
            Split::Character => text.chars().map(String::from).collect(),
            Split::None => vec![text],
        };
        if self.ngrams.is_empty() {
            return tokens;
        }
        let mut out = Vec::new();
        for &width in &self.ngrams {
            if width <= tokens.len() {
                out.extend(tokens.windows(width).map(|w| w.join(" ")));
            }
        }
        out
    }

    /// Builds the vocabulary from the tokens of `texts` (Keras's `adapt`):
    /// the most frequent tokens, ties by descending token, as many as
    /// `max_tokens` leaves room for. `""` and `[UNK]` are not counted. In
    /// `tf_idf` mode the inverse document frequencies are learned too,
    /// each text being a document.
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
        let tf_idf = self.output_mode == OutputMode::TfIdf;
        let mut builder = VocabularyBuilder::new(self.vocabulary_config());
        let mut document_counts: HashMap<String, u64> = HashMap::new();
        let mut num_documents = 0u64;
        for text in texts {
            let tokens = self.tokens(text.as_ref());
            let counted = || tokens.iter().filter(|t| !t.is_empty() && *t != OOV_TOKEN);
            if tf_idf {
                num_documents += 1;
                let unique: HashSet<&String> = counted().collect();
                for token in unique {
                    *document_counts.entry(token.clone()).or_default() += 1;
                }
            }
            builder.extend(counted().cloned());
        }
        if builder.num_objects() == 0 {
            return Err(Error::EmptyData { what: "texts: adapt found no tokens".into() });
        }
        let vocabulary = builder.build()?;
        let idf_weights = tf_idf.then(|| {
            let n = num_documents as f64;
            let idf: Vec<f32> = vocabulary
                .tokens()
                .iter()
                .map(|t| (1.0 + n / (1.0 + document_counts[t] as f64)).ln() as f32)
                .collect();
            self.full_idf_weights(&idf)
        });
        Ok(TextVectorizer { config: self.clone(), vocabulary, idf_weights })
    }

    /// `[UNK]`'s weight (the mean of the tokens' weights, as Keras), the
    /// tokens' weights, and zeros up to `max_tokens` with
    /// `pad_to_max_tokens`.
    fn full_idf_weights(&self, token_idf: &[f32]) -> Vec<f32> {
        let mean = token_idf.iter().map(|&w| f64::from(w)).sum::<f64>() / token_idf.len() as f64;
        let mut weights = Vec::with_capacity(token_idf.len() + 1);
        weights.push(mean as f32);
        weights.extend_from_slice(token_idf);
        if let Some(max) = self.max_tokens.filter(|_| self.pad_to_max_tokens) {
            weights.resize(max.max(weights.len()), 0.0);
        }
        weights
    }
}

/// Turns texts into sequences of ids (`int` mode) or into one vector per
/// text (`multi_hot`, `count`, `tf_idf`), as Keras's `TextVectorization`.
///
/// Made by [`TextVectorizerConfig::adapt`], from a given vocabulary by
/// [`new`](Self::new) / [`with_idf_weights`](Self::with_idf_weights), or
/// from a saved config and `vocab.txt` by
/// [`from_vocab_txt`](Self::from_vocab_txt). It serialises with serde as
/// its config, its vocabulary and, in `tf_idf` mode, its idf weights.
///
/// # Examples
///
/// ```
/// use embkit::vocab::{OutputMode, TextVectorizer, TextVectorizerConfig};
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
///
/// // Counts per text: [UNK] is id 0 outside int mode.
/// let counts = TextVectorizerConfig::new().with_output_mode(OutputMode::Count);
/// let vectorizer = counts.adapt(["b a b", "c b"])?;
/// assert_eq!(vectorizer.vocabulary().tokens(), ["b", "c", "a"]);
/// let rows = vectorizer.encode_batch(["b x b", "c"]);
/// assert_eq!(rows, ndarray::array![[1., 2., 0., 0.], [0., 0., 1., 0.]]);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TextVectorizerParts", into = "TextVectorizerParts")]
pub struct TextVectorizer {
    config: TextVectorizerConfig,
    vocabulary: Vocabulary<String>,
    /// `tf_idf` only: one weight per output column.
    idf_weights: Option<Vec<f32>>,
}

/// What a [`TextVectorizer`] serialises as; checked on load.
#[derive(Serialize, Deserialize)]
struct TextVectorizerParts {
    config: TextVectorizerConfig,
    vocabulary: Vocabulary<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idf_weights: Option<Vec<f32>>,
}

impl From<TextVectorizer> for TextVectorizerParts {
    fn from(v: TextVectorizer) -> Self {
        Self { config: v.config, vocabulary: v.vocabulary, idf_weights: v.idf_weights }
    }
}

impl TryFrom<TextVectorizerParts> for TextVectorizer {
    type Error = Error;

    fn try_from(parts: TextVectorizerParts) -> Result<Self> {
        let v = Self::checked(parts.config, parts.vocabulary)?;
        match (v.config.output_mode, parts.idf_weights) {
            (OutputMode::TfIdf, Some(weights)) => {
                if weights.len() != v.depth() {
                    return Err(Error::config(
                        "idf_weights",
                        format!("has {} weights for {} output columns", weights.len(), v.depth()),
                    ));
                }
                Ok(Self { idf_weights: Some(weights), ..v })
            }
            (OutputMode::TfIdf, None) => Err(missing_idf()),
            (_, Some(_)) => Err(Error::config("idf_weights", "are set but the mode is not tf_idf")),
            (_, None) => Ok(v),
        }
    }
}

fn missing_idf() -> Error {
    Error::config(
        "idf_weights",
        "tf_idf needs its idf weights: adapt, give them with TextVectorizer::with_idf_weights, \
         or save the whole vectorizer with serde",
    )
}

impl TextVectorizer {
    /// A vectorizer from its config and a vocabulary with its layout, in
    /// any mode but `tf_idf` (see [`with_idf_weights`](Self::with_idf_weights)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config is invalid, the mode is
    /// `tf_idf`, or the vocabulary does not have the layout of the mode
    /// (mask `""` in `int` mode only, exactly one OOV id) or has more ids
    /// than `max_tokens`.
    pub fn new(config: TextVectorizerConfig, vocabulary: Vocabulary<String>) -> Result<Self> {
        if config.output_mode == OutputMode::TfIdf {
            return Err(missing_idf());
        }
        Self::checked(config, vocabulary)
    }

    /// A `tf_idf` vectorizer from its config, a vocabulary with its layout
    /// and one idf weight per token of the vocabulary proper; `[UNK]` gets
    /// their mean, as Keras does with a vocabulary given without its
    /// special tokens.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new) (but the mode must be `tf_idf`), and
    /// [`Error::InvalidConfig`] if there is not one weight per token.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::{OutputMode, TextVectorizer, TextVectorizerConfig, Vocabulary};
    ///
    /// let config = TextVectorizerConfig::new().with_output_mode(OutputMode::TfIdf);
    /// let vocab = Vocabulary::from_tokens(["b", "a"].map(String::from), &config.vocabulary_config())?;
    /// let vectorizer = TextVectorizer::with_idf_weights(config, vocab, &[0.5, 2.0])?;
    /// assert_eq!(vectorizer.encode("a b b x"), [1.25, 1.0, 2.0]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn with_idf_weights(
        config: TextVectorizerConfig,
        vocabulary: Vocabulary<String>,
        token_idf: &[f32],
    ) -> Result<Self> {
        if config.output_mode != OutputMode::TfIdf {
            return Err(Error::config("idf_weights", "are given but the mode is not tf_idf"));
        }
        let v = Self::checked(config, vocabulary)?;
        if token_idf.len() != v.vocabulary.tokens().len() {
            return Err(Error::config(
                "idf_weights",
                format!(
                    "needs one weight per token: {} weights for {} tokens",
                    token_idf.len(),
                    v.vocabulary.tokens().len()
                ),
            ));
        }
        let weights = v.config.full_idf_weights(token_idf);
        Ok(Self { idf_weights: Some(weights), ..v })
    }

    /// Checks the config and the vocabulary's layout; no idf weights.
    fn checked(config: TextVectorizerConfig, vocabulary: Vocabulary<String>) -> Result<Self> {
        config.validate()?;
        let layout = vocabulary.config();
        let want_mask = config.output_mode == OutputMode::Int;
        let mask_ok = match &layout.mask_token {
            Some(mask) => want_mask && mask.is_empty(),
            None => !want_mask,
        };
        if !mask_ok || layout.num_oov_indices != 1 {
            return Err(Error::config(
                "vocabulary",
                format!(
                    "a TextVectorizer in {:?} mode needs {} and one OOV id; this one has mask \
                     {:?} and {} OOV ids",
                    config.output_mode,
                    if want_mask { "the mask \"\"" } else { "no mask" },
                    layout.mask_token,
                    layout.num_oov_indices
                ),
            ));
        }
        if let Some(max) = config.max_tokens.filter(|&m| vocabulary.len() > m) {
            return Err(Error::config(
                "max_tokens",
                format!("is {max}, but the vocabulary has {} ids", vocabulary.len()),
            ));
        }
        Ok(Self { config, vocabulary, idf_weights: None })
    }

    /// Rebuilds a vectorizer from its config and its `vocab.txt` (as
    /// written by [`Vocabulary::write_vocab_txt`]: `""` in `int` mode,
    /// `[UNK]`, then the tokens). `path` only names the source in errors.
    /// A `tf_idf` vectorizer cannot be rebuilt so: its weights are not in
    /// `vocab.txt`.
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

    /// The vocabulary: `""` (in `int` mode), `[UNK]`, then the tokens.
    pub fn vocabulary(&self) -> &Vocabulary<String> {
        &self.vocabulary
    }

    /// In `tf_idf` mode, the weight of each output column (`[UNK]`
    /// first); `None` in the other modes.
    pub fn idf_weights(&self) -> Option<&[f32]> {
        self.idf_weights.as_deref()
    }

    /// The number of ids, the mask (in `int` mode) and `[UNK]` included
    /// (Keras's `vocabulary_size()`): the `num_embeddings` of an embedding
    /// table that takes these ids.
    pub fn vocab_size(&self) -> usize {
        self.vocabulary.len()
    }

    /// The width of a row of [`encode_batch`](Self::encode_batch): the
    /// vocabulary size, or `max_tokens` with `pad_to_max_tokens`.
    pub fn depth(&self) -> usize {
        match self.config.max_tokens {
            Some(max) if self.config.pad_to_max_tokens => max,
            _ => self.vocab_size(),
        }
    }

    /// `text` standardised as the config says.
    pub fn standardize(&self, text: &str) -> String {
        self.config.standardize_text(text)
    }

    /// The tokens of `text`: standardised, split, n-grams made.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        self.config.tokens(text)
    }

    /// The id of each token, the mask `""` included in `int` mode and
    /// left out in the others.
    fn token_ids(&self, text: &str) -> Vec<u32> {
        let oov = self.vocabulary.oov_ids().start;
        let int = self.config.output_mode == OutputMode::Int;
        self.tokens(text)
            .iter()
            .filter(|t| int || !t.is_empty())
            .map(|t| self.vocabulary.lookup(t.as_str()).unwrap_or(oov))
            .collect()
    }

    /// The ids of the tokens of `text`, `[UNK]`'s id for unknown tokens.
    /// With `output_sequence_length` set, cut or padded with 0 at the end
    /// to that length.
    ///
    /// This is Keras's output in `int` mode. In the other modes it gives
    /// the ids [`encode`](Self::encode) counts (there `[UNK]` is 0).
    pub fn vectorize(&self, text: &str) -> Vec<u32> {
        let mut ids = self.token_ids(text);
        if let Some(len) = self.config.output_sequence_length {
            ids.resize(len, MASK_ID);
        }
        ids
    }

    /// The ids of a batch of texts, one row each, padded with 0 at the end
    /// (Keras's output in `int` mode).
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

    /// One vector of [`depth`](Self::depth) values for `text`, as Keras's
    /// output in `multi_hot`, `count` and `tf_idf` modes: at each id, 1 if
    /// a token has it, its count, or its count times the id's idf weight.
    /// In `int` mode, the counts.
    pub fn encode(&self, text: &str) -> Vec<f32> {
        let mut row = vec![0.0; self.depth()];
        self.encode_into(text, &mut row);
        row
    }

    fn encode_into(&self, text: &str, row: &mut [f32]) {
        for id in self.token_ids(text) {
            let cell = &mut row[id as usize];
            match self.config.output_mode {
                OutputMode::MultiHot => *cell = 1.0,
                _ => *cell += 1.0,
            }
        }
        if let Some(weights) = &self.idf_weights {
            for (cell, w) in row.iter_mut().zip(weights) {
                *cell *= w;
            }
        }
    }

    /// [`encode`](Self::encode) for a batch of texts.
    ///
    /// # Shapes
    ///
    /// - returns: `[batch, depth]`
    pub fn encode_batch<I>(&self, texts: I) -> Array2<f32>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let texts: Vec<I::Item> = texts.into_iter().collect();
        let mut out = Array2::zeros((texts.len(), self.depth()));
        for (mut row, text) in out.rows_mut().into_iter().zip(&texts) {
            let row = row.as_slice_mut().expect("rows of a standard-layout array are contiguous");
            self.encode_into(text.as_ref(), row);
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
            assert_eq!(is_unicode_punctuation(c), keras.contains(c), "{c:?}");
            let kept = Standardize::StripPunctuation.apply(&c.to_string()).is_empty();
            assert_eq!(kept, keras.contains(c), "{c:?}");
        }
    }

    #[test]
    fn combining_accents_survive_unicode_stripping() {
        assert_eq!(Standardize::StripPunctuation.apply_unicode("Cafe\u{301}!"), "Cafe\u{301}");
    }

    #[test]
    fn unicode_punctuation_and_symbols_are_stripped_with_unicode_rules_only() {
        let text = "“Quoted” — x… ¿y? 5€";
        assert_eq!(Standardize::StripPunctuation.apply_unicode(text), "Quoted  x y 5");
        assert_eq!(Standardize::StripPunctuation.apply(text), "“Quoted” — x… ¿y 5€");
    }

    #[test]
    fn lowercasing_is_ascii_as_keras_or_unicode_on_request() {
        assert_eq!(Standardize::Lower.apply("ÀÉÎ ΣΑΣ Ab"), "ÀÉÎ ΣΑΣ ab");
        assert_eq!(Standardize::Lower.apply_unicode("ÀÉÎ ΣΑΣ"), "àéî σας");
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = TextVectorizerConfig::new()
            .with_standardize(Standardize::Lower)
            .with_ngrams(2)
            .with_max_tokens(10)
            .with_output_sequence_length(5);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"standardize\":\"lower\""), "{json}");
        let back: TextVectorizerConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn a_config_saved_before_the_keras_rules_keeps_unicode_rules() {
        let old = r#"{"standardize":"lower_and_strip_punctuation","split":"whitespace",
            "output_mode":"int","max_tokens":null,"output_sequence_length":8}"#;
        let config: TextVectorizerConfig = serde_json::from_str(old).unwrap();
        assert!(config.unicode);
        assert!(config.ngrams.is_empty());
        assert_eq!(config.tokens("ÀÉ “x”\u{a0}y"), ["àé", "x", "y"]);
        assert_eq!(TextVectorizerConfig::new().tokens("ÀÉ “x”\u{a0}y"), ["ÀÉ", "“x”\u{a0}y"]);
    }

    #[test]
    fn new_rejects_a_vocabulary_without_the_text_layout() {
        let vocab = Vocabulary::from_objects(["a"], &VocabularyConfig::keras_lookup()).unwrap();
        let err = TextVectorizer::new(TextVectorizerConfig::new(), vocab).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "vocabulary", .. }), "{err}");
    }
}
