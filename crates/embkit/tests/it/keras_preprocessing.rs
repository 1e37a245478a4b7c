//! Keras preprocessing parity: values printed by Keras/TensorFlow and pinned.
//!
//! Hashing: `tests/reference/keras_hashing.py` (keras 3.15.1, tensorflow 2.21.0,
//! CPU). TF's `to_hash_bucket_fast(s, n)` is `Fingerprint64(utf8(s)) % n`;
//! `to_hash_bucket_strong(s, n, key)` is `SipHash-2-4(key, utf8(s)) % n`;
//! Keras `Hashing` bins are those buckets, `1 + bucket % (num_bins - 1)` with
//! a mask value (the mask itself 0), integers hashed as their decimal form.

use embkit::vocab::{
    fingerprint64, siphash24, HashingConfig, IntegerLookup, OovMethod, OutputMode, Split,
    Standardize, StringLookup, TextVectorizer, TextVectorizerConfig, Vocabulary, VocabularyConfig,
};
use embkit::Error;

/// The strings of `keras_hashing.py`, in its order.
fn strings() -> Vec<String> {
    vec![
        "".to_string(),
        "a".to_string(),
        "ab".to_string(),
        "abc".to_string(),
        "cat".to_string(),
        "dog".to_string(),
        "émeu".to_string(),
        "zebra".to_string(),
        "hello, world".to_string(),
        "0123456789abcdef".to_string(),
        "0123456789abcdefg".to_string(),
        "The quick brown fox jumps".to_string(),
        "日本語のテキスト".to_string(),
        "0123456789abcdef0123456789abcdef".to_string(),
        "0123456789abcdef0123456789abcdef!".to_string(),
        "The quick brown fox jumps over the lazy dog, again and again!".to_string(),
        "0123456789abcdef".repeat(4),
        "0123456789abcdef".repeat(4) + "x",
        "The quick brown fox jumps over the lazy dog. ".repeat(3),
        "Ünïcödé ".repeat(20),
        "x".repeat(1000),
    ]
}

/// `to_hash_bucket_fast(STRINGS, 2**63 - 1)`.
const FAST_M1: [u64; 21] = [
    1936946117179621456,
    3694432073954588132,
    3066228220894225695,
    2640714258260161385,
    5895093417125187289,
    7634539057392638305,
    8949385512130396019,
    985113078316500355,
    855043215758678039,
    6105018409752412263,
    2800675501336285771,
    1503448500679765431,
    3319086538622314836,
    1958373538681310840,
    2689356917139395446,
    5859531524026250643,
    9143507982152263937,
    5058130133359999413,
    8982519496042892506,
    4699637573417618310,
    1913056456708076064,
];

/// `to_hash_bucket_fast(STRINGS, 2**32 + 15)`.
const FAST_M2: [u64; 21] = [
    475727713, 902861454, 1147416294, 1328704807, 1783881766, 108650965, 3516411728, 3415484201,
    2498329868, 3852895303, 3712473591, 3827603751, 1852879664, 4009014081, 3632241057, 4228326709,
    3452071153, 95414279, 399212894, 3595815970, 2602439060,
];

/// `to_hash_bucket_strong(STRINGS, 2**63 - 1, key=[133, 137])`.
const STRONG_M1: [u64; 21] = [
    4928313950774450900,
    7077939996121841354,
    3814769135020288330,
    6899845086433867945,
    1673871405839048777,
    1163836159691644952,
    3098406647893409316,
    5411626673776942617,
    8393190477914449666,
    4045071960732599655,
    2112349501170619355,
    7458377475549974737,
    3294212070422811956,
    5542171203071864836,
    6771764650491853670,
    636583129310922620,
    8105469728256960961,
    2357998430801988111,
    1376384563262454395,
    2798100842022083812,
    728162059125598096,
];

/// `to_hash_bucket_strong(STRINGS, 2**32 + 15, key=[133, 137])`.
const STRONG_M2: [u64; 21] = [
    1201276845, 1224398145, 4276513991, 4190887119, 4098266939, 3102161488, 2624124895, 1157330830,
    4112063959, 1951353167, 1124531143, 2925010862, 43791102, 4056758823, 3178569394, 940675271,
    1529214864, 1980113921, 689076729, 3355039925, 1367663256,
];

