#![warn(missing_docs)]
//! Small-sample statistics for comparing optimisers across seeds: Welch's unequal-variance t-test, the paired
//! t-test, Pearson's and Spearman's correlation with their p-values, and mean / sample standard
//! deviation helpers.
//!
//! Degenerate inputs (too few samples, zero variance, NaN or ±∞) are reported as a
//! [`StatsError`], never as a NaN statistic, so a report cannot silently print "p = NaN".
//! All p-values are two-sided and computed from the Student-t survival function (`statrs`).
//!
//! ```
//! use slt_stats::welch_t_test;
//! let ngd = [10.2, 11.0, 10.7, 11.4, 10.9];
//! let sgd = [8.1, 8.9, 8.4, 8.0, 8.7];
//! let t = welch_t_test(&ngd, &sgd).unwrap();
//! assert!(t.t > 0.0 && t.p_value < 1e-3);
//! ```

use statrs::distribution::{ContinuousCDF, StudentsT};

pub mod decision;

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// Fewer samples than the statistic needs.
    #[error("{what} needs at least {need} samples, got {got}")]
    TooFewSamples {
        /// The statistic being computed (e.g. "Welch's t-test").
        what: &'static str,
        /// Samples it needs at least.
        need: usize,
        /// Samples it was given.
        got: usize,
    },
    /// A sample is NaN or infinite (at this index of this input).
    #[error("{what}: sample {index} is not finite ({value})")]
    NonFinite {
        /// The statistic and input concerned.
        what: &'static str,
        /// Index (0-based) of the offending sample.
        index: usize,
        /// The sample: NaN, +∞ or −∞.
        value: f64,
    },
    /// The two inputs of a paired test or a correlation differ in length.
    #[error("{what}: inputs differ in length ({left} vs {right})")]
    LengthMismatch {
        /// The statistic being computed.
        what: &'static str,
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// The statistic divides by a variance that is zero: for t-tests, both groups (or all
    /// paired differences) are constant, and `mean_diff` says whether they differ at all;
    /// for correlations, one variable is constant.
    #[error("{what}: zero variance (mean difference {mean_diff})")]
    ZeroVariance {
        /// The statistic being computed.
        what: &'static str,
        /// Difference of the means (t-tests; the mean itself for a one-sample test); 0 for
        /// correlations.
        mean_diff: f64,
    },
}

/// The result of a two-sample or paired t-test (two-sided).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// t statistic, positive when the first sample's mean is larger.
    pub t: f64,
    /// Degrees of freedom (Welch–Satterthwaite for [`welch_t_test`], n − 1 for [`paired_t_test`]).
    pub df: f64,
    /// Two-sided p-value, P(|T_df| ≥ |t|).
    pub p_value: f64,
    /// mean(a) − mean(b) (for the paired test: the mean of the differences).
    pub mean_diff: f64,
    /// Standard error of `mean_diff`.
    pub std_error: f64,
}

/// A correlation coefficient with its two-sided p-value (t = r·√((n−2)/(1−r²)), df = n − 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    /// Pearson's r (for [`spearman`]: Pearson's r of the ranks, ties given their mean rank).
    pub r: f64,
    /// The t statistic of the test of zero correlation (±∞ when |r| = 1).
    pub t: f64,
    /// n − 2.
    pub df: f64,
    /// Two-sided p-value (0 when |r| = 1).
    pub p_value: f64,
    /// Number of pairs.
    pub n: usize,
}

/// Mean, sample standard deviation and standard error of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples (≥ 1).
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1); 0 when n = 1.
    pub std: f64,
    /// std / √n.
    pub std_error: f64,
}

fn check_finite(what: &'static str, xs: &[f64]) -> Result<(), StatsError> {
    match xs.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(StatsError::NonFinite { what, index, value }),
        None => Ok(()),
    }
}

fn check_len(what: &'static str, xs: &[f64], need: usize) -> Result<(), StatsError> {
    if xs.len() < need {
        return Err(StatsError::TooFewSamples { what, need, got: xs.len() });
    }
    check_finite(what, xs)
}

