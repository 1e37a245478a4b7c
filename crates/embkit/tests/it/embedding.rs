//! Integration tests: embedding.
