//! STUB: to be written. [`Dropout`].
#![allow(missing_docs, unused)]
use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DropoutConfig {
    pub rate: f32,
    pub seed: u64,
}

impl DropoutConfig {
    pub fn new(rate: f32) -> Self {
        Self { rate, seed: 0 }
    }
    pub fn init(&self) -> Result<Dropout> {
        todo!()
    }
}

#[derive(Debug, Clone)]
pub struct Dropout {
    config: DropoutConfig,
}

impl Dropout {
    pub fn config(&self) -> &DropoutConfig {
        &self.config
    }
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        todo!()
    }
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        todo!()
    }
}
