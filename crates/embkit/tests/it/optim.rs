//! Integration tests: optim.
//!
//! The properties check the row updates against the dense update they
//! stand for: in the lazy mode a step on the rows of a table is, bit for
//! bit, the dense step on each touched row with that row's own state, and
//! nothing else (weights or state) moves; in the dense mode it is the
//! dense step on the whole table with the scattered gradient; the Keras
//! mode differs from the dense one only for ids seen several times.
//!
//! The pinned numbers come from Keras 3.15 (TensorFlow 2.21) and PyTorch
//! 2.15 on CPU, run by the scripts pasted above each table.

use embkit::layers::{Constraint, Regularizer};
use embkit::optim::{
    AdamFlavour, AdamWConfig, Flavour, FtrlConfig, GradMut, GradientClipping, RowNorm,
    RowWiseAdagradConfig, TableUpdates,
};
use embkit::{
    AdagradConfig, AdamConfig, Embedding, EmbeddingConfig, Error, OptimizerConfig, RmsPropConfig,
    RowGrad, SgdConfig, Threads,
};
use ndarray::ArrayView2;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Steps per case: enough for state to build up and for rows to be
/// touched for the first time after others have moved.
const STEPS: usize = 3;

fn learning_rate() -> impl Strategy<Value = f32> {
    1e-4f32..0.5
}

/// A decay rate in `[0, 1)`, often exactly 0 (the "off" value).
fn decay() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), 0.0f32..0.99]
}

fn epsilon() -> impl Strategy<Value = f32> {
    1e-8f32..1e-2
}

fn flavour() -> impl Strategy<Value = Flavour> {
    prop_oneof![Just(Flavour::Keras), Just(Flavour::PyTorch)]
}

fn adam_flavour() -> impl Strategy<Value = AdamFlavour> {
    prop_oneof![
        Just(AdamFlavour::Keras),
        Just(AdamFlavour::PyTorch),
        Just(AdamFlavour::PyTorchSparse)
    ]
}

fn sgd() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), decay(), any::<bool>(), flavour()).prop_map(
        |(lr, momentum, nesterov, flavour)| {
            SgdConfig::new()
                .with_learning_rate(lr)
                .with_momentum(momentum)
                .with_nesterov(nesterov)
                .with_flavour(flavour)
                .into()
        },
    )
}

fn adagrad() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), 0.0f32..1.0, epsilon(), prop_oneof![Just(0.0f32), 0.0f32..1.0], flavour())
        .prop_map(|(lr, initial, eps, lr_decay, flavour)| {
            AdagradConfig::new()
                .with_learning_rate(lr)
                .with_initial_accumulator_value(initial)
                .with_epsilon(eps)
                .with_lr_decay(lr_decay)
                .with_flavour(flavour)
                .into()
        })
}

fn adam() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), decay(), decay(), epsilon(), any::<bool>(), adam_flavour()).prop_map(
        |(lr, beta_1, beta_2, eps, amsgrad, flavour)| {
            AdamConfig::new()
                .with_learning_rate(lr)
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(eps)
                .with_amsgrad(amsgrad)
                .with_flavour(flavour)
                .into()
        },
    )
}

fn adamw() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), 0.0f32..0.5, decay(), decay(), epsilon(), any::<bool>(), adam_flavour())
        .prop_map(|(lr, weight_decay, beta_1, beta_2, eps, amsgrad, flavour)| {
            AdamWConfig::new()
                .with_learning_rate(lr)
                .with_weight_decay(weight_decay)
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(eps)
                .with_amsgrad(amsgrad)
                .with_flavour(flavour)
                .into()
        })
}

fn rmsprop() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), decay(), decay(), epsilon(), any::<bool>(), flavour()).prop_map(
        |(lr, rho, momentum, eps, centered, flavour)| {
            RmsPropConfig::new()
                .with_learning_rate(lr)
                .with_rho(rho)
                .with_momentum(momentum)
                .with_epsilon(eps)
                .with_centered(centered)
                .with_flavour(flavour)
                .into()
        },
    )
}

fn ftrl() -> impl Strategy<Value = OptimizerConfig> {
    let strengths = (0.0f32..0.1, 0.0f32..0.1, 0.0f32..0.1, 0.0f32..1.0);
    (learning_rate(), -1.0f32..=0.0, 0.01f32..1.0, strengths).prop_map(
        |(lr, power, initial, (l1, l2, shrinkage, beta))| {
            FtrlConfig::new()
                .with_learning_rate(lr)
                .with_learning_rate_power(power)
                .with_initial_accumulator_value(initial)
                .with_l1_regularization_strength(l1)
                .with_l2_regularization_strength(l2)
                .with_l2_shrinkage_regularization_strength(shrinkage)
                .with_beta(beta)
                .into()
        },
    )
}

fn rowwise_adagrad() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), epsilon(), 0.0f32..1.0).prop_map(|(lr, eps, initial)| {
        RowWiseAdagradConfig::new()
            .with_learning_rate(lr)
            .with_epsilon(eps)
            .with_initial_accumulator_value(initial)
            .into()
    })
}

/// Any optimizer whose state is one value per element (all but row-wise
/// Adagrad), so a table is a dense parameter of `num_embeddings × dim`.
fn elementwise() -> impl Strategy<Value = OptimizerConfig> {
    prop_oneof![sgd(), adagrad(), adam(), adamw(), rmsprop(), ftrl()]
}

fn any_optimizer() -> impl Strategy<Value = OptimizerConfig> {
    prop_oneof![elementwise(), rowwise_adagrad()]
}

fn table_updates() -> impl Strategy<Value = TableUpdates> {
    prop_oneof![Just(TableUpdates::Lazy), Just(TableUpdates::Dense), Just(TableUpdates::Keras)]
}

/// A table and the row gradients of a few steps.
#[derive(Debug, Clone)]
struct Case {
    num_embeddings: usize,
    dim: usize,
    table: Vec<f32>,
    steps: Vec<RowGrad>,
}

/// A row gradient over rows `0..num_embeddings`, built from a batch that
/// may repeat ids (often, since tables are small) or be empty.
fn row_grad(num_embeddings: usize, dim: usize) -> impl Strategy<Value = RowGrad> {
    (0usize..12)
        .prop_flat_map(move |n| {
            let ids = prop::collection::vec(0..num_embeddings as u32, n);
            let grads = prop::collection::vec(-2.0f32..2.0, n * dim);
            (ids, grads)
        })
        .prop_map(move |(ids, grads)| RowGrad::from_rows(&ids, &grads, dim))
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..16, 1usize..6).prop_flat_map(|(num_embeddings, dim)| {
        let table = prop::collection::vec(-1.0f32..1.0, num_embeddings * dim);
        let steps = prop::collection::vec(row_grad(num_embeddings, dim), STEPS);
        (table, steps).prop_map(move |(table, steps)| Case { num_embeddings, dim, table, steps })
    })
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|x| x.to_bits()).collect()
}

/// The same gradient with each id once (its summed row): what a batch
/// without repeated ids gives.
fn without_repeats(grad: &RowGrad) -> RowGrad {
    RowGrad::from_rows(grad.ids(), grad.rows(), grad.dim())
}

/// (a) After each step, the table equals a reference where every touched
/// row was updated by `step_dense` under its own key (its own state, first
/// allocated when the row is first touched); (b) rows the step did not
/// touch are bit-identical to before it.
fn rows_step_equals_dense_step_per_row(
    config: &OptimizerConfig,
    case: &Case,
) -> Result<(), TestCaseError> {
    let dim = case.dim;
    let mut sparse = config.build()?;
    let mut dense = config.build()?;
    let mut table = case.table.clone();
    let mut reference = case.table.clone();
    for grad in &case.steps {
        let before = table.clone();
        sparse.step_rows("table", &mut table, grad)?;
        for (id, g) in grad.iter() {
            let row = id as usize * dim..(id as usize + 1) * dim;
            dense.step_dense(&format!("row {id}"), &mut reference[row], g)?;
        }
        sparse.finish_step();
        dense.finish_step();

        prop_assert_eq!(bits(&table), bits(&reference));
        for id in 0..case.num_embeddings as u32 {
            if grad.ids().binary_search(&id).is_err() {
                let row = id as usize * dim..(id as usize + 1) * dim;
                prop_assert_eq!(bits(&table[row.clone()]), bits(&before[row]), "row {}", id);
            }
        }
    }
    Ok(())
}

/// (c) The state of a row no step touched is still its initial state: the
/// first step on that row, after the others, equals the step of a fresh
/// optimizer (at the same iteration count) on that row alone.
fn untouched_state_stays_initial(
    config: &OptimizerConfig,
    case: &Case,
    probe: &[f32],
) -> Result<(), TestCaseError> {
    let dim = case.dim;
    // One extra row, past every id of `case.steps`.
    let last = case.num_embeddings as u32;
    let mut table = case.table.clone();
    table.extend_from_slice(probe);
    let mut optimizer = config.build()?;
    for grad in &case.steps {
        optimizer.step_rows("table", &mut table, grad)?;
        optimizer.finish_step();
    }
    let probe_grad = RowGrad::from_rows(&[last], probe, dim);
    optimizer.step_rows("table", &mut table, &probe_grad)?;

    let mut fresh = config.build()?;
    for _ in 0..STEPS {
        fresh.finish_step();
    }
    let mut row = probe.to_vec();
    fresh.step_dense("row", &mut row, probe)?;
    prop_assert_eq!(bits(&table[last as usize * dim..]), bits(&row));
    Ok(())
}

/// In the dense mode a step on the rows is, bit for bit, `step_dense` on
/// the whole table with the scattered gradient (zero rows included), for
/// optimizers with one state value per element.
fn dense_mode_equals_the_dense_step(
    config: &OptimizerConfig,
    case: &Case,
) -> Result<(), TestCaseError> {
    let config = config.clone().with_table_updates(TableUpdates::Dense);
    let mut rows = config.build()?;
    let mut dense = config.build()?;
    let mut table = case.table.clone();
    let mut reference = case.table.clone();
    for grad in &case.steps {
        rows.step_rows("table", &mut table, grad)?;
        dense.step_dense("table", &mut reference, &grad.to_dense(case.num_embeddings))?;
        rows.finish_step();
        dense.finish_step();
        prop_assert_eq!(bits(&table), bits(&reference));
    }
    Ok(())
}

