//! [`Vocabulary`]: a frozen, invertible map between objects and `u32` ids,
//! and the [`VocabularyBuilder`] that counts objects to make one.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::fs::File;
use std::hash::Hash;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::hashing::hash_bucket;
use crate::{Error, Result};

/// How `vocab.txt` and [`Vocabulary::token_str`] show an OOV id, as
/// Keras's `get_vocabulary()` does.
pub const OOV_TOKEN: &str = "[UNK]";

/// The order of the vocabulary proper when it is built by counting
/// objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Order {
    /// In the order objects are first seen. The default for a plain
    /// vocabulary: ids follow the data.
    #[default]
    FirstAppearance,
    /// By descending count; ties by descending key, as Keras's
    /// `StringLookup`, `IntegerLookup` and `TextVectorization` break them.
    Frequency,
}

/// Settings for a [`Vocabulary`].
///
/// Start from [`VocabularyConfig::new`] (a plain vocabulary: ids in
/// first-appearance order, no mask, no OOV ids) or
/// [`VocabularyConfig::keras_lookup`] (the defaults of Keras's
/// `StringLookup`) and change what you need with the `with_*` methods.
///
/// The ids are laid out as in Keras: the mask id 0 if there is a mask
/// token, then [`num_oov_indices`](Self::num_oov_indices) OOV ids, then
/// the vocabulary proper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VocabularyConfig<K = String> {
    /// The order of the vocabulary proper when built by counting objects.
    /// Ignored when the tokens are given.
    pub order: Order,
    /// A key that gets id 0 and is never counted as a vocabulary token
    /// (Keras `mask_token`; `""` in `TextVectorization`).
    pub mask_token: Option<K>,
    /// How many ids unknown keys are hashed into; 0 makes an unknown key
    /// an error. The OOV ids have no key: [`Vocabulary::token`] returns
    /// `None` for them.
    pub num_oov_indices: usize,
    /// The most ids the vocabulary may have, counting the mask and OOV
    /// ids (as Keras's `max_tokens`). The most frequent (or first seen)
    /// keys are kept.
    pub max_tokens: Option<usize>,
    /// Keys seen fewer times than this are left out when counting
    /// objects. Ignored when the tokens are given.
    pub min_count: usize,
    /// How an integer key that is not in the vocabulary picks one of
    /// several OOV ids (Keras `oov_method`). Strings are always hashed.
    #[serde(default)]
    pub oov_method: OovMethod,
    /// With a salt, OOV keys are hashed with SipHash-2-4 keyed with these
    /// two words instead of FarmHash (Keras `salt`; a single Keras salt `s`
    /// is `[s, s]`). Integer keys take a salt only with
    /// [`OovMethod::Farmhash`], as in Keras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<[u64; 2]>,
}

/// How an integer key that is not in a [`Vocabulary`] picks one of several
/// OOV ids, as Keras's `IntegerLookup(oov_method=...)`. String keys are
/// always hashed (see [`LookupKey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OovMethod {
    /// The key modulo the number of OOV ids, rounded towards minus
    /// infinity (`-1` goes to the last OOV id). Keras's default.
    #[default]
    FloorMod,
    /// The key's decimal form hashed as a string: FarmHash
    /// `Fingerprint64`, or SipHash-2-4 with a salt.
    Farmhash,
}

/// A key type a [`Vocabulary`] can look up: it knows which OOV bucket an
/// unknown key goes to, by Keras's rule.
///
/// - Strings: FarmHash `Fingerprint64` of the UTF-8 bytes modulo the
///   number of OOV ids (TensorFlow's `to_hash_bucket_fast`), or SipHash-2-4
///   keyed with the salt (`to_hash_bucket_strong`), as `StringLookup`.
/// - Integers: [`OovMethod::FloorMod`] (`key mod n`, never negative) or
///   [`OovMethod::Farmhash`] (the decimal form hashed as a string), as
///   `IntegerLookup`.
///
/// The bucket of a key is the same on every run and platform.
pub trait LookupKey {
    /// The bucket, in `0..num_oov_indices`, of this key when it is not in
    /// the vocabulary. `num_oov_indices` is at least 1.
    fn oov_bucket(&self, num_oov_indices: u64, method: OovMethod, salt: Option<[u64; 2]>) -> u64;

    /// Checks that the OOV settings make sense for this key type.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the setting.
    fn check_oov_settings(method: OovMethod, salt: Option<[u64; 2]>) -> Result<()>
    where
        Self: Sized,
    {
        let _ = (method, salt);
        Ok(())
    }
}

