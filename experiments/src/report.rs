//! Figures and `report.md`: for each of the paper's four claims (DESIGN.md 1) the setting, our
//! numbers (mean ± std over seeds), the test and a verdict, computed from the run folders.
//!
//! Verdict rules (stated in the report too): a comparison "supports" a claim when the difference
//! has the claimed sign with p < 0.05, "contradicts" it when it has the opposite sign with
//! p < 0.05. A claim *holds* when at least two thirds of its comparisons support it and none
//! contradicts it, *does not hold* when more contradict than support it, and is *inconclusive at
//! this scale* otherwise. Comparisons between arms whose final training losses differ by more
//! than a factor 1.5 are flagged as confounded by convergence.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::figures::{self, Chart, DensityCurve, Series, SeriesStyle};
use crate::measure::Measurement;
use crate::reproduce::{ReproduceOptions, RunRecord};
use crate::stats;

const ALPHA: f64 = 0.05;

/// Tally of comparisons for a verdict.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    support: usize,
    contradict: usize,
    total: usize,
}

impl Tally {
    /// Counts a comparison with difference `diff` (claimed sign positive) and p-value `p`.
    fn add(&mut self, diff: f64, p: Option<f64>) {
        self.total += 1;
        if let Some(p) = p {
            if p < ALPHA && diff > 0.0 {
                self.support += 1;
            } else if p < ALPHA && diff < 0.0 {
                self.contradict += 1;
            }
        }
    }

    fn verdict(&self) -> &'static str {
        if self.total == 0 {
            "inconclusive at this scale (no comparison could be made)"
        } else if 3 * self.support >= 2 * self.total && self.contradict == 0 {
            "holds"
        } else if self.contradict > self.support {
            "does not hold"
        } else {
            "inconclusive at this scale"
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} of {} comparisons support the claim (p < {ALPHA}), {} contradict it",
            self.support, self.total, self.contradict
        )
    }
}

/// The final measurement of a run that finished (a diverged run has none).
fn last_measurement(r: &RunRecord) -> Option<&Measurement> {
    if r.diverged.is_some() {
        return None;
    }
    r.metrics.iter().rev().find_map(|m| m.measurement.as_ref())
}

fn llc_at(m: &Measurement, k: usize) -> Option<f64> {
    m.llc.get(k).and_then(|p| p.llc_mean)
}

fn fmt_ms(xs: &[f64]) -> String {
    match stats::summary(xs) {
        Some(s) if s.n > 1 => format!("{:.3} ± {:.3}", s.mean, s.std),
        Some(s) => format!("{:.3}", s.mean),
        None => "–".into(),
    }
}

fn p_text(t: &Result<stats::TTest, stats::StatsError>) -> (String, Option<f64>, f64) {
    match t {
        Ok(t) => (format!("t = {:.2}, p = {}", t.t, figures::format_p(t.p_value)), Some(t.p_value), t.mean_diff),
        Err(e) => (format!("no test ({e})"), None, 0.0),
    }
}

fn mean(xs: &[f64]) -> f64 {
    stats::mean(xs).unwrap_or(f64::NAN)
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
        .map(|r| format!("{} {} seed {} (after {} finished epochs)", r.planned.config.model, r.planned.label, r.planned.config.seed, r.metrics.len()))
        .collect();
    if !diverged.is_empty() {
        let _ = writeln!(md, "\n**Diverged (training loss non-finite; excluded from the statistics):** {}.\n", diverged.join("; "));
    }
}

fn rel_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}

