//! Observers of SGLD chains: code that sees every step of every chain (which chain, which step,
//! whether it is a draw, the loss, the weights, the minibatch gradient, the noise) and records
//! named observables at the draws into the chain's trace
//! ([`ChainTrace::observables`](crate::ChainTrace)), as devinterp's callbacks do.
//!
//! ```
//! use slt_estimators::observe::{DistanceFromStart, Observers, Progress, RunningLlc, WeightFn};
//! # type B = burn_ndarray::NdArray<f64>;
//! let steps = std::sync::atomic::AtomicUsize::new(0);
//! let progress = Progress(|| { steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed); });
//! let max_abs = WeightFn::new("max |w|", |w: &burn::tensor::Tensor<B, 1>| w.clone().abs().max().into_scalar());
//! let observers = Observers::<B>::new().with(progress).with(DistanceFromStart).with(RunningLlc).with(max_abs);
//! // estimate_llc(&model, &source, &loss, &config, Some(&observers)) then holds, per chain,
//! // trace.observables["distance"], ["running_llc"] and ["max |w|"]: one value per draw.
//! ```
//!
//! Observers only read: a chain with observers is bit-identical to one without (tested). Each
//! observable costs what it computes (a norm is one pass over d parameters and one read-back).

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

/// What an observer sees at step t of a chain, before the update w_t → w_{t+1}.
pub struct StepView<'a, B: Backend> {
    /// Chain index.
    pub chain: usize,
    /// Step index t (0-based; burn-in steps included).
    pub step: usize,
    /// The index of the draw this step records, if it is one (after burn-in, every `thin`-th).
    pub draw: Option<usize>,
    /// L_B(w_t), the minibatch loss at the weights before the update. NaN on a device-resident
    /// chain (see [`crate::config::Residency`]) when no observer [reads
    /// losses](ChainObserver::reads_losses): there the losses are read back in blocks, after
    /// the observers have run.
    pub loss: f64,
    /// w_t, flattened (the order of `slt_core::ParamLayout`).
    pub weights: &'a Tensor<B, 1>,
    /// w*, the point the chain is localised at.
    pub w_star: &'a Tensor<B, 1>,
    /// ∇L_B(w_t), the minibatch gradient of this step.
    pub gradient: &'a Tensor<B, 1>,
    /// ξ_t ~ N(0, I): the update adds √ε·ξ_t.
    pub noise: &'a Tensor<B, 1>,
    /// ε, the SGLD step size.
    pub step_size: f64,
    /// nβ.
    pub n_beta: f64,
    /// L(w*), as the estimate uses it.
    pub init_loss: f64,
    /// The chain's draws so far, this step's included when it is a draw (on a device-resident
    /// chain whose observers do not read losses, only the draws of blocks already read back).
    pub draws: &'a [f64],
}

/// Named values an observer records at a draw.
#[derive(Debug, Default)]
pub struct Record {
    values: Vec<(String, f64)>,
}

impl Record {
    /// Records `value` under `name` for this draw.
    pub fn set(&mut self, name: impl Into<String>, value: f64) {
        self.values.push((name.into(), value));
    }

    /// Forgets the recorded values (a step that is not a draw).
    pub(crate) fn clear(&mut self) {
        self.values.clear();
    }

    /// Appends the recorded values to `observables` (one series per name) and clears them.
    pub(crate) fn drain_into(&mut self, observables: &mut BTreeMap<String, Vec<f64>>) {
        for (name, value) in self.values.drain(..) {
            observables.entry(name).or_default().push(value);
        }
    }
}

/// Sees every step of every chain (chains run in parallel, hence `Sync`). `record` is kept only
/// at draws (`view.draw.is_some()`); compute observables there only, to pay for them once per
/// draw.
pub trait ChainObserver<B: Backend>: Sync {
    /// Sees step `view` of a chain; what it sets in `record` is kept when the step is a draw.
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record);

    /// Whether this observer reads [`StepView::loss`] or [`StepView::draws`] (default: yes). A
    /// device-resident chain reads its losses back once per block of steps only when no
    /// observer does; otherwise it pays one read-back (a synchronisation) per step.
    fn reads_losses(&self) -> bool {
        true
    }
}

impl<B: Backend, O: ChainObserver<B> + ?Sized> ChainObserver<B> for &O {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        (**self).observe(view, record)
    }
    fn reads_losses(&self) -> bool {
        (**self).reads_losses()
    }
}

fn norm<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.square().sum().into_scalar().elem::<f64>().sqrt()
}

