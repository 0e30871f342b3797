//! The verdict engine: pre-registered tests of the paper's claims (one primary test each, α = 0.05), as pure
//! functions of run records, so that every outcome can be unit-tested on synthetic records.
//!
//! **The design.** Each claim has one *primary* test, declared in the profile's `analysis`
//! block before any run: which quantity (λ̂ or Tr(H)), which contrast, at which point of
//! training (the final epoch, or the first epoch at which a run reaches a stated training loss
//! — *matched convergence*), and the claimed direction. Every primary test is a one-sample
//! Student t-test on statistics that are independent across seeds: paired-by-seed relative
//! differences (claims 1 and 3), per-seed regression slopes (claim 2, the lr effect of claim 3)
//! or per-seed rank correlations over a run's own epochs (claim 4). Repeated measurements of
//! one run are therefore never treated as independent.
//!
//! **The rule** (the same bar both ways), at level α (default 0.05):
//! * *holds*: the one-sided test in the claimed direction is significant (p < α);
//! * *contradicted*: the one-sided test in the opposite direction is significant (p < α);
//! * *inconclusive*: neither, or the test cannot be run or cannot be trusted — a diverged run in
//!   the contrast, fewer than three independent samples, too many missing samples, arms at
//!   different training losses (confounded by convergence), zero spread — with the reason.
//!
//! For claims of *no rise* (claim 3's control) the claim is non-superiority with a margin m
//! stated in the profile: *holds* when H₀: μ ≥ m is rejected (the upper limit of the one-sided
//! (1 − α) confidence bound is below m — the upper half of a TOST), *contradicted* when
//! H₀: μ ≤ m is rejected (a rise larger than the margin), *inconclusive* otherwise: absence of
//! a significant rise is not evidence that nothing rose.
//!
//! Next to each test: the effect with its two-sided (1 − 2α) confidence interval (the interval
//! that matches two one-sided tests at α), and the smallest effect the test could detect with
//! the stated power given the observed spread, (t₁₋α + t_power)·SE. *Secondary* tests (other
//! quantities, arms, bases, cells) are shown with Holm-corrected one-sided p-values and never
//! decide a verdict.

use std::collections::{BTreeMap, BTreeSet};

use slt_stats as stats;
use slt_stats::decision::{decide, holm, one_sample, tost, Direction, Evidence, Hypothesis, Levels, Samples, Verdict};
use slt_stats::format_p as fmt_p;

use slt_runs::profile::Profile;
pub use slt_runs::profile::{
    s2_label, s3_control_label, s3_ngd_label, AnalysisPlan, Basis, Claim1Plan, Claim2Plan, Claim3Plan, Claim4Plan,
    Protocol, Quantity, QuantityKind, Sweep,
};
use slt_runs::records::{EpochMetrics, RunRecord};

// ---------------------------------------------------------------------------------------------
// Reading run records.

/// The metrics row at which `r` is read under `basis` (`None`: diverged, never reached the
/// target, or not measured there).
pub fn point(r: &RunRecord, basis: Basis, target: Option<f64>) -> Option<&EpochMetrics> {
    if r.diverged.is_some() {
        return None;
    }
    match basis {
        Basis::Final => r.metrics.last().filter(|m| m.measurement.is_some()),
        Basis::Matched => {
            let target = target?;
            r.metrics.iter().find(|m| m.measurement.is_some() && m.train_loss <= target)
        }
    }
}

fn value(r: &RunRecord, q: Quantity, basis: Basis, plan: &AnalysisPlan) -> Option<f64> {
    let target = plan.target(r.planned.config.dataset.name());
    point(r, basis, target).and_then(|m| m.measurement.as_ref()).and_then(|m| q.of(m))
}

fn final_train_loss(r: &RunRecord) -> Option<f64> {
    if r.diverged.is_some() {
        return None;
    }
    r.metrics.last().map(|m| m.train_loss)
}

fn describe_run(r: &RunRecord) -> String {
    format!(
        "{} {} {} seed {}",
        r.planned.config.dataset, r.planned.config.model, r.planned.label, r.planned.config.seed
    )
}

/// Blocks when any run of `runs` diverged.
fn diverged_blocker(samples: &mut Samples, runs: &[&RunRecord]) {
    let diverged: Vec<String> = runs.iter().filter(|r| r.diverged.is_some()).map(|r| describe_run(r)).collect();
    if !diverged.is_empty() {
        samples.blockers.push(format!(
            "{} run(s) diverged ({}): dropping them would bias the comparison",
            diverged.len(),
            diverged.join(", ")
        ));
    }
}

/// Blocks when more than the allowed share of `planned` samples is missing.
fn missing_blocker(samples: &mut Samples, planned: usize, what: &str, plan: &AnalysisPlan) {
    let missing = planned.saturating_sub(samples.values.len());
    if missing == 0 {
        return;
    }
    let text = format!("{missing} of {planned} samples missing ({what})");
    if planned == 0 || missing as f64 > plan.max_missing_share * planned as f64 {
        samples.blockers.push(text);
    } else {
        samples.notes.push(text);
    }
}

