//! Approximate nearest neighbours: a hierarchical navigable small world
//! graph (HNSW, Malkov & Yashunin 2016) over the rows of a table.
//!
//! The graph is built once, deterministically for a seed, and saved
//! beside the table in a file of its own (see [`HnswIndex::to_bytes`]).
//! It does not hold the rows: a search reads them from the table, which
//! is checked against the shape and checksum recorded at build time when
//! an index is loaded.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ndarray::ArrayView2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::neighbors::{in_parts, ExactIndex, Neighbor, Similarity};
use super::scan;
use crate::format::write_atomically;
use crate::{Error, Result, Threads};

/// The `ef` of a search when none is given: the size of the candidate
/// list, at least `k`. Larger is slower and finds more true neighbours.
pub const DEFAULT_EF_SEARCH: usize = 64;

/// The first bytes of an index file.
pub const HNSW_MAGIC: [u8; 8] = *b"EMBKHNSW";

/// The version of the index file layout this crate writes and reads.
pub const HNSW_FORMAT_VERSION: u32 = 1;

/// No node has more layers than this (a level is about `ln(n) / ln(m)`).
const MAX_LEVEL: usize = 32;

/// The largest `m` accepted.
const MAX_M: usize = 256;

/// Settings of an [`HnswIndex`].
///
/// Start from [`HnswConfig::new`] and change what you need with the
/// `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HnswConfig {
    /// Links per node on the upper layers; twice as many on the bottom
    /// layer. 16 by default; 2 to 256. More links give better recall for
    /// more memory and slower builds.
    pub m: usize,
    /// The candidate list of a build: how hard each insertion looks for
    /// its neighbours. 200 by default; at least 1 (values below `m` act
    /// as `m`).
    pub ef_construction: usize,
    /// Seeds the random levels of the nodes: the same seed, table and
    /// settings build the same graph.
    pub seed: u64,
}

impl Default for HnswConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl HnswConfig {
    /// `m` 16, `ef_construction` 200, seed 0.
    pub fn new() -> Self {
        Self { m: 16, ef_construction: 200, seed: 0 }
    }

    /// Sets [`m`](Self::m).
    pub fn with_m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Sets [`ef_construction`](Self::ef_construction).
    pub fn with_ef_construction(mut self, ef_construction: usize) -> Self {
        self.ef_construction = ef_construction;
        self
    }

    /// Sets [`seed`](Self::seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn validate(&self) -> Result<()> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::config("m", format!("must be 2 to {MAX_M}, got {}", self.m)));
        }
        if self.ef_construction == 0 {
            return Err(Error::config("ef_construction", "must be at least 1, got 0"));
        }
        Ok(())
    }
}

/// A candidate: a node and how close it is to the query (larger is
/// closer). Ordered so the *better* is the greater: larger closeness,
/// then smaller id; NaN ranks below everything.
#[derive(Debug, Clone, Copy)]
struct Cand {
    close: f32,
    id: u32,
}

impl Cand {
    fn new(close: f32, id: u32) -> Self {
        Self { close: scan::rank_key(close), id }
    }
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.close.total_cmp(&other.close).then(other.id.cmp(&self.id))
    }
}

/// Nodes seen by one search, cleared in O(1) by moving to a new epoch.
#[derive(Debug)]
struct Visited {
    marks: Vec<u32>,
    epoch: u32,
}

impl Visited {
    fn new(n: usize) -> Self {
        Self { marks: vec![0; n], epoch: 0 }
    }

    fn clear(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `id`; whether it was new.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let mark = &mut self.marks[id as usize];
        let new = *mark != self.epoch;
        *mark = self.epoch;
        new
    }
}

/// The links of every node on every layer, in flat arrays.
///
/// Node `i` has `levels[i] + 1` layers. On layer 0 it has a slot of
/// `1 + m0` values at `i * (1 + m0)` of `bottom`: the number of links,
/// then the links. On layers `1..=levels[i]` it has slots of `1 + m`
/// values in `upper`, from `upper_start[i]`.
#[derive(Debug, Clone, PartialEq)]
struct Graph {
    m: usize,
    m0: usize,
    levels: Vec<u8>,
    bottom: Vec<u32>,
    upper_start: Vec<usize>,
    upper: Vec<u32>,
    /// The node on the top layer where searches start; `None` when empty.
    entry: Option<u32>,
}

impl Graph {
    fn with_levels(levels: Vec<u8>, m: usize) -> Self {
        let m0 = 2 * m;
        let n = levels.len();
        let mut upper_start = Vec::with_capacity(n);
        let mut total = 0;
        for &level in &levels {
            upper_start.push(total);
            total += level as usize * (1 + m);
        }
        Self {
            m,
            m0,
            bottom: vec![0; n * (1 + m0)],
            upper: vec![0; total],
            upper_start,
            levels,
            entry: None,
        }
    }

