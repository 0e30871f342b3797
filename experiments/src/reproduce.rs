//! `reproduce-all`: runs every part of the reproduction that exists, at a profile's scale,
//! into `experiments/results/`, skipping runs that already finished, and writes
//! `experiments/results/report.md`. Parts that do not exist yet are listed as such — never
//! faked.
//!
//! Today that is the SGD training runs the suites build on (`sgd-baselines`): every model ×
//! dataset × seed of the profile, trained with the paper's SGD (momentum 0.9, Nesterov).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use slt_datasets::{DatasetKind, RawSplits, SplitOptions};
use slt_models::ModelSpec;
use slt_optimizers::SgdConfig;

use crate::config::{OptimizerConfig, TrainConfig};
use crate::train::{EpochMetrics, RunSummary};
use crate::BackendKind;

/// The suites of the paper's reproduction and whether this build implements them.
pub const SUITES: [(&str, &str, bool); 5] = [
    ("sgd-baselines", "SGD training runs the suites start from", true),
    ("s1-sgd-vs-ngd", "SGD vs NGD: λ̂, WBIC, Tr(H) across widths (Figs. 1-2)", false),
    ("s2-smoothing", "NGD Fisher smoothing α, ε vs λ̂ (Fig. 3)", false),
    ("s3-split", "SGD then SGD/NGD split runs (Figs. 4-6)", false),
    ("a-overfit", "λ̂, WBIC, Tr(H) while overfitting (Figs. 7-8)", false),
];

/// The SGD-baseline part of a profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SgdBaselines {
    pub datasets: Vec<DatasetKind>,
    pub models: Vec<ModelSpec>,
    pub seeds: Vec<u64>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub train_subset: Option<usize>,
    pub val_subset: Option<usize>,
}

/// A profile: the scale of every suite, read from `experiments/profiles/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub sgd_baselines: SgdBaselines,
}

/// The directory of the shipped profiles.
pub fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// The default results directory, `experiments/results`.
pub fn default_results_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results")
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
        crate::store::read_json(&path).with_context(|| format!("loading profile {}", path.display()))
    }

    /// The SGD-baseline run configurations of this profile.
    pub fn sgd_baseline_configs(&self) -> Vec<TrainConfig> {
        let s = &self.sgd_baselines;
        let mut out = Vec::new();
        for &dataset in &s.datasets {
            for &model in &s.models {
                for &seed in &s.seeds {
                    out.push(TrainConfig {
                        dataset,
                        model,
                        optimizer: OptimizerConfig::Sgd(SgdConfig {
                            lr: s.lr,
                            momentum: s.momentum,
                            nesterov: s.nesterov,
                            weight_decay: 0.0,
                        }),
                        epochs: s.epochs,
                        batch_size: s.batch_size,
                        seed,
                        split: SplitOptions {
                            train_subset: s.train_subset,
                            val_subset: s.val_subset,
                            val_from_train: None,
                            seed,
                        },
                        eval_train: false,
                    });
                }
            }
        }
        out
    }
}

/// Options of a reproduction.
#[derive(Debug, Clone)]
pub struct ReproduceOptions {
    pub profile: Profile,
    pub backend: BackendKind,
    pub data_dir: PathBuf,
    pub results_dir: PathBuf,
    pub show_progress: bool,
}

/// A finished (or skipped) run, for the report.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub config: TrainConfig,
    pub summary: RunSummary,
    pub metrics: Vec<EpochMetrics>,
    pub reused: bool,
}

/// Trains `config` into `dir` unless `dir/summary.json` says it already finished.
pub fn run_or_reuse(
    config: &TrainConfig,
    splits: &slt_datasets::Splits,
    backend: BackendKind,
    dir: &Path,
    show_progress: bool,
) -> anyhow::Result<RunRecord> {
    let summary_path = dir.join("summary.json");
    if summary_path.exists() {
        let stored: TrainConfig = crate::store::read_json(&dir.join("config.json"))?;
        anyhow::ensure!(
            &stored == config,
            "{}: holds a different configuration than its run id says; move it away",
            dir.display()
        );
        return Ok(RunRecord {
            config: config.clone(),
            summary: crate::store::read_json(&summary_path)?,
            metrics: crate::store::read_jsonl(&dir.join("metrics.jsonl"))?,
            reused: true,
        });
    }
    let outcome = crate::with_backend!(backend, |B, device| {
        crate::train::train::<B>(config, splits, &device, backend.name(), Some(dir), show_progress)
            .map(|o| (o.metrics, o.summary))
    })?;
    Ok(RunRecord {
        config: config.clone(),
        summary: outcome.1,
        metrics: outcome.0,
        reused: false,
    })
}

