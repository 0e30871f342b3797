//! `cargo xtask`: the project's command line. See `cargo xtask --help`.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)] // clap doc comments are --help text, not rustdoc

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use slt_datasets::download::default_sources;
use slt_datasets::{fetch_dataset, resolve_data_dir, DatasetKind, FileStatus, Manifest, Source};
use slt_experiments::reproduce::{default_results_dir, reproduce_all, Profile, ReproduceOptions};

mod args;
mod bench;
mod hessian;
mod llc;
mod train_cmd;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Reproduce 'NGD converges to less degenerate solutions than SGD' and measure degeneracy with the slt crates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub(crate) struct DataArgs {
    /// Data directory (default: $SLT_DATA_DIR, else <repo>/datasets).
    #[arg(long, global = true)]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Download MNIST / Fashion-MNIST, verify SHA-256, write atomically.
    FetchData {
        #[arg(long, value_enum, default_value_t = FetchDataset::All)]
        dataset: FetchDataset,
        /// A local directory laid out as <dir>/<dataset>/<file> (e.g. ../shared/datasets) or a
        /// URL base; default: ../shared/datasets beside the repository if present, then the
        /// publishers' mirrors, in order.
        #[arg(long)]
        from: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Run one suite of the reproduction (see reproduce-all); the report is written when every
    /// run of the profile has finished.
    Suite {
        #[arg(value_enum)]
        name: SuiteArg,
        #[command(flatten)]
        args: ReproduceArgs,
    },
    /// Train one model and write config.json, metrics.jsonl, weights.safetensors, summary.json.
    Train(train_cmd::TrainArgs),
    /// Run every suite (s1-sgd-vs-ngd, s2-smoothing, s3-split, a-overfit) at a profile's scale,
    /// then write the figures and experiments/results/report.md. Finished runs are reused and
    /// interrupted ones resume.
    ReproduceAll {
        #[command(flatten)]
        args: ReproduceArgs,
    },
    /// Hessian trace (Hutchinson / Hutch++), top eigenvalues and spectral density of saved weights.
    Hessian(hessian::HessianArgs),
    /// Estimate the local learning coefficient λ̂ (SGLD), WBIC and diagnostics of saved weights.
    Llc(llc::LlcArgs),
    /// Benchmarks on MLP 784-256-256-10, batch 128, MNIST: SGD epoch, SGLD step, LLC estimate.
    Bench(bench::BenchArgs),
}

/// `fetch-data --dataset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FetchDataset {
    Mnist,
    FashionMnist,
    All,
}

/// A suite of the reproduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SuiteArg {
    /// SGD vs NGD: λ̂, WBIC, Tr(H) across model sizes (Figs. 1-2).
    #[value(name = "s1-sgd-vs-ngd")]
    S1,
    /// NGD Fisher smoothing α, ε vs λ̂ (Fig. 3).
    #[value(name = "s2-smoothing")]
    S2,
    /// SGD, then SGD / NGD copies from the same state (Figs. 4-6).
    #[value(name = "s3-split")]
    S3,
    /// λ̂, WBIC, Tr(H) while a model overfits (Figs. 7-8).
    #[value(name = "a-overfit")]
    Overfit,
}

impl SuiteArg {
    fn name(self) -> &'static str {
        match self {
            SuiteArg::S1 => "s1-sgd-vs-ngd",
            SuiteArg::S2 => "s2-smoothing",
            SuiteArg::S3 => "s3-split",
            SuiteArg::Overfit => "a-overfit",
        }
    }
}

/// What reproduce-all and suite share: profile, execution, backend and where things are.
#[derive(clap::Args)]
struct ReproduceArgs {
    /// smoke, quick, paper, or a path to a profile JSON file.
    #[arg(long, default_value = "quick")]
    profile: String,
    #[command(flatten)]
    run: RunArgs,
    #[arg(long, value_enum)]
    backend: Option<args::BackendArg>,
    /// Results directory (default: experiments/results).
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// Where to fetch missing data from (see fetch-data --from).
    #[arg(long)]
    from: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Train nothing: print the runs (finished ones in the results directory included), the work
    /// left (training and SGLD steps, Hessian-vector products) and the expected wall time for
    /// --jobs (and --shard), from per-step costs measured on this machine and backend right now.
    #[arg(long)]
    dry_run: bool,
}

