//! Measurements of a trained classifier on its data: the glue between the MNIST-family data,
//! the models and the estimator crates.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use slt_datasets::{ClassificationBatch, Dataset};
use slt_estimators::{estimate_llc, EstimatorError, FnSource, LlcEstimate, SgldConfig, Warning};
use slt_models::loss::cross_entropy;
use slt_models::Classifier;
pub use slt_runs::measure::{CalibrationGrid, LlcPoint, MeasureConfig, Measurement, Spectrum, ValidatedProtocol};

/// The mean cross-entropy of a classifier on a batch: the loss every measurement uses.
pub fn classifier_loss<B: AutodiffBackend>(
    model: &Classifier<B>,
    batch: &ClassificationBatch<B>,
) -> burn::tensor::Tensor<B, 1> {
    cross_entropy(model.forward(batch.inputs.clone()), batch.one_hot.clone())
}

/// λ̂ of `model` on the training set `train`, with a progress bar when `show_progress`. A chain
/// that runs device-resident (`config.residency`: on GPU backends by default) cuts its batches
/// from a copy of `train` on the device ([`slt_datasets::DeviceDataset`]: an upload of the
/// batch's indices per step); otherwise batches are assembled on the host and uploaded.
pub fn llc_of_classifier<B: AutodiffBackend>(
    model: &Classifier<B>,
    train: &Dataset,
    config: &SgldConfig,
    device: &B::Device,
    show_progress: bool,
) -> Result<LlcEstimate, EstimatorError> {
    llc_of_classifier_observed(model, train, config, device, show_progress, None)
}

