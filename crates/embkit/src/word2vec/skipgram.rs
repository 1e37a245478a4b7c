//! [`SkipGram`]: the word2vec model, its training ([`SkipGram::train`])
//! and the negative-sampling step ([`sgns_step`]).

use std::ops::Range;
use std::sync::LazyLock;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::config::{Architecture, SkipGramConfig};
use super::vocab::{keep_thresholds, NoiseTable, WordCounts};
use crate::data::mix64;
use crate::format::Vectors;
use crate::kernels::simd;
use crate::kernels::vector::dot;
use crate::model::{EpochLog, Observer};
use crate::{Error, Result, Threads};

/// Sentences as word ids, back to back.
///
/// # Examples
///
/// ```
/// use embkit::word2vec::Sentences;
///
/// let mut sentences = Sentences::new();
/// sentences.push(&[0, 1, 2]);
/// sentences.push(&[]);
/// sentences.push(&[2, 0]);
/// assert_eq!(sentences.len(), 2);
/// assert_eq!(sentences.num_words(), 5);
/// assert_eq!(sentences.get(1), &[2, 0]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sentences {
    ids: Vec<u32>,
    /// Where each sentence ends in `ids`.
    ends: Vec<usize>,
}

impl Sentences {
    /// No sentences.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sentence; an empty one is left out.
    pub fn push(&mut self, ids: &[u32]) {
        if !ids.is_empty() {
            self.ids.extend_from_slice(ids);
            self.ends.push(self.ids.len());
        }
    }

    /// The number of sentences.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no sentences.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The number of words of all sentences.
    pub fn num_words(&self) -> usize {
        self.ids.len()
    }

    /// Sentence `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.ids[start..self.ends[i]]
    }

    /// The sentences, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u32]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The word ids of every sentence, back to back.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

/// What [`SkipGram::train`] did.
///
/// It is saved with the model ([`SavedSkipGram`](crate::format::SavedSkipGram)):
/// in JSON, a loss that is not a number (an epoch without examples) is
/// `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrainReport {
    /// Epochs run.
    pub epochs: usize,
    /// Words of the sentences times epochs.
    pub words: u64,
    /// Words left after sub-sampling, over all epochs.
    pub effective_words: u64,
    /// Examples trained (skip-gram: (context, centre) pairs; CBOW: centre
    /// words with a context).
    pub examples: u64,
    /// Wall-clock seconds of training.
    pub seconds: f64,
    /// Per epoch, the mean loss per positive or noise word, if
    /// [`SkipGramConfig::compute_loss`] is set.
    #[serde(with = "nan_as_null")]
    pub losses: Vec<f64>,
    /// Threads used.
    pub threads: usize,
}

