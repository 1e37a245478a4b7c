//! Interaction logs: `user item rating [timestamp]` rows, as recommender
//! data sets ship them (MovieLens `u.data`, `ratings.csv`, `ratings.dat`).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use ndarray::Array2;

use super::rows::{open_text, At, DataOptions, DataReport, Delimiter, Header, Parsed, Rows};
use crate::{Error, Result};

/// Raw keys (user or item names as the file spells them) and their dense
/// ids `0..len`, in order of first appearance.
///
/// A model's tables are indexed by these ids; the index is saved with the
/// model so predictions can be asked for by raw key.
///
/// # Examples
///
/// ```
/// use embkit::data::KeyIndex;
///
/// let mut users = KeyIndex::new();
/// assert_eq!(users.insert("196")?, 0);
/// assert_eq!(users.insert("186")?, 1);
/// assert_eq!(users.insert("196")?, 0);
/// assert_eq!(users.id("186"), Some(1));
/// assert_eq!(users.key(0), Some("196"));
/// assert_eq!(users.id("7"), None);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyIndex {
    keys: Vec<String>,
    /// foldhash: a hash-map lookup per key of every row read, several
    /// times faster than std's SipHash on short keys.
    ids: HashMap<String, u32, foldhash::fast::RandomState>,
}

impl KeyIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of `keys`, key `i` getting id `i` (as saved with a model).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a key listed twice, or more keys than
    /// `u32` ids.
    pub fn from_keys(keys: Vec<String>) -> Result<Self> {
        if u32::try_from(keys.len()).is_err() {
            return Err(Error::config("keys", format!("ids are u32; got {} keys", keys.len())));
        }
        let mut ids = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
        for (i, key) in keys.iter().enumerate() {
            if let Some(first) = ids.insert(key.clone(), i as u32) {
                return Err(Error::config(
                    "keys",
                    format!("{key:?} is listed twice (ids {first} and {i})"),
                ));
            }
        }
        Ok(Self { keys, ids })
    }

    /// The id of `key`, added with the next id if it is new.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a new key when the index already holds
    /// `u32::MAX` keys (ids are `u32`, and [`UNKNOWN_ID`] is `u32::MAX`).
    pub fn insert(&mut self, key: &str) -> Result<u32> {
        if let Some(&id) = self.ids.get(key) {
            return Ok(id);
        }
        let id = next_id(self.keys.len(), key)?;
        self.keys.push(key.to_owned());
        self.ids.insert(key.to_owned(), id);
        Ok(id)
    }

    /// The id of `key`, if it is in the index.
    pub fn id(&self, key: &str) -> Option<u32> {
        self.ids.get(key).copied()
    }

    /// The key of `id`.
    pub fn key(&self, id: u32) -> Option<&str> {
        self.keys.get(id as usize).map(String::as_str)
    }

    /// The keys in id order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The id a new key gets in an index of `len` keys.
fn next_id(len: usize, key: &str) -> Result<u32> {
    match u32::try_from(len) {
        Ok(id) if id < UNKNOWN_ID => Ok(id),
        _ => Err(Error::config(
            "keys",
            format!(
                "{key:?} would be key {len}, but an index holds at most {UNKNOWN_ID} keys (ids \
                 are u32, and {UNKNOWN_ID} marks unknown keys)"
            ),
        )),
    }
}

/// One row of an interactions file, with its raw keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    /// The user's key.
    pub user: String,
    /// The item's key.
    pub item: String,
    /// The rating (any finite number).
    pub rating: f32,
    /// The time of the rating, when the file has that column (MovieLens:
    /// seconds since 1970).
    pub timestamp: Option<i64>,
}

/// The id [`Interactions::from_rows_with_keys`] gives a user or item that
/// is not in the index it was given. It is past any table, so a model's
/// `forward` refuses it; [`MatrixFactorization::predict_with_fallback`]
/// predicts from what it knows.
///
/// [`MatrixFactorization::predict_with_fallback`]: crate::model::MatrixFactorization::predict_with_fallback
pub const UNKNOWN_ID: u32 = u32::MAX;

