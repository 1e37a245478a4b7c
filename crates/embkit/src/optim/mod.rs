//! Optimizers: apply gradients to dense parameters and, row by row, to
//! embedding tables.
//!
//! Every optimizer implements [`Optimizer`]. State (momentum, moments,
//! accumulators) is kept per parameter, keyed by the name the model gives
//! it (`"embedding"`, `"layers.1.kernel"`), and is allocated on first use.
//! The iteration count, which Adam's bias correction and Adagrad's
//! `lr_decay` use, is one counter for the whole optimizer, advanced by
//! [`Optimizer::finish_step`].
//!
//! # Two references
//!
//! Each optimizer follows Keras 3 by default (`new()`: its formula and its
//! defaults). Where PyTorch computes something else, the config has a
//! flavour ([`Flavour`], [`AdamFlavour`]) and a constructor with PyTorch's
//! defaults ([`SgdConfig::pytorch`], [`AdagradConfig::pytorch`],
//! [`RmsPropConfig::pytorch`], [`AdamConfig::pytorch`],
//! [`AdamConfig::pytorch_sparse`], [`AdamWConfig::pytorch`]). Each
//! optimizer's docs give both formulas. [`Ftrl`] exists in Keras only and
//! [`RowWiseAdagrad`] in FBGEMM (PyTorch's recommendation-model kernels)
//! only.
//!
//! # Tables
//!
//! A table's gradient is a [`RowGrad`]: the sorted unique ids of a batch
//! and one summed row each. How a step treats the rows outside it, and ids
//! seen several times, is each config's [`TableUpdates`]:
//!
//! - [`TableUpdates::Lazy`] (the default): only the rows in the gradient
//!   and their state change, and second moments use the square of the
//!   summed row, `(Σ gᵢ)²`. This is PyTorch with `sparse=True`
//!   (`SparseAdam`, sparse `Adagrad`).
//! - [`TableUpdates::Dense`]: the step of the dense gradient the rows stand
//!   for: every row steps, with a zero gradient outside the batch. This is
//!   PyTorch with `sparse=False` (the default) and any optimizer.
//! - [`TableUpdates::Keras`]: what Keras 3 with the TensorFlow backend does
//!   with an embedding's gradient: the steps of `Dense`, but second moments
//!   and accumulators add `Σ gᵢ²` ([`RowGrad::squares`]) for an id seen
//!   several times, and SGD without momentum, given the occurrences
//!   themselves ([`Optimizer::step_occurrences`], which
//!   [`Embedding::backward_step`](crate::Embedding::backward_step) calls),
//!   steps each on its own.
//!
//! Optimizers for which a zero gradient changes nothing (SGD without
//! momentum, Adagrad, row-wise Adagrad) visit only the rows of the gradient
//! in every mode. The others visit every row of the table in the `Dense`
//! and `Keras` modes, as the references do; [`TableUpdates`] lists what
//! moves for each.
//!
//! # Examples
//!
//! ```
//! use embkit::{AdamConfig, OptimizerConfig, RowGrad};
//!
//! let config = OptimizerConfig::from(AdamConfig::new().with_learning_rate(0.01));
//! let mut optimizer = config.build()?;
//!
//! // A table of 4 rows of 2 and a dense bias.
//! let mut table = vec![0.5_f32; 4 * 2];
//! let mut bias = vec![0.0_f32; 2];
//! // The batch looked up ids 2, 0, 2: row 2 gets the sum of its two rows.
//! let grad = RowGrad::from_rows(&[2, 0, 2], &[0.1, 0.1, 0.2, 0.2, 0.3, 0.3], 2);
//! optimizer.step_rows("embedding", &mut table, &grad)?;
//! optimizer.step_dense("bias", &mut bias, &[0.5, -0.5])?;
//! optimizer.finish_step();
//!
//! assert_eq!(optimizer.iterations(), 1);
//! assert!(table[0] < 0.5 && table[4] < 0.5);
//! assert_eq!(table[2..4], [0.5, 0.5]); // row 1 was not in the batch
//! assert!(bias[0] < 0.0 && bias[1] > 0.0);
//! # Ok::<(), embkit::Error>(())
//! ```

mod adagrad;
mod adam;
mod adamw;
mod clip;
mod ftrl;
mod rmsprop;
mod rowwise_adagrad;
mod schedule;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamFlavour};
pub use adamw::{AdamW, AdamWConfig};
pub use clip::{GradMut, GradientClipping, RowNorm};
pub use ftrl::{Ftrl, FtrlConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use rowwise_adagrad::{RowWiseAdagrad, RowWiseAdagradConfig};
pub use schedule::LearningRateSchedule;
pub use sgd::{Sgd, SgdConfig};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::grad::GatherGrad;
use crate::kernels::buffer::TableBuffer;
use crate::threads::{split_evenly, MIN_FLOATS_PER_THREAD};
use crate::{Error, Result, RowGrad, Threads};

/// Applies gradients to parameters.
///
/// A training step calls [`step_dense`](Self::step_dense) and
/// [`step_rows`](Self::step_rows) once for each parameter, then
/// [`finish_step`](Self::finish_step) once.
pub trait Optimizer: std::fmt::Debug + Send {
    /// Updates the dense parameter `key` in place from its gradient.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `grad` and `value` differ in length, or
    /// `value` differs in length from the parameter first seen under `key`.
    /// Nothing changes on an error.
    fn step_dense(&mut self, key: &str, value: &mut [f32], grad: &[f32]) -> Result<()>;

    /// Updates, in place, the table `key` (row-major,
    /// `[num_embeddings, grad.dim()]`) from the rows of `grad`.
    ///
    /// With [`TableUpdates::Lazy`] (the default) only the rows `grad` names
    /// change, other rows and their state are untouched, and an empty
    /// `grad` is a no-op. With [`TableUpdates::Dense`] and
    /// [`TableUpdates::Keras`] the rows outside `grad` take a step with a
    /// zero gradient, which moves them for the optimizers that have
    /// momentum (see [`TableUpdates`]).
    ///
    /// # Errors
    ///
    /// [`Error::IdOutOfRange`] for an id past the table;
    /// [`Error::ShapeMismatch`] if the rows of `grad` are empty, the table's
    /// length is not a multiple of the row length, or its shape differs
    /// from the table first seen under `key`. Everything is checked before
    /// any row or state changes.
    fn step_rows(&mut self, key: &str, table: &mut [f32], grad: &RowGrad) -> Result<()>;

    /// [`step_rows`](Self::step_rows) with a gradient whose rows are
    /// summed as the step reads them ([`GatherGrad`]): the same values.
    /// embkit's rules without a table-sized state (SGD without momentum,
    /// row-wise Adagrad) make one pass over the batch, which steps each id
    /// seen once straight from its upstream row and sums the rows of the
    /// repeated ids, then step those; the others
    /// read the table and their state best in id order, so they sum the
    /// rows first. The default implementation sums them into a [`RowGrad`]
    /// and calls [`step_rows`](Self::step_rows).
    ///
    /// # Errors
    ///
    /// As [`step_rows`](Self::step_rows); everything is checked before any
    /// row or state changes.
    fn step_gather(&mut self, key: &str, table: &mut [f32], grad: &GatherGrad<'_>) -> Result<()> {
        self.step_rows(key, table, &grad.to_row_grad())
    }

    /// Whether [`step_gather`](Self::step_gather) sums the rows before it
    /// steps them, as the default implementation does. Then
    /// [`Embedding::backward_step`](crate::Embedding::backward_step) sums
    /// them itself, checking each sum for NaN and infinity as it writes
    /// it, and calls [`step_rows`](Self::step_rows). True by default.
    fn gather_sums_first(&self) -> bool {
        true
    }

    /// Whether [`step_occurrences`](Self::step_occurrences) steps each
    /// occurrence of an id on its own. False by default.
    fn steps_each_occurrence(&self) -> bool {
        false
    }

    /// Updates the table `key` (row-major, `[num_embeddings, dim]`) from
    /// the gradient of a gather: `upstream` holds one row of `dim` per
    /// entry of `ids`, in any order, repeated or not.
    ///
    /// Where the reference steps each occurrence on its own
    /// ([`steps_each_occurrence`](Self::steps_each_occurrence)), so does
    /// this, in batch order: SGD without momentum in the
    /// [`TableUpdates::Keras`] mode subtracts `lr · gᵢ` once per
    /// occurrence, as Keras does (the TensorFlow backend's `scatter_sub` of
    /// the `IndexedSlices` gradient, which keeps repeated indices), so an id
    /// seen twice ends at `(w − lr·g₁) − lr·g₂`, not
    /// [`step_rows`](Self::step_rows)'s `w − lr·(g₁ + g₂)`: the same up to
    /// rounding. (TensorFlow's CPU kernel applies them in batch order for
    /// fewer than 1024 occurrences or with op determinism on; above that it
    /// splits them over threads, in an order that varies from run to run.)
    /// Nothing is sorted or summed, and each row is read and written once
    /// per occurrence. The default implementation sums each id's rows into
    /// a [`RowGrad`] and calls [`step_rows`](Self::step_rows). Neither
    /// checks the rows for NaN or infinity
    /// ([`Embedding::backward_step`](crate::Embedding::backward_step) does).
    ///
    /// # Errors
    ///
    /// As [`step_rows`](Self::step_rows), and [`Error::ShapeMismatch`] if
    /// `dim` is 0 or `upstream` is not `ids.len() × dim` long. Everything
    /// is checked before any row or state changes.
    fn step_occurrences(
        &mut self,
        key: &str,
        table: &mut [f32],
        ids: &[u32],
        upstream: &[f32],
        dim: usize,
    ) -> Result<()> {
        step_summed_occurrences(self, key, table, ids, upstream, dim)
    }

    /// Ends a training step: advances the iteration counter.
    fn finish_step(&mut self);

    /// Lets [`step_rows`](Self::step_rows),
    /// [`step_gather`](Self::step_gather) and
    /// [`step_occurrences`](Self::step_occurrences) update the rows of a
    /// large gradient on `threads` threads, each owning a contiguous range of
    /// table rows (the result does not depend on it). One thread by
    /// default; the default implementation ignores it.
    fn set_threads(&mut self, threads: Threads) {
        let _ = threads;
    }

    /// The number of finished steps.
    fn iterations(&self) -> u64;

    /// Sets the learning rate of the following steps, as a
    /// [`LearningRateSchedule`] does before each step (Keras calls the
    /// schedule with the optimizer's `iterations`). The optimizer's config
    /// ([`config`](Self::config)) reports the rate last set.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `learning_rate` is negative or not
    /// finite (0 is allowed: a schedule may end there). Nothing changes on
    /// an error.
    fn set_learning_rate(&mut self, learning_rate: f32) -> Result<()>;

    /// The config this optimizer was built from.
    fn config(&self) -> OptimizerConfig;
}

/// The settings of any optimizer: what
/// [`TrainConfig`](crate::model::TrainConfig) stores and saved models
/// record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "optimizer", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OptimizerConfig {
    /// [`Sgd`].
    Sgd(SgdConfig),
    /// [`Adagrad`].
    Adagrad(AdagradConfig),
    /// [`Adam`].
    Adam(AdamConfig),
    /// [`RmsProp`]. Tagged `"rmsprop"`, the name Keras uses.
    #[serde(rename = "rmsprop", alias = "rms_prop")]
    RmsProp(RmsPropConfig),
    /// [`AdamW`]. Tagged `"adamw"`, the name Keras uses.
    #[serde(rename = "adamw", alias = "adam_w")]
    AdamW(AdamWConfig),
    /// [`Ftrl`].
    Ftrl(FtrlConfig),
    /// [`RowWiseAdagrad`]. Tagged `"rowwise_adagrad"`, FBGEMM's name.
    #[serde(rename = "rowwise_adagrad", alias = "row_wise_adagrad")]
    RowWiseAdagrad(RowWiseAdagradConfig),
}

