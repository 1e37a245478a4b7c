//! Integration tests: vocab.

use embkit::vocab::{
    Order, OutputMode, Standardize, TextVectorizer, TextVectorizerConfig, Vocabulary,
    VocabularyBuilder, VocabularyConfig,
};
use embkit::Error;

/// The seed example's objects.
const SEED: &str = "cat dog snake dog mouse cat dog snake dog";

fn seed() -> Vec<&'static str> {
    SEED.split(' ').collect()
}

/// All ids as Keras's `get_vocabulary()` lists them.
fn listed(vocab: &Vocabulary) -> Vec<&str> {
    (0..vocab.len() as u32).map(|id| vocab.token_str(id).unwrap()).collect()
}

#[test]
fn seed_objects_in_first_appearance_order_give_the_seed_ids() {
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &VocabularyConfig::new()).unwrap();
    assert_eq!(vocab.tokens(), ["cat", "dog", "snake", "mouse"]);
    assert_eq!(vocab.ids(seed()).unwrap(), [0, 1, 2, 1, 3, 0, 1, 2, 1]);
    assert_eq!(vocab.len(), 4);
    assert_eq!(vocab.mask_id(), None);
    assert!(vocab.oov_ids().is_empty());
}

#[test]
fn seed_objects_in_frequency_order_match_keras_string_lookup() {
    // keras.layers.StringLookup(); layer.adapt(seed); layer.get_vocabulary()
    // -> ['[UNK]', 'dog', 'snake', 'cat', 'mouse']
    let vocab: Vocabulary =
        Vocabulary::from_objects(seed(), &VocabularyConfig::keras_lookup()).unwrap();
    assert_eq!(listed(&vocab), ["[UNK]", "dog", "snake", "cat", "mouse"]);
    assert_eq!(vocab.ids(seed()).unwrap(), [3, 1, 2, 1, 4, 3, 1, 2, 1]);
    assert_eq!(vocab.id("zebra").unwrap(), 0);
    assert_eq!(vocab.oov_ids(), 0..1);
    let counts: Vec<_> = vocab.tokens().iter().map(|t| vocab.count(t.as_str())).collect();
    assert_eq!(counts, [Some(4), Some(2), Some(2), Some(1)]);
}

#[test]
fn mask_comes_first_then_the_oov_ids_then_the_vocabulary() {
    let config = VocabularyConfig::new()
        .with_order(Order::Frequency)
        .with_mask_token(String::from("[MASK]"))
        .with_num_oov_indices(3);
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &config).unwrap();
    assert_eq!(vocab.mask_id(), Some(0));
    assert_eq!(vocab.oov_ids(), 1..4);
    assert_eq!(vocab.len(), 1 + 3 + 4);
    assert_eq!(vocab.id("[MASK]").unwrap(), 0);
    assert_eq!(vocab.id("dog").unwrap(), 4);
    assert_eq!(vocab.id("mouse").unwrap(), 7);
    assert_eq!(vocab.token(0).map(String::as_str), Some("[MASK]"));
    for id in 1..4 {
        assert_eq!(vocab.token(id), None);
        assert_eq!(vocab.token_str(id), Some("[UNK]"));
    }
    assert_eq!(vocab.token(4).map(String::as_str), Some("dog"));
    assert_eq!(vocab.token(8), None);
    assert_eq!(vocab.token_str(8), None);
}

#[test]
fn the_mask_token_is_not_counted_as_a_token() {
    let config = VocabularyConfig::new().with_mask_token("pad");
    let vocab: Vocabulary<&str> =
        Vocabulary::from_objects(["pad", "a", "pad", "b"], &config).unwrap();
    assert_eq!(vocab.tokens(), ["a", "b"]);
    assert_eq!(vocab.ids([&"pad", &"b"]).unwrap(), [0, 2]);
    assert_eq!(vocab.count(&"pad"), None);
}

#[test]
fn iter_lists_every_id_in_order() {
    let config = VocabularyConfig::new().with_mask_token(0u32).with_num_oov_indices(1);
    let vocab = Vocabulary::from_objects([5u32, 9, 5], &config).unwrap();
    let all: Vec<_> = vocab.iter().map(|(id, key)| (id, key.copied())).collect();
    assert_eq!(all, [(0, Some(0)), (1, None), (2, Some(5)), (3, Some(9))]);
}