/// Ratings of items by users, with dense ids.
///
/// The format, one interaction per line:
///
/// - `user item rating [timestamp]`, separated by tabs (MovieLens
///   `u.data`), commas (`ratings.csv`), `::` (`ratings.dat`) or spaces;
///   the separator is detected from the first non-blank line unless
///   [`DataOptions::delimiter`] names it. Fields are trimmed.
/// - A header is detected ([`Header::Auto`]) as a first line whose rating
///   column is not a number. Its column names choose the columns: the
///   first name containing `user`, the first containing `item`, `movie`
///   or `product`, the first containing `rating` or `score`, and one
///   containing `time` (MovieLens's `userId,movieId,rating,timestamp`);
///   without such names the columns are taken in the order above.
/// - Every row has as many fields as the first data row (or the header).
///   Ratings are finite numbers; timestamps, when the first row has one,
///   integers.
/// - Blank lines are skipped, CRLF line ends and a UTF-8 byte-order mark
///   are accepted, gzip files are decompressed.
///
/// Raw keys are mapped to dense ids by two [`KeyIndex`]es in order of
/// first appearance, kept so predictions can be made by raw key.
///
/// # Examples
///
/// ```
/// use embkit::data::{DataOptions, Interactions};
///
/// let csv = "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n7,31,4,1260759185\n";
/// let (data, report) =
///     Interactions::from_reader(csv.as_bytes(), "ratings.csv", &DataOptions::new())?;
/// assert_eq!((data.len(), report.skipped), (3, 0));
/// assert_eq!(data.users(), [0, 0, 1]);
/// assert_eq!(data.items(), [0, 1, 0]);
/// assert_eq!(data.ratings(), [2.5, 3.0, 4.0]);
/// assert_eq!(data.user_index().key(1), Some("7"));
/// assert_eq!(data.timestamps().map(|t| t[2]), Some(1260759185));
///
/// let bad = "196\t242\t3\t881250949\n186\t302\tlots\t891717742\n";
/// let err = Interactions::from_reader(bad.as_bytes(), "u.data", &DataOptions::new()).unwrap_err();
/// assert_eq!(err.to_string(), "u.data:2: expected a number in the rating column (3), found \"lots\"");
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Interactions {
    users: Vec<u32>,
    items: Vec<u32>,
    ratings: Vec<f32>,
    timestamps: Option<Vec<i64>>,
    user_index: KeyIndex,
    item_index: KeyIndex,
}

/// Which field holds what.
#[derive(Debug, Clone, Copy)]
struct Columns {
    user: usize,
    item: usize,
    rating: usize,
    timestamp: Option<usize>,
    fields: usize,
}

impl Columns {
    fn positional(fields: usize) -> Self {
        Self { user: 0, item: 1, rating: 2, timestamp: (fields >= 4).then_some(3), fields }
    }

    fn from_header(names: &[&str]) -> Self {
        let find = |words: &[&str]| {
            names.iter().position(|n| {
                let n = n.to_ascii_lowercase();
                words.iter().any(|w| n.contains(w))
            })
        };
        let user = find(&["user"]);
        let item = find(&["item", "movie", "product"]);
        let rating = find(&["rating", "score"]);
        match (user, item, rating) {
            (Some(user), Some(item), Some(rating)) => {
                Self { user, item, rating, timestamp: find(&["time"]), fields: names.len() }
            }
            _ => Self::positional(names.len()),
        }
    }

    fn describe(&self) -> String {
        if self.timestamp.is_some() {
            "`user item rating timestamp`".into()
        } else {
            "`user item rating`".into()
        }
    }
}

/// The row parser of interactions files.
struct InteractionParser {
    header: Header,
    delimiter: Option<Delimiter>,
    columns: Option<Columns>,
}

impl InteractionParser {
    fn parse(&mut self, line: &str, first: bool, at: At<'_>) -> Result<Parsed<Interaction>> {
        let delimiter = *self.delimiter.get_or_insert_with(|| Delimiter::detect(line));
        let fields = delimiter.split(line);
        if first {
            let is_header = match self.header {
                Header::Present => true,
                Header::Absent => false,
                Header::Auto => fields.get(2).is_some_and(|f| f.parse::<f32>().is_err()),
            };
            if is_header {
                self.columns = Some(Columns::from_header(&fields));
                return Ok(Parsed::Skip);
            }
        }
        let columns = *self.columns.get_or_insert_with(|| Columns::positional(fields.len()));
        if fields.len() < 3 || fields.len() != columns.fields {
            return Err(at.bad(format!(
                "expected {} fields separated by {delimiter} ({}), found {}",
                columns.fields.max(3),
                columns.describe(),
                fields.len()
            )));
        }
        let key = |col: usize, what: &str| -> Result<String> {
            let key = fields[col];
            if key.is_empty() {
                return Err(at.bad(format!("empty {what} key in column {}", col + 1)));
            }
            Ok(key.to_owned())
        };
        let user = key(columns.user, "user")?;
        let item = key(columns.item, "item")?;
        let raw = fields[columns.rating];
        let rating = raw.parse::<f32>().ok().filter(|r| r.is_finite()).ok_or_else(|| {
            at.bad(format!(
                "expected a number in the rating column ({}), found {raw:?}",
                columns.rating + 1
            ))
        })?;
        let timestamp = match columns.timestamp {
            None => None,
            Some(col) => {
                let raw = fields[col];
                Some(raw.parse::<i64>().map_err(|_| {
                    at.bad(format!(
                        "expected an integer in the timestamp column ({}), found {raw:?}",
                        col + 1
                    ))
                })?)
            }
        };
        Ok(Parsed::Row(Interaction { user, item, rating, timestamp }))
    }
}

