//! K-FAC: natural gradient descent with a Kronecker-factored approximation of the Fisher
//! (Martens & Grosse 2015, "Optimizing neural networks with Kronecker-factored approximate
//! curvature", ICML), damped with the paper's κ rule:
//!
//! w ← w − η·(F̂ + κI)⁻¹g,   κ = (α/d)·max(tr F̂, ε),
//!
//! with F̂ block-diagonal over layers and each affine layer's block a Kronecker product A_l ⊗ G_l.
//!
//! # Scaling conventions
//!
//! The Fisher approximated is the same one [`crate::Ngd`] uses exactly: F = (1/m)Σᵢ sᵢsᵢᵀ with
//! sᵢ = ∇ℓ̃ᵢ the gradient of example i's own loss ℓ̃ᵢ = −log p(ỹᵢ|xᵢ, w) (ỹ sampled from the
//! model, or the true labels for [`FisherKind::Empirical`]); g = ∇L is the gradient of the
//! **mean** loss L = (1/m)Σᵢ ℓᵢ with the true labels. The [`Recorder`](crate::taps::Recorder) backpropagates the
//! *sum* Σᵢ ℓᵢ, so its output-gradient rows δᵢ = ∂ℓᵢ/∂zᵢ are already per-example gradients:
//!
//! * affine layer y = x·W + b, W `[in, out]`, augmented input āᵢ = (aᵢ, 1) ∈ ℝ^{in+1} (no 1
//!   without a bias) and W̄ = [W; bᵀ] `[(in+1), out]`. Flattening W̄ row-major — which is the
//!   parameter layout: W row-major, then b — gives vec(∇_W̄ ℓᵢ) = vec(āᵢδᵢᵀ) = āᵢ ⊗ δᵢ, so
//!   F_l = (1/m)Σᵢ (āᵢāᵢᵀ) ⊗ (δ̃ᵢδ̃ᵢᵀ) ≈ A_l ⊗ G_l with
//!   **A_l = (1/m)Σᵢ āᵢāᵢᵀ and G_l = (1/m)Σᵢ δ̃ᵢδ̃ᵢᵀ — no factor m²**. (Implementations that
//!   backpropagate the mean loss get δᵢ/m and multiply G by m² to undo it; our δ are not
//!   scaled.) The approximation is exact for m = 1, where both sides are one rank-one term,
//!   and tr(A_l ⊗ G_l) = tr A_l · tr G_l.
//! * g_l = (1/m)Σᵢ āᵢ⊗δᵢ, i.e. ∇_W L = aᵀδ/m, ∇_b L = 1ᵀδ/m (true-label pass).
//! * convolutions ([`LayerGrads::PerExample`], per-example gradients rᵢ): a **diagonal** block,
//!   D_l = (1/m)Σᵢ r̃ᵢ ⊙ r̃ᵢ, solved elementwise g/(D_l + κ). This is a documented fallback;
//!   the Kronecker factorisation of convolutions (KFC, Grosse & Martens 2016) is out of scope.
//!
//! tr F̂ = Σ_affine tr A_l·tr G_l + Σ_conv Σ D_l, and d is the number of parameters, so κ is the
//! paper's rule applied to F̂ (it equals [`crate::Ngd`]'s κ whenever F̂ = F, e.g. m = 1 on a
//! one-layer model).
//!
//! # Running averages and inverses
//!
//! At each step the batch estimates Â, Ĝ, D̂ update exponential running averages
//! A ← decay·A + (1 − decay)·Â (likewise G, D); the first step initialises them with the batch
//! estimates. Per affine layer, (A ⊗ G + κI)⁻¹vec(Ḡ) with Ḡ = ∇_W̄ L `[(in+1), out]` is solved
//! exactly through eigendecompositions A = U_A Λ_A U_Aᵀ, G = U_G Λ_G U_Gᵀ:
//! V = U_Aᵀ Ḡ U_G, V_ij ← V_ij/(λ_A,i λ_G,j + κ), direction = U_A V U_Gᵀ (for row-major vec,
//! (A ⊗ G) vec(X) = vec(A X G)). The eigendecompositions are computed on the host in f64
//! (nalgebra's `SymmetricEigen`, eigenvalues below zero — rounding — clipped to 0, so every
//! denominator is ≥ κ) at the first [`WARMUP_STEPS`] steps and then every
//! [`KfacConfig::inverse_period`] steps, from the running averages after that step's update;
//! in between the cached eigenvectors and eigenvalues are reused, while κ (from the current
//! running averages) is recomputed at every step. The rotations run on the backend's device
//! in its float precision.
//!
//! Momentum, Nesterov and weight decay, if set, apply to the K-FAC direction afterwards,
//! through [`Sgd`], as for [`crate::Ngd`]. Labels ỹ are drawn exactly as [`crate::Ngd`] draws
//! them (same stream, same step index), so both methods with the same seed see the same ỹ.

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::{AutodiffModule, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use nalgebra::{DMatrix, DVector};
use slt_core::layer_ops::TappedModel;
use slt_core::ParamLayout;

use crate::ngd::{record_passes, to_host, FisherKind, RecordedPasses};
use crate::taps::LayerGrads;
use crate::{OptimError, Sgd, SgdConfig, StepStats};

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// The eigendecompositions are recomputed at every one of the first `WARMUP_STEPS` steps
/// (the running averages move fast at first), then every [`KfacConfig::inverse_period`] steps.
pub const WARMUP_STEPS: u64 = 5;

/// Hyperparameters of [`Kfac`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KfacConfig {
    /// Learning rate η > 0.
    pub lr: f64,
    /// Smoothing strength α > 0 in κ = (α/d)·max(tr F̂, ε).
    pub alpha: f64,
    /// Floor ε ≥ 0 on tr F̂ in κ.
    pub fisher_eps: f64,
    /// Sampled (default) or empirical Fisher.
    #[serde(default)]
    pub fisher: FisherKind,
    /// Running-average rate ∈ [0, 1): A ← decay·A + (1 − decay)·Â (0: batch estimates only).
    #[serde(default = "default_decay")]
    pub decay: f64,
    /// Recompute the eigendecompositions every this many steps (≥ 1; every step during the
    /// first [`WARMUP_STEPS`]).
    #[serde(default = "default_inverse_period")]
    pub inverse_period: u64,
    /// Momentum μ ∈ [0, 1) applied to the K-FAC direction.
    #[serde(default)]
    pub momentum: f64,
    /// Nesterov momentum (needs μ > 0).
    #[serde(default)]
    pub nesterov: bool,
    /// L2 weight decay λ ≥ 0, added to the K-FAC direction.
    #[serde(default)]
    pub weight_decay: f64,
    /// Seed of the sampled labels (label draws depend only on it and the step index).
    #[serde(default)]
    pub seed: u64,
}

