//! The training loop: [`fit`], [`evaluate`] (and [`fit_stream`],
//! [`evaluate_stream`] for data read batch by batch), their settings and
//! what they report.

use std::collections::BTreeMap;

use ndarray::{
    Array, Array2, ArrayD, ArrayView, ArrayView2, ArrayViewD, Axis, Dimension, RemoveAxis,
};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{Dataset, Model};
use crate::optim::{GradientClipping, LearningRateSchedule};
use crate::{Error, Loss, Metric, OptimizerConfig, Result, Threads};

/// How to train: loss, optimizer, batches, epochs, validation and early
/// stopping. Plain data, saved with a trained model, so a run can be
/// repeated from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrainConfig {
    /// The loss to minimise.
    pub loss: Loss,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Metrics computed each epoch on the training and validation data.
    pub metrics: Vec<Metric>,
    /// Passes over the training data. Default 1 (Keras).
    pub epochs: usize,
    /// Samples per gradient step. Default 32 (Keras). [`fit_stream`]
    /// takes the stream's batches as they come.
    pub batch_size: usize,
    /// Whether the training samples are shuffled before each epoch.
    /// Default true. Not used by [`fit_stream`] (the stream shuffles).
    pub shuffle: bool,
    /// Seed of the shuffling (not used by [`fit_stream`]).
    pub seed: u64,
    /// Fraction of the samples held out for validation, taken from the
    /// END of the data before any shuffling (as Keras). Ignored when
    /// validation data is given. Default 0. [`fit_stream`] refuses it (a
    /// stream cannot be split after the fact).
    pub validation_split: f64,
    /// Stop when a monitored value stops improving.
    pub early_stopping: Option<EarlyStopping>,
    /// Gradient clipping before each step (Keras's optimizer arguments
    /// `clipnorm`, `clipvalue`, `global_clipnorm`). Default none.
    #[serde(default)]
    pub clipping: Option<GradientClipping>,
    /// The learning rate as a function of the step: set on the optimizer
    /// before each step, in place of its own `learning_rate` (Keras's
    /// `learning_rate=schedule`). Default none.
    #[serde(default)]
    pub learning_rate_schedule: Option<LearningRateSchedule>,
    /// Threads of the model's layers and of the optimizer on large
    /// batches. The results do not depend on it, so it is not saved.
    /// Default: every core ([`Threads::available`]).
    #[serde(skip, default = "Threads::available")]
    pub threads: Threads,
}

impl TrainConfig {
    /// A config with the loss and optimizer; Keras's defaults otherwise.
    pub fn new(loss: Loss, optimizer: OptimizerConfig) -> Self {
        Self {
            loss,
            optimizer,
            metrics: Vec::new(),
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation_split: 0.0,
            early_stopping: None,
            clipping: None,
            learning_rate_schedule: None,
            threads: Threads::available(),
        }
    }

    /// Sets [`threads`](Self::threads).
    pub fn with_threads(mut self, threads: Threads) -> Self {
        self.threads = threads;
        self
    }

