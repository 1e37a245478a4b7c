//! embkit: learned embeddings, from objects to trained vectors.
//!
//! # The pipeline
//!
//! Objects with no numeric form (words, users, items, categories) get an
//! id from a [`Vocabulary`] (or a [`TextVectorizer`] for text). Each id owns
//! one row of an [`Embedding`] table; looking ids up is the product
//! `one_hot(ids) · W`, computed as a row gather. The rows feed float
//! layers ([`Flatten`], [`GlobalAveragePooling1D`], [`Dense`] ...) and a
//! [`Loss`]. Training ([`fit`]) runs each layer's backward pass: the
//! table's gradient is a [`RowGrad`], and an [`Optimizer`] updates only the
//! rows of the batch. A trained model is saved with
//! [`format::SavedModel`] and queried with [`query::nearest_neighbors`].
//!
//! ```text
//! objects ─► Vocabulary ─► ids ─► Embedding ─► Flatten ─► Dense ─► Loss
//!                                     ▲                             │
//!                     Optimizer ◄─ RowGrad ◄── backward ◄───────────┘
//! ```
//!
//! # Glossary
//!
//! - **id**: a `u32` naming one row of a table.
//! - **row**: the `embedding_dim` values of one id.
//! - **table**: `num_embeddings` rows, row-major (`[num_embeddings, embedding_dim]`).
//! - **gather**: copying the rows of a batch of ids into an output buffer.
//! - **sparse (row) gradient**: a [`RowGrad`]: the sorted unique ids of a
//!   batch and one summed gradient row each, instead of a dense
//!   `[num_embeddings, embedding_dim]` matrix.
//! - **lazy update**: an optimizer step that changes only the rows in the
//!   gradient and their optimizer state.
//! - Sizes are named as in PyTorch: `num_embeddings`, `embedding_dim`,
//!   `in_features`, `out_features`, `batch_size`, `seq_len` (called
//!   `input_length` on a model, as in Keras).
//!
//! # Example
//!
//! ```
//! use embkit::{EmbeddingConfig, Vocabulary, VocabularyConfig};
//! use ndarray::aview1;
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let words = ["cat", "dog", "snake", "dog"];
//! let vocab: Vocabulary = Vocabulary::from_objects(words, &VocabularyConfig::new())?;
//! let ids = vocab.ids(words)?;
//! let mut table = EmbeddingConfig::new(vocab.len(), 8).init(&mut StdRng::seed_from_u64(0))?;
//! let vectors = table.forward(aview1(&ids))?;
//! assert_eq!(vectors.shape(), &[4, 8]);
//! assert_eq!(vectors.slice(ndarray::s![1, ..]), vectors.slice(ndarray::s![3, ..]));
//! # Ok::<(), embkit::Error>(())
//! ```
//!
//! The README's examples are compiled and run as tests too.
#![doc(test(attr(deny(warnings))))]

mod error;
mod grad;
mod init;
mod kernels;

pub mod data;
pub mod format;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod projection;
pub mod query;
pub mod threads;
pub mod vocab;
pub mod word2vec;

pub use data::LabelledTexts;
pub use error::{Error, Result};
pub use grad::{GatherGrad, RowGrad};
pub use init::Init;
pub use layers::{
    one_hot, Activation, ActivationLayer, BagMode, Constraint, Dense, DenseConfig, Dropout,
    DropoutConfig, Embedding, EmbeddingBag, EmbeddingBagConfig, EmbeddingConfig, Flatten,
    GlobalAveragePooling1D, Layer, LayerConfig, LoraConfig, Regularizer,
};
pub use loss::Loss;
pub use metrics::Metric;
pub use model::{
    evaluate, evaluate_stream, fit, fit_stream, Batch, BatchStream, Dataset, EarlyStopping,
    EpochLog, Evaluation, History, Model, Monitor, NoObserver, Observer, Sequential,
    SequentialConfig, TrainConfig,
};
pub use optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamFlavour, AdamW, AdamWConfig, Flavour, Ftrl,
    FtrlConfig, GradMut, GradientClipping, LearningRateSchedule, Optimizer, OptimizerConfig,
    RmsProp, RmsPropConfig, RowNorm, RowWiseAdagrad, RowWiseAdagradConfig, Sgd, SgdConfig,
    TableUpdates,
};
pub use threads::Threads;
pub use vocab::{
    Hashing, HashingConfig, IntegerLookup, OovMethod, Order, OutputMode, Split, Standardize,
    StringLookup, TextVectorizer, TextVectorizerConfig, Vocabulary, VocabularyBuilder,
    VocabularyConfig, OOV_TOKEN,
};

/// The README's code blocks, compiled and run by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
