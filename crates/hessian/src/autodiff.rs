//! Hessian-vector products of a burn model's loss: exact by double backward on
//! `Autodiff<Autodiff<B>>`, or by central differences of gradients on any autodiff backend.

use std::marker::PhantomData;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, ElementConversion, Tensor, TensorData};
use slt_core::params::{flatten_grads, flatten_to_vec, num_params, write_back_vec};
use slt_core::Loss;

use crate::operator::{check_len, EvalSet, SymmetricOperator};
use crate::HessianError;

/// Sets `require_grad` of every float parameter of `module` (detaching its value first).
pub(crate) fn with_require_grad<B: Backend, M: Module<B>>(module: M, require_grad: bool) -> M {
    struct SetGrad(bool);
    impl<B: Backend> ModuleMapper<B> for SetGrad {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, tensor.detach().set_require_grad(self.0), mapper)
        }
    }
    module.map(&mut SetGrad(require_grad))
}

/// Machine epsilon of a float dtype (f32's for dtypes burn does not name precisely).
pub fn machine_epsilon(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::EPSILON,
        DType::F16 => 9.765_625e-4,
        DType::BF16 => 7.812_5e-3,
        _ => f32::EPSILON as f64,
    }
}

/// Σ_p ⟨∇_p, v_p⟩ over the float parameters p of `module` (gradients from `grads`, v split per
/// parameter in visiting order), without concatenating the gradients.
pub(crate) fn dot_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &B::Gradients,
    v: &[Tensor<B::InnerBackend, 1>],
) -> Option<Tensor<B::InnerBackend, 1>> {
    struct Dot<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        v: std::slice::Iter<'a, Tensor<B::InnerBackend, 1>>,
        acc: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Dot<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let vi = self.v.next().expect("one piece of v per parameter");
            if let Some(g) = param.val().grad(self.grads) {
                let term = (g.flatten::<1>(0, D - 1) * vi.clone()).sum();
                self.acc = Some(match self.acc.take() {
                    Some(a) => a + term,
                    None => term,
                });
            }
        }
    }
    let mut dot = Dot::<B> { grads, v: v.iter(), acc: None };
    module.visit(&mut dot);
    dot.acc
}

/// out ← out + w·∇_w (parameter gradients of `module` read from `grads`, flat layout).
fn add_grads<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &B::Gradients, w: f64, out: &mut [f64]) {
    struct Read<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        out: &'a mut [f64],
        offset: usize,
        w: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Read<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            if let Some(g) = value.grad(self.grads) {
                let dst = &mut self.out[self.offset..self.offset + n];
                for (o, x) in dst.iter_mut().zip(g.into_data().iter::<f64>()) {
                    *o += self.w * x;
                }
            }
            self.offset += n;
        }
    }
    module.visit(&mut Read::<B> { grads, out, offset: 0, w });
}

/// acc ← acc + w·t, in f64 on the host.
pub(crate) fn accumulate<B: Backend>(acc: &mut [f64], w: f64, t: Tensor<B, 1>) {
    for (a, x) in acc.iter_mut().zip(t.into_data().iter::<f64>()) {
        *a += w * x;
    }
}

pub(crate) fn check_finite(v: &[f64], what: &'static str) -> Result<(), HessianError> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(HessianError::NonFinite(what))
    }
}

/// A model's parameters held twice on the inner level `Autodiff<F>` of a nested backend:
/// tracked (for a second backward) and untracked (cheap losses and gradients), with the flat
/// layout that splits a host vector per parameter tensor. Shared by [`ExactHvp`] and
/// [`GaussNewton`](crate::GaussNewton).
pub(crate) struct TwoLevelParams<M> {
    /// Parameters tracked on the inner level (for the second backward).
    pub(crate) tracked: M,
    /// The same parameters untracked on the inner level.
    pub(crate) frozen: M,
    /// d.
    pub(crate) dim: usize,
    /// (offset, length) of each float parameter tensor in the flat vector.
    layout: Vec<(usize, usize)>,
}

impl<M> TwoLevelParams<M> {
    /// Errors if `model` has no float parameter.
    pub(crate) fn new<IB: Backend>(model: M) -> Result<Self, HessianError>
    where
        M: Module<IB>,
    {
        let dim = num_params(&model);
        if dim == 0 {
            return Err(HessianError::NoParameters);
        }
        let layout = slt_core::ParamLayout::of(&model).entries.iter().map(|e| (e.offset, e.len)).collect();
        let tracked = with_require_grad(model, true);
        let frozen = with_require_grad(tracked.clone(), false);
        Ok(Self { tracked, frozen, dim, layout })
    }

