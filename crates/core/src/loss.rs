//! The loss-closure interface.
//!
//! Optimisers, samplers and Hessian tools never know which model or data they work on: they
//! take a model `M`, a batch `D` and a [`Loss`] that maps the two to the mean loss over the
//! batch, a tensor of shape `[1]`. Any closure `Fn(&M, &D) -> Tensor<B, 1>` is a `Loss`, so a
//! user points the tools at their own model with one line:
//!
//! ```
//! use burn::tensor::{backend::Backend, ElementConversion, Tensor};
//! use slt_core::Loss;
//!
//! fn mean_loss<B: Backend, M, D>(loss: &impl Loss<B, M, D>, model: &M, batch: &D) -> f64 {
//!     loss.loss(model, batch).into_scalar().elem::<f64>()
//! }
//!
//! // A "model" that is one number w, a "batch" that is one target t: L = (w − t)².
//! type B = burn_ndarray::NdArray<f64>;
//! let device = Default::default();
//! let w = Tensor::<B, 1>::from_floats([3.0], &device);
//! let squared_error = |w: &Tensor<B, 1>, t: &f64| (w.clone() - *t).powi_scalar(2);
//! assert_eq!(mean_loss(&squared_error, &w, &1.0), 4.0);
//! ```

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A scalar loss of model `M` on batch `D`: the mean of per-example losses, shape `[1]`.
pub trait Loss<B: Backend, M, D>: Sync {
    /// L_B(w): the mean loss of `model` on `batch`.
    fn loss(&self, model: &M, batch: &D) -> Tensor<B, 1>;
}

impl<B, M, D, F> Loss<B, M, D> for F
where
    B: Backend,
    F: Fn(&M, &D) -> Tensor<B, 1> + Sync,
{
    fn loss(&self, model: &M, batch: &D) -> Tensor<B, 1> {
        self(model, batch)
    }
}
