//! The reproduction: the runs of a [`Profile`]'s suites (the paper's three and its appendix)
//! into `experiments/results/<suite>/<run-id>/`, resumable; the caller writes the report from
//! the records it returns (`slt_report::write`).
//!
//! A run is identified by the hash of its whole configuration (the parent's included for split
//! runs); a finished run is reused after its seal is verified ([`crate::records`]), a damaged
//! one is retrained (saying why), an interrupted one resumes from its last finished epoch.
//! Runs execute in parallel on `jobs` threads (at most one per run). `--shard i/N` keeps every
//! N-th *family* of runs (a parent with its split children), so each shard can run alone.
//! A lock file per run folder makes concurrent processes on one results folder train each run
//! once: a process that finds a run locked waits for it and reuses the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use slt_datasets::{DatasetKind, RawSplits};

pub use crate::profile::{default_results_dir, profiles_dir, PlannedRun, Profile, SUITES};
use crate::records::{load_finished, RunRecord, Stored};
use crate::train::{TrainError, TrainOptions};
use crate::BackendKind;

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
    /// `(i, n)`: run only the run families (a parent and its split children) whose index is i
    /// modulo n (0-based), as one task of an array job.
    pub shard: Option<(usize, usize)>,
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

/// The lock file that marks a run folder as being trained by a live process.
const LOCK_FILE: &str = ".lock";

