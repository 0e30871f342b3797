//! Three-outcome decisions from one-sample tests: the rule behind a pre-registered verdict.
//!
//! The same bar both ways at level α: *holds* when the one-sided test in the claimed direction
//! is significant, *contradicted* when the one-sided test in the opposite direction is,
//! *inconclusive* otherwise or when the samples cannot be trusted (the caller's blockers: a
//! diverged run, missing samples, a confounded contrast), with the reason. A claim of *no rise*
//! is a non-superiority test with a stated margin (the upper half of a TOST), so absence of a
//! significant rise is never evidence that nothing rose. Each decision carries the effect, its
//! two-sided (1 − 2α) confidence interval and the smallest effect detectable at the stated
//! power, (t₁₋α + t_power)·SE.
//!
//! ```
//! use slt_stats::decision::{decide, Direction, Hypothesis, Levels, Outcome, Samples};
//! let rises = Samples { values: vec![0.9, 1.1, 1.0, 1.2, 0.8], ..Default::default() };
//! let v = decide(&rises, Hypothesis::Directional(Direction::Greater), &Levels::default());
//! assert_eq!(v.outcome, Outcome::Holds);
//! ```

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate as stats;
use crate::format_p as fmt_p;

/// The sign a claim predicts for an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// The effect is positive (μ > 0).
    Greater,
    /// The effect is negative (μ < 0).
    Less,
}

/// What a test asserts about the mean μ of its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hypothesis {
    /// μ has the given sign.
    Directional(Direction),
    /// μ < margin (non-superiority: "does not rise by more than the margin").
    NotAbove {
        /// The largest rise still counted as "no rise", in the samples' units.
        margin: f64,
    },
}

/// Levels of the design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    /// Significance level α of each one-sided test (default 0.05).
    pub alpha: f64,
    /// Power (1 − β) at which [`Evidence::detectable`] is stated (default 0.8).
    pub power: f64,
    /// Fewest independent samples a primary test accepts.
    pub min_samples: usize,
}

impl Default for Levels {
    fn default() -> Self {
        Self { alpha: 0.05, power: 0.8, min_samples: 3 }
    }
}

/// A one-sample t-test's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// Number of samples.
    pub n: usize,
    /// Mean of the samples.
    pub effect: f64,
    /// Standard error of the mean, s/√n.
    pub std_error: f64,
    /// Degrees of freedom, n − 1.
    pub df: f64,
    /// Two-sided (1 − 2α) confidence interval of the mean.
    pub ci: (f64, f64),
    /// One-sided p-value of the claim's test.
    pub p_claim: f64,
    /// One-sided p-value of the opposite test (same level).
    pub p_against: f64,
    /// Smallest effect (distance from the null of the claim's test) detectable with the
    /// design's power at level α given the observed spread: (t₁₋α + t_power)·SE.
    pub detectable: f64,
}

/// One-sample t-test of `values` against `hypothesis`.
pub fn one_sample(values: &[f64], hypothesis: Hypothesis, levels: &Levels) -> Result<Evidence, stats::StatsError> {
    const WHAT: &str = "one-sample t-test";
    let s =
        stats::summary(values).ok_or(stats::StatsError::TooFewSamples { what: WHAT, need: 2, got: values.len() })?;
    if s.n < 2 {
        return Err(stats::StatsError::TooFewSamples { what: WHAT, need: 2, got: s.n });
    }
    if !(s.std_error > 0.0) {
        return Err(stats::StatsError::ZeroVariance { what: WHAT, mean_diff: s.mean });
    }
    let df = (s.n - 1) as f64;
    let t_dist = StudentsT::new(0.0, 1.0, df).expect("df ≥ 1");
    let q = |p: f64| t_dist.inverse_cdf(p);
    let (null, claim_is_upper) = match hypothesis {
        Hypothesis::Directional(Direction::Greater) => (0.0, true),
        Hypothesis::Directional(Direction::Less) => (0.0, false),
        Hypothesis::NotAbove { margin } => (margin, false),
    };
    let t = (s.mean - null) / s.std_error;
    let (upper, lower) = (t_dist.sf(t), t_dist.cdf(t));
    let (p_claim, p_against) = if claim_is_upper { (upper, lower) } else { (lower, upper) };
    let half = q(1.0 - levels.alpha) * s.std_error;
    Ok(Evidence {
        n: s.n,
        effect: s.mean,
        std_error: s.std_error,
        df,
        ci: (s.mean - half, s.mean + half),
        p_claim,
        p_against,
        detectable: (q(1.0 - levels.alpha) + q(levels.power)) * s.std_error,
    })
}

