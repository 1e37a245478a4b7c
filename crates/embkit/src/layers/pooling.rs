//! STUB: to be written. [`GlobalAveragePooling1D`].
#![allow(missing_docs, unused)]
use ndarray::{ArrayD, ArrayViewD};

use crate::Result;

#[derive(Debug, Clone, Default)]
pub struct GlobalAveragePooling1D {
    input_shape: Option<Vec<usize>>,
}

impl GlobalAveragePooling1D {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        todo!()
    }
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        todo!()
    }
}