fn default_decay() -> f64 {
    0.95
}

fn default_inverse_period() -> u64 {
    20
}

impl KfacConfig {
    fn sgd(&self) -> SgdConfig {
        SgdConfig { lr: self.lr, momentum: self.momentum, nesterov: self.nesterov, weight_decay: self.weight_decay }
    }

    /// Checks the ranges stated on each field.
    pub fn validate(&self) -> Result<(), OptimError> {
        crate::ngd::validate_smoothing(self.alpha, self.fisher_eps)?;
        if !(0.0..1.0).contains(&self.decay) {
            return Err(OptimError::InvalidConfig(format!("decay = {} must lie in [0, 1)", self.decay)));
        }
        if self.inverse_period == 0 {
            return Err(OptimError::InvalidConfig("inverse_period = 0 must be at least 1".into()));
        }
        self.sgd().validate()
    }
}

impl Default for KfacConfig {
    /// The paper's κ rule (α = 1e-2, ε = 1e-10), η = 1e-2, decay 0.95, inverses every 20 steps,
    /// no momentum.
    fn default() -> Self {
        Self {
            lr: 1e-2,
            alpha: 1e-2,
            fisher_eps: 1e-10,
            fisher: FisherKind::Sampled,
            decay: default_decay(),
            inverse_period: default_inverse_period(),
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            seed: 0,
        }
    }
}

