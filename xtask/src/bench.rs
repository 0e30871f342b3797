//! `cargo xtask bench`: the speed of an SGD epoch of MLP 784-256-256-10, batch 128, on MNIST,
//! data assembly included, with a breakdown of a step and its ratio to the arithmetic floor
//! measured in the same run (the same matrix products without autodiff), since absolute times
//! on a shared machine mean little.

use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use slt_datasets::{resolve_data_dir, DatasetKind, RawSplits, SplitOptions};
use slt_experiments::BackendKind;
use slt_models::loss::cross_entropy;
use slt_optimizers::{Sgd, SgdConfig};

/// What `bench` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchWhat {
    /// A training epoch of SGD, with a step breakdown against the arithmetic floor.
    Sgd,
    /// An SGLD step and a λ̂ estimate.
    Llc,
    /// Natural-gradient steps against an SGD step.
    Ngd,
    /// Everything.
    All,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to time.
    #[arg(value_enum, default_value_t = BenchWhat::All)]
    what: BenchWhat,
    #[arg(long, value_enum)]
    backend: Option<crate::args::BackendArg>,
    /// Epochs to time (the median is reported).
    #[arg(long, default_value_t = 1, value_parser = crate::args::positive)]
    epochs: usize,
    /// Data directory (default: $SLT_DATA_DIR, else <repo>/datasets).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time_per_call(reps: usize, mut f: impl FnMut()) -> f64 {
    // Median of 5 blocks of `reps` calls, in seconds per call.
    let blocks: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    median(blocks)
}

fn bench<B: AutodiffBackend>(device: &B::Device, args: &BenchArgs, backend: BackendKind) -> anyhow::Result<()> {
    let data_dir = resolve_data_dir(args.data_dir.as_deref());
    let splits = RawSplits::load(DatasetKind::Mnist, &data_dir)
        .context("loading MNIST (run `cargo xtask fetch-data` first)")?
        .split(&SplitOptions::default())?;
    let train = &splits.train;
    let spec: slt_models::ModelSpec = "mlp-2x256".parse()?;
    let m = 128;
    let config = SgdConfig { lr: 0.01, ..Default::default() };

    // Step breakdown on one fixed batch.
    let indices: Vec<usize> = (0..m).collect();
    let batch = train.batch::<B>(&indices, device);
    let mut model = spec.init::<B>(0, device);
    let mut sgd = Sgd::<B>::new(config)?;
    let t_batch = time_per_call(50, || {
        let b = train.batch::<B>(&indices, device);
        let _ = b.inputs.into_data();
    });
    let t_fwd = time_per_call(50, || {
        let loss = cross_entropy(model.forward(batch.inputs.clone()), batch.one_hot.clone());
        let _ = loss.into_scalar().elem::<f64>();
    });
    let t_fwd_bwd = time_per_call(50, || {
        let loss = cross_entropy(model.forward(batch.inputs.clone()), batch.one_hot.clone());
        let grads = loss.backward();
        drop(grads);
    });
    let t_step = time_per_call(50, || {
        let loss = cross_entropy(model.forward(batch.inputs.clone()), batch.one_hot.clone());
        let _ = loss.clone().into_scalar().elem::<f64>();
        let grads = loss.backward();
        let (next, _) = sgd.step(model.clone(), &grads).expect("finite");
        model = next;
    });

    // Floor: the step's matrix products on the inner backend (no autodiff, no elementwise work).
    type I<B> = <B as AutodiffBackend>::InnerBackend;
    let x = Tensor::<I<B>, 2>::ones([m, 784], device);
    let w1 = Tensor::<I<B>, 2>::ones([784, 256], device);
    let w2 = Tensor::<I<B>, 2>::ones([256, 256], device);
    let w3 = Tensor::<I<B>, 2>::ones([256, 10], device);
    let h = Tensor::<I<B>, 2>::ones([m, 256], device);
    let o = Tensor::<I<B>, 2>::ones([m, 10], device);
    let t_gemm = time_per_call(50, || {
        // forward
        let a = x.clone().matmul(w1.clone());
        let b = h.clone().matmul(w2.clone());
        let c = h.clone().matmul(w3.clone());
        // backward: weight gradients and input gradients
        let g3 = h.clone().transpose().matmul(o.clone());
        let d2 = o.clone().matmul(w3.clone().transpose());
        let g2 = h.clone().transpose().matmul(h.clone());
        let d1 = h.clone().matmul(w2.clone().transpose());
        let g1 = x.clone().transpose().matmul(h.clone());
        let total = a.sum() + b.sum() + c.sum() + g3.sum() + d2.sum() + g2.sum() + d1.sum() + g1.sum();
        let _ = total.into_scalar().elem::<f64>();
    });

    if matches!(args.what, BenchWhat::Llc | BenchWhat::All) {
        bench_llc::<B>(device, train, t_step)?;
    }
    if matches!(args.what, BenchWhat::Ngd | BenchWhat::All) {
        bench_ngd::<B>(device, train, &batch, t_step)?;
    }
    if matches!(args.what, BenchWhat::Llc | BenchWhat::Ngd) {
        return Ok(());
    }

    // Full epochs, data assembly included.
    let mut epoch_times = Vec::new();
    let mut steps = 0;
    for epoch in 0..args.epochs {
        let mut model = spec.init::<B>(0, device);
        let mut sgd = Sgd::<B>::new(config)?;
        let batches = train.epoch_batches(m, 0, epoch as u64, false);
        steps = batches.len();
        let t = Instant::now();
        for idx in &batches {
            let batch = train.batch::<B>(idx, device);
            let loss = cross_entropy(model.forward(batch.inputs), batch.one_hot);
            let _ = loss.clone().into_scalar().elem::<f64>();
            let grads = loss.backward();
            let (next, _) = sgd.step(model, &grads)?;
            model = next;
        }
        epoch_times.push(t.elapsed().as_secs_f64());
    }
    let epoch = median(epoch_times);
    println!("backend {backend}, MLP 784-256-256-10, batch {m}, MNIST 60,000 samples, plain SGD");
    println!(
        "  epoch (data assembly included): {:.3} s  ({:.3} ms/step, {} steps)",
        epoch,
        1e3 * epoch / steps as f64,
        steps
    );
    println!("  step breakdown (one batch, ms): batch assembly {:.3}, forward+loss {:.3}, forward+backward {:.3}, full step {:.3}",
        1e3 * t_batch, 1e3 * t_fwd, 1e3 * t_fwd_bwd, 1e3 * t_step);
    println!("  matmul floor of a step (same products, no autodiff): {:.3} ms", 1e3 * t_gemm);
    println!("  ratio step / matmul floor: {:.2}", t_step / t_gemm);
    println!("  ratio epoch / (steps x step): {:.2}", epoch / (steps as f64 * t_step));
    println!("  reference (measured on an idle 2-core machine): PyTorch 0.97 s/epoch (2.06 ms/step); target <= 1.0 s, no worse than 1.3 s");
    Ok(())
}

