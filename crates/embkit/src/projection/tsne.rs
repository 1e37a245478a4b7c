//! Exact t-SNE (van der Maaten and Hinton, 2008): a low-dimensional map
//! whose neighbourhoods follow the table's.
//!
//! The input similarities are Gaussian, with a bandwidth per row found by
//! binary search so that each row's distribution has the chosen
//! perplexity; the map's are Student-t with one degree of freedom. The
//! map starts from small seeded normal noise and follows the gradient of
//! the Kullback-Leibler divergence with momentum and per-coordinate gains,
//! the input similarities exaggerated for the first iterations: the
//! schedule of scikit-learn's `TSNE(method="exact", init="random")`.
//!
//! Every pair is visited on every iteration, so the cost is `O(n²)` per
//! iteration (about 5 s for 1000 rows and 1000 iterations on one core)
//! and the memory `4·n²` bytes: meant for up to a few thousand rows.

use ndarray::{Array2, ArrayView2};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::check_table;
use crate::{Error, Result};

/// The most rows [`tsne`] accepts: its time and memory grow as the
/// square of the rows (400 MB of similarities at this size).
pub const TSNE_MAX_ROWS: usize = 10_000;

/// Settings of a [`tsne`] run.
///
/// Start from [`TsneConfig::new`] and change what you need with the
/// `with_*` methods. The defaults are scikit-learn's.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TsneConfig {
    /// Dimensions of the map: 1 to 3. Default 2.
    pub components: usize,
    /// The effective number of neighbours of each row: at least 1 and
    /// below `rows - 1`. Default 30.
    pub perplexity: f64,
    /// How much the input similarities are multiplied by in the first
    /// [`exaggeration_iterations`](Self::exaggeration_iterations), which
    /// pulls clusters apart early. Default 12.
    pub early_exaggeration: f64,
    /// Iterations with exaggeration (and momentum 0.5; 0.8 after).
    /// Default 250.
    pub exaggeration_iterations: usize,
    /// All iterations, exaggerated ones included. Default 1000.
    pub iterations: usize,
    /// The gradient step; `None` for scikit-learn's `"auto"`,
    /// `max(rows / early_exaggeration / 4, 50)`. Default `None`.
    pub learning_rate: Option<f64>,
    /// Seed of the starting map. Default 0.
    pub seed: u64,
}

impl Default for TsneConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TsneConfig {
    /// The default settings (see the fields).
    pub fn new() -> Self {
        Self {
            components: 2,
            perplexity: 30.0,
            early_exaggeration: 12.0,
            exaggeration_iterations: 250,
            iterations: 1000,
            learning_rate: None,
            seed: 0,
        }
    }

    /// Sets [`components`](Self::components).
    pub fn with_components(mut self, components: usize) -> Self {
        self.components = components;
        self
    }

    /// Sets [`perplexity`](Self::perplexity).
    pub fn with_perplexity(mut self, perplexity: f64) -> Self {
        self.perplexity = perplexity;
        self
    }

    /// Sets [`early_exaggeration`](Self::early_exaggeration).
    pub fn with_early_exaggeration(mut self, early_exaggeration: f64) -> Self {
        self.early_exaggeration = early_exaggeration;
        self
    }

    /// Sets [`exaggeration_iterations`](Self::exaggeration_iterations).
    pub fn with_exaggeration_iterations(mut self, iterations: usize) -> Self {
        self.exaggeration_iterations = iterations;
        self
    }

    /// Sets [`iterations`](Self::iterations).
    pub fn with_iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Sets [`learning_rate`](Self::learning_rate).
    pub fn with_learning_rate(mut self, learning_rate: f64) -> Self {
        self.learning_rate = Some(learning_rate);
        self
    }

    /// Sets [`seed`](Self::seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the settings against a table of `rows` rows.
    fn check(&self, rows: usize) -> Result<()> {
        if !(1..=3).contains(&self.components) {
            return Err(Error::config(
                "components",
                format!("must be 1, 2 or 3, got {}", self.components),
            ));
        }
        if rows > TSNE_MAX_ROWS {
            return Err(Error::config(
                "table",
                format!(
                    "exact t-SNE takes at most {TSNE_MAX_ROWS} rows (its cost grows as the \
                     square), got {rows}"
                ),
            ));
        }
        let p = self.perplexity;
        if !(p.is_finite() && p >= 1.0) {
            return Err(Error::config("perplexity", format!("must be at least 1, got {p}")));
        }
        if p >= (rows - 1) as f64 {
            return Err(Error::config(
                "perplexity",
                format!(
                    "{p} is too large for {rows} rows: it must be below rows - 1 = {}",
                    rows - 1
                ),
            ));
        }
        let e = self.early_exaggeration;
        if !(e.is_finite() && e >= 1.0) {
            return Err(Error::config(
                "early_exaggeration",
                format!("must be at least 1, got {e}"),
            ));
        }
        if self.iterations == 0 {
            return Err(Error::config("iterations", "must be at least 1, got 0"));
        }
        if let Some(lr) = self.learning_rate {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::config(
                    "learning_rate",
                    format!("must be positive and finite, got {lr}"),
                ));
            }
        }
        Ok(())
    }
}