    /// `v` split per parameter tensor, on the parameters' device (so that neither a dot product
    /// with a gradient nor a result needs a concatenation in the graph).
    pub(crate) fn pieces<IB: Backend>(&self, v: &[f64]) -> Vec<Tensor<IB, 1>>
    where
        M: Module<IB>,
    {
        let device = self.tracked.devices().into_iter().next().unwrap_or_default();
        self.layout
            .iter()
            .map(|&(offset, len)| Tensor::from_data(TensorData::new(v[offset..offset + len].to_vec(), [len]), &device))
            .collect()
    }
}

/// Exact Hessian-vector products by double backward (Pearlmutter 1994's identity
/// Hv = ∇_w (∇_w L(w) · v), computed reverse-over-reverse).
///
/// `B` is the outer backend, `Autodiff<Autodiff<F>>` for a base backend `F`; `M` the model
/// on `B` and `M::InnerModule` the same model on `Autodiff<F>`. For each batch b, the loss is
/// differentiated on the outer level, giving g_b = ∇L_b(w) as a tensor whose computation is
/// itself recorded on the inner level; then (g_b · v) is differentiated on the inner level:
/// Hv = Σ_b ω_b ∇_w(g_b · v). Exact up to the rounding of the backend (relative error ≈ 1e-12
/// in f64, ≈ 1e-6–1e-5 in f32 on the tests' models). Every op of the model and the loss must
/// be differentiable twice in burn 0.21 (`matmul`, `conv2d`, `relu`, `tanh`, `log_softmax`,
/// reshape + `max_dim` are; `nn::Linear` and burn's pooling ops are not, see
/// [`crate::auto`]: [`AutoHvp`](crate::AutoHvp) falls back to [`FiniteDifferenceHvp`] for such
/// models by itself).
///
/// Cost: one forward, one backward and one backward of the backward per batch; burn 0.21
/// frees the graph at each backward, so nothing is reused between products (PyHessian keeps the
/// first-order graph and pays only the second backward). Measured by `benches/hvp.rs` (MLP
/// 784-256-256-10, 1,000 examples, f32 on burn-flex, 2 cores shared with other work):
/// 34 ms per product, 2.6× a gradient, against 18.5 ms for [`PearlmutterHvp`](crate::PearlmutterHvp)
/// on the same batch (use it when the model is written over `LayerOps`).
pub struct ExactHvp<B, M, D, L>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
{
    params: TwoLevelParams<M::InnerModule>,
    eval: EvalSet<D>,
    loss: L,
    _backend: PhantomData<fn() -> B>,
}