/// A list of `f64` whose values that are not finite are written as
/// `null` (JSON has no NaN) and read back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|x| x.is_finite().then_some(*x)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let values = Vec::<Option<f64>>::deserialize(d)?;
        Ok(values.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

impl TrainReport {
    /// Training speed in words of the sentences per second (gensim's
    /// "words/s" counts the same words).
    pub fn words_per_second(&self) -> f64 {
        self.words as f64 / self.seconds.max(1e-9)
    }
}

/// A word2vec model trained with negative sampling (SGNS or CBOW): one
/// input and one output vector per word.
///
/// # Training
///
/// word2vec.c's algorithm. Each epoch walks the sentences in order; each
/// word is dropped by sub-sampling with probability
/// `1 - keep_probability` (see [`keep_probability`](super::keep_probability))
/// before windows are taken, as word2vec does; each centre word draws a
/// window `window - b` with `b` uniform in `0..window`. Skip-gram then
/// trains every context word's input vector to predict the centre word
/// against [`negative`](SkipGramConfig::negative) noise words from a
/// [`NoiseTable`] (a noise word equal to the centre word is skipped, as in
/// word2vec); CBOW trains the mean of the context's input vectors the same
/// way and adds the error to each of them. The learning rate decays
/// linearly from `alpha` to `min_alpha` with the position of the sentence
/// in the whole run.
///
/// The sigmoid is read from word2vec's 1000-entry table over `[-6, 6]`
/// (within 0.003 of the exact value; gensim builds the same table): over seeds 1-8 on the
/// evaluation suite's corpus the exact `1 / (1 + exp(-x))` gave the same
/// quality (analogies 9.10 % both, WordSim-353 0.254 and 0.255) and took
/// 8 % longer (one thread, alternating runs: 12.8-12.9 s against
/// 11.3-11.9 s). An
/// example whose `|input·output|` is 6 or more is skipped, as gensim
/// does (word2vec.c leaves the gradient at its limit there instead), and
/// the input vectors start uniform in `[-1/dim, 1/dim)` as gensim's
/// (word2vec.c: half as wide). Both are gensim's choices because gensim
/// is the reference of the evaluation suite: over seeds 1-8 on its
/// literary corpus (two threads) they raised the Google-analogy accuracy
/// from 8.84 % to 9.10 % (gensim 4.4 here: 9.46 %), WordSim-353 unchanged.
///
/// # Threads without races
///
/// The sentences are cut into jobs of about
/// [`batch_words`](SkipGramConfig::batch_words) words. A round hands one
/// job to each thread; every thread trains on its job in order, exactly as
/// word2vec would, but in steps of about 1,000 words (whole sentences) and
/// on its own copies of the rows it touches, read from the weights as they
/// were at the start of the step (the weights are not written while
/// threads run). After each step the threads' changes are merged in
/// thread order: the rows of the step's first thread (the first with a
/// step left) are copied in, the others' are added as differences from
/// the start of the step, which is what
/// word2vec's Hogwild threads do to a shared row, without the race (each
/// thread merges the rows of one range of ids). Each job has its own
/// random stream, derived from the seed, the epoch and the job's index.
///
/// A round of a single job (every round with one thread) trains on the
/// tables in place. So with one thread training is word2vec's sequential
/// algorithm, and a run is the same bits for the same seed, data and
/// thread count. With more threads the result depends on the number (jobs
/// are grouped differently into rounds), never on scheduling.
///
/// # Speed
///
/// A sentence's random draws (sub-sampling, window, noise words) do not
/// depend on the vectors, so they are made first and the rows of the
/// example two ahead are requested from memory while one is trained:
/// on the evaluation suite's literary corpus (5 epochs, one thread, the
/// two-core machine of EVALUATION.md) 11.7 s instead of 15.9 s, the
/// same bits (then with the exact sigmoid; the table took it to
/// 11.3-11.9 s in runs alternating with the exact one's 12.8-12.9 s: the
/// machine's speed varies by about 10 % over a day).
///
/// The copies cost time: a 1,000-word step touches about half of the
/// output rows of that corpus (6,800 of 13,852 per thread), so copying
/// them in and merging them out moves about as much memory as training
/// does. One thread training through the copies takes 20 s (1.7 times
/// as long as in place), and two threads 15-16 s: slower than one thread
/// in place. Longer steps copy
/// less per word (2 threads: 12.9 s with 2,000 words, 9.5-12 s with 3,000
/// to 10,000) but let the threads drift further apart: 3,000-word steps
/// cost 0.14 points of analogy accuracy over seeds 1-15, 10,000-word
/// steps 0.4 points (8.70 % against 9.10 %, seeds 1-8). The steps stay
/// at 1,000 words, the quality of the sequential algorithm first: on a
/// small vocabulary, one thread is the fast choice.
///
/// # Examples
///
/// ```
/// use embkit::word2vec::{SkipGram, SkipGramConfig};
/// use embkit::{NoObserver, Threads};
///
/// let lines = ["the cat sat on the mat", "the dog sat on the log"];
/// let config = SkipGramConfig::new().with_min_count(1).with_embedding_dim(8).with_epochs(2);
/// let (model, report) = SkipGram::fit(&config, &lines, Threads::single(), &mut NoObserver)?;
/// assert_eq!(model.vocab().words()[0], "the");
/// assert_eq!(report.words, 24);
/// let vectors = model.vectors()?;
/// assert_eq!((vectors.len(), vectors.dim()), (7, 8));
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SkipGram {
    config: SkipGramConfig,
    vocab: WordCounts,
    /// `[words, embedding_dim]`: the word vectors (word2vec's `syn0`).
    input: Vec<f32>,
    /// `[words, embedding_dim]`: the context vectors of negative sampling
    /// (word2vec's `syn1neg`).
    output: Vec<f32>,
}

impl SkipGram {
    /// See [`SkipGramConfig::init`].
    pub(crate) fn new(config: SkipGramConfig, vocab: WordCounts) -> Result<Self> {
        let dim = config.embedding_dim;
        let values = vocab.len().checked_mul(dim).ok_or_else(|| {
            Error::config("embedding_dim", format!("{} x {dim} values do not fit", vocab.len()))
        })?;
        let mut rng = SplitMix64::new(mix64(config.seed ^ 0x5EED_1417_0000_0001));
        let scale = 1.0 / dim as f32;
        let input = (0..values).map(|_| (rng.unit_f32() * 2.0 - 1.0) * scale).collect();
        Ok(Self { config, vocab, input, output: vec![0.0; values] })
    }

    /// A model from its parts: the settings, the vocabulary and both
    /// tables, `[words, embedding_dim]` row-major (as
    /// [`input_weights`](Self::input_weights) and
    /// [`output_weights`](Self::output_weights) return them). This is how
    /// a saved model is rebuilt.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an invalid config (see
    /// [`SkipGramConfig::validate`]); [`Error::ShapeMismatch`] for a table
    /// that does not have one row of `embedding_dim` values per word of
    /// the vocabulary; [`Error::InvalidConfig`] for a value that is NaN or
    /// infinite.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::word2vec::{SkipGram, SkipGramConfig, WordCounts};
    ///
    /// let config = SkipGramConfig::new().with_embedding_dim(2);
    /// let vocab = WordCounts::from_counts(vec!["a".into(), "b".into()], vec![3, 1], 4, false)?;
    /// let model = SkipGram::from_parts(config.clone(), vocab.clone(), vec![0.5; 4], vec![0.0; 4])?;
    /// assert_eq!(model.vector("b"), Some(&[0.5, 0.5][..]));
    /// assert!(SkipGram::from_parts(config, vocab, vec![0.5; 6], vec![0.0; 4]).is_err());
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn from_parts(
        config: SkipGramConfig,
        vocab: WordCounts,
        input: Vec<f32>,
        output: Vec<f32>,
    ) -> Result<Self> {
        config.validate()?;
        let (words, dim) = (vocab.len(), config.embedding_dim);
        for (what, table) in [("input table", &input), ("output table", &output)] {
            if words.checked_mul(dim) != Some(table.len()) {
                let expected = format!("{words} words x {dim} (embedding_dim) values");
                return Err(Error::shape(what, expected, &[table.len()]));
            }
            if let Some(i) = table.iter().position(|x| !x.is_finite()) {
                return Err(Error::config(
                    "weights",
                    format!(
                        "the {what} has the value {} at row {}, column {} (must be finite)",
                        table[i],
                        i / dim,
                        i % dim
                    ),
                ));
            }
        }
        Ok(Self { config, vocab, input, output })
    }

    /// Counts `lines`, makes a model and trains it: the whole of word2vec
    /// in one call. Lines are sentences (see [`encode`](Self::encode)).
    ///
    /// # Errors
    ///
    /// As [`SkipGramConfig::build_vocab`], [`SkipGramConfig::init`] and
    /// [`train`](Self::train).
    pub fn fit<S: AsRef<str>>(
        config: &SkipGramConfig,
        lines: &[S],
        threads: Threads,
        observer: &mut dyn Observer,
    ) -> Result<(Self, TrainReport)> {
        let vocab = config.build_vocab(lines)?;
        let mut model = config.init(vocab)?;
        let sentences = model.encode(lines);
        let report = model.train(&sentences, threads, observer)?;
        Ok((model, report))
    }

    /// The settings.
    pub fn config(&self) -> &SkipGramConfig {
        &self.config
    }

    /// The vocabulary: row `i` of both tables is word `i`.
    pub fn vocab(&self) -> &WordCounts {
        &self.vocab
    }

    /// The input vectors (the word vectors), `[words, embedding_dim]`
    /// row-major.
    pub fn input_weights(&self) -> &[f32] {
        &self.input
    }

    /// The output vectors of negative sampling, `[words, embedding_dim]`
    /// row-major.
    pub fn output_weights(&self) -> &[f32] {
        &self.output
    }

    /// The vector of `word`, if it is in the vocabulary.
    pub fn vector(&self, word: &str) -> Option<&[f32]> {
        let dim = self.config.embedding_dim;
        self.vocab.id(word).map(|id| &self.input[id as usize * dim..(id as usize + 1) * dim])
    }

    /// The input vectors as word vectors, most frequent word first, for
    /// the writers of [`format`](crate::format) and the
    /// [`query`](crate::query) functions.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a value is not finite.
    pub fn vectors(&self) -> Result<Vectors> {
        Vectors::new(self.vocab.words().to_vec(), self.config.embedding_dim, self.input.clone())
    }

    /// The sentences of `lines` as ids: words split on whitespace,
    /// lowercased if the vocabulary was, words not in the vocabulary left
    /// out (as word2vec), sentences longer than
    /// [`batch_words`](SkipGramConfig::batch_words) cut into pieces of that
    /// length.
    pub fn encode<S: AsRef<str>>(&self, lines: impl IntoIterator<Item = S>) -> Sentences {
        let max = self.config.batch_words.max(1);
        let mut sentences = Sentences::new();
        let mut ids = Vec::new();
        for line in lines {
            ids.clear();
            ids.extend(line.as_ref().split_whitespace().filter_map(|w| self.vocab.id(w)));
            for piece in ids.chunks(max) {
                sentences.push(piece);
            }
        }
        sentences
    }

    /// Trains on `sentences` for [`epochs`](SkipGramConfig::epochs) epochs
    /// on `threads` threads (see the type's docs), telling `observer` each
    /// epoch's start, each round's end and each epoch's end (the loss is
    /// NaN unless [`compute_loss`](SkipGramConfig::compute_loss) is set).
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] without words; [`Error::IdOutOfRange`] for an
    /// id that is not a word of the vocabulary.
    pub fn train(
        &mut self,
        sentences: &Sentences,
        threads: Threads,
        observer: &mut dyn Observer,
    ) -> Result<TrainReport> {
        self.config.validate()?;
        let words = self.vocab.len();
        if sentences.num_words() == 0 {
            return Err(Error::EmptyData { what: "sentences: no word of the vocabulary".into() });
        }
        if let Some(&id) = sentences.ids().iter().find(|&&id| id as usize >= words) {
            return Err(Error::IdOutOfRange { id, num_embeddings: words });
        }
        let config = &self.config;
        let noise = NoiseTable::new(self.vocab.counts(), config.ns_exponent)?;
        let keep = keep_thresholds(self.vocab.counts(), config.sample);
        let jobs = jobs(sentences, config.batch_words);
        let per_round = threads.get().min(jobs.len());
        let rounds = jobs.len().div_ceil(per_round);
        let corpus_words = sentences.num_words() as u64;
        let total_words = corpus_words as f64 * config.epochs as f64;
        let shared =
            Shared { config, noise: &noise, keep: &keep, sentences, corpus_words, total_words };
        let mut workers: Vec<Worker> =
            (0..per_round).map(|_| Worker::new(words, config.embedding_dim)).collect();

        let start = Instant::now();
        let mut report = TrainReport {
            epochs: config.epochs,
            words: 0,
            effective_words: 0,
            examples: 0,
            seconds: 0.0,
            losses: Vec::new(),
            threads: per_round,
        };
        observer.train_begin(config.epochs, rounds);
        for epoch in 0..config.epochs {
            observer.epoch_begin(epoch + 1);
            let (mut loss, mut terms) = (0.0f64, 0u64);
            for (round, round_jobs) in jobs.chunks(per_round).enumerate() {
                if let [job] = round_jobs {
                    // One job: train on the tables themselves, as word2vec.
                    let dim = config.embedding_dim;
                    let scratch = &mut workers[0].scratch;
                    let mut rng = job_rng(config.seed, epoch, job.index);
                    let mut inputs = Direct { table: &mut self.input, dim };
                    let mut outputs = Direct { table: &mut self.output, dim };
                    simd::dispatch(
                        #[inline(always)]
                        || scratch.run(&shared, job, epoch, &mut rng, &mut inputs, &mut outputs),
                    );
                } else {
                    let steps: Vec<Vec<Job>> =
                        round_jobs.iter().map(|job| steps(sentences, job, SYNC_WORDS)).collect();
                    for (worker, job) in workers.iter_mut().zip(round_jobs) {
                        worker.rng = job_rng(config.seed, epoch, job.index);
                    }
                    let num_steps = steps.iter().map(Vec::len).max().unwrap_or(0);
                    for step in 0..num_steps {
                        let tables = (&mut self.input[..], &mut self.output[..]);
                        sync_step(&shared, &mut workers, &steps, step, epoch, tables);
                    }
                }
                for worker in &mut workers[..round_jobs.len()] {
                    let scratch = &mut worker.scratch;
                    report.effective_words += scratch.effective_words;
                    report.examples += scratch.examples;
                    loss += scratch.loss;
                    terms += scratch.loss_terms;
                    scratch.reset();
                }
                // NaN when the loss is not computed (not 0: nothing was summed).
                let mean =
                    if config.compute_loss && terms > 0 { loss / terms as f64 } else { f64::NAN };
                observer.batch_end(epoch + 1, round + 1, mean);
            }
            report.words += corpus_words;
            let mean =
                if config.compute_loss && terms > 0 { loss / terms as f64 } else { f64::NAN };
            if config.compute_loss {
                report.losses.push(mean);
            }
            observer.epoch_end(&EpochLog {
                epoch: epoch + 1,
                loss: mean,
                metrics: Default::default(),
                val_loss: None,
                val_metrics: Default::default(),
            });
        }
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// Trains step `step` of every job of a round that has one, each
/// thread against the tables as they are, then merges the threads'
/// changes: each thread writes the rows of one range of ids, every row
/// as [`merge_row`] sums it, in thread order.
fn sync_step(
    shared: &Shared<'_>,
    workers: &mut [Worker],
    steps: &[Vec<Job>],
    step: usize,
    epoch: usize,
    (input, output): (&mut [f32], &mut [f32]),
) {
    let active: Vec<(usize, &Job)> =
        steps.iter().enumerate().filter_map(|(k, s)| s.get(step).map(|job| (k, job))).collect();
    if active.is_empty() {
        return;
    }
    let (table_in, table_out) = (&*input, &*output);
    let run = |worker: &mut Worker, job: &Job| {
        simd::dispatch(
            #[inline(always)]
            || worker.run(shared, job, epoch, table_in, table_out),
        );
    };
    std::thread::scope(|scope| {
        let run = &run;
        let mut rest = &mut workers[..];
        let mut taken = 0;
        for (n, &(k, job)) in active.iter().enumerate() {
            let (worker, tail) = rest[k - taken..].split_first_mut().expect("a worker per job");
            rest = tail;
            taken = k + 1;
            if n == active.len() - 1 {
                run(worker, job);
            } else {
                scope.spawn(move || run(worker, job));
            }
        }
    });
    let inputs: Vec<&Overlay> = active.iter().map(|&(k, _)| &workers[k].input).collect();
    let outputs: Vec<&Overlay> = active.iter().map(|&(k, _)| &workers[k].output).collect();
    let dim = shared.config.embedding_dim;
    merge_step([(input, &inputs), (output, &outputs)], dim, active.len());
}

/// Writes the threads' copies of rows (`overlays`, in thread order,
/// the first being the step's first thread) into each table, on `parts`
/// threads, each the rows of one range of ids; every row as
/// [`merge_row`] sums it, so the bits do not depend on `parts`.
fn merge_step(tables: [(&mut [f32], &[&Overlay]); 2], dim: usize, parts: usize) {
    let merge = |(ids, rows): (Range<usize>, &mut [f32]), overlays: &[&Overlay]| {
        let mut start = vec![0.0; dim];
        for (n, overlay) in overlays.iter().enumerate() {
            for &id in &overlay.ids {
                let id = id as usize;
                // A row is merged once, from the first overlay that has it.
                if !ids.contains(&id) || overlays[..n].iter().any(|o| o.slot[id] != NO_SLOT) {
                    continue;
                }
                let row = &mut rows[(id - ids.start) * dim..(id - ids.start + 1) * dim];
                merge_row(row, &mut start, id, &overlays[n..], n == 0);
            }
        }
    };
    let mut work = Vec::with_capacity(parts);
    for (n, (table, overlays)) in tables.into_iter().enumerate() {
        let cut = split_rows(table, dim, &balanced_bounds(overlays, parts));
        for (k, part) in cut.into_iter().enumerate() {
            if n == 0 {
                work.push(vec![(part, overlays)]);
            } else {
                work[k].push((part, overlays));
            }
        }
    }
    std::thread::scope(|scope| {
        let merge = &merge;
        let mut work = work.into_iter();
        let here = work.next().expect("at least one part");
        for parts in work {
            scope.spawn(move || parts.into_iter().for_each(|(part, o)| merge(part, o)));
        }
        here.into_iter().for_each(|(part, o)| merge(part, o));
    });
}

/// Row `id` after a step: `row` holds it as the step started; `overlays`
/// are the threads' copies from the first that has the row on, in thread
/// order. If `copy_first` (the first of them is the step's first
/// thread), its copy replaces the row; every other copy adds its
/// difference from the start (`start` is scratch of one row), in thread
/// order, so the sum does not depend on how the rows were split among
/// threads.
#[inline]
fn merge_row(
    row: &mut [f32],
    start: &mut [f32],
    id: usize,
    overlays: &[&Overlay],
    copy_first: bool,
) {
    start.copy_from_slice(row);
    for (n, overlay) in overlays.iter().enumerate() {
        let slot = overlay.slot[id];
        if slot == NO_SLOT {
            continue;
        }
        let copy = overlay.row(slot as usize);
        if n == 0 && copy_first {
            row.copy_from_slice(copy);
        } else {
            for ((r, &c), &s) in row.iter_mut().zip(copy).zip(&*start) {
                *r += c - s;
            }
        }
    }
}

/// Where to cut the ids `0..words` into `parts` ranges (`parts + 1`
/// bounds) so each range holds about as many of the rows the `overlays`
/// touched, counted in blocks of 64 ids.
fn balanced_bounds(overlays: &[&Overlay], parts: usize) -> Vec<usize> {
    const BLOCK: usize = 64;
    let words = overlays.first().map_or(0, |o| o.slot.len());
    let mut counts = vec![0usize; words.div_ceil(BLOCK)];
    for overlay in overlays {
        for &id in &overlay.ids {
            counts[id as usize / BLOCK] += 1;
        }
    }
    let total: usize = counts.iter().sum();
    let mut bounds = vec![0];
    let mut sum = 0;
    for (block, &count) in counts.iter().enumerate() {
        sum += count;
        // Cut after this block once it holds the next part's share.
        while bounds.len() < parts && sum * parts >= total * bounds.len() && sum > 0 {
            bounds.push(((block + 1) * BLOCK).min(words));
        }
    }
    bounds.resize(parts, words);
    bounds.push(words);
    bounds
}

/// Cuts `table` (rows of `dim`) at the row `bounds` into the ranges of
/// ids and their rows.
fn split_rows<'t>(
    mut table: &'t mut [f32],
    dim: usize,
    bounds: &[usize],
) -> Vec<(Range<usize>, &'t mut [f32])> {
    let mut parts = Vec::with_capacity(bounds.len() - 1);
    for pair in bounds.windows(2) {
        let (part, rest) = table.split_at_mut((pair[1] - pair[0]) * dim);
        parts.push((pair[0]..pair[1], part));
        table = rest;
    }
    parts
}

/// Words (whole sentences, at least one) a thread trains on between two
/// merges of a round of several jobs. The merge adds the threads' changes
/// to a row, so a row that both threads change all the time (the output
/// vector of a frequent noise word) moves about twice as far as one
/// thread's sequence would move it when the threads run long between
/// merges. Longer steps copy less per word and run faster, but cost
/// analogy accuracy on the literary corpus of the evaluation suite (see
/// [`SkipGram`]'s section on speed: 0.14 points at 3,000 words, 0.4 at
/// 10,000).
const SYNC_WORDS: usize = 1_000;

/// Cuts `job` into steps of at most `max_words` words (a longer sentence
/// is a step of its own), each with the job's index and its own
/// `words_before`.
fn steps(sentences: &Sentences, job: &Job, max_words: usize) -> Vec<Job> {
    let mut steps = Vec::new();
    let (mut start, mut words, mut before) = (job.sentences.start, 0usize, job.words_before);
    for i in job.sentences.clone() {
        let len = sentences.get(i).len();
        if words > 0 && words + len > max_words {
            steps.push(Job { index: job.index, sentences: start..i, words_before: before });
            before += words as u64;
            (start, words) = (i, 0);
        }
        words += len;
    }
    if words > 0 {
        steps.push(Job {
            index: job.index,
            sentences: start..job.sentences.end,
            words_before: before,
        });
    }
    steps
}

/// The random stream of job `index` of `epoch`.
fn job_rng(seed: u64, epoch: usize, index: usize) -> SplitMix64 {
    SplitMix64::new(mix64(mix64(seed) ^ ((epoch as u64) << 40) ^ index as u64))
}

/// A run of sentences trained by one thread in one round.
#[derive(Debug, Clone)]
struct Job {
    /// The job's position in the epoch (seeds its random stream).
    index: usize,
    sentences: Range<usize>,
    /// Words of the sentences before this job.
    words_before: u64,
}

/// Cuts the sentences into jobs of at most `batch_words` words (a longer
/// sentence is a job of its own; [`SkipGram::encode`] never makes one).
fn jobs(sentences: &Sentences, batch_words: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    let (mut start, mut words, mut before) = (0, 0usize, 0u64);
    for i in 0..sentences.len() {
        let len = sentences.get(i).len();
        if words > 0 && words + len > batch_words {
            jobs.push(Job { index: jobs.len(), sentences: start..i, words_before: before });
            before += words as u64;
            (start, words) = (i, 0);
        }
        words += len;
    }
    if words > 0 {
        jobs.push(Job {
            index: jobs.len(),
            sentences: start..sentences.len(),
            words_before: before,
        });
    }
    jobs
}

/// What every worker reads during a round.
struct Shared<'a> {
    config: &'a SkipGramConfig,
    noise: &'a NoiseTable,
    keep: &'a [u64],
    sentences: &'a Sentences,
    /// Words of the sentences (one epoch).
    corpus_words: u64,
    /// Words of all epochs.
    total_words: f64,
}