    fn top_level(&self) -> usize {
        self.entry.map_or(0, |e| self.levels[e as usize] as usize)
    }

    /// The slot of `id` on `layer`: `(count, links)`.
    fn slot(&self, id: u32, layer: usize) -> &[u32] {
        let id = id as usize;
        if layer == 0 {
            &self.bottom[id * (1 + self.m0)..(id + 1) * (1 + self.m0)]
        } else {
            let start = self.upper_start[id] + (layer - 1) * (1 + self.m);
            &self.upper[start..start + 1 + self.m]
        }
    }

    fn slot_mut(&mut self, id: u32, layer: usize) -> &mut [u32] {
        let id = id as usize;
        if layer == 0 {
            &mut self.bottom[id * (1 + self.m0)..(id + 1) * (1 + self.m0)]
        } else {
            let start = self.upper_start[id] + (layer - 1) * (1 + self.m);
            &mut self.upper[start..start + 1 + self.m]
        }
    }

    /// The links of `id` on `layer`.
    #[inline]
    fn links(&self, id: u32, layer: usize) -> &[u32] {
        let slot = self.slot(id, layer);
        &slot[1..1 + slot[0] as usize]
    }

    fn set_links(&mut self, id: u32, layer: usize, links: &[u32]) {
        let slot = self.slot_mut(id, layer);
        slot[0] = links.len() as u32;
        slot[1..1 + links.len()].copy_from_slice(links);
    }

    fn capacity(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }
}

/// An HNSW graph over the rows of a table, with the table it searches.
///
/// [`build`](Self::build) it once from a table, [`save`](Self::save) it
/// beside the table, and [`load`](Self::load) it with the same table
/// later. [`search`](Self::search) returns the same [`Neighbor`]s as the
/// exact [`ExactIndex::search`], with the same scores, but looks at only
/// a small part of the rows, so it may miss some true neighbours (see
/// `recall` in the tests: about 0.95 to 0.99 for 10 neighbours with the
/// defaults).
///
/// # Examples
///
/// ```
/// use embkit::query::{HnswConfig, HnswIndex, Similarity};
/// use embkit::Threads;
/// use ndarray::Array2;
///
/// let table = Array2::from_shape_fn((500, 8), |(r, c)| ((r * 31 + c * 17) % 23) as f32 - 11.0);
/// let index = HnswIndex::build(table.view(), Similarity::Cosine, &HnswConfig::new())?;
/// let near = index.search(table.row(3).as_slice().unwrap(), 5, 64, &[3])?;
/// assert_eq!(near.len(), 5);
///
/// let bytes = index.to_bytes();
/// let again = HnswIndex::from_bytes(&bytes, "index.hnsw", table.view(), Threads::single())?;
/// assert_eq!(again.search(table.row(3).as_slice().unwrap(), 5, 64, &[3])?, near);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug)]
pub struct HnswIndex<'a> {
    config: HnswConfig,
    table: ExactIndex<'a>,
    checksum: u64,
    graph: Graph,
    /// Visited lists for searches, reused (one per concurrent search).
    pool: Mutex<Vec<Visited>>,
}

impl<'a> HnswIndex<'a> {
    /// Builds the graph over the rows of `table` for searches by
    /// `similarity`, inserting rows in id order on one thread, so the same
    /// table, similarity and config give the same graph.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a config out of range (see
    /// [`HnswConfig`]) or a table of more than `u32::MAX` rows.
    pub fn build(
        table: ArrayView2<'a, f32>,
        similarity: Similarity,
        config: &HnswConfig,
    ) -> Result<Self> {
        config.validate()?;
        let n = table.nrows();
        if u32::try_from(n).is_err() {
            return Err(Error::config(
                "table",
                format!("{n} rows; an index holds at most 2^32 - 1"),
            ));
        }
        let checksum = table_checksum(table);
        let table = ExactIndex::without_prefilter(table, similarity, Threads::single());
        let mut rng = StdRng::seed_from_u64(config.seed);
        let ml = 1.0 / (config.m as f64).ln();
        let levels: Vec<u8> = (0..n)
            .map(|_| {
                let u = 1.0 - rng.random::<f64>(); // (0, 1]
                ((-u.ln() * ml) as usize).min(MAX_LEVEL) as u8
            })
            .collect();
        let mut index = Self {
            config: config.clone(),
            table,
            checksum,
            graph: Graph::with_levels(levels, config.m),
            pool: Mutex::new(Vec::new()),
        };
        let mut visited = Visited::new(n);
        for id in 0..n as u32 {
            index.insert(id, &mut visited);
        }
        Ok(index)
    }

