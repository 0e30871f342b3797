//! One interface over the optimisers a run can train with: a step takes the model and a batch
//! and returns the new model, the loss before the step and the step's statistics.

use std::collections::HashMap;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use slt_datasets::ClassificationBatch;
use slt_models::loss::cross_entropy;
use slt_models::Classifier;
use slt_optimizers::{Kfac, Ngd, OnlineNgd, OptimError, OptimizerState, Sgd, StepStats};

use crate::config::OptimizerConfig;

/// What one step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Mean minibatch loss before the step.
    pub loss: f64,
    /// ‖d‖ and ‖g‖ (for NGD: ‖F_s⁻¹g‖ and ‖g‖).
    pub stats: StepStats,
    /// κ of the step (natural-gradient methods).
    pub kappa: Option<f64>,
}

/// Any of the optimisers of `slt_optimizers`, built from an [`OptimizerConfig`].
#[derive(Debug)]
pub enum AnyOptimizer<B: AutodiffBackend> {
    Sgd(Sgd<B>),
    Ngd(Ngd<B>),
    Kfac(Kfac<B>),
    NgdOnline(OnlineNgd<B>),
}

impl<B: AutodiffBackend> AnyOptimizer<B> {
    /// A fresh optimiser.
    pub fn new(config: &OptimizerConfig) -> Result<Self, OptimError> {
        Ok(match config {
            OptimizerConfig::Sgd(c) => AnyOptimizer::Sgd(Sgd::new(*c)?),
            OptimizerConfig::Ngd(c) => AnyOptimizer::Ngd(Ngd::new(*c)?),
            OptimizerConfig::Kfac(c) => AnyOptimizer::Kfac(Kfac::new(*c)?),
            OptimizerConfig::NgdOnline(c) => AnyOptimizer::NgdOnline(OnlineNgd::new(*c)?),
        })
    }

    /// Changes the learning rate.
    pub fn set_lr(&mut self, lr: f64) -> Result<(), OptimError> {
        match self {
            AnyOptimizer::Sgd(o) => o.set_lr(lr),
            AnyOptimizer::Ngd(o) => o.set_lr(lr),
            AnyOptimizer::Kfac(o) => o.set_lr(lr),
            AnyOptimizer::NgdOnline(o) => o.set_lr(lr),
        }
    }

    /// One step on `batch`. A non-finite loss is a [`OptimError::NonFiniteGradient`] and
    /// nothing is applied.
    pub fn step(
        &mut self,
        model: Classifier<B>,
        batch: &ClassificationBatch<B>,
    ) -> Result<(Classifier<B>, StepReport), OptimError> {
        let first_order = |model: &Classifier<B>| {
            let loss = cross_entropy(model.forward(batch.inputs.clone()), batch.one_hot.clone());
            let value = loss.clone().into_scalar().elem::<f64>();
            if !value.is_finite() {
                return Err(OptimError::NonFiniteGradient { grad_norm: f64::NAN });
            }
            Ok((value, loss.backward()))
        };
        match self {
            AnyOptimizer::Sgd(sgd) => {
                let (value, grads) = first_order(&model)?;
                let (model, stats) = sgd.step(model, &grads)?;
                Ok((model, StepReport { loss: value, stats, kappa: None }))
            }
            AnyOptimizer::NgdOnline(online) => {
                let (value, grads) = first_order(&model)?;
                let (model, stats) = online.step(model, &grads)?;
                Ok((model, StepReport { loss: value, stats, kappa: None }))
            }
            AnyOptimizer::Ngd(ngd) => {
                let (model, s) = ngd.step(model, batch.inputs.clone(), batch.one_hot.clone())?;
                Ok((model, StepReport { loss: s.loss, stats: s.step, kappa: Some(s.kappa) }))
            }
            AnyOptimizer::Kfac(kfac) => {
                let (model, s) = kfac.step(model, batch.inputs.clone(), batch.one_hot.clone())?;
                Ok((model, StepReport { loss: s.loss, stats: s.step, kappa: Some(s.kappa) }))
            }
        }
    }

    /// The online NGD's conditioning since the last call (and resets it); `None` for the others.
    pub fn take_conditioning(&mut self) -> Option<slt_optimizers::Conditioning> {
        match self {
            AnyOptimizer::NgdOnline(o) => Some(o.take_conditioning()),
            _ => None,
        }
    }

    /// The optimiser's state, for checkpoints.
    pub fn export_state(&self, model: &Classifier<B>) -> Vec<(String, Vec<f64>)> {
        match self {
            AnyOptimizer::Sgd(o) => o.export_state(model),
            AnyOptimizer::Ngd(o) => o.export_state(model),
            AnyOptimizer::Kfac(o) => o.export_state(model),
            AnyOptimizer::NgdOnline(o) => o.export_state(model),
        }
    }

    /// Restores a state written by [`AnyOptimizer::export_state`].
    pub fn import_state(&mut self, model: &Classifier<B>, state: &HashMap<String, Vec<f64>>) -> Result<(), OptimError> {
        match self {
            AnyOptimizer::Sgd(o) => o.import_state(model, state),
            AnyOptimizer::Ngd(o) => o.import_state(model, state),
            AnyOptimizer::Kfac(o) => o.import_state(model, state),
            AnyOptimizer::NgdOnline(o) => o.import_state(model, state),
        }
    }
}
