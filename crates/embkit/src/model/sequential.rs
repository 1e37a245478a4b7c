//! [`Sequential`]: an [`Embedding`] followed by a stack of float layers.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, Model};
use crate::model::{Evaluation, History, Observer, TrainConfig};
use crate::optim::{GradMut, GradientClipping};
use crate::{
    Activation, DenseConfig, DropoutConfig, Embedding, EmbeddingConfig, Error, Layer, LayerConfig,
    Loss, Metric, Optimizer, Result,
};

/// Settings for a [`Sequential`] model: the table, the length of each
/// input sequence, and the layers after the table.
///
/// The builder methods ([`flatten`](Self::flatten),
/// [`dense`](Self::dense) ...) work out each layer's input size from the
/// layers before it, as Keras does.
///
/// # Examples
///
/// ```
/// use embkit::{Activation, EmbeddingConfig, SequentialConfig};
/// use rand::{rngs::StdRng, SeedableRng};
///
/// // Embedding(1000, 64) on documents of 50 ids, flattened for a Dense layer.
/// let config = SequentialConfig::new(EmbeddingConfig::new(1000, 64), 50)
///     .flatten()
///     .dense(1, Activation::Sigmoid);
/// assert_eq!(config.output_shape()?, vec![1]);
/// let model = config.init(&mut StdRng::seed_from_u64(0))?;
/// assert_eq!(model.layers().len(), 2);
/// # Ok::<(), embkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SequentialConfig {
    /// The table the ids are looked up in.
    pub embedding: EmbeddingConfig,
    /// The number of ids per sample (`seq_len`).
    pub input_length: usize,
    /// The float layers after the table, in order.
    pub layers: Vec<LayerConfig>,
}

impl SequentialConfig {
    /// A model that is just the table; add layers with the builder methods.
    pub fn new(embedding: EmbeddingConfig, input_length: usize) -> Self {
        Self { embedding, input_length, layers: Vec::new() }
    }

    /// Appends a layer config as it is.
    pub fn with_layer(mut self, layer: LayerConfig) -> Self {
        self.layers.push(layer);
        self
    }

    /// Appends a [`Flatten`](crate::Flatten).
    pub fn flatten(self) -> Self {
        self.with_layer(LayerConfig::Flatten)
    }

    /// Appends a [`GlobalAveragePooling1D`](crate::GlobalAveragePooling1D).
    pub fn global_average_pooling_1d(self) -> Self {
        self.with_layer(LayerConfig::GlobalAveragePooling1D)
    }

    /// Appends a [`Dropout`](crate::Dropout) with `rate` and `seed`.
    pub fn dropout(self, rate: f32, seed: u64) -> Self {
        self.with_layer(LayerConfig::Dropout(DropoutConfig::new(rate).with_seed(seed)))
    }

    /// Appends an activation layer.
    pub fn activation(self, activation: Activation) -> Self {
        self.with_layer(LayerConfig::Activation { activation })
    }

    /// Appends a [`Dense`](crate::Dense) layer with `out_features` units;
    /// its `in_features` is the last axis of the output so far (0 when the
    /// layers so far are invalid; [`init`](Self::init) then reports them).
    pub fn dense(self, out_features: usize, activation: Activation) -> Self {
        let in_features = self.output_shape().ok().and_then(|s| s.last().copied()).unwrap_or(0);
        self.with_layer(LayerConfig::Dense(
            DenseConfig::new(in_features, out_features).with_activation(activation),
        ))
    }

