//! Vocabularies: the step that turns raw objects (words, user names, item
//! codes, any hashable value) into the `u32` ids an embedding table is
//! indexed by.
//!
//! - [`Vocabulary`] is a frozen, invertible map between objects and ids,
//!   with the id layout of Keras's `StringLookup`/`IntegerLookup`: an
//!   optional mask id 0, then the out-of-vocabulary (OOV) ids, then the
//!   vocabulary proper. It is built from objects by counting them
//!   ([`Vocabulary::from_objects`], [`VocabularyBuilder`]) or from a given
//!   token list ([`Vocabulary::from_tokens`]), and a `Vocabulary<String>`
//!   is saved as `vocab.txt`, one token per line in id order.
//! - [`text`] turns whole strings into id sequences, as Keras's
//!   `TextVectorization`: [`TextVectorizer`].
//! - [`Hashing`] puts values into a fixed number of bins without a
//!   vocabulary, giving the bins of Keras's `Hashing` layer; its hash
//!   functions, FarmHash [`fingerprint64`] and [`siphash24`], are
//!   TensorFlow's.
//!
//! # Examples
//!
//! ```
//! use embkit::vocab::{Vocabulary, VocabularyConfig};
//!
//! let objects = "cat dog snake dog mouse cat dog snake dog".split(' ');
//! let vocab: Vocabulary = Vocabulary::from_objects(objects.clone(), &VocabularyConfig::new())?;
//! let words: Vec<&str> = objects.collect();
//! assert_eq!(vocab.ids(words)?, [0, 1, 2, 1, 3, 0, 1, 2, 1]);
//! assert_eq!(vocab.token(3).map(String::as_str), Some("mouse"));
//! # Ok::<(), embkit::Error>(())
//! ```

mod hashing;
pub mod text;
mod vocabulary;

pub use hashing::{fingerprint64, siphash24, Hashing, HashingConfig};
pub use text::{OutputMode, Split, Standardize, TextVectorizer, TextVectorizerConfig};
pub use vocabulary::{
    LookupKey, OovMethod, Order, Vocabulary, VocabularyBuilder, VocabularyConfig, OOV_TOKEN,
};

/// Keras's `StringLookup`: a vocabulary of strings. Build it with
/// [`VocabularyConfig::keras_lookup`] for Keras's defaults; look up with
/// [`Vocabulary::id`], invert with [`Vocabulary::invert_str`].
pub type StringLookup = Vocabulary<String>;

/// Keras's `IntegerLookup`: a vocabulary of `i64`. Build it with
/// [`VocabularyConfig::keras_lookup`] (Keras's `IntegerLookup` also
/// defaults to no mask and one OOV id); look up with [`Vocabulary::id`],
/// invert with [`Vocabulary::invert_or`] and Keras's OOV token `-1`.
pub type IntegerLookup = Vocabulary<i64>;

pub(crate) use vocabulary::describe;
