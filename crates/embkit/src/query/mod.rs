//! STUB: queries.
