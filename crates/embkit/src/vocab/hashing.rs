//! Hashing values into bins, as Keras's `Hashing` layer, and the two hash
//! functions TensorFlow uses for it and for the OOV buckets of
//! `StringLookup`/`IntegerLookup`:
//!
//! - [`fingerprint64`]: FarmHash `Fingerprint64` (`farmhashna::Hash64` of
//!   Google's farmhash), behind `tf.strings.to_hash_bucket_fast`;
//! - [`siphash24`]: SipHash-2-4 keyed with two 64-bit words, behind
//!   `tf.strings.to_hash_bucket_strong`.
//!
//! Both are written here in plain Rust, byte for byte as the C++ originals,
//! and pinned in the tests against values printed by TensorFlow.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

fn fetch64(s: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(b)
}

fn fetch32(s: &[u8], at: usize) -> u64 {
    let mut b = [0; 4];
    b.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(b))
}

fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

fn hash_len16(u: u64, v: u64, mul: u64) -> u64 {
    let mut a = (u ^ v).wrapping_mul(mul);
    a ^= a >> 47;
    let mut b = (v ^ a).wrapping_mul(mul);
    b ^= b >> 47;
    b.wrapping_mul(mul)
}

fn hash_len0to16(s: &[u8]) -> u64 {
    let len = s.len();
    if len >= 8 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch64(s, 0).wrapping_add(K2);
        let b = fetch64(s, len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        return hash_len16(c, d, mul);
    }
    if len >= 4 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch32(s, 0);
        return hash_len16((len as u64).wrapping_add(a << 3), fetch32(s, len - 4), mul);
    }
    if len > 0 {
        let a = u64::from(s[0]);
        let b = u64::from(s[len >> 1]);
        let c = u64::from(s[len - 1]);
        let y = a + (b << 8);
        let z = len as u64 + (c << 2);
        return shift_mix(y.wrapping_mul(K2) ^ z.wrapping_mul(K0)).wrapping_mul(K2);
    }
    K2
}

fn hash_len17to32(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    hash_len16(
        a.wrapping_add(b).rotate_right(43).wrapping_add(c.rotate_right(30)).wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18)).wrapping_add(c),
        mul,
    )
}

fn hash_len33to64(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K2);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    let y = a.wrapping_add(b).rotate_right(43).wrapping_add(c.rotate_right(30)).wrapping_add(d);
    let z = hash_len16(y, a.wrapping_add(b.wrapping_add(K2).rotate_right(18)).wrapping_add(c), mul);
    let e = fetch64(s, 16).wrapping_mul(mul);
    let f = fetch64(s, 24);
    let g = y.wrapping_add(fetch64(s, len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(fetch64(s, len - 24)).wrapping_mul(mul);
    hash_len16(
        e.wrapping_add(f).rotate_right(43).wrapping_add(g.rotate_right(30)).wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18)).wrapping_add(g),
        mul,
    )
}

/// Farmhash's `WeakHashLen32WithSeeds` on the 32 bytes at `s[at..]`.
fn weak_hash_len32_with_seeds(s: &[u8], at: usize, a: u64, b: u64) -> (u64, u64) {
    let (w, x, y, z) =
        (fetch64(s, at), fetch64(s, at + 8), fetch64(s, at + 16), fetch64(s, at + 24));
    let mut a = a.wrapping_add(w);
    let mut b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x).wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// FarmHash `Fingerprint64` of `bytes`: `farmhashna::Hash64` of Google's
