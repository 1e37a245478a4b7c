//! Integration tests: vocab.
