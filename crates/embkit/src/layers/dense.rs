//! STUB: to be written. [`Dense`].
#![allow(missing_docs, unused)]
use ndarray::{Array1, Array2, ArrayD, ArrayViewD};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Activation, ParamMut};
use crate::{Init, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DenseConfig {
    pub in_features: usize,
    pub out_features: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_init: Init,
    pub bias_init: Init,
}

impl DenseConfig {
    pub fn new(in_features: usize, out_features: usize) -> Self {
        Self {
            in_features,
            out_features,
            activation: Activation::Linear,
            use_bias: true,
            kernel_init: Init::GlorotUniform,
            bias_init: Init::Zeros,
        }
    }
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Dense> {
        todo!()
    }
}

#[derive(Debug, Clone)]
pub struct Dense {
    config: DenseConfig,
}

impl Dense {
    pub fn config(&self) -> &DenseConfig {
        &self.config
    }
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        todo!()
    }
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        todo!()
    }
    pub fn backward_from_logits(&mut self, grad_z: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        todo!()
    }
    pub fn logits(&self) -> Option<ArrayViewD<'_, f32>> {
        todo!()
    }
    pub fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        todo!()
    }
}
