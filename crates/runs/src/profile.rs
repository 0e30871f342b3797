//! A profile: the scale of every suite of the reproduction, its statistical design (declared
//! before any run), and the plan of runs it implies. Read from `experiments/profiles/<name>.json`
//! with unknown keys rejected and every value checked before the first run starts.
//!
//! * `s1-sgd-vs-ngd`: every dataset × model × seed × optimiser arm; λ̂ (two SGLD step sizes),
//!   WBIC and Tr(H) after the measured epochs.
//! * `s2-smoothing`: NGD over α (ε fixed) and over ε (α fixed).
//! * `s3-split`: SGD for `pre_epochs` (measured every epoch), then from its final weights: SGD
//!   at the same lr, SGD at a raised lr (the control) and NGD at each lr of a grid.
//! * `a-overfit`: a small training subset, many epochs, measured along the way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use slt_datasets::{DatasetKind, SplitOptions};
use slt_models::ModelSpec;
use slt_stats::decision::Levels;

use crate::config::{OptimizerConfig, TrainConfig};
use crate::measure::{MeasureConfig, Measurement};

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
    /// Datasets of the grid.
    pub datasets: Vec<DatasetKind>,
    /// Models of the grid, smallest first (the last gets the spectrum runs).
    pub models: Vec<ModelSpec>,
    /// Seeds of every cell and arm (distinct).
    pub seeds: Vec<u64>,
    /// Training epochs of every run.
    pub epochs: usize,
    /// Names of entries of [`Profile::arms`]; the first is the SGD reference.
    pub arms: Vec<String>,
    /// Keep only this many training examples (chosen by seed; all if absent).
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
    /// Dataset of the side arm's cell (one of `s1.datasets`).
    pub dataset: DatasetKind,
    /// Model of the side arm's cell (one of `s1.models`).
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
    /// Dataset of every run of the suite.
    pub dataset: DatasetKind,
    /// Model of every run of the suite.
    pub model: ModelSpec,
    /// Seeds of every sweep value (distinct).
    pub seeds: Vec<u64>,
    /// Training epochs of every run.
    pub epochs: usize,
    /// The natural-gradient arms (exact NGD, online NGD or K-FAC) whose α and ε are varied.
    pub arms: Vec<String>,
    /// Smoothing exponents α, swept at each arm's ε.
    pub alphas: Vec<f64>,
    /// ε values (the floor of the smoothing), swept at each arm's α.
    pub fisher_epsilons: Vec<f64>,
    /// Measure every this many epochs (and after the last) instead of `measure.every`.
    #[serde(default)]
    pub measure_every: Option<usize>,
    /// Keep only this many training examples (chosen by seed; all if absent).
    #[serde(default)]
    pub train_subset: Option<usize>,
}

/// Suite 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    /// Dataset of every run of the suite.
    pub dataset: DatasetKind,
    /// Model of every run of the suite.
    pub model: ModelSpec,
    /// Seeds: one pre-split run and its branches per seed (distinct).
    pub seeds: Vec<u64>,
    /// SGD epochs before the split (the parent run).
    pub pre_epochs: usize,
    /// Epochs of each branch after the split.
    pub post_epochs: usize,
    /// The SGD arm (before and after the split).
    pub sgd_arm: String,
    /// The raised SGD lr of the control branch.
    pub sgd_lr_control: f64,
    /// The NGD arm continued after the split, at each lr of `ngd_lrs`.
    pub ngd_arm: String,
    /// Learning rates of the NGD branches (claim 3's lr effect is the slope over them).
    pub ngd_lrs: Vec<f64>,
    /// Keep only this many training examples (chosen by seed; all if absent).
    #[serde(default)]
    pub train_subset: Option<usize>,
}

/// The appendix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AOverfit {
    /// Dataset of every run.
    pub dataset: DatasetKind,
    /// Model of every run.
    pub model: ModelSpec,
    /// Seeds, one run each (distinct).
    pub seeds: Vec<u64>,
    /// Training epochs (many, so that the model overfits).
    pub epochs: usize,
    /// The arm (a name in [`Profile::arms`]) that trains.
    pub arm: String,
    /// Training examples kept (small, so that the model overfits).
    pub train_subset: usize,
    /// Validation examples kept (all of the validation set if absent).
    #[serde(default)]
    pub val_subset: Option<usize>,
    /// Measure every this many epochs.
    pub every: usize,
}