/// Blocks (basis `Final` only) when groups' mean final training losses differ by more than the
/// confound ratio.
fn confound_blocker(samples: &mut Samples, groups: &[(String, Vec<&RunRecord>)], basis: Basis, plan: &AnalysisPlan) {
    let means: Vec<(String, f64)> = groups
        .iter()
        .filter_map(|(name, rs)| {
            let losses: Vec<f64> = rs.iter().filter_map(|r| final_train_loss(r)).collect();
            stats::mean(&losses).map(|m| (name.clone(), m))
        })
        .collect();
    let (Some(lo), Some(hi)) =
        (means.iter().min_by(|a, b| a.1.total_cmp(&b.1)), means.iter().max_by(|a, b| a.1.total_cmp(&b.1)))
    else {
        return;
    };
    if lo.1 > 0.0 && hi.1 / lo.1 > plan.confound_ratio {
        let text = format!(
            "confounded by convergence: final training loss {:.3} ({}) vs {:.3} ({}), ratio {:.2} > {}",
            hi.1,
            hi.0,
            lo.1,
            lo.0,
            hi.1 / lo.1,
            plan.confound_ratio
        );
        match basis {
            Basis::Final => samples.blockers.push(text),
            Basis::Matched => {
                samples.notes.push(format!("{text} (matched convergence compares them at equal training loss)"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The claims.

/// One test of an analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct TestLine {
    /// What is tested, for the report's tables (contrast, quantity, basis).
    pub name: String,
    /// The claimed direction, or the non-superiority margin.
    pub hypothesis: Hypothesis,
    /// The independent samples (one per seed or per cell and seed) with blockers and notes.
    pub samples: Samples,
    /// The one-sample t-test's numbers, if it could be computed.
    pub evidence: Option<Evidence>,
    /// Why no test could be computed.
    pub error: Option<String>,
    /// Holm-adjusted one-sided p (secondaries only).
    pub p_holm: Option<f64>,
}

impl TestLine {
    fn new(name: String, hypothesis: Hypothesis, samples: Samples, levels: &Levels) -> Self {
        let (evidence, error) = match one_sample(&samples.values, hypothesis, levels) {
            Ok(e) => (Some(e), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Self { name, hypothesis, samples, evidence, error, p_holm: None }
    }
}

/// A primary test and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Primary {
    /// What part of the claim it decides.
    pub part: String,
    /// The declared test, in words.
    pub declared: String,
    /// The test and its samples.
    pub test: TestLine,
    /// Holds, contradicted or inconclusive, with the reason.
    pub verdict: Verdict,
}

/// Everything a claim's section shows under one protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimAnalysis {
    /// The pre-registered tests that decide the claim (one per part of the claim).
    pub primaries: Vec<Primary>,
    /// Other quantities, arms, bases and cells, with Holm-adjusted p; they never decide.
    pub secondaries: Vec<TestLine>,
    /// Facts the claim's section states besides the tests.
    pub notes: Vec<String>,
}

impl ClaimAnalysis {
    fn finish(primaries: Vec<Primary>, mut secondaries: Vec<TestLine>, notes: Vec<String>) -> Self {
        let idx: Vec<usize> = (0..secondaries.len()).filter(|&i| secondaries[i].evidence.is_some()).collect();
        let p: Vec<f64> = idx.iter().map(|&i| secondaries[i].evidence.unwrap().p_claim).collect();
        for (k, adj) in holm(&p).into_iter().enumerate() {
            secondaries[idx[k]].p_holm = Some(adj);
        }
        Self { primaries, secondaries, notes }
    }
}

fn primary(part: &str, declared: String, test: TestLine, levels: &Levels) -> Primary {
    let verdict = decide(&test.samples, test.hypothesis, levels);
    Primary { part: part.into(), declared, test, verdict }
}

fn quantities(kind: QuantityKind, protocol: Protocol, steps: usize) -> Vec<Quantity> {
    // The primary's quantity first, then the other λ̂ steps of the paper protocol and Tr(H).
    let mut out = vec![Quantity { kind, protocol }];
    let mut push = |q: Quantity| {
        if !out.contains(&q) {
            out.push(q);
        }
    };
    if kind == QuantityKind::Llc {
        if let Protocol::Paper(_) = protocol {
            for k in 0..steps {
                push(Quantity { kind, protocol: Protocol::Paper(k) });
            }
        }
    }
    push(Quantity { kind: QuantityKind::Trace, protocol });
    push(Quantity { kind: QuantityKind::Llc, protocol });
    out
}

fn by_label<'a>(runs: &[&'a RunRecord], label: &str) -> Vec<&'a RunRecord> {
    runs.iter().copied().filter(|r| r.planned.label == label).collect()
}

/// Per seed present in both, (q_arm − q_ref)/|mean of q_ref over the seeds|: the paired relative
/// difference of two groups of runs of one cell.
pub fn paired_relative(
    arms: &[&RunRecord],
    refs: &[&RunRecord],
    q: Quantity,
    basis: Basis,
    plan: &AnalysisPlan,
) -> Vec<f64> {
    let ref_values: BTreeMap<u64, f64> =
        refs.iter().filter_map(|r| value(r, q, basis, plan).map(|v| (r.planned.config.seed, v))).collect();
    let Some(m) = stats::mean(&ref_values.values().copied().collect::<Vec<_>>()).filter(|m| *m != 0.0) else {
        return Vec::new();
    };
    arms.iter()
        .filter_map(|r| Some((value(r, q, basis, plan)? - ref_values.get(&r.planned.config.seed)?) / m.abs()))
        .collect()
}

/// Whether `runs` were configured to measure `q` (the validated protocol can be limited to some
/// cells; a cell without it is no missing sample).
fn measures(runs: &[&RunRecord], q: Quantity) -> bool {
    q.protocol != Protocol::Validated
        || runs.iter().any(|r| r.planned.config.measure.as_ref().is_some_and(|m| m.validated.is_some()))
}

/// Claim 1: per (cell, seed) relative difference (q_arm − q_ref)/|mean q_ref of the cell|.
fn claim1_samples(
    runs: &[&RunRecord],
    profile: &Profile,
    plan: &AnalysisPlan,
    arm: &str,
    q: Quantity,
    basis: Basis,
) -> (Samples, Vec<(String, Samples)>) {
    let s1 = &profile.s1;
    let reference = &s1.arms[0];
    let mut all = Samples::default();
    let mut cells = Vec::new();
    let mut planned = 0;
    let mut involved = Vec::new();
    let mut unmeasured = Vec::new();
    for &dataset in &s1.datasets {
        for &model in &s1.models {
            let in_cell = |label: &str| -> Vec<&RunRecord> {
                runs.iter()
                    .copied()
                    .filter(|r| {
                        r.planned.config.dataset == dataset
                            && r.planned.config.model == model
                            && r.planned.label == label
                    })
                    .collect()
            };
            let (refs, arms) = (in_cell(reference), in_cell(arm));
            if !measures(&refs, q) || !measures(&arms, q) {
                unmeasured.push(format!("{dataset} {model}"));
                continue;
            }
            involved.extend(refs.iter().copied().chain(arms.iter().copied()));
            let mut cell = Samples { values: paired_relative(&arms, &refs, q, basis, plan), ..Default::default() };
            let cell_planned = s1.seeds.len();
            planned += cell_planned;
            all.values.extend(cell.values.iter().copied());
            diverged_blocker(&mut cell, &[refs.clone(), arms.clone()].concat());
            missing_blocker(&mut cell, cell_planned, "not measured at this basis, or diverged", plan);
            confound_blocker(
                &mut cell,
                &[(reference.clone(), refs.clone()), (arm.to_string(), arms.clone())],
                basis,
                plan,
            );
            cells.push((format!("{dataset} {model}"), cell));
        }
    }
    if !unmeasured.is_empty() {
        all.notes
            .push(format!("not measured under this protocol (by the profile's design): {}", unmeasured.join(", ")));
    }
    diverged_blocker(&mut all, &involved);
    missing_blocker(&mut all, planned, "a run never reached the matched training loss, was not measured there, diverged or failed the estimator's diagnostics", plan);
    let confounded: Vec<String> = cells
        .iter()
        .filter(|(_, c)| c.blockers.iter().chain(&c.notes).any(|b| b.starts_with("confounded")))
        .map(|(n, _)| n.clone())
        .collect();
    if !confounded.is_empty() {
        let text = format!(
            "confounded by convergence in {} of {} cells ({})",
            confounded.len(),
            cells.len(),
            confounded.join(", ")
        );
        match basis {
            Basis::Final => all.blockers.push(text),
            Basis::Matched => {
                all.notes.push(format!("{text}; matched convergence compares them at equal training loss"))
            }
        }
    }
    (all, cells)
}

/// Claim 1 under `protocol`.
pub fn claim1(runs: &[&RunRecord], profile: &Profile, plan: &AnalysisPlan, protocol: Protocol) -> ClaimAnalysis {
    let levels = plan.levels();
    let c = &plan.claim1;
    let steps = profile.measure.sgld_steps.len();
    let hyp = Hypothesis::Directional(Direction::Greater);
    let reference = &profile.s1.arms[0];
    let q0 = Quantity { kind: c.quantity, protocol };
    let (samples, cells) = claim1_samples(runs, profile, plan, &c.arm, q0, c.basis);
    let declared = format!(
        "`{}` vs `{reference}`: {} at the {} point, paired by seed, relative to the reference's cell mean, pooled over {} cells; \
         one-sample t-test, one-sided (> 0), α = {}",
        c.arm,
        q0.name(&profile.measure.sgld_steps),
        basis_name(c.basis),
        cells.len(),
        plan.alpha
    );
    let main = TestLine::new(
        format!("{} vs {reference}, {}, {}", c.arm, q0.name(&profile.measure.sgld_steps), basis_name(c.basis)),
        hyp,
        samples,
        &levels,
    );
    let primaries = vec![primary("NGD > SGD", declared, main, &levels)];
    let mut secondaries = Vec::new();
    for arm in profile.s1.arms.iter().skip(1) {
        for q in quantities(c.quantity, protocol, steps) {
            for basis in [Basis::Final, Basis::Matched] {
                if arm == &c.arm && q == q0 && basis == c.basis {
                    continue;
                }
                let (s, _) = claim1_samples(runs, profile, plan, arm, q, basis);
                secondaries.push(TestLine::new(
                    format!("{arm} vs {reference}, {}, {}", q.name(&profile.measure.sgld_steps), basis_name(basis)),
                    hyp,
                    s,
                    &levels,
                ));
            }
        }
    }
    for (cell, s) in cells {
        secondaries.push(TestLine::new(
            format!(
                "{} vs {reference}, {}, {}, cell {cell}",
                c.arm,
                q0.name(&profile.measure.sgld_steps),
                basis_name(c.basis)
            ),
            hyp,
            s,
            &levels,
        ));
    }
    ClaimAnalysis::finish(primaries, secondaries, Vec::new())
}

/// How the report names a basis (`final-epoch`, `matched-convergence`).
pub fn basis_name(b: Basis) -> &'static str {
    match b {
        Basis::Final => "final-epoch",
        Basis::Matched => "matched-convergence",
    }
}

/// The smoothing value a suite-2 run sweeps.
pub fn smoothing_of(r: &RunRecord, sweep: Sweep) -> Option<f64> {
    use slt_runs::config::OptimizerConfig as O;
    match (&r.planned.config.optimizer, sweep) {
        (O::Ngd(c), Sweep::Alpha) => Some(c.alpha),
        (O::Ngd(c), Sweep::Epsilon) => Some(c.fisher_eps),
        (O::NgdOnline(c), Sweep::Alpha) => Some(c.alpha),
        (O::NgdOnline(c), Sweep::Epsilon) => Some(c.epsilon),
        (O::Kfac(c), Sweep::Alpha) => Some(c.alpha),
        (O::Kfac(c), Sweep::Epsilon) => Some(c.fisher_eps),
        _ => None,
    }
}

/// The runs of one sweep of one arm in suite 2.
pub fn s2_runs<'a>(runs: &[&'a RunRecord], arm: &str, sweep: Sweep) -> Vec<&'a RunRecord> {
    let prefix = format!("{arm} {}=", sweep.name());
    runs.iter().copied().filter(|r| r.planned.label.starts_with(&prefix)).collect()
}

