//! [`ShuffledBatches`]: batches from a stream of rows, shuffled through a
//! bounded buffer, for data larger than memory.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::{Error, Result};

/// Batches of `batch_size` rows from any iterator of rows (for example
/// [`Interactions::rows`](super::Interactions::rows) over a file larger
/// than memory), shuffled through a buffer of `buffer_size` rows as
/// TensorFlow's `Dataset.shuffle(buffer_size).batch(batch_size)` does.
///
/// The buffer is filled first; then each output row is drawn uniformly
/// from the buffer and its place refilled from the source. A buffer of at
/// least the number of rows gives a uniform shuffle; a buffer of 1 keeps
/// the source's order. Memory is `buffer_size` rows. The order depends
/// only on the source and the seed. The last batch may be shorter.
///
/// An error from the source is passed on as soon as it is read, and ends
/// the batches.
///
/// # Examples
///
/// ```
/// use embkit::data::ShuffledBatches;
///
/// let rows = (0..10).map(Ok::<u32, embkit::Error>);
/// let batches: Vec<Vec<u32>> = ShuffledBatches::new(rows, 4, 3, 42)?
///     .collect::<embkit::Result<_>>()?;
/// assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
/// let mut all: Vec<u32> = batches.concat();
/// all.sort();
/// assert_eq!(all, (0..10).collect::<Vec<_>>());
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug)]
pub struct ShuffledBatches<I, T> {
    source: I,
    buffer: Vec<T>,
    buffer_size: usize,
    batch_size: usize,
    rng: StdRng,
    exhausted: bool,
    failed: bool,
}

impl<I, T> ShuffledBatches<I, T>
where
    I: Iterator<Item = Result<T>>,
{
    /// Batches of `batch_size` rows of `source`, shuffled through
    /// `buffer_size` rows with `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `buffer_size` or `batch_size` is 0.
    pub fn new(source: I, buffer_size: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if buffer_size == 0 {
            return Err(Error::config("buffer_size", "must be at least 1, got 0"));
        }
        if batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        Ok(Self {
            source,
            buffer: Vec::with_capacity(buffer_size.min(1 << 20)),
            buffer_size,
            batch_size,
            rng: StdRng::seed_from_u64(seed),
            exhausted: false,
            failed: false,
        })
    }

    /// Tops the buffer up from the source.
    fn fill(&mut self) -> Result<()> {
        while !self.exhausted && self.buffer.len() < self.buffer_size {
            match self.source.next() {
                Some(row) => self.buffer.push(row?),
                None => self.exhausted = true,
            }
        }
        Ok(())
    }
}

impl<I, T> Iterator for ShuffledBatches<I, T>
where
    I: Iterator<Item = Result<T>>,
{
    type Item = Result<Vec<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut batch = Vec::with_capacity(self.batch_size);
        while batch.len() < self.batch_size {
            if let Err(err) = self.fill() {
                self.failed = true;
                return Some(Err(err));
            }
            if self.buffer.is_empty() {
                break;
            }
            let pick = self.rng.random_range(0..self.buffer.len());
            batch.push(self.buffer.swap_remove(pick));
        }
        (!batch.is_empty()).then_some(Ok(batch))
    }
}
