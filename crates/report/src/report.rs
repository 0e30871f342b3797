//! Figures and `report.md`: for each of the paper's four claims (paper §1) the setting, the
//! primary test declared in the profile, its verdict under the paper's λ̂ protocol and under the
//! validated one ([`crate::verdict`] states the rule), the Holm-corrected secondary tests, our
//! numbers (mean ± std over seeds) and the figures, computed from the run folders.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::verdict::{self, ClaimAnalysis, Protocol, TestLine};
use slt_plot::{self as figures, Chart, DensityCurve, Series, SeriesStyle};
use slt_runs::measure::Measurement;
use slt_runs::profile::Profile;
use slt_runs::records::RunRecord;
use slt_stats as stats;
use slt_stats::decision::{one_sample, Direction, Evidence, Hypothesis, Outcome};

/// The final measurement of a run that finished (a diverged run has none).
fn last_measurement(r: &RunRecord) -> Option<&Measurement> {
    if r.diverged.is_some() {
        return None;
    }
    r.metrics.iter().rev().find_map(|m| m.measurement.as_ref())
}

/// `q` at the final measurement of each run of `runs` that finished.
fn final_values(runs: &[&RunRecord], q: verdict::Quantity) -> Vec<f64> {
    runs.iter().filter_map(|r| last_measurement(r).and_then(|m| q.of(m))).collect()
}

/// A table header: `lead` columns, one per quantity, then `tail` columns.
fn header(md: &mut String, lead: &[&str], qs: &[String], tail: &[&str]) {
    let cols: Vec<&str> =
        lead.iter().copied().chain(qs.iter().map(String::as_str)).chain(tail.iter().copied()).collect();
    let _ = writeln!(md, "| {} |\n|{}", cols.join(" | "), "---|".repeat(cols.len()));
}

fn fmt_ms(xs: &[f64]) -> String {
    match stats::summary(xs) {
        Some(s) if s.n > 1 => format!("{:.3} ± {:.3}", s.mean, s.std),
        Some(s) => format!("{:.3}", s.mean),
        None => "–".into(),
    }
}

fn final_train_loss(r: &RunRecord) -> f64 {
    if r.diverged.is_some() {
        return f64::NAN;
    }
    r.metrics.last().map_or(f64::NAN, |m| m.train_loss)
}

/// A line listing the diverged runs among `runs` (excluded from every statistic).
fn diverged_line(md: &mut String, runs: &[&RunRecord]) {
    let diverged: Vec<String> = runs
        .iter()
        .filter(|r| r.diverged.is_some())
        .map(|r| {
            format!(
                "{} {} seed {} (after {} finished epochs)",
                r.planned.config.model,
                r.planned.label,
                r.planned.config.seed,
                r.metrics.len()
            )
        })
        .collect();
    if !diverged.is_empty() {
        let _ = writeln!(
            md,
            "\n**Diverged (training loss non-finite; excluded from the statistics):** {}.\n",
            diverged.join("; ")
        );
    }
}

fn rel_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}

/// The quantities a report shows: λ̂ under each protocol (each SGLD step of the paper's), then
/// Tr(H).
fn shown_quantities(options: &ReportContext) -> Vec<verdict::Quantity> {
    use verdict::{Quantity, QuantityKind};
    let mut qs: Vec<Quantity> = (0..options.profile.measure.sgld_steps.len())
        .map(|k| Quantity { kind: QuantityKind::Llc, protocol: Protocol::Paper(k) })
        .collect();
    if options.profile.measure.validated.is_some() {
        qs.push(Quantity { kind: QuantityKind::Llc, protocol: Protocol::Validated });
    }
    qs.push(Quantity { kind: QuantityKind::Trace, protocol: Protocol::Paper(0) });
    qs
}

/// The protocols every verdict is reported under.
fn protocols(options: &ReportContext) -> Vec<(&'static str, Protocol)> {
    let mut p = vec![("paper", Protocol::Paper(0))];
    if options.profile.measure.validated.is_some() {
        p.push(("validated", Protocol::Validated));
    }
    p
}

/// What a report is written from besides the records: the profile the runs were planned by,
/// the results folder (the report and `figures/` go there) and the backend's name.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    /// The profile the runs were planned by (suites, arms, the analysis plan).
    pub profile: &'a Profile,
    /// The results folder: `report.md` and `figures/` are written there.
    pub results_dir: &'a Path,
    /// Name of the backend the runs used, printed in the report.
    pub backend: &'a str,
}