/// Claim 2: per seed, the least-squares slope of q/mean_seed(q) on log₁₀(smoothing).
fn claim2_samples(
    runs: &[&RunRecord],
    profile: &Profile,
    plan: &AnalysisPlan,
    arm: &str,
    sweep: Sweep,
    q: Quantity,
    basis: Basis,
) -> Samples {
    let rs = s2_runs(runs, arm, sweep);
    let mut s = Samples::default();
    diverged_blocker(&mut s, &rs);
    let mut groups: BTreeMap<String, Vec<&RunRecord>> = BTreeMap::new();
    for r in &rs {
        groups.entry(r.planned.label.clone()).or_default().push(r);
    }
    confound_blocker(&mut s, &groups.into_iter().collect::<Vec<_>>(), basis, plan);
    let seeds: BTreeSet<u64> = profile.s2.seeds.iter().copied().collect();
    for seed in &seeds {
        let pts: Vec<(f64, f64)> = rs
            .iter()
            .filter(|r| r.planned.config.seed == *seed)
            .filter_map(|r| Some((smoothing_of(r, sweep)?.log10(), value(r, q, basis, plan)?)))
            .filter(|(x, _)| x.is_finite())
            .collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let Some(m) = stats::mean(&ys).filter(|m| *m != 0.0) else { continue };
        if pts.len() < 3 {
            continue;
        }
        let (x, y): (Vec<f64>, Vec<f64>) = pts.iter().map(|(x, y)| (*x, y / m.abs())).unzip();
        if let Some((_, slope)) = stats::linear_fit(&x, &y) {
            s.values.push(slope);
        }
    }
    missing_blocker(&mut s, seeds.len(), "a seed with fewer than 3 usable points of the sweep", plan);
    s
}