impl<B, M, D, L> ExactHvp<B, M, D, L>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
    L: Loss<B, M, D>,
{
    /// The Hessian at the parameters of `model` (the model on `Autodiff<F>`, i.e.
    /// `M::InnerModule`) of the loss `loss` over `eval`. The batches `D` hold tensors of the
    /// outer backend `B`, and `loss(&M, &D)` is the mean loss of a batch.
    pub fn new(model: M::InnerModule, eval: EvalSet<D>, loss: L) -> Result<Self, HessianError> {
        let params = TwoLevelParams::new::<B::InnerBackend>(model)?;
        Ok(Self { params, eval, loss, _backend: PhantomData })
    }

    /// Same as [`new`](Self::new), from the model on the outer backend.
    pub fn from_outer(model: &M, eval: EvalSet<D>, loss: L) -> Result<Self, HessianError> {
        Self::new(model.valid(), eval, loss)
    }

    /// The parameters w as a host vector.
    pub fn params(&self) -> Vec<f64> {
        flatten_to_vec(&self.params.frozen)
    }

    /// The evaluation set.
    pub fn eval_set(&self) -> &EvalSet<D> {
        &self.eval
    }

    fn outer_frozen(&self) -> M {
        with_require_grad(M::from_inner(self.params.frozen.clone()), true)
    }

    /// L(w) = Σ_b ω_b L_b(w).
    pub fn loss(&self) -> Result<f64, HessianError> {
        let model = M::from_inner(self.params.frozen.clone());
        let mut total = 0.0;
        for (batch, w) in self.eval.batches.iter().zip(&self.eval.weights) {
            total += w * self.loss.loss(&model, batch).into_scalar().elem::<f64>();
        }
        if total.is_finite() {
            Ok(total)
        } else {
            Err(HessianError::NonFinite("loss"))
        }
    }

    /// (L(w), ∇L(w)) with one backward per batch (no second-order graph is recorded).
    pub fn loss_and_gradient(&self) -> Result<(f64, Vec<f64>), HessianError> {
        let model = self.outer_frozen();
        let mut total = 0.0;
        let mut g = vec![0.0; self.params.dim];
        for (batch, &w) in self.eval.batches.iter().zip(&self.eval.weights) {
            let loss = self.loss.loss(&model, batch);
            total += w * loss.clone().into_scalar().elem::<f64>();
            let grads = loss.backward();
            accumulate(&mut g, w, flatten_grads(&model, &grads).inner());
        }
        if !total.is_finite() {
            return Err(HessianError::NonFinite("loss"));
        }
        check_finite(&g, "gradient")?;
        Ok((total, g))
    }

    /// ∇L(w).
    pub fn gradient(&self) -> Result<Vec<f64>, HessianError> {
        Ok(self.loss_and_gradient()?.1)
    }

    /// H_b v = ∇_w(∇L_b(w) · v) for one batch, as a tensor on the base backend `F`, from v on
    /// the inner backend `Autodiff<F>` (no host round trip; for callers that keep vectors on
    /// the device). Hv = Σ_b ω_b H_b v.
    pub fn batch_hvp_tensor(
        &self,
        batch: &D,
        v: Tensor<B::InnerBackend, 1>,
    ) -> Tensor<<B::InnerBackend as AutodiffBackend>::InnerBackend, 1> {
        let model = M::from_inner(self.params.tracked.clone());
        let grads = self.loss.loss(&model, batch).backward();
        let g = flatten_grads(&model, &grads);
        let gv = (g * v).sum();
        let grads2 = gv.backward();
        flatten_grads(&self.params.tracked, &grads2)
    }
}

impl<B, M, D, L> SymmetricOperator for ExactHvp<B, M, D, L>
where
    B: AutodiffBackend,
    B::InnerBackend: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: AutodiffModule<B::InnerBackend>,
    L: Loss<B, M, D>,
{
    fn dim(&self) -> usize {
        self.params.dim
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        check_len(self.params.dim, v)?;
        let pieces: Vec<Tensor<B::InnerBackend, 1>> = self.params.pieces(v);
        // Batches are weighted and summed on the host in f64 (burn rounds scalar operands to
        // f32 on some backends, which would cost 1e-8 relative in f64).
        let mut hv = vec![0.0; self.params.dim];
        for (batch, &w) in self.eval.batches.iter().zip(&self.eval.weights) {
            let model = M::from_inner(self.params.tracked.clone());
            let grads = self.loss.loss(&model, batch).backward();
            if let Some(gv) = dot_grads(&model, &grads, &pieces) {
                let grads2 = gv.backward();
                add_grads(&self.params.tracked, &grads2, w, &mut hv);
            }
        }
        check_finite(&hv, "Hessian-vector product")?;
        Ok(hv)
    }
}

/// How [`FiniteDifferenceHvp`] chooses its step h.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepRule {
    /// h = ε^{1/3} · max(1, ‖w‖) / ‖v‖ with ε the machine epsilon of the parameters' dtype:
    /// the perturbation hv has norm ε^{1/3}·max(1, ‖w‖), which balances the O(h²) truncation
    /// error against the O(ε/h) rounding error of the gradients.
    Auto,
    /// h·‖v‖ = this value (the norm of the perturbation).
    Relative(f64),
    /// This h, whatever v.
    Fixed(f64),
}

/// Hessian-vector products by central differences of gradients, on any autodiff backend:
///
/// Hv ≈ (∇L(w + hv) − ∇L(w − hv)) / 2h.
///
/// Error (Taylor expansion of ∇L around w): truncation (h²/6)·∇³(∇L)[v, v, v] + O(h⁴), plus
/// rounding ≈ 2·δ_g / (2h) where δ_g is the absolute rounding error of a computed gradient
/// (≈ ε·‖∇L‖·κ with ε the machine epsilon and κ the condition of the gradient's sums). With
/// [`StepRule::Auto`] both terms are O(ε^{2/3}) relative to ‖Hv‖ for a well-scaled model:
/// measured ≈ 1e-9 relative in f64 and ≈ 1e-2 in f32 on the tests' models, so use f64 (e.g.
/// `Autodiff<NdArray<f64>>`) when accuracy matters. Two gradients per product.
pub struct FiniteDifferenceHvp<B, M, D, L>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    model: M,
    w: Vec<f64>,
    w_norm: f64,
    eps: f64,
    step: StepRule,
    eval: EvalSet<D>,
    loss: L,
    _backend: PhantomData<fn() -> B>,
}