    /// Sets [`metrics`](Self::metrics).
    pub fn with_metrics(mut self, metrics: Vec<Metric>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets [`epochs`](Self::epochs).
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets [`shuffle`](Self::shuffle).
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets [`seed`](Self::seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`validation_split`](Self::validation_split).
    pub fn with_validation_split(mut self, validation_split: f64) -> Self {
        self.validation_split = validation_split;
        self
    }

    /// Sets [`clipping`](Self::clipping).
    pub fn with_clipping(mut self, clipping: GradientClipping) -> Self {
        self.clipping = Some(clipping);
        self
    }

    /// Sets [`learning_rate_schedule`](Self::learning_rate_schedule).
    pub fn with_learning_rate_schedule(mut self, schedule: LearningRateSchedule) -> Self {
        self.learning_rate_schedule = Some(schedule);
        self
    }

    /// Sets [`early_stopping`](Self::early_stopping).
    pub fn with_early_stopping(mut self, early_stopping: EarlyStopping) -> Self {
        self.early_stopping = Some(early_stopping);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the setting and its value.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1, got 0"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return Err(Error::config(
                "validation_split",
                format!("must be in [0, 1), got {}", self.validation_split),
            ));
        }
        if let Some(clipping) = &self.clipping {
            clipping.validate()?;
        }
        if let Some(schedule) = &self.learning_rate_schedule {
            schedule.validate()?;
        }
        if let Some(es) = &self.early_stopping {
            if !(es.min_delta.is_finite() && es.min_delta >= 0.0) {
                return Err(Error::config(
                    "early_stopping.min_delta",
                    format!("must be finite and >= 0, got {}", es.min_delta),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a monitored value should go down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// `Max` for names containing `acc`, otherwise `Min` (Keras's `auto`).
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// Stops training when a monitored value has not improved for `patience`
/// epochs (Keras `EarlyStopping`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EarlyStopping {
    /// The logged value to watch: `loss`, `val_loss`, `accuracy`,
    /// `val_accuracy` ... Default `val_loss`.
    pub monitor: String,
    /// The smallest change that counts as an improvement. Default 0.
    pub min_delta: f64,
    /// Epochs without improvement before stopping. Default 0.
    pub patience: usize,
    /// Which direction is better.
    pub mode: Monitor,
    /// Whether the model gets back the weights of its best epoch when
    /// training ends. Default false. Keeps a copy of the model each time
    /// the value improves.
    pub restore_best_weights: bool,
}

impl EarlyStopping {
    /// Watches `monitor` with Keras's defaults otherwise.
    pub fn new(monitor: impl Into<String>) -> Self {
        Self {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience: 0,
            mode: Monitor::Auto,
            restore_best_weights: false,
        }
    }

    /// Sets [`patience`](Self::patience).
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Sets [`min_delta`](Self::min_delta).
    pub fn with_min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// Sets [`mode`](Self::mode).
    pub fn with_mode(mut self, mode: Monitor) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`restore_best_weights`](Self::restore_best_weights).
    pub fn with_restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    fn higher_is_better(&self) -> bool {
        match self.mode {
            Monitor::Auto => self.monitor.contains("acc"),
            Monitor::Min => false,
            Monitor::Max => true,
        }
    }

    fn is_improvement(&self, value: f64, best: Option<f64>) -> bool {
        match best {
            None => true,
            Some(best) if self.higher_is_better() => value - self.min_delta > best,
            Some(best) => value + self.min_delta < best,
        }
    }
}

/// What one epoch of [`fit`] or [`fit_stream`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch, weighted by batch size (the
    /// number Keras prints at the end of an epoch).
    pub loss: f64,
    /// Training metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Loss on the validation data, if any.
    pub val_loss: Option<f64>,
    /// Validation metrics by name (without the `val_` prefix).
    pub val_metrics: BTreeMap<String, f64>,
}

impl EpochLog {
    /// A logged value by its Keras name: `loss`, `val_loss`, a metric
    /// name, or `val_` and a metric name.
    pub fn value(&self, name: &str) -> Option<f64> {
        match name {
            "loss" => Some(self.loss),
            "val_loss" => self.val_loss,
            _ => match name.strip_prefix("val_") {
                Some(metric) => self.val_metrics.get(metric).copied(),
                None => self.metrics.get(name).copied(),
            },
        }
    }

    /// The names [`value`](Self::value) knows for this epoch.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec!["loss".to_string()];
        names.extend(self.metrics.keys().cloned());
        if self.val_loss.is_some() {
            names.push("val_loss".into());
        }
        names.extend(self.val_metrics.keys().map(|k| format!("val_{k}")));
        names
    }
}

/// Every epoch of a [`fit`] or [`fit_stream`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct History {
    /// One log per finished epoch.
    pub epochs: Vec<EpochLog>,
    /// The epoch after which early stopping ended training, if it did.
    pub stopped_epoch: Option<usize>,
    /// The epoch whose weights the model holds after early stopping with
    /// `restore_best_weights`.
    pub restored_epoch: Option<usize>,
}