/// The Keras mode is the dense mode for batches without repeated ids: the
/// sum of the squares of one occurrence is its square.
fn keras_mode_without_repeats_is_the_dense_mode(
    config: &OptimizerConfig,
    case: &Case,
) -> Result<(), TestCaseError> {
    let mut keras = config.clone().with_table_updates(TableUpdates::Keras).build()?;
    let mut dense = config.clone().with_table_updates(TableUpdates::Dense).build()?;
    let mut table = case.table.clone();
    let mut reference = case.table.clone();
    for grad in &case.steps {
        let grad = without_repeats(grad);
        keras.step_rows("table", &mut table, &grad)?;
        dense.step_rows("table", &mut reference, &grad)?;
        keras.finish_step();
        dense.finish_step();
        prop_assert_eq!(bits(&table), bits(&reference));
    }
    Ok(())
}

/// A step whose gradient names a row past the table fails with
/// `IdOutOfRange` and changes nothing: neither the table nor the state
/// (the next good step is the one an optimizer that never saw the bad
/// step takes).
fn out_of_range_step_changes_nothing(
    config: &OptimizerConfig,
    case: &Case,
    past: u32,
) -> Result<(), TestCaseError> {
    let num_embeddings = case.num_embeddings;
    let bad_id = num_embeddings as u32 + past;
    let [first, second, ..] = &case.steps[..] else { unreachable!("cases have {STEPS} steps") };
    let mut bad_ids = first.ids().to_vec();
    bad_ids.push(bad_id);
    let bad = RowGrad::from_rows(&bad_ids, &vec![1.0; bad_ids.len() * case.dim], case.dim);

    let mut optimizer = config.build()?;
    let mut table = case.table.clone();
    optimizer.step_rows("table", &mut table, first)?;
    let before = table.clone();
    match optimizer.step_rows("table", &mut table, &bad) {
        Err(Error::IdOutOfRange { id, num_embeddings: n }) => {
            prop_assert_eq!((id, n), (bad_id, num_embeddings));
        }
        other => prop_assert!(false, "expected IdOutOfRange, got {:?}", other),
    }
    prop_assert_eq!(bits(&table), bits(&before));
    optimizer.step_rows("table", &mut table, second)?;

    let mut clean = config.build()?;
    let mut want = case.table.clone();
    clean.step_rows("table", &mut want, first)?;
    clean.step_rows("table", &mut want, second)?;
    prop_assert_eq!(bits(&table), bits(&want));
    Ok(())
}

/// A case and a probe gradient for the extra row of
/// [`untouched_state_stays_initial`].
fn case_and_probe() -> impl Strategy<Value = (Case, Vec<f32>)> {
    case().prop_flat_map(|case| {
        let probe = prop::collection::vec(-2.0f32..2.0, case.dim);
        (Just(case), probe)
    })
}

proptest! {
    #[test]
    fn sgd_row_step_equals_dense_step_per_row(config in sgd(), case in case()) {
        rows_step_equals_dense_step_per_row(&config, &case)?;
    }

    #[test]
    fn adagrad_row_step_equals_dense_step_per_row(config in adagrad(), case in case()) {
        rows_step_equals_dense_step_per_row(&config, &case)?;
    }

    #[test]
    fn adam_row_step_equals_dense_step_per_row(config in adam(), case in case()) {
        rows_step_equals_dense_step_per_row(&config, &case)?;
    }

    #[test]
    fn adamw_row_step_equals_dense_step_per_row(config in adamw(), case in case()) {
        rows_step_equals_dense_step_per_row(&config, &case)?;
    }

    #[test]
    fn rmsprop_row_step_equals_dense_step_per_row(config in rmsprop(), case in case()) {
        rows_step_equals_dense_step_per_row(&config, &case)?;
    }

    #[test]
    fn ftrl_row_step_equals_dense_step_per_row(config in ftrl(), case in case()) {
        rows_step_equals_dense_step_per_row(&config, &case)?;
    }

    #[test]
    fn rowwise_adagrad_row_step_equals_dense_step_per_row(
        config in rowwise_adagrad(),
        case in case(),
    ) {
        rows_step_equals_dense_step_per_row(&config, &case)?;
    }

    #[test]
    fn sgd_state_of_untouched_rows_stays_initial(config in sgd(), (case, probe) in case_and_probe()) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn adagrad_state_of_untouched_rows_stays_initial(
        config in adagrad(),
        (case, probe) in case_and_probe(),
    ) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn adam_state_of_untouched_rows_stays_initial(config in adam(), (case, probe) in case_and_probe()) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn adamw_state_of_untouched_rows_stays_initial(
        config in adamw(),
        (case, probe) in case_and_probe(),
    ) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn rmsprop_state_of_untouched_rows_stays_initial(
        config in rmsprop(),
        (case, probe) in case_and_probe(),
    ) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn ftrl_state_of_untouched_rows_stays_initial(config in ftrl(), (case, probe) in case_and_probe()) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn rowwise_adagrad_state_of_untouched_rows_stays_initial(
        config in rowwise_adagrad(),
        (case, probe) in case_and_probe(),
    ) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn dense_mode_row_step_equals_the_dense_step(config in elementwise(), case in case()) {
        dense_mode_equals_the_dense_step(&config, &case)?;
    }

    #[test]
    fn keras_mode_differs_from_dense_only_for_repeated_ids(
        config in any_optimizer(),
        case in case(),
    ) {
        keras_mode_without_repeats_is_the_dense_mode(&config, &case)?;
    }

    #[test]
    fn out_of_range_id_leaves_table_and_state_unchanged(
        config in any_optimizer(),
        mode in table_updates(),
        case in case(),
        past in 0u32..4,
    ) {
        out_of_range_step_changes_nothing(&config.with_table_updates(mode), &case, past)?;
    }
}

// ---------------------------------------------------------------------------
// The fused backward and step of a table (`Embedding::backward_step`).

/// A table of `num_embeddings × dim` and, per step, a batch of ids (often
/// repeated, sometimes empty) with one upstream row each.
#[derive(Debug, Clone)]
struct BatchCase {
    num_embeddings: usize,
    dim: usize,
    table: Vec<f32>,
    steps: Vec<(Vec<u32>, Vec<f32>)>,
}

fn batch_case() -> impl Strategy<Value = BatchCase> {
    (1usize..16, 1usize..6).prop_flat_map(|(num_embeddings, dim)| {
        let table = prop::collection::vec(-1.0f32..1.0, num_embeddings * dim);
        // Signed zeros too: `scale_grad_by_freq` turns -0 into 0.
        let value = prop_oneof![8 => -2.0f32..2.0, 1 => Just(0.0f32), 1 => Just(-0.0f32)];
        let batch = (0usize..12).prop_flat_map(move |n| {
            let ids = prop::collection::vec(0..num_embeddings as u32, n);
            (ids, prop::collection::vec(value.clone(), n * dim))
        });
        let steps = prop::collection::vec(batch, STEPS);
        (table, steps).prop_map(move |(table, steps)| BatchCase {
            num_embeddings,
            dim,
            table,
            steps,
        })
    })
}

/// Two copies of one table, one stepped by `backward` then `step`, the
/// other by `backward_step`, end every step with the same bits. Where
/// `backward_step` steps each occurrence on its own (Keras's SGD without
/// momentum, [`Optimizer::steps_each_occurrence`]), the first copy takes
/// `backward` and `step` once per occurrence, in batch order, and the
/// constraint once after the batch, as `backward_step` applies it.
fn fused_step_equals_backward_then_step(
    optimizer: &OptimizerConfig,
    table: &EmbeddingConfig,
    lora: bool,
    case: &BatchCase,
    threads: usize,
) -> Result<(), TestCaseError> {
    use rand::{rngs::StdRng, SeedableRng};
    let weights = ArrayView2::from_shape((case.num_embeddings, case.dim), &case.table)
        .expect("the case's shape");
    let (mut apart_opt, mut fused_opt) = (optimizer.build()?, optimizer.build()?);
    let per_occurrence = fused_opt.steps_each_occurrence()
        && !table.scale_grad_by_freq
        && !lora
        && table.regularizer.is_none()
        && table.trainable;
    let mut apart_table = table.clone();
    if per_occurrence {
        apart_table.constraint = None;
    }
    let mut apart = Embedding::from_pretrained_with(weights, apart_table)?;
    let mut fused = Embedding::from_pretrained_with(weights, table.clone())?;
    if lora {
        apart.enable_lora(1, None, &mut StdRng::seed_from_u64(3))?;
        fused.enable_lora(1, None, &mut StdRng::seed_from_u64(3))?;
    }
    fused.set_threads(Threads::new(threads)?);
    fused_opt.set_threads(Threads::new(threads)?);
    for (ids, upstream) in &case.steps {
        if per_occurrence {
            for (id, row) in ids.iter().zip(upstream.chunks_exact(case.dim)) {
                apart.backward(std::slice::from_ref(id), row)?;
                apart.step(apart_opt.as_mut(), "table")?;
            }
            if let Some(constraint) = &table.constraint {
                constraint.apply(apart.weights_mut(), case.num_embeddings, case.dim);
            }
        } else {
            apart.backward(ids, upstream)?;
            apart.step(apart_opt.as_mut(), "table")?;
        }
        apart_opt.finish_step();
        fused.backward_step(ids, upstream, fused_opt.as_mut(), "table")?;
        fused_opt.finish_step();
        prop_assert_eq!(bits(apart.weights()), bits(fused.weights()));
        prop_assert_eq!(apart.lora_a(), fused.lora_a());
        prop_assert_eq!(apart.lora_b(), fused.lora_b());
    }
    // The optimizers' states too: one more step of both, on every row
    // through `backward` and `step`, differs where a state does.
    let ids: Vec<u32> = (0..case.num_embeddings as u32).collect();
    let upstream = vec![0.5; case.num_embeddings * case.dim];
    for (table, optimizer) in [(&mut apart, &mut apart_opt), (&mut fused, &mut fused_opt)] {
        table.backward(&ids, &upstream)?;
        table.step(optimizer.as_mut(), "table")?;
    }
    if let Some(constraint) = table.constraint.as_ref().filter(|_| per_occurrence) {
        constraint.apply(apart.weights_mut(), case.num_embeddings, case.dim);
    }
    prop_assert_eq!(bits(apart.weights()), bits(fused.weights()));
    prop_assert_eq!(apart.lora_a(), fused.lora_a());
    prop_assert_eq!(apart.lora_b(), fused.lora_b());
    Ok(())
}

