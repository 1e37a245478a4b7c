//! Two- and three-dimensional views of a table, for plots and the
//! projector page: principal component analysis ([`pca`], [`Pca`]) and
//! exact t-SNE ([`tsne`], [`TsneConfig`]).
//!
//! Both are deterministic: PCA has no randomness and fixes the sign of
//! each component, and t-SNE draws its starting points from a seeded
//! generator and sums in a fixed order, so the same table and seed give
//! the same bits on every run.

mod eigen;
mod pca;
mod tsne;

pub use pca::{pca, Pca};
pub use tsne::{tsne, TsneConfig, TSNE_MAX_ROWS};

use ndarray::ArrayView2;

use crate::{Error, Result};

/// Checks what both projections need: at least 2 rows, at least one
/// column, and finite values only.
fn check_table(table: ArrayView2<'_, f32>, method: &str) -> Result<()> {
    let (rows, dim) = table.dim();
    if rows == 0 {
        return Err(Error::EmptyData { what: format!("table for {method} (no rows)") });
    }
    if rows < 2 {
        return Err(Error::config("table", format!("{method} needs at least 2 rows, got {rows}")));
    }
    if dim == 0 {
        return Err(Error::config(
            "embedding_dim",
            format!("{method} needs rows of at least 1 value, got 0"),
        ));
    }
    if let Some((row, _)) =
        table.outer_iter().enumerate().find(|(_, r)| r.iter().any(|x| !x.is_finite()))
    {
        return Err(Error::config(
            "table",
            format!("{method} needs finite values; row {row} has a NaN or infinite value"),
        ));
    }
    Ok(())
}