/// Arithmetic mean; `None` for an empty slice or one holding NaN / ±∞.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|v| !v.is_finite()) {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample variance (divisor n − 1); `None` when n < 2 or a value is not finite.
pub fn sample_variance(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    Some(xs.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (xs.len() - 1) as f64)
}

/// Sample standard deviation (divisor n − 1); `None` when n < 2 or a value is not finite.
pub fn sample_std(xs: &[f64]) -> Option<f64> {
    sample_variance(xs).map(f64::sqrt)
}

/// Mean, sample std and standard error; `None` for an empty slice or a non-finite value.
/// A single sample has std = std_error = 0.
pub fn summary(xs: &[f64]) -> Option<Summary> {
    let mean = mean(xs)?;
    let std = if xs.len() < 2 { 0.0 } else { sample_std(xs)? };
    Some(Summary { n: xs.len(), mean, std, std_error: std / (xs.len() as f64).sqrt() })
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom.
fn two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0 and finite by construction");
    (2.0 * dist.sf(t.abs())).min(1.0)
}

/// Welch's unequal-variance two-sample t-test of mean(a) = mean(b) (scipy's
/// `ttest_ind(a, b, equal_var=False)`). Needs at least 2 samples in each group; if both groups
/// have zero variance the result is [`StatsError::ZeroVariance`] (scipy: t = ±∞ or NaN). If only
/// one group is constant the test is still defined (df then follows from the other group).
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Result<TTest, StatsError> {
    const WHAT: &str = "Welch t-test";
    check_len(WHAT, a, 2)?;
    check_len(WHAT, b, 2)?;
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (ma, mb) = (mean(a).expect("checked"), mean(b).expect("checked"));
    let (va, vb) = (sample_variance(a).expect("checked") / na, sample_variance(b).expect("checked") / nb);
    let se2 = va + vb;
    let mean_diff = ma - mb;
    if se2 <= 0.0 {
        return Err(StatsError::ZeroVariance { what: WHAT, mean_diff });
    }
    let std_error = se2.sqrt();
    let t = mean_diff / std_error;
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    Ok(TTest { t, df, p_value: two_sided_p(t, df), mean_diff, std_error })
}

/// Paired t-test of mean(a − b) = 0 (scipy's `ttest_rel(a, b)`): a\[i\] and b\[i\] are measured on
/// the same unit (e.g. the same seed). Needs n ≥ 2 pairs; constant differences give
/// [`StatsError::ZeroVariance`].
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<TTest, StatsError> {
    const WHAT: &str = "paired t-test";
    if a.len() != b.len() {
        return Err(StatsError::LengthMismatch { what: WHAT, left: a.len(), right: b.len() });
    }
    check_len(WHAT, a, 2)?;
    check_len(WHAT, b, 2)?;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len() as f64;
    let mean_diff = mean(&d).expect("checked");
    let var = sample_variance(&d).expect("checked");
    if var <= 0.0 {
        return Err(StatsError::ZeroVariance { what: WHAT, mean_diff });
    }
    let std_error = (var / n).sqrt();
    let t = mean_diff / std_error;
    let df = n - 1.0;
    Ok(TTest { t, df, p_value: two_sided_p(t, df), mean_diff, std_error })
}

fn correlation_test(what: &'static str, x: &[f64], y: &[f64]) -> Result<Correlation, StatsError> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch { what, left: x.len(), right: y.len() });
    }
    check_len(what, x, 3)?;
    check_len(what, y, 3)?;
    let (mx, my) = (mean(x).expect("checked"), mean(y).expect("checked"));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return Err(StatsError::ZeroVariance { what, mean_diff: 0.0 });
    }
    let mut r = (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0);
    if 1.0 - r.abs() < 8.0 * f64::EPSILON {
        // Rounding noise around a perfect correlation: report it as one (t = ±∞, p = 0)
        // rather than as a huge finite t.
        r = r.signum();
    }
    let n = x.len();
    let df = (n - 2) as f64;
    let one_minus = 1.0 - r * r;
    let t = if one_minus <= 0.0 { f64::INFINITY.copysign(r) } else { r * (df / one_minus).sqrt() };
    Ok(Correlation { r, t, df, p_value: two_sided_p(t, df), n })
}

