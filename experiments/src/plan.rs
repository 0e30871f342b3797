//! A reproduction planned without running it (`reproduce-all --dry-run`): the runs of each
//! suite and how many the results folder already holds finished (never recomputed) or partly
//! trained (resumed), the work the rest needs — training steps, SGLD steps, Hessian-vector
//! products, forward passes — counted from the profile the way [`crate::train`] and
//! [`crate::measure`] spend it, and the wall time to expect, from the cost of each kind of unit
//! measured on the chosen backend, on this machine, right then (a few steps of each on synthetic
//! batches of the profile's shapes).
//!
//! The counts are exact for training steps and forward passes. Two are upper bounds: Hutchinson
//! stops once Tr(H) has a 1 % standard error (at least 10 probes), Lanczos when its Ritz values
//! converge; and the validated λ̂ protocol, measured at the last epoch and at the first epoch
//! that reaches the matched-convergence loss, is counted as if every run reached it before its
//! last epoch. A run that diverges stops early; it is counted in full.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use slt_datasets::Dataset;
use slt_estimators::{InitLoss, SgldConfig};
use slt_models::ModelSpec;

use crate::config::OptimizerConfig;
use crate::records::{load_finished, EpochMetrics, Stored};
use crate::reproduce::{plan, shard_of, PlannedRun, ReproduceOptions, SUITES};
use crate::BackendKind;

/// An optimiser setting as far as the cost of a step goes: its settings less those that change
/// the numbers a step computes but not how many (learning rate, smoothing, seed, momentum).
#[derive(Debug, Clone)]
pub struct CostClass {
    key: String,
    config: OptimizerConfig,
}

impl CostClass {
    /// Keys of an optimiser's settings that do not change the work of a step.
    const VALUE_ONLY: [&'static str; 13] = [
        "lr",
        "seed",
        "alpha",
        "fisher_eps",
        "epsilon",
        "eta",
        "delta",
        "decay",
        "momentum",
        "nesterov",
        "weight_decay",
        "normalize",
        "fixed_step",
    ];

    pub fn of(config: &OptimizerConfig) -> Self {
        let mut value = serde_json::to_value(config).expect("an optimiser configuration serialises");
        if let Some(map) = value.as_object_mut() {
            for key in Self::VALUE_ONLY {
                map.remove(key);
            }
        }
        Self { key: value.to_string(), config: config.clone() }
    }

    /// The first of `arms` (by name) in this class, else the optimiser's kind.
    fn label(&self, arms: &BTreeMap<String, OptimizerConfig>) -> String {
        arms.iter()
            .find(|(_, a)| CostClass::of(a).key == self.key)
            .map_or_else(|| self.config.name().to_string(), |(name, _)| name.clone())
    }
}

impl PartialEq for CostClass {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for CostClass {}
impl PartialOrd for CostClass {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for CostClass {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// A unit of work whose cost is measured once for each distinct value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// One optimiser step on a batch, its assembly included.
    Train { model: String, optimizer: CostClass, batch: usize },
    /// One SGLD step of one chain.
    Sgld { model: String, batch: usize, mala: bool },
    /// One Hessian-vector product on an evaluation set of `examples`.
    Hvp { model: String, examples: usize },
    /// One example through the model without gradients (validation, L(w*) of a λ̂ estimate).
    Forward { model: String },
}

/// The four kinds of [`Unit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Train,
    Sgld,
    Hvp,
    Forward,
}

impl Unit {
    pub fn kind(&self) -> Kind {
        match self {
            Unit::Train { .. } => Kind::Train,
            Unit::Sgld { .. } => Kind::Sgld,
            Unit::Hvp { .. } => Kind::Hvp,
            Unit::Forward { .. } => Kind::Forward,
        }
    }

    fn model(&self) -> &str {
        match self {
            Unit::Train { model, .. }
            | Unit::Sgld { model, .. }
            | Unit::Hvp { model, .. }
            | Unit::Forward { model } => model,
        }
    }
}

/// How many of each unit some runs need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Work(BTreeMap<Unit, u64>);

impl Work {
    fn add(&mut self, unit: Unit, count: u64) {
        if count > 0 {
            *self.0.entry(unit).or_default() += count;
        }
    }

