//! `cargo xtask llc`: λ̂, WBIC and diagnostics of saved weights.

use std::path::PathBuf;

use anyhow::Context;
use slt_datasets::{resolve_data_dir, DatasetKind, RawSplits, SplitOptions};
use slt_estimators::{InitLoss, SgldConfig, Temperature};

#[derive(clap::Args)]
pub struct LlcArgs {
    /// Weights written by `train` (weights.safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// The model the weights belong to (mlp-<D>x<W>, lenet5, lenet5-e<k>).
    #[arg(long)]
    model: String,
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Use only this many training examples (chosen by --seed), as the run did.
    #[arg(long)]
    train_subset: Option<usize>,
    /// SGLD step size ε.
    #[arg(long, default_value_t = 1e-4)]
    sgld_step: f64,
    /// Localisation γ.
    #[arg(long, default_value_t = 100.0)]
    gamma: f64,
    /// nβ: `batch` (m/ln m, default), `watanabe` (n/ln n, gives the WBIC) or a number.
    #[arg(long, default_value = "batch")]
    n_beta: String,
    #[arg(long, default_value_t = 4)]
    chains: usize,
    #[arg(long, default_value_t = 200)]
    draws: usize,
    #[arg(long, default_value_t = 0)]
    burnin: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Weight decay of the sampler.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Per-element bounding box half-width around w*.
    #[arg(long)]
    bounding_box: Option<f64>,
    /// init_loss from the first k minibatches (devinterp) instead of the full training set.
    #[arg(long)]
    init_batches: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip the MALA acceptance diagnostic (faster).
    #[arg(long)]
    no_mala: bool,
    /// Write the whole estimate (traces included) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long)]
    backend: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn temperature(arg: &str) -> anyhow::Result<Temperature> {
    Ok(match arg {
        "batch" => Temperature::BatchDefault,
        "watanabe" => Temperature::Watanabe,
        other => Temperature::Fixed(
            other
                .parse()
                .with_context(|| format!("--n-beta {other}: expected batch, watanabe or a number"))?,
        ),
    })
}

pub fn run(args: LlcArgs) -> anyhow::Result<()> {
    let backend = crate::parse_backend(args.backend.as_deref())?;
    let dataset: DatasetKind = args.dataset.parse().context("--dataset")?;
    let spec: slt_models::ModelSpec = args.model.parse().context("--model")?;
    let config = SgldConfig {
        step_size: args.sgld_step,
        temperature: temperature(&args.n_beta)?,
        localization: args.gamma,
        weight_decay: args.weight_decay,
        bounding_box: args.bounding_box,
        num_chains: args.chains,
        num_draws: args.draws,
        num_burnin: args.burnin,
        thin: 1,
        batch_size: args.batch_size,
        seed: args.seed,
        init_loss: args.init_batches.map(InitLoss::FirstBatches).unwrap_or(InitLoss::FullDataset),
        mala: !args.no_mala,
    };
    let splits = RawSplits::load(dataset, &resolve_data_dir(args.data_dir.as_deref()))
        .context("loading the data")?
        .split(&SplitOptions { train_subset: args.train_subset, seed: args.seed, ..Default::default() })?;
    config.validate(splits.train.len()).context("invalid SGLD options")?;
    let estimate = slt_experiments::with_backend!(backend, |B, device| {
        let model = slt_experiments::weights::load(spec.init::<B>(0, &device), &args.weights)?;
        slt_experiments::measure::llc_of_classifier::<B>(&model, &splits.train, &config, &device, true)
            .map_err(anyhow::Error::from)
    })?;
    match (estimate.llc_mean, estimate.llc_std) {
        (Some(m), Some(s)) => println!("λ̂ = {m:.4} ± {s:.4} (mean ± std over {} chains)", estimate.chains.len()),
        (Some(m), None) => println!("λ̂ = {m:.4} (one chain)"),
        _ => println!("λ̂: no estimate (every chain diverged)"),
    }
    println!(
        "nβ = {:.3} (β = {:.3e}), n = {}, d = {}, L(w*) = {:.5}",
        estimate.n_beta, estimate.beta, estimate.n, estimate.d, estimate.init_loss
    );
    match (estimate.wbic, estimate.n_expected_loss) {
        (Some(w), _) => println!("WBIC = {w:.2}"),
        (None, Some(v)) => println!("n·E_β[L] = {v:.2} at β = {:.3e} (WBIC only at nβ = n/ln n: pass --n-beta watanabe)", estimate.beta),
        _ => {}
    }
    println!(
        "diagnostics: R-hat {}, ESS {:.0}, MALA acceptance {}, draws below L(w*) {:.1}%, ‖w − w*‖ {} vs √(d/γ) {}, {:.1} s",
        estimate.r_hat.map_or("n/a".into(), |r| format!("{r:.3}")),
        estimate.ess,
        estimate.mala_acceptance_mean.map_or("n/a".into(), |a| format!("{a:.3}")),
        100.0 * estimate.below_init_share,
        estimate.mean_final_distance.map_or("n/a".into(), |d| format!("{d:.3}")),
        estimate.localization_scale.map_or("n/a".into(), |d| format!("{d:.3}")),
        estimate.seconds
    );
    for c in &estimate.chains {
        println!(
            "  chain {}: λ̂ {}{}",
            c.chain,
            c.llc.map_or("diverged".into(), |v| format!("{v:.4}")),
            c.diverged_at.map_or(String::new(), |t| format!(" (non-finite loss at step {t})"))
        );
    }
    for w in &estimate.warnings {
        println!("warning: {w}");
    }
    if let Some(path) = &args.json {
        slt_experiments::store::write_json(path, &estimate)?;
        eprintln!("estimate written to {}", path.display());
    }
    Ok(())
}