impl LookupKey for str {
    fn oov_bucket(&self, num_oov_indices: u64, _: OovMethod, salt: Option<[u64; 2]>) -> u64 {
        hash_bucket(self.as_bytes(), num_oov_indices, salt)
    }
}

impl LookupKey for String {
    fn oov_bucket(&self, num_oov_indices: u64, method: OovMethod, salt: Option<[u64; 2]>) -> u64 {
        self.as_str().oov_bucket(num_oov_indices, method, salt)
    }
}

impl<T: LookupKey + ?Sized> LookupKey for &T {
    fn oov_bucket(&self, num_oov_indices: u64, method: OovMethod, salt: Option<[u64; 2]>) -> u64 {
        (**self).oov_bucket(num_oov_indices, method, salt)
    }
}

macro_rules! integer_lookup_key {
    ($($t:ty),*) => {$(
        impl LookupKey for $t {
            fn oov_bucket(
                &self,
                num_oov_indices: u64,
                method: OovMethod,
                salt: Option<[u64; 2]>,
            ) -> u64 {
                match method {
                    OovMethod::FloorMod => {
                        (*self as i128).rem_euclid(i128::from(num_oov_indices)) as u64
                    }
                    OovMethod::Farmhash => {
                        hash_bucket(self.to_string().as_bytes(), num_oov_indices, salt)
                    }
                }
            }

            fn check_oov_settings(method: OovMethod, salt: Option<[u64; 2]>) -> Result<()> {
                check_integer_oov_settings(method, salt)
            }
        }
    )*};
}

integer_lookup_key!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

fn check_integer_oov_settings(method: OovMethod, salt: Option<[u64; 2]>) -> Result<()> {
    if salt.is_some() && method == OovMethod::FloorMod {
        return Err(Error::config(
            "salt",
            "integer keys are hashed only with oov_method farmhash; floor_mod takes no salt",
        ));
    }
    Ok(())
}

impl<K> Default for VocabularyConfig<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> VocabularyConfig<K> {
    /// A plain vocabulary: first-appearance order, no mask, no OOV ids, no
    /// size limit, `min_count` 1.
    pub fn new() -> Self {
        Self {
            order: Order::FirstAppearance,
            mask_token: None,
            num_oov_indices: 0,
            max_tokens: None,
            min_count: 1,
            oov_method: OovMethod::FloorMod,
            salt: None,
        }
    }

    /// Keras `StringLookup`'s and `IntegerLookup`'s defaults: frequency
    /// order, one OOV id, no mask, no size limit, OOV integers by floor
    /// modulo, no salt.
    pub fn keras_lookup() -> Self {
        Self { order: Order::Frequency, num_oov_indices: 1, ..Self::new() }
    }

    /// Sets [`oov_method`](Self::oov_method).
    pub fn with_oov_method(mut self, oov_method: OovMethod) -> Self {
        self.oov_method = oov_method;
        self
    }

    /// Sets [`salt`](Self::salt).
    pub fn with_salt(mut self, salt: [u64; 2]) -> Self {
        self.salt = Some(salt);
        self
    }

    /// Sets [`order`](Self::order).
    pub fn with_order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Sets [`mask_token`](Self::mask_token).
    pub fn with_mask_token(mut self, mask_token: K) -> Self {
        self.mask_token = Some(mask_token);
        self
    }

    /// Sets [`num_oov_indices`](Self::num_oov_indices).
    pub fn with_num_oov_indices(mut self, num_oov_indices: usize) -> Self {
        self.num_oov_indices = num_oov_indices;
        self
    }

    /// Sets [`max_tokens`](Self::max_tokens).
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets [`min_count`](Self::min_count).
    pub fn with_min_count(mut self, min_count: usize) -> Self {
        self.min_count = min_count;
        self
    }

