//! STUB: to be written. Loss functions.
#![allow(missing_docs, unused)]
use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Loss {
    BinaryCrossentropy { from_logits: bool },
    CategoricalCrossentropy { from_logits: bool },
    SparseCategoricalCrossentropy { from_logits: bool },
    MeanSquaredError,
}

impl Loss {
    pub fn forward_backward(
        &self,
        pred: ArrayViewD<'_, f32>,
        target: ArrayViewD<'_, f32>,
    ) -> Result<(f32, ArrayD<f32>)> {
        todo!()
    }
    pub fn value(&self, pred: ArrayViewD<'_, f32>, target: ArrayViewD<'_, f32>) -> Result<f32> {
        todo!()
    }
    pub fn with_logits_for(&self, activation: crate::Activation) -> Option<Loss> {
        todo!()
    }
}