/// Writes the figures and `report.md` into `options.results_dir`; returns the report's path.
pub fn write(options: &ReproduceOptions, all: &[RunRecord], this_call: &[RunRecord], seconds: f64) -> anyhow::Result<PathBuf> {
    let results = &options.results_dir;
    let fig_dir = results.join("figures");
    std::fs::create_dir_all(&fig_dir).with_context(|| format!("creating {}", fig_dir.display()))?;
    let steps: Vec<f64> = options.profile.measure.sgld_steps.clone();
    let mut md = String::new();
    let _ = writeln!(md, "# Reproduction report: NGD vs SGD degeneracy (arXiv 2409.04913)\n");
    let _ = writeln!(
        md,
        "Profile `{}` ({}), backend `{}`. This invocation: {} runs trained, {} reused, {:.0} s wall clock.\n",
        options.profile.name,
        options.profile.description,
        options.backend,
        this_call.iter().filter(|r| !r.reused).count(),
        this_call.iter().filter(|r| r.reused).count(),
        seconds
    );
    let _ = writeln!(md, "**Learning rates.** {}\n", options.profile.lr_rule);
    let m = &options.profile.measure;
    let _ = writeln!(
        md,
        "**Measurements.** λ̂ by SGLD ({} chains × {} draws, γ = {}, nβ = {}, batch {}) at SGLD step sizes {:?}; \
         n·E_β[L] (the WBIC only when nβ = n/ln n; otherwise labelled n·E_β[L]); Tr(H) by Hutchinson ({} Rademacher probes, \
         {} × {} training examples) with its standard error; ‖∇L‖ on the same examples. \
         Verdict rule: a comparison supports a claim when the difference has the claimed sign with p < {ALPHA} and contradicts it \
         with the opposite sign at p < {ALPHA}; a claim holds when ≥ 2/3 of its comparisons support it and none contradicts it, \
         does not hold when more contradict than support, and is inconclusive otherwise.\n",
        m.sgld.num_chains,
        m.sgld.num_draws,
        m.sgld.localization,
        match m.sgld.temperature {
            slt_estimators::Temperature::BatchDefault => "m/ln m".to_string(),
            slt_estimators::Temperature::Watanabe => "n/ln n".to_string(),
            slt_estimators::Temperature::Fixed(v) => format!("{v}"),
        },
        m.sgld.batch_size,
        steps,
        m.hessian_probes,
        m.hessian_batches,
        m.hessian_batch_size
    );
    let by_suite = |s: &str| all.iter().filter(|r| r.planned.suite == s).collect::<Vec<_>>();
    let mut claims = Vec::new();
    claims.push(claim1(&mut md, &by_suite("s1-sgd-vs-ngd"), options, &fig_dir, &steps)?);
    claims.push(claim2(&mut md, &by_suite("s2-smoothing"), &by_suite("s1-sgd-vs-ngd"), options, &fig_dir, &steps)?);
    claims.push(claim3(&mut md, &by_suite("s3-split"), options, &fig_dir, &steps)?);
    claims.push(claim4(&mut md, &by_suite("a-overfit"), &fig_dir, &steps)?);
    spectra(&mut md, &by_suite("s1-sgd-vs-ngd"), options, &fig_dir)?;
    diagnostics(&mut md, all);
    timings(&mut md, all);
    // The claim table goes first.
    let mut head = String::new();
    let _ = writeln!(head, "## Claims at a glance\n\n| # | claim | verdict | evidence |\n|---|---|---|---|");
    for (i, (claim, verdict, evidence)) in claims.iter().enumerate() {
        let _ = writeln!(head, "| {} | {claim} | {verdict} | {evidence} |", i + 1);
    }
    let split = md.find("**Learning rates.**").unwrap_or(0);
    md.insert_str(split, &format!("{head}\n"));
    let md = md.replace(&format!("{}/", fig_dir.display()), "figures/");
    let path = results.join("report.md");
    crate::store::write_atomic(&path, md.as_bytes())?;
    Ok(path)
}

type ClaimRow = (String, String, String);

/// A named quantity read from a measurement.
type Quantity = (String, Box<dyn Fn(&Measurement) -> Option<f64>>);

/// λ̂ at each SGLD step (named by `name(step)`), then Tr(H).
fn llc_and_trace(steps: &[f64], name: impl Fn(f64) -> String) -> Vec<Quantity> {
    let mut qs: Vec<Quantity> = steps
        .iter()
        .enumerate()
        .map(|(k, &s)| (name(s), Box::new(move |m: &Measurement| llc_at(m, k)) as Box<dyn Fn(&Measurement) -> Option<f64>>))
        .collect();
    qs.push(("Tr(H)".into(), Box::new(|m: &Measurement| Some(m.trace_h))));
    qs
}

fn figure_link(md: &mut String, files: &figures::FigureFiles, caption: &str, base: &Path) {
    let _ = writeln!(md, "\n![{caption}]({}) ([SVG]({}))\n", rel_path(&files.png, base), rel_path(&files.svg, base));
}

