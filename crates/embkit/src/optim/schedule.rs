//! [`LearningRateSchedule`]: the learning rate as a function of the step,
//! as Keras's `keras.optimizers.schedules`.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A learning rate that changes with the optimizer's step count: Keras's
/// `keras.optimizers.schedules`, with their formulas, defaults and `f32`
/// arithmetic.
///
/// [`fit`](crate::model::fit) calls [`at`](Self::at) with the optimizer's
/// [`iterations`](crate::Optimizer::iterations) (steps finished so far,
/// from 0) before each step and sets the result
/// ([`Optimizer::set_learning_rate`](crate::Optimizer::set_learning_rate));
/// the optimizer's own `learning_rate` is then unused, as in Keras when
/// `learning_rate=` is given a schedule. Steps count across epochs.
///
/// With `s = step` (as `f32`) and `d = decay_steps`:
///
/// | schedule | learning rate |
/// |---|---|
/// | `ExponentialDecay` | `initial · decay_rate^(s / d)` (`⌊s / d⌋` with `staircase`) |
/// | `InverseTimeDecay` | `initial / (1 + decay_rate · s / d)` (`⌊s / d⌋` with `staircase`) |
/// | `PolynomialDecay` | `(initial − end) · (1 − min(s, d) / d)^power + end`; with `cycle`, `d` grows to the first multiple of `d` at or past `s` |
/// | `CosineDecay` | `initial · ((1 − alpha) · ½(1 + cos(π · min(s, d) / d)) + alpha)`; with `warmup_target`, first a straight line from `initial` to `warmup_target` over `warmup_steps`, then the cosine from `warmup_target` |
/// | `PiecewiseConstantDecay` | `values[0]` while `s ≤ boundaries[0]`, `values[i]` while `boundaries[i−1] < s ≤ boundaries[i]`, the last value after the last boundary |
///
/// A linear decay to zero over the whole training (fastText's and
/// word2vec's) is [`linear`](Self::linear).
///
/// # Examples
///
/// ```
/// use embkit::optim::LearningRateSchedule;
///
/// let schedule = LearningRateSchedule::linear(0.1, 100);
/// assert_eq!(schedule.at(0), 0.1);
/// assert_eq!(schedule.at(50), 0.05);
/// assert_eq!(schedule.at(100), 0.0);
///
/// // As TOML or JSON: tagged by the Keras class name in snake case.
/// let json = r#"{"schedule": "exponential_decay", "initial_learning_rate": 0.1,
///                "decay_steps": 10, "decay_rate": 0.5}"#;
/// let schedule: LearningRateSchedule = serde_json::from_str(json).unwrap();
/// assert_eq!(schedule.at(10), 0.05);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "schedule", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LearningRateSchedule {
    /// Keras `ExponentialDecay`.
    ExponentialDecay {
        /// The rate at step 0.
        initial_learning_rate: f32,
        /// Steps over which the rate is multiplied by `decay_rate`.
        decay_steps: u64,
        /// The factor per `decay_steps`.
        decay_rate: f32,
        /// Whether the exponent is a whole number of periods. Default false.
        #[serde(default)]
        staircase: bool,
    },
    /// Keras `InverseTimeDecay`.
    InverseTimeDecay {
        /// The rate at step 0.
        initial_learning_rate: f32,
        /// The unit of steps of `decay_rate`.
        decay_steps: u64,
        /// How fast the rate falls.
        decay_rate: f32,
        /// Whether `s / d` is a whole number of periods. Default false.
        #[serde(default)]
        staircase: bool,
    },
    /// Keras `PolynomialDecay`.
    PolynomialDecay {
        /// The rate at step 0.
        initial_learning_rate: f32,
        /// Steps from `initial_learning_rate` to `end_learning_rate`.
        decay_steps: u64,
        /// The rate after `decay_steps`. Default 0.0001 (Keras).
        #[serde(default = "default_end_learning_rate")]
        end_learning_rate: f32,
        /// The exponent; 1 is a straight line. Default 1.
        #[serde(default = "default_power")]
        power: f32,
        /// Whether the decay starts again from a higher rate after
        /// `decay_steps`. Default false.
        #[serde(default)]
        cycle: bool,
    },
    /// Keras `CosineDecay`, with its optional linear warm-up.
    CosineDecay {
        /// The rate at step 0.
        initial_learning_rate: f32,
        /// Steps of the cosine.
        decay_steps: u64,
        /// The end rate as a fraction of the rate the cosine starts from.
        /// Default 0.
        #[serde(default)]
        alpha: f32,
        /// With a warm-up: the rate it reaches, which the cosine starts
        /// from. Default none.
        #[serde(default)]
        warmup_target: Option<f32>,
        /// Steps of the warm-up. Default 0.
        #[serde(default)]
        warmup_steps: u64,
    },
    /// Keras `PiecewiseConstantDecay`.
    PiecewiseConstantDecay {
        /// Increasing steps where the rate changes.
        boundaries: Vec<u64>,
        /// One more rate than boundaries.
        values: Vec<f32>,
    },
}

