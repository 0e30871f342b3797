//! What a run leaves in its folder, and the verified reading of it.
//!
//! A finished run's folder holds `config.json`, `metrics.jsonl` (one [`EpochMetrics`] row per
//! epoch), `weights.safetensors`, optionally `spectrum.json`, and last `summary.json`, which
//! seals the others: it records the number of epochs and the SHA-256 of every other file
//! ([`Digests`]). A diverged run leaves `diverged.json` instead, sealing its metrics the same
//! way. Reuse verifies the seal, so a truncated, edited or deleted file is never read as a
//! finished result: [`load_finished`] reports it as [`Stored::Damaged`] with the reason.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::TrainConfig;
use crate::measure::{Measurement, Spectrum};
use crate::profile::PlannedRun;
use crate::store;

/// The run's [`TrainConfig`], as JSON.
pub const CONFIG_FILE: &str = "config.json";
/// One [`EpochMetrics`] row per finished epoch, JSON lines.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The final weights, safetensors.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// The final weights' Hessian [`Spectrum`], when the run computes one.
pub const SPECTRUM_FILE: &str = "spectrum.json";
/// The [`RunSummary`] with the seal, written last by a finished run.
pub const SUMMARY_FILE: &str = "summary.json";
/// The marker a diverged run leaves in its folder.
pub const DIVERGED_FILE: &str = "diverged.json";

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
    pub measurement: Option<Measurement>,
}

/// What a finished run leaves in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's id, [`TrainConfig::run_id`] (also its folder's name).
    pub run_id: String,
    /// The backend it trained on (`flex`, `ndarray` or `wgpu`).
    pub backend: String,
    /// The metrics row of the last epoch.
    pub final_metrics: EpochMetrics,
    /// Training seconds summed over epochs.
    pub train_seconds: f64,
    /// Wall-clock seconds of the whole run, evaluation included.
    pub total_seconds: f64,
    /// The seal over the run's other files (absent only in summaries written before seals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<Digests>,
}

/// The seal of a run folder: how many epochs `metrics.jsonl` holds and the SHA-256 (hex) of each
/// file the run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// Number of rows of `metrics.jsonl` the seal covers.
    pub epochs: usize,
    /// SHA-256 of `metrics.jsonl`.
    pub metrics_sha256: String,
    /// Absent for a diverged run (it leaves no weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    /// SHA-256 of `spectrum.json`, if the run wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum_sha256: Option<String>,
}

/// What `diverged.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DivergedNote {
    /// What diverged and where (the training error's message).
    pub message: String,
    /// The seal of the metrics written before the run stopped (none if it wrote none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<Digests>,
}

/// A finished (or reused) run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run as the profile planned it (suite, label, configuration).
    pub planned: PlannedRun,
    /// `None` when the run diverged.
    pub summary: Option<RunSummary>,
    /// The epochs it finished (all of them unless it diverged).
    pub metrics: Vec<EpochMetrics>,
    /// Whether the record was read back from an earlier invocation's folder rather than run now.
    pub reused: bool,
    /// Why the run stopped early: training diverged (a result of the sweep, kept in
    /// `diverged.json`, never retried).
    pub diverged: Option<String>,
    /// The Hessian spectrum at the final weights, if the run computed one.
    pub spectrum: Option<Spectrum>,
}

/// What a run folder holds.
// Read once per run folder and unpacked at once: the record's size is not worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Stored {
    /// No finished (or diverged) run.
    Absent,
    /// A finished or diverged run whose files match its seal.
    Finished(RunRecord),
    /// A run marked finished whose files do not match its seal (or that has none).
    Damaged {
        /// The run folder.
        dir: PathBuf,
        /// Which file does not match, or why the seal could not be checked.
        reason: String,
    },
}

/// The SHA-256 of a file, hex.
pub fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The seal of the files `dir` holds now: `epochs` metrics rows and whichever of the weights and
/// the spectrum exist.
pub fn digests_of(dir: &Path, epochs: usize) -> anyhow::Result<Digests> {
    let optional = |name: &str| -> anyhow::Result<Option<String>> {
        let path = dir.join(name);
        path.exists().then(|| sha256_of(&path)).transpose()
    };
    Ok(Digests {
        epochs,
        metrics_sha256: sha256_of(&dir.join(METRICS_FILE))?,
        weights_sha256: optional(WEIGHTS_FILE)?,
        spectrum_sha256: optional(SPECTRUM_FILE)?,
    })
}

/// Writes `summary.json` with the seal of the files in `dir` (the last file a run writes).
pub fn seal(dir: &Path, summary: &mut RunSummary, epochs: usize) -> anyhow::Result<()> {
    summary.digests = Some(digests_of(dir, epochs)?);
    store::write_json(&dir.join(SUMMARY_FILE), summary)
}

