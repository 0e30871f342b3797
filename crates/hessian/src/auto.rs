//! Hessian-vector products for any burn model, standard `burn::nn` layers included: exact
//! where burn 0.21 can differentiate the model twice, otherwise central differences of
//! gradients, chosen by trying — and saying which path was taken and its expected error.
//!
//! Which ops of burn 0.21 cannot be differentiated twice, and why: `burn-autodiff`
//! (`src/ops/module.rs`) implements the *backward* kernels of some module ops as plain
//! backend calls without a recorded derivative — `linear_x_backward`, `linear_weight_backward`,
//! `linear_bias_backward` (used by `nn::Linear`, which calls `burn::tensor::module::linear`),
//! `avg_pool2d_backward` (`nn::AvgPool2d`), `max_pool2d_with_indices_backward`
//! (`nn::MaxPool2d`), `adaptive_avg_pool2d_backward`, `embedding_backward`,
//! `deform_conv2d_backward` and `interpolate_backward` each `panic!("Can't differentiate …")`
//! when the outer level of `Autodiff<Autodiff<F>>` calls them during the first backward with
//! their input tracked by the inner level. `conv2d`, `matmul`, the activations and the
//! elementwise/reduction ops (reshape, `max_dim`, `mean_dim`) record their backward and are
//! differentiable twice. `crates/hessian/tests/standard_modules.rs` proves each claim.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use slt_core::Loss;

use crate::autodiff::{machine_epsilon, ExactHvp, FiniteDifferenceHvp};
use crate::linalg::gaussian;
use crate::operator::{EvalSet, SymmetricOperator};
use crate::HessianError;

/// The way [`AutoHvp`] forms its products.
#[derive(Debug, Clone, PartialEq)]
pub enum HessianPath {
    /// Double backward ([`ExactHvp`]): exact up to the backend's rounding (≈ 1e-12 relative in
    /// f64, ≈ 1e-6 in f32).
    Exact,
    /// Central differences of gradients ([`FiniteDifferenceHvp`], step
    /// [`StepRule::Auto`](crate::StepRule::Auto)), because the exact product failed.
    FiniteDifference {
        /// Why the exact product could not be formed (burn's panic message).
        reason: String,
        /// The relative error to expect, ε^{2/3} of the parameters' dtype times 100 (the
        /// constant of the truncation and rounding terms on the tests' models, with margin):
        /// ≈ 3.7e-9 in f64, ≈ 1.5e-3 in f32. Measured on the tests' models (nn::Linear,
        /// MaxPool2d, AvgPool2d): ≤ 1e-10 relative in f64.
        expected_relative_error: f64,
    },
}

enum Path<B, M, D, L, DI, LI>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
{
    Exact(ExactHvp<B, M, D, L>),
    FiniteDifference(FiniteDifferenceHvp<B::InnerBackend, M::InnerModule, DI, LI>),
}

/// Hessian-vector products of `loss` over an [`EvalSet`] at a model's parameters, exact when
/// the model can be differentiated twice and otherwise by central differences — decided at
/// construction by forming one exact product on a Gaussian probe and catching burn's
/// "Can't differentiate" panic (see the module docs for the ops concerned).
///
/// Same types as [`ExactHvp`]: `B = Autodiff<Autodiff<F>>`, the model given on
/// `Autodiff<F>`, the batches `D` on `B` with the loss `L`. The fallback differentiates once,
/// on `Autodiff<F>` — it cannot run on `B`, whose first backward calls the very inner-level
/// kernels that panic — so it takes the same batches and loss on `Autodiff<F>` as well (`DI`,
/// `LI`: the user's generic loss function instantiated a second time, the batches' tensors
/// through `Tensor::inner`). Use an f64 base backend (e.g. `NdArray<f64>`) for models that fall back: the finite-difference error is
/// ε^{2/3}-scaled, ≈ 1e-7 relative or better in f64 against ≈ 1e-2 in f32.
/// [`path`](Self::path) says which path was taken and its expected error.
///
/// The probe's panic is caught with `catch_unwind` (so it needs `panic = "unwind"`, Rust's
/// default); its message is kept out of stderr by a panic hook, installed once, that passes
/// every other panic to the previous hook.
pub struct AutoHvp<B, M, D, L, DI, LI>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
{
    path: HessianPath,
    operator: Path<B, M, D, L, DI, LI>,
}

