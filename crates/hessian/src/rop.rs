//! Exact Hessian-vector products by Pearlmutter's R-operator (Pearlmutter 1994, "Fast exact
//! multiplication by the Hessian"), on the plain backend, with what does not depend on v
//! computed once.
//!
//! For a model written as a chain of ops over [`LayerOps`] (affine, convolution, ReLU, tanh,
//! 2×2 max-pooling; reshapes between them are free) and a loss of its outputs with a known
//! Hessian ([`OutputLoss`]), Hv = ∇_w(∇_w L · v) is the forward-mode derivative of the
//! backward pass along v. With zₖ the output of op k, δₖ = ∂L/∂zₖ, and R{·} the directional
//! derivative along v:
//!
//! * R-forward: R{zₖ} = ∂fₖ/∂z · R{zₖ₋₁} + ∂fₖ/∂θₖ · vₖ (affine: R{a}·W + a·V + V_b);
//! * at the loss: R{δ_K} = ∇²ℓ(z_K) · R{z_K};
//! * R-backward: R{δₖ₋₁} = (∂fₖ/∂z)ᵀ R{δₖ} + R{(∂fₖ/∂z)ᵀ} δₖ and
//!   (Hv)ₖ = (∂fₖ/∂θₖ)ᵀ R{δₖ} + R{(∂fₖ/∂θₖ)ᵀ} δₖ (affine: R{a}ᵀδ + aᵀR{δ} and
//!   R{δ}Wᵀ + δVᵀ; ReLU and max-pooling are piecewise linear, so only their masks enter;
//!   tanh adds σ''(z)·R{z}·δ).
//!
//! The forward pass (inputs, masks, argmax indices) and the first backward pass (every δₖ) do
//! not depend on v: they are recorded once by [`PearlmutterHvp::new`], which also yields L and
//! ∇L. Each product then costs the R-forward and the R-backward only, about four matrix
//! products per affine layer (two for the first one, whose input does not depend on w), with
//! no autodiff graph. The result is exact: the same sums as the double-backward product
//! ([`ExactHvp`](crate::ExactHvp)) in another order, tested to agree to ≤ 1e-12 relative in
//! f64 on ReLU and tanh MLPs and LeNet-5 (`tests/rop.rs`).
//!
//! The model must evaluate every parameter through `ops` and be a chain: each recorded op
//! consumes the previous op's output, possibly reshaped. Both are checked when recording (the
//! input of each op is compared with the previous op's output, the model's output with the
//! last op's, and every float parameter must have been seen), so a model with a residual
//! connection or an activation called outside `ops` gets [`HessianError::NotAChain`] rather
//! than a wrong product.

use std::collections::HashMap;

