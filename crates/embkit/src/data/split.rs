//! Seeded shuffles and splits of a data set's indices: by ratio, k-fold,
//! and leave-last-out by timestamp. Each returns indices; apply them with
//! `subset` ([`Interactions::subset`](super::Interactions::subset),
//! [`LabelledTexts::subset`](super::LabelledTexts::subset)).

use std::collections::HashMap;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use crate::{Error, Result};

/// Two disjoint sets of indices, each in increasing order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// The indices to train on.
    pub train: Vec<usize>,
    /// The indices held out.
    pub test: Vec<usize>,
}

/// `0..n` in a random order drawn from `seed`: the same seed gives the
/// same order.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

/// Holds out `round(n · test_fraction)` random samples (at least one of
/// each side), drawn from `seed`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if `test_fraction` is not strictly between 0
/// and 1 or `n` is below 2.
///
/// # Examples
///
/// ```
/// use embkit::data::ratio_split;
///
/// let split = ratio_split(10, 0.2, 7)?;
/// assert_eq!((split.train.len(), split.test.len()), (8, 2));
/// assert_eq!(split, ratio_split(10, 0.2, 7)?);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn ratio_split(n: usize, test_fraction: f64, seed: u64) -> Result<Split> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::config(
            "test_fraction",
            format!("must be strictly between 0 and 1, got {test_fraction}"),
        ));
    }
    if n < 2 {
        return Err(Error::config("samples", format!("a split needs at least 2, got {n}")));
    }
    let test = ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1);
    let order = shuffled_indices(n, seed);
    Ok(sorted_split(order[test..].to_vec(), order[..test].to_vec()))
}

/// `k` folds of a seeded shuffle of `0..n`: fold `i` holds out the `i`-th
/// of `k` nearly equal parts (sizes differ by at most one) and trains on
/// the rest. Every index is held out exactly once.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if `k` is below 2 or above `n`.
///
/// # Examples
///
/// ```
/// use embkit::data::k_fold;
///
/// let folds = k_fold(10, 3, 0)?;
/// assert_eq!(folds.iter().map(|f| f.test.len()).collect::<Vec<_>>(), [3, 3, 4]);
/// let mut held_out: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
/// held_out.sort();
/// assert_eq!(held_out, (0..10).collect::<Vec<_>>());
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn k_fold(n: usize, k: usize, seed: u64) -> Result<Vec<Split>> {
    if k < 2 || k > n {
        return Err(Error::config(
            "k",
            format!("must be at least 2 and at most the {n} samples, got {k}"),
        ));
    }
    let order = shuffled_indices(n, seed);
    Ok((0..k)
        .map(|i| {
            let (start, end) = (i * n / k, (i + 1) * n / k);
            let test = order[start..end].to_vec();
            let train = order[..start].iter().chain(&order[end..]).copied().collect();
            sorted_split(train, test)
        })
        .collect())
}

/// Holds out each user's last interaction: the one with the greatest
/// timestamp, the later row on a tie. Users with a single interaction
/// keep it for training, so every held-out user is also a training user.
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if `users` and `timestamps` differ in length.
///
/// # Examples
///
/// ```
/// use embkit::data::leave_last_out;
///
/// //           user 0     user 1  user 2
/// let users = [0, 1, 0, 0, 1, 2];
/// let times = [5, 9, 7, 6, 3, 1];
/// let split = leave_last_out(&users, &times)?;
/// assert_eq!(split.test, [1, 2]); // user 0 at time 7, user 1 at time 9
/// assert_eq!(split.train, [0, 3, 4, 5]);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn leave_last_out(users: &[u32], timestamps: &[i64]) -> Result<Split> {
    if users.len() != timestamps.len() {
        return Err(Error::shape(
            "timestamps",
            format!("[{}], one per interaction", users.len()),
            &[timestamps.len()],
        ));
    }
    // Per user: (index of the latest interaction, number of interactions).
    let mut last: HashMap<u32, (usize, usize)> = HashMap::new();
    for (i, (&u, &t)) in users.iter().zip(timestamps).enumerate() {
        let entry = last.entry(u).or_insert((i, 0));
        entry.1 += 1;
        if t >= timestamps[entry.0] {
            entry.0 = i;
        }
    }
    let mut held = vec![false; users.len()];
    for &(i, count) in last.values() {
        if count > 1 {
            held[i] = true;
        }
    }
    let (test, train): (Vec<usize>, Vec<usize>) = (0..users.len()).partition(|&i| held[i]);
    Ok(Split { train, test })
}

fn sorted_split(mut train: Vec<usize>, mut test: Vec<usize>) -> Split {
    train.sort_unstable();
    test.sort_unstable();
    Split { train, test }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_refuse_impossible_settings() {
        assert!(ratio_split(10, 0.0, 0).is_err());
        assert!(ratio_split(10, 1.0, 0).is_err());
        assert!(ratio_split(1, 0.5, 0).is_err());
        assert!(k_fold(3, 4, 0).is_err());
        assert!(k_fold(3, 1, 0).is_err());
        assert!(leave_last_out(&[0, 1], &[0]).is_err());
    }

    #[test]
    fn a_ratio_split_keeps_one_sample_on_each_side() {
        let s = ratio_split(3, 0.01, 1).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (2, 1));
        let s = ratio_split(3, 0.99, 1).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (1, 2));
    }

    #[test]
    fn different_seeds_shuffle_differently() {
        assert_ne!(shuffled_indices(100, 1), shuffled_indices(100, 2));
        assert_eq!(shuffled_indices(100, 1), shuffled_indices(100, 1));
    }
}
