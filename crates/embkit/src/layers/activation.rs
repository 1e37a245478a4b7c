//! STUB: to be written. [`Activation`] functions and the [`ActivationLayer`].
#![allow(missing_docs, unused)]
use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Activation {
    #[default]
    Linear,
    Sigmoid,
    Relu,
    Tanh,
    Softmax,
}

#[derive(Debug, Clone)]
pub struct ActivationLayer {
    activation: Activation,
    input: Option<ArrayD<f32>>,
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> Self {
        Self { activation, input: None }
    }
    pub fn activation(&self) -> Activation {
        self.activation
    }
    pub fn input(&self) -> Option<ArrayViewD<'_, f32>> {
        self.input.as_ref().map(|a| a.view())
    }
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, training: bool) -> Result<ArrayD<f32>> {
        todo!()
    }
    pub fn backward(&mut self, grad_out: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        todo!()
    }
}