/// Lays out the rows of `table` in `config.components` dimensions with
/// exact t-SNE, so that rows near each other in the table are near each
/// other in the map.
///
/// Deterministic: the same table and config give the same bits. Distances
/// in the map have no absolute meaning, and the sizes of and gaps between
/// clusters only roughly follow the table's.
///
/// # Shapes
///
/// - `table`: `[rows, embedding_dim]`
/// - returns: `[rows, components]`
///
/// # Errors
///
/// [`Error::EmptyData`] for a table with no rows;
/// [`Error::InvalidConfig`] for fewer than 2 rows, more than
/// [`TSNE_MAX_ROWS`], rows of no values, a NaN or infinite value, or a
/// setting out of its range (see [`TsneConfig`]), such as a perplexity not
/// below `rows - 1`.
///
/// # Examples
///
/// ```
/// use embkit::projection::{tsne, TsneConfig};
/// use ndarray::Array2;
///
/// // Two groups of 10 rows, far apart.
/// let table = Array2::from_shape_fn((20, 3), |(i, j)| {
///     (if i < 10 { 0.0 } else { 10.0 }) + (i * 3 + j) as f32 % 7.0 * 0.1
/// });
/// let config = TsneConfig::new().with_perplexity(5.0).with_iterations(300);
/// let map = tsne(table.view(), &config)?;
/// assert_eq!(map.shape(), &[20, 2]);
/// assert_eq!(map, tsne(table.view(), &config)?);
/// assert!(tsne(table.view(), &config.with_perplexity(30.0)).is_err());
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn tsne(table: ArrayView2<'_, f32>, config: &TsneConfig) -> Result<Array2<f32>> {
    check_table(table, "t-SNE")?;
    let n = table.nrows();
    config.check(n)?;
    let p = joint_probabilities(table, config.perplexity);
    let dims = config.components;

    let mut rng = StdRng::seed_from_u64(config.seed);
    let normal = Normal::new(0.0f64, 1e-4).expect("a positive standard deviation");
    let mut y: Vec<f64> = (0..n * dims).map(|_| normal.sample(&mut rng)).collect();
    let mut update = vec![0.0f64; n * dims];
    let mut gains = vec![1.0f64; n * dims];
    let mut grad = vec![0.0f64; n * dims];
    let learning_rate = config
        .learning_rate
        .unwrap_or_else(|| (n as f64 / config.early_exaggeration / 4.0).max(50.0));

    for it in 0..config.iterations {
        let (exaggeration, momentum) = if it < config.exaggeration_iterations {
            (config.early_exaggeration, 0.5)
        } else {
            (1.0, 0.8)
        };
        gradient(&p, &y, n, dims, exaggeration, &mut grad);
        for i in 0..n * dims {
            // Delta-bar-delta gains: grow while the direction holds.
            if update[i] * grad[i] < 0.0 {
                gains[i] += 0.2;
            } else {
                gains[i] = (gains[i] * 0.8).max(0.01);
            }
            update[i] = momentum * update[i] - learning_rate * gains[i] * grad[i];
            y[i] += update[i];
        }
    }
    Ok(Array2::from_shape_fn((n, dims), |(i, d)| y[i * dims + d] as f32))
}

/// The index of the pair `i < j` in a packed upper triangle of `n` rows.
fn pair(i: usize, j: usize, n: usize) -> usize {
    i * (2 * n - i - 1) / 2 + (j - i - 1)
}

/// The symmetric input similarities `p_ij = (p_j|i + p_i|j) / 2n`, packed
/// (pairs `i < j`), each at least `1e-12` as in scikit-learn. Memory is
/// the packed pairs and one row.
fn joint_probabilities(table: ArrayView2<'_, f32>, perplexity: f64) -> Vec<f64> {
    let n = table.nrows();
    let rows: Vec<Vec<f64>> =
        table.outer_iter().map(|r| r.iter().map(|&x| f64::from(x)).collect()).collect();
    let mut p = vec![0.0f64; n * (n - 1) / 2];
    let mut dist = vec![0.0f64; n];
    let mut cond = vec![0.0f64; n];
    for i in 0..n {
        for (j, d) in dist.iter_mut().enumerate() {
            *d = rows[i].iter().zip(&rows[j]).map(|(a, b)| (a - b) * (a - b)).sum();
        }
        conditional_row(&dist, i, perplexity, &mut cond);
        for (j, &c) in cond.iter().enumerate() {
            if j != i {
                p[if i < j { pair(i, j, n) } else { pair(j, i, n) }] += c;
            }
        }
    }
    let denom = 2.0 * n as f64;
    for v in &mut p {
        *v = (*v / denom).max(1e-12);
    }
    p
}