/// Where a job reads and writes rows: a thread's [`Overlay`] or, when a
/// round has a single job, the table itself.
trait Rows {
    /// The slot of row `id`, for [`row`](Self::row) and
    /// [`row_mut`](Self::row_mut).
    fn load(&mut self, id: u32) -> usize;
    fn row(&self, slot: usize) -> &[f32];
    fn row_mut(&mut self, slot: usize) -> &mut [f32];
    /// Asks for row `id` to be brought into the cache (nothing if `id`
    /// is [`NO_TARGET`]).
    fn prefetch(&self, id: u32);
}

/// A table written in place: slots are ids.
struct Direct<'a> {
    table: &'a mut [f32],
    dim: usize,
}

impl Rows for Direct<'_> {
    #[inline(always)]
    fn load(&mut self, id: u32) -> usize {
        id as usize
    }

    #[inline(always)]
    fn row(&self, slot: usize) -> &[f32] {
        &self.table[slot * self.dim..(slot + 1) * self.dim]
    }

    #[inline(always)]
    fn row_mut(&mut self, slot: usize) -> &mut [f32] {
        &mut self.table[slot * self.dim..(slot + 1) * self.dim]
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        if id != NO_TARGET {
            simd::prefetch(self.table, id as usize * self.dim, self.dim);
        }
    }
}

