//! Principal component analysis: the directions along which the rows of
//! a table vary most, and the rows' coordinates along them.

use ndarray::{Array1, Array2, ArrayView2};

use super::check_table;
use super::eigen::symmetric_eigen;
use crate::{Error, Result};

/// A fitted principal component analysis of a table.
///
/// The components are the unit eigenvectors of the rows' covariance
/// matrix with the largest eigenvalues, largest first. Each component's
/// sign is fixed so that its entry of largest magnitude is positive (the
/// first such entry on a tie), so a table always gives the same
/// components.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Pca {
    /// The mean row, subtracted before projecting. `[embedding_dim]`
    pub mean: Array1<f32>,
    /// One unit vector per component, as rows. `[components, embedding_dim]`
    pub components: Array2<f32>,
    /// The variance of the rows along each component (the covariance
    /// matrix's eigenvalue, with the `rows - 1` denominator).
    pub explained_variance: Vec<f64>,
    /// Each component's share of the total variance, in `[0, 1]`
    /// (0 for every component of a table whose rows are all equal).
    pub explained_variance_ratio: Vec<f64>,
}

impl Pca {
    /// Fits the top `components` principal components of the rows of
    /// `table`.
    ///
    /// The covariance is formed in f64 (or the rows' Gram matrix, when
    /// there are fewer rows than columns), and decomposed exactly by a
    /// symmetric eigen solver, in `O(n·m² + m³)` for `m` the smaller of
    /// the rows and the dimension. Components past the rank of the
    /// centred table have zero variance.
    ///
    /// # Shapes
    ///
    /// - `table`: `[rows, embedding_dim]`
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] for a table with no rows;
    /// [`Error::InvalidConfig`] for fewer than 2 rows, rows of no values,
    /// a NaN or infinite value, or `components` that is 0 or more than
    /// `embedding_dim` or the number of rows.
    ///
    /// # Examples
    ///
    /// ```
    /// use embkit::projection::Pca;
    /// use ndarray::array;
    ///
    /// // Points on the line y = x, with a little spread across it.
    /// let table = array![[0.0f32, 0.0], [1.0, 1.1], [2.0, 1.9], [3.0, 3.0]];
    /// let pca = Pca::fit(table.view(), 1)?;
    /// let axis = pca.components.row(0);
    /// assert!((axis[0] - axis[1]).abs() < 0.05);
    /// assert!(pca.explained_variance_ratio[0] > 0.99);
    /// # Ok::<(), embkit::Error>(())
    /// ```
    pub fn fit(table: ArrayView2<'_, f32>, components: usize) -> Result<Self> {
        check_table(table, "PCA")?;
        let (rows, dim) = table.dim();
        if components == 0 || components > dim || components > rows {
            return Err(Error::config(
                "components",
                format!(
                    "must be from 1 to the smaller of embedding_dim ({dim}) and the rows \
                     ({rows}), got {components}"
                ),
            ));
        }
        let mean: Vec<f64> = (0..dim)
            .map(|c| table.column(c).iter().map(|&x| f64::from(x)).sum::<f64>() / rows as f64)
            .collect();
        // Centred rows, f64, row-major.
        let mut x = Vec::with_capacity(rows * dim);
        for row in table.outer_iter() {
            x.extend(row.iter().zip(&mean).map(|(&v, m)| f64::from(v) - m));
        }
        let denom = (rows - 1) as f64;
        let total_variance: f64 = x.iter().map(|v| v * v).sum::<f64>() / denom;

        let (variances, vectors) = if dim <= rows {
            // Covariance `Xᵀ X / (rows - 1)`, `[dim, dim]`.
            let mut cov = vec![0.0; dim * dim];
            for row in x.chunks_exact(dim) {
                for i in 0..dim {
                    let xi = row[i];
                    if xi == 0.0 {
                        continue;
                    }
                    let out = &mut cov[i * dim..i * dim + i + 1];
                    for (o, &xj) in out.iter_mut().zip(&row[..=i]) {
                        *o += xi * xj;
                    }
                }
            }
            for i in 0..dim {
                for j in 0..=i {
                    let v = cov[i * dim + j] / denom;
                    cov[i * dim + j] = v;
                    cov[j * dim + i] = v;
                }
            }
            let eig = symmetric_eigen(&cov, dim);
            let values: Vec<f64> = eig.values[..components].to_vec();
            (values, eig.vectors[..components].to_vec())
        } else {
            // Fewer rows than columns: the Gram matrix `X Xᵀ` has the same
            // non-zero eigenvalues, and `Xᵀ u / sqrt(λ)` are the components.
            let mut gram = vec![0.0; rows * rows];
            for i in 0..rows {
                for j in 0..=i {
                    let a = &x[i * dim..(i + 1) * dim];
                    let b = &x[j * dim..(j + 1) * dim];
                    let v: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
                    gram[i * rows + j] = v;
                    gram[j * rows + i] = v;
                }
            }
            let eig = symmetric_eigen(&gram, rows);
            let mut values = Vec::with_capacity(components);
            let mut vectors = Vec::with_capacity(components);
            let tiny = eig.values.first().copied().unwrap_or(0.0).abs() * 1e-12;
            for (lambda, u) in eig.values.iter().zip(&eig.vectors).take(components) {
                let mut v = vec![0.0; dim];
                if *lambda > tiny && *lambda > 0.0 {
                    for (r, &ur) in u.iter().enumerate() {
                        for (vc, &xc) in v.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
                            *vc += ur * xc;
                        }
                    }
                    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
                    v.iter_mut().for_each(|a| *a /= norm);
                }
                values.push(lambda.max(0.0) / denom);
                vectors.push(v);
            }
            (values, vectors)
        };

        let mut out = Array2::zeros((components, dim));
        for (k, mut v) in vectors.into_iter().enumerate() {
            fix_sign(&mut v);
            for (o, a) in out.row_mut(k).iter_mut().zip(&v) {
                *o = *a as f32;
            }
        }
        let explained_variance: Vec<f64> = variances.iter().map(|v| v.max(0.0)).collect();
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| if total_variance > 0.0 { (v / total_variance).min(1.0) } else { 0.0 })
            .collect();
        Ok(Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            components: out,
            explained_variance,
            explained_variance_ratio,
        })
    }

    /// The coordinates of the rows of `table` along the components:
    /// `(row - mean) · component` for each, computed in f64.
    ///
    /// # Shapes
    ///
    /// - `table`: `[n, embedding_dim]`
    /// - returns: `[n, components]`
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the rows are not `embedding_dim` long.
    pub fn transform(&self, table: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let dim = self.mean.len();
        if table.ncols() != dim {
            return Err(Error::shape("PCA input", format!("[n, {dim}]"), table.shape()));
        }
        let k = self.components.nrows();
        let mut out = Array2::zeros((table.nrows(), k));
        for (row, mut o) in table.outer_iter().zip(out.outer_iter_mut()) {
            for (c, component) in self.components.outer_iter().enumerate() {
                let s: f64 = row
                    .iter()
                    .zip(&self.mean)
                    .zip(component.iter())
                    .map(|((&x, &m), &w)| (f64::from(x) - f64::from(m)) * f64::from(w))
                    .sum();
                o[c] = s as f32;
            }
        }
        Ok(out)
    }
}

