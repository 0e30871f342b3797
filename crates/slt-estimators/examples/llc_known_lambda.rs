//! λ̂ for your own burn module, in the few lines a user writes: a module, a batch source, a loss
//! closure and an [`SgldConfig`]. Two models whose learning coefficient is known are estimated
//! and printed beside the truth:
//!
//! * a regular linear regression y = x·w, w ∈ ℝ⁴: λ = d/2 = 2;
//! * the singular model y = x·(a² + b² + c²) at a = b = c = 0: K ∝ (a² + b² + c²)², so
//!   λ = 3/4 (the "minimally singular" case, r/4 for r weights).
//!
//! The SGLD step is per model, as it must be: at w* the regular model has curvature nβ·E[x²] ≈
//! 1e4, and ε·nβ·h/4 is the relative inflation of the sampled variance by the Euler step, so it
//! needs ε ≈ 5e-6; the singular model is flat at w* and needs a larger ε to mix.
//!
//! Run: `cargo run --release -p slt-estimators --example llc_known_lambda` (about 4 s).

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use slt_estimators::{estimate_llc, FnSource, SgldConfig, Temperature};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;

/// y = x·w.
#[derive(Module, Debug)]
struct Linear<B: Backend> {
    w: Param<Tensor<B, 2>>,
}

/// y = x·Σᵢ wᵢ².
#[derive(Module, Debug)]
struct SumOfSquares<B: Backend> {
    w: Param<Tensor<B, 1>>,
}

fn tensor<const D: usize>(values: Vec<f64>, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

/// λ̂ of `model` at its current weights, on inputs `x` with noiseless targets `forward(model, x)`
/// (so the current weights are a true minimum), under the squared-error loss ½‖y − ŷ‖².
fn llc<M: burn::module::AutodiffModule<B>>(
    model: &M,
    forward: impl Fn(&M, Tensor<B, 2>) -> Tensor<B, 2> + Sync,
    x: Tensor<B, 2>,
    step_size: f64,
) -> anyhow::Result<(f64, f64)> {
    let y = forward(model, x.clone()).detach();
    let rows = |t: &Tensor<B, 2>, idx: &[usize]| {
        let idx = idx.iter().map(|&i| i as i64).collect::<Vec<_>>();
        t.clone().select(0, Tensor::<B, 1, Int>::from_data(TensorData::new(idx.clone(), [idx.len()]), &t.device()))
    };
    let source = FnSource::new(x.dims()[0], |idx: &[usize]| (rows(&x, idx), rows(&y, idx)));
    let loss = |m: &M, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)| {
        let residual = forward(m, x.clone()) - y.clone();
        residual.square().mean().mul_scalar(0.5 * y.dims()[1] as f64)
    };
    let config = SgldConfig {
        step_size,
        temperature: Temperature::Fixed(1e4),
        localization: 10.0,
        num_chains: 4,
        num_draws: 4000,
        num_burnin: 4000,
        batch_size: 256,
        seed: 0,
        ..Default::default()
    };
    let estimate = estimate_llc(model, &source, &loss, &config, None)?;
    for warning in &estimate.warnings {
        eprintln!("  warning: {warning}");
    }
    let mean = estimate.llc_mean.ok_or_else(|| anyhow::anyhow!("every chain diverged"))?;
    Ok((mean, estimate.llc_std.unwrap_or(f64::NAN)))
}

fn main() -> anyhow::Result<()> {
    let n = 4096;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let mut normal = |k: usize| (0..k).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal)).collect::<Vec<_>>();

    let linear = Linear { w: Param::from_tensor(tensor(normal(4), [4, 1])) };
    let (mean, std) = llc(&linear, |m, x| x.matmul(m.w.val()), tensor(normal(n * 4), [n, 4]), 5e-6)?;
    println!("linear regression, d = 4: λ̂ = {mean:.3} ± {std:.3} (true λ = 2)");

    let singular = SumOfSquares { w: Param::from_tensor(tensor(vec![0.0; 3], [3])) };
    let squares = |m: &SumOfSquares<B>| m.w.val().square().sum().reshape([1, 1]);
    let (mean, std) = llc(&singular, |m, x| x.matmul(squares(m)), tensor(normal(n), [n, 1]), 1e-4)?;
    println!("x·(a² + b² + c²) at 0:     λ̂ = {mean:.3} ± {std:.3} (true λ = 0.75)");
    Ok(())
}
