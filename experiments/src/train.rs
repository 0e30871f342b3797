//! The training loop: seeded batches, one optimiser step per batch, evaluation after every
//! epoch, one metrics row per epoch, weights at the end.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use slt_datasets::{Dataset, Splits};
use slt_models::loss::cross_entropy;
use slt_models::Classifier;

use crate::config::TrainConfig;
use crate::optimizer::AnyOptimizer;

/// One row of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch index.
    pub epoch: usize,
    /// Mean minibatch loss over the epoch (or the full-train-set loss with `eval_train`).
    pub train_loss: f64,
    /// Full-train-set accuracy (only with `eval_train`).
    pub train_acc: Option<f64>,
    /// Validation loss (mean NLL).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_acc: f64,
    /// Mean over the epoch's steps of the update-direction norm ‖d‖.
    pub update_norm_mean: f64,
    /// Mean over the epoch's steps of the minibatch gradient norm ‖g‖.
    pub grad_norm_mean: f64,
    /// Mean over the epoch's steps of the damping κ (natural-gradient methods).
    #[serde(default)]
    pub kappa_mean: Option<f64>,
    /// The online NGD's conditioning over the epoch's estimate updates (largest |RRᵀ − I|,
    /// unresolved eigenvalues of Z_t); other optimisers have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditioning: Option<slt_optimizers::Conditioning>,
    /// Optimiser steps taken in the epoch.
    pub steps: usize,
    /// Wall-clock seconds of the epoch's training steps (data assembly included, evaluation
    /// excluded).
    pub seconds: f64,
    /// λ̂, WBIC, Tr(H) at the end of the epoch, if the run measures this epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<crate::measure::Measurement>,
}

/// What a finished run leaves in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub backend: String,
    pub final_metrics: EpochMetrics,
    /// Training seconds summed over epochs.
    pub train_seconds: f64,
    /// Wall-clock seconds of the whole run, evaluation included.
    pub total_seconds: f64,
}

/// A trained model and its record.
pub struct TrainOutcome<B: AutodiffBackend> {
    pub model: Classifier<B>,
    pub metrics: Vec<EpochMetrics>,
    pub summary: RunSummary,
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
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps {per_sec:>12} ETA {eta:>4} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// Trains `config` on `splits`. With `out`, writes `config.json` first, after every epoch a
/// `metrics.jsonl` row and a checkpoint, then `weights.safetensors` and `summary.json` (all
/// atomically). If `out` holds a checkpoint of the same configuration, training resumes after
/// its last finished epoch and ends exactly as an uninterrupted run would.
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    splits: &Splits,
    device: &B::Device,
    backend_name: &str,
    out: Option<&Path>,
    show_progress: bool,
) -> anyhow::Result<TrainOutcome<B>> {
    train_from(config, splits, device, backend_name, out, show_progress, None)
}