    /// The number of ids before the vocabulary proper: the mask id, if
    /// any, plus the OOV ids.
    pub fn num_reserved(&self) -> usize {
        usize::from(self.mask_token.is_some()) + self.num_oov_indices
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `min_count` is 0, the OOV ids would
    /// not fit `u32` ids, or `max_tokens` leaves no room for a token after
    /// the mask and OOV ids.
    pub fn validate(&self) -> Result<()> {
        if self.num_oov_indices >= u32::MAX as usize {
            return Err(Error::config(
                "num_oov_indices",
                format!("ids are u32, so it must be below 2^32 - 1; got {}", self.num_oov_indices),
            ));
        }
        if let Some(max) = self.max_tokens.filter(|&m| m <= self.num_reserved()) {
            return Err(Error::config(
                "max_tokens",
                format!(
                    "counts the mask and OOV ids ({} here), so it must be at least {}; got {max}",
                    self.num_reserved(),
                    self.num_reserved() + 1
                ),
            ));
        }
        if self.min_count == 0 {
            return Err(Error::config("min_count", "must be at least 1, got 0"));
        }
        Ok(())
    }
}

/// A frozen, invertible map between keys and `u32` ids.
///
/// The ids are laid out as in Keras's `StringLookup`: the mask id 0 if the
/// config has a mask token, then the OOV ids, then the vocabulary proper
/// (see [`VocabularyConfig`]). A vocabulary always has at least one token
/// besides the mask and OOV ids.
///
/// Keys that are not in the vocabulary map to an OOV id when there are
/// any; with several OOV ids the id is picked by Keras's rule (FarmHash
/// for strings, floor modulo for integers; see [`id`](Self::id)), so the
/// same key lands in the same slot as in Keras, on every run and platform.
/// Without OOV ids an unknown key is an error.
///
/// A vocabulary serialises (with serde) as its config, its tokens and,
/// when it was built by counting, their counts; a `Vocabulary<String>`
/// is also saved as `vocab.txt` with
/// [`save_vocab_txt`](Self::save_vocab_txt).
///
/// # Examples
///
/// Keras's `StringLookup` defaults: frequency order, ties by descending
/// key, one OOV id.
///
/// ```
/// use embkit::vocab::{Vocabulary, VocabularyConfig};
///
/// let objects = "cat dog snake dog mouse cat dog snake dog".split(' ');
/// let vocab: Vocabulary = Vocabulary::from_objects(objects, &VocabularyConfig::keras_lookup())?;
/// let listed: Vec<_> = (0..vocab.len() as u32).filter_map(|id| vocab.token_str(id)).collect();
/// assert_eq!(listed, ["[UNK]", "dog", "snake", "cat", "mouse"]);
/// assert_eq!(vocab.id("cat")?, 3);
/// assert_eq!(vocab.id("zebra")?, 0);
/// assert_eq!(vocab.count("dog"), Some(4));
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "VocabularyParts<K>", try_from = "VocabularyParts<K>")]
#[serde(bound(
    serialize = "K: Serialize + Clone",
    deserialize = "K: Deserialize<'de> + Hash + Eq + Clone + Ord + Debug + LookupKey"
))]
pub struct Vocabulary<K = String> {
    config: VocabularyConfig<K>,
    /// The vocabulary proper, in id order.
    tokens: Vec<K>,
    /// `counts[i]` is how often `tokens[i]` was seen, when built by
    /// counting.
    counts: Option<Vec<u64>>,
    /// Every token's id (not the mask's).
    index: HashMap<K, u32>,
}

/// What a [`Vocabulary`] serialises as; the index is rebuilt on load.
#[derive(Serialize, Deserialize)]
struct VocabularyParts<K> {
    config: VocabularyConfig<K>,
    tokens: Vec<K>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counts: Option<Vec<u64>>,
}

impl<K> From<Vocabulary<K>> for VocabularyParts<K> {
    fn from(v: Vocabulary<K>) -> Self {
        Self { config: v.config, tokens: v.tokens, counts: v.counts }
    }
}

impl<K> TryFrom<VocabularyParts<K>> for Vocabulary<K>
where
    K: Hash + Eq + Clone + Ord + Debug + LookupKey,
{
    type Error = Error;

    fn try_from(parts: VocabularyParts<K>) -> Result<Self> {
        if let Some(counts) = parts.counts.as_ref().filter(|c| c.len() != parts.tokens.len()) {
            return Err(Error::config(
                "counts",
                format!("has {} entries for {} tokens", counts.len(), parts.tokens.len()),
            ));
        }
        Self::assemble(parts.config, parts.tokens, parts.counts)
    }
}

impl<K: Debug> Debug for Vocabulary<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vocabulary")
            .field("config", &self.config)
            .field("tokens", &self.tokens)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl<K: PartialEq> PartialEq for Vocabulary<K> {
    fn eq(&self, other: &Self) -> bool {
        // The index is a function of the tokens.
        self.config == other.config && self.tokens == other.tokens && self.counts == other.counts
    }
}