/// Two one-sided tests of equivalence |μ| < margin: the larger of the two one-sided p-values.
pub fn tost(values: &[f64], margin: f64, levels: &Levels) -> Result<f64, stats::StatsError> {
    let below = one_sample(values, Hypothesis::NotAbove { margin }, levels)?.p_claim;
    let neg: Vec<f64> = values.iter().map(|v| -v).collect();
    let above = one_sample(&neg, Hypothesis::NotAbove { margin }, levels)?.p_claim;
    Ok(below.max(above))
}

/// Holm's step-down adjustment of `p` (family-wise error at the same α), in input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = p.len();
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The one-sided test in the claimed direction is significant at α.
    Holds,
    /// The one-sided test in the opposite direction is significant at α.
    Contradicted,
    /// Neither is, or the samples cannot be tested (see [`Verdict::reason`]).
    Inconclusive,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Holds => "holds",
            Outcome::Contradicted => "contradicted",
            Outcome::Inconclusive => "inconclusive",
        })
    }
}

/// A verdict with its reason and the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Holds, contradicted or inconclusive.
    pub outcome: Outcome,
    /// Why, in one sentence for the report (p-values, blockers, detectable effect).
    pub reason: String,
    /// The test's numbers, when the test could be computed (even if blocked).
    pub evidence: Option<Evidence>,
}

/// Samples for one test, with what stands in the way of trusting them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// One value per independent unit (e.g. per seed pair), in the effect's units.
    pub values: Vec<f64>,
    /// Reasons the test cannot decide (diverged runs, confounding, missing samples).
    pub blockers: Vec<String>,
    /// Facts a reader should see that do not block.
    pub notes: Vec<String>,
}

/// Applies the rule to `samples` under `hypothesis`.
pub fn decide(samples: &Samples, hypothesis: Hypothesis, levels: &Levels) -> Verdict {
    let evidence = one_sample(&samples.values, hypothesis, levels);
    let ev = evidence.as_ref().ok().copied();
    let inconclusive = |reason: String| Verdict { outcome: Outcome::Inconclusive, reason, evidence: ev };
    if !samples.blockers.is_empty() {
        return inconclusive(format!("untestable: {}", samples.blockers.join("; ")));
    }
    if samples.values.len() < levels.min_samples {
        return inconclusive(format!(
            "too few independent samples (n = {}, the design needs ≥ {})",
            samples.values.len(),
            levels.min_samples
        ));
    }
    let e = match evidence {
        Ok(e) => e,
        Err(err) => return inconclusive(format!("no test: {err}")),
    };
    let a = levels.alpha;
    if e.p_claim < a {
        return Verdict {
            outcome: Outcome::Holds,
            reason: format!("p = {} < {a} in the claimed direction", fmt_p(e.p_claim)),
            evidence: ev,
        };
    }
    if e.p_against < a {
        return Verdict {
            outcome: Outcome::Contradicted,
            reason: format!("p = {} < {a} in the opposite direction", fmt_p(e.p_against)),
            evidence: ev,
        };
    }
    let power = (levels.power * 100.0).round();
    let resolve = match hypothesis {
        Hypothesis::NotAbove { margin } => format!(
            "the seeds cannot resolve the margin: equivalence could be shown only for margins ≥ {:.3} (at {power:.0} % power), the margin is {margin}",
            e.detectable
        ),
        Hypothesis::Directional(_) => {
            format!("the test could detect effects ≥ {:.3} at {power:.0} % power; observed {:+.3}", e.detectable, e.effect)
        }
    };
    inconclusive(format!(
        "neither direction significant (p = {} claimed, {} opposite); {resolve}",
        fmt_p(e.p_claim),
        fmt_p(e.p_against)
    ))
}

