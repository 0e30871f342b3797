//! The dense Hessian of a small model: the oracle for the stochastic methods.

use nalgebra::DMatrix;

use crate::{HessianError, SymmetricMatrix, SymmetricOperator};

/// The largest d [`dense_hessian`] accepts by default (d products, d² entries).
pub const DENSE_LIMIT: usize = 2000;

/// H formed column by column from d products with the unit vectors, He₁ … He_d, then
/// symmetrised as (H + Hᵀ)/2 (the asymmetry left is rounding; [`dense_hessian_asymmetry`]
/// reports it). Errors for d > [`DENSE_LIMIT`]; use [`dense_hessian_unchecked`] to go beyond.
pub fn dense_hessian<H: SymmetricOperator + ?Sized>(op: &H) -> Result<SymmetricMatrix, HessianError> {
    let d = op.dim();
    if d > DENSE_LIMIT {
        return Err(HessianError::TooLarge { dim: d, limit: DENSE_LIMIT });
    }
    dense_hessian_unchecked(op)
}

/// [`dense_hessian`] without the size limit.
pub fn dense_hessian_unchecked<H: SymmetricOperator + ?Sized>(op: &H) -> Result<SymmetricMatrix, HessianError> {
    SymmetricMatrix::new(raw_columns(op)?)
}

/// ‖H − Hᵀ‖_F / ‖H‖_F of the unsymmetrised column matrix (≈ the relative error of the
/// products; 0 for exact arithmetic).
pub fn dense_hessian_asymmetry<H: SymmetricOperator + ?Sized>(op: &H) -> Result<f64, HessianError> {
    let m = raw_columns(op)?;
    let n = m.norm();
    Ok(if n == 0.0 { 0.0 } else { (&m - m.transpose()).norm() / n })
}

fn raw_columns<H: SymmetricOperator + ?Sized>(op: &H) -> Result<DMatrix<f64>, HessianError> {
    let d = op.dim();
    let mut m = DMatrix::zeros(d, d);
    let mut e = vec![0.0; d];
    for j in 0..d {
        e[j] = 1.0;
        let col = op.apply(&e)?;
        e[j] = 0.0;
        m.set_column(j, &nalgebra::DVector::from_vec(col));
    }
    Ok(m)
}

/// The exact spectrum of a dense Hessian: tr(H), tr(H²) and all eigenvalues.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseSpectrum {
    /// tr(H).
    pub trace: f64,
    /// tr(H²) = ‖H‖_F².
    pub trace_of_square: f64,
    /// All eigenvalues, ascending.
    pub eigenvalues: Vec<f64>,
}

impl DenseSpectrum {
    /// Of the symmetric matrix `h` (nalgebra's symmetric QR).
    pub fn of(h: &SymmetricMatrix) -> Result<Self, HessianError> {
        Ok(Self { trace: h.trace(), trace_of_square: h.trace_of_square(), eigenvalues: h.eigenvalues()? })
    }

    /// The k largest eigenvalues, descending.
    pub fn top(&self, k: usize) -> Vec<f64> {
        self.eigenvalues.iter().rev().take(k).copied().collect()
    }

    /// The k eigenvalues of largest magnitude, by decreasing |λ|.
    pub fn top_magnitude(&self, k: usize) -> Vec<f64> {
        let mut v = self.eigenvalues.clone();
        v.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
        v.truncate(k);
        v
    }
}
