//! `cargo xtask train`: one model, one optimiser, written as a run folder.
//!
//! Every optimiser has its own defaults, the settings that train (README, "Optimisers"): a flag
//! left out takes the chosen optimiser's default, and a flag that does not apply to it (say
//! `--alpha` with `--optimizer sgd`) is an error rather than silently ignored.

use std::path::PathBuf;

use anyhow::Context;
use slt_experiments::config::{OptimizerConfig, TrainConfig};
use slt_experiments::reproduce::default_results_dir;
use slt_experiments::train::TrainOptions;
use slt_models::ModelSpec;
use slt_optimizers::{EigenPrecision, FisherKind, KfacConfig, NgdConfig, OnlineNgdConfig, SgdConfig};

use crate::args::{non_negative_real, positive, positive_real, BackendArg, DatasetArg};

/// `--optimizer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerArg {
    /// SGD (default lr 0.01, momentum 0.9 Nesterov).
    Sgd,
    /// Exact NGD with the minibatch Fisher; by default each step is rescaled to the raw
    /// gradient's norm (--normalize true), lr 0.01, momentum 0.9 Nesterov.
    Ngd,
    /// The paper's code: Povey et al.'s online natural gradient (lr 0.01, α 0.1, η 0.9, ε 1e-10,
    /// δ 5e-4, update period 4, momentum 0.9 Nesterov).
    NgdOnline,
    /// K-FAC with the paper's κ rule (lr 0.01, α 0.01, no momentum).
    Kfac,
}

/// `--fisher`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FisherArg {
    /// Labels drawn from the model: the true Fisher in expectation.
    Sampled,
    /// The data labels.
    Empirical,
}

/// `--eigen-precision` (see `slt_optimizers::EigenPrecision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EigenPrecisionArg {
    F64,
    F32,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    #[arg(long, value_enum, default_value_t = DatasetArg::Mnist)]
    dataset: DatasetArg,
    /// mlp-<depth>x<width> (e.g. mlp-2x256; the linear model is mlp-0x1), lenet5 or lenet5-e<k>.
    #[arg(long, default_value = "mlp-2x256")]
    model: ModelSpec,
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
    /// Learning rate [default: the optimiser's, 0.01 for each].
    #[arg(long, value_parser = positive_real)]
    lr: Option<f64>,
    /// Momentum [default: 0.9; kfac 0].
    #[arg(long, value_parser = non_negative_real)]
    momentum: Option<f64>,
    /// Nesterov momentum; `--nesterov` alone means true [default: true when momentum > 0].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    nesterov: Option<bool>,
    /// Weight decay [default: 0].
    #[arg(long, value_parser = non_negative_real)]
    weight_decay: Option<f64>,
    /// ngd, ngd-online, kfac: smoothing strength α in κ = (α/d)·max(tr F, ε) [default: 0.01; ngd-online 0.1].
    #[arg(long, value_parser = positive_real)]
    alpha: Option<f64>,
    /// ngd, ngd-online, kfac: floor ε on tr F in κ (not the SGLD step size) [default: 1e-10].
    #[arg(long = "eps", alias = "fisher-eps", value_parser = non_negative_real)]
    fisher_eps: Option<f64>,
    /// ngd: rescale every F_s⁻¹g to the raw gradient's norm (as the paper's code does for its
    /// online NGD), so α and ε change the direction, not the step length; `--normalize` alone
    /// means true [default: true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    normalize: Option<bool>,
    /// ngd: rescale every F_s⁻¹g to unit length instead, so each step has length --lr whatever
    /// the smoothing and the gradient norms along the path (implies --normalize false).
    #[arg(long)]
    fixed_step: bool,
    /// ngd, kfac: which Fisher [default: sampled].
    #[arg(long, value_enum)]
    fisher: Option<FisherArg>,
    /// ngd-online: moving-average rate η of the Fisher estimate [default: 0.9].
    #[arg(long, value_parser = positive_real)]
    eta: Option<f64>,
    /// ngd-online: δ [default: 5e-4].
    #[arg(long, value_parser = non_negative_real)]
    delta: Option<f64>,
    /// ngd-online: refresh the estimate every this many steps, after the first 10 [default: 4].
    #[arg(long, value_parser = positive)]
    update_period: Option<usize>,
    /// ngd-online: precision of the eigendecomposition of Z_t and the factors around it: f64
    /// (the equations) or f32 (approximately what the paper's code does) [default: f64].
    #[arg(long, value_enum)]
    eigen_precision: Option<EigenPrecisionArg>,
    #[arg(long, default_value_t = 3, value_parser = positive)]
    epochs: usize,
    #[arg(long, default_value_t = 128, value_parser = positive)]
    batch_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on this many examples only (chosen by seed).
    #[arg(long, value_parser = positive)]
    train_subset: Option<usize>,
    /// Validate on this many held-out training examples instead of the official test set.
    #[arg(long, value_parser = positive)]
    val_from_train: Option<usize>,
    /// Evaluate the full training set after each epoch.
    #[arg(long)]
    eval_train: bool,
    /// Output directory (default: experiments/results/train/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Retrain even if the output directory holds a finished run of this configuration.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    data: crate::DataArgs,
}