// ---------------------------------------------------------------------------------------------
// What the profile declares.

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Levels {
        Levels::default()
    }

    #[test]
    fn one_sample_matches_hand_computation() {
        let v = [0.5, 1.5, 0.0, 2.0];
        let e2 = one_sample(&v, Hypothesis::Directional(Direction::Greater), &levels()).unwrap();
        // mean 1, sd = 0.9129, se = 0.4564, t = 2.191, p = 0.0581 (scipy.stats.ttest_1samp, alternative='greater').
        assert!((e2.p_claim - 0.05807).abs() < 2e-4, "{}", e2.p_claim);
        assert!((e2.p_claim + e2.p_against - 1.0).abs() < 1e-12);
        // detectable = (t_0.95,3 + t_0.8,3)·se = (2.3534 + 0.9785)·0.4564.
        assert!((e2.detectable - 3.3319 * 0.45644).abs() < 1e-3, "{}", e2.detectable);
        assert_eq!((e2.n, e2.df), (4, 3.0));
        // The 90 % interval of the mean: 1 ± 2.3534·0.4564.
        assert!((e2.ci.1 - (1.0 + 2.35336 * 0.456435)).abs() < 1e-3, "{:?}", e2.ci);
    }

    #[test]
    fn holm_matches_the_textbook_example() {
        // p = (0.01, 0.04, 0.03, 0.005): sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.06, 0.04).
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
    }

    #[test]
    fn decide_reaches_every_outcome() {
        let l = levels();
        let up = Samples { values: vec![0.9, 1.1, 1.0, 1.2, 0.8], ..Default::default() };
        let down = Samples { values: up.values.iter().map(|v| -v).collect(), ..Default::default() };
        let noise = Samples { values: vec![0.3, -0.2, 0.1, -0.4, 0.2], ..Default::default() };
        let g = Hypothesis::Directional(Direction::Greater);
        assert_eq!(decide(&up, g, &l).outcome, Outcome::Holds);
        assert_eq!(decide(&down, g, &l).outcome, Outcome::Contradicted);
        assert_eq!(decide(&noise, g, &l).outcome, Outcome::Inconclusive);
        assert_eq!(decide(&up, Hypothesis::Directional(Direction::Less), &l).outcome, Outcome::Contradicted);
        let blocked = Samples { blockers: vec!["1 run(s) diverged".into()], ..up.clone() };
        let v = decide(&blocked, g, &l);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(v.reason.contains("diverged"), "{}", v.reason);
        let two = Samples { values: vec![1.0, 1.1], ..Default::default() };
        assert!(decide(&two, g, &l).reason.contains("too few"));
        let flat = Samples { values: vec![1.0; 4], ..Default::default() };
        assert!(decide(&flat, g, &l).reason.contains("zero variance"));
    }

    #[test]
    fn non_superiority_needs_the_seeds_to_resolve_the_margin() {
        let l = levels();
        let m = Hypothesis::NotAbove { margin: 0.1 };
        // Many seeds, no effect: the upper confidence bound sits well below the margin.
        let many: Vec<f64> = (0..20).map(|i| 0.02 * ((i * 7 % 5) as f64 - 2.0)).collect();
        assert_eq!(decide(&Samples { values: many, ..Default::default() }, m, &l).outcome, Outcome::Holds);
        // Three seeds, no effect, spread as large as the margin: inconclusive, and says why.
        let few = Samples { values: vec![0.08, -0.1, 0.03], ..Default::default() };
        let v = decide(&few, m, &l);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(v.reason.contains("cannot resolve the margin"), "{}", v.reason);
        // A clear rise beyond the margin contradicts.
        let rise = Samples { values: vec![0.5, 0.6, 0.55, 0.45], ..Default::default() };
        assert_eq!(decide(&rise, m, &l).outcome, Outcome::Contradicted);
        // Equivalence by TOST needs both sides.
        assert!(tost(&[0.01, -0.01, 0.0, 0.02, -0.02], 0.1, &l).unwrap() < 0.05);
        assert!(tost(&[-0.5, -0.6, -0.55], 0.1, &l).unwrap() > 0.5);
    }
}
