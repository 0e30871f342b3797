//! Natural gradient descent with the minibatch Fisher, exactly as the paper states it
//! (Saghir et al. 2024, §2):
//!
//! w ← w − η·F_s⁻¹g,   F_s = F + κI,   κ = (α/d)·max(tr F, ε),
//!
//! with g the mean gradient of the minibatch loss and F = (1/m) Σᵢ sᵢsᵢᵀ the Fisher of the
//! minibatch from score vectors sᵢ = ∇ log p(ỹᵢ | xᵢ, w). With S the m×d matrix of rows sᵢ/√m,
//! F = SᵀS and the push-through (Woodbury) identity turns the d×d solve into an m×m one:
//!
//! (SᵀS + κI)⁻¹g = (g − Sᵀ(SSᵀ + κI)⁻¹Sg)/κ.
//!
//! Nothing of size d×d, and for affine layers no per-example gradient, is ever formed: the
//! Gram matrix SSᵀ comes from per-layer inputs and output gradients,
//! ⟨∇ℓᵢ, ∇ℓⱼ⟩ = Σ_layers (aᵢ·aⱼ + 1)(δᵢ·δⱼ), and the final combination Σᵢ cᵢ∇ℓᵢ is one matrix
//! product aᵀ·diag(c)·δ per layer (see [`crate::taps`]). Convolutions use materialised
//! per-example gradients.
//!
//! **Which Fisher.** ỹᵢ is drawn from the model's own predictive distribution
//! ([`FisherKind::Sampled`], the default): then E\[F\] is the Fisher information, the metric NGD is
//! defined with. With ỹᵢ = yᵢ ([`FisherKind::Empirical`]) F is the "empirical Fisher", which is
//! cheaper (one backward pass instead of two) but is not the Fisher away from a perfect fit and
//! can give a very different step (Kunstner et al. 2019, "Limitations of the empirical Fisher
//! approximation"). For the empirical Fisher g = Sᵀ1/√m lies in the row space of S, and the
//! solve is done in the cancellation-free form Sᵀ(SSᵀ + κI)⁻¹1/√m.
//!
//! **Numerics.** The m×m system (SSᵀ + κI) is solved on the host in f64 by Cholesky. If it fails
//! (the Gram matrix, formed in the backend's precision, can be slightly indefinite when κ is tiny)
//! the documented recovery is a symmetric eigendecomposition with negative eigenvalues clipped to
//! zero, i.e. the solve with the nearest positive semi-definite Gram matrix; the step reports it
//! (`NgdStats::recovered`). κ = 0 (zero Fisher with ε = 0) is an error, never a division by zero.
//!
//! Momentum, Nesterov and weight decay, if set, apply to F_s⁻¹g afterwards, through [`Sgd`].
//! The model's likelihood is categorical (softmax over the logits of a [`TappedModel`]).

use std::collections::HashMap;

use burn::module::{AutodiffModule, ParamId};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use slt_core::layer_ops::TappedModel;
use slt_core::ParamLayout;

use crate::taps::{LayerGrads, Recorder};
use crate::{OptimError, Sgd, SgdConfig, StepStats};

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// Which labels the score vectors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FisherKind {
    /// ỹᵢ ~ p(·|xᵢ, w): the Monte-Carlo Fisher (unbiased for the Fisher information).
    #[default]
    Sampled,
    /// ỹᵢ = yᵢ: the empirical Fisher.
    Empirical,
}

impl std::str::FromStr for FisherKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sampled" => Ok(FisherKind::Sampled),
            "empirical" => Ok(FisherKind::Empirical),
            _ => Err(format!("unknown Fisher '{s}': expected 'sampled' or 'empirical'")),
        }
    }
}