impl History {
    /// The values of one logged name, epoch by epoch (`None` where an
    /// epoch did not log it).
    pub fn values(&self, name: &str) -> Vec<Option<f64>> {
        self.epochs.iter().map(|e| e.value(name)).collect()
    }
}

/// Loss and metrics of a model on a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean loss over the samples.
    pub loss: f64,
    /// Metrics by name.
    pub metrics: BTreeMap<String, f64>,
}

/// Receives training progress. Every method has an empty default, so an
/// observer implements only what it shows.
pub trait Observer {
    /// Training starts: `epochs` epochs of `batches` batches each (0 when
    /// unknown: a [`BatchStream`] without a count).
    fn train_begin(&mut self, epochs: usize, batches: usize) {
        let _ = (epochs, batches);
    }

    /// An epoch (1-based) starts.
    fn epoch_begin(&mut self, epoch: usize) {
        let _ = epoch;
    }

    /// A batch (1-based within its epoch) is done; `mean_loss` is the
    /// epoch's running mean so far.
    fn batch_end(&mut self, epoch: usize, batch: usize, mean_loss: f64) {
        let _ = (epoch, batch, mean_loss);
    }

    /// An epoch is done, validation included.
    fn epoch_end(&mut self, log: &EpochLog) {
        let _ = log;
    }

    /// Early stopping ended training after `epoch`.
    fn stopped_early(&mut self, epoch: usize) {
        let _ = epoch;
    }
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Sums of loss and metrics over batches, weighted by batch size.
struct Totals {
    loss: f64,
    samples: usize,
    metrics: Vec<(f64, usize)>,
}

impl Totals {
    fn new(metrics: usize) -> Self {
        Self { loss: 0.0, samples: 0, metrics: vec![(0.0, 0); metrics] }
    }

    fn add(
        &mut self,
        loss: f32,
        batch: usize,
        metrics: &[Metric],
        pred: ArrayViewD<'_, f32>,
        targets: ArrayViewD<'_, f32>,
        mask: Option<ArrayViewD<'_, bool>>,
    ) -> Result<()> {
        self.loss += f64::from(loss) * batch as f64;
        self.samples += batch;
        for (total, metric) in self.metrics.iter_mut().zip(metrics) {
            let (sum, count) =
                metric.sum_and_count_masked(pred.view(), targets.view(), mask.clone())?;
            total.0 += sum;
            total.1 += count;
        }
        Ok(())
    }

    fn mean_loss(&self) -> f64 {
        self.loss / self.samples.max(1) as f64
    }

