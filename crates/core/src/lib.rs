#![warn(missing_docs)]
//! What every numerical crate of the slt toolkit shares, and nothing else:
//!
//! * [`params`]: a flat parameter-vector view of **any** burn module — flatten every float
//!   parameter (in visiting order) into one vector and write a vector back, exactly;
//!   gradients flattened in the same layout.
//! * [`loss`]: the loss-closure interface that optimisers, samplers and Hessian tools are
//!   generic over: `Fn(&model, &batch) -> scalar tensor`.
//! * [`layer_ops`]: the layer interface ([`layer_ops::LayerOps`]) a model's forward pass can be
//!   written over, so that natural-gradient methods can record each layer's inputs and output
//!   gradients without a second copy of the model.
//! * [`seed`]: reproducible seeds — derive independent child seeds from one master seed and
//!   seed a burn backend.
//!
//! ```
//! use burn::module::{Module, Param};
//! use burn::tensor::Tensor;
//! use burn_ndarray::NdArray;
//! use slt_core::params::{flatten_to_vec, num_params, write_back_vec};
//!
//! #[derive(Module, Debug)]
//! struct Affine<B: burn::tensor::backend::Backend> {
//!     w: Param<Tensor<B, 2>>,
//!     b: Param<Tensor<B, 1>>,
//! }
//!
//! type B = NdArray<f64>;
//! let device = Default::default();
//! let model = Affine::<B> {
//!     w: Param::from_tensor(Tensor::from_floats([[1.0, 2.0], [3.0, 4.0]], &device)),
//!     b: Param::from_tensor(Tensor::from_floats([5.0, 6.0], &device)),
//! };
//! assert_eq!(num_params(&model), 6);
//! let flat = flatten_to_vec(&model);
//! assert_eq!(flat, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
//! let doubled: Vec<f64> = flat.iter().map(|v| 2.0 * v).collect();
//! let model = write_back_vec(model, &doubled).unwrap();
//! assert_eq!(flatten_to_vec(&model), doubled);
//! ```

pub mod layer_ops;
pub mod loss;
pub mod params;
pub mod seed;

pub use loss::Loss;
pub use params::{ParamEntry, ParamLayout, ParamVectorError};
pub use seed::{derive_seed, seed_backend};