/// Hyperparameters of [`Ngd`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NgdConfig {
    /// Learning rate η > 0.
    pub lr: f64,
    /// Smoothing strength α > 0 in κ = (α/d)·max(tr F, ε).
    pub alpha: f64,
    /// Floor ε ≥ 0 on tr F in κ (the paper's "ε" of the smoothing; not the SGLD step).
    pub fisher_eps: f64,
    /// Sampled (default) or empirical Fisher.
    #[serde(default)]
    pub fisher: FisherKind,
    /// Momentum μ ∈ [0, 1) applied to F_s⁻¹g.
    #[serde(default)]
    pub momentum: f64,
    /// Nesterov momentum (needs μ > 0).
    #[serde(default)]
    pub nesterov: bool,
    /// L2 weight decay λ ≥ 0, added to F_s⁻¹g.
    #[serde(default)]
    pub weight_decay: f64,
    /// Seed of the sampled labels (label draws depend only on it and the step index).
    #[serde(default)]
    pub seed: u64,
    /// Rescale every F_s⁻¹g to the raw gradient's norm ‖g‖ before momentum, as the paper's code
    /// (cxtraa/ngd_with_slt) does for its online NGD though its text does not say so: the step
    /// length is then η·‖g‖ whatever α and ε are, so a sweep over the smoothing changes the
    /// direction only. With the sampled batch
    /// Fisher, F_s⁻¹g = Σₖ(λₖ+κ)⁻¹uₖuₖᵀg + κ⁻¹(I−P)g, whose length scales as 1/κ ∝ 1/α.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub normalize: bool,
    /// Rescale every F_s⁻¹g to unit length before momentum, so each step is η·F_s⁻¹g/‖F_s⁻¹g‖
    /// and its length is η whatever α, ε and the trajectory are. `normalize` keeps the step at
    /// η·‖g‖, which still moves with the gradient norms along the path a smoothing setting takes
    /// (33 % across α on MLP 1×16, session 3); this holds the step length itself fixed.
    /// Exclusive with `normalize`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed_step: bool,
}

impl NgdConfig {
    /// The paper's settings: α = 1e-2, ε = 1e-10, η = 1e-2, momentum 0.9 with Nesterov (the
    /// paper's code used it for both optimisers). With the exact batch Fisher and no
    /// normalisation this η is far above the step's stable scale: ‖F_s⁻¹g‖ ≈ ‖g‖/κ, see `normalize`.
    pub fn paper() -> Self {
        Self {
            lr: 1e-2,
            alpha: 1e-2,
            fisher_eps: 1e-10,
            fisher: FisherKind::Sampled,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.0,
            seed: 0,
            normalize: false,
            fixed_step: false,
        }
    }

    fn sgd(&self) -> SgdConfig {
        SgdConfig { lr: self.lr, momentum: self.momentum, nesterov: self.nesterov, weight_decay: self.weight_decay }
    }

    /// Checks the ranges stated on each field.
    pub fn validate(&self) -> Result<(), OptimError> {
        validate_smoothing(self.alpha, self.fisher_eps)?;
        if self.normalize && self.fixed_step {
            return Err(OptimError::InvalidConfig(
                "normalize (step length η·‖g‖) and fixed_step (step length η) are exclusive: choose one".into(),
            ));
        }
        self.sgd().validate()
    }
}

impl Default for NgdConfig {
    fn default() -> Self {
        Self { momentum: 0.0, nesterov: false, ..Self::paper() }
    }
}

/// Checks the damping settings of κ = (α/d)·max(tr F, ε): α > 0 and ε ≥ 0, both finite.
pub(crate) fn validate_smoothing(alpha: f64, fisher_eps: f64) -> Result<(), OptimError> {
    if !(alpha > 0.0 && alpha.is_finite()) {
        return Err(OptimError::InvalidConfig(format!("alpha = {alpha} must be positive and finite")));
    }
    if !(fisher_eps >= 0.0 && fisher_eps.is_finite()) {
        return Err(OptimError::InvalidConfig(format!("fisher_eps = {fisher_eps} must be non-negative and finite")));
    }
    Ok(())
}

/// The natural gradient F_s⁻¹g at one point, per parameter, with what it was computed from.
pub struct NaturalGradient<B: AutodiffBackend> {
    /// F_s⁻¹g per parameter, flattened row-major (inner backend).
    pub directions: HashMap<ParamId, Tensor<Inner<B>, 1>>,
    /// Mean minibatch loss (1/m)Σℓᵢ(w) at the point, with the true labels.
    pub loss: f64,
    /// ‖g‖.
    pub grad_norm: f64,
    /// ‖F_s⁻¹g‖.
    pub norm: f64,
    /// κ used.
    pub kappa: f64,
    /// tr F.
    pub fisher_trace: f64,
    /// The labels ỹᵢ of the score vectors (sampled, or the true labels).
    pub fisher_labels: Vec<usize>,
    /// Whether the Cholesky solve failed and the eigenvalue-clipping recovery was used.
    pub recovered: bool,
}

