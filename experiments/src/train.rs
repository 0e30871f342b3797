//! The training loop: seeded batches, one optimiser step per batch, evaluation after every
//! epoch, one metrics row per epoch, weights at the end.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use indicatif::{ProgressBar, ProgressStyle};
use slt_datasets::{Dataset, Splits};
use slt_models::loss::cross_entropy;
use slt_models::Classifier;

use crate::config::TrainConfig;
use crate::measure::Spectrum;
use crate::optimizer::AnyOptimizer;
pub use crate::records::{EpochMetrics, RunSummary};

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A non-finite gradient: the setting diverges (a finding of a sweep, not a failure).
    #[error("training diverged at epoch {epoch}, step {step} ({optimizer}, lr {lr})")]
    Diverged {
        epoch: usize,
        step: usize,
        optimizer: &'static str,
        lr: f64,
        #[source]
        source: slt_optimizers::OptimError,
    },
    /// Anything else (bad configuration, I/O, a failed measurement).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Where and how a run trains.
pub struct TrainOptions<'a, B: AutodiffBackend> {
    pub device: &'a B::Device,
    /// The backend's name, recorded in `summary.json`.
    pub backend_name: &'a str,
    /// With a folder: `config.json`, per-epoch metrics and checkpoints, the weights, the
    /// spectrum (if measured) and the sealed `summary.json` are written there, and an
    /// interrupted run of the same configuration resumes.
    pub out: Option<&'a Path>,
    pub show_progress: bool,
    /// The parent's final model, for a run with `start_from` (required then, refused otherwise).
    pub initial: Option<Classifier<B>>,
}

impl<'a, B: AutodiffBackend> TrainOptions<'a, B> {
    /// In memory, quietly, from a fresh initialisation.
    pub fn new(device: &'a B::Device, backend_name: &'a str) -> Self {
        Self { device, backend_name, out: None, show_progress: false, initial: None }
    }
}

/// A trained model and its record.
pub struct TrainOutcome<B: AutodiffBackend> {
    pub model: Classifier<B>,
    pub metrics: Vec<EpochMetrics>,
    pub summary: RunSummary,
    /// The Hessian spectrum at the final weights, if `measure.spectrum_at_end`.
    pub spectrum: Option<Spectrum>,
}

/// Mean loss and accuracy of `model` on `data`, in batches of `batch_size`.
pub fn evaluate<B: Backend>(
    model: &Classifier<B>,
    data: &Dataset,
    batch_size: usize,
    device: &B::Device,
) -> (f64, f64) {
    let mut loss_sum = 0.0;
    let mut correct = 0i64;
    for indices in data.sequential_batches(batch_size) {
        let batch = data.batch::<B>(&indices, device);
        let m = indices.len();
        let logits = model.forward(batch.inputs);
        let predicted = logits.clone().argmax(1).reshape([m]);
        correct += predicted.equal(batch.targets).int().sum().into_scalar().elem::<i64>();
        loss_sum += cross_entropy(logits, batch.one_hot).into_scalar().elem::<f64>() * m as f64;
    }
    let n = data.len() as f64;
    (loss_sum / n, correct as f64 / n)
}

