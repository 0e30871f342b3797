//! Models whose learning coefficient λ is known, for validating estimators (the
//! ground-truth cases of the estimator tests).
//! All are regressions with Gaussian noise of unit variance: per-example loss
//! ℓᵢ = ½‖yᵢ − f(xᵢ, w)‖² (the negative log-likelihood up to a constant), see [`half_squared_error`].

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Mean over the batch of ½‖y − ŷ‖² (shape `[1]`). The factor 1/(2m) multiplies as a tensor
/// (see `loss::cross_entropy` on scalar precision in f64).
pub fn half_squared_error<B: Backend>(prediction: Tensor<B, 2>, target: Tensor<B, 2>) -> Tensor<B, 1> {
    let m = prediction.dims()[0] as f64;
    let scale = Tensor::<B, 1>::from_data(TensorData::new(vec![0.5 / m], [1]), &prediction.device());
    (prediction - target).square().sum() * scale
}

fn tensor<B: Backend, const D: usize>(values: Vec<f64>, shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Linear regression y = x·w, w ∈ ℝ^{d×1}: regular, λ = d/2.
#[derive(Module, Debug)]
pub struct LinearRegression<B: Backend> {
    /// The weights, a column `[d, 1]`.
    pub w: Param<Tensor<B, 2>>,
}

impl<B: Backend> LinearRegression<B> {
    /// The model at weights `w` (length d).
    pub fn new(w: Vec<f64>, device: &B::Device) -> Self {
        let d = w.len();
        Self { w: Param::from_tensor(tensor(w, [d, 1], device)) }
    }
    /// ŷ = x·w for x `[m, d]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.w.val())
    }
    /// λ = d/2.
    pub fn learning_coefficient(d: usize) -> f64 {
        d as f64 / 2.0
    }
}

/// The "minimally singular" model f(x) = x·Σ_{i<r} wᵢ² with d ≥ r weights (the last d − r do
/// not enter f); at the true function 0, λ = r/4.
#[derive(Module, Debug)]
pub struct MinimallySingular<B: Backend> {
    /// The d weights, `[d]`; only the first `r` enter f.
    pub w: Param<Tensor<B, 1>>,
    /// Number of weights that enter the model.
    pub r: usize,
}

impl<B: Backend> MinimallySingular<B> {
    /// The model at weights `w`, of which the first `r` enter f.
    pub fn new(w: Vec<f64>, r: usize, device: &B::Device) -> Self {
        assert!(r <= w.len());
        let d = w.len();
        Self { w: Param::from_tensor(tensor(w, [d], device)), r }
    }
    /// ŷ = x·Σ_{i<r} wᵢ² for x `[m, 1]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let s = self.w.val().slice(0..self.r).square().sum();
        x * s.unsqueeze_dim(0)
    }
    /// λ = r/4.
    pub fn learning_coefficient(r: usize) -> f64 {
        r as f64 / 4.0
    }
}

/// Two-layer reduced-rank (linear) regression y = x·A·B, A ∈ ℝ^{M×H}, B ∈ ℝ^{H×N}.
#[derive(Module, Debug)]
pub struct ReducedRank<B: Backend> {
    /// First factor A, `[M, H]`.
    pub a: Param<Tensor<B, 2>>,
    /// Second factor B, `[H, N]`.
    pub b: Param<Tensor<B, 2>>,
}

impl<B: Backend> ReducedRank<B> {
    /// The model at `a` (M×H, row-major) and `b` (H×N, row-major).
    pub fn new(m: usize, h: usize, n: usize, a: Vec<f64>, b: Vec<f64>, device: &B::Device) -> Self {
        Self { a: Param::from_tensor(tensor(a, [m, h], device)), b: Param::from_tensor(tensor(b, [h, n], device)) }
    }
    /// ŷ = x·A·B for x `[m, M]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.a.val()).matmul(self.b.val())
    }
}

/// λ of reduced-rank regression with input M, hidden H, output N and true rank r
/// (Aoyagi & Watanabe 2005, "Stochastic complexities of reduced rank regression in Bayesian
/// estimation", Main Theorem).
pub fn reduced_rank_learning_coefficient(m: usize, h: usize, n: usize, r: usize) -> f64 {
    let (m, h, n, r) = (m as i64, h as i64, n as i64, r as i64);
    let twice = if m + h < n + r {
        h * m - h * r + n * r
    } else if n + h < m + r {
        h * n - h * r + m * r
    } else if m + n < h + r {
        m * n
    } else {
        let s = if (m + n + h + r) % 2 == 1 { 1 } else { 0 };
        return (2 * (h + r) * (m + n) - (m - n).pow(2) - (h + r).pow(2) + s) as f64 / 8.0;
    };
    twice as f64 / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aoyagi_examples_from_the_design() {
        assert_eq!(reduced_rank_learning_coefficient(5, 3, 5, 0), 6.5);
        assert_eq!(reduced_rank_learning_coefficient(5, 4, 5, 0), 8.0);
        assert_eq!(reduced_rank_learning_coefficient(4, 3, 8, 0), 6.0);
        // With rank 1: M + H < N + r ⇒ (HM − Hr + Nr)/2 = (12 − 3 + 8)/2.
        assert_eq!(reduced_rank_learning_coefficient(4, 3, 8, 1), 8.5);
        // Full rank H = r is regular: λ = (HM + HN − H²)/2 = dim of rank-H matrices / 2.
        assert_eq!(reduced_rank_learning_coefficient(3, 2, 3, 2), (6.0 + 6.0 - 4.0) / 2.0);
    }
}