impl<K: Eq> Eq for Vocabulary<K> {}

impl<K> Vocabulary<K>
where
    K: Hash + Eq + Clone + Ord + Debug + LookupKey,
{
    /// Counts `objects` and builds the vocabulary as `config` says: keys
    /// seen at least `min_count` times, in `config.order`, cut to
    /// `max_tokens`. The mask token is not counted.
    ///
    /// This is [`VocabularyBuilder`] in one call.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] if the config is invalid
    ///   ([`VocabularyConfig::validate`]).
    /// - [`Error::EmptyData`] if there are no objects, or none (besides
    ///   the mask) is seen `min_count` times.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::{Vocabulary, VocabularyConfig};
    ///
    /// let config = VocabularyConfig::new().with_min_count(2);
    /// let vocab = Vocabulary::<String>::from_objects(["b", "a", "b", "c", "a"], &config)?;
    /// assert_eq!(vocab.tokens(), ["b", "a"]);
    /// assert!(vocab.id("c").is_err());
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn from_objects<I, T>(objects: I, config: &VocabularyConfig<K>) -> Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<K>,
    {
        let mut builder = VocabularyBuilder::new(config.clone());
        builder.extend(objects);
        builder.build()
    }

    /// A vocabulary of the given tokens, in that order, after the mask and
    /// OOV ids. `order` and `min_count` of the config do not apply.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] if the config is invalid, a token appears
    ///   twice or is the mask token, or there are more ids than
    ///   `max_tokens`.
    /// - [`Error::EmptyData`] if there are no tokens.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::{Vocabulary, VocabularyConfig};
    ///
    /// let config = VocabularyConfig::new().with_mask_token(0u64).with_num_oov_indices(1);
    /// let vocab = Vocabulary::from_tokens([30, 10, 20], &config)?;
    /// assert_eq!(vocab.ids([&0, &10, &99])?, [0, 3, 1]);
    /// assert!(Vocabulary::from_tokens([30, 10, 30], &config).is_err());
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn from_tokens(
        tokens: impl IntoIterator<Item = K>,
        config: &VocabularyConfig<K>,
    ) -> Result<Self> {
        let tokens: Vec<K> = tokens.into_iter().collect();
        if tokens.is_empty() {
            return Err(Error::EmptyData { what: "vocabulary: no tokens given".into() });
        }
        Self::assemble(config.clone(), tokens, None)
    }

    /// Checks everything and builds the index.
    fn assemble(
        config: VocabularyConfig<K>,
        tokens: Vec<K>,
        counts: Option<Vec<u64>>,
    ) -> Result<Self> {
        config.validate()?;
        K::check_oov_settings(config.oov_method, config.salt)?;
        if tokens.is_empty() {
            return Err(Error::EmptyData { what: "vocabulary: no tokens".into() });
        }
        let start = config.num_reserved();
        let len = start + tokens.len();
        if let Some(max) = config.max_tokens.filter(|&m| len > m) {
            return Err(Error::config(
                "max_tokens",
                format!("is {max}, but the vocabulary has {len} ids with the mask and OOV ids"),
            ));
        }
        if len > u32::MAX as usize {
            return Err(Error::config(
                "tokens",
                format!("ids are u32, so at most 2^32 - 1 ids; the vocabulary has {len}"),
            ));
        }
        let mut index = HashMap::with_capacity(tokens.len());
        for (i, token) in tokens.iter().enumerate() {
            if config.mask_token.as_ref() == Some(token) {
                return Err(Error::config(
                    "tokens",
                    format!("{token:?} at position {i} is the mask token, which has id 0"),
                ));
            }
            let id = (start + i) as u32;
            if let Some(first) = index.insert(token.clone(), id) {
                return Err(Error::config(
                    "tokens",
                    format!(
                        "{token:?} appears twice, at positions {} and {i}",
                        first as usize - start
                    ),
                ));
            }
        }
        Ok(Self { config, tokens, counts, index })
    }

    /// The id of `key`.
    ///
    /// The mask token has id 0 and a token of the vocabulary its own id.
    /// Any other key gets an OOV id when there are some: with `n` OOV ids
    /// it is `first_oov_id + bucket`, with the bucket chosen by Keras's
    /// rule ([`LookupKey`]): for a string, FarmHash `Fingerprint64` of its
    /// UTF-8 bytes modulo `n` (SipHash-2-4 with a [salt](VocabularyConfig::salt));
    /// for an integer, the integer modulo `n` (or its decimal form hashed,
    /// with [`OovMethod::Farmhash`]). So an unknown key gets the same id
    /// as in Keras's `StringLookup`/`IntegerLookup`, on every run and
    /// platform.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownToken`], naming the key, if it is not in the
    /// vocabulary and there are no OOV ids.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::{Vocabulary, VocabularyConfig};
    ///
    /// let vocab = Vocabulary::<String>::from_tokens(["a".into()], &VocabularyConfig::new())?;
    /// assert_eq!(vocab.id("a")?, 0);
    /// let err = vocab.id("b").unwrap_err();
    /// assert!(err.to_string().starts_with(r#"unknown token "b""#));
    ///
    /// // keras.layers.StringLookup(vocabulary=["a"], num_oov_indices=4)(["zebra", "owl"])
    /// //     -> [2, 1]
    /// let config = VocabularyConfig::keras_lookup().with_num_oov_indices(4);
    /// let vocab = Vocabulary::<String>::from_tokens(["a".into()], &config)?;
    /// assert_eq!(vocab.ids(["zebra", "owl"])?, [2, 1]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn id<Q>(&self, key: &Q) -> Result<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Debug + LookupKey + ?Sized,
    {
        if let Some(id) = self.lookup(key) {
            return Ok(id);
        }
        let n = self.config.num_oov_indices as u64;
        if n == 0 {
            return Err(Error::UnknownToken { token: describe(key) });
        }
        let bucket =
            if n == 1 { 0 } else { key.oov_bucket(n, self.config.oov_method, self.config.salt) };
        Ok(self.oov_ids().start + bucket as u32)
    }

    /// The ids of `keys`, in order.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownToken`] for the first key that has no id (see
    /// [`id`](Self::id)).
    pub fn ids<'a, Q>(&self, keys: impl IntoIterator<Item = &'a Q>) -> Result<Vec<u32>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Debug + LookupKey + ?Sized + 'a,
    {
        keys.into_iter().map(|key| self.id(key)).collect()
    }

    /// The id of the mask or of a token of the vocabulary; `None` for a
    /// key that would go to an OOV id.
    pub(crate) fn lookup<Q>(&self, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.config.mask_token.as_ref().is_some_and(|mask| mask.borrow() == key) {
            return Some(0);
        }
        self.index.get(key).copied()
    }

    /// Whether `key` is the mask or a token of the vocabulary.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key).is_some()
    }

    /// How often `key` was seen when the vocabulary was built by counting;
    /// `None` for keys that are not tokens of the vocabulary (the mask
    /// included) and for vocabularies built from given tokens.
    pub fn count<Q>(&self, key: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let id = self.index.get(key)?;
        let counts = self.counts.as_ref()?;
        Some(counts[*id as usize - self.config.num_reserved()])
    }
}