#[test]
fn max_tokens_counts_the_mask_and_oov_ids_and_keeps_the_most_frequent() {
    let config = VocabularyConfig::keras_lookup().with_mask_token(String::new()).with_max_tokens(4);
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &config).unwrap();
    assert_eq!(listed(&vocab), ["", "[UNK]", "dog", "snake"]);
    assert_eq!(vocab.id("cat").unwrap(), 1);

    let first = VocabularyConfig::new().with_max_tokens(2);
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &first).unwrap();
    assert_eq!(vocab.tokens(), ["cat", "dog"]);
}

#[test]
fn max_tokens_must_leave_room_for_a_token() {
    let config = VocabularyConfig::keras_lookup().with_mask_token(String::new()).with_max_tokens(2);
    let err = Vocabulary::<String>::from_objects(seed(), &config).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "max_tokens", .. }), "{err}");
    assert!(err.to_string().contains("at least 3; got 2"), "{err}");
}

#[test]
fn min_count_drops_rare_objects() {
    let config = VocabularyConfig::keras_lookup().with_min_count(2);
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &config).unwrap();
    assert_eq!(vocab.tokens(), ["dog", "snake", "cat"]);
    assert_eq!(vocab.id("mouse").unwrap(), 0);

    let config = VocabularyConfig::new().with_min_count(5);
    let err = Vocabulary::<String>::from_objects(seed(), &config).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
    assert!(err.to_string().contains("at least 5 times"), "{err}");

    let zero = VocabularyConfig::new().with_min_count(0);
    assert!(Vocabulary::<String>::from_objects(seed(), &zero).is_err());
}

#[test]
fn no_objects_is_empty_data() {
    let none: [&str; 0] = [];
    let err = Vocabulary::<String>::from_objects(none, &VocabularyConfig::new()).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
    let err = VocabularyBuilder::<u32>::new(VocabularyConfig::new()).build().unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
}

#[test]
fn inverse_lookup_returns_every_token() {
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &VocabularyConfig::new()).unwrap();
    for (i, token) in vocab.tokens().iter().enumerate() {
        let id = vocab.id(token.as_str()).unwrap();
        assert_eq!(id as usize, i);
        assert_eq!(vocab.token(id), Some(token));
    }
    assert!(vocab.contains("snake"));
    assert!(!vocab.contains("zebra"));
}

#[test]
fn unknown_object_error_names_the_object() {
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &VocabularyConfig::new()).unwrap();
    let err = vocab.ids(["cat", "zebra", "dog"]).unwrap_err();
    assert!(matches!(&err, Error::UnknownToken { token } if token == "zebra"), "{err:?}");
    assert_eq!(
        err.to_string(),
        "unknown token \"zebra\": not in the vocabulary and there are no OOV indices"
    );

    let ints = Vocabulary::<u64>::from_objects([1u64, 2], &VocabularyConfig::new()).unwrap();
    let err = ints.id(&3).unwrap_err();
    assert!(matches!(&err, Error::UnknownToken { token } if token == "3"), "{err:?}");
}

#[test]
fn oov_buckets_are_keras_buckets() {
    // keras.layers.StringLookup(num_oov_indices=4, mask_token="").adapt(seed), then
    // layer(["zebra", "tiger", "owl", "émeu", "horse", "bear"]) -> [3, 1, 2, 4, 2, 4]
    // (tests/reference/keras_text_and_lookup.py; FarmHash Fingerprint64 % 4).
    let config =
        VocabularyConfig::keras_lookup().with_mask_token(String::new()).with_num_oov_indices(4);
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &config).unwrap();
    let words = ["zebra", "tiger", "owl", "émeu", "horse", "bear"];
    assert_eq!(vocab.ids(words).unwrap(), [3, 1, 2, 4, 2, 4]);
    // The same key always lands in the same bucket.
    assert_eq!(vocab.id("émeu").unwrap(), vocab.id(&String::from("émeu")).unwrap());

    // Integers: floor modulo, as IntegerLookup's default oov_method.
    let config = VocabularyConfig::new().with_num_oov_indices(4);
    let ints = Vocabulary::<i32>::from_objects([100, 200], &config).unwrap();
    assert_eq!(ints.ids([&7, &-1, &8]).unwrap(), [3, 3, 0]);
}

#[test]
fn from_tokens_keeps_the_given_order() {
    let config = VocabularyConfig::keras_lookup();
    let tokens = ["mouse", "cat"].map(String::from);
    let vocab = Vocabulary::from_tokens(tokens, &config).unwrap();
    assert_eq!(listed(&vocab), ["[UNK]", "mouse", "cat"]);
    assert_eq!(vocab.count("cat"), None);
}