proptest! {
    #[test]
    fn backward_step_equals_backward_then_step(
        optimizer in any_optimizer(),
        mode in table_updates(),
        case in batch_case(),
        padding in any::<bool>(),
        by_freq in any::<bool>(),
        non_neg in any::<bool>(),
        other in 0usize..8,
        threads in 1usize..4,
    ) {
        let mut table = EmbeddingConfig::new(case.num_embeddings, case.dim)
            .with_scale_grad_by_freq(by_freq);
        if padding {
            table = table.with_padding_idx(0);
        }
        // (Keras refuses a constraint with LoRA, and so does embkit.)
        if non_neg && other != 0 {
            table = table.with_constraint(Constraint::non_neg());
        }
        // Now and then the options that step apart: LoRA, a regulariser,
        // a frozen table.
        table = match other {
            1 => table.with_regularizer(Regularizer::l2(0.1)),
            2 => table.with_trainable(false),
            _ => table,
        };
        fused_step_equals_backward_then_step(
            &optimizer.with_table_updates(mode),
            &table,
            other == 0,
            &case,
            threads,
        )?;
    }
}

/// Batches large enough for the fused step to split the rows over threads
/// and for the summed path of rows of 32 floats.
#[test]
fn a_large_fused_step_equals_backward_then_step_on_any_thread_count() -> Result<(), Error> {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let (num_embeddings, dim) = (20_000, 32);
    let mut rng = StdRng::seed_from_u64(8);
    let table: Vec<f32> = (0..num_embeddings * dim).map(|_| rng.random::<f32>() - 0.5).collect();
    // Two steps of ids spread over two thirds of the table, one of ids
    // crowded into its first 50 rows (the threads' shares of the rows
    // follow the ids: some get none).
    let steps = [2 * num_embeddings as u32 / 3, 2 * num_embeddings as u32 / 3, 50]
        .into_iter()
        .map(|spread| {
            let ids: Vec<u32> = (0..30_000).map(|_| rng.random_range(0..spread)).collect();
            let upstream: Vec<f32> =
                (0..ids.len() * dim).map(|_| rng.random::<f32>() - 0.5).collect();
            (ids, upstream)
        })
        .collect();
    let case = BatchCase { num_embeddings, dim, table, steps };
    let optimizers: [OptimizerConfig; 6] = [
        SgdConfig::new().with_learning_rate(0.1).into(),
        OptimizerConfig::from(SgdConfig::new().with_learning_rate(0.1))
            .with_table_updates(TableUpdates::Keras),
        AdamConfig::pytorch_sparse().into(),
        RowWiseAdagradConfig::new().into(),
        OptimizerConfig::from(AdagradConfig::new()).with_table_updates(TableUpdates::Keras),
        OptimizerConfig::from(RmsPropConfig::new()).with_table_updates(TableUpdates::Dense),
    ];
    for optimizer in &optimizers {
        for by_freq in [false, true] {
            let table = EmbeddingConfig::new(num_embeddings, dim).with_scale_grad_by_freq(by_freq);
            for threads in [1, 2, 3] {
                fused_step_equals_backward_then_step(optimizer, &table, false, &case, threads)
                    .map_err(|e| Error::InvalidState(format!("{optimizer:?}, {threads}: {e}")))?;
            }
        }
    }
    Ok(())
}

/// Keras's SGD without momentum subtracts `lr · gᵢ` once per occurrence
/// (the TensorFlow backend's `scatter_sub` of the `IndexedSlices`
/// gradient), which `backward_step` follows in the Keras table mode: an id
/// seen twice with `g = 1`, from `w = 1` at `lr = 0.1`, ends at
/// `(1 − 0.1) − 0.1 = 0.79999995` in f32. Summed first, as PyTorch's sparse
/// SGD, the other modes and `backward` + `step` in every mode do:
/// `1 − 0.1 · (1 + 1) = 0.8`.
#[test]
fn backward_step_of_sgd_in_keras_mode_steps_each_occurrence() -> Result<(), Error> {
    let one = ArrayView2::from_shape((1, 1), &[1.0f32][..]).expect("1 x 1");
    let keras = TableUpdates::Keras;
    let sgd = |config: SgdConfig| OptimizerConfig::from(config.with_learning_rate(0.1));
    let cases = [
        (sgd(SgdConfig::new()).with_table_updates(keras), 0.799_999_95f32, true),
        (sgd(SgdConfig::pytorch()).with_table_updates(keras), 0.799_999_95, true),
        (sgd(SgdConfig::new()), 0.8, false),
        (sgd(SgdConfig::new()).with_table_updates(TableUpdates::Dense), 0.8, false),
        (sgd(SgdConfig::pytorch()), 0.8, false),
    ];
    for (config, fused_expected, per_occurrence) in cases {
        let mut optimizer = config.build()?;
        assert_eq!(optimizer.steps_each_occurrence(), per_occurrence, "{config:?}");
        let mut fused = Embedding::from_pretrained(one, false)?;
        fused.backward_step(&[0, 0], &[1.0, 1.0], optimizer.as_mut(), "t")?;
        assert_eq!(fused.weights()[0].to_bits(), fused_expected.to_bits(), "{config:?}");
        let mut apart = Embedding::from_pretrained(one, false)?;
        apart.backward(&[0, 0], &[1.0, 1.0])?;
        apart.step(config.build()?.as_mut(), "t")?;
        assert_eq!(apart.weights()[0].to_bits(), 0.8f32.to_bits(), "{config:?}");
    }
    // With momentum SGD keeps a velocity per element: no step per
    // occurrence, in any mode.
    let momentum = OptimizerConfig::from(SgdConfig::new().with_momentum(0.9));
    assert!(!momentum.with_table_updates(keras).build()?.steps_each_occurrence());
    Ok(())
}

/// `Optimizer::step_occurrences` checks everything before a row moves,
/// on its own path (Keras's SGD) and on the summing one (Adam).
#[test]
fn step_occurrences_refuses_bad_input_and_changes_nothing() -> Result<(), Error> {
    let keras_sgd = OptimizerConfig::from(SgdConfig::new()).with_table_updates(TableUpdates::Keras);
    let configs = [keras_sgd, SgdConfig::new().into(), AdamConfig::new().into()];
    for config in configs {
        let mut optimizer = config.build()?;
        let mut table = vec![1.0f32; 6];
        let err = optimizer.step_occurrences("t", &mut table, &[0, 3], &[1.0; 4], 2);
        assert!(
            matches!(err, Err(Error::IdOutOfRange { id: 3, num_embeddings: 3 })),
            "{config:?}: {err:?}"
        );
        let err = optimizer.step_occurrences("t", &mut table, &[0], &[1.0; 3], 2);
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{config:?}: {err:?}");
        let err = optimizer.step_occurrences("t", &mut table, &[0], &[], 0);
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{config:?}: {err:?}");
        let err = optimizer.step_occurrences("t", &mut table[..5], &[0], &[1.0; 2], 2);
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{config:?}: {err:?}");
        assert_eq!(table, vec![1.0; 6], "{config:?}");
        // And a good batch steps: each rule as its `step_rows` of the sums
        // for Adam, one occurrence at a time for SGD.
        let (ids, upstream) = ([2u32, 0, 2], [0.5f32, -1.0, 2.0, 0.25, 1.5, -0.5]);
        optimizer.step_occurrences("t", &mut table, &ids, &upstream, 2)?;
        let mut expected = vec![1.0f32; 6];
        let mut reference = config.build()?;
        if reference.steps_each_occurrence() {
            for (id, row) in ids.iter().zip(upstream.chunks_exact(2)) {
                let grad = RowGrad::from_rows(std::slice::from_ref(id), row, 2);
                reference.step_rows("t", &mut expected, &grad)?;
            }
        } else {
            reference.step_rows("t", &mut expected, &RowGrad::from_rows(&ids, &upstream, 2))?;
        }
        assert_eq!(bits(&table), bits(&expected), "{config:?}");
        assert_ne!(table, vec![1.0; 6], "{config:?}");
        // The key keeps the table's shape.
        let mut other = vec![1.0f32; 8];
        let err = optimizer.step_occurrences("t", &mut other, &[0], &[1.0; 2], 2);
        assert!(matches!(err, Err(Error::ShapeMismatch { .. })), "{config:?}: {err:?}");
        assert_eq!(other, vec![1.0; 8], "{config:?}");
    }
    Ok(())
}

