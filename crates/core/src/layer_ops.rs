//! How a model evaluates its parameterised layers, so that curvature methods can watch them.
//!
//! Natural-gradient methods need, for every affine or convolutional layer, the layer's input
//! aᵢ and the gradient δᵢ of each example's loss with respect to the layer's output: the
//! per-example gradient of an affine layer is then aᵢδᵢᵀ and never has to be formed
//! (Martens & Grosse 2015; Goodfellow 2015, "Efficient per-example gradient computations").
//! A model that writes its forward pass once, generically over [`LayerOps`], can be run
//! plainly ([`Plain`], what `forward` does) or through a recorder that an optimiser supplies
//! (`slt_optimizers::ngd::Recorder`), without a second copy of the forward code.
//!
//! ```
//! use burn::module::{Module, Param};
//! use burn::tensor::{backend::Backend, Tensor};
//! use slt_core::layer_ops::{LayerOps, Plain, TappedModel};
//!
//! #[derive(Module, Debug)]
//! struct Logistic<B: Backend> {
//!     weight: Param<Tensor<B, 2>>, // [in, classes]
//!     bias: Param<Tensor<B, 1>>,
//! }
//! impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Logistic<B> {
//!     fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
//!         ops.affine(x, &self.weight, Some(&self.bias))
//!     }
//! }
//! type B = burn_ndarray::NdArray<f64>;
//! let device = Default::default();
//! let model = Logistic::<B> {
//!     weight: Param::from_tensor(Tensor::from_floats([[1.0, 0.0], [0.0, 2.0]], &device)),
//!     bias: Param::from_tensor(Tensor::from_floats([0.5, -0.5], &device)),
//! };
//! let logits = model.forward_ops(Tensor::from_floats([[1.0, 1.0]], &device), &mut Plain);
//! assert_eq!(logits.into_data().to_vec::<f64>().unwrap(), vec![1.5, 1.5]);
//! ```

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// The parameterised layers a model is built from. Every implementation computes the same
/// values; they differ in what they record on the side.
pub trait LayerOps<B: Backend> {
    /// y = x·W + b for x `[m, in]`, W `[in, out]` (burn's `nn::Linear` layout), b `[out]`.
    fn affine(
        &mut self,
        x: Tensor<B, 2>,
        weight: &Param<Tensor<B, 2>>,
        bias: Option<&Param<Tensor<B, 1>>>,
    ) -> Tensor<B, 2>;

    /// 2-D convolution of x `[m, c_in, h, w]` with kernel `[c_out, c_in, k_h, k_w]`.
    fn conv2d(
        &mut self,
        x: Tensor<B, 4>,
        weight: &Param<Tensor<B, 4>>,
        bias: Option<&Param<Tensor<B, 1>>>,
        options: ConvOptions<2>,
    ) -> Tensor<B, 4>;

    /// max(x, 0), elementwise. Going through `ops` (rather than calling `relu` directly) lets
    /// a recorder see the whole chain of a model, as the R-operator Hessian-vector product of
    /// `slt_hessian` needs; the default is burn's `relu`.
    fn relu<const D: usize>(&mut self, x: Tensor<B, D>) -> Tensor<B, D> {
        burn::tensor::activation::relu(x)
    }

    /// tanh(x), elementwise (default: burn's `tanh`); see [`relu`](Self::relu).
    fn tanh<const D: usize>(&mut self, x: Tensor<B, D>) -> Tensor<B, D> {
        x.tanh()
    }

    /// 2×2 max-pooling with stride 2 (default: [`max_pool_2x2`]); see [`relu`](Self::relu).
    fn max_pool_2x2(&mut self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        max_pool_2x2(x)
    }
}

/// 2×2 max-pooling with stride 2 as reshape + `max_dim`, which burn 0.21 differentiates twice
/// (its `max_pool2d` it does not). Odd trailing rows/columns are dropped, as `max_pool2d` with
/// floor mode does.
pub fn max_pool_2x2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [m, c, h, w] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 { x.slice([0..m, 0..c, 0..2 * h2, 0..2 * w2]) } else { x };
    x.reshape([m, c, h2, 2, w2, 2]).max_dim(5).max_dim(3).reshape([m, c, h2, w2])
}

/// Plain evaluation: exactly `x.matmul(W) + b` and `conv2d`, nothing recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl<B: Backend> LayerOps<B> for Plain {
    fn affine(
        &mut self,
        x: Tensor<B, 2>,
        weight: &Param<Tensor<B, 2>>,
        bias: Option<&Param<Tensor<B, 1>>>,
    ) -> Tensor<B, 2> {
        let y = x.matmul(weight.val());
        match bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        }
    }

    fn conv2d(
        &mut self,
        x: Tensor<B, 4>,
        weight: &Param<Tensor<B, 4>>,
        bias: Option<&Param<Tensor<B, 1>>>,
        options: ConvOptions<2>,
    ) -> Tensor<B, 4> {
        conv2d(x, weight.val(), bias.map(|b| b.val()), options)
    }
}

/// A categorical model whose forward pass is written over [`LayerOps`]: it maps an input
/// batch `I` to logits `[m, classes]`, evaluating every parameter through `ops` (each
/// parameter in exactly one layer call, once per forward pass). That is what the exact
/// natural gradient and K-FAC need to know about a model.
pub trait TappedModel<B: Backend, I>: Module<B> {
    /// Logits for `input`, every parameterised layer evaluated through `ops`.
    fn forward_ops<O: LayerOps<B>>(&self, input: I, ops: &mut O) -> Tensor<B, 2>;
}
