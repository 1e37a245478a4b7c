//! The backward of a gather: sort the batch's positions by id (a stable
//! radix sort, no hash map), then sum each id's upstream rows, in batch
//! order, into one row.

/// Below this many ids a comparison sort beats the radix sort's passes.
const RADIX_MIN_LEN: usize = 64;

/// Bits of the id sorted per radix pass: 8 (256 buckets) for small
/// batches, where clearing and summing the histogram would dominate, 11
/// (2048 buckets, still in the L1 cache) for large ones, which then need
/// fewer passes.
fn digit_bits(len: usize) -> u32 {
    if len < 16_384 {
        8
    } else {
        11
    }
}

/// Reusable buffers of [`counting_sort_by_id`].
#[derive(Debug, Clone, Default)]
pub(crate) struct SortScratch {
    keys: Vec<u64>,
    tmp: Vec<u64>,
    histogram: Vec<u32>,
}

/// Sorts the positions of `ids` by id, stably (equal ids keep their batch
/// order). Returns one key per position, `(id << 32) | position`, in
/// sorted order.
///
/// A least-significant-digit radix sort over only the bits the largest id
/// needs: two passes for a table of up to 4 million rows.
pub(crate) fn counting_sort_by_id<'a>(ids: &[u32], scratch: &'a mut SortScratch) -> &'a [u64] {
    assert!(ids.len() <= u32::MAX as usize, "at most 2^32 positions");
    let SortScratch { keys, tmp, histogram } = scratch;
    keys.clear();
    keys.extend(ids.iter().enumerate().map(|(i, &id)| (u64::from(id) << 32) | i as u64));
    if ids.len() < RADIX_MIN_LEN {
        // Positions are unique, so an unstable sort of the keys is stable
        // in the ids.
        keys.sort_unstable();
        return keys;
    }
    let max = ids.iter().copied().fold(0, u32::max);
    let bits = u32::BITS - max.leading_zeros();
    let digit_bits = digit_bits(keys.len());
    let buckets = 1usize << digit_bits;
    tmp.resize(keys.len(), 0);
    let mut shift = 32;
    while shift < 32 + bits {
        histogram.clear();
        histogram.resize(buckets, 0);
        let digit = |key: u64| ((key >> shift) as usize) & (buckets - 1);
        for &key in keys.iter() {
            histogram[digit(key)] += 1;
        }
        let mut sum = 0;
        for count in histogram.iter_mut() {
            let c = *count;
            *count = sum;
            sum += c;
        }
        for &key in keys.iter() {
            let slot = &mut histogram[digit(key)];
            tmp[*slot as usize] = key;
            *slot += 1;
        }
        std::mem::swap(keys, tmp);
        shift += digit_bits;
    }
    keys
}

impl SortScratch {
    /// The keys of the last [`counting_sort_by_id`], sorted.
    pub(crate) fn keys(&self) -> &[u64] {
        &self.keys
    }
}

/// The id of a sorted key.
#[inline(always)]
pub(crate) fn key_id(key: u64) -> u32 {
    (key >> 32) as u32
}

/// The batch position of a sorted key.
#[inline(always)]
pub(crate) fn key_position(key: u64) -> usize {
    (key & u64::from(u32::MAX)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn radix_sort_is_a_stable_sort_by_id() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut scratch = SortScratch::default();
        for (len, rows) in [
            (0, 1),
            (5, 3),
            (63, 9),
            (64, 50),
            (640, 10_000),
            (5000, 1 << 20),
            (20_000, 1 << 20),
            (4000, 7),
        ] {
            let ids: Vec<u32> = (0..len).map(|_| rng.random_range(0..rows)).collect();
            let mut expected: Vec<usize> = (0..len).collect();
            expected.sort_by_key(|&i| ids[i]);
            let keys = counting_sort_by_id(&ids, &mut scratch);
            let got: Vec<usize> = keys.iter().map(|&k| key_position(k)).collect();
            assert_eq!(got, expected, "len {len}, rows {rows}");
            assert!(keys.iter().all(|&k| key_id(k) == ids[key_position(k)]));
        }
    }

    #[test]
    fn ids_up_to_u32_max_sort() {
        let ids: Vec<u32> = (0..2000).map(|i| u32::MAX - (i % 7) as u32 * 1_000_003).collect();
        let mut scratch = SortScratch::default();
        let keys = counting_sort_by_id(&ids, &mut scratch);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
