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
    if &stored != config {
        return Ok(None);
    }
    let metrics: Vec<EpochMetrics> = serde_json::from_str(meta.get("metrics").map(String::as_str).unwrap_or("[]"))
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
