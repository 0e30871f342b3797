#![warn(missing_docs)]
//! Curvature of the loss of **any** burn model: Hessian-vector products, trace, extreme
//! eigenvalues and spectral density (the algorithms of PyHessian, Yao et al. 2020).
//!
//! * [`SymmetricOperator`]: the operator v ↦ Av all algorithms use. Implemented by
//!   [`PearlmutterHvp`] (the R-operator on the plain backend, for models written as a chain
//!   over `slt_core::layer_ops::LayerOps`: exact, the forward and first backward recorded once,
//!   the fastest), by [`ExactHvp`] (double backward on `Autodiff<Autodiff<F>>`: exact), by
//!   [`FiniteDifferenceHvp`] (central differences of gradients on any autodiff backend, for
//!   models whose ops burn cannot differentiate twice), by [`AutoHvp`] (exact where burn can
//!   differentiate the model twice, otherwise central differences — for models built from
//!   burn's own `nn::Linear` and pooling layers; the [`auto`] module lists which ops and why),
//!   by [`GaussNewton`] (the generalised
//!   Gauss–Newton matrix, which for softmax cross-entropy is the true Fisher, and through
//!   [`GaussNewton::empirical_fisher`] the empirical or sampled Fisher), by
//!   [`KroneckerFactored`] (K-FAC's block-diagonal A ⊗ G approximation, from the factors
//!   `slt_optimizers::Kfac` keeps) and by [`SymmetricMatrix`]. [`hessian_trace`] and
//!   [`top_eigenvalues`] are the one-call Tr(H) and top-k spectrum.
//!   The loss is L(w) = Σ_b ω_b L_b(w) over a fixed [`EvalSet`] of batches (the paper: 10
//!   batches of 128), with any loss closure `Fn(&model, &batch) -> Tensor<B, 1>`.
//! * [`trace`]: Hutchinson with Rademacher probes (standard error, relative-tolerance stop) and
//!   Hutch++.
//! * [`eigen`]: top-k eigenvalues by power iteration with deflation and by Lanczos with full
//!   reorthogonalisation.
//! * [`density`]: spectral density by stochastic Lanczos quadrature with Gaussian broadening.
//! * [`dense`]: the dense Hessian of a small model (≤ 2000 parameters) and its exact
//!   spectrum, the oracle of the tests.
//!
//! The Hessian of L(w) = ½ Σᵢ aᵢ wᵢ² is diag(a):
//!
//! ```
//! use burn::module::{Module, Param};
//! use burn::tensor::{backend::Backend, Tensor};
//! use slt_hessian::{eigen, trace, EvalSet, ExactHvp, SymmetricOperator};
//!
//! #[derive(Module, Debug)]
//! struct Weights<B: Backend> {
//!     w: Param<Tensor<B, 1>>,
//! }
//!
//! type F = burn_ndarray::NdArray<f64>;
//! type Inner = burn_autodiff::Autodiff<F>; // parameters tracked here for the 2nd backward
//! type Outer = burn_autodiff::Autodiff<Inner>; // the model and the data live here
//! let device = Default::default();
//! let model = Weights::<Inner> { w: Param::from_tensor(Tensor::from_floats([1.0, -2.0, 0.5], &device)) };
//! let a = Tensor::<Outer, 1>::from_floats([3.0, 2.0, 1.0], &device); // one "batch"
//! let loss = |m: &Weights<Outer>, a: &Tensor<Outer, 1>| (m.w.val().powi_scalar(2) * a.clone()).sum() * 0.5;
//!
//! let h = ExactHvp::<Outer, Weights<Outer>, _, _>::new(model, EvalSet::uniform(vec![a]).unwrap(), loss).unwrap();
//! assert_eq!(h.apply(&[1.0, 1.0, 1.0]).unwrap(), vec![3.0, 2.0, 1.0]);
//! assert_eq!(h.gradient().unwrap(), vec![3.0, -4.0, 0.5]);
//!
//! let t = trace::hutchinson(&h, &trace::HutchinsonOptions::default()).unwrap();
//! assert!((t.trace - 6.0).abs() < 1e-9); // zᵀ diag(a) z = Σ aᵢ for every Rademacher z
//! let top = eigen::lanczos(&h, &eigen::LanczosOptions { k: 2, ..Default::default() }).unwrap();
//! assert!((top.values[0] - 3.0).abs() < 1e-9 && (top.values[1] - 2.0).abs() < 1e-9);
//! ```

