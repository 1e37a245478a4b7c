//! Integration tests: optim.
//!
//! The properties check the lazy row update against the dense update it
//! stands for: a step on the rows of a table is, bit for bit, the dense
//! step on each touched row with that row's own state, and nothing else
//! (weights or state) moves.

use embkit::{
    AdagradConfig, AdamConfig, Error, OptimizerConfig, RmsPropConfig, RowGrad, SgdConfig,
};
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

fn sgd() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), decay(), any::<bool>()).prop_map(|(lr, momentum, nesterov)| {
        SgdConfig::new()
            .with_learning_rate(lr)
            .with_momentum(momentum)
            .with_nesterov(nesterov)
            .into()
    })
}

fn adagrad() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), 0.0f32..1.0, epsilon()).prop_map(|(lr, initial, eps)| {
        AdagradConfig::new()
            .with_learning_rate(lr)
            .with_initial_accumulator_value(initial)
            .with_epsilon(eps)
            .into()
    })
}

fn adam() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), decay(), decay(), epsilon(), any::<bool>()).prop_map(
        |(lr, beta_1, beta_2, eps, amsgrad)| {
            AdamConfig::new()
                .with_learning_rate(lr)
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(eps)
                .with_amsgrad(amsgrad)
                .into()
        },
    )
}

fn rmsprop() -> impl Strategy<Value = OptimizerConfig> {
    (learning_rate(), decay(), decay(), epsilon(), any::<bool>()).prop_map(
        |(lr, rho, momentum, eps, centered)| {
            RmsPropConfig::new()
                .with_learning_rate(lr)
                .with_rho(rho)
                .with_momentum(momentum)
                .with_epsilon(eps)
                .with_centered(centered)
                .into()
        },
    )
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
    fn rmsprop_row_step_equals_dense_step_per_row(config in rmsprop(), case in case()) {
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
    fn rmsprop_state_of_untouched_rows_stays_initial(
        config in rmsprop(),
        (case, probe) in case_and_probe(),
    ) {
        untouched_state_stays_initial(&config, &case, &probe)?;
    }

    #[test]
    fn out_of_range_id_leaves_table_and_state_unchanged(
        config in prop_oneof![sgd(), adagrad(), adam(), rmsprop()],
        case in case(),
        past in 0u32..4,
    ) {
        out_of_range_step_changes_nothing(&config, &case, past)?;
    }
}

fn non_default_configs() -> [OptimizerConfig; 4] {
    [
        SgdConfig::new().with_learning_rate(0.1).with_momentum(0.9).with_nesterov(true).into(),
        AdagradConfig::new()
            .with_learning_rate(0.05)
            .with_initial_accumulator_value(0.0)
            .with_epsilon(1e-10)
            .into(),
        AdamConfig::new()
            .with_learning_rate(0.01)
            .with_beta_1(0.8)
            .with_beta_2(0.99)
            .with_epsilon(1e-8)
            .with_amsgrad(true)
            .into(),
        RmsPropConfig::new()
            .with_learning_rate(0.01)
            .with_rho(0.99)
            .with_momentum(0.5)
            .with_epsilon(1e-8)
            .with_centered(true)
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
    for config in non_default_configs() {
        let json: serde_json::Value = serde_json::to_value(&config)?;
        assert_eq!(json["optimizer"], config.name());
    }
    Ok(())
}

#[test]
fn json_config_fills_missing_fields_with_defaults() -> Result<(), serde_json::Error> {
    let config: OptimizerConfig =
        serde_json::from_str(r#"{"optimizer": "adam", "learning_rate": 0.01}"#)?;
    assert_eq!(config, AdamConfig::new().with_learning_rate(0.01).into());
    let config: OptimizerConfig = serde_json::from_str(r#"{"optimizer": "rmsprop"}"#)?;
    assert_eq!(config, RmsPropConfig::new().into());
    Ok(())
}

#[test]
fn json_config_rejects_unknown_fields() {
    let typo = serde_json::from_str::<OptimizerConfig>(r#"{"optimizer": "sgd", "momentun": 0.9}"#);
    assert!(typo.is_err(), "{typo:?}");
}

#[test]
fn build_rejects_an_invalid_config() {
    let config: OptimizerConfig = AdamConfig::new().with_beta_2(1.0).into();
    assert!(matches!(config.build(), Err(Error::InvalidConfig { field: "beta_2", .. })));
}