/// A thread's private copies of the rows of one table it touched in a
/// step (kept until its next step, for the merge).
struct Overlay {
    dim: usize,
    /// Per word, its slot in `rows`, or `u32::MAX`.
    slot: Vec<u32>,
    /// The words with a slot, in the order they were first touched.
    ids: Vec<u32>,
    rows: Vec<f32>,
}

/// An [`Overlay`] over the table it copies rows from.
struct Overlaid<'a> {
    overlay: &'a mut Overlay,
    table: &'a [f32],
}

impl Rows for Overlaid<'_> {
    /// The slot of `id`, copying its row from the table on first touch.
    #[inline(always)]
    fn load(&mut self, id: u32) -> usize {
        let overlay = &mut *self.overlay;
        let slot = overlay.slot[id as usize];
        if slot != NO_SLOT {
            return slot as usize;
        }
        let slot = overlay.ids.len();
        overlay.slot[id as usize] = slot as u32;
        overlay.ids.push(id);
        let start = id as usize * overlay.dim;
        overlay.rows.extend_from_slice(&self.table[start..start + overlay.dim]);
        slot
    }

    #[inline(always)]
    fn row(&self, slot: usize) -> &[f32] {
        let dim = self.overlay.dim;
        &self.overlay.rows[slot * dim..(slot + 1) * dim]
    }

    #[inline(always)]
    fn row_mut(&mut self, slot: usize) -> &mut [f32] {
        let dim = self.overlay.dim;
        &mut self.overlay.rows[slot * dim..(slot + 1) * dim]
    }

    /// The copy's row if there is one, else the table's.
    #[inline(always)]
    fn prefetch(&self, id: u32) {
        let dim = self.overlay.dim;
        match self.overlay.slot.get(id as usize) {
            Some(&NO_SLOT) => simd::prefetch(self.table, id as usize * dim, dim),
            Some(&slot) => simd::prefetch(&self.overlay.rows, slot as usize * dim, dim),
            None => {}
        }
    }
}

