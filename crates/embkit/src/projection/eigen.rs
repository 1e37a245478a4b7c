//! Eigenvalues and eigenvectors of a small dense symmetric matrix:
//! Householder reduction to tridiagonal form, then the implicit QL method
//! (the EISPACK routines `tred2` and `tql2`, as in JAMA).
//!
//! Everything is in f64 and runs in a fixed order, so the result is the
//! same on every run. The cost is `O(n³)`: fine for the `n x n` matrices
//! of PCA (`n` = the smaller of the rows and the dimension).

/// The eigen-decomposition of a symmetric matrix.
pub(crate) struct SymmetricEigen {
    /// Eigenvalues, largest first.
    pub values: Vec<f64>,
    /// `vectors[i]` is the unit eigenvector of `values[i]`.
    pub vectors: Vec<Vec<f64>>,
}

/// The eigenvalues (largest first) and eigenvectors of the symmetric
/// matrix `a` (`n x n`, row-major; only symmetry is assumed, the lower
/// triangle is what is read).
///
/// # Panics
///
/// If `a` does not have `n * n` values (an internal invariant).
pub(crate) fn symmetric_eigen(a: &[f64], n: usize) -> SymmetricEigen {
    assert_eq!(a.len(), n * n, "a square matrix");
    if n == 0 {
        return SymmetricEigen { values: Vec::new(), vectors: Vec::new() };
    }
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| a[i * n..(i + 1) * n].to_vec()).collect();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tred2(&mut v, &mut d, &mut e);
    tql2(&mut v, &mut d, &mut e);
    // Columns of `v` are the eigenvectors; order them by eigenvalue,
    // largest first (ties keep their order: the sort is stable).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let values = order.iter().map(|&i| d[i]).collect();
    let vectors = order.iter().map(|&j| (0..n).map(|i| v[i][j]).collect()).collect();
    SymmetricEigen { values, vectors }
}

/// Householder reduction of `v` (symmetric) to tridiagonal form: the
/// diagonal in `d`, the subdiagonal in `e[1..]`, the orthogonal transform
/// accumulated in `v`.
#[allow(clippy::needless_range_loop, clippy::manual_memcpy)] // the published algorithm's index form
fn tred2(v: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    d.copy_from_slice(&v[n - 1]);
    for i in (1..n).rev() {
        let mut scale = 0.0;
        let mut h = 0.0;
        for k in 0..i {
            scale += d[k].abs();
        }
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
                v[j][i] = 0.0;
            }
        } else {
            for k in 0..i {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for j in 0..i {
                e[j] = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[j][i] = f;
                g = e[j] + v[j][j] * f;
                for k in j + 1..i {
                    g += v[k][j] * d[k];
                    e[k] += v[k][j] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[k][j] -= f * e[k] + g * d[k];
                }
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[n - 1][i] = v[i][i];
        v[i][i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[k][i + 1] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[k][i + 1] * v[k][j];
                }
                for k in 0..=i {
                    v[k][j] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[k][i + 1] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[n - 1][j];
        v[n - 1][j] = 0.0;
    }
    v[n - 1][n - 1] = 1.0;
    e[0] = 0.0;
}

/// The implicit QL method on the tridiagonal matrix (`d`, `e`) from
/// [`tred2`]: eigenvalues into `d`, eigenvectors into the columns of `v`.
#[allow(clippy::needless_range_loop, clippy::manual_memcpy)] // the published algorithm's index form
fn tql2(v: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1 = 0.0f64;
    let eps = f64::EPSILON;
    for l in 0..n {
        // Find a small subdiagonal element.
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        // If m == l, d[l] is an eigenvalue; otherwise iterate. The cap
        // only guards against a non-converging input (NaN), which the
        // callers rule out.
        if m > l {
            for _ in 0..64 {
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for i in l + 2..n {
                    d[i] -= h;
                }
                f += h;
                // Implicit QL transformation.
                p = d[m];
                let mut c = 1.0;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0;
                let mut s2 = 0.0;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    for row in v.iter_mut() {
                        h = row[i + 1];
                        row[i + 1] = s * row[i] + c * h;
                        row[i] = c * row[i] - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn check(a: &[f64], n: usize) {
        let eig = symmetric_eigen(a, n);
        let scale = a.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for (i, (&lambda, vec)) in eig.values.iter().zip(&eig.vectors).enumerate() {
            // A v = lambda v
            for r in 0..n {
                let av: f64 = (0..n).map(|c| a[r * n + c] * vec[c]).sum();
                assert!((av - lambda * vec[r]).abs() < 1e-9 * scale, "pair {i}, row {r}");
            }
            // Orthonormal.
            for (j, other) in eig.vectors.iter().enumerate() {
                let dot: f64 = vec.iter().zip(other).map(|(x, y)| x * y).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-9, "vectors {i} and {j}: {dot}");
            }
        }
        assert!(eig.values.windows(2).all(|w| w[0] >= w[1]), "{:?}", eig.values);
    }

    #[test]
    fn random_symmetric_matrices_are_decomposed() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in [1, 2, 3, 5, 17, 40] {
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let x: f64 = rng.random_range(-3.0..3.0);
                    a[i * n + j] = x;
                    a[j * n + i] = x;
                }
            }
            check(&a, n);
        }
    }

    #[test]
    fn diagonal_and_repeated_eigenvalues_are_found() {
        let a = [2.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 2.0];
        let eig = symmetric_eigen(&a, 3);
        assert_eq!(eig.values.len(), 3);
        assert!((eig.values[0] - 5.0).abs() < 1e-12);
        assert!((eig.values[1] - 2.0).abs() < 1e-12 && (eig.values[2] - 2.0).abs() < 1e-12);
        check(&a, 3);
        check(&[0.0; 16], 4);
    }
}
