//! Layers written only with ops that burn 0.21 can differentiate twice (nested autodiff), so
//! the Hessian tools can take exact Hessian-vector products through every model of this crate:
//! the affine layer is `x·W + b` (not `nn::Linear`), 2×2 max-pooling is reshape + `max_dim`
//! (not `max_pool2d`), convolution is the `conv2d` op. Parameters are initialised on the host
//! from a seed, as PyTorch does by default (U(−1/√fan_in, 1/√fan_in) for weights and biases),
//! so initialisation is identical on every backend and independent of burn's global RNG.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use slt_core::layer_ops::{LayerOps, Plain};

/// U(−bound, bound) values of `shape` as a tensor, from `rng`.
pub(crate) fn uniform<B: Backend, const D: usize>(
    shape: [usize; D],
    bound: f64,
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> Tensor<B, D> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound) as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Affine layer y = x·W + b, W ∈ ℝ^{in×out}, b ∈ ℝ^{out}.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    /// Weight, `[in, out]` (the transpose of PyTorch's `nn.Linear.weight`).
    pub weight: Param<Tensor<B, 2>>,
    /// Bias, `[out]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Dense<B> {
    /// A layer `inputs -> outputs` with PyTorch's default initialisation.
    pub fn new(inputs: usize, outputs: usize, rng: &mut ChaCha8Rng, device: &B::Device) -> Self {
        let bound = 1.0 / (inputs as f64).sqrt();
        Self {
            weight: Param::from_tensor(uniform([inputs, outputs], bound, rng, device)),
            bias: Param::from_tensor(uniform([outputs], bound, rng, device)),
        }
    }

    /// y = x·W + b for x of shape `[m, in]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_ops(x, &mut Plain)
    }

    /// y = x·W + b evaluated through `ops` (see [`slt_core::layer_ops`]).
    pub fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        ops.affine(x, &self.weight, Some(&self.bias))
    }
}

/// 2-D convolution, stride 1, square kernel, zero padding `padding`.
#[derive(Module, Debug)]
pub struct Conv<B: Backend> {
    /// Kernel, `[out_channels, in_channels, k, k]`.
    pub weight: Param<Tensor<B, 4>>,
    /// Bias, `[out_channels]`.
    pub bias: Param<Tensor<B, 1>>,
    /// Zero padding on each side.
    pub padding: usize,
}

impl<B: Backend> Conv<B> {
    /// A convolution with PyTorch's default initialisation (fan_in = in·k·k).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        rng: &mut ChaCha8Rng,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / ((in_channels * kernel * kernel) as f64).sqrt();
        Self {
            weight: Param::from_tensor(uniform([out_channels, in_channels, kernel, kernel], bound, rng, device)),
            bias: Param::from_tensor(uniform([out_channels], bound, rng, device)),
            padding,
        }
    }

    /// The convolution of x, `[m, in, h, w]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_ops(x, &mut Plain)
    }

    /// The convolution evaluated through `ops` (see [`slt_core::layer_ops`]).
    pub fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 4>, ops: &mut O) -> Tensor<B, 4> {
        let options = ConvOptions::new([1, 1], [self.padding, self.padding], [1, 1], 1);
        ops.conv2d(x, &self.weight, Some(&self.bias), options)
    }
}

pub use slt_core::layer_ops::max_pool_2x2;
