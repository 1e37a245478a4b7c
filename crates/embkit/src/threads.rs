//! [`Threads`]: how many threads a computation may use, passed as a value.
//!
//! embkit has no global thread pool and no global setting: a layer, an
//! optimizer or a query that can run in parallel takes a `Threads` value.
//! Results never depend on it: work is split so that each thread owns
//! disjoint output rows (or table rows), and partial results are merged in
//! a fixed order, so one thread and eight give the same bits.

use std::num::NonZeroUsize;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A number of threads, at least 1.
///
/// # Examples
///
/// ```
/// use embkit::Threads;
///
/// assert_eq!(Threads::single().get(), 1);
/// assert_eq!(Threads::new(2)?.get(), 2);
/// assert!(Threads::new(0).is_err());
/// assert!(Threads::available().get() >= 1);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "usize", into = "usize")]
pub struct Threads(NonZeroUsize);

impl Threads {
    /// One thread: everything runs on the caller's thread.
    pub const fn single() -> Self {
        Self(NonZeroUsize::MIN)
    }

    /// `n` threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `n` is 0.
    pub fn new(n: usize) -> Result<Self> {
        NonZeroUsize::new(n)
            .map(Self)
            .ok_or_else(|| Error::config("threads", "must be at least 1, got 0"))
    }

    /// As many threads as the machine has cores
    /// ([`std::thread::available_parallelism`]), or 1 if that is unknown.
    pub fn available() -> Self {
        Self(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// The number of threads.
    pub const fn get(self) -> usize {
        self.0.get()
    }

    /// How many parts to split `items` items into when each part should
    /// hold at least `min_per_part` of them: between 1 and
    /// [`get`](Self::get). Starting a thread costs some microseconds, so
    /// small work stays on one thread.
    pub fn parts_for(self, items: usize, min_per_part: usize) -> usize {
        (items / min_per_part.max(1)).clamp(1, self.get())
    }
}

impl Default for Threads {
    fn default() -> Self {
        Self::single()
    }
}

impl TryFrom<usize> for Threads {
    type Error = Error;

    fn try_from(n: usize) -> Result<Self> {
        Self::new(n)
    }
}

impl From<Threads> for usize {
    fn from(threads: Threads) -> usize {
        threads.get()
    }
}

impl std::fmt::Display for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Values (floats read or written) a thread should have at least before
/// work is split: about a megabyte. Starting a thread costs microseconds;
/// below this, one thread is faster.
pub const MIN_FLOATS_PER_THREAD: usize = 1 << 18;

/// Splits `0..len` into `parts` contiguous ranges of nearly equal length
/// (the first ones one longer), in order; empty ranges are left out.
///
/// # Examples
///
/// ```
/// assert_eq!(embkit::threads::split_evenly(10, 3), vec![0..4, 4..7, 7..10]);
/// assert_eq!(embkit::threads::split_evenly(2, 4), vec![0..1, 1..2]);
/// ```
pub fn split_evenly(len: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let (base, extra) = (len / parts, len % parts);
    let mut start = 0;
    (0..parts)
        .map(|k| {
            let end = start + base + usize::from(k < extra);
            let range = start..end;
            start = end;
            range
        })
        .filter(|r| !r.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_everything_once_in_order() {
        for len in 0..40 {
            for parts in 1..6 {
                let ranges = split_evenly(len, parts);
                let flat: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(flat, (0..len).collect::<Vec<_>>());
                assert!(ranges.len() <= parts);
            }
        }
    }

    #[test]
    fn small_work_stays_on_one_thread() {
        let four = Threads::new(4).unwrap();
        assert_eq!(four.parts_for(100, 1000), 1);
        assert_eq!(four.parts_for(2500, 1000), 2);
        assert_eq!(four.parts_for(1 << 20, 1000), 4);
    }

    #[test]
    fn serialises_as_a_number_and_refuses_zero() {
        assert_eq!(serde_json::to_string(&Threads::new(3).unwrap()).unwrap(), "3");
        assert!(serde_json::from_str::<Threads>("0").is_err());
    }
}
