//! embkit: learned embeddings, from objects to trained vectors.
//!
//! CRATE DOCS TO BE WRITTEN
#![doc(test(attr(deny(warnings))))]

mod error;
mod grad;
mod init;

pub mod data;
pub mod format;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod query;
pub mod vocab;

pub use data::LabelledTexts;
pub use error::{Error, Result};
pub use grad::RowGrad;
pub use init::Init;
pub use layers::{
    one_hot, Activation, ActivationLayer, Dense, DenseConfig, Dropout, DropoutConfig, Embedding,
    EmbeddingConfig, Flatten, GlobalAveragePooling1D, Layer, LayerConfig,
};
pub use loss::Loss;
pub use metrics::Metric;
pub use model::{
    evaluate, fit, Dataset, EarlyStopping, EpochLog, Evaluation, History, Model, Monitor,
    NoObserver, Observer, Sequential, SequentialConfig, TrainConfig,
};
pub use optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, OptimizerConfig, RmsProp, RmsPropConfig,
    Sgd, SgdConfig,
};
pub use vocab::{
    Order, OutputMode, Split, Standardize, TextVectorizer, TextVectorizerConfig, Vocabulary,
    VocabularyBuilder, VocabularyConfig, OOV_TOKEN,
};
