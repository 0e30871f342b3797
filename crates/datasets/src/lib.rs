#![warn(missing_docs)]
//! MNIST-family data for the slt toolkit.
//!
//! * [`idx`]: IDX parsing (gzip or raw) with validation of magic numbers, dimensions, payload
//!   length and label range;
//! * [`manifest`] and [`download`]: SHA-256 manifest, mirrors in order, `--from` a directory or
//!   URL base, atomic writes;
//! * [`dataset`]: verified loading, normalisation `(x/255 − mean)/std`, subsets and validation
//!   splits by seed;
//! * [`batch`]: deterministic shuffling and batching into burn tensors.
//!
//! Every error names the file it is about ([`DataError`]).
//!
//! ```no_run
//! use slt_datasets::{resolve_data_dir, DatasetKind, RawSplits, SplitOptions};
//! type B = burn_ndarray::NdArray<f32>;
//! let data = RawSplits::load(DatasetKind::Mnist, &resolve_data_dir(None))?
//!     .split(&SplitOptions::default())?;
//! assert_eq!(data.train.len(), 60_000);
//! let first = &data.train.epoch_batches(128, 0, 0, false)[0];
//! let batch = data.train.batch::<B>(first, &Default::default());
//! assert_eq!(batch.inputs.dims(), [128, 784]);
//! # Ok::<(), slt_datasets::DataError>(())
//! ```

pub mod batch;
pub mod dataset;
pub mod download;
pub mod error;
pub mod idx;
pub mod manifest;
pub mod testing;

pub use batch::{epoch_order, ClassificationBatch, DeviceDataset};
pub use dataset::{resolve_data_dir, Dataset, DatasetKind, RawSplits, SplitOptions, Splits, IMAGE_SIDE, NUM_CLASSES};
pub use download::{fetch_dataset, FileStatus, Source};
pub use error::DataError;
pub use manifest::Manifest;
