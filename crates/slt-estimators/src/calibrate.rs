//! Step-size (and localisation) calibration: run short chains over a grid of ε (and γ) and
//! recommend the largest ε that is *stable* — all chains finite, λ̂ trace flattened, MALA
//! acceptance not low, λ̂ not negative, draws not below L(w*) — and *consistent*: its λ̂ agrees
//! (within 10% or two standard errors) with the λ̂ at the next smaller stable ε of the grid. The
//! consistency check matters: the Euler discretisation inflates the sampled variance by about
//! 1/(1 − ε·nβ·h/4), so a large ε can be perfectly stable and still biased. The smallest stable
//! ε is recommended only when no larger one is consistent. The table of what was measured is
//! returned with the recommendation, so the choice can be checked.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use slt_core::Loss;

use crate::config::SgldConfig;
use crate::diagnostics::Warning;
use crate::llc::estimate_llc;
use crate::source::BatchSource;
use crate::EstimatorError;

/// One grid point of a calibration sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    /// The SGLD step size ε of this point.
    pub step_size: f64,
    /// The localisation γ of this point.
    pub localization: f64,
    /// λ̂ (mean over the finite chains), `None` if every chain diverged.
    pub llc_mean: Option<f64>,
    /// Standard deviation of λ̂ over the finite chains (`None` with fewer than two).
    pub llc_std: Option<f64>,
    /// Chains whose loss became non-finite.
    pub diverged_chains: usize,
    /// Mean MALA acceptance probability, when the diagnostic ran.
    pub mala_acceptance_mean: Option<f64>,
    /// The estimate's warnings at this point.
    pub warnings: Vec<Warning>,
    /// Whether this point passes every stability check.
    pub stable: bool,
    /// Whether its λ̂ agrees with that of the next smaller stable ε at the same γ (`None` for
    /// the smallest stable ε).
    pub consistent_with_smaller_step: Option<bool>,
}

/// The sweep and its recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// One row per (ε, γ) of the grid, in the order swept.
    pub rows: Vec<CalibrationRow>,
    /// The largest stable ε (with its γ), if any point was stable.
    pub recommended: Option<(f64, f64)>,
}

fn is_stable(warnings: &[Warning], llc: Option<f64>) -> bool {
    llc.is_some_and(f64::is_finite)
        && !warnings.iter().any(|w| {
            matches!(
                w,
                Warning::Diverged { .. }
                    | Warning::StillRising { .. }
                    | Warning::LowAcceptance { .. }
                    | Warning::NegativeLlc { .. }
                    | Warning::BelowInitLoss { .. }
            )
        })
}

/// Sweeps `step_sizes` × `localizations` with the other settings of `base` (use short chains:
/// e.g. 2 chains × 100 draws).
pub fn calibrate<B, M, D, S, L>(
    model: &M,
    source: &S,
    loss_fn: &L,
    base: &SgldConfig,
    step_sizes: &[f64],
    localizations: &[f64],
) -> Result<Calibration, EstimatorError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: BatchSource<D>,
    L: Loss<B, M, D>,
{
    if step_sizes.is_empty() || localizations.is_empty() {
        return Err(EstimatorError::InvalidConfig("calibration needs at least one step size and one γ".into()));
    }
    let mut rows = Vec::new();
    for &localization in localizations {
        for &step_size in step_sizes {
            let config = SgldConfig { step_size, localization, ..base.clone() };
            let e = estimate_llc(model, source, loss_fn, &config, None)?;
            let diverged_chains = e.chains.iter().filter(|c| c.llc.is_none()).count();
            rows.push(CalibrationRow {
                step_size,
                localization,
                llc_mean: e.llc_mean,
                llc_std: e.llc_std,
                diverged_chains,
                mala_acceptance_mean: e.mala_acceptance_mean,
                stable: is_stable(&e.warnings, e.llc_mean),
                warnings: e.warnings,
                consistent_with_smaller_step: None,
            });
        }
    }
    // Consistency with the next smaller stable step, per γ.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&i, &j| {
        (rows[i].localization, rows[i].step_size).partial_cmp(&(rows[j].localization, rows[j].step_size)).unwrap()
    });
    let mut previous: Option<usize> = None;
    for &i in &order {
        if previous.is_some_and(|p| rows[p].localization != rows[i].localization) {
            previous = None;
        }
        if !rows[i].stable {
            continue;
        }
        if let Some(p) = previous {
            let (a, b) = (rows[i].llc_mean.unwrap(), rows[p].llc_mean.unwrap());
            let se = (rows[i].llc_std.unwrap_or(0.0).powi(2) + rows[p].llc_std.unwrap_or(0.0).powi(2)).sqrt();
            rows[i].consistent_with_smaller_step =
                Some((a - b).abs() <= (0.1 * b.abs()).max(2.0 * se / (base.num_chains as f64).sqrt()));
        }
        previous = Some(i);
    }
    let by_step = |a: &&CalibrationRow, b: &&CalibrationRow| a.step_size.partial_cmp(&b.step_size).unwrap();
    let recommended = rows
        .iter()
        .filter(|r| r.stable && r.consistent_with_smaller_step == Some(true))
        .max_by(by_step)
        .or_else(|| rows.iter().filter(|r| r.stable).min_by(by_step))
        .map(|r| (r.step_size, r.localization));
    Ok(Calibration { rows, recommended })
}

