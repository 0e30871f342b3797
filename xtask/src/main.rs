//! `cargo xtask`: the project's command line. See `cargo xtask --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use slt_datasets::download::default_sources;
use slt_datasets::{fetch_dataset, resolve_data_dir, DatasetKind, FileStatus, Manifest, Source};
use slt_experiments::config::{OptimizerConfig, TrainConfig};
use slt_experiments::reproduce::{default_results_dir, reproduce_all, Profile, ReproduceOptions};
use slt_experiments::train::TrainOptions;
use slt_experiments::BackendKind;

mod bench;
mod hessian;
mod llc;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Reproduce 'NGD converges to less degenerate solutions than SGD' and measure degeneracy with the slt crates")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DataArgs {
    /// Data directory (default: $SLT_DATA_DIR, else <repo>/datasets).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Download MNIST / Fashion-MNIST, verify SHA-256, write atomically.
    FetchData {
        /// mnist, fashion-mnist or all.
        #[arg(long, default_value = "all")]
        dataset: String,
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
        /// s1-sgd-vs-ngd, s2-smoothing, s3-split or a-overfit.
        name: String,
        #[command(flatten)]
        args: ReproduceArgs,
    },
    /// Train one model and write config.json, metrics.jsonl, weights.safetensors, summary.json.
    Train(TrainArgs),
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

/// `--eigen-precision` of `train` (see `slt_optimizers::EigenPrecision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EigenPrecisionArg {
    F64,
    F32,
}

