//! Chain diagnostics: effective sample size and split R-hat (Gelman et al., *Bayesian Data
//! Analysis* 3rd ed., §11.4–11.5; Vehtari et al. 2021), and the warnings a user can read.

use serde::{Deserialize, Serialize};

/// The arithmetic mean (NaN for an empty slice; callers check).
pub(crate) fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn variance(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0).max(1.0)
}

/// Split R-hat: each chain is cut in halves, R̂ = √(((N−1)/N·W + B/N) / W) with W the mean
/// within-half variance and B/N the variance of the half means. `None` with fewer than 4 draws
/// per chain or no within-chain variance.
pub fn split_r_hat(chains: &[&[f64]]) -> Option<f64> {
    let len = chains.iter().map(|c| c.len()).min()?;
    let half = len / 2;
    if half < 2 {
        return None;
    }
    let halves: Vec<&[f64]> = chains.iter().flat_map(|c| [&c[..half], &c[half..2 * half]]).collect();
    let w = mean(&halves.iter().map(|h| variance(h)).collect::<Vec<_>>());
    if !(w > 0.0) {
        return None;
    }
    let means: Vec<f64> = halves.iter().map(|h| mean(h)).collect();
    let b_over_n = variance(&means);
    let n = half as f64;
    Some((((n - 1.0) / n * w + b_over_n) / w).sqrt())
}

/// Effective sample size of one chain by Geyer's initial positive sequence: sum
/// autocorrelation pairs ρ(2k) + ρ(2k+1) while positive; ESS = N / (1 + 2Σρ).
pub fn effective_sample_size(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 4 {
        return n as f64;
    }
    let m = mean(x);
    let c0 = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64;
    if !(c0 > 0.0) {
        return n as f64;
    }
    let rho =
        |lag: usize| -> f64 { (0..n - lag).map(|i| (x[i] - m) * (x[i + lag] - m)).sum::<f64>() / (n as f64 * c0) };
    let mut sum = 0.0;
    let mut k = 1;
    while k + 1 < n {
        let pair = rho(k) + rho(k + 1);
        if pair <= 0.0 {
            break;
        }
        sum += pair;
        k += 2;
    }
    // The pair sum starts at lag 1, so add ρ(0) = 1 and correct the first term.
    let tau = (1.0 + 2.0 * sum).max(1e-12);
    (n as f64 / tau).min(n as f64)
}

/// Something a user should know before trusting an estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Warning {
    /// Some chains produced a non-finite loss and were excluded.
    Diverged {
        /// Chains that diverged.
        diverged: usize,
        /// Chains run.
        chains: usize,
    },
    /// The running λ̂ had not flattened: the second half of the draws gives a clearly larger
    /// estimate than the first.
    StillRising {
        /// λ̂ from the first half of the draws.
        first_half: f64,
        /// λ̂ from the second half of the draws.
        second_half: f64,
    },
    /// The chains drifted to the scale √(d/γ) of the localisation Gaussian alone.
    AtLocalizationScale {
        /// Mean ‖w − w*‖ at the last draw.
        distance: f64,
        /// √(d/γ).
        scale: f64,
    },
    /// λ̂ matches the quadratic prediction nβ·Tr(H)/(2γ): it measures curvature under the
    /// localiser more than the learning coefficient.
    MatchesQuadraticPrediction {
        /// λ̂.
        llc: f64,
        /// nβ·Tr(H)/(2γ).
        prediction: f64,
    },
    /// λ̂ < 0: w* is not a local minimum of the loss.
    NegativeLlc {
        /// λ̂.
        llc: f64,
    },
    /// Most draws are below L(w*): w* is not a local minimum.
    BelowInitLoss {
        /// Share of the draws below L(w*), in [0, 1].
        share: f64,
    },
    /// Low MALA acceptance: the step size is probably too large.
    LowAcceptance {
        /// Mean MALA acceptance probability.
        mean: f64,
    },
    /// Chains disagree.
    HighRHat {
        /// Split R-hat of the draws across chains.
        r_hat: f64,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Diverged { diverged, chains } => write!(
                f,
                "step size too large: {diverged} of {chains} chains diverged (excluded from the estimate)"
            ),
            Warning::StillRising { first_half, second_half } => write!(
                f,
                "λ̂ still rising ({first_half:.4} over the first half of the draws, {second_half:.4} over the second): increase draws or burn-in"
            ),
            Warning::AtLocalizationScale { distance, scale } => write!(
                f,
                "chains sit at the localisation scale (mean ‖w − w*‖ = {distance:.4} vs √(d/γ) = {scale:.4}): λ̂ reflects γ, not the loss"
            ),
            Warning::MatchesQuadraticPrediction { llc, prediction } => write!(
                f,
                "λ̂ = {llc:.4} agrees with the quadratic prediction nβ·Tr(H)/(2γ) = {prediction:.4}: it measures curvature under the localiser, not degeneracy"
            ),
            Warning::NegativeLlc { llc } => write!(f, "λ̂ = {llc:.4} < 0: w* is not a local minimum of the loss"),
            Warning::BelowInitLoss { share } => write!(
                f,
                "{:.0}% of draws are below L(w*): w* is not a local minimum of the loss",
                100.0 * share
            ),
            Warning::LowAcceptance { mean } => write!(
                f,
                "mean MALA acceptance {mean:.3} < 0.5: the step size is probably too large"
            ),
            Warning::HighRHat { r_hat } => write!(f, "chains disagree (split R-hat = {r_hat:.3} > 1.1): run longer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn ar1(phi: f64, n: usize, seed: u64, offset: f64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                x = phi * x + rng.sample::<f64, _>(rand_distr::StandardNormal);
                x + offset
            })
            .collect()
    }

    #[test]
    fn ess_of_white_noise_is_close_to_n_and_of_ar1_to_theory() {
        // Seeds fixed; AR(1) with φ has τ = (1+φ)/(1−φ): φ = 0.8 → ESS ≈ N/9.
        let white = ar1(0.0, 4000, 1, 0.0);
        let ess = effective_sample_size(&white);
        assert!((ess / 4000.0 - 1.0).abs() < 0.15, "{ess}");
        let corr = ar1(0.8, 20000, 2, 0.0);
        let ess = effective_sample_size(&corr);
        assert!((ess / (20000.0 / 9.0) - 1.0).abs() < 0.25, "{ess}");
    }

    #[test]
    fn r_hat_is_one_for_agreeing_chains_and_large_for_shifted_ones() {
        let a = ar1(0.5, 2000, 3, 0.0);
        let b = ar1(0.5, 2000, 4, 0.0);
        let r = split_r_hat(&[&a, &b]).unwrap();
        assert!((r - 1.0).abs() < 0.02, "{r}");
        let c = ar1(0.5, 2000, 5, 3.0);
        let r = split_r_hat(&[&a, &c]).unwrap();
        assert!(r > 1.5, "{r}");
    }
}