impl<K> Vocabulary<K> {
    /// The key of `id`: the mask token for the mask id, a token of the
    /// vocabulary, or `None` for an OOV id and for ids past the end.
    pub fn token(&self, id: u32) -> Option<&K> {
        let id = id as usize;
        if id == 0 {
            if let Some(mask) = &self.config.mask_token {
                return Some(mask);
            }
        }
        id.checked_sub(self.config.num_reserved()).and_then(|i| self.tokens.get(i))
    }

    /// Keras's inverse lookup (`invert=True`): the key of `id`, or
    /// `oov_token` where Keras gives its `oov_token`, for an OOV id and
    /// for an id past the end. The mask id gives the mask token.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::{IntegerLookup, VocabularyConfig};
    ///
    /// // keras.layers.IntegerLookup(vocabulary=[12, 5, 9], mask_token=0, invert=True)
    /// //     ([0, 1, 2, 3, 4, 99]) -> [0, -1, 12, 5, 9, -1]
    /// let config = VocabularyConfig::keras_lookup().with_mask_token(0);
    /// let vocab = IntegerLookup::from_tokens([12, 5, 9], &config)?;
    /// let keys: Vec<i64> = [0, 1, 2, 3, 4, 99].map(|id| *vocab.invert_or(id, &-1)).to_vec();
    /// assert_eq!(keys, [0, -1, 12, 5, 9, -1]);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn invert_or<'a>(&'a self, id: u32, oov_token: &'a K) -> &'a K {
        self.token(id).unwrap_or(oov_token)
    }

    /// The number of ids, the mask and OOV ids included.
    pub fn len(&self) -> usize {
        self.config.num_reserved() + self.tokens.len()
    }

    /// Whether there are no ids. Never true for a built vocabulary; here
    /// because there is a [`len`](Self::len).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mask id (0), if there is a mask token.
    pub fn mask_id(&self) -> Option<u32> {
        self.config.mask_token.as_ref().map(|_| 0)
    }

    /// The OOV ids; empty when there are none.
    pub fn oov_ids(&self) -> Range<u32> {
        let start = u32::from(self.config.mask_token.is_some());
        start..start + self.config.num_oov_indices as u32
    }

    /// The vocabulary proper, in id order: the keys of ids
    /// `num_reserved()..len()`.
    pub fn tokens(&self) -> &[K] {
        &self.tokens
    }

    /// Every id with its key, in id order; OOV ids have no key.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Option<&K>)> + '_ {
        (0..self.len() as u32).map(|id| (id, self.token(id)))
    }

    /// The settings the vocabulary was built with.
    pub fn config(&self) -> &VocabularyConfig<K> {
        &self.config
    }
}

