//! Integration tests: optim.
