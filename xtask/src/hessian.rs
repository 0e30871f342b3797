//! `cargo xtask hessian`: Tr(H), top eigenvalues and the spectral density of saved weights, over
//! a fixed evaluation set of training batches (the paper: 10 batches of 128), exact
//! Hessian-vector products (R-operator by default, double backward with `--products double-backward`).

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use slt_datasets::{resolve_data_dir, ClassificationBatch, DatasetKind, RawSplits, SplitOptions};
use slt_experiments::BackendKind;
use slt_hessian::{eigen, slq_density, trace, ExactHvp, LanczosOptions, PowerOptions, SlqOptions, SymmetricOperator};
use slt_models::{Classifier, ModelSpec};

use crate::args::{positive, WeightsArgs};

/// `--trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceArg {
    /// Rademacher probes, stopping early at 1 % relative standard error.
    Hutchinson,
    /// Hutch++ (a low-rank sketch plus Hutchinson on the rest).
    Hutchpp,
}

/// `--products`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProductsArg {
    /// Pearlmutter's R-operator on the plain backend, the forward and first backward pass
    /// recorded once (exact; the default).
    Rop,
    /// Double backward on nested autodiff (exact; slower, for cross-checking).
    DoubleBackward,
}

#[derive(clap::Args)]
pub struct HessianArgs {
    #[command(flatten)]
    w: WeightsArgs,
    #[arg(long, value_enum, default_value_t = TraceArg::Hutchinson)]
    trace: TraceArg,
    /// Hessian-vector products for the trace (Hutchinson stops earlier at 1% relative error).
    #[arg(long, default_value_t = 100, value_parser = positive)]
    probes: usize,
    /// How Hessian-vector products are formed (both exact).
    #[arg(long, value_enum, default_value_t = ProductsArg::Rop)]
    products: ProductsArg,
    /// Top eigenvalues to compute (Lanczos, checked against power iteration for the first).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Also estimate the spectral density (stochastic Lanczos quadrature).
    #[arg(long)]
    density: bool,
    /// Draw the spectral density (log-scale density against eigenvalue) to STEM.png and
    /// STEM.svg; implies --density.
    #[arg(long, value_name = "STEM")]
    plot: Option<PathBuf>,
    /// Evaluation set: this many training batches...
    #[arg(long, default_value_t = 10, value_parser = positive)]
    batches: usize,
    /// ...of this size, chosen by --seed.
    #[arg(long, default_value_t = 128, value_parser = positive)]
    batch_size: usize,
    /// Write all results (density grid included) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn trace_name(t: TraceArg) -> &'static str {
    match t {
        TraceArg::Hutchinson => "hutchinson",
        TraceArg::Hutchpp => "hutchpp",
    }
}

type Inner<F> = burn_autodiff::Autodiff<F>;
type Outer<F> = burn_autodiff::Autodiff<Inner<F>>;

