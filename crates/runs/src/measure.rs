//! What a run measures, as stored in its records: the measurement settings of a profile
//! ([`MeasureConfig`], the validated λ̂ protocol) and the results at one point of a run
//! ([`Measurement`], [`LlcPoint`], [`Spectrum`]). The measuring itself is `slt-experiments`'.

use slt_estimators::{LlcEstimate, SgldConfig, Warning};

/// What to measure at a trained point (the paper's measurements): λ̂ at one or more SGLD step sizes, WBIC
/// (or n·E_β\[L\] at other temperatures), Tr(H) by Hutchinson and the gradient norm.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeasureConfig {
    /// SGLD settings; `step_size` and `seed` are replaced per measurement.
    pub sgld: SgldConfig,
    /// λ̂ is estimated at each of these SGLD step sizes (claims need more than one).
    pub sgld_steps: Vec<f64>,
    /// Rademacher probes of the Hutchinson estimate of Tr(H).
    pub hessian_probes: usize,
    /// The Hessian is that of the mean loss over this many batches of `hessian_batch_size`
    /// training examples (the paper: 10 × 128).
    pub hessian_batches: usize,
    /// Training examples per Hessian batch.
    pub hessian_batch_size: usize,
    /// Measure after every `every`-th epoch and always after the last (0: the last only).
    pub every: usize,
    /// The validated λ̂ protocol, measured beside the paper's (none if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<ValidatedProtocol>,
    /// Also compute the Hessian spectrum (SLQ density, top eigenvalues) of the final weights,
    /// stored as `spectrum.json` beside the metrics.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spectrum_at_end: bool,
}

/// A λ̂ protocol whose estimates the estimator's own diagnostics accept:
/// enough burn-in and draws that λ̂ has flattened, several chains (R-hat), and ε, γ such that
/// the chains do not sit at the localisation scale √(d/γ). With `calibration`, ε and γ are
/// chosen per run by [`slt_estimators::calibrate()`] at its first measured epoch (short chains
/// over the grid; the largest accepted ε, see `slt_experiments::measure::choose_validated`)
/// and kept for its later epochs; otherwise `sgld`'s own ε and γ are used.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatedProtocol {
    /// SGLD settings of the validated estimate (ε and γ unless calibrated; `seed` is replaced
    /// per measurement).
    pub sgld: SgldConfig,
    /// The grid ε and γ are calibrated over at the run's first measured epoch (none: use
    /// `sgld`'s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationGrid>,
    /// Measure at every measured epoch; otherwise only at the last epoch and at the first epoch
    /// whose training loss reaches `matched_train_loss` (the two points the verdicts read).
    #[serde(default)]
    pub every_measured_epoch: bool,
    /// The matched-convergence training-loss target of the run's dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_train_loss: Option<f64>,
}

impl ValidatedProtocol {
    /// Whether epoch `epoch` of `epochs` (measured, with training loss `train_loss`) gets a
    /// validated estimate, given the training losses of the earlier epochs.
    pub fn due(&self, epoch: usize, epochs: usize, train_loss: f64, earlier: impl IntoIterator<Item = f64>) -> bool {
        self.every_measured_epoch
            || epoch == epochs
            || self.matched_train_loss.is_some_and(|t| train_loss <= t && earlier.into_iter().all(|l| l > t))
    }
}

/// The grid a validated protocol is calibrated over.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationGrid {
    /// Candidate SGLD step sizes ε.
    pub step_sizes: Vec<f64>,
    /// Candidate localisation strengths γ.
    pub localizations: Vec<f64>,
    /// Draws (after `sgld.num_burnin`) of the short calibration chains.
    pub draws: usize,
}

impl MeasureConfig {
    /// Whether epoch `epoch` (1-based) of `epochs` is measured.
    pub fn measures(&self, epoch: usize, epochs: usize) -> bool {
        epoch == epochs || (self.every > 0 && epoch.is_multiple_of(self.every))
    }

    /// Checks the ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.sgld_steps.is_empty(), "measure.sgld_steps must not be empty");
        anyhow::ensure!(
            self.sgld_steps.iter().all(|s| *s > 0.0 && s.is_finite()),
            "measure.sgld_steps must be positive"
        );
        anyhow::ensure!(self.hessian_batches * self.hessian_batch_size > 0, "measure: the Hessian needs examples");
        if let Some(v) = &self.validated {
            anyhow::ensure!(
                v.sgld.num_chains >= 2,
                "measure.validated.sgld.num_chains must be at least 2 (R-hat needs chains)"
            );
            if let Some(g) = &v.calibration {
                anyhow::ensure!(
                    !g.step_sizes.is_empty() && !g.localizations.is_empty() && g.draws >= 8,
                    "measure.validated.calibration needs step sizes, localizations and at least 8 draws"
                );
            }
        }
        Ok(())
    }
}

