//! The local learning coefficient estimate (Lau et al. 2023, devinterp semantics):
//!
//! λ̂(w*) = nβ · (E_β[L_B(w)] − L(w*)),
//!
//! the expectation taken over the SGLD draws of each chain (λ̂_c per chain; mean and standard
//! deviation over the chains that did not diverge). With nβ = n/ln n, n·E_β\[Lₙ\] is the WBIC
//! (Watanabe 2013); at any other temperature we report n·E_β\[L\] with the β used.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use slt_core::params::{flatten, num_params, require_grad};
use slt_core::seed::{rng_for, stream};
use slt_core::Loss;

use crate::config::{InitLoss, SgldConfig};
use crate::diagnostics::{effective_sample_size, mean, split_r_hat, Warning};
use crate::observe::{ChainObserver, Nothing};
use crate::sampler::{run_chain, BatchCycle, ChainTrace};
use crate::source::BatchSource;
use crate::EstimatorError;

/// Per-chain results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// Chain index.
    pub chain: usize,
    /// The chain's seed (derived from the master seed).
    pub seed: u64,
    /// λ̂_c, or `None` if the chain diverged.
    pub llc: Option<f64>,
    /// Mean of the chain's draws.
    pub mean_draw_loss: Option<f64>,
    /// The step at which the loss became non-finite, if it did.
    pub diverged_at: Option<usize>,
    /// Effective sample size of the chain's draws.
    pub ess: f64,
    /// Mean MALA acceptance probability.
    pub mala_acceptance_mean: Option<f64>,
    /// Share of draws below L(w*).
    pub below_init_share: f64,
    /// ‖w − w*‖ at the last draw.
    pub final_distance: Option<f64>,
}

/// An LLC estimate with its diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlcEstimate {
    /// Mean of λ̂_c over the chains that did not diverge (`None` if all diverged).
    pub llc_mean: Option<f64>,
    /// Standard deviation of λ̂_c over those chains (`None` with fewer than two).
    pub llc_std: Option<f64>,
    /// The settings used.
    pub config: SgldConfig,
    /// nβ used.
    pub n_beta: f64,
    /// β = nβ / n.
    pub beta: f64,
    /// Number of training examples n.
    pub n: usize,
    /// Number of parameters d.
    pub d: usize,
    /// L(w*).
    pub init_loss: f64,
    /// n·E_β\[L\] over the finite chains' draws.
    pub n_expected_loss: Option<f64>,
    /// The WBIC: n·E_β\[L\] at nβ = n/ln n (`None` at other temperatures).
    pub wbic: Option<f64>,
    /// Per-chain summaries.
    pub chains: Vec<ChainSummary>,
    /// Running λ̂ after each draw, averaged over the finite chains.
    pub running_llc: Vec<f64>,
    /// Split R-hat of the draws across finite chains.
    pub r_hat: Option<f64>,
    /// Effective sample size summed over finite chains.
    pub ess: f64,
    /// Mean MALA acceptance over finite chains.
    pub mala_acceptance_mean: Option<f64>,
    /// Share of all finite draws below L(w*).
    pub below_init_share: f64,
    /// Mean over finite chains of ‖w − w*‖ at the last draw.
    pub mean_final_distance: Option<f64>,
    /// √(d/γ): the distance the localisation Gaussian alone would put the chains at.
    pub localization_scale: Option<f64>,
    /// nβ·Tr(H)/(2γ) when a Hessian trace was supplied.
    pub quadratic_prediction: Option<f64>,
    /// What a user should know before trusting λ̂.
    pub warnings: Vec<Warning>,
    /// Full traces of every chain.
    pub traces: Vec<ChainTrace>,
    /// Wall-clock seconds, init loss included.
    pub seconds: f64,
}

/// L(w*) as `config.init_loss` says.
fn init_loss<B, M, D, S, L>(model: &M, source: &S, loss_fn: &L, config: &SgldConfig) -> f64
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: BatchSource<D>,
    L: Loss<B, M, D>,
{
    let frozen = model.clone().no_grad();
    let n = source.num_examples();
    match config.init_loss {
        InitLoss::FullDataset => {
            let chunk = (config.batch_size * 8).max(1);
            let mut total = 0.0;
            let mut start = 0;
            while start < n {
                let end = (start + chunk).min(n);
                let indices: Vec<usize> = (start..end).collect();
                let value = loss_fn.loss(&frozen, &source.batch(&indices)).into_scalar().elem::<f64>();
                total += value * (end - start) as f64;
                start = end;
            }
            total / n as f64
        }
        InitLoss::FirstBatches(k) => {
            let mut rng = rng_for(config.seed, &[stream::SGLD, u64::MAX]);
            let mut cycle = BatchCycle::new(n, config.batch_size);
            let values: Vec<f64> = (0..k)
                .map(|_| {
                    let indices = cycle.next(&mut rng).to_vec();
                    loss_fn.loss(&frozen, &source.batch(&indices)).into_scalar().elem::<f64>()
                })
                .collect();
            mean(&values)
        }
    }
}

