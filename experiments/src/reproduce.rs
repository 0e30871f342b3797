//! The reproduction: the paper's three experiment suites and its appendix (DESIGN.md 1, 4),
//! at a profile's scale, into `experiments/results/<suite>/<run-id>/`, resumable, then the
//! figures and `report.md` ([`crate::report`]).
//!
//! * `s1-sgd-vs-ngd`: every dataset × model × seed × optimiser arm; λ̂ (two SGLD step sizes),
//!   WBIC and Tr(H) after the measured epochs.
//! * `s2-smoothing`: NGD over α (ε fixed) and over ε (α fixed).
//! * `s3-split`: SGD for `pre_epochs` (measured every epoch), then from its final weights: SGD
//!   at the same lr, SGD at a raised lr (the control) and NGD at each lr of a grid.
//! * `a-overfit`: a small training subset, many epochs, measured along the way.
//!
//! A run is identified by the hash of its whole configuration (the parent's included for split
//! runs); a finished run is reused, an interrupted one resumes from its last finished epoch.
//! Runs execute in parallel on `jobs` threads; `--shard i/N` keeps every N-th run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use slt_datasets::{DatasetKind, RawSplits, SplitOptions};
use slt_models::ModelSpec;

use crate::config::{OptimizerConfig, TrainConfig};
use crate::measure::MeasureConfig;
use crate::train::{EpochMetrics, RunSummary};
use crate::BackendKind;

/// The suites, in the order they run.
pub const SUITES: [(&str, &str); 4] = [
    ("s1-sgd-vs-ngd", "SGD vs NGD: λ̂, WBIC, Tr(H) across model sizes (Figs. 1-2)"),
    ("s2-smoothing", "NGD Fisher smoothing α, ε vs λ̂ (Fig. 3)"),
    ("s3-split", "SGD, then SGD / NGD copies from the same state (Figs. 4-6)"),
    ("a-overfit", "λ̂, WBIC, Tr(H) while a model overfits (Figs. 7-8)"),
];

/// Suite 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S1 {
    pub datasets: Vec<DatasetKind>,
    pub models: Vec<ModelSpec>,
    pub seeds: Vec<u64>,
    pub epochs: usize,
    /// Names of entries of [`Profile::arms`]; the first is the SGD reference.
    pub arms: Vec<String>,
    #[serde(default)]
    pub train_subset: Option<usize>,
    /// The models that get the validated λ̂ protocol (all if absent): it costs ~10× the paper's.
    #[serde(default)]
    pub validated_models: Option<Vec<ModelSpec>>,
    /// A side arm on one cell: the online NGD with other arithmetic (f32 eigensolver,
    /// re-orthonormalisation), to show what of claim 1 depends on the optimiser's precision.
    #[serde(default)]
    pub precision: Option<PrecisionSide>,
}

/// Suite 1's precision side arm.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionSide {
    pub dataset: DatasetKind,
    pub model: ModelSpec,
    /// The online-NGD arm of `s1.arms` (f64) the variants are compared with.
    pub reference: String,
    /// Online-NGD arms that differ from `reference` only in their arithmetic.
    pub arms: Vec<String>,
}

/// Suite 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S2 {
    pub dataset: DatasetKind,
    pub model: ModelSpec,
    pub seeds: Vec<u64>,
    pub epochs: usize,
    /// The natural-gradient arms (exact NGD, online NGD or K-FAC) whose α and ε are varied.
    pub arms: Vec<String>,
    pub alphas: Vec<f64>,
    /// ε values (the floor of the smoothing), swept at each arm's α.
    pub fisher_epsilons: Vec<f64>,
    /// Measure every this many epochs (and after the last) instead of `measure.every`.
    #[serde(default)]
    pub measure_every: Option<usize>,
    #[serde(default)]
    pub train_subset: Option<usize>,
}

/// Suite 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    pub dataset: DatasetKind,
    pub model: ModelSpec,
    pub seeds: Vec<u64>,
    pub pre_epochs: usize,
    pub post_epochs: usize,
    /// The SGD arm (before and after the split).
    pub sgd_arm: String,
    /// The raised SGD lr of the control branch.
    pub sgd_lr_control: f64,
    /// The NGD arm continued after the split, at each lr of `ngd_lrs`.
    pub ngd_arm: String,
    pub ngd_lrs: Vec<f64>,
    #[serde(default)]
    pub train_subset: Option<usize>,
}