use burn::module::{Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{ElementConversion, IndexingUpdateOp, Int, Tensor, TensorData, TensorPrimitive};
use slt_core::layer_ops::{max_pool_2x2, LayerOps, TappedModel};
use slt_core::ParamLayout;

use crate::autodiff::check_finite;
use crate::operator::{check_len, EvalSet, SymmetricOperator};
use crate::HessianError;

/// A loss of a model's outputs z `[m, k]` given targets t `[m, k]`, with the derivatives the
/// R-operator needs. All three are of the *mean* over the batch's m examples.
pub trait OutputLoss<B: Backend> {
    /// L(z) = (1/m) Σᵢ ℓ(zᵢ, tᵢ), shape `[1]`.
    fn value(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1>;
    /// ∂L/∂z, `[m, k]`.
    fn gradient(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2>;
    /// (∂²L/∂z²) r for r `[m, k]` (block-diagonal over examples).
    fn hessian_product(&self, z: Tensor<B, 2>, t: Tensor<B, 2>, r: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// Softmax cross-entropy with target distributions t (one-hot labels or soft targets):
/// ℓ(z, t) = −Σⱼ tⱼ log softmax(z)ⱼ; with p = softmax(z) and s = Σⱼ tⱼ,
/// ∂ℓ/∂z = s·p − t and ∂²ℓ/∂z² r = s·(p ⊙ r − p (p·r)).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftmaxCrossEntropy;

impl<B: Backend> OutputLoss<B> for SoftmaxCrossEntropy {
    fn value(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1> {
        let m = z.dims()[0] as f64;
        let log_p = burn::tensor::activation::log_softmax(z, 1);
        (log_p * t).sum().neg().div_scalar(m)
    }

    fn gradient(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        let m = z.dims()[0] as f64;
        let p = burn::tensor::activation::softmax(z, 1);
        (p * t.clone().sum_dim(1) - t).div_scalar(m)
    }

    fn hessian_product(&self, z: Tensor<B, 2>, t: Tensor<B, 2>, r: Tensor<B, 2>) -> Tensor<B, 2> {
        let m = z.dims()[0] as f64;
        let p = burn::tensor::activation::softmax(z, 1);
        let pr = (p.clone() * r.clone()).sum_dim(1);
        ((p.clone() * r - p * pr) * t.sum_dim(1)).div_scalar(m)
    }
}

/// Half squared error ℓ(z, t) = ½‖z − t‖² (Gaussian regression with unit variance):
/// ∂ℓ/∂z = z − t, ∂²ℓ/∂z² = I.
#[derive(Debug, Clone, Copy, Default)]
pub struct HalfSquaredError;

impl<B: Backend> OutputLoss<B> for HalfSquaredError {
    fn value(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1> {
        let m = z.dims()[0] as f64;
        (z - t).powi_scalar(2).sum().div_scalar(2.0 * m)
    }

    fn gradient(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        let m = z.dims()[0] as f64;
        (z - t).div_scalar(m)
    }

    fn hessian_product(&self, z: Tensor<B, 2>, _t: Tensor<B, 2>, r: Tensor<B, 2>) -> Tensor<B, 2> {
        r.div_scalar(z.dims()[0] as f64)
    }
}

fn flat<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, 1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

fn dims2(d: &[usize]) -> [usize; 2] {
    [d[0], d[1..].iter().product()]
}

fn dims4(d: &[usize]) -> [usize; 4] {
    [d[0], d[1], d[2], d[3]]
}

fn float<B: Backend, const D: usize>(p: B::FloatTensorPrimitive) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// ∂/∂x of ⟨g, conv2d(x, w)⟩ (burn's own conv backward).
fn conv_x_grad<B: Backend>(x: &Tensor<B, 4>, w: Tensor<B, 4>, g: Tensor<B, 4>, o: &ConvOptions<2>) -> Tensor<B, 4> {
    let p = B::conv2d_x_backward(
        x.clone().into_primitive().tensor(),
        w.into_primitive().tensor(),
        g.into_primitive().tensor(),
        o.clone(),
    );
    float(p)
}

/// ∂/∂w of ⟨g, conv2d(x, w)⟩.
fn conv_w_grad<B: Backend>(x: Tensor<B, 4>, w: &Tensor<B, 4>, g: Tensor<B, 4>, o: &ConvOptions<2>) -> Tensor<B, 4> {
    let p = B::conv2d_weight_backward(
        x.into_primitive().tensor(),
        w.clone().into_primitive().tensor(),
        g.into_primitive().tensor(),
        o.clone(),
    );
    float(p)
}

/// The 2×2 windows of x `[m, c, h, w]` as `[m, c, h/2, w/2, 4]` (odd edges dropped).
fn windows<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 5> {
    let [m, c, h, w] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 { x.slice([0..m, 0..c, 0..2 * h2, 0..2 * w2]) } else { x };
    x.reshape([m, c, h2, 2, w2, 2]).permute([0, 1, 2, 4, 3, 5]).reshape([m, c, h2, w2, 4])
}

/// The inverse of [`windows`]: `[m, c, h/2, w/2, 4]` back to `[m, c, h, w]`, zeros on odd edges.
fn unwindows<B: Backend>(y: Tensor<B, 5>, [m, c, h, w]: [usize; 4]) -> Tensor<B, 4> {
    let (h2, w2) = (h / 2, w / 2);
    let x = y.reshape([m, c, h2, w2, 2, 2]).permute([0, 1, 2, 4, 3, 5]).reshape([m, c, 2 * h2, 2 * w2]);
    if h % 2 == 1 || w % 2 == 1 {
        Tensor::zeros([m, c, h, w], &x.device()).slice_assign([0..m, 0..c, 0..2 * h2, 0..2 * w2], x)
    } else {
        x
    }
}

/// One recorded op of the chain.
enum Op<B: Backend> {
    Affine {
        input: Tensor<B, 2>,
        weight: Tensor<B, 2>,
        w: ParamId,
        b: Option<ParamId>,
    },
    Conv {
        input: Tensor<B, 4>,
        weight: Tensor<B, 4>,
        w: ParamId,
        b: Option<ParamId>,
        options: ConvOptions<2>,
    },
    /// 1 where the input was positive, else 0.
    Relu {
        mask: Tensor<B, 1>,
    },
    /// σ'(z) = 1 − tanh²z and σ''(z) = −2 tanh z (1 − tanh²z).
    Tanh {
        slope: Tensor<B, 1>,
        curvature: Tensor<B, 1>,
    },
    /// Position of each window's maximum, `[m, c, h/2, w/2, 1]`.
    MaxPool {
        index: Tensor<B, 5, Int>,
    },
}

struct Node<B: Backend> {
    op: Op<B>,
    in_dims: Vec<usize>,
    out_dims: Vec<usize>,
    /// δ = ∂L/∂(this op's output), flattened (set by the first backward pass).
    delta: Option<Tensor<B, 1>>,
}

impl<B: Backend> Node<B> {
    fn params(&self) -> impl Iterator<Item = ParamId> {
        let (w, b) = match &self.op {
            Op::Affine { w, b, .. } | Op::Conv { w, b, .. } => (Some(*w), *b),
            _ => (None, None),
        };
        w.into_iter().chain(b)
    }

    /// (∂f/∂z)ᵀ g: the adjoint of the op's input.
    fn input_adjoint(&self, g: Tensor<B, 1>) -> Tensor<B, 1> {
        match &self.op {
            Op::Affine { weight, .. } => flat(g.reshape(dims2(&self.out_dims)).matmul(weight.clone().transpose())),
            Op::Conv { input, weight, options, .. } => {
                flat(conv_x_grad(input, weight.clone(), g.reshape(dims4(&self.out_dims)), options))
            }
            Op::Relu { mask } => g * mask.clone(),
            Op::Tanh { slope, .. } => g * slope.clone(),
            Op::MaxPool { index } => {
                let [m, c, h2, w2] = dims4(&self.out_dims);
                let g = g.reshape([m, c, h2, w2, 1]);
                let spread =
                    Tensor::zeros([m, c, h2, w2, 4], &g.device()).scatter(4, index.clone(), g, IndexingUpdateOp::Add);
                flat(unwindows(spread, dims4(&self.in_dims)))
            }
        }
    }

    /// (∂f/∂θ)ᵀ g for each parameter of the op, flattened, given the op's input (or its
    /// tangent) `a`.
    fn param_adjoint(&self, a: Option<&Tensor<B, 1>>, g: Tensor<B, 1>) -> Vec<(ParamId, Tensor<B, 1>)> {
        let mut out = Vec::new();
        match &self.op {
            Op::Affine { input, w, b, .. } => {
                let g = g.reshape(dims2(&self.out_dims));
                let a = a.map_or_else(|| input.clone(), |a| a.clone().reshape(dims2(&self.in_dims)));
                if let Some(b) = b {
                    out.push((*b, flat(g.clone().sum_dim(0))));
                }
                out.push((*w, flat(a.transpose().matmul(g))));
            }
            Op::Conv { input, weight, w, b, options } => {
                let g = g.reshape(dims4(&self.out_dims));
                let a = a.map_or_else(|| input.clone(), |a| a.clone().reshape(dims4(&self.in_dims)));
                if let Some(b) = b {
                    out.push((*b, flat(g.clone().sum_dims(&[0, 2, 3]))));
                }
                out.push((*w, flat(conv_w_grad(a, weight, g, options))));
            }
            _ => {}
        }
        out
    }

    /// (Hv)_θ = (∂f/∂θ)ᵀ R{δ} + R{(∂f/∂θ)ᵀ} δ for the op's parameters; the second term,
    /// R{a}ᵀδ for an affine op (its conv analogue likewise), adds to the weight's piece only.
    fn param_hv(&self, r_delta: Tensor<B, 1>, r_in: Option<&Tensor<B, 1>>) -> Vec<(ParamId, Tensor<B, 1>)> {
        let mut pieces = self.param_adjoint(None, r_delta);
        if let Some(ra) = r_in {
            let delta = self.delta.clone().expect("δ recorded for every op");
            let (_, extra) = self.param_adjoint(Some(ra), delta).pop().expect("the weight comes last");
            let last = pieces.last_mut().expect("the weight comes last");
            last.1 = last.1.clone() + extra;
        }
        pieces
    }

    /// R{output} from R{input} (`None`: the input does not depend on w) and the pieces of v.
    fn tangent(&self, r_in: Option<&Tensor<B, 1>>, v: &HashMap<ParamId, Tensor<B, 1>>) -> Option<Tensor<B, 1>> {
        match &self.op {
            Op::Affine { input, weight, w, b } => {
                let vw = v[w].clone().reshape(weight.dims());
                let mut r = input.clone().matmul(vw);
                if let Some(ra) = r_in {
                    r = r + ra.clone().reshape(dims2(&self.in_dims)).matmul(weight.clone());
                }
                if let Some(b) = b {
                    r = r + v[b].clone().unsqueeze_dim(0);
                }
                Some(flat(r))
            }
            Op::Conv { input, weight, w, b, options } => {
                let vw = v[w].clone().reshape(weight.dims());
                let mut r = conv2d(input.clone(), vw, b.as_ref().map(|b| v[b].clone()), options.clone());
                if let Some(ra) = r_in {
                    r = r + conv2d(ra.clone().reshape(dims4(&self.in_dims)), weight.clone(), None, options.clone());
                }
                Some(flat(r))
            }
            Op::Relu { mask } => r_in.map(|r| r.clone() * mask.clone()),
            Op::Tanh { slope, .. } => r_in.map(|r| r.clone() * slope.clone()),
            Op::MaxPool { index } => r_in.map(|r| {
                let picked = windows(r.clone().reshape(dims4(&self.in_dims))).gather(4, index.clone());
                flat(picked)
            }),
        }
    }

    /// The R-backward step: adds (Hv)_θ of this op's parameters to `hv` and returns R{δ} of
    /// the op's input when `need_input` (given R{δ} of its output, its R{input} `r_in` and v).
    fn r_backward(
        &self,
        r_delta: Tensor<B, 1>,
        r_in: Option<&Tensor<B, 1>>,
        v: &HashMap<ParamId, Tensor<B, 1>>,
        need_input: bool,
        hv: &mut HashMap<ParamId, Tensor<B, 1>>,
    ) -> Option<Tensor<B, 1>> {
        let delta = || self.delta.clone().expect("δ recorded for every op");
        match &self.op {
            Op::Affine { weight, w, .. } => {
                hv.extend(self.param_hv(r_delta.clone(), r_in));
                need_input.then(|| {
                    let vw = v[w].clone().reshape(weight.dims());
                    let out = dims2(&self.out_dims);
                    flat(
                        r_delta.reshape(out).matmul(weight.clone().transpose())
                            + delta().reshape(out).matmul(vw.transpose()),
                    )
                })
            }
            Op::Conv { input, weight, w, options, .. } => {
                hv.extend(self.param_hv(r_delta.clone(), r_in));
                need_input.then(|| {
                    let vw = v[w].clone().reshape(weight.dims());
                    let out = dims4(&self.out_dims);
                    flat(
                        conv_x_grad(input, weight.clone(), r_delta.reshape(out), options)
                            + conv_x_grad(input, vw, delta().reshape(out), options),
                    )
                })
            }
            Op::Tanh { slope, curvature } => need_input.then(|| {
                let mut r = r_delta * slope.clone();
                if let Some(rz) = r_in {
                    r = r + rz.clone() * curvature.clone() * delta();
                }
                r
            }),
            Op::Relu { .. } | Op::MaxPool { .. } => need_input.then(|| self.input_adjoint(r_delta)),
        }
    }
}

/// A [`LayerOps`] that records the chain of ops of one forward pass.
struct Tape<B: Backend> {
    nodes: Vec<Node<B>>,
    last_output: Option<Tensor<B, 1>>,
    broken: Option<String>,
}

impl<B: Backend> Tape<B> {
    /// Checks that `x` is the previous op's output (reshapes aside).
    fn enter<const D: usize>(&mut self, x: &Tensor<B, D>, what: &str) {
        if self.broken.is_some() {
            return;
        }
        if let Some(prev) = &self.last_output {
            if !same_values(prev, &flat(x.clone())) {
                self.broken = Some(format!(
                    "the input of op {} ({what}) is not the output of op {} ({})",
                    self.nodes.len() + 1,
                    self.nodes.len(),
                    op_name(&self.nodes[self.nodes.len() - 1].op)
                ));
            }
        }
    }

    fn push<const D: usize, const E: usize>(&mut self, op: Op<B>, x: &Tensor<B, D>, y: &Tensor<B, E>) {
        self.nodes.push(Node { op, in_dims: x.dims().to_vec(), out_dims: y.dims().to_vec(), delta: None });
        self.last_output = Some(flat(y.clone()));
    }
}

fn same_values<B: Backend>(a: &Tensor<B, 1>, b: &Tensor<B, 1>) -> bool {
    a.dims() == b.dims() && (a.clone() - b.clone()).abs().max().into_scalar().elem::<f64>() == 0.0
}

fn op_name<B: Backend>(op: &Op<B>) -> &'static str {
    match op {
        Op::Affine { .. } => "affine",
        Op::Conv { .. } => "conv2d",
        Op::Relu { .. } => "relu",
        Op::Tanh { .. } => "tanh",
        Op::MaxPool { .. } => "max_pool_2x2",
    }
}

impl<B: Backend> LayerOps<B> for Tape<B> {
    fn affine(
        &mut self,
        x: Tensor<B, 2>,
        weight: &Param<Tensor<B, 2>>,
        bias: Option<&Param<Tensor<B, 1>>>,
    ) -> Tensor<B, 2> {
        self.enter(&x, "affine");
        let w = weight.val();
        let mut y = x.clone().matmul(w.clone());
        if let Some(b) = bias {
            y = y + b.val().unsqueeze_dim(0);
        }
        let op = Op::Affine { input: x.clone(), weight: w, w: weight.id, b: bias.map(|b| b.id) };
        self.push(op, &x, &y);
        y
    }

    fn conv2d(
        &mut self,
        x: Tensor<B, 4>,
        weight: &Param<Tensor<B, 4>>,
        bias: Option<&Param<Tensor<B, 1>>>,
        options: ConvOptions<2>,
    ) -> Tensor<B, 4> {
        self.enter(&x, "conv2d");
        let w = weight.val();
        let y = conv2d(x.clone(), w.clone(), bias.map(|b| b.val()), options.clone());
        let op = Op::Conv { input: x.clone(), weight: w, w: weight.id, b: bias.map(|b| b.id), options };
        self.push(op, &x, &y);
        y
    }

    fn relu<const D: usize>(&mut self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.enter(&x, "relu");
        let mask = flat(x.clone().greater_elem(0.0).float());
        let y = burn::tensor::activation::relu(x.clone());
        self.push(Op::Relu { mask }, &x, &y);
        y
    }

    fn tanh<const D: usize>(&mut self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.enter(&x, "tanh");
        let y = x.clone().tanh();
        let t = flat(y.clone());
        let slope = t.clone().powi_scalar(2).neg() + 1.0;
        let curvature = t * slope.clone() * (-2.0);
        self.push(Op::Tanh { slope, curvature }, &x, &y);
        y
    }

    fn max_pool_2x2(&mut self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.enter(&x, "max_pool_2x2");
        let index = windows(x.clone()).argmax(4);
        let y = max_pool_2x2(x.clone());
        self.push(Op::MaxPool { index }, &x, &y);
        y
    }
}

/// One batch of the evaluation set, recorded.
struct RecordedBatch<B: Backend> {
    nodes: Vec<Node<B>>,
    logits: Tensor<B, 2>,
    target: Tensor<B, 2>,
    weight: f64,
}

/// Exact Hessian-vector products by the R-operator on the plain backend `B` (no autodiff), for
/// a model written over [`LayerOps`] as a chain (see the [module docs](self)) and a loss of
/// its outputs ([`OutputLoss`]). Implements [`SymmetricOperator`], so every algorithm of the
/// crate takes it.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{backend::Backend, Tensor};
/// use slt_core::layer_ops::{LayerOps, TappedModel};
/// use slt_hessian::{EvalSet, HalfSquaredError, PearlmutterHvp, SymmetricOperator};
///
/// #[derive(Module, Debug)]
/// struct Line<B: Backend> {
///     w: Param<Tensor<B, 2>>, // [1, 1]
/// }
/// impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Line<B> {
///     fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
///         ops.affine(x, &self.w, None)
///     }
/// }
/// type B = burn_ndarray::NdArray<f64>;
/// let device = Default::default();
/// let model = Line::<B> { w: Param::from_tensor(Tensor::from_floats([[0.5]], &device)) };
/// let x = Tensor::<B, 2>::from_floats([[1.0], [2.0]], &device);
/// let y = Tensor::<B, 2>::from_floats([[0.0], [0.0]], &device);
/// // L = (1/2m) Σ (w xᵢ)², so H = (1/m) Σ xᵢ² = 2.5.
/// let h = PearlmutterHvp::new(&model, &EvalSet::uniform(vec![(x, y)]).unwrap(), HalfSquaredError).unwrap();
/// assert!((h.apply(&[1.0]).unwrap()[0] - 2.5).abs() < 1e-12);
/// ```
pub struct PearlmutterHvp<B: Backend, L> {
    batches: Vec<RecordedBatch<B>>,
    loss: L,
    /// (id, offset, len) of every float parameter, in the flat layout.
    layout: Vec<(ParamId, usize, usize)>,
    dim: usize,
    value: f64,
    gradient: Vec<f64>,
    device: B::Device,
}

impl<B: Backend, L: OutputLoss<B>> PearlmutterHvp<B, L> {
    /// Records the forward and first backward pass of `model` on every batch (inputs `I`,
    /// targets `[m, k]`) of `eval`, for the loss `Σ_b ω_b loss(model(x_b), t_b)`.
    ///
    /// Errors with [`HessianError::NotAChain`] if the model is not a chain of ops evaluated
    /// through `ops` (see the [module docs](self)), and [`HessianError::NonFinite`] if the loss
    /// or the gradient is not finite.
    pub fn new<M, I>(model: &M, eval: &EvalSet<(I, Tensor<B, 2>)>, loss: L) -> Result<Self, HessianError>
    where
        M: TappedModel<B, I>,
        I: Clone,
    {
        let entries = ParamLayout::of(model);
        let layout: Vec<(ParamId, usize, usize)> = entries.entries.iter().map(|e| (e.id, e.offset, e.len)).collect();
        if entries.len == 0 {
            return Err(HessianError::NoParameters);
        }
        let device = model.devices().into_iter().next().unwrap_or_default();
        let mut batches = Vec::with_capacity(eval.batches.len());
        let mut value = 0.0;
        let mut gradient = vec![0.0; entries.len];
        for ((input, target), &weight) in eval.batches.iter().zip(&eval.weights) {
            let mut tape = Tape::<B> { nodes: Vec::new(), last_output: None, broken: None };
            let logits = model.forward_ops(input.clone(), &mut tape);
            if let Some(why) = tape.broken.take() {
                return Err(HessianError::NotAChain(why));
            }
            match &tape.last_output {
                Some(last) if same_values(last, &flat(logits.clone())) => {}
                Some(_) => {
                    return Err(HessianError::NotAChain(
                        "the model's output is not the output of its last op through `ops`".into(),
                    ))
                }
                None => return Err(HessianError::NotAChain("the model evaluates no op through `ops`".into())),
            }
            let seen: std::collections::HashSet<ParamId> = tape.nodes.iter().flat_map(|n| n.params()).collect();
            if let Some(e) = entries.entries.iter().find(|e| !seen.contains(&e.id)) {
                return Err(HessianError::NotAChain(format!(
                    "parameter `{}` is not evaluated through `ops` (affine or conv2d)",
                    e.name
                )));
            }
            value += weight * loss.value(logits.clone(), target.clone()).into_scalar().elem::<f64>();
            let mut nodes = tape.nodes;
            let first = first_param_node(&nodes);
            let mut delta = flat(loss.gradient(logits.clone(), target.clone()));
            let mut grads = HashMap::new();
            for k in (first..nodes.len()).rev() {
                let node = &mut nodes[k];
                node.delta = Some(delta.clone());
                grads.extend(node.param_adjoint(None, delta.clone()));
                if k > first {
                    delta = node.input_adjoint(delta);
                }
            }
            scatter_weighted(&layout, grads, weight, &mut gradient);
            batches.push(RecordedBatch { nodes, logits, target: target.clone(), weight });
        }
        if !value.is_finite() {
            return Err(HessianError::NonFinite("loss"));
        }
        check_finite(&gradient, "gradient")?;
        Ok(Self { batches, loss, layout, dim: entries.len, value, gradient, device })
    }

    /// L(w) = Σ_b ω_b L_b(w).
    pub fn loss(&self) -> f64 {
        self.value
    }

    /// ∇L(w), from the recorded backward pass.
    pub fn gradient(&self) -> &[f64] {
        &self.gradient
    }

    /// The number of ops recorded per batch.
    pub fn num_ops(&self) -> usize {
        self.batches.first().map_or(0, |b| b.nodes.len())
    }
}

fn first_param_node<B: Backend>(nodes: &[Node<B>]) -> usize {
    nodes.iter().position(|n| n.params().next().is_some()).unwrap_or(0)
}

/// out[piece] += weight · piece, for tensors keyed by parameter id, in the flat layout.
fn scatter_weighted<B: Backend>(
    layout: &[(ParamId, usize, usize)],
    mut pieces: HashMap<ParamId, Tensor<B, 1>>,
    weight: f64,
    out: &mut [f64],
) {
    for &(id, offset, len) in layout {
        if let Some(t) = pieces.remove(&id) {
            for (o, x) in out[offset..offset + len].iter_mut().zip(t.into_data().iter::<f64>()) {
                *o += weight * x;
            }
        }
    }
}

impl<B: Backend, L: OutputLoss<B>> SymmetricOperator for PearlmutterHvp<B, L> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        check_len(self.dim, v)?;
        let pieces: HashMap<ParamId, Tensor<B, 1>> = self
            .layout
            .iter()
            .map(|&(id, offset, len)| {
                (id, Tensor::from_data(TensorData::new(v[offset..offset + len].to_vec(), [len]), &self.device))
            })
            .collect();
        let mut hv = vec![0.0; self.dim];
        for batch in &self.batches {
            let nodes = &batch.nodes;
            let first = first_param_node(nodes);
            // R-forward: r_in[k] = R{input of op k}.
            let mut r_in: Vec<Option<Tensor<B, 1>>> = Vec::with_capacity(nodes.len());
            let mut r = None;
            for node in nodes {
                r_in.push(r.clone());
                r = node.tangent(r.as_ref(), &pieces);
            }
            let r_logits = r.expect("the last op depends on w").reshape(batch.logits.dims());
            let mut r_delta = flat(self.loss.hessian_product(batch.logits.clone(), batch.target.clone(), r_logits));
            let mut out = HashMap::new();
            for k in (first..nodes.len()).rev() {
                match nodes[k].r_backward(r_delta.clone(), r_in[k].as_ref(), &pieces, k > first, &mut out) {
                    Some(next) => r_delta = next,
                    None => break,
                }
            }
            scatter_weighted(&self.layout, out, batch.weight, &mut hv);
        }
        check_finite(&hv, "Hessian-vector product")?;
        Ok(hv)
    }
}