/// λ̂ at one SGLD step size, with what a reader needs to judge it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlcPoint {
    /// The SGLD step size ε of the chains.
    pub sgld_step: f64,
    /// Mean of λ̂ over the chains that did not diverge (`None` if all diverged).
    pub llc_mean: Option<f64>,
    /// Standard deviation of λ̂ over those chains (`None` with fewer than two).
    pub llc_std: Option<f64>,
    /// n·E_β\[L\]: the WBIC when `is_wbic`.
    pub n_expected_loss: Option<f64>,
    /// Whether the inverse temperature was the WBIC's, nβ = n/ln n.
    pub is_wbic: bool,
    /// nβ, the number of examples times the inverse temperature.
    pub n_beta: f64,
    /// Split R-hat of the draws across the finite chains.
    pub r_hat: Option<f64>,
    /// Mean over finite chains of ‖w − w*‖ at the last draw.
    pub mean_final_distance: Option<f64>,
    /// √(d/γ): the distance the localisation Gaussian alone would put the chains at.
    pub localization_scale: Option<f64>,
    /// nβ·Tr(H)/(2γ).
    pub quadratic_prediction: Option<f64>,
    /// What the estimator's diagnostics found (none: the estimate passed every check).
    pub warnings: Vec<Warning>,
    /// The localisation γ used.
    #[serde(default)]
    pub localization: f64,
}

impl LlcPoint {
    /// The record of estimate `e`, made at SGLD step `step`.
    pub fn new(step: f64, e: &LlcEstimate) -> Self {
        Self {
            sgld_step: step,
            llc_mean: e.llc_mean,
            llc_std: e.llc_std,
            n_expected_loss: e.n_expected_loss,
            is_wbic: e.wbic.is_some(),
            n_beta: e.n_beta,
            r_hat: e.r_hat,
            mean_final_distance: e.mean_final_distance,
            localization_scale: e.localization_scale,
            quadratic_prediction: e.quadratic_prediction,
            warnings: e.warnings.clone(),
            localization: e.config.localization,
        }
    }

    /// Whether the estimate exists and passed every diagnostic of the estimator.
    pub fn passed(&self) -> bool {
        self.llc_mean.is_some_and(f64::is_finite) && self.warnings.is_empty()
    }
}

/// Everything measured at one point of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measurement {
    /// λ̂ under the paper's protocol, at each SGLD step of the configuration.
    pub llc: Vec<LlcPoint>,
    /// λ̂ under the validated protocol (if configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<LlcPoint>,
    /// Hutchinson estimate of Tr(H) of the mean loss over the Hessian's evaluation examples.
    pub trace_h: f64,
    /// Standard error of `trace_h` over the Rademacher probes.
    pub trace_h_se: f64,
    /// Mean loss over the Hessian's evaluation examples.
    pub eval_loss: f64,
    /// ‖∇L‖ of that mean loss (how close the point is to a critical point).
    pub grad_norm: f64,
    /// Wall-clock seconds of the measurement.
    pub seconds: f64,
}

/// The Hessian spectrum of a model for figures: SLQ density and the top eigenvalues (Lanczos).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spectrum {
    /// Eigenvalues λ at which the density is evaluated, ascending.
    pub grid: Vec<f64>,
    /// SLQ estimate of the spectral density φ(λ) on `grid` (integrates to 1).
    pub density: Vec<f64>,
    /// The largest eigenvalues by Lanczos, descending.
    pub top_eigenvalues: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validated_protocol_is_due_at_the_last_and_the_first_matched_epoch() {
        let v = ValidatedProtocol {
            sgld: SgldConfig::default(),
            calibration: None,
            every_measured_epoch: false,
            matched_train_loss: Some(0.3),
        };
        assert!(!v.due(1, 5, 0.5, []));
        assert!(v.due(2, 5, 0.25, [0.5]));
        assert!(!v.due(3, 5, 0.2, [0.5, 0.25]));
        assert!(v.due(5, 5, 0.1, [0.5, 0.25, 0.2, 0.15]));
        assert!(ValidatedProtocol { every_measured_epoch: true, ..v }.due(3, 5, 0.9, [1.0, 1.0]));
    }
}