impl OptimizerConfig {
    /// Validates the hyper-parameters and builds the optimizer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the hyper-parameter and its value.
    pub fn build(&self) -> Result<Box<dyn Optimizer>> {
        Ok(match self {
            OptimizerConfig::Sgd(c) => Box::new(c.init()?),
            OptimizerConfig::Adagrad(c) => Box::new(c.init()?),
            OptimizerConfig::Adam(c) => Box::new(c.init()?),
            OptimizerConfig::RmsProp(c) => Box::new(c.init()?),
            OptimizerConfig::AdamW(c) => Box::new(c.init()?),
            OptimizerConfig::Ftrl(c) => Box::new(c.init()?),
            OptimizerConfig::RowWiseAdagrad(c) => Box::new(c.init()?),
        })
    }

    /// The optimizer's name as Keras spells it (`"adam"`, `"rmsprop"`,
    /// `"adamw"`), or FBGEMM for `"rowwise_adagrad"`. It is also the
    /// `"optimizer"` tag of the serialised config.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Adagrad(_) => "adagrad",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::RmsProp(_) => "rmsprop",
            OptimizerConfig::AdamW(_) => "adamw",
            OptimizerConfig::Ftrl(_) => "ftrl",
            OptimizerConfig::RowWiseAdagrad(_) => "rowwise_adagrad",
        }
    }

    /// The learning rate, whichever optimizer it is.
    pub fn learning_rate(&self) -> f32 {
        match self {
            OptimizerConfig::Sgd(c) => c.learning_rate,
            OptimizerConfig::Adagrad(c) => c.learning_rate,
            OptimizerConfig::Adam(c) => c.learning_rate,
            OptimizerConfig::RmsProp(c) => c.learning_rate,
            OptimizerConfig::AdamW(c) => c.learning_rate,
            OptimizerConfig::Ftrl(c) => c.learning_rate,
            OptimizerConfig::RowWiseAdagrad(c) => c.learning_rate,
        }
    }

    /// How the optimizer treats the rows of a table (see [`TableUpdates`]).
    pub fn table_updates(&self) -> TableUpdates {
        match self {
            OptimizerConfig::Sgd(c) => c.table_updates,
            OptimizerConfig::Adagrad(c) => c.table_updates,
            OptimizerConfig::Adam(c) => c.table_updates,
            OptimizerConfig::RmsProp(c) => c.table_updates,
            OptimizerConfig::AdamW(c) => c.table_updates,
            OptimizerConfig::Ftrl(c) => c.table_updates,
            OptimizerConfig::RowWiseAdagrad(c) => c.table_updates,
        }
    }

    /// Sets how the optimizer treats the rows of a table, whichever
    /// optimizer it is.
    pub fn with_table_updates(mut self, table_updates: TableUpdates) -> Self {
        match &mut self {
            OptimizerConfig::Sgd(c) => c.table_updates = table_updates,
            OptimizerConfig::Adagrad(c) => c.table_updates = table_updates,
            OptimizerConfig::Adam(c) => c.table_updates = table_updates,
            OptimizerConfig::RmsProp(c) => c.table_updates = table_updates,
            OptimizerConfig::AdamW(c) => c.table_updates = table_updates,
            OptimizerConfig::Ftrl(c) => c.table_updates = table_updates,
            OptimizerConfig::RowWiseAdagrad(c) => c.table_updates = table_updates,
        }
        self
    }
}

macro_rules! config_from {
    ($($config:ident => $variant:ident),* $(,)?) => {
        $(
            impl From<$config> for OptimizerConfig {
                fn from(config: $config) -> Self {
                    OptimizerConfig::$variant(config)
                }
            }
        )*
    };
}

config_from! {
    SgdConfig => Sgd,
    AdagradConfig => Adagrad,
    AdamConfig => Adam,
    RmsPropConfig => RmsProp,
    AdamWConfig => AdamW,
    FtrlConfig => Ftrl,
    RowWiseAdagradConfig => RowWiseAdagrad,
}

/// How an optimizer steps a table from a [`RowGrad`]: which rows move, and
/// what an id seen several times in a batch adds to second moments.
///
/// | mode | rows that step | second moments of a repeated id | reference |
/// |---|---|---|---|
/// | `Lazy` | the rows of the gradient | `(Σ gᵢ)²` | PyTorch, `sparse=True` |
/// | `Dense` | every row, `g = 0` outside the batch | `(Σ gᵢ)²` | PyTorch, `sparse=False` |
/// | `Keras` | every row, `g = 0` outside the batch | `Σ gᵢ²` | Keras 3, TensorFlow backend |
///
/// In the `Keras` mode, SGD without momentum given a gather's occurrences
/// ([`Optimizer::step_occurrences`]) steps each on its own, in batch order,
/// as Keras's `scatter_sub` does; from a [`RowGrad`] it steps the sums.
///
/// A step with a zero gradient changes nothing for SGD without momentum,
/// Adagrad and row-wise Adagrad, so there `Dense` is `Lazy`, and `Keras`
/// differs from `Lazy` only in the accumulator. For the others, in the
/// `Dense` and `Keras` modes (checked against TensorFlow 2.21 / Keras 3.15
/// and PyTorch 2.15):
///
/// - **SGD with momentum**: the velocity of every row decays and every row
///   with a velocity keeps moving. PyTorch's SGD does the same with a
///   sparse gradient (its momentum buffer keeps every row it has seen), so
///   `Lazy` SGD with momentum matches neither reference.
/// - **Adam, AdamW**: `m` and `v` of every row decay on every step, and
///   every row with a non-zero `m` moves. AdamW also decays the weights of
///   every row on every step (in `Lazy` mode, only the rows of the batch).
/// - **RMSprop**: the mean square (and, centered, the mean gradient) of
///   every row decays; a row outside the batch moves only with momentum.
///   Without momentum and centering nothing but the mean square changes,
///   so a row's decays wait until the row next has a gradient and are
///   then applied one by one (the same bits, at the cost of the lazy step).
/// - **FTRL**: every row is recomputed from its state, so a row never
///   looked up becomes 0 (or its L1/L2 solution) after the first step, and
///   the L2 shrinkage applies to every row.
///
/// Visiting every row costs `num_embeddings × embedding_dim` per step, as
/// it does in the references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TableUpdates {
    /// Only the rows in the gradient and their state change; second moments
    /// use the square of the summed row (PyTorch's sparse optimizers).
    #[default]
    Lazy,
    /// The step of the dense gradient: every row steps, with a zero
    /// gradient outside the batch (PyTorch with `sparse=False`).
    Dense,
    /// Keras 3 with the TensorFlow backend: the steps of `Dense`, with the
    /// sum of the occurrences' squares in second moments and accumulators.
    Keras,
}

/// Which reference's formula an optimizer computes, where Keras 3 and
/// PyTorch differ. Each optimizer's docs give both.
///
/// The flavour sets formulas only; the defaults of each reference come
/// from the config's constructors (`new()` for Keras, `pytorch()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Flavour {
    /// Keras 3's formula.
    #[default]
    #[serde(rename = "keras")]
    Keras,
    /// PyTorch's formula.
    #[serde(rename = "pytorch")]
    PyTorch,
}

/// What an optimizer's state holds per parameter: one value per element,
/// one per row of a table (a dense parameter is one row), or nothing (a
/// slot the config does not use).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    /// Not allocated.
    Unused,
    /// One value per element, starting at the given value.
    Element(f32),
    /// One value per row, starting at the given value.
    Row(f32),
}

/// The state of one parameter: its length, its number of rows (1 for a
/// dense parameter), and `N` slot vectors shaped as their [`Slot`] says.
#[derive(Debug, Clone)]
struct Slots<const N: usize> {
    len: usize,
    rows: usize,
    slots: [TableBuffer; N],
    /// For rules whose zero-gradient step only scales the state
    /// ([`Kernel::zero_gradient_scales_state`]): the table steps taken
    /// under this key, and per row how many of them its state has seen.
    sync: RowSync,
}

/// Deferred zero-gradient steps: a row's state catches up on the steps it
/// missed when it next has a gradient.
#[derive(Debug, Clone, Default)]
struct RowSync {
    /// `step_rows` calls under the key.
    steps: u64,
    /// Per row, the steps its state has taken (empty until first used).
    synced: Vec<u64>,
}

/// Per-key optimizer state with `N` slots per parameter (momentum,
/// moments, accumulators), allocated on first use.
#[derive(Debug, Clone)]
struct SlotStore<const N: usize> {
    spec: [Slot; N],
    params: HashMap<String, Slots<N>>,
}

impl<const N: usize> SlotStore<N> {
    fn new(spec: [Slot; N]) -> Self {
        Self { spec, params: HashMap::new() }
    }

