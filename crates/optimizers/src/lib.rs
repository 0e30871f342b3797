#![warn(missing_docs)]
//! Optimisers for any burn module, each reporting the norm of the update it applies.
//!
//! [`Sgd`] — momentum, Nesterov, weight decay, PyTorch's semantics — and the natural-gradient
//! family: [`Ngd`] (exact minibatch Fisher via the push-through identity), the paper's online
//! NGD ([`online`]), and [`Kfac`] (Kronecker-factored Fisher), all damped by κ = (α/d)·max(tr F, ε).
//!
//! ```
//! use burn::tensor::Tensor;
//! use slt_models::{loss::cross_entropy, ModelSpec};
//! use slt_optimizers::{Sgd, SgdConfig};
//! type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;
//! let device = Default::default();
//! let model = "mlp-1x16".parse::<ModelSpec>().unwrap().init::<B>(0, &device);
//! let x = Tensor::<B, 2>::ones([8, 784], &device);
//! let y = Tensor::<B, 2>::zeros([8, 10], &device).slice_fill([0..8, 3..4], 1.0);
//! let mut sgd = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, ..Default::default() }).unwrap();
//! let before = cross_entropy(model.forward(x.clone()), y.clone()).into_scalar();
//! let grads = cross_entropy(model.forward(x.clone()), y.clone()).backward();
//! let (model, stats) = sgd.step(model, &grads).unwrap();
//! assert!(stats.update_norm > 0.0);
//! let after = cross_entropy(model.forward(x), y).into_scalar();
//! assert!(after < before);
//! ```

pub mod kfac;
pub mod ngd;
pub mod sgd;
pub mod taps;

pub use kfac::{Kfac, KfacConfig, KfacGradient, KfacStats};
pub use ngd::{FisherKind, NaturalGradient, Ngd, NgdConfig, NgdStats};
pub use sgd::{Sgd, SgdConfig};
pub mod online;
pub use online::{Conditioning, EigenPrecision, OnlineNgd, OnlineNgdConfig};

/// What an optimiser step reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// ‖d‖: norm of the direction the step moves along before the learning rate is applied
    /// (‖g‖ for plain SGD, the momentum/Nesterov direction otherwise; ‖F_s⁻¹g‖ for NGD).
    pub update_norm: f64,
    /// ‖g‖: norm of the raw minibatch gradient.
    pub grad_norm: f64,
}

/// An optimiser's internal state as named flat `f64` vectors, for checkpoints: with the
/// model's weights this is everything needed to resume training bit-identically. Vectors that
/// follow the parameter layout use [`slt_core::ParamLayout::of`]`(model)` order.
pub trait OptimizerState<B: burn::tensor::backend::AutodiffBackend> {
    /// The state after the steps taken so far.
    fn export_state<M: burn::module::AutodiffModule<B>>(&self, model: &M) -> Vec<(String, Vec<f64>)>;
    /// Restores a state written by [`OptimizerState::export_state`] for the same model layout
    /// and configuration; a missing or mis-sized entry is an [`OptimError::InvalidState`].
    fn import_state<M: burn::module::AutodiffModule<B>>(
        &mut self,
        model: &M,
        state: &std::collections::HashMap<String, Vec<f64>>,
    ) -> Result<(), OptimError>;
}

/// Errors of the optimisers.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OptimError {
    /// A hyperparameter is out of range.
    #[error("invalid optimiser setting: {0}")]
    InvalidConfig(String),
    /// A checkpointed state does not fit this optimiser or model.
    #[error("optimiser state does not fit: {0}")]
    InvalidState(String),
    /// The model cannot be handled by a curvature method (a parameter outside the recorded
    /// layers, shared weights, grouped convolutions).
    #[error("unsupported model: {0}")]
    UnsupportedModel(String),
    /// The damped Fisher F + κI is singular (κ = 0).
    #[error("singular Fisher: {0}")]
    SingularFisher(String),
    /// The gradient holds NaN or ±∞; the model was left unchanged.
    #[error(
        "non-finite gradient (‖g‖ = {grad_norm}); the step was not applied — lower the learning rate or check the loss"
    )]
    NonFiniteGradient {
        /// The Euclidean norm of the gradient (NaN or ±∞).
        grad_norm: f64,
    },
}
