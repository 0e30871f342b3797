//! Stochastic gradient descent with momentum, Nesterov momentum and weight decay, as PyTorch's
//! `torch.optim.SGD` (dampening 0):
//!
//! g ← ∇L_B(w) + λ·w;   v ← μ·v + g;   d = g + μ·v (Nesterov) or v;   w ← w − η·d.
//!
//! With μ = 0 the direction is d = g. Velocities are kept per parameter (by `ParamId`); the step
//! refuses non-finite gradients and leaves the model unchanged.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use slt_core::params::ParamLayout;

use crate::{OptimError, StepStats};

/// Hyperparameters of [`Sgd`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdConfig {
    /// Learning rate η > 0.
    pub lr: f64,
    /// Momentum μ ∈ [0, 1).
    pub momentum: f64,
    /// Nesterov momentum (needs μ > 0).
    pub nesterov: bool,
    /// L2 weight decay λ ≥ 0 (added to the gradient).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self { lr: 0.01, momentum: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

impl SgdConfig {
    /// Checks the ranges stated on each field.
    pub fn validate(&self) -> Result<(), OptimError> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(OptimError::InvalidConfig(format!("lr = {} must be positive and finite", self.lr)));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(OptimError::InvalidConfig(format!("momentum = {} must be in [0, 1)", self.momentum)));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(OptimError::InvalidConfig("nesterov needs momentum > 0".into()));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(OptimError::InvalidConfig(format!(
                "weight_decay = {} must be non-negative and finite",
                self.weight_decay
            )));
        }
        Ok(())
    }
}