/// What [`calibrate_adaptive`] searches: step sizes, localisations and chain lengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationSearch {
    /// Candidate step sizes ε (searched from the smallest up at each γ).
    pub step_sizes: Vec<f64>,
    /// Candidate localisations γ (searched from the largest down).
    pub localizations: Vec<f64>,
    /// The shortest chain tried: draws after burn-in.
    pub min_draws: usize,
    /// The longest chain allowed, burn-in plus draws per chain; a grid point whose relaxation
    /// time needs more is skipped and reported as such.
    pub max_steps: usize,
    /// Burn-in and draws are each at least this many relaxation times 2/(ε(γ + weight decay))
    /// of the localisation alone.
    pub relaxation_times: f64,
    /// Relative tolerance of the consistency checks (in ε and in γ), with no allowance for the
    /// standard error (see `agree`).
    pub tolerance: f64,
    /// How many successive steps down in γ λ̂ must stay within `tolerance` of the γ before for
    /// the localisation to count as converged. 1 stops at the first agreement; on deep linear
    /// networks of rank 0 < r < min Hᵢ that was fooled by a slow rise (λ̂ 3.60, 4.44, 4.83 at
    /// γ 100, 30, 10 against λ = 5.5), so each plateau is confirmed once more by default.
    #[serde(default = "default_plateau")]
    pub plateau: usize,
}

fn default_plateau() -> usize {
    2
}

impl Default for CalibrationSearch {
    fn default() -> Self {
        Self {
            step_sizes: vec![1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
            localizations: vec![100.0, 30.0, 10.0, 3.0, 1.0],
            min_draws: 400,
            max_steps: 40_000,
            relaxation_times: 1.0,
            tolerance: 0.1,
            plateau: default_plateau(),
        }
    }
}

/// What became of one grid point of an adaptive calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointOutcome {
    /// Every stability check passed.
    Stable,
    /// Finite, but a stability check failed (still rising at `max_steps`, negative λ̂, …).
    Unstable,
    /// Some chain diverged; larger steps at this γ are not tried.
    Diverged,
    /// The relaxation time 2/(εγ) needs more than `max_steps`: not run.
    TooSlow,
}

/// One (ε, γ) point of an adaptive calibration, at the longest chain length run there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveRow {
    /// The step size ε.
    pub step_size: f64,
    /// The localisation γ.
    pub localization: f64,
    /// Burn-in steps per chain.
    pub num_burnin: usize,
    /// Draws per chain.
    pub num_draws: usize,
    /// λ̂ (mean over the finite chains).
    pub llc_mean: Option<f64>,
    /// Standard deviation of λ̂ over the finite chains.
    pub llc_std: Option<f64>,
    /// The estimate's warnings at this point.
    pub warnings: Vec<Warning>,
    /// What became of the point.
    pub outcome: PointOutcome,
}

/// The settings [`calibrate_adaptive`] recommends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The step size ε.
    pub step_size: f64,
    /// The localisation γ.
    pub localization: f64,
    /// Burn-in steps per chain.
    pub num_burnin: usize,
    /// Draws per chain.
    pub num_draws: usize,
    /// λ̂ of the calibration chains at this point.
    pub llc: f64,
    /// Whether λ̂ at the next larger stable ε agrees within the tolerance (the discretisation
    /// bias is then below it); `None` if no larger ε was stable, and with the Metropolis
    /// adjustment (no bias to check).
    pub larger_step_agrees: Option<bool>,
}