    /// The slots of `key`, allocated for a parameter of `len` values in
    /// `rows` rows if this is the first time `key` is seen.
    fn slots(&mut self, key: &str, len: usize, rows: usize) -> Result<&mut [TableBuffer; N]> {
        Ok(&mut self.param(key, len, rows)?.slots)
    }

    /// The state of `key` with its [`RowSync`], allocated as
    /// [`slots`](Self::slots) does.
    fn param(&mut self, key: &str, len: usize, rows: usize) -> Result<&mut Slots<N>> {
        if !self.params.contains_key(key) {
            let slots = self.spec.map(|slot| match slot {
                Slot::Unused => TableBuffer::zeroed(0),
                Slot::Element(init) => TableBuffer::filled(len, init),
                Slot::Row(init) => TableBuffer::filled(rows, init),
            });
            self.params
                .insert(key.to_owned(), Slots { len, rows, slots, sync: RowSync::default() });
        }
        let param = self.params.get_mut(key).expect("the state of `key` was inserted above");
        if param.len != len {
            return Err(Error::shape(
                "optimizer state",
                format!("[{}], the length first seen under {key:?}", param.len),
                &[len],
            ));
        }
        if param.rows != rows {
            return Err(Error::shape(
                "optimizer state",
                format!("{} rows, the shape first seen under {key:?}", param.rows),
                &[rows, len / rows.max(1)],
            ));
        }
        Ok(param)
    }
}

/// The constants of one step of an elementwise optimizer, applied to
/// matching slices of weights, gradient and state.
///
/// This is what each optimizer file writes: [`Stepper`] hands it either a
/// whole dense parameter or one row of a table at a time.
trait Kernel<const N: usize>: Copy + Send + Sync {
    /// Whether [`apply`](Self::apply) reads `g2`, the squared gradient. If
    /// not, it is handed an empty slice.
    const SQUARES: bool;

    /// Whether a step with a zero gradient leaves the weights and every
    /// slot as they are, so the rows outside a [`RowGrad`] can be skipped
    /// in every [`TableUpdates`] mode.
    fn zero_gradient_is_identity(self) -> bool;

    /// If a step with a zero gradient leaves the weights as they are and
    /// multiplies each element slot by a constant above 0 (1 for a slot it
    /// leaves alone), those constants. (A factor of 0 would turn an
    /// infinite state into NaN and the weight with it.) The dense table modes then defer the steps
    /// of rows outside the gradient: a row's state takes the missed
    /// multiplications, one by one (the same bits), when the row next has
    /// a gradient. The state is internal, so only the time changes.
    fn zero_gradient_scales_state(self) -> Option<[f32; N]> {
        None
    }

    /// If a step needs no state and is `w -= c·g`, with the same bits as
    /// [`apply`](Self::apply): the factor `c`. In the
    /// [`TableUpdates::Keras`] mode such a rule steps each occurrence of a
    /// gather's gradient on its own, as Keras does (see
    /// [`Optimizer::step_occurrences`]).
    fn occurrence_step(self) -> Option<f32> {
        None
    }

    /// One step over `w` with gradient `g` and squared gradient `g2` (the
    /// same length as `g`, or empty if [`SQUARES`](Self::SQUARES) is
    /// false). Each state slice holds one value per element of `w`, one
    /// value for the whole of `w` (a row slot), or nothing (unused).
    fn apply(self, w: &mut [f32], g: &[f32], g2: &[f32], state: [&mut [f32]; N]);

    /// [`apply`](Self::apply) with a zero gradient: `zeros` is as long as
    /// `w`. Rules override it with a shortcut that gives the same bits.
    #[inline(always)]
    fn apply_zero_gradient(self, w: &mut [f32], zeros: &[f32], state: [&mut [f32]; N]) {
        self.apply(w, zeros, if Self::SQUARES { zeros } else { &[] }, state);
    }
}

/// An optimizer config, seen as the rule [`Stepper`] runs.
trait Rule<const N: usize>: Clone + std::fmt::Debug + Send + Into<OptimizerConfig> {
    /// The constants of one step.
    type Kernel: Kernel<N>;

    /// The state this config needs per parameter.
    fn slots(&self) -> [Slot; N];

    /// How tables are stepped.
    fn table_mode(&self) -> TableUpdates;

    /// The learning rate the next kernels use.
    fn learning_rate_mut(&mut self) -> &mut f32;

    /// The constants of the step after `iterations` finished steps.
    fn kernel(&self, iterations: u64) -> Self::Kernel;
}

/// The body every optimizer shares: its config, per-key state, the
/// iteration count, and the two ways of applying a [`Kernel`]: to a whole
/// dense parameter, or to the rows of a table as its [`TableUpdates`]
/// says.
#[derive(Debug, Clone)]
struct Stepper<C, const N: usize> {
    config: C,
    state: SlotStore<N>,
    iterations: u64,
    /// Scratch for `g²` when the kernel needs it and the squares are not
    /// taken from a [`RowGrad`].
    squares: Vec<f32>,
    /// A row of zeros: the gradient of rows outside a [`RowGrad`].
    zeros: Vec<f32>,
    /// Scratch: the gradient rows' weights and state, kept across the
    /// zero-gradient pass over the whole table.
    saved: Vec<f32>,
    /// Threads of the lazy row updates.
    threads: Threads,
    /// Scratch: a [`GatherGrad`]'s rows summed, for the rules that step
    /// summed rows.
    summed: RowGrad,
    /// Scratch of each thread of a lazy step.
    parts: Vec<PartScratch>,
}

/// The scratch of one thread of a lazy step.
#[derive(Debug, Clone, Default)]
struct PartScratch {
    /// `g²` of a row, when the kernel reads it.
    squares: Vec<f32>,
    /// The gradient rows of the repeated ids of a [`GatherGrad`], summed
    /// in batch order.
    sums: Vec<f32>,
    /// Their sums of squares, when the kernel reads the occurrences'.
    sum_squares: Vec<f32>,
}

/// Floats of zero gradient a dense step applies at a time to the rows
/// outside the gradient.
const ZERO_BLOCK: usize = 4096;

/// Tables of at least this many floats defer the zero-gradient steps of
/// rules that only scale the state ([`Kernel::zero_gradient_scales_state`]);
/// smaller ones, which the caches hold, scale all the state each step.
const DEFER_MIN_FLOATS: usize = 1 << 20;

/// How many rows ahead a lazy step prefetches table and state rows.
const ROW_PREFETCH_DISTANCE: usize = 8;

impl<C: Rule<N>, const N: usize> Stepper<C, N> {
    fn new(config: C) -> Self {
        let state = SlotStore::new(config.slots());
        Self {
            config,
            state,
            iterations: 0,
            squares: Vec::new(),
            zeros: Vec::new(),
            saved: Vec::new(),
            threads: Threads::single(),
            summed: RowGrad::default(),
            parts: Vec::new(),
        }
    }

    /// The factor of a step per occurrence, `w -= c·g`, if this rule takes
    /// one (see [`Kernel::occurrence_step`]): in the Keras table mode only.
    fn occurrence_step(&self) -> Option<f32> {
        let kernel = self.config.kernel(self.iterations);
        kernel.occurrence_step().filter(|_| self.config.table_mode() == TableUpdates::Keras)
    }

    fn step_dense(&mut self, key: &str, value: &mut [f32], grad: &[f32]) -> Result<()> {
        if grad.len() != value.len() {
            return Err(Error::shape(
                "gradient",
                format!("[{}], the length of the parameter", value.len()),
                &[grad.len()],
            ));
        }
        let kernel = self.config.kernel(self.iterations);
        let slots = self.state.slots(key, value.len(), 1)?;
        let g2 = if C::Kernel::SQUARES { squares_of(grad, &mut self.squares) } else { &[] };
        kernel.apply(value, grad, g2, slots.each_mut().map(|s| &mut s[..]));
        Ok(())
    }

    /// The rows are summed first for the dense modes, which step every
    /// row, and for rules with a table-sized state: those read it, and the
    /// table, best in id order (nearly in sequence), so they pay for
    /// reading the upstream rows out of order (measured:
    /// `benches/sparse_update.rs`).
    fn gather_sums_first(&self) -> bool {
        let mode = self.config.table_mode();
        let kernel = self.config.kernel(self.iterations);
        let element_slots = self.state.spec.iter().any(|slot| matches!(slot, Slot::Element(_)));
        element_slots || (mode != TableUpdates::Lazy && !kernel.zero_gradient_is_identity())
    }

    fn step_gather(&mut self, key: &str, table: &mut [f32], grad: &GatherGrad<'_>) -> Result<()> {
        let mode = self.config.table_mode();
        let kernel = self.config.kernel(self.iterations);
        if self.gather_sums_first() {
            let mut summed = std::mem::take(&mut self.summed);
            grad.sum_into(&mut summed, self.threads);
            let result = self.step_rows(key, table, &summed);
            self.summed = summed;
            return result;
        }
        if grad.is_empty() && mode == TableUpdates::Lazy {
            return Ok(());
        }
        let num_embeddings = checked_rows(table, grad.ids(), grad.dim(), grad.len())?;
        let spec = self.state.spec;
        let param = self.state.param(key, table.len(), num_embeddings)?;
        let state = param.slots.each_mut().map(|s| &mut s[..]);
        let occurrences = mode == TableUpdates::Keras;
        step_gather_lazy_split::<C, N>(
            kernel,
            &spec,
            grad,
            self.threads,
            table,
            state,
            occurrences,
            &mut self.parts,
        );
        Ok(())
    }

    fn steps_each_occurrence(&self) -> bool {
        self.occurrence_step().is_some()
    }