const NO_SLOT: u32 = u32::MAX;

/// In [`Scratch::drawn`], a noise word left out.
const NO_TARGET: u32 = u32::MAX;

/// How many examples ahead skip-gram asks for the rows it will train.
const FETCH_AHEAD: usize = 2;

impl Overlay {
    fn new(words: usize, dim: usize) -> Self {
        Self { dim, slot: vec![NO_SLOT; words], ids: Vec::new(), rows: Vec::new() }
    }

    /// The copy of the row in `slot`.
    fn row(&self, slot: usize) -> &[f32] {
        &self.rows[slot * self.dim..(slot + 1) * self.dim]
    }

    fn reset(&mut self) {
        for &id in &self.ids {
            self.slot[id as usize] = NO_SLOT;
        }
        self.ids.clear();
        self.rows.clear();
    }
}

/// One thread's state, kept across rounds so buffers are reused.
struct Worker {
    input: Overlay,
    output: Overlay,
    scratch: Scratch,
    /// The random stream of the worker's job in the current round.
    rng: SplitMix64,
}

impl Worker {
    fn new(words: usize, dim: usize) -> Self {
        Self {
            input: Overlay::new(words, dim),
            output: Overlay::new(words, dim),
            scratch: Scratch::new(dim),
            rng: SplitMix64::new(0),
        }
    }

    /// Trains on one step of a job against `input` and `output` as they
    /// are, into this worker's overlays (emptied first: they hold the
    /// previous step's rows until then, for the merge).
    #[inline(always)]
    fn run(&mut self, shared: &Shared<'_>, job: &Job, epoch: usize, input: &[f32], output: &[f32]) {
        self.input.reset();
        self.output.reset();
        let mut inputs = Overlaid { overlay: &mut self.input, table: input };
        let mut outputs = Overlaid { overlay: &mut self.output, table: output };
        self.scratch.run(shared, job, epoch, &mut self.rng, &mut inputs, &mut outputs);
    }
}

/// A job's buffers and counts.
struct Scratch {
    /// The sentence after sub-sampling.
    kept: Vec<u32>,
    /// The error accumulated for the input side (word2vec's `neu1e`).
    err: Vec<f32>,
    /// CBOW's mean of the context (word2vec's `neu1`).
    hidden: Vec<f32>,
    /// CBOW's context slots.
    context: Vec<usize>,
    /// Skip-gram's examples of a sentence, drawn before training on them:
    /// per example its context word, then its centre word and noise words
    /// (`negative + 1` ids; [`NO_TARGET`] for a noise word equal to the
    /// centre, which is left out).
    drawn: Vec<u32>,
    effective_words: u64,
    examples: u64,
    loss: f64,
    loss_terms: u64,
}

impl Scratch {
    fn new(dim: usize) -> Self {
        Self {
            kept: Vec::new(),
            err: vec![0.0; dim],
            hidden: vec![0.0; dim],
            context: Vec::new(),
            drawn: Vec::new(),
            effective_words: 0,
            examples: 0,
            loss: 0.0,
            loss_terms: 0,
        }
    }

    fn reset(&mut self) {
        self.effective_words = 0;
        self.examples = 0;
        self.loss = 0.0;
        self.loss_terms = 0;
    }

