//! [`InteractionStream`]: a ratings file read from disk again for each
//! epoch, through a shuffle buffer, for training on files larger than
//! memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array2, ArrayD, IxDyn};

use super::split::mix64;
use super::{DataOptions, DataReport, Interactions, KeyIndex, ShuffledBatches};
use crate::model::{Batch, BatchStream};
use crate::{Error, Result};

/// Which rows of its file a stream gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Every row whose user and item are known.
    All,
    /// The rows not held out.
    Kept,
    /// The rows held out for validation.
    HeldOut,
}

/// The users and items of a stream's training rows, shared by the
/// streams that map keys with them.
#[derive(Debug)]
struct Keys {
    users: KeyIndex,
    items: KeyIndex,
}

/// The ratings of an interactions file (the format of [`Interactions`]) as
/// batches for [`fit_stream`](crate::fit_stream) and
/// [`evaluate_stream`](crate::evaluate_stream), read from the file again
/// for each pass, so memory is the key indexes, a shuffle buffer and a
/// batch, whatever the size of the file.
///
/// [`open`](Self::open) reads the file once to index its users and items
/// (in order of first appearance, as [`Interactions::read`]) and to count
/// its rows, their mean and range. It can hold out a fraction of the rows
/// for validation: a row is held out when a seeded hash of its position
/// falls below the fraction, so the same rows are held out on every pass
/// without keeping a list of them. Each pass then reads the rows through
/// a shuffle buffer ([`ShuffledBatches`]) seeded by the seed and the
/// epoch: a buffer of at least the number of rows is a full shuffle, a
/// smaller one shuffles within reach (as TensorFlow's
/// `Dataset.shuffle(buffer_size)`).
///
/// The file must not change between passes: rows are held out by their
/// position, so a pass that finds other rows (more, fewer, or a user or
/// item the first reading did not index) ends with an error.
///
/// A batch is `[n, 2]` ids (user, item) and `[n, 1]` ratings, as
/// [`Interactions::ids`] and [`Interactions::targets`], for a
/// [`MatrixFactorization`](crate::model::MatrixFactorization).
///
/// # Examples
///
/// ```
/// use embkit::data::{DataOptions, InteractionStream};
/// use embkit::BatchStream;
///
/// let dir = std::env::temp_dir().join(format!("embkit-doc-stream-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("u.data");
/// std::fs::write(&path, "1\t10\t4\n1\t20\t3\n2\t10\t5\n3\t30\t1\n")?;
/// let (mut train, validation) = InteractionStream::open(&path, &DataOptions::new(), 0.0, 7)?;
/// assert!(validation.is_none());
/// assert_eq!((train.len(), train.users().len(), train.items().len()), (4, 3, 3));
/// assert_eq!(train.mean_rating(), 3.25);
/// train = train.with_batch_size(3)?.with_buffer_size(2)?;
/// let sizes: Vec<usize> =
///     train.batches(1)?.map(|b| b.map(|b| b.ids.nrows())).collect::<embkit::Result<_>>()?;
/// assert_eq!(sizes, [3, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InteractionStream {
    path: PathBuf,
    options: DataOptions,
    keys: Arc<Keys>,
    part: Part,
    hold_out: f64,
    seed: u64,
    batch_size: usize,
    buffer_size: usize,
    rows: usize,
    unknown: usize,
    mean_rating: f32,
    rating_range: Option<(f32, f32)>,
    report: DataReport,
}