    fn metric_map(&self, metrics: &[Metric]) -> BTreeMap<String, f64> {
        metrics
            .iter()
            .zip(&self.metrics)
            .map(|(m, (sum, count))| (m.name().to_string(), sum / (*count).max(1) as f64))
            .collect()
    }
}

/// Trains `model` on `train`: `epochs` passes of mini-batches, each a
/// forward pass, a backward pass from `config.loss` and an optimizer step.
///
/// Validation uses `validation` when given, otherwise the last
/// `validation_split` of `train` (taken before shuffling, as Keras).
/// Progress goes to `observer`. Shuffling is seeded by `config.seed`, so
/// the same call gives the same model.
///
/// Before each step the loss and every gradient are checked: if one is
/// NaN or infinite, training stops with an error and the model keeps the
/// weights of the last good step (the failing step is not applied).
///
/// # Errors
///
/// - [`Error::InvalidConfig`] for invalid settings, or an early-stopping
///   monitor that is not logged;
/// - [`Error::EmptyData`] when there are no training (or validation)
///   samples;
/// - [`Error::NonFiniteLoss`] / [`Error::NonFiniteGradient`] naming the
///   epoch and batch;
/// - the model's errors for bad ids or targets.
pub fn fit<'a, M: Model + Clone>(
    model: &mut M,
    train: Dataset<'a>,
    validation: Option<Dataset<'a>>,
    config: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<History> {
    config.validate()?;
    let train = Dataset::new(train.ids, train.targets)?;
    let validation = validation.map(|v| Dataset::new(v.ids, v.targets)).transpose()?;
    let (train, validation) = match validation {
        Some(v) => (train, Some(v)),
        None if config.validation_split > 0.0 => {
            let n = train.len();
            let split_at = (n as f64 * (1.0 - config.validation_split)).floor() as usize;
            let (ti, vi) = train.ids.split_at(Axis(0), split_at);
            let (tt, vt) = train.targets.split_at(Axis(0), split_at);
            let val = Dataset { ids: vi, targets: vt };
            if val.is_empty() {
                return Err(Error::EmptyData {
                    what: format!(
                        "validation split: {} of {n} samples is none",
                        config.validation_split
                    ),
                });
            }
            (Dataset { ids: ti, targets: tt }, Some(val))
        }
        None => (train, None),
    };
    if train.is_empty() {
        return Err(Error::EmptyData { what: "training data".into() });
    }
    if let Some(v) = &validation {
        if v.is_empty() {
            return Err(Error::EmptyData { what: "validation data".into() });
        }
    }

    let batches = train.len().div_ceil(config.batch_size);
    let mut run = Run::begin(model, config, batches, observer)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    // Batch buffers, reused: a step does not allocate for its inputs.
    let (mut ids_buf, mut targets_buf) = (Vec::new(), Vec::new());
    for epoch in 1..=config.epochs {
        observer.epoch_begin(epoch);
        if config.shuffle {
            order.shuffle(&mut rng);
        }
        let mut totals = Totals::new(config.metrics.len());
        for (b, chunk) in order.chunks(config.batch_size).enumerate() {
            let ids = select_rows(train.ids, chunk, std::mem::take(&mut ids_buf));
            let targets =
                select_rows(train.targets.view(), chunk, std::mem::take(&mut targets_buf));
            run.step(model, ids.view(), targets.view(), (epoch, b + 1), &mut totals, observer)?;
            ids_buf = ids.into_raw_vec_and_offset().0;
            targets_buf = targets.into_raw_vec_and_offset().0;
        }
        let val = match &validation {
            Some(v) => {
                Some(evaluate(model, v.clone(), &config.loss, &config.metrics, config.batch_size)?)
            }
            None => None,
        };
        if run.end_epoch(model, epoch, &totals, val, observer)? {
            break;
        }
    }
    Ok(run.finish(model))
}

/// One mini-batch of a [`BatchStream`]: the ids of its samples and their
/// targets (as a [`Dataset`] holds them, but owned).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[samples, ids per sample]`.
    pub ids: Array2<u32>,
    /// `[samples, ...]`.
    pub targets: ArrayD<f32>,
}

