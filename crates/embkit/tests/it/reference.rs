//! End-to-end runs pinned to the reference libraries' numbers.
//!
//! The Keras numbers come from `tests/reference/keras_rmsprop.py` (Keras
//! 3.15.1, TensorFlow 2.21.0, CPU); the script documents the setup, and
//! this file builds the same model, weights and data.

use embkit::{
    Dataset, EmbeddingConfig, Layer, Loss, NoObserver, OptimizerConfig, RmsPropConfig, Sequential,
    SequentialConfig, TableUpdates, TrainConfig,
};
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use rand::{rngs::StdRng, SeedableRng};

const N: usize = 64;
const SEQ: usize = 5;
const VOCAB: usize = 20;
const DIM: usize = 4;

/// The script's LCG data: 64 samples of 5 ids, label 1 when at least three
/// ids are below 10.
fn lcg_data() -> (Array2<u32>, ArrayD<f32>) {
    let mut x: u64 = 12345;
    let ids = Array2::from_shape_fn((N, SEQ), |_| {
        x = (1_103_515_245 * x + 12345) % (1 << 31);
        ((x >> 16) % VOCAB as u64) as u32
    });
    let y: Vec<f32> = ids
        .outer_iter()
        .map(|r| f32::from(u8::from(r.iter().filter(|&&i| i < 10).count() >= 3)))
        .collect();
    (ids, ArrayD::from_shape_vec(IxDyn(&[N, 1]), y).unwrap())
}

/// The script's initial weights.
fn model() -> Sequential {
    let mut m = SequentialConfig::new(EmbeddingConfig::new(VOCAB, DIM), SEQ)
        .flatten()
        .dense(1, embkit::Activation::Sigmoid)
        .init(&mut StdRng::seed_from_u64(0))
        .unwrap();
    for (k, w) in m.embedding_mut().weights_mut().iter_mut().enumerate() {
        let (i, j) = (k / DIM, k % DIM);
        // As numpy: (a - 5) / 50 in f64, then rounded to f32.
        *w = ((((i * 7 + j * 3) % 11) as f64 - 5.0) / 50.0) as f32;
    }
    let Layer::Dense(d) = &mut m.layers_mut()[1] else { unreachable!("Flatten, then Dense") };
    let kernel =
        Array1::from_shape_fn(SEQ * DIM, |k| ((((k * 5) % 13) as f64 - 6.0) / 40.0) as f32);
    d.kernel_mut().assign(&kernel.into_shape_with_order((SEQ * DIM, 1)).unwrap());
    m
}

fn run(optimizer: OptimizerConfig) -> (Vec<f64>, Sequential) {
    let (ids, y) = lcg_data();
    let mut m = model();
    let config = TrainConfig::new(Loss::BinaryCrossentropy { from_logits: false }, optimizer)
        .with_epochs(3)
        .with_batch_size(16)
        .with_shuffle(false);
    let h =
        m.fit(Dataset::new(ids.view(), y.view()).unwrap(), None, &config, &mut NoObserver).unwrap();
    (h.epochs.iter().map(|e| e.loss).collect(), m)
}

#[test]
fn data_and_weights_are_the_scripts() {
    let (ids, y) = lcg_data();
    assert_eq!(ids.row(0).to_vec(), vec![8, 8, 17, 18, 7]);
    assert_eq!(y.sum(), 31.0);
}

