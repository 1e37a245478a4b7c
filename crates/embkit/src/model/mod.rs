//! STUB: models.