/// [`llc_of_classifier`] with `observers` recording observables into the chains' traces (see
/// [`slt_estimators::observe`]).
pub fn llc_of_classifier_observed<B: AutodiffBackend>(
    model: &Classifier<B>,
    train: &Dataset,
    config: &SgldConfig,
    device: &B::Device,
    show_progress: bool,
    observers: Option<&dyn slt_estimators::ChainObserver<B::InnerBackend>>,
) -> Result<LlcEstimate, EstimatorError> {
    let bar = if show_progress {
        let bar = ProgressBar::new((config.num_chains * config.steps_per_chain()) as u64);
        bar.set_style(
            ProgressStyle::with_template("SGLD [{bar:30}] {pos}/{len} steps {per_sec:>12} ETA {eta:>4}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let tick = || bar.inc(1);
    let mut progress = slt_estimators::observe::Observers::new().with(slt_estimators::observe::Progress(tick));
    if let Some(o) = observers {
        progress = progress.with(o);
    }
    let d = slt_core::params::num_params(model);
    let estimate = if config.residency.resolve::<B::InnerBackend>(device, d).is_some() {
        let on_device = train.to_device::<B>(device);
        let source = FnSource::new(train.len(), |idx: &[usize]| on_device.batch(idx));
        estimate_llc(model, &source, &classifier_loss::<B>, config, Some(&progress))
    } else {
        let source = FnSource::new(train.len(), |idx: &[usize]| train.batch::<B>(idx, device));
        estimate_llc(model, &source, &classifier_loss::<B>, config, Some(&progress))
    };
    bar.finish_and_clear();
    estimate
}

/// The (ε, γ) of a calibration sweep the validated protocol takes: among the grid points that
/// pass every stability check and whose chains do not sit at the localisation scale, the
/// largest ε that is consistent with the next smaller one (see [`slt_estimators::calibrate()`]),
/// else the smallest such ε; `None` when no grid point qualifies.
pub fn choose_validated(cal: &slt_estimators::Calibration) -> Option<(f64, f64)> {
    let accepted = |r: &&slt_estimators::CalibrationRow| {
        r.stable
            && !r.warnings.iter().any(|w| matches!(w, Warning::AtLocalizationScale { .. } | Warning::HighRHat { .. }))
    };
    let by_step =
        |a: &&slt_estimators::CalibrationRow, b: &&slt_estimators::CalibrationRow| a.step_size.total_cmp(&b.step_size);
    cal.rows
        .iter()
        .filter(accepted)
        .filter(|r| r.consistent_with_smaller_step == Some(true))
        .max_by(by_step)
        .or_else(|| cal.rows.iter().filter(accepted).min_by(by_step))
        .map(|r| (r.step_size, r.localization))
}

/// Most examples one batch of a Hessian's evaluation set holds (bounds the memory of the
/// double backward: LeNet-5's first convolution outputs 2,048 × 6 × 28 × 28 f32 ≈ 39 MB).
pub const HESSIAN_CHUNK: usize = 2048;

/// The Hessian's evaluation set: the first `batches` × `batch_size` training examples of the
/// seeded order `epoch_order(n, seed, u64::MAX)` (the paper: 10 batches of 128). The loss is
/// their mean, L = (1/N)Σᵢℓᵢ, however they are grouped, so they are held in as few batches as
/// [`HESSIAN_CHUNK`] allows, each weighted by its size: one batch of 1,280 makes a product
/// 1.7–1.9× faster than ten of 128 (`xtask hessian --probes 30 --top-k 1` on mlp-2x256,
/// interleaved runs: 4.6–5.3 s vs 7.8–9.1 s), with the same numbers up to rounding.
pub fn hessian_eval_set<B: burn::tensor::backend::Backend>(
    train: &Dataset,
    batches: usize,
    batch_size: usize,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<slt_hessian::EvalSet<ClassificationBatch<B>>> {
    let total = batches.saturating_mul(batch_size);
    anyhow::ensure!(total >= 1, "the Hessian's evaluation set is empty ({batches} batches of {batch_size})");
    anyhow::ensure!(
        total <= train.len(),
        "the Hessian's evaluation set ({batches} × {batch_size} examples) exceeds the {} training examples",
        train.len()
    );
    let order = slt_datasets::epoch_order(train.len(), seed, u64::MAX);
    let pieces = total.div_ceil(HESSIAN_CHUNK);
    let chunk = total.div_ceil(pieces);
    let sized = order[..total].chunks(chunk).map(|idx| (train.batch::<B>(idx, device), idx.len())).collect();
    Ok(slt_hessian::EvalSet::sized(sized)?)
}

/// The Hessian of the mean cross-entropy over `eval` at `model`, as exact R-operator products
/// on the plain backend (the forward and first backward recorded once; 1.8× faster per
/// product than double backward on MLP 784-256-256-10, see `slt-hessian`'s `hvp` bench).
pub fn hessian_operator<B: burn::tensor::backend::Backend>(
    model: &Classifier<B>,
    eval: slt_hessian::EvalSet<ClassificationBatch<B>>,
) -> Result<slt_hessian::PearlmutterHvp<B, slt_hessian::SoftmaxCrossEntropy>, slt_hessian::HessianError> {
    let eval = eval.map(|b| (b.inputs, b.one_hot));
    slt_hessian::PearlmutterHvp::new(model, &eval, slt_hessian::SoftmaxCrossEntropy)
}

/// The Hutchinson options of a measurement's Tr(H): at most `hessian_probes` probes, stopping
/// early at the default relative standard error.
pub fn trace_options(config: &MeasureConfig, seed: u64) -> slt_hessian::trace::HutchinsonOptions {
    slt_hessian::trace::HutchinsonOptions { max_probes: config.hessian_probes, seed, ..Default::default() }
}

/// The options of [`spectrum`]: Lanczos for the top 3 eigenvalues, SLQ for the density.
pub fn spectrum_options(seed: u64) -> (slt_hessian::LanczosOptions, slt_hessian::SlqOptions) {
    (
        slt_hessian::LanczosOptions { k: 3, seed, ..Default::default() },
        slt_hessian::SlqOptions { seed, ..Default::default() },
    )
}

/// Which point of which run is measured, and what the run decided before.
#[derive(Debug, Clone, Copy)]
pub struct PointOfRun {
    /// The run's seed (every probe and chain seed is derived from it and the epoch).
    pub seed: u64,
    /// Epochs trained to reach this point.
    pub epoch: usize,
    /// The validated protocol's (ε, γ) chosen at an earlier epoch of the run, if any.
    pub calibrated: Option<(f64, f64)>,
    /// Whether the validated protocol is due at this epoch.
    pub with_validated: bool,
}

/// Measures `model` on `train` (the point w* after `at.epoch` epochs of the run seeded `at.seed`).
pub fn measure_point<B: AutodiffBackend>(
    model: &Classifier<B>,
    train: &Dataset,
    config: &MeasureConfig,
    at: PointOfRun,
    device: &B::Device,
    show_progress: bool,
) -> anyhow::Result<Measurement> {
    let PointOfRun { seed, epoch, calibrated, with_validated } = at;
    use slt_core::seed::{derive_seed, stream};
    use slt_hessian::{trace, SymmetricOperator};
    let started = std::time::Instant::now();
    // Tr(H) over a fixed, seeded evaluation set.
    let probe_seed = derive_seed(seed, &[stream::PROBES, epoch as u64]);
    let eval = hessian_eval_set::<B::InnerBackend>(
        train,
        config.hessian_batches,
        config.hessian_batch_size,
        probe_seed,
        device,
    )?;
    let hvp = hessian_operator(&model.valid(), eval)?;
    let eval_loss = hvp.loss();
    let grad_norm = hvp.gradient().iter().map(|g| g * g).sum::<f64>().sqrt();
    let trace = trace::hutchinson(&hvp, &trace_options(config, probe_seed))?;
    debug_assert_eq!(hvp.dim(), slt_core::params::num_params(model));
    let mut llc = Vec::with_capacity(config.sgld_steps.len());
    for (k, &step) in config.sgld_steps.iter().enumerate() {
        let sgld = SgldConfig {
            step_size: step,
            seed: derive_seed(seed, &[stream::SGLD, epoch as u64, k as u64]),
            ..config.sgld.clone()
        };
        let e = llc_of_classifier(model, train, &sgld, device, show_progress)?.with_hessian_trace(trace.trace);
        llc.push(LlcPoint::new(step, &e));
    }
    let validated = match config.validated.as_ref().filter(|_| with_validated) {
        None => None,
        Some(v) => {
            let (step_size, localization) = match (calibrated, &v.calibration) {
                (Some(chosen), _) => chosen,
                (None, Some(grid)) => {
                    let base = SgldConfig {
                        num_draws: grid.draws,
                        seed: derive_seed(seed, &[stream::SGLD, epoch as u64, u64::MAX - 1]),
                        ..v.sgld.clone()
                    };
                    let source = FnSource::new(train.len(), |idx: &[usize]| train.batch::<B>(idx, device));
                    let cal = slt_estimators::calibrate(
                        model,
                        &source,
                        &classifier_loss::<B>,
                        &base,
                        &grid.step_sizes,
                        &grid.localizations,
                    )?;
                    choose_validated(&cal).unwrap_or((v.sgld.step_size, v.sgld.localization))
                }
                (None, None) => (v.sgld.step_size, v.sgld.localization),
            };
            let sgld = SgldConfig {
                step_size,
                localization,
                seed: derive_seed(seed, &[stream::SGLD, epoch as u64, u64::MAX]),
                ..v.sgld.clone()
            };
            let e = llc_of_classifier(model, train, &sgld, device, show_progress)?.with_hessian_trace(trace.trace);
            Some(LlcPoint::new(step_size, &e))
        }
    };
    Ok(Measurement {
        llc,
        validated,
        trace_h: trace.trace,
        trace_h_se: trace.std_error,
        eval_loss,
        grad_norm,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// [`Spectrum`] of the mean loss over `batches` × `batch_size` training examples.
pub fn spectrum<B: AutodiffBackend>(
    model: &Classifier<B>,
    train: &Dataset,
    batches: usize,
    batch_size: usize,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<Spectrum> {
    use slt_hessian::{eigen, slq_density};
    let eval = hessian_eval_set::<B::InnerBackend>(train, batches, batch_size, seed, device)?;
    let hvp = hessian_operator(&model.valid(), eval)?;
    let (lanczos, slq) = spectrum_options(seed);
    let top = eigen::lanczos(&hvp, &lanczos)?;
    let s = slq_density(&hvp, &slq)?;
    Ok(Spectrum { grid: s.grid, density: s.density, top_eigenvalues: top.values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use slt_estimators::{Calibration, CalibrationRow};

    #[test]
    fn hessian_eval_set_holds_the_seeded_examples_in_few_batches_weighted_by_size() {
        type B = burn_ndarray::NdArray<f32>;
        let n = 6000;
        // Example i has first pixel i, so a batch says which examples it holds.
        let train = Dataset {
            images: (0..n).flat_map(|i| [i as f32, 0.0]).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            dim: 2,
        };
        let order = slt_datasets::epoch_order(n, 7, u64::MAX);
        for (batches, batch_size, sizes) in
            [(10, 128, vec![1280]), (3, 2000, vec![2000; 3]), (5, 1000, vec![1667, 1667, 1666]), (1, 1, vec![1])]
        {
            let set = hessian_eval_set::<B>(&train, batches, batch_size, 7, &Default::default()).unwrap();
            let held: Vec<usize> = set
                .batches()
                .iter()
                .flat_map(|b| {
                    b.inputs.clone().slice([0..b.inputs.dims()[0], 0..1]).into_data().iter::<f32>().collect::<Vec<_>>()
                })
                .map(|v| v as usize)
                .collect();
            assert_eq!(held, order[..batches * batch_size], "{batches} × {batch_size}");
            assert_eq!(set.batches().iter().map(|b| b.inputs.dims()[0]).collect::<Vec<_>>(), sizes);
            let total = (batches * batch_size) as f64;
            for (w, m) in set.weights().iter().zip(&sizes) {
                assert!((w - *m as f64 / total).abs() < 1e-15);
            }
        }
        for (batches, batch_size) in [(0, 128), (10, 0), (50, 128), (usize::MAX, 2)] {
            let err = hessian_eval_set::<B>(&train, batches, batch_size, 7, &Default::default()).unwrap_err();
            assert!(err.to_string().contains("evaluation set"), "{err}");
        }
    }

    fn row(
        step_size: f64,
        localization: f64,
        stable: bool,
        consistent: Option<bool>,
        warnings: Vec<Warning>,
    ) -> CalibrationRow {
        CalibrationRow {
            step_size,
            localization,
            llc_mean: Some(1.0),
            llc_std: None,
            diverged_chains: 0,
            mala_acceptance_mean: None,
            warnings,
            stable,
            consistent_with_smaller_step: consistent,
        }
    }

    #[test]
    fn the_validated_choice_skips_points_at_the_localisation_scale_or_with_disagreeing_chains() {
        let at_scale = vec![Warning::AtLocalizationScale { distance: 10.0, scale: 11.0 }];
        let r_hat = vec![Warning::HighRHat { r_hat: 1.3 }];
        let cal = Calibration {
            rows: vec![
                row(1e-6, 2.0, true, None, Vec::new()),
                row(1e-5, 2.0, true, Some(true), Vec::new()),
                row(1e-4, 2.0, true, Some(true), at_scale.clone()),
                row(1e-3, 2.0, true, Some(true), r_hat.clone()),
                row(1e-2, 2.0, false, None, Vec::new()),
            ],
            recommended: Some((1e-3, 2.0)),
        };
        assert_eq!(choose_validated(&cal), Some((1e-5, 2.0)));
        // Without a consistent accepted point, the smallest accepted ε; with none, no choice.
        let cal = Calibration {
            rows: vec![row(1e-5, 2.0, true, None, Vec::new()), row(1e-4, 2.0, true, Some(false), Vec::new())],
            recommended: None,
        };
        assert_eq!(choose_validated(&cal), Some((1e-5, 2.0)));
        let cal = Calibration {
            rows: vec![row(1e-5, 2.0, true, None, at_scale), row(1e-4, 2.0, true, None, r_hat)],
            recommended: None,
        };
        assert_eq!(choose_validated(&cal), None);
    }
}