fn run_on<F: Backend>(
    args: &HessianArgs,
    spec: ModelSpec,
    train: &slt_datasets::Dataset,
    device: &F::Device,
) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(
        args.batches.saturating_mul(args.batch_size) <= train.len(),
        "--batches × --batch-size exceeds the {} training examples",
        train.len()
    );
    use slt_experiments::measure::hessian_eval_set;
    let (hvp, loss, grad): (Box<dyn SymmetricOperator>, f64, Vec<f64>) = match args.products {
        ProductsArg::Rop => {
            let model: Classifier<F> = slt_experiments::weights::load(spec.init::<F>(0, device), &args.w.weights)?;
            let eval = hessian_eval_set::<F>(train, args.batches, args.batch_size, args.w.seed, device)?;
            let hvp = slt_experiments::measure::hessian_operator(&model, eval)?;
            let (loss, grad) = (hvp.loss(), hvp.gradient().to_vec());
            (Box::new(hvp), loss, grad)
        }
        ProductsArg::DoubleBackward => {
            let model: Classifier<Inner<F>> =
                slt_experiments::weights::load(spec.init::<Inner<F>>(0, device), &args.w.weights)?;
            let eval = hessian_eval_set::<Outer<F>>(train, args.batches, args.batch_size, args.w.seed, device)?;
            let loss = |m: &Classifier<Outer<F>>, b: &ClassificationBatch<Outer<F>>| {
                slt_experiments::measure::classifier_loss(m, b)
            };
            let hvp = ExactHvp::<Outer<F>, Classifier<Outer<F>>, _, _>::new(model, eval, loss)?;
            let (loss, grad) = hvp.loss_and_gradient()?;
            (Box::new(hvp), loss, grad)
        }
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {pos} Hessian-vector products {per_sec:>10}").expect("valid template"),
    );
    let op = slt_hessian::operator::Observed::new(&*hvp, |_| bar.inc(1));
    let d = op.dim();
    let grad_norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    let mut out = json!({
        "model": spec.to_string(), "dataset": DatasetKind::from(args.w.dataset).name(), "d": d,
        "eval_examples": args.batches * args.batch_size, "loss": loss, "grad_norm": grad_norm,
        "products": match args.products { ProductsArg::Rop => "r-operator", ProductsArg::DoubleBackward => "double-backward" },
    });
    bar.set_message("trace");
    let t = if args.trace == TraceArg::Hutchpp {
        trace::hutch_pp(&op, args.probes, args.w.seed)?
    } else {
        trace::hutchinson(
            &op,
            &trace::HutchinsonOptions { max_probes: args.probes, seed: args.w.seed, ..Default::default() },
        )?
    };
    println!(
        "Tr(H) = {:.4} ± {:.4} ({}, {} products; d = {d}, loss {:.5}, ‖g‖ {:.4})",
        t.trace,
        t.std_error,
        trace_name(args.trace),
        t.matvecs,
        out["loss"].as_f64().unwrap_or(f64::NAN),
        grad_norm
    );
    out["trace"] = json!({"method": trace_name(args.trace), "value": t.trace, "std_error": t.std_error, "matvecs": t.matvecs, "converged": t.converged});
    if args.top_k > 0 {
        bar.set_message("Lanczos");
        let l = eigen::lanczos(&op, &LanczosOptions { k: args.top_k, seed: args.w.seed, ..Default::default() })?;
        bar.set_message("power iteration");
        // PyHessian's relative tolerance 1e-3 stops early when the top two eigenvalues are
        // close (measured: 7.12 instead of 7.62 on a trained MLP): use 1e-6.
        let p = eigen::power_iteration(&op, &PowerOptions { k: 1, seed: args.w.seed, tol: 1e-6, max_iter: 1000 })?;
        println!(
            "top eigenvalues (Lanczos, largest algebraic): {:?}",
            l.values.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>()
        );
        println!(
            "largest |λ| by power iteration: {:.5} (PyHessian's method, relative tolerance 1e-6, {} products)",
            p.values[0], p.matvecs
        );
        let top = l.values.iter().fold(0f64, |m, v| m.max(v.abs()));
        if (p.values[0].abs() - top).abs() > 0.01 * top {
            println!(
                "warning: power iteration and Lanczos disagree on the top eigenvalue ({:.5} vs {top:.5}): close eigenvalues slow power iteration; trust Lanczos (residuals in --json)",
                p.values[0]
            );
        }
        out["top_eigenvalues"] =
            json!({"lanczos": l.values, "lanczos_residuals": l.residuals, "power_iteration_top": p.values[0]});
    }
    if args.density || args.plot.is_some() {
        bar.set_message("SLQ density");
        let s = slq_density(&op, &SlqOptions { seed: args.w.seed, ..Default::default() })?;
        println!(
            "spectral density: {} probes × {} Lanczos nodes, σ = {:.3e}, integral {:.4}, mean eigenvalue {:.4e} (grid in --json)",
            s.nodes.len(),
            s.nodes.first().map_or(0, Vec::len),
            s.sigma,
            s.integral(),
            s.moment(1)
        );
        if let Some(stem) = &args.plot {
            use slt_plot::{line_chart, Chart, DensityCurve};
            let curve = DensityCurve { label: "", grid: &s.grid, density: &s.density };
            let chart = Chart::density(
                format!("Hessian spectral density: {spec} on {}", DatasetKind::from(args.w.dataset)),
                &[curve],
                true,
            )
            .annotation(format!(
                "SLQ: {} probes × {} Lanczos nodes, σ = {:.3e}; Tr(H) = {:.4} ± {:.4}; {} examples, seed {}",
                s.nodes.len(),
                s.nodes.first().map_or(0, Vec::len),
                s.sigma,
                t.trace,
                t.std_error,
                args.batches * args.batch_size,
                args.w.seed
            ));
            let files = line_chart(stem, &chart)?;
            eprintln!("density plot written to {} and {}", files.png.display(), files.svg.display());
        }
        out["density"] =
            json!({"nodes": s.nodes, "weights": s.weights, "sigma": s.sigma, "grid": s.grid, "density": s.density});
    }
    bar.finish_and_clear();
    Ok(out)
}

pub fn run(args: HessianArgs) -> anyhow::Result<()> {
    let backend = crate::args::backend(args.w.backend)?;
    let dataset: DatasetKind = args.w.dataset.into();
    let spec: ModelSpec = args.w.model;
    let splits = RawSplits::load(dataset, &resolve_data_dir(args.w.data_dir.as_deref()))
        .context("loading the data")?
        .split(&SplitOptions { train_subset: args.w.train_subset, seed: args.w.seed, ..Default::default() })?;
    let out = match backend {
        #[cfg(feature = "flex")]
        BackendKind::Flex => run_on::<burn_flex::Flex>(&args, spec, &splits.train, &Default::default())?,
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => run_on::<burn_ndarray::NdArray<f32>>(&args, spec, &splits.train, &Default::default())?,
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            let device = burn_wgpu::WgpuDevice::default();
            slt_experiments::backend::probe_wgpu(&device)?;
            run_on::<burn_wgpu::Wgpu>(&args, spec, &splits.train, &device)?
        }
        #[allow(unreachable_patterns)]
        other => anyhow::bail!("backend '{other}' is not compiled into this binary"),
    };
    if let Some(path) = &args.json {
        slt_experiments::store::write_json(path, &out)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}