/// A profile: the scale of every suite, read from `experiments/profiles/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (`smoke`, `quick`, `paper`, …).
    pub name: String,
    /// One line on what the profile is for (printed in the report).
    pub description: String,
    /// How each arm's learning rate was chosen (printed in the report).
    pub lr_rule: String,
    /// Examples per minibatch of every run.
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
    /// Suite 1, SGD vs NGD across model sizes.
    pub s1: S1,
    /// Suite 2, the Fisher-smoothing sweeps.
    pub s2: S2,
    /// Suite 3, the split runs.
    pub s3: S3,
    /// The appendix, overfitting.
    pub a_overfit: AOverfit,
    /// The statistical design: primary tests, levels, margins (declared before the runs).
    pub analysis: AnalysisPlan,
    /// Findings about the measurement protocols that the report must state (with their source).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The `experiments/` folder of this workspace (this crate sits in `crates/runs/`).
fn experiments_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().and_then(Path::parent).unwrap_or(here).join("experiments")
}

/// The directory of the shipped profiles, `experiments/profiles`.
pub fn profiles_dir() -> PathBuf {
    experiments_dir().join("profiles")
}

/// The default results directory, `experiments/results`.
pub fn default_results_dir() -> PathBuf {
    experiments_dir().join("results")
}

/// One run of a suite, with what the report needs to place it.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// The suite's name, one of [`SUITES`].
    pub suite: &'static str,
    /// Arm or branch name (`sgd`, `ngd`, `ngd-online`, `sgd-same-lr`, `sgd-high-lr`, `ngd`).
    pub label: String,
    /// The full configuration of the run (its id and folder follow from it).
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
        self.arms.get(name).with_context(|| {
            format!("arm '{name}' is not defined in \"arms\" (defined: {:?})", self.arms.keys().collect::<Vec<_>>())
        })
    }

    /// Checks that every referenced arm exists and every setting is in range.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.measure.validate()?;
        for (name, arm) in &self.arms {
            arm.validate().with_context(|| format!("arm '{name}'"))?;
        }
        for name in
            self.s1.arms.iter().chain(&self.s2.arms).chain([&self.s3.sgd_arm, &self.s3.ngd_arm, &self.a_overfit.arm])
        {
            self.arm(name)?;
        }
        for arm in &self.s2.arms {
            anyhow::ensure!(
                !matches!(self.arm(arm)?, OptimizerConfig::Sgd(_)),
                "s2.arms: '{arm}' is an SGD arm; the smoothing sweep needs ngd, ngd-online or kfac arms"
            );
        }
        for (name, seeds) in [
            ("s1", &self.s1.seeds),
            ("s2", &self.s2.seeds),
            ("s3", &self.s3.seeds),
            ("a_overfit", &self.a_overfit.seeds),
        ] {
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
            anyhow::ensure!(
                self.s1.arms.contains(&p.reference),
                "s1.precision.reference '{}' is not one of s1.arms",
                p.reference
            );
            for arm in p.arms.iter().chain([&p.reference]) {
                anyhow::ensure!(
                    matches!(self.arm(arm)?, OptimizerConfig::NgdOnline(_)),
                    "s1.precision: '{arm}' must be an online-NGD (ngd-online) arm"
                );
                anyhow::ensure!(
                    !self.s1.arms[1..].contains(arm) || arm == &p.reference,
                    "s1.precision.arms: '{arm}' is already an arm of suite 1"
                );
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
        anyhow::ensure!(
            self.s2.arms.contains(&a.claim2.arm),
            "analysis.claim2.arm '{}' is not one of s2.arms {:?}",
            a.claim2.arm,
            self.s2.arms
        );
        anyhow::ensure!(
            self.s3.ngd_lrs.contains(&a.claim3.ngd_lr),
            "analysis.claim3.ngd_lr {} is not one of s3.ngd_lrs {:?}",
            a.claim3.ngd_lr,
            self.s3.ngd_lrs
        );
        anyhow::ensure!(
            matches!(self.arm(&self.s3.sgd_arm)?, OptimizerConfig::Sgd(_)),
            "s3.sgd_arm must be an SGD arm"
        );
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

    fn base(
        &self,
        dataset: DatasetKind,
        model: ModelSpec,
        seed: u64,
        epochs: usize,
        subset: Option<usize>,
    ) -> TrainConfig {
        TrainConfig {
            dataset,
            model,
            optimizer: OptimizerConfig::Sgd(Default::default()),
            epochs,
            batch_size: self.batch_size,
            seed,
            split: SplitOptions { train_subset: subset, val_subset: None, val_from_train: None, seed },
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
                let cells = s
                    .datasets
                    .iter()
                    .flat_map(|&d| s.models.iter().flat_map(move |&m| s.arms.iter().map(move |a| (d, m, a))));
                for (dataset, model, arm) in cells.chain(side) {
                    for &seed in &s.seeds {
                        let mut c = self.base(dataset, model, seed, s.epochs, s.train_subset);
                        c.optimizer = self.optimizer_for(self.arm(arm)?, model, seed);
                        if s.validated_models.as_ref().is_some_and(|ms| !ms.contains(&model)) {
                            if let Some(m) = c.measure.as_mut() {
                                m.validated = None;
                            }
                        }
                        // The report's spectra: the reference and the first other arm on the
                        // first dataset, largest model, first seed.
                        let spectrum_cell = Some(&dataset) == s.datasets.first()
                            && Some(&model) == s.models.last()
                            && Some(&seed) == s.seeds.first()
                            && s.arms.iter().take(2).any(|a| a == arm);
                        if let (true, Some(m)) = (spectrum_cell, c.measure.as_mut()) {
                            m.spectrum_at_end = true;
                        }
                        out.push(PlannedRun { suite: "s1-sgd-vs-ngd", label: arm.clone(), config: c });
                    }
                }
            }
            "s2-smoothing" => {
                let s = &self.s2;
                for arm in &s.arms {
                    let base = self.arm(arm)?;
                    let variants = s
                        .alphas
                        .iter()
                        .map(|&a| (Sweep::Alpha, a))
                        .chain(s.fisher_epsilons.iter().map(|&e| (Sweep::Epsilon, e)));
                    for (sweep, value) in variants {
                        let o = with_smoothing(base, sweep, value);
                        for &seed in &s.seeds {
                            let mut c = self.base(s.dataset, s.model, seed, s.epochs, s.train_subset);
                            c.optimizer = self.optimizer_for(&o, s.model, seed);
                            if let (Some(every), Some(m)) = (s.measure_every, c.measure.as_mut()) {
                                m.every = every;
                            }
                            out.push(PlannedRun {
                                suite: "s2-smoothing",
                                label: s2_label(arm, sweep, value),
                                config: c,
                            });
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
                        out.push(child(s3_ngd_label(lr), o));
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
fn with_smoothing(arm: &OptimizerConfig, sweep: Sweep, value: f64) -> OptimizerConfig {
    use Sweep;
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

/// The label suite 2 gives a run of `arm` in `sweep` at `value`.
pub fn s2_label(arm: &str, sweep: Sweep, value: f64) -> String {
    format!("{arm} {}={value:e}", sweep.name())
}

/// The label suite 3 gives an NGD branch at `lr`.
pub fn s3_ngd_label(lr: f64) -> String {
    format!("ngd-lr={lr:e}")
}

/// The label of suite 3's control branch.
pub fn s3_control_label(profile: &Profile) -> String {
    format!("sgd-lr={:e}", profile.s3.sgd_lr_control)
}

// The statistical design.

/// The quantity a test is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuantityKind {
    /// λ̂ (under the protocol being evaluated).
    Llc,
    /// Tr(H) by Hutchinson.
    Trace,
    /// n·E_β\[L\] (the WBIC at nβ = n/ln n).
    NExpectedLoss,
}

/// The two λ̂ protocols every verdict is reported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The paper's SGLD settings, at the profile's SGLD step `k` (k = 0 is the paper's).
    Paper(usize),
    /// The calibrated protocol whose λ̂ the estimator's diagnostics accept; estimates that fail
    /// a diagnostic are missing samples.
    Validated,
}

/// A quantity under a protocol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    /// What is read (λ̂, Tr(H) or n·E_β\[L\]).
    pub kind: QuantityKind,
    /// Under which λ̂ protocol (irrelevant for Tr(H)).
    pub protocol: Protocol,
}

impl Quantity {
    /// The value at a measurement (`None` if not measured, or failed under `Validated`).
    pub fn of(&self, m: &Measurement) -> Option<f64> {
        let point = match self.protocol {
            Protocol::Paper(k) => m.llc.get(k),
            Protocol::Validated => m.validated.as_ref().filter(|p| p.passed()),
        };
        match self.kind {
            QuantityKind::Trace => Some(m.trace_h).filter(|v| v.is_finite()),
            QuantityKind::Llc => point.and_then(|p| p.llc_mean),
            QuantityKind::NExpectedLoss => point.and_then(|p| p.n_expected_loss),
        }
    }

    /// A name for tables.
    pub fn name(&self, steps: &[f64]) -> String {
        let protocol = match self.protocol {
            Protocol::Paper(k) => format!("paper protocol, SGLD {:e}", steps.get(k).copied().unwrap_or(f64::NAN)),
            Protocol::Validated => "validated protocol".into(),
        };
        match self.kind {
            QuantityKind::Trace => "Tr(H)".into(),
            QuantityKind::Llc => format!("λ̂ ({protocol})"),
            QuantityKind::NExpectedLoss => format!("n·E_β[L] ({protocol})"),
        }
    }
}

/// Where in a run a quantity is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The last epoch.
    Final,
    /// The first measured epoch whose training loss is at or below the dataset's target.
    Matched,
}

/// The α or the ε sweep of suite 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sweep {
    /// The smoothing exponent α, at fixed ε.
    Alpha,
    /// The smoothing floor ε, at fixed α.
    Epsilon,
}

impl Sweep {
    /// The short name used in run labels and tables (`alpha`, `eps`).
    pub fn name(&self) -> &'static str {
        match self {
            Sweep::Alpha => "alpha",
            Sweep::Epsilon => "eps",
        }
    }
}

/// Claim 1's primary test: `arm` vs the suite's reference (first) arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim1Plan {
    /// The arm compared with the reference (one of `s1.arms` after the first).
    pub arm: String,
    /// The quantity compared (the claim: the arm's is higher).
    pub quantity: QuantityKind,
    /// Where in each run it is read.
    pub basis: Basis,
}

/// Claim 2's primary test: the per-seed slope of relative λ̂ on log₁₀(smoothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim2Plan {
    /// The swept arm (one of `s2.arms`).
    pub arm: String,
    /// Which sweep the primary test reads.
    pub sweep: Sweep,
    /// The quantity regressed (the claim: it falls as smoothing grows).
    pub quantity: QuantityKind,
    /// Where in each run it is read.
    pub basis: Basis,
}