/// Calls a function after every step of every chain (progress bars, budgets). Records nothing.
pub struct Progress<F>(pub F);

impl<B: Backend, F: Fn() + Sync> ChainObserver<B> for Progress<F> {
    fn observe(&self, _: &StepView<'_, B>, _: &mut Record) {
        (self.0)()
    }
    fn reads_losses(&self) -> bool {
        false
    }
}

/// `weight_norm` = ‖w_t‖ at each draw.
pub struct WeightNorm;

impl<B: Backend> ChainObserver<B> for WeightNorm {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        if view.draw.is_some() {
            record.set("weight_norm", norm(view.weights.clone()));
        }
    }
    fn reads_losses(&self) -> bool {
        false
    }
}

/// `distance` = ‖w_t − w*‖ at each draw (to compare with the localisation scale √(d/γ)).
pub struct DistanceFromStart;

impl<B: Backend> ChainObserver<B> for DistanceFromStart {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        if view.draw.is_some() {
            record.set("distance", norm(view.weights.clone() - view.w_star.clone()));
        }
    }
    fn reads_losses(&self) -> bool {
        false
    }
}

/// `grad_norm` = ‖∇L_B(w_t)‖ at each draw.
pub struct GradientNorm;

impl<B: Backend> ChainObserver<B> for GradientNorm {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        if view.draw.is_some() {
            record.set("grad_norm", norm(view.gradient.clone()));
        }
    }
    fn reads_losses(&self) -> bool {
        false
    }
}

/// `noise_norm` = ‖√ε·ξ_t‖ at each draw, the length of the noise the step adds (≈ √(εd)), and
/// `drift_norm` = ‖(ε/2)·nβ·∇L_B(w_t)‖, the length of the loss's pull: their ratio says whether
/// the chain is driven by the loss or diffuses freely.
pub struct NoiseNorm;

impl<B: Backend> ChainObserver<B> for NoiseNorm {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        if view.draw.is_some() {
            record.set("noise_norm", view.step_size.sqrt() * norm(view.noise.clone()));
            record.set("drift_norm", 0.5 * view.step_size * view.n_beta * norm(view.gradient.clone()));
        }
    }
    fn reads_losses(&self) -> bool {
        false
    }
}

/// `running_llc` = nβ·(mean of the chain's draws so far − L(w*)) at each draw: the chain's own
/// running λ̂, whose last value is the chain's λ̂.
pub struct RunningLlc;

impl<B: Backend> ChainObserver<B> for RunningLlc {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        if view.draw.is_some() && !view.draws.is_empty() {
            let mean = view.draws.iter().sum::<f64>() / view.draws.len() as f64;
            record.set("running_llc", view.n_beta * (mean - view.init_loss));
        }
    }
}

/// A named function of the weights w_t, recorded at each draw.
pub struct WeightFn<F> {
    name: String,
    f: F,
}

impl<F> WeightFn<F> {
    /// Records `f(w_t)` under `name`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Self { name: name.into(), f }
    }
}

impl<B: Backend, F: Fn(&Tensor<B, 1>) -> f64 + Sync> ChainObserver<B> for WeightFn<F> {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        if view.draw.is_some() {
            record.set(self.name.clone(), (self.f)(view.weights));
        }
    }
    fn reads_losses(&self) -> bool {
        false
    }
}

/// Several observers, called in the order added.
pub struct Observers<'a, B: Backend> {
    list: Vec<Box<dyn ChainObserver<B> + 'a>>,
}

impl<'a, B: Backend> Default for Observers<'a, B> {
    fn default() -> Self {
        Self { list: Vec::new() }
    }
}

impl<'a, B: Backend> Observers<'a, B> {
    /// No observers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `observer`.
    pub fn with(mut self, observer: impl ChainObserver<B> + 'a) -> Self {
        self.list.push(Box::new(observer));
        self
    }
}

impl<B: Backend> ChainObserver<B> for Observers<'_, B> {
    fn observe(&self, view: &StepView<'_, B>, record: &mut Record) {
        for o in &self.list {
            o.observe(view, record);
        }
    }
    fn reads_losses(&self) -> bool {
        self.list.iter().any(|o| o.reads_losses())
    }
}

/// The observer that does nothing.
pub(crate) struct Nothing;

impl<B: Backend> ChainObserver<B> for Nothing {
    fn observe(&self, _: &StepView<'_, B>, _: &mut Record) {}
    fn reads_losses(&self) -> bool {
        false
    }
}