/// What a K-FAC step reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct KfacStats {
    /// `update_norm` = ‖(F̂ + κI)⁻¹g‖, `grad_norm` = ‖g‖.
    pub step: StepStats,
    /// Mean minibatch loss before the step.
    pub loss: f64,
    /// κ = (α/d)·max(tr F̂, ε).
    pub kappa: f64,
    /// tr F̂ of the running Kronecker (and diagonal) factors.
    pub fisher_trace: f64,
    /// The eigendecompositions were recomputed at this step.
    pub recomputed: bool,
}

/// S = U diag(λ) Uᵀ of one factor: host f64 (exported) and its copy on the device.
#[derive(Debug)]
struct Eigen<B: AutodiffBackend> {
    /// Eigenvalues, clipped at 0.
    values: DVector<f64>,
    /// Eigenvectors (columns).
    vectors: DMatrix<f64>,
    values_dev: Tensor<Inner<B>, 1>,
    vectors_dev: Tensor<Inner<B>, 2>,
}

impl<B: AutodiffBackend> Eigen<B> {
    fn of(s: &DMatrix<f64>, device: &burn::tensor::Device<Inner<B>>) -> Self {
        let eig = s.clone().symmetric_eigen();
        Self::from_parts(eig.eigenvalues.map(|v| v.max(0.0)), eig.eigenvectors, device)
    }

    fn from_parts(values: DVector<f64>, vectors: DMatrix<f64>, device: &burn::tensor::Device<Inner<B>>) -> Self {
        let n = values.len();
        let values_dev = Tensor::from_data(TensorData::new(values.as_slice().to_vec(), [n]), device);
        let row_major = vectors.transpose().as_slice().to_vec();
        let vectors_dev = Tensor::from_data(TensorData::new(row_major, [n, n]), device);
        Self { values, vectors, values_dev, vectors_dev }
    }
}

/// The curvature state of one recorded layer (in recording order).
#[derive(Debug)]
enum Factor<B: AutodiffBackend> {
    /// Affine layer: running A `[(in+1)²]`, G `[out²]` and their cached eigendecompositions.
    Kronecker { a: DMatrix<f64>, g: DMatrix<f64>, eigen: Arc<(Eigen<B>, Eigen<B>)> },
    /// Convolution: running diagonal (1/m)Σ r̃ᵢ².
    Diagonal { diag: DVector<f64> },
}

/// The K-FAC direction at one point, per parameter, with what it was computed from.
pub struct KfacGradient<B: AutodiffBackend> {
    /// (F̂ + κI)⁻¹g per parameter, flattened row-major (inner backend).
    pub directions: HashMap<ParamId, Tensor<Inner<B>, 1>>,
    /// Mean minibatch loss with the true labels.
    pub loss: f64,
    /// ‖g‖.
    pub grad_norm: f64,
    /// ‖(F̂ + κI)⁻¹g‖.
    pub norm: f64,
    /// κ used.
    pub kappa: f64,
    /// tr F̂ (running factors, this batch included).
    pub fisher_trace: f64,
    /// The labels ỹᵢ of the score vectors.
    pub fisher_labels: Vec<usize>,
    /// Whether the eigendecompositions were recomputed for this direction.
    pub recomputed: bool,
    /// The curvature state after this batch, committed by [`Kfac::step`].
    pending: Vec<Factor<B>>,
}

/// K-FAC with the paper's κ damping.
#[derive(Debug)]
pub struct Kfac<B: AutodiffBackend> {
    config: KfacConfig,
    sgd: Sgd<B>,
    steps: u64,
    layers: Vec<Factor<B>>,
}