/// `to_hash_bucket_strong(STRINGS, 2**63 - 1, key=[-5, 2**62 + 3])`.
const STRONG_BIG_KEY_M1: [u64; 21] = [
    2384958099490373929,
    4961561488217004919,
    4823909708200295768,
    2332845370735799157,
    2249668598746074197,
    5407636139780337709,
    3522423831368501385,
    3133017522887718621,
    6210562257517330173,
    63390363461271849,
    9182434537806673237,
    2864383322994295947,
    884073962180381397,
    8484220057937413805,
    9048933709955592532,
    6973675468660108959,
    1951943412215209530,
    8702133259233663326,
    2539384425038924173,
    8717561700247530201,
    5839026856878239672,
];

/// `Hashing(num_bins=3)`.
const HASHING_3: [u32; 21] = [2, 0, 1, 2, 2, 2, 2, 2, 2, 0, 2, 0, 0, 2, 1, 1, 0, 1, 2, 1, 0];

/// `Hashing(num_bins=1000)`.
const HASHING_1000: [u32; 21] = [
    263, 939, 502, 385, 96, 112, 19, 162, 39, 263, 578, 431, 836, 840, 446, 450, 744, 220, 313,
    117, 64,
];

/// `Hashing(num_bins=3, mask_value="")`.
const HASHING_MASK_3: [u32; 21] = [0, 2, 1, 2, 1, 1, 2, 1, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 2, 2, 1];

/// `Hashing(num_bins=1000, salt=[133, 137])`.
const HASHING_SALT_1000: [u32; 21] = [
    900, 354, 330, 945, 584, 759, 316, 617, 473, 462, 355, 544, 956, 836, 670, 620, 961, 111, 202,
    812, 96,
];

/// `Hashing(num_bins=1000, salt=133)`.
const HASHING_SALT1_1000: [u32; 21] = [
    907, 997, 319, 823, 205, 638, 803, 376, 471, 387, 640, 394, 297, 102, 638, 402, 206, 14, 154,
    623, 174,
];

/// `Hashing(num_bins=1, mask_value="")`.
const HASHING_MASK1_1: [u32; 21] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// `Hashing(num_bins=1000) on INTS`.
const HASHING_INT_1000: [u32; 9] = [735, 849, 88, 430, 718, 306, 378, 112, 319];

/// `Hashing(num_bins=1000, mask_value=7) on INTS`.
const HASHING_INT_MASK_1000: [u32; 9] = [20, 766, 0, 139, 718, 690, 741, 960, 414];

/// `Hashing(num_bins=1000, salt=[133, 137]) on INTS`.
const HASHING_INT_SALT_1000: [u32; 9] = [369, 326, 382, 874, 478, 928, 847, 988, 826];

/// The integers of `keras_hashing.py`.
const INTS: [i64; 9] = [0, 1, 7, -1, -42, 123456789, 1 << 40, i64::MIN, i64::MAX];

const M1: u64 = (1 << 63) - 1;
const M2: u64 = (1 << 32) + 15;

#[test]
fn fingerprint64_matches_tensorflow_on_every_length_class() {
    for (i, s) in strings().iter().enumerate() {
        let fp = fingerprint64(s.as_bytes());
        assert_eq!((fp % M1, fp % M2), (FAST_M1[i], FAST_M2[i]), "{s:?} ({} bytes)", s.len());
    }
}

#[test]
fn siphash24_matches_tensorflow_strong_buckets() {
    for (i, s) in strings().iter().enumerate() {
        let h = siphash24([133, 137], s.as_bytes());
        assert_eq!((h % M1, h % M2), (STRONG_M1[i], STRONG_M2[i]), "{s:?}");
        // A negative TF key word is its two's complement.
        let h = siphash24([-5i64 as u64, (1 << 62) + 3], s.as_bytes());
        assert_eq!(h % M1, STRONG_BIG_KEY_M1[i], "{s:?}");
    }
}

#[test]
fn hashing_gives_keras_bins_for_strings() {
    let s = strings();
    let bins = |config: HashingConfig| config.init().unwrap().bins(&s);
    assert_eq!(bins(HashingConfig::new(3)), HASHING_3);
    assert_eq!(bins(HashingConfig::new(1000)), HASHING_1000);
    assert_eq!(bins(HashingConfig::new(3).with_mask_value("")), HASHING_MASK_3);
    assert_eq!(bins(HashingConfig::new(1000).with_salt([133, 137])), HASHING_SALT_1000);
    assert_eq!(bins(HashingConfig::new(1000).with_salt([133, 133])), HASHING_SALT1_1000);
    assert_eq!(bins(HashingConfig::new(1).with_mask_value("")), HASHING_MASK1_1);
}