/// The appendix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AOverfit {
    pub dataset: DatasetKind,
    pub model: ModelSpec,
    pub seeds: Vec<u64>,
    pub epochs: usize,
    pub arm: String,
    pub train_subset: usize,
    #[serde(default)]
    pub val_subset: Option<usize>,
    /// Measure every this many epochs.
    pub every: usize,
}

/// A profile: the scale of every suite, read from `experiments/profiles/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// How each arm's learning rate was chosen (printed in the report).
    pub lr_rule: String,
    pub batch_size: usize,
    /// What is measured (λ̂ at each SGLD step, Tr(H)); `every` applies to S1, S2 and S3.
    pub measure: MeasureConfig,
    /// Named optimiser settings the suites refer to.
    pub arms: BTreeMap<String, OptimizerConfig>,
    /// If set, the lr of every exact-NGD run is the arm's lr × (this d / the model's d): κ ∝ 1/d,
    /// so this keeps η/κ — the step along directions the batch Fisher does not see — the same
    /// across model sizes.
    #[serde(default)]
    pub ngd_lr_reference_d: Option<usize>,
    pub s1: S1,
    pub s2: S2,
    pub s3: S3,
    pub a_overfit: AOverfit,
    /// The statistical design: primary tests, levels, margins (declared before the runs).
    pub analysis: crate::verdict::AnalysisPlan,
    /// Findings about the measurement protocols that the report must state (with their source).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The directory of the shipped profiles.
pub fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// The default results directory, `experiments/results`.
pub fn default_results_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results")
}

/// One run of a suite, with what the report needs to place it.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub suite: &'static str,
    /// Arm or branch name (`sgd`, `ngd`, `ngd-online`, `sgd-same-lr`, `sgd-high-lr`, `ngd`).
    pub label: String,
    pub config: TrainConfig,
}

impl PlannedRun {
    /// The run's directory under `results`.
    pub fn dir(&self, results: &Path) -> PathBuf {
        results.join(self.suite).join(self.config.run_id())
    }
}


impl Profile {
    /// Loads a profile by name (`smoke`, `quick`, `paper`) or from a path to a JSON file.
    pub fn load(name_or_path: &str) -> anyhow::Result<Self> {
        let path = if name_or_path.ends_with(".json") || name_or_path.contains('/') {
            PathBuf::from(name_or_path)
        } else {
            profiles_dir().join(format!("{name_or_path}.json"))
        };
        if !path.exists() {
            anyhow::bail!(
                "profile '{name_or_path}' not found at {} (shipped profiles: smoke, quick, paper)",
                path.display()
            );
        }
        let profile: Profile =
            crate::store::read_json(&path).with_context(|| format!("loading profile {}", path.display()))?;
        profile.validate().with_context(|| format!("profile {}", path.display()))?;
        Ok(profile)
    }

    fn arm(&self, name: &str) -> anyhow::Result<&OptimizerConfig> {
        self.arms
            .get(name)
            .with_context(|| format!("arm '{name}' is not defined in \"arms\" (defined: {:?})", self.arms.keys().collect::<Vec<_>>()))
    }

