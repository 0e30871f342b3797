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
