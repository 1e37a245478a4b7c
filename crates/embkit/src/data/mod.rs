//! Data files in, batches out.
//!
//! Readers, each for a whole file ([`LabelledTexts::read`],
//! [`Interactions::read`], [`Corpus::read`]) or one row at a time
//! ([`Rows`], from their `rows` functions) for files larger than memory:
//!
//! | reader | a line | for |
//! | --- | --- | --- |
//! | [`LabelledTexts`] | `label<TAB>text` | text classification |
//! | [`Interactions`] | `user item rating [timestamp]`, TSV, CSV or `::` | rating prediction ([`MatrixFactorization`](crate::model::MatrixFactorization)) |
//! | [`Corpus`] | a sentence or document | word vectors |
//!
//! Every reader decompresses gzip files (recognised by their first
//! bytes), numbers lines from 1, skips blank lines, accepts CRLF line
//! ends and a UTF-8 byte-order mark, and reports a bad row as
//! [`Error::BadRow`](crate::Error::BadRow) with the file, the line and
//! what was expected, or, with [`DataOptions::skip_bad_rows`], counts it
//! in a [`DataReport`] and goes on.
//!
//! Then splits of the indices, all deterministic for a seed
//! ([`ratio_split`], [`stratified_split`], [`k_fold`],
//! [`leave_last_out`]), and
//! [`ShuffledBatches`] for streaming; [`InteractionStream`] reads a
//! ratings file again for each epoch through a shuffle buffer, for
//! training on files larger than memory.

mod batches;
mod corpus;
mod interactions;
mod labelled;
mod letter_tokens;
mod rows;
mod split;
mod stream;

pub use batches::ShuffledBatches;
pub use corpus::Corpus;
pub use interactions::{Interaction, Interactions, KeyIndex, UNKNOWN_ID};
pub use labelled::LabelledTexts;
pub use letter_tokens::{letter_sentences, letter_tokens, LetterSentences};
pub use rows::{open_text, DataOptions, DataReport, Delimiter, Header, Rows, MAX_DATA_PROBLEMS};
pub(crate) use split::mix64;
pub use split::{k_fold, leave_last_out, ratio_split, shuffled_indices, stratified_split, Split};
pub use stream::InteractionStream;