/// SGD state: the configuration and one velocity per parameter.
#[derive(Debug)]
pub struct Sgd<B: AutodiffBackend> {
    config: SgdConfig,
    velocity: HashMap<ParamId, Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> Sgd<B> {
    /// A fresh optimiser (zero velocities).
    pub fn new(config: SgdConfig) -> Result<Self, OptimError> {
        config.validate()?;
        Ok(Self { config, velocity: HashMap::new() })
    }

    /// The configuration.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Changes the learning rate (schedules, split runs).
    pub fn set_lr(&mut self, lr: f64) -> Result<(), OptimError> {
        let config = SgdConfig { lr, ..self.config };
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The velocities v, flattened in the layout of [`ParamLayout::of`]`(model)` (zeros where a
    /// parameter has none yet: the next step then starts from v = g, as a fresh optimiser).
    /// With the model's weights, this is everything needed to resume training exactly.
    pub fn velocity_to_vec<M: AutodiffModule<B>>(&self, model: &M) -> Vec<f64> {
        let layout = ParamLayout::of(model);
        let mut flat = vec![0.0; layout.len];
        for e in &layout.entries {
            if let Some(v) = self.velocity.get(&e.id) {
                for (dst, x) in flat[e.offset..e.offset + e.len].iter_mut().zip(v.to_data().iter::<f64>()) {
                    *dst = x;
                }
            }
        }
        flat
    }

    /// Restores velocities saved by [`Sgd::velocity_to_vec`] for the same model layout.
    pub fn load_velocity<M: AutodiffModule<B>>(&mut self, model: &M, flat: &[f64]) -> Result<(), OptimError> {
        let layout = ParamLayout::of(model);
        if flat.len() != layout.len {
            return Err(OptimError::InvalidConfig(format!(
                "velocity has {} entries, the model has {} parameters",
                flat.len(),
                layout.len
            )));
        }
        let device = model.devices().into_iter().next().unwrap_or_default();
        self.velocity.clear();
        if self.config.momentum > 0.0 && flat.iter().any(|&x| x != 0.0) {
            for e in &layout.entries {
                let values = flat[e.offset..e.offset + e.len].to_vec();
                let v = Tensor::from_data(TensorData::new(values, [e.len]), &device);
                self.velocity.insert(e.id, v);
            }
        }
        Ok(())
    }

    /// One step w ← w − η·d from the gradients of a backward pass through `model`.
    pub fn step<M: AutodiffModule<B>>(&mut self, model: M, grads: &B::Gradients) -> Result<(M, StepStats), OptimError> {
        self.step_from(model, GradientSource::Autodiff(grads))
    }

    /// One step in which `directions` (per parameter, flattened row-major, on the inner
    /// backend) take the place of the gradient: weight decay, momentum and Nesterov then apply
    /// exactly as in [`Sgd::step`]. This is how preconditioned methods (NGD, K-FAC) reuse the
    /// SGD recursion *after* preconditioning. Parameters without a direction are left alone.
    /// The reported `grad_norm` is the norm of `directions`.
    pub fn step_with_directions<M: AutodiffModule<B>>(
        &mut self,
        model: M,
        directions: &HashMap<ParamId, Tensor<B::InnerBackend, 1>>,
    ) -> Result<(M, StepStats), OptimError> {
        self.step_from(model, GradientSource::Directions(directions))
    }

    fn step_from<M: AutodiffModule<B>>(
        &mut self,
        model: M,
        grads: GradientSource<'_, B>,
    ) -> Result<(M, StepStats), OptimError> {
        // Pass 1: directions and norms, without touching the model or the velocities.
        let mut plan = Plan::<B> {
            grads,
            config: self.config,
            velocity: &self.velocity,
            directions: Vec::new(),
            grad_sq: Vec::new(),
            dir_sq: Vec::new(),
        };
        model.visit(&mut plan);
        let Plan { directions, grad_sq, dir_sq, .. } = plan;
        let grad_norm = sum_scalars(grad_sq).sqrt();
        let update_norm = if dir_sq.is_empty() { grad_norm } else { sum_scalars(dir_sq).sqrt() };
        if !grad_norm.is_finite() || !update_norm.is_finite() {
            return Err(OptimError::NonFiniteGradient { grad_norm });
        }
        // Pass 2: apply, and keep the new velocities.
        let mut apply = Apply::<B> {
            lr: self.config.lr,
            directions: directions.into_iter().collect(),
            velocity: &mut self.velocity,
        };
        let model = model.map(&mut apply);
        Ok((model, StepStats { update_norm, grad_norm }))
    }
}

fn sum_scalars<B: burn::tensor::backend::Backend>(parts: Vec<Tensor<B, 1>>) -> f64 {
    if parts.is_empty() {
        return 0.0;
    }
    Tensor::cat(parts, 0).sum().into_scalar().elem::<f64>()
}

/// Per parameter: (direction d, new velocity if momentum is on).
type Direction<B> =
    (Tensor<<B as AutodiffBackend>::InnerBackend, 1>, Option<Tensor<<B as AutodiffBackend>::InnerBackend, 1>>);

/// Where a step reads the gradient of a parameter from.
enum GradientSource<'a, B: AutodiffBackend> {
    /// The gradients of a backward pass.
    Autodiff(&'a B::Gradients),
    /// Directions given per parameter (preconditioned gradients).
    Directions(&'a HashMap<ParamId, Tensor<B::InnerBackend, 1>>),
}

struct Plan<'a, B: AutodiffBackend> {
    grads: GradientSource<'a, B>,
    config: SgdConfig,
    velocity: &'a HashMap<ParamId, Tensor<B::InnerBackend, 1>>,
    directions: Vec<(ParamId, Direction<B>)>,
    grad_sq: Vec<Tensor<B::InnerBackend, 1>>,
    dir_sq: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Plan<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let grad = match &self.grads {
            GradientSource::Autodiff(grads) => value.grad(grads).map(|g| g.flatten(0, D - 1)),
            GradientSource::Directions(map) => map.get(&param.id).cloned(),
        };
        let Some(grad) = grad else {
            return;
        };
        self.grad_sq.push(grad.clone().square().sum());
        let c = &self.config;
        let g = if c.weight_decay > 0.0 {
            let w: Tensor<B::InnerBackend, 1> = value.inner().flatten(0, D - 1);
            grad + w * c.weight_decay
        } else {
            grad
        };
        let direction = if c.momentum > 0.0 {
            let v = match self.velocity.get(&param.id) {
                Some(v) => v.clone() * c.momentum + g.clone(),
                None => g.clone(),
            };
            let d = if c.nesterov { g + v.clone() * c.momentum } else { v.clone() };
            self.dir_sq.push(d.clone().square().sum());
            (d, Some(v))
        } else {
            if c.weight_decay > 0.0 {
                self.dir_sq.push(g.clone().square().sum());
            }
            (g, None)
        };
        self.directions.push((param.id, direction));
    }
}

struct Apply<'a, B: AutodiffBackend> {
    lr: f64,
    directions: HashMap<ParamId, Direction<B>>,
    velocity: &'a mut HashMap<ParamId, Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Apply<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some((direction, velocity)) = self.directions.remove(&param.id) else {
            return param;
        };
        if let Some(v) = velocity {
            self.velocity.insert(param.id, v);
        }
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let require_grad = tensor.is_require_grad();
        let updated = tensor.inner() - direction.reshape(shape) * self.lr;
        let mut updated = Tensor::<B, D>::from_inner(updated);
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

impl<B: AutodiffBackend> crate::OptimizerState<B> for Sgd<B> {
    fn export_state<M: AutodiffModule<B>>(&self, model: &M) -> Vec<(String, Vec<f64>)> {
        vec![("velocity".to_string(), self.velocity_to_vec(model))]
    }

    fn import_state<M: AutodiffModule<B>>(
        &mut self,
        model: &M,
        state: &HashMap<String, Vec<f64>>,
    ) -> Result<(), OptimError> {
        let velocity = state.get("velocity").ok_or_else(|| OptimError::InvalidState("no 'velocity' entry".into()))?;
        self.load_velocity(model, velocity)
    }
}