fn default_end_learning_rate() -> f32 {
    0.0001
}

fn default_power() -> f32 {
    1.0
}

impl LearningRateSchedule {
    /// A straight line from `initial_learning_rate` at step 0 to 0 at step
    /// `decay_steps` and after (`PolynomialDecay` with `end_learning_rate`
    /// 0 and `power` 1): fastText's and word2vec's decay when
    /// `decay_steps` is every step of the training.
    pub fn linear(initial_learning_rate: f32, decay_steps: u64) -> Self {
        LearningRateSchedule::PolynomialDecay {
            initial_learning_rate,
            decay_steps,
            end_learning_rate: 0.0,
            power: 1.0,
            cycle: false,
        }
    }

    /// Checks the settings: rates finite and at least 0, `decay_steps` at
    /// least 1, decay rates and `power` finite and at least 0, `alpha` in
    /// `[0, 1]`, boundaries increasing with one value more than
    /// boundaries.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the setting, the rule and the value.
    pub fn validate(&self) -> Result<()> {
        let rate = |field: &'static str, x: f32| {
            if x.is_finite() && x >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(field, format!("must be finite and at least 0, got {x}")))
            }
        };
        let steps = |d: u64| {
            if d == 0 {
                Err(Error::config("decay_steps", "must be at least 1, got 0"))
            } else {
                Ok(())
            }
        };
        match self {
            LearningRateSchedule::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                ..
            }
            | LearningRateSchedule::InverseTimeDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                ..
            } => {
                rate("initial_learning_rate", *initial_learning_rate)?;
                steps(*decay_steps)?;
                rate("decay_rate", *decay_rate)
            }
            LearningRateSchedule::PolynomialDecay {
                initial_learning_rate,
                decay_steps,
                end_learning_rate,
                power,
                ..
            } => {
                rate("initial_learning_rate", *initial_learning_rate)?;
                steps(*decay_steps)?;
                rate("end_learning_rate", *end_learning_rate)?;
                rate("power", *power)
            }
            LearningRateSchedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                ..
            } => {
                rate("initial_learning_rate", *initial_learning_rate)?;
                steps(*decay_steps)?;
                if !(0.0..=1.0).contains(alpha) {
                    return Err(Error::config("alpha", format!("must be in [0, 1], got {alpha}")));
                }
                match warmup_target {
                    Some(t) => rate("warmup_target", *t),
                    None => Ok(()),
                }
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values } => {
                if values.len() != boundaries.len() + 1 {
                    return Err(Error::config(
                        "values",
                        format!(
                            "must have one more entry than boundaries: {} boundaries, {} values",
                            boundaries.len(),
                            values.len()
                        ),
                    ));
                }
                if let Some(w) = boundaries.windows(2).find(|w| w[0] >= w[1]) {
                    return Err(Error::config(
                        "boundaries",
                        format!("must increase, got {} then {}", w[0], w[1]),
                    ));
                }
                values.iter().try_for_each(|&v| rate("values", v))
            }
        }
    }

    /// The learning rate of the step after `step` finished steps, computed
    /// in `f32` in Keras's order of operations.
    pub fn at(&self, step: u64) -> f32 {
        let s = step as f32;
        match *self {
            LearningRateSchedule::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = s / decay_steps as f32;
                if staircase {
                    p = p.floor();
                }
                initial_learning_rate * decay_rate.powf(p)
            }
            LearningRateSchedule::InverseTimeDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = s / decay_steps as f32;
                if staircase {
                    p = p.floor();
                }
                initial_learning_rate / (1.0 + decay_rate * p)
            }
            LearningRateSchedule::PolynomialDecay {
                initial_learning_rate,
                decay_steps,
                end_learning_rate,
                power,
                cycle,
            } => {
                let mut d = decay_steps as f32;
                let mut s = s;
                if cycle {
                    // The first multiple of decay_steps at or past the step
                    // (1 at step 0).
                    let multiplier = if step == 0 { 1.0 } else { (s / d).ceil() };
                    d *= multiplier;
                } else {
                    s = s.min(d);
                }
                let p = s / d;
                (initial_learning_rate - end_learning_rate) * (1.0 - p).powf(power)
                    + end_learning_rate
            }
            LearningRateSchedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let d = decay_steps as f32;
                let cosine = |s: f32, from: f32| {
                    let fraction = s / d;
                    let decayed = 0.5 * (1.0 + (std::f32::consts::PI * fraction).cos());
                    from * ((1.0 - alpha) * decayed + alpha)
                };
                match warmup_target {
                    None => cosine(s.min(d), initial_learning_rate),
                    Some(target) => {
                        let w = warmup_steps as f32;
                        let s = s.min(d + w);
                        if s < w {
                            (target - initial_learning_rate) * (s / w) + initial_learning_rate
                        } else {
                            cosine(s - w, target)
                        }
                    }
                }
            }
            LearningRateSchedule::PiecewiseConstantDecay { ref boundaries, ref values } => {
                // The number of boundaries strictly below the step picks
                // the value.
                let i = boundaries.partition_point(|&b| b < step);
                values[i]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Keras 3.15.1 (TensorFlow 2.21 backend), e.g.
    /// `float(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)(5))`,
    /// one schedule per line below, at the steps listed.
    #[allow(clippy::type_complexity)]
    fn keras_cases() -> Vec<(LearningRateSchedule, Vec<(u64, f32)>)> {
        use LearningRateSchedule::*;
        let exp = |staircase| ExponentialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 10,
            decay_rate: 0.5,
            staircase,
        };
        let inv = |staircase| InverseTimeDecay {
            initial_learning_rate: 0.1,
            decay_steps: 10,
            decay_rate: 0.5,
            staircase,
        };
        let poly = |end, power, cycle| PolynomialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 10,
            end_learning_rate: end,
            power,
            cycle,
        };
        let cos = |initial, alpha, warmup_target, warmup_steps| CosineDecay {
            initial_learning_rate: initial,
            decay_steps: 10,
            alpha,
            warmup_target,
            warmup_steps,
        };
        vec![
            (
                exp(false),
                vec![(0, 0.1), (1, 0.093_303_3), (5, 0.070_710_68), (10, 0.05), (25, 0.017_677_67)],
            ),
            (exp(true), vec![(0, 0.1), (9, 0.1), (10, 0.05), (25, 0.025)]),
            (
                inv(false),
                vec![
                    (0, 0.1),
                    (1, 0.095_238_104),
                    (5, 0.08),
                    (10, 0.066_666_67),
                    (25, 0.044_444_446),
                ],
            ),
            (inv(true), vec![(0, 0.1), (9, 0.1), (10, 0.066_666_67), (25, 0.05)]),
            (
                poly(0.0001, 1.0, false),
                vec![(0, 0.1), (1, 0.090_01), (5, 0.050_05), (10, 0.0001), (25, 0.0001)],
            ),
            (
                poly(0.01, 2.0, false),
                vec![(0, 0.1), (3, 0.054_1), (7, 0.018_1), (10, 0.01), (25, 0.01)],
            ),
            (
                poly(0.01, 1.0, true),
                vec![(0, 0.1), (5, 0.055), (10, 0.01), (11, 0.050_499_998), (25, 0.025_000_002)],
            ),
            (
                cos(0.1, 0.0, None, 0),
                vec![
                    (0, 0.1),
                    (1, 0.097_552_83),
                    (5, 0.05),
                    (9, 0.002_447_176),
                    (10, 0.0),
                    (25, 0.0),
                ],
            ),
            (cos(0.1, 0.2, None, 0), vec![(0, 0.1), (3, 0.083_511_41), (10, 0.02), (25, 0.02)]),
            (
                cos(0.0, 0.0, Some(0.1), 4),
                vec![(0, 0.0), (1, 0.025), (3, 0.075), (4, 0.1), (9, 0.05), (14, 0.0), (30, 0.0)],
            ),
            (
                PiecewiseConstantDecay { boundaries: vec![3, 7], values: vec![1.0, 0.5, 0.1] },
                vec![(0, 1.0), (3, 1.0), (4, 0.5), (7, 0.5), (8, 0.1), (100, 0.1)],
            ),
        ]
    }

    #[test]
    fn every_schedule_matches_keras() -> Result<()> {
        for (schedule, expected) in keras_cases() {
            schedule.validate()?;
            for (step, want) in expected {
                let got = schedule.at(step);
                // Keras computes in f32 too; pow and cos may differ in the
                // last bit from TensorFlow's.
                let tolerance = 2.0 * f32::EPSILON * want.abs() + 1e-9;
                assert!(
                    (got - want).abs() <= tolerance,
                    "{schedule:?} at step {step}: {got} vs Keras {want}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn linear_falls_to_zero_and_stays() {
        let s = LearningRateSchedule::linear(0.5, 4);
        let got: Vec<f32> = (0..7).map(|t| s.at(t)).collect();
        assert_eq!(got, [0.5, 0.375, 0.25, 0.125, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn bad_settings_name_the_setting_and_the_value() {
        use LearningRateSchedule::*;
        let cases = [
            (LearningRateSchedule::linear(0.1, 0), "decay_steps"),
            (LearningRateSchedule::linear(f32::NAN, 10), "initial_learning_rate"),
            (
                ExponentialDecay {
                    initial_learning_rate: 0.1,
                    decay_steps: 1,
                    decay_rate: -0.5,
                    staircase: false,
                },
                "decay_rate",
            ),
            (
                PolynomialDecay {
                    initial_learning_rate: 0.1,
                    decay_steps: 1,
                    end_learning_rate: -1.0,
                    power: 1.0,
                    cycle: false,
                },
                "end_learning_rate",
            ),
            (
                CosineDecay {
                    initial_learning_rate: 0.1,
                    decay_steps: 1,
                    alpha: 1.5,
                    warmup_target: None,
                    warmup_steps: 0,
                },
                "alpha",
            ),
            (PiecewiseConstantDecay { boundaries: vec![3], values: vec![1.0] }, "values"),
            (
                PiecewiseConstantDecay { boundaries: vec![3, 3], values: vec![1.0, 0.5, 0.1] },
                "boundaries",
            ),
        ];
        for (schedule, field) in cases {
            let err = schedule.validate().expect_err("invalid").to_string();
            assert!(err.contains(field), "{schedule:?}: {err}");
        }
    }

    #[test]
    fn defaults_in_json_are_keras_defaults() {
        let s: LearningRateSchedule = serde_json::from_str(
            r#"{"schedule": "polynomial_decay", "initial_learning_rate": 0.1, "decay_steps": 10}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            LearningRateSchedule::PolynomialDecay {
                initial_learning_rate: 0.1,
                decay_steps: 10,
                end_learning_rate: 0.0001,
                power: 1.0,
                cycle: false
            }
        );
        let back: LearningRateSchedule =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