/// A layer's running factors (A, G; a diagonal block keeps its diagonal as an n×1 A and an
/// empty G) and the eigendecompositions cached for them, if any.
type Running<B> = (DMatrix<f64>, DMatrix<f64>, Option<Arc<(Eigen<B>, Eigen<B>)>>);

/// This batch's quantities of one layer, before they meet the running state.
enum Batch<B: AutodiffBackend> {
    Kronecker {
        weight: ParamId,
        bias: Option<ParamId>,
        /// ∇_W̄ L `[(in+1), out]`.
        grad: Tensor<Inner<B>, 2>,
        a: DMatrix<f64>,
        g: DMatrix<f64>,
    },
    Diagonal {
        weight: ParamId,
        weight_len: usize,
        bias: Option<ParamId>,
        grad: Tensor<Inner<B>, 1>,
        diag: DVector<f64>,
    },
}

/// A symmetric `[n, n]` device matrix on the host, symmetrised.
fn host_symmetric<B: burn::tensor::backend::Backend>(t: Tensor<B, 2>) -> DMatrix<f64> {
    let n = t.dims()[0];
    let s = DMatrix::from_row_slice(n, n, &to_host(t));
    (&s + s.transpose()) * 0.5
}

fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

impl<B: AutodiffBackend> Kfac<B> {
    /// A fresh optimiser (no curvature estimates yet).
    pub fn new(config: KfacConfig) -> Result<Self, OptimError> {
        config.validate()?;
        Ok(Self { config, sgd: Sgd::new(config.sgd())?, steps: 0, layers: Vec::new() })
    }

    /// The configuration.
    pub fn config(&self) -> &KfacConfig {
        &self.config
    }

    /// Steps taken so far (it indexes the label draws and the inverse schedule).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Changes the learning rate (split runs).
    pub fn set_lr(&mut self, lr: f64) -> Result<(), OptimError> {
        self.sgd.set_lr(lr)?;
        self.config.lr = lr;
        Ok(())
    }

    /// The running factors (A, G) of recorded layer `layer` (recording order), if it is affine
    /// and a step has been taken. A is `[(in+1), (in+1)]` (the last row/column is the bias's 1),
    /// G is `[out, out]`.
    pub fn kronecker_factors(&self, layer: usize) -> Option<(&DMatrix<f64>, &DMatrix<f64>)> {
        match self.layers.get(layer)? {
            Factor::Kronecker { a, g, .. } => Some((a, g)),
            Factor::Diagonal { .. } => None,
        }
    }

    /// The running diagonal block of recorded layer `layer`, if it is a convolution.
    pub fn diagonal_factor(&self, layer: usize) -> Option<&DVector<f64>> {
        match self.layers.get(layer)? {
            Factor::Diagonal { diag } => Some(diag),
            Factor::Kronecker { .. } => None,
        }
    }

