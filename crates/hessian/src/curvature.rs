//! Curvature operators beyond the Hessian, for any burn model: the generalised Gauss–Newton
//! matrix and the empirical Fisher, exact, by the same nested autodiff as [`ExactHvp`].
//!
//! GGN (Schraudolph 2002; Martens 2020, "New insights and perspectives on the natural gradient
//! method", §8): with z_b = f(w, x_b) the model's outputs on batch b (`[m, k]`) and ℓ_b(z) the
//! batch's mean loss as a function of the outputs,
//!
//! G = Σ_b ω_b J_bᵀ (∂²ℓ_b/∂z²) J_b,   J_b = ∂z_b/∂w,
//!
//! the Hessian without the term Σ (∂ℓ/∂z)·∂²z/∂w², positive semi-definite when ℓ is convex
//! in z. For softmax cross-entropy ∂²ℓ/∂z² = (1/m)(diag(pᵢ) − pᵢpᵢᵀ) per example, so G is also
//! the true Fisher E_{y∼p(·|x)}[∇ log p ∇ log pᵀ] (Martens 2020, §9.2); for a linear model with
//! squared error G is the Hessian.
//!
//! Empirical Fisher: with ℓᵢ the per-example losses of a batch (with the data's labels, or with
//! labels drawn from the model for the sampled Fisher),
//!
//! F = Σ_b ω_b (1/m_b) Σᵢ ∇ℓᵢ ∇ℓᵢᵀ = Σ_b ω_b J_ℓᵀ (I/m_b) J_ℓ,
//!
//! which is the GGN of the outputs z = (ℓ₁ … ℓ_m) under the loss ‖z‖²/(2m): one
//! implementation serves both ([`GaussNewton::empirical_fisher`]).
//!
//! A product Gv costs, per batch: J v by the double-backward trick (Jv = ∇_r⟨Jᵀr, v⟩ for a
//! dummy r, no forward-mode autodiff needed), the output-space Hessian product by double
//! backward through the loss alone, and Jᵀq by one backward: three forward passes and four
//! backward passes, every op differentiable twice as for [`ExactHvp`].
//!
//! [`ExactHvp`]: crate::ExactHvp

use std::marker::PhantomData;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use slt_core::params::{flatten_grads, flatten_to_vec};

use crate::autodiff::{accumulate, check_finite, dot_grads, with_require_grad, TwoLevelParams};
use crate::operator::{check_len, EvalSet, SymmetricOperator};
use crate::HessianError;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;
type Base<B> = <Inner<B> as AutodiffBackend>::InnerBackend;

/// The generalised Gauss–Newton matrix G = Σ_b ω_b J_bᵀ (∂²ℓ_b/∂z²) J_b of a model's outputs
/// under a loss of the outputs (see the [module docs](self)).
///
/// `B` is the outer backend `Autodiff<Autodiff<F>>` as for [`ExactHvp`](crate::ExactHvp);
/// `outputs(&M, &D)` gives the outputs z_b `[m, k]` of a batch and `loss(&z, &D)` its mean
/// loss as a function of z.
pub struct GaussNewton<B, M, D, O, L>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
{
    params: TwoLevelParams<M::InnerModule>,
    eval: EvalSet<D>,
    outputs: O,
    loss: L,
    _backend: PhantomData<fn() -> B>,
}

