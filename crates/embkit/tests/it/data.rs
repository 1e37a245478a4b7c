//! Integration tests: data.

use embkit::data::LabelledTexts;
use embkit::Error;

fn read(tsv: &str) -> embkit::Result<LabelledTexts> {
    LabelledTexts::from_reader(tsv.as_bytes(), "fixture.tsv")
}

/// The message of a `BadRow`, after checking its line number.
fn bad_row(tsv: &str, want_line: usize) -> String {
    let err = read(tsv).unwrap_err();
    match &err {
        Error::BadRow { path, line, .. } => {
            assert_eq!(path.to_str(), Some("fixture.tsv"));
            assert_eq!(*line, want_line, "{err}");
        }
        other => panic!("expected BadRow, got {other:?}"),
    }
    err.to_string()
}

#[test]
fn reads_labels_and_texts_in_file_order() {
    let data =
        read("austen\tIt is a truth universally acknowledged.\nmelville\tCall me Ishmael.\n")
            .unwrap();
    assert_eq!(data.len(), 2);
    assert!(!data.is_empty());
    assert_eq!(data.labels(), ["austen", "melville"]);
    assert_eq!(data.texts(), ["It is a truth universally acknowledged.", "Call me Ishmael."]);
    assert_eq!(data.get(1), Some(("melville", "Call me Ishmael.")));
    assert_eq!(data.get(2), None);
    let pairs: Vec<_> = data.iter().collect();
    assert_eq!(pairs[0], ("austen", "It is a truth universally acknowledged."));
}

#[test]
fn a_last_line_without_newline_is_read() {
    let data = read("a\tone\nb\ttwo").unwrap();
    assert_eq!(data.texts(), ["one", "two"]);
}

#[test]
fn header_line_is_skipped_in_any_case() {
    for header in ["label\ttext", "LABEL\tText", "Label\ttext\r"] {
        let data = read(&format!("{header}\nx\ty\n")).unwrap();
        assert_eq!(data.labels(), ["x"]);
    }
    // After blank lines it is still the header.
    assert_eq!(read("\n\nlabel\ttext\nx\ty\n").unwrap().len(), 1);
    // Only the first line can be a header: later, it is a row.
    let data = read("x\ty\nlabel\ttext\n").unwrap();
    assert_eq!(data.labels(), ["x", "label"]);
}

#[test]
fn crlf_line_ends_and_a_byte_order_mark_are_dropped() {
    let data = read("\u{feff}label\ttext\r\npos\tgood\r\nneg\tbad\r\n").unwrap();
    assert_eq!(data.labels(), ["pos", "neg"]);
    assert_eq!(data.texts(), ["good", "bad"]);
}

#[test]
fn blank_lines_are_skipped_and_line_numbers_still_count_them() {
    let data = read("\na\tone\n   \n\nb\ttwo\n\n").unwrap();
    assert_eq!(data.len(), 2);
    let msg = bad_row("\na\tone\n   \n\nno tab here\n", 5);
    assert_eq!(msg, "fixture.tsv:5: expected `label<TAB>text`, found no tab");
}

#[test]
fn only_the_first_tab_splits_and_fields_are_trimmed() {
    let data = read(" pos \t  a\tb  \n").unwrap();
    assert_eq!(data.get(0), Some(("pos", "a\tb")));
}

#[test]
fn a_line_without_a_tab_is_a_bad_row() {
    let msg = bad_row("a\tone\nb two\n", 2);
    assert_eq!(msg, "fixture.tsv:2: expected `label<TAB>text`, found no tab");
}

#[test]
fn an_empty_label_is_a_bad_row() {
    let msg = bad_row("a\tone\n \ttwo\n", 2);
    assert_eq!(msg, "fixture.tsv:2: empty label before the tab");
}

#[test]
fn an_empty_text_is_a_bad_row() {
    let msg = bad_row("label\ttext\na\tone\nb\t \r\n", 3);
    assert_eq!(msg, "fixture.tsv:3: empty text after the tab");
}

#[test]
fn invalid_utf8_is_a_bad_row() {
    let err = LabelledTexts::from_reader(&b"a\tok\nb\t\xffbad\n"[..], "f.tsv").unwrap_err();
    assert!(matches!(err, Error::BadRow { line: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
}

#[test]
fn an_empty_file_is_empty_data_naming_the_file() {
    for tsv in ["", "\n\n", "label\ttext\n", "label\ttext\n\n  \n"] {
        let err = read(tsv).unwrap_err();
        assert!(matches!(err, Error::EmptyData { .. }), "{err:?}");
        assert!(err.to_string().contains("fixture.tsv"), "{err}");
    }
}

#[test]
fn read_tsv_reads_a_file_and_names_a_missing_one() {
    let dir = std::env::temp_dir().join(format!("embkit-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.tsv");
    std::fs::write(&path, "label\ttext\nb\tx\na\ty\nb\tz\n").unwrap();
    let data = LabelledTexts::read_tsv(&path).unwrap();
    let missing = LabelledTexts::read_tsv(dir.join("missing.tsv")).unwrap_err();
    std::fs::write(&path, "b\tx\nbroken\n").unwrap();
    let broken = LabelledTexts::read_tsv(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(data.len(), 3);
    assert!(matches!(missing, Error::Io { action: "open", .. }), "{missing:?}");
    assert!(missing.to_string().contains("missing.tsv"), "{missing}");
    assert!(broken.to_string().contains("small.tsv:2: expected"), "{broken}");
}

#[test]
fn class_names_are_sorted_and_unique() {
    let data = read("b\tx\na\ty\nb\tz\nc\tw\n").unwrap();
    assert_eq!(data.class_names(), ["a", "b", "c"]);
    assert_eq!(data.label_ids(&data.class_names()).unwrap(), [1, 0, 1, 2]);
    assert_eq!(data.label_ids(&["c", "b", "a"]).unwrap(), [1, 2, 1, 0]);
}

#[test]
fn an_unknown_label_is_an_unknown_token() {
    let data = read("b\tx\na\ty\n").unwrap();
    let err = data.label_ids(&["b"]).unwrap_err();
    assert!(matches!(&err, Error::UnknownToken { token } if token == "a"), "{err:?}");
}

#[test]
fn new_pairs_labels_with_texts_of_the_same_length() {
    let data = LabelledTexts::new(vec!["a".into()], vec!["x".into()]).unwrap();
    assert_eq!(data.get(0), Some(("a", "x")));
    let err = LabelledTexts::new(vec!["a".into()], vec![]).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err:?}");
}