    /// (F̂ + κI)⁻¹g of `model` on the batch (`input`, one-hot or soft `targets` `[m, classes]`)
    /// with the running factors updated by this batch, without changing anything (the updated
    /// factors are kept only by [`Kfac::step`]). Labels are drawn for step [`Kfac::steps`].
    pub fn natural_gradient<I: Clone, M: TappedModel<B, I> + AutodiffModule<B>>(
        &self,
        model: &M,
        input: I,
        targets: Tensor<B, 2>,
    ) -> Result<KfacGradient<B>, OptimError> {
        let layout = ParamLayout::of(model);
        let d = layout.len as f64;
        let passes = record_passes(model, input, targets, &layout, self.config.fisher, self.config.seed, self.steps)?;
        let RecordedPasses { m, loss, fisher_labels: labels, true_layers, fisher_layers } = passes;
        if !self.layers.is_empty() && self.layers.len() != true_layers.len() {
            return Err(OptimError::InvalidState(format!(
                "the optimiser holds factors of {} layers, the model recorded {}",
                self.layers.len(),
                true_layers.len()
            )));
        }

        let (batches, grad_norm) = Self::batch_estimates(&true_layers, fisher_layers.as_ref(), m)?;
        let running = self.running_factors(&batches)?;

        // tr F̂ and κ.
        let fisher_trace: f64 = batches
            .iter()
            .zip(&running)
            .map(|(b, (a, g, _))| match b {
                Batch::Kronecker { .. } => a.trace() * g.trace(),
                Batch::Diagonal { .. } => a.sum(),
            })
            .sum();
        let kappa = self.config.alpha / d * fisher_trace.max(self.config.fisher_eps);
        if !(kappa > 0.0 && kappa.is_finite()) {
            return Err(OptimError::SingularFisher(format!(
                "κ = (α/d)·max(tr F̂ = {fisher_trace}, ε = {}) = {kappa}: F̂ + κI is singular; use fisher_eps > 0",
                self.config.fisher_eps
            )));
        }

        let recomputed = self.steps < WARMUP_STEPS || self.steps.is_multiple_of(self.config.inverse_period);
        let (directions, norm_sq, pending) = Self::solve_layers(batches, running, kappa, recomputed);
        let norm = Tensor::cat(norm_sq, 0).sum().into_scalar().elem::<f64>().sqrt();
        if !norm.is_finite() {
            return Err(OptimError::NonFiniteGradient { grad_norm });
        }
        Ok(KfacGradient {
            directions,
            loss,
            grad_norm,
            norm,
            kappa,
            fisher_trace,
            fisher_labels: labels,
            recomputed,
            pending,
        })
    }

    /// This batch's quantities per layer: g (device) and the batch estimates of the factors
    /// (host, f64): A = (1/m)Σāāᵀ, G = (1/m)Σδ̃δ̃ᵀ for affine layers, the diagonal (1/m)Σr̃ᵢ² for
    /// the others; with ‖g‖.
    fn batch_estimates(
        true_layers: &[LayerGrads<B>],
        fisher_layers: Option<&Vec<LayerGrads<B>>>,
        m: usize,
    ) -> Result<(Vec<Batch<B>>, f64), OptimError> {
        let mf = m as f64;
        let mut batches: Vec<Batch<B>> = Vec::with_capacity(true_layers.len());
        let mut grad_sq = Vec::new();
        for (l, layer) in true_layers.iter().enumerate() {
            let fisher = fisher_layers.map_or(layer, |f| &f[l]);
            match (layer, fisher) {
                (LayerGrads::Affine { weight, bias, input, delta }, LayerGrads::Affine { delta: fd, .. }) => {
                    let abar = match bias {
                        Some(_) => Tensor::cat(vec![input.clone(), Tensor::ones([m, 1], &input.device())], 1),
                        None => input.clone(),
                    };
                    let abar_t = abar.clone().transpose();
                    let grad = abar_t.clone().matmul(delta.clone()).div_scalar(mf);
                    grad_sq.push(grad.clone().square().sum());
                    let a = host_symmetric(abar_t.matmul(abar).div_scalar(mf));
                    let g = host_symmetric(fd.clone().transpose().matmul(fd.clone()).div_scalar(mf));
                    batches.push(Batch::Kronecker { weight: *weight, bias: *bias, grad, a, g });
                }
                (
                    LayerGrads::PerExample { weight, weight_len, bias, grads },
                    LayerGrads::PerExample { grads: fg, .. },
                ) => {
                    let grad: Tensor<Inner<B>, 1> = grads.clone().sum_dim(0).flatten(0, 1).div_scalar(mf);
                    grad_sq.push(grad.clone().square().sum());
                    let diag = to_host(fg.clone().square().sum_dim(0)).into_iter().map(|v| v / mf);
                    let diag = DVector::from_iterator(grad.dims()[0], diag);
                    batches.push(Batch::Diagonal { weight: *weight, weight_len: *weight_len, bias: *bias, grad, diag });
                }
                _ => {
                    return Err(OptimError::UnsupportedModel(
                        "the true-label and sampled-label passes recorded different layers".into(),
                    ))
                }
            }
        }
        if batches.is_empty() {
            return Err(OptimError::UnsupportedModel("the model has no parameters".into()));
        }
        let grad_norm = Tensor::cat(grad_sq, 0).sum().into_scalar().elem::<f64>().max(0.0).sqrt();
        let finite = batches.iter().all(|b: &Batch<B>| match b {
            Batch::Kronecker { a, g, .. } => all_finite(a.as_slice()) && all_finite(g.as_slice()),
            Batch::Diagonal { diag, .. } => all_finite(diag.as_slice()),
        });
        if !grad_norm.is_finite() || !finite {
            return Err(OptimError::NonFiniteGradient { grad_norm });
        }
        Ok((batches, grad_norm))
    }