/// What an NGD step reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct NgdStats {
    /// `update_norm` = ‖F_s⁻¹g‖, `grad_norm` = ‖g‖.
    pub step: StepStats,
    /// Mean minibatch loss before the step.
    pub loss: f64,
    /// κ = (α/d)·max(tr F, ε).
    pub kappa: f64,
    /// tr F of the minibatch Fisher.
    pub fisher_trace: f64,
    /// The eigenvalue-clipping recovery was used for the solve.
    pub recovered: bool,
}

/// Exact minibatch-Fisher natural gradient descent.
#[derive(Debug)]
pub struct Ngd<B: AutodiffBackend> {
    config: NgdConfig,
    sgd: Sgd<B>,
    steps: u64,
}

/// Σᵢ ℓᵢ = −Σᵢ Σ_k y_ik log softmax(z_i)_k, shape `[1]`.
pub(crate) fn nll_sum<B: burn::tensor::backend::Backend>(logits: Tensor<B, 2>, one_hot: Tensor<B, 2>) -> Tensor<B, 1> {
    (log_softmax(logits, 1) * one_hot).sum().neg()
}

pub(crate) fn to_host<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// The recorded passes of one natural-gradient step (exact NGD and K-FAC alike).
pub(crate) struct RecordedPasses<B: AutodiffBackend> {
    /// Batch size.
    pub m: usize,
    /// Mean minibatch loss (1/m)Σℓᵢ(w) with the true labels.
    pub loss: f64,
    /// The labels ỹᵢ of the score vectors.
    pub fisher_labels: Vec<usize>,
    /// Per-layer quantities of the true-label pass, whose mean gradient is g.
    pub true_layers: Vec<LayerGrads<B>>,
    /// Per-layer quantities of the drawn-label pass (sampled Fisher only; the empirical Fisher
    /// uses `true_layers`).
    pub fisher_layers: Option<Vec<LayerGrads<B>>>,
}

/// Records `model` on the batch: pass 1 with the true labels (g, and the empirical Fisher's
/// scores), then, for the sampled Fisher, pass 2 with labels drawn from the model for step
/// `step` (burn frees the graph after a backward, so the second backward needs its own forward).
pub(crate) fn record_passes<B: AutodiffBackend, I: Clone, M: TappedModel<B, I> + AutodiffModule<B>>(
    model: &M,
    input: I,
    targets: Tensor<B, 2>,
    layout: &ParamLayout,
    kind: FisherKind,
    seed: u64,
    step: u64,
) -> Result<RecordedPasses<B>, OptimError> {
    let mut recorder = Recorder::<B>::new();
    let logits = model.forward_ops(input.clone(), &mut recorder);
    recorder.check_coverage(layout)?;
    let [m, classes] = logits.dims();
    let device = logits.device();
    let loss_sum = nll_sum(logits.clone(), targets.clone());
    let loss = loss_sum.clone().into_scalar().elem::<f64>() / m as f64;
    if !loss.is_finite() {
        return Err(OptimError::NonFiniteGradient { grad_norm: f64::NAN });
    }
    let fisher_labels = fisher_labels(kind, seed, step, &logits, &targets);
    let true_layers = recorder.layer_grads(&loss_sum.backward())?;
    let fisher_layers = match kind {
        FisherKind::Empirical => None,
        FisherKind::Sampled => {
            let drawn = one_hot::<B>(&fisher_labels, classes, &device);
            let mut recorder = Recorder::<B>::new();
            let logits = model.forward_ops(input, &mut recorder);
            Some(recorder.layer_grads(&nll_sum(logits, drawn).backward())?)
        }
    };
    Ok(RecordedPasses { m, loss, fisher_labels, true_layers, fisher_layers })
}

