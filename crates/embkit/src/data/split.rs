//! Seeded shuffles and splits of a data set's indices: by ratio (plain or
//! stratified by label), k-fold, and leave-last-out by timestamp. Each
//! returns indices; apply them with `subset`
//! ([`Interactions::subset`](super::Interactions::subset),
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

/// Holds out `round(n · test_fraction)` of the `n` samples (at least one,
/// at most `n - 1`), shared among the classes in proportion to their
/// sizes, as scikit-learn's `train_test_split(stratify=labels)`: each
/// class of `c` samples gives `floor(c · test_fraction)`, and the samples
/// left go to the classes with the largest remainders (the first class on
/// a tie). Which samples of a class are held out is drawn from `seed`. So
/// both sides have the classes in the same proportions whatever the order
/// of the data (a file sorted by label included). Every class keeps at
/// least one sample for training, so fewer may be held out than asked.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if `test_fraction` is not strictly between 0
/// and 1, there are fewer than 2 labels, or every class has a single
/// sample (nothing can be held out without leaving a class out of
/// training).
///
/// # Examples
///
/// ```
/// use embkit::data::stratified_split;
///
/// // Grouped by label: the tail of the file would hold out only "neg".
/// let labels = ["pos", "pos", "pos", "pos", "pos", "neg", "neg", "neg", "neg", "neg"];
/// let split = stratified_split(&labels, 0.4, 7)?;
/// let held: Vec<&str> = split.test.iter().map(|&i| labels[i]).collect();
/// assert_eq!(held.iter().filter(|&&l| l == "pos").count(), 2);
/// assert_eq!(held.iter().filter(|&&l| l == "neg").count(), 2);
/// assert_eq!(split, stratified_split(&labels, 0.4, 7)?);
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn stratified_split<L: Eq + std::hash::Hash>(
    labels: &[L],
    test_fraction: f64,
    seed: u64,
) -> Result<Split> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::config(
            "test_fraction",
            format!("must be strictly between 0 and 1, got {test_fraction}"),
        ));
    }
    let n = labels.len();
    if n < 2 {
        return Err(Error::config("samples", format!("a split needs at least 2, got {n}")));
    }
    // The indices of each class, classes in order of first appearance.
    let mut class_of: HashMap<&L, usize> = HashMap::new();
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let next = classes.len();
        let c = *class_of.entry(label).or_insert(next);
        if c == next {
            classes.push(Vec::new());
        }
        classes[c].push(i);
    }
    // A class can give all but one of its samples.
    let room: Vec<usize> = classes.iter().map(|members| members.len() - 1).collect();
    let capacity: usize = room.iter().sum();
    if capacity == 0 {
        return Err(Error::config(
            "samples",
            format!(
                "each of the {} classes has a single sample: holding one out would leave its \
                 class out of training",
                classes.len()
            ),
        ));
    }
    let wanted = ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1).min(capacity);
    let exact: Vec<f64> = classes.iter().map(|m| m.len() as f64 * test_fraction).collect();
    let mut held: Vec<usize> =
        exact.iter().zip(&room).map(|(&e, &r)| (e.floor() as usize).min(r)).collect();
    // The rest, one each to the classes with the largest remainders (then
    // the first), as long as they have room; `wanted <= capacity` ends it.
    let mut order: Vec<usize> = (0..classes.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    while held.iter().sum::<usize>() < wanted {
        for &c in &order {
            if held.iter().sum::<usize>() < wanted && held[c] < room[c] {
                held[c] += 1;
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::with_capacity(n), Vec::new());
    for (members, &t) in classes.iter_mut().zip(&held) {
        members.shuffle(&mut rng);
        test.extend_from_slice(&members[..t]);
        train.extend_from_slice(&members[t..]);
    }
    Ok(sorted_split(train, test))
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

/// SplitMix64's finaliser (Steele, Lea and Flood): a bijective mix of 64
/// bits, for seeded hashes that must not depend on a crate's version
/// (hash-based hold-outs, hashed bigrams, word2vec's random streams).
#[inline(always)]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
    fn a_stratified_split_holds_out_each_class_in_proportion() {
        // 300 of class 0, then 100 of class 1, then 10 of class 2.
        let labels: Vec<u32> = [(0u32, 300), (1, 100), (2, 10)]
            .iter()
            .flat_map(|&(c, k)| std::iter::repeat_n(c, k))
            .collect();
        let s = stratified_split(&labels, 0.25, 3).unwrap();
        let count = |idx: &[usize], c: u32| idx.iter().filter(|&&i| labels[i] == c).count();
        // round(300·0.25) = 75, round(100·0.25) = 25, round(10·0.25) = round(2.5) = 3.
        assert_eq!([0, 1, 2].map(|c| count(&s.test, c)), [75, 25, 3]);
        assert_eq!([0, 1, 2].map(|c| count(&s.train, c)), [225, 75, 7]);
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
        assert!(s.train.windows(2).all(|w| w[0] < w[1]) && s.test.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, stratified_split(&labels, 0.25, 3).unwrap());
        assert_ne!(s.test, stratified_split(&labels, 0.25, 4).unwrap().test);
    }

    #[test]
    fn a_stratified_split_holds_out_the_fraction_of_many_small_classes() {
        // 50 classes of 2 at 0.25: 25 held out (rounding each class would
        // hold out 50), the remainders all equal: the first 25 classes.
        let labels: Vec<u32> = (0..100).map(|i| i / 2).collect();
        let s = stratified_split(&labels, 0.25, 1).unwrap();
        assert_eq!(s.test.len(), 25);
        let mut held: Vec<u32> = s.test.iter().map(|&i| labels[i]).collect();
        held.sort_unstable();
        assert_eq!(held, (0..25).collect::<Vec<u32>>());
        // Classes of 3 at 0.2 (60 samples): 12 held out, not 20.
        let labels: Vec<u32> = (0..60).map(|i| i / 3).collect();
        assert_eq!(stratified_split(&labels, 0.2, 1).unwrap().test.len(), 12);
    }

    #[test]
    fn a_stratified_split_keeps_every_class_in_training() {
        // A single sample of "b" stays in training; 0.99 of "a" leaves one.
        let s = stratified_split(&["a", "a", "a", "b"], 0.99, 0).unwrap();
        assert_eq!(s.train.len(), 2);
        assert!(s.train.contains(&3));
        // Rounding holds out nothing: one sample, from a class with room.
        let s = stratified_split(&["x", "y", "y", "z"], 0.1, 0).unwrap();
        assert_eq!(s.test.len(), 1);
        assert!(s.test[0] == 1 || s.test[0] == 2);
        // Every class a singleton: nothing can be held out.
        let err = stratified_split(&["x", "y"], 0.1, 0).unwrap_err().to_string();
        assert!(err.contains("each of the 2 classes has a single sample"), "{err}");
        assert!(stratified_split(&["x"], 0.5, 0).is_err());
        assert!(stratified_split(&["x", "y"], 0.0, 0).is_err());
        assert!(stratified_split(&["x", "y"], 1.0, 0).is_err());
    }

    #[test]
    fn different_seeds_shuffle_differently() {
        assert_ne!(shuffled_indices(100, 1), shuffled_indices(100, 2));
        assert_eq!(shuffled_indices(100, 1), shuffled_indices(100, 1));
    }
}