pub mod auto;
pub mod autodiff;
pub mod curvature;
pub mod dense;
pub mod density;
pub mod eigen;
mod error;
pub mod kronecker;
pub mod linalg;
pub mod operator;
pub mod rop;
pub mod trace;

pub use auto::{AutoHvp, HessianPath};
pub use autodiff::{machine_epsilon, ExactHvp, FiniteDifferenceHvp, StepRule};
pub use curvature::GaussNewton;
pub use dense::{dense_hessian, DenseSpectrum, DENSE_LIMIT};
pub use density::{slq_density, SlqOptions, SpectralDensity};
pub use eigen::{lanczos, power_iteration, Eigenpairs, LanczosOptions, PowerOptions, Which};
pub use error::HessianError;
pub use kronecker::{CurvatureBlock, KroneckerFactored};
pub use linalg::relative_error;
pub use operator::{EvalSet, HessianVectorProduct, Observed, SymmetricMatrix, SymmetricOperator};
pub use rop::{HalfSquaredError, OutputLoss, PearlmutterHvp, SoftmaxCrossEntropy};
pub use trace::{hutch_pp, hutchinson, HutchinsonOptions, TraceEstimate, TraceMethod};

/// Tr(H) of the mean loss over `batches` (equal weights) at the parameters of `model`, by
/// Hutchinson's estimator with `probes` Rademacher probes from `seed`, with exact products
/// ([`ExactHvp`]): the one call for "the Hessian trace of my model". For models burn cannot
/// differentiate twice (`nn::Linear`, burn's pooling), run [`hutchinson`] on an [`AutoHvp`].
///
/// `model` lives on `Autodiff<F>` and the batches on `Autodiff<Autodiff<F>>` (see
/// [`ExactHvp`]); the result carries the standard error over the probes.
pub fn hessian_trace<B, M, D, L>(
    model: M::InnerModule,
    batches: Vec<D>,
    loss: L,
    probes: usize,
    seed: u64,
) -> Result<TraceEstimate, HessianError>
where
    B: burn::tensor::backend::AutodiffBackend,
    B::InnerBackend: burn::tensor::backend::AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
    M::InnerModule: burn::module::AutodiffModule<B::InnerBackend>,
    L: slt_core::Loss<B, M, D>,
{
    let hvp = ExactHvp::<B, M, D, L>::new(model, EvalSet::uniform(batches)?, loss)?;
    let options = HutchinsonOptions { max_probes: probes, min_probes: probes.min(2), rel_tol: None, seed };
    hutchinson(&hvp, &options)
}

/// The `k` largest eigenvalues of the Hessian of the mean loss over `batches` (equal weights)
/// at the parameters of `model`, with their eigenvectors and residuals, by Lanczos with full
/// reorthogonalisation (start vector from `seed`, at most 100 steps, residual tolerance 1e-6)
/// over exact products ([`ExactHvp`]): the one call for "the top of my model's spectrum".
///
/// `model` lives on `Autodiff<F>` and the batches on `Autodiff<Autodiff<F>>` (see
/// [`ExactHvp`]). For other operators (Gauss–Newton, Fisher, R-operator products) call
/// [`lanczos`] on them directly.
pub fn top_eigenvalues<B, M, D, L>(
    model: M::InnerModule,
    batches: Vec<D>,
    loss: L,
    k: usize,
    seed: u64,
) -> Result<Eigenpairs, HessianError>
where
    B: burn::tensor::backend::AutodiffBackend,
    B::InnerBackend: burn::tensor::backend::AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
    M::InnerModule: burn::module::AutodiffModule<B::InnerBackend>,
    L: slt_core::Loss<B, M, D>,
{
    let hvp = ExactHvp::<B, M, D, L>::new(model, EvalSet::uniform(batches)?, loss)?;
    lanczos(&hvp, &LanczosOptions { k, seed, ..Default::default() })
}