/// farmhash, the hash of TensorFlow's `tf.strings.to_hash_bucket_fast`
/// (which takes it modulo the number of buckets) and of Keras's `Hashing`
/// without a salt.
///
/// The value is fixed by farmhash's specification: the same on every
/// platform and in every version.
///
/// # Examples
///
/// ```
/// use embkit::vocab::fingerprint64;
///
/// // tf.strings.to_hash_bucket_fast(["hello"], 2**63 - 1)
/// assert_eq!(fingerprint64(b"hello") % (i64::MAX as u64), 3786372426573024489);
/// ```
pub fn fingerprint64(bytes: &[u8]) -> u64 {
    let s = bytes;
    let len = s.len();
    if len <= 16 {
        return hash_len0to16(s);
    }
    if len <= 32 {
        return hash_len17to32(s);
    }
    if len <= 64 {
        return hash_len33to64(s);
    }
    // Over 64 bytes: 64-byte blocks with 56 bytes of state (v, w, x, y, z).
    const SEED: u64 = 81;
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let mut v = (0u64, 0u64);
    let mut w = (0u64, 0u64);
    x = x.wrapping_mul(K2).wrapping_add(fetch64(s, 0));
    // After the loop, 1 to 64 bytes are left.
    let end = ((len - 1) / 64) * 64;
    let last64 = len - 64;
    let mut at = 0;
    while at != end {
        x = x.wrapping_add(y).wrapping_add(v.0).wrapping_add(fetch64(s, at + 8)).rotate_right(37);
        x = x.wrapping_mul(K1);
        y = y.wrapping_add(v.1).wrapping_add(fetch64(s, at + 48)).rotate_right(42).wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(fetch64(s, at + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_len32_with_seeds(s, at, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(
            s,
            at + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(fetch64(s, at + 16)),
        );
        std::mem::swap(&mut z, &mut x);
        at += 64;
    }
    let mul = K1.wrapping_add((z & 0xff) << 1);
    let at = last64;
    w.0 = w.0.wrapping_add(((len - 1) & 63) as u64);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x.wrapping_add(y).wrapping_add(v.0).wrapping_add(fetch64(s, at + 8)).rotate_right(37);
    x = x.wrapping_mul(mul);
    y = y.wrapping_add(v.1).wrapping_add(fetch64(s, at + 48)).rotate_right(42).wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y.wrapping_add(v.0.wrapping_mul(9)).wrapping_add(fetch64(s, at + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_len32_with_seeds(s, at, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_len32_with_seeds(
        s,
        at + 32,
        z.wrapping_add(w.1),
        y.wrapping_add(fetch64(s, at + 16)),
    );
    std::mem::swap(&mut z, &mut x);
    hash_len16(
        hash_len16(v.0, w.0, mul).wrapping_add(shift_mix(y).wrapping_mul(K0)).wrapping_add(z),
        hash_len16(v.1, w.1, mul).wrapping_add(x),
        mul,
    )
}

/// SipHash-2-4 of `bytes` keyed with `key = [k0, k1]`: the hash of
/// TensorFlow's `tf.strings.to_hash_bucket_strong(s, n, key=[k0, k1])`
/// (HighwayHash's `SipHash`) and of Keras's `Hashing` with a salt.
///
/// # Examples
///
/// ```
/// use embkit::vocab::siphash24;
///
/// // The reference vector of the SipHash paper: key 00 01 .. 0f, message 00 01 .. 0e.
/// let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
/// let message: Vec<u8> = (0..15).collect();
/// assert_eq!(siphash24(key, &message), 0xa129_ca61_49be_45e5);
/// ```
pub fn siphash24(key: [u64; 2], bytes: &[u8]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let compress = |m: u64, v: &mut [u64; 4]| {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    };
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        compress(fetch64(block, 0), &mut v);
    }
    let mut last = [0u8; 8];
    let rest = blocks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = bytes.len() as u8;
    compress(u64::from_le_bytes(last), &mut v);
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The hash bucket of `bytes` among `num_buckets`, as TensorFlow picks it:
/// `fingerprint64(bytes) % num_buckets` without a salt
/// (`to_hash_bucket_fast`), `siphash24(salt, bytes) % num_buckets` with one
/// (`to_hash_bucket_strong`).
///
/// `num_buckets` must not be 0 (the callers check it).
pub(crate) fn hash_bucket(bytes: &[u8], num_buckets: u64, salt: Option<[u64; 2]>) -> u64 {
    let hash = match salt {
        None => fingerprint64(bytes),
        Some(key) => siphash24(key, bytes),
    };
    hash % num_buckets
}

/// Settings for [`Hashing`], as Keras's `Hashing` layer.
///
/// Start from [`HashingConfig::new`], change what you need with the
/// `with_*` methods, then call [`init`](Self::init).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HashingConfig {
    /// The number of bins, the mask's bin 0 included when there is a
    /// mask value.
    pub num_bins: u32,
    /// A value that goes to bin 0 while every other value is hashed into
    /// bins `1..num_bins` (Keras `mask_value`). Integers are written in
    /// decimal, as Keras compares and hashes them. With `num_bins` 1
    /// every value, the mask included, goes to bin 0, as in Keras.
    pub mask_value: Option<String>,
    /// With a salt the hash is SipHash-2-4 keyed with these two words
    /// (Keras `salt=[k0, k1]`; a single Keras salt `s` is `[s, s]`);
    /// without, FarmHash `Fingerprint64`.
    pub salt: Option<[u64; 2]>,
}

impl HashingConfig {
    /// `num_bins` bins, no mask value, no salt (Keras's defaults).
    pub fn new(num_bins: u32) -> Self {
        Self { num_bins, mask_value: None, salt: None }
    }

    /// Sets [`mask_value`](Self::mask_value).
    pub fn with_mask_value(mut self, mask_value: impl Into<String>) -> Self {
        self.mask_value = Some(mask_value.into());
        self
    }

    /// Sets [`salt`](Self::salt).
    pub fn with_salt(mut self, salt: [u64; 2]) -> Self {
        self.salt = Some(salt);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `num_bins` is 0.
    pub fn validate(&self) -> Result<()> {
        if self.num_bins == 0 {
            return Err(Error::config("num_bins", "must be at least 1, got 0"));
        }
        Ok(())
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn init(&self) -> Result<Hashing> {
        self.validate()?;
        Ok(Hashing { config: self.clone() })
    }
}

/// Hashes strings or integers into `num_bins` bins, giving the same bins
/// as Keras's `Hashing` layer (`output_mode="int"`) for the same values
/// and settings.
///
/// A string is hashed as its UTF-8 bytes; an integer as its decimal form
/// (Keras calls `tf.as_string` first). Without a mask value the bin is
/// `hash % num_bins`; with one, the mask value goes to bin 0 and every
/// other value to `1 + hash % (num_bins - 1)`.
///
/// # Examples
///
/// ```
/// use embkit::vocab::HashingConfig;
///
/// // keras.layers.Hashing(num_bins=3)(["", "a", "ab", "abc"]) -> [2, 0, 1, 2]
/// let hashing = HashingConfig::new(3).init()?;
/// assert_eq!(hashing.bins(["", "a", "ab", "abc"]), [2, 0, 1, 2]);
///
/// // keras.layers.Hashing(num_bins=3, mask_value="")(...) -> [0, 2, 1, 2]
/// let masked = HashingConfig::new(3).with_mask_value("").init()?;
/// assert_eq!(masked.bins(["", "a", "ab", "abc"]), [0, 2, 1, 2]);
///
/// // keras.layers.Hashing(num_bins=1000)(tf.constant([7], "int64")) -> [88]
/// assert_eq!(HashingConfig::new(1000).init()?.bin_int(7), 88);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HashingConfig", into = "HashingConfig")]
pub struct Hashing {
    config: HashingConfig,
}

impl TryFrom<HashingConfig> for Hashing {
    type Error = Error;

    fn try_from(config: HashingConfig) -> Result<Self> {
        config.init()
    }
}

impl From<Hashing> for HashingConfig {
    fn from(hashing: Hashing) -> Self {
        hashing.config
    }
}

impl Hashing {
    /// The settings.
    pub fn config(&self) -> &HashingConfig {
        &self.config
    }

    /// The number of bins (the `num_embeddings` of a table indexed by
    /// them).
    pub fn num_bins(&self) -> u32 {
        self.config.num_bins
    }

    /// The bin of a string.
    pub fn bin(&self, value: &str) -> u32 {
        let mut bins = u64::from(self.config.num_bins);
        let masked = match &self.config.mask_value {
            Some(mask) if bins > 1 => {
                if mask == value {
                    return 0;
                }
                bins -= 1;
                true
            }
            _ => false,
        };
        let bin = hash_bucket(value.as_bytes(), bins, self.config.salt);
        (bin + u64::from(masked)) as u32
    }

    /// The bin of an integer: the bin of its decimal form, as Keras.
    pub fn bin_int(&self, value: i64) -> u32 {
        self.bin(&value.to_string())
    }

    /// The bins of `values`, in order.
    pub fn bins<I>(&self, values: I) -> Vec<u32>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        values.into_iter().map(|v| self.bin(v.as_ref())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_matches_the_papers_full_vector_table_start() {
        // From the reference implementation's vectors.h (64-bit output),
        // key 00..0f, messages 00, 00 01, ... of length 0 and 1 and 8.
        let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        assert_eq!(siphash24(key, b""), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(key, &[0]), 0x74f8_39c5_93dc_67fd);
        let eight: Vec<u8> = (0..8).collect();
        assert_eq!(siphash24(key, &eight), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn num_bins_zero_is_an_error() {
        let err = HashingConfig::new(0).init().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "num_bins", .. }), "{err}");
    }

    #[test]
    fn hashing_round_trips_through_json_and_checks_on_load() {
        let hashing = HashingConfig::new(10).with_mask_value("").with_salt([1, 2]).init().unwrap();
        let json = serde_json::to_string(&hashing).unwrap();
        let back: Hashing = serde_json::from_str(&json).unwrap();
        assert_eq!(back, hashing);
        let bad = json.replace("\"num_bins\":10", "\"num_bins\":0");
        assert!(serde_json::from_str::<Hashing>(&bad).is_err());
    }
}