    pub fn merge(&mut self, other: &Work) {
        for (unit, &count) in &other.0 {
            self.add(unit.clone(), count);
        }
    }

    /// The units of `kind`, summed.
    pub fn total(&self, kind: Kind) -> u64 {
        self.0.iter().filter(|(u, _)| u.kind() == kind).map(|(_, c)| c).sum()
    }

    pub fn units(&self) -> impl Iterator<Item = (&Unit, u64)> {
        self.0.iter().map(|(u, &c)| (u, c))
    }

    /// Seconds at `costs` (seconds per unit).
    pub fn seconds(&self, costs: &BTreeMap<Unit, f64>) -> f64 {
        self.0.iter().map(|(u, &c)| c as f64 * costs.get(u).copied().unwrap_or(0.0)).sum()
    }

    fn seconds_of(&self, kind: Kind, costs: &BTreeMap<Unit, f64>) -> f64 {
        self.0
            .iter()
            .filter(|(u, _)| u.kind() == kind)
            .map(|(u, &c)| c as f64 * costs.get(u).copied().unwrap_or(0.0))
            .sum()
    }

    /// One λ̂ estimate with `sgld` on a model with `n` training examples: the chains' steps and
    /// the forward passes of L(w*).
    fn add_estimate(&mut self, model: &str, sgld: &SgldConfig, n: usize) {
        let sgld_unit = Unit::Sgld { model: model.to_string(), batch: sgld.batch_size.min(n), mala: sgld.mala };
        self.add(sgld_unit, (sgld.num_chains * sgld.steps_per_chain()) as u64);
        let init = match sgld.init_loss {
            InitLoss::FullDataset => n,
            InitLoss::FirstBatches(k) => k * sgld.batch_size.min(n),
        };
        self.add(Unit::Forward { model: model.to_string() }, init as u64);
    }
}

/// The work `planned` still needs after the epochs in `done` (the rows of its `metrics.jsonl`,
/// from which it resumes).
pub fn work_of_run(planned: &PlannedRun, done: &[EpochMetrics]) -> Work {
    let c = &planned.config;
    let model = c.model.to_string();
    let (n_train, n_val) = c.split.sizes(c.dataset.published_sizes());
    let mut work = Work::default();
    let remaining = c.epochs.saturating_sub(done.len());
    let steps_per_epoch = n_train.div_ceil(c.batch_size);
    let train = Unit::Train { model: model.clone(), optimizer: CostClass::of(&c.optimizer), batch: c.batch_size };
    work.add(train, (remaining * steps_per_epoch) as u64);
    let evaluated = n_val + if c.eval_train { n_train } else { 0 };
    work.add(Unit::Forward { model: model.clone() }, (remaining * evaluated) as u64);
    let Some(m) = &c.measure else { return work };
    let hvp = Unit::Hvp { model: model.clone(), examples: m.hessian_batches * m.hessian_batch_size };
    let d = c.model.num_params();
    // The validated protocol: calibrated (if at all) at its first estimate, due at the last epoch
    // and at the first that reaches the matched loss (counted as reached before the last).
    let mut calibrated = done.iter().any(|r| r.measurement.as_ref().is_some_and(|m| m.validated.is_some()));
    let mut matched_pending = m
        .validated
        .as_ref()
        .and_then(|v| v.matched_train_loss)
        .is_some_and(|target| done.iter().all(|r| r.train_loss > target));
    for epoch in done.len() + 1..=c.epochs {
        if !m.measures(epoch, c.epochs) {
            continue;
        }
        // The gradient at the point, then the Hutchinson probes.
        work.add(hvp.clone(), 1 + crate::measure::trace_options(m, 0).max_probes as u64);
        for &step in &m.sgld_steps {
            work.add_estimate(&model, &SgldConfig { step_size: step, ..m.sgld.clone() }, n_train);
        }
        let Some(v) = &m.validated else { continue };
        let due = v.every_measured_epoch || epoch == c.epochs || (matched_pending && epoch < c.epochs);
        if !due {
            continue;
        }
        if !v.every_measured_epoch && epoch < c.epochs {
            matched_pending = false;
        }
        if let (Some(grid), false) = (&v.calibration, calibrated) {
            let short = SgldConfig { num_draws: grid.draws, ..v.sgld.clone() };
            for _ in 0..grid.step_sizes.len() * grid.localizations.len() {
                work.add_estimate(&model, &short, n_train);
            }
        }
        calibrated = true;
        work.add_estimate(&model, &v.sgld, n_train);
    }
    if m.spectrum_at_end && remaining > 0 {
        let (lanczos, slq) = crate::measure::spectrum_options(0);
        let products = lanczos.max_steps.max(lanczos.k).min(d) + slq.probes * slq.steps.min(d);
        work.add(hvp, products as u64);
    }
    work
}

/// Where a planned run stands in the results folder.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Finished (or diverged) and sealed: reused, never recomputed.
    Finished,
    /// Interrupted after some epochs: resumes after the last.
    Partial(Vec<EpochMetrics>),
    /// Absent, or damaged (retrained from the start).
    ToTrain,
}