impl Vocabulary<String> {
    /// The string Keras's `get_vocabulary()` lists for `id`: the mask
    /// token, [`OOV_TOKEN`] for an OOV id, or the token; `None` past the
    /// end.
    pub fn token_str(&self, id: u32) -> Option<&str> {
        if self.oov_ids().contains(&id) {
            return Some(OOV_TOKEN);
        }
        self.token(id).map(String::as_str)
    }

    /// Keras `StringLookup(invert=True)`: the token of `id`, the mask
    /// token for the mask id, and [`OOV_TOKEN`] for an OOV id or an id past
    /// the end.
    pub fn invert_str(&self, id: u32) -> &str {
        self.token(id).map_or(OOV_TOKEN, String::as_str)
    }

    /// Writes `vocab.txt`: one line per id, in id order, as
    /// [`token_str`](Self::token_str) shows them (so a mask token `""` is
    /// an empty line and each OOV id is `[UNK]`). `path` only names the
    /// destination in errors.
    ///
    /// Nothing is written if a token cannot be.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] naming the token if one contains a
    ///   newline, carriage return or tab, or is empty (only the mask may
    ///   be empty).
    /// - [`Error::Io`] if writing fails.
    pub fn write_vocab_txt(&self, mut w: impl Write, path: impl AsRef<Path>) -> Result<()> {
        self.check_writable()?;
        let path = path.as_ref();
        for id in 0..self.len() as u32 {
            let token = self.token_str(id).expect("ids below len() have a string");
            writeln!(w, "{token}").map_err(Error::io("write", path))?;
        }
        w.flush().map_err(Error::io("write", path))
    }

    /// Writes `vocab.txt` to `path` (see
    /// [`write_vocab_txt`](Self::write_vocab_txt)).
    ///
    /// # Errors
    ///
    /// As [`write_vocab_txt`](Self::write_vocab_txt), plus [`Error::Io`]
    /// if the file cannot be created.
    pub fn save_vocab_txt(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.check_writable()?;
        let file = File::create(path).map_err(Error::io("create", path))?;
        self.write_vocab_txt(BufWriter::new(file), path)
    }

    fn check_writable(&self) -> Result<()> {
        let mask = self.config.mask_token.iter();
        for token in mask.chain(&self.tokens) {
            if token.contains(['\n', '\r', '\t']) {
                return Err(Error::config(
                    "tokens",
                    format!(
                        "{token:?} contains a newline, carriage return or tab, \
                         so it cannot be written to vocab.txt"
                    ),
                ));
            }
        }
        if self.tokens.iter().any(String::is_empty) {
            return Err(Error::config(
                "tokens",
                "\"\" is a token but not the mask token, so it cannot be written to vocab.txt",
            ));
        }
        Ok(())
    }

