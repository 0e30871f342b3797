//! Extreme eigenvalues: power iteration with deflation (PyHessian's method, Yao et al. 2020)
//! and the Lanczos method with full reorthogonalisation.

use crate::linalg::{axpy, dot, gaussian, norm, orthogonalize, scale, tridiagonal_eigen};
use crate::{HessianError, SymmetricOperator};

/// Eigenvalues (and eigenvectors) found by [`power_iteration`] or [`lanczos`].
#[derive(Debug, Clone, PartialEq)]
pub struct Eigenpairs {
    /// Eigenvalue estimates, in the order of the method (see each function).
    pub values: Vec<f64>,
    /// Unit eigenvector estimates, one per value.
    pub vectors: Vec<Vec<f64>>,
    /// Residual norms ‖Hv − λv‖ of each pair (a rigorous bound on the distance from λ to the
    /// spectrum for symmetric H).
    pub residuals: Vec<f64>,
    /// Iterations per value (power iteration) or Lanczos steps (one entry).
    pub iterations: Vec<usize>,
    /// Hessian-vector products used in all.
    pub matvecs: usize,
    /// Whether every value met the tolerance.
    pub converged: bool,
}

/// Options of [`power_iteration`].
#[derive(Debug, Clone, PartialEq)]
pub struct PowerOptions {
    /// Number of eigenvalues k.
    pub k: usize,
    /// Iterations per eigenvalue at most.
    pub max_iter: usize,
    /// Stop when |λₜ − λₜ₋₁| ≤ tol · (|λₜ₋₁| + 1e-6) (PyHessian's rule, its default 1e-3).
    pub tol: f64,
    /// Seed of the start vectors (stream `PROBES`, 1, i).
    pub seed: u64,
}

impl Default for PowerOptions {
    fn default() -> Self {
        Self { k: 1, max_iter: 100, tol: 1e-3, seed: 0 }
    }
}

/// The k eigenvalues of largest magnitude by power iteration with deflation (as PyHessian):
/// for i = 1..k, start from a Gaussian vector, and iterate v ← Hv/‖Hv‖ with v kept orthogonal
/// to the i−1 eigenvectors already found, λ = vᵀHv (the Rayleigh quotient), until the relative
/// change of λ is below `tol`. Values come in the order found (decreasing |λ| when the
/// iterations converge). The Rayleigh quotient's error is O(ε²) for an eigenvector error ε;
/// convergence is geometric with rate |λᵢ₊₁/λᵢ|, slow for close eigenvalues: prefer
/// [`lanczos`] for more than the top one or two.
pub fn power_iteration<H: SymmetricOperator + ?Sized>(
    op: &H,
    options: &PowerOptions,
) -> Result<Eigenpairs, HessianError> {
    let d = op.dim();
    if options.k == 0 || options.k > d {
        return Err(HessianError::InvalidOption(format!("k = {} for d = {d}", options.k)));
    }
    let mut out = Eigenpairs {
        values: vec![],
        vectors: vec![],
        residuals: vec![],
        iterations: vec![],
        matvecs: 0,
        converged: true,
    };
    for i in 0..options.k {
        let mut rng = slt_core::seed::rng_for(options.seed, &[slt_core::seed::stream::PROBES, 1, i as u64]);
        let mut v = gaussian(d, &mut rng);
        orthogonalize(&mut v, &out.vectors);
        let n = norm(&v);
        scale(1.0 / n, &mut v);
        let mut lambda: Option<f64> = None;
        let mut converged = false;
        let mut iterations = 0;
        let mut hv = Vec::new();
        for _ in 0..options.max_iter.max(1) {
            iterations += 1;
            hv = op.apply(&v)?;
            out.matvecs += 1;
            let new = dot(&v, &hv);
            let done = lambda.is_some_and(|old| (new - old).abs() <= options.tol * (old.abs() + 1e-6));
            lambda = Some(new);
            let mut next = hv.clone();
            orthogonalize(&mut next, &out.vectors);
            let n = norm(&next);
            if done || n == 0.0 {
                converged = true;
                break;
            }
            scale(1.0 / n, &mut next);
            v = next;
        }
        // The pair (λ, v) where hv = Hv is the last product.
        let lambda = lambda.expect("at least one iteration");
        let mut r = hv;
        axpy(-lambda, &v, &mut r);
        out.values.push(lambda);
        out.residuals.push(norm(&r));
        out.vectors.push(v);
        out.iterations.push(iterations);
        out.converged &= converged;
    }
    Ok(out)
}

/// Which end of the spectrum [`lanczos`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The k largest eigenvalues λ₁ ≥ λ₂ ≥ … (the "top" of the spectrum).
    LargestAlgebraic,
    /// The k eigenvalues of largest |λ| (what power iteration finds).
    LargestMagnitude,
    /// The k smallest eigenvalues (most negative curvature).
    SmallestAlgebraic,
}

/// Options of [`lanczos`].
#[derive(Debug, Clone, PartialEq)]
pub struct LanczosOptions {
    /// Number of eigenvalues k.
    pub k: usize,
    /// Which end of the spectrum.
    pub which: Which,
    /// Lanczos steps at most (Krylov dimension; capped at d).
    pub max_steps: usize,
    /// Stop when every wanted Ritz value has residual |βₘ sₘᵢ| ≤ tol · max(|θᵢ|, 1e-12).
    pub tol: f64,
    /// Seed of the start vector (stream `PROBES`, 2).
    pub seed: u64,
}

impl Default for LanczosOptions {
    fn default() -> Self {
        Self { k: 1, which: Which::LargestAlgebraic, max_steps: 100, tol: 1e-6, seed: 0 }
    }
}