    /// Checks that every referenced arm exists and every setting is in range.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.measure.validate()?;
        for (name, arm) in &self.arms {
            arm.validate().with_context(|| format!("arm '{name}'"))?;
        }
        for name in self.s1.arms.iter().chain(&self.s2.arms).chain([&self.s3.sgd_arm, &self.s3.ngd_arm, &self.a_overfit.arm]) {
            self.arm(name)?;
        }
        for arm in &self.s2.arms {
            anyhow::ensure!(
                !matches!(self.arm(arm)?, OptimizerConfig::Sgd(_)),
                "s2.arms: '{arm}' is an SGD arm; the smoothing sweep needs ngd, ngd-online or kfac arms"
            );
        }
        for (name, seeds) in [("s1", &self.s1.seeds), ("s2", &self.s2.seeds), ("s3", &self.s3.seeds), ("a_overfit", &self.a_overfit.seeds)] {
            let unique: std::collections::BTreeSet<_> = seeds.iter().collect();
            anyhow::ensure!(unique.len() == seeds.len(), "{name}.seeds lists a seed twice: {seeds:?}");
        }
        anyhow::ensure!(self.s1.arms.len() >= 2, "s1.arms needs the SGD reference and at least one other arm");
        if let Some(p) = &self.s1.precision {
            anyhow::ensure!(
                self.s1.datasets.contains(&p.dataset) && self.s1.models.contains(&p.model),
                "s1.precision: {} {} is not a cell of suite 1",
                p.dataset,
                p.model
            );
            anyhow::ensure!(self.s1.arms.contains(&p.reference), "s1.precision.reference '{}' is not one of s1.arms", p.reference);
            for arm in p.arms.iter().chain([&p.reference]) {
                anyhow::ensure!(
                    matches!(self.arm(arm)?, OptimizerConfig::NgdOnline(_)),
                    "s1.precision: '{arm}' must be an online-NGD (ngd-online) arm"
                );
                anyhow::ensure!(!self.s1.arms[1..].contains(arm) || arm == &p.reference, "s1.precision.arms: '{arm}' is already an arm of suite 1");
            }
        }
        let a = &self.analysis;
        a.validate()?;
        anyhow::ensure!(
            self.s1.arms[1..].contains(&a.claim1.arm),
            "analysis.claim1.arm '{}' is not one of s1.arms after the reference ({:?})",
            a.claim1.arm,
            &self.s1.arms[1..]
        );
        anyhow::ensure!(self.s2.arms.contains(&a.claim2.arm), "analysis.claim2.arm '{}' is not one of s2.arms {:?}", a.claim2.arm, self.s2.arms);
        anyhow::ensure!(
            self.s3.ngd_lrs.contains(&a.claim3.ngd_lr),
            "analysis.claim3.ngd_lr {} is not one of s3.ngd_lrs {:?}",
            a.claim3.ngd_lr,
            self.s3.ngd_lrs
        );
        anyhow::ensure!(matches!(self.arm(&self.s3.sgd_arm)?, OptimizerConfig::Sgd(_)), "s3.sgd_arm must be an SGD arm");
        anyhow::ensure!(self.a_overfit.every > 0, "a_overfit.every must be at least 1");
        Ok(())
    }

    /// `optimizer` for `model`, seeded, with the lr rule of [`Profile::ngd_lr_reference_d`].
    fn optimizer_for(&self, optimizer: &OptimizerConfig, model: ModelSpec, seed: u64) -> OptimizerConfig {
        let mut o = optimizer.with_seed(seed);
        if let (OptimizerConfig::Ngd(c), Some(reference)) = (&mut o, self.ngd_lr_reference_d) {
            let d = model.num_params();
            c.lr *= reference as f64 / d as f64;
        }
        o
    }

    fn base(&self, dataset: DatasetKind, model: ModelSpec, seed: u64, epochs: usize, subset: Option<usize>) -> TrainConfig {
        TrainConfig {
            dataset,
            model,
            optimizer: OptimizerConfig::Sgd(Default::default()),
            epochs,
            batch_size: self.batch_size,
            seed,
            split: SplitOptions {
                train_subset: subset,
                val_subset: None,
                val_from_train: None,
                seed,
            },
            eval_train: false,
            measure: Some(self.measure_for(dataset)),
            start_from: None,
        }
    }

    /// The measurement settings of a run on `dataset`: the validated protocol knows the
    /// dataset's matched-convergence target.
    fn measure_for(&self, dataset: DatasetKind) -> MeasureConfig {
        let mut m = self.measure.clone();
        if let Some(v) = m.validated.as_mut() {
            v.matched_train_loss = self.analysis.matched_train_loss.get(dataset.name()).copied();
        }
        m
    }

    /// The runs of `suite` (children of split runs after their parents).
    pub fn runs(&self, suite: &str) -> anyhow::Result<Vec<PlannedRun>> {
        let mut out = Vec::new();
        match suite {
            "s1-sgd-vs-ngd" => {
                let s = &self.s1;
                let side = s.precision.iter().flat_map(|p| p.arms.iter().map(move |a| (p.dataset, p.model, a)));
                let cells = s.datasets.iter().flat_map(|&d| s.models.iter().flat_map(move |&m| s.arms.iter().map(move |a| (d, m, a))));
                for (dataset, model, arm) in cells.chain(side) {
                    for &seed in &s.seeds {
                        let mut c = self.base(dataset, model, seed, s.epochs, s.train_subset);
                        c.optimizer = self.optimizer_for(self.arm(arm)?, model, seed);
                        if s.validated_models.as_ref().is_some_and(|ms| !ms.contains(&model)) {
                            if let Some(m) = c.measure.as_mut() {
                                m.validated = None;
                            }
                        }
                        out.push(PlannedRun { suite: "s1-sgd-vs-ngd", label: arm.clone(), config: c });
                    }
                }
            }
            "s2-smoothing" => {
                use crate::verdict::{s2_label, Sweep};
                let s = &self.s2;
                for arm in &s.arms {
                    let base = self.arm(arm)?;
                    let variants = s.alphas.iter().map(|&a| (Sweep::Alpha, a)).chain(s.fisher_epsilons.iter().map(|&e| (Sweep::Epsilon, e)));
                    for (sweep, value) in variants {
                        let o = with_smoothing(base, sweep, value);
                        for &seed in &s.seeds {
                            let mut c = self.base(s.dataset, s.model, seed, s.epochs, s.train_subset);
                            c.optimizer = self.optimizer_for(&o, s.model, seed);
                            if let (Some(every), Some(m)) = (s.measure_every, c.measure.as_mut()) {
                                m.every = every;
                            }
                            out.push(PlannedRun { suite: "s2-smoothing", label: s2_label(arm, sweep, value), config: c });
                        }
                    }
                }
            }
            "s3-split" => {
                let s = &self.s3;
                let sgd = self.arm(&s.sgd_arm)?;
                let ngd = self.arm(&s.ngd_arm)?;
                for &seed in &s.seeds {
                    let mut parent = self.base(s.dataset, s.model, seed, s.pre_epochs, s.train_subset);
                    parent.optimizer = sgd.with_seed(seed);
                    out.push(PlannedRun { suite: "s3-split", label: "pre-split".into(), config: parent.clone() });
                    let child = |label: String, optimizer: OptimizerConfig| {
                        let mut c = self.base(s.dataset, s.model, seed, s.post_epochs, s.train_subset);
                        c.optimizer = optimizer;
                        c.start_from = Some(Box::new(parent.clone()));
                        PlannedRun { suite: "s3-split", label, config: c }
                    };
                    out.push(child("sgd-same-lr".into(), sgd.with_seed(seed)));
                    let mut raised = sgd.with_seed(seed);
                    raised.set_lr(s.sgd_lr_control);
                    out.push(child(format!("sgd-lr={:e}", s.sgd_lr_control), raised));
                    for &lr in &s.ngd_lrs {
                        let mut o = ngd.clone();
                        o.set_lr(lr);
                        let o = self.optimizer_for(&o, s.model, seed);
                        out.push(child(crate::verdict::s3_ngd_label(lr), o));
                    }
                }
            }
            "a-overfit" => {
                let s = &self.a_overfit;
                for &seed in &s.seeds {
                    let mut c = self.base(s.dataset, s.model, seed, s.epochs, Some(s.train_subset));
                    c.split.val_subset = s.val_subset;
                    c.optimizer = self.optimizer_for(self.arm(&s.arm)?, s.model, seed);
                    let mut m = MeasureConfig { every: s.every, ..self.measure_for(s.dataset) };
                    if let Some(v) = m.validated.as_mut() {
                        // Claim 4 correlates over the run's own epochs: every measured one.
                        v.every_measured_epoch = true;
                    }
                    c.measure = Some(m);
                    out.push(PlannedRun { suite: "a-overfit", label: s.arm.clone(), config: c });
                }
            }
            other => anyhow::bail!(
                "unknown suite '{other}' (suites: {})",
                SUITES.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
            ),
        }
        Ok(out)
    }
}


