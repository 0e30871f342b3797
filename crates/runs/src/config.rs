//! Run configurations: everything that determines a run's numbers, serialisable, and hashed
//! into the run id so that a finished run is recognised and never recomputed.

use serde::{Deserialize, Serialize};
use slt_datasets::{DatasetKind, SplitOptions};
use slt_models::ModelSpec;
use slt_optimizers::{KfacConfig, NgdConfig, OnlineNgdConfig, SgdConfig};

/// Which optimiser a run trains with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OptimizerConfig {
    /// SGD (momentum, Nesterov, weight decay).
    Sgd(SgdConfig),
    /// Exact minibatch-Fisher natural gradient descent.
    Ngd(NgdConfig),
    /// K-FAC with the same κ rule.
    Kfac(KfacConfig),
    /// The online natural gradient the paper's code ran (Povey et al. 2015).
    NgdOnline(OnlineNgdConfig),
}

impl OptimizerConfig {
    /// Short name (`sgd`, `ngd`).
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Ngd(_) => "ngd",
            OptimizerConfig::Kfac(_) => "kfac",
            OptimizerConfig::NgdOnline(_) => "ngd-online",
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Ngd(c) => c.lr,
            OptimizerConfig::Kfac(c) => c.lr,
            OptimizerConfig::NgdOnline(c) => c.lr,
        }
    }

    /// Sets the learning rate.
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            OptimizerConfig::Sgd(c) => c.lr = lr,
            OptimizerConfig::Ngd(c) => c.lr = lr,
            OptimizerConfig::Kfac(c) => c.lr = lr,
            OptimizerConfig::NgdOnline(c) => c.lr = lr,
        }
    }

    /// The same settings with `seed` for the label draws of the natural-gradient methods.
    pub fn with_seed(&self, seed: u64) -> Self {
        match self {
            OptimizerConfig::Ngd(c) => OptimizerConfig::Ngd(NgdConfig { seed, ..*c }),
            OptimizerConfig::Kfac(c) => OptimizerConfig::Kfac(KfacConfig { seed, ..*c }),
            other => other.clone(),
        }
    }

    /// Checks the ranges of every setting.
    pub fn validate(&self) -> Result<(), slt_optimizers::OptimError> {
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Ngd(c) => c.validate(),
            OptimizerConfig::Kfac(c) => c.validate(),
            OptimizerConfig::NgdOnline(c) => c.validate(),
        }
    }
}

/// A training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The dataset trained on.
    pub dataset: DatasetKind,
    /// The model trained (architecture; weights come from `seed` or `start_from`).
    pub model: ModelSpec,
    /// The optimiser and its hyperparameters.
    pub optimizer: OptimizerConfig,
    /// Number of passes over the training set (≥ 1).
    pub epochs: usize,
    /// Examples per minibatch (≥ 1).
    pub batch_size: usize,
    /// Master seed: initialisation, shuffling and subsets derive from it.
    pub seed: u64,
    /// Training subset / validation split.
    #[serde(default)]
    pub split: SplitOptions,
    /// Also evaluate loss and accuracy on the whole training set after each epoch (costs a
    /// forward pass over it); otherwise `train_loss` is the mean minibatch loss of the epoch.
    #[serde(default)]
    pub eval_train: bool,
    /// λ̂, WBIC and Tr(H) after chosen epochs (none if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<crate::measure::MeasureConfig>,
    /// Start from the final weights of this run (split runs) instead of a fresh
    /// initialisation; the optimiser starts fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from: Option<Box<TrainConfig>>,
}

impl TrainConfig {
    /// Checks ranges that would otherwise fail deep inside a run.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.epochs > 0, "epochs must be at least 1");
        anyhow::ensure!(self.batch_size > 0, "batch-size must be at least 1");
        self.optimizer.validate()?;
        if let Some(m) = &self.measure {
            m.validate()?;
        }
        if let Some(parent) = &self.start_from {
            anyhow::ensure!(parent.model == self.model, "start_from: the parent run trains another model");
            parent.validate()?;
        }
        Ok(())
    }

    /// A stable id: the first 16 hex digits of the SHA-256 of the canonical JSON config.
    pub fn run_id(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_vec(self).expect("configs serialise");
        hex::encode(&sha2::Sha256::digest(&json)[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrainConfig {
        TrainConfig {
            dataset: DatasetKind::Mnist,
            model: "mlp-2x256".parse().unwrap(),
            optimizer: OptimizerConfig::Sgd(SgdConfig::default()),
            epochs: 3,
            batch_size: 128,
            seed: 0,
            split: SplitOptions::default(),
            eval_train: false,
            measure: None,
            start_from: None,
        }
    }

    #[test]
    fn json_round_trip_and_stable_id() {
        let c = config();
        let json = serde_json::to_string_pretty(&c).unwrap();
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.run_id(), c.run_id());
        let other = TrainConfig { seed: 1, ..c.clone() };
        assert_ne!(other.run_id(), c.run_id());
    }

    #[test]
    fn malformed_configs_are_rejected_with_the_field() {
        let err = serde_json::from_str::<TrainConfig>(r#"{"dataset":"mnist","model":"mlp-x","optimizer":{"kind":"sgd","lr":0.1,"momentum":0,"nesterov":false,"weight_decay":0},"epochs":1,"batch_size":8,"seed":0}"#).unwrap_err();
        assert!(err.to_string().contains("unknown model 'mlp-x'"), "{err}");
        let err = serde_json::from_str::<TrainConfig>(r#"{"dataset":"cifar"}"#).unwrap_err();
        assert!(err.to_string().contains("cifar"), "{err}");
    }
}
