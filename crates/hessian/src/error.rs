//! Errors of the Hessian tools.

/// What can go wrong when forming Hessian-vector products or running the spectral algorithms.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum HessianError {
    /// A vector does not have one entry per parameter.
    #[error("vector has {got} entries but the operator has dimension {expected}")]
    DimensionMismatch {
        /// d, the dimension of the operator.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// The evaluation set has no batches (or only zero weights).
    #[error("the evaluation set is empty")]
    EmptyEvaluationSet,
    /// A weight of the evaluation set is negative or not finite.
    #[error("batch weight {0} is negative or not finite")]
    BadWeight(f64),
    /// The operator has no parameters.
    #[error("the model has no parameters")]
    NoParameters,
    /// A loss, gradient or product came out NaN or infinite.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// The dense Hessian was asked for a model that is too large.
    #[error("dense Hessian of {dim} parameters requested; the limit is {limit}")]
    TooLarge {
        /// d, the number of parameters.
        dim: usize,
        /// The largest d accepted.
        limit: usize,
    },
    /// An option is out of its range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The model is not a chain of ops evaluated through `LayerOps`, as the R-operator
    /// product ([`PearlmutterHvp`](crate::PearlmutterHvp)) needs.
    #[error("R-operator Hessian-vector products need a chain of ops through `LayerOps`: {0}; use ExactHvp (double backward) for this model")]
    NotAChain(String),
    /// The symmetric eigensolver did not converge.
    #[error("eigendecomposition failed: {0}")]
    Eigen(String),
}