    /// Trains on one job (or a step of one), drawing from `rng`, reading
    /// and writing rows through `input` and `output`.
    #[inline(always)]
    fn run(
        &mut self,
        shared: &Shared<'_>,
        job: &Job,
        epoch: usize,
        rng: &mut SplitMix64,
        input: &mut impl Rows,
        output: &mut impl Rows,
    ) {
        let config = shared.config;
        let words_before_epoch = epoch as f64 * shared.corpus_words as f64;
        let (alpha0, min_alpha) = (f64::from(config.alpha), f64::from(config.min_alpha));
        let mut position = words_before_epoch + job.words_before as f64;
        for s in job.sentences.clone() {
            let sentence = shared.sentences.get(s);
            let progress = position / shared.total_words;
            let alpha = (alpha0 - (alpha0 - min_alpha) * progress).max(min_alpha) as f32;
            position += sentence.len() as f64;
            self.kept.clear();
            for &id in sentence {
                if u64::from(rng.next_u64() as u32) < shared.keep[id as usize] {
                    self.kept.push(id);
                }
            }
            self.effective_words += self.kept.len() as u64;
            match config.architecture {
                Architecture::SkipGram => self.skipgram(shared, rng, alpha, input, output),
                Architecture::Cbow => self.cbow(shared, rng, alpha, input, output),
            }
        }
    }

    #[inline(always)]
    fn skipgram(
        &mut self,
        shared: &Shared<'_>,
        rng: &mut SplitMix64,
        alpha: f32,
        input: &mut impl Rows,
        output: &mut impl Rows,
    ) {
        let config = shared.config;
        let window = config.window;
        let n = self.kept.len();
        // The random draws do not depend on the vectors: drawn first (in
        // word2vec's order), they say which rows to fetch ahead.
        self.drawn.clear();
        for i in 0..n {
            let centre = self.kept[i];
            let reach = window - rng.below(window as u64) as usize;
            let (lo, hi) = (i.saturating_sub(reach), (i + reach + 1).min(n));
            for j in (lo..hi).filter(|&j| j != i) {
                self.drawn.extend([self.kept[j], centre]);
                for _ in 0..config.negative {
                    let t = shared.noise.draw(rng.next_u64());
                    self.drawn.push(if t == centre { NO_TARGET } else { t });
                }
            }
        }
        let stride = config.negative + 2;
        let count = self.drawn.len() / stride;
        self.examples += count as u64;
        for e in 0..count {
            if let Some(ahead) =
                self.drawn.get((e + FETCH_AHEAD) * stride..(e + FETCH_AHEAD + 1) * stride)
            {
                input.prefetch(ahead[0]);
                for &target in &ahead[1..stride] {
                    output.prefetch(target);
                }
            }
            let example = &self.drawn[e * stride..(e + 1) * stride];
            let slot = input.load(example[0]);
            self.err.fill(0.0);
            for (d, &target) in example[1..].iter().enumerate() {
                if target == NO_TARGET {
                    continue;
                }
                let label = if d == 0 { 1.0 } else { 0.0 };
                let out = output.load(target);
                let loss = target_step(
                    input.row(slot),
                    output.row_mut(out),
                    &mut self.err,
                    label,
                    alpha,
                    config.compute_loss,
                );
                self.loss += f64::from(loss);
                self.loss_terms += 1;
            }
            add(input.row_mut(slot), &self.err);
        }
    }

    #[inline(always)]
    fn cbow(
        &mut self,
        shared: &Shared<'_>,
        rng: &mut SplitMix64,
        alpha: f32,
        input: &mut impl Rows,
        output: &mut impl Rows,
    ) {
        let config = shared.config;
        let window = config.window;
        let n = self.kept.len();
        for i in 0..n {
            let centre = self.kept[i];
            let reach = window - rng.below(window as u64) as usize;
            let (lo, hi) = (i.saturating_sub(reach), (i + reach + 1).min(n));
            self.context.clear();
            for j in (lo..hi).filter(|&j| j != i) {
                self.context.push(input.load(self.kept[j]));
            }
            if self.context.is_empty() {
                continue;
            }
            self.hidden.fill(0.0);
            for &slot in &self.context {
                add(&mut self.hidden, input.row(slot));
            }
            let inv = 1.0 / self.context.len() as f32;
            self.hidden.iter_mut().for_each(|x| *x *= inv);
            self.err.fill(0.0);
            self.examples += 1;
            for d in 0..=config.negative {
                let (target, label) = if d == 0 {
                    (centre, 1.0)
                } else {
                    let t = shared.noise.draw(rng.next_u64());
                    if t == centre {
                        continue;
                    }
                    (t, 0.0)
                };
                let out = output.load(target);
                let loss = target_step(
                    &self.hidden,
                    output.row_mut(out),
                    &mut self.err,
                    label,
                    alpha,
                    config.compute_loss,
                );
                self.loss += f64::from(loss);
                self.loss_terms += 1;
            }
            for &slot in &self.context {
                add(input.row_mut(slot), &self.err);
            }
        }
    }
}

/// Beyond this `|h·u|` an example is left out of training, as gensim
/// does (word2vec.c's `MAX_EXP`).
const MAX_EXP: f32 = 6.0;

/// One positive or noise word of negative sampling, as gensim updates
/// it: with `f = h·u` and `g = (label - σ(f)) · alpha`, adds `g·u` to
/// `err` (the input side's update, applied by the caller after all
/// targets) and `g·h` to `u`, unless `|f| ≥ MAX_EXP` (then nothing
/// changes). Returns the target's loss `-ln σ(f)` (label 1) or
/// `-ln σ(-f)` (label 0) if `with_loss`, else 0: a skipped target's too,
/// where gensim's `compute_loss` leaves it out, so the two losses differ.
#[inline(always)]
fn target_step(
    h: &[f32],
    u: &mut [f32],
    err: &mut [f32],
    label: f32,
    alpha: f32,
    with_loss: bool,
) -> f32 {
    let f = dot(h, u);
    if f.abs() < MAX_EXP {
        let g = (label - table_sigmoid(f)) * alpha;
        axpy(g, u, err);
        axpy(g, h, u);
    }
    if with_loss {
        // -ln σ(±f) = ln(1 + exp(∓f)), stable for large |f|.
        let z = if label > 0.5 { -f } else { f };
        softplus(z)
    } else {
        0.0
    }
}