#[test]
fn from_tokens_rejects_duplicates_the_mask_and_too_many() {
    let err = Vocabulary::from_tokens(["a", "b", "a"], &VocabularyConfig::new()).unwrap_err();
    assert!(err.to_string().contains("\"a\" appears twice, at positions 0 and 2"), "{err}");

    let masked = VocabularyConfig::new().with_mask_token("m");
    let err = Vocabulary::from_tokens(["a", "m"], &masked).unwrap_err();
    assert!(err.to_string().contains("mask token"), "{err}");

    let small = VocabularyConfig::new().with_num_oov_indices(1).with_max_tokens(2);
    let err = Vocabulary::from_tokens(["a", "b"], &small).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "max_tokens", .. }), "{err}");

    let none: [&str; 0] = [];
    let err = Vocabulary::from_tokens(none, &VocabularyConfig::new()).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
}

#[test]
fn vocab_txt_round_trips_with_its_config() {
    let config =
        VocabularyConfig::keras_lookup().with_mask_token(String::new()).with_num_oov_indices(2);
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &config).unwrap();
    let mut file = Vec::new();
    vocab.write_vocab_txt(&mut file, "vocab.txt").unwrap();
    assert_eq!(
        String::from_utf8(file.clone()).unwrap(),
        "\n[UNK]\n[UNK]\ndog\nsnake\ncat\nmouse\n"
    );

    let back = Vocabulary::from_vocab_txt(&file[..], "vocab.txt", &config).unwrap();
    assert_eq!(back.tokens(), vocab.tokens());
    assert_eq!(back.ids(seed()).unwrap(), vocab.ids(seed()).unwrap());
    assert_eq!(back.config(), vocab.config());

    let crlf = String::from_utf8(file).unwrap().replace('\n', "\r\n");
    let back = Vocabulary::from_vocab_txt(crlf.as_bytes(), "vocab.txt", &config).unwrap();
    assert_eq!(back.tokens(), vocab.tokens());
}

#[test]
fn vocab_txt_round_trips_through_a_file() {
    let dir = std::env::temp_dir().join(format!("embkit-vocab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vocab.txt");
    let config = VocabularyConfig::new();
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &config).unwrap();
    vocab.save_vocab_txt(&path).unwrap();
    let back = Vocabulary::load_vocab_txt(&path, &config).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(back.tokens(), vocab.tokens());

    let err = Vocabulary::load_vocab_txt(dir.join("missing.txt"), &config).unwrap_err();
    assert!(err.to_string().starts_with("cannot open "), "{err}");
}

#[test]
fn vocab_txt_with_the_wrong_layout_names_the_line() {
    let config = VocabularyConfig::keras_lookup().with_mask_token(String::new());

    let err = Vocabulary::from_vocab_txt(&b"[UNK]\ndog\n"[..], "v.txt", &config).unwrap_err();
    assert!(matches!(err, Error::BadRow { line: 1, .. }), "{err:?}");
    assert!(err.to_string().starts_with("v.txt:1: expected \"\" for the mask token"), "{err}");

    let err = Vocabulary::from_vocab_txt(&b"\ndog\ncat\n"[..], "v.txt", &config).unwrap_err();
    assert!(err.to_string().starts_with("v.txt:2: expected \"[UNK]\" for an OOV id"), "{err}");

    let err = Vocabulary::from_vocab_txt(&b"\n"[..], "v.txt", &config).unwrap_err();
    assert!(matches!(err, Error::BadRow { line: 2, .. }), "{err:?}");

    let err = Vocabulary::from_vocab_txt(&b"\n[UNK]\n"[..], "v.txt", &config).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err:?}");

    let err =
        Vocabulary::from_vocab_txt(&b"\n[UNK]\ndog\ncat\ndog\n"[..], "v.txt", &config).unwrap_err();
    assert_eq!(err.to_string(), "v.txt:5: duplicate token \"dog\", first on line 3");

    let err = Vocabulary::from_vocab_txt(&b"\n[UNK]\ndog\n\n"[..], "v.txt", &config).unwrap_err();
    assert!(matches!(err, Error::BadRow { line: 4, .. }), "{err:?}");

    let err = Vocabulary::from_vocab_txt(&b"\n[UNK]\n\xff\n"[..], "v.txt", &config).unwrap_err();
    assert!(err.to_string().contains("v.txt:3: not valid UTF-8"), "{err}");
}

#[test]
fn tokens_with_a_newline_or_tab_cannot_be_written() {
    for bad in ["two\nlines", "a\tb", "cr\r"] {
        let vocab =
            Vocabulary::from_tokens(["ok".to_string(), bad.to_string()], &VocabularyConfig::new())
                .unwrap();
        let mut file = Vec::new();
        let err = vocab.write_vocab_txt(&mut file, "vocab.txt").unwrap_err();
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        assert!(file.is_empty(), "nothing is written");
    }
}

