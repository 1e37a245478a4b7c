//! The integration tests: one binary, one module per area.

mod bag_classifier;
mod data;
mod embedding;
mod embedding_bag;
mod formats;
mod fuzz;
mod golden;
mod keras_preprocessing;
mod layers;
mod model;
mod optim;
mod queries;
mod query;
mod ratings;
mod reference;
mod skip_gram_files;
mod skipgram;
mod vocab;