/// Pearson's correlation coefficient with the two-sided p-value of the t-test of ρ = 0
/// (scipy's `pearsonr`, which uses the exact null distribution of r — the same p-value).
/// Needs n ≥ 3 pairs and non-constant x and y.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Correlation, StatsError> {
    correlation_test("Pearson correlation", x, y)
}

/// Ranks 1..=n, tied values sharing their mean rank (scipy's `rankdata(method="average")`).
/// NaN-free input is assumed (the callers check).
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut out = vec![0.0; xs.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && xs[idx[end]] == xs[idx[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end: their mean is (start+1+end)/2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            out[i] = rank;
        }
        start = end;
    }
    out
}

/// Spearman's rank correlation: Pearson's r of the (tie-averaged) ranks, with the t
/// approximation for the p-value (scipy's `spearmanr`). Needs n ≥ 3 pairs, neither variable
/// constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Correlation, StatsError> {
    const WHAT: &str = "Spearman correlation";
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch { what: WHAT, left: x.len(), right: y.len() });
    }
    check_len(WHAT, x, 3)?;
    check_len(WHAT, y, 3)?;
    correlation_test(WHAT, &ranks(x), &ranks(y))
}

/// Least-squares line y = intercept + slope·x; `None` when n < 2, x is constant or a value is
/// not finite.
pub fn linear_fit(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (mx, my) = (mean(x)?, mean(y)?);
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx;
    Some((my - slope * mx, slope))
}

/// Spearman's ρ partialled on a third variable: (r_xy − r_xz·r_yz)/√((1 − r_xz²)(1 − r_yz²)).
pub fn partial_spearman(x: &[f64], y: &[f64], z: &[f64]) -> Option<f64> {
    let r = |a: &[f64], b: &[f64]| spearman(a, b).ok().map(|c| c.r);
    let (xy, xz, yz) = (r(x, y)?, r(x, z)?, r(y, z)?);
    let den = ((1.0 - xz * xz) * (1.0 - yz * yz)).sqrt();
    (den > 1e-9).then(|| (xy - xz * yz) / den)
}

