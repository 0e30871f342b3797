//! Recording, in one forward and one backward pass, what per-example curvature needs from each
//! layer: its input aᵢ and the gradient δᵢ = ∂ℓᵢ/∂(layer output) of every example's loss.
//!
//! The recorder evaluates each layer with *detached* weights and adds a zero tensor that
//! requires a gradient (a "probe") to the layer's output. The backward pass of Σᵢ ℓᵢ then
//! yields δ as the probe's gradient, while burn computes no weight gradient at all (those are
//! formed from a and δ by the methods that need them). Since example i's loss depends only on
//! row i of every layer output, row i of δ is the gradient of ℓᵢ alone.
//!
//! Per-example gradients: affine layer y = x·W + b: ∇_W ℓᵢ = aᵢ δᵢᵀ, ∇_b ℓᵢ = δᵢ (never formed
//! by NGD: it only needs ⟨∇ℓᵢ, ∇ℓⱼ⟩ = (aᵢ·aⱼ + 1)(δᵢ·δⱼ)). Convolution: with Pᵢ the
//! `[c_in·k_h·k_w, L]` patch matrix of example i (im2col, `unfold4d`) and Δᵢ its output gradient
//! `[c_out, L]`: ∇_K ℓᵢ = Δᵢ Pᵢᵀ, ∇_b ℓᵢ = Δᵢ·1 (materialised: LeNet's convolutions are small).

use std::collections::HashSet;