/// Claim 2 under `protocol`.
pub fn claim2(runs: &[&RunRecord], profile: &Profile, plan: &AnalysisPlan, protocol: Protocol) -> ClaimAnalysis {
    let levels = plan.levels();
    let c = &plan.claim2;
    let steps = &profile.measure.sgld_steps;
    let hyp = Hypothesis::Directional(Direction::Less);
    let q0 = Quantity { kind: c.quantity, protocol };
    let declared = format!(
        "`{}`, {} sweep: per seed, the least-squares slope of {} (relative to the seed's mean over the sweep) on log₁₀({}) at the {} point; \
         one-sample t-test of the slopes, one-sided (< 0: less smoothing, higher value), α = {}",
        c.arm,
        c.sweep.name(),
        q0.name(steps),
        c.sweep.name(),
        basis_name(c.basis),
        plan.alpha
    );
    let name = |arm: &str, sweep: Sweep, q: Quantity, basis: Basis| {
        format!("{arm}, {} sweep, {}, {}", sweep.name(), q.name(steps), basis_name(basis))
    };
    let main = TestLine::new(
        name(&c.arm, c.sweep, q0, c.basis),
        hyp,
        claim2_samples(runs, profile, plan, &c.arm, c.sweep, q0, c.basis),
        &levels,
    );
    let primaries = vec![primary("less smoothing ⇒ higher", declared, main, &levels)];
    let mut secondaries = Vec::new();
    for arm in &profile.s2.arms {
        for sweep in [Sweep::Alpha, Sweep::Epsilon] {
            for q in quantities(c.quantity, protocol, steps.len()) {
                for basis in [Basis::Final, Basis::Matched] {
                    if arm == &c.arm && sweep == c.sweep && q == q0 && basis == c.basis {
                        continue;
                    }
                    let s = claim2_samples(runs, profile, plan, arm, sweep, q, basis);
                    secondaries.push(TestLine::new(name(arm, sweep, q, basis), hyp, s, &levels));
                }
            }
        }
    }
    ClaimAnalysis::finish(primaries, secondaries, Vec::new())
}

/// Per-seed relative change of q from the split (the parent's last epoch) to `basis` in each
/// run of `label`.
fn s3_deltas(runs: &[&RunRecord], plan: &AnalysisPlan, label: &str, q: Quantity, basis: Basis) -> BTreeMap<u64, f64> {
    let parents: BTreeMap<u64, f64> = by_label(runs, "pre-split")
        .into_iter()
        .filter_map(|r| Some((r.planned.config.seed, value(r, q, Basis::Final, plan)?)))
        .collect();
    by_label(runs, label)
        .into_iter()
        .filter_map(|r| {
            let seed = r.planned.config.seed;
            let before = *parents.get(&seed)?;
            let after = value(r, q, basis, plan)?;
            (before != 0.0).then(|| (seed, (after - before) / before.abs()))
        })
        .collect()
}

/// Paired per-seed differences of the relative change: `label` minus `reference`.
fn s3_contrast(
    runs: &[&RunRecord],
    profile: &Profile,
    plan: &AnalysisPlan,
    label: &str,
    reference: &str,
    q: Quantity,
    basis: Basis,
) -> Samples {
    let a = s3_deltas(runs, plan, label, q, basis);
    let b = s3_deltas(runs, plan, reference, q, basis);
    let mut s =
        Samples { values: a.iter().filter_map(|(seed, v)| b.get(seed).map(|w| v - w)).collect(), ..Default::default() };
    let involved: Vec<&RunRecord> =
        [by_label(runs, label), by_label(runs, reference), by_label(runs, "pre-split")].concat();
    diverged_blocker(&mut s, &involved);
    confound_blocker(
        &mut s,
        &[(label.to_string(), by_label(runs, label)), (reference.to_string(), by_label(runs, reference))],
        basis,
        plan,
    );
    missing_blocker(&mut s, profile.s3.seeds.len(), "a branch or its parent not measured at this basis", plan);
    s
}

/// Per-seed slope of the relative change on log₁₀(NGD lr).
fn s3_lr_slopes(runs: &[&RunRecord], profile: &Profile, plan: &AnalysisPlan, q: Quantity, basis: Basis) -> Samples {
    let mut s = Samples::default();
    let per_lr: Vec<(f64, BTreeMap<u64, f64>)> =
        profile.s3.ngd_lrs.iter().map(|&lr| (lr.log10(), s3_deltas(runs, plan, &s3_ngd_label(lr), q, basis))).collect();
    for &seed in &profile.s3.seeds {
        let (x, y): (Vec<f64>, Vec<f64>) = per_lr.iter().filter_map(|(x, d)| d.get(&seed).map(|v| (*x, *v))).unzip();
        if x.len() >= 2 {
            if let Some((_, slope)) = stats::linear_fit(&x, &y) {
                s.values.push(slope);
            }
        }
    }
    let involved: Vec<&RunRecord> = runs
        .iter()
        .copied()
        .filter(|r| r.planned.label.starts_with("ngd-lr=") || r.planned.label == "pre-split")
        .collect();
    diverged_blocker(&mut s, &involved);
    missing_blocker(&mut s, profile.s3.seeds.len(), "a seed with fewer than 2 NGD branches measured", plan);
    s
}

