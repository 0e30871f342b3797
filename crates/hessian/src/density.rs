//! Spectral density by stochastic Lanczos quadrature (Golub & Meurant 1997; Lin, Saad & Yang
//! 2016; Ghorbani, Krishnan & Xiao 2019; PyHessian's `density`).

use crate::eigen::lanczos_run;
use crate::linalg::{rademacher, tridiagonal_eigen};
use crate::{HessianError, SymmetricOperator};

/// Options of [`slq_density`].
#[derive(Debug, Clone, PartialEq)]
pub struct SlqOptions {
    /// Number of random probes n_v (PyHessian: 1).
    pub probes: usize,
    /// Lanczos steps per probe m (PyHessian: 100), capped at d.
    pub steps: usize,
    /// Width σ of the Gaussian broadening; `None`: 1e-2·(λ_max − λ_min) of the nodes (the
    /// same as PyHessian's σ² = 1e-5 on the spectrum rescaled to its width), or 1e-3 if all
    /// nodes coincide.
    pub sigma: Option<f64>,
    /// Number of grid points of the gridded density.
    pub grid_points: usize,
    /// Margin added to each side of [λ_min, λ_max] for the grid, in units of σ.
    pub margin_sigmas: f64,
    /// Seed of the probes (stream `PROBES`, 3, i).
    pub seed: u64,
}

impl Default for SlqOptions {
    fn default() -> Self {
        Self { probes: 4, steps: 80, sigma: None, grid_points: 1000, margin_sigmas: 5.0, seed: 0 }
    }
}

/// The spectral density estimate: quadrature nodes and weights, and the broadened density on a
/// grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralDensity {
    /// Dimension d of the operator.
    pub dim: usize,
    /// Per probe: the Ritz values θⱼ (Gauss quadrature nodes), ascending.
    pub nodes: Vec<Vec<f64>>,
    /// Per probe: the weights τⱼ = (e₁ᵀsⱼ)², summing to 1.
    pub weights: Vec<Vec<f64>>,
    /// Broadening width σ.
    pub sigma: f64,
    /// Grid of eigenvalues λ.
    pub grid: Vec<f64>,
    /// φ(λ) on the grid: (1/n_v) Σ_probes Σⱼ τⱼ N(λ; θⱼ, σ²), which integrates to 1.
    pub density: Vec<f64>,
    /// Hessian-vector products used.
    pub matvecs: usize,
}

impl SpectralDensity {
    /// The k-th moment estimate (1/n_v) Σ_probes Σⱼ τⱼ θⱼᵏ of the spectral measure
    /// (1/d) Σᵢ δ(λ − λᵢ): an unbiased estimate of tr(Hᵏ)/d for k < 2m (Gauss quadrature is
    /// exact for polynomials of degree < 2m), e.g. k = 1: tr(H)/d, k = 2: tr(H²)/d.
    pub fn moment(&self, k: i32) -> f64 {
        self.per_probe_moments(k).iter().sum::<f64>() / self.nodes.len() as f64
    }

    /// The k-th moment of each probe (their spread gives a standard error).
    pub fn per_probe_moments(&self, k: i32) -> Vec<f64> {
        self.nodes.iter().zip(&self.weights).map(|(n, w)| n.iter().zip(w).map(|(t, w)| w * t.powi(k)).sum()).collect()
    }

    /// Standard error of [`moment`](Self::moment) across probes (∞ with one probe).
    pub fn moment_std_error(&self, k: i32) -> f64 {
        let m = self.per_probe_moments(k);
        let n = m.len() as f64;
        if m.len() < 2 {
            return f64::INFINITY;
        }
        let mean = m.iter().sum::<f64>() / n;
        (m.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
    }

    /// ∫ φ(λ) dλ on the grid by the trapezoidal rule (≈ 1).
    pub fn integral(&self) -> f64 {
        self.grid.windows(2).zip(self.density.windows(2)).map(|(x, y)| 0.5 * (x[1] - x[0]) * (y[0] + y[1])).sum()
    }

    /// φ at any λ (the broadened quadrature, not interpolated).
    pub fn density_at(&self, lambda: f64) -> f64 {
        let c = 1.0 / (self.sigma * (2.0 * std::f64::consts::PI).sqrt());
        let n = self.nodes.len() as f64;
        self.nodes
            .iter()
            .zip(&self.weights)
            .flat_map(|(ns, ws)| ns.iter().zip(ws))
            .map(|(t, w)| w * c * (-0.5 * ((lambda - t) / self.sigma).powi(2)).exp())
            .sum::<f64>()
            / n
    }
}

/// Stochastic Lanczos quadrature: for each Rademacher probe z (normalised, q₁ = z/√d), m
/// Lanczos steps with full reorthogonalisation give Tₘ = S diag(θ) Sᵀ; then
/// q₁ᵀ f(H) q₁ ≈ Σⱼ τⱼ f(θⱼ) with τⱼ = (e₁ᵀ sⱼ)² (Gauss quadrature for the measure
/// Σᵢ (q₁ᵀuᵢ)² δ(λ − λᵢ)), and E[(q₁ᵀuᵢ)²] = 1/d, so the nodes and weights averaged over probes
/// estimate the spectral measure (1/d) Σᵢ δ(λ − λᵢ). The density is its convolution with a
/// Gaussian of width σ, evaluated on a uniform grid.
pub fn slq_density<H: SymmetricOperator + ?Sized>(
    op: &H,
    options: &SlqOptions,
) -> Result<SpectralDensity, HessianError> {
    if options.probes == 0 || options.steps == 0 || options.grid_points < 2 {
        return Err(HessianError::InvalidOption("SLQ needs probes ≥ 1, steps ≥ 1 and grid_points ≥ 2".into()));
    }
    if let Some(s) = options.sigma {
        if !(s > 0.0 && s.is_finite()) {
            return Err(HessianError::InvalidOption(format!("sigma {s}")));
        }
    }
    let d = op.dim();
    let mut nodes = Vec::with_capacity(options.probes);
    let mut weights = Vec::with_capacity(options.probes);
    let mut matvecs = 0;
    for p in 0..options.probes {
        let mut rng = slt_core::seed::rng_for(options.seed, &[slt_core::seed::stream::PROBES, 3, p as u64]);
        let run = lanczos_run(op, rademacher(d, &mut rng), options.steps, |_| Ok(false))?;
        matvecs += run.matvecs;
        let (theta, s) = tridiagonal_eigen(&run.alpha, &run.beta)?;
        let tau: Vec<f64> = (0..theta.len()).map(|j| s[(0, j)].powi(2)).collect();
        nodes.push(theta);
        weights.push(tau);
    }
    let lo = nodes.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    let hi = nodes.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let sigma = options.sigma.unwrap_or(if hi > lo { 1e-2 * (hi - lo) } else { 1e-3 * hi.abs().max(1.0) });
    let (a, b) = (lo - options.margin_sigmas * sigma, hi + options.margin_sigmas * sigma);
    let n = options.grid_points;
    let grid: Vec<f64> = (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect();
    let mut out = SpectralDensity { dim: d, nodes, weights, sigma, grid, density: vec![], matvecs };
    out.density = out.grid.iter().map(|&x| out.density_at(x)).collect();
    Ok(out)
}