    fn step_occurrences(
        &mut self,
        key: &str,
        table: &mut [f32],
        ids: &[u32],
        upstream: &[f32],
        dim: usize,
    ) -> Result<()> {
        let Some(c) = self.occurrence_step() else {
            checked_gather_shape(ids, upstream, dim)?;
            let mut summed = std::mem::take(&mut self.summed);
            summed.assign_gather_grad(ids, upstream, dim, false, self.threads);
            let result = self.step_rows(key, table, &summed);
            self.summed = summed;
            return result;
        };
        checked_gather_shape(ids, upstream, dim)?;
        // Rows outside the batch do not move (the rule has no state, see
        // `Kernel::occurrence_step`): an empty batch is a no-op.
        if ids.is_empty() {
            return Ok(());
        }
        if table.len() % dim != 0 {
            return Err(Error::shape(
                "table",
                format!("a length that is a multiple of the row length {dim}"),
                &[table.len()],
            ));
        }
        let num_embeddings = table.len() / dim;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= num_embeddings) {
            return Err(Error::IdOutOfRange { id, num_embeddings });
        }
        // The rule has no state (`Kernel::occurrence_step`); the key is
        // recorded with the table's shape all the same.
        let spec = self.state.spec;
        let param = self.state.param(key, table.len(), num_embeddings)?;
        let state = param.slots.each_mut().map(|s| &mut s[..]);
        let parts = self.threads.parts_for(upstream.len(), MIN_FLOATS_PER_THREAD);
        let bounds = occurrence_bounds(ids, parts);
        let run = |_, rows, table: &mut [f32], _: [&mut [f32]; N], _: &mut PartScratch| {
            step_occurrences_part(c, ids, upstream, dim, rows, table);
        };
        split_at_rows(&bounds, dim, &spec, table, state, &mut self.parts, run);
        Ok(())
    }

    fn step_rows(&mut self, key: &str, table: &mut [f32], grad: &RowGrad) -> Result<()> {
        let mode = self.config.table_mode();
        if grad.is_empty() && mode == TableUpdates::Lazy {
            return Ok(());
        }
        let dim = grad.dim();
        let num_embeddings = checked_rows(table, grad.ids(), dim, grad.len())?;
        let kernel = self.config.kernel(self.iterations);
        let spec = self.state.spec;
        let param = self.state.param(key, table.len(), num_embeddings)?;
        let (slots, sync) = (&mut param.slots, &mut param.sync);
        let occurrences = mode == TableUpdates::Keras;
        let every_row = mode != TableUpdates::Lazy && !kernel.zero_gradient_is_identity();
        let squares = &mut self.squares;
        let scaling = kernel.zero_gradient_scales_state().filter(|_| every_row);
        let element_slots_only = spec.iter().all(|slot| !matches!(slot, Slot::Row(_)));
        if let Some(factors) =
            scaling.filter(|_| table.len() < DEFER_MIN_FLOATS && element_slots_only)
        {
            // A table the caches hold: the gradient rows and their state
            // are gathered into one block, the whole state is scaled in one
            // pass per slot, and the block takes the real step in one call
            // before it goes back (elementwise, so the same bits as row by
            // row). `w` does not move outside the gradient: a zero-gradient
            // step only turns it NaN where the state is NaN, and with
            // factors above 0 (see `zero_gradient_scales_state`) the state
            // only becomes NaN with a NaN gradient, which made `w` NaN in
            // the same step.
            let n = grad.len() * dim;
            let used: [bool; N] = spec.map(|slot| matches!(slot, Slot::Element(_)));
            let block = &mut self.saved;
            block.clear();
            block.resize(n * (1 + used.iter().filter(|&&u| u).count()), 0.0);
            let mut parts = block.chunks_exact_mut(n.max(1));
            let sources = std::iter::once(&*table)
                .chain(slots.iter().zip(&used).filter(|(_, &u)| u).map(|(v, _)| &v[..]));
            for (values, part) in sources.zip(&mut parts) {
                crate::kernels::gather(values, dim, grad.ids(), part, Threads::single())
                    .expect("ids checked against the table above");
            }
            let g2: &[f32] = if C::Kernel::SQUARES {
                squares.clear();
                if occurrences {
                    let mut scratch = Vec::new();
                    for i in 0..grad.len() {
                        squares.extend_from_slice(grad.row_squares(i, &mut scratch));
                    }
                } else {
                    squares.extend(grad.rows().iter().map(|g| g * g));
                }
                squares
            } else {
                &[]
            };
            let state = slots.each_mut().map(|s| &mut s[..]);
            crate::kernels::simd::dispatch(
                #[inline(always)]
                || {
                    let mut state = state;
                    for (values, &factor) in state.iter_mut().zip(&factors) {
                        if factor != 1.0 {
                            values.iter_mut().for_each(|v| *v *= factor);
                        }
                    }
                    let (w, mut rest) = block.split_at_mut(n);
                    let block_state: [&mut [f32]; N] = std::array::from_fn(|j| {
                        if used[j] {
                            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n);
                            rest = tail;
                            mine
                        } else {
                            &mut [][..]
                        }
                    });
                    kernel.apply(w, grad.rows(), g2, block_state);
                    let scatter = |values: &mut [f32], from: &[f32]| {
                        crate::kernels::scatter(values, dim, grad.ids(), from)
                    };
                    let (w, mut rest) = block.split_at(n);
                    scatter(table, w);
                    for (values, &used) in state.iter_mut().zip(&used) {
                        if used {
                            let (mine, tail) = rest.split_at(n);
                            rest = tail;
                            scatter(values, mine);
                        }
                    }
                },
            );
            return Ok(());
        }
        if let Some(factors) = scaling {
            // A large table: each row's state catches up on the steps it
            // missed when it next has a gradient.
            if sync.synced.is_empty() {
                sync.synced = vec![0; num_embeddings];
            }
            let state = slots.each_mut().map(|s| &mut s[..]);
            crate::kernels::simd::dispatch(
                #[inline(always)]
                || {
                    let mut state = state;
                    for (i, (id, g)) in grad.iter().enumerate() {
                        let row = id as usize;
                        let r = row * dim..(row + 1) * dim;
                        let missed = sync.steps - sync.synced[row];
                        for (values, &factor) in state.iter_mut().zip(&factors) {
                            if factor != 1.0 && missed > 0 {
                                let values = &mut values[r.clone()];
                                if catch_up(values, factor, missed) {
                                    // The eager zero-gradient step turns
                                    // `w` NaN where its state is NaN.
                                    for (w, v) in table[r.clone()].iter_mut().zip(&*values) {
                                        if v.is_nan() {
                                            *w = f32::NAN;
                                        }
                                    }
                                }
                            }
                        }
                        let g2 = gradient_squares::<C, N>(grad, i, g, occurrences, squares);
                        apply_to_rows::<C, N>(
                            kernel,
                            &spec,
                            dim,
                            table,
                            &mut state,
                            row..row + 1,
                            g,
                            Some(g2),
                        );
                        sync.synced[row] = sync.steps + 1;
                    }
                },
            );
            sync.steps += 1;
            return Ok(());
        }
        if every_row {
            // The rows between two gradient rows take their zero-gradient
            // step as one block (row by row for rules with a row slot).
            let has_row_slot = spec.iter().any(|slot| matches!(slot, Slot::Row(_)));
            let block_rows = if has_row_slot { 1 } else { (ZERO_BLOCK / dim).max(1) };
            self.zeros.clear();
            self.zeros.resize(block_rows * dim, 0.0);
            let zeros = &self.zeros[..];
            let state = slots.each_mut().map(|s| &mut s[..]);
            if !has_row_slot {
                // Every row takes the zero-gradient step in long blocks,
                // then the gradient rows get back their weights and state
                // and take their step: the same bits as stepping the gaps
                // between gradient rows, without a call per short gap.
                let saved = &mut self.saved;
                saved.clear();
                for &id in grad.ids() {
                    let r = id as usize * dim..(id as usize + 1) * dim;
                    saved.extend_from_slice(&table[r.clone()]);
                    for (slot, values) in spec.iter().zip(&state) {
                        if matches!(slot, Slot::Element(_)) {
                            saved.extend_from_slice(&values[r.clone()]);
                        }
                    }
                }
                crate::kernels::simd::dispatch(
                    #[inline(always)]
                    || {
                        let mut state = state;
                        let mut row = 0;
                        while row < num_embeddings {
                            let end = usize::min(num_embeddings, row + block_rows);
                            let g = &zeros[..(end - row) * dim];
                            apply_to_rows::<C, N>(
                                kernel,
                                &spec,
                                dim,
                                table,
                                &mut state,
                                row..end,
                                g,
                                None,
                            );
                            row = end;
                        }
                        let mut saved = saved.chunks_exact(dim);
                        for (i, (id, g)) in grad.iter().enumerate() {
                            let r = id as usize * dim..(id as usize + 1) * dim;
                            table[r.clone()].copy_from_slice(saved.next().expect("saved above"));
                            for (slot, values) in spec.iter().zip(state.iter_mut()) {
                                if matches!(slot, Slot::Element(_)) {
                                    values[r.clone()]
                                        .copy_from_slice(saved.next().expect("saved above"));
                                }
                            }
                            let g2 = gradient_squares::<C, N>(grad, i, g, occurrences, squares);
                            let rows = id as usize..id as usize + 1;
                            apply_to_rows::<C, N>(
                                kernel,
                                &spec,
                                dim,
                                table,
                                &mut state,
                                rows,
                                g,
                                Some(g2),
                            );
                        }
                    },
                );
                return Ok(());
            }
            crate::kernels::simd::dispatch(
                #[inline(always)]
                || {
                    let mut state = state;
                    // `g2` None: the rows take a zero-gradient step.
                    let mut apply = |rows: std::ops::Range<usize>,
                                     g: &[f32],
                                     g2: Option<&[f32]>| {
                        apply_to_rows::<C, N>(kernel, &spec, dim, table, &mut state, rows, g, g2)
                    };
                    let mut rows = grad.iter().enumerate();
                    let mut row = 0;
                    loop {
                        let next = rows.next();
                        let to = next.map_or(num_embeddings, |(_, (id, _))| id as usize);
                        while row < to {
                            let end = usize::min(to, row + block_rows);
                            apply(row..end, &zeros[..(end - row) * dim], None);
                            row = end;
                        }
                        let Some((i, (_, g))) = next else { break };
                        let g2 = gradient_squares::<C, N>(grad, i, g, occurrences, squares);
                        apply(to..to + 1, g, Some(g2));
                        row = to + 1;
                    }
                },
            );
        } else {
            let state = slots.each_mut().map(|s| &mut s[..]);
            step_rows_lazy_split::<C, N>(
                kernel,
                &spec,
                grad,
                self.threads,
                table,
                state,
                occurrences,
                &mut self.parts,
            );
        }
        Ok(())
    }

    fn finish_step(&mut self) {
        self.iterations += 1;
    }

    fn config(&self) -> OptimizerConfig {
        self.config.clone().into()
    }
}