/// [`train`] starting from `initial` (the final model of `config.start_from`, required when
/// that is set) instead of a fresh initialisation.
pub fn train_from<B: AutodiffBackend>(
    config: &TrainConfig,
    splits: &Splits,
    device: &B::Device,
    backend_name: &str,
    out: Option<&Path>,
    show_progress: bool,
    initial: Option<Classifier<B>>,
) -> anyhow::Result<TrainOutcome<B>> {
    config.validate()?;
    anyhow::ensure!(
        config.start_from.is_some() == initial.is_some(),
        "a run with start_from needs the parent's final model, and only such a run takes one"
    );
    let started = Instant::now();
    let run_id = config.run_id();
    if let Some(dir) = out {
        crate::store::write_json(&dir.join("config.json"), config)?;
    }
    let new_optimizer = || AnyOptimizer::<B>::new(&config.optimizer);
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
    let train = &splits.train;
    let eval_batch = 1000;
    let mut train_seconds: f64 = metrics.iter().map(|m| m.seconds).sum();
    for epoch in metrics.len() + 1..=config.epochs {
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
                Err(err @ slt_optimizers::OptimError::NonFiniteGradient { .. }) => {
                    bar.abandon();
                    bail!(
                        "training diverged at epoch {epoch}, step {} ({}, lr {}): {err}",
                        step + 1,
                        config.optimizer.name(),
                        config.optimizer.lr()
                    );
                }
                Err(err) => return Err(err).with_context(|| format!("epoch {epoch}, step {}", step + 1)),
            };
            model = next;
            let loss_value = report.loss;
            loss_sum += loss_value * indices.len() as f64;
            update_sum += report.stats.update_norm;
            grad_sum += report.stats.grad_norm;
            if let Some(k) = report.kappa {
                *kappa_sum.get_or_insert(0.0) += k;
            }
            bar.inc(1);
            if step % 16 == 0 {
                bar.set_message(format!("loss {loss_value:.4}"));
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        train_seconds += seconds;
        bar.finish_and_clear();
        let steps = batches.len();
        let valid = model.valid();
        let inner_device = device.clone();
        let (val_loss, val_acc) = evaluate(&valid, &splits.val, eval_batch, &inner_device);
        let (train_loss, train_acc) = if config.eval_train {
            let (l, a) = evaluate(&valid, train, eval_batch, &inner_device);
            (l, Some(a))
        } else {
            (loss_sum / train.len() as f64, None)
        };
        let mut row = EpochMetrics {
            epoch,
            train_loss,
            train_acc,
            val_loss,
            val_acc,
            update_norm_mean: update_sum / steps as f64,
            grad_norm_mean: grad_sum / steps as f64,
            kappa_mean: kappa_sum.map(|k| k / steps as f64),
            conditioning: optimizer.take_conditioning(),
            steps,
            seconds,
            measurement: None,
        };
        if let Some(mc) = config.measure.as_ref().filter(|mc| mc.measures(epoch, config.epochs)) {
            // The validated protocol's calibration, if an earlier epoch of this run chose one.
            let calibrated = metrics
                .iter()
                .rev()
                .find_map(|r: &EpochMetrics| r.measurement.as_ref()?.validated.as_ref().map(|p| (p.sgld_step, p.localization)));
            let with_validated = mc
                .validated
                .as_ref()
                .is_some_and(|v| v.due(epoch, config.epochs, row.train_loss, metrics.iter().map(|r: &EpochMetrics| r.train_loss)));
            let m = crate::measure::measure_point(&model, train, mc, config.seed, epoch, calibrated, with_validated, device, show_progress)
                .with_context(|| format!("measuring after epoch {epoch}"))?;
            if show_progress {
                let llc: Vec<String> = m
                    .llc
                    .iter()
                    .map(|p| format!("λ̂(ε={:e}) {}", p.sgld_step, p.llc_mean.map_or("-".into(), |v| format!("{v:.2}"))))
                    .collect();
                eprintln!("    {} Tr(H) {:.2} ± {:.2} ‖g‖ {:.4} ({:.1} s)", llc.join(", "), m.trace_h, m.trace_h_se, m.grad_norm, m.seconds);
            }
            row.measurement = Some(m);
        }
        if show_progress {
            eprintln!(
                "{} {} epoch {epoch}/{}: train_loss {:.4} val_loss {:.4} val_acc {:.4} ({:.2} s, {:.2} ms/step)",
                config.model,
                config.optimizer.name(),
                config.epochs,
                row.train_loss,
                row.val_loss,
                row.val_acc,
                seconds,
                1e3 * seconds / steps as f64
            );
        }
        metrics.push(row);
        if let Some(dir) = out {
            crate::checkpoint::save(dir, config, &model, &optimizer, &metrics)?;
            crate::store::write_jsonl(&dir.join("metrics.jsonl"), &metrics)?;
        }
    }
    let summary = RunSummary {
        run_id,
        backend: backend_name.to_string(),
        final_metrics: metrics.last().cloned().expect("at least one epoch"),
        train_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(dir) = out {
        crate::weights::save(&model, &dir.join("weights.safetensors"))?;
        crate::store::write_json(&dir.join("summary.json"), &summary)?;
        // The run is complete: the checkpoint duplicates the weights.
        let _ = std::fs::remove_file(crate::checkpoint::path(dir));
    }
    Ok(TrainOutcome {
        model,
        metrics,
        summary,
    })
}