#[test]
fn vocabulary_serialises_with_serde() {
    let config = VocabularyConfig::keras_lookup().with_mask_token(String::new());
    let vocab: Vocabulary = Vocabulary::from_objects(seed(), &config).unwrap();
    let json = serde_json::to_string(&vocab).unwrap();
    let back: Vocabulary = serde_json::from_str(&json).unwrap();
    assert_eq!(back, vocab);
    assert_eq!(back.id("mouse").unwrap(), 5);
}

#[test]
fn standardize_follows_keras_ascii_rules_or_unicode_on_request() {
    let vectorizer = TextVectorizerConfig::new().adapt(["x"]).unwrap();
    assert_eq!(vectorizer.standardize("Hello, World! Café’s"), "hello world café’s");
    assert_eq!(vectorizer.tokens("Hello, World! Café’s"), ["hello", "world", "café’s"]);
    let unicode = TextVectorizerConfig::new().with_unicode(true).adapt(["x"]).unwrap();
    assert_eq!(unicode.standardize("Hello, World! Café’s"), "hello world cafés");
    assert_eq!(Standardize::StripPunctuation.apply("Don't—stop"), "Dont—stop");
    assert_eq!(Standardize::StripPunctuation.apply_unicode("Don't—stop"), "Dontstop");
    assert_eq!(Standardize::None.apply("A, b"), "A, b");
}

#[test]
fn text_vectorizer_matches_keras_layout_and_tie_order() {
    // keras.layers.TextVectorization(); layer.adapt(texts); layer.get_vocabulary()
    // gives mask '', '[UNK]', then descending count, ties by descending token.
    let texts = ["the cat sat on the mat", "the dog ate the cat's food", "A dog!"];
    let vectorizer = TextVectorizerConfig::new().adapt(texts).unwrap();
    let listed: Vec<_> = (0..vectorizer.vocab_size() as u32)
        .map(|id| vectorizer.vocabulary().token_str(id).unwrap())
        .collect();
    // the: 4; dog: 2; cat, cats: 1 each ... ("cat's" becomes "cats").
    assert_eq!(
        listed,
        ["", "[UNK]", "the", "dog", "sat", "on", "mat", "food", "cats", "cat", "ate", "a"]
    );
    assert_eq!(vectorizer.vectorize("The unicorn ate"), [2, 1, 10]);
}

#[test]
fn output_sequence_length_pads_and_truncates_at_the_end() {
    let config = TextVectorizerConfig::new().with_output_sequence_length(3);
    let vectorizer = config.adapt(["a b c d", "a b", "a"]).unwrap();
    // a: 3, b: 2, then c, d by descending token: d, c.
    assert_eq!(vectorizer.vectorize("a"), [2, 0, 0]);
    assert_eq!(vectorizer.vectorize("c d b a"), [5, 4, 3]);
    assert_eq!(vectorizer.vectorize(""), [0, 0, 0]);
    let batch = vectorizer.vectorize_batch(["b", "a a a a", "zz"]);
    assert_eq!(batch, ndarray::array![[3, 0, 0], [2, 2, 2], [1, 0, 0]]);
}

#[test]
fn batches_without_a_sequence_length_pad_to_the_longest_text() {
    let vectorizer = TextVectorizerConfig::new().adapt(["a b c"]).unwrap();
    let batch = vectorizer.vectorize_batch(vec![String::from("a"), String::from("c b a x")]);
    assert_eq!(batch.shape(), [2, 4]);
    assert_eq!(batch, ndarray::array![[4, 0, 0, 0], [2, 3, 4, 1]]);
    let none: [&str; 0] = [];
    assert_eq!(vectorizer.vectorize_batch(none).shape(), [0, 0]);
}

#[test]
fn text_vectorizer_max_tokens_counts_mask_and_unk() {
    let config = TextVectorizerConfig::new().with_max_tokens(4);
    let vectorizer = config.adapt(["x y y z z z"]).unwrap();
    assert_eq!(vectorizer.vocab_size(), 4);
    assert_eq!(vectorizer.vocabulary().tokens(), ["z", "y"]);
    assert_eq!(vectorizer.vectorize("x y z"), [1, 3, 2]);

    let err = TextVectorizerConfig::new().with_max_tokens(2).adapt(["x"]).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "max_tokens", .. }), "{err}");
}