/// `ln(1 + exp(z))` without overflow.
#[inline(always)]
fn softplus(z: f32) -> f32 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Entries of [`SIGMOID_TABLE`] (word2vec's `EXP_TABLE_SIZE`).
const SIGMOID_TABLE_SIZE: usize = 1000;

/// word2vec.c's `expTable` of the logistic function over
/// `[-MAX_EXP, MAX_EXP)`, bit for bit: entry `i` is `e / (e + 1)` with
/// `e = exp((i / 1000 · 2 - 1) · 6)`, the argument in `f32`, `exp` in
/// `f64` (C's `exp`), the rest in `f32`.
static SIGMOID_TABLE: LazyLock<[f32; SIGMOID_TABLE_SIZE]> = LazyLock::new(|| {
    std::array::from_fn(|i| {
        let x = (i as f32 / SIGMOID_TABLE_SIZE as f32 * 2.0 - 1.0) * MAX_EXP;
        let e = f64::from(x).exp() as f32;
        e / (e + 1.0)
    })
});

/// The logistic function of `x` (`|x| < MAX_EXP`) read from
/// [`SIGMOID_TABLE`] at `⌊(x + 6) · 1000 / 12⌋`: within 0.003 of
/// `1 / (1 + exp(-x))` (the largest slope, 1/4, times the step, 0.012),
/// and several times faster than `exp`. word2vec.c and gensim (compiled
/// with C division) compute the scale `1000 / 12` in integers (83), which
/// reads up to 0.009 below; reading as they do changed nothing measurable
/// (analogies 9.11 % over seeds 1-8 on the evaluation suite's corpus,
/// against 9.10 %).
#[inline(always)]
fn table_sigmoid(x: f32) -> f32 {
    let i = ((x + MAX_EXP) * (SIGMOID_TABLE_SIZE as f32 / MAX_EXP / 2.0)) as usize;
    SIGMOID_TABLE[i.min(SIGMOID_TABLE_SIZE - 1)]
}

/// The loss of one negative-sampling example: `input` is the input vector
/// (skip-gram: a context word's; CBOW: the mean of the context), `outputs`
/// holds `k + 1` output rows of `input.len()` values, the positive word's
/// first, then `k` noise words'. The loss is
/// `-ln σ(input·u₀) - Σᵢ ln σ(-input·uᵢ)`, computed in `f64`.
///
/// # Panics
///
/// If `outputs.len()` is not a non-zero multiple of `input.len()`.
pub fn sgns_loss(input: &[f32], outputs: &[f32]) -> f64 {
    let dim = input.len();
    assert!(dim > 0 && !outputs.is_empty() && outputs.len() % dim == 0, "rows of input's length");
    outputs
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, u)| {
            let f: f64 = input.iter().zip(u).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let z = if i == 0 { -f } else { f };
            if z > 0.0 {
                z + (-z).exp().ln_1p()
            } else {
                z.exp().ln_1p()
            }
        })
        .sum()
}

/// One negative-sampling update, exactly as training makes it: every
/// output row (the positive word's first, then the noise words') is
/// updated in turn by `g·input` with `g = (label - σ(input·u)) · alpha`,
/// and then `input` by the sum of the `g·u` (with each `u` as it was
/// before its own update). A row with `|input·u| ≥ 6` is skipped (no
/// change, nothing added to `input`'s update), as gensim does. Otherwise,
/// to first order in `alpha` this is `-alpha` times the gradient of
/// [`sgns_loss`]. Returns the loss before the update (every row counted),
/// as training sums it.
///
/// # Panics
///
/// If `outputs.len()` is not a non-zero multiple of `input.len()`.
///
/// # Examples
///
/// ```
/// use embkit::word2vec::{sgns_loss, sgns_step};
///
/// let mut input = vec![0.1, -0.2];
/// let mut outputs = vec![0.3, 0.1, -0.4, 0.2];
/// let before = sgns_loss(&input, &outputs);
/// sgns_step(&mut input, &mut outputs, 0.1);
/// assert!(sgns_loss(&input, &outputs) < before);
/// ```
pub fn sgns_step(input: &mut [f32], outputs: &mut [f32], alpha: f32) -> f32 {
    let dim = input.len();
    assert!(dim > 0 && !outputs.is_empty() && outputs.len() % dim == 0, "rows of input's length");
    let mut err = vec![0.0; dim];
    let mut loss = 0.0;
    for (i, u) in outputs.chunks_exact_mut(dim).enumerate() {
        let label = if i == 0 { 1.0 } else { 0.0 };
        loss += target_step(input, u, &mut err, label, alpha, true);
    }
    add(input, &err);
    loss
}

/// `y += a·x`.
#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `y += x`.
#[inline(always)]
fn add(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += x;
    }
}