use burn::module::{Param, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::module::{conv2d, unfold4d};
use burn::tensor::ops::{ConvOptions, UnfoldOptions};
use burn::tensor::Tensor;
use slt_core::layer_ops::LayerOps;
use slt_core::ParamLayout;

use crate::OptimError;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// One recorded layer, before the backward pass.
enum Tap<B: AutodiffBackend> {
    Affine {
        weight: ParamId,
        bias: Option<ParamId>,
        input: Tensor<Inner<B>, 2>,
        probe: Tensor<B, 2>,
    },
    Conv {
        weight: ParamId,
        weight_shape: [usize; 4],
        bias: Option<ParamId>,
        input: Tensor<Inner<B>, 4>,
        probe: Tensor<B, 4>,
        options: ConvOptions<2>,
    },
}

/// A [`LayerOps`] that records every layer's input and attaches a gradient probe to its output.
pub struct Recorder<B: AutodiffBackend> {
    taps: Vec<Tap<B>>,
}

impl<B: AutodiffBackend> Default for Recorder<B> {
    fn default() -> Self {
        Self { taps: Vec::new() }
    }
}

fn detached<B: AutodiffBackend, const D: usize>(param: &Param<Tensor<B, D>>) -> Tensor<B, D> {
    Tensor::from_inner(param.val().inner())
}

impl<B: AutodiffBackend> LayerOps<B> for Recorder<B> {
    fn affine(
        &mut self,
        x: Tensor<B, 2>,
        weight: &Param<Tensor<B, 2>>,
        bias: Option<&Param<Tensor<B, 1>>>,
    ) -> Tensor<B, 2> {
        let mut y = x.clone().matmul(detached(weight));
        if let Some(b) = bias {
            y = y + detached(b).unsqueeze_dim(0);
        }
        let probe = Tensor::<B, 2>::zeros(y.dims(), &y.device()).require_grad();
        self.taps.push(Tap::Affine {
            weight: weight.id,
            bias: bias.map(|b| b.id),
            input: x.inner(),
            probe: probe.clone(),
        });
        y + probe
    }

    fn conv2d(
        &mut self,
        x: Tensor<B, 4>,
        weight: &Param<Tensor<B, 4>>,
        bias: Option<&Param<Tensor<B, 1>>>,
        options: ConvOptions<2>,
    ) -> Tensor<B, 4> {
        let kernel = detached(weight);
        let weight_shape = kernel.dims();
        let y = conv2d(x.clone(), kernel, bias.map(detached), options.clone());
        let probe = Tensor::<B, 4>::zeros(y.dims(), &y.device()).require_grad();
        self.taps.push(Tap::Conv {
            weight: weight.id,
            weight_shape,
            bias: bias.map(|b| b.id),
            input: x.inner(),
            probe: probe.clone(),
            options,
        });
        y + probe
    }
}

/// A layer's per-example quantities after the backward pass (inner backend, no graph).
pub enum LayerGrads<B: AutodiffBackend> {
    /// Affine layer: inputs a `[m, in]` and output gradients δ `[m, out]` (rows per example).
    Affine {
        /// Id of the weight W `[in, out]`.
        weight: ParamId,
        /// Id of the bias b `[out]`, if the layer has one.
        bias: Option<ParamId>,
        /// The layer's inputs aᵢ, one row per example, `[m, in]`.
        input: Tensor<Inner<B>, 2>,
        /// The output gradients δᵢ = ∂ℓᵢ/∂yᵢ, one row per example, `[m, out]`.
        delta: Tensor<Inner<B>, 2>,
    },
    /// Any other layer: per-example gradients `[m, p]` of the weight (flattened row-major)
    /// followed, if there is a bias, by the bias.
    PerExample {
        /// Id of the weight (for a convolution, the kernel `[c_out, c_in, k_h, k_w]`).
        weight: ParamId,
        /// Number of weight entries: the first `weight_len` columns of `grads`.
        weight_len: usize,
        /// Id of the bias, if the layer has one (its gradients are the remaining columns).
        bias: Option<ParamId>,
        /// Per-example gradients ∇ℓᵢ, `[m, p]`: weight (row-major) then bias.
        grads: Tensor<Inner<B>, 2>,
    },
}

impl<B: AutodiffBackend> LayerGrads<B> {
    /// The parameters of the layer, weight first.
    pub fn params(&self) -> impl Iterator<Item = ParamId> {
        let (w, b) = match self {
            LayerGrads::Affine { weight, bias, .. } | LayerGrads::PerExample { weight, bias, .. } => (*weight, *bias),
        };
        std::iter::once(w).chain(b)
    }
}

impl<B: AutodiffBackend> Recorder<B> {
    /// A recorder with nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks that every float parameter of `model` went through exactly one recorded layer
    /// (otherwise the Fisher would silently miss or double-count it).
    pub fn check_coverage(&self, layout: &ParamLayout) -> Result<(), OptimError> {
        let mut seen = HashSet::new();
        for tap in &self.taps {
            let (w, b) = match tap {
                Tap::Affine { weight, bias, .. } | Tap::Conv { weight, bias, .. } => (*weight, *bias),
            };
            for id in std::iter::once(w).chain(b) {
                if !seen.insert(id) {
                    let name = layout.entries.iter().find(|e| e.id == id).map_or("?", |e| e.name.as_str());
                    return Err(OptimError::UnsupportedModel(format!(
                        "parameter '{name}' is used by more than one layer call in one forward pass (shared weights)"
                    )));
                }
            }
        }
        if let Some(missing) = layout.entries.iter().find(|e| !seen.contains(&e.id)) {
            return Err(OptimError::UnsupportedModel(format!(
                "parameter '{}' is not evaluated through LayerOps::affine or LayerOps::conv2d, so its Fisher block is unknown",
                missing.name
            )));
        }
        Ok(())
    }

    /// After `grads` = backward of Σᵢ ℓᵢ through the recorded forward pass: every layer's
    /// inputs and per-example output gradients (or per-example gradients, for convolutions).
    pub fn layer_grads(self, grads: &B::Gradients) -> Result<Vec<LayerGrads<B>>, OptimError> {
        self.taps
            .into_iter()
            .map(|tap| match tap {
                Tap::Affine { weight, bias, input, probe } => {
                    let delta = probe.grad(grads).unwrap_or_else(|| probe.inner().zeros_like());
                    Ok(LayerGrads::Affine { weight, bias, input, delta })
                }
                Tap::Conv { weight, weight_shape, bias, input, probe, options } => {
                    if options.groups != 1 {
                        return Err(OptimError::UnsupportedModel(format!(
                            "grouped convolution (groups = {}) is not supported",
                            options.groups
                        )));
                    }
                    let delta = probe.grad(grads).unwrap_or_else(|| probe.inner().zeros_like());
                    let [m, c_out, h, w] = delta.dims();
                    let delta = delta.reshape([m, c_out, h * w]);
                    let [_, _, k_h, k_w] = weight_shape;
                    let patches = unfold4d(
                        input,
                        [k_h, k_w],
                        UnfoldOptions::new(options.stride, options.padding, options.dilation),
                    );
                    let weight_len = weight_shape.iter().product::<usize>();
                    let per_weight = delta.clone().matmul(patches.swap_dims(1, 2)).reshape([m, weight_len]);
                    let grads = match bias {
                        Some(_) => Tensor::cat(vec![per_weight, delta.sum_dim(2).reshape([m, c_out])], 1),
                        None => per_weight,
                    };
                    Ok(LayerGrads::PerExample { weight, weight_len, bias, grads })
                }
            })
            .collect()
    }
}
