//! Training progress as indicatif bars on stderr.

use embkit::{EpochLog, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws one bar per epoch on stderr and prints a line when an epoch ends.
pub struct Bars {
    epochs: usize,
    batches: usize,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Bars {
    /// Bars on stderr; `quiet` draws nothing.
    pub fn new(quiet: bool) -> Self {
        Self { epochs: 0, batches: 0, bar: None, quiet }
    }
}

impl Observer for Bars {
    fn train_begin(&mut self, epochs: usize, batches: usize) {
        self.epochs = epochs;
        self.batches = batches;
    }

    fn epoch_begin(&mut self, epoch: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(
            Some(self.batches as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} batches  loss {msg}  {elapsed}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", self.epochs));
        self.bar = Some(bar);
    }

    fn batch_end(&mut self, _epoch: usize, batch: usize, mean_loss: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(batch as u64);
            // A model that does not compute its loss (word2vec by default)
            // reports NaN: shown as a dash.
            bar.set_message(if mean_loss.is_nan() {
                "-".into()
            } else {
                format!("{mean_loss:.4}")
            });
        }
    }

    fn epoch_end(&mut self, log: &EpochLog) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let mut line = format!("epoch {}/{}", log.epoch, self.epochs);
        if !log.loss.is_nan() {
            line.push_str(&format!("  loss {:.4}", log.loss));
        }
        for (name, value) in &log.metrics {
            line.push_str(&format!("  {name} {value:.4}"));
        }
        if let Some(v) = log.val_loss {
            line.push_str(&format!("  val_loss {v:.4}"));
        }
        for (name, value) in &log.val_metrics {
            line.push_str(&format!("  val_{name} {value:.4}"));
        }
        eprintln!("{line}");
    }

    fn stopped_early(&mut self, epoch: usize) {
        if !self.quiet {
            eprintln!("early stopping after epoch {epoch}");
        }
    }
}