    /// What Keras would warn about when building this model: a
    /// [`Flatten`](crate::Flatten) that receives the mask of a
    /// `mask_zero` table drops it (Keras: "Layer 'flatten' does not
    /// support masking"), so masked steps then count like the others.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut masked = self.embedding.mask_zero;
        for (i, layer) in self.layers.iter().enumerate() {
            match layer {
                LayerConfig::Flatten if masked => {
                    warnings.push(format!(
                        "layer {i} (flatten) does not support masking: the mask of the \
                         mask_zero table is dropped and padded steps count like the others"
                    ));
                    masked = false;
                }
                LayerConfig::Flatten | LayerConfig::GlobalAveragePooling1D => masked = false,
                _ => {}
            }
        }
        warnings
    }

    /// The shape of one sample's output, batch axis left out.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] naming the first layer that cannot take the
    /// output of the layers before it.
    pub fn output_shape(&self) -> Result<Vec<usize>> {
        let mut shape = vec![self.input_length, self.embedding.embedding_dim];
        for layer in &self.layers {
            shape = layer.output_shape(&shape)?;
        }
        Ok(shape)
    }

    /// Validates the config and builds the model, drawing every layer's
    /// initial weights from `rng` in order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an invalid size (`input_length` of 0,
    /// an empty table ...); [`Error::ShapeMismatch`] if a layer does not
    /// fit the one before it.
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Sequential> {
        self.check()?;
        let embedding = self.embedding.init(rng)?;
        let layers = self.layers.iter().map(|l| l.init(rng)).collect::<Result<Vec<_>>>()?;
        Sequential::from_parts(self.clone(), embedding, layers)
    }

    fn check(&self) -> Result<()> {
        if self.input_length == 0 {
            return Err(Error::config("input_length", "must be at least 1, got 0"));
        }
        self.embedding.validate()?;
        self.output_shape().map(|_| ())
    }
}

/// An [`Embedding`] followed by float layers: ids `[batch, input_length]`
/// in, `[batch, ...]` out. The classic pipeline is
/// `Embedding → Flatten → Dense`.
#[derive(Debug, Clone)]
pub struct Sequential {
    config: SequentialConfig,
    embedding: Embedding,
    layers: Vec<Layer>,
    /// Ids of the last training forward, row-major.
    ids: Vec<u32>,
    /// Reused buffer for the table's output.
    gathered: Vec<f32>,
    /// Output of the last training forward.
    output: Option<ArrayD<f32>>,
    /// Mask of the last forward's output (`mask_zero`, while the output
    /// still has a steps axis).
    mask: Option<Array2<bool>>,
}