/// The labels ỹᵢ of the score vectors at step `step`: the true labels (argmax of `targets`)
/// for the empirical Fisher, else one draw per row of softmax(`logits`) from the stream
/// `rng_for(seed, [FISHER, step])` (shared by every natural-gradient method, so that methods
/// with the same seed draw the same labels at the same step).
pub(crate) fn fisher_labels<B: AutodiffBackend>(
    kind: FisherKind,
    seed: u64,
    step: u64,
    logits: &Tensor<B, 2>,
    targets: &Tensor<B, 2>,
) -> Vec<usize> {
    let classes = logits.dims()[1];
    match kind {
        FisherKind::Empirical => {
            targets.clone().inner().argmax(1).into_data().iter::<i64>().map(|v| v as usize).collect::<Vec<_>>()
        }
        FisherKind::Sampled => {
            let probs = to_host(softmax(logits.clone().inner(), 1));
            let mut rng = slt_core::seed::rng_for(seed, &[slt_core::seed::stream::FISHER, step]);
            probs
                .chunks(classes)
                .map(|p| {
                    let u: f64 = rng.random::<f64>() * p.iter().sum::<f64>();
                    let mut acc = 0.0;
                    p.iter()
                        .position(|&q| {
                            acc += q;
                            u < acc
                        })
                        .unwrap_or(classes - 1)
                })
                .collect()
        }
    }
}

/// One-hot rows `[labels.len(), classes]`.
pub(crate) fn one_hot<B: burn::tensor::backend::Backend>(
    labels: &[usize],
    classes: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut one_hot = vec![0.0f64; labels.len() * classes];
    for (i, &k) in labels.iter().enumerate() {
        one_hot[i * classes + k] = 1.0;
    }
    Tensor::from_data(TensorData::new(one_hot, [labels.len(), classes]), device)
}

fn column<B: burn::tensor::backend::Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
}

/// Adds `x` to an optional accumulator.
fn accumulate<B: burn::tensor::backend::Backend>(acc: &mut Option<Tensor<B, 2>>, x: Tensor<B, 2>) {
    *acc = Some(match acc.take() {
        Some(a) => a + x,
        None => x,
    });
}

/// Solves (G + shift·I) x = b in f64: Cholesky, or (recovery) the eigendecomposition with the
/// negative eigenvalues of G clipped to zero. Returns x and whether the recovery was used.
fn solve_shifted(gram: &DMatrix<f64>, shift: f64, rhs: &DVector<f64>) -> (DVector<f64>, bool) {
    let m = gram.nrows();
    let shifted = gram + DMatrix::<f64>::identity(m, m) * shift;
    if let Some(chol) = shifted.cholesky() {
        return (chol.solve(rhs), false);
    }
    let eig = gram.clone().symmetric_eigen();
    let projected = eig.eigenvectors.transpose() * rhs;
    let scaled =
        DVector::from_iterator(m, projected.iter().zip(eig.eigenvalues.iter()).map(|(p, l)| p / (l.max(0.0) + shift)));
    (eig.eigenvectors * scaled, true)
}

impl<B: AutodiffBackend> Ngd<B> {
    /// A fresh optimiser.
    pub fn new(config: NgdConfig) -> Result<Self, OptimError> {
        config.validate()?;
        Ok(Self { config, sgd: Sgd::new(config.sgd())?, steps: 0 })
    }

    /// The configuration.
    pub fn config(&self) -> &NgdConfig {
        &self.config
    }

    /// Steps taken so far (it indexes the label draws).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Changes the learning rate (split runs).
    pub fn set_lr(&mut self, lr: f64) -> Result<(), OptimError> {
        self.sgd.set_lr(lr)?;
        self.config.lr = lr;
        Ok(())
    }