/// The status of `planned` under `results`.
pub fn status_of(planned: &PlannedRun, results: &std::path::Path) -> anyhow::Result<Status> {
    Ok(match load_finished(planned, results)? {
        Stored::Finished(_) => Status::Finished,
        Stored::Damaged { .. } => Status::ToTrain,
        Stored::Absent => {
            let dir = planned.dir(results);
            let metrics = dir.join(crate::records::METRICS_FILE);
            let config = dir.join(crate::records::CONFIG_FILE);
            let resumable = crate::checkpoint::path(&dir).exists()
                && crate::store::read_json::<crate::config::TrainConfig>(&config).is_ok_and(|c| c == planned.config);
            match resumable.then(|| crate::store::read_jsonl::<EpochMetrics>(&metrics)) {
                Some(Ok(rows)) if !rows.is_empty() && rows.len() <= planned.config.epochs => Status::Partial(rows),
                _ => Status::ToTrain,
            }
        }
    })
}

/// Seconds per call of `f`: two calls to warm up, then five blocks of calls, each until
/// `budget / 5` seconds have passed (at least `min / 5` calls, at most `max / 5`); the median
/// block, so that a burst of other work on the machine moves it little.
fn seconds_per_call(
    budget: f64,
    min: usize,
    max: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    f()?;
    f()?;
    let mut blocks = Vec::with_capacity(BLOCKS);
    for _ in 0..BLOCKS {
        let started = Instant::now();
        let mut calls = 0;
        while calls < (max / BLOCKS).max(1)
            && (calls < (min / BLOCKS).max(1) || started.elapsed().as_secs_f64() < budget / BLOCKS as f64)
        {
            f()?;
            calls += 1;
        }
        blocks.push(started.elapsed().as_secs_f64() / calls as f64);
    }
    Ok(median(blocks))
}