    /// Reads a vocabulary written by
    /// [`write_vocab_txt`](Self::write_vocab_txt) or listed by Keras's
    /// `get_vocabulary()`, one token per line.
    ///
    /// The file holds no layout, so `config` must be the one the
    /// vocabulary was built with: its mask token and OOV ids must be the
    /// first lines (the mask token as itself, each OOV id as `[UNK]`); the
    /// following lines are the vocabulary proper. A `\r` before a line's
    /// `\n` is dropped. `path` only names the source in errors. The
    /// vocabulary has no counts.
    ///
    /// # Errors
    ///
    /// - [`Error::BadRow`] with the line number if the first lines do not
    ///   match the config's layout, a line is not UTF-8, a token is empty
    ///   or the mask token, or a token appears twice.
    /// - [`Error::EmptyData`] if there are no tokens after the layout.
    /// - [`Error::InvalidConfig`] if the config is invalid or the
    ///   vocabulary is larger than `max_tokens`.
    /// - [`Error::Io`] if reading fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::vocab::{Vocabulary, VocabularyConfig};
    ///
    /// let config = VocabularyConfig::keras_lookup().with_mask_token(String::new());
    /// let vocab = Vocabulary::from_objects(["b", "a", "b"], &config)?;
    /// let mut file = Vec::new();
    /// vocab.write_vocab_txt(&mut file, "vocab.txt")?;
    /// assert_eq!(file, b"\n[UNK]\nb\na\n");
    ///
    /// let back = Vocabulary::from_vocab_txt(&file[..], "vocab.txt", &config)?;
    /// assert_eq!(back.tokens(), vocab.tokens());
    /// assert!(Vocabulary::from_vocab_txt(&b"b\na\n"[..], "vocab.txt", &config).is_err());
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn from_vocab_txt(
        mut r: impl BufRead,
        path: impl AsRef<Path>,
        config: &VocabularyConfig<String>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let bad =
            |line: usize, reason: String| Error::BadRow { path: path.to_owned(), line, reason };
        let reserved = config.num_reserved();
        let mut tokens = Vec::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut buf = Vec::new();
        let mut line = 0;
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf).map_err(Error::io("read", path))? == 0 {
                break;
            }
            line += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            let token = std::str::from_utf8(&buf)
                .map_err(|e| bad(line, format!("not valid UTF-8 (at byte {})", e.valid_up_to())))?;
            if line <= reserved {
                let (expected, what) = match &config.mask_token {
                    Some(mask) if line == 1 => (mask.as_str(), "the mask token"),
                    _ => (OOV_TOKEN, "an OOV id"),
                };
                if token != expected {
                    return Err(bad(
                        line,
                        format!(
                            "expected {expected:?} for {what} (the config has {} mask token \
                             and {} OOV ids), found {token:?}",
                            if config.mask_token.is_some() { "a" } else { "no" },
                            config.num_oov_indices
                        ),
                    ));
                }
                continue;
            }
            if token.is_empty() {
                return Err(bad(line, "empty token: only the mask token may be empty".into()));
            }
            if config.mask_token.as_deref() == Some(token) {
                return Err(bad(line, format!("{token:?} is the mask token, which has id 0")));
            }
            if let Some(first) = first_line.insert(token.to_owned(), line) {
                return Err(bad(line, format!("duplicate token {token:?}, first on line {first}")));
            }
            tokens.push(token.to_owned());
        }
        if line < reserved {
            return Err(bad(
                line + 1,
                format!(
                    "the file ends after {line} lines, but the mask and OOV ids take {reserved}"
                ),
            ));
        }
        if tokens.is_empty() {
            return Err(Error::EmptyData {
                what: format!(
                    "vocabulary in {}: no tokens after the mask and OOV ids",
                    path.display()
                ),
            });
        }
        Self::assemble(config.clone(), tokens, None)
    }

    /// Reads `vocab.txt` from `path` (see
    /// [`from_vocab_txt`](Self::from_vocab_txt)).
    ///
    /// # Errors
    ///
    /// As [`from_vocab_txt`](Self::from_vocab_txt), plus [`Error::Io`] if
    /// the file cannot be opened.
    pub fn load_vocab_txt(
        path: impl AsRef<Path>,
        config: &VocabularyConfig<String>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(Error::io("open", path))?;
        Self::from_vocab_txt(BufReader::new(file), path, config)
    }
}

/// Counts objects, then freezes them into a [`Vocabulary`].
///
/// # Examples
///
/// ```
/// use embkit::vocab::{Order, VocabularyBuilder, VocabularyConfig};
///
/// let config = VocabularyConfig::new().with_order(Order::Frequency);
/// let mut builder = VocabularyBuilder::<String>::new(config);
/// for line in ["to be or not to be", "to do"] {
///     builder.extend(line.split(' '));
/// }
/// let vocab = builder.build()?;
/// assert_eq!(vocab.tokens(), ["to", "be", "or", "not", "do"]);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct VocabularyBuilder<K = String> {
    config: VocabularyConfig<K>,
    /// Per key: its count and when it was first seen.
    seen: HashMap<K, (u64, usize)>,
    num_objects: u64,
}