#[test]
fn hashing_gives_keras_bins_for_integers() {
    let bins = |config: HashingConfig| {
        let hashing = config.init().unwrap();
        INTS.iter().map(|&i| hashing.bin_int(i)).collect::<Vec<_>>()
    };
    assert_eq!(bins(HashingConfig::new(1000)), HASHING_INT_1000);
    assert_eq!(bins(HashingConfig::new(1000).with_mask_value("7")), HASHING_INT_MASK_1000);
    assert_eq!(bins(HashingConfig::new(1000).with_salt([133, 137])), HASHING_INT_SALT_1000);
}

// StringLookup and IntegerLookup: `tests/reference/keras_text_and_lookup.py`
// (keras 3.15.1, tensorflow 2.21.0). Ids: mask 0 (if any), then the OOV ids,
// then the tokens by descending count, ties by descending token. An unknown
// string goes to OOV id `first_oov + Fingerprint64(utf8) % num_oov_indices`
// (SipHash-2-4 with a salt); an unknown integer to `first_oov + key mod n`
// (floormod) or the hash of its decimal form (oov_method="farmhash").

const SEED: &str = "cat dog snake dog mouse cat dog snake dog";

fn unseen() -> Vec<String> {
    let mut words: Vec<String> =
        ["zebra", "tiger", "owl", "émeu", "horse", "bear", "", "dog"].map(String::from).to_vec();
    words.push("x".repeat(100));
    words
}

fn listed(vocab: &StringLookup) -> Vec<&str> {
    (0..vocab.len() as u32).map(|id| vocab.token_str(id).unwrap()).collect()
}

#[test]
fn string_lookup_oov_buckets_match_keras() {
    let config =
        VocabularyConfig::keras_lookup().with_mask_token(String::new()).with_num_oov_indices(4);
    let vocab = StringLookup::from_objects(SEED.split(' '), &config).unwrap();
    // string_oov4_vocab
    assert_eq!(
        listed(&vocab),
        ["", "[UNK]", "[UNK]", "[UNK]", "[UNK]", "dog", "snake", "cat", "mouse"]
    );
    // string_oov4_ids
    assert_eq!(vocab.ids(&unseen()).unwrap(), [3, 1, 2, 4, 2, 4, 0, 5, 4]);

    // StringLookup(num_oov_indices=3, salt=[133, 137]): string_salt_ids
    let config = VocabularyConfig::keras_lookup().with_num_oov_indices(3).with_salt([133, 137]);
    let vocab = StringLookup::from_objects(SEED.split(' '), &config).unwrap();
    assert_eq!(vocab.ids(&unseen()).unwrap(), [0, 0, 2, 0, 1, 2, 2, 3, 0]);

    // StringLookup(max_tokens=3): string_max3_vocab
    let config = VocabularyConfig::keras_lookup().with_max_tokens(3);
    let vocab = StringLookup::from_objects(SEED.split(' '), &config).unwrap();
    assert_eq!(listed(&vocab), ["[UNK]", "dog", "snake"]);
}

#[test]
fn string_lookup_invert_matches_keras() {
    // StringLookup(vocabulary=["dog", "snake", "cat"], mask_token="",
    //              num_oov_indices=2, invert=True)([0, 1, 2, 3, 4, 5, 6, 99])
    let config =
        VocabularyConfig::keras_lookup().with_mask_token(String::new()).with_num_oov_indices(2);
    let vocab =
        StringLookup::from_tokens(["dog", "snake", "cat"].map(String::from), &config).unwrap();
    let tokens: Vec<&str> = [0, 1, 2, 3, 4, 5, 6, 99].map(|id| vocab.invert_str(id)).to_vec();
    assert_eq!(tokens, ["", "[UNK]", "[UNK]", "dog", "snake", "cat", "[UNK]", "[UNK]"]);
}

const LOOKUP_INTS: [i64; 7] = [5, 9, 5, 12, 9, 5, 0];
const INT_QUERIES: [i64; 9] = [5, 9, 12, 0, 7, -1, -42, 100, 1 << 40];