/// Makes the entry of largest magnitude positive (the first on a tie).
fn fix_sign(v: &mut [f64]) {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if x.abs() > v[best].abs() {
            best = i;
        }
    }
    if v.get(best).is_some_and(|&x| x < 0.0) {
        v.iter_mut().for_each(|x| *x = -*x);
    }
}

/// The rows of `table` projected on their top `components` principal
/// components: [`Pca::fit`] then [`Pca::transform`].
///
/// # Shapes
///
/// - `table`: `[rows, embedding_dim]`
/// - returns: `[rows, components]`
///
/// # Errors
///
/// As [`Pca::fit`].
///
/// # Examples
///
/// ```
/// use embkit::projection::pca;
/// use ndarray::array;
///
/// let table = array![[1.0f32, 5.0, 0.0], [3.0, 5.0, 0.0], [5.0, 5.0, 0.1]];
/// let xy = pca(table.view(), 2)?;
/// assert_eq!(xy.shape(), &[3, 2]);
/// // The first coordinate follows the first column, centred.
/// assert!((xy[[0, 0]] + 2.0).abs() < 0.01 && (xy[[2, 0]] - 2.0).abs() < 0.01);
/// assert!(pca(table.view(), 4).is_err());
/// # Ok::<(), embkit::Error>(())
/// ```
pub fn pca(table: ArrayView2<'_, f32>, components: usize) -> Result<Array2<f32>> {
    Pca::fit(table, components)?.transform(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// Rows `t·a + s·b + c` for the known orthonormal axes `a` (spread
    /// `t`) and `b` (spread `s`), offset by `c`.
    fn plane(ts: &[f64], ss: &[f64]) -> (Array2<f32>, [f64; 4], [f64; 4]) {
        let r = 0.5;
        let a = [r, r, r, r]; // unit
        let b = [r, -r, r, -r]; // unit, orthogonal to a
        let c = [3.0, -1.0, 0.5, 2.0];
        let mut t = Array2::zeros((ts.len(), 4));
        for (i, (&ti, &si)) in ts.iter().zip(ss).enumerate() {
            for k in 0..4 {
                t[[i, k]] = (ti * a[k] + si * b[k] + c[k]) as f32;
            }
        }
        (t, a, b)
    }

    fn var(xs: &[f64]) -> f64 {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
    }

    fn centred(xs: &[f64]) -> Vec<f64> {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.iter().map(|x| x - m).collect()
    }

    #[test]
    fn known_axes_and_variances_are_recovered() {
        // Uncorrelated spreads (their centred dot product is 0).
        let ts = [-3.0, -1.0, 1.0, 3.0, -3.0, -1.0, 1.0, 3.0];
        let ss = [0.5, 0.5, 0.5, 0.5, -0.5, -0.5, -0.5, -0.5];
        let cs = centred(&ts);
        assert!(cs.iter().zip(&centred(&ss)).map(|(a, b)| a * b).sum::<f64>().abs() < 1e-12);
        let (table, a, b) = plane(&ts, &ss);
        let pca = Pca::fit(table.view(), 3).unwrap();
        let (vt, vs) = (var(&ts), var(&ss));
        assert!((pca.explained_variance[0] - vt).abs() < 1e-4, "{:?}", pca.explained_variance);
        assert!((pca.explained_variance[1] - vs).abs() < 1e-4);
        assert!(pca.explained_variance[2].abs() < 1e-4);
        assert!((pca.explained_variance_ratio[0] - vt / (vt + vs)).abs() < 1e-5);
        // The components are the axes, up to sign.
        for (k, axis) in [a, b].iter().enumerate() {
            let dot: f64 = pca.components.row(k).iter().zip(axis).map(|(&x, y)| x as f64 * y).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-5, "component {k}: {dot}");
        }
        // The projection recovers t and s, up to sign.
        let xy = pca.transform(table.view()).unwrap();
        for (k, want) in [centred(&ts), centred(&ss)].iter().enumerate() {
            let sign = if xy[[0, k]] as f64 * want[0] < 0.0 { -1.0 } else { 1.0 };
            for (i, w) in want.iter().enumerate() {
                assert!((sign * xy[[i, k]] as f64 - w).abs() < 1e-4, "row {i} coord {k}");
            }
        }
    }

    #[test]
    fn the_sign_is_fixed_and_the_result_repeats() {
        let (table, _, _) = plane(&[-3.0, -1.0, 1.0, 3.0], &[0.5, -0.5, -0.5, 0.5]);
        let first = Pca::fit(table.view(), 2).unwrap();
        for row in first.components.outer_iter() {
            let max = row.iter().fold(0.0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
            assert!(max > 0.0, "{row}");
        }
        assert_eq!(first, Pca::fit(table.view(), 2).unwrap());
        // Negating the table keeps the components and negates the projection.
        let neg = table.mapv(|x| -x);
        assert_eq!(first.components, Pca::fit(neg.view(), 2).unwrap().components);
    }

    #[test]
    fn fewer_rows_than_columns_use_the_gram_matrix() {
        // 3 rows in 6 dimensions: rank 2 after centring.
        let table = array![
            [1.0f32, 0.0, 2.0, 0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0, 2.0, 0.0, 1.0],
            [0.0, 0.0, 1.0, 0.0, 3.0, 1.0]
        ];
        let small = Pca::fit(table.view(), 3).unwrap();
        // The same as the covariance route on the rows repeated (which
        // scales the covariance but not the components).
        let mut big = Array2::zeros((12, 6));
        for i in 0..12 {
            big.row_mut(i).assign(&table.row(i % 3));
        }
        let reference = Pca::fit(big.view(), 2).unwrap();
        for k in 0..2 {
            for c in 0..6 {
                let (x, y) = (small.components[[k, c]], reference.components[[k, c]]);
                assert!((x - y).abs() < 1e-5, "component {k}: {small:?} vs {reference:?}");
            }
        }
        assert!(small.explained_variance[2].abs() < 1e-9);
        assert!(small.components.row(2).iter().all(|&x| x == 0.0));
        let total: f64 = small.explained_variance_ratio.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_tables_and_sizes_are_errors_that_name_the_rule() {
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(matches!(pca(empty.view(), 2), Err(Error::EmptyData { .. })));
        let one = array![[1.0f32, 2.0]];
        let err = pca(one.view(), 1).unwrap_err().to_string();
        assert!(err.contains("at least 2 rows, got 1"), "{err}");
        let t = array![[1.0f32, 2.0], [3.0, 4.0], [0.0, 1.0]];
        let err = pca(t.view(), 3).unwrap_err().to_string();
        assert!(err.contains("components") && err.contains("got 3"), "{err}");
        assert!(pca(t.view(), 0).is_err());
        let nan = array![[1.0f32, f32::NAN], [3.0, 4.0]];
        let err = pca(nan.view(), 1).unwrap_err().to_string();
        assert!(err.contains("row 0"), "{err}");
        let fit = Pca::fit(t.view(), 1).unwrap();
        assert!(matches!(
            fit.transform(one.view().reversed_axes()),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn equal_rows_have_no_variance() {
        let t = array![[1.0f32, 2.0], [1.0, 2.0], [1.0, 2.0]];
        let pca = Pca::fit(t.view(), 2).unwrap();
        assert_eq!(pca.explained_variance, vec![0.0, 0.0]);
        assert_eq!(pca.explained_variance_ratio, vec![0.0, 0.0]);
        assert!(pca.transform(t.view()).unwrap().iter().all(|&x| x == 0.0));
    }
}