/// The squared gradient of row `i` of `grad` (whose values are `g`) for a
/// kernel of rule `C`: empty if the kernel does not read it, the sum of
/// the occurrences' squares if `occurrences`, else `g²` computed into
/// `scratch`.
#[inline(always)]
fn gradient_squares<'a, C: Rule<N>, const N: usize>(
    grad: &'a RowGrad,
    i: usize,
    g: &[f32],
    occurrences: bool,
    scratch: &'a mut Vec<f32>,
) -> &'a [f32] {
    if !C::Kernel::SQUARES {
        &[]
    } else if occurrences {
        grad.row_squares(i, scratch)
    } else {
        squares_of(g, scratch)
    }
}

/// Multiplies `values` by `factor` `times` times, one rounding each time
/// (the bits of as many zero-gradient steps), stopping early once every
/// value is 0 or NaN (further steps change nothing). Returns whether a
/// value is NaN.
#[inline(always)]
fn catch_up(values: &mut [f32], factor: f32, times: u64) -> bool {
    for _ in 0..times {
        values.iter_mut().for_each(|v| *v *= factor);
        if values.iter().all(|v| *v == 0.0 || v.is_nan()) {
            break;
        }
    }
    values.iter().any(|v| v.is_nan())
}

/// One step of the rule over the table rows `rows` with the gradient `g`
/// and its squares `g2`, or a zero gradient (`g2` is `None`, `g` zeros as
/// long as the rows). A rule with a row slot is stepped one row at a
/// time (its slot holds one value for the whole of `w`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn apply_to_rows<C: Rule<N>, const N: usize>(
    kernel: C::Kernel,
    spec: &[Slot; N],
    dim: usize,
    table: &mut [f32],
    state: &mut [&mut [f32]; N],
    rows: std::ops::Range<usize>,
    g: &[f32],
    g2: Option<&[f32]>,
) {
    let elements = rows.start * dim..rows.end * dim;
    let mut spec = spec.iter();
    let state = state.each_mut().map(|slot| match spec.next() {
        Some(Slot::Element(_)) => &mut slot[elements.clone()],
        Some(Slot::Row(_)) => &mut slot[rows.clone()],
        _ => &mut [][..],
    });
    let w = &mut table[elements];
    match g2 {
        Some(g2) => kernel.apply(w, g, g2, state),
        None => kernel.apply_zero_gradient(w, g, state),
    }
}

/// Checks the rows of a gather's gradient: `dim` at least 1 and one row
/// of `dim` per id.
fn checked_gather_shape(ids: &[u32], upstream: &[f32], dim: usize) -> Result<()> {
    if dim == 0 {
        return Err(Error::shape("gradient rows", "rows of length at least 1", &[ids.len(), 0]));
    }
    if upstream.len() != ids.len() * dim {
        return Err(Error::shape(
            "gradient rows",
            format!("one row of {dim} values per id: [{}, {dim}]", ids.len()),
            &[upstream.len()],
        ));
    }
    Ok(())
}

/// [`Optimizer::step_occurrences`] for a rule that steps summed rows: each
/// id's rows summed into a [`RowGrad`], then [`Optimizer::step_rows`].
fn step_summed_occurrences<O: Optimizer + ?Sized>(
    optimizer: &mut O,
    key: &str,
    table: &mut [f32],
    ids: &[u32],
    upstream: &[f32],
    dim: usize,
) -> Result<()> {
    checked_gather_shape(ids, upstream, dim)?;
    let mut grad = RowGrad::default();
    grad.assign_gather_grad(ids, upstream, dim, false, Threads::single());
    optimizer.step_rows(key, table, &grad)
}

/// Checks a table against the rows of a gradient (`ids` sorted, `len` of
/// them, rows of `dim`) and returns its number of rows.
fn checked_rows(table: &[f32], ids: &[u32], dim: usize, len: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::shape("gradient rows", "rows of length at least 1", &[len, 0]));
    }
    if table.len() % dim != 0 {
        return Err(Error::shape(
            "table",
            format!("a length that is a multiple of the row length {dim}"),
            &[table.len()],
        ));
    }
    let num_embeddings = table.len() / dim;
    // Ids are sorted: the first one past the table is found by bisection.
    let first_past = ids.partition_point(|&id| (id as usize) < num_embeddings);
    if let Some(&id) = ids.get(first_past) {
        return Err(Error::IdOutOfRange { id, num_embeddings });
    }
    Ok(num_embeddings)
}

/// The lazy step of every row of `grad`, on `threads` threads when it is
/// large (see [`split_by_rows`]).
#[allow(clippy::too_many_arguments)]
fn step_rows_lazy_split<C: Rule<N>, const N: usize>(
    kernel: C::Kernel,
    spec: &[Slot; N],
    grad: &RowGrad,
    threads: Threads,
    table: &mut [f32],
    state: [&mut [f32]; N],
    occurrences: bool,
    scratch: &mut Vec<PartScratch>,
) {
    let parts = threads.parts_for(grad.len() * grad.dim(), MIN_FLOATS_PER_THREAD);
    let run = |range,
               rows: std::ops::Range<usize>,
               table: &mut [f32],
               state: [&mut [f32]; N],
               scratch: &mut PartScratch| {
        step_rows_lazy::<C, N>(
            kernel,
            spec,
            grad,
            range,
            rows.start,
            table,
            state,
            occurrences,
            &mut scratch.squares,
        )
    };
    split_by_rows(grad.ids(), grad.dim(), parts, spec, table, state, scratch, run);
}

/// Runs `run(ids, rows, table, state, scratch)` on `parts` threads (the
/// caller's among them), each owning the table rows (and their state)
/// from its first id to the next thread's first id: `ids` is its range of
/// indices into the sorted `ids`, `rows` the rows it owns, and `table` and
/// `state` start at the first of them; each thread has its own of
/// `scratch` (grown to the number of threads used, kept for the next
/// step). One part runs `run` on everything.
#[allow(clippy::too_many_arguments)]
fn split_by_rows<const N: usize, F>(
    ids: &[u32],
    dim: usize,
    parts: usize,
    spec: &[Slot; N],
    table: &mut [f32],
    state: [&mut [f32]; N],
    scratch: &mut Vec<PartScratch>,
    run: F,
) where
    F: Fn(
            std::ops::Range<usize>,
            std::ops::Range<usize>,
            &mut [f32],
            [&mut [f32]; N],
            &mut PartScratch,
        ) + Sync,
{
    let ranges = split_evenly(ids.len(), parts);
    if ranges.len() <= 1 {
        let run =
            |_, rows, table: &mut [f32], state: [&mut [f32]; N], scratch: &mut PartScratch| {
                run(0..ids.len(), rows, table, state, scratch)
            };
        return split_at_rows(&[], dim, spec, table, state, scratch, run);
    }
    let bounds: Vec<usize> = ranges[1..].iter().map(|range| ids[range.start] as usize).collect();
    let run = |part: usize,
               rows,
               table: &mut [f32],
               state: [&mut [f32]; N],
               scratch: &mut PartScratch| {
        run(ranges[part].clone(), rows, table, state, scratch)
    };
    split_at_rows(&bounds, dim, spec, table, state, scratch, run);
}

/// Runs `run(part, rows, table, state, scratch)` on `bounds.len() + 1`
/// threads (the caller's among them): part `k` owns the table rows (and
/// their state) from `bounds[k - 1]` (0 for the first) to `bounds[k]` (the
/// table's end for the last); `table` and `state` start at its first row,
/// and each part has its own of `scratch` (grown to the number of parts,
/// kept for the next step). `bounds` must not decrease.
#[allow(clippy::too_many_arguments)]
fn split_at_rows<const N: usize, F>(
    bounds: &[usize],
    dim: usize,
    spec: &[Slot; N],
    table: &mut [f32],
    state: [&mut [f32]; N],
    scratch: &mut Vec<PartScratch>,
    run: F,
) where
    F: Fn(usize, std::ops::Range<usize>, &mut [f32], [&mut [f32]; N], &mut PartScratch) + Sync,
{
    let num_rows = table.len() / dim;
    debug_assert!(
        bounds.windows(2).all(|w| w[0] <= w[1]) && bounds.iter().all(|&b| b <= num_rows),
        "bounds {bounds:?} of {num_rows} rows"
    );
    let parts = bounds.len() + 1;
    if scratch.len() < parts {
        scratch.resize_with(parts, PartScratch::default);
    }
    if parts == 1 {
        run(0, 0..num_rows, table, state, &mut scratch[0]);
        return;
    }
    std::thread::scope(|scope| {
        let run = &run;
        let (mut table, mut state, mut end) = (table, state, num_rows);
        for (part, scratch) in scratch[..parts].iter_mut().enumerate().rev() {
            let first = if part == 0 { 0 } else { bounds[part - 1] };
            let (rest, mine) = table.split_at_mut(first * dim);
            let (rest_state, my_state) = split_slots(state, spec, first, dim);
            (table, state) = (rest, rest_state);
            let rows = first..end;
            end = first;
            if part == 0 {
                run(part, rows, mine, my_state, scratch);
            } else {
                scope.spawn(move || run(part, rows, mine, my_state, scratch));
            }
        }
    });
}

/// The first rows of parts 1.. when the occurrences of `ids` (in any
/// order) are stepped by `parts` threads that own contiguous rows: the
/// quantiles of an evenly spaced sample of them, so that each part gets
/// about as many occurrences on skewed ids as on uniform ones. The result
/// does not depend on them: each row is stepped by one part, in batch
/// order.
fn occurrence_bounds(ids: &[u32], parts: usize) -> Vec<usize> {
    if parts <= 1 || ids.is_empty() {
        return Vec::new();
    }
    let mut sample: Vec<u32> = ids.iter().step_by((ids.len() / 4096).max(1)).copied().collect();
    sample.sort_unstable();
    (1..parts).map(|k| sample[k * sample.len() / parts] as usize).collect()
}

/// `w -= c·g` for each occurrence in `ids` whose id falls in the owned
/// `rows`, in batch order, with `g` its upstream row, on the part of the
/// table that starts at the first of them, with the processor's widest
/// vector instructions.
fn step_occurrences_part(
    c: f32,
    ids: &[u32],
    upstream: &[f32],
    dim: usize,
    rows: std::ops::Range<usize>,
    table: &mut [f32],
) {
    crate::kernels::simd::dispatch(
        #[inline(always)]
        || {
            let owned = |id: u32| rows.contains(&(id as usize));
            for (p, &id) in ids.iter().enumerate() {
                if let Some(&next) = ids.get(p + ROW_PREFETCH_DISTANCE) {
                    if owned(next) {
                        let at = (next as usize - rows.start) * dim;
                        crate::kernels::simd::prefetch(table, at, dim);
                    }
                }
                if !owned(id) {
                    continue;
                }
                let g = &upstream[p * dim..][..dim];
                let w = &mut table[(id as usize - rows.start) * dim..][..dim];
                for (w, &g) in w.iter_mut().zip(g) {
                    *w -= c * g;
                }
            }
        },
    )
}