    /// Adds node `id` (all smaller ids are in the graph already).
    fn insert(&mut self, id: u32, visited: &mut Visited) {
        let Some(entry) = self.graph.entry else {
            self.graph.entry = Some(id);
            return;
        };
        let level = self.graph.levels[id as usize] as usize;
        let top = self.graph.top_level();
        let query = self.table.row(id).to_vec();
        let close = |other: u32| self.closeness_rows(&query, id, other);
        let mut entries = vec![Cand::new(close(entry), entry)];
        for layer in (level + 1..=top).rev() {
            entries = vec![self.greedy(&close, entries[0], layer)];
        }
        let mut chosen_per_layer = Vec::new();
        for layer in (0..=level.min(top)).rev() {
            let found = self.search_layer(
                &close,
                &entries,
                self.config.ef_construction.max(self.config.m),
                layer,
                visited,
            );
            let chosen = self.select(&found, self.config.m);
            chosen_per_layer.push((layer, chosen));
            entries = found;
        }
        for (layer, chosen) in chosen_per_layer {
            let ids: Vec<u32> = chosen.iter().map(|c| c.id).collect();
            self.graph.set_links(id, layer, &ids);
            for &other in &ids {
                self.link(other, id, layer);
            }
        }
        if level > top {
            self.graph.entry = Some(id);
        }
    }

    /// Adds a link `from → to` on `layer`, pruning `from`'s links with the
    /// heuristic when it has too many.
    fn link(&mut self, from: u32, to: u32, layer: usize) {
        let capacity = self.graph.capacity(layer);
        let links = self.graph.links(from, layer);
        if links.len() < capacity {
            let mut new = links.to_vec();
            new.push(to);
            self.graph.set_links(from, layer, &new);
            return;
        }
        let row = self.table.row(from).to_vec();
        let mut cands: Vec<Cand> = links
            .iter()
            .chain(std::iter::once(&to))
            .map(|&other| Cand::new(self.closeness_rows(&row, from, other), other))
            .collect();
        cands.sort_by(|a, b| b.cmp(a));
        let kept: Vec<u32> = self.select(&cands, capacity).iter().map(|c| c.id).collect();
        self.graph.set_links(from, layer, &kept);
    }

    /// The neighbour-selection heuristic: from `cands` (best first), keep
    /// a candidate only if it is closer to the query than to every
    /// candidate kept before it, up to `m`. This keeps links that point in
    /// different directions.
    fn select(&self, cands: &[Cand], m: usize) -> Vec<Cand> {
        let mut kept: Vec<Cand> = Vec::with_capacity(m);
        for &c in cands {
            if kept.len() >= m {
                break;
            }
            let row = self.table.row(c.id);
            let diverse = kept
                .iter()
                .all(|k| scan::rank_key(self.closeness_rows(row, c.id, k.id)) <= c.close);
            if diverse {
                kept.push(c);
            }
        }
        kept
    }

    /// How close row `b` is to `a` (row `a_id` of the table); larger is
    /// closer, ordered as the scores of the similarity.
    #[inline]
    fn closeness_rows(&self, a: &[f32], a_id: u32, b: u32) -> f32 {
        self.closeness(a, self.inverse_norm_of(a_id), b)
    }

    fn inverse_norm_of(&self, id: u32) -> f64 {
        match self.table.similarity() {
            Similarity::Cosine => self.table.inverse_norm(id),
            _ => 0.0,
        }
    }

    /// How close row `b` is to `query` whose inverse norm is `inv_query`:
    /// the similarity's score, except minus the *squared* distance for
    /// Euclidean (the same order, without a square root).
    #[inline]
    fn closeness(&self, query: &[f32], inv_query: f64, b: u32) -> f32 {
        let row = self.table.row(b);
        match self.table.similarity() {
            Similarity::Cosine => {
                scan::cosine(scan::dot(query, row), inv_query, self.table.inverse_norm(b))
            }
            Similarity::Dot => scan::dot(query, row),
            Similarity::Euclidean => -scan::squared_distance(query, row),
        }
    }

    /// Moves from `start` to a closer neighbour on `layer` while there is
    /// one.
    fn greedy(&self, close: &impl Fn(u32) -> f32, start: Cand, layer: usize) -> Cand {
        let mut best = start;
        loop {
            let mut moved = false;
            for &other in self.graph.links(best.id, layer) {
                let c = Cand::new(close(other), other);
                if c > best {
                    best = c;
                    moved = true;
                }
            }
            if !moved {
                return best;
            }
        }
    }