/// How suites run: parallel jobs and sharding.
#[derive(clap::Args, Clone, Copy)]
struct RunArgs {
    /// Runs executed at once (default: the number of CPU cores).
    #[arg(long, value_parser = args::positive)]
    jobs: Option<usize>,
    /// Run only shard I of N (0-based), e.g. `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`;
    /// merge by running reproduce-all afterwards on the same results directory.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard {s}: expected I/N with 0 <= I < N, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Seconds the dry run spends timing each kind of unit (a model's SGD step, SGLD step, …).
const DRY_RUN_SECONDS_PER_UNIT: f64 = 0.5;

fn reproduce(suites: &[&str], args: ReproduceArgs) -> anyhow::Result<()> {
    let ReproduceArgs { profile, run, backend, results_dir, from, data, dry_run } = args;
    let profile = Profile::load(&profile)?;
    let backend = args::backend(backend)?;
    let data_dir = resolve_data_dir(data.data_dir.as_deref());
    let jobs = run.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let results_dir = results_dir.unwrap_or_else(default_results_dir);
    if dry_run {
        let options =
            ReproduceOptions { profile, backend, data_dir, results_dir, show_progress: false, jobs, shard: run.shard };
        let plan = slt_experiments::plan::dry_run(&options, suites, DRY_RUN_SECONDS_PER_UNIT, |i, n| {
            if i == 0 {
                eprintln!("timing {n} kinds of work on {backend} (~{DRY_RUN_SECONDS_PER_UNIT} s each)…");
            }
        })?;
        print!("{}", plan.render());
        return Ok(());
    }
    let mut datasets: Vec<DatasetKind> = profile.s1.datasets.clone();
    datasets.extend([profile.s2.dataset, profile.s3.dataset, profile.a_overfit.dataset]);
    datasets.sort_by_key(|d| d.name());
    datasets.dedup();
    fetch(&datasets, &data_dir, from.as_deref())?;
    let options =
        ReproduceOptions { profile, backend, data_dir, results_dir, show_progress: true, jobs, shard: run.shard };
    let done = reproduce_all(&options, suites)?;
    match &done.complete {
        Some(all) => {
            let backend = options.backend.to_string();
            let context = slt_report::ReportContext {
                profile: &options.profile,
                results_dir: &options.results_dir,
                backend: &backend,
            };
            let report = slt_report::write(&context, all, &done.this_call, done.seconds)?;
            eprintln!("report: {}", report.display());
        }
        None => eprintln!(
            "{} runs of the profile have not finished yet: no report (run the other shards/suites, then reproduce-all)",
            done.missing
        ),
    }
    Ok(())
}

/// Fetches what is missing of `datasets` into `data_dir`, printing one line per file.
pub(crate) fn fetch(datasets: &[DatasetKind], data_dir: &std::path::Path, from: Option<&str>) -> anyhow::Result<()> {
    let manifest = Manifest::builtin();
    let sources = match from {
        Some(f) => vec![Source::parse(f).context("--from")?],
        None => default_sources(),
    };
    for kind in datasets {
        fetch_dataset(&manifest, kind.name(), data_dir, &sources, |file, status| match status {
            FileStatus::Present => eprintln!("{kind}/{file}: present, SHA-256 ok"),
            FileStatus::Fetched(from) => eprintln!("{kind}/{file}: fetched from {from}, SHA-256 ok"),
        })
        .with_context(|| format!("fetching {kind} into {}", data_dir.display()))?;
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::FetchData { dataset, from, data } => {
            let data_dir = resolve_data_dir(data.data_dir.as_deref());
            let datasets = match dataset {
                FetchDataset::All => DatasetKind::ALL.to_vec(),
                FetchDataset::Mnist => vec![DatasetKind::Mnist],
                FetchDataset::FashionMnist => vec![DatasetKind::FashionMnist],
            };
            fetch(&datasets, &data_dir, from.as_deref())
        }
        Command::Train(args) => train_cmd::run(args),
        Command::ReproduceAll { args } => reproduce(&[], args),
        Command::Suite { name, args } => reproduce(&[name.name()], args),
        Command::Llc(args) => llc::run(args),
        Command::Hessian(args) => hessian::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