impl<B, M, D, L> FiniteDifferenceHvp<B, M, D, L>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    L: Loss<B, M, D>,
{
    /// The Hessian at the parameters of `model` of `loss` over `eval`, step rule
    /// [`StepRule::Auto`].
    pub fn new(model: M, eval: EvalSet<D>, loss: L) -> Result<Self, HessianError> {
        let model = with_require_grad(model, true);
        let w = flatten_to_vec(&model);
        if w.is_empty() {
            return Err(HessianError::NoParameters);
        }
        let dtype = slt_core::params::flatten(&model).dtype();
        let w_norm = crate::linalg::norm(&w);
        Ok(Self {
            model,
            w,
            w_norm,
            eps: machine_epsilon(dtype),
            step: StepRule::Auto,
            eval,
            loss,
            _backend: PhantomData,
        })
    }

    /// Uses `step` to choose h.
    pub fn with_step(mut self, step: StepRule) -> Result<Self, HessianError> {
        let ok = match step {
            StepRule::Auto => true,
            StepRule::Relative(x) | StepRule::Fixed(x) => x.is_finite() && x > 0.0,
        };
        if !ok {
            return Err(HessianError::InvalidOption(format!("step {step:?}")));
        }
        self.step = step;
        Ok(self)
    }

    /// The step h used for a direction of norm `v_norm`.
    pub fn step_for(&self, v_norm: f64) -> f64 {
        match self.step {
            StepRule::Auto => self.eps.cbrt() * self.w_norm.max(1.0) / v_norm,
            StepRule::Relative(r) => r / v_norm,
            StepRule::Fixed(h) => h,
        }
    }

    /// The parameters w.
    pub fn params(&self) -> &[f64] {
        &self.w
    }

    /// (L(w'), ∇L(w')) at the host parameter vector `w'`.
    pub fn loss_and_gradient_at(&self, w: &[f64]) -> Result<(f64, Vec<f64>), HessianError> {
        check_len(self.w.len(), w)?;
        let model = write_back_vec(self.model.clone(), w).expect("length checked");
        let mut total = 0.0;
        let mut g = vec![0.0; self.w.len()];
        for (batch, &weight) in self.eval.batches.iter().zip(&self.eval.weights) {
            let loss = self.loss.loss(&model, batch);
            total += weight * loss.clone().into_scalar().elem::<f64>();
            let grads = loss.backward();
            accumulate(&mut g, weight, flatten_grads(&model, &grads));
        }
        if !total.is_finite() {
            return Err(HessianError::NonFinite("loss"));
        }
        check_finite(&g, "gradient")?;
        Ok((total, g))
    }

    /// (L(w), ∇L(w)).
    pub fn loss_and_gradient(&self) -> Result<(f64, Vec<f64>), HessianError> {
        self.loss_and_gradient_at(&self.w)
    }

    /// ∇L(w).
    pub fn gradient(&self) -> Result<Vec<f64>, HessianError> {
        Ok(self.loss_and_gradient()?.1)
    }
}

impl<B, M, D, L> SymmetricOperator for FiniteDifferenceHvp<B, M, D, L>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    L: Loss<B, M, D>,
{
    fn dim(&self) -> usize {
        self.w.len()
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        check_len(self.w.len(), v)?;
        let v_norm = crate::linalg::norm(v);
        if v_norm == 0.0 {
            return Ok(vec![0.0; v.len()]);
        }
        let h = self.step_for(v_norm);
        let shifted = |sign: f64| -> Vec<f64> { self.w.iter().zip(v).map(|(w, v)| w + sign * h * v).collect() };
        let (_, gp) = self.loss_and_gradient_at(&shifted(1.0))?;
        let (_, gm) = self.loss_and_gradient_at(&shifted(-1.0))?;
        let hv: Vec<f64> = gp.iter().zip(&gm).map(|(p, m)| (p - m) / (2.0 * h)).collect();
        check_finite(&hv, "Hessian-vector product")?;
        Ok(hv)
    }
}