/// The lazy table update (only the batch's rows and their state move,
/// duplicates summed before squaring) with Keras's RMSprop formula,
/// against an independent numpy run of the same setup (the `lazy` branch
/// of `tests/reference/numpy_rmsprop.py`):
///
/// ```text
/// touched = np.unique(x)
/// vE[touched] = rho*vE[touched] + (1-rho)*gE[touched]**2
/// E[touched] -= lr*gE[touched]/np.sqrt(vE[touched]+eps)
/// -> losses 0.692485809 0.690836251 0.689714313, E[0] = [-0.11330451 -0.04013825 0.03514412 0.0748879]
/// ```
///
/// Keras itself gives 0.692467272 0.690426648 0.689053535: it squares each
/// occurrence of a repeated id and decays the state of every row (see
/// REFERENCE-NOTES.md).
#[test]
fn lazy_rmsprop_matches_an_independent_implementation() {
    let (losses, m) = run(RmsPropConfig::new().into());
    for (got, want) in losses.iter().zip([0.692485809, 0.690836251, 0.689714313]) {
        assert!((got - want).abs() < 1e-6, "{losses:?}");
    }
    for (got, want) in
        m.embedding().weights()[..DIM].iter().zip([-0.11330451, -0.04013825, 0.03514412, 0.0748879])
    {
        assert!((got - want).abs() < 1e-6, "{:?}", &m.embedding().weights()[..DIM]);
    }
}

/// Keras's table semantics (`TableUpdates::Keras`: the squares of each
/// occurrence of a repeated id accumulate, and every row's mean square
/// decays) with Keras's RMSprop reproduce Keras 3 itself:
/// `tests/reference/keras_rmsprop.py` prints
///
/// ```text
/// losses ['0.692467272', '0.690426648', '0.689053535']
/// embedding[0] ['-0.117071867', '-0.0411465466', '0.03695333', '0.0743908808']
/// embedding[19] ['-0.0877161846', '-0.0166228805', '0.050067395', '0.0923649222']
/// bias ['-0.00392574025']
/// ```
#[test]
fn keras_rmsprop_run_matches_keras() {
    let optimizer =
        OptimizerConfig::from(RmsPropConfig::new()).with_table_updates(TableUpdates::Keras);
    let (losses, m) = run(optimizer);
    for (got, want) in losses.iter().zip([0.692467272, 0.690426648, 0.689053535]) {
        assert!((got - want).abs() < 1e-6, "{losses:?}");
    }
    let w = m.embedding().weights();
    let want0: [f64; 4] = [-0.117071867, -0.0411465466, 0.03695333, 0.0743908808];
    let want19: [f64; 4] = [-0.0877161846, -0.0166228805, 0.050067395, 0.0923649222];
    for (got, want) in w[..DIM].iter().chain(&w[19 * DIM..]).zip(want0.iter().chain(&want19)) {
        assert!((f64::from(*got) - want).abs() < 1e-6, "{w:?}");
    }
    let Layer::Dense(d) = &m.layers()[1] else { unreachable!() };
    assert!((f64::from(d.bias()[0]) - -0.00392574025).abs() < 1e-7, "{}", d.bias()[0]);
}

/// PyTorch's RMSprop (alpha 0.99, eps 1e-8 outside the square root) on a
/// dense embedding gradient (`TableUpdates::Dense`), learning rate 0.001,
/// reproduces PyTorch: `tests/reference/torch_rmsprop.py` prints
///
/// ```text
/// losses ['0.692265287', '0.686803877', '0.682862341']
/// embedding[0] ['-0.138199225', '-0.0474811792', '0.0676768497', '0.0664044991']
/// bias ['-0.0119169988']
/// ```
#[test]
fn pytorch_rmsprop_run_matches_pytorch() {
    let optimizer = OptimizerConfig::from(RmsPropConfig::pytorch().with_learning_rate(0.001))
        .with_table_updates(TableUpdates::Dense);
    let (losses, m) = run(optimizer);
    for (got, want) in losses.iter().zip([0.692265287, 0.686803877, 0.682862341]) {
        assert!((got - want).abs() < 1e-6, "{losses:?}");
    }
    let w = m.embedding().weights();
    let want: [f64; 4] = [-0.138199225, -0.0474811792, 0.0676768497, 0.0664044991];
    for (got, want) in w[..DIM].iter().zip(want) {
        assert!((f64::from(*got) - want).abs() < 1e-6, "{w:?}");
    }
    let Layer::Dense(d) = &m.layers()[1] else { unreachable!() };
    assert!((f64::from(d.bias()[0]) - -0.0119169988).abs() < 1e-7, "{}", d.bias()[0]);
}