fn claim1(md: &mut String, runs: &[&RunRecord], options: &ReproduceOptions, fig_dir: &Path, steps: &[f64]) -> anyhow::Result<ClaimRow> {
    let s1 = &options.profile.s1;
    let base = &options.results_dir;
    let _ = writeln!(md, "## Claim 1: NGD solutions have higher λ̂ and Tr(H) than SGD solutions, across model sizes\n");
    let _ = writeln!(
        md,
        "Suite `s1-sgd-vs-ngd`: {:?} × {:?}, seeds {:?}, {} epochs, arms {:?}. Welch t-tests of each NGD arm against `{}` on the \
         final λ̂ (each SGLD step) and Tr(H).\n",
        s1.datasets.iter().map(|d| d.name()).collect::<Vec<_>>(),
        s1.models.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        s1.seeds,
        s1.epochs,
        s1.arms,
        s1.arms[0]
    );
    diverged_line(md, runs);
    let reference = &s1.arms[0];
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut confounded = 0;
    let _ = writeln!(
        md,
        "| dataset | model | arm | quantity | {reference} | arm | test | train loss {reference} / arm | ‖∇L‖ {reference} / arm |\n|---|---|---|---|---|---|---|---|---|"
    );
    let cell = |dataset: slt_datasets::DatasetKind, model: slt_models::ModelSpec, arm: &str| -> Vec<&RunRecord> {
        runs.iter()
            .copied()
            .filter(|r| r.planned.config.dataset == dataset && r.planned.config.model == model && r.planned.label == arm)
            .collect()
    };
    let quantity = |rs: &[&RunRecord], q: &dyn Fn(&Measurement) -> Option<f64>| -> Vec<f64> {
        rs.iter().filter_map(|r| last_measurement(r).and_then(q)).collect()
    };
    for &dataset in &s1.datasets {
        for &model in &s1.models {
            let sgd = cell(dataset, model, reference);
            for arm in s1.arms.iter().skip(1) {
                let other = cell(dataset, model, arm);
                let loss_s: Vec<f64> = sgd.iter().map(|r| final_train_loss(r)).collect();
                let loss_o: Vec<f64> = other.iter().map(|r| final_train_loss(r)).collect();
                let g_s = quantity(&sgd, &|m| Some(m.grad_norm));
                let g_o = quantity(&other, &|m| Some(m.grad_norm));
                let ratio = mean(&loss_o) / mean(&loss_s);
                let flag = !(1.0 / 1.5..=1.5).contains(&ratio);
                if flag {
                    confounded += 1;
                }
                let qs = llc_and_trace(steps, |s| format!("λ̂ (SGLD ε={s:e})"));
                for (name, q) in &qs {
                    let a = quantity(&sgd, q.as_ref());
                    let b = quantity(&other, q.as_ref());
                    let test = stats::welch_t_test(&b, &a);
                    let (text, p, diff) = p_text(&test);
                    tallies.entry(arm.clone()).or_default().add(diff, p);
                    let _ = writeln!(
                        md,
                        "| {dataset} | {model} | {arm} | {name} | {} | {} | {text} | {} / {}{} | {} / {} |",
                        fmt_ms(&a),
                        fmt_ms(&b),
                        fmt_ms(&loss_s),
                        fmt_ms(&loss_o),
                        if flag { " ⚠ confounded" } else { "" },
                        fmt_ms(&g_s),
                        fmt_ms(&g_o)
                    );
                }
            }
        }
    }
    // Figure 1: λ̂ vs width, panels per dataset × depth, one figure per SGLD step.
    let depths: Vec<usize> = {
        let mut d: Vec<usize> = s1.models.iter().filter_map(|m| match m {
            slt_models::ModelSpec::Mlp { depth, .. } => Some(*depth),
            _ => None,
        }).collect();
        d.sort();
        d.dedup();
        d
    };
    for (k, step) in steps.iter().enumerate() {
        let mut charts = Vec::new();
        for &dataset in &s1.datasets {
            for &depth in &depths {
                let mut chart = Chart::new(format!("{dataset}, {depth} hidden layer(s)"), "width", "λ̂").log_x();
                let widths: Vec<usize> = s1.models.iter().filter_map(|m| match m {
                    slt_models::ModelSpec::Mlp { depth: d, width } if *d == depth => Some(*width),
                    _ => None,
                }).collect();
                chart = chart.x_ticks(widths.iter().map(|w| *w as f64).collect());
                for (a, arm) in s1.arms.iter().enumerate() {
                    let pts: Vec<(f64, f64, Option<f64>)> = widths
                        .iter()
                        .filter_map(|&w| {
                            let model = slt_models::ModelSpec::Mlp { depth, width: w };
                            let v: Vec<f64> = cell(dataset, model, arm).iter().filter_map(|r| last_measurement(r).and_then(|m| llc_at(m, k))).collect();
                            stats::summary(&v).map(|s| (w as f64, s.mean, Some(s.std)))
                        })
                        .collect();
                    chart = chart.series(Series::line_points(arm.clone(), pts).with_color(a));
                }
                charts.push(chart);
            }
        }
        if !charts.is_empty() {
            let files = figures::panel_grid(
                &fig_dir.join(format!("fig1-llc-vs-width-sgld{k}")),
                &format!("Final λ̂ vs width (SGLD {step:e}, mean ± std)"),
                s1.datasets.len(),
                depths.len().max(1),
                &charts,
            )?;
            figure_link(md, &files, &format!("Figure 1 (SGLD step {step:e})"), base);
        }
    }
    // Figure 2: λ̂ and Tr(H) over epochs for the largest model on the first dataset.
    if let (Some(&dataset), Some(&model)) = (s1.datasets.first(), s1.models.last()) {
        let mut charts = Vec::new();
        let qs = llc_and_trace(steps, |s| format!("λ̂ (SGLD {s:e})"));
        for (name, q) in &qs {
            let mut chart = Chart::new(format!("{name}, {model} on {dataset}"), "epoch", name.clone());
            for (a, arm) in s1.arms.iter().enumerate() {
                chart = chart.series(Series::line_points(arm.clone(), over_epochs(&cell(dataset, model, arm), q.as_ref(), 0)).with_color(a));
            }
            charts.push(chart);
        }
        let files = figures::panel_grid(&fig_dir.join("fig2-over-epochs"), "λ̂ and Tr(H) over training (mean ± std over seeds)", 1, charts.len(), &charts)?;
        figure_link(md, &files, "Figure 2", base);
    }
    let mut verdicts = Vec::new();
    let mut evidence = Vec::new();
    for (arm, t) in &tallies {
        let _ = writeln!(md, "**Verdict for `{arm}`: {}** — {}.", t.verdict(), t.describe());
        verdicts.push(format!("{arm}: {}", t.verdict()));
        evidence.push(format!("{arm}: {}", t.describe()));
    }
    if confounded > 0 {
        verdicts.push(format!("⚠ {confounded} of the arm comparisons are between differently converged runs"));
        let _ = writeln!(
            md,
            "\n⚠ {confounded} arm comparisons are between runs whose final training losses differ by more than 1.5×: there λ̂ compares differently converged points, not optimisers."
        );
    }
    Ok(("NGD λ̂ and Tr(H) > SGD's".into(), verdicts.join("; "), evidence.join("; ")))
}