/// `arm` with its smoothing α (or floor ε) set to `value`; SGD has none and is returned as is.
fn with_smoothing(arm: &OptimizerConfig, sweep: crate::verdict::Sweep, value: f64) -> OptimizerConfig {
    use crate::verdict::Sweep;
    let mut o = arm.clone();
    match (&mut o, sweep) {
        (OptimizerConfig::Ngd(c), Sweep::Alpha) => c.alpha = value,
        (OptimizerConfig::Ngd(c), Sweep::Epsilon) => c.fisher_eps = value,
        (OptimizerConfig::Kfac(c), Sweep::Alpha) => c.alpha = value,
        (OptimizerConfig::Kfac(c), Sweep::Epsilon) => c.fisher_eps = value,
        (OptimizerConfig::NgdOnline(c), Sweep::Alpha) => c.alpha = value,
        (OptimizerConfig::NgdOnline(c), Sweep::Epsilon) => c.epsilon = value,
        (OptimizerConfig::Sgd(_), _) => {}
    }
    o
}

/// Options of a reproduction.
#[derive(Debug, Clone)]
pub struct ReproduceOptions {
    pub profile: Profile,
    pub backend: BackendKind,
    pub data_dir: PathBuf,
    pub results_dir: PathBuf,
    pub show_progress: bool,
    /// Runs executed at once (1 = one after the other, with per-epoch progress bars).
    pub jobs: usize,
    /// `(i, n)`: run only the runs whose index is i modulo n (0-based), as one task of an array job.
    pub shard: Option<(usize, usize)>,
}

