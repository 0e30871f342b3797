#![warn(missing_docs)]
//! Singular learning theory estimators for any burn model: an SGLD sampler on the localised
//! tempered posterior, the local learning coefficient λ̂ (LLC) and the WBIC, with the
//! diagnostics that say when a run cannot be trusted, and step-size calibration.
//!
//! Semantics follow devinterp (Lau et al. 2023, "The local learning coefficient"), so numbers
//! are comparable: draws record L_B(w_t) before each update; λ̂_c = nβ·(mean draw − L(w*)); the
//! default nβ is m/ln m. Beyond devinterp: split R-hat and effective sample size, divergence
//! detection (a non-finite loss marks the chain diverged; it is excluded, never averaged in),
//! the chains' distance from w* against √(d/γ), λ̂ beside nβ·Tr(H)/(2γ) when Tr(H) is known,
//! and readable warnings.
//!
//! The sampler is generic over the backend, the model (`AutodiffModule`), the batch type and a
//! loss closure `(model, batch) -> mean loss`:
//!
//! ```
//! use burn::module::{Module, Param};
//! use burn::tensor::{backend::Backend, Tensor, TensorData};
//! use slt_estimators::{estimate_llc, FnSource, SgldConfig, Temperature};
//!
//! type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;
//!
//! // Linear regression y = w·x with d = 3 weights: a regular model, λ = d/2.
//! #[derive(Module, Debug)]
//! struct Linear<B: Backend> { w: Param<Tensor<B, 2>> }
//!
//! let device = Default::default();
//! let n = 2000;
//! let x: Vec<f64> = (0..n * 3).map(|i| ((i * 7919 % 1000) as f64 / 500.0) - 1.0).collect();
//! let x = Tensor::<B, 2>::from_data(TensorData::new(x, [n, 3]), &device);
//! let model = Linear::<B> { w: Param::from_tensor(Tensor::zeros([3, 1], &device)) }; // w* = true w = 0, y = 0
//! let source = FnSource::new(n, |idx: &[usize]| {
//!     let idx = Tensor::from_data(TensorData::new(idx.iter().map(|&i| i as i64).collect::<Vec<_>>(), [idx.len()]), &device);
//!     x.clone().select(0, idx)
//! });
//! let loss = |m: &Linear<B>, x: &Tensor<B, 2>| x.clone().matmul(m.w.val()).square().mean() * 0.5;
//! let config = SgldConfig { step_size: 1e-3, temperature: Temperature::Fixed(300.0), localization: 1.0,
//!     num_chains: 2, num_draws: 400, num_burnin: 100, batch_size: 200, ..Default::default() };
//! let estimate = estimate_llc(&model, &source, &loss, &config, None).unwrap();
//! let llc = estimate.llc_mean.unwrap();
//! assert!((llc - 1.5).abs() < 0.5, "{llc}"); // λ = d/2 = 1.5 (a loose check; see the tests)
//! for warning in &estimate.warnings { println!("warning: {warning}"); }
//! ```

pub mod calibrate;
pub mod config;
pub mod diagnostics;
pub mod llc;
pub mod observe;
pub mod sampler;
pub mod source;

pub use calibrate::{
    calibrate, calibrate_adaptive, AdaptiveCalibration, AdaptiveRow, Calibration, CalibrationRow, CalibrationSearch,
    PointOutcome, Recommendation,
};
pub use config::{InitLoss, Preconditioner, Residency, SgldConfig, Temperature};
pub use diagnostics::Warning;
pub use llc::{estimate_llc, ChainSummary, LlcEstimate};
pub use observe::{ChainObserver, StepView};
pub use sampler::ChainTrace;
#[cfg(feature = "burn-dataset")]
pub use source::DatasetSource;
pub use source::{BatchSource, FnSource};

/// Errors of the estimators.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EstimatorError {
    /// A setting is out of range.
    #[error("invalid SGLD setting {0}")]
    InvalidConfig(String),
    /// L(w*) is not finite: the model or the data is broken.
    #[error("the loss at w* is {0}: cannot estimate the LLC at a point with a non-finite loss")]
    NonFiniteInitLoss(f64),
}
