//! One module per subcommand, each with `Args` and `run`.

pub mod analogy;
pub mod bench;
pub mod convert;
pub mod demo;
pub mod eval_suite;
pub mod evaluate;
pub mod index;
pub mod inspect;
pub mod neighbors;
pub mod plot;
pub mod predict;
pub mod projector;
pub mod similarity;
pub mod train;