/// The lazy step of the gradient rows `range` on the part of the table
/// (and of its state) that starts at row `first_row`, with the processor's
/// widest vector instructions ([`simd::dispatch`]).
///
/// [`simd::dispatch`]: crate::kernels::simd::dispatch
#[allow(clippy::too_many_arguments)]
fn step_rows_lazy<C: Rule<N>, const N: usize>(
    kernel: C::Kernel,
    spec: &[Slot; N],
    grad: &RowGrad,
    range: std::ops::Range<usize>,
    first_row: usize,
    table: &mut [f32],
    state: [&mut [f32]; N],
    occurrences: bool,
    squares: &mut Vec<f32>,
) {
    crate::kernels::simd::dispatch(
        #[inline(always)]
        || {
            step_rows_lazy_inline::<C, N>(
                kernel,
                spec,
                grad,
                range,
                first_row,
                table,
                state,
                occurrences,
                squares,
            )
        },
    )
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_rows_lazy_inline<C: Rule<N>, const N: usize>(
    kernel: C::Kernel,
    spec: &[Slot; N],
    grad: &RowGrad,
    range: std::ops::Range<usize>,
    first_row: usize,
    table: &mut [f32],
    mut state: [&mut [f32]; N],
    occurrences: bool,
    squares: &mut Vec<f32>,
) {
    let dim = grad.dim();
    let end = range.end;
    for i in range {
        // The rows are scattered over the table: ask for a later row and
        // its state now, so they arrive while this one is updated.
        if i + ROW_PREFETCH_DISTANCE < end {
            let next = (grad.ids()[i + ROW_PREFETCH_DISTANCE] as usize - first_row) * dim;
            crate::kernels::simd::prefetch(table, next, dim);
            for (slot, kind) in state.iter().zip(spec) {
                if let Slot::Element(_) = kind {
                    crate::kernels::simd::prefetch(slot, next, dim);
                }
            }
        }
        let row = grad.ids()[i] as usize - first_row;
        let g = &grad.rows()[i * dim..(i + 1) * dim];
        let g2 = gradient_squares::<C, N>(grad, i, g, occurrences, squares);
        apply_to_rows::<C, N>(kernel, spec, dim, table, &mut state, row..row + 1, g, Some(g2));
    }
}

/// The lazy step of a [`GatherGrad`] for a rule without element slots, on
/// `threads` threads when it is large (see [`split_by_rows`]).
#[allow(clippy::too_many_arguments)]
fn step_gather_lazy_split<C: Rule<N>, const N: usize>(
    kernel: C::Kernel,
    spec: &[Slot; N],
    grad: &GatherGrad<'_>,
    threads: Threads,
    table: &mut [f32],
    state: [&mut [f32]; N],
    occurrences: bool,
    scratch: &mut Vec<PartScratch>,
) {
    let parts = threads.parts_for(grad.batch_ids().len() * grad.dim(), MIN_FLOATS_PER_THREAD);
    let run = |_, rows, table: &mut [f32], state: [&mut [f32]; N], scratch: &mut PartScratch| {
        step_gather_lazy::<C, N>((kernel, spec, grad, rows, table, state, occurrences), scratch)
    };
    split_by_rows(grad.ids(), grad.dim(), parts, spec, table, state, scratch, run);
}

/// The arguments of [`step_gather_lazy`]: the kernel, the state layout,
/// the gradient, the table rows this call owns, their values and state
/// (starting at the first of those rows), and whether the kernel's squares
/// are the occurrences'.
type GatherStep<'g, 'a, C, const N: usize> = (
    <C as Rule<N>>::Kernel,
    &'g [Slot; N],
    &'g GatherGrad<'g>,
    std::ops::Range<usize>,
    &'a mut [f32],
    [&'a mut [f32]; N],
    bool,
);

/// The lazy step of the rows of a [`GatherGrad`] whose ids fall in the
/// owned rows, with the processor's widest vector instructions, in one
/// pass over the batch, which reads the upstream rows in sequence: an id
/// seen once takes its step there, straight from its upstream row; the
/// rows of an id seen several times are summed into `scratch` (in batch
/// order, as [`GatherGrad::row`] sums them), and those ids take their
/// step after the pass. Each row takes one step either way, so the order
/// does not change the result.
fn step_gather_lazy<C: Rule<N>, const N: usize>(
    args: GatherStep<'_, '_, C, N>,
    scratch: &mut PartScratch,
) {
    crate::kernels::simd::dispatch(
        #[inline(always)]
        || step_gather_lazy_inline::<C, N>(args, scratch),
    )
}

#[inline(always)]
fn step_gather_lazy_inline<C: Rule<N>, const N: usize>(
    args: GatherStep<'_, '_, C, N>,
    scratch: &mut PartScratch,
) {
    let (kernel, spec, grad, rows, table, mut state, occurrences) = args;
    let PartScratch { squares, sums, sum_squares } = scratch;
    let dim = grad.dim();
    let mut buf = vec![0.0; dim];
    let owned = |id: u32| rows.contains(&(id as usize));
    // The rule has no element slots (see `Stepper::step_gather`): only
    // the table rows are worth asking for ahead.
    let prefetch = |table: &[f32], id: u32| {
        crate::kernels::simd::prefetch(table, (id as usize - rows.start) * dim, dim);
    };
    // `g²` as the kernel reads it: empty if it does not.
    let g2_of = |g: &[f32], squares: &mut Vec<f32>| {
        squares.clear();
        if C::Kernel::SQUARES {
            squares_of(g, squares);
        }
    };
    // The repeated ids of the owned rows, and the sums of their rows (and
    // of their squares when the kernel reads the occurrences').
    let (ids, repeated) = (grad.ids(), grad.repeated());
    let from = repeated.partition_point(|&i| (ids[i as usize] as usize) < rows.start);
    let to = repeated.partition_point(|&i| (ids[i as usize] as usize) < rows.end);
    let with_squares = occurrences && C::Kernel::SQUARES;
    // Every value is written at the id's first occurrence.
    sums.resize((to - from) * dim, 0.0);
    sum_squares.resize(if with_squares { (to - from) * dim } else { 0 }, 0.0);
    let (batch, singles) = (grad.batch_ids(), grad.singles());
    for (p, (&id, &single)) in batch.iter().zip(singles).enumerate() {
        // Ahead: the table row an id seen once steps, or the scratch row
        // that sums an id seen several times (the table row waits).
        let ahead = p + ROW_PREFETCH_DISTANCE;
        if let Some(&next) = batch.get(ahead) {
            if owned(next) {
                if singles[ahead] {
                    prefetch(table, next);
                } else {
                    let (k, _) = grad.repeated_slot(ahead);
                    crate::kernels::simd::prefetch(sums, (k - from) * dim, dim);
                }
            }
        }
        if !owned(id) {
            continue;
        }
        if !single {
            let (k, first) = grad.repeated_slot(p);
            let at = (k - from) * dim..(k - from + 1) * dim;
            let sq = with_squares.then(|| &mut sum_squares[at.clone()]);
            grad.add_occurrence(p, k, first, &mut sums[at], sq);
            continue;
        }
        let g = grad.single_row(p, &mut buf);
        // An id seen once: its occurrences' squares are the row's.
        g2_of(g, squares);
        let row = id as usize - rows.start;
        apply_to_rows::<C, N>(kernel, spec, dim, table, &mut state, row..row + 1, g, Some(squares));
    }
    for (j, &i) in repeated[from..to].iter().enumerate() {
        if let Some(&next) = repeated[from..to].get(j + ROW_PREFETCH_DISTANCE) {
            prefetch(table, ids[next as usize]);
        }
        let at = j * dim..(j + 1) * dim;
        let g = &sums[at.clone()];
        if with_squares {
            squares.clear();
            squares.extend_from_slice(&sum_squares[at]);
            grad.finish_squares(from + j, squares);
        } else {
            g2_of(g, squares);
        }
        let row = ids[i as usize] as usize - rows.start;
        apply_to_rows::<C, N>(kernel, spec, dim, table, &mut state, row..row + 1, g, Some(squares));
    }
}

/// Splits each state slot after `rows` rows of `dim` values.
fn split_slots<'a, const N: usize>(
    state: [&'a mut [f32]; N],
    spec: &[Slot; N],
    rows: usize,
    dim: usize,
) -> ([&'a mut [f32]; N], [&'a mut [f32]; N]) {
    let mut heads: [&mut [f32]; N] = std::array::from_fn(|_| Default::default());
    let mut tails: [&mut [f32]; N] = std::array::from_fn(|_| Default::default());
    for (k, slot) in state.into_iter().enumerate() {
        let at = match spec[k] {
            Slot::Element(_) => rows * dim,
            Slot::Row(_) => rows,
            Slot::Unused => 0,
        };
        (heads[k], tails[k]) = slot.split_at_mut(at);
    }
    (heads, tails)
}

/// Writes `g²` element-wise into `scratch` and returns it.
#[inline(always)]
fn squares_of<'a>(g: &[f32], scratch: &'a mut Vec<f32>) -> &'a [f32] {
    scratch.clear();
    scratch.extend(g.iter().map(|g| g * g));
    scratch
}