    /// F_s⁻¹g of `model` on the batch (`input`, one-hot or soft `targets` `[m, classes]`),
    /// without changing anything. Labels are drawn for the step index [`Ngd::steps`].
    pub fn natural_gradient<I: Clone, M: TappedModel<B, I> + AutodiffModule<B>>(
        &self,
        model: &M,
        input: I,
        targets: Tensor<B, 2>,
    ) -> Result<NaturalGradient<B>, OptimError> {
        let layout = ParamLayout::of(model);
        let d = layout.len as f64;
        let passes = record_passes(model, input, targets, &layout, self.config.fisher, self.config.seed, self.steps)?;
        let RecordedPasses { m, loss, fisher_labels, true_layers, fisher_layers } = passes;

        // Gram matrices: H = ⟨∇ℓᵢ, ∇ℓⱼ⟩ (true labels), G = ⟨∇ℓ̃ᵢ, ∇ℓ̃ⱼ⟩, C = ⟨∇ℓ̃ᵢ, ∇ℓⱼ⟩.
        let (mut true_gram, mut fisher_gram, mut cross) = (None, None, None);
        let fisher_of = |l: usize| fisher_layers.as_ref().map(|f| &f[l]);
        for (l, layer) in true_layers.iter().enumerate() {
            match (layer, fisher_of(l)) {
                (LayerGrads::Affine { bias, input, delta, .. }, fisher) => {
                    let mut kernel = input.clone().matmul(input.clone().transpose());
                    if bias.is_some() {
                        kernel = kernel + 1.0;
                    }
                    accumulate(&mut true_gram, kernel.clone() * delta.clone().matmul(delta.clone().transpose()));
                    if let Some(LayerGrads::Affine { delta: fd, .. }) = fisher {
                        accumulate(&mut fisher_gram, kernel.clone() * fd.clone().matmul(fd.clone().transpose()));
                        accumulate(&mut cross, kernel * fd.clone().matmul(delta.clone().transpose()));
                    }
                }
                (LayerGrads::PerExample { grads, .. }, fisher) => {
                    accumulate(&mut true_gram, grads.clone().matmul(grads.clone().transpose()));
                    if let Some(LayerGrads::PerExample { grads: fg, .. }) = fisher {
                        accumulate(&mut fisher_gram, fg.clone().matmul(fg.clone().transpose()));
                        accumulate(&mut cross, fg.clone().matmul(grads.clone().transpose()));
                    }
                }
            }
        }
        let true_gram = true_gram.ok_or_else(|| OptimError::UnsupportedModel("the model has no parameters".into()))?;
        let grad_norm = (true_gram.clone().sum().into_scalar().elem::<f64>()).max(0.0).sqrt() / m as f64;
        let gram_host = to_host(fisher_gram.unwrap_or_else(|| true_gram.clone()));
        if !grad_norm.is_finite() || gram_host.iter().any(|v| !v.is_finite()) {
            return Err(OptimError::NonFiniteGradient { grad_norm });
        }
        let gram = DMatrix::from_row_slice(m, m, &gram_host);
        let gram = (&gram + gram.transpose()) * 0.5;
        let fisher_trace = gram.trace() / m as f64;
        let kappa = self.config.alpha / d * fisher_trace.max(self.config.fisher_eps);
        if !(kappa > 0.0 && kappa.is_finite()) {
            return Err(OptimError::SingularFisher(format!(
                "κ = (α/d)·max(tr F = {fisher_trace}, ε = {}) = {kappa}: F + κI is singular; use fisher_eps > 0",
                self.config.fisher_eps
            )));
        }
        let shift = m as f64 * kappa;
        // F_s⁻¹g = Σⱼ pⱼ∇ℓⱼ + Σᵢ qᵢ∇ℓ̃ᵢ.
        let (p, q, recovered) = match &cross {
            None => {
                // Empirical: g = Sᵀ1/√m ⇒ F_s⁻¹g = Σⱼ [(Ĝ + mκI)⁻¹1]ⱼ ∇ℓⱼ.
                let (w, rec) = solve_shifted(&gram, shift, &DVector::from_element(m, 1.0));
                (w.as_slice().to_vec(), None, rec)
            }
            Some(cross) => {
                // Sampled: v = (Ĝ + mκI)⁻¹Ĉ1/m; F_s⁻¹g = (1/κ)[(1/m)Σ∇ℓⱼ − Σ vᵢ∇ℓ̃ᵢ].
                let c = to_host(cross.clone().sum_dim(1));
                let rhs = DVector::from_iterator(m, c.iter().map(|x| x / m as f64));
                let (v, rec) = solve_shifted(&gram, shift, &rhs);
                let p = vec![1.0 / shift; m];
                let q: Vec<f64> = v.iter().map(|x| -x / kappa).collect();
                (p, Some(q), rec)
            }
        };
        let inner_device = true_gram.device();
        let p = column::<Inner<B>>(&p, &inner_device);
        let q = q.map(|q| column::<Inner<B>>(&q, &inner_device));
        let mut directions = HashMap::new();
        let mut norm_sq = Vec::new();
        for (l, layer) in true_layers.into_iter().enumerate() {
            let fisher = fisher_of(l);
            match layer {
                LayerGrads::Affine { weight, bias, input, delta } => {
                    let mut coeffs = delta * p.clone();
                    if let (Some(q), Some(LayerGrads::Affine { delta: fd, .. })) = (&q, fisher) {
                        coeffs = coeffs + fd.clone() * q.clone();
                    }
                    let dw: Tensor<Inner<B>, 1> = input.transpose().matmul(coeffs.clone()).flatten(0, 1);
                    norm_sq.push(dw.clone().square().sum());
                    directions.insert(weight, dw);
                    if let Some(bias) = bias {
                        let db: Tensor<Inner<B>, 1> = coeffs.sum_dim(0).flatten(0, 1);
                        norm_sq.push(db.clone().square().sum());
                        directions.insert(bias, db);
                    }
                }
                LayerGrads::PerExample { weight, weight_len, bias, grads } => {
                    let mut coeffs = grads * p.clone();
                    if let (Some(q), Some(LayerGrads::PerExample { grads: fg, .. })) = (&q, fisher) {
                        coeffs = coeffs + fg.clone() * q.clone();
                    }
                    let total: Tensor<Inner<B>, 1> = coeffs.sum_dim(0).flatten(0, 1);
                    let len = total.dims()[0];
                    norm_sq.push(total.clone().square().sum());
                    directions.insert(weight, total.clone().slice([0..weight_len]));
                    if let Some(bias) = bias {
                        directions.insert(bias, total.slice([weight_len..len]));
                    }
                }
            }
        }
        let norm = Tensor::cat(norm_sq, 0).sum().into_scalar().elem::<f64>().sqrt();
        if !norm.is_finite() {
            return Err(OptimError::NonFiniteGradient { grad_norm });
        }
        Ok(NaturalGradient { directions, loss, grad_norm, norm, kappa, fisher_trace, fisher_labels, recovered })
    }