    /// The running factors after this batch: decay·old + (1 − decay)·batch, or the batch
    /// estimates at the first step, each with the eigendecomposition cached for it so far.
    fn running_factors(&self, batches: &[Batch<B>]) -> Result<Vec<Running<B>>, OptimError> {
        let decay = self.config.decay;
        let mix = |old: &DMatrix<f64>, new: DMatrix<f64>| -> Result<DMatrix<f64>, OptimError> {
            if old.shape() != new.shape() {
                return Err(OptimError::InvalidState(format!(
                    "a factor of shape {:?} does not fit the layer's {:?}",
                    old.shape(),
                    new.shape()
                )));
            }
            Ok(old * decay + new * (1.0 - decay))
        };
        let mut running = Vec::with_capacity(batches.len());
        for (l, batch) in batches.iter().enumerate() {
            let old = self.layers.get(l);
            match (batch, old) {
                (Batch::Kronecker { a, g, .. }, None) => running.push((a.clone(), g.clone(), None)),
                (Batch::Kronecker { a, g, .. }, Some(Factor::Kronecker { a: oa, g: og, eigen })) => {
                    running.push((mix(oa, a.clone())?, mix(og, g.clone())?, Some(eigen.clone())))
                }
                (Batch::Diagonal { diag, .. }, None) => {
                    let n = diag.len();
                    running.push((DMatrix::from_column_slice(n, 1, diag.as_slice()), DMatrix::zeros(0, 0), None))
                }
                (Batch::Diagonal { diag, .. }, Some(Factor::Diagonal { diag: od })) => {
                    let n = diag.len();
                    let old = DMatrix::from_column_slice(od.len(), 1, od.as_slice());
                    let new = DMatrix::from_column_slice(n, 1, diag.as_slice());
                    running.push((mix(&old, new)?, DMatrix::zeros(0, 0), None))
                }
                _ => {
                    return Err(OptimError::InvalidState(format!(
                        "layer {l} changed kind (affine / convolution) since the last step"
                    )))
                }
            }
        }
        Ok(running)
    }