/// Claim 3 under `protocol`: the rise, the lr effect and the control.
pub fn claim3(runs: &[&RunRecord], profile: &Profile, plan: &AnalysisPlan, protocol: Protocol) -> ClaimAnalysis {
    let levels = plan.levels();
    let c = &plan.claim3;
    let steps = &profile.measure.sgld_steps;
    let q0 = Quantity { kind: c.quantity, protocol };
    let greater = Hypothesis::Directional(Direction::Greater);
    let control_hyp = Hypothesis::NotAbove { margin: c.control_margin };
    let ngd = s3_ngd_label(c.ngd_lr);
    let control = s3_control_label(profile);
    let qn = q0.name(steps);
    let b = basis_name(c.basis);
    let rise = TestLine::new(
        format!("{ngd} vs sgd-same-lr, {qn}, {b}"),
        greater,
        s3_contrast(runs, profile, plan, &ngd, "sgd-same-lr", q0, c.basis),
        &levels,
    );
    let lr = TestLine::new(
        format!("slope over NGD lrs, {qn}, {b}"),
        greater,
        s3_lr_slopes(runs, profile, plan, q0, c.basis),
        &levels,
    );
    let ctl = TestLine::new(
        format!("{control} vs sgd-same-lr, {qn}, {b}"),
        control_hyp,
        s3_contrast(runs, profile, plan, &control, "sgd-same-lr", q0, c.basis),
        &levels,
    );
    let rel = "relative change of the quantity from the split to the branch's";
    let primaries = vec![
        primary(
            "rise after switching to NGD",
            format!("`{ngd}` vs `sgd-same-lr`: per seed, the difference of the {rel} {b} point ({qn}); one-sample t-test, one-sided (> 0), α = {}", plan.alpha),
            rise,
            &levels,
        ),
        primary(
            "larger NGD lr ⇒ larger rise",
            format!("per seed, the slope of the {rel} {b} point on log₁₀(NGD lr) over {:?}; one-sample t-test, one-sided (> 0), α = {}", profile.s3.ngd_lrs, plan.alpha),
            lr,
            &levels,
        ),
        primary(
            "control: raising SGD's lr does not raise it",
            format!(
                "`{control}` vs `sgd-same-lr`: per seed, the difference of the {rel} {b} point; non-superiority with margin {} (relative), α = {}",
                c.control_margin, plan.alpha
            ),
            ctl,
            &levels,
        ),
    ];
    let mut secondaries = Vec::new();
    let labels: Vec<String> = profile.s3.ngd_lrs.iter().map(|&lr| s3_ngd_label(lr)).chain([control.clone()]).collect();
    for q in quantities(c.quantity, protocol, steps.len()) {
        for basis in [Basis::Final, Basis::Matched] {
            for label in &labels {
                if (label == &ngd || label == &control) && q == q0 && basis == c.basis {
                    continue;
                }
                let hyp = if label == &control { control_hyp } else { greater };
                let s = s3_contrast(runs, profile, plan, label, "sgd-same-lr", q, basis);
                secondaries.push(TestLine::new(
                    format!("{label} vs sgd-same-lr, {}, {}", q.name(steps), basis_name(basis)),
                    hyp,
                    s,
                    &levels,
                ));
            }
            if !(q == q0 && basis == c.basis) {
                let s = s3_lr_slopes(runs, profile, plan, q, basis);
                secondaries.push(TestLine::new(
                    format!("slope over NGD lrs, {}, {}", q.name(steps), basis_name(basis)),
                    greater,
                    s,
                    &levels,
                ));
            }
        }
    }
    let mut notes = Vec::new();
    if let Ok(p) = tost(&primaries[2].test.samples.values, c.control_margin, &levels) {
        notes.push(format!(
            "Control, two one-sided tests of equivalence (|Δ| < {}): p = {}.",
            c.control_margin,
            fmt_p(p)
        ));
    }
    ClaimAnalysis::finish(primaries, secondaries, notes)
}

/// The measured epochs of `r` from its lowest validation loss on (the overfitting phase):
/// (epoch, validation loss, q).
pub fn overfitting_points(r: &RunRecord, q: Quantity) -> Vec<(f64, f64, f64)> {
    let measured: Vec<&EpochMetrics> = r.metrics.iter().filter(|m| m.measurement.is_some()).collect();
    let Some(start) = measured.iter().enumerate().min_by(|a, b| a.1.val_loss.total_cmp(&b.1.val_loss)).map(|(i, _)| i)
    else {
        return Vec::new();
    };
    measured[start..]
        .iter()
        .filter_map(|m| Some((m.epoch as f64, m.val_loss, q.of(m.measurement.as_ref()?)?)))
        .collect()
}

/// What claim 4 computes per seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim4Stat {
    /// ρ(q, validation loss).
    WithValidation,
    /// ρ(q, validation loss | epoch).
    PartialOnEpoch,
    /// ρ(validation loss, epoch): how much the validation loss merely trends with time.
    ValidationWithEpoch,
}

fn claim4_samples(
    runs: &[&RunRecord],
    profile: &Profile,
    plan: &AnalysisPlan,
    q: Quantity,
    stat: Claim4Stat,
) -> Samples {
    let mut s = Samples::default();
    diverged_blocker(&mut s, runs);
    for r in runs.iter().filter(|r| r.diverged.is_none()) {
        let pts = overfitting_points(r, q);
        if pts.len() < 4 {
            continue;
        }
        let e: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let v: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let y: Vec<f64> = pts.iter().map(|p| p.2).collect();
        let rho = match stat {
            Claim4Stat::WithValidation => stats::spearman(&y, &v).ok().map(|c| c.r),
            Claim4Stat::PartialOnEpoch => stats::partial_spearman(&y, &v, &e),
            Claim4Stat::ValidationWithEpoch => stats::spearman(&v, &e).ok().map(|c| c.r),
        };
        if let Some(rho) = rho.filter(|r| r.is_finite()) {
            s.values.push(rho);
        }
    }
    let why = match stat {
        Claim4Stat::PartialOnEpoch => {
            "a seed with fewer than 4 measured overfitting epochs, a constant series, or a validation loss perfectly monotone in the \
             epoch (then nothing is left to separate from the time trend and the partial correlation is undefined)"
        }
        _ => "a seed with fewer than 4 measured overfitting epochs (λ̂ under the validated protocol: that passed its diagnostics), or a constant series",
    };
    missing_blocker(&mut s, profile.a_overfit.seeds.len(), why, plan);
    s
}

