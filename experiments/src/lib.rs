//! The thin experiments layer: the training loop and its checkpoints, the measurements of a
//! trained classifier, weights files (safetensors), backend choice, and the reproduction driver
//! behind `cargo xtask reproduce-all`. What a run is and what it records is `slt-runs`'
//! (re-exported here); the verdicts and the report are `slt-report`'s.
//!
//! ```no_run
//! use slt_datasets::{resolve_data_dir, DatasetKind, RawSplits, SplitOptions};
//! use slt_experiments::{config::{OptimizerConfig, TrainConfig}, train::{train, TrainOptions}};
//! use slt_optimizers::SgdConfig;
//! type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;
//! let splits = RawSplits::load(DatasetKind::Mnist, &resolve_data_dir(None))?
//!     .split(&SplitOptions::default())?;
//! let config = TrainConfig {
//!     dataset: DatasetKind::Mnist,
//!     model: "mlp-2x256".parse()?,
//!     optimizer: OptimizerConfig::Sgd(SgdConfig { lr: 0.01, ..Default::default() }),
//!     epochs: 1, batch_size: 128, seed: 0,
//!     split: SplitOptions::default(), eval_train: false, measure: None, start_from: None,
//! };
//! let device = Default::default();
//! let outcome = train::<B>(&config, &splits, TrainOptions { show_progress: true, ..TrainOptions::new(&device, "ndarray") })?;
//! println!("val acc {}", outcome.summary.final_metrics.val_acc);
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod backend;
pub mod checkpoint;
pub mod measure;
pub mod optimizer;
pub mod plan;
pub mod reproduce;
pub mod train;
pub mod weights;

// The run data model lives in `slt-runs` (shared with `slt-report`, which judges the runs);
// re-exported so `slt_experiments::config::TrainConfig` and the like keep working.
pub use slt_runs::{config, profile, records, store};

pub use backend::BackendKind;