#[test]
fn integer_lookup_oov_buckets_match_keras() {
    let ids = |config: VocabularyConfig<i64>| {
        let vocab = IntegerLookup::from_objects(LOOKUP_INTS, &config).unwrap();
        vocab.ids(&INT_QUERIES).unwrap()
    };
    let config = VocabularyConfig::keras_lookup().with_mask_token(0).with_num_oov_indices(3);
    // int_vocab
    let vocab = IntegerLookup::from_objects(LOOKUP_INTS, &config).unwrap();
    let keys: Vec<i64> = (0..vocab.len() as u32).map(|id| *vocab.invert_or(id, &-1)).collect();
    assert_eq!(keys, [0, -1, -1, -1, 5, 9, 12]);
    // int_floormod_ids
    assert_eq!(ids(config.clone()), [4, 5, 6, 0, 2, 3, 1, 2, 2]);
    // IntegerLookup(..., oov_method="farmhash"): int_farmhash_ids
    let farmhash = config.clone().with_oov_method(OovMethod::Farmhash);
    assert_eq!(ids(farmhash.clone()), [4, 5, 6, 0, 2, 1, 1, 1, 3]);
    // IntegerLookup(..., oov_method="farmhash", salt=[133, 137]): int_salt_ids
    assert_eq!(ids(farmhash.with_salt([133, 137])), [4, 5, 6, 0, 3, 3, 2, 1, 2]);
    // Keras refuses a salt with floormod for integers; so does embkit.
    let err = IntegerLookup::from_objects(LOOKUP_INTS, &config.with_salt([1, 2])).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "salt", .. }), "{err}");
}

#[test]
fn integer_lookup_invert_matches_keras() {
    // IntegerLookup(vocabulary=[12, 5, 9], mask_token=0, invert=True)([0, 1, 2, 3, 4, 99])
    let config = VocabularyConfig::keras_lookup().with_mask_token(0);
    let vocab = IntegerLookup::from_tokens([12, 5, 9], &config).unwrap();
    let keys: Vec<i64> = [0, 1, 2, 3, 4, 99].map(|id| *vocab.invert_or(id, &-1)).to_vec();
    assert_eq!(keys, [0, -1, 12, 5, 9, -1]);
}

// TextVectorization: `tests/reference/keras_text_and_lookup.py` (keras 3.15.1,
// tensorflow 2.21.0). Keras lowercases ASCII only, strips the ASCII
// punctuation of its regex, splits at ASCII whitespace; idf is
// `ln(1 + num_documents / (1 + document_frequency))`, `[UNK]`'s weight the
// mean of the tokens' weights.

const TEXTS: [&str; 5] = [
    "The cat sat on the mat.",
    "The dog ate the cat's food!",
    "ÀÉÎ Ünïcödé café “quoted” — ok",
    "Hello,world  x\u{a0}y\ttab\u{3000}ideo",
    "A dog? A DOG! the end",
];
const QUERIES: [&str; 8] = [
    "The cat sat on the mat.",
    "The dog ate the cat's food!",
    "ÀÉÎ Ünïcödé café “quoted” — ok",
    "Hello,world  x\u{a0}y\ttab\u{3000}ideo",
    "A dog? A DOG! the end",
    "",
    "the unicorn and the dog",
    "Ünïcödé ÀÉÎ àéî",
];

fn vocab_of(v: &TextVectorizer) -> Vec<&str> {
    (0..v.vocab_size() as u32).map(|id| v.vocabulary().token_str(id).unwrap()).collect()
}

