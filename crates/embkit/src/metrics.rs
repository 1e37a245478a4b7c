//! STUB: to be written. Metrics.
#![allow(missing_docs, unused)]
use ndarray::ArrayViewD;
use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Metric {
    Accuracy,
    BinaryAccuracy { threshold: f32 },
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
}

impl Metric {
    pub fn name(&self) -> &'static str {
        todo!()
    }
    pub fn sum_and_count(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
    ) -> Result<(f64, usize)> {
        todo!()
    }
}