    /// The `ef` nodes closest to the query found on `layer` from
    /// `entries`, best first (Algorithm 2 of the paper).
    fn search_layer(
        &self,
        close: &impl Fn(u32) -> f32,
        entries: &[Cand],
        ef: usize,
        layer: usize,
        visited: &mut Visited,
    ) -> Vec<Cand> {
        visited.clear();
        let mut candidates: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef * 2);
        let mut found: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef + 1);
        for &e in entries {
            if visited.insert(e.id) {
                candidates.push(e);
                found.push(Reverse(e));
                if found.len() > ef {
                    found.pop();
                }
            }
        }
        while let Some(c) = candidates.pop() {
            if found.len() >= ef && found.peek().is_some_and(|worst| c < worst.0) {
                break;
            }
            for &other in self.graph.links(c.id, layer) {
                if !visited.insert(other) {
                    continue;
                }
                let cand = Cand::new(close(other), other);
                if found.len() < ef || found.peek().is_some_and(|worst| cand > worst.0) {
                    candidates.push(cand);
                    found.push(Reverse(cand));
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
        let mut out: Vec<Cand> = found.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// The similarity the graph was built for.
    pub fn similarity(&self) -> Similarity {
        self.table.similarity()
    }

    /// The settings the graph was built with.
    pub fn config(&self) -> &HnswConfig {
        &self.config
    }

    /// The number of rows (nodes).
    pub fn num_embeddings(&self) -> usize {
        self.table.num_embeddings()
    }

    /// The length of each row.
    pub fn embedding_dim(&self) -> usize {
        self.table.embedding_dim()
    }

    /// The checksum of the table the graph was built on (see
    /// [`table_checksum`]).
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// The table, for exact searches and scores.
    pub fn exact(&self) -> &ExactIndex<'a> {
        &self.table
    }

    /// About `k` of the rows nearest to `query`, nearest first, with the
    /// ids in `exclude` left out: the best `k` of the `ef` candidates the
    /// graph search finds (`ef` is raised to `k` plus the number of
    /// excluded ids when smaller). Scores are those of
    /// [`ExactIndex::score`]; ties go to the smaller id.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `query` does not have `embedding_dim`
    /// values; [`Error::InvalidConfig`] if the query has a NaN or infinite
    /// value.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        exclude: &[u32],
    ) -> Result<Vec<Neighbor>> {
        super::neighbors::check_query(self.embedding_dim(), query)?;
        let Some(entry) = self.graph.entry else { return Ok(Vec::new()) };
        if k == 0 {
            return Ok(Vec::new());
        }
        let inv_query = match self.similarity() {
            Similarity::Cosine => scan::inverse_norm(scan::dot(query, query)),
            _ => 0.0,
        };
        let close = |id: u32| self.closeness(query, inv_query, id);
        let mut start = Cand::new(close(entry), entry);
        for layer in (1..=self.graph.top_level()).rev() {
            start = self.greedy(&close, start, layer);
        }
        let ef = ef.max(k.saturating_add(exclude.len()));
        let mut visited = self
            .pool
            .lock()
            .map(|mut pool| pool.pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Visited::new(self.num_embeddings()));
        let found = self.search_layer(&close, &[start], ef, 0, &mut visited);
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(visited);
        }
        let mut near: Vec<Neighbor> = found
            .into_iter()
            .filter(|c| !exclude.contains(&c.id))
            .map(|c| Neighbor { id: c.id, similarity: self.table.score(query, c.id) })
            .collect();
        near.sort_by(scan::better_first);
        near.truncate(k);
        Ok(near)
    }

    /// [`search`](Self::search) for each row of `queries`, shared out
    /// between up to `threads` threads; `exclude` is empty or one list
    /// per query. The answer does not depend on `threads`.
    ///
    /// # Errors
    ///
    /// As [`search`](Self::search) for the first query that fails;
    /// [`Error::ShapeMismatch`] if `exclude` is neither empty nor one list
    /// per query.
    pub fn search_batch(
        &self,
        queries: ArrayView2<'_, f32>,
        k: usize,
        ef: usize,
        exclude: &[Vec<u32>],
        threads: Threads,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let n = queries.nrows();
        if !exclude.is_empty() && exclude.len() != n {
            return Err(Error::shape(
                "exclude lists",
                format!("none or one per query ({n})"),
                &[exclude.len()],
            ));
        }
        let queries = queries.as_standard_layout();
        let parts = threads.parts_for(n, 1);
        in_parts(n, parts, |ids| {
            ids.map(|i| {
                let query = queries.row(i);
                let skip = exclude.get(i).map_or(&[][..], Vec::as_slice);
                self.search(query.as_slice().expect("standard layout"), k, ef, skip)
            })
            .collect::<Result<Vec<_>>>()
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()
        .map(|parts| parts.concat())
    }

    /// Writes the index to `path` (see [`to_bytes`](Self::to_bytes))
    /// through a temporary file in the same directory, renamed into place.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), &self.to_bytes())
    }

    /// Reads an index written by [`save`](Self::save) for `table`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; otherwise as
    /// [`from_bytes`](Self::from_bytes).
    pub fn load(
        path: impl AsRef<Path>,
        table: ArrayView2<'a, f32>,
        threads: Threads,
    ) -> Result<Self> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(Error::io("read", path))?;
        Self::from_bytes(&bytes, path, table, threads)
    }

    /// The index file: all little-endian.
    ///
    /// | bytes | value |
    /// |---|---|
    /// | 8 | [`HNSW_MAGIC`] |
    /// | 4 | [`HNSW_FORMAT_VERSION`] |
    /// | 4 | similarity: 0 cosine, 1 dot, 2 Euclidean |
    /// | 8, 8 | `num_embeddings` `n`, `embedding_dim` |
    /// | 8 | the table's checksum ([`table_checksum`]) |
    /// | 4, 4, 8 | `m`, `ef_construction`, `seed` |
    /// | 4 | the entry node (`u32::MAX` when `n` is 0) |
    /// | `n` | each node's level, one byte |
    /// | `4 · n · (1 + 2m)` | layer 0: per node, the number of links, then `2m` slots |
    /// | `4 · Σ level · (1 + m)` | upper layers: per node and layer, the number of links, then `m` slots |
    /// | 8 | a checksum of all the bytes before it |
    pub fn to_bytes(&self) -> Vec<u8> {
        let g = &self.graph;
        let mut out = Vec::with_capacity(
            HEADER_BYTES + g.levels.len() + 4 * (g.bottom.len() + g.upper.len()) + 8,
        );
        out.extend_from_slice(&HNSW_MAGIC);
        out.extend_from_slice(&HNSW_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&similarity_code(self.similarity()).to_le_bytes());
        out.extend_from_slice(&(self.num_embeddings() as u64).to_le_bytes());
        out.extend_from_slice(&(self.embedding_dim() as u64).to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
        out.extend_from_slice(&(self.config.m as u32).to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.config.ef_construction).unwrap_or(u32::MAX).to_le_bytes(),
        );
        out.extend_from_slice(&self.config.seed.to_le_bytes());
        out.extend_from_slice(&g.entry.unwrap_or(u32::MAX).to_le_bytes());
        debug_assert_eq!(out.len(), HEADER_BYTES);
        out.extend_from_slice(&g.levels);
        for &x in g.bottom.iter().chain(&g.upper) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        let sum = bytes_checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Reads the bytes of [`to_bytes`](Self::to_bytes) for `table`
    /// (`path` only names the file in errors), checking the file before
    /// anything is allocated for it: every size against the length of
    /// `bytes`, every link against the number of rows, and the final
    /// checksum. Then the table's shape and checksum must be those the
    /// graph was built on (computed on up to `threads` threads).
    ///
    /// # Errors
    ///
    /// [`Error::BadBinaryFile`] for bytes that are not an index, of
    /// another version, truncated or damaged; [`Error::ShapeMismatch`]
    /// for a table of another shape; [`Error::InvalidConfig`] for a table
    /// of the same shape whose values differ from the table the index
    /// was built on.
    pub fn from_bytes(
        bytes: &[u8],
        path: impl Into<PathBuf>,
        table: ArrayView2<'a, f32>,
        threads: Threads,
    ) -> Result<Self> {
        let path = path.into();
        let (header, graph) = parse(bytes, &path)?;
        if (header.n, header.dim) != table.dim() {
            return Err(Error::shape(
                "table for the index",
                format!(
                    "[{}, {}], the shape of the vectors {} was built for",
                    header.n,
                    header.dim,
                    path.display()
                ),
                &[table.nrows(), table.ncols()],
            ));
        }
        let checksum = table_checksum(table);
        if checksum != header.checksum {
            return Err(Error::config(
                "table",
                format!(
                    "the vectors' checksum {checksum:016x} differs from {:016x}, that of the \
                     vectors {} was built for: rebuild the index for these vectors",
                    header.checksum,
                    path.display()
                ),
            ));
        }
        Ok(Self {
            config: header.config,
            table: ExactIndex::without_prefilter(table, header.similarity, threads),
            checksum,
            graph,
            pool: Mutex::new(Vec::new()),
        })
    }
}

