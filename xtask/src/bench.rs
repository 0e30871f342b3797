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
    /// Hessian-vector products, a 100-probe trace and the top eigenvalue on 1,000 examples.
    Hessian,
    /// Everything.
    All,
    /// One table of the workloads that matter on a GPU (SGD epoch, SGLD step with the noise
    /// and losses on the host and on the device, 4 × 200 λ̂, HVP, 100-probe trace), each timed
    /// on `--backend` and on `--beside` in the same run, rounds interleaved.
    Table,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to time.
    #[arg(value_enum, default_value_t = BenchWhat::All)]
    what: BenchWhat,
    #[arg(long, value_enum)]
    backend: Option<crate::args::BackendArg>,
    /// The backend `table` times beside `--backend` (default: flex).
    #[arg(long, value_enum)]
    beside: Option<crate::args::BackendArg>,
    /// Epochs to time (the median is reported).
    #[arg(long, default_value_t = 1, value_parser = crate::args::positive)]
    epochs: usize,
    /// Data directory (default: $SLT_DATA_DIR, else <repo>/datasets).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Also run the Python references of `bench/reference/` (PyTorch SGD, devinterp's LLC,
    /// PyHessian), interleaved with ours, and print the ratios. Python is
    /// $SLT_REFERENCE_PYTHON, else `python3`; it needs the packages of
    /// `bench/reference/requirements.txt`.
    #[arg(long)]
    compare: bool,
    /// Rounds of the comparison (each runs ours, then the reference, per workload); medians
    /// are reported.
    #[arg(long, default_value_t = 3, value_parser = crate::args::positive)]
    rounds: usize,
}

/// The benchmarks' model (MLP 784-256-256-10, the reference scripts' model too), batch size and
/// SGD learning rate.
const MODEL: &str = "mlp-2x256";
const BATCH: usize = 128;
const SGD_LR: f64 = 0.01;

