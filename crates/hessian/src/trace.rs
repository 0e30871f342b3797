//! Stochastic trace estimators: Hutchinson (1989) and Hutch++ (Meyer, Musco, Musco &
//! Woodruff 2021).

use crate::linalg::{dot, orthogonalize, orthonormal_basis, rademacher};
use crate::{HessianError, SymmetricOperator};

/// Which estimator produced a [`TraceEstimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMethod {
    /// Hutchinson's estimator.
    Hutchinson,
    /// Hutch++.
    HutchPlusPlus,
}

/// An estimate of tr(H).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEstimate {
    /// The estimator.
    pub method: TraceMethod,
    /// The estimate of tr(H).
    pub trace: f64,
    /// Its standard error: s/√n over the n Rademacher samples (Hutchinson), or of the
    /// stochastic residual term (Hutch++; the sketched part has no variance of its own given
    /// the sketch).
    pub std_error: f64,
    /// Random probes used (Hutchinson: the samples; Hutch++: the residual samples).
    pub samples: usize,
    /// Sketch size k of Hutch++ (0 for Hutchinson).
    pub sketch: usize,
    /// Hessian-vector products used in all.
    pub matvecs: usize,
    /// Whether the relative-tolerance stopping rule was met (Hutchinson).
    pub converged: bool,
    /// The individual samples zᵢᵀHzᵢ (Hutchinson) or zᵢᵀ(I−QQᵀ)H(I−QQᵀ)zᵢ (Hutch++).
    pub sample_values: Vec<f64>,
}

/// Options of [`hutchinson`].
#[derive(Debug, Clone, PartialEq)]
pub struct HutchinsonOptions {
    /// Largest number of probes (the budget).
    pub max_probes: usize,
    /// Probes taken before the stopping rule is tested (at least 2).
    pub min_probes: usize,
    /// Stop when std_error ≤ rel_tol · |mean|; `None`: use the whole budget.
    pub rel_tol: Option<f64>,
    /// Master seed of the probes (stream `PROBES`).
    pub seed: u64,
}

impl Default for HutchinsonOptions {
    fn default() -> Self {
        Self { max_probes: 100, min_probes: 10, rel_tol: Some(1e-2), seed: 0 }
    }
}

fn mean_and_std_error(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    if samples.len() < 2 {
        return (mean, f64::INFINITY);
    }
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Hutchinson's estimator: tr(H) = E\[zᵀHz\] for Rademacher z (zᵢ = ±1), estimated by the mean
/// of n samples with standard error s/√n; the variance of one sample is
/// 2(‖H‖_F² − Σᵢ Hᵢᵢ²) (Hutchinson 1989; Avron & Toledo 2011). Probe i uses the seed path
/// `[PROBES, 0, i]` of `options.seed`, so a longer run extends a shorter one.
pub fn hutchinson<H: SymmetricOperator + ?Sized>(
    op: &H,
    options: &HutchinsonOptions,
) -> Result<TraceEstimate, HessianError> {
    if options.max_probes == 0 {
        return Err(HessianError::InvalidOption("max_probes must be at least 1".into()));
    }
    if let Some(tol) = options.rel_tol {
        if !(tol > 0.0) {
            return Err(HessianError::InvalidOption(format!("rel_tol {tol}")));
        }
    }
    let d = op.dim();
    let min = options.min_probes.max(2).min(options.max_probes);
    let mut samples = Vec::with_capacity(options.max_probes);
    let mut converged = false;
    for i in 0..options.max_probes {
        let mut rng = slt_core::seed::rng_for(options.seed, &[slt_core::seed::stream::PROBES, 0, i as u64]);
        let z = rademacher(d, &mut rng);
        let hz = op.apply(&z)?;
        samples.push(dot(&z, &hz));
        if let Some(tol) = options.rel_tol {
            if samples.len() >= min {
                let (mean, se) = mean_and_std_error(&samples);
                if se <= tol * mean.abs() {
                    converged = true;
                    break;
                }
            }
        }
    }
    let (trace, std_error) = mean_and_std_error(&samples);
    Ok(TraceEstimate {
        method: TraceMethod::Hutchinson,
        trace,
        std_error,
        samples: samples.len(),
        sketch: 0,
        matvecs: samples.len(),
        converged,
        sample_values: samples,
    })
}

/// Hutch++ with a budget of `matvecs` products (Meyer, Musco, Musco & Woodruff 2021, Alg. 1):
/// with k = ⌊matvecs/3⌋ and Rademacher S, G ∈ ℝ^{d×k}, Q = orth(HS),
///
/// tr(H) ≈ tr(QᵀHQ) + (1/k') Σᵢ gᵢᵀ(I−QQᵀ)H(I−QQᵀ)gᵢ,
///
/// using k products for HS, k for HQ and k' = matvecs − 2k for the residual term. The sketch
/// removes the top of the spectrum from the stochastic part, so for Hessians with decaying
/// spectra the error falls like 1/matvecs instead of 1/√matvecs. Needs matvecs ≥ 3.
pub fn hutch_pp<H: SymmetricOperator + ?Sized>(
    op: &H,
    matvecs: usize,
    seed: u64,
) -> Result<TraceEstimate, HessianError> {
    if matvecs < 3 {
        return Err(HessianError::InvalidOption("Hutch++ needs at least 3 products".into()));
    }
    let d = op.dim();
    let k = matvecs / 3;
    let residual = matvecs - 2 * k;
    let probe = |stream: u64, i: usize| {
        let mut rng = slt_core::seed::rng_for(seed, &[slt_core::seed::stream::PROBES, stream, i as u64]);
        rademacher(d, &mut rng)
    };
    let mut used = 0;
    let mut sketch = Vec::with_capacity(k);
    for i in 0..k {
        sketch.push(op.apply(&probe(1, i))?);
        used += 1;
    }
    let q = orthonormal_basis(sketch);
    let mut top = 0.0;
    for qi in &q {
        top += dot(qi, &op.apply(qi)?);
        used += 1;
    }
    let mut samples = Vec::with_capacity(residual);
    for i in 0..residual {
        let mut g = probe(2, i);
        orthogonalize(&mut g, &q);
        let hg = op.apply(&g)?;
        used += 1;
        samples.push(dot(&g, &hg));
    }
    let (rest, std_error) = mean_and_std_error(&samples);
    let std_error = if samples.len() < 2 { 0.0 } else { std_error };
    Ok(TraceEstimate {
        method: TraceMethod::HutchPlusPlus,
        trace: top + rest,
        std_error,
        samples: residual,
        sketch: q.len(),
        matvecs: used,
        converged: true,
        sample_values: samples,
    })
}

/// Exact tr(H) from d products with the unit vectors (d ≤ a few thousand).
pub fn exact_trace<H: SymmetricOperator + ?Sized>(op: &H) -> Result<f64, HessianError> {
    let d = op.dim();
    let mut e = vec![0.0; d];
    let mut total = 0.0;
    for i in 0..d {
        e[i] = 1.0;
        total += op.apply(&e)?[i];
        e[i] = 0.0;
    }
    Ok(total)
}