/// Claim 4 under `protocol`.
pub fn claim4(runs: &[&RunRecord], profile: &Profile, plan: &AnalysisPlan, protocol: Protocol) -> ClaimAnalysis {
    let levels = plan.levels();
    let steps = &profile.measure.sgld_steps;
    let hyp = Hypothesis::Directional(Direction::Greater);
    let q0 = Quantity { kind: plan.claim4.quantity, protocol };
    let declared = format!(
        "per seed, Spearman's ρ between {} and the validation loss over the measured epochs from the lowest validation loss on \
         (the overfitting phase); one-sample t-test of the per-seed ρ, one-sided (> 0), α = {}",
        q0.name(steps),
        plan.alpha
    );
    let main = TestLine::new(
        format!("ρ({}, val loss)", q0.name(steps)),
        hyp,
        claim4_samples(runs, profile, plan, q0, Claim4Stat::WithValidation),
        &levels,
    );
    let primaries = vec![primary("rises with validation loss", declared, main, &levels)];
    let mut qs = quantities(q0.kind, protocol, steps.len());
    qs.push(Quantity { kind: QuantityKind::NExpectedLoss, protocol });
    qs.dedup();
    let mut secondaries = Vec::new();
    for q in &qs {
        if *q != q0 {
            secondaries.push(TestLine::new(
                format!("ρ({}, val loss)", q.name(steps)),
                hyp,
                claim4_samples(runs, profile, plan, *q, Claim4Stat::WithValidation),
                &levels,
            ));
        }
        secondaries.push(TestLine::new(
            format!("partial ρ({}, val loss | epoch)", q.name(steps)),
            hyp,
            claim4_samples(runs, profile, plan, *q, Claim4Stat::PartialOnEpoch),
            &levels,
        ));
    }
    let trend = claim4_samples(runs, profile, plan, q0, Claim4Stat::ValidationWithEpoch);
    let mut notes = Vec::new();
    if let Some(m) = stats::mean(&trend.values) {
        let plain = if trend.values.iter().all(|r| *r > 0.9) {
            " — the validation loss rises almost monotonically with the epoch, so a correlation with it cannot be told apart from a \
             trend with time: read the partial correlations given the epoch"
        } else {
            ""
        };
        notes.push(format!(
            "Per-seed ρ(validation loss, epoch) over the overfitting phase: mean {m:.3} over {} seeds{plain}.",
            trend.values.len()
        ));
    }
    ClaimAnalysis::finish(primaries, secondaries, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slt_datasets::{DatasetKind, SplitOptions};
    use slt_runs::config::{OptimizerConfig, TrainConfig};
    use slt_runs::measure::{LlcPoint, Measurement};
    use slt_runs::profile::PlannedRun;
    use slt_stats::decision::Outcome;

    // Synthetic run records.

    fn point_with(llc: f64, trace: f64) -> Measurement {
        let p = LlcPoint {
            sgld_step: 1e-4,
            llc_mean: Some(llc),
            llc_std: None,
            n_expected_loss: Some(llc * 10.0),
            is_wbic: false,
            n_beta: 26.0,
            r_hat: Some(1.0),
            mean_final_distance: None,
            localization_scale: None,
            quadratic_prediction: None,
            warnings: Vec::new(),
            localization: 100.0,
        };
        Measurement {
            llc: vec![p.clone()],
            validated: Some(p),
            trace_h: trace,
            trace_h_se: 0.0,
            eval_loss: 0.1,
            grad_norm: 0.1,
            seconds: 0.0,
        }
    }

    fn metrics(epoch: usize, train_loss: f64, val_loss: f64, llc: Option<f64>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss,
            train_acc: None,
            val_loss,
            val_acc: 0.9,
            update_norm_mean: 1.0,
            grad_norm_mean: 1.0,
            kappa_mean: None,
            conditioning: None,
            steps: 1,
            seconds: 0.0,
            measurement: llc.map(|v| point_with(v, 10.0 * v)),
        }
    }

    fn record(
        suite: &'static str,
        label: &str,
        model: &str,
        seed: u64,
        optimizer: OptimizerConfig,
        rows: Vec<EpochMetrics>,
        diverged: bool,
    ) -> RunRecord {
        let config = TrainConfig {
            dataset: DatasetKind::Mnist,
            model: model.parse().unwrap(),
            optimizer,
            epochs: rows.len().max(1),
            batch_size: 8,
            seed,
            split: SplitOptions::default(),
            eval_train: false,
            measure: Some(Profile::load("smoke").unwrap().measure),
            start_from: None,
        };
        RunRecord {
            planned: PlannedRun { suite, label: label.into(), config },
            summary: None,
            metrics: rows,
            reused: false,
            diverged: diverged.then(|| "training diverged".into()),
            spectrum: None,
        }
    }

    fn profile(seeds: usize) -> (Profile, AnalysisPlan) {
        let mut p = Profile::load("smoke").unwrap();
        p.s1.models = vec!["mlp-1x8".parse().unwrap(), "mlp-1x16".parse().unwrap()];
        p.s1.datasets = vec![DatasetKind::Mnist];
        p.s1.arms = vec!["sgd".into(), "ngd-online".into()];
        p.s1.seeds = (0..seeds as u64).collect();
        p.s3.seeds = (0..seeds as u64).collect();
        p.s3.ngd_lrs = vec![1e-3, 1e-2];
        p.a_overfit.seeds = (0..seeds as u64).collect();
        let mut plan = p.analysis.clone();
        plan.claim1 = Claim1Plan { arm: "ngd-online".into(), quantity: QuantityKind::Llc, basis: Basis::Final };
        plan.claim3.ngd_lr = 1e-2;
        plan.claim3.control_margin = 0.1;
        plan.matched_train_loss.insert("mnist".into(), 0.5);
        (p, plan)
    }

    /// Suite-1 records: the NGD arm's λ̂ is the SGD arm's × (1 + effect) + per-seed noise.
    fn s1_records(p: &Profile, effect: f64, ngd_loss: f64, diverge: bool) -> Vec<RunRecord> {
        let mut out = Vec::new();
        for (c, model) in p.s1.models.iter().enumerate() {
            for &seed in &p.s1.seeds {
                let base = 100.0 * (c + 1) as f64 + 3.0 * ((seed * 7 % 5) as f64 - 2.0);
                let noise = 0.02 * (((seed * 3 + c as u64) % 5) as f64 - 2.0);
                let sgd = vec![metrics(1, 0.6, 0.6, Some(base * 0.9)), metrics(2, 0.3, 0.3, Some(base))];
                let ngd_v = base * (1.0 + effect + noise);
                let ngd = vec![metrics(1, 0.4, 0.4, Some(ngd_v * 0.9)), metrics(2, ngd_loss, 0.3, Some(ngd_v))];
                let m = model.to_string();
                out.push(record(
                    "s1-sgd-vs-ngd",
                    "sgd",
                    &m,
                    seed,
                    OptimizerConfig::Sgd(Default::default()),
                    sgd,
                    false,
                ));
                let div = diverge && seed == 0 && c == 0;
                out.push(record(
                    "s1-sgd-vs-ngd",
                    "ngd-online",
                    &m,
                    seed,
                    OptimizerConfig::NgdOnline(Default::default()),
                    ngd,
                    div,
                ));
            }
        }
        out
    }

    fn refs(v: &[RunRecord]) -> Vec<&RunRecord> {
        v.iter().collect()
    }

    #[test]
    fn claim1_outcomes_from_synthetic_records() {
        let (p, plan) = profile(4);
        let prot = Protocol::Paper(0);
        let verdict =
            |recs: &[RunRecord], plan: &AnalysisPlan| claim1(&refs(recs), &p, plan, prot).primaries[0].verdict.clone();
        assert_eq!(verdict(&s1_records(&p, 0.3, 0.3, false), &plan).outcome, Outcome::Holds);
        assert_eq!(verdict(&s1_records(&p, -0.3, 0.3, false), &plan).outcome, Outcome::Contradicted);
        assert_eq!(verdict(&s1_records(&p, 0.0, 0.3, false), &plan).outcome, Outcome::Inconclusive);
        let v = verdict(&s1_records(&p, 0.3, 0.3, true), &plan);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(v.reason.contains("diverged"), "{}", v.reason);
        // NGD ends at 3× SGD's training loss: confounded at the final epoch…
        let v = verdict(&s1_records(&p, 0.3, 0.9, false), &plan);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(v.reason.contains("confounded"), "{}", v.reason);
        // …but decidable at matched convergence (both reach 0.5 training loss at some epoch).
        let matched =
            AnalysisPlan { claim1: Claim1Plan { basis: Basis::Matched, ..plan.claim1.clone() }, ..plan.clone() };
        let recs = s1_records(&p, 0.3, 0.9, false);
        let a = claim1(&refs(&recs), &p, &matched, prot);
        assert_eq!(a.primaries[0].verdict.outcome, Outcome::Holds, "{}", a.primaries[0].verdict.reason);
        // Secondaries carry Holm-adjusted p-values no smaller than their raw ones.
        for s in a.secondaries.iter().filter(|s| s.evidence.is_some()) {
            assert!(s.p_holm.unwrap() >= s.evidence.unwrap().p_claim - 1e-15);
        }
    }

    #[test]
    fn validated_protocol_treats_failed_estimates_as_missing() {
        let (p, plan) = profile(4);
        let mut recs = s1_records(&p, 0.3, 0.3, false);
        for r in recs.iter_mut().take(6) {
            for m in r.metrics.iter_mut().filter_map(|m| m.measurement.as_mut()) {
                m.validated.as_mut().unwrap().warnings.push(slt_estimators::Warning::HighRHat { r_hat: 1.5 });
            }
        }
        let v = claim1(&refs(&recs), &p, &plan, Protocol::Validated).primaries[0].verdict.clone();
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(v.reason.contains("missing"), "{}", v.reason);
        // Cells the profile did not measure under the validated protocol are not missing samples.
        let mut recs = s1_records(&p, 0.3, 0.3, false);
        for r in recs.iter_mut().filter(|r| r.planned.config.model.to_string() == "mlp-1x16") {
            r.planned.config.measure = None;
        }
        let a = claim1(&refs(&recs), &p, &plan, Protocol::Validated);
        assert_eq!(a.primaries[0].verdict.outcome, Outcome::Holds, "{}", a.primaries[0].verdict.reason);
        assert_eq!(a.primaries[0].test.samples.values.len(), 4);
        assert!(
            a.primaries[0].test.samples.notes.iter().any(|n| n.contains("mnist mlp-1x16")),
            "{:?}",
            a.primaries[0].test.samples.notes
        );
        let recs = s1_records(&p, 0.3, 0.3, false);
        // The paper protocol reads the same records regardless of diagnostics.
        assert_eq!(claim1(&refs(&recs), &p, &plan, Protocol::Paper(0)).primaries[0].verdict.outcome, Outcome::Holds);
    }

    /// Suite-3 records: parents at λ̂ = 100; branches' final λ̂ = 100·(1 + rise).
    fn s3_records(
        p: &Profile,
        ngd_rise: &[f64],
        control_rise: impl Fn(u64) -> f64,
        diverge_control: bool,
    ) -> Vec<RunRecord> {
        let mut out = Vec::new();
        let sgd = OptimizerConfig::Sgd(Default::default());
        for &seed in &p.s3.seeds {
            let jitter = 0.01 * ((seed * 7 % 5) as f64 - 2.0);
            let row = |v: f64| vec![metrics(1, 0.2, 0.3, Some(v))];
            out.push(record("s3-split", "pre-split", "mlp-1x8", seed, sgd.clone(), row(100.0), false));
            out.push(record(
                "s3-split",
                "sgd-same-lr",
                "mlp-1x8",
                seed,
                sgd.clone(),
                row(100.0 * (1.0 + jitter)),
                false,
            ));
            let control = s3_control_label(p);
            let jitter2 = 0.01 * ((seed * 3 % 5) as f64 - 2.0);
            out.push(record(
                "s3-split",
                &control,
                "mlp-1x8",
                seed,
                sgd.clone(),
                row(100.0 * (1.0 + jitter2 + control_rise(seed))),
                diverge_control && seed == 1,
            ));
            for (&lr, &rise) in p.s3.ngd_lrs.iter().zip(ngd_rise) {
                let v = 100.0 * (1.0 + rise + 2.0 * jitter);
                out.push(record(
                    "s3-split",
                    &s3_ngd_label(lr),
                    "mlp-1x8",
                    seed,
                    OptimizerConfig::NgdOnline(Default::default()),
                    row(v),
                    false,
                ));
            }
        }
        out
    }

    #[test]
    fn claim3_control_is_inconclusive_when_a_branch_diverged_or_seeds_cannot_resolve_the_margin() {
        let prot = Protocol::Paper(0);
        // Many seeds, no rise: the control holds (equivalence shown), rise and lr effect hold.
        let (p, plan) = profile(12);
        let recs = s3_records(&p, &[0.1, 0.3], |_| 0.0, false);
        let a = claim3(&refs(&recs), &p, &plan, prot);
        assert_eq!(a.primaries[0].verdict.outcome, Outcome::Holds, "{}", a.primaries[0].verdict.reason);
        assert_eq!(a.primaries[1].verdict.outcome, Outcome::Holds, "{}", a.primaries[1].verdict.reason);
        assert_eq!(a.primaries[2].verdict.outcome, Outcome::Holds, "{}", a.primaries[2].verdict.reason);
        // The same with a diverged control branch: inconclusive, and says so.
        let recs = s3_records(&p, &[0.1, 0.3], |_| 0.0, true);
        let v = &claim3(&refs(&recs), &p, &plan, prot).primaries[2].verdict;
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert!(v.reason.contains("diverged"), "{}", v.reason);
        // Three seeds whose spread is as large as the margin: inconclusive, not "holds".
        let (p3, plan3) = profile(3);
        let recs = s3_records(&p3, &[0.1, 0.3], |s| [0.09, -0.08, 0.02][s as usize], false);
        let v = &claim3(&refs(&recs), &p3, &plan3, prot).primaries[2].verdict;
        assert_eq!(v.outcome, Outcome::Inconclusive, "{}", v.reason);
        // A clear rise of the control branch contradicts it.
        let recs = s3_records(&p, &[0.1, 0.3], |s| 0.5 + 0.01 * (s % 3) as f64, false);
        assert_eq!(claim3(&refs(&recs), &p, &plan, prot).primaries[2].verdict.outcome, Outcome::Contradicted);
        // NGD falling below SGD contradicts the rise.
        let recs = s3_records(&p, &[-0.3, -0.3], |_| 0.0, false);
        assert_eq!(claim3(&refs(&recs), &p, &plan, prot).primaries[0].verdict.outcome, Outcome::Contradicted);
    }

    fn s2_records(p: &Profile, slope: f64, seeds: &[u64]) -> Vec<RunRecord> {
        let mut out = Vec::new();
        for &seed in seeds {
            for &alpha in &[1e-3f64, 1e-2, 1e-1, 1.0] {
                let noise = 0.01 * (((seed + alpha.log10().abs() as u64) * 7 % 5) as f64 - 2.0);
                let v = 100.0 * (1.0 + slope * alpha.log10() + noise);
                let c = slt_optimizers::OnlineNgdConfig { alpha, ..Default::default() };
                out.push(record(
                    "s2-smoothing",
                    &s2_label("ngd-online", Sweep::Alpha, alpha),
                    "mlp-1x8",
                    seed,
                    OptimizerConfig::NgdOnline(c),
                    vec![metrics(1, 0.3, 0.3, Some(v))],
                    false,
                ));
            }
        }
        let _ = p;
        out
    }

    #[test]
    fn claim2_slopes_per_seed() {
        let (mut p, mut plan) = profile(5);
        p.s2.seeds = (0..5).collect();
        p.s2.arms = vec!["ngd-online".into()];
        plan.claim2 = Claim2Plan {
            arm: "ngd-online".into(),
            sweep: Sweep::Alpha,
            quantity: QuantityKind::Llc,
            basis: Basis::Final,
        };
        let prot = Protocol::Paper(0);
        let run = |slope: f64| {
            let recs = s2_records(&p, slope, &p.s2.seeds);
            claim2(&refs(&recs), &p, &plan, prot).primaries[0].verdict.outcome
        };
        assert_eq!(run(-0.1), Outcome::Holds);
        assert_eq!(run(0.1), Outcome::Contradicted);
        assert_eq!(run(0.0), Outcome::Inconclusive);
    }

    fn overfit_record(seed: u64, q_slope: f64) -> RunRecord {
        // Validation loss falls to epoch 3, then rises; q follows validation loss with slope q_slope
        // plus a wiggle that breaks the monotone tie with the epoch.
        let rows: Vec<EpochMetrics> = (1..=10)
            .map(|e| {
                let val = if e <= 3 {
                    1.0 - 0.2 * e as f64
                } else {
                    0.4 + 0.1 * (e - 3) as f64 + 0.03 * ((e + seed as usize) % 3) as f64
                };
                let wiggle = (2.0 + seed as f64) * (((e * 5 + seed as usize) % 4) as f64 - 1.5);
                metrics(e, 0.01, val, Some(50.0 + q_slope * 100.0 * val + wiggle))
            })
            .collect();
        record("a-overfit", "sgd", "mlp-1x8", seed, OptimizerConfig::Sgd(Default::default()), rows, false)
    }

    #[test]
    fn claim4_tests_per_seed_correlations_and_notes_time_trends() {
        let (p, plan) = profile(4);
        let prot = Protocol::Paper(0);
        let rising: Vec<RunRecord> = (0..4).map(|s| overfit_record(s, 1.0)).collect();
        let a = claim4(&refs(&rising), &p, &plan, prot);
        assert_eq!(a.primaries[0].verdict.outcome, Outcome::Holds, "{}", a.primaries[0].verdict.reason);
        assert!(a.notes.iter().any(|n| n.contains("ρ(validation loss, epoch)")), "{:?}", a.notes);
        let falling: Vec<RunRecord> = (0..4).map(|s| overfit_record(s, -1.0)).collect();
        assert_eq!(claim4(&refs(&falling), &p, &plan, prot).primaries[0].verdict.outcome, Outcome::Contradicted);
        // Seven measured overfitting epochs per seed are one sample per seed, not seven.
        assert_eq!(a.primaries[0].test.samples.values.len(), 4);
    }

    #[test]
    fn matched_basis_reads_the_first_epoch_at_the_target() {
        let r = record(
            "s1-sgd-vs-ngd",
            "sgd",
            "mlp-1x8",
            0,
            OptimizerConfig::Sgd(Default::default()),
            vec![metrics(1, 0.9, 0.9, Some(1.0)), metrics(2, 0.45, 0.5, Some(2.0)), metrics(3, 0.2, 0.3, Some(3.0))],
            false,
        );
        assert_eq!(point(&r, Basis::Matched, Some(0.5)).unwrap().epoch, 2);
        assert_eq!(point(&r, Basis::Final, None).unwrap().epoch, 3);
        assert!(point(&r, Basis::Matched, Some(0.1)).is_none());
    }
}