/// Claim 3's primary tests: the rise at `ngd_lr`, the lr effect, and the control's margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim3Plan {
    /// The NGD branch's lr whose rise is the primary test (one of `s3.ngd_lrs`).
    pub ngd_lr: f64,
    /// The quantity whose relative change from the split is compared.
    pub quantity: QuantityKind,
    /// Where in each branch it is read.
    pub basis: Basis,
    /// Non-superiority margin of the control, as a relative change of the quantity.
    pub control_margin: f64,
}

/// Claim 4's primary test: per-seed Spearman ρ(quantity, validation loss) while overfitting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim4Plan {
    /// The quantity correlated with the validation loss (the claim: ρ > 0).
    pub quantity: QuantityKind,
}

/// The statistical design of a profile, declared before its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisPlan {
    /// Significance level α of every one-sided test, in (0, 0.5).
    pub alpha: f64,
    /// Power at which detectable effects are stated, in (0.5, 1).
    pub power: f64,
    /// The relative effect the design must be able to detect (stated next to each test's
    /// detectable effect).
    pub effect_of_interest: f64,
    /// Arms whose mean training losses differ by more than this factor are confounded by
    /// convergence: a test on the final epoch cannot decide.
    pub confound_ratio: f64,
    /// A test with more than this share of its planned samples missing cannot decide.
    pub max_missing_share: f64,
    /// Training-loss target of matched-convergence comparisons, per dataset name.
    pub matched_train_loss: BTreeMap<String, f64>,
    /// Claim 1: the arm's quantity exceeds the SGD reference's (suite 1).
    pub claim1: Claim1Plan,
    /// Claim 2: the quantity falls as the Fisher smoothing grows (suite 2).
    pub claim2: Claim2Plan,
    /// Claim 3: switching from SGD to NGD raises the quantity, more at a larger lr, while a
    /// raised SGD lr does not (suite 3).
    pub claim3: Claim3Plan,
    /// Claim 4: the quantity rises with the validation loss while a model overfits (appendix).
    pub claim4: Claim4Plan,
}

impl AnalysisPlan {
    /// The design's levels: `alpha`, `power`, and at least three samples per primary test.
    pub fn levels(&self) -> Levels {
        Levels { alpha: self.alpha, power: self.power, min_samples: 3 }
    }

    /// Checks ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.alpha > 0.0 && self.alpha < 0.5, "analysis.alpha must be in (0, 0.5)");
        anyhow::ensure!(self.power > 0.5 && self.power < 1.0, "analysis.power must be in (0.5, 1)");
        anyhow::ensure!(self.confound_ratio > 1.0, "analysis.confound_ratio must exceed 1");
        anyhow::ensure!((0.0..1.0).contains(&self.max_missing_share), "analysis.max_missing_share must be in [0, 1)");
        anyhow::ensure!(self.claim3.control_margin > 0.0, "analysis.claim3.control_margin must be positive");
        anyhow::ensure!(self.effect_of_interest > 0.0, "analysis.effect_of_interest must be positive");
        Ok(())
    }

    /// The matched-convergence training-loss target of dataset `dataset` (by name), if set.
    pub fn target(&self, dataset: &str) -> Option<f64> {
        self.matched_train_loss.get(dataset).copied()
    }
}