/// Implements [`Optimizer`] for a newtype around a [`Stepper`].
macro_rules! stepper_optimizer {
    ($name:ident) => {
        impl $crate::optim::Optimizer for $name {
            fn step_dense(
                &mut self,
                key: &str,
                value: &mut [f32],
                grad: &[f32],
            ) -> $crate::Result<()> {
                self.0.step_dense(key, value, grad)
            }

            fn step_rows(
                &mut self,
                key: &str,
                table: &mut [f32],
                grad: &$crate::RowGrad,
            ) -> $crate::Result<()> {
                self.0.step_rows(key, table, grad)
            }

            fn step_gather(
                &mut self,
                key: &str,
                table: &mut [f32],
                grad: &$crate::grad::GatherGrad<'_>,
            ) -> $crate::Result<()> {
                self.0.step_gather(key, table, grad)
            }

            fn gather_sums_first(&self) -> bool {
                self.0.gather_sums_first()
            }

            fn steps_each_occurrence(&self) -> bool {
                self.0.steps_each_occurrence()
            }

            fn step_occurrences(
                &mut self,
                key: &str,
                table: &mut [f32],
                ids: &[u32],
                upstream: &[f32],
                dim: usize,
            ) -> $crate::Result<()> {
                self.0.step_occurrences(key, table, ids, upstream, dim)
            }

            fn finish_step(&mut self) {
                self.0.finish_step()
            }

            fn set_threads(&mut self, threads: $crate::Threads) {
                self.0.threads = threads;
            }

            fn iterations(&self) -> u64 {
                self.0.iterations
            }

            fn set_learning_rate(&mut self, learning_rate: f32) -> $crate::Result<()> {
                $crate::optim::check_non_negative("learning_rate", learning_rate)?;
                *$crate::optim::Rule::learning_rate_mut(&mut self.0.config) = learning_rate;
                Ok(())
            }

            fn config(&self) -> $crate::optim::OptimizerConfig {
                self.0.config()
            }
        }
    };
}
use stepper_optimizer;

/// The value a hyper-parameter has in Python when a user types the
/// shortest decimal that gives this `f32` (`0.9_f32` → the double `0.9`).
///
/// Both references compute `1 - beta`, `beta ** t` and similar in Python
/// doubles from the literal the user wrote, and only then round to `f32`;
/// `f64::from(0.9_f32)` would be `0.89999997615…`, and `1 - beta` would be
/// off by up to a few `f32` ulps.
fn decimal(x: f32) -> f64 {
    // Display prints the shortest decimal that parses back to `x`.
    x.to_string().parse().expect("the Display of an f32 parses as an f64")
}

/// `1 - x`, computed as Python does from the literal of `x` (see
/// [`decimal`]), rounded to `f32`.
fn complement(x: f32) -> f32 {
    (1.0 - decimal(x)) as f32
}

/// PyTorch's `lerp`: `start + weight * (end - start)`, in the form PyTorch
/// uses for the size of `weight`.
#[inline(always)]
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

/// Checks that a learning rate is finite and positive.
fn check_learning_rate(value: f32) -> Result<()> {
    check_positive("learning_rate", value)
}

/// Checks that a value is finite and positive.
fn check_positive(field: &'static str, value: f32) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::config(field, format!("must be finite and greater than 0, got {value}")))
    }
}

/// Checks that a decay rate (momentum, beta, rho) is in `[0, 1)`.
fn check_decay(field: &'static str, value: f32) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::config(field, format!("must be at least 0 and less than 1, got {value}")))
    }
}

