//! Device-resident chains (`Residency::Device`): what crosses the host–device boundary per step
//! (counted by the chain itself in `ChainTrace::host_traffic`), reproducibility, divergence
//! detection at the end of a block, and λ̂ against the host path and the truth. Run on flex in
//! f32 (its `Tensor::random` stands in for a GPU's generator: the code path is the same).

mod common;

use slt_estimators::observe::{Observers, Progress, RunningLlc};
use slt_estimators::{ChainObserver, LlcEstimate, Residency, SgldConfig, Temperature};
use slt_models::toy::LinearRegression;

type Inner = burn_flex::Flex;
type B = burn_autodiff::Autodiff<Inner>;

/// Linear regression with d weights at its exact minimum (λ = d/2), n = 4096 noiseless
/// examples, estimated with `config` and `observer`.
fn linear_regression(d: usize, config: &SgldConfig, observer: Option<&dyn ChainObserver<Inner>>) -> LlcEstimate {
    common::linear_regression::<B>(4096, d, config, observer)
}

/// The settings of `ground_truth.rs`'s regular model: nβ = 1e4, γ = 10, ε = 5e-6, batch 256.
fn config(residency: Residency, draws: usize) -> SgldConfig {
    SgldConfig {
        step_size: 5e-6,
        temperature: Temperature::Fixed(1e4),
        localization: 10.0,
        num_chains: 4,
        num_draws: draws,
        num_burnin: draws / 4,
        batch_size: 256,
        seed: 0,
        residency,
        ..Default::default()
    }
}

#[test]
fn a_device_resident_chain_uploads_no_noise_and_reads_back_once_per_block() {
    let d = 500;
    let host = linear_regression(d, &config(Residency::Host, 80), None);
    let device = linear_regression(d, &config(Residency::Device(16), 80), None);
    for (h, g) in host.traces.iter().zip(&device.traces) {
        // 20 burn-in + 80 draws = 100 steps.
        assert_eq!(h.host_traffic.steps, 100);
        assert_eq!((h.host_traffic.uploads, h.host_traffic.uploaded_values), (100, 100 * d), "host: ξ every step");
        assert_eq!(h.host_traffic.readbacks, 100, "host: the loss every step");
        assert_eq!(g.host_traffic.steps, 100);
        assert_eq!((g.host_traffic.uploads, g.host_traffic.uploaded_values), (0, 0), "device: no ξ uploaded");
        assert_eq!(g.host_traffic.readbacks, 100usize.div_ceil(16), "device: one read-back per block of 16");
        // Same bookkeeping on both paths: every step's loss, the draws, the recorded distances.
        assert_eq!((g.step_losses.len(), g.draws.len(), g.distances.len()), (100, 80, h.distances.len()));
        assert!(g.draws.iter().chain(&g.distances).all(|v| v.is_finite()));
        assert_ne!(h.draws, g.draws, "the device draws its own noise");
    }
}

#[test]
fn a_device_resident_chain_is_reproducible_from_its_seed() {
    let a = linear_regression(50, &config(Residency::Device(7), 60), None);
    let b = linear_regression(50, &config(Residency::Device(7), 60), None);
    assert_eq!(a.traces, b.traces);
    // The block length is only a batching of the same per-block seeds when it is the same:
    // the noise of step t depends on (seed, first step of its block).
    let c = linear_regression(50, &config(Residency::Device(15), 60), None);
    assert_ne!(a.traces[0].draws, c.traces[0].draws);
}

#[test]
fn observers_that_read_losses_cost_one_read_back_per_step_and_progress_costs_none() {
    let d = 50;
    let config = config(Residency::Device(10), 40);
    let ticks = std::sync::atomic::AtomicUsize::new(0);
    let progress = Progress(|| {
        ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let quiet = linear_regression(d, &config, Some(&progress));
    assert_eq!(ticks.load(std::sync::atomic::Ordering::Relaxed), 4 * 50);
    assert!(quiet.traces.iter().all(|t| t.host_traffic.readbacks == 5));
    let reading = Observers::<Inner>::new().with(RunningLlc);
    let e = linear_regression(d, &config, Some(&reading));
    for (t, q) in e.traces.iter().zip(&quiet.traces) {
        assert_eq!(t.host_traffic.readbacks, 50);
        assert_eq!(t.draws, q.draws, "reading back earlier changes nothing in the chain");
        assert_eq!(t.observables["running_llc"].len(), 40);
    }
}

#[test]
fn a_diverging_device_resident_chain_is_caught_at_the_end_of_its_block() {
    let config = SgldConfig { step_size: 1.0, ..config(Residency::Device(8), 50) };
    let e = linear_regression(10, &config, None);
    assert_eq!(e.llc_mean, None);
    for t in &e.traces {
        let at = t.diverged_at.expect("diverged");
        assert_eq!(t.step_losses.len(), at, "the losses up to the first non-finite one are kept");
        assert!(t.step_losses.iter().all(|v| v.is_finite()));
        assert!(t.host_traffic.steps < (at / 8 + 1) * 8, "stopped at the end of the block");
    }
}

/// Tolerance 10 % of λ = 5 for each path (as `ground_truth.rs`), and the two paths within 3
/// combined standard errors of each other; seed 0, 4 chains × 4,000 draws.
#[test]
fn device_resident_llc_agrees_with_the_host_path_and_the_truth() {
    let d = 10;
    let truth = LinearRegression::<B>::learning_coefficient(d);
    let host = linear_regression(d, &config(Residency::Host, 4000), None);
    let device = linear_regression(d, &config(Residency::Device(64), 4000), None);
    let (h, g) = (host.llc_mean.unwrap(), device.llc_mean.unwrap());
    eprintln!(
        "λ̂ host {h:.4} ± {:.4}, device {g:.4} ± {:.4}, truth {truth}",
        host.llc_std.unwrap(),
        device.llc_std.unwrap()
    );
    for llc in [h, g] {
        assert!(((llc - truth) / truth).abs() <= 0.10, "λ̂ = {llc}, λ = {truth}");
    }
    let se = ((host.llc_std.unwrap().powi(2) + device.llc_std.unwrap().powi(2)) / 4.0).sqrt();
    assert!((h - g).abs() <= 3.0 * se, "host {h} vs device {g}: {:.1} SE", (h - g).abs() / se);
}