/// Estimates the LLC of `model` at its current parameters w*, with `config.num_chains` SGLD
/// chains run in parallel (rayon), each reproducible from its own seed. `observer` sees every
/// SGLD step of every chain and records observables at the draws into the traces
/// ([`crate::observe`]: progress, weight/gradient/noise norms, running λ̂, any function of the
/// weights).
pub fn estimate_llc<B, M, D, S, L>(
    model: &M,
    source: &S,
    loss_fn: &L,
    config: &SgldConfig,
    observer: Option<&dyn ChainObserver<B::InnerBackend>>,
) -> Result<LlcEstimate, EstimatorError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: BatchSource<D>,
    L: Loss<B, M, D>,
{
    let started = Instant::now();
    let n = source.num_examples();
    config.validate(n)?;
    let n_beta = config.n_beta(n);
    let d = num_params(model);
    let init = init_loss(model, source, loss_fn, config);
    if !init.is_finite() {
        return Err(EstimatorError::NonFiniteInitLoss(init));
    }
    let model = require_grad(model.clone());
    let w_star = flatten(&model.valid());
    let observer = observer.unwrap_or(&Nothing);
    let traces: Vec<ChainTrace> = (0..config.num_chains)
        .map(|c| (c, model.clone(), w_star.clone()))
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(c, m, w)| run_chain(m, w, source, loss_fn, config, n_beta, init, c, observer))
        .collect();
    let mut estimate = summarise(traces, config.clone(), n_beta, n, d, init);
    estimate.seconds = started.elapsed().as_secs_f64();
    Ok(estimate)
}

fn summarise(traces: Vec<ChainTrace>, config: SgldConfig, n_beta: f64, n: usize, d: usize, init: f64) -> LlcEstimate {
    let chains: Vec<ChainSummary> = traces
        .iter()
        .map(|t| {
            let finite = t.diverged_at.is_none() && !t.draws.is_empty();
            let mean_draw = finite.then(|| mean(&t.draws));
            ChainSummary {
                chain: t.chain,
                seed: t.seed,
                llc: mean_draw.map(|m| n_beta * (m - init)),
                mean_draw_loss: mean_draw,
                diverged_at: t.diverged_at,
                ess: if finite { effective_sample_size(&t.draws) } else { 0.0 },
                mala_acceptance_mean: (!t.mala_acceptance.is_empty()).then(|| mean(&t.mala_acceptance)),
                below_init_share: if t.draws.is_empty() {
                    0.0
                } else {
                    t.draws.iter().filter(|&&x| x < init).count() as f64 / t.draws.len() as f64
                },
                final_distance: t.distances.last().copied(),
            }
        })
        .collect();
    let finite: Vec<&ChainTrace> = traces.iter().filter(|t| t.diverged_at.is_none() && !t.draws.is_empty()).collect();
    let llcs: Vec<f64> = chains.iter().filter_map(|c| c.llc).collect();
    let llc_mean = (!llcs.is_empty()).then(|| mean(&llcs));
    let llc_std = (llcs.len() >= 2).then(|| {
        let m = mean(&llcs);
        (llcs.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (llcs.len() - 1) as f64).sqrt()
    });
    let draws_len = finite.iter().map(|t| t.draws.len()).min().unwrap_or(0);
    let running_llc: Vec<f64> = (0..draws_len)
        .map(|k| mean(&finite.iter().map(|t| n_beta * (mean(&t.draws[..=k]) - init)).collect::<Vec<_>>()))
        .collect();
    let all_draws: Vec<f64> = finite.iter().flat_map(|t| t.draws.iter().copied()).collect();
    let mean_loss = (!all_draws.is_empty()).then(|| mean(&all_draws));
    let n_expected_loss = mean_loss.map(|m| n as f64 * m);
    let slices: Vec<&[f64]> = finite.iter().map(|t| t.draws.as_slice()).collect();
    let mala: Vec<f64> = chains.iter().filter(|c| c.llc.is_some()).filter_map(|c| c.mala_acceptance_mean).collect();
    let distances: Vec<f64> = chains.iter().filter(|c| c.llc.is_some()).filter_map(|c| c.final_distance).collect();
    let mut estimate = LlcEstimate {
        llc_mean,
        llc_std,
        n_beta,
        beta: n_beta / n as f64,
        n,
        d,
        init_loss: init,
        n_expected_loss,
        wbic: if config.is_wbic_temperature() { n_expected_loss } else { None },
        r_hat: split_r_hat(&slices),
        ess: chains.iter().filter(|c| c.llc.is_some()).map(|c| c.ess).sum(),
        mala_acceptance_mean: (!mala.is_empty()).then(|| mean(&mala)),
        below_init_share: if all_draws.is_empty() {
            0.0
        } else {
            all_draws.iter().filter(|&&x| x < init).count() as f64 / all_draws.len() as f64
        },
        mean_final_distance: (!distances.is_empty()).then(|| mean(&distances)),
        localization_scale: (config.localization > 0.0).then(|| (d as f64 / config.localization).sqrt()),
        quadratic_prediction: None,
        warnings: Vec::new(),
        config,
        chains,
        running_llc,
        traces,
        seconds: 0.0,
    };
    estimate.warnings = estimate.diagnose();
    estimate
}