/// Mini-batches read again for each epoch, for data that is not held in
/// memory: for example a ratings file streamed from disk through a
/// shuffle buffer ([`InteractionStream`](crate::data::InteractionStream)).
/// [`fit_stream`] trains on one, [`evaluate_stream`] scores a model on one.
pub trait BatchStream {
    /// The batches of one pass over the data. `epoch` (1-based) lets a
    /// shuffled stream draw a new order for each epoch, seeded so that a
    /// run can be repeated.
    ///
    /// # Errors
    ///
    /// When the data cannot be opened; errors while reading come as items.
    fn batches(&mut self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>>;

    /// The number of batches of a pass, if known (for progress bars).
    fn num_batches(&self) -> Option<usize> {
        None
    }
}

/// [`fit`] for data read batch by batch: each epoch trains on the batches
/// of `train` in the order it gives them (it does its own shuffling;
/// `config.batch_size`, `shuffle` and `validation_split` are not used),
/// and is scored on all of `validation`; a batch without samples is
/// skipped. Memory is one batch at a time (plus whatever the stream
/// buffers), so the data can be larger than memory. `config.seed` is not
/// used either: the stream seeds its order, the model its initial
/// weights. Everything else is as in [`fit`]: NaN checks, clipping,
/// learning-rate schedules (by step: build them from the stream's batch
/// count), metrics, early stopping, the observer (told 0 batches per
/// epoch when the stream does not know its count).
///
/// # Errors
///
/// As [`fit`]; [`Error::InvalidConfig`] for a `validation_split` above 0
/// (a stream cannot be split after the fact: give a validation stream);
/// [`Error::EmptyData`] if a pass of `train` or `validation` has no
/// samples; the stream's errors (a bad row of a file, for example) as
/// they are read, with the model keeping the weights of the batches
/// before.
pub fn fit_stream<M: Model + Clone>(
    model: &mut M,
    train: &mut dyn BatchStream,
    mut validation: Option<&mut dyn BatchStream>,
    config: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<History> {
    if config.validation_split > 0.0 {
        return Err(Error::config(
            "validation_split",
            format!(
                "{} cannot split a stream; give a validation stream instead",
                config.validation_split
            ),
        ));
    }
    let mut run = Run::begin(model, config, train.num_batches().unwrap_or(0), observer)?;
    for epoch in 1..=config.epochs {
        observer.epoch_begin(epoch);
        let mut totals = Totals::new(config.metrics.len());
        for (b, batch) in train.batches(epoch)?.enumerate() {
            let batch = batch?;
            if batch.ids.nrows() == 0 {
                continue;
            }
            let ids = batch.ids.view();
            Dataset::new(ids, batch.targets.view())?;
            run.step(model, ids, batch.targets.view(), (epoch, b + 1), &mut totals, observer)?;
        }
        if totals.samples == 0 {
            return Err(Error::EmptyData {
                what: format!("training stream (epoch {epoch} gave no samples)"),
            });
        }
        let val = match validation.as_deref_mut() {
            Some(v) => Some(evaluate_stream(model, v, &config.loss, &config.metrics)?),
            None => None,
        };
        if run.end_epoch(model, epoch, &totals, val, observer)? {
            break;
        }
    }
    Ok(run.finish(model))
}

/// A training run's state between steps: the optimizer, the history and
/// early stopping's best epoch. Shared by [`fit`] and [`fit_stream`].
struct Run<'c, M> {
    config: &'c TrainConfig,
    optimizer: Box<dyn crate::Optimizer>,
    history: History,
    best: Option<f64>,
    best_model: Option<(usize, M)>,
    wait: usize,
}

impl<'c, M: Model + Clone> Run<'c, M> {
    fn begin(
        model: &mut M,
        config: &'c TrainConfig,
        batches: usize,
        observer: &mut dyn Observer,
    ) -> Result<Self> {
        config.validate()?;
        let mut optimizer = config.optimizer.build()?;
        optimizer.set_threads(config.threads);
        model.set_threads(config.threads);
        observer.train_begin(config.epochs, batches);
        Ok(Self {
            config,
            optimizer,
            history: History::default(),
            best: None,
            best_model: None,
            wait: 0,
        })
    }

    /// One training step on a batch: forward, backward, the checks, the
    /// optimizer; the batch's loss and metrics go into `totals`.
    fn step(
        &mut self,
        model: &mut M,
        ids: ArrayView2<'_, u32>,
        targets: ArrayViewD<'_, f32>,
        (epoch, batch): (usize, usize),
        totals: &mut Totals,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let config = self.config;
        let pred = model.forward(ids, true)?;
        let loss = model.backward(&config.loss, targets.view())?;
        if !loss.is_finite() {
            return Err(Error::NonFiniteLoss { loss, epoch, batch });
        }
        if !model.gradients_are_finite() {
            return Err(Error::NonFiniteGradient { epoch, batch });
        }
        if let Some(clipping) = &config.clipping {
            model.clip_gradients(clipping)?;
        }
        if let Some(schedule) = &config.learning_rate_schedule {
            self.optimizer.set_learning_rate(schedule.at(self.optimizer.iterations()))?;
        }
        model.step(self.optimizer.as_mut())?;
        let mask = model.output_mask().map(|m| m.to_owned());
        totals.add(
            loss,
            ids.nrows(),
            &config.metrics,
            pred.view(),
            targets,
            mask.as_ref().map(|m| m.view()),
        )?;
        observer.batch_end(epoch, batch, totals.mean_loss());
        Ok(())
    }