/// Holds the run folder's lock while it exists (released by the OS if the process dies).
struct RunLock(#[allow(dead_code)] std::fs::File);

impl RunLock {
    /// Takes the lock of `dir`, waiting (and saying so) if another process holds it.
    fn take(dir: &Path, show_progress: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                if show_progress {
                    eprintln!("{}: another process is training this run; waiting for it", dir.display());
                }
                file.lock().with_context(|| format!("locking {}", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        Ok(Self(file))
    }
}

/// Trains `planned` unless it finished (a damaged finished run is retrained, saying why); a split
/// run starts from its parent's final weights, training the parent first if it has not finished.
fn execute(
    planned: &PlannedRun,
    data: &DataCache,
    options: &ReproduceOptions,
    show_progress: bool,
) -> anyhow::Result<RunRecord> {
    let dir = planned.dir(&options.results_dir);
    let _lock = RunLock::take(&dir, show_progress)?;
    match load_finished(planned, &options.results_dir)? {
        Stored::Finished(done) => return Ok(done),
        Stored::Absent => {}
        Stored::Damaged { dir, reason } => {
            eprintln!("{}: the finished run is damaged ({reason}); training it again", dir.display());
            for f in [crate::records::SUMMARY_FILE, crate::records::DIVERGED_FILE] {
                let _ = std::fs::remove_file(dir.join(f));
            }
        }
    }
    let config = &planned.config;
    let parent_weights = match &config.start_from {
        Some(parent) => {
            let parent_run = PlannedRun { suite: planned.suite, label: "parent".into(), config: (**parent).clone() };
            let parent_record = execute(&parent_run, data, options, show_progress)?;
            if let Some(message) = &parent_record.diverged {
                anyhow::bail!("{}: its parent run diverged ({message})", dir.display());
            }
            Some(parent_run.dir(&options.results_dir).join(crate::records::WEIGHTS_FILE))
        }
        None => None,
    };
    let splits = data.get(config.dataset)?.split(&config.split)?;
    let backend = options.backend;
    let outcome = crate::with_backend!(backend, |B, device| {
        let initial = match &parent_weights {
            Some(path) => Some(crate::weights::load(config.model.init::<B>(config.seed, &device), path)?),
            None => None,
        };
        let train_options =
            TrainOptions { out: Some(&dir), show_progress, initial, ..TrainOptions::new(&device, backend.name()) };
        crate::train::train(config, &splits, train_options).map(|o| (o.metrics, o.summary, o.spectrum))
    });
    match outcome {
        Ok((metrics, summary, spectrum)) => Ok(RunRecord {
            planned: planned.clone(),
            summary: Some(summary),
            metrics,
            reused: false,
            diverged: None,
            spectrum,
        }),
        Err(e @ TrainError::Diverged { .. }) => {
            // A diverging setting is a finding of the sweep: record it, keep going.
            let message = format!("{:#}", anyhow::Error::from(e));
            let metrics = crate::records::mark_diverged(&dir, &message)?;
            Ok(RunRecord {
                planned: planned.clone(),
                summary: None,
                metrics,
                reused: false,
                diverged: Some(message),
                spectrum: None,
            })
        }
        Err(TrainError::Failed(e)) => {
            Err(e.context(format!("{} {} ({})", planned.suite, planned.label, dir.display())))
        }
    }
}

/// The planned runs of `suites` (all if empty), each configuration once.
pub fn plan(profile: &Profile, suites: &[&str]) -> anyhow::Result<Vec<PlannedRun>> {
    let names: Vec<&str> = if suites.is_empty() { SUITES.iter().map(|s| s.0).collect() } else { suites.to_vec() };
    let mut plan = Vec::new();
    for name in names {
        plan.extend(profile.runs(name)?);
    }
    // The same configuration can appear twice in a suite (S2's α and ε sweeps share the
    // arm's own point): train it once.
    let mut seen = std::collections::HashSet::new();
    plan.retain(|r| seen.insert((r.suite, r.config.run_id())));
    Ok(plan)
}

/// The runs of shard `(i, n)`: every n-th family, a family being a run without a parent and
/// every run split from it, so that a shard never needs another shard's run.
pub fn shard_of(plan: Vec<PlannedRun>, (i, n): (usize, usize)) -> Vec<PlannedRun> {
    let root = |r: &PlannedRun| {
        let mut c = &r.config;
        while let Some(parent) = &c.start_from {
            c = parent;
        }
        (r.suite, c.run_id())
    };
    let mut families: Vec<(&'static str, String)> = Vec::new();
    for r in &plan {
        let key = root(r);
        if !families.contains(&key) {
            families.push(key);
        }
    }
    plan.into_iter().filter(|r| families.iter().position(|f| *f == root(r)).is_some_and(|k| k % n == i)).collect()
}

/// Runs `suites` (all of them if empty); returns every run's record in plan order.
pub fn run_suites(options: &ReproduceOptions, suites: &[&str]) -> anyhow::Result<Vec<RunRecord>> {
    let plan = plan(&options.profile, suites)?;
    crate::backend::check_available(options.backend)?;
    let selected = match options.shard {
        Some(shard) => shard_of(plan, shard),
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
    // More threads than runs would only idle.
    let threads = options.jobs.clamp(1, selected.len().max(1));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("building the job pool")?;
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

/// What a reproduction did and what the results folder holds.
#[derive(Debug)]
pub struct Reproduction {
    /// The records of the runs this call executed or reused.
    pub this_call: Vec<RunRecord>,
    /// Every run of the profile, if all of them have finished (the report's input).
    pub complete: Option<Vec<RunRecord>>,
    /// Runs of the profile not finished yet (other shards or suites).
    pub missing: usize,
    pub seconds: f64,
}

/// Runs every suite (or the shard of them); then reads every run of the profile from the
/// results folder, verified, for the report. Runs of other shards or processes that are
/// unfinished or damaged are `missing`, never an error of this call.
pub fn reproduce_all(options: &ReproduceOptions, suites: &[&str]) -> anyhow::Result<Reproduction> {
    let started = Instant::now();
    let this_call = run_suites(options, suites)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut missing = 0;
    for planned in plan(&options.profile, &[])? {
        match load_finished(&planned, &options.results_dir)? {
            Stored::Finished(r) => all.push(r),
            Stored::Absent => missing += 1,
            // Not this call's run (this call retrained its own damaged runs), so not this call's
            // failure: another shard or process retrains it, or a later reproduce-all does. Until
            // then it is missing (failing here would fail a shard for another shard's run).
            Stored::Damaged { dir, reason } => {
                eprintln!("{}: {reason}; not finished until it is trained again", dir.display());
                missing += 1;
            }
        }
    }
    let complete = (missing == 0).then_some(all);
    Ok(Reproduction { this_call, complete, missing, seconds })
}
