//! K-FAC's curvature as an operator: a block-diagonal matrix whose blocks are Kronecker
//! products A_l ⊗ G_l (affine layers) or diagonals D_l (layers without a Kronecker form),
//! Martens & Grosse (2015), "Optimizing neural networks with Kronecker-factored approximate
//! curvature", §3.
//!
//! For an affine layer with augmented weight W̄ = [W; bᵀ] `[(in+1), out]` flattened row-major
//! (W row-major, then b: the parameter layout of `slt_core`), (A ⊗ G)·vec(X) = vec(A X G) for
//! symmetric A `[(in+1), (in+1)]` and G `[out, out]`: a product costs two small matrix
//! products per layer, never the (in+1)·out square matrix. tr(A ⊗ G) = tr A · tr G and the
//! eigenvalues of A ⊗ G are the products λ_A,i λ_G,j.
//!
//! The factors are those `slt_optimizers::Kfac` keeps (`Kfac::kronecker_factors`,
//! `Kfac::diagonal_factor`), so the operator the trace, Lanczos and SLQ see is exactly the
//! curvature the K-FAC optimiser inverts.

use nalgebra::{DMatrix, DVector};

use crate::operator::{check_len, SymmetricOperator};
use crate::HessianError;

/// One diagonal block of a [`KroneckerFactored`] operator, in parameter order.
#[derive(Debug, Clone, PartialEq)]
pub enum CurvatureBlock {
    /// A ⊗ G over the row-major vec of an `[a.nrows(), g.nrows()]` parameter matrix.
    Kronecker {
        /// The input-side factor (symmetric, `[(in+1), (in+1)]` with a bias).
        a: DMatrix<f64>,
        /// The output-side factor (symmetric, `[out, out]`).
        g: DMatrix<f64>,
    },
    /// diag(D).
    Diagonal(DVector<f64>),
}

impl CurvatureBlock {
    fn dim(&self) -> usize {
        match self {
            CurvatureBlock::Kronecker { a, g } => a.nrows() * g.nrows(),
            CurvatureBlock::Diagonal(d) => d.len(),
        }
    }

    fn trace(&self) -> f64 {
        match self {
            CurvatureBlock::Kronecker { a, g } => a.trace() * g.trace(),
            CurvatureBlock::Diagonal(d) => d.sum(),
        }
    }
}

/// The block-diagonal operator diag(B_1, …, B_L) of [`CurvatureBlock`]s (see the
/// [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct KroneckerFactored {
    blocks: Vec<CurvatureBlock>,
    dim: usize,
}

impl KroneckerFactored {
    /// The operator of `blocks`, in parameter order. Errors if a factor is not square or not
    /// finite, or if there are no blocks.
    pub fn new(blocks: Vec<CurvatureBlock>) -> Result<Self, HessianError> {
        if blocks.is_empty() {
            return Err(HessianError::NoParameters);
        }
        for block in &blocks {
            if let CurvatureBlock::Kronecker { a, g } = block {
                for m in [a, g] {
                    if m.nrows() != m.ncols() {
                        return Err(HessianError::DimensionMismatch { expected: m.nrows(), got: m.ncols() });
                    }
                }
            }
            let finite = match block {
                CurvatureBlock::Kronecker { a, g } => a.iter().chain(g.iter()).all(|x| x.is_finite()),
                CurvatureBlock::Diagonal(d) => d.iter().all(|x| x.is_finite()),
            };
            if !finite {
                return Err(HessianError::NonFinite("a Kronecker factor"));
            }
        }
        let dim = blocks.iter().map(CurvatureBlock::dim).sum();
        Ok(Self { blocks, dim })
    }

    /// The blocks, in parameter order.
    pub fn blocks(&self) -> &[CurvatureBlock] {
        &self.blocks
    }

    /// The exact trace Σ_l tr A_l·tr G_l + Σ_l Σ D_l (no probes needed).
    pub fn trace(&self) -> f64 {
        self.blocks.iter().map(CurvatureBlock::trace).sum()
    }
}

impl SymmetricOperator for KroneckerFactored {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        check_len(self.dim, v)?;
        let mut out = Vec::with_capacity(self.dim);
        let mut offset = 0;
        for block in &self.blocks {
            let n = block.dim();
            let x = &v[offset..offset + n];
            match block {
                CurvatureBlock::Kronecker { a, g } => {
                    let (p, q) = (a.nrows(), g.nrows());
                    // Row-major X [p, q] is column-major Xᵀ [q, p]; A X G = (G Xᵀ A)ᵀ, and the
                    // column-major storage of G Xᵀ A [q, p] is the row-major A X G.
                    let xt = DMatrix::from_column_slice(q, p, x);
                    let y = g * xt * a;
                    out.extend_from_slice(y.as_slice());
                }
                CurvatureBlock::Diagonal(d) => out.extend(x.iter().zip(d.iter()).map(|(xi, di)| xi * di)),
            }
            offset += n;
        }
        if out.iter().all(|x| x.is_finite()) {
            Ok(out)
        } else {
            Err(HessianError::NonFinite("a K-FAC product"))
        }
    }
}