fn progress_bar(steps: u64, prefix: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps {per_sec:>12} ETA {eta:>4} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// Trains `config` on `splits`. With `options.out`, writes `config.json` first, after every
/// epoch a `metrics.jsonl` row and a checkpoint, then `weights.safetensors`, the spectrum if
/// measured, and the sealed `summary.json` (all atomically). If `out` holds a checkpoint of the
/// same configuration, training resumes after its last finished epoch and ends exactly as an
/// uninterrupted run would.
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    splits: &Splits,
    options: TrainOptions<'_, B>,
) -> Result<TrainOutcome<B>, TrainError> {
    let TrainOptions { device, backend_name, out, show_progress, initial } = options;
    config.validate()?;
    if config.start_from.is_some() != initial.is_some() {
        return Err(anyhow::anyhow!(
            "a run with start_from needs the parent's final model, and only such a run takes one"
        )
        .into());
    }
    let started = Instant::now();
    if let Some(dir) = out {
        crate::store::write_json(&dir.join(crate::records::CONFIG_FILE), config)?;
    }
    let new_optimizer = || AnyOptimizer::<B>::new(&config.optimizer).map_err(anyhow::Error::from);
    let mut model = initial.unwrap_or_else(|| config.model.init::<B>(config.seed, device));
    let mut optimizer = new_optimizer()?;
    let mut metrics: Vec<EpochMetrics> = Vec::with_capacity(config.epochs);
    if let Some(dir) = out {
        if let Some(resumed) = crate::checkpoint::load(dir, config, model.clone(), new_optimizer()?)? {
            if show_progress {
                eprintln!("{}: resuming after epoch {}", dir.display(), resumed.metrics.len());
            }
            model = resumed.model;
            metrics = resumed.metrics;
            optimizer = resumed.optimizer;
        }
    }
    for epoch in metrics.len() + 1..=config.epochs {
        let (next, mut row) = train_epoch(config, &splits.train, model, &mut optimizer, epoch, device, show_progress)?;
        model = next;
        let (val_loss, val_acc, train_eval) = evaluate_epoch(config, splits, &model, device);
        row.val_loss = val_loss;
        row.val_acc = val_acc;
        if let Some((loss, acc)) = train_eval {
            row.train_loss = loss;
            row.train_acc = Some(acc);
        }
        row.measurement = measure_epoch(config, &splits.train, &model, &metrics, &row, device, show_progress)?;
        if show_progress {
            eprintln!(
                "{} {} epoch {epoch}/{}: train_loss {:.4} val_loss {:.4} val_acc {:.4} ({:.2} s, {:.2} ms/step)",
                config.model,
                config.optimizer.name(),
                config.epochs,
                row.train_loss,
                row.val_loss,
                row.val_acc,
                row.seconds,
                1e3 * row.seconds / row.steps as f64
            );
        }
        metrics.push(row);
        if let Some(dir) = out {
            crate::checkpoint::save(dir, config, &model, &optimizer, &metrics)?;
            crate::store::write_jsonl(&dir.join(crate::records::METRICS_FILE), &metrics)?;
        }
    }
    let spectrum = match config.measure.as_ref().filter(|m| m.spectrum_at_end) {
        Some(m) => Some(
            crate::measure::spectrum::<B>(
                &model,
                &splits.train,
                m.hessian_batches,
                m.hessian_batch_size,
                config.seed,
                device,
            )
            .context("the Hessian spectrum at the final weights")?,
        ),
        None => None,
    };
    let mut summary = RunSummary {
        run_id: config.run_id(),
        backend: backend_name.to_string(),
        final_metrics: metrics.last().cloned().context("a run trains at least one epoch")?,
        train_seconds: metrics.iter().map(|m| m.seconds).sum(),
        total_seconds: started.elapsed().as_secs_f64(),
        digests: None,
    };
    if let Some(dir) = out {
        crate::weights::save(&model, &dir.join(crate::records::WEIGHTS_FILE))?;
        if let Some(s) = &spectrum {
            crate::store::write_json(&dir.join(crate::records::SPECTRUM_FILE), s)?;
        }
        crate::records::seal(dir, &mut summary, metrics.len())?;
        // The run is complete: the checkpoint duplicates the weights.
        let _ = std::fs::remove_file(crate::checkpoint::path(dir));
    }
    Ok(TrainOutcome { model, metrics, summary, spectrum })
}