impl<B, M, D, O, L> GaussNewton<B, M, D, O, L>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
    O: Fn(&M, &D) -> Tensor<B, 2>,
    L: Fn(&Tensor<B, 2>, &D) -> Tensor<B, 1>,
{
    /// The GGN at the parameters of `model` (on `Autodiff<F>`, i.e. `M::InnerModule`).
    pub fn new(model: M::InnerModule, eval: EvalSet<D>, outputs: O, loss: L) -> Result<Self, HessianError> {
        let params = TwoLevelParams::new::<B::InnerBackend>(model)?;
        Ok(Self { params, eval, outputs, loss, _backend: PhantomData })
    }

    /// The parameters w as a host vector.
    pub fn params(&self) -> Vec<f64> {
        flatten_to_vec(&self.params.frozen)
    }

    /// J_b v: the outputs' directional derivative, `[m, k]` on the base backend, by
    /// Jv = ∇_r ⟨Jᵀr, v⟩ (r a dummy of the outputs' shape, tracked on the inner level).
    fn jvp(&self, batch: &D, pieces: &[Tensor<Inner<B>, 1>]) -> Option<Tensor<Base<B>, 2>> {
        let model = M::from_inner(self.params.tracked.clone());
        let z = (self.outputs)(&model, batch);
        let r = Tensor::<Inner<B>, 2>::zeros(z.dims(), &z.device()).require_grad();
        let grads = (z * Tensor::<B, 2>::from_inner(r.clone())).sum().backward();
        let jt_r_dot_v = dot_grads(&model, &grads, pieces)?;
        let grads2 = jt_r_dot_v.backward();
        r.grad(&grads2)
    }

    /// (∂²ℓ_b/∂z²)·u at the batch's outputs, by double backward through the loss alone.
    fn output_hvp(&self, batch: &D, u: Tensor<Base<B>, 2>) -> Option<Tensor<Base<B>, 2>> {
        let model = M::from_inner(self.params.frozen.clone());
        let z0 = (self.outputs)(&model, batch).inner().inner();
        let z_inner = Tensor::<Inner<B>, 2>::from_inner(z0).require_grad();
        let z = Tensor::<B, 2>::from_inner(z_inner.clone()).require_grad();
        let grads = (self.loss)(&z, batch).backward();
        let dz = z.grad(&grads)?;
        let grads2 = (dz * Tensor::<Inner<B>, 2>::from_inner(u)).sum().backward();
        z_inner.grad(&grads2)
    }

    /// out ← out + ω·J_bᵀ q, by one backward of ⟨z_b, q⟩.
    fn add_vjp(&self, batch: &D, q: Tensor<Base<B>, 2>, weight: f64, out: &mut [f64]) {
        let model = with_require_grad(M::from_inner(self.params.frozen.clone()), true);
        let z = (self.outputs)(&model, batch);
        let q = Tensor::<B, 2>::from_inner(Tensor::<Inner<B>, 2>::from_inner(q));
        let grads = (z * q).sum().backward();
        accumulate(out, weight, flatten_grads(&model, &grads).inner());
    }
}

impl<B, M, D, P> GaussNewton<B, M, D, P, fn(&Tensor<B, 2>, &D) -> Tensor<B, 1>>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
    P: Fn(&M, &D) -> Tensor<B, 2>,
{
    /// The empirical Fisher F = Σ_b ω_b (1/m_b) Σᵢ ∇ℓᵢ∇ℓᵢᵀ, from `per_example(&M, &D)`: the
    /// batch's per-example losses as a column `[m, 1]` (e.g. `losses.unsqueeze_dim(1)`). With
    /// labels drawn from the model in the batch, it is the sampled Fisher of that draw.
    pub fn empirical_fisher(model: M::InnerModule, eval: EvalSet<D>, per_example: P) -> Result<Self, HessianError> {
        fn half_mean_square<B: AutodiffBackend, D>(z: &Tensor<B, 2>, _: &D) -> Tensor<B, 1> {
            let m = z.dims()[0] as f64;
            z.clone().square().sum() * (0.5 / m)
        }
        Self::new(model, eval, per_example, half_mean_square::<B, D>)
    }
}

impl<B, M, D, O, L> SymmetricOperator for GaussNewton<B, M, D, O, L>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
    O: Fn(&M, &D) -> Tensor<B, 2>,
    L: Fn(&Tensor<B, 2>, &D) -> Tensor<B, 1>,
{
    fn dim(&self) -> usize {
        self.params.dim
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        check_len(self.params.dim, v)?;
        let pieces: Vec<Tensor<Inner<B>, 1>> = self.params.pieces(v);
        let mut out = vec![0.0; self.params.dim];
        for (batch, &w) in self.eval.batches.iter().zip(&self.eval.weights) {
            // Outputs that do not depend on w (or a loss flat in z) contribute nothing.
            let Some(jv) = self.jvp(batch, &pieces) else { continue };
            let Some(hjv) = self.output_hvp(batch, jv) else { continue };
            self.add_vjp(batch, hjv, w, &mut out);
        }
        check_finite(&out, "Gauss–Newton product")?;
        Ok(out)
    }
}
