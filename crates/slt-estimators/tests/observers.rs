//! Chain observers: they see every step with the right indices, record one value per draw,
//! agree with what the estimator computes itself, and never change the chain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

mod common;

use burn::tensor::Tensor;

use slt_estimators::observe::{
    DistanceFromStart, GradientNorm, NoiseNorm, Observers, Progress, Record, RunningLlc, StepView, WeightFn, WeightNorm,
};
use slt_estimators::{ChainObserver, LlcEstimate, SgldConfig, Temperature};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;
type Inner = burn_ndarray::NdArray<f64>;

const D: usize = 20;

fn config() -> SgldConfig {
    SgldConfig {
        step_size: 1e-4,
        temperature: Temperature::Fixed(500.0),
        localization: 10.0,
        num_chains: 3,
        num_draws: 60,
        num_burnin: 25,
        thin: 2,
        batch_size: 64,
        seed: 11,
        ..Default::default()
    }
}

/// Linear regression with d = 20 weights at its exact minimum, estimated with `observer`.
fn run(observer: Option<&dyn ChainObserver<Inner>>) -> LlcEstimate {
    common::linear_regression::<B>(512, D, &config(), observer)
}

/// (chain, step, draw, loss) of one step.
type Seen = (usize, usize, Option<usize>, f64);

/// Remembers every step it sees.
#[derive(Default)]
struct Log(Mutex<Vec<Seen>>);

impl ChainObserver<Inner> for Log {
    fn observe(&self, v: &StepView<'_, Inner>, _: &mut Record) {
        self.0.lock().unwrap().push((v.chain, v.step, v.draw, v.loss));
    }
}

#[test]
fn observers_see_every_step_and_record_one_value_per_draw_without_changing_the_chain() {
    let c = config();
    let steps = AtomicUsize::new(0);
    let log = Log::default();
    let observers = Observers::<Inner>::new()
        .with(Progress(|| {
            steps.fetch_add(1, Ordering::Relaxed);
        }))
        .with(&log)
        .with(WeightNorm)
        .with(DistanceFromStart)
        .with(GradientNorm)
        .with(NoiseNorm)
        .with(RunningLlc)
        .with(WeightFn::new("sum of w", |w: &Tensor<Inner, 1>| w.clone().sum().into_scalar()));
    let observed = run(Some(&observers));
    let plain = run(None);

    // Observers only read: the chains are bit-identical.
    assert_eq!(observed.llc_mean, plain.llc_mean);
    for (a, b) in observed.traces.iter().zip(&plain.traces) {
        assert_eq!(a.step_losses, b.step_losses);
        assert!(b.observables.is_empty());
    }

    // Every step of every chain, each once, with the draw index devinterp's semantics give.
    assert_eq!(steps.load(Ordering::Relaxed), c.num_chains * c.steps_per_chain());
    drop(observers);
    let mut log = log.0.into_inner().unwrap();
    log.sort_by_key(|&(chain, step, _, _)| (chain, step));
    for (chain, trace) in observed.traces.iter().enumerate() {
        let seen: Vec<_> = log.iter().filter(|e| e.0 == chain).collect();
        assert_eq!(seen.len(), c.steps_per_chain());
        for (t, &&(_, step, draw, loss)) in seen.iter().enumerate() {
            assert_eq!(step, t);
            assert_eq!(loss, trace.step_losses[t]);
            let expected =
                (t >= c.num_burnin && (t - c.num_burnin).is_multiple_of(c.thin)).then(|| (t - c.num_burnin) / c.thin);
            assert_eq!(draw, expected, "chain {chain} step {t}");
            if let Some(k) = draw {
                assert_eq!(trace.draws[k], loss);
            }
        }
        // One value per draw for every observable.
        let names: Vec<&str> = trace.observables.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["distance", "drift_norm", "grad_norm", "noise_norm", "running_llc", "sum of w", "weight_norm"]
        );
        assert!(trace.observables.values().all(|v| v.len() == c.num_draws));
    }

    for (trace, summary) in observed.traces.iter().zip(&observed.chains) {
        let obs = |name: &str| &trace.observables[name];
        // The last running λ̂ is the chain's λ̂ (same sum, same order: equal to rounding).
        let last = *obs("running_llc").last().unwrap();
        let llc = summary.llc.unwrap();
        assert!((last - llc).abs() <= 1e-9 * llc.abs().max(1.0), "{last} vs {llc}");
        // The distance at the last draw is the one the estimator records.
        let (mine, its) = (*obs("distance").last().unwrap(), summary.final_distance.unwrap());
        assert!((mine - its).abs() <= 1e-9 * its, "{mine} vs {its}");
        // The noise added per step has length ≈ √(εd): mean ‖√ε·ξ‖²/(εd) over the draws is a
        // χ²(d·draws)/(d·draws) = 1 ± √(2/1200) ≈ 1 ± 0.04; tolerance 0.15 (seed 11).
        let mean_sq = obs("noise_norm").iter().map(|x| x * x).sum::<f64>() / c.num_draws as f64;
        let ratio = mean_sq / (c.step_size * D as f64);
        assert!((ratio - 1.0).abs() < 0.15, "{ratio}");
        // The drift is (ε/2)·nβ·‖g‖.
        for (drift, g) in obs("drift_norm").iter().zip(obs("grad_norm")) {
            assert!((drift - 0.5 * c.step_size * 500.0 * g).abs() <= 1e-12 * drift.max(1e-300));
        }
        assert!(obs("weight_norm").iter().all(|w| w.is_finite() && *w > 0.0));
    }
}