/// One epoch of optimiser steps; the row it returns has the training-side fields filled
/// (mean minibatch loss, update and gradient norms, κ, conditioning, steps, seconds).
fn train_epoch<B: AutodiffBackend>(
    config: &TrainConfig,
    train: &Dataset,
    mut model: Classifier<B>,
    optimizer: &mut AnyOptimizer<B>,
    epoch: usize,
    device: &B::Device,
    show_progress: bool,
) -> Result<(Classifier<B>, EpochMetrics), TrainError> {
    let batches = train.epoch_batches(config.batch_size, config.seed, epoch as u64 - 1, false);
    let bar = progress_bar(
        batches.len() as u64,
        format!("{} {} epoch {epoch}/{}", config.model, config.optimizer.name(), config.epochs),
        show_progress,
    );
    let t0 = Instant::now();
    let (mut loss_sum, mut update_sum, mut grad_sum, mut kappa_sum) = (0.0, 0.0, 0.0, None::<f64>);
    for (step, indices) in batches.iter().enumerate() {
        let batch = train.batch::<B>(indices, device);
        let (next, report) = match optimizer.step(model, &batch) {
            Ok(done) => done,
            Err(source @ slt_optimizers::OptimError::NonFiniteGradient { .. }) => {
                bar.abandon();
                return Err(TrainError::Diverged {
                    epoch,
                    step: step + 1,
                    optimizer: config.optimizer.name(),
                    lr: config.optimizer.lr(),
                    source,
                });
            }
            Err(err) => {
                return Err(anyhow::Error::from(err).context(format!("epoch {epoch}, step {}", step + 1)).into())
            }
        };
        model = next;
        loss_sum += report.loss * indices.len() as f64;
        update_sum += report.stats.update_norm;
        grad_sum += report.stats.grad_norm;
        if let Some(k) = report.kappa {
            *kappa_sum.get_or_insert(0.0) += k;
        }
        bar.inc(1);
        if step % 16 == 0 {
            bar.set_message(format!("loss {:.4}", report.loss));
        }
    }
    bar.finish_and_clear();
    let steps = batches.len().max(1);
    let row = EpochMetrics {
        epoch,
        train_loss: loss_sum / train.len() as f64,
        train_acc: None,
        val_loss: f64::NAN,
        val_acc: f64::NAN,
        update_norm_mean: update_sum / steps as f64,
        grad_norm_mean: grad_sum / steps as f64,
        kappa_mean: kappa_sum.map(|k| k / steps as f64),
        conditioning: optimizer.take_conditioning(),
        steps: batches.len(),
        seconds: t0.elapsed().as_secs_f64(),
        measurement: None,
    };
    Ok((model, row))
}

/// Validation loss and accuracy, and with `eval_train` the full-train-set loss and accuracy.
fn evaluate_epoch<B: AutodiffBackend>(
    config: &TrainConfig,
    splits: &Splits,
    model: &Classifier<B>,
    device: &B::Device,
) -> (f64, f64, Option<(f64, f64)>) {
    const EVAL_BATCH: usize = 1000;
    let valid = model.valid();
    let (val_loss, val_acc) = evaluate(&valid, &splits.val, EVAL_BATCH, device);
    let train = config.eval_train.then(|| evaluate(&valid, &splits.train, EVAL_BATCH, device));
    (val_loss, val_acc, train)
}

/// λ̂, WBIC and Tr(H) after `row`'s epoch, if the run measures it (the validated protocol
/// where it is due, with the calibration an earlier epoch chose).
fn measure_epoch<B: AutodiffBackend>(
    config: &TrainConfig,
    train: &Dataset,
    model: &Classifier<B>,
    earlier: &[EpochMetrics],
    row: &EpochMetrics,
    device: &B::Device,
    show_progress: bool,
) -> anyhow::Result<Option<crate::measure::Measurement>> {
    let epoch = row.epoch;
    let Some(mc) = config.measure.as_ref().filter(|mc| mc.measures(epoch, config.epochs)) else {
        return Ok(None);
    };
    let calibrated = earlier
        .iter()
        .rev()
        .find_map(|r| r.measurement.as_ref()?.validated.as_ref().map(|p| (p.sgld_step, p.localization)));
    let with_validated = mc
        .validated
        .as_ref()
        .is_some_and(|v| v.due(epoch, config.epochs, row.train_loss, earlier.iter().map(|r| r.train_loss)));
    let at = crate::measure::PointOfRun { seed: config.seed, epoch, calibrated, with_validated };
    let m = crate::measure::measure_point(model, train, mc, at, device, show_progress)
        .with_context(|| format!("measuring after epoch {epoch}"))?;
    if show_progress {
        let llc: Vec<String> = m
            .llc
            .iter()
            .map(|p| format!("λ̂(ε={:e}) {}", p.sgld_step, p.llc_mean.map_or("-".into(), |v| format!("{v:.2}"))))
            .collect();
        eprintln!(
            "    {} Tr(H) {:.2} ± {:.2} ‖g‖ {:.4} ({:.1} s)",
            llc.join(", "),
            m.trace_h,
            m.trace_h_se,
            m.grad_norm,
            m.seconds
        );
    }
    Ok(Some(m))
}