    /// (F̂ + κI)⁻¹g per layer, eigendecomposing the running factors again when `recomputed`:
    /// for A ⊗ G = (Q_A ⊗ Q_G)(Λ_A ⊗ Λ_G)(Q_A ⊗ Q_G)ᵀ the direction is
    /// Q_A \[(Q_Aᵀ ∇_W̄ Q_G) / (λ_A λ_Gᵀ + κ)\] Q_Gᵀ; a diagonal block divides by diag + κ. Returns the directions, the squared norms of the
    /// pieces, and the factors to commit.
    #[allow(clippy::type_complexity)]
    fn solve_layers(
        batches: Vec<Batch<B>>,
        running: Vec<Running<B>>,
        kappa: f64,
        recomputed: bool,
    ) -> (HashMap<ParamId, Tensor<Inner<B>, 1>>, Vec<Tensor<Inner<B>, 1>>, Vec<Factor<B>>) {
        let inner_device = match &batches[0] {
            Batch::Kronecker { grad, .. } => grad.device(),
            Batch::Diagonal { grad, .. } => grad.device(),
        };
        let mut directions = HashMap::new();
        let mut norm_sq = Vec::new();
        let mut pending = Vec::with_capacity(batches.len());
        for (batch, (a, g, eigen)) in batches.into_iter().zip(running) {
            match batch {
                Batch::Kronecker { weight, bias, grad, .. } => {
                    let eigen = match eigen {
                        Some(e) if !recomputed => e,
                        _ => Arc::new((Eigen::of(&a, &inner_device), Eigen::of(&g, &inner_device))),
                    };
                    let (ea, eg) = (&eigen.0, &eigen.1);
                    let (n, out) = (ea.values.len(), eg.values.len());
                    let v = ea.vectors_dev.clone().transpose().matmul(grad).matmul(eg.vectors_dev.clone());
                    let denom = (ea.values_dev.clone().reshape([n, 1]) * eg.values_dev.clone().reshape([1, out]))
                        .add_scalar(kappa);
                    let dir = ea.vectors_dev.clone().matmul(v / denom).matmul(eg.vectors_dev.clone().transpose());
                    norm_sq.push(dir.clone().square().sum());
                    match bias {
                        Some(bias) => {
                            directions.insert(weight, dir.clone().slice([0..n - 1, 0..out]).flatten(0, 1));
                            directions.insert(bias, dir.slice([n - 1..n, 0..out]).flatten(0, 1));
                        }
                        None => {
                            directions.insert(weight, dir.flatten(0, 1));
                        }
                    }
                    pending.push(Factor::Kronecker { a, g, eigen });
                }
                Batch::Diagonal { weight, weight_len, bias, grad, .. } => {
                    let p = a.nrows();
                    let damped: Vec<f64> = a.iter().map(|v| v + kappa).collect();
                    let damped = Tensor::<Inner<B>, 1>::from_data(TensorData::new(damped, [p]), &inner_device);
                    let dir = grad / damped;
                    norm_sq.push(dir.clone().square().sum());
                    directions.insert(weight, dir.clone().slice([0..weight_len]));
                    if let Some(bias) = bias {
                        directions.insert(bias, dir.slice([weight_len..p]));
                    }
                    pending.push(Factor::Diagonal { diag: DVector::from_column_slice(a.as_slice()) });
                }
            }
        }
        (directions, norm_sq, pending)
    }

    /// One step w ← w − η·(F̂ + κI)⁻¹g (then momentum/Nesterov/weight decay as configured). On
    /// error nothing is applied: neither the model nor the running factors change.
    pub fn step<I: Clone, M: TappedModel<B, I> + AutodiffModule<B>>(
        &mut self,
        model: M,
        input: I,
        targets: Tensor<B, 2>,
    ) -> Result<(M, KfacStats), OptimError> {
        let natural = self.natural_gradient(&model, input, targets)?;
        let (model, _) = self.sgd.step_with_directions(model, &natural.directions)?;
        self.layers = natural.pending;
        self.steps += 1;
        Ok((
            model,
            KfacStats {
                step: StepStats { update_norm: natural.norm, grad_norm: natural.grad_norm },
                loss: natural.loss,
                kappa: natural.kappa,
                fisher_trace: natural.fisher_trace,
                recomputed: natural.recomputed,
            },
        ))
    }
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    m.transpose().as_slice().to_vec()
}

fn square_from(state: &HashMap<String, Vec<f64>>, key: &str) -> Result<DMatrix<f64>, OptimError> {
    let v = state.get(key).ok_or_else(|| OptimError::InvalidState(format!("no '{key}' entry")))?;
    let n = (v.len() as f64).sqrt().round() as usize;
    if n * n != v.len() {
        return Err(OptimError::InvalidState(format!("'{key}' has {} entries, not a square", v.len())));
    }
    Ok(DMatrix::from_row_slice(n, n, v))
}

