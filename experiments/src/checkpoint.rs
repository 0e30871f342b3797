//! Per-epoch checkpoints, so that an interrupted run resumes from its last finished epoch and
//! ends bit-identical to an uninterrupted one (batches depend only on seed and epoch).
//!
//! `checkpoint.safetensors` holds the model's parameters, the optimiser's state
//! (`optimizer.velocity`, flattened in parameter-layout order) and, as metadata, the
//! configuration and the metrics rows so far. It is written atomically after each epoch and is
//! the single source of truth on resume.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use safetensors::SafeTensors;
use slt_models::Classifier;
use slt_optimizers::Sgd;

use crate::config::TrainConfig;
use crate::train::EpochMetrics;
use crate::weights::{fill_model, named_tensors, read_tensor, write_file, NamedTensor};

const VELOCITY: &str = "optimizer.velocity";

/// The checkpoint file of a run directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}

/// Writes the state after `metrics.len()` epochs.
pub fn save<B: AutodiffBackend>(
    dir: &Path,
    config: &TrainConfig,
    model: &Classifier<B>,
    optimizer: &Sgd<B>,
    metrics: &[EpochMetrics],
) -> anyhow::Result<()> {
    let mut tensors = named_tensors(model);
    let velocity = optimizer.velocity_to_vec(model);
    tensors.push(NamedTensor::from_f64(VELOCITY, vec![velocity.len()], &velocity));
    let mut meta = HashMap::new();
    meta.insert("config".to_string(), serde_json::to_string(config)?);
    meta.insert("metrics".to_string(), serde_json::to_string(metrics)?);
    write_file(&path(dir), &tensors, Some(meta))
}

/// A resumable state.
pub struct Resumed<B: AutodiffBackend> {
    pub model: Classifier<B>,
    pub optimizer: Sgd<B>,
    pub metrics: Vec<EpochMetrics>,
}

/// Loads the checkpoint of `dir` if it exists and belongs to `config`; `None` otherwise.
pub fn load<B: AutodiffBackend>(
    dir: &Path,
    config: &TrainConfig,
    fresh_model: Classifier<B>,
    mut optimizer: Sgd<B>,
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
    let d = slt_core::params::num_params(&model);
    let velocity = read_tensor(&tensors, &file, VELOCITY, &[d])?;
    optimizer.load_velocity(&model, &velocity)?;
    Ok(Some(Resumed { model, optimizer, metrics }))
}