impl From<EigenPrecisionArg> for slt_optimizers::EigenPrecision {
    fn from(p: EigenPrecisionArg) -> Self {
        match p {
            EigenPrecisionArg::F64 => Self::F64,
            EigenPrecisionArg::F32 => Self::F32,
        }
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// mlp-<depth>x<width>, lenet5 or lenet5-e<k>.
    #[arg(long, default_value = "mlp-2x256")]
    model: String,
    /// sgd, ngd (exact minibatch-Fisher NGD), ngd-online (the paper's code: Povey et al.'s online
    /// natural gradient with --alpha, --eta, --eps, --delta, --update-period) or kfac.
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// NGD smoothing strength α in κ = (α/d)·max(tr F, ε).
    #[arg(long, default_value_t = 1e-2)]
    alpha: f64,
    /// NGD floor ε on tr F in κ (not the SGLD step size).
    #[arg(long = "eps", alias = "fisher-eps", default_value_t = 1e-10)]
    fisher_eps: f64,
    /// Exact NGD: rescale every F_s⁻¹g to the raw gradient's norm (as the paper's code does for
    /// its online NGD), so α and ε change the direction, not the step length.
    #[arg(long)]
    normalize: bool,
    /// NGD Fisher: sampled (labels drawn from the model, the true Fisher in expectation) or
    /// empirical (the data labels).
    #[arg(long, default_value = "sampled")]
    fisher: String,
    /// Online NGD: moving-average rate η of the Fisher estimate.
    #[arg(long, default_value_t = 0.9)]
    eta: f64,
    /// Online NGD: δ.
    #[arg(long, default_value_t = 5e-4)]
    delta: f64,
    /// Online NGD: refresh the estimate every this many steps (after the first 10).
    #[arg(long, default_value_t = 4)]
    update_period: usize,
    /// Online NGD: precision of the eigendecomposition of Z_t and the factors around it: f64
    /// (the equations) or f32 (what the paper's code does, approximately; its result depends on
    /// the f32 eigensolver).
    #[arg(long, value_enum, default_value_t = EigenPrecisionArg::F64)]
    eigen_precision: EigenPrecisionArg,
    #[arg(long, default_value_t = 0.0)]
    momentum: f64,
    #[arg(long)]
    nesterov: bool,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on this many examples only (chosen by seed).
    #[arg(long)]
    train_subset: Option<usize>,
    /// Validate on this many held-out training examples instead of the official test set.
    #[arg(long)]
    val_from_train: Option<usize>,
    /// Evaluate the full training set after each epoch.
    #[arg(long)]
    eval_train: bool,
    /// Output directory (default: experiments/results/train/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    backend: Option<String>,
    /// Retrain even if the output directory holds a finished run of this configuration.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

/// What reproduce-all and suite share: profile, execution, backend and where things are.
#[derive(clap::Args)]
struct ReproduceArgs {
    /// smoke, quick, paper, or a path to a profile JSON file.
    #[arg(long, default_value = "quick")]
    profile: String,
    #[command(flatten)]
    run: RunArgs,
    /// ndarray, flex (default) or wgpu (when compiled in).
    #[arg(long)]
    backend: Option<String>,
    /// Results directory (default: experiments/results).
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// Where to fetch missing data from (see fetch-data --from).
    #[arg(long)]
    from: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

/// How suites run: parallel jobs and sharding.
#[derive(clap::Args, Clone, Copy)]
struct RunArgs {
    /// Runs executed at once (default: the number of CPU cores).
    #[arg(long)]
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

fn reproduce(suites: &[&str], args: ReproduceArgs) -> anyhow::Result<()> {
    let ReproduceArgs { profile, run, backend, results_dir, from, data } = args;
    let profile = Profile::load(&profile)?;
    let backend = parse_backend(backend.as_deref())?;
    let data_dir = resolve_data_dir(data.data_dir.as_deref());
    let mut datasets: Vec<DatasetKind> = profile.s1.datasets.clone();
    datasets.extend([profile.s2.dataset, profile.s3.dataset, profile.a_overfit.dataset]);
    datasets.sort_by_key(|d| d.name());
    datasets.dedup();
    fetch(&datasets, &data_dir, from.as_deref())?;
    let jobs = run.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
    let options = ReproduceOptions {
        profile,
        backend,
        data_dir,
        results_dir: results_dir.unwrap_or_else(default_results_dir),
        show_progress: true,
        jobs,
        shard: run.shard,
    };
    let done = reproduce_all(&options, suites)?;
    match &done.complete {
        Some(all) => {
            let report = slt_experiments::report::write(&options, all, &done.this_call, done.seconds)?;
            eprintln!("report: {}", report.display());
        }
        None => eprintln!(
            "{} runs of the profile have not finished yet: no report (run the other shards/suites, then reproduce-all)",
            done.missing
        ),
    }
    Ok(())
}

/// The backend named by `--backend`, or the default compiled one.
pub(crate) fn parse_backend(flag: Option<&str>) -> anyhow::Result<BackendKind> {
    match flag {
        Some(name) => name.parse().context("--backend"),
        None => BackendKind::default_compiled(),
    }
}

fn datasets_arg(arg: &str) -> anyhow::Result<Vec<DatasetKind>> {
    if arg == "all" {
        return Ok(DatasetKind::ALL.to_vec());
    }
    Ok(vec![arg.parse().with_context(|| format!("--dataset {arg}"))?])
}

/// Fetches what is missing of `datasets` into `data_dir`, printing one line per file.
fn fetch(datasets: &[DatasetKind], data_dir: &std::path::Path, from: Option<&str>) -> anyhow::Result<()> {
    let manifest = Manifest::builtin();
    let sources = from.map(|f| vec![Source::parse(f)]).unwrap_or_else(default_sources);
    for kind in datasets {
        fetch_dataset(&manifest, kind.name(), data_dir, &sources, |file, status| match status {
            FileStatus::Present => eprintln!("{kind}/{file}: present, SHA-256 ok"),
            FileStatus::Fetched(from) => eprintln!("{kind}/{file}: fetched from {from}, SHA-256 ok"),
        })
        .with_context(|| format!("fetching {kind} into {}", data_dir.display()))?;
    }
    Ok(())
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let backend = parse_backend(args.backend.as_deref())?;
    let dataset: DatasetKind = args.dataset.parse().context("--dataset")?;
    let model = args.model.parse().context("--model")?;
    let optimizer = match args.optimizer.as_str() {
        "sgd" => OptimizerConfig::Sgd(slt_optimizers::SgdConfig {
            lr: args.lr,
            momentum: args.momentum,
            nesterov: args.nesterov,
            weight_decay: args.weight_decay,
        }),
        "ngd" => OptimizerConfig::Ngd(slt_optimizers::NgdConfig {
            lr: args.lr,
            alpha: args.alpha,
            fisher_eps: args.fisher_eps,
            fisher: args.fisher.parse().map_err(anyhow::Error::msg).context("--fisher")?,
            momentum: args.momentum,
            nesterov: args.nesterov,
            weight_decay: args.weight_decay,
            seed: args.seed,
            normalize: args.normalize,
        }),
        "kfac" => OptimizerConfig::Kfac(slt_optimizers::KfacConfig {
            lr: args.lr,
            alpha: args.alpha,
            fisher_eps: args.fisher_eps,
            fisher: args.fisher.parse().map_err(anyhow::Error::msg).context("--fisher")?,
            momentum: args.momentum,
            nesterov: args.nesterov,
            weight_decay: args.weight_decay,
            seed: args.seed,
            ..Default::default()
        }),
        "ngd-online" => OptimizerConfig::NgdOnline(slt_optimizers::OnlineNgdConfig {
            lr: args.lr,
            momentum: args.momentum,
            nesterov: args.nesterov,
            weight_decay: args.weight_decay,
            alpha: args.alpha,
            eta: args.eta,
            epsilon: args.fisher_eps,
            delta: args.delta,
            update_period: args.update_period,
            eigen_precision: args.eigen_precision.into(),
            ..slt_optimizers::OnlineNgdConfig::paper()
        }),
        other => anyhow::bail!("--optimizer {other}: expected sgd, ngd, ngd-online or kfac"),
    };
    let config = TrainConfig {
        dataset,
        model,
        optimizer,
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        split: slt_datasets::SplitOptions {
            val_from_train: args.val_from_train,
            train_subset: args.train_subset,
            val_subset: None,
            seed: args.seed,
        },
        eval_train: args.eval_train,
        measure: None,
        start_from: None,
    };
    config.validate().context("invalid training options")?;
    let out = args
        .out
        .unwrap_or_else(|| default_results_dir().join("train").join(config.run_id()));
    if out.join("summary.json").exists() && !args.force {
        let stored: TrainConfig = slt_experiments::store::read_json(&out.join("config.json"))?;
        if stored == config {
            eprintln!("{}: this run already finished (use --force to retrain)", out.display());
            return Ok(());
        }
        anyhow::bail!("{} holds a finished run of another configuration; choose another --out or pass --force", out.display());
    }
    let data_dir = resolve_data_dir(args.data.data_dir.as_deref());
    let splits = slt_datasets::RawSplits::load(dataset, &data_dir)
        .context("loading the data")?
        .split(&config.split)?;
    let summary = slt_experiments::with_backend!(backend, |B, device| {
        let options = TrainOptions { out: Some(&out), show_progress: true, ..TrainOptions::<B>::new(&device, backend.name()) };
        slt_experiments::train::train::<B>(&config, &splits, options).map(|o| o.summary).map_err(anyhow::Error::from)
    })?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!("results in {}", out.display());
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::FetchData { dataset, from, data } => {
            let data_dir = resolve_data_dir(data.data_dir.as_deref());
            fetch(&datasets_arg(&dataset)?, &data_dir, from.as_deref())
        }
        Command::Train(args) => train(args),
        Command::ReproduceAll { args } => reproduce(&[], args),
        Command::Suite { name, args } => reproduce(&[name.as_str()], args),
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