/// Writes `diverged.json` with `message` and the seal of the metrics written so far.
pub fn mark_diverged(dir: &Path, message: &str) -> anyhow::Result<Vec<EpochMetrics>> {
    let metrics_path = dir.join(METRICS_FILE);
    let metrics: Vec<EpochMetrics> = if metrics_path.exists() { store::read_jsonl(&metrics_path)? } else { Vec::new() };
    let digests = if metrics_path.exists() { Some(digests_of(dir, metrics.len())?) } else { None };
    store::write_json(&dir.join(DIVERGED_FILE), &DivergedNote { message: message.to_string(), digests })?;
    Ok(metrics)
}

/// Why the files of `dir` do not match `seal` (`None`: they match).
fn seal_mismatch(dir: &Path, seal: &Digests, metrics: &[EpochMetrics]) -> anyhow::Result<Option<String>> {
    let now = digests_of(dir, metrics.len())?;
    let epochs_in_order = metrics.iter().enumerate().all(|(i, m)| m.epoch == i + 1);
    Ok(if now.epochs != seal.epochs || !epochs_in_order {
        Some(format!(
            "{METRICS_FILE} holds {} rows (epochs in order: {epochs_in_order}), the seal says {}",
            now.epochs, seal.epochs
        ))
    } else if now.metrics_sha256 != seal.metrics_sha256 {
        Some(format!("{METRICS_FILE} differs from the file the run wrote (SHA-256)"))
    } else if now.weights_sha256 != seal.weights_sha256 {
        Some(match now.weights_sha256 {
            None => format!("{WEIGHTS_FILE} is missing"),
            Some(_) => format!("{WEIGHTS_FILE} differs from the file the run wrote (SHA-256)"),
        })
    } else if now.spectrum_sha256 != seal.spectrum_sha256 {
        Some(format!("{SPECTRUM_FILE} is missing or differs from the file the run wrote"))
    } else {
        None
    })
}