impl LlcEstimate {
    /// Adds the quadratic prediction nβ·Tr(H)/(2γ) for a known Hessian trace and re-runs the
    /// diagnostics (a λ̂ equal to it measures the curvature under the localiser, not λ).
    pub fn with_hessian_trace(mut self, trace: f64) -> Self {
        if self.config.localization > 0.0 {
            self.quadratic_prediction = Some(self.n_beta * trace / (2.0 * self.config.localization));
        }
        self.warnings = self.diagnose();
        self
    }

    /// The warnings of this estimate (also stored in `warnings`).
    pub fn diagnose(&self) -> Vec<Warning> {
        let mut w = Vec::new();
        let diverged = self.chains.iter().filter(|c| c.llc.is_none()).count();
        if diverged > 0 {
            w.push(Warning::Diverged { diverged, chains: self.chains.len() });
        }
        let Some(llc) = self.llc_mean else {
            return w;
        };
        // λ̂ over the first and the second half of the draws, with a standard error from the
        // chains' effective sample sizes.
        let finite: Vec<&ChainTrace> =
            self.traces.iter().filter(|t| t.diverged_at.is_none() && t.draws.len() >= 8).collect();
        if !finite.is_empty() {
            let (mut first, mut second, mut var) = (0.0, 0.0, 0.0);
            for t in &finite {
                let h = t.draws.len() / 2;
                let (a, b) = (&t.draws[..h], &t.draws[h..2 * h]);
                first += self.n_beta * (mean(a) - self.init_loss);
                second += self.n_beta * (mean(b) - self.init_loss);
                for half in [a, b] {
                    let m = mean(half);
                    let v = half.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (half.len() as f64 - 1.0);
                    var += self.n_beta * self.n_beta * v / effective_sample_size(half).max(1.0);
                }
            }
            let c = finite.len() as f64;
            let (first, second) = (first / c, second / c);
            let se = var.sqrt() / c;
            if second - first > (0.1 * second.abs()).max(2.0 * se) {
                w.push(Warning::StillRising { first_half: first, second_half: second });
            }
        }
        if let (Some(distance), Some(scale)) = (self.mean_final_distance, self.localization_scale) {
            if distance >= 0.5 * scale {
                w.push(Warning::AtLocalizationScale { distance, scale });
            }
        }
        if let Some(prediction) = self.quadratic_prediction {
            if (llc - prediction).abs() <= 0.1 * prediction.abs() {
                w.push(Warning::MatchesQuadraticPrediction { llc, prediction });
            }
        }
        if llc < 0.0 {
            w.push(Warning::NegativeLlc { llc });
        }
        if self.below_init_share > 0.5 {
            w.push(Warning::BelowInitLoss { share: self.below_init_share });
        }
        if let Some(mean) = self.mala_acceptance_mean {
            if mean < 0.5 {
                w.push(Warning::LowAcceptance { mean });
            }
        }
        if let Some(r_hat) = self.r_hat {
            if r_hat > 1.1 {
                w.push(Warning::HighRHat { r_hat });
            }
        }
        w
    }
}