impl Recommendation {
    /// `base` with the recommended ε, γ, burn-in and draws.
    pub fn apply(&self, base: &SgldConfig) -> SgldConfig {
        SgldConfig {
            step_size: self.step_size,
            localization: self.localization,
            num_burnin: self.num_burnin,
            num_draws: self.num_draws,
            ..base.clone()
        }
    }
}

/// The adaptive sweep and its recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveCalibration {
    /// Every grid point, in the order searched.
    pub rows: Vec<AdaptiveRow>,
    /// The step chosen at each γ searched (largest γ first), with its λ̂.
    pub per_localization: Vec<(f64, Option<Recommendation>)>,
    /// The recommended settings, if any γ had a stable point.
    pub recommended: Option<Recommendation>,
    /// Whether λ̂ stopped changing with γ: the recommended γ's λ̂ and those of the
    /// [`CalibrationSearch::plateau`] larger γ before it agree step by step. `false` means the
    /// localisation still shapes the estimate.
    pub localization_converged: bool,
    /// SGLD steps run in all, over all chains.
    pub total_steps: usize,
}

/// Whether a agrees with b within a relative `tolerance` of b. (No allowance for the standard
/// error: with the two or three chains of a calibration it is itself too noisy, and allowing
/// two of them let biased, noisy points pass.)
fn agree(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs()
}