/// One claim: its analyses under each protocol.
struct ClaimResult {
    claim: &'static str,
    analyses: Vec<(&'static str, ClaimAnalysis)>,
}

/// Writes the figures and `report.md` into `options.results_dir`; returns the report's path.
pub fn write(
    options: &ReportContext,
    all: &[RunRecord],
    this_call: &[RunRecord],
    seconds: f64,
) -> anyhow::Result<PathBuf> {
    let results = options.results_dir;
    let fig_dir = results.join("figures");
    std::fs::create_dir_all(&fig_dir).with_context(|| format!("creating {}", fig_dir.display()))?;
    let profile = options.profile;
    let plan = &profile.analysis;
    let by_suite = |s: &str| all.iter().filter(|r| r.planned.suite == s).collect::<Vec<_>>();
    let (s1, s2, s3, overfit) =
        (by_suite("s1-sgd-vs-ngd"), by_suite("s2-smoothing"), by_suite("s3-split"), by_suite("a-overfit"));
    let run_all = |f: &dyn Fn(Protocol) -> ClaimAnalysis| {
        protocols(options).into_iter().map(|(n, p)| (n, f(p))).collect::<Vec<_>>()
    };
    let claims = [
        ClaimResult {
            claim: "NGD solutions have higher λ̂ (and Tr(H)) than SGD's",
            analyses: run_all(&|p| verdict::claim1(&s1, profile, plan, p)),
        },
        ClaimResult {
            claim: "less Fisher smoothing ⇒ higher λ̂_NGD",
            analyses: run_all(&|p| verdict::claim2(&s2, profile, plan, p)),
        },
        ClaimResult {
            claim: "after a split λ̂ rises under NGD, more with a larger lr, not with a larger SGD lr",
            analyses: run_all(&|p| verdict::claim3(&s3, profile, plan, p)),
        },
        ClaimResult {
            claim: "while overfitting λ̂ (and WBIC, Tr(H)) rise with validation loss",
            analyses: run_all(&|p| verdict::claim4(&overfit, profile, plan, p)),
        },
    ];

    let mut md = String::new();
    let _ = writeln!(md, "# Reproduction report: NGD vs SGD degeneracy (arXiv 2409.04913)\n");
    let _ = writeln!(
        md,
        "Profile `{}` ({}), backend `{}`. This invocation: {} runs trained, {} reused, {:.0} s wall clock.\n",
        profile.name,
        profile.description,
        options.backend,
        this_call.iter().filter(|r| !r.reused).count(),
        this_call.iter().filter(|r| r.reused).count(),
        seconds
    );
    glance(&mut md, &claims);
    diagnostics(&mut md, all);
    design(&mut md, options);

    type WriteSection<'a> = &'a dyn Fn(&mut String) -> anyhow::Result<()>;
    let sections: [(&str, WriteSection); 4] = [
        ("Claim 1: NGD solutions have higher λ̂ and Tr(H) than SGD solutions, across model sizes", &|md| claim1_details(md, &s1, options, &fig_dir)),
        ("Claim 2: less Fisher smoothing (smaller α, smaller ε) gives NGD a higher λ̂", &|md| claim2_details(md, &s2, &s1, options, &fig_dir)),
        ("Claim 3: after a split, λ̂ rises under NGD but not under SGD; a larger NGD lr rises more; raising SGD's lr does not", &|md| {
            claim3_details(md, &s3, options, &fig_dir)
        }),
        ("Claim 4 (appendix): while a model overfits, λ̂, WBIC and Tr(H) rise with the validation loss", &|md| claim4_details(md, &overfit, options, &fig_dir)),
    ];
    for ((title, details), claim) in sections.iter().zip(&claims) {
        let _ = writeln!(md, "\n## {title}\n");
        details(&mut md)?;
        for (name, a) in &claim.analyses {
            render_analysis(&mut md, name, a, plan);
        }
    }
    spectra(&mut md, &s1, options, &fig_dir)?;
    timings(&mut md, all);
    let md = md.replace(&format!("{}/", fig_dir.display()), "figures/");
    let path = results.join("report.md");
    slt_runs::store::write_atomic(&path, md.as_bytes())?;
    Ok(path)
}

/// The claim table, with the protocols side by side and their disagreements called out.
fn glance(md: &mut String, claims: &[ClaimResult]) {
    let names: Vec<&str> = claims.first().map(|c| c.analyses.iter().map(|a| a.0).collect()).unwrap_or_default();
    let _ = writeln!(md, "## Claims at a glance\n");
    let _ = writeln!(
        md,
        "Each verdict comes from the claim's one primary test, declared in the profile before the runs (see *Statistical design*): \
         **holds** / **contradicted** when the one-sided test in the claimed / the opposite direction is significant at α, \
         **inconclusive** otherwise or when the test cannot be trusted (the reason is given).\n"
    );
    let _ = writeln!(
        md,
        "| # | claim | part | {} |\n|---|---|---|{}",
        names.iter().map(|n| format!("verdict ({n} protocol)")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(names.len())
    );
    let mut disagreements = Vec::new();
    for (i, c) in claims.iter().enumerate() {
        let parts = c.analyses.first().map_or(0, |a| a.1.primaries.len());
        for k in 0..parts {
            let cells: Vec<String> = c
                .analyses
                .iter()
                .map(|(_, a)| {
                    let p = &a.primaries[k];
                    let effect = p
                        .verdict
                        .evidence
                        .map(|e| format!(" (effect {:+.3}, p = {})", e.effect, stats::format_p(e.p_claim)))
                        .unwrap_or_default();
                    format!("**{}**{effect}", p.verdict.outcome)
                })
                .collect();
            let outcomes: Vec<Outcome> = c.analyses.iter().map(|(_, a)| a.primaries[k].verdict.outcome).collect();
            let part = &c.analyses[0].1.primaries[k].part;
            if outcomes.windows(2).any(|w| w[0] != w[1]) {
                disagreements.push(format!(
                    "claim {} ({part}): {}",
                    i + 1,
                    names
                        .iter()
                        .zip(&outcomes)
                        .map(|(n, o)| format!("{o} under the {n} protocol"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let claim = if k == 0 { c.claim } else { "" };
            let _ = writeln!(
                md,
                "| {} | {claim} | {part} | {} |",
                if k == 0 { (i + 1).to_string() } else { String::new() },
                cells.join(" | ")
            );
        }
    }
    if disagreements.is_empty() {
        if names.len() > 1 {
            let _ = writeln!(md, "\nThe two λ̂ protocols agree on every verdict.");
        }
    } else {
        let _ = writeln!(md, "\n**⚠ The protocols disagree** — {}. A verdict that depends on the SGLD protocol is not a finding about the optimisers.", disagreements.join("; "));
    }
}

/// The declared design and the two protocols.
fn design(md: &mut String, options: &ReportContext) {
    let profile = options.profile;
    let a = &profile.analysis;
    let m = &profile.measure;
    let nb = |t: slt_estimators::Temperature| match t {
        slt_estimators::Temperature::BatchDefault => "m/ln m".to_string(),
        slt_estimators::Temperature::Watanabe => "n/ln n".to_string(),
        slt_estimators::Temperature::Fixed(v) => format!("{v}"),
    };
    let _ = writeln!(md, "\n## Statistical design (declared in the profile's `analysis` block)\n");
    let _ = writeln!(
        md,
        "* Level α = {}, one-sided tests in the claimed direction; the same bar in the opposite direction gives *contradicted*. \
         Effects come with two-sided {:.0} % confidence intervals (the interval that matches two one-sided tests at α) and the smallest \
         effect each test could detect at {:.0} % power given the observed spread, (t₁₋α + t_power)·SE. The design's effect of \
         interest is a relative difference of {:.0} %.",
        a.alpha,
        100.0 * (1.0 - 2.0 * a.alpha),
        100.0 * a.power,
        100.0 * a.effect_of_interest
    );
    let _ = writeln!(
        md,
        "* Every primary test is a one-sample t-test on statistics independent across seeds (paired-by-seed relative differences, \
         per-seed slopes, per-seed rank correlations over a run's own epochs): repeated measurements of one run never count as \
         independent samples. Secondary tests (other quantities, arms, bases, cells) carry Holm-corrected p-values and never \
         decide a verdict."
    );
    let _ = writeln!(
        md,
        "* A test cannot decide (*inconclusive*, reason given) when a run in its contrast diverged, when fewer than 3 independent \
         samples remain, when more than {:.0} % of its planned samples are missing, or — at the final epoch — when the compared \
         runs' mean final training losses differ by more than ×{} (confounded by convergence). *Matched convergence* reads each \
         run at the first measured epoch at which its training loss is ≤ {:?} (per dataset).",
        100.0 * a.max_missing_share,
        a.confound_ratio,
        a.matched_train_loss
    );
    let _ = writeln!(
        md,
        "* Claim 3's control (\"raising SGD's lr does not raise λ̂\") is a non-superiority claim with margin {} (relative): it holds \
         only when the upper confidence bound of the rise is below the margin; the two one-sided tests of equivalence are shown too.",
        a.claim3.control_margin
    );
    let _ = writeln!(
        md,
        "\n**λ̂ protocols.** *Paper*: SGLD {} chains × {} draws (burn-in {}), γ = {}, nβ = {}, batch {}, at SGLD steps {:?} (the first is the \
         paper's and decides; the others are secondaries).",
        m.sgld.num_chains, m.sgld.num_draws, m.sgld.num_burnin, m.sgld.localization, nb(m.sgld.temperature), m.sgld.batch_size, m.sgld_steps
    );
    match &m.validated {
        Some(v) => {
            let _ = writeln!(
                md,
                "*Validated*: {} chains × {} draws after {} burn-in steps, nβ = {}, batch {}, {}. An estimate counts only if it passes \
                 every diagnostic of the estimator (chains not at the localisation scale, λ̂ no longer rising, R-hat ≤ 1.1, no \
                 divergence, λ̂ ≥ 0, draws not mostly below L(w*), and the MALA acceptance when on); one that fails is a missing sample.",
                v.sgld.num_chains,
                v.sgld.num_draws,
                v.sgld.num_burnin,
                nb(v.sgld.temperature),
                v.sgld.batch_size,
                match &v.calibration {
                    Some(g) => format!(
                        "ε and γ chosen per run at its first measurement by calibration over ε ∈ {:?} × γ ∈ {:?} ({} draws per grid point)",
                        g.step_sizes, g.localizations, g.draws
                    ),
                    None => format!("ε = {:e}, γ = {}", v.sgld.step_size, v.sgld.localization),
                }
            );
        }
        None => {
            let _ = writeln!(md, "*Validated*: not configured in this profile.");
        }
    }
    if let (Some(_), Some(models)) = (&m.validated, &profile.s1.validated_models) {
        let _ = writeln!(
            md,
            "In suite 1 the validated protocol is measured only on {} (it costs about ten times the paper's); its claim-1 verdict rests on those cells.",
            models.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\nTr(H) by Hutchinson ({} Rademacher probes, {} × {} training examples) with its standard error; n·E_β[L] is the WBIC only when nβ = n/ln n.",
        m.hessian_probes, m.hessian_batches, m.hessian_batch_size
    );
    for note in &profile.notes {
        let _ = writeln!(md, "\n**Note.** {note}");
    }
    let _ = writeln!(md, "\n**Learning rates.** {}\n", profile.lr_rule);
}

fn fmt_evidence(e: &Evidence) -> String {
    format!("{:+.3} [{:+.3}, {:+.3}]", e.effect, e.ci.0, e.ci.1)
}

/// A claim's primary verdicts and secondary tests under one protocol.
fn render_analysis(md: &mut String, protocol: &str, a: &ClaimAnalysis, plan: &verdict::AnalysisPlan) {
    let _ = writeln!(md, "\n### Verdicts under the {protocol} protocol\n");
    for p in &a.primaries {
        let _ = writeln!(md, "* **{}: {}** — {}.", p.part, p.verdict.outcome, p.verdict.reason);
        let _ = writeln!(md, "  Primary test: {}.", p.declared);
        match &p.verdict.evidence {
            Some(e) => {
                let _ = writeln!(
                    md,
                    "  Effect (mean, {:.0} % CI) {}, n = {}, one-sided p = {} (opposite direction {}); detectable at {:.0} % power: {:.3} \
                     (effect of interest {:.2}).",
                    100.0 * (1.0 - 2.0 * plan.alpha),
                    fmt_evidence(e),
                    e.n,
                    stats::format_p(e.p_claim),
                    stats::format_p(e.p_against),
                    100.0 * plan.power,
                    e.detectable,
                    plan.effect_of_interest
                );
            }
            None => {
                let _ = writeln!(md, "  No test statistic ({} samples).", p.test.samples.values.len());
            }
        }
        for n in &p.test.samples.notes {
            let _ = writeln!(md, "  Note: {n}.");
        }
    }
    for n in &a.notes {
        let _ = writeln!(md, "\n{n}");
    }
    if a.secondaries.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n<details><summary>{} secondary tests (Holm-corrected; never decisive)</summary>\n\n| test | n | effect [CI] | p (one-sided) | p (Holm) | caveat |\n|---|---|---|---|---|---|",
        a.secondaries.len()
    );
    for t in &a.secondaries {
        secondary_row(md, t);
    }
    let _ = writeln!(md, "\n</details>\n");
}

fn secondary_row(md: &mut String, t: &TestLine) {
    let caveat = t.samples.blockers.iter().chain(&t.samples.notes).cloned().collect::<Vec<_>>().join("; ");
    match (&t.evidence, &t.error) {
        (Some(e), _) => {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {caveat} |",
                t.name,
                e.n,
                fmt_evidence(e),
                stats::format_p(e.p_claim),
                t.p_holm.map_or("–".into(), stats::format_p)
            );
        }
        (None, err) => {
            let _ = writeln!(
                md,
                "| {} | {} | – | no test: {} | – | {caveat} |",
                t.name,
                t.samples.values.len(),
                err.clone().unwrap_or_default()
            );
        }
    }
}

fn figure_link(md: &mut String, files: &figures::FigureFiles, caption: &str, base: &Path) {
    let _ = writeln!(md, "\n![{caption}]({}) ([SVG]({}))\n", rel_path(&files.png, base), rel_path(&files.svg, base));
}

fn quantity_fn(q: verdict::Quantity) -> impl Fn(&Measurement) -> Option<f64> {
    move |m: &Measurement| q.of(m)
}

fn claim1_details(md: &mut String, runs: &[&RunRecord], options: &ReportContext, fig_dir: &Path) -> anyhow::Result<()> {
    let s1 = &options.profile.s1;
    let _ = writeln!(
        md,
        "Suite `s1-sgd-vs-ngd`: {:?} × {:?}, seeds {:?}, {} epochs, arms {:?} (reference `{}`). Final-epoch values, mean ± std over seeds.\n",
        s1.datasets.iter().map(|d| d.name()).collect::<Vec<_>>(),
        s1.models.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        s1.seeds,
        s1.epochs,
        s1.arms,
        s1.arms[0]
    );
    diverged_line(md, runs);
    claim1_table(md, runs, options);
    figure1_llc_vs_width(md, runs, options, fig_dir)?;
    figure2_over_epochs(md, runs, options, fig_dir)?;
    precision_side(md, runs, options);
    Ok(())
}

/// The runs of suite 1's cell (dataset, model, arm).
fn s1_cell<'a>(
    runs: &[&'a RunRecord],
    dataset: slt_datasets::DatasetKind,
    model: slt_models::ModelSpec,
    arm: &str,
) -> Vec<&'a RunRecord> {
    runs.iter()
        .copied()
        .filter(|r| r.planned.config.dataset == dataset && r.planned.config.model == model && r.planned.label == arm)
        .collect()
}

/// Suite 1's table: final-epoch quantities, training loss and accuracy per cell and arm.
fn claim1_table(md: &mut String, runs: &[&RunRecord], options: &ReportContext) {
    let s1 = &options.profile.s1;
    let steps = &options.profile.measure.sgld_steps;
    let qs = shown_quantities(options);
    header(
        md,
        &["dataset", "model", "arm"],
        &qs.iter().map(|q| q.name(steps)).collect::<Vec<_>>(),
        &["final train loss", "val acc"],
    );
    for &dataset in &s1.datasets {
        for &model in &s1.models {
            for arm in &s1.arms {
                let rs = s1_cell(runs, dataset, model, arm);
                let values: Vec<String> = qs.iter().map(|q| fmt_ms(&final_values(&rs, *q))).collect();
                let losses: Vec<f64> = rs.iter().map(|r| final_train_loss(r)).filter(|v| v.is_finite()).collect();
                let acc: Vec<f64> = rs
                    .iter()
                    .filter(|r| r.diverged.is_none())
                    .filter_map(|r| r.metrics.last().map(|m| m.val_acc))
                    .collect();
                let _ = writeln!(
                    md,
                    "| {dataset} | {model} | {arm} | {} | {} | {} |",
                    values.join(" | "),
                    fmt_ms(&losses),
                    fmt_ms(&acc)
                );
            }
        }
    }
}

/// Figure 1: λ̂ vs width, panels per dataset × depth, one figure per λ̂ quantity.
fn figure1_llc_vs_width(
    md: &mut String,
    runs: &[&RunRecord],
    options: &ReportContext,
    fig_dir: &Path,
) -> anyhow::Result<()> {
    let s1 = &options.profile.s1;
    let steps = &options.profile.measure.sgld_steps;
    let qs = shown_quantities(options);
    let depths: Vec<usize> = {
        let mut d: Vec<usize> = s1
            .models
            .iter()
            .filter_map(|m| match m {
                slt_models::ModelSpec::Mlp { depth, .. } => Some(*depth),
                _ => None,
            })
            .collect();
        d.sort();
        d.dedup();
        d
    };
    for (k, q) in qs.iter().enumerate().filter(|(_, q)| q.kind == verdict::QuantityKind::Llc) {
        let mut charts = Vec::new();
        for &dataset in &s1.datasets {
            for &depth in &depths {
                let mut chart = Chart::new(format!("{dataset}, {depth} hidden layer(s)"), "width", "λ̂").log_x();
                let widths: Vec<usize> = s1
                    .models
                    .iter()
                    .filter_map(|m| match m {
                        slt_models::ModelSpec::Mlp { depth: d, width } if *d == depth => Some(*width),
                        _ => None,
                    })
                    .collect();
                chart = chart.x_ticks(widths.iter().map(|w| *w as f64).collect());
                for (a, arm) in s1.arms.iter().enumerate() {
                    let pts: Vec<(f64, f64, Option<f64>)> = widths
                        .iter()
                        .filter_map(|&w| {
                            let model = slt_models::ModelSpec::Mlp { depth, width: w };
                            stats::summary(&final_values(&s1_cell(runs, dataset, model, arm), *q))
                                .map(|s| (w as f64, s.mean, Some(s.std)))
                        })
                        .collect();
                    chart = chart.series(Series::line_points(arm.clone(), pts).with_color(a));
                }
                charts.push(chart);
            }
        }
        if !charts.is_empty() {
            let files = figures::panel_grid(
                &fig_dir.join(format!("fig1-llc-vs-width-{k}")),
                &format!("Final {} vs width (mean ± std)", q.name(steps)),
                s1.datasets.len(),
                depths.len().max(1),
                &charts,
            )?;
            figure_link(md, &files, &format!("Figure 1 ({})", q.name(steps)), options.results_dir);
        }
    }
    Ok(())
}

/// Figure 2: the quantities over epochs for the largest model on the first dataset.
fn figure2_over_epochs(
    md: &mut String,
    runs: &[&RunRecord],
    options: &ReportContext,
    fig_dir: &Path,
) -> anyhow::Result<()> {
    let s1 = &options.profile.s1;
    let steps = &options.profile.measure.sgld_steps;
    let qs = shown_quantities(options);
    if let (Some(&dataset), Some(&model)) = (s1.datasets.first(), s1.models.last()) {
        let mut charts = Vec::new();
        for q in &qs {
            let name = q.name(steps);
            let mut chart = Chart::new(format!("{name}, {model} on {dataset}"), "epoch", name.clone());
            for (a, arm) in s1.arms.iter().enumerate() {
                chart = chart.series(
                    Series::line_points(
                        arm.clone(),
                        over_epochs(&s1_cell(runs, dataset, model, arm), &quantity_fn(*q), 0),
                    )
                    .with_color(a),
                );
            }
            charts.push(chart);
        }
        let cols = charts.len().min(3);
        let files = figures::panel_grid(
            &fig_dir.join("fig2-over-epochs"),
            "λ̂ and Tr(H) over training (mean ± std over seeds)",
            charts.len().div_ceil(cols),
            cols,
            &charts,
        )?;
        figure_link(md, &files, "Figure 2", options.results_dir);
    }
    Ok(())
}

/// Suite 1's precision side arm: the online NGD with other arithmetic next to its f64 form and
/// SGD, and what of claim 1's contrast survives each.
fn precision_side(md: &mut String, runs: &[&RunRecord], options: &ReportContext) {
    let Some(p) = &options.profile.s1.precision else { return };
    let steps = &options.profile.measure.sgld_steps;
    let plan = &options.profile.analysis;
    let levels = plan.levels();
    let reference = &options.profile.s1.arms[0];
    let cell = |arm: &str| -> Vec<&RunRecord> {
        runs.iter()
            .copied()
            .filter(|r| {
                r.planned.config.dataset == p.dataset && r.planned.config.model == p.model && r.planned.label == arm
            })
            .collect()
    };
    let _ = writeln!(
        md,
        "\n### Sensitivity to the online NGD's own arithmetic ({} on {})\n\nThe paper's code runs its online NGD in f32, eigendecomposition \
         included; ours runs in f64 (the equations). The variants below differ from `{}` only in that arithmetic. Conditioning: the largest \
         |RRᵀ − I| of an updated estimate over the run, and the share of Z_t eigenvalues below the working precision's epsilon × the largest \
         (rounding noise). The contrast columns are claim 1's paired-by-seed relative difference against `{reference}` at the final epoch \
         (effect [90 % CI], one-sided p for > 0).\n",
        p.model, p.dataset, p.reference
    );
    let qs = shown_quantities(options);
    let names: Vec<String> = qs
        .iter()
        .map(|q| q.name(steps))
        .chain(["final train loss", "val acc", "max \\|RRᵀ − I\\|", "unresolved Z_t eigenvalues"].map(String::from))
        .collect();
    let contrasts: Vec<String> = qs.iter().map(|q| format!("vs {reference}: {}", q.name(steps))).collect();
    header(md, &["arm"], &names, &contrasts.iter().map(String::as_str).collect::<Vec<_>>());
    let refs = cell(reference);
    for arm in std::iter::once(reference).chain(std::iter::once(&p.reference)).chain(&p.arms) {
        let rs = cell(arm);
        let values: Vec<String> = qs.iter().map(|q| fmt_ms(&final_values(&rs, *q))).collect();
        let losses: Vec<f64> = rs.iter().map(|r| final_train_loss(r)).filter(|v| v.is_finite()).collect();
        let acc: Vec<f64> =
            rs.iter().filter(|r| r.diverged.is_none()).filter_map(|r| r.metrics.last().map(|m| m.val_acc)).collect();
        let mut total = slt_optimizers::Conditioning::default();
        for c in rs.iter().flat_map(|r| r.metrics.iter().filter_map(|m| m.conditioning.as_ref())) {
            total.merge(c);
        }
        let (orth, share) = if total.updates > 0 {
            (format!("{:.2e}", total.max_orthonormality_error), format!("{:.1} %", 100.0 * total.unresolved_share()))
        } else {
            ("–".into(), "–".into())
        };
        let contrasts: Vec<String> = qs
            .iter()
            .map(|q| {
                if arm == reference {
                    return "(reference)".into();
                }
                let d = verdict::paired_relative(&rs, &refs, *q, verdict::Basis::Final, plan);
                match one_sample(&d, Hypothesis::Directional(Direction::Greater), &levels) {
                    Ok(e) => format!("{}, p = {}", fmt_evidence(&e), stats::format_p(e.p_claim)),
                    Err(e) => format!("no test ({e})"),
                }
            })
            .collect();
        let _ = writeln!(
            md,
            "| {arm} | {} | {} | {} | {orth} | {share} | {} |",
            values.join(" | "),
            fmt_ms(&losses),
            fmt_ms(&acc),
            contrasts.join(" | ")
        );
    }
    diverged_line(md, &p.arms.iter().flat_map(|a| cell(a)).collect::<Vec<_>>());
}

/// Mean ± std over runs of quantity `q` at each measured epoch (shifted by `offset`).
fn over_epochs(
    runs: &[&RunRecord],
    q: &dyn Fn(&Measurement) -> Option<f64>,
    offset: usize,
) -> Vec<(f64, f64, Option<f64>)> {
    let mut by_epoch: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.diverged.is_none()) {
        for m in &r.metrics {
            if let Some(v) = m.measurement.as_ref().and_then(q) {
                by_epoch.entry(m.epoch + offset).or_default().push(v);
            }
        }
    }
    by_epoch
        .into_iter()
        .filter_map(|(e, v)| stats::summary(&v).map(|s| (e as f64, s.mean, if s.n > 1 { Some(s.std) } else { None })))
        .collect()
}

/// η·‖d‖ of a run: its lr times the mean update-direction norm over its epochs.
fn step_length(r: &RunRecord) -> Option<f64> {
    let norms: Vec<f64> = r.metrics.iter().map(|m| m.update_norm_mean).collect();
    stats::mean(&norms).map(|n| n * r.planned.config.optimizer.lr())
}

fn claim2_details(
    md: &mut String,
    runs: &[&RunRecord],
    s1: &[&RunRecord],
    options: &ReportContext,
    fig_dir: &Path,
) -> anyhow::Result<()> {
    use verdict::Sweep;
    let s2 = &options.profile.s2;
    let steps = &options.profile.measure.sgld_steps;
    let _ = writeln!(
        md,
        "Suite `s2-smoothing`: {} on {}, arms {:?}; α ∈ {:?} (ε at the arm's value) and ε ∈ {:?} (α at the arm's value); seeds {:?}, {} epochs. \
         η·‖d‖ is the lr times the mean norm of the preconditioned direction over the run's steps: the step length, which must not \
         move with the smoothing if the sweep is to measure the smoothing and not the learning rate.\n",
        s2.model, s2.dataset, s2.arms, s2.alphas, s2.fisher_epsilons, s2.seeds, s2.epochs
    );
    diverged_line(md, runs);
    let qs = shown_quantities(options);
    header(
        md,
        &["arm", "sweep", "value"],
        &qs.iter().map(|q| q.name(steps)).collect::<Vec<_>>(),
        &["final train loss", "η·‖d‖", "‖d‖ / ‖g‖"],
    );
    let mut spread_lines = Vec::new();
    let mut charts: Vec<Chart> = Vec::new();
    for sweep in [Sweep::Alpha, Sweep::Epsilon] {
        let symbol = match sweep {
            Sweep::Alpha => "α",
            Sweep::Epsilon => "ε",
        };
        let values = match sweep {
            Sweep::Alpha => &s2.alphas,
            Sweep::Epsilon => &s2.fisher_epsilons,
        };
        let mut llc_chart = Chart::new(format!("final λ̂ vs {symbol}"), symbol, "λ̂").log_x();
        let mut step_chart = Chart::new(format!("η·‖d‖ vs {symbol}"), symbol, "η·‖d‖").log_x();
        for (a, arm) in s2.arms.iter().enumerate() {
            let rs = verdict::s2_runs(runs, arm, sweep);
            let mut llc_pts = Vec::new();
            let mut step_pts = Vec::new();
            for &v in values {
                let cell: Vec<&RunRecord> =
                    rs.iter().copied().filter(|r| verdict::smoothing_of(r, sweep) == Some(v)).collect();
                let vals: Vec<String> = qs.iter().map(|q| fmt_ms(&final_values(&cell, *q))).collect();
                let losses: Vec<f64> = cell.iter().map(|r| final_train_loss(r)).filter(|l| l.is_finite()).collect();
                let lens: Vec<f64> =
                    cell.iter().filter(|r| r.diverged.is_none()).filter_map(|r| step_length(r)).collect();
                let ratios: Vec<f64> = cell
                    .iter()
                    .filter(|r| r.diverged.is_none())
                    .flat_map(|r| {
                        r.metrics
                            .iter()
                            .filter(|m| m.grad_norm_mean > 0.0)
                            .map(|m| m.update_norm_mean / m.grad_norm_mean)
                    })
                    .collect();
                let _ = writeln!(
                    md,
                    "| {arm} | {symbol} | {v:e} | {} | {} | {} | {} |",
                    vals.join(" | "),
                    fmt_ms(&losses),
                    fmt_ms(&lens),
                    fmt_ms(&ratios)
                );
                if let Some(s) = stats::summary(&final_values(&cell, qs[0])) {
                    llc_pts.push((v, s.mean, Some(s.std)));
                }
                if let Some(s) = stats::summary(&lens) {
                    step_pts.push((v, s.mean, Some(s.std)));
                }
            }
            let means: Vec<f64> = step_pts.iter().map(|p| p.1).collect();
            if let (Some(lo), Some(hi)) =
                (means.iter().copied().reduce(f64::min), means.iter().copied().reduce(f64::max))
            {
                if lo > 0.0 {
                    spread_lines.push(format!(
                        "`{arm}`, {symbol} sweep: η·‖d‖ varies by {:.1} % across the sweep (max/min − 1 of the cell means, \
                         target ≤ 10 %); the ratio ‖d‖/‖g‖ (epoch means) is in the table: where it is 1 the step is η·‖g‖ \
                         at every step and η·‖d‖ moves only with the gradient norms along the path; a fixed-step arm \
                         (‖d‖ = 1) steps η whatever the path",
                        100.0 * (hi / lo - 1.0)
                    ));
                }
            }
            llc_chart = llc_chart.series(Series::line_points(arm.clone(), llc_pts).with_color(a + 1));
            step_chart = step_chart.series(Series::line_points(arm.clone(), step_pts).with_color(a + 1));
        }
        let sgd_level: Vec<f64> = s1
            .iter()
            .filter(|r| {
                r.planned.config.dataset == s2.dataset
                    && r.planned.config.model == s2.model
                    && r.planned.label == options.profile.s1.arms[0]
            })
            .filter_map(|r| last_measurement(r).and_then(|m| qs[0].of(m)))
            .collect();
        if let Some(level) = stats::mean(&sgd_level) {
            llc_chart = llc_chart.hline("SGD (suite 1)", level);
        }
        charts.push(llc_chart);
        charts.push(step_chart);
    }
    for l in &spread_lines {
        let _ = writeln!(md, "\n* {l}.");
    }
    let files = figures::panel_grid(
        &fig_dir.join("fig3-smoothing"),
        &format!("Final {} and step length η·‖d‖ vs Fisher smoothing (mean ± std)", qs[0].name(steps)),
        2,
        2,
        &charts,
    )?;
    figure_link(md, &files, "Figure 3", options.results_dir);
    Ok(())
}

fn claim3_details(md: &mut String, runs: &[&RunRecord], options: &ReportContext, fig_dir: &Path) -> anyhow::Result<()> {
    let s3 = &options.profile.s3;
    let steps = &options.profile.measure.sgld_steps;
    let _ = writeln!(
        md,
        "Suite `s3-split`: {} on {}, SGD (`{}`) for {} epochs, then {} epochs of: SGD at the same lr, SGD at lr {} (control), `{}` at lr {:?}; \
         seeds {:?}. Δ = relative change from the split (the parent's last epoch) to the branch's last epoch, mean ± std over seeds.\n",
        s3.model, s3.dataset, s3.sgd_arm, s3.pre_epochs, s3.post_epochs, s3.sgd_lr_control, s3.ngd_arm, s3.ngd_lrs, s3.seeds
    );
    diverged_line(md, runs);
    let parents: BTreeMap<u64, &RunRecord> =
        runs.iter().filter(|r| r.planned.label == "pre-split").map(|r| (r.planned.config.seed, *r)).collect();
    let labels: Vec<String> = {
        let mut l: Vec<String> =
            runs.iter().filter(|r| r.planned.label != "pre-split").map(|r| r.planned.label.clone()).collect();
        l.sort();
        l.dedup();
        l
    };
    let qs = shown_quantities(options);
    header(
        md,
        &["branch"],
        &qs.iter().map(|q| format!("Δ {}", q.name(steps))).collect::<Vec<_>>(),
        &["final train loss"],
    );
    for label in &labels {
        let rs: Vec<&RunRecord> = runs.iter().copied().filter(|r| &r.planned.label == label).collect();
        let cells: Vec<String> = qs
            .iter()
            .map(|q| {
                let d: Vec<f64> = rs
                    .iter()
                    .filter_map(|r| {
                        let before = parents
                            .get(&r.planned.config.seed)
                            .and_then(|p| last_measurement(p))
                            .and_then(|m| q.of(m))?;
                        let after = last_measurement(r).and_then(|m| q.of(m))?;
                        (before != 0.0).then(|| (after - before) / before.abs())
                    })
                    .collect();
                fmt_ms(&d)
            })
            .collect();
        let losses: Vec<f64> = rs.iter().map(|r| final_train_loss(r)).filter(|l| l.is_finite()).collect();
        let _ = writeln!(md, "| {label} | {} | {} |", cells.join(" | "), fmt_ms(&losses));
    }
    // Figures 4-6: the quantities and the evaluation loss over all epochs, split marked.
    let mut charts = Vec::new();
    type Pick = Box<dyn Fn(&Measurement) -> Option<f64>>;
    let mut named: Vec<(String, Pick)> =
        qs.iter().map(|q| (q.name(steps), Box::new(quantity_fn(*q)) as Pick)).collect();
    named.push(("eval loss".into(), Box::new(|m: &Measurement| Some(m.eval_loss))));
    let parent_runs: Vec<&RunRecord> = parents.values().copied().collect();
    for (name, q) in &named {
        let mut chart = Chart::new(name.clone(), "epoch", name.clone()).vline("split", s3.pre_epochs as f64 + 0.5);
        let pre = over_epochs(&parent_runs, q.as_ref(), 0);
        chart = chart.series(Series::line_points("SGD before the split", pre.clone()).with_color(7));
        for (i, label) in labels.iter().enumerate() {
            let rs: Vec<&RunRecord> = runs.iter().copied().filter(|r| &r.planned.label == label).collect();
            let mut pts = pre.last().cloned().into_iter().collect::<Vec<_>>();
            pts.extend(over_epochs(&rs, q.as_ref(), s3.pre_epochs));
            let style = if label.starts_with("sgd") { SeriesStyle::Dashed } else { SeriesStyle::LinePoints };
            chart = chart.series(Series::new(label.clone(), style, pts).with_color(i));
        }
        charts.push(chart);
    }
    let cols = 2;
    let files = figures::panel_grid(
        &fig_dir.join("fig4-6-split"),
        "Split runs: SGD, then SGD / NGD from the same state (mean ± std over seeds)",
        charts.len().div_ceil(cols),
        cols,
        &charts,
    )?;
    figure_link(md, &files, "Figures 4-6", options.results_dir);
    Ok(())
}

fn claim4_details(md: &mut String, runs: &[&RunRecord], options: &ReportContext, fig_dir: &Path) -> anyhow::Result<()> {
    let steps = &options.profile.measure.sgld_steps;
    if let Some(r) = runs.first() {
        let c = &r.planned.config;
        let _ = writeln!(
            md,
            "Suite `a-overfit`: {} on {} examples of {}, `{}`, {} epochs, measured every {} epochs, {} seeds. Per seed, the overfitting \
             phase is the measured epochs from the lowest validation loss on.\n",
            c.model,
            c.split.train_subset.unwrap_or(0),
            c.dataset,
            r.planned.label,
            c.epochs,
            c.measure.as_ref().map_or(0, |m| m.every),
            runs.len()
        );
    }
    diverged_line(md, runs);
    let mut qs = shown_quantities(options);
    qs.push(verdict::Quantity { kind: verdict::QuantityKind::NExpectedLoss, protocol: Protocol::Paper(0) });
    header(
        md,
        &["seed", "overfitting epochs"],
        &qs.iter().map(|q| format!("ρ({}, val loss)", q.name(steps))).collect::<Vec<_>>(),
        &[],
    );
    for r in runs.iter().filter(|r| r.diverged.is_none()) {
        let cells: Vec<String> = qs
            .iter()
            .map(|q| {
                let pts = verdict::overfitting_points(r, *q);
                let (v, y): (Vec<f64>, Vec<f64>) = pts.iter().map(|p| (p.1, p.2)).unzip();
                stats::spearman(&y, &v).map_or("–".into(), |c| format!("{:.3}", c.r))
            })
            .collect();
        let first =
            verdict::overfitting_points(r, qs[qs.len() - 2]).first().map_or("–".into(), |p| format!("{}–", p.0));
        let _ = writeln!(md, "| {} | {first} | {} |", r.planned.config.seed, cells.join(" | "));
    }
    let mut scatter = Vec::new();
    let mut over = Vec::new();
    for q in &qs {
        let name = q.name(steps);
        let pairs: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.diverged.is_none())
            .flat_map(|r| {
                r.metrics.iter().filter_map(|m| m.measurement.as_ref().and_then(|x| q.of(x)).map(|v| (m.val_loss, v)))
            })
            .collect();
        scatter.push(Chart::scatter_with_fit(
            format!("{name} vs validation loss"),
            "validation loss",
            name.clone(),
            "epochs × seeds",
            &pairs,
        ));
        over.push(
            Chart::new(name.clone(), "epoch", name.clone())
                .series(Series::line_points("mean ± std over seeds", over_epochs(runs, &quantity_fn(*q), 0))),
        );
    }
    let mut val = Chart::new("validation loss", "epoch", "loss");
    let mut by_epoch: BTreeMap<usize, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in runs {
        for m in &r.metrics {
            let e = by_epoch.entry(m.epoch).or_default();
            e.0.push(m.val_loss);
            e.1.push(m.train_loss);
        }
    }
    let pts = |validation: bool| -> Vec<(f64, f64, Option<f64>)> {
        by_epoch
            .iter()
            .filter_map(|(e, (val, train))| {
                stats::summary(if validation { val } else { train }).map(|s| (*e as f64, s.mean, Some(s.std)))
            })
            .collect()
    };
    val = val
        .series(Series::line("validation", pts(true)).with_color(3))
        .series(Series::line("training", pts(false)).with_color(0));
    over.insert(0, val);
    let base = &options.results_dir;
    let files = figures::panel_grid(
        &fig_dir.join("fig7-overfit-over-epochs"),
        "Overfitting run: losses and measurements over epochs",
        over.len().div_ceil(3),
        3,
        &over,
    )?;
    figure_link(md, &files, "Figure 7", base);
    let files = figures::panel_grid(
        &fig_dir.join("fig8-overfit-correlations"),
        "Measurements vs validation loss (all epochs × seeds; the tests are per seed)",
        scatter.len().div_ceil(3),
        3,
        &scatter,
    )?;
    figure_link(md, &files, "Figure 8", base);
    Ok(())
}

/// Hessian spectra of the runs that computed one at their final weights (the profile marks the
/// reference and the first other arm of suite 1's first dataset, largest model, first seed).
fn spectra(md: &mut String, s1: &[&RunRecord], options: &ReportContext, fig_dir: &Path) -> anyhow::Result<()> {
    let with: Vec<(&RunRecord, &slt_runs::measure::Spectrum)> =
        s1.iter().filter_map(|r| Some((*r, r.spectrum.as_ref()?))).collect();
    let [(first, a), (_, b)] = with.as_slice() else { return Ok(()) };
    let c = &first.planned.config;
    let curves: Vec<DensityCurve> = with
        .iter()
        .map(|(r, s)| DensityCurve { label: r.planned.label.as_str(), grid: &s.grid, density: &s.density })
        .collect();
    let files = figures::density_pair(
        &fig_dir.join("hessian-spectra"),
        &format!("Hessian spectral density (SLQ), {} on {}, seed {}", c.model, c.dataset, c.seed),
        curves[0],
        curves[1],
        true,
    )?;
    let _ = writeln!(md, "\n## Hessian spectra\n");
    for (r, s) in [(with[0].0, a), (with[1].0, b)] {
        let top: Vec<String> = s.top_eigenvalues.iter().map(|v| format!("{v:.4}")).collect();
        let _ = writeln!(md, "* `{}`: top eigenvalues (Lanczos) {top:?}", r.planned.label);
    }
    figure_link(md, &files, "Hessian spectra", options.results_dir);
    Ok(())
}

/// What the estimator's diagnostics said, per protocol: the share of λ̂ estimates that passed
/// every check, and the count of each kind of warning.
fn diagnostics(md: &mut String, all: &[RunRecord]) {
    let _ = writeln!(md, "\n## Estimator diagnostics\n");
    let mut any = false;
    for (name, validated) in [("paper", false), ("validated", true)] {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let (mut total, mut passed) = (0usize, 0usize);
        for r in all {
            for m in r.metrics.iter().filter_map(|m| m.measurement.as_ref()) {
                let points: Vec<&slt_runs::measure::LlcPoint> =
                    if validated { m.validated.iter().collect() } else { m.llc.iter().collect() };
                for p in points {
                    total += 1;
                    passed += usize::from(p.passed());
                    for w in &p.warnings {
                        *counts.entry(warning_kind(w).to_string()).or_default() += 1;
                    }
                }
            }
        }
        if total == 0 {
            continue;
        }
        any = true;
        let _ = writeln!(
            md,
            "* **{name} protocol**: {passed} of {total} λ̂ estimates ({:.1} %) passed every diagnostic{}",
            100.0 * passed as f64 / total as f64,
            if counts.is_empty() { "." } else { "; warnings:" }
        );
        for (kind, n) in counts {
            let _ = writeln!(md, "  * {n} × {kind}");
        }
    }
    if !any {
        let _ = writeln!(md, "No λ̂ estimates.");
    }
}

/// The kind of a warning, in words.
fn warning_kind(w: &slt_estimators::Warning) -> &'static str {
    use slt_estimators::Warning as W;
    match w {
        W::Diverged { .. } => "chains diverged",
        W::StillRising { .. } => "λ̂ still rising (the second half of the draws above the first)",
        W::AtLocalizationScale { .. } => "chains at the localisation scale √(d/γ): λ̂ reflects γ",
        W::MatchesQuadraticPrediction { .. } => "λ̂ ≈ nβ·Tr(H)/(2γ): a curvature proxy",
        W::NegativeLlc { .. } => "λ̂ < 0",
        W::BelowInitLoss { .. } => "most draws below L(w*)",
        W::LowAcceptance { .. } => "low MALA acceptance",
        W::HighRHat { .. } => "chains disagree (R-hat > 1.1)",
    }
}

fn timings(md: &mut String, all: &[RunRecord]) {
    let _ = writeln!(
        md,
        "\n## Run times\n\n| suite | runs | training s | measurement s | total s |\n|---|---|---|---|---|"
    );
    let mut by: BTreeMap<&str, (usize, f64, f64, f64)> = BTreeMap::new();
    for r in all {
        let e = by.entry(r.planned.suite).or_default();
        e.0 += 1;
        e.1 += r.metrics.iter().map(|m| m.seconds).sum::<f64>();
        e.2 += r.metrics.iter().filter_map(|m| m.measurement.as_ref()).map(|m| m.seconds).sum::<f64>();
        e.3 += r.summary.as_ref().map_or(0.0, |s| s.total_seconds);
    }
    for (suite, (n, t, m, tot)) in by {
        let _ = writeln!(md, "| {suite} | {n} | {t:.0} | {m:.0} | {tot:.0} |");
    }
}