/// Reads the run `planned` from its folder under `results`, verifying its seal. A folder whose
/// configuration differs from the plan's is an error (its run id says otherwise).
pub fn load_finished(planned: &PlannedRun, results: &Path) -> anyhow::Result<Stored> {
    let dir = planned.dir(results);
    let summary_path = dir.join(SUMMARY_FILE);
    let diverged_path = dir.join(DIVERGED_FILE);
    if !summary_path.exists() && !diverged_path.exists() {
        return Ok(Stored::Absent);
    }
    let damaged = |reason: String| Ok(Stored::Damaged { dir: dir.clone(), reason });
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.exists() {
        return damaged(format!("{CONFIG_FILE} is missing"));
    }
    let stored: TrainConfig = store::read_json(&config_path)?;
    anyhow::ensure!(
        stored == planned.config,
        "{}: holds a different configuration than its run id says; move it away",
        dir.display()
    );
    let metrics_path = dir.join(METRICS_FILE);
    let read_metrics = || -> Result<Vec<EpochMetrics>, String> {
        if !metrics_path.exists() {
            return Err(format!("{METRICS_FILE} is missing"));
        }
        store::read_jsonl(&metrics_path).map_err(|e| format!("{e:#}"))
    };
    let (summary, diverged, seal) = if summary_path.exists() {
        let summary: RunSummary = match store::read_json(&summary_path) {
            Ok(s) => s,
            Err(e) => return damaged(format!("{e:#}")),
        };
        let seal = summary.digests.clone();
        (Some(summary), None, seal)
    } else {
        let note: DivergedNote = match store::read_json(&diverged_path) {
            Ok(n) => n,
            Err(e) => return damaged(format!("{e:#}")),
        };
        if note.digests.is_none() && !metrics_path.exists() {
            // Diverged in its first epoch: nothing to verify.
            return Ok(Stored::Finished(RunRecord {
                planned: planned.clone(),
                summary: None,
                metrics: Vec::new(),
                reused: true,
                diverged: Some(note.message),
                spectrum: None,
            }));
        }
        (None, Some(note.message), note.digests)
    };
    let Some(seal) = seal else {
        return damaged("it has no seal (the SHA-256 of its files); it was written before seals".to_string());
    };
    let metrics = match read_metrics() {
        Ok(m) => m,
        Err(reason) => return damaged(reason),
    };
    if let Some(reason) = seal_mismatch(&dir, &seal, &metrics)? {
        return damaged(reason);
    }
    if let Some(s) = &summary {
        if metrics.last() != Some(&s.final_metrics) || metrics.len() != planned.config.epochs {
            return damaged(format!("{METRICS_FILE} does not end at the summary's final epoch"));
        }
    }
    let spectrum_path = dir.join(SPECTRUM_FILE);
    let spectrum = if spectrum_path.exists() { Some(store::read_json(&spectrum_path)?) } else { None };
    Ok(Stored::Finished(RunRecord { planned: planned.clone(), summary, metrics, reused: true, diverged, spectrum }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OptimizerConfig;
    use slt_datasets::{DatasetKind, SplitOptions};

    fn row(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_acc: None,
            val_loss: 0.5,
            val_acc: 0.9,
            update_norm_mean: 1.0,
            grad_norm_mean: 1.0,
            kappa_mean: None,
            conditioning: None,
            steps: 3,
            seconds: 0.1,
            measurement: None,
        }
    }

    /// A sealed, finished three-epoch run folder under `results`.
    fn finished_run(results: &Path) -> PlannedRun {
        let config = TrainConfig {
            dataset: DatasetKind::Mnist,
            model: "mlp-1x8".parse().unwrap(),
            optimizer: OptimizerConfig::Sgd(Default::default()),
            epochs: 3,
            batch_size: 8,
            seed: 0,
            split: SplitOptions::default(),
            eval_train: false,
            measure: None,
            start_from: None,
        };
        let planned = PlannedRun { suite: "s1-sgd-vs-ngd", label: "sgd".into(), config };
        let dir = planned.dir(results);
        let metrics: Vec<EpochMetrics> = (1..=3).map(row).collect();
        store::write_json(&dir.join(CONFIG_FILE), &planned.config).unwrap();
        store::write_jsonl(&dir.join(METRICS_FILE), &metrics).unwrap();
        store::write_atomic(&dir.join(WEIGHTS_FILE), b"weights").unwrap();
        let mut summary = RunSummary {
            run_id: planned.config.run_id(),
            backend: "flex".into(),
            final_metrics: metrics[2].clone(),
            train_seconds: 0.3,
            total_seconds: 0.4,
            digests: None,
        };
        seal(&dir, &mut summary, metrics.len()).unwrap();
        planned
    }

    fn damage_reason(results: &Path, planned: &PlannedRun) -> String {
        match load_finished(planned, results).unwrap() {
            Stored::Damaged { reason, .. } => reason,
            other => panic!("expected a damaged run, got {other:?}"),
        }
    }

    #[test]
    fn an_intact_run_is_reused() {
        let results = tempfile::tempdir().unwrap();
        let planned = finished_run(results.path());
        match load_finished(&planned, results.path()).unwrap() {
            Stored::Finished(r) => assert_eq!(r.metrics.len(), 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_kind_of_damage_is_caught() {
        let metrics_lines = |dir: &Path| -> Vec<String> {
            std::fs::read_to_string(dir.join(METRICS_FILE)).unwrap().lines().map(str::to_string).collect()
        };
        type Damage = fn(&Path, Vec<String>);
        let cases: [(&str, Damage, &str); 6] = [
            ("emptied metrics", |d, _| std::fs::write(d.join(METRICS_FILE), "").unwrap(), "rows"),
            (
                "metrics short of one line",
                |d, l| std::fs::write(d.join(METRICS_FILE), l[..2].join("\n") + "\n").unwrap(),
                "rows",
            ),
            (
                "a duplicated metrics line",
                |d, l| {
                    std::fs::write(d.join(METRICS_FILE), [l.clone(), vec![l[2].clone()]].concat().join("\n") + "\n")
                        .unwrap()
                },
                "rows",
            ),
            (
                "an edited metrics value",
                |d, l| std::fs::write(d.join(METRICS_FILE), l.join("\n").replace("0.9", "0.8") + "\n").unwrap(),
                "SHA-256",
            ),
            ("deleted weights", |d, _| std::fs::remove_file(d.join(WEIGHTS_FILE)).unwrap(), "missing"),
            ("replaced weights", |d, _| std::fs::write(d.join(WEIGHTS_FILE), b"other").unwrap(), "SHA-256"),
        ];
        for (what, damage, says) in cases {
            let results = tempfile::tempdir().unwrap();
            let planned = finished_run(results.path());
            let dir = planned.dir(results.path());
            damage(&dir, metrics_lines(&dir));
            let reason = damage_reason(results.path(), &planned);
            assert!(reason.contains(says), "{what}: {reason}");
        }
    }

    #[test]
    fn a_summary_without_a_seal_is_not_trusted() {
        let results = tempfile::tempdir().unwrap();
        let planned = finished_run(results.path());
        let dir = planned.dir(results.path());
        let mut summary: RunSummary = store::read_json(&dir.join(SUMMARY_FILE)).unwrap();
        summary.digests = None;
        store::write_json(&dir.join(SUMMARY_FILE), &summary).unwrap();
        assert!(damage_reason(results.path(), &planned).contains("no seal"));
    }

    #[test]
    fn a_diverged_run_is_sealed_too() {
        let results = tempfile::tempdir().unwrap();
        let planned = finished_run(results.path());
        let dir = planned.dir(results.path());
        std::fs::remove_file(dir.join(SUMMARY_FILE)).unwrap();
        let kept = mark_diverged(&dir, "training diverged at epoch 4").unwrap();
        assert_eq!(kept.len(), 3);
        assert!(
            matches!(load_finished(&planned, results.path()).unwrap(), Stored::Finished(r) if r.diverged.is_some())
        );
        std::fs::write(dir.join(METRICS_FILE), "").unwrap();
        assert!(damage_reason(results.path(), &planned).contains("rows"));
    }
}