/// Whether the `index`-th row is held out: a 53-bit hash of the seed and
/// the index below `fraction`.
fn held_out(seed: u64, index: usize, fraction: f64) -> bool {
    let h = mix64(mix64(seed) ^ index as u64);
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// Widens `range` (lowest, highest) to hold `rating`.
fn widen(range: &mut Option<(f32, f32)>, rating: f32) {
    let (lo, hi) = range.unwrap_or((rating, rating));
    *range = Some((lo.min(rating), hi.max(rating)));
}

impl InteractionStream {
    /// Samples per batch unless set: MatrixFactorization's default.
    pub const DEFAULT_BATCH_SIZE: usize = 64;
    /// Rows of the shuffle buffer unless set.
    pub const DEFAULT_BUFFER_SIZE: usize = 1 << 20;

    /// Reads `path` once and returns the stream of its training rows and,
    /// when `validation_fraction` is above 0, the stream of the rows held
    /// out for validation (a seeded hash sample of about that fraction,
    /// see the [type docs](Self)). The users and items of every row are
    /// indexed (as [`Interactions::read`] before a split); the mean rating
    /// is the training rows'.
    ///
    /// # Errors
    ///
    /// - the errors of [`Interactions::read`] (a bad row with its file
    ///   and line unless [`DataOptions::skip_bad_rows`], no rows, I/O);
    /// - [`Error::InvalidConfig`] for a fraction outside `[0, 1)`;
    /// - [`Error::EmptyData`] if no row is left for training, or none is
    ///   held out when a fraction above 0 asks for some.
    pub fn open(
        path: impl AsRef<Path>,
        options: &DataOptions,
        validation_fraction: f64,
        seed: u64,
    ) -> Result<(Self, Option<Self>)> {
        if !(0.0..1.0).contains(&validation_fraction) {
            return Err(Error::config(
                "validation_fraction",
                format!("must be in [0, 1), got {validation_fraction}"),
            ));
        }
        let path = path.as_ref();
        let mut rows = Interactions::rows(path, options)?;
        let (mut users, mut items) = (KeyIndex::new(), KeyIndex::new());
        let (mut kept, mut held, mut sum) = (0usize, 0usize, 0f64);
        let mut range: Option<(f32, f32)> = None;
        for (index, row) in rows.by_ref().enumerate() {
            let row = row?;
            users.insert(&row.user)?;
            items.insert(&row.item)?;
            widen(&mut range, row.rating);
            if held_out(seed, index, validation_fraction) {
                held += 1;
            } else {
                kept += 1;
                sum += f64::from(row.rating);
            }
        }
        let report = rows.into_report();
        if kept == 0 {
            return Err(Error::EmptyData {
                what: format!(
                    "{}: no training rows ({held} held out for validation)",
                    path.display()
                ),
            });
        }
        if validation_fraction > 0.0 && held == 0 {
            return Err(Error::EmptyData {
                what: format!(
                    "validation sample of {}: a fraction of {validation_fraction} of its {kept} \
                     rows selects none; raise it, or use 0 for no validation",
                    path.display()
                ),
            });
        }
        let keys = Arc::new(Keys { users, items });
        let stream = |part, rows, report| Self {
            path: path.to_path_buf(),
            options: options.clone(),
            keys: Arc::clone(&keys),
            part,
            hold_out: validation_fraction,
            seed,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            buffer_size: Self::DEFAULT_BUFFER_SIZE,
            rows,
            unknown: 0,
            mean_rating: (sum / kept as f64) as f32,
            rating_range: range,
            report,
        };
        if validation_fraction == 0.0 {
            return Ok((stream(Part::All, kept, report), None));
        }
        let train = stream(Part::Kept, kept, report);
        // Order does not matter to scoring: the held-out rows in file order.
        let validation =
            Self { buffer_size: 1, ..stream(Part::HeldOut, held, DataReport::default()) };
        Ok((train, Some(validation)))
    }

    /// A stream of another file (validation or test ratings) with this
    /// stream's users and items: rows with a user or item it does not know
    /// are left out, counted in [`unknown`](Self::unknown). Reads the file
    /// once to count them. Batches keep this stream's size and seed, with
    /// a shuffle buffer of one (the file's order).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`Error::EmptyData`] if no row has a known
    /// user and item.
    pub fn with_keys_of(&self, path: impl AsRef<Path>, options: &DataOptions) -> Result<Self> {
        let path = path.as_ref();
        let mut rows = Interactions::rows(path, options)?;
        let (mut known, mut unknown, mut sum) = (0usize, 0usize, 0f64);
        let mut range: Option<(f32, f32)> = None;
        for row in rows.by_ref() {
            let row = row?;
            if self.keys.users.id(&row.user).is_none() || self.keys.items.id(&row.item).is_none() {
                unknown += 1;
                continue;
            }
            known += 1;
            sum += f64::from(row.rating);
            widen(&mut range, row.rating);
        }
        if known == 0 {
            return Err(Error::EmptyData {
                what: format!(
                    "{}: no rating of a known user and item ({unknown} unknown)",
                    path.display()
                ),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            options: options.clone(),
            keys: Arc::clone(&self.keys),
            part: Part::All,
            hold_out: 0.0,
            seed: self.seed,
            batch_size: self.batch_size,
            buffer_size: 1,
            rows: known,
            unknown,
            mean_rating: (sum / known as f64) as f32,
            rating_range: range,
            report: rows.into_report(),
        })
    }

    /// Sets the samples per batch.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for 0.
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// Sets the rows of the shuffle buffer (1 keeps the file's order).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for 0.
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Result<Self> {
        if buffer_size == 0 {
            return Err(Error::config("buffer_size", "must be at least 1, got 0"));
        }
        self.buffer_size = buffer_size;
        Ok(self)
    }

    /// The users, in id order.
    pub fn users(&self) -> &KeyIndex {
        &self.keys.users
    }

    /// The items, in id order.
    pub fn items(&self) -> &KeyIndex {
        &self.keys.items
    }

    /// The ratings of a pass.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether a pass has no ratings (never, for a stream that opened).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Rows left out for a user or item that is not known
    /// ([`with_keys_of`](Self::with_keys_of)).
    pub fn unknown(&self) -> usize {
        self.unknown
    }

    /// The mean rating of the training rows ([`open`](Self::open): of the
    /// rows not held out, for both streams; [`with_keys_of`](Self::with_keys_of):
    /// of the known rows of its file).
    pub fn mean_rating(&self) -> f32 {
        self.mean_rating
    }

    /// The lowest and highest rating of the file (of its known rows for
    /// [`with_keys_of`](Self::with_keys_of)).
    pub fn rating_range(&self) -> Option<(f32, f32)> {
        self.rating_range
    }

    /// What the first reading of the file skipped (empty for a held-out
    /// stream: its training stream has the report).
    pub fn report(&self) -> &DataReport {
        &self.report
    }
}

/// The rows of one pass of an [`InteractionStream`] as ids, checked
/// against the first reading: a file that changed since (rows added,
/// removed or with new keys) would move rows between training and
/// validation, so it ends the pass with an error.
struct PassRows<'a> {
    rows: crate::data::Rows<super::Interaction>,
    stream: &'a InteractionStream,
    index: usize,
    yielded: usize,
    done: bool,
}

impl PassRows<'_> {
    fn changed(&mut self, what: String) -> Option<Result<(u32, u32, f32)>> {
        self.done = true;
        Some(Err(Error::InvalidState(format!(
            "{} changed since it was first read ({what}); open the stream again",
            self.stream.path.display()
        ))))
    }
}