    /// Logs an epoch and applies early stopping; true when training stops.
    fn end_epoch(
        &mut self,
        model: &M,
        epoch: usize,
        totals: &Totals,
        validation: Option<Evaluation>,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let config = self.config;
        let mut log = EpochLog {
            epoch,
            loss: totals.mean_loss(),
            metrics: totals.metric_map(&config.metrics),
            val_loss: None,
            val_metrics: BTreeMap::new(),
        };
        if let Some(e) = validation {
            log.val_loss = Some(e.loss);
            log.val_metrics = e.metrics;
        }
        observer.epoch_end(&log);

        let mut stop = false;
        if let Some(es) = &config.early_stopping {
            let value = log.value(&es.monitor).ok_or_else(|| {
                Error::config(
                    "early_stopping.monitor",
                    format!(
                        "`{}` is not logged; logged values are: {}",
                        es.monitor,
                        log.names().join(", ")
                    ),
                )
            })?;
            if es.is_improvement(value, self.best) {
                self.best = Some(value);
                self.wait = 0;
                if es.restore_best_weights {
                    self.best_model = Some((epoch, model.clone()));
                }
            } else {
                self.wait += 1;
                // Keras: stop once `patience` epochs in a row brought no improvement.
                stop = self.wait >= es.patience;
            }
        }
        self.history.epochs.push(log);
        if stop {
            self.history.stopped_epoch = Some(epoch);
            observer.stopped_early(epoch);
        }
        Ok(stop)
    }

