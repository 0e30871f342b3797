//! The thin experiments layer: run configurations, the training loop, result files
//! (JSON, JSON lines, safetensors), backend choice, and the reproduction driver behind
//! `cargo xtask reproduce-all`.
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
pub mod config;
pub mod measure;
pub mod optimizer;
pub mod profile;
pub mod records;
pub mod report;
pub mod reproduce;
pub mod store;
pub mod train;
pub mod verdict;
pub mod weights;

pub use backend::BackendKind;