/// Natural-gradient steps against the SGD step measured above in the same run (target:
/// the exact batch-Fisher step should cost at most 2x an SGD step; PyTorch measured 2.0).
fn bench_ngd<B: AutodiffBackend>(
    device: &B::Device,
    _train: &slt_datasets::Dataset,
    batch: &slt_datasets::ClassificationBatch<B>,
    t_step: f64,
) -> anyhow::Result<()> {
    use slt_optimizers::{FisherKind, Ngd, NgdConfig};
    let spec: slt_models::ModelSpec = "mlp-2x256".parse()?;
    println!(
        "Natural gradient (MLP 784-256-256-10, batch {}), step time / SGD step time ({:.3} ms):",
        batch.inputs.dims()[0],
        1e3 * t_step
    );
    for fisher in [FisherKind::Sampled, FisherKind::Empirical] {
        let mut model = spec.init::<B>(0, device);
        let mut ngd = Ngd::<B>::new(NgdConfig { lr: 1e-6, fisher, ..NgdConfig::paper() })?;
        let t = time_per_call(20, || {
            let (next, stats) = ngd.step(model.clone(), batch.inputs.clone(), batch.one_hot.clone()).expect("finite");
            assert!(stats.loss.is_finite());
            model = next;
        });
        println!("  exact NGD, {fisher:?} Fisher: {:.3} ms, ratio {:.2} (target <= 2.0)", 1e3 * t, t / t_step);
    }
    {
        // The online NGD of the paper's code (its paper settings), after its first 10 steps
        // (which all refresh the estimates): a forward, a backward and the per-tensor work.
        use slt_optimizers::{OnlineNgd, OnlineNgdConfig};
        let mut model = spec.init::<B>(0, device);
        let mut online = OnlineNgd::<B>::new(OnlineNgdConfig { lr: 1e-4, ..OnlineNgdConfig::paper() })?;
        let mut step = || {
            let loss = cross_entropy(model.forward(batch.inputs.clone()), batch.one_hot.clone());
            let _ = loss.clone().into_scalar().elem::<f64>();
            let grads = loss.backward();
            let (next, _) = online.step(model.clone(), &grads).expect("finite");
            model = next;
        };
        for _ in 0..10 {
            step();
        }
        let t = time_per_call(20, step);
        println!(
            "  online NGD (paper settings, estimates refreshed every 4 steps): {:.3} ms, ratio {:.2}",
            1e3 * t,
            t / t_step
        );
    }
    {
        // K-FAC, sampled Fisher: timed after the warm-up steps (eigendecompositions at every
        // step), so each block of 20 steps holds one recomputation at the default period 20;
        // then the cost with the eigendecompositions recomputed at every step.
        use slt_optimizers::kfac::{Kfac, KfacConfig, WARMUP_STEPS};
        for period in [KfacConfig::default().inverse_period, 1] {
            let mut model = spec.init::<B>(0, device);
            let mut kfac = Kfac::<B>::new(KfacConfig { lr: 1e-6, inverse_period: period, ..KfacConfig::default() })?;
            let mut step = || {
                let (next, stats) =
                    kfac.step(model.clone(), batch.inputs.clone(), batch.one_hot.clone()).expect("finite");
                assert!(stats.loss.is_finite());
                model = next;
            };
            for _ in 0..WARMUP_STEPS {
                step();
            }
            let t = time_per_call(if period == 1 { 2 } else { 20 }, step);
            println!(
                "  K-FAC, Sampled Fisher, inverses every {period} steps: {:.3} ms, ratio {:.2}",
                1e3 * t,
                t / t_step
            );
        }
    }
    Ok(())
}

