//! STUB: vocabularies.