fn vector_from(state: &HashMap<String, Vec<f64>>, key: &str, len: Option<usize>) -> Result<DVector<f64>, OptimError> {
    let v = state.get(key).ok_or_else(|| OptimError::InvalidState(format!("no '{key}' entry")))?;
    if let Some(len) = len {
        if v.len() != len {
            return Err(OptimError::InvalidState(format!("'{key}' has {} entries, expected {len}", v.len())));
        }
    }
    Ok(DVector::from_column_slice(v))
}

/// State entries: the inner [`Sgd`]'s `velocity`, `steps`, `kfac.layers` = [number of layers],
/// and per recorded layer l either `kfac.{l}.a`, `kfac.{l}.g` (running factors, row-major) with
/// `kfac.{l}.{a,g}.eigenvalues` and `kfac.{l}.{a,g}.eigenvectors` (the cached decompositions,
/// eigenvector matrices row-major), or `kfac.{l}.diag`. All values are exact f64 copies, so a
/// resumed run is bit-identical.
impl<B: AutodiffBackend> crate::OptimizerState<B> for Kfac<B> {
    fn export_state<M: AutodiffModule<B>>(&self, model: &M) -> Vec<(String, Vec<f64>)> {
        let mut state = crate::OptimizerState::export_state(&self.sgd, model);
        state.push(("steps".to_string(), vec![self.steps as f64]));
        state.push(("kfac.layers".to_string(), vec![self.layers.len() as f64]));
        for (l, factor) in self.layers.iter().enumerate() {
            match factor {
                Factor::Kronecker { a, g, eigen } => {
                    state.push((format!("kfac.{l}.a"), row_major(a)));
                    state.push((format!("kfac.{l}.g"), row_major(g)));
                    for (name, e) in [("a", &eigen.0), ("g", &eigen.1)] {
                        state.push((format!("kfac.{l}.{name}.eigenvalues"), e.values.as_slice().to_vec()));
                        state.push((format!("kfac.{l}.{name}.eigenvectors"), row_major(&e.vectors)));
                    }
                }
                Factor::Diagonal { diag } => state.push((format!("kfac.{l}.diag"), diag.as_slice().to_vec())),
            }
        }
        state
    }

    fn import_state<M: AutodiffModule<B>>(
        &mut self,
        model: &M,
        state: &HashMap<String, Vec<f64>>,
    ) -> Result<(), OptimError> {
        let first = |key: &str| {
            state
                .get(key)
                .and_then(|v| v.first().copied())
                .ok_or_else(|| OptimError::InvalidState(format!("no '{key}' entry")))
        };
        let steps = first("steps")?;
        let count = first("kfac.layers")? as usize;
        let device = model.devices().into_iter().next().unwrap_or_default();
        let mut layers = Vec::with_capacity(count);
        for l in 0..count {
            if state.contains_key(&format!("kfac.{l}.diag")) {
                layers.push(Factor::Diagonal { diag: vector_from(state, &format!("kfac.{l}.diag"), None)? });
                continue;
            }
            let a = square_from(state, &format!("kfac.{l}.a"))?;
            let g = square_from(state, &format!("kfac.{l}.g"))?;
            let eigen = |name: &str, n: usize| -> Result<Eigen<B>, OptimError> {
                let values = vector_from(state, &format!("kfac.{l}.{name}.eigenvalues"), Some(n))?;
                let vectors = square_from(state, &format!("kfac.{l}.{name}.eigenvectors"))?;
                if vectors.nrows() != n {
                    return Err(OptimError::InvalidState(format!("'kfac.{l}.{name}.eigenvectors' is not {n}×{n}")));
                }
                Ok(Eigen::from_parts(values, vectors, &device))
            };
            let eigen = Arc::new((eigen("a", a.nrows())?, eigen("g", g.nrows())?));
            layers.push(Factor::Kronecker { a, g, eigen });
        }
        crate::OptimizerState::import_state(&mut self.sgd, model, state)?;
        self.steps = steps as u64;
        self.layers = layers;
        Ok(())
    }
}
