//! `cargo xtask llc`: λ̂, WBIC and diagnostics of saved weights.

use std::path::PathBuf;

use anyhow::Context;
use slt_datasets::{resolve_data_dir, DatasetKind, RawSplits, SplitOptions};
use slt_estimators::{InitLoss, Preconditioner, Residency, SgldConfig, Temperature};

use crate::args::{non_negative_real, positive, positive_real, WeightsArgs};

#[derive(clap::Args)]
pub struct LlcArgs {
    #[command(flatten)]
    w: WeightsArgs,
    /// SGLD step size ε.
    #[arg(long, default_value_t = 1e-4, value_parser = positive_real)]
    sgld_step: f64,
    /// Localisation γ.
    #[arg(long, default_value_t = 100.0, value_parser = positive_real)]
    gamma: f64,
    /// nβ: `batch` (m/ln m, default), `watanabe` (n/ln n, gives the WBIC) or a positive number.
    #[arg(long, default_value = "batch", value_parser = temperature)]
    n_beta: Temperature,
    #[arg(long, default_value_t = 4, value_parser = positive)]
    chains: usize,
    #[arg(long, default_value_t = 200, value_parser = positive)]
    draws: usize,
    #[arg(long, default_value_t = 0)]
    burnin: usize,
    #[arg(long, default_value_t = 128, value_parser = positive)]
    batch_size: usize,
    /// Weight decay of the sampler.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_real)]
    weight_decay: f64,
    /// Per-element bounding box half-width around w*.
    #[arg(long, value_parser = positive_real)]
    bounding_box: Option<f64>,
    /// init_loss from the first k minibatches (devinterp) instead of the full training set.
    #[arg(long, value_parser = positive)]
    init_batches: Option<usize>,
    /// Skip the MALA acceptance diagnostic (faster).
    #[arg(long)]
    no_mala: bool,
    /// Write the whole estimate as JSON here: per chain its draws and the observables recorded
    /// at every draw (`running_llc`, `weight_norm`, `distance`, `grad_norm`, `noise_norm`,
    /// `drift_norm`; they cost a few norms per draw).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the chains' per-step work lives: `auto` (on the device for GPU backends), `host`
    /// (noise drawn on the host: the same chain on every backend) or `device[:BLOCK]` (noise
    /// drawn on the device, losses read back once per BLOCK steps).
    #[arg(long, default_value = "auto", value_parser = residency)]
    residency: Residency,
    /// RMSprop-preconditioned SGLD (α 0.99, δ 0.1, devinterp's defaults) instead of plain SGLD;
    /// turns the MALA diagnostic off (it assumes plain proposals).
    #[arg(long)]
    rmsprop: bool,
    /// Metropolis-adjusted Langevin (MALA): each SGLD proposal is accepted or rejected so that
    /// the chain samples the localised posterior exactly at any --sgld-step. Needs the
    /// full-batch loss: --batch-size at least the training set's size (--train-subset).
    #[arg(long, conflicts_with = "rmsprop")]
    metropolis: bool,
}

fn residency(arg: &str) -> Result<Residency, String> {
    match arg {
        "auto" => Ok(Residency::Auto),
        "host" => Ok(Residency::Host),
        "device" => Ok(Residency::Device(32)),
        other => other
            .strip_prefix("device:")
            .and_then(|b| b.parse::<usize>().ok())
            .filter(|&b| b > 0)
            .map(Residency::Device)
            .ok_or_else(|| format!("expected auto, host, device or device:BLOCK with BLOCK ≥ 1, got {other:?}")),
    }
}

fn temperature(arg: &str) -> Result<Temperature, String> {
    Ok(match arg {
        "batch" => Temperature::BatchDefault,
        "watanabe" => Temperature::Watanabe,
        other => Temperature::Fixed(
            crate::args::positive_real(other)
                .map_err(|e| format!("expected batch, watanabe or a positive number ({e})"))?,
        ),
    })
}

pub fn run(args: LlcArgs) -> anyhow::Result<()> {
    let backend = crate::args::backend(args.w.backend)?;
    let dataset: DatasetKind = args.w.dataset.into();
    let spec = args.w.model;
    // Traces (a few f64 per draw per chain) and a few copies of the weights per chain.
    let d = spec.num_params() as f64;
    let chains = args.chains as f64;
    let steps = args.draws as f64 + args.burnin as f64;
    crate::args::ensure_fits("--chains × (--draws + --burnin)", chains * (64.0 * steps + 16.0 * d))?;
    let config = SgldConfig {
        step_size: args.sgld_step,
        temperature: args.n_beta,
        localization: args.gamma,
        weight_decay: args.weight_decay,
        bounding_box: args.bounding_box,
        num_chains: args.chains,
        num_draws: args.draws,
        num_burnin: args.burnin,
        thin: 1,
        batch_size: args.batch_size,
        seed: args.w.seed,
        init_loss: args.init_batches.map(InitLoss::FirstBatches).unwrap_or(InitLoss::FullDataset),
        mala: !args.no_mala && !args.rmsprop,
        metropolis: args.metropolis,
        residency: args.residency,
        preconditioner: if args.rmsprop { Preconditioner::rmsprop() } else { Preconditioner::None },
    };
    let splits = RawSplits::load(dataset, &resolve_data_dir(args.w.data_dir.as_deref()))
        .context("loading the data")?
        .split(&SplitOptions { train_subset: args.w.train_subset, seed: args.w.seed, ..Default::default() })?;
    config.validate(splits.train.len()).context("invalid SGLD options")?;
    if let Some(k) = args.init_batches {
        let available = splits.train.len().div_ceil(args.batch_size);
        anyhow::ensure!(
            k <= available,
            "--init-batches {k}: the training set has only {available} batches of --batch-size {}",
            args.batch_size
        );
    }

    let estimate = slt_experiments::with_backend!(backend, |B, device| {
        let model = slt_experiments::weights::load(spec.init::<B>(0, &device), &args.w.weights)?;
        use slt_estimators::observe::{DistanceFromStart, GradientNorm, NoiseNorm, Observers, RunningLlc, WeightNorm};
        // The built-in observables go into the JSON; without --json nothing would read them.
        let observables = Observers::new()
            .with(RunningLlc)
            .with(WeightNorm)
            .with(DistanceFromStart)
            .with(GradientNorm)
            .with(NoiseNorm);
        let observers = args.json.is_some().then_some(&observables as &dyn slt_estimators::ChainObserver<_>);
        slt_experiments::measure::llc_of_classifier_observed::<B>(
            &model,
            &splits.train,
            &config,
            &device,
            true,
            observers,
        )
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
        (None, Some(v)) => println!(
            "n·E_β[L] = {v:.2} at β = {:.3e} (WBIC only at nβ = n/ln n: pass --n-beta watanabe)",
            estimate.beta
        ),
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
    anyhow::ensure!(
        estimate.llc_mean.is_some(),
        "no estimate: every chain diverged (try a smaller --sgld-step than {:e} or a larger --gamma)",
        args.sgld_step
    );
    Ok(())
}