impl Iterator for PassRows<'_> {
    type Item = Result<(u32, u32, f32)>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.stream;
        while !self.done {
            let row = match self.rows.next() {
                Some(Ok(row)) => row,
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                None if self.yielded != s.rows => {
                    let what = format!("{} ratings then, {} now", s.rows, self.yielded);
                    return self.changed(what);
                }
                None => return None,
            };
            let index = self.index;
            self.index += 1;
            let wanted = match s.part {
                Part::All => true,
                Part::Kept => !held_out(s.seed, index, s.hold_out),
                Part::HeldOut => held_out(s.seed, index, s.hold_out),
            };
            if !wanted {
                continue;
            }
            match (s.keys.users.id(&row.user), s.keys.items.id(&row.item)) {
                (Some(user), Some(item)) => {
                    self.yielded += 1;
                    return Some(Ok((user, item, row.rating)));
                }
                // Another file's unknown users and items are left out...
                _ if s.unknown > 0 => {}
                // ...the indexed file's are all known, unless it changed.
                _ => {
                    let what = format!("user {:?} or item {:?} is new", row.user, row.item);
                    return self.changed(what);
                }
            }
        }
        None
    }
}

impl BatchStream for InteractionStream {
    fn batches(&mut self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let rows = Interactions::rows(&self.path, &self.options)?;
        let source = PassRows { rows, stream: self, index: 0, yielded: 0, done: false };
        let shuffle_seed = mix64(self.seed ^ (epoch as u64).rotate_left(32));
        let batches =
            ShuffledBatches::new(source, self.buffer_size, self.batch_size, shuffle_seed)?;
        Ok(Box::new(batches.map(|batch| {
            let batch = batch?;
            let ids: Vec<u32> = batch.iter().flat_map(|&(u, i, _)| [u, i]).collect();
            let ratings: Vec<f32> = batch.iter().map(|&(_, _, r)| r).collect();
            Ok(Batch {
                ids: Array2::from_shape_vec((batch.len(), 2), ids).expect("two ids per row"),
                targets: ArrayD::from_shape_vec(IxDyn(&[batch.len(), 1]), ratings)
                    .expect("one rating per row"),
            })
        })))
    }

    fn num_batches(&self) -> Option<usize> {
        Some(self.rows.div_ceil(self.batch_size))
    }
}