/// A NaN or infinite upstream value is refused before anything changes:
/// the table, the optimizer's state and its step count.
#[test]
fn backward_step_refuses_a_non_finite_upstream_and_changes_nothing() -> Result<(), Error> {
    use rand::SeedableRng;
    let weights = ndarray::array![[0.5, -0.5], [0.25, 0.75]];
    let mut table = Embedding::from_pretrained(weights.view(), false)?;
    let mut adam = OptimizerConfig::from(AdamConfig::new()).build()?;
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let err = table.backward_step(&[1, 0], &[1.0, 2.0, bad, 4.0], adam.as_mut(), "t");
        match err {
            Err(Error::NonFiniteValue { index: 2, value, .. }) => {
                assert_eq!(value.to_bits(), bad.to_bits())
            }
            other => panic!("expected a non-finite error, got {other:?}"),
        }
        assert_eq!(table.weights(), weights.as_slice().expect("standard layout"));
    }
    let message = table
        .backward_step(&[1], &[f32::NAN, 0.0], adam.as_mut(), "t")
        .expect_err("NaN upstream")
        .to_string();
    assert_eq!(
        message,
        "the embedding gradient is NaN at index 0; it must be finite (nothing was changed)"
    );
    // The state was never made: the first real step is Adam's first step
    // (`w - lr · sign(g)` up to epsilon).
    table.backward_step(&[1], &[1.0, -1.0], adam.as_mut(), "t")?;
    let w = table.weights();
    assert!((w[2] - (0.25 - 0.001)).abs() < 1e-6 && (w[3] - (0.75 + 0.001)).abs() < 1e-6, "{w:?}");
    assert_eq!(adam.iterations(), 0);

    // A NaN at a padding position does not reach the table: no error, as
    // with `backward` and `step`.
    let config = EmbeddingConfig::new(2, 2).with_padding_idx(0);
    let mut padded = Embedding::from_pretrained_with(weights.view(), config)?;
    let mut sgd = OptimizerConfig::from(SgdConfig::new().with_learning_rate(0.5)).build()?;
    padded.backward_step(&[0, 1], &[f32::NAN, 0.0, 1.0, 1.0], sgd.as_mut(), "t")?;
    assert_eq!(padded.weights(), &[0.5, -0.5, -0.25, 0.25]);

    // With LoRA (stepped apart) the upstream is checked all the same.
    let mut lora = Embedding::from_pretrained(weights.view(), false)?;
    lora.enable_lora(1, None, &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3))?;
    let (a, b) = (lora.lora_a().map(<[f32]>::to_vec), lora.lora_b().map(<[f32]>::to_vec));
    let err = lora.backward_step(&[1], &[f32::NAN, 0.0], sgd.as_mut(), "t");
    assert!(matches!(err, Err(Error::NonFiniteValue { index: 0, .. })), "{err:?}");
    assert_eq!((lora.lora_a().map(<[f32]>::to_vec), lora.lora_b().map(<[f32]>::to_vec)), (a, b));

    // A batch large enough for the check to run on other threads while
    // the ids are sorted: the same refusal, wherever the value is.
    let (rows, dim, n) = (1000, 8, 1 << 17);
    let mut big =
        EmbeddingConfig::new(rows, dim).init(&mut rand::rngs::StdRng::seed_from_u64(4))?;
    big.set_threads(Threads::new(3)?);
    let before = big.weights().to_vec();
    let ids: Vec<u32> = (0..n).map(|i| (i * 7 % rows) as u32).collect();
    let mut upstream = vec![0.25f32; n * dim];
    for at in [0, n * dim / 2 + 3, n * dim - 1] {
        upstream[at] = f32::INFINITY;
        let err = big.backward_step(&ids, &upstream, sgd.as_mut(), "big");
        assert!(matches!(err, Err(Error::NonFiniteValue { index, .. }) if index == at), "{err:?}");
        assert_eq!(big.weights(), &before[..]);
        upstream[at] = 0.25;
    }
    big.backward_step(&ids, &upstream, sgd.as_mut(), "big")?;
    assert_ne!(big.weights(), &before[..]);

    // Adam sums the rows first: the sums, on 3 threads, are checked as
    // they are written.
    let before = big.weights().to_vec();
    let mut adam = OptimizerConfig::from(AdamConfig::new()).build()?;
    adam.set_threads(Threads::new(3)?);
    for at in [0, n * dim / 2 + 3, n * dim - 1] {
        upstream[at] = f32::NAN;
        let err = big.backward_step(&ids, &upstream, adam.as_mut(), "big");
        assert!(matches!(err, Err(Error::NonFiniteValue { index, .. }) if index == at), "{err:?}");
        assert_eq!(big.weights(), &before[..]);
        upstream[at] = 0.25;
    }
    assert_eq!(adam.iterations(), 0);
    Ok(())
}

/// Finite rows whose sum overflows are not refused: `backward_step` steps
/// them to the same bits as `backward` and `step`, for a rule that sums
/// first (Adam) and one that sums only the repeated ids in its one pass
/// (SGD). SGD in Keras's table mode steps each occurrence on its own: no
/// sum, no overflow.
#[test]
fn backward_step_steps_an_overflowing_sum_as_backward_then_step() -> Result<(), Error> {
    let weights = ndarray::array![[0.5, -0.5], [0.25, 0.75]];
    let ids = [1, 0, 1];
    let upstream = [3e38, 1.0, 0.5, 0.5, 3e38, -1.0];
    let mut keras = Embedding::from_pretrained(weights.view(), false)?;
    keras.backward_step(
        &ids,
        &upstream,
        OptimizerConfig::from(SgdConfig::new())
            .with_table_updates(TableUpdates::Keras)
            .build()?
            .as_mut(),
        "t",
    )?;
    // Row 1, first column: (0.25 − 0.01 · 3e38) − 0.01 · 3e38.
    assert_eq!(keras.weights()[2], (0.25f32 - 0.01 * 3e38) - 0.01 * 3e38);
    assert!(keras.weights()[2].is_finite());
    for config in [OptimizerConfig::from(AdamConfig::new()), SgdConfig::new().into()] {
        let mut fused = Embedding::from_pretrained(weights.view(), false)?;
        let mut apart = fused.clone();
        let (mut a, mut b) = (config.build()?, config.build()?);
        fused.backward_step(&ids, &upstream, a.as_mut(), "t")?;
        apart.backward(&ids, &upstream)?;
        apart.step(b.as_mut(), "t")?;
        let bits = |e: &Embedding| e.weights().iter().map(|w| w.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused), bits(&apart), "{config:?}");
        assert!(!fused.weights()[2].is_finite(), "{:?}", fused.weights());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Pinned steps from the references.
//
// A table of 5 rows of 2 takes 3 steps. Each batch repeats an id, and the
// gradient of each occurrence is a row of C (the loss is sum(C * lookup)).
// Row 4 is never looked up, row 2 only at step 3.

/// The table before the first step.
const W0: [f32; 10] = [0.5, -0.5, 0.25, 0.75, -0.3, 0.1, 0.9, -0.2, 0.05, 0.4];

/// The batches: ids and one gradient row per occurrence.
fn reference_steps() -> [RowGrad; 3] {
    [
        RowGrad::from_rows(&[1, 3, 1], &[0.5, -0.25, 1.0, 0.5, -0.3, 0.8], 2),
        RowGrad::from_rows(&[3, 3, 0], &[0.2, -0.6, 0.4, 0.1, -1.0, 0.3], 2),
        RowGrad::from_rows(&[1, 2, 1], &[0.7, 0.7, -0.5, 0.25, 0.1, -0.9], 2),
    ]
}

/// The table after each step.
fn run_reference_steps(config: &OptimizerConfig) -> Result<Vec<[f32; 10]>, Error> {
    let mut optimizer = config.build()?;
    let mut table = W0;
    let mut out = Vec::new();
    for grad in reference_steps() {
        optimizer.step_rows("embedding", &mut table, &grad)?;
        optimizer.finish_step();
        out.push(table);
    }
    Ok(out)
}

/// Within 1e-6: the references and embkit agree to an f32 ulp or two (TF
/// and PyTorch order some sums and fuse some products differently).
fn assert_tables_close(name: &str, got: &[[f32; 10]], want: &[[f64; 10]; 3]) {
    for (step, (got, want)) in got.iter().zip(want).enumerate() {
        for (i, (&got, &want)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(got) - want).abs() < 1e-6,
                "{name}, step {}, value {i}: got {got}, want {want}",
                step + 1
            );
        }
    }
}

fn keras_config(name: &str) -> OptimizerConfig {
    let config: OptimizerConfig = match name {
        "sgd" => SgdConfig::new().with_learning_rate(0.1).into(),
        "sgd_momentum" => SgdConfig::new().with_learning_rate(0.1).with_momentum(0.9).into(),
        "sgd_nesterov" => {
            SgdConfig::new().with_learning_rate(0.1).with_momentum(0.9).with_nesterov(true).into()
        }
        "adagrad" => AdagradConfig::new().with_learning_rate(0.1).into(),
        "adam" => AdamConfig::new().with_learning_rate(0.1).into(),
        "adam_amsgrad" => AdamConfig::new().with_learning_rate(0.1).with_amsgrad(true).into(),
        "adamw" => AdamWConfig::new().with_learning_rate(0.1).into(),
        "adamw_wd" => AdamWConfig::new().with_learning_rate(0.1).with_weight_decay(0.1).into(),
        "rmsprop" => RmsPropConfig::new().with_learning_rate(0.1).into(),
        "rmsprop_centered_momentum" => RmsPropConfig::new()
            .with_learning_rate(0.1)
            .with_momentum(0.5)
            .with_centered(true)
            .into(),
        "ftrl" => FtrlConfig::new().with_learning_rate(0.1).into(),
        "ftrl_all" => FtrlConfig::new()
            .with_learning_rate(0.1)
            .with_learning_rate_power(-0.6)
            .with_initial_accumulator_value(0.2)
            .with_l1_regularization_strength(0.01)
            .with_l2_regularization_strength(0.02)
            .with_l2_shrinkage_regularization_strength(0.05)
            .with_beta(0.5)
            .into(),
        other => panic!("no Keras case {other}"),
    };
    config.with_table_updates(TableUpdates::Keras)
}

// The tables after each step, from Keras 3.15 with TensorFlow 2.21 (an
// embedding's gradient is an IndexedSlices with one row per occurrence).
// model.fit with batch_size=1 gives the same numbers to 1e-7. The script:
//
// import os, sys
// os.environ["KERAS_BACKEND"] = "tensorflow"
// import numpy as np, tensorflow as tf, keras
//
// W0 = np.array([[0.5, -0.5], [0.25, 0.75], [-0.3, 0.1], [0.9, -0.2], [0.05, 0.4]], "float32")
// STEPS = [
//     ([1, 3, 1], [[0.5, -0.25], [1.0, 0.5], [-0.3, 0.8]]),
//     ([3, 3, 0], [[0.2, -0.6], [0.4, 0.1], [-1.0, 0.3]]),
//     ([1, 2, 1], [[0.7, 0.7], [-0.5, 0.25], [0.1, -0.9]]),
// ]
// O = keras.optimizers
// CASES = {
//     "sgd": lambda: O.SGD(0.1),
//     "sgd_momentum": lambda: O.SGD(0.1, momentum=0.9),
//     "sgd_nesterov": lambda: O.SGD(0.1, momentum=0.9, nesterov=True),
//     "adagrad": lambda: O.Adagrad(0.1),
//     "adam": lambda: O.Adam(0.1),
//     "adam_amsgrad": lambda: O.Adam(0.1, amsgrad=True),
//     "adamw": lambda: O.AdamW(0.1),
//     "adamw_wd": lambda: O.AdamW(0.1, weight_decay=0.1),
//     "rmsprop": lambda: O.RMSprop(0.1),
//     "rmsprop_centered_momentum": lambda: O.RMSprop(0.1, momentum=0.5, centered=True),
//     "ftrl": lambda: O.Ftrl(0.1),
//     "ftrl_all": lambda: O.Ftrl(0.1, learning_rate_power=-0.6, initial_accumulator_value=0.2,
//         l1_regularization_strength=0.01, l2_regularization_strength=0.02,
//         l2_shrinkage_regularization_strength=0.05, beta=0.5),
// }
// for name, make in CASES.items():
//     emb = keras.layers.Embedding(5, 2, embeddings_initializer=keras.initializers.Constant(W0))
//     emb.build((None,))
//     opt = make()
//     print(name)
//     for ids, c in STEPS:
//         with tf.GradientTape() as tape:
//             loss = tf.reduce_sum(tf.constant(c) * emb(tf.constant(ids)))
//         grads = tape.gradient(loss, emb.trainable_variables)
//         assert isinstance(grads[0], tf.IndexedSlices)
//         opt.apply(grads, emb.trainable_variables)
//         print(", ".join(f"{x:.9f}" for x in emb.embeddings.numpy().ravel()))

