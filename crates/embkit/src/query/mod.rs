//! Queries on a learned table: nearest neighbours (by cosine, dot
//! product or Euclidean distance; exact with [`ExactIndex`] or
//! approximate with an [`HnswIndex`]), word analogies and word-similarity
//! evaluation.

mod analogy;
mod hnsw;
mod neighbors;
mod prefilter;
mod scan;
mod word_similarity;

pub use analogy::{
    analogy, evaluate_analogies, AnalogyMethod, AnalogyReport, SectionScore, COSMUL_EPS,
};
pub use hnsw::{
    table_checksum, HnswConfig, HnswIndex, DEFAULT_EF_SEARCH, HNSW_FORMAT_VERSION, HNSW_MAGIC,
};
pub use neighbors::{
    cosine_similarity, nearest_neighbors, nearest_neighbors_batch, nearest_neighbors_by,
    neighbors_of_row, ExactIndex, Neighbor, Similarity,
};
pub use word_similarity::{evaluate_similarity, spearman, SimilarityReport};