fn model_spec() -> anyhow::Result<slt_models::ModelSpec> {
    Ok(MODEL.parse()?)
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
    let spec = model_spec()?;
    let m = BATCH;
    let config = SgdConfig { lr: SGD_LR, ..Default::default() };

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
    if matches!(args.what, BenchWhat::Hessian | BenchWhat::All) {
        let h = time_hessian::<B>(train, device)?;
        println!("Hessian (MLP 784-256-256-10, seed-0 weights, the first {HESSIAN_EXAMPLES} training examples in one batch, exact R-operator products):");
        println!(
            "  set-up (forward + first backward, recorded) {:.2} ms; HVP {:.2} ms ({:.2} x a training step); 100-probe Hutchinson trace {:.3} s (Tr(H) = {:.4}); top eigenvalue by power iteration (tol 1e-3, as PyHessian) {:.3} s ({:.4}, {} products)",
            1e3 * h.setup, 1e3 * h.hvp, h.hvp / t_step, h.trace_100, h.trace, h.top_eig_seconds, h.top_eig, h.top_eig_products
        );
    }
    if !matches!(args.what, BenchWhat::All | BenchWhat::Sgd) {
        return Ok(());
    }

    // Full epochs, data assembly included.
    let steps = train.epoch_batches(m, 0, 0, false).len();
    let epoch_times = (0..args.epochs)
        .map(|e| sgd_epoch_seconds::<B>(train, e as u64, device))
        .collect::<anyhow::Result<Vec<_>>>()?;
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

/// A whole λ̂ estimate at the seed-0 `mlp-2x256` with devinterp's defaults (4 chains × 200
/// draws, ε 1e-4, γ 100, batch 128, init loss on the full training set), in seconds.
fn llc_seconds<B: AutodiffBackend>(train: &slt_datasets::Dataset, device: &B::Device) -> anyhow::Result<f64> {
    let model = model_spec()?.init::<B>(0, device);
    let config = slt_estimators::SgldConfig::default(); // devinterp's defaults: no MALA diagnostic
    Ok(slt_experiments::measure::llc_of_classifier::<B>(&model, train, &config, device, false)?.seconds)
}

/// One SGD epoch of `mlp-2x256` (lr 0.01, batch 128, fresh seed-0 model), data assembly and a
/// loss read-back per step included, in seconds.
fn sgd_epoch_seconds<B: AutodiffBackend>(
    train: &slt_datasets::Dataset,
    epoch: u64,
    device: &B::Device,
) -> anyhow::Result<f64> {
    let mut model = model_spec()?.init::<B>(0, device);
    let mut sgd = Sgd::<B>::new(SgdConfig { lr: SGD_LR, ..Default::default() })?;
    let batches = train.epoch_batches(BATCH, 0, epoch, false);
    let t = Instant::now();
    for idx in &batches {
        let batch = train.batch::<B>(idx, device);
        let loss = cross_entropy(model.forward(batch.inputs), batch.one_hot);
        let _ = loss.clone().into_scalar().elem::<f64>();
        let grads = loss.backward();
        let (next, _) = sgd.step(model, &grads)?;
        model = next;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Examples of the Hessian benchmark (PyHessian's comparison script uses the same number).
const HESSIAN_EXAMPLES: usize = 1000;

/// What [`time_hessian`] measures, in seconds.
struct HessianTimes {
    setup: f64,
    hvp: f64,
    trace_100: f64,
    trace: f64,
    top_eig_seconds: f64,
    top_eig: f64,
    top_eig_products: usize,
}

/// Exact R-operator products of `mlp-2x256` (seed-0 weights) on the first
/// [`HESSIAN_EXAMPLES`] training examples in one batch: the set-up, the median of 20 products,
/// a 100-probe Hutchinson trace and power iteration's top eigenvalue with PyHessian's defaults
/// (relative tolerance 1e-3, at most 100 iterations).
fn time_hessian<B: AutodiffBackend>(train: &slt_datasets::Dataset, device: &B::Device) -> anyhow::Result<HessianTimes> {
    use slt_hessian::{eigen, trace, EvalSet, PowerOptions, SymmetricOperator};
    type I<B> = <B as AutodiffBackend>::InnerBackend;
    let model = model_spec()?.init::<I<B>>(0, device);
    let idx: Vec<usize> = (0..HESSIAN_EXAMPLES.min(train.len())).collect();
    let t = Instant::now();
    let eval = EvalSet::uniform(vec![train.batch::<I<B>>(&idx, device)])?;
    let op = slt_experiments::measure::hessian_operator(&model, eval)?;
    let setup = t.elapsed().as_secs_f64();
    let v: Vec<f64> = (0..op.dim()).map(|i| if i % 3 == 0 { 1.0 } else { -1.0 }).collect();
    op.apply(&v)?;
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        std::hint::black_box(op.apply(&v)?);
        times.push(t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let tr =
        trace::hutchinson(&op, &trace::HutchinsonOptions { max_probes: 100, min_probes: 100, rel_tol: None, seed: 0 })?;
    let trace_100 = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let top = eigen::power_iteration(&op, &PowerOptions { k: 1, max_iter: 100, tol: 1e-3, seed: 0 })?;
    Ok(HessianTimes {
        setup,
        hvp: median(times),
        trace_100,
        trace: tr.trace,
        top_eig_seconds: t.elapsed().as_secs_f64(),
        top_eig: top.values[0],
        top_eig_products: top.matvecs,
    })
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
    let spec = model_spec()?;
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
    let model = model_spec()?.init::<B>(0, device);
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
    let full = median((0..3).map(|_| llc_seconds::<B>(train, device)).collect::<anyhow::Result<Vec<_>>>()?);
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

/// The Python of the references: $SLT_REFERENCE_PYTHON, else `python3`.
fn reference_python() -> String {
    std::env::var("SLT_REFERENCE_PYTHON").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "python3".into())
}

/// Fails early, before anything is timed, when the reference Python or its packages are missing.
fn check_reference_python() -> anyhow::Result<()> {
    let python = reference_python();
    let fix = "set SLT_REFERENCE_PYTHON to a Python with the packages of bench/reference/requirements.txt (see bench/reference/README.md)";
    let out = std::process::Command::new(&python)
        .args(["-c", "import torch, numpy, devinterp, pyhessian"])
        .output()
        .with_context(|| format!("bench --compare: cannot run the reference Python `{python}`: {fix}"))?;
    anyhow::ensure!(
        out.status.success(),
        "bench --compare: the reference Python `{python}` lacks a package ({}): {fix}",
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("").trim()
    );
    Ok(())
}

/// Runs `bench/reference/<script> <flags>` and parses the JSON object on its last stdout line.
fn run_reference(script: &str, flags: &[&str], data_dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let python = reference_python();
    // xtask sits in `<repo>/xtask`.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
    let path = repo.join("bench/reference").join(script);
    let out = std::process::Command::new(&python)
        .arg(&path)
        .args(flags)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .with_context(|| format!("running {python} {} (set SLT_REFERENCE_PYTHON to a Python with the packages of bench/reference/requirements.txt)", path.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed ({}): {} (install the packages of bench/reference/requirements.txt; see bench/reference/README.md)",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(last)
        .with_context(|| format!("{}: expected a JSON object on its last line, got {last:?}", path.display()))
}

fn number(v: &serde_json::Value, key: &str) -> anyhow::Result<f64> {
    v[key].as_f64().with_context(|| format!("reference output lacks the number `{key}`: {v}"))
}

/// `bench --compare`: per round and workload, ours then the reference, so that both see the
/// same machine load; medians over the rounds and their ratios.
fn compare<B: AutodiffBackend>(device: &B::Device, args: &BenchArgs, backend: BackendKind) -> anyhow::Result<()> {
    check_reference_python()?;
    let data_dir = resolve_data_dir(args.data_dir.as_deref());
    let splits = RawSplits::load(DatasetKind::Mnist, &data_dir)
        .context("loading MNIST (run `cargo xtask fetch-data` first)")?
        .split(&SplitOptions::default())?;
    let train = &splits.train;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
    let which = |w: BenchWhat| args.what == BenchWhat::All || args.what == w;
    // (label, ours, reference) per measured quantity.
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut push = |label: &'static str, ours: f64, theirs: f64| match rows.iter_mut().find(|r| r.0 == label) {
        Some(r) => {
            r.1.push(ours);
            r.2.push(theirs);
        }
        None => rows.push((label, vec![ours], vec![theirs])),
    };
    let mut versions = std::collections::BTreeMap::new();
    for round in 0..args.rounds {
        eprintln!("round {}/{}", round + 1, args.rounds);
        if which(BenchWhat::Sgd) {
            let ours = sgd_epoch_seconds::<B>(train, round as u64, device)?;
            let r = run_reference("sgd_epoch.py", &["--epochs", "1", "--threads", &threads], &data_dir)?;
            versions.insert("torch", r["torch"].as_str().unwrap_or("?").to_string());
            push("SGD epoch, 60k, batch 128 (s) vs PyTorch", ours, number(&r, "seconds_median")?);
        }
        if which(BenchWhat::Llc) {
            let ours = llc_seconds::<B>(train, device)?;
            let r = run_reference("llc_devinterp.py", &["--repeats", "1", "--threads", &threads], &data_dir)?;
            versions.insert("devinterp", r["devinterp"].as_str().unwrap_or("?").to_string());
            push("LLC 4 chains x 200 draws (s) vs devinterp", ours, number(&r, "seconds_median")?);
        }
        if which(BenchWhat::Hessian) {
            let ours = time_hessian::<B>(train, device)?;
            let r = run_reference("hessian_pyhessian.py", &["--examples", "1000", "--threads", &threads], &data_dir)?;
            versions.insert("pyhessian", r["pyhessian"].as_str().unwrap_or("?").to_string());
            push("HVP, 1,000 examples (ms) vs PyHessian", 1e3 * ours.hvp, 1e3 * number(&r, "hvp_seconds")?);
            push("100-probe trace (s) vs PyHessian", ours.trace_100, number(&r, "trace_100_seconds")?);
            push("top eigenvalue (s) vs PyHessian", ours.top_eig_seconds, number(&r, "top_eig_seconds")?);
        }
    }
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().ok();
    let date = date.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    println!(
        "bench --compare, {date}, backend {backend}, {threads} threads, MLP 784-256-256-10 on MNIST; medians of {} interleaved rounds; references: {}",
        args.rounds,
        versions.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    println!("| workload | ours | reference | ours / reference |");
    println!("|---|---|---|---|");
    for (label, ours, theirs) in rows {
        let (o, t) = (median(ours), median(theirs));
        println!("| {label} | {o:.3} | {t:.3} | {:.2} |", o / t);
    }
    Ok(())
}

/// The workloads of `bench table`, in seconds, one round on one backend.
#[derive(Clone, Copy)]
struct TableRound {
    sgd_epoch: f64,
    sgld_host: f64,
    sgld_device: f64,
    llc: f64,
    hvp: f64,
    trace_100: f64,
}

/// An SGLD step of one chain (100 draws, init loss from one batch) of the seed-0 `mlp-2x256`,
/// with its per-step work where `residency` says, in seconds.
fn sgld_step_seconds<B: AutodiffBackend>(
    train: &slt_datasets::Dataset,
    device: &B::Device,
    residency: slt_estimators::Residency,
) -> anyhow::Result<f64> {
    use slt_estimators::{InitLoss, SgldConfig};
    let model = model_spec()?.init::<B>(0, device);
    let config = SgldConfig {
        num_chains: 1,
        num_draws: 100,
        init_loss: InitLoss::FirstBatches(1),
        residency,
        ..Default::default()
    };
    let e = slt_experiments::measure::llc_of_classifier::<B>(&model, train, &config, device, false)?;
    Ok(e.seconds / 100.0)
}

fn table_round<B: AutodiffBackend>(train: &slt_datasets::Dataset, device: &B::Device) -> anyhow::Result<TableRound> {
    use slt_estimators::Residency;
    let sgd_epoch = sgd_epoch_seconds::<B>(train, 0, device)?;
    let sgld_host = sgld_step_seconds::<B>(train, device, Residency::Host)?;
    let d = model_spec()?.num_params();
    let sgld_device = sgld_step_seconds::<B>(train, device, Residency::Device(Residency::auto_block(d)))?;
    let llc = llc_seconds::<B>(train, device)?;
    let h = time_hessian::<B>(train, device)?;
    Ok(TableRound { sgd_epoch, sgld_host, sgld_device, llc, hvp: h.hvp, trace_100: h.trace_100 })
}

/// `bench table`: a warm-up round on each backend (shader compilation and autotuning on GPU
/// backends), then `rounds` rounds alternating between the two; medians and ratios.
fn table(args: &BenchArgs, backend: BackendKind) -> anyhow::Result<()> {
    let beside = crate::args::backend(Some(args.beside.unwrap_or(crate::args::BackendArg::Flex)))?;
    let data_dir = resolve_data_dir(args.data_dir.as_deref());
    let splits = RawSplits::load(DatasetKind::Mnist, &data_dir)
        .context("loading MNIST (run `cargo xtask fetch-data` first)")?
        .split(&SplitOptions::default())?;
    let train = &splits.train;
    let mut names = Vec::new();
    for kind in [backend, beside] {
        names.push(slt_experiments::with_backend!(kind, |B, device| {
            eprintln!("warm-up round on {kind}");
            table_round::<B>(train, &device)?;
            Ok::<_, anyhow::Error>(<<B as AutodiffBackend>::InnerBackend as burn::tensor::backend::Backend>::name(
                &device,
            ))
        })?);
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        eprintln!("round {}/{}", round + 1, args.rounds);
        ours.push(slt_experiments::with_backend!(backend, |B, device| table_round::<B>(train, &device))?);
        theirs.push(slt_experiments::with_backend!(beside, |B, device| table_round::<B>(train, &device))?);
    }
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().ok();
    let date = date.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    println!(
        "bench table, {date}: {backend} ({}) beside {beside} ({}), MLP 784-256-256-10 on MNIST, batch {BATCH}; medians of {} rounds after a warm-up round",
        names[0], names[1], args.rounds
    );
    println!("| workload | {backend} | {beside} | {backend} / {beside} |");
    println!("|---|---|---|---|");
    type Row = (&'static str, f64, fn(&TableRound) -> f64);
    let rows: [Row; 6] = [
        ("SGD epoch, 60k examples (s)", 1.0, |r| r.sgd_epoch),
        ("SGLD step, noise and losses on the host (ms)", 1e3, |r| r.sgld_host),
        ("SGLD step, noise and losses on the device (ms)", 1e3, |r| r.sgld_device),
        ("λ̂, 4 chains × 200 draws (s)", 1.0, |r| r.llc),
        ("HVP, 1,000 examples (ms)", 1e3, |r| r.hvp),
        ("100-probe Hutchinson trace (s)", 1.0, |r| r.trace_100),
    ];
    for (label, scale, get) in rows {
        let a = median(ours.iter().map(get).collect());
        let b = median(theirs.iter().map(get).collect());
        println!("| {label} | {:.3} | {:.3} | {:.2} |", scale * a, scale * b, a / b);
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let backend = crate::args::backend(args.backend)?;
    if args.what == BenchWhat::Table {
        return table(&args, backend);
    }
    if args.compare {
        return slt_experiments::with_backend!(backend, |B, device| compare::<B>(&device, &args, backend));
    }
    slt_experiments::with_backend!(backend, |B, device| bench::<B>(&device, &args, backend))
}