#[rustfmt::skip]
const KERAS: &[(&str, [[f64; 10]; 3])] = &[
    (
        "sgd",
        [
            [0.500000000, -0.500000000, 0.230000004, 0.694999993, -0.300000012, 0.100000001, 0.799999952, -0.250000000, 0.050000001, 0.400000006],
            [0.600000024, -0.529999971, 0.230000004, 0.694999993, -0.300000012, 0.100000001, 0.739999950, -0.200000003, 0.050000001, 0.400000006],
            [0.600000024, -0.529999971, 0.149999991, 0.714999974, -0.250000000, 0.075000003, 0.739999950, -0.200000003, 0.050000001, 0.400000006],
        ],
    ),
    (
        "sgd_momentum",
        [
            [0.500000000, -0.500000000, 0.230000004, 0.694999993, -0.300000012, 0.100000001, 0.799999952, -0.250000000, 0.050000001, 0.400000006],
            [0.600000024, -0.529999971, 0.212000012, 0.645500004, -0.300000012, 0.100000001, 0.649999976, -0.245000005, 0.050000001, 0.400000006],
            [0.689999998, -0.556999981, 0.115800016, 0.620949984, -0.250000000, 0.075000003, 0.514999986, -0.240500003, 0.050000001, 0.400000006],
        ],
    ),
    (
        "sgd_nesterov",
        [
            [0.500000000, -0.500000000, 0.211999997, 0.645500004, -0.300000012, 0.100000001, 0.709999979, -0.295000017, 0.050000001, 0.400000006],
            [0.689999998, -0.556999981, 0.195800006, 0.600950003, -0.300000012, 0.100000001, 0.514999986, -0.240500018, 0.050000001, 0.400000006],
            [0.770999968, -0.581299961, 0.029220015, 0.598855019, -0.205000013, 0.052500002, 0.393499970, -0.236450016, 0.050000001, 0.400000006],
        ],
    ),
    (
        "adagrad",
        [
            [0.500000000, -0.500000000, 0.219848871, 0.688603938, -0.300000012, 0.100000001, 0.804653704, -0.284515411, 0.050000001, 0.400000006],
            [0.595346272, -0.568824708, 0.219848871, 0.688603938, -0.300000012, 0.100000001, 0.752030194, -0.225589857, 0.050000001, 0.400000006],
            [0.595346272, -0.568824708, 0.137335166, 0.702396989, -0.215484589, 0.037982650, 0.752030194, -0.225589857, 0.050000001, 0.400000006],
        ],
    ),
    (
        "adam",
        [
            [0.500000000, -0.500000000, 0.215700701, 0.684380174, -0.300000012, 0.100000001, 0.800000966, -0.299998701, 0.050000001, 0.400000006],
            [0.574412704, -0.574412167, 0.192718253, 0.640411198, -0.300000012, 0.100000001, 0.698064685, -0.295272529, 0.050000001, 0.400000006],
            [0.631934285, -0.631933331, 0.125639915, 0.629324853, -0.236119300, 0.036119677, 0.619267106, -0.291619182, 0.050000001, 0.400000006],
        ],
    ),
    (
        "adam_amsgrad",
        [
            [0.500000000, -0.500000000, 0.215700701, 0.684380174, -0.300000012, 0.100000001, 0.800000966, -0.299998701, 0.050000001, 0.400000006],
            [0.574412704, -0.574412167, 0.192729741, 0.640433192, -0.300000012, 0.100000001, 0.698064685, -0.295272529, 0.050000001, 0.400000006],
            [0.631905556, -0.631904602, 0.125651404, 0.629346848, -0.236119300, 0.036119677, 0.619306564, -0.291621000, 0.050000001, 0.400000006],
        ],
    ),
    (
        "adamw",
        [
            [0.499799997, -0.499799997, 0.215600699, 0.684080184, -0.299879998, 0.099959999, 0.799640954, -0.299918681, 0.049980000, 0.399839997],
            [0.574012756, -0.574012220, 0.192532018, 0.639837563, -0.299760044, 0.099920012, 0.697384834, -0.295072556, 0.049960006, 0.399680048],
            [0.631304741, -0.631303787, 0.125376672, 0.628495276, -0.235759437, 0.035999723, 0.618308306, -0.291301191, 0.049940024, 0.399520189],
        ],
    ),
    (
        "adamw_wd",
        [
            [0.495000005, -0.495000005, 0.213200703, 0.676880181, -0.297000021, 0.098999999, 0.791000962, -0.297998697, 0.049500000, 0.395999998],
            [0.564462721, -0.564462185, 0.188086241, 0.626142383, -0.294030011, 0.098009996, 0.681154668, -0.290292531, 0.049004998, 0.392039984],
            [0.616339684, -0.616338730, 0.119127035, 0.608794630, -0.227209002, 0.033149570, 0.595545530, -0.283736259, 0.048514947, 0.388119578],
        ],
    ),
    (
        "rmsprop",
        [
            [0.500000000, -0.500000000, 0.141534939, 0.542489886, -0.300000012, 0.100000001, 0.583772361, -0.516227126, 0.050000001, 0.400000006],
            [0.816227615, -0.816226006, 0.141534939, 0.542489886, -0.300000012, 0.100000001, 0.402865618, -0.311247289, 0.050000001, 0.400000006],
            [0.816227615, -0.816226006, -0.145759255, 0.588751674, 0.016227126, -0.216225237, 0.402865618, -0.311247289, 0.050000001, 0.400000006],
        ],
    ),
    (
        "rmsprop_centered_momentum",
        [
            [0.500000000, -0.500000000, 0.140891209, 0.537872493, -0.300000012, 0.100000001, 0.566666842, -0.533332586, 0.050000001, 0.400000006],
            [0.833333135, -0.833331287, 0.086336814, 0.431808740, -0.300000012, 0.100000001, 0.197163343, -0.494975954, 0.050000001, 0.400000006],
            [0.999999702, -0.999996901, -0.247084051, 0.425113410, 0.033332586, -0.233330399, 0.012411594, -0.475797653, 0.050000001, 0.400000006],
        ],
    ),
    (
        "ftrl",
        [
            [0.000000000, 0.000000000, 0.100666046, 0.423852295, 0.000000000, 0.000000000, 0.533293486, -0.177610934, 0.000000000, 0.000000000],
            [0.095346265, -0.068824723, 0.100666046, 0.423852295, 0.000000000, 0.000000000, 0.480669975, -0.118685380, 0.000000000, 0.000000000],
            [0.095346265, -0.068824723, 0.018152339, 0.437645406, 0.084515423, -0.062017374, 0.480669975, -0.118685380, 0.000000000, 0.000000000],
        ],
    ),
    (
        "ftrl_all",
        [
            [-0.004521150, 0.004521150, 0.045233216, 0.246610075, 0.002260575, -0.000000000, 0.340443760, -0.084321380, 0.000000000, -0.003390863],
            [0.056015510, -0.024101797, 0.044854671, 0.244902596, 0.002235024, -0.000000000, 0.303745061, -0.047789395, 0.000000000, -0.003352536],
            [0.055669650, -0.023855815, -0.006492340, 0.253220528, 0.046725344, -0.026254825, 0.301986992, -0.047446016, 0.000000000, -0.003314643],
        ],
    ),
];
#[test]
fn keras_table_updates_match_tensorflow() -> Result<(), Error> {
    for (name, want) in KERAS {
        let got = run_reference_steps(&keras_config(name))?;
        assert_tables_close(name, &got, want);
    }
    Ok(())
}

/// `backward_step` with SGD in the Keras mode reproduces Keras's SGD run
/// above to the printed digits (9 decimals, finer than an f32 ulp here),
/// stepping each occurrence on its own as Keras's `scatter_sub` does.
/// Summing first differs at step 3, value 2: 0.23 − 0.1 · (0.7 + 0.1)
/// = 0.150000006 in f32, Keras 0.149999991.
#[test]
fn backward_step_of_sgd_in_keras_mode_matches_keras_exactly() -> Result<(), Error> {
    let batches: [(&[u32], &[f32]); 3] = [
        (&[1, 3, 1], &[0.5, -0.25, 1.0, 0.5, -0.3, 0.8]),
        (&[3, 3, 0], &[0.2, -0.6, 0.4, 0.1, -1.0, 0.3]),
        (&[1, 2, 1], &[0.7, 0.7, -0.5, 0.25, 0.1, -0.9]),
    ];
    let want = &KERAS.iter().find(|(name, _)| *name == "sgd").expect("Keras's SGD run").1;
    let config = keras_config("sgd").with_table_updates(TableUpdates::Keras);
    let mut optimizer = config.build()?;
    let weights = ArrayView2::from_shape((5, 2), &W0[..]).expect("5 x 2");
    let mut table = Embedding::from_pretrained(weights, false)?;
    for (step, ((ids, upstream), want)) in batches.into_iter().zip(want).enumerate() {
        table.backward_step(ids, upstream, optimizer.as_mut(), "embedding")?;
        optimizer.finish_step();
        for (i, (&got, &want)) in table.weights().iter().zip(want).enumerate() {
            assert!(
                (f64::from(got) - want).abs() < 1e-9,
                "step {}, value {i}: {got} against {want}",
                step + 1
            );
        }
    }
    // Summed first (`step_rows`), step 3's value 2 is one ulp off.
    let summed = run_reference_steps(&config)?;
    assert_eq!(summed[2][2], summed[1][2] - 0.1 * (0.7 + 0.1));
    assert!((f64::from(summed[2][2]) - want[2][2]).abs() > 1e-8);
    Ok(())
}