/// Bytes before the levels.
const HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 8 + 8 + 4 + 4 + 8 + 4;

fn similarity_code(similarity: Similarity) -> u32 {
    match similarity {
        Similarity::Cosine => 0,
        Similarity::Dot => 1,
        Similarity::Euclidean => 2,
    }
}

struct Header {
    similarity: Similarity,
    n: usize,
    dim: usize,
    checksum: u64,
    config: HnswConfig,
}

/// Little-endian reads from a byte slice, each checked against its end.
struct Cursor<'b> {
    bytes: &'b [u8],
    at: usize,
    path: &'b Path,
}

impl Cursor<'_> {
    fn bad(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::BadBinaryFile {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end =
            self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or_else(|| {
                self.bad(self.at, format!("the file ends inside the {what} (truncated?)"))
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
}

/// Parses and checks an index file.
fn parse(bytes: &[u8], path: &Path) -> Result<(Header, Graph)> {
    let mut c = Cursor { bytes, at: 0, path };
    let magic = c.take(8, "magic")?;
    if magic != HNSW_MAGIC {
        return Err(c.bad(0, "not an embkit HNSW index (no EMBKHNSW magic)"));
    }
    let version = c.u32("version")?;
    if version != HNSW_FORMAT_VERSION {
        return Err(c.bad(
            8,
            format!(
                "index format version {version} is not supported \
                 (this embkit reads version {HNSW_FORMAT_VERSION})"
            ),
        ));
    }
    let similarity = match c.u32("similarity")? {
        0 => Similarity::Cosine,
        1 => Similarity::Dot,
        2 => Similarity::Euclidean,
        other => return Err(c.bad(12, format!("unknown similarity code {other}"))),
    };
    let n = c.u64("header")?;
    let dim = c.u64("header")?;
    let checksum = c.u64("header")?;
    let m = c.u32("header")? as usize;
    let ef_construction = c.u32("header")? as usize;
    let seed = c.u64("header")?;
    let entry = c.u32("header")?;
    let config = HnswConfig { m, ef_construction, seed };
    config.validate().map_err(|e| c.bad(40, format!("bad settings: {e}")))?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n < u32::MAX as usize)
        .ok_or_else(|| c.bad(16, format!("{n} rows is more than an index holds")))?;
    let dim = usize::try_from(dim).map_err(|_| c.bad(24, format!("dim {dim} is too large")))?;
    // Everything after the header must fit in the file before anything is
    // allocated: the levels (n bytes) and layer 0 first.
    let m0 = 2 * m;
    let rest = bytes.len() - c.at;
    let fixed = n
        .checked_mul(1 + 4 * (1 + m0))
        .and_then(|x| x.checked_add(8))
        .filter(|&need| need <= rest)
        .ok_or_else(|| {
            c.bad(
                c.at,
                format!("{n} rows with m {m} need more than the {rest} bytes after the header"),
            )
        })?;
    let levels_at = c.at;
    let levels = c.take(n, "levels")?.to_vec();
    if let Some(i) = levels.iter().position(|&l| l as usize > MAX_LEVEL) {
        return Err(c.bad(levels_at + i, format!("level {} is above {MAX_LEVEL}", levels[i])));
    }
    let upper_slots: usize = levels.iter().map(|&l| l as usize * (1 + m)).sum();
    let need = upper_slots.checked_mul(4).and_then(|x| x.checked_add(fixed));
    if need != Some(rest) {
        return Err(c.bad(
            levels_at,
            format!(
                "the file has {rest} bytes after the header; {n} rows with these levels need {}",
                need.map_or("more than a usize counts".into(), |x| x.to_string())
            ),
        ));
    }
    let body_end = bytes.len() - 8;
    let stored = u64::from_le_bytes(bytes[body_end..].try_into().expect("8 bytes"));
    if stored != bytes_checksum(&bytes[..body_end]) {
        return Err(c.bad(body_end, "the checksum does not match: the file is damaged"));
    }
    let mut graph = Graph::with_levels(levels, m);
    let links_at = c.at;
    for (i, x) in graph.bottom.iter_mut().chain(graph.upper.iter_mut()).enumerate() {
        let b = &bytes[links_at + 4 * i..links_at + 4 * i + 4];
        *x = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    // Link counts within their slots, links to existing nodes on layers
    // those nodes have.
    for id in 0..n as u32 {
        for layer in 0..=graph.levels[id as usize] as usize {
            let slot = graph.slot(id, layer);
            if slot[0] as usize > graph.capacity(layer) {
                return Err(c.bad(
                    links_at,
                    format!(
                        "node {id} has {} links on layer {layer}, more than its slots",
                        slot[0]
                    ),
                ));
            }
            if let Some(&bad) = graph
                .links(id, layer)
                .iter()
                .find(|&&to| to as usize >= n || (graph.levels[to as usize] as usize) < layer)
            {
                return Err(c.bad(
                    links_at,
                    format!("node {id} links to {bad} on layer {layer}, which has no such node"),
                ));
            }
        }
    }
    graph.entry = match (n, entry) {
        (0, u32::MAX) => None,
        (0, e) => return Err(c.bad(44, format!("entry node {e} in an empty index"))),
        (_, e) if e as usize >= n => {
            return Err(c.bad(44, format!("entry node {e} is not one of the {n} rows")))
        }
        (_, e) => {
            let top = graph.levels.iter().copied().max().unwrap_or(0);
            if graph.levels[e as usize] != top {
                return Err(c.bad(44, format!("entry node {e} is not on the top layer {top}")));
            }
            Some(e)
        }
    };
    Ok((Header { similarity, n, dim, checksum, config }, graph))
}

/// A 64-bit checksum of a table's shape and the bits of its values, to
/// tell whether an index belongs to a table. Not cryptographic.
///
/// # Examples
///
/// ```
/// use embkit::query::table_checksum;
/// use ndarray::array;
///
/// let a = array![[1.0, 2.0], [3.0, 4.0]];
/// let b = array![[1.0, 2.0], [3.0, 4.5]];
/// assert_eq!(table_checksum(a.view()), table_checksum(a.view()));
/// assert_ne!(table_checksum(a.view()), table_checksum(b.view()));
/// assert_ne!(table_checksum(a.view()), table_checksum(a.t()));
/// ```
pub fn table_checksum(table: ArrayView2<'_, f32>) -> u64 {
    let (n, dim) = table.dim();
    let mut lanes = [0x9e37_79b9_7f4a_7c15u64, n as u64, dim as u64, 0x5851_f42d_4c95_7f2d];
    let mut mix = |i: usize, x: u32| {
        let lane = &mut lanes[i & 3];
        *lane = (*lane ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    };
    match table.as_slice() {
        Some(values) => values.iter().enumerate().for_each(|(i, x)| mix(i, x.to_bits())),
        None => table.iter().enumerate().for_each(|(i, x)| mix(i, x.to_bits())),
    }
    finish(lanes)
}

/// A 64-bit checksum of bytes (FNV-style over four lanes).
fn bytes_checksum(bytes: &[u8]) -> u64 {
    let mut lanes = [0xcbf2_9ce4_8422_2325u64, bytes.len() as u64, 0, 0x1234_5678_9abc_def1];
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        let lane = &mut lanes[i & 3];
        *lane = (*lane ^ u64::from(u32::from_le_bytes(word)))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }
    finish(lanes)
}

fn finish(lanes: [u64; 4]) -> u64 {
    let mut h = 0u64;
    for lane in lanes {
        h = (h ^ lane).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// `clusters` centres with rows scattered around them.
    fn clustered(rows: usize, dim: usize, clusters: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..clusters)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect();
        Array2::from_shape_fn((rows, dim), |(r, c)| {
            centres[r % clusters][c] + 0.25 * rng.random_range(-1.0f32..1.0)
        })
    }

    /// The share of the exact top-`k` the index finds, over `queries`
    /// rows of the table used as queries (each row itself left out).
    fn recall(index: &HnswIndex<'_>, queries: usize, k: usize, ef: usize) -> f64 {
        let n = index.num_embeddings();
        let mut hits = 0;
        for q in (0..n).step_by(n / queries).take(queries) {
            let id = q as u32;
            let query = index.exact().row(id).to_vec();
            let exact = index.exact().search(&query, k, &[id], Threads::single()).unwrap();
            let approx = index.search(&query, k, ef, &[id]).unwrap();
            hits += approx.iter().filter(|a| exact.iter().any(|e| e.id == a.id)).count();
        }
        hits as f64 / (queries * k) as f64
    }

    #[test]
    fn recall_at_10_is_at_least_095_on_a_small_table() {
        let table = clustered(2_000, 16, 20, 1);
        for similarity in Similarity::ALL {
            let index = HnswIndex::build(table.view(), similarity, &HnswConfig::new()).unwrap();
            let r = recall(&index, 100, 10, DEFAULT_EF_SEARCH);
            assert!(r >= 0.95, "{similarity}: recall@10 {r}");
        }
    }

    #[test]
    fn the_same_seed_builds_the_same_graph() {
        let table = clustered(600, 8, 5, 2);
        let config = HnswConfig::new().with_m(8).with_ef_construction(40).with_seed(7);
        let a = HnswIndex::build(table.view(), Similarity::Euclidean, &config).unwrap();
        let b = HnswIndex::build(table.view(), Similarity::Euclidean, &config).unwrap();
        assert_eq!(a.graph, b.graph);
        assert_eq!(a.to_bytes(), b.to_bytes());
        let c =
            HnswIndex::build(table.view(), Similarity::Euclidean, &config.with_seed(8)).unwrap();
        assert_ne!(a.graph, c.graph);
    }

    #[test]
    fn bytes_round_trip_and_refuse_another_table() {
        let table = clustered(300, 6, 4, 3);
        let index = HnswIndex::build(table.view(), Similarity::Dot, &HnswConfig::new()).unwrap();
        let bytes = index.to_bytes();
        let back =
            HnswIndex::from_bytes(&bytes, "x.hnsw", table.view(), Threads::single()).unwrap();
        assert_eq!(back.graph, index.graph);
        assert_eq!((back.similarity(), back.config()), (Similarity::Dot, index.config()));

        let mut other = table.clone();
        other[[5, 2]] += 1.0;
        let err = HnswIndex::from_bytes(&bytes, "x.hnsw", other.view(), Threads::single());
        assert!(matches!(err, Err(Error::InvalidConfig { field: "table", .. })), "{err:?}");
        let smaller = table.slice(ndarray::s![..299, ..]);
        let err = HnswIndex::from_bytes(&bytes, "x.hnsw", smaller, Threads::single());
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{err:?}");
    }

    #[test]
    fn every_truncation_and_many_bit_flips_are_typed_errors() {
        let table = clustered(40, 4, 3, 4);
        let config = HnswConfig::new().with_m(4);
        let index = HnswIndex::build(table.view(), Similarity::Cosine, &config).unwrap();
        let bytes = index.to_bytes();
        for cut in 0..bytes.len() {
            let err = HnswIndex::from_bytes(&bytes[..cut], "x", table.view(), Threads::single());
            assert!(matches!(err, Err(Error::BadBinaryFile { .. })), "cut {cut}");
        }
        for i in (0..bytes.len()).step_by(3) {
            let mut damaged = bytes.clone();
            damaged[i] ^= 1 << (i % 8);
            let got = HnswIndex::from_bytes(&damaged, "x", table.view(), Threads::single());
            assert!(got.is_err(), "flip at byte {i}");
        }
    }

    /// Every single-byte change with the final checksum repaired, so the
    /// structural checks are the ones that must catch it: a typed error,
    /// or an index whose searches do not panic.
    #[test]
    fn damage_behind_a_valid_checksum_is_caught_by_the_structure_checks() {
        let table = clustered(25, 3, 3, 5);
        let config = HnswConfig::new().with_m(2);
        let index = HnswIndex::build(table.view(), Similarity::Euclidean, &config).unwrap();
        let bytes = index.to_bytes();
        let body = bytes.len() - 8;
        for i in 0..body {
            for value in [0, 1, 0xff, 0x80, bytes[i] ^ 1, bytes[i].wrapping_add(1)] {
                let mut damaged = bytes.clone();
                damaged[i] = value;
                let sum = bytes_checksum(&damaged[..body]);
                damaged[body..].copy_from_slice(&sum.to_le_bytes());
                match HnswIndex::from_bytes(&damaged, "x", table.view(), Threads::single()) {
                    Ok(index) => {
                        for q in 0..25 {
                            index
                                .search(index.exact().row(q).to_vec().as_slice(), 4, 8, &[])
                                .unwrap();
                        }
                    }
                    Err(
                        Error::BadBinaryFile { .. }
                        | Error::InvalidConfig { .. }
                        | Error::ShapeMismatch { .. },
                    ) => {}
                    Err(other) => panic!("byte {i} = {value}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn empty_and_tiny_tables_work() {
        let empty = Array2::<f32>::zeros((0, 3));
        let index = HnswIndex::build(empty.view(), Similarity::Cosine, &HnswConfig::new()).unwrap();
        assert!(index.search(&[1.0, 0.0, 0.0], 3, 10, &[]).unwrap().is_empty());
        let bytes = index.to_bytes();
        HnswIndex::from_bytes(&bytes, "x", empty.view(), Threads::single()).unwrap();

        let one = ndarray::array![[1.0, 2.0]];
        let index =
            HnswIndex::build(one.view(), Similarity::Euclidean, &HnswConfig::new()).unwrap();
        let near = index.search(&[1.0, 2.0], 5, 10, &[]).unwrap();
        assert_eq!(near, vec![Neighbor { id: 0, similarity: 0.0 }]);
        assert!(index.search(&[1.0], 5, 10, &[]).is_err());
        assert!(
            HnswIndex::build(one.view(), Similarity::Dot, &HnswConfig::new().with_m(1)).is_err()
        );
    }
}