/// The conditional similarities `p_j|i` of row `i` into `out`, from its
/// squared distances `dist` to every row: Gaussian in the distance, with
/// the bandwidth found by binary search so that the row's perplexity
/// `exp(entropy)` is `perplexity`. `out` sums to 1 and `out[i]` is 0.
fn conditional_row(dist: &[f64], i: usize, perplexity: f64, out: &mut [f64]) {
    let n = dist.len();
    let target = perplexity.ln();
    let others = || (0..n).filter(move |&j| j != i);
    let min = others().map(|j| dist[j]).fold(f64::INFINITY, f64::min);
    // Distances relative to the nearest, scaled by their mean so the
    // search starts near the right bandwidth whatever the table's scale.
    let mean = others().map(|j| dist[j] - min).sum::<f64>() / (n - 1) as f64;
    let scale = if mean > 0.0 { mean } else { 1.0 };
    let (mut beta, mut lo, mut hi) = (1.0f64, 0.0f64, f64::INFINITY);
    for _ in 0..200 {
        let mut sum = 0.0;
        let mut weighted = 0.0;
        for j in 0..n {
            if j == i {
                out[j] = 0.0;
                continue;
            }
            let x = (dist[j] - min) / scale;
            let e = (-x * beta).exp();
            out[j] = e;
            sum += e;
            weighted += x * e;
        }
        // sum >= 1: the nearest row contributes exp(0).
        let entropy = sum.ln() + beta * weighted / sum;
        for v in out.iter_mut() {
            *v /= sum;
        }
        let diff = entropy - target;
        if diff.abs() < 1e-10 {
            break;
        }
        if diff > 0.0 {
            lo = beta;
            beta = if hi.is_infinite() { beta * 2.0 } else { (beta + hi) / 2.0 };
        } else {
            hi = beta;
            beta = (beta + lo) / 2.0;
        }
    }
}