/// Checks that a value (epsilon, an initial accumulator, a regularization
/// strength) is finite and not negative.
fn check_non_negative(field: &'static str, value: f32) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(field, format!("must be finite and at least 0, got {value}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threads of a per-occurrence step split the rows where the ids
    /// fall: even shares of a skewed batch, bounds that never decrease.
    #[test]
    fn occurrence_bounds_follow_the_ids() {
        assert!(occurrence_bounds(&[5, 1, 3], 1).is_empty());
        assert!(occurrence_bounds(&[], 3).is_empty());
        // 90 % of the occurrences in rows 0..10, the rest up to 1000.
        let ids: Vec<u32> =
            (0..100_000u32).map(|i| if i % 10 == 0 { i % 1000 } else { i % 10 }).collect();
        for parts in 2..5 {
            let bounds = occurrence_bounds(&ids, parts);
            assert_eq!(bounds.len(), parts - 1);
            assert!(bounds.windows(2).all(|w| w[0] <= w[1]), "{bounds:?}");
            let mut edges = vec![0];
            edges.extend(&bounds);
            edges.push(usize::MAX);
            for part in edges.windows(2) {
                let share =
                    ids.iter().filter(|&&id| (part[0]..part[1]).contains(&(id as usize))).count();
                let even = ids.len() / parts;
                assert!(
                    share.abs_diff(even) <= ids.len() / 10,
                    "{parts}: {bounds:?}, {share} of {even}"
                );
            }
        }
        // A single id: every bound at it, one part owns it all.
        assert_eq!(occurrence_bounds(&[7; 50], 3), vec![7, 7]);
    }

    #[test]
    fn a_key_keeps_the_length_it_was_first_seen_with() -> Result<()> {
        let mut adam = AdamConfig::new().init()?;
        adam.step_dense("w", &mut [1.0, 2.0], &[0.1, 0.1])?;
        let err = adam.step_dense("w", &mut [1.0, 2.0, 3.0], &[0.1; 3]).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { ref got, .. } if got == &[3]), "{err}");
        // Tables share the rule, and other keys are independent.
        let err = adam.step_rows("w", &mut [0.0; 4], &RowGrad::from_rows(&[0], &[1.0], 1));
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })));
        adam.step_dense("b", &mut [1.0, 2.0, 3.0], &[0.1; 3])?;
        Ok(())
    }

    #[test]
    fn a_table_keeps_the_rows_it_was_first_seen_with() -> Result<()> {
        let mut adagrad = RowWiseAdagradConfig::new().init()?;
        adagrad.step_rows("t", &mut [0.0; 4], &RowGrad::from_rows(&[0], &[1.0, 1.0], 2))?;
        // Same length, other row length: the row slots would not fit.
        let err = adagrad.step_rows("t", &mut [0.0; 4], &RowGrad::from_rows(&[0], &[1.0], 1));
        assert!(matches!(err, Err(Error::ShapeMismatch { ref got, .. }) if got == &[4, 1]));
        let err = adagrad.step_dense("t", &mut [0.0; 4], &[1.0; 4]);
        assert!(matches!(err, Err(Error::ShapeMismatch { ref got, .. }) if got == &[1, 4]));
        Ok(())
    }

    #[test]
    fn step_dense_rejects_a_gradient_of_another_length() -> Result<()> {
        let mut sgd = SgdConfig::new().init()?;
        let mut w = [1.0, 2.0];
        let err = sgd.step_dense("w", &mut w, &[0.1]).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { ref got, .. } if got == &[1]), "{err}");
        assert_eq!(w, [1.0, 2.0]);
        Ok(())
    }

    #[test]
    fn step_rows_rejects_a_table_that_is_not_whole_rows() -> Result<()> {
        let mut rmsprop = RmsPropConfig::new().init()?;
        let mut table = [1.0; 5];
        let err = rmsprop.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[1.0, 1.0], 2));
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })));
        assert_eq!(table, [1.0; 5]);
        Ok(())
    }

    #[test]
    fn step_rows_checks_every_id_before_changing_a_row() -> Result<()> {
        for mode in [TableUpdates::Lazy, TableUpdates::Dense, TableUpdates::Keras] {
            let mut adam = AdamConfig::new().with_table_updates(mode).init()?;
            let mut table = [1.0; 6];
            let grad = RowGrad::from_rows(&[0, 7, 2, 3], &[1.0; 8], 2);
            let err = adam.step_rows("t", &mut table, &grad).unwrap_err();
            assert!(matches!(err, Error::IdOutOfRange { id: 3, num_embeddings: 3 }), "{err}");
            assert_eq!(table, [1.0; 6]);
            // No state was allocated: the key can still take another length.
            adam.step_dense("t", &mut [1.0], &[1.0])?;
        }
        Ok(())
    }

    #[test]
    fn an_empty_row_gradient_is_a_no_op_when_lazy() -> Result<()> {
        let mut adam = AdamConfig::new().init()?;
        let mut table = [1.0; 4];
        adam.step_rows("t", &mut table, &RowGrad::new(2))?;
        assert_eq!(table, [1.0; 4]);
        Ok(())
    }

    // In the dense modes an empty gradient is a zero gradient: rows with
    // momentum keep moving. SGD, lr 0.1, momentum 0.5, w = 1.0:
    //   step 1, g = 1: v = -0.1, w = 0.9;  step 2, no rows: v = -0.05, w = 0.85
    #[test]
    fn an_empty_row_gradient_steps_every_row_in_the_dense_modes() -> Result<()> {
        let mut sgd = SgdConfig::new()
            .with_learning_rate(0.1)
            .with_momentum(0.5)
            .with_table_updates(TableUpdates::Dense)
            .init()?;
        let mut table = [1.0, 1.0];
        sgd.step_rows("t", &mut table, &RowGrad::from_rows(&[0], &[1.0], 1))?;
        sgd.finish_step();
        sgd.step_rows("t", &mut table, &RowGrad::new(1))?;
        assert!((table[0] - 0.85).abs() < 1e-6, "{table:?}");
        assert_eq!(table[1], 1.0);
        Ok(())
    }

    #[test]
    fn errors_state_the_rule_and_the_value() {
        let err = SgdConfig::new().with_momentum(1.5).init().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid momentum: must be at least 0 and less than 1, got 1.5"
        );
        let err = AdamConfig::new().with_learning_rate(0.0).init().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid learning_rate: must be finite and greater than 0, got 0"
        );
        let err = AdagradConfig::new().with_epsilon(-1.0).init().unwrap_err();
        assert_eq!(err.to_string(), "invalid epsilon: must be finite and at least 0, got -1");
    }

    #[test]
    fn the_iteration_count_is_shared_by_all_keys() -> Result<()> {
        for config in [
            OptimizerConfig::from(SgdConfig::new()),
            AdagradConfig::new().into(),
            AdamConfig::new().into(),
            RmsPropConfig::new().into(),
            AdamWConfig::new().into(),
            FtrlConfig::new().into(),
            RowWiseAdagradConfig::new().into(),
        ] {
            let mut opt = config.build()?;
            opt.step_dense("a", &mut [1.0], &[1.0])?;
            opt.step_dense("b", &mut [1.0, 2.0], &[1.0, 1.0])?;
            assert_eq!(opt.iterations(), 0);
            opt.finish_step();
            assert_eq!(opt.iterations(), 1, "{}", config.name());
        }
        Ok(())
    }

    #[test]
    fn table_updates_can_be_set_on_any_config() {
        let config = OptimizerConfig::from(FtrlConfig::new());
        assert_eq!(config.table_updates(), TableUpdates::Lazy);
        let config = config.with_table_updates(TableUpdates::Keras);
        assert_eq!(config.table_updates(), TableUpdates::Keras);
        assert_eq!(config, FtrlConfig::new().with_table_updates(TableUpdates::Keras).into());
    }

    #[test]
    fn decimal_is_the_literal_the_user_wrote() {
        assert_eq!(decimal(0.9), 0.9);
        assert_eq!(decimal(1e-8), 1e-8);
        assert_eq!(complement(0.99), (1.0 - 0.99_f64) as f32);
        // Not the widened f32, whose complement is 2.4e-8 away.
        assert_ne!(complement(0.9), 1.0 - 0.9_f32);
    }

    #[test]
    fn lerp_matches_both_forms() {
        assert_eq!(lerp(1.0, 3.0, 0.25), 1.5);
        assert_eq!(lerp(1.0, 3.0, 0.75), 2.5);
    }

    #[test]
    fn a_lazy_step_on_several_threads_equals_the_step_on_one() -> Result<()> {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let (rows, dim) = (50_000, 64);
        let mut rng = StdRng::seed_from_u64(5);
        let ids: Vec<u32> = (0..15_000).map(|_| rng.random_range(0..rows as u32)).collect();
        let grads: Vec<f32> = (0..ids.len() * dim).map(|_| rng.random::<f32>() - 0.5).collect();
        let grad = RowGrad::from_rows(&ids, &grads, dim);
        assert!(grad.len() * dim > 3 * MIN_FLOATS_PER_THREAD);
        let start: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>()).collect();
        // One rule of each state layout: one element slot, three (one
        // unused), a row slot, and squares of repeated ids.
        let configs: Vec<OptimizerConfig> = vec![
            SgdConfig::new().with_momentum(0.9).into(),
            AdamConfig::pytorch_sparse().into(),
            RowWiseAdagradConfig::new().into(),
            OptimizerConfig::from(AdagradConfig::new()).with_table_updates(TableUpdates::Keras),
        ];
        for config in configs {
            let mut results = Vec::new();
            for threads in [1, 2, 3] {
                let mut optimizer = config.build()?;
                optimizer.set_threads(Threads::new(threads)?);
                let mut table = start.clone();
                for _ in 0..2 {
                    optimizer.step_rows("t", &mut table, &grad)?;
                    optimizer.finish_step();
                }
                results.push(table);
            }
            assert_ne!(results[0], start, "{config:?}");
            assert_eq!(results[0], results[1], "{config:?}");
            assert_eq!(results[0], results[2], "{config:?}");
        }
        Ok(())
    }

    /// The dispatched step (AVX2+FMA where the processor has them) and the
    /// step compiled for the baseline processor give the same bits.
    fn dispatched_equals_baseline<C: Rule<N>, const N: usize>(config: C) {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let (rows, dim) = (50, 19);
        let mut rng = StdRng::seed_from_u64(6);
        let ids: Vec<u32> = (0..80).map(|_| rng.random_range(0..rows as u32)).collect();
        let grads: Vec<f32> = (0..ids.len() * dim).map(|_| rng.random::<f32>() - 0.5).collect();
        let grad = RowGrad::from_rows(&ids, &grads, dim);
        let start: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>()).collect();
        let spec = config.slots();
        let new_state = || {
            spec.map(|slot| match slot {
                Slot::Unused => Vec::new(),
                Slot::Element(init) => vec![init; rows * dim],
                Slot::Row(init) => vec![init; rows],
            })
        };
        let (mut a, mut b) = (start.clone(), start);
        let (mut state_a, mut state_b) = (new_state(), new_state());
        for step in 0..3 {
            let kernel = config.kernel(step);
            let (sa, sb) = (
                state_a.each_mut().map(|v| v.as_mut_slice()),
                state_b.each_mut().map(|v| v.as_mut_slice()),
            );
            step_rows_lazy::<C, N>(
                kernel,
                &spec,
                &grad,
                0..grad.len(),
                0,
                &mut a,
                sa,
                false,
                &mut Vec::new(),
            );
            step_rows_lazy_inline::<C, N>(
                kernel,
                &spec,
                &grad,
                0..grad.len(),
                0,
                &mut b,
                sb,
                false,
                &mut Vec::new(),
            );
        }
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn dispatched_steps_equal_baseline_steps() {
        dispatched_equals_baseline(SgdConfig::new().with_momentum(0.9).with_nesterov(true));
        dispatched_equals_baseline(AdagradConfig::pytorch());
        dispatched_equals_baseline(AdamConfig::new());
        dispatched_equals_baseline(AdamConfig::pytorch_sparse());
        dispatched_equals_baseline(AdamWConfig::pytorch());
        dispatched_equals_baseline(RmsPropConfig::new().with_momentum(0.5).with_centered(true));
        dispatched_equals_baseline(FtrlConfig::new());
        dispatched_equals_baseline(RowWiseAdagradConfig::new());
    }

    /// Steps a table of `rows` x `dim` (values from `start`) through the
    /// gradients `steps` with `config` in `mode`, and the same steps row by
    /// row with the full formula (rows outside a gradient take a zero
    /// gradient); returns both tables.
    fn stepped_and_full_formula(
        config: &RmsPropConfig,
        mode: TableUpdates,
        dim: usize,
        start: &[f32],
        steps: &[(Vec<u32>, Vec<f32>)],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let rows = start.len() / dim;
        let mut optimizer =
            OptimizerConfig::from(config.clone()).with_table_updates(mode).build()?;
        let mut table = start.to_vec();
        let spec = config.slots();
        let mut state = spec.map(|slot| match slot {
            Slot::Element(init) => vec![init; rows * dim],
            _ => Vec::new(),
        });
        let mut expected = start.to_vec();
        for (step, (ids, g)) in steps.iter().enumerate() {
            let grad = RowGrad::from_rows(ids, g, dim);
            optimizer.step_rows("t", &mut table, &grad)?;
            optimizer.finish_step();
            let kernel = config.kernel(step as u64);
            let zeros = vec![0.0; dim];
            let mut scratch = Vec::new();
            for row in 0..rows {
                let (g, g2) = match grad.ids().binary_search(&(row as u32)) {
                    Ok(i) => {
                        let g = &grad.rows()[i * dim..(i + 1) * dim];
                        let g2 = if mode == TableUpdates::Keras {
                            grad.row_squares(i, &mut scratch).to_vec()
                        } else {
                            g.iter().map(|x| x * x).collect()
                        };
                        (g.to_vec(), g2)
                    }
                    Err(_) => (zeros.clone(), zeros.clone()),
                };
                let e = row * dim..(row + 1) * dim;
                let st = state.each_mut().map(|v| {
                    if v.is_empty() {
                        &mut [][..]
                    } else {
                        &mut v[e.clone()]
                    }
                });
                kernel.apply(&mut expected[e.clone()], &g, &g2, st);
            }
        }
        Ok((table, expected))
    }

    /// The same bits, NaN matching NaN.
    fn assert_same_values(got: &[f32], want: &[f32], what: &str) {
        let differ = got
            .iter()
            .zip(want)
            .filter(|(a, b)| !(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())))
            .count();
        assert_eq!(differ, 0, "{what}: {differ} values differ");
    }

    #[test]
    fn dense_steps_with_the_zero_gradient_shortcut_equal_the_full_formula() -> Result<()> {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        // Many rows and few steps, and few rows and many steps: rows
        // outside the gradient for one step and for many (whose deferred
        // zero-gradient steps catch up when they come back).
        // A table past DEFER_MIN_FLOATS defers those steps.
        for (rows, dim, steps) in [(700, 6, 4), (60, 6, 40), (DEFER_MIN_FLOATS / 8, 8, 12)] {
            let mut rng = StdRng::seed_from_u64(12);
            let start: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>() - 0.5).collect();
            // Epsilon 0 too: a row whose mean square is 0 takes a 0 / 0 step
            // (NaN), as in the full formula.
            let configs = [
                RmsPropConfig::new(),
                RmsPropConfig::pytorch(),
                RmsPropConfig::new().with_epsilon(0.0),
                RmsPropConfig::pytorch().with_epsilon(0.0),
            ];
            for config in configs {
                for mode in [TableUpdates::Keras, TableUpdates::Dense] {
                    // Ids from the first 100 rows: rows come back after gaps.
                    let steps: Vec<(Vec<u32>, Vec<f32>)> = (0..steps)
                        .map(|_| {
                            let ids: Vec<u32> = (0..20)
                                .map(|_| rng.random_range(0..rows.min(100) as u32))
                                .collect();
                            let g = (0..ids.len() * dim).map(|_| rng.random::<f32>()).collect();
                            (ids, g)
                        })
                        .collect();
                    let (table, expected) =
                        stepped_and_full_formula(&config, mode, dim, &start, &steps)?;
                    assert_same_values(&table, &expected, &format!("{config:?} {mode:?}"));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn dense_steps_turn_nan_state_into_nan_weights_as_the_full_formula() -> Result<()> {
        let dim = 8;
        let row = |value: f32| {
            let mut g = vec![1.0f32; dim];
            g[0] = value;
            g
        };
        // A NaN gradient element, a row away for a step, then back; and, with
        // rho 0, a huge finite gradient (its square is infinite, and 0 · inf
        // is NaN at the next zero-gradient step). Small and deferred tables.
        let cases = [
            (RmsPropConfig::new(), f32::NAN),
            (RmsPropConfig::pytorch(), f32::NAN),
            (RmsPropConfig::new().with_rho(0.0), 1e20),
            (RmsPropConfig::pytorch().with_rho(0.0), 1e20),
        ];
        for rows in [10, DEFER_MIN_FLOATS / dim] {
            let start: Vec<f32> = (0..rows * dim).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
            for (config, first) in &cases {
                let steps = [
                    (vec![0], row(*first)),
                    (vec![1], row(1.0)),
                    (vec![0, 1], [row(1.0), row(1.0)].concat()),
                ];
                for mode in [TableUpdates::Keras, TableUpdates::Dense] {
                    for n in 2..=3 {
                        let (table, expected) =
                            stepped_and_full_formula(config, mode, dim, &start, &steps[..n])?;
                        assert!(expected[0].is_nan(), "the case makes w[0][0] NaN");
                        assert!(!expected[1].is_nan(), "only w[0][0]");
                        let what = format!("{config:?} {mode:?} {rows} rows, {n} steps");
                        assert_same_values(&table[..2 * dim], &expected[..2 * dim], &what);
                    }
                }
            }
        }
        Ok(())
    }
}