/// A finished (or reused) run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub planned: PlannedRun,
    /// `None` when the run diverged.
    pub summary: Option<RunSummary>,
    /// The epochs it finished (all of them unless it diverged).
    pub metrics: Vec<EpochMetrics>,
    pub reused: bool,
    /// Why the run stopped early: training diverged (a result of the sweep, kept in
    /// `diverged.json`, never retried).
    pub diverged: Option<String>,
}

/// The marker a diverged run leaves in its folder.
pub const DIVERGED_FILE: &str = "diverged.json";

/// Reads a finished run from `dir`, if it finished.
pub fn load_finished(planned: &PlannedRun, results: &Path) -> anyhow::Result<Option<RunRecord>> {
    let dir = planned.dir(results);
    let summary_path = dir.join("summary.json");
    let diverged_path = dir.join(DIVERGED_FILE);
    if !summary_path.exists() && !diverged_path.exists() {
        return Ok(None);
    }
    let stored: TrainConfig = crate::store::read_json(&dir.join("config.json"))?;
    anyhow::ensure!(
        stored == planned.config,
        "{}: holds a different configuration than its run id says; move it away",
        dir.display()
    );
    if !summary_path.exists() {
        let note: serde_json::Value = crate::store::read_json(&diverged_path)?;
        let metrics_path = dir.join("metrics.jsonl");
        return Ok(Some(RunRecord {
            planned: planned.clone(),
            summary: None,
            metrics: if metrics_path.exists() { crate::store::read_jsonl(&metrics_path)? } else { Vec::new() },
            reused: true,
            diverged: Some(note["message"].as_str().unwrap_or("diverged").to_string()),
        }));
    }
    Ok(Some(RunRecord {
        planned: planned.clone(),
        summary: Some(crate::store::read_json(&summary_path)?),
        metrics: crate::store::read_jsonl(&dir.join("metrics.jsonl"))?,
        reused: true,
        diverged: None,
    }))
}

/// The data of every dataset a set of runs needs, loaded once.
struct DataCache {
    dir: PathBuf,
    raw: Mutex<BTreeMap<String, std::sync::Arc<RawSplits>>>,
}

impl DataCache {
    fn get(&self, kind: DatasetKind) -> anyhow::Result<std::sync::Arc<RawSplits>> {
        let mut raw = self.raw.lock().expect("no panics while holding the lock");
        if let Some(r) = raw.get(kind.name()) {
            return Ok(r.clone());
        }
        let loaded = std::sync::Arc::new(RawSplits::load(kind, &self.dir).with_context(|| format!("loading {kind}"))?);
        raw.insert(kind.name().to_string(), loaded.clone());
        Ok(loaded)
    }
}