#[test]
fn text_vectorization_int_mode_matches_keras() {
    // TextVectorization().adapt(TEXTS): tv_int_vocab, tv_int
    let v = TextVectorizerConfig::new().adapt(TEXTS).unwrap();
    assert_eq!(
        vocab_of(&v),
        [
            "",
            "[UNK]",
            "the",
            "dog",
            "a",
            "“quoted”",
            "—",
            "Ünïcödé",
            "ÀÉÎ",
            "x\u{a0}y",
            "tab\u{3000}ideo",
            "sat",
            "on",
            "ok",
            "mat",
            "helloworld",
            "food",
            "end",
            "cats",
            "cat",
            "café",
            "ate"
        ]
    );
    assert_eq!(
        v.vectorize_batch(QUERIES),
        ndarray::array![
            [2, 19, 11, 12, 2, 14],
            [2, 3, 21, 2, 18, 16],
            [8, 7, 20, 5, 6, 13],
            [15, 9, 10, 0, 0, 0],
            [4, 3, 4, 3, 2, 17],
            [0, 0, 0, 0, 0, 0],
            [2, 1, 1, 2, 3, 0],
            [7, 8, 1, 0, 0, 0]
        ]
    );

    // TextVectorization(output_sequence_length=12): tv_pad12
    let v = TextVectorizerConfig::new().with_output_sequence_length(12).adapt(TEXTS).unwrap();
    assert_eq!(
        v.vectorize_batch(QUERIES),
        ndarray::array![
            [2, 19, 11, 12, 2, 14, 0, 0, 0, 0, 0, 0],
            [2, 3, 21, 2, 18, 16, 0, 0, 0, 0, 0, 0],
            [8, 7, 20, 5, 6, 13, 0, 0, 0, 0, 0, 0],
            [15, 9, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [4, 3, 4, 3, 2, 17, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [2, 1, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0],
            [7, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        ]
    );

    // TextVectorization(standardize="strip_punctuation"): tv_strip_vocab
    let config = TextVectorizerConfig::new().with_standardize(Standardize::StripPunctuation);
    assert_eq!(
        vocab_of(&config.adapt(TEXTS).unwrap()),
        [
            "",
            "[UNK]",
            "the",
            "dog",
            "The",
            "A",
            "“quoted”",
            "—",
            "Ünïcödé",
            "ÀÉÎ",
            "x\u{a0}y",
            "tab\u{3000}ideo",
            "sat",
            "on",
            "ok",
            "mat",
            "food",
            "end",
            "cats",
            "cat",
            "café",
            "ate",
            "Helloworld",
            "DOG"
        ]
    );
}

#[test]
fn text_vectorization_ngrams_truncation_and_max_tokens_match_keras() {
    // TextVectorization(ngrams=2, output_sequence_length=6, max_tokens=12)
    let config = TextVectorizerConfig::new()
        .with_ngrams(2)
        .with_output_sequence_length(6)
        .with_max_tokens(12);
    let v = config.adapt(TEXTS).unwrap();
    assert_eq!(
        vocab_of(&v),
        [
            "",
            "[UNK]",
            "the",
            "dog",
            "a dog",
            "a",
            "“quoted” —",
            "“quoted”",
            "— ok",
            "—",
            "Ünïcödé café",
            "Ünïcödé"
        ]
    );
    assert_eq!(
        v.vectorize_batch(QUERIES),
        ndarray::array![
            [2, 1, 1, 1, 2, 1],
            [2, 3, 1, 2, 1, 1],
            [1, 11, 1, 7, 9, 1],
            [1, 1, 1, 1, 1, 0],
            [5, 3, 5, 3, 2, 1],
            [0, 0, 0, 0, 0, 0],
            [2, 1, 1, 2, 3, 1],
            [11, 1, 1, 1, 1, 0]
        ]
    );
}

#[test]
fn text_vectorization_character_and_no_split_match_keras() {
    // TextVectorization(standardize="lower", split="character", max_tokens=20)
    let config = TextVectorizerConfig::new()
        .with_standardize(Standardize::Lower)
        .with_split(Split::Character)
        .with_max_tokens(20);
    let v = config.adapt(TEXTS).unwrap();
    assert_eq!(
        vocab_of(&v),
        [
            "", "[UNK]", " ", "t", "o", "e", "d", "a", "h", "c", "n", "l", "g", "é", "s", "f", "!",
            "\u{3000}", "”", "“"
        ]
    );
    assert_eq!(
        v.vectorize_batch(&QUERIES[..3]),
        ndarray::array![
            [
                3, 8, 5, 2, 9, 7, 3, 2, 14, 7, 3, 2, 4, 10, 2, 3, 8, 5, 2, 1, 7, 3, 1, 0, 0, 0, 0,
                0, 0, 0
            ],
            [
                3, 8, 5, 2, 6, 4, 12, 2, 7, 3, 5, 2, 3, 8, 5, 2, 9, 7, 3, 1, 14, 2, 15, 4, 4, 6,
                16, 0, 0, 0
            ],
            [
                1, 1, 1, 2, 1, 10, 1, 9, 1, 6, 13, 2, 9, 7, 15, 13, 2, 19, 1, 1, 4, 3, 5, 6, 18, 2,
                1, 2, 4, 1
            ]
        ]
    );

    // TextVectorization(standardize=None, split=None)
    let config =
        TextVectorizerConfig::new().with_standardize(Standardize::None).with_split(Split::None);
    let v = config.adapt(["a b", "a b", "C", ""]).unwrap();
    assert_eq!(vocab_of(&v), ["", "[UNK]", "a b", "C"]);
    let ids: Vec<u32> = ["a b", "C", "c", ""].iter().flat_map(|t| v.vectorize(t)).collect();
    assert_eq!(ids, [2, 3, 1, 0]);
}

#[test]
fn text_vectorization_multi_hot_and_count_match_keras() {
    let config = |mode| {
        TextVectorizerConfig::new().with_output_mode(mode).with_max_tokens(10).with_ngrams(2)
    };
    // TextVectorization(output_mode="multi_hot", max_tokens=10, ngrams=2)
    let v = config(OutputMode::MultiHot).adapt(TEXTS).unwrap();
    assert_eq!(
        vocab_of(&v),
        [
            "[UNK]",
            "the",
            "dog",
            "a dog",
            "a",
            "“quoted” —",
            "“quoted”",
            "— ok",
            "—",
            "Ünïcödé café"
        ]
    );
    assert_eq!(
        v.encode_batch(QUERIES),
        ndarray::array![
            [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ]
    );
    // output_mode="count"
    let v = config(OutputMode::Count).adapt(TEXTS).unwrap();
    assert_eq!(
        vocab_of(&v),
        [
            "[UNK]",
            "the",
            "dog",
            "a dog",
            "a",
            "“quoted” —",
            "“quoted”",
            "— ok",
            "—",
            "Ünïcödé café"
        ]
    );
    assert_eq!(
        v.encode_batch(QUERIES),
        ndarray::array![
            [9.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [8.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [6.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            [5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [4.0, 1.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [6.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ]
    );

    // TextVectorization(output_mode="count", max_tokens=10, pad_to_max_tokens=True)
    let config = TextVectorizerConfig::new()
        .with_output_mode(OutputMode::Count)
        .with_max_tokens(10)
        .with_pad_to_max_tokens(true);
    let v = config.adapt(["a b b", "c"]).unwrap();
    assert_eq!(vocab_of(&v), ["[UNK]", "b", "c", "a"]);
    assert_eq!(
        v.encode_batch(["b a x x", ""]),
        ndarray::array![
            [2.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ]
    );
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{got:?}\n{want:?}");
    }
}

#[test]
fn text_vectorization_tf_idf_matches_keras() {
    // TextVectorization(output_mode="tf_idf", max_tokens=10, ngrams=2)
    let config = TextVectorizerConfig::new()
        .with_output_mode(OutputMode::TfIdf)
        .with_max_tokens(10)
        .with_ngrams(2);
    let v = config.adapt(TEXTS).unwrap();
    assert_eq!(
        vocab_of(&v),
        [
            "[UNK]",
            "the",
            "dog",
            "a dog",
            "a",
            "“quoted” —",
            "“quoted”",
            "— ok",
            "—",
            "Ünïcödé café"
        ]
    );
    // tv_tf_idf_weights (float32; [UNK] first)
    assert_close(
        v.idf_weights().unwrap(),
        &[
            1.1734555, 0.8109302, 0.98082924, 1.2527629, 1.2527629, 1.2527629, 1.2527629,
            1.2527629, 1.2527629, 1.2527629,
        ],
    );
    let want = ndarray::array![
        [10.561099, 1.6218604, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [9.387644, 1.6218604, 0.98082924, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [7.040733, 0.0, 0.0, 0.0, 0.0, 1.2527629, 1.2527629, 1.2527629, 1.2527629, 1.2527629],
        [5.867277, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [4.693822, 0.8109302, 1.9616585, 2.5055258, 2.5055258, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [7.040733, 1.6218604, 0.98082924, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [5.867277, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    ];
    let got = v.encode_batch(QUERIES);
    assert_close(got.as_slice().unwrap(), want.as_slice().unwrap());

    // TextVectorization(output_mode="tf_idf", vocabulary=["b", "a"], idf_weights=[0.5, 2.0])
    let config = TextVectorizerConfig::new().with_output_mode(OutputMode::TfIdf);
    let vocab =
        Vocabulary::from_tokens(["b", "a"].map(String::from), &config.vocabulary_config()).unwrap();
    let v = TextVectorizer::with_idf_weights(config, vocab, &[0.5, 2.0]).unwrap();
    assert_eq!(vocab_of(&v), ["[UNK]", "b", "a"]);
    assert_eq!(v.idf_weights().unwrap(), [1.25, 0.5, 2.0]);
    assert_eq!(
        v.encode_batch(["a b b x", "x y"]),
        ndarray::array![[1.25, 1.0, 2.0], [2.5, 0.0, 0.0]]
    );

    // The whole vectorizer, weights included, round-trips through serde.
    let json = serde_json::to_string(&v).unwrap();
    let back: TextVectorizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
}