// What the Keras mode changes, in the numbers above: Adam moves row 1 at
// step 2 although the batch has ids 3 and 0 only; lazy Adam leaves it at
// its step-1 value. Adagrad's row 1 at step 1 (g₁ = (0.5, -0.25),
// g₂ = (-0.3, 0.8), sum (0.2, 0.55)) accumulates 0.1 + 0.5² + 0.3² = 0.44
// in Keras and 0.1 + 0.2² = 0.14 lazily:
//   Keras: 0.25 - 0.1 * 0.2 / sqrt(0.44 + 1e-7) = 0.2198489
//   lazy:  0.25 - 0.1 * 0.2 / sqrt(0.14 + 1e-7) = 0.1965477
#[test]
fn keras_and_lazy_tables_differ_as_tensorflow_shows() -> Result<(), Error> {
    let lazy = |name: &str| keras_config(name).with_table_updates(TableUpdates::Lazy);
    let keras_adam = run_reference_steps(&keras_config("adam"))?;
    let lazy_adam = run_reference_steps(&lazy("adam"))?;
    assert!((keras_adam[1][2] - 0.192_718_25).abs() < 1e-6);
    assert_eq!(lazy_adam[1][2..4], lazy_adam[0][2..4]);
    // Lazily, step 1 sees the summed row (0.2, 0.55): v = 0.001 * 0.2², and
    // the first Adam step is lr * m / sqrt(v) = 0.1, so w = 0.25 - 0.1
    // (Keras: 0.2157007, with v = 0.001 * (0.5² + 0.3²)).
    assert!((lazy_adam[0][2] - 0.15).abs() < 1e-5, "{}", lazy_adam[0][2]);
    // Row 4 is never looked up: neither mode moves it (its moments are 0).
    assert_eq!(keras_adam[2][8..], W0[8..]);

    let keras_adagrad = run_reference_steps(&keras_config("adagrad"))?;
    let lazy_adagrad = run_reference_steps(&lazy("adagrad"))?;
    assert!((keras_adagrad[0][2] - 0.219_848_87).abs() < 1e-6);
    assert!((lazy_adagrad[0][2] - 0.196_547_7).abs() < 1e-6);

    // Keras's FTRL sets every row from its state: row 4 becomes 0 at step 1.
    let keras_ftrl = run_reference_steps(&keras_config("ftrl"))?;
    let lazy_ftrl = run_reference_steps(&lazy("ftrl"))?;
    assert_eq!(keras_ftrl[0][8..], [0.0, 0.0]);
    assert_eq!(lazy_ftrl[2][8..], W0[8..]);
    Ok(())
}

fn pytorch_config(name: &str) -> OptimizerConfig {
    let dense = TableUpdates::Dense;
    match name {
        "sparse_sgd" => SgdConfig::pytorch().with_learning_rate(0.1).into(),
        // PyTorch's momentum buffer keeps every row it has seen, even for a
        // sparse gradient: the dense mode.
        "sparse_sgd_momentum" | "dense_sgd_momentum" => SgdConfig::pytorch()
            .with_learning_rate(0.1)
            .with_momentum(0.9)
            .with_table_updates(dense)
            .into(),
        "sparse_adagrad" => AdagradConfig::pytorch().with_learning_rate(0.1).into(),
        "sparse_adagrad_lr_decay" => AdagradConfig::pytorch()
            .with_learning_rate(0.1)
            .with_lr_decay(0.5)
            .with_initial_accumulator_value(0.1)
            .into(),
        "sparse_adam" => AdamConfig::pytorch_sparse().with_learning_rate(0.1).into(),
        "dense_sgd_nesterov" => SgdConfig::pytorch()
            .with_learning_rate(0.1)
            .with_momentum(0.9)
            .with_nesterov(true)
            .with_table_updates(dense)
            .into(),
        "dense_adagrad" => {
            AdagradConfig::pytorch().with_learning_rate(0.1).with_table_updates(dense).into()
        }
        "dense_adam" => {
            AdamConfig::pytorch().with_learning_rate(0.1).with_table_updates(dense).into()
        }
        "dense_adam_amsgrad" => AdamConfig::pytorch()
            .with_learning_rate(0.1)
            .with_amsgrad(true)
            .with_table_updates(dense)
            .into(),
        "dense_adamw" => {
            AdamWConfig::pytorch().with_learning_rate(0.1).with_table_updates(dense).into()
        }
        "dense_adamw_wd" => AdamWConfig::pytorch()
            .with_learning_rate(0.1)
            .with_weight_decay(0.1)
            .with_table_updates(dense)
            .into(),
        "dense_rmsprop" => {
            RmsPropConfig::pytorch().with_learning_rate(0.1).with_table_updates(dense).into()
        }
        "dense_rmsprop_centered_momentum" => RmsPropConfig::pytorch()
            .with_learning_rate(0.1)
            .with_momentum(0.5)
            .with_centered(true)
            .with_table_updates(dense)
            .into(),
        other => panic!("no PyTorch case {other}"),
    }
}

// The tables after each step, from PyTorch 2.15 on CPU: `sparse_*` with
// nn.Embedding(sparse=True) (lazy, except SGD's momentum), `dense_*` with
// sparse=False. The script:
//
// import torch
// from torch import nn, optim
//
// W0 = [[0.5, -0.5], [0.25, 0.75], [-0.3, 0.1], [0.9, -0.2], [0.05, 0.4]]
// STEPS = [
//     ([1, 3, 1], [[0.5, -0.25], [1.0, 0.5], [-0.3, 0.8]]),
//     ([3, 3, 0], [[0.2, -0.6], [0.4, 0.1], [-1.0, 0.3]]),
//     ([1, 2, 1], [[0.7, 0.7], [-0.5, 0.25], [0.1, -0.9]]),
// ]
// CASES = {
//     "sparse_sgd": (True, lambda p: optim.SGD(p, lr=0.1)),
//     "sparse_sgd_momentum": (True, lambda p: optim.SGD(p, lr=0.1, momentum=0.9)),
//     "sparse_adagrad": (True, lambda p: optim.Adagrad(p, lr=0.1)),
//     "sparse_adagrad_lr_decay": (True, lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.5,
//                                                              initial_accumulator_value=0.1)),
//     "sparse_adam": (True, lambda p: optim.SparseAdam(p, lr=0.1)),
//     "dense_sgd_momentum": (False, lambda p: optim.SGD(p, lr=0.1, momentum=0.9)),
//     "dense_sgd_nesterov": (False, lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
//     "dense_adagrad": (False, lambda p: optim.Adagrad(p, lr=0.1)),
//     "dense_adam": (False, lambda p: optim.Adam(p, lr=0.1)),
//     "dense_adam_amsgrad": (False, lambda p: optim.Adam(p, lr=0.1, amsgrad=True)),
//     "dense_adamw": (False, lambda p: optim.AdamW(p, lr=0.1)),
//     "dense_adamw_wd": (False, lambda p: optim.AdamW(p, lr=0.1, weight_decay=0.1)),
//     "dense_rmsprop": (False, lambda p: optim.RMSprop(p, lr=0.1)),
//     "dense_rmsprop_centered_momentum": (False, lambda p: optim.RMSprop(p, lr=0.1, momentum=0.5,
//                                                                        centered=True)),
// }
// for name, (sparse, make) in CASES.items():
//     emb = nn.Embedding(5, 2, sparse=sparse)
//     with torch.no_grad():
//         emb.weight.copy_(torch.tensor(W0))
//     opt = make(emb.parameters())
//     print(name)
//     for ids, c in STEPS:
//         opt.zero_grad()
//         (torch.tensor(c) * emb(torch.tensor(ids))).sum().backward()
//         opt.step()
//         print(", ".join(f"{x:.9f}" for x in emb.weight.detach().numpy().ravel()))

