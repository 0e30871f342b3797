//! Small host-side vector helpers and the symmetric eigensolver shared by the algorithms.

use nalgebra::{DMatrix, SymmetricEigen};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::HessianError;

/// xᵀy, accumulated in f64.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// ‖x‖₂.
pub fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

/// Relative distance ‖a − b‖ / ‖b‖ (0 when both are zero).
pub fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let nb = norm(b);
    if nb == 0.0 {
        norm(&diff)
    } else {
        norm(&diff) / nb
    }
}

/// y ← y + a·x.
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// x ← a·x.
pub fn scale(a: f64, x: &mut [f64]) {
    for xi in x.iter_mut() {
        *xi *= a;
    }
}

/// A Rademacher vector: entries ±1 with probability ½ each.
pub fn rademacher(d: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..d).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect()
}

/// A standard normal vector (Box–Muller).
pub fn gaussian(d: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut out = Vec::with_capacity(d + 1);
    while out.len() < d {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push(r * t.cos());
        out.push(r * t.sin());
    }
    out.truncate(d);
    out
}

/// Removes from `v` its components along the orthonormal `basis`, twice (classical
/// Gram–Schmidt repeated, "twice is enough": Giraud et al. 2005).
pub fn orthogonalize(v: &mut [f64], basis: &[Vec<f64>]) {
    for _ in 0..2 {
        for q in basis {
            let c = dot(q, v);
            axpy(-c, q, v);
        }
    }
}

/// An orthonormal basis of the span of `columns` (Gram–Schmidt with reorthogonalisation);
/// columns that are numerically dependent (norm after projection ≤ 1e-12 of the original)
/// are dropped.
pub fn orthonormal_basis(columns: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(columns.len());
    for mut c in columns {
        let before = norm(&c);
        if before == 0.0 {
            continue;
        }
        orthogonalize(&mut c, &basis);
        let after = norm(&c);
        if after > 1e-12 * before {
            scale(1.0 / after, &mut c);
            basis.push(c);
        }
    }
    basis
}

/// Eigenvalues (ascending) and eigenvectors (columns, same order) of a symmetric matrix.
pub fn symmetric_eigen(matrix: DMatrix<f64>) -> Result<(Vec<f64>, DMatrix<f64>), HessianError> {
    let n = matrix.nrows();
    if n == 0 {
        return Ok((Vec::new(), DMatrix::zeros(0, 0)));
    }
    if matrix.iter().any(|x| !x.is_finite()) {
        return Err(HessianError::NonFinite("matrix passed to the eigensolver"));
    }
    let eig = SymmetricEigen::try_new(matrix, f64::EPSILON, 0)
        .ok_or_else(|| HessianError::Eigen("symmetric QR did not converge".into()))?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    let values = order.iter().map(|&i| eig.eigenvalues[i]).collect();
    let vectors = DMatrix::from_fn(n, n, |r, c| eig.eigenvectors[(r, order[c])]);
    Ok((values, vectors))
}

/// Eigen-decomposition of the symmetric tridiagonal matrix with diagonal `alpha` and
/// off-diagonal `beta` (`beta.len() == alpha.len() − 1`): eigenvalues ascending, eigenvectors
/// as columns.
pub fn tridiagonal_eigen(alpha: &[f64], beta: &[f64]) -> Result<(Vec<f64>, DMatrix<f64>), HessianError> {
    let n = alpha.len();
    let mut t = DMatrix::zeros(n, n);
    for i in 0..n {
        t[(i, i)] = alpha[i];
        if i + 1 < n {
            t[(i, i + 1)] = beta[i];
            t[(i + 1, i)] = beta[i];
        }
    }
    symmetric_eigen(t)
}
