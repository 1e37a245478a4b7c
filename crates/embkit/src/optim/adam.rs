//! STUB: to be written.
#![allow(missing_docs, unused)]
use serde::{Deserialize, Serialize};

use super::{Optimizer, OptimizerConfig};
use crate::{Result, RowGrad};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AdamConfig {
    pub learning_rate: f32,
}

impl AdamConfig {
    pub fn new() -> Self {
        todo!()
    }
    pub fn init(&self) -> Result<Adam> {
        todo!()
    }
}

#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
}

impl Optimizer for Adam {
    fn step_dense(&mut self, key: &str, value: &mut [f32], grad: &[f32]) -> Result<()> {
        todo!()
    }
    fn step_rows(&mut self, key: &str, table: &mut [f32], grad: &RowGrad) -> Result<()> {
        todo!()
    }
    fn finish_step(&mut self) {
        todo!()
    }
    fn iterations(&self) -> u64 {
        todo!()
    }
    fn config(&self) -> OptimizerConfig {
        OptimizerConfig::Adam(self.config.clone())
    }
}