#[rustfmt::skip]
const PYTORCH: &[(&str, [[f64; 10]; 3])] = &[
    (
        "sparse_sgd",
        [
            [0.500000000, -0.500000000, 0.230000004, 0.694999993, -0.300000012, 0.100000001, 0.799999952, -0.250000000, 0.050000001, 0.400000006],
            [0.600000024, -0.530000031, 0.230000004, 0.694999993, -0.300000012, 0.100000001, 0.739999950, -0.200000003, 0.050000001, 0.400000006],
            [0.600000024, -0.530000031, 0.150000006, 0.714999974, -0.250000000, 0.075000003, 0.739999950, -0.200000003, 0.050000001, 0.400000006],
        ],
    ),
    (
        "sparse_sgd_momentum",
        [
            [0.500000000, -0.500000000, 0.230000004, 0.694999993, -0.300000012, 0.100000001, 0.799999952, -0.250000000, 0.050000001, 0.400000006],
            [0.600000024, -0.530000031, 0.211999997, 0.645499945, -0.300000012, 0.100000001, 0.649999917, -0.245000005, 0.050000001, 0.400000006],
            [0.689999998, -0.557000041, 0.115800001, 0.620949864, -0.250000000, 0.075000003, 0.514999926, -0.240500003, 0.050000001, 0.400000006],
        ],
    ),
    (
        "sparse_adagrad",
        [
            [0.500000000, -0.500000000, 0.150000006, 0.649999976, -0.300000012, 0.100000001, 0.799999952, -0.300000012, 0.050000001, 0.400000006],
            [0.600000024, -0.600000024, 0.150000006, 0.649999976, -0.300000012, 0.100000001, 0.748550355, -0.229289338, 0.050000001, 0.400000006],
            [0.600000024, -0.600000024, 0.052985758, 0.684174299, -0.200000018, 0.000000000, 0.748550355, -0.229289338, 0.050000001, 0.400000006],
        ],
    ),
    (
        "sparse_adagrad_lr_decay",
        [
            [0.500000000, -0.500000000, 0.196547747, 0.663307846, -0.300000012, 0.100000001, 0.804653704, -0.284515440, 0.050000001, 0.400000006],
            [0.563564181, -0.545883179, 0.196547747, 0.663307846, -0.300000012, 0.100000001, 0.771549463, -0.241482288, 0.050000001, 0.400000006],
            [0.563564181, -0.545883179, 0.151256666, 0.678340793, -0.257742286, 0.068991318, 0.771549463, -0.241482288, 0.050000001, 0.400000006],
        ],
    ),
    (
        "sparse_adam",
        [
            [0.500000000, -0.500000000, 0.150000155, 0.650000036, -0.300000012, 0.100000001, 0.800000012, -0.299999923, 0.050000001, 0.400000006],
            [0.574413657, -0.574413598, 0.150000155, 0.650000036, -0.300000012, 0.100000001, 0.704251051, -0.294736773, 0.050000001, 0.400000006],
            [0.574413657, -0.574413598, 0.074079767, 0.617785096, -0.236118704, 0.036118731, 0.704251051, -0.294736773, 0.050000001, 0.400000006],
        ],
    ),
    (
        "dense_sgd_momentum",
        [
            [0.500000000, -0.500000000, 0.230000004, 0.694999993, -0.300000012, 0.100000001, 0.799999952, -0.250000000, 0.050000001, 0.400000006],
            [0.600000024, -0.530000031, 0.212000012, 0.645500004, -0.300000012, 0.100000001, 0.649999976, -0.245000005, 0.050000001, 0.400000006],
            [0.689999998, -0.557000041, 0.115800008, 0.620949984, -0.250000000, 0.075000003, 0.514999986, -0.240500003, 0.050000001, 0.400000006],
        ],
    ),
    (
        "dense_sgd_nesterov",
        [
            [0.500000000, -0.500000000, 0.211999997, 0.645500004, -0.300000012, 0.100000001, 0.709999979, -0.295000017, 0.050000001, 0.400000006],
            [0.689999998, -0.556999981, 0.195800006, 0.600950003, -0.300000012, 0.100000001, 0.514999986, -0.240500018, 0.050000001, 0.400000006],
            [0.770999968, -0.581299961, 0.029220005, 0.598855019, -0.205000013, 0.052500002, 0.393500000, -0.236450016, 0.050000001, 0.400000006],
        ],
    ),
    (
        "dense_adagrad",
        [
            [0.500000000, -0.500000000, 0.150000006, 0.649999976, -0.300000012, 0.100000001, 0.799999952, -0.300000012, 0.050000001, 0.400000006],
            [0.600000024, -0.600000024, 0.150000006, 0.649999976, -0.300000012, 0.100000001, 0.748550355, -0.229289323, 0.050000001, 0.400000006],
            [0.600000024, -0.600000024, 0.052985750, 0.684174299, -0.200000018, 0.000000000, 0.748550355, -0.229289323, 0.050000001, 0.400000006],
        ],
    ),
    (
        "dense_adam",
        [
            [0.500000000, -0.500000000, 0.150000006, 0.649999976, -0.300000012, 0.100000001, 0.800000012, -0.299999982, 0.050000001, 0.400000006],
            [0.574413657, -0.574413657, 0.082994185, 0.582994163, -0.300000012, 0.100000001, 0.704250991, -0.294736832, 0.050000001, 0.400000006],
            [0.631935656, -0.631935656, 0.008466035, 0.556172907, -0.236118659, 0.036118656, 0.630236745, -0.290668398, 0.050000001, 0.400000006],
        ],
    ),
    (
        "dense_adam_amsgrad",
        [
            [0.500000000, -0.500000000, 0.150000006, 0.649999976, -0.300000012, 0.100000001, 0.800000012, -0.299999982, 0.050000001, 0.400000006],
            [0.574413657, -0.574413657, 0.083027691, 0.583027661, -0.300000012, 0.100000001, 0.704250991, -0.294736832, 0.050000001, 0.400000006],
            [0.631906867, -0.631906867, 0.008499540, 0.556206405, -0.236118659, 0.036118656, 0.630273759, -0.290670425, 0.050000001, 0.400000006],
        ],
    ),
    (
        "dense_adamw",
        [
            [0.499500006, -0.499500006, 0.149750009, 0.649249971, -0.299700022, 0.099900000, 0.799100041, -0.299799979, 0.049950000, 0.399599999],
            [0.573414207, -0.573414207, 0.082594447, 0.581594944, -0.299400330, 0.099800102, 0.702551901, -0.294237047, 0.049900051, 0.399200410],
            [0.630362809, -0.630362809, 0.007983707, 0.554192126, -0.235219583, 0.035818957, 0.627835095, -0.289874375, 0.049850151, 0.398801208],
        ],
    ),
    (
        "dense_adamw_wd",
        [
            [0.495000005, -0.495000005, 0.147500008, 0.642499983, -0.297000021, 0.098999999, 0.791000009, -0.297999978, 0.049500000, 0.395999998],
            [0.564463675, -0.564463675, 0.079019196, 0.569069147, -0.294030011, 0.098010004, 0.687340975, -0.289756835, 0.049005002, 0.392040014],
            [0.616341054, -0.616341054, 0.003700852, 0.536557198, -0.227208361, 0.033148557, 0.606453300, -0.282790840, 0.048514951, 0.388119608],
        ],
    ),
    (
        "dense_rmsprop",
        [
            [0.500000000, -0.500000000, -0.749999523, -0.249999881, -0.300000012, 0.100000001, -0.099999964, -1.199999809, 0.050000001, 0.400000006],
            [1.500000000, -1.499999762, -0.749999523, -0.249999881, -0.300000012, 0.100000001, -0.616397738, -0.491118670, 0.050000001, 0.400000006],
            [1.500000000, -1.499999762, -1.720710278, 0.094786495, 0.699999750, -0.899999619, -0.616397738, -0.491118670, 0.050000001, 0.400000006],
        ],
    ),
    (
        "dense_rmsprop_centered_momentum",
        [
            [0.500000000, -0.500000000, -0.755037308, -0.255037606, -0.300000012, 0.100000001, -0.105037823, -1.205037594, 0.050000001, 0.400000006],
            [1.505037785, -1.505037546, -1.257555962, -0.757556438, -0.300000012, 0.100000001, -1.128858685, -0.998675108, 0.050000001, 0.400000006],
            [2.007556677, -2.007556200, -2.486693859, -0.663438976, 0.705037594, -0.905037522, -1.640769124, -0.895493865, 0.050000001, 0.400000006],
        ],
    ),
];
#[test]
fn pytorch_flavours_match_pytorch() -> Result<(), Error> {
    for (name, want) in PYTORCH {
        let got = run_reference_steps(&pytorch_config(name))?;
        assert_tables_close(name, &got, want);
    }
    Ok(())
}

// Clipping, from Keras 3.15 with TensorFlow 2.21: the Embedding of the
// steps above and a bias of 2, loss = sum(C * lookup([1, 3, 1])) +
// sum([1, -2] * bias), SGD(1.0, **clipping), so a step subtracts the
// clipped gradient. The script (W0 as above):
//
// IDS, C, D = [1, 3, 1], [[0.5, -0.25], [1.0, 0.5], [-0.3, 0.8]], [1.0, -2.0]
// for kwargs in [dict(clipnorm=1.0), dict(global_clipnorm=1.0), dict(clipvalue=0.6)]:
//     emb = keras.layers.Embedding(5, 2, embeddings_initializer=keras.initializers.Constant(W0))
//     emb.build((None,))
//     bias = keras.Variable(np.zeros(2, "float32"))
//     variables = [emb.embeddings, bias]
//     with tf.GradientTape() as tape:
//         loss = (tf.reduce_sum(tf.constant(C) * emb(tf.constant(IDS)))
//                 + tf.reduce_sum(tf.constant(D) * bias))
//     keras.optimizers.SGD(1.0, **kwargs).apply(tape.gradient(loss, variables), variables)
//     print(kwargs, W0.ravel() - emb.embeddings.numpy().ravel(), -bias.numpy())
//
// clipnorm=1.0:        rows 1, 3: 0.132091612, 0.363252044, 0.660458148, 0.330229104;
//                      bias 0.447213590, -0.894427180
// global_clipnorm=1.0: rows 1, 3: 0.074061379, 0.203668833, 0.370306909, 0.185153469;
//                      bias 0.370306909, -0.740613818
// clipvalue=0.6:       rows 1, 3: 0.199999988, 0.350000024, 0.600000024, 0.500000000;
//                      bias 0.600000024, -0.600000024
//
// Keras measures the table's norm over the occurrences (RowNorm::Occurrences):
// sqrt(0.5² + 0.25² + 1² + 0.5² + 0.3² + 0.8²) = 1.5141004, where the summed
// rows (0.2, 0.55), (1, 0.5) have norm 1.2619429.
fn clipping_case() -> (RowGrad, [f32; 2]) {
    (RowGrad::from_rows(&[1, 3, 1], &[0.5, -0.25, 1.0, 0.5, -0.3, 0.8], 2), [1.0, -2.0])
}

