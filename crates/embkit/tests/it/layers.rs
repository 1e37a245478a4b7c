//! Integration tests: layers.
