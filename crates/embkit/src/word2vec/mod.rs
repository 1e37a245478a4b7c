//! word2vec: word vectors learned from a plain-text corpus by skip-gram
//! or CBOW with negative sampling (Mikolov et al. 2013), as word2vec.c
//! and gensim's `Word2Vec` train them, on several threads without data
//! races.
//!
//! ```text
//! lines ─► SkipGramConfig::build_vocab ─► WordCounts ─► SkipGramConfig::init ─► SkipGram
//!                                                        SkipGram::encode ─► Sentences ─┘
//! SkipGram::train ─► SkipGram::vectors ─► format::Vectors (word2vec, GloVe ... files; query)
//! ```
//!
//! [`SkipGram::fit`] does it all in one call. The pieces are public so
//! that tests and tools can check them: the sub-sampling rule
//! ([`keep_probability`]), the noise distribution ([`NoiseTable`]) and
//! the update of one example ([`sgns_step`], the gradient of
//! [`sgns_loss`] on the rows with `|input·u| < 6`; the others are left
//! alone, as gensim does).
//!
//! # Example
//!
//! ```
//! use embkit::word2vec::{SkipGram, SkipGramConfig};
//! use embkit::{NoObserver, Threads};
//!
//! let lines: Vec<String> = (0..200)
//!     .map(|i| if i % 2 == 0 { "red green blue red blue green" } else { "one two three two one three" })
//!     .map(String::from)
//!     .collect();
//! let config = SkipGramConfig::new().with_embedding_dim(16).with_epochs(3).with_sample(0.0);
//! let (model, _) = SkipGram::fit(&config, &lines, Threads::new(2)?, &mut NoObserver)?;
//! let vectors = model.vectors()?;
//! assert_eq!(vectors.len(), 6);
//! # Ok::<(), embkit::Error>(())
//! ```

mod config;
mod skipgram;
mod vocab;

pub use config::{Architecture, SkipGramConfig};
pub use skipgram::{sgns_loss, sgns_step, Sentences, SkipGram, TrainReport};
pub use vocab::{keep_probability, NoiseTable, WordCounts};