impl Sequential {
    /// Assembles a model from built parts (used by loading).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] / [`Error::ShapeMismatch`] if the parts do
    /// not match `config`.
    pub fn from_parts(
        config: SequentialConfig,
        embedding: Embedding,
        layers: Vec<Layer>,
    ) -> Result<Self> {
        config.check()?;
        if embedding.config() != &config.embedding {
            return Err(Error::config("embedding", "the table does not match the model's config"));
        }
        let built: Vec<LayerConfig> = layers.iter().map(Layer::config).collect();
        if built != config.layers {
            return Err(Error::config("layers", "the layers do not match the model's config"));
        }
        Ok(Self {
            config,
            embedding,
            layers,
            ids: Vec::new(),
            gathered: Vec::new(),
            output: None,
            mask: None,
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &SequentialConfig {
        &self.config
    }

    /// The table.
    pub fn embedding(&self) -> &Embedding {
        &self.embedding
    }

    /// The table, mutably (for example to load pretrained rows, or to
    /// [`enable_lora`](Embedding::enable_lora); [`config`](Self::config)
    /// then still shows the config the model was built from, and saving
    /// records the table's current config).
    pub fn embedding_mut(&mut self) -> &mut Embedding {
        &mut self.embedding
    }

    /// Folds the table's LoRA factors into the table (Keras's
    /// `embeddings` with LoRA: `base + (alpha / rank)·A·B`) and drops
    /// them, so the model saves and runs as a plain table. Does nothing
    /// without LoRA.
    pub fn merge_lora(&mut self) {
        if self.embedding.config().lora.is_some() {
            self.embedding = self.embedding.merge_lora();
            self.config.embedding = self.embedding.config().clone();
        }
    }

    /// The float layers, in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The float layers, mutably.
    pub fn layers_mut(&mut self) -> &mut [Layer] {
        &mut self.layers
    }

    fn check_input(&self, ids: &ArrayView2<'_, u32>) -> Result<()> {
        if ids.ncols() != self.config.input_length {
            return Err(Error::shape(
                "model input",
                format!("[batch, {}]", self.config.input_length),
                ids.shape(),
            ));
        }
        Ok(())
    }

    /// Runs the model on every sample, `batch_size` samples at a time, in
    /// inference mode (no dropout).
    ///
    /// # Shapes
    ///
    /// - `ids`: `[n, input_length]`
    /// - returns: `[n, ...]` ([`SequentialConfig::output_shape`] per sample)
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a batch size of 0;
    /// [`Error::ShapeMismatch`] for a wrong `input_length`;
    /// [`Error::IdOutOfRange`] for an id past the table.
    pub fn predict(&mut self, ids: ArrayView2<'_, u32>, batch_size: usize) -> Result<ArrayD<f32>> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        self.check_input(&ids)?;
        let mut shape = vec![ids.nrows()];
        shape.extend(self.config.output_shape()?);
        let mut out = ArrayD::zeros(IxDyn(&shape));
        let mut start = 0;
        for chunk in ids.axis_chunks_iter(Axis(0), batch_size) {
            let pred = Model::forward(self, chunk, false)?;
            let end = start + chunk.nrows();
            out.slice_axis_mut(Axis(0), (start..end).into()).assign(&pred);
            start = end;
        }
        Ok(out)
    }

    /// Trains the model; see [`fit`](crate::model::fit).
    ///
    /// # Errors
    ///
    /// As [`fit`](crate::model::fit).
    pub fn fit<'a>(
        &mut self,
        train: Dataset<'a>,
        validation: Option<Dataset<'a>>,
        config: &TrainConfig,
        observer: &mut dyn Observer,
    ) -> Result<History> {
        super::fit(self, train, validation, config, observer)
    }

    /// Loss and metrics on a data set; see
    /// [`evaluate`](crate::model::evaluate).
    ///
    /// # Errors
    ///
    /// As [`evaluate`](crate::model::evaluate).
    pub fn evaluate(
        &mut self,
        data: Dataset<'_>,
        loss: &Loss,
        metrics: &[Metric],
        batch_size: usize,
    ) -> Result<Evaluation> {
        super::evaluate(self, data, loss, metrics, batch_size)
    }
}

impl Sequential {
    /// The from-logits version of `loss` when the last layer ends in the
    /// matching activation (sigmoid + binary cross-entropy, softmax +
    /// categorical cross-entropy). Keras 3 computes these losses from the
    /// logits too: stable, and the same numbers.
    fn fused_loss(&self, loss: &Loss) -> Option<Loss> {
        loss.with_logits_for(self.layers.last()?.output_activation()?)
    }

    /// The forward pass. With `keep_last_logits`, the last layer keeps its
    /// pre-activation output even when not training (it is a `Dense` or an
    /// activation layer, which compute the same in both modes).
    fn run(
        &mut self,
        ids: ArrayView2<'_, u32>,
        training: bool,
        keep_last_logits: bool,
    ) -> Result<ArrayD<f32>> {
        self.check_input(&ids)?;
        let (batch, seq) = ids.dim();
        let dim = self.embedding.embedding_dim();
        self.ids.clear();
        self.ids.extend(ids.iter().copied());
        let mut gathered = std::mem::take(&mut self.gathered);
        self.embedding.forward_into(&self.ids, &mut gathered)?;
        let mut x =
            ArrayD::from_shape_vec(IxDyn(&[batch, seq, dim]), gathered).expect("one row per id");
        let mut mask = self.embedding.compute_mask(ids);
        let last = self.layers.len().saturating_sub(1);
        // Whether `x` holds the gather buffer, which goes back for the next
        // batch once a layer has read it.
        let mut holds_gather = true;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let train_this = training || (keep_last_logits && i == last);
            if let (Layer::Flatten(flatten), true) = (&mut *layer, holds_gather) {
                // Reshaped in place: the buffer moves on to the next layer.
                x = flatten.forward_owned(x, train_this)?;
                mask = None;
                continue;
            }
            if let (Layer::Dense(dense), true) = (&mut *layer, train_this) {
                // The input is kept for the backward as it is, not copied
                // (the gather buffer, if it is, goes with it).
                let y = dense.forward_owned(x, true)?;
                holds_gather = false;
                mask = mask.filter(|_| y.ndim() >= 3);
                x = y;
                continue;
            }
            let (y, m) =
                layer.forward_masked(x.view(), mask.as_ref().map(|m| m.view()), train_this)?;
            if std::mem::take(&mut holds_gather) {
                self.gathered = x.into_raw_vec_and_offset().0;
            }
            x = y;
            mask = m;
        }
        self.output = training.then(|| x.clone());
        self.mask = mask;
        Ok(x)
    }
}

impl Model for Sequential {
    fn forward(&mut self, ids: ArrayView2<'_, u32>, training: bool) -> Result<ArrayD<f32>> {
        self.run(ids, training, false)
    }