fn assert_all_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (&got, &want) in got.iter().zip(want) {
        assert!((f64::from(got) - want).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn clipnorm_matches_keras_with_the_occurrence_norm() -> Result<(), Error> {
    let (mut rows, mut bias) = clipping_case();
    GradientClipping::new()
        .with_clipnorm(1.0)
        .with_row_norm(RowNorm::Occurrences)
        .apply(&mut [GradMut::Rows(&mut rows), GradMut::Dense(&mut bias)])?;
    assert_all_close(rows.rows(), &[0.132_091_612, 0.363_252_044, 0.660_458_148, 0.330_229_104]);
    assert_all_close(&bias, &[0.447_213_590, -0.894_427_180]);
    Ok(())
}

#[test]
fn global_clipnorm_matches_keras_with_the_occurrence_norm() -> Result<(), Error> {
    let (mut rows, mut bias) = clipping_case();
    GradientClipping::new()
        .with_global_clipnorm(1.0)
        .with_row_norm(RowNorm::Occurrences)
        .apply(&mut [GradMut::Rows(&mut rows), GradMut::Dense(&mut bias)])?;
    assert_all_close(rows.rows(), &[0.074_061_379, 0.203_668_833, 0.370_306_909, 0.185_153_469]);
    assert_all_close(&bias, &[0.370_306_909, -0.740_613_818]);
    Ok(())
}

// Keras clamps each occurrence before summing: row 1's occurrences
// (0.5, -0.25) and (-0.3, 0.8 → 0.6) sum to (0.2, 0.35). A RowGrad only has
// the sum (0.2, 0.55), which is within the limit and stays. Ids seen once
// and dense gradients agree with Keras.
#[test]
fn clipvalue_matches_keras_for_ids_seen_once() -> Result<(), Error> {
    let (mut rows, mut bias) = clipping_case();
    GradientClipping::new()
        .with_clipvalue(0.6)
        .apply(&mut [GradMut::Rows(&mut rows), GradMut::Dense(&mut bias)])?;
    assert_all_close(&rows.rows()[2..], &[0.600_000_024, 0.5]);
    assert_all_close(&bias, &[0.600_000_024, -0.600_000_024]);
    assert_all_close(&rows.rows()[..2], &[0.2, 0.55]); // Keras: 0.2, 0.35
    Ok(())
}

// PyTorch's clip_grad_norm_(emb.parameters(), 1.0) on the sparse gradient
// of the same lookup measures the summed rows, 1.2619 (RowNorm::Summed),
// and scales by 1 / (1.2619 + 1e-6): 0.15848564, 0.43583554, 0.79242826,
// 0.39621413. Keras's formula without the 1e-6 is within 1e-6 of that.
#[test]
fn clipnorm_with_the_summed_norm_matches_pytorch() -> Result<(), Error> {
    let (mut rows, _) = clipping_case();
    GradientClipping::new().with_clipnorm(1.0).apply(&mut [GradMut::Rows(&mut rows)])?;
    assert_all_close(rows.rows(), &[0.158_485_64, 0.435_835_54, 0.792_428_26, 0.396_214_13]);
    Ok(())
}

// ---------------------------------------------------------------------------
// Configs.

fn non_default_configs() -> Vec<OptimizerConfig> {
    vec![
        SgdConfig::new().with_learning_rate(0.1).with_momentum(0.9).with_nesterov(true).into(),
        SgdConfig::pytorch().with_momentum(0.5).with_table_updates(TableUpdates::Dense).into(),
        AdagradConfig::new()
            .with_learning_rate(0.05)
            .with_initial_accumulator_value(0.0)
            .with_epsilon(1e-10)
            .into(),
        AdagradConfig::pytorch().with_lr_decay(0.1).with_table_updates(TableUpdates::Keras).into(),
        AdamConfig::new()
            .with_learning_rate(0.01)
            .with_beta_1(0.8)
            .with_beta_2(0.99)
            .with_epsilon(1e-8)
            .with_amsgrad(true)
            .into(),
        AdamConfig::pytorch().with_table_updates(TableUpdates::Dense).into(),
        AdamConfig::pytorch_sparse().into(),
        RmsPropConfig::new()
            .with_learning_rate(0.01)
            .with_rho(0.99)
            .with_momentum(0.5)
            .with_epsilon(1e-8)
            .with_centered(true)
            .into(),
        RmsPropConfig::pytorch().with_table_updates(TableUpdates::Keras).into(),
        AdamWConfig::new().with_weight_decay(0.1).with_amsgrad(true).into(),
        AdamWConfig::pytorch().with_flavour(AdamFlavour::PyTorchSparse).into(),
        FtrlConfig::new()
            .with_learning_rate(0.05)
            .with_learning_rate_power(-0.6)
            .with_initial_accumulator_value(0.2)
            .with_l1_regularization_strength(0.01)
            .with_l2_regularization_strength(0.02)
            .with_l2_shrinkage_regularization_strength(0.03)
            .with_beta(0.5)
            .with_table_updates(TableUpdates::Keras)
            .into(),
        RowWiseAdagradConfig::new()
            .with_learning_rate(0.05)
            .with_epsilon(1e-6)
            .with_initial_accumulator_value(0.1)
            .into(),
    ]
}

#[test]
fn config_round_trips_through_json_and_build() -> Result<(), Box<dyn std::error::Error>> {
    for config in non_default_configs() {
        let json = serde_json::to_string(&config)?;
        let back: OptimizerConfig = serde_json::from_str(&json)?;
        assert_eq!(back, config, "{json}");
        assert_eq!(back.build()?.config(), config);
    }
    Ok(())
}

#[test]
fn json_config_is_tagged_with_the_keras_name() -> Result<(), Box<dyn std::error::Error>> {
    let mut names = Vec::new();
    for config in non_default_configs() {
        let json: serde_json::Value = serde_json::to_value(&config)?;
        assert_eq!(json["optimizer"], config.name());
        names.push(config.name());
    }
    names.dedup();
    assert_eq!(names, ["sgd", "adagrad", "adam", "rmsprop", "adamw", "ftrl", "rowwise_adagrad"]);
    Ok(())
}

#[test]
fn json_config_names_flavours_and_table_updates() -> Result<(), Box<dyn std::error::Error>> {
    let config =
        OptimizerConfig::from(AdamConfig::pytorch_sparse()).with_table_updates(TableUpdates::Keras);
    let json = serde_json::to_value(&config)?;
    assert_eq!(
        (&json["flavour"], &json["table_updates"]),
        (&"pytorch_sparse".into(), &"keras".into())
    );
    let json = serde_json::to_value(OptimizerConfig::from(RmsPropConfig::pytorch()))?;
    assert_eq!((&json["flavour"], &json["table_updates"]), (&"pytorch".into(), &"lazy".into()));
    let config: OptimizerConfig = serde_json::from_str(
        r#"{"optimizer": "sgd", "flavour": "pytorch", "table_updates": "dense"}"#,
    )?;
    assert_eq!(
        config,
        SgdConfig::new()
            .with_flavour(Flavour::PyTorch)
            .with_table_updates(TableUpdates::Dense)
            .into()
    );
    Ok(())
}

#[test]
fn json_config_fills_missing_fields_with_defaults() -> Result<(), serde_json::Error> {
    let config: OptimizerConfig =
        serde_json::from_str(r#"{"optimizer": "adam", "learning_rate": 0.01}"#)?;
    assert_eq!(config, AdamConfig::new().with_learning_rate(0.01).into());
    let config: OptimizerConfig = serde_json::from_str(r#"{"optimizer": "rmsprop"}"#)?;
    assert_eq!(config, RmsPropConfig::new().into());
    let config: OptimizerConfig = serde_json::from_str(r#"{"optimizer": "adamw"}"#)?;
    assert_eq!(config, AdamWConfig::new().into());
    let config: OptimizerConfig = serde_json::from_str(r#"{"optimizer": "ftrl", "beta": 1.0}"#)?;
    assert_eq!(config, FtrlConfig::new().with_beta(1.0).into());
    let config: OptimizerConfig = serde_json::from_str(r#"{"optimizer": "rowwise_adagrad"}"#)?;
    assert_eq!(config, RowWiseAdagradConfig::new().into());
    Ok(())
}

#[test]
fn json_config_rejects_unknown_fields_and_values() {
    for json in [
        r#"{"optimizer": "sgd", "momentun": 0.9}"#,
        r#"{"optimizer": "adamw", "weight_decya": 0.1}"#,
        r#"{"optimizer": "adam", "flavour": "torch"}"#,
        r#"{"optimizer": "ftrl", "table_updates": "sparse"}"#,
    ] {
        let bad = serde_json::from_str::<OptimizerConfig>(json);
        assert!(bad.is_err(), "{json}: {bad:?}");
    }
}

#[test]
fn build_rejects_an_invalid_config() {
    let bad: [(&str, OptimizerConfig); 4] = [
        ("beta_2", AdamConfig::new().with_beta_2(1.0).into()),
        ("weight_decay", AdamWConfig::new().with_weight_decay(-1.0).into()),
        ("learning_rate_power", FtrlConfig::new().with_learning_rate_power(1.0).into()),
        ("epsilon", RowWiseAdagradConfig::new().with_epsilon(f32::NAN).into()),
    ];
    for (field, config) in bad {
        match config.build() {
            Err(Error::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{config:?} gave {other:?}"),
        }
    }
}

#[test]
fn gradient_clipping_round_trips_through_json() -> Result<(), serde_json::Error> {
    for clipping in [
        GradientClipping::new(),
        GradientClipping::new().with_clipnorm(1.0).with_row_norm(RowNorm::Occurrences),
        GradientClipping::new().with_clipvalue(0.5),
        GradientClipping::new().with_global_clipnorm(5.0),
    ] {
        let json = serde_json::to_string(&clipping)?;
        assert_eq!(serde_json::from_str::<GradientClipping>(&json)?, clipping, "{json}");
    }
    let clipping: GradientClipping =
        serde_json::from_str(r#"{"clipnorm": 2.0, "row_norm": "occurrences"}"#)?;
    assert_eq!(
        clipping,
        GradientClipping::new().with_clipnorm(2.0).with_row_norm(RowNorm::Occurrences)
    );
    assert!(serde_json::from_str::<GradientClipping>(r#"{"clip_norm": 2.0}"#).is_err());
    Ok(())
}

#[test]
fn set_learning_rate_changes_the_next_steps_and_refuses_bad_rates() {
    use embkit::Optimizer;
    let mut sgd = embkit::SgdConfig::new().with_learning_rate(0.5).init().unwrap();
    let mut w = [1.0_f32];
    sgd.step_dense("w", &mut w, &[1.0]).unwrap();
    assert_eq!(w, [0.5]);
    sgd.set_learning_rate(0.25).unwrap();
    sgd.step_dense("w", &mut w, &[1.0]).unwrap();
    assert_eq!(w, [0.25]);
    for bad in [-0.1, f32::NAN, f32::INFINITY] {
        let err = sgd.set_learning_rate(bad).unwrap_err().to_string();
        assert!(err.contains("learning_rate"), "{err}");
    }
    assert_eq!(sgd.config(), embkit::SgdConfig::new().with_learning_rate(0.25).into());
}
