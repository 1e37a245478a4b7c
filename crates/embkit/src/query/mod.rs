//! Queries on a learned table: nearest neighbours by cosine similarity.

mod neighbors;

pub use neighbors::{cosine_similarity, nearest_neighbors, neighbors_of_row, Neighbor};