/// Trains `planned` unless it finished; a split run starts from its parent's final weights
/// (the parent must have finished).
fn execute(planned: &PlannedRun, data: &DataCache, options: &ReproduceOptions, show_progress: bool) -> anyhow::Result<RunRecord> {
    if let Some(done) = load_finished(planned, &options.results_dir)? {
        return Ok(done);
    }
    let config = &planned.config;
    let splits = data.get(config.dataset)?.split(&config.split)?;
    let dir = planned.dir(&options.results_dir);
    let parent_weights = config.start_from.as_ref().map(|parent| {
        options.results_dir.join(planned.suite).join(parent.run_id()).join("weights.safetensors")
    });
    let backend = options.backend;
    let outcome = crate::with_backend!(backend, |B, device| {
        let initial = match &parent_weights {
            Some(path) => Some(
                crate::weights::load(config.model.init::<B>(config.seed, &device), path)
                    .with_context(|| format!("the parent run of {} has not finished", dir.display()))?,
            ),
            None => None,
        };
        crate::train::train_from::<B>(config, &splits, &device, backend.name(), Some(&dir), show_progress, initial)
            .map(|o| (o.metrics, o.summary))
    });
    match outcome {
        Ok((metrics, summary)) => Ok(RunRecord { planned: planned.clone(), summary: Some(summary), metrics, reused: false, diverged: None }),
        Err(e) if format!("{e:#}").contains("training diverged") => {
            // A diverging setting is a finding of the sweep: record it, keep going.
            let message = format!("{e:#}");
            crate::store::write_json(&dir.join(DIVERGED_FILE), &serde_json::json!({ "message": message }))?;
            let metrics_path = dir.join("metrics.jsonl");
            let metrics = if metrics_path.exists() { crate::store::read_jsonl(&metrics_path)? } else { Vec::new() };
            Ok(RunRecord { planned: planned.clone(), summary: None, metrics, reused: false, diverged: Some(message) })
        }
        Err(e) => Err(e.context(format!("{} {} ({})", planned.suite, planned.label, dir.display()))),
    }
}

/// Runs `suites` (all of them if empty); returns every run's record in plan order.
pub fn run_suites(options: &ReproduceOptions, suites: &[&str]) -> anyhow::Result<Vec<RunRecord>> {
    let names: Vec<&str> = if suites.is_empty() { SUITES.iter().map(|s| s.0).collect() } else { suites.to_vec() };
    let mut plan = Vec::new();
    for name in names {
        plan.extend(options.profile.runs(name)?);
    }
    // The same configuration can appear twice in a suite (S2's α and ε sweeps share the
    // arm's own point): train it once.
    let mut seen = std::collections::HashSet::new();
    plan.retain(|r| seen.insert((r.suite, r.config.run_id())));
    let selected: Vec<PlannedRun> = match options.shard {
        Some((i, n)) => plan.into_iter().enumerate().filter(|(k, _)| k % n == i).map(|(_, r)| r).collect(),
        None => plan,
    };
    // Parents first (no start_from), then split children.
    let (first, second): (Vec<_>, Vec<_>) = selected.iter().cloned().partition(|r| r.config.start_from.is_none());
    let data = DataCache { dir: options.data_dir.clone(), raw: Mutex::new(BTreeMap::new()) };
    let total = selected.len() as u64;
    let bar = if options.show_progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("runs [{bar:30}] {pos}/{len} {per_sec:>10} ETA {eta:>5} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let per_run_progress = options.show_progress && options.jobs <= 1;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .build()
        .context("building the job pool")?;
    let mut records: Vec<RunRecord> = Vec::with_capacity(selected.len());
    for phase in [first, second] {
        let done: Vec<anyhow::Result<RunRecord>> = pool.install(|| {
            phase
                .par_iter()
                .map(|planned| {
                    let r = execute(planned, &data, options, per_run_progress);
                    if let Ok(rec) = &r {
                        bar.set_message(format!(
                            "{} {} {} seed {}{}",
                            planned.suite,
                            planned.config.model,
                            planned.label,
                            planned.config.seed,
                            if rec.reused { " (reused)" } else { "" }
                        ));
                    }
                    bar.inc(1);
                    r
                })
                .collect()
        });
        for r in done {
            records.push(r?);
        }
    }
    bar.finish_and_clear();
    Ok(records)
}

/// Runs every suite (or the shard of them), then writes figures and the report unless sharded
/// and incomplete; returns the report's path if written.
pub fn reproduce_all(options: &ReproduceOptions, suites: &[&str]) -> anyhow::Result<Option<PathBuf>> {
    let started = Instant::now();
    let records = run_suites(options, suites)?;
    let seconds = started.elapsed().as_secs_f64();
    // The report covers every suite of the profile: read what is on disk.
    let mut all = Vec::new();
    let mut missing = 0;
    for (name, _) in SUITES {
        for planned in options.profile.runs(name)? {
            match load_finished(&planned, &options.results_dir)? {
                Some(r) => all.push(r),
                None => missing += 1,
            }
        }
    }
    if missing > 0 && (options.shard.is_some() || !suites.is_empty()) {
        if options.show_progress {
            eprintln!("{missing} runs of the profile have not finished yet: no report (run the other shards/suites, then reproduce-all)");
        }
        return Ok(None);
    }
    let path = crate::report::write(options, &all, &records, seconds)?;
    Ok(Some(path))
}
