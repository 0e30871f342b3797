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

/// Deep linear network y = x·W₁·W₂ ··· W_N (no biases), layer widths H₀ (input), H₁, …, H_N
/// (output); W_i is `[H_{i−1}, H_i]`. d = Σ H_{i−1}·H_i.
#[derive(Module, Debug)]
pub struct DeepLinear<B: Backend> {
    /// W₁, …, W_N.
    pub layers: Vec<Param<Tensor<B, 2>>>,
}

impl<B: Backend> DeepLinear<B> {
    /// The network with `widths` = [H₀, …, H_N] (N ≥ 1) at the row-major matrices `weights`
    /// (one per layer, `[H_{i−1}, H_i]`). Panics if a matrix has the wrong length.
    pub fn new(widths: &[usize], weights: Vec<Vec<f64>>, device: &B::Device) -> Self {
        assert!(widths.len() >= 2 && weights.len() == widths.len() - 1, "one matrix per layer");
        let layers = weights
            .into_iter()
            .enumerate()
            .map(|(i, w)| Param::from_tensor(tensor(w, [widths[i], widths[i + 1]], device)))
            .collect();
        Self { layers }
    }

    /// ŷ = x·W₁ ··· W_N for x `[m, H₀]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.layers.iter().fold(x, |h, w| h.matmul(w.val()))
    }
}

/// λ of a deep linear network with widths [H₀, …, H_N] whose true map W₁···W_N has rank r
/// (Aoyagi 2024, "Consideration on the learning efficiency of multiple-layered neural networks
/// with linear units", Neural Networks; the form used by Lau et al. 2023 to validate the LLC,
/// as computed by `true_dln_learning_coefficient` in edmundlth/validating_lambdahat):
///
/// with M_i = H_i − r, let Σ be the set of the ℓ+1 smallest M_i (a prefix of the sorted M_i)
/// such that max_Σ M < min_{∉Σ} M, Σ_Σ M ≥ ℓ·max_Σ M and Σ_Σ M < ℓ·min_{∉Σ} M (the last
/// conditions void when Σ is everything); with S = Σ_Σ M, M̄ = ⌈S/ℓ⌉ and a = S − (M̄ − 1)ℓ,
///
/// λ = (−r² + r(H₀ + H_N))/2 + a(ℓ − a)/(4ℓ) − ℓ(ℓ − 1)/4·(S/ℓ)² + ½·Σ_{i<j∈Σ} M_i M_j.
///
/// This is the *global* coefficient of the true map; the local one at a particular true
/// parameter can be larger (e.g. [2, 2, 2], r = 0: λ = 3/2 at the origin, 2 where W₁ is
/// invertible and W₂ = 0). N = 1 gives the regular d/2; N = 2 agrees with
/// [`reduced_rank_learning_coefficient`]. `None` if fewer than two widths or r > min Hᵢ.
pub fn deep_linear_learning_coefficient(widths: &[usize], r: usize) -> Option<f64> {
    if widths.len() < 2 || widths.iter().any(|&h| h < r) {
        return None;
    }
    let m: Vec<i64> = widths.iter().map(|&h| (h - r) as i64).collect();
    let mut order: Vec<usize> = (0..m.len()).collect();
    order.sort_by_key(|&i| m[i]);
    let subset = (1..=m.len()).map(|k| &order[..k]).find(|subset| {
        let ell = subset.len() as i64 - 1;
        let sum: i64 = subset.iter().map(|&i| m[i]).sum();
        let max = subset.iter().map(|&i| m[i]).max().unwrap_or(0);
        let complement_min = order[subset.len()..].iter().map(|&i| m[i]).min();
        let below = complement_min.is_none_or(|c| max < c && sum < ell * c);
        below && sum >= ell * max
    })?;
    let ell = subset.len() as i64 - 1;
    let sum: i64 = subset.iter().map(|&i| m[i]).sum();
    let m_bar = (sum + ell - 1).div_euclid(ell); // ⌈S/ℓ⌉ (S ≥ 0, ℓ ≥ 1)
    let a = sum - (m_bar - 1) * ell;
    let (r, input, output) = (r as f64, widths[0] as f64, widths[widths.len() - 1] as f64);
    let (ell_f, sum_f, a_f) = (ell as f64, sum as f64, a as f64);
    let mut pairs = 0.0;
    for (x, &i) in subset.iter().enumerate() {
        for &j in &subset[x + 1..] {
            pairs += (m[i] * m[j]) as f64;
        }
    }
    Some(
        (-r * r + r * (input + output)) / 2.0 + a_f * (ell_f - a_f) / (4.0 * ell_f)
            - ell_f * (ell_f - 1.0) / 4.0 * (sum_f / ell_f).powi(2)
            + pairs / 2.0,
    )
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

    /// The values of the reference implementation (edmundlth/validating_lambdahat, dln.py),
    /// computed there and checked in exact rational arithmetic.
    #[test]
    fn deep_linear_matches_the_reference_implementation() {
        let cases: [(&[usize], usize, f64); 17] = [
            (&[2, 2, 2], 0, 1.5),
            (&[2, 2, 2], 1, 2.0),
            (&[2, 2, 2], 2, 2.0),
            (&[3, 3, 3, 3], 0, 3.0),
            (&[3, 3, 3, 3], 1, 4.0),
            (&[3, 3, 3, 3], 2, 4.5),
            (&[3, 3, 3, 3], 3, 4.5),
            (&[4, 2, 4], 0, 3.5),
            (&[4, 2, 4], 1, 5.0),
            (&[4, 2, 4], 2, 6.0),
            (&[5, 4, 3, 2], 0, 3.0),
            (&[5, 4, 3, 2], 1, 4.0),
            (&[5, 4, 3, 2], 2, 5.0),
            (&[2, 3, 4, 5], 1, 4.0),
            (&[3, 6, 6, 3], 1, 4.5),
            (&[3, 6, 6, 3], 2, 4.5),
            (&[4, 4, 4, 4, 4], 2, 7.5),
        ];
        for (widths, r, want) in cases {
            let got = deep_linear_learning_coefficient(widths, r).unwrap();
            assert!((got - want).abs() < 1e-12, "{widths:?} r = {r}: {got} vs {want}");
        }
        assert_eq!(deep_linear_learning_coefficient(&[2, 1, 2], 2), None);
        assert_eq!(deep_linear_learning_coefficient(&[3], 0), None);
    }

    /// One layer is regular (d/2 at every rank); two layers are reduced-rank regression.
    #[test]
    fn deep_linear_reduces_to_the_known_cases() {
        for h0 in 1..=6 {
            for h1 in 1..=6 {
                for r in 0..=h0.min(h1) {
                    assert_eq!(deep_linear_learning_coefficient(&[h0, h1], r), Some((h0 * h1) as f64 / 2.0));
                }
            }
        }
        for m in 1..=7 {
            for h in 1..=7 {
                for n in 1..=7 {
                    for r in 0..=m.min(h).min(n) {
                        let dln = deep_linear_learning_coefficient(&[m, h, n], r).unwrap();
                        let rrr = reduced_rank_learning_coefficient(m, h, n, r);
                        assert!((dln - rrr).abs() < 1e-12, "[{m}, {h}, {n}] r = {r}: {dln} vs {rrr}");
                    }
                }
            }
        }
    }
}
