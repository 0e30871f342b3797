#![warn(missing_docs)]
//! The models of the slt toolkit, written so that burn can differentiate them twice (every op
//! has a second derivative under nested autodiff): [`Mlp`] (784 → \[width\] × depth → 10, ReLU),
//! [`LeNet5`] with optional extra convolutions, the building blocks in [`layers`], the categorical negative
//! log-likelihood in [`loss`], and model names (`mlp-2x256`, `lenet5-e1`) in [`spec`].
//!
//! ```
//! use slt_models::{ModelSpec, loss::cross_entropy};
//! use burn::tensor::Tensor;
//! type B = burn_ndarray::NdArray<f32>;
//! let device = Default::default();
//! let spec: ModelSpec = "mlp-2x256".parse().unwrap();
//! let model = spec.init::<B>(0, &device);
//! assert_eq!(slt_core::params::num_params(&model), 269_322);
//! let x = Tensor::<B, 2>::zeros([4, 784], &device);
//! let y = Tensor::<B, 2>::ones([4, 10], &device) / 10.0; // soft labels work too
//! let loss = cross_entropy(model.forward(x), y);
//! assert!(loss.into_scalar().is_finite());
//! ```

pub mod layers;
pub mod lenet;
pub mod loss;
pub mod mlp;
pub mod spec;
pub mod toy;

pub use lenet::LeNet5;
pub use mlp::Mlp;
pub use spec::{Classifier, ModelSpec, UnknownModel, CLASSES, INPUTS};
