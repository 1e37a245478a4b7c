//! STUB: labelled data files.