/// The gradient of `KL(P || Q)` with respect to the map `y` (`[n, dims]`,
/// row-major), with `P` multiplied by `exaggeration`, into `grad`.
fn gradient(p: &[f64], y: &[f64], n: usize, dims: usize, exaggeration: f64, grad: &mut [f64]) {
    let dist2 = |i: usize, j: usize| -> f64 {
        (0..dims).map(|d| y[i * dims + d] - y[j * dims + d]).map(|v| v * v).sum()
    };
    // Σ_{k≠l} (1 + |y_k - y_l|²)⁻¹, each pair counted twice.
    let mut z = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            z += 2.0 / (1.0 + dist2(i, j));
        }
    }
    let z = z.max(f64::MIN_POSITIVE);
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut k = 0;
    for i in 0..n {
        for j in i + 1..n {
            let num = 1.0 / (1.0 + dist2(i, j));
            let force = 4.0 * (exaggeration * p[k] - num / z) * num;
            k += 1;
            for d in 0..dims {
                let diff = y[i * dims + d] - y[j * dims + d];
                grad[i * dims + d] += force * diff;
                grad[j * dims + d] -= force * diff;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// `clusters` Gaussian blobs of `per` rows in `dim` dimensions, the
    /// centres 20 apart, spread 1; and each row's cluster.
    fn blobs(clusters: usize, per: usize, dim: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, 1.0).unwrap();
        let centres: Vec<Vec<f32>> = (0..clusters)
            .map(|_| (0..dim).map(|_| rng.random_range(-20.0f32..20.0)).collect())
            .collect();
        let n = clusters * per;
        let mut t = Array2::zeros((n, dim));
        let mut label = Vec::with_capacity(n);
        for i in 0..n {
            // Interleave clusters, so the order of rows says nothing.
            let c = i % clusters;
            label.push(c);
            for d in 0..dim {
                t[[i, d]] = centres[c][d] + normal.sample(&mut rng);
            }
        }
        (t, label)
    }

    /// The share of each row's `k` nearest rows in `map` that share its
    /// label.
    fn neighbours_in_same_cluster(map: &Array2<f32>, label: &[usize], k: usize) -> f64 {
        let n = map.nrows();
        let mut same = 0;
        for i in 0..n {
            let mut d: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let v = &map.row(i) - &map.row(j);
                    (v.dot(&v), j)
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            same += d[..k].iter().filter(|(_, j)| label[*j] == label[i]).count();
        }
        same as f64 / (n * k) as f64
    }

    #[test]
    fn well_separated_clusters_stay_separated() {
        let (table, label) = blobs(4, 40, 10, 1);
        let config = TsneConfig::new().with_perplexity(15.0).with_iterations(500);
        let map = tsne(table.view(), &config).unwrap();
        assert_eq!(map.shape(), &[160, 2]);
        assert!(map.iter().all(|x| x.is_finite()));
        let share = neighbours_in_same_cluster(&map, &label, 10);
        assert!(share > 0.99, "only {share} of the map's neighbours share a cluster");
        // The clusters are apart: each cluster's centre is further from
        // the others' than its rows are from it on average.
        let centre = |c: usize| {
            let rows: Vec<usize> = (0..160).filter(|&i| label[i] == c).collect();
            let mut m = [0.0f32; 2];
            for &i in &rows {
                m[0] += map[[i, 0]] / rows.len() as f32;
                m[1] += map[[i, 1]] / rows.len() as f32;
            }
            m
        };
        let spread = |c: usize| {
            let m = centre(c);
            let rows: Vec<usize> = (0..160).filter(|&i| label[i] == c).collect();
            rows.iter().map(|&i| (map[[i, 0]] - m[0]).hypot(map[[i, 1]] - m[1])).sum::<f32>()
                / rows.len() as f32
        };
        for a in 0..4 {
            for b in a + 1..4 {
                let (ma, mb) = (centre(a), centre(b));
                let gap = (ma[0] - mb[0]).hypot(ma[1] - mb[1]);
                assert!(gap > 2.0 * spread(a).max(spread(b)), "clusters {a} and {b}");
            }
        }
    }

    #[test]
    fn a_seed_gives_the_same_map_and_another_seed_another() {
        let (table, _) = blobs(3, 20, 5, 2);
        let config = TsneConfig::new().with_perplexity(8.0).with_iterations(200).with_seed(3);
        let a = tsne(table.view(), &config).unwrap();
        assert_eq!(a, tsne(table.view(), &config).unwrap());
        let b = tsne(table.view(), &config.clone().with_seed(4)).unwrap();
        assert_ne!(a, b);
        let three = tsne(table.view(), &config.with_components(3)).unwrap();
        assert_eq!(three.shape(), &[60, 3]);
    }

    #[test]
    fn the_perplexity_is_met_row_by_row() {
        let (table, _) = blobs(2, 30, 4, 5);
        let n = 60;
        for i in 0..n {
            let dist: Vec<f64> = (0..n)
                .map(|j| {
                    let d = &table.row(i) - &table.row(j);
                    f64::from(d.dot(&d))
                })
                .collect();
            let mut row = vec![0.0; n];
            conditional_row(&dist, i, 10.0, &mut row);
            assert_eq!(row[i], 0.0);
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            let entropy: f64 = row.iter().filter(|&&p| p > 0.0).map(|p| -p * p.ln()).sum();
            assert!((entropy.exp() - 10.0).abs() < 1e-6, "perplexity {}", entropy.exp());
        }
        // Packed pairs i < j: half of the symmetric matrix, which sums to 1
        // (up to the 1e-12 floor).
        let p = joint_probabilities(table.view(), 10.0);
        assert_eq!(p.len(), n * (n - 1) / 2);
        assert!((2.0 * p.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bad_settings_are_errors_that_name_the_rule() {
        let (table, _) = blobs(2, 5, 3, 0);
        let err = |c: TsneConfig| tsne(table.view(), &c).unwrap_err().to_string();
        let e = err(TsneConfig::new());
        assert!(e.contains("perplexity") && e.contains("30 is too large for 10 rows"), "{e}");
        assert!(err(TsneConfig::new().with_perplexity(0.5)).contains("at least 1, got 0.5"));
        assert!(err(TsneConfig::new().with_perplexity(3.0).with_components(4)).contains("got 4"));
        assert!(err(TsneConfig::new().with_perplexity(3.0).with_iterations(0)).contains("0"));
        assert!(err(TsneConfig::new().with_perplexity(3.0).with_learning_rate(-1.0))
            .contains("learning_rate"));
        let one = Array2::<f32>::zeros((1, 3));
        assert!(tsne(one.view(), &TsneConfig::new()).is_err());
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(matches!(tsne(empty.view(), &TsneConfig::new()), Err(Error::EmptyData { .. })));
    }

    #[test]
    fn equal_rows_do_not_break_the_map() {
        let table = Array2::<f32>::ones((12, 3));
        let map = tsne(table.view(), &TsneConfig::new().with_perplexity(3.0).with_iterations(50))
            .unwrap();
        assert!(map.iter().all(|x| x.is_finite()));
    }
}