#[test]
fn adapting_on_no_tokens_is_empty_data() {
    let err = TextVectorizerConfig::new().adapt(["", "  ", "?!"]).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
    let none: [&str; 0] = [];
    assert!(TextVectorizerConfig::new().adapt(none).is_err());
}

#[test]
fn text_vectorizer_rebuilds_from_config_and_vocab_txt() {
    let config = TextVectorizerConfig::new().with_output_sequence_length(4).with_max_tokens(10);
    let vectorizer = config.adapt(["One fish, two fish.", "Red fish; blue fish!"]).unwrap();
    let mut file = Vec::new();
    vectorizer.vocabulary().write_vocab_txt(&mut file, "vocab.txt").unwrap();
    assert!(file.starts_with(b"\n[UNK]\nfish\n"));

    let json = serde_json::to_string(vectorizer.config()).unwrap();
    let config: TextVectorizerConfig = serde_json::from_str(&json).unwrap();
    let back = TextVectorizer::from_vocab_txt(config, &file[..], "vocab.txt").unwrap();
    assert_eq!(back.vocabulary().tokens(), vectorizer.vocabulary().tokens());
    assert_eq!(
        back.vectorize("blue fish, green fish"),
        vectorizer.vectorize("blue fish, green fish")
    );

    let err =
        TextVectorizer::from_vocab_txt(TextVectorizerConfig::new(), &b"fish\n"[..], "vocab.txt")
            .unwrap_err();
    assert!(matches!(err, Error::BadRow { line: 1, .. }), "{err:?}");
}

#[test]
fn text_vectorizer_settings_are_checked_with_typed_errors() {
    let field = |config: TextVectorizerConfig| match config.adapt(["a b"]).unwrap_err() {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("{other}"),
    };
    let count = TextVectorizerConfig::new().with_output_mode(OutputMode::Count);
    // Outside int mode max_tokens counts [UNK] only: 2 is enough, 1 is not.
    assert!(count.clone().with_max_tokens(2).adapt(["a b"]).is_ok());
    assert_eq!(field(count.clone().with_max_tokens(1)), "max_tokens");
    assert_eq!(field(count.clone().with_output_sequence_length(4)), "output_sequence_length");
    assert_eq!(field(count.with_pad_to_max_tokens(true)), "pad_to_max_tokens");
    assert_eq!(field(TextVectorizerConfig::new().with_ngram_widths([0, 2])), "ngrams");

    // tf_idf needs weights: not from vocab.txt alone, and one per token.
    let tf_idf = TextVectorizerConfig::new().with_output_mode(OutputMode::TfIdf);
    let err = TextVectorizer::from_vocab_txt(tf_idf.clone(), &b"[UNK]\na\n"[..], "v.txt");
    assert!(matches!(err, Err(Error::InvalidConfig { field: "idf_weights", .. })), "{err:?}");
    let vocab = Vocabulary::from_tokens(["a".to_string()], &tf_idf.vocabulary_config()).unwrap();
    let err = TextVectorizer::with_idf_weights(tf_idf, vocab, &[1.0, 2.0]).unwrap_err();
    assert!(err.to_string().contains("2 weights for 1 tokens"), "{err}");
}

#[test]
fn a_saved_tf_idf_vectorizer_with_the_wrong_number_of_weights_is_refused() {
    let config = TextVectorizerConfig::new().with_output_mode(OutputMode::TfIdf);
    let vectorizer = config.adapt(["a b", "b c"]).unwrap();
    let json = serde_json::to_string(&vectorizer).unwrap();
    let back: TextVectorizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back.encode("b a"), vectorizer.encode("b a"));
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["idf_weights"].as_array_mut().unwrap().pop();
    let err = serde_json::from_value::<TextVectorizer>(value).unwrap_err();
    assert!(err.to_string().contains("idf_weights"), "{err}");
}

#[test]
fn a_cli_model_config_saved_before_keras_parity_still_loads_with_its_rules() {
    // The `text_vectorizer` metadata the CLI wrote before the Keras rules.
    let saved = r#"{"standardize":"lower_and_strip_punctuation","split":"whitespace",
        "output_mode":"int","max_tokens":null,"output_sequence_length":4}"#;
    let config: TextVectorizerConfig = serde_json::from_str(saved).unwrap();
    let v =
        TextVectorizer::from_vocab_txt(config, &b"\n[UNK]\ncafe\xcc\x81s\n"[..], "v.txt").unwrap();
    assert_eq!(v.vectorize("CAFE\u{301}’S!"), [2, 0, 0, 0]);
}