/// Calibration that searches the chain length and the localisation as well as the step size
/// (#14: on deep linear networks the fixed-length, fixed-γ sweep of [`calibrate`] recommends
/// chains that have not mixed).
///
/// * **Chain length.** The localisation alone relaxes like an Ornstein–Uhlenbeck process,
///   w − w* ← (1 − ε(γ+λ)/2)(w − w*) + √ε ξ, so directions in which the loss is flat — which
///   every singular w* has — forget the start w* only after τ = 2/(ε(γ+λ)) steps. Burn-in and
///   draws are each at least `relaxation_times`·τ (a point needing more than `max_steps` is
///   skipped as [`PointOutcome::TooSlow`]); the chain is then doubled while λ̂ is still rising,
///   up to `max_steps`.
/// * **Step size**, at each γ, from the smallest ε up: the first stable ε, i.e. the least
///   discretisation bias among the chains that relaxed within `max_steps` (the Euler bias grows
///   with ε). The next stable ε is run too, and whether its λ̂ agrees within the tolerance is
///   reported ([`Recommendation::larger_step_agrees`]); larger ε are not run. (Unlike
///   [`calibrate`], which prefers the largest consistent ε: chaining "agrees with its
///   neighbour" along the grid let the bias accumulate, +28 % on a deep linear network.)
/// * **With the Metropolis adjustment** (`base.metropolis`, MALA) no ε is biased: the search
///   goes up from the smallest ε while the mean acceptance stays ≥ 0.5 and chooses the largest
///   such ε, which mixes fastest ([`Recommendation::larger_step_agrees`] is `None`).
/// * **Localisation**, from the largest γ down: stop once the chosen λ̂ has agreed with that of
///   the γ before it `plateau` times in a row, and recommend that (weakest) γ. If λ̂ never stops
///   changing, the smallest γ with a stable point is recommended and `localization_converged`
///   is `false`.
///
/// `base` gives everything else (chains, nβ, batch size, seed, preconditioner).
pub fn calibrate_adaptive<B, M, D, S, L>(
    model: &M,
    source: &S,
    loss_fn: &L,
    base: &SgldConfig,
    search: &CalibrationSearch,
) -> Result<AdaptiveCalibration, EstimatorError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: BatchSource<D>,
    L: Loss<B, M, D>,
{
    let valid = |v: &[f64]| !v.is_empty() && v.iter().all(|x| *x > 0.0 && x.is_finite());
    if !valid(&search.step_sizes) || !valid(&search.localizations) {
        return Err(EstimatorError::InvalidConfig(
            "adaptive calibration needs positive, finite step sizes and localisations".into(),
        ));
    }
    if search.min_draws < 8
        || search.max_steps < 2 * search.min_draws
        || !(search.tolerance > 0.0)
        || search.plateau == 0
    {
        return Err(EstimatorError::InvalidConfig(format!(
            "adaptive calibration needs min_draws ≥ 8, max_steps ≥ 2·min_draws, a positive tolerance and plateau ≥ 1 (got {}, {}, {}, {})",
            search.min_draws, search.max_steps, search.tolerance, search.plateau
        )));
    }
    let mut steps = search.step_sizes.clone();
    steps.sort_by(f64::total_cmp);
    let mut gammas = search.localizations.clone();
    gammas.sort_by(|a, b| b.total_cmp(a));

    let exact = base.metropolis;
    let mut rows = Vec::new();
    let mut per_localization: Vec<(f64, Option<Recommendation>)> = Vec::new();
    let mut total_steps = 0;
    let mut converged = false;
    let mut agreements = 0;
    for &gamma in &gammas {
        let mut stable: Vec<Recommendation> = Vec::new();
        for &eps in &steps {
            let tau = 2.0 / (eps * (gamma + base.weight_decay));
            let least = (search.relaxation_times * tau).ceil() as usize;
            let mut draws = search.min_draws.max(least);
            let mut burnin = base.num_burnin.max(least);
            if burnin + draws > search.max_steps {
                rows.push(AdaptiveRow {
                    step_size: eps,
                    localization: gamma,
                    num_burnin: burnin,
                    num_draws: draws,
                    llc_mean: None,
                    llc_std: None,
                    warnings: Vec::new(),
                    outcome: PointOutcome::TooSlow,
                });
                continue;
            }
            let row = loop {
                let config = SgldConfig {
                    step_size: eps,
                    localization: gamma,
                    num_burnin: burnin,
                    num_draws: draws,
                    ..base.clone()
                };
                let e = estimate_llc(model, source, loss_fn, &config, None)?;
                total_steps += base.num_chains * (burnin + draws);
                let diverged = e.chains.iter().any(|c| c.llc.is_none());
                let rising = e.warnings.iter().any(|w| matches!(w, Warning::StillRising { .. }));
                let longer = 2 * (burnin + draws) <= search.max_steps;
                if !diverged && rising && longer {
                    draws *= 2;
                    burnin *= 2;
                    continue;
                }
                let outcome = if diverged {
                    PointOutcome::Diverged
                } else if is_stable(&e.warnings, e.llc_mean) {
                    PointOutcome::Stable
                } else {
                    PointOutcome::Unstable
                };
                break AdaptiveRow {
                    step_size: eps,
                    localization: gamma,
                    num_burnin: burnin,
                    num_draws: draws,
                    llc_mean: e.llc_mean,
                    llc_std: e.llc_std,
                    warnings: e.warnings,
                    outcome,
                };
            };
            let outcome = row.outcome;
            let low_acceptance = row.warnings.iter().any(|w| matches!(w, Warning::LowAcceptance { .. }));
            if outcome == PointOutcome::Stable {
                let llc = row.llc_mean.expect("a stable point has a finite λ̂");
                stable.push(Recommendation {
                    step_size: eps,
                    localization: gamma,
                    num_burnin: burnin,
                    num_draws: draws,
                    llc,
                    larger_step_agrees: None,
                });
            }
            rows.push(row);
            let done = if exact {
                // Up while the acceptance holds (a larger ε is only accepted less often): the
                // largest such ε mixes fastest.
                low_acceptance || (outcome != PointOutcome::Stable && !stable.is_empty())
            } else {
                stable.len() == 2
            };
            if outcome == PointOutcome::Diverged || done {
                break;
            }
        }
        let chosen = if exact {
            // Unbiased at every ε: the largest with acceptance ≥ 0.5.
            stable.last().copied()
        } else {
            // The smallest stable ε: the least discretisation bias among the chains that relaxed.
            stable.first().map(|first| Recommendation {
                larger_step_agrees: stable.get(1).map(|next| agree(next.llc, first.llc, search.tolerance)),
                ..*first
            })
        };
        if let (Some(now), Some(before)) = (chosen, per_localization.last().and_then(|p| p.1)) {
            agreements = if agree(now.llc, before.llc, search.tolerance) { agreements + 1 } else { 0 };
        }
        per_localization.push((gamma, chosen));
        if agreements >= search.plateau {
            converged = true;
            break;
        }
        if chosen.is_none() {
            // A smaller γ only lengthens the relaxation time at every ε: stop here.
            break;
        }
    }
    let recommended = per_localization.iter().rev().find_map(|(_, r)| *r);
    Ok(AdaptiveCalibration { rows, per_localization, recommended, localization_converged: converged, total_steps })
}