/// Timed blocks per measurement.
const BLOCKS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` MNIST-shaped examples with arbitrary pixel values and labels (the cost of a step does not
/// depend on them).
fn synthetic(n: usize) -> Dataset {
    let dim = slt_datasets::IMAGE_SIDE * slt_datasets::IMAGE_SIDE;
    let images = (0..n * dim).map(|i| ((i.wrapping_mul(2_654_435_761) % 2001) as f32 / 1000.0) - 1.0).collect();
    let labels = (0..n).map(|i| (i % slt_datasets::NUM_CLASSES) as u8).collect();
    Dataset { images, labels, dim }
}

/// Seconds per unit of `unit` on `B`, measured for about `budget` seconds.
fn measure_unit<B: AutodiffBackend>(unit: &Unit, budget: f64, device: &B::Device) -> anyhow::Result<f64> {
    let spec: ModelSpec = unit.model().parse()?;
    match unit {
        Unit::Train { optimizer, batch, .. } => {
            let data = synthetic(4 * batch);
            let batches = data.epoch_batches(*batch, 0, 0, false);
            let mut config = optimizer.config.clone();
            // Small enough that a few steps on arbitrary data stay finite; the work is the same.
            config.set_lr(1e-6);
            let mut opt = crate::optimizer::AnyOptimizer::<B>::new(&config)?;
            let mut model = Some(spec.init::<B>(0, device));
            let mut i = 0;
            seconds_per_call(budget, 5, 500, || {
                let batch = data.batch::<B>(&batches[i % batches.len()], device);
                i += 1;
                let (next, _) = opt.step(model.take().expect("a model between steps"), &batch)?;
                model = Some(next);
                Ok(())
            })
        }
        Unit::Sgld { batch, mala, .. } => {
            let data = synthetic(4 * batch);
            let model = spec.init::<B>(0, device);
            let per_step = |draws: usize| -> anyhow::Result<f64> {
                let config = SgldConfig {
                    step_size: 1e-7,
                    num_chains: 1,
                    num_burnin: 0,
                    num_draws: draws,
                    thin: 1,
                    batch_size: *batch,
                    mala: *mala,
                    init_loss: InitLoss::FirstBatches(1),
                    ..SgldConfig::default()
                };
                let e = crate::measure::llc_of_classifier::<B>(&model, &data, &config, device, false)?;
                Ok(e.seconds / draws as f64)
            };
            let first = per_step(4)?;
            let draws = ((budget / BLOCKS as f64 / first.max(1e-9)) as usize).clamp(4, 2000);
            Ok(median((0..BLOCKS).map(|_| per_step(draws)).collect::<anyhow::Result<Vec<f64>>>()?))
        }
        Unit::Hvp { examples, .. } => {
            use slt_hessian::SymmetricOperator;
            let data = synthetic(*examples);
            let eval = crate::measure::hessian_eval_set::<B::InnerBackend>(&data, 1, *examples, 0, device)?;
            let model = spec.init::<B::InnerBackend>(0, device);
            let hvp = crate::measure::hessian_operator(&model, eval)?;
            let v: Vec<f64> = (0..hvp.dim()).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
            seconds_per_call(budget, 5, 500, || {
                hvp.apply(&v)?;
                Ok(())
            })
        }
        Unit::Forward { .. } => {
            const N: usize = 2000;
            let data = synthetic(N);
            let model = spec.init::<B>(0, device).valid();
            let per_pass = seconds_per_call(budget, 5, 100, || {
                crate::train::evaluate(&model, &data, 1000, device);
                Ok(())
            })?;
            Ok(per_pass / N as f64)
        }
    }
}

/// `unit` timed by `copies` threads at once, each for about `budget` seconds.
fn measure_copies<B: AutodiffBackend>(
    unit: &Unit,
    budget: f64,
    copies: usize,
    device: &B::Device,
) -> anyhow::Result<Vec<f64>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..copies.max(1))
            .map(|_| {
                let device = device.clone();
                scope.spawn(move || measure_unit::<B>(unit, budget, &device))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a timing thread does not panic")).collect()
    })
}

/// Seconds per unit of every unit of `work` on `backend`, each timed by `copies` threads at once
/// (as that many jobs would run them: they share the cores, caches and memory bandwidth) and
/// averaged over them; `progress` sees each unit before it is timed.
pub fn measure_costs(
    backend: BackendKind,
    work: &Work,
    budget: f64,
    copies: usize,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<BTreeMap<Unit, f64>> {
    let units: Vec<Unit> = work.units().map(|(u, _)| u.clone()).collect();
    crate::with_backend!(backend, |B, device| {
        let mut costs = BTreeMap::new();
        for (i, unit) in units.iter().enumerate() {
            progress(i, units.len());
            let times =
                measure_copies::<B>(unit, budget, copies, &device).with_context(|| format!("timing {unit:?}"))?;
            costs.insert(unit.clone(), times.iter().sum::<f64>() / times.len() as f64);
        }
        Ok::<_, anyhow::Error>(costs)
    })
}

/// Wall seconds of phases of runs (each a list of serial seconds in plan order) on `workers`
/// workers: each run goes to the worker free first; a phase starts when the previous has ended.
pub fn makespan(phases: &[Vec<f64>], workers: usize) -> f64 {
    phases
        .iter()
        .map(|runs| {
            let mut free = vec![0.0f64; workers.max(1)];
            for &s in runs {
                let first = free.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("at least one worker");
                *first += s;
            }
            free.into_iter().fold(0.0, f64::max)
        })
        .sum()
}

/// Runs at once with `jobs` jobs on this machine: more than its cores only take turns.
pub fn workers(jobs: usize) -> usize {
    jobs.clamp(1, std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// One planned run with where it stands and what it still needs.
struct Planned {
    run: PlannedRun,
    status: Status,
    work: Work,
}

/// The dry run: plan, status, work, and (when anything is left) measured costs.
pub struct DryRun {
    profile: String,
    description: String,
    backend: BackendKind,
    results: std::path::PathBuf,
    suites: Vec<&'static str>,
    /// Runs of the selected suites (every shard).
    all: Vec<Planned>,
    /// Indices into `all` of the runs of each shard (one entry without `--shard`).
    shards: Vec<Vec<usize>>,
    shard: Option<(usize, usize)>,
    jobs: usize,
    cores: usize,
    arms: BTreeMap<String, OptimizerConfig>,
    costs: BTreeMap<Unit, f64>,
    measuring_seconds: f64,
    budget: f64,
    /// The 1-minute load average when the timing began, where the system tells it.
    load: Option<String>,
}

/// Plans `options` (its shard, suites and jobs) without training, measuring the cost of each kind
/// of unit for about `budget` seconds; `progress` sees the timing of each unit.
pub fn dry_run(
    options: &ReproduceOptions,
    suites: &[&str],
    budget: f64,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<DryRun> {
    let planned = plan(&options.profile, suites)?;
    let all: Vec<Planned> = planned
        .iter()
        .map(|run| {
            let status = status_of(run, &options.results_dir)?;
            let work = match &status {
                Status::Finished => Work::default(),
                Status::Partial(rows) => work_of_run(run, rows),
                Status::ToTrain => work_of_run(run, &[]),
            };
            Ok(Planned { run: run.clone(), status, work })
        })
        .collect::<anyhow::Result<_>>()?;
    let position: std::collections::HashMap<(&str, String), usize> =
        all.iter().enumerate().map(|(i, p)| ((p.run.suite, p.run.config.run_id()), i)).collect();
    let index = |runs: Vec<PlannedRun>| -> Vec<usize> {
        runs.iter().map(|r| position[&(r.suite, r.config.run_id())]).collect()
    };
    let shards = match options.shard {
        Some((_, n)) => (0..n).map(|k| index(shard_of(planned.clone(), (k, n)))).collect(),
        None => vec![(0..all.len()).collect()],
    };
    let mut total = Work::default();
    for p in &all {
        total.merge(&p.work);
    }
    // Other work on the machine slows what is timed: say how busy it was (Linux).
    let load =
        std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(String::from));
    let started = Instant::now();
    let costs = if total.units().next().is_some() {
        crate::backend::check_available(options.backend)?;
        measure_costs(options.backend, &total, budget, workers(options.jobs), progress)?
    } else {
        BTreeMap::new()
    };
    let suites: Vec<&'static str> =
        SUITES.iter().map(|s| s.0).filter(|s| suites.is_empty() || suites.contains(s)).collect();
    Ok(DryRun {
        profile: options.profile.name.clone(),
        description: options.profile.description.clone(),
        backend: options.backend,
        results: options.results_dir.clone(),
        suites,
        all,
        shards,
        shard: options.shard,
        jobs: options.jobs.max(1),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        arms: options.profile.arms.clone(),
        costs,
        measuring_seconds: started.elapsed().as_secs_f64(),
        budget,
        load,
    })
}

/// `n` with thousands separated by commas.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: `2 d 3 h`, `3 h 12 min`, `4 min 05 s`, `12.3 s`, `850 ms`.
pub fn human(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 1.0 {
        return format!("{:.0} ms", 1e3 * s);
    }
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let total = s.round() as u64;
    let (d, h, m, sec) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {sec:02} s")
    }
}

/// A cost per unit for people.
fn per_unit(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 1e-3 {
        format!("{:.2} ms", 1e3 * seconds)
    } else {
        format!("{:.2} µs", 1e6 * seconds)
    }
}

impl DryRun {
    /// The selected runs (the shard's, or all).
    fn selected(&self) -> &[usize] {
        &self.shards[self.shard.map_or(0, |(i, _)| i)]
    }

    /// Serial seconds of run `i`.
    fn run_seconds(&self, i: usize) -> f64 {
        self.all[i].work.seconds(&self.costs)
    }

    /// Wall seconds of the runs `runs` with `jobs` jobs here: parents, then split runs.
    fn wall(&self, runs: &[usize], jobs: usize) -> f64 {
        let (parents, children): (Vec<usize>, Vec<usize>) =
            runs.iter().partition(|&&i| self.all[i].run.config.start_from.is_none());
        let phase = |ids: Vec<usize>| ids.into_iter().map(|i| self.run_seconds(i)).collect::<Vec<f64>>();
        makespan(&[phase(parents), phase(children)], jobs.clamp(1, self.cores))
    }

    /// Runs still to train (partly trained included) among `runs`.
    fn to_train(&self, runs: &[usize]) -> usize {
        runs.iter().filter(|&&i| self.all[i].status != Status::Finished).count()
    }

    /// The report printed by `--dry-run`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let selected = self.selected();
        let _ = writeln!(
            out,
            "Dry run of profile `{}` ({}) on backend {}, results in {}: nothing is trained or written.\n",
            self.profile,
            self.description,
            self.backend,
            self.results.display()
        );
        let shard_note = match self.shard {
            Some((i, n)) => format!(" of shard {i}/{n}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "Runs{shard_note} (a finished run is reused, never recomputed; a partly trained one resumes):"
        );
        let _ = writeln!(
            out,
            "  {:<15} {:>8} {:>9} {:>15} {:>9}",
            "suite", "runs", "finished", "partly trained", "to train"
        );
        let mut rows = Vec::new();
        for suite in &self.suites {
            let ids: Vec<usize> = selected.iter().copied().filter(|&i| self.all[i].run.suite == *suite).collect();
            rows.push((suite.to_string(), ids));
        }
        rows.push(("all".to_string(), selected.to_vec()));
        for (name, ids) in rows {
            let count = |f: &dyn Fn(&Status) -> bool| ids.iter().filter(|&&i| f(&self.all[i].status)).count();
            let _ = writeln!(
                out,
                "  {:<15} {:>8} {:>9} {:>15} {:>9}",
                name,
                ids.len(),
                count(&|s| *s == Status::Finished),
                count(&|s| matches!(s, Status::Partial(_))),
                count(&|s| *s == Status::ToTrain) + count(&|s| matches!(s, Status::Partial(_))),
            );
        }
        if let Some((_, n)) = self.shard {
            let sizes: Vec<String> = self.shards.iter().map(|s| s.len().to_string()).collect();
            let _ = writeln!(
                out,
                "  ({} runs in these suites, split into {n} shards of {} runs)",
                self.all.len(),
                sizes.join(", ")
            );
        }
        let mut work = Work::default();
        for &i in selected {
            work.merge(&self.all[i].work);
        }
        let _ = writeln!(out, "\nWork still to do{shard_note}, counted from the profile:");
        let lines = [
            (Kind::Train, "training steps", "epochs × ⌈training examples / batch⌉"),
            (Kind::Sgld, "SGLD steps", "measured epochs × λ̂ estimates × chains × (burn-in + draws × thin)"),
            (
                Kind::Hvp,
                "Hessian-vector products",
                "measured epochs × (1 + probes), + Lanczos and SLQ for spectra; at most",
            ),
            (Kind::Forward, "examples forwarded", "validation set every epoch, L(w*) of every λ̂ estimate"),
        ];
        for (kind, name, how) in lines {
            let _ = writeln!(out, "  {:<24} {:>15}   ({how})", name, grouped(work.total(kind)));
        }
        if self.costs.is_empty() {
            let _ = writeln!(out, "\nNothing left to train: reproduce-all reads the runs and writes the report.");
            return out;
        }
        let workers = self.jobs.clamp(1, self.cores);
        let _ = writeln!(
            out,
            "\nCost per unit, measured on this machine just now ({}, {} at once as --jobs {} runs them, ~{:.1} s per unit on synthetic batches of the profile's shapes, median of {BLOCKS} blocks; {} in all{}):",
            self.backend,
            if workers == 1 { "one copy".to_string() } else { format!("{workers} copies") },
            self.jobs,
            self.budget,
            human(self.measuring_seconds),
            self.load.as_ref().map_or(String::new(), |l| format!("; load average {l} when it began"))
        );
        let mut models: Vec<&str> = self.costs.keys().map(Unit::model).collect();
        models.sort_by_key(|m| (m.parse::<ModelSpec>().map_or(usize::MAX, |s| s.num_params()), m.to_string()));
        models.dedup();
        for model in models {
            let mut train = Vec::new();
            let mut other = Vec::new();
            for (u, &s) in self.costs.iter().filter(|(u, _)| u.model() == model) {
                match u {
                    Unit::Train { optimizer, batch, .. } => {
                        train.push(format!("{} step {} (batch {batch})", optimizer.label(&self.arms), per_unit(s)))
                    }
                    Unit::Sgld { batch, mala, .. } => other.push(format!(
                        "SGLD step {} (batch {batch}{})",
                        per_unit(s),
                        if *mala { ", MALA" } else { "" }
                    )),
                    Unit::Hvp { examples, .. } => other.push(format!("HVP {} ({examples} examples)", per_unit(s))),
                    Unit::Forward { .. } => other.push(format!("forward {}/example", per_unit(s))),
                }
            }
            train.sort();
            let _ = writeln!(out, "  {model}: {}", [train, other].concat().join(", "));
        }
        let serial = work.seconds(&self.costs);
        let share = |kind| 100.0 * work.seconds_of(kind, &self.costs) / serial.max(1e-12);
        let _ = writeln!(out, "\nExpected wall time on this machine ({} cores){shard_note}:", self.cores);
        let _ = writeln!(
            out,
            "  --jobs {}: {} ({} at a time; {} of run time: training {:.0} %, SGLD {:.0} %, Hessian {:.0} %, forward passes {:.0} %)",
            self.jobs,
            human(self.wall(selected, self.jobs)),
            if workers == 1 { "one run".to_string() } else { format!("{workers} runs") },
            human(serial),
            share(Kind::Train),
            share(Kind::Sgld),
            share(Kind::Hvp),
            share(Kind::Forward)
        );
        if let Some(longest) =
            selected.iter().copied().max_by(|&a, &b| self.run_seconds(a).total_cmp(&self.run_seconds(b)))
        {
            let r = &self.all[longest].run;
            let _ = writeln!(
                out,
                "  longest run: {} {} {} seed {}, {} (no number of jobs finishes sooner)",
                r.suite,
                r.config.model,
                r.label,
                r.config.seed,
                human(self.run_seconds(longest))
            );
        }
        let _ = writeln!(
            out,
            "  (runs go to the first free job in plan order, split runs after their parents; not counted: loading the data once, writing each run's files)"
        );
        if let Some((i, n)) = self.shard {
            let walls: Vec<f64> = self.shards.iter().map(|s| self.wall(s, self.jobs)).collect();
            let (slowest, worst) =
                walls.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).expect("at least one shard");
            let _ = writeln!(
                out,
                "  each of the {n} shards on a machine like this one with --jobs {}: shard {i}/{n} {} ({} runs to train); slowest shard {slowest}/{n} {} ({} runs to train); all shards one after the other {}",
                self.jobs,
                human(walls[i]),
                self.to_train(selected),
                human(worst),
                self.to_train(&self.shards[slowest]),
                human(walls.iter().sum())
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reproduce::Profile;

    #[test]
    fn the_smoke_profile_counts_as_the_runs_spend() {
        let profile = Profile::load("smoke").unwrap();
        let runs = plan(&profile, &["s1-sgd-vs-ngd"]).unwrap();
        // 3 arms × 2 seeds + 2 precision arms × 2 seeds, on 256 examples in batches of 64.
        assert_eq!(runs.len(), 10);
        let mut work = Work::default();
        for r in &runs {
            work.merge(&work_of_run(r, &[]));
        }
        assert_eq!(work.total(Kind::Train), 10 * 4);
        // Each run: one measured epoch, two paper-protocol estimates of 1 chain × 10 draws and one
        // validated estimate of 2 chains × (10 + 10) steps.
        assert_eq!(work.total(Kind::Sgld), 10 * (2 * 10 + 2 * 20));
        // 1 + 2 probes per measurement; the two spectrum runs add min(100, d) + 4 × min(80, d).
        assert_eq!(work.total(Kind::Hvp), 10 * 3 + 2 * (100 + 4 * 80));
        // Validation (10,000 examples) and L(w*) on 256 examples per estimate.
        assert_eq!(work.total(Kind::Forward), 10 * (10_000 + 3 * 256));

        // The appendix: 4 epochs of 128 examples, measured at 2 and 4, validated at both.
        let overfit = profile.runs("a-overfit").unwrap();
        let w = work_of_run(&overfit[0], &[]);
        assert_eq!(w.total(Kind::Train), 4 * 2);
        assert_eq!(w.total(Kind::Sgld), 2 * (2 * 10 + 2 * 20));
        assert_eq!(w.total(Kind::Forward), 4 * 256 + 2 * 3 * 128);
    }

    #[test]
    fn a_resumed_run_counts_only_its_remaining_epochs_and_the_matched_epoch_once() {
        let mut profile = Profile::load("smoke").unwrap();
        profile.s1.epochs = 3;
        let run = profile.runs("s1-sgd-vs-ngd").unwrap().remove(0);
        // Epochs 1-3 measured; validated at the matched epoch (counted as epoch 1) and the last.
        let full = work_of_run(&run, &[]);
        assert_eq!(full.total(Kind::Train), 3 * 4);
        assert_eq!(full.total(Kind::Sgld), 3 * 2 * 10 + 2 * 2 * 20);
        let row = |epoch, train_loss| EpochMetrics {
            epoch,
            train_loss,
            train_acc: None,
            val_loss: 1.0,
            val_acc: 0.5,
            update_norm_mean: 1.0,
            grad_norm_mean: 1.0,
            kappa_mean: None,
            conditioning: None,
            steps: 4,
            seconds: 0.1,
            measurement: None,
        };
        // One epoch done above the target (0.3): the matched epoch is still ahead.
        let after_one = work_of_run(&run, &[row(1, 2.0)]);
        assert_eq!(after_one.total(Kind::Train), 2 * 4);
        assert_eq!(after_one.total(Kind::Sgld), 2 * 2 * 10 + 2 * 2 * 20);
        // Below the target already: only the last epoch's validated estimate is left.
        let reached = work_of_run(&run, &[row(1, 0.1)]);
        assert_eq!(reached.total(Kind::Sgld), 2 * 2 * 10 + 2 * 20);
    }

    #[test]
    fn cost_classes_ignore_settings_that_do_not_change_the_work() {
        let profile = Profile::load("paper").unwrap();
        let class = |name: &str| CostClass::of(&profile.arms[name]);
        assert_eq!(class("ngd"), class("ngd-fixed-step"));
        assert_eq!(class("sgd"), class("sgd-overfit"));
        assert_ne!(class("ngd-online"), class("ngd-online-f32"));
        assert_ne!(class("ngd"), class("sgd"));
        assert_eq!(class("ngd-fixed-step").label(&profile.arms), "ngd");
    }

    #[test]
    fn makespan_assigns_runs_to_the_first_free_job_phase_by_phase() {
        assert_eq!(makespan(&[vec![3.0, 1.0, 1.0, 1.0]], 2), 3.0);
        assert_eq!(makespan(&[vec![1.0; 4], vec![2.0]], 2), 4.0);
        assert_eq!(makespan(&[vec![1.0; 4]], 1), 4.0);
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
        assert_eq!(human(3725.0), "1 h 2 min");
        assert_eq!(human(90_000.0), "1 d 1 h");
    }
}
