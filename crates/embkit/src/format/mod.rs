//! STUB: saving and loading.