    /// The history; the model restored to the best epoch if early
    /// stopping asked for it.
    fn finish(mut self, model: &mut M) -> History {
        if let Some((epoch, best)) = self.best_model.take() {
            if self.history.epochs.last().map(|l| l.epoch) != Some(epoch) {
                *model = best;
                self.history.restored_epoch = Some(epoch);
            }
        }
        self.history
    }
}

/// The rows `chunk` (indices along the first axis) of `data`, copied into
/// `buf`'s allocation: the batch of a training step.
fn select_rows<A: Copy, D: Dimension + RemoveAxis>(
    data: ArrayView<'_, A, D>,
    chunk: &[usize],
    mut buf: Vec<A>,
) -> Array<A, D> {
    let Some(values) = data.as_slice() else {
        return data.select(Axis(0), chunk);
    };
    let row = data.len_of(Axis(0)).max(1);
    let row_len = values.len() / row;
    buf.clear();
    if row_len < 32 {
        // Short rows: element copies, not a `memcpy` call per row.
        buf.reserve(chunk.len() * row_len);
        for &i in chunk {
            buf.extend(values[i * row_len..(i + 1) * row_len].iter().copied());
        }
    } else {
        for &i in chunk {
            buf.extend_from_slice(&values[i * row_len..(i + 1) * row_len]);
        }
    }
    let mut shape = data.raw_dim();
    shape[0] = chunk.len();
    Array::from_shape_vec(shape, buf).expect("whole rows of the data")
}

/// The mean loss and metrics of `model` on `data`, computed in inference
/// mode, `batch_size` samples at a time, weighted by batch size.
///
/// The loss is computed as in training (from the logits for a sigmoid or
/// softmax output with a cross-entropy, as Keras), but without a table
/// regulariser's penalty: training adds the penalty of the batch's rows
/// (see [`Regularizer`](crate::Regularizer)); Keras adds the whole table's
/// penalty to both training and evaluation losses.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a batch size of 0; [`Error::EmptyData`]
/// for no samples; the model's errors for bad ids or targets.
pub fn evaluate<M: Model>(
    model: &mut M,
    data: Dataset<'_>,
    loss: &Loss,
    metrics: &[Metric],
    batch_size: usize,
) -> Result<Evaluation> {
    if batch_size == 0 {
        return Err(Error::config("batch_size", "must be at least 1, got 0"));
    }
    if data.is_empty() {
        return Err(Error::EmptyData { what: "evaluation data".into() });
    }
    let data = Dataset::new(data.ids, data.targets)?;
    let mut totals = Totals::new(metrics.len());
    let chunks = data.ids.axis_chunks_iter(Axis(0), batch_size);
    let targets = data.targets.axis_chunks_iter(Axis(0), batch_size);
    for (ids, targets) in chunks.zip(targets) {
        let (value, pred) = model.evaluate_batch(ids, loss, targets.view())?;
        let mask = model.output_mask().map(|m| m.to_owned());
        totals.add(
            value,
            ids.nrows(),
            metrics,
            pred.view(),
            targets,
            mask.as_ref().map(|m| m.view()),
        )?;
    }
    Ok(Evaluation { loss: totals.mean_loss(), metrics: totals.metric_map(metrics) })
}

/// [`evaluate`] over the batches of one pass of `data` (its epoch-1
/// order): the mean loss and metrics, weighted by batch size, in
/// inference mode.
///
/// # Errors
///
/// [`Error::EmptyData`] for no samples; the stream's errors as they are
/// read; the model's errors for bad ids or targets.
pub fn evaluate_stream<M: Model>(
    model: &mut M,
    data: &mut dyn BatchStream,
    loss: &Loss,
    metrics: &[Metric],
) -> Result<Evaluation> {
    let mut totals = Totals::new(metrics.len());
    for batch in data.batches(1)? {
        let batch = batch?;
        if batch.ids.nrows() == 0 {
            continue;
        }
        Dataset::new(batch.ids.view(), batch.targets.view())?;
        let (value, pred) = model.evaluate_batch(batch.ids.view(), loss, batch.targets.view())?;
        let mask = model.output_mask().map(|m| m.to_owned());
        totals.add(
            value,
            batch.ids.nrows(),
            metrics,
            pred.view(),
            batch.targets.view(),
            mask.as_ref().map(|m| m.view()),
        )?;
    }
    if totals.samples == 0 {
        return Err(Error::EmptyData { what: "evaluation stream".into() });
    }
    Ok(Evaluation { loss: totals.mean_loss(), metrics: totals.metric_map(metrics) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(epoch: usize, val_loss: f64) -> EpochLog {
        EpochLog {
            epoch,
            loss: 1.0,
            metrics: BTreeMap::from([("accuracy".to_string(), 0.5)]),
            val_loss: Some(val_loss),
            val_metrics: BTreeMap::from([("accuracy".to_string(), 0.25)]),
        }
    }

    #[test]
    fn epoch_log_answers_keras_names() {
        let l = log(1, 0.75);
        assert_eq!(l.value("loss"), Some(1.0));
        assert_eq!(l.value("val_loss"), Some(0.75));
        assert_eq!(l.value("accuracy"), Some(0.5));
        assert_eq!(l.value("val_accuracy"), Some(0.25));
        assert_eq!(l.value("auc"), None);
        assert_eq!(l.names(), vec!["loss", "accuracy", "val_loss", "val_accuracy"]);
    }

    #[test]
    fn early_stopping_direction_follows_the_name() {
        let es = EarlyStopping::new("val_accuracy").with_min_delta(0.1);
        assert!(es.is_improvement(0.5, None));
        assert!(es.is_improvement(0.71, Some(0.6)));
        assert!(!es.is_improvement(0.65, Some(0.6)));
        let es = EarlyStopping::new("val_loss");
        assert!(es.is_improvement(0.5, Some(0.6)));
        assert!(!es.is_improvement(0.6, Some(0.6)));
    }

    #[test]
    fn invalid_settings_name_the_field() {
        let base =
            TrainConfig::new(Loss::MeanSquaredError, OptimizerConfig::Sgd(crate::SgdConfig::new()));
        let err = base.clone().with_batch_size(0).validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid batch_size: must be at least 1, got 0");
        assert!(base.clone().with_epochs(0).validate().is_err());
        assert!(base.with_validation_split(1.0).validate().is_err());
    }
}