/// SGLD step against a training step (measured above in the same run), and a whole LLC
/// estimate with devinterp's defaults (4 chains × 200 draws, init loss on the full training set).
fn bench_llc<B: AutodiffBackend>(device: &B::Device, train: &slt_datasets::Dataset, t_step: f64) -> anyhow::Result<()> {
    use slt_estimators::{InitLoss, SgldConfig};
    let model = "mlp-2x256".parse::<slt_models::ModelSpec>()?.init::<B>(0, device);
    let per_step = |mala: bool, chains: usize| -> anyhow::Result<f64> {
        let config = SgldConfig {
            num_chains: chains,
            num_draws: 100,
            init_loss: InitLoss::FirstBatches(1),
            mala,
            ..Default::default()
        };
        let e = slt_experiments::measure::llc_of_classifier::<B>(&model, train, &config, device, false)?;
        Ok(e.seconds / (100 * chains) as f64)
    };
    let _warm = per_step(false, 1)?;
    let sgld = median((0..3).map(|_| per_step(false, 1)).collect::<anyhow::Result<Vec<_>>>()?);
    let sgld_mala = median((0..3).map(|_| per_step(true, 1)).collect::<anyhow::Result<Vec<_>>>()?);
    let config = SgldConfig::default(); // devinterp's defaults: no MALA diagnostic
    let full = median(
        (0..3)
            .map(|_| {
                Ok(slt_experiments::measure::llc_of_classifier::<B>(&model, train, &config, device, false)?.seconds)
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    println!("SGLD (MLP 784-256-256-10, batch 128, one chain):");
    println!(
        "  SGLD step {:.3} ms without MALA, {:.3} ms with MALA; training step {:.3} ms",
        1e3 * sgld,
        1e3 * sgld_mala,
        1e3 * t_step
    );
    println!(
        "  ratio SGLD step / training step: {:.2} (MALA diagnostic on: {:.2}); target <= 1.5",
        sgld / t_step,
        sgld_mala / t_step
    );
    println!(
        "  LLC estimate, 4 chains x 200 draws, no MALA, init loss on all {} training examples: {:.2} s (target <= 3.5 s; devinterp 5.9-7.4 s on an idle machine)",
        train.len(),
        full
    );
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let backend = crate::args::backend(args.backend)?;
    slt_experiments::with_backend!(backend, |B, device| bench::<B>(&device, &args, backend))
}