/// A Lanczos run: the orthonormal basis V = (q₁ … qₘ) of the Krylov space K_m(H, q₁) and the
/// tridiagonal Tₘ = VᵀHV (diagonal α, off-diagonal β), with βₘ the next off-diagonal entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LanczosRun {
    /// α₁…αₘ.
    pub alpha: Vec<f64>,
    /// β₁…βₘ₋₁ (off-diagonal of Tₘ).
    pub beta: Vec<f64>,
    /// βₘ = ‖rₘ‖, the residual norm after the last step (0 at an invariant subspace).
    pub beta_next: f64,
    /// The basis vectors (kept only when asked).
    pub basis: Vec<Vec<f64>>,
    /// Hessian-vector products used.
    pub matvecs: usize,
}

/// Lanczos iteration from the start vector `q1` (normalised here), full reorthogonalisation
/// against every previous basis vector (twice), at most `steps` steps, stopping early at an
/// invariant subspace. `stop` is called after each step with the run so far; returning true ends
/// the iteration. The basis is always kept (full reorthogonalisation needs it).
pub fn lanczos_run<H: SymmetricOperator + ?Sized>(
    op: &H,
    q1: Vec<f64>,
    steps: usize,
    mut stop: impl FnMut(&LanczosRun) -> Result<bool, HessianError>,
) -> Result<LanczosRun, HessianError> {
    let d = op.dim();
    let steps = steps.min(d).max(1);
    let mut q = q1;
    let n = norm(&q);
    if n == 0.0 || !n.is_finite() {
        return Err(HessianError::InvalidOption("Lanczos start vector is zero".into()));
    }
    scale(1.0 / n, &mut q);
    let mut run = LanczosRun { alpha: vec![], beta: vec![], beta_next: 0.0, basis: vec![], matvecs: 0 };
    for j in 0..steps {
        let mut w = op.apply(&q)?;
        run.matvecs += 1;
        let a = dot(&q, &w);
        run.alpha.push(a);
        run.basis.push(q);
        // Full reorthogonalisation: w ← w − V(Vᵀw), twice; this also removes αq and βq_prev.
        orthogonalize(&mut w, &run.basis);
        let b = norm(&w);
        run.beta_next = b;
        let scale_ref = run.alpha.iter().map(|x| x.abs()).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
        if j + 1 == steps || b <= 1e-12 * scale_ref {
            if b <= 1e-12 * scale_ref {
                run.beta_next = 0.0;
            }
            break;
        }
        if stop(&run)? {
            break;
        }
        run.beta.push(b);
        scale(1.0 / b, &mut w);
        q = w;
    }
    Ok(run)
}

fn wanted(values: &[f64], k: usize, which: Which) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    match which {
        Which::LargestAlgebraic => idx.sort_by(|&a, &b| values[b].total_cmp(&values[a])),
        Which::SmallestAlgebraic => idx.sort_by(|&a, &b| values[a].total_cmp(&values[b])),
        Which::LargestMagnitude => idx.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs())),
    }
    idx.truncate(k);
    idx
}

/// The k wanted eigenvalues by the Lanczos method (Lanczos 1950; Golub & Van Loan §10.1) with
/// full reorthogonalisation: the Ritz values θᵢ (eigenvalues of Tₘ = VᵀHV) approximate the
/// extreme eigenvalues of H, the Ritz vectors V sᵢ the eigenvectors, and ‖H V sᵢ − θᵢ V sᵢ‖ =
/// βₘ |sₘᵢ| is the residual, so |θᵢ − λ| ≤ βₘ|sₘᵢ| for some eigenvalue λ of H. Iterates until
/// every wanted residual is below `tol`·|θᵢ| (checked every step) or `max_steps`. Values are
/// returned sorted for `which` (descending for the largest). Memory: m vectors of length d.
pub fn lanczos<H: SymmetricOperator + ?Sized>(op: &H, options: &LanczosOptions) -> Result<Eigenpairs, HessianError> {
    let d = op.dim();
    if options.k == 0 || options.k > d {
        return Err(HessianError::InvalidOption(format!("k = {} for d = {d}", options.k)));
    }
    let mut rng = slt_core::seed::rng_for(options.seed, &[slt_core::seed::stream::PROBES, 2]);
    let q1 = gaussian(d, &mut rng);
    let k = options.k;
    let which = options.which;
    let tol = options.tol;
    let converged_now = |run: &LanczosRun| -> Result<bool, HessianError> {
        if run.alpha.len() < k {
            return Ok(false);
        }
        let (theta, s) = tridiagonal_eigen(&run.alpha, &run.beta)?;
        let m = run.alpha.len();
        Ok(wanted(&theta, k, which)
            .iter()
            .all(|&i| run.beta_next * s[(m - 1, i)].abs() <= tol * theta[i].abs().max(1e-12)))
    };
    let run = lanczos_run(op, q1, options.max_steps.max(k), converged_now)?;
    let (theta, s) = tridiagonal_eigen(&run.alpha, &run.beta)?;
    let m = run.alpha.len();
    let idx = wanted(&theta, k, which);
    let mut out = Eigenpairs {
        values: vec![],
        vectors: vec![],
        residuals: vec![],
        iterations: vec![m],
        matvecs: run.matvecs,
        converged: true,
    };
    for &i in &idx {
        let mut x = vec![0.0; d];
        for (j, qj) in run.basis.iter().enumerate() {
            axpy(s[(j, i)], qj, &mut x);
        }
        let r = run.beta_next * s[(m - 1, i)].abs();
        out.converged &= r <= tol * theta[i].abs().max(1e-12);
        out.values.push(theta[i]);
        out.vectors.push(x);
        out.residuals.push(r);
    }
    Ok(out)
}
