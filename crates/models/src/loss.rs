//! Negative log-likelihood of a categorical model: ℓᵢ(w) = −log softmax(f(xᵢ, w))_{yᵢ}.
//! Written with the one-hot labels (multiply and sum) rather than `gather`, so that it can be
//! differentiated twice under nested autodiff.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Per-example losses ℓᵢ, shape `[m]`, from logits `[m, k]` and one-hot labels `[m, k]`.
pub fn nll_per_example<B: Backend>(logits: Tensor<B, 2>, one_hot: Tensor<B, 2>) -> Tensor<B, 1> {
    let [m, _] = logits.dims();
    (log_softmax(logits, 1) * one_hot).sum_dim(1).reshape([m]).neg()
}

/// Mean loss (1/m) Σᵢ ℓᵢ, shape `[1]`.
///
/// The factor −1/m multiplies as a one-element tensor, not a scalar: burn 0.21's scalar ops
/// round the scalar to f32 in the backward pass on ndarray, which breaks f64 oracles at ~1e-8.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, one_hot: Tensor<B, 2>) -> Tensor<B, 1> {
    let m = logits.dims()[0] as f64;
    let scale = Tensor::<B, 1>::from_data(TensorData::new(vec![-1.0 / m], [1]), &logits.device());
    (log_softmax(logits, 1) * one_hot).sum() * scale
}
