//! Typed command-line values shared by the subcommands: every enumerated flag is a `ValueEnum`
//! (so `--help` lists its values and an unknown value is refused by name), sizes are parsed as
//! positive integers, and memory estimates refuse a run that cannot fit before any work starts.

use std::path::PathBuf;

use anyhow::Context;
use slt_datasets::DatasetKind;
use slt_experiments::BackendKind;
use slt_models::ModelSpec;

/// `--dataset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetArg {
    Mnist,
    FashionMnist,
}

impl From<DatasetArg> for DatasetKind {
    fn from(d: DatasetArg) -> Self {
        match d {
            DatasetArg::Mnist => DatasetKind::Mnist,
            DatasetArg::FashionMnist => DatasetKind::FashionMnist,
        }
    }
}

/// `--backend`: the default is the fastest compiled CPU backend (flex).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// burn-ndarray (CPU).
    Ndarray,
    /// burn-flex (CPU, the default).
    Flex,
    /// burn-wgpu (GPU through Vulkan/Metal/DX12; needs `--features wgpu`).
    Wgpu,
}

/// The backend `--backend` names, or the default compiled one; an error if it is not compiled in.
pub fn backend(flag: Option<BackendArg>) -> anyhow::Result<BackendKind> {
    match flag {
        None => BackendKind::default_compiled(),
        Some(b) => {
            let name = match b {
                BackendArg::Ndarray => "ndarray",
                BackendArg::Flex => "flex",
                BackendArg::Wgpu => "wgpu",
            };
            name.parse().context("--backend")
        }
    }
}

/// A strictly positive count (`--epochs`, `--batch-size`, `--chains`, ...).
pub fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a positive integer: {e}")),
    }
}

/// A finite, strictly positive real (`--lr`, `--sgld-step`, `--gamma`, ...).
pub fn positive_real(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be finite and positive, got {v}")),
        Err(e) => Err(format!("expected a number: {e}")),
    }
}

/// A finite, non-negative real (`--momentum`, `--weight-decay`).
pub fn non_negative_real(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be finite and non-negative, got {v}")),
        Err(e) => Err(format!("expected a number: {e}")),
    }
}

/// What `llc` and `hessian` share: saved weights, the model they belong to and its data.
#[derive(clap::Args, Clone, Debug)]
pub struct WeightsArgs {
    /// Weights written by `train` (weights.safetensors); they must hold exactly the model's
    /// tensors.
    #[arg(long)]
    pub weights: PathBuf,
    /// The model the weights belong to: mlp-<depth>x<width> (e.g. mlp-2x256), lenet5 or
    /// lenet5-e<k>.
    #[arg(long)]
    pub model: ModelSpec,
    #[arg(long, value_enum, default_value_t = DatasetArg::Mnist)]
    pub dataset: DatasetArg,
    /// Use only this many training examples (chosen by --seed), as the run did.
    #[arg(long, value_parser = positive)]
    pub train_subset: Option<usize>,
    /// Seed of the data order, the probes and the chains.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// Data directory (default: $SLT_DATA_DIR, else <repo>/datasets).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Bytes of memory available to this process, if the OS says (Linux: MemAvailable).
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses work whose memory estimate exceeds what is available, naming the flags involved.
pub fn ensure_fits(what: &str, bytes: f64) -> anyhow::Result<()> {
    let available = available_memory().map_or(64.0 * (1u64 << 30) as f64, |b| b as f64);
    anyhow::ensure!(
        bytes <= available,
        "{what} needs about {:.1} GiB of memory, more than the {:.1} GiB available",
        bytes / (1u64 << 30) as f64,
        available / (1u64 << 30) as f64
    );
    Ok(())
}

/// Memory of training `model` (weights, gradients, optimiser state and the autodiff graph,
/// ≈ 8 copies of the parameters in f32).
pub fn ensure_model_fits(model: ModelSpec) -> anyhow::Result<()> {
    ensure_fits(&format!("--model {model} ({} parameters)", model.num_params()), 32.0 * model.num_params() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_refuse_zero_negative_and_non_finite() {
        assert!(positive("0").is_err());
        assert!(positive("-1").is_err());
        assert_eq!(positive("3"), Ok(3));
        assert!(positive_real("0").is_err());
        assert!(positive_real("nan").is_err());
        assert!(positive_real("inf").is_err());
        assert!(non_negative_real("-0.1").is_err());
        assert_eq!(non_negative_real("0"), Ok(0.0));
    }

    #[test]
    fn a_model_that_cannot_fit_is_refused_with_its_estimate() {
        let huge: ModelSpec = "mlp-1x1000000000".parse().unwrap();
        let err = ensure_model_fits(huge).unwrap_err().to_string();
        assert!(err.contains("GiB") && err.contains("mlp-1x1000000000"), "{err}");
        assert!(ensure_model_fits("mlp-2x256".parse().unwrap()).is_ok());
    }
}