    /// One step w ← w − η·F_s⁻¹g (then momentum/Nesterov/weight decay as configured). On error
    /// the model is returned unchanged inside the error path of the caller: nothing is applied.
    pub fn step<I: Clone, M: TappedModel<B, I> + AutodiffModule<B>>(
        &mut self,
        model: M,
        input: I,
        targets: Tensor<B, 2>,
    ) -> Result<(M, NgdStats), OptimError> {
        let mut natural = self.natural_gradient(&model, input, targets)?;
        let mut update_norm = natural.norm;
        let target = if self.config.fixed_step {
            Some(1.0)
        } else if self.config.normalize {
            Some(natural.grad_norm)
        } else {
            None
        };
        if let (Some(target), true) = (target, natural.norm > 0.0) {
            let scale = target / natural.norm;
            natural.directions = natural.directions.into_iter().map(|(id, d)| (id, d * scale)).collect();
            update_norm = target;
        }
        let (model, _) = self.sgd.step_with_directions(model, &natural.directions)?;
        self.steps += 1;
        Ok((
            model,
            NgdStats {
                step: StepStats { update_norm, grad_norm: natural.grad_norm },
                loss: natural.loss,
                kappa: natural.kappa,
                fisher_trace: natural.fisher_trace,
                recovered: natural.recovered,
            },
        ))
    }
}

impl<B: AutodiffBackend> crate::OptimizerState<B> for Ngd<B> {
    fn export_state<M: AutodiffModule<B>>(&self, model: &M) -> Vec<(String, Vec<f64>)> {
        let mut state = crate::OptimizerState::export_state(&self.sgd, model);
        state.push(("steps".to_string(), vec![self.steps as f64]));
        state
    }

    fn import_state<M: AutodiffModule<B>>(
        &mut self,
        model: &M,
        state: &HashMap<String, Vec<f64>>,
    ) -> Result<(), OptimError> {
        let steps = state
            .get("steps")
            .and_then(|v| v.first().copied())
            .ok_or_else(|| OptimError::InvalidState("no 'steps' entry".into()))?;
        crate::OptimizerState::import_state(&mut self.sgd, model, state)?;
        self.steps = steps as u64;
        Ok(())
    }
}