/// Mean ± std over runs of quantity `q` at each measured epoch (shifted by `offset`).
fn over_epochs(runs: &[&RunRecord], q: &dyn Fn(&Measurement) -> Option<f64>, offset: usize) -> Vec<(f64, f64, Option<f64>)> {
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

fn claim2(md: &mut String, runs: &[&RunRecord], s1: &[&RunRecord], options: &ReproduceOptions, fig_dir: &Path, steps: &[f64]) -> anyhow::Result<ClaimRow> {
    let s2 = &options.profile.s2;
    let _ = writeln!(md, "\n## Claim 2: less Fisher smoothing (smaller α, smaller ε) gives NGD a higher λ̂\n");
    let _ = writeln!(
        md,
        "Suite `s2-smoothing`: {} on {}, arm `{}`, α ∈ {:?} (ε at the arm's value), ε ∈ {:?} (α at the arm's value), seeds {:?}, {} epochs. \
         Test: Spearman's ρ between the smoothing parameter and the final λ̂ over all runs (the claim predicts ρ < 0).\n",
        s2.model, s2.dataset, s2.arm, s2.alphas, s2.fisher_epsilons, s2.seeds, s2.epochs
    );
    diverged_line(md, runs);
    let mut tally = Tally::default();
    let sgd_level: Vec<f64> = s1
        .iter()
        .filter(|r| r.planned.config.dataset == s2.dataset && r.planned.config.model == s2.model && r.planned.label == options.profile.s1.arms[0])
        .filter_map(|r| last_measurement(r).and_then(|m| llc_at(m, 0)))
        .collect();
    let _ = writeln!(md, "| parameter | SGLD step | ρ | p | n | final train loss range |\n|---|---|---|---|---|---|");
    let mut charts = Vec::new();
    let mut confounded = false;
    for (param, prefix) in [("α", "alpha="), ("ε", "eps=")] {
        let sel: Vec<&&RunRecord> = runs.iter().filter(|r| r.planned.label.starts_with(prefix)).collect();
        let value = |r: &RunRecord| -> f64 {
            match &r.planned.config.optimizer {
                crate::config::OptimizerConfig::Ngd(c) if prefix == "alpha=" => c.alpha,
                crate::config::OptimizerConfig::Ngd(c) => c.fisher_eps,
                _ => f64::NAN,
            }
        };
        let losses: Vec<f64> = sel.iter().map(|r| final_train_loss(r)).filter(|l| l.is_finite()).collect();
        let (lo, hi) = (
            losses.iter().cloned().fold(f64::INFINITY, f64::min),
            losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
        confounded |= hi > 1.5 * lo;
        let loss_range = format!("{lo:.3}–{hi:.3}{}", if hi > 1.5 * lo { " ⚠ confounded: the runs reached different losses" } else { "" });
        for (k, step) in steps.iter().enumerate() {
            let pairs: Vec<(f64, f64)> = sel.iter().filter_map(|r| last_measurement(r).and_then(|m| llc_at(m, k)).map(|l| (value(r), l))).collect();
            let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().cloned().unzip();
            match stats::spearman(&x, &y) {
                Ok(c) => {
                    tally.add(-c.r, Some(c.p_value));
                    let _ = writeln!(md, "| {param} | {step:e} | {:.3} | {} | {} | {loss_range} |", c.r, figures::format_p(c.p_value), c.n);
                }
                Err(e) => {
                    tally.add(0.0, None);
                    let _ = writeln!(md, "| {param} | {step:e} | – | no test ({e}) | {} | {loss_range} |", pairs.len());
                }
            }
        }
        let mut chart = Chart::new(format!("final λ̂ vs {param}"), param, "λ̂").log_x();
        let mut grouped: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
        for r in &sel {
            if let Some(l) = last_measurement(r).and_then(|m| llc_at(m, 0)) {
                let v = value(r);
                grouped.entry(v.to_bits()).or_insert((v, Vec::new())).1.push(l);
            }
        }
        let mut pts: Vec<(f64, f64, Option<f64>)> = grouped.values().filter_map(|(v, ls)| stats::summary(ls).map(|s| (*v, s.mean, Some(s.std)))).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart = chart.series(Series::line_points(format!("NGD ({})", s2.arm), pts).with_color(1));
        if let Some(level) = stats::mean(&sgd_level) {
            chart = chart.hline("SGD (suite 1)", level);
        }
        charts.push(chart);
    }
    let files = figures::panel_grid(&fig_dir.join("fig3-smoothing"), &format!("Final λ̂ vs Fisher smoothing (SGLD step {:e}; mean ± std)", steps[0]), 1, 2, &charts)?;
    figure_link(md, &files, "Figure 3", &options.results_dir);
    let _ = writeln!(md, "**Verdict: {}** — {}.", tally.verdict(), tally.describe());
    let verdict = if confounded {
        format!("{}; ⚠ confounded: the sweep's runs reached different training losses", tally.verdict())
    } else {
        tally.verdict().to_string()
    };
    Ok(("less smoothing ⇒ higher λ̂_NGD".into(), verdict, tally.describe()))
}

fn claim3(md: &mut String, runs: &[&RunRecord], options: &ReproduceOptions, fig_dir: &Path, steps: &[f64]) -> anyhow::Result<ClaimRow> {
    let s3 = &options.profile.s3;
    let _ = writeln!(md, "\n## Claim 3: after a split, λ̂ rises under NGD but not under SGD; a larger NGD lr rises more; raising SGD's lr does not\n");
    let _ = writeln!(
        md,
        "Suite `s3-split`: {} on {}, SGD (`{}`) for {} epochs, then {} epochs of: SGD at the same lr, SGD at lr {} (control), NGD (`{}`) at lr {:?}; seeds {:?}. \
         Δλ̂ = λ̂ at the end − λ̂ at the split, per seed. Tests: paired t-tests of Δλ̂ of each branch against the same-lr SGD branch (same parent); \
         Spearman's ρ between NGD lr and Δλ̂.\n",
        s3.model, s3.dataset, s3.sgd_arm, s3.pre_epochs, s3.post_epochs, s3.sgd_lr_control, s3.ngd_arm, s3.ngd_lrs, s3.seeds
    );
    diverged_line(md, runs);
    let parents: BTreeMap<u64, &RunRecord> = runs.iter().filter(|r| r.planned.label == "pre-split").map(|r| (r.planned.config.seed, *r)).collect();
    let labels: Vec<String> = {
        let mut l: Vec<String> = runs.iter().filter(|r| r.planned.label != "pre-split").map(|r| r.planned.label.clone()).collect();
        l.sort();
        l.dedup();
        l
    };
    let delta = |label: &str, k: usize| -> BTreeMap<u64, f64> {
        runs.iter()
            .filter(|r| r.planned.label == label)
            .filter_map(|r| {
                let seed = r.planned.config.seed;
                let before = parents.get(&seed).and_then(|p| last_measurement(p)).and_then(|m| llc_at(m, k))?;
                let after = last_measurement(r).and_then(|m| llc_at(m, k))?;
                Some((seed, after - before))
            })
            .collect()
    };
    let mut rise = Tally::default();
    let mut lr_effect = Tally::default();
    let mut control = Tally::default();
    for (k, step) in steps.iter().enumerate() {
        let _ = writeln!(md, "| branch | SGLD step | Δλ̂ (mean ± std) | vs sgd-same-lr (paired) | final train loss |\n|---|---|---|---|---|");
        let base = delta("sgd-same-lr", k);
        let mut lr_pairs = Vec::new();
        for label in &labels {
            let d = delta(label, k);
            let vals: Vec<f64> = d.values().cloned().collect();
            let (a, b): (Vec<f64>, Vec<f64>) = d.iter().filter_map(|(s, v)| base.get(s).map(|b0| (*v, *b0))).unzip();
            let (text, p, diff) = if label == "sgd-same-lr" {
                ("(reference)".to_string(), None, 0.0)
            } else {
                p_text(&stats::paired_t_test(&a, &b))
            };
            if label.starts_with("ngd") {
                rise.add(diff, p);
                if let Some(lr) = label.strip_prefix("ngd-lr=").and_then(|v| v.parse::<f64>().ok()) {
                    lr_pairs.extend(vals.iter().map(|v| (lr, *v)));
                }
            } else if label != "sgd-same-lr" {
                // The control: the claim is that raising SGD's lr does NOT raise λ̂.
                control.total += 1;
                if p.is_some_and(|p| p < ALPHA) && diff > 0.0 {
                    control.contradict += 1;
                }
            }
            let losses: Vec<f64> = runs.iter().filter(|r| &r.planned.label == label).map(|r| final_train_loss(r)).collect();
            let _ = writeln!(md, "| {label} | {step:e} | {} | {text} | {} |", fmt_ms(&vals), fmt_ms(&losses));
        }
        let (x, y): (Vec<f64>, Vec<f64>) = lr_pairs.into_iter().unzip();
        match stats::spearman(&x, &y) {
            Ok(c) => {
                lr_effect.add(c.r, Some(c.p_value));
                let _ = writeln!(md, "\nSGLD step {step:e}: Spearman ρ(NGD lr, Δλ̂) = {:.3}, p = {} (n = {}).\n", c.r, figures::format_p(c.p_value), c.n);
            }
            Err(e) => {
                lr_effect.add(0.0, None);
                let _ = writeln!(md, "\nSGLD step {step:e}: no lr-effect test ({e}).\n");
            }
        }
    }
    // Figures 4-6: λ̂, Tr(H), training loss over all epochs, split marked.
    let mut charts = Vec::new();
    let mut qs = llc_and_trace(steps, |s| format!("λ̂ (SGLD {s:e})"));
    qs.push(("eval loss".into(), Box::new(|m: &Measurement| Some(m.eval_loss))));
    let parent_runs: Vec<&RunRecord> = parents.values().copied().collect();
    for (name, q) in &qs {
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
    let rows = charts.len().div_ceil(cols);
    let files = figures::panel_grid(&fig_dir.join("fig4-6-split"), "Split runs: SGD, then SGD / NGD from the same state (mean ± std over seeds)", rows, cols, &charts)?;
    figure_link(md, &files, "Figures 4-6", &options.results_dir);
    let _ = writeln!(md, "**Verdicts.** NGD rises more than SGD after the split: **{}** ({}). A larger NGD lr gives a larger rise: **{}** ({}). \
        Raising only SGD's lr does not raise λ̂: {} ({} control comparisons, {} showed a significant rise).",
        rise.verdict(), rise.describe(), lr_effect.verdict(), lr_effect.describe(),
        if control.total == 0 { "inconclusive (no control runs)" } else if control.contradict == 0 { "**holds**" } else { "**does not hold**" },
        control.total, control.contradict);
    Ok((
        "λ̂ rises after switching to NGD; more with larger lr; not with larger SGD lr".into(),
        format!("rise: {}; lr effect: {}; control: {}", rise.verdict(), lr_effect.verdict(), if control.total == 0 { "inconclusive" } else if control.contradict == 0 { "holds" } else { "does not hold" }),
        format!("rise: {}; lr: {}", rise.describe(), lr_effect.describe()),
    ))
}

fn claim4(md: &mut String, runs: &[&RunRecord], fig_dir: &Path, steps: &[f64]) -> anyhow::Result<ClaimRow> {
    let _ = writeln!(md, "\n## Claim 4 (appendix): while a model overfits, λ̂, WBIC and Tr(H) rise with the validation loss\n");
    if let Some(r) = runs.first() {
        let c = &r.planned.config;
        let _ = writeln!(
            md,
            "Suite `a-overfit`: {} on {} examples of {}, `{}`, {} epochs, measured every {} epochs, {} seeds. \
             Test: Pearson's r (and Spearman's ρ) between validation loss and each quantity over all measured epochs of all seeds.\n",
            c.model, c.split.train_subset.unwrap_or(0), c.dataset, r.planned.label, c.epochs,
            c.measure.as_ref().map_or(0, |m| m.every), runs.len()
        );
    }
    diverged_line(md, runs);
    let mut tally = Tally::default();
    let mut qs = llc_and_trace(steps, |s| format!("λ̂ (SGLD {s:e})"));
    qs.insert(steps.len(), ("n·E_β[L] (WBIC-type)".into(), Box::new(|m: &Measurement| m.llc.first().and_then(|p| p.n_expected_loss))));
    let _ = writeln!(md, "| quantity | Pearson r | p | Spearman ρ | p | n |\n|---|---|---|---|---|---|");
    let mut scatter = Vec::new();
    let mut over = Vec::new();
    for (name, q) in &qs {
        let pairs: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.diverged.is_none())
            .flat_map(|r| r.metrics.iter().filter_map(|m| m.measurement.as_ref().and_then(|x| q(x)).map(|v| (m.val_loss, v))))
            .collect();
        let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().cloned().unzip();
        let pr = stats::pearson(&x, &y);
        let sp = stats::spearman(&x, &y);
        match (&pr, &sp) {
            (Ok(p), Ok(s)) => {
                tally.add(p.r, Some(p.p_value));
                let _ = writeln!(md, "| {name} | {:.3} | {} | {:.3} | {} | {} |", p.r, figures::format_p(p.p_value), s.r, figures::format_p(s.p_value), p.n);
            }
            _ => {
                tally.add(0.0, None);
                let _ = writeln!(md, "| {name} | – | – | – | – | {} |", pairs.len());
            }
        }
        scatter.push(Chart::scatter_with_fit(format!("{name} vs validation loss"), "validation loss", name.clone(), "epochs × seeds", &pairs));
        over.push(Chart::new(name.clone(), "epoch", name.clone()).series(Series::line_points("mean ± std over seeds", over_epochs(runs, q.as_ref(), 0))));
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
    let pts = |f: &dyn Fn(&(Vec<f64>, Vec<f64>)) -> &Vec<f64>| -> Vec<(f64, f64, Option<f64>)> {
        by_epoch.iter().filter_map(|(e, v)| stats::summary(f(v)).map(|s| (*e as f64, s.mean, Some(s.std)))).collect()
    };
    val = val.series(Series::line("validation", pts(&|v| &v.0)).with_color(3)).series(Series::line("training", pts(&|v| &v.1)).with_color(0));
    over.insert(0, val);
    let base = fig_dir.parent().unwrap_or(fig_dir).to_path_buf();
    let files = figures::panel_grid(&fig_dir.join("fig7-overfit-over-epochs"), "Overfitting run: losses and measurements over epochs", over.len().div_ceil(3), 3, &over)?;
    figure_link(md, &files, "Figure 7", &base);
    let files = figures::panel_grid(&fig_dir.join("fig8-overfit-correlations"), "Measurements vs validation loss", scatter.len().div_ceil(3), 3, &scatter)?;
    figure_link(md, &files, "Figure 8", &base);
    let _ = writeln!(md, "**Verdict: {}** — {}.", tally.verdict(), tally.describe());
    Ok(("λ̂, WBIC, Tr(H) rise with validation loss while overfitting".into(), tally.verdict().into(), tally.describe()))
}

/// Hessian spectra of one SGD and one NGD model side by side (the first seed of the largest S1
/// model on the first dataset).
fn spectra(md: &mut String, s1: &[&RunRecord], options: &ReproduceOptions, fig_dir: &Path) -> anyhow::Result<()> {
    let p = &options.profile.s1;
    let (Some(&dataset), Some(&model), Some(&seed)) = (p.datasets.first(), p.models.last(), p.seeds.first()) else {
        return Ok(());
    };
    let pick = |arm: &str| s1.iter().find(|r| r.planned.config.dataset == dataset && r.planned.config.model == model && r.planned.config.seed == seed && r.planned.label == arm).copied();
    let Some(ngd_arm) = p.arms.iter().skip(1).find(|a| pick(a).is_some()) else { return Ok(()) };
    let (Some(sgd), Some(ngd)) = (pick(&p.arms[0]), pick(ngd_arm)) else { return Ok(()) };
    let raw = slt_datasets::RawSplits::load(dataset, &options.data_dir)?;
    let m = &options.profile.measure;
    let mut spectra = Vec::new();
    for r in [sgd, ngd] {
        let splits = raw.split(&r.planned.config.split)?;
        let weights = r.planned.dir(&options.results_dir).join("weights.safetensors");
        let backend = options.backend;
        let s = crate::with_backend!(backend, |B, device| {
            let model_b = crate::weights::load(model.init::<B>(0, &device), &weights)?;
            crate::measure::spectrum::<B>(&model_b, &splits.train, m.hessian_batches, m.hessian_batch_size, seed, &device)
        })?;
        spectra.push((r.planned.label.clone(), s));
    }
    let curves: Vec<DensityCurve> = spectra.iter().map(|(l, s)| DensityCurve { label: l.as_str(), grid: &s.grid, density: &s.density }).collect();
    let files = figures::density_pair(
        &fig_dir.join("hessian-spectra"),
        &format!("Hessian spectral density (SLQ), {model} on {dataset}, seed {seed}"),
        curves[0],
        curves[1],
        true,
    )?;
    let _ = writeln!(md, "\n## Hessian spectra\n");
    for (label, s) in &spectra {
        let _ = writeln!(md, "* `{label}`: top eigenvalues (Lanczos) {:?}", s.top_eigenvalues.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>());
    }
    figure_link(md, &files, "Hessian spectra", &options.results_dir);
    Ok(())
}

fn diagnostics(md: &mut String, all: &[RunRecord]) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for r in all {
        for m in r.metrics.iter().filter_map(|m| m.measurement.as_ref()) {
            for p in &m.llc {
                total += 1;
                for w in &p.warnings {
                    // Group by the kind of warning: drop the numbers it quotes.
                    let head = w.split([':', '(']).next().unwrap_or(w);
                    let kind: String = head
                        .chars()
                        .filter(|c| !(c.is_ascii_digit() || matches!(c, '.' | '%' | '-' | '+')))
                        .collect::<String>()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    *counts.entry(kind).or_default() += 1;
                }
            }
        }
    }
    let _ = writeln!(md, "\n## Estimator diagnostics that warned\n\nOver {total} λ̂ estimates (all suites):\n");
    if counts.is_empty() {
        let _ = writeln!(md, "No warnings.");
    }
    for (kind, n) in counts {
        let _ = writeln!(md, "* {n} × {kind}");
    }
}

fn timings(md: &mut String, all: &[RunRecord]) {
    let _ = writeln!(md, "\n## Run times\n\n| suite | runs | training s | measurement s | total s |\n|---|---|---|---|---|");
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