    fn evaluate_batch(
        &mut self,
        ids: ArrayView2<'_, u32>,
        loss: &Loss,
        targets: ArrayViewD<'_, f32>,
    ) -> Result<(f32, ArrayD<f32>)> {
        let fused = self.fused_loss(loss);
        let pred = self.run(ids, false, fused.is_some())?;
        let mask = self.mask.as_ref().map(|m| m.view().into_dyn());
        let value = match fused {
            Some(logit_loss) => {
                let last = self.layers.last().expect("a fused loss needs a last layer");
                let logits = last.logits().expect("the last layer kept its logits");
                logit_loss.value_masked(logits, targets, mask)?
            }
            None => loss.value_masked(pred.view(), targets, mask)?,
        };
        Ok((value, pred))
    }

    fn backward(&mut self, loss: &Loss, targets: ArrayViewD<'_, f32>) -> Result<f32> {
        let output = self.output.take().ok_or_else(|| {
            Error::InvalidState("Sequential::backward before a training forward".into())
        })?;
        let fused = self.fused_loss(loss);
        let mask = self.mask.as_ref().map(|m| m.view().into_dyn());
        let n = self.layers.len();
        let (value, mut grad, rest) = match fused {
            Some(logit_loss) => {
                let last = &mut self.layers[n - 1];
                let logits = last.logits().expect("checked above").to_owned();
                let (value, g) =
                    logit_loss.forward_backward_masked(logits.view(), targets, mask)?;
                (value, last.backward_from_logits(g.view())?, n - 1)
            }
            None => {
                let (value, g) = loss.forward_backward_masked(output.view(), targets, mask)?;
                (value, g, n)
            }
        };
        for layer in self.layers[..rest].iter_mut().rev() {
            grad = layer.backward(grad.view())?;
        }
        let grad = grad.as_standard_layout();
        let grad = grad.as_slice().expect("standard layout is contiguous");
        self.embedding.backward(&self.ids, grad)?;
        // The table's regulariser, on the rows of this batch (see
        // `Regularizer`): part of the loss, as in Keras.
        Ok(value + self.embedding.regularization_loss())
    }

    fn output_mask(&self) -> Option<ArrayViewD<'_, bool>> {
        self.mask.as_ref().map(|m| m.view().into_dyn())
    }

    fn clip_gradients(&mut self, clipping: &GradientClipping) -> Result<()> {
        let mut grads = self.embedding.grads_mut();
        for layer in &mut self.layers {
            grads.extend(layer.params_mut().into_iter().map(|p| GradMut::Dense(p.grad)));
        }
        clipping.apply(&mut grads)
    }

    fn gradients_are_finite(&mut self) -> bool {
        self.embedding.gradients_are_finite()
            && self
                .layers
                .iter_mut()
                .all(|l| l.params_mut().iter().all(|p| crate::kernels::all_finite(p.grad)))
    }

    fn step(&mut self, optimizer: &mut dyn Optimizer) -> Result<()> {
        self.embedding.step(optimizer, "embedding")?;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for p in layer.params_mut() {
                optimizer.step_dense(&format!("layers.{i}.{}", p.name), p.value, p.grad)?;
            }
        }
        optimizer.finish_step();
        Ok(())
    }

    fn set_threads(&mut self, threads: crate::Threads) {
        self.embedding.set_threads(threads);
    }
}