/// A p-value for tables: "0", three significant decimals, or scientific below 10⁻³.
pub fn format_p(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 1e-3 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn mean_and_std() {
        // By hand: mean 5, squared deviations 9+1+1+9 = 20 (…plus 2·0 for the two 5s), /5.
        let xs = [2.0, 4.0, 5.0, 5.0, 6.0, 8.0];
        assert_eq!(mean(&xs), Some(5.0));
        assert!(close(sample_variance(&xs).unwrap(), 20.0 / 5.0, 1e-15));
        assert!(close(sample_std(&xs).unwrap(), 2.0, 1e-15));
        let s = summary(&xs).unwrap();
        assert!(close(s.std_error, 2.0 / 6f64.sqrt(), 1e-15));
        assert_eq!(mean(&[]), None);
        assert_eq!(sample_std(&[1.0]), None);
        assert_eq!(summary(&[3.0]).unwrap().std, 0.0);
        assert_eq!(mean(&[1.0, f64::NAN]), None);
        assert_eq!(sample_std(&[1.0, f64::INFINITY]), None);
    }

    // Expected numbers for the tests below: scipy 1.17.1 (`scipy.stats`), run once on this
    // machine in a virtualenv; the command is in each comment. The t and df values also follow by
    // hand from the formulas in the docs above (checked in `welch_by_hand`).

    const WELCH_T: f64 = 8.051998558851583;
    const WELCH_DF: f64 = 8.942617671175249;
    const WELCH_P: f64 = 2.1829438206396537e-05;
    const WELCH2_T: f64 = -0.7519445197271294;
    const WELCH2_DF: f64 = 2.3041432919926543;
    const WELCH2_P: f64 = 0.5213699456023224;
    const PAIRED_T: f64 = 2.5082388514498257;
    const PAIRED_P: f64 = 0.06618163508633712;
    const PEARSON_R: f64 = 0.9990803058716745;
    const PEARSON_P: f64 = 1.2683669787204573e-06;
    const PEARSON2_P: f64 = 0.10408803866182782;
    const SPEARMAN_R: f64 = 0.19885368120992467;
    const SPEARMAN_P: f64 = 0.6368617833253286;

    #[test]
    fn welch_matches_scipy() {
        // scipy.stats.ttest_ind([10.2,11.0,10.7,11.4,10.9], [8.1,8.9,8.4,8.0,8.7,9.3], equal_var=False)
        let a = [10.2, 11.0, 10.7, 11.4, 10.9];
        let b = [8.1, 8.9, 8.4, 8.0, 8.7, 9.3];
        let r = welch_t_test(&a, &b).unwrap();
        assert!(close(r.t, WELCH_T, 1e-12), "{r:?}");
        assert!(close(r.df, WELCH_DF, 1e-12), "{r:?}");
        assert!(close(r.p_value, WELCH_P, 1e-8), "{r:?}");
        // Swapping the groups flips t only.
        let s = welch_t_test(&b, &a).unwrap();
        assert!(close(s.t, -WELCH_T, 1e-12) && close(s.p_value, WELCH_P, 1e-12));
    }

    #[test]
    fn welch_unbalanced_large_p() {
        // scipy.stats.ttest_ind([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 9.0], equal_var=False)
        let r = welch_t_test(&[1.0, 2.0, 3.0, 4.0], &[1.5, 2.5, 9.0]).unwrap();
        assert!(close(r.t, WELCH2_T, 1e-12), "{r:?}");
        assert!(close(r.df, WELCH2_DF, 1e-12), "{r:?}");
        assert!(close(r.p_value, WELCH2_P, 1e-8), "{r:?}");
    }

    #[test]
    fn welch_by_hand() {
        // a = [1, 2, 3]: mean 2, var 1; b = [4, 6, 8]: mean 6, var 4 → se² = 1/3 + 4/3 = 5/3,
        // t = −4/√(5/3), df = (5/3)² / ((1/3)²/2 + (4/3)²/2) = (25/9)/(17/18) = 50/17.
        let r = welch_t_test(&[1.0, 2.0, 3.0], &[4.0, 6.0, 8.0]).unwrap();
        assert!(close(r.t, -4.0 / (5.0f64 / 3.0).sqrt(), 1e-14));
        assert!(close(r.df, 50.0 / 17.0, 1e-14));
        assert!(close(r.mean_diff, -4.0, 1e-15));
        // Only one constant group: still defined, df = n_b − 1.
        let r = welch_t_test(&[5.0, 5.0, 5.0], &[4.0, 6.0, 8.0]).unwrap();
        assert!(close(r.df, 2.0, 1e-14) && close(r.t, -1.0 / (4.0f64 / 3.0).sqrt(), 1e-14));
    }

    #[test]
    fn paired_matches_scipy() {
        // scipy.stats.ttest_rel([3.1, 4.2, 5.0, 6.3, 7.1], [2.9, 3.8, 5.1, 5.6, 6.5])
        let r = paired_t_test(&[3.1, 4.2, 5.0, 6.3, 7.1], &[2.9, 3.8, 5.1, 5.6, 6.5]).unwrap();
        assert!(close(r.t, PAIRED_T, 1e-12), "{r:?}");
        assert_eq!(r.df, 4.0);
        assert!(close(r.p_value, PAIRED_P, 1e-8), "{r:?}");
    }

    #[test]
    fn pearson_matches_scipy() {
        // scipy.stats.pearsonr([1, 2, 3, 4, 5, 6], [2.1, 3.9, 6.2, 7.8, 10.1, 11.8])
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [2.1, 3.9, 6.2, 7.8, 10.1, 11.8];
        let c = pearson(&x, &y).unwrap();
        assert!(close(c.r, PEARSON_R, 1e-12), "{c:?}");
        assert!(close(c.p_value, PEARSON_P, 1e-6), "{c:?}");
        assert_eq!((c.n, c.df), (6, 4.0));
        // scipy.stats.pearsonr([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]): r = 0.8 (by hand: Sxy = 8,
        // Sxx = Syy = 10), t = 0.8·√(3/0.36) = 2.3094.
        let c = pearson(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
        assert!(close(c.r, 0.8, 1e-14) && close(c.t, 0.8 * (3.0f64 / 0.36).sqrt(), 1e-13));
        assert!(close(c.p_value, PEARSON2_P, 1e-8), "{c:?}");
        // Perfect correlation: p = 0, t = ∞, not NaN.
        let c = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap();
        assert!(close(c.r, 1.0, 1e-15) && c.p_value == 0.0 && c.t == f64::INFINITY);
    }

    #[test]
    fn spearman_matches_scipy() {
        // scipy.stats.spearmanr([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]) (ties in both)
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let y = [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0];
        let c = spearman(&x, &y).unwrap();
        assert!(close(c.r, SPEARMAN_R, 1e-12), "{c:?}");
        assert!(close(c.p_value, SPEARMAN_P, 1e-8), "{c:?}");
        // Monotone but non-linear: ρ = 1 exactly.
        let c = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]).unwrap();
        assert_eq!(c.r, 1.0);
        assert_eq!(c.p_value, 0.0);
    }

    #[test]
    fn ranks_average_ties() {
        // scipy.stats.rankdata([3, 1, 4, 1, 5]) = [3, 1.5, 4, 1.5, 5]
        assert_eq!(ranks(&[3.0, 1.0, 4.0, 1.0, 5.0]), vec![3.0, 1.5, 4.0, 1.5, 5.0]);
        assert_eq!(ranks(&[2.0, 2.0, 2.0]), vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn degenerate_inputs_are_typed_errors() {
        assert!(matches!(welch_t_test(&[1.0], &[1.0, 2.0]), Err(StatsError::TooFewSamples { need: 2, got: 1, .. })));
        assert!(matches!(welch_t_test(&[], &[]), Err(StatsError::TooFewSamples { .. })));
        assert!(matches!(
            welch_t_test(&[1.0, 1.0], &[2.0, 2.0]),
            Err(StatsError::ZeroVariance { mean_diff, .. }) if mean_diff == -1.0
        ));
        assert!(matches!(welch_t_test(&[1.0, f64::NAN], &[2.0, 3.0]), Err(StatsError::NonFinite { index: 1, .. })));
        assert!(matches!(paired_t_test(&[1.0, 2.0], &[1.0]), Err(StatsError::LengthMismatch { .. })));
        assert!(matches!(paired_t_test(&[1.0, 2.0], &[0.0, 1.0]), Err(StatsError::ZeroVariance { .. })));
        assert!(matches!(pearson(&[1.0, 2.0], &[1.0, 2.0]), Err(StatsError::TooFewSamples { need: 3, .. })));
        assert!(matches!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), Err(StatsError::ZeroVariance { .. })));
        assert!(matches!(spearman(&[1.0, 2.0, f64::INFINITY], &[1.0, 2.0, 3.0]), Err(StatsError::NonFinite { .. })));
        assert_eq!(linear_fit(&[1.0, 1.0], &[1.0, 2.0]), None);
        // Messages name the test.
        assert!(pearson(&[1.0], &[1.0]).unwrap_err().to_string().contains("Pearson"));
    }

    #[test]
    fn least_squares_line() {
        // y = 1 + 2x exactly.
        let (a, b) = linear_fit(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 5.0, 7.0]).unwrap();
        assert!(close(a, 1.0, 1e-14) && close(b, 2.0, 1e-14));
    }
}
