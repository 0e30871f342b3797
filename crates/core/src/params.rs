//! A flat parameter-vector view of any burn module.
//!
//! The float parameters of a module are concatenated, each flattened in row-major order, in the
//! order burn's [`Module::visit`] walks them: w = (vec θ₁, vec θ₂, …) ∈ ℝᵈ. Writing a vector back
//! is the exact inverse (same layout, no rounding beyond the backend's float type), and keeps
//! each parameter's id and its `require_grad` flag. Gradients are flattened in the same layout,
//! so optimisers, samplers and Hessian tools can work with plain vectors when they need to.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

/// Errors of the parameter-vector view.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamVectorError {
    /// The vector written back does not have one entry per parameter.
    #[error("parameter vector has {got} entries but the module has {expected} parameters")]
    LengthMismatch {
        /// Number of scalar parameters of the module (d).
        expected: usize,
        /// Length of the vector that was given.
        got: usize,
    },
}

/// One float parameter tensor of a module: where it sits in the flat vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamEntry {
    /// Dotted module path, e.g. `hidden.0.weight`.
    pub name: String,
    /// burn's id of the parameter.
    pub id: ParamId,
    /// Tensor shape.
    pub shape: Vec<usize>,
    /// Offset of the first element in the flat vector.
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
}

/// The layout of a module's float parameters in the flat vector, in visiting order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamLayout {
    /// One entry per float parameter tensor.
    pub entries: Vec<ParamEntry>,
    /// Total number of scalar parameters d.
    pub len: usize,
}

impl ParamLayout {
    /// The layout of `module`.
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        struct Collect {
            path: Vec<String>,
            layout: ParamLayout,
        }
        impl<B: Backend> ModuleVisitor<B> for Collect {
            fn enter_module(&mut self, name: &str, _container_type: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _name: &str, _container_type: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let shape = param.val().shape().dims::<D>().to_vec();
                let len: usize = shape.iter().product();
                let name = if self.path.is_empty() {
                    format!("param{}", self.layout.entries.len())
                } else {
                    self.path.join(".")
                };
                self.layout.entries.push(ParamEntry { name, id: param.id, shape, offset: self.layout.len, len });
                self.layout.len += len;
            }
        }
        let mut visitor = Collect { path: Vec::new(), layout: ParamLayout::default() };
        module.visit(&mut visitor);
        visitor.layout
    }
}

/// Number of scalar float parameters d of a module.
pub fn num_params<B: Backend, M: Module<B>>(module: &M) -> usize {
    ParamLayout::of(module).len
}

/// All float parameters of `module` as one 1-D tensor on the module's device (w ∈ ℝᵈ).
pub fn flatten<B: Backend, M: Module<B>>(module: &M) -> Tensor<B, 1> {
    struct Collect<B: Backend> {
        parts: Vec<Tensor<B, 1>>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.parts.push(param.val().flatten(0, D - 1));
        }
    }
    let mut visitor = Collect { parts: Vec::new() };
    module.visit(&mut visitor);
    concat_or_empty(visitor.parts)
}

/// All float parameters of `module` copied to the host as `f64`, in layout order.
pub fn flatten_to_vec<B: Backend, M: Module<B>>(module: &M) -> Vec<f64> {
    struct Collect {
        values: Vec<f64>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.values.extend(param.val().into_data().iter::<f64>());
        }
    }
    let mut visitor = Collect { values: Vec::new() };
    module.visit(&mut visitor);
    visitor.values
}

/// Writes the flat vector `flat` (layout of [`ParamLayout::of`]) back into `module`.
///
/// Each parameter keeps its id and its `require_grad` flag; the new values are leaves.
pub fn write_back<B: Backend, M: Module<B>>(module: M, flat: Tensor<B, 1>) -> Result<M, ParamVectorError> {
    let expected = num_params(&module);
    let got = flat.dims()[0];
    if expected != got {
        return Err(ParamVectorError::LengthMismatch { expected, got });
    }
    struct Write<B: Backend> {
        flat: Tensor<B, 1>,
        offset: usize,
    }
    impl<B: Backend> ModuleMapper<B> for Write<B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.shape();
            let len = shape.num_elements();
            let require_grad = tensor.is_require_grad();
            let mut value = self.flat.clone().slice(self.offset..self.offset + len).reshape(shape).detach();
            if require_grad {
                value = value.require_grad();
            }
            self.offset += len;
            Param::from_mapped_value(id, value, mapper)
        }
    }
    Ok(module.map(&mut Write { flat, offset: 0 }))
}

/// Writes host values back into `module` (see [`write_back`]).
pub fn write_back_vec<B: Backend, M: Module<B>>(module: M, flat: &[f64]) -> Result<M, ParamVectorError> {
    let device = module.devices().into_iter().next().unwrap_or_default();
    let tensor = Tensor::<B, 1>::from_data(TensorData::new(flat.to_vec(), [flat.len()]), &device);
    write_back(module, tensor)
}

/// The gradient of every float parameter of `module`, flattened in the layout of
/// [`ParamLayout::of`]; parameters that received no gradient contribute zeros.
pub fn flatten_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &B::Gradients,
) -> Tensor<B::InnerBackend, 1> {
    struct Collect<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        parts: Vec<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            let grad = value.grad(self.grads).unwrap_or_else(|| value.clone().inner().zeros_like());
            self.parts.push(grad.flatten(0, D - 1));
        }
    }
    let mut visitor = Collect::<B> { grads, parts: Vec::new() };
    module.visit(&mut visitor);
    concat_or_empty(visitor.parts)
}

fn concat_or_empty<B: Backend>(parts: Vec<Tensor<B, 1>>) -> Tensor<B, 1> {
    if parts.is_empty() {
        Tensor::empty([0], &Default::default())
    } else {
        Tensor::cat(parts, 0)
    }
}

/// `module` with every float parameter a fresh leaf that requires gradients (undoes
/// `Module::no_grad`; samplers and Hessian tools call it so that any user model works).
pub fn require_grad<B: AutodiffBackend, M: AutodiffModule<B>>(module: M) -> M {
    struct Leaf;
    impl<B: AutodiffBackend> ModuleMapper<B> for Leaf {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, tensor.detach().require_grad(), mapper)
        }
    }
    module.map(&mut Leaf)
}