/// SplitMix64 (Steele, Lea and Flood): a small, fast generator whose
/// output is fixed by its definition, so a seed gives the same run with
/// any version of the `rand` crate.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    #[inline(always)]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n < 2³²`), by the multiply-shift of 32 bits.
    #[inline(always)]
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// Uniform in `[0, 1)`, 24 bits.
    fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job trained through a worker's overlays and merged gives the same
    /// tables as the job trained in place: bit for bit when its rows are
    /// copied back (thread 0), up to rounding when added as differences.
    #[test]
    fn overlay_then_merge_equals_training_in_place() {
        let lines: Vec<String> = (0..40)
            .map(|i| format!("w{} w{} w{} w{} w1 w2", i % 7, i % 5, i % 3, i % 11))
            .collect();
        for architecture in [Architecture::SkipGram, Architecture::Cbow] {
            let config = SkipGramConfig::new()
                .with_min_count(1)
                .with_embedding_dim(10)
                .with_architecture(architecture);
            let mut model = config.init(config.build_vocab(&lines).unwrap()).unwrap();
            // Non-zero output rows, so differences are not trivially exact.
            model.output.iter_mut().enumerate().for_each(|(i, x)| *x = (i % 13) as f32 * 0.01);
            let sentences = model.encode(&lines);
            let noise = NoiseTable::new(model.vocab.counts(), config.ns_exponent).unwrap();
            let keep = keep_thresholds(model.vocab.counts(), config.sample);
            let corpus_words = sentences.num_words() as u64;
            let shared = Shared {
                config: &config,
                noise: &noise,
                keep: &keep,
                sentences: &sentences,
                corpus_words,
                total_words: corpus_words as f64,
            };
            let job = &jobs(&sentences, config.batch_words)[0];
            let dim = config.embedding_dim;

            let (mut input, mut output) = (model.input.clone(), model.output.clone());
            let mut scratch = Scratch::new(dim);
            scratch.run(
                &shared,
                job,
                0,
                &mut job_rng(config.seed, 0, job.index),
                &mut Direct { table: &mut input, dim },
                &mut Direct { table: &mut output, dim },
            );

            for first in [true, false] {
                let mut worker = Worker::new(model.vocab.len(), dim);
                worker.rng = job_rng(config.seed, 0, job.index);
                worker.run(&shared, job, 0, &model.input, &model.output);
                let (mut merged_in, mut merged_out) = (model.input.clone(), model.output.clone());
                // Not first: behind a thread 0 that touched nothing.
                let idle = Overlay::new(model.vocab.len(), dim);
                let (ins, outs) = if first {
                    (vec![&worker.input], vec![&worker.output])
                } else {
                    (vec![&idle, &worker.input], vec![&idle, &worker.output])
                };
                merge_step([(&mut merged_in, &ins), (&mut merged_out, &outs)], dim, 2);
                if first {
                    assert_eq!(merged_in, input);
                    assert_eq!(merged_out, output);
                } else {
                    for (a, b) in
                        merged_in.iter().chain(&merged_out).zip(input.iter().chain(&output))
                    {
                        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
                    }
                }
                assert_eq!(worker.scratch.examples, scratch.examples);
            }
        }
    }

    /// Threads' copies of overlapping rows merge to the same bits on one
    /// part or several, as row-by-row sums in thread order: the step's
    /// first thread's copy replaces a row, the others add their
    /// differences from the start (which is not the same as copying: the
    /// data make sure of it).
    #[test]
    fn merged_rows_are_the_first_copy_plus_the_others_differences() {
        let (words, dim) = (300, 3);
        let table: Vec<f32> = (0..words * dim).map(|i| 3.0 + (i % 17) as f32 * 0.1).collect();
        let mut overlays = [Overlay::new(words, dim), Overlay::new(words, dim)];
        let touched = [(0..words).step_by(2).collect::<Vec<_>>(), (0..words).step_by(3).collect()];
        for (k, (overlay, ids)) in overlays.iter_mut().zip(&touched).enumerate() {
            let mut rows = Overlaid { overlay, table: &table };
            for &id in ids.iter().rev() {
                let slot = rows.load(id as u32);
                // Far from the start, so `start + (copy - start)` rounds
                // differently from `copy`.
                rows.row_mut(slot).iter_mut().for_each(|x| *x = *x * 0.001 + 0.3 + k as f32);
            }
        }
        let copy = |k: usize, id: usize| {
            let slot = overlays[k].slot[id];
            (slot != NO_SLOT).then(|| overlays[k].row(slot as usize).to_vec())
        };
        // The rows as the scheme defines them, element by element.
        let (mut want_a, mut want_b) = (table.clone(), table.clone());
        let mut copy_differs = false;
        for id in 0..words {
            let start = &table[id * dim..(id + 1) * dim];
            let (a, b) = (&mut want_a[id * dim..][..dim], &mut want_b[id * dim..][..dim]);
            if let Some(c) = copy(0, id) {
                a.copy_from_slice(&c);
            }
            if let Some(c) = copy(1, id) {
                for d in 0..dim {
                    a[d] += c[d] - start[d];
                    copy_differs |= start[d] + (c[d] - start[d]) != c[d];
                }
                // Alone in `b`, the second thread is the step's first.
                b.copy_from_slice(&c);
            }
        }
        assert!(copy_differs, "the data must tell a copy from an added difference");
        let refs: Vec<&Overlay> = overlays.iter().collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for parts in [1, 2, 3, 7] {
            let (mut a, mut b) = (table.clone(), table.clone());
            merge_step([(&mut a, &refs), (&mut b, &refs[1..])], dim, parts);
            assert_eq!(bits(&a), bits(&want_a), "{parts} parts");
            assert_eq!(bits(&b), bits(&want_b), "{parts} parts");
        }
    }

    #[test]
    fn balanced_bounds_cover_every_id_in_order() {
        let (words, dim) = (1000, 1);
        let table = vec![0.0; words];
        let mut overlay = Overlay::new(words, dim);
        let mut rows = Overlaid { overlay: &mut overlay, table: &table };
        // Rows touched mostly among the first ids, as frequent words are.
        for id in (0..200).chain((200..1000).step_by(50)) {
            rows.load(id);
        }
        for parts in 1..5 {
            let bounds = balanced_bounds(&[&overlay], parts);
            assert_eq!(bounds.len(), parts + 1);
            assert_eq!((bounds[0], bounds[parts]), (0, words));
            assert!(bounds.windows(2).all(|w| w[0] <= w[1]), "{bounds:?}");
        }
        // Two parts: the cut is at a block of 64 ids near the middle of
        // the 216 touched rows, not at the middle of the ids.
        assert_eq!(balanced_bounds(&[&overlay], 2), [0, 128, words]);
        let empty = Overlay::new(words, dim);
        assert_eq!(balanced_bounds(&[&empty], 2), [0, words, words]);
    }

    #[test]
    fn jobs_hold_at_most_batch_words_and_cover_every_sentence() {
        let mut sentences = Sentences::new();
        for len in [3, 4, 2, 7, 1, 1] {
            sentences.push(&vec![0; len]);
        }
        let jobs = jobs(&sentences, 7);
        let ranges: Vec<_> = jobs.iter().map(|j| j.sentences.clone()).collect();
        assert_eq!(ranges, [0..2, 2..3, 3..4, 4..6]);
        let before: Vec<_> = jobs.iter().map(|j| j.words_before).collect();
        assert_eq!(before, [0, 7, 9, 16]);
    }

    #[test]
    fn steps_cut_a_job_and_keep_its_index_and_positions() {
        let mut sentences = Sentences::new();
        for len in [1, 3, 4, 2, 7, 1, 1] {
            sentences.push(&vec![0; len]);
        }
        let job = Job { index: 3, sentences: 1..7, words_before: 1 };
        let steps = steps(&sentences, &job, 5);
        let ranges: Vec<_> = steps.iter().map(|s| s.sentences.clone()).collect();
        assert_eq!(ranges, [1..2, 2..3, 3..4, 4..5, 5..7]);
        let before: Vec<_> = steps.iter().map(|s| s.words_before).collect();
        assert_eq!(before, [1, 4, 8, 10, 17]);
        assert!(steps.iter().all(|s| s.index == 3));
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }

    /// word2vec.c's `expTable` entries bit for bit, and the value read for
    /// `x`.
    #[test]
    fn sigmoid_table_is_word2vec_c_s() {
        // From word2vec.c's loop compiled with gcc (float `real`): the bits
        // of expTable[0] = σ(-6), [384], [500] = σ(0), [999] = σ(5.988),
        // and FNV-1a 64 over the little-endian bytes of all 1000 entries.
        let bits: Vec<u32> = SIGMOID_TABLE.iter().map(|x| x.to_bits()).collect();
        assert_eq!(
            [bits[0], bits[384], bits[500], bits[999]],
            [992_086_972, 1_045_159_399, 1_056_964_608, 1_065_311_233]
        );
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        for byte in bits.iter().flat_map(|b| b.to_le_bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(hash, 0x0f48_707a_72b9_484e);
        for k in -599..600 {
            let x = k as f32 * 0.01;
            let exact = 1.0 / (1.0 + (-x).exp());
            assert!((table_sigmoid(x) - exact).abs() <= 0.0031, "{x}");
            // Floored: the entry at or below x.
            assert!(table_sigmoid(x) <= exact + 1e-6, "{x}");
        }
        assert_eq!(table_sigmoid(-5.9999), SIGMOID_TABLE[0]);
        assert_eq!(table_sigmoid(5.9999), SIGMOID_TABLE[999]);
    }

    #[test]
    fn softplus_is_stable() {
        assert!((softplus(0.0) - std::f32::consts::LN_2).abs() < 1e-7);
        assert_eq!(softplus(100.0), 100.0);
        assert!(softplus(-100.0) >= 0.0 && softplus(-100.0) < 1e-30);
    }
}