impl TrainArgs {
    /// The optimiser-specific flags that were given, by name.
    fn given(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("--alpha", self.alpha.is_some()),
            ("--eps", self.fisher_eps.is_some()),
            ("--normalize", self.normalize.is_some()),
            ("--fixed-step", self.fixed_step),
            ("--fisher", self.fisher.is_some()),
            ("--eta", self.eta.is_some()),
            ("--delta", self.delta.is_some()),
            ("--update-period", self.update_period.is_some()),
            ("--eigen-precision", self.eigen_precision.is_some()),
        ]
    }

    /// The optimiser the flags describe: its defaults, overridden by the flags given.
    pub fn optimizer(&self) -> anyhow::Result<OptimizerConfig> {
        let applies: &[&str] = match self.optimizer {
            OptimizerArg::Sgd => &[],
            OptimizerArg::Ngd => &["--alpha", "--eps", "--normalize", "--fixed-step", "--fisher"],
            OptimizerArg::NgdOnline => {
                &["--alpha", "--eps", "--eta", "--delta", "--update-period", "--eigen-precision"]
            }
            OptimizerArg::Kfac => &["--alpha", "--eps", "--fisher"],
        };
        let name =
            clap::ValueEnum::to_possible_value(&self.optimizer).map(|v| v.get_name().to_string()).unwrap_or_default();
        let stray: Vec<&str> =
            self.given().into_iter().filter(|(f, on)| *on && !applies.contains(f)).map(|(f, _)| f).collect();
        anyhow::ensure!(
            stray.is_empty(),
            "{} do(es) not apply to --optimizer {name} (it takes: {})",
            stray.join(", "),
            if applies.is_empty() {
                "--lr, --momentum, --nesterov, --weight-decay".to_string()
            } else {
                applies.join(", ")
            }
        );
        let fisher = self.fisher.map(|f| match f {
            FisherArg::Sampled => FisherKind::Sampled,
            FisherArg::Empirical => FisherKind::Empirical,
        });
        // K-FAC trains without momentum (its crate default); the others with the paper's 0.9
        // Nesterov (measured: README, "Optimisers").
        let momentum = self.momentum.unwrap_or(if self.optimizer == OptimizerArg::Kfac { 0.0 } else { 0.9 });
        let sgd = SgdConfig {
            lr: self.lr.unwrap_or(0.01),
            momentum,
            nesterov: self.nesterov.unwrap_or(momentum > 0.0),
            weight_decay: self.weight_decay.unwrap_or(0.0),
        };
        Ok(match self.optimizer {
            OptimizerArg::Sgd => OptimizerConfig::Sgd(sgd),
            OptimizerArg::Ngd => {
                let d = NgdConfig::paper();
                OptimizerConfig::Ngd(NgdConfig {
                    lr: sgd.lr,
                    momentum: sgd.momentum,
                    nesterov: sgd.nesterov,
                    weight_decay: sgd.weight_decay,
                    alpha: self.alpha.unwrap_or(d.alpha),
                    fisher_eps: self.fisher_eps.unwrap_or(d.fisher_eps),
                    fisher: fisher.unwrap_or(d.fisher),
                    normalize: self.normalize.unwrap_or(!self.fixed_step),
                    fixed_step: self.fixed_step,
                    seed: self.seed,
                })
            }
            OptimizerArg::NgdOnline => {
                let d = OnlineNgdConfig::paper();
                OptimizerConfig::NgdOnline(OnlineNgdConfig {
                    lr: sgd.lr,
                    momentum: sgd.momentum,
                    nesterov: sgd.nesterov,
                    weight_decay: sgd.weight_decay,
                    alpha: self.alpha.unwrap_or(d.alpha),
                    eta: self.eta.unwrap_or(d.eta),
                    epsilon: self.fisher_eps.unwrap_or(d.epsilon),
                    delta: self.delta.unwrap_or(d.delta),
                    update_period: self.update_period.unwrap_or(d.update_period),
                    eigen_precision: match self.eigen_precision {
                        Some(EigenPrecisionArg::F32) => EigenPrecision::F32,
                        Some(EigenPrecisionArg::F64) => EigenPrecision::F64,
                        None => d.eigen_precision,
                    },
                    ..d
                })
            }
            OptimizerArg::Kfac => {
                let d = KfacConfig::default();
                OptimizerConfig::Kfac(KfacConfig {
                    lr: sgd.lr,
                    momentum: sgd.momentum,
                    nesterov: sgd.nesterov,
                    weight_decay: sgd.weight_decay,
                    alpha: self.alpha.unwrap_or(d.alpha),
                    fisher_eps: self.fisher_eps.unwrap_or(d.fisher_eps),
                    fisher: fisher.unwrap_or(d.fisher),
                    seed: self.seed,
                    ..d
                })
            }
        })
    }

    fn config(&self) -> anyhow::Result<TrainConfig> {
        let config = TrainConfig {
            dataset: self.dataset.into(),
            model: self.model,
            optimizer: self.optimizer()?,
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            split: slt_datasets::SplitOptions {
                val_from_train: self.val_from_train,
                train_subset: self.train_subset,
                val_subset: None,
                seed: self.seed,
            },
            eval_train: self.eval_train,
            measure: None,
            start_from: None,
        };
        config.validate().context("invalid training options")?;
        Ok(config)
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let backend = crate::args::backend(args.backend)?;
    crate::args::ensure_model_fits(args.model)?;
    let config = args.config()?;
    let out = args.out.clone().unwrap_or_else(|| default_results_dir().join("train").join(config.run_id()));
    if out.join(slt_experiments::records::SUMMARY_FILE).exists() && !args.force {
        let stored: TrainConfig = slt_experiments::store::read_json(&out.join(slt_experiments::records::CONFIG_FILE))?;
        if stored == config {
            eprintln!("{}: this run already finished (use --force to retrain)", out.display());
            return Ok(());
        }
        anyhow::bail!(
            "{} holds a finished run of another configuration; choose another --out or pass --force",
            out.display()
        );
    }
    let data_dir = slt_datasets::resolve_data_dir(args.data.data_dir.as_deref());
    if args.data.data_dir.is_none() {
        // The default data folder is ours to fill; a folder the user names is theirs, so a
        // missing or corrupt file there is an error naming it rather than a silent replacement.
        crate::fetch(&[config.dataset], &data_dir, None)?;
    }
    let splits =
        slt_datasets::RawSplits::load(config.dataset, &data_dir).context("loading the data")?.split(&config.split)?;
    let summary = slt_experiments::with_backend!(backend, |B, device| {
        let options =
            TrainOptions { out: Some(&out), show_progress: true, ..TrainOptions::<B>::new(&device, backend.name()) };
        slt_experiments::train::train::<B>(&config, &splits, options).map(|o| o.summary).map_err(anyhow::Error::from)
    })?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!("results in {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    fn parse(flags: &[&str]) -> Result<TrainArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("train").chain(flags.iter().copied())).map(|c| c.train)
    }

    #[test]
    fn each_optimiser_has_its_own_defaults() {
        for (name, lr) in [("sgd", 0.01), ("ngd", 0.01), ("ngd-online", 0.01), ("kfac", 0.01)] {
            let o = parse(&["--optimizer", name]).unwrap().optimizer().unwrap();
            assert_eq!(o.lr(), lr, "{name}");
        }
        match parse(&["--optimizer", "ngd"]).unwrap().optimizer().unwrap() {
            OptimizerConfig::Ngd(c) => assert!(c.normalize, "exact NGD trains at SGD's lr only when normalised"),
            other => panic!("{other:?}"),
        }
        match parse(&["--optimizer", "ngd", "--fixed-step"]).unwrap().optimizer().unwrap() {
            OptimizerConfig::Ngd(c) => assert!(c.fixed_step && !c.normalize, "{c:?}"),
            other => panic!("{other:?}"),
        }
        match parse(&["--optimizer", "ngd-online"]).unwrap().optimizer().unwrap() {
            OptimizerConfig::NgdOnline(c) => assert_eq!(c, OnlineNgdConfig::paper()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_that_do_not_apply_are_errors() {
        for flags in [
            &["--alpha", "0.1"][..],
            &["--eta", "0.5"],
            &["--fisher", "empirical"],
            &["--normalize", "false"],
            &["--fixed-step"],
        ] {
            let args = parse(&[&["--optimizer", "sgd"][..], flags].concat()).unwrap();
            let err = args.optimizer().unwrap_err().to_string();
            assert!(err.contains(flags[0]) && err.contains("not apply"), "{err}");
        }
        let online_fisher = parse(&["--optimizer", "ngd-online", "--fisher", "sampled"]).unwrap();
        assert!(online_fisher.optimizer().unwrap_err().to_string().contains("--fisher"));
    }

    #[test]
    fn unknown_values_and_zero_sizes_are_refused_by_clap() {
        for flags in [
            &["--optimizer", "adam"][..],
            &["--dataset", "cifar"],
            &["--model", "mlp-0x16"],
            &["--model", "resnet"],
            &["--epochs", "0"],
            &["--batch-size", "0"],
            &["--lr", "-1"],
            &["--backend", "cuda"],
        ] {
            assert!(parse(flags).is_err(), "{flags:?} was accepted");
        }
    }
}