/// Runs every implemented part of the reproduction and writes the report; returns its path.
pub fn reproduce_all(options: &ReproduceOptions) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    let configs = options.profile.sgd_baseline_configs();
    let suite_dir = options.results_dir.join("sgd-baselines");
    let mut records = Vec::new();
    let mut loaded: Option<(DatasetKind, RawSplits)> = None;
    for (i, config) in configs.iter().enumerate() {
        if loaded.as_ref().map(|(k, _)| *k) != Some(config.dataset) {
            let raw = RawSplits::load(config.dataset, &options.data_dir)
                .with_context(|| format!("loading {}", config.dataset))?;
            loaded = Some((config.dataset, raw));
        }
        let splits = loaded.as_ref().expect("just loaded").1.split(&config.split)?;
        let dir = suite_dir.join(config.run_id());
        if options.show_progress {
            eprintln!(
                "[{}/{}] sgd-baselines {} {} seed {} -> {}",
                i + 1,
                configs.len(),
                config.dataset,
                config.model,
                config.seed,
                dir.display()
            );
        }
        let record = run_or_reuse(config, &splits, options.backend, &dir, options.show_progress)?;
        if record.reused && options.show_progress {
            eprintln!("    already finished: reused");
        }
        records.push(record);
    }
    let report = render_report(options, &records, started.elapsed().as_secs_f64());
    let path = options.results_dir.join("report.md");
    crate::store::write_atomic(&path, report.as_bytes())?;
    Ok(path)
}

fn render_report(options: &ReproduceOptions, records: &[RunRecord], seconds: f64) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Reproduction report: NGD vs SGD degeneracy (arXiv 2409.04913)\n");
    let _ = writeln!(
        md,
        "Profile `{}` ({}), backend `{}`, {:.0} s wall clock.\n",
        options.profile.name, options.profile.description, options.backend, seconds
    );
    let _ = writeln!(md, "## Suites\n\n| suite | what | status |\n|---|---|---|");
    for (name, what, implemented) in SUITES {
        let status = if implemented { "ran" } else { "**not implemented yet** — no result" };
        let _ = writeln!(md, "| `{name}` | {what} | {status} |");
    }
    let _ = writeln!(
        md,
        "\n## Claims\n\nNone of the paper's four claims can be tested yet: every one compares NGD with \
         SGD, and NGD is not implemented; the suites that measure λ̂ (slt-estimators) and Tr(H) \
         (slt-hessian) over training are not written either. No verdict is given.\n"
    );
    let _ = writeln!(
        md,
        "## SGD baselines\n\nSGD, lr {}, momentum {}, Nesterov {}, batch {}, {} epochs. \
         Final epoch; `train_loss` is the mean minibatch loss of the last epoch.\n",
        options.profile.sgd_baselines.lr,
        options.profile.sgd_baselines.momentum,
        options.profile.sgd_baselines.nesterov,
        options.profile.sgd_baselines.batch_size,
        options.profile.sgd_baselines.epochs
    );
    let _ = writeln!(
        md,
        "| dataset | model | seed | train loss | val loss | val acc | ‖update‖ mean | s/epoch | run |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in records {
        let m = &r.summary.final_metrics;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.3} | {:.2} | `{}` |",
            r.config.dataset,
            r.config.model,
            r.config.seed,
            m.train_loss,
            m.val_loss,
            m.val_acc,
            m.update_norm_mean,
            r.summary.train_seconds / r.metrics.len().max(1) as f64,
            r.summary.run_id
        );
    }
    md
}