/// The marker burn 0.21 puts in the panics of ops it cannot differentiate twice.
const CANNOT_DIFFERENTIATE: &str = "Can't differentiate";

fn quiet_double_backward_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panic_message(info.payload()).contains(CANNOT_DIFFERENTIATE) {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

impl<B, M, D, L, DI, LI> AutoHvp<B, M, D, L, DI, LI>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
    L: Loss<B, M, D>,
    LI: Loss<B::InnerBackend, M::InnerModule, DI>,
{
    /// The Hessian at the parameters of `model` (on `Autodiff<F>`) of `loss` over `eval`
    /// (batches on `Autodiff<Autodiff<F>>`), with `inner_eval` and `inner_loss` the same
    /// batches (same weights) and loss on `Autodiff<F>` for the fallback. Panics of the exact
    /// probe other than burn's "Can't differentiate" are re-raised: they are bugs, not missing
    /// derivatives.
    pub fn new(
        model: M::InnerModule,
        eval: EvalSet<D>,
        loss: L,
        inner_eval: EvalSet<DI>,
        inner_loss: LI,
    ) -> Result<Self, HessianError> {
        let dtype = slt_core::params::flatten(&model).dtype();
        let exact = ExactHvp::<B, M, D, L>::new(model.clone(), eval, loss)?;
        let d = exact.dim();
        let mut rng = slt_core::seed::rng_for(0, &[slt_core::seed::stream::PROBES]);
        let probe = gaussian(d, &mut rng);
        quiet_double_backward_panics();
        match catch_unwind(AssertUnwindSafe(|| exact.apply(&probe))) {
            Ok(product) => {
                product?;
                Ok(Self { path: HessianPath::Exact, operator: Path::Exact(exact) })
            }
            Err(payload) => {
                let reason = panic_message(payload.as_ref());
                if !reason.contains(CANNOT_DIFFERENTIATE) {
                    std::panic::resume_unwind(payload);
                }
                drop(exact);
                let fd =
                    FiniteDifferenceHvp::<B::InnerBackend, M::InnerModule, DI, LI>::new(model, inner_eval, inner_loss)?;
                let expected_relative_error = 100.0 * machine_epsilon(dtype).powf(2.0 / 3.0);
                Ok(Self {
                    path: HessianPath::FiniteDifference { reason, expected_relative_error },
                    operator: Path::FiniteDifference(fd),
                })
            }
        }
    }

    /// Which path the products take, and why.
    pub fn path(&self) -> &HessianPath {
        &self.path
    }

    /// Whether the products are exact (double backward).
    pub fn is_exact(&self) -> bool {
        self.path == HessianPath::Exact
    }

    /// ∇L(w), from the path's own backend.
    pub fn gradient(&self) -> Result<Vec<f64>, HessianError> {
        match &self.operator {
            Path::Exact(h) => h.gradient(),
            Path::FiniteDifference(h) => h.gradient(),
        }
    }
}

impl<B, M, D, L, DI, LI> SymmetricOperator for AutoHvp<B, M, D, L, DI, LI>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
    L: Loss<B, M, D>,
    LI: Loss<B::InnerBackend, M::InnerModule, DI>,
{
    fn dim(&self) -> usize {
        match &self.operator {
            Path::Exact(h) => h.dim(),
            Path::FiniteDifference(h) => h.dim(),
        }
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        match &self.operator {
            Path::Exact(h) => h.apply(v),
            Path::FiniteDifference(h) => h.apply(v),
        }
    }
}