impl Interactions {
    /// Reads an interactions file (format in the [type docs](Self)).
    ///
    /// # Errors
    ///
    /// - [`Error::BadRow`] with the file, the 1-based line number and
    ///   what was expected for the first bad row (unless
    ///   [`DataOptions::skip_bad_rows`]);
    /// - [`Error::EmptyData`] if there is no row;
    /// - [`Error::Io`] if the file cannot be opened or read.
    pub fn read(path: impl AsRef<Path>, options: &DataOptions) -> Result<(Self, DataReport)> {
        Self::from_rows(Self::rows(path, options)?)
    }

    /// Reads interactions from any reader; `source` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn from_reader(
        reader: impl BufRead,
        source: impl AsRef<Path>,
        options: &DataOptions,
    ) -> Result<(Self, DataReport)> {
        Self::from_rows(Self::rows_from_reader(reader, source, options))
    }

    /// The rows of a file with their raw keys, read one line at a time
    /// (for files larger than memory).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be opened; the items are errors as
    /// in [`read`](Self::read).
    pub fn rows(path: impl AsRef<Path>, options: &DataOptions) -> Result<Rows<Interaction>> {
        let path = path.as_ref();
        Ok(Self::rows_from_reader(open_text(path)?, path, options))
    }

    /// The rows of any reader; `source` names it in errors.
    pub fn rows_from_reader<R: BufRead>(
        reader: R,
        source: impl AsRef<Path>,
        options: &DataOptions,
    ) -> Rows<Interaction, R> {
        let mut parser = InteractionParser {
            header: options.header,
            delimiter: options.delimiter,
            columns: None,
        };
        Rows::new(
            reader,
            source.as_ref(),
            "`user item rating`",
            options.skip_bad_rows,
            Box::new(move |line, first, at| parser.parse(line, first, at)),
        )
    }

    /// Collects rows, giving new users and items the next ids.
    ///
    /// # Errors
    ///
    /// The first error item.
    pub fn from_rows<R: BufRead>(rows: Rows<Interaction, R>) -> Result<(Self, DataReport)> {
        Self::collect(rows, KeyIndex::new(), KeyIndex::new(), true)
    }

    /// Collects rows against fixed indexes (a trained model's): users and
    /// items not in them get [`UNKNOWN_ID`].
    ///
    /// # Errors
    ///
    /// The first error item.
    pub fn from_rows_with_keys<R: BufRead>(
        rows: Rows<Interaction, R>,
        users: KeyIndex,
        items: KeyIndex,
    ) -> Result<(Self, DataReport)> {
        Self::collect(rows, users, items, false)
    }

    fn collect<R: BufRead>(
        mut rows: Rows<Interaction, R>,
        mut user_index: KeyIndex,
        mut item_index: KeyIndex,
        grow: bool,
    ) -> Result<(Self, DataReport)> {
        let mut data = Self {
            users: Vec::new(),
            items: Vec::new(),
            ratings: Vec::new(),
            timestamps: Some(Vec::new()),
            user_index: KeyIndex::new(),
            item_index: KeyIndex::new(),
        };
        for row in &mut rows {
            let row = row?;
            let (user, item) = if grow {
                (user_index.insert(&row.user)?, item_index.insert(&row.item)?)
            } else {
                (
                    user_index.id(&row.user).unwrap_or(UNKNOWN_ID),
                    item_index.id(&row.item).unwrap_or(UNKNOWN_ID),
                )
            };
            data.users.push(user);
            data.items.push(item);
            data.ratings.push(row.rating);
            match (&mut data.timestamps, row.timestamp) {
                (Some(ts), Some(t)) => ts.push(t),
                (ts, _) => *ts = None,
            }
        }
        data.user_index = user_index;
        data.item_index = item_index;
        Ok((data, rows.into_report()))
    }

    /// Interactions from id arrays and the indexes that name the ids.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the arrays differ in length;
    /// [`Error::IdOutOfRange`] for an id past its index (other than
    /// [`UNKNOWN_ID`]); [`Error::InvalidConfig`] for a rating that is not
    /// finite.
    pub fn new(
        users: Vec<u32>,
        items: Vec<u32>,
        ratings: Vec<f32>,
        timestamps: Option<Vec<i64>>,
        user_index: KeyIndex,
        item_index: KeyIndex,
    ) -> Result<Self> {
        let n = users.len();
        for (what, len) in [
            ("items", items.len()),
            ("ratings", ratings.len()),
            ("timestamps", timestamps.as_ref().map_or(n, Vec::len)),
        ] {
            if len != n {
                return Err(Error::shape(what, format!("[{n}], one per interaction"), &[len]));
            }
        }
        for (ids, index) in [(&users, &user_index), (&items, &item_index)] {
            if let Some(&id) =
                ids.iter().find(|&&id| id != UNKNOWN_ID && id as usize >= index.len())
            {
                return Err(Error::IdOutOfRange { id, num_embeddings: index.len() });
            }
        }
        if let Some(r) = ratings.iter().find(|r| !r.is_finite()) {
            return Err(Error::config("ratings", format!("must be finite, got {r}")));
        }
        Ok(Self { users, items, ratings, timestamps, user_index, item_index })
    }

    /// The number of interactions.
    pub fn len(&self) -> usize {
        self.ratings.len()
    }

    /// Whether there are no interactions.
    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }

    /// The user id of each interaction.
    pub fn users(&self) -> &[u32] {
        &self.users
    }

    /// The item id of each interaction.
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// The rating of each interaction.
    pub fn ratings(&self) -> &[f32] {
        &self.ratings
    }

    /// The timestamp of each interaction, when every row had one.
    pub fn timestamps(&self) -> Option<&[i64]> {
        self.timestamps.as_deref()
    }

    /// The users' keys and ids.
    pub fn user_index(&self) -> &KeyIndex {
        &self.user_index
    }

    /// The items' keys and ids.
    pub fn item_index(&self) -> &KeyIndex {
        &self.item_index
    }

    /// The number of user ids (the user table's rows).
    pub fn num_users(&self) -> usize {
        self.user_index.len()
    }

    /// The number of item ids (the item table's rows).
    pub fn num_items(&self) -> usize {
        self.item_index.len()
    }

    /// The mean rating (0 when empty), summed in `f64`.
    pub fn mean_rating(&self) -> f32 {
        if self.is_empty() {
            return 0.0;
        }
        (self.ratings.iter().map(|&r| f64::from(r)).sum::<f64>() / self.len() as f64) as f32
    }

    /// The lowest and highest rating, `None` when empty.
    pub fn rating_range(&self) -> Option<(f32, f32)> {
        let mut it = self.ratings.iter().copied();
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), r| (lo.min(r), hi.max(r))))
    }

    /// How many interactions have a user or an item of [`UNKNOWN_ID`].
    pub fn unknown(&self) -> usize {
        self.users
            .iter()
            .zip(&self.items)
            .filter(|&(&u, &i)| u == UNKNOWN_ID || i == UNKNOWN_ID)
            .count()
    }

    /// The interactions at `indices`, in that order, with the same
    /// indexes (ids keep their meaning).
    ///
    /// # Panics
    ///
    /// If an index is not below [`len`](Self::len).
    pub fn subset(&self, indices: &[usize]) -> Self {
        let pick_u32 = |v: &[u32]| indices.iter().map(|&i| v[i]).collect();
        Self {
            users: pick_u32(&self.users),
            items: pick_u32(&self.items),
            ratings: indices.iter().map(|&i| self.ratings[i]).collect(),
            timestamps: self.timestamps.as_ref().map(|t| indices.iter().map(|&i| t[i]).collect()),
            user_index: self.user_index.clone(),
            item_index: self.item_index.clone(),
        }
    }

    /// The model input: one `[user id, item id]` row per interaction.
    ///
    /// # Shapes
    ///
    /// - returns: `[len, 2]`
    pub fn ids(&self) -> Array2<u32> {
        let mut ids = Array2::zeros((self.len(), 2));
        for (mut row, (&u, &i)) in ids.outer_iter_mut().zip(self.users.iter().zip(&self.items)) {
            row[0] = u;
            row[1] = i;
        }
        ids
    }

    /// The targets: the ratings as a column.
    ///
    /// # Shapes
    ///
    /// - returns: `[len, 1]`
    pub fn targets(&self) -> Array2<f32> {
        Array2::from_shape_vec((self.len(), 1), self.ratings.clone()).expect("one rating per row")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_index_refuses_a_new_key() {
        assert_eq!(next_id(7, "a").unwrap(), 7);
        assert_eq!(next_id(u32::MAX as usize - 1, "a").unwrap(), u32::MAX - 1);
        let err = next_id(u32::MAX as usize, "196").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid keys: \"196\" would be key 4294967295, but an index holds at most 4294967295 \
             keys (ids are u32, and 4294967295 marks unknown keys)"
        );
        assert!(next_id(usize::MAX, "a").is_err());
    }
}