impl<K> VocabularyBuilder<K>
where
    K: Hash + Eq + Clone + Ord + Debug + LookupKey,
{
    /// An empty builder. The config is checked by [`build`](Self::build).
    pub fn new(config: VocabularyConfig<K>) -> Self {
        Self { config, seen: HashMap::new(), num_objects: 0 }
    }

    /// Counts one object. The mask token is not counted.
    pub fn add(&mut self, object: impl Into<K>) {
        let object = object.into();
        self.num_objects += 1;
        if self.config.mask_token.as_ref() == Some(&object) {
            return;
        }
        let next = self.seen.len();
        self.seen.entry(object).or_insert((0, next)).0 += 1;
    }

    /// The number of objects counted so far, masks included.
    pub fn num_objects(&self) -> u64 {
        self.num_objects
    }

    /// Builds the vocabulary: keys seen at least `min_count` times, in the
    /// config's order (by frequency: descending count, ties by descending
    /// key, as Keras), cut to `max_tokens`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] if the config is invalid.
    /// - [`Error::EmptyData`] if no object was added, or none (besides
    ///   the mask) was seen `min_count` times.
    pub fn build(self) -> Result<Vocabulary<K>> {
        let config = self.config;
        config.validate()?;
        if self.num_objects == 0 {
            return Err(Error::EmptyData {
                what: "input: no objects to build a vocabulary from".into(),
            });
        }
        let min = config.min_count as u64;
        let mut kept: Vec<(K, u64, usize)> = self
            .seen
            .into_iter()
            .filter(|(_, (n, _))| *n >= min)
            .map(|(k, (n, f))| (k, n, f))
            .collect();
        match config.order {
            Order::FirstAppearance => kept.sort_unstable_by_key(|&(_, _, first)| first),
            Order::Frequency => {
                kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
            }
        }
        if let Some(max) = config.max_tokens {
            kept.truncate(max - config.num_reserved());
        }
        if kept.is_empty() {
            return Err(Error::EmptyData {
                what: format!(
                    "vocabulary: no object besides the mask is seen at least {} times (min_count)",
                    config.min_count
                ),
            });
        }
        let (tokens, counts) = kept.into_iter().map(|(k, n, _)| (k, n)).unzip();
        Vocabulary::assemble(config, tokens, Some(counts))
    }
}

impl<K, T> Extend<T> for VocabularyBuilder<K>
where
    K: Hash + Eq + Clone + Ord + Debug + LookupKey,
    T: Into<K>,
{
    fn extend<I: IntoIterator<Item = T>>(&mut self, objects: I) {
        for object in objects {
            self.add(object);
        }
    }
}

/// A key as [`Error::UnknownToken`] names it: its `Debug` form, without
/// the quotes a string's `Debug` adds (the message quotes it again).
pub(crate) fn describe<Q: Debug + ?Sized>(key: &Q) -> String {
    let text = format!("{key:?}");
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_drops_the_quotes_of_strings_only() {
        assert_eq!(describe("zebra"), "zebra");
        assert_eq!(describe(&String::from("a b")), "a b");
        assert_eq!(describe(&42u32), "42");
        assert_eq!(describe(&(1, "x")), "(1, \"x\")");
    }

    #[test]
    fn frequency_ties_go_to_the_larger_key() {
        let config = VocabularyConfig::new().with_order(Order::Frequency);
        let vocab = Vocabulary::<u32>::from_objects([1u32, 2, 3, 3], &config).unwrap();
        assert_eq!(vocab.tokens(), [3, 2, 1]);
        assert_eq!(vocab.count(&3), Some(2));
    }

    #[test]
    fn serde_round_trip_rebuilds_the_index() {
        let config = VocabularyConfig::keras_lookup().with_mask_token(String::new());
        let vocab = Vocabulary::from_objects(["x", "y", "y"], &config).unwrap();
        let json = serde_json::to_string(&vocab).unwrap();
        let back: Vocabulary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vocab);
        assert_eq!(back.id("x").unwrap(), 3);
        assert_eq!(back.count("y"), Some(2));
    }

    #[test]
    fn deserialising_duplicate_tokens_fails() {
        let json = r#"{"config":{"order":"first_appearance","mask_token":null,
            "num_oov_indices":0,"max_tokens":null,"min_count":1},"tokens":["a","a"]}"#;
        let err = serde_json::from_str::<Vocabulary>(json).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }
}
