//! The operator interface: everything the trace, eigenvalue and density algorithms need is
//! v ↦ Av for a symmetric A ∈ ℝ^{d×d}: a Hessian, a Gauss–Newton matrix, a Fisher, a matrix.

use nalgebra::DMatrix;

use crate::HessianError;

/// A symmetric linear operator A ∈ ℝ^{d×d} that can be applied to host vectors: the one
/// interface every algorithm of this crate (Hutchinson, Hutch++, power iteration, Lanczos, SLQ,
/// the dense oracle) takes.
///
/// Implemented by the Hessian of a model's loss ([`ExactHvp`](crate::ExactHvp) by double
/// backward, [`FiniteDifferenceHvp`](crate::FiniteDifferenceHvp) by central differences of
/// gradients), by the generalised Gauss–Newton matrix and the empirical Fisher
/// ([`GaussNewton`](crate::GaussNewton)), and by a plain dense matrix ([`SymmetricMatrix`]), so
/// every algorithm can also be tested on matrices with known spectra.
pub trait SymmetricOperator {
    /// d, the number of parameters.
    fn dim(&self) -> usize;

    /// Av. Errors if `v.len() != self.dim()` or the product is not finite.
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError>;
}

/// The name this trait had before it served other operators than Hessians.
pub use SymmetricOperator as HessianVectorProduct;

impl<T: SymmetricOperator + ?Sized> SymmetricOperator for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        (**self).apply(v)
    }
}

/// Checks the length of `v` against the operator's dimension.
pub(crate) fn check_len(expected: usize, v: &[f64]) -> Result<(), HessianError> {
    if v.len() == expected {
        Ok(())
    } else {
        Err(HessianError::DimensionMismatch { expected, got: v.len() })
    }
}

/// A dense symmetric matrix as an operator (tests, tiny models, and the dense Hessian).
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricMatrix {
    matrix: DMatrix<f64>,
}

impl SymmetricMatrix {
    /// Wraps `matrix`, symmetrising it as (A + Aᵀ)/2. Errors if it is not square.
    pub fn new(matrix: DMatrix<f64>) -> Result<Self, HessianError> {
        if matrix.nrows() != matrix.ncols() {
            return Err(HessianError::DimensionMismatch { expected: matrix.nrows(), got: matrix.ncols() });
        }
        let sym = (&matrix + matrix.transpose()) * 0.5;
        Ok(Self { matrix: sym })
    }

    /// Q·diag(λ)·Qᵀ for a random orthogonal Q drawn from `seed`: a matrix with a chosen
    /// spectrum, for tests.
    pub fn with_spectrum(eigenvalues: &[f64], seed: u64) -> Self {
        let d = eigenvalues.len();
        let mut rng = slt_core::seed::rng_for(seed, &[slt_core::seed::stream::PROBES]);
        let columns = (0..d).map(|_| crate::linalg::gaussian(d, &mut rng)).collect();
        let q = crate::linalg::orthonormal_basis(columns);
        let q = DMatrix::from_fn(d, d, |r, c| q[c][r]);
        let lambda = DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(eigenvalues));
        Self::new(&q * lambda * q.transpose()).expect("square")
    }

    /// The matrix.
    pub fn matrix(&self) -> &DMatrix<f64> {
        &self.matrix
    }

    /// tr(H) = Σᵢ Hᵢᵢ.
    pub fn trace(&self) -> f64 {
        self.matrix.trace()
    }

    /// tr(H²) = ‖H‖_F² (H symmetric).
    pub fn trace_of_square(&self) -> f64 {
        self.matrix.iter().map(|x| x * x).sum()
    }

    /// All eigenvalues, ascending, and the eigenvectors as columns (nalgebra's symmetric QR).
    pub fn eigen(&self) -> Result<(Vec<f64>, DMatrix<f64>), HessianError> {
        crate::linalg::symmetric_eigen(self.matrix.clone())
    }

    /// All eigenvalues, ascending.
    pub fn eigenvalues(&self) -> Result<Vec<f64>, HessianError> {
        Ok(self.eigen()?.0)
    }
}

impl SymmetricOperator for SymmetricMatrix {
    fn dim(&self) -> usize {
        self.matrix.nrows()
    }
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        check_len(self.dim(), v)?;
        let v = nalgebra::DVector::from_column_slice(v);
        Ok((&self.matrix * v).as_slice().to_vec())
    }
}

/// The fixed evaluation set of a Hessian: batches and their weights. The loss whose Hessian is
/// taken is L(w) = Σ_b ω_b L_b(w) with Σ_b ω_b = 1, so with ω_b = m_b / Σ m it is the mean loss
/// over all examples when each L_b is the mean over its batch (PyHessian averages its batches
/// the same way).
#[derive(Debug, Clone)]
pub struct EvalSet<D> {
    pub(crate) batches: Vec<D>,
    pub(crate) weights: Vec<f64>,
}

impl<D> EvalSet<D> {
    /// Batches of equal weight 1/n_b (e.g. the paper's 10 batches of 128).
    pub fn uniform(batches: Vec<D>) -> Result<Self, HessianError> {
        Self::weighted(batches.into_iter().map(|b| (b, 1.0)).collect())
    }

    /// Batches with their sizes m_b: weights m_b / Σ m (the mean over all examples).
    pub fn sized(batches: Vec<(D, usize)>) -> Result<Self, HessianError> {
        Self::weighted(batches.into_iter().map(|(b, m)| (b, m as f64)).collect())
    }

    /// Batches with arbitrary non-negative weights, normalised to sum to 1.
    pub fn weighted(batches: Vec<(D, f64)>) -> Result<Self, HessianError> {
        if let Some(&(_, w)) = batches.iter().find(|(_, w)| !(w.is_finite() && *w >= 0.0)) {
            return Err(HessianError::BadWeight(w));
        }
        let total: f64 = batches.iter().map(|(_, w)| w).sum();
        if batches.is_empty() || total <= 0.0 {
            return Err(HessianError::EmptyEvaluationSet);
        }
        let (batches, weights): (Vec<D>, Vec<f64>) = batches.into_iter().map(|(b, w)| (b, w / total)).unzip();
        Ok(Self { batches, weights })
    }

    /// The same weights with every batch transformed by `f` (e.g. a batch struct into the
    /// `(inputs, targets)` pair [`PearlmutterHvp`](crate::PearlmutterHvp) takes).
    pub fn map<E>(self, f: impl FnMut(D) -> E) -> EvalSet<E> {
        EvalSet { batches: self.batches.into_iter().map(f).collect(), weights: self.weights }
    }

    /// The batches.
    pub fn batches(&self) -> &[D] {
        &self.batches
    }

    /// The normalised weights ω_b.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Whether there are no batches (never true for a constructed set).
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

/// An operator that calls `on_product(n)` after its n-th product (progress bars, logging,
/// budgets): `Observed::new(&op, |n| bar.set_position(n as u64))`.
pub struct Observed<H, F> {
    inner: H,
    on_product: F,
    count: std::sync::atomic::AtomicUsize,
}

impl<H: SymmetricOperator, F: Fn(usize)> Observed<H, F> {
    /// Wraps `inner`.
    pub fn new(inner: H, on_product: F) -> Self {
        Self { inner, on_product, count: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// Products taken so far.
    pub fn products(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The wrapped operator.
    pub fn into_inner(self) -> H {
        self.inner
    }
}

impl<H: SymmetricOperator, F: Fn(usize)> SymmetricOperator for Observed<H, F> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>, HessianError> {
        let out = self.inner.apply(v)?;
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        (self.on_product)(n);
        Ok(out)
    }
}
