//! Per-epoch checkpoints, so that an interrupted run resumes from its last finished epoch and
//! ends bit-identical to an uninterrupted one (batches depend only on seed and epoch).
//!
//! `checkpoint.safetensors` holds the model's parameters, the optimiser's state (one f64 tensor
//! `optimizer.<name>` per entry of [`slt_optimizers::OptimizerState`], e.g. the velocity in
//! parameter-layout order) and, as metadata, the configuration and the metrics rows so far. It is written atomically after each epoch and is
//! the single source of truth on resume.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use safetensors::SafeTensors;
use slt_models::Classifier;

use crate::config::TrainConfig;
use crate::optimizer::AnyOptimizer;
use crate::records::EpochMetrics;
use crate::weights::{fill_model, named_tensors, read_tensor, write_file, NamedTensor};

const STATE_PREFIX: &str = "optimizer.";

/// The checkpoint file of a run directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}

/// Writes the state after `metrics.len()` epochs.
pub fn save<B: AutodiffBackend>(
    dir: &Path,
    config: &TrainConfig,
    model: &Classifier<B>,
    optimizer: &AnyOptimizer<B>,
    metrics: &[EpochMetrics],
) -> anyhow::Result<()> {
    let mut tensors = named_tensors(model);
    for (name, values) in optimizer.export_state(model) {
        tensors.push(NamedTensor::from_f64_exact(&format!("{STATE_PREFIX}{name}"), vec![values.len()], &values));
    }
    let mut meta = HashMap::new();
    meta.insert("config".to_string(), serde_json::to_string(config)?);
    meta.insert("metrics".to_string(), serde_json::to_string(metrics)?);
    write_file(&path(dir), &tensors, Some(meta))
}

/// A resumable state.
pub struct Resumed<B: AutodiffBackend> {
    pub model: Classifier<B>,
    pub optimizer: AnyOptimizer<B>,
    pub metrics: Vec<EpochMetrics>,
}

/// Loads the checkpoint of `dir` if it exists and belongs to `config`; `None` otherwise.
pub fn load<B: AutodiffBackend>(
    dir: &Path,
    config: &TrainConfig,
    fresh_model: Classifier<B>,
    mut optimizer: AnyOptimizer<B>,
) -> anyhow::Result<Option<Resumed<B>>> {
    let file = path(dir);
    if !file.exists() {
        return Ok(None);
    }
    let buffer = crate::weights::read_file(&file)?;
    let (_, header) = SafeTensors::read_metadata(&buffer)?;
    let meta = header.metadata().clone().unwrap_or_default();
    let stored: TrainConfig = serde_json::from_str(meta.get("config").map(String::as_str).unwrap_or("null"))
        .with_context(|| format!("{}: checkpoint without a valid config", file.display()))?;
    let metrics = meta.get("metrics").map(String::as_str).unwrap_or("[]");
    if &stored != config {
        // Discarded whatever its state: its metrics are read only to say how much is lost.
        let epochs = serde_json::from_str::<Vec<serde_json::Value>>(metrics)
            .map_or_else(|_| "an unreadable number of".to_string(), |rows| rows.len().to_string());
        eprintln!(
            "{}: the checkpoint after {epochs} epoch(s) belongs to another configuration ({}); discarding it and \
             starting at epoch 1",
            file.display(),
            config_changes(&stored, config).join(", ")
        );
        return Ok(None);
    }
    let metrics: Vec<EpochMetrics> = serde_json::from_str(metrics)
        .with_context(|| format!("{}: checkpoint without valid metrics", file.display()))?;
    let tensors = SafeTensors::deserialize(&buffer)?;
    let model = fill_model(fresh_model, &tensors, &file)?;
    let mut state = HashMap::new();
    for name in tensors.names() {
        if let Some(key) = name.strip_prefix(STATE_PREFIX) {
            let len = tensors.tensor(name)?.shape().iter().product::<usize>();
            state.insert(key.to_string(), read_tensor(&tensors, &file, name, &[len])?);
        }
    }
    optimizer.import_state(&model, &state).with_context(|| format!("{}: optimiser state", file.display()))?;
    Ok(Some(Resumed { model, optimizer, metrics }))
}

/// The settings that differ between two configurations, as `key: old → new` (dotted paths into
/// the configuration's JSON form), for saying what a restart with other flags discards.
pub fn config_changes(old: &TrainConfig, new: &TrainConfig) -> Vec<String> {
    fn walk(path: &str, old: &serde_json::Value, new: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value;
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    walk(&child, a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null), out);
                }
            }
            (a, b) if a != b => out.push(format!("{path}: {a} → {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let (old, new) = (serde_json::to_value(old), serde_json::to_value(new));
    match (old, new) {
        (Ok(old), Ok(new)) => walk("", &old, &new, &mut out),
        _ => out.push("the configurations cannot be compared".into()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_changes_name_each_changed_setting_with_both_values() {
        let old = TrainConfig {
            dataset: slt_datasets::DatasetKind::Mnist,
            model: "mlp-1x16".parse().unwrap(),
            optimizer: crate::config::OptimizerConfig::Sgd(slt_optimizers::SgdConfig::default()),
            epochs: 3,
            batch_size: 128,
            seed: 0,
            split: Default::default(),
            eval_train: false,
            measure: None,
            start_from: None,
        };
        assert!(config_changes(&old, &old).is_empty());
        let mut new = old.clone();
        new.seed = 7;
        new.epochs = 5;
        new.optimizer = crate::config::OptimizerConfig::Sgd(slt_optimizers::SgdConfig {
            lr: 0.5,
            ..slt_optimizers::SgdConfig::default()
        });
        let changes = config_changes(&old, &new);
        assert_eq!(changes, vec!["epochs: 3 → 5", "optimizer.lr: 0.01 → 0.5", "seed: 0 → 7"]);
    }
}
