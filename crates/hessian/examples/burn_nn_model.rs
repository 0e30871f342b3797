//! The Hessian trace and top eigenvalues of a model written only with burn's own `nn` layers
//! (`Conv2d`, `Relu`, `MaxPool2d`, `Linear`), without rewriting it: [`AutoHvp`] tries the exact
//! double-backward product, finds that burn 0.21 cannot differentiate `nn::Linear` and
//! `nn::MaxPool2d` twice, and falls back to central differences of gradients in f64 — and says
//! so. The dense Hessian (d = 77 here) checks the answers.
//!
//! You should see: the path (finite differences, with burn's reason and an expected relative
//! error ≈ 4e-9), Tr(H) by Hutchinson within two standard errors of the dense trace, and the
//! top three eigenvalues by Lanczos equal to the dense ones to ≈ 1e-6 relative.
//!
//! Run: `cargo run --release -p slt-hessian --example burn_nn_model`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use slt_hessian::dense::{dense_hessian, DenseSpectrum};
use slt_hessian::linalg::gaussian;
use slt_hessian::{hutchinson, lanczos, AutoHvp, EvalSet, HutchinsonOptions, LanczosOptions, SymmetricOperator};

type F = burn_ndarray::NdArray<f64>; // f64: the fallback's error is ε^{2/3}-scaled
type Ad = burn_autodiff::Autodiff<F>; // the model lives here
type Ad2 = burn_autodiff::Autodiff<Ad>; // the data live here
type Batch<B> = (Tensor<B, 4>, Tensor<B, 2>);

/// 1×8×8 image → conv 3×3 (2 channels) → ReLU → max pool 2×2 → Linear(18 → 3).
#[derive(Module, Debug)]
struct SmallCnn<B: Backend> {
    conv: Conv2d<B>,
    act: Relu,
    pool: MaxPool2d,
    head: Linear<B>,
}

impl<B: Backend> SmallCnn<B> {
    fn new(device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([1, 2], [3, 3]).init(device),
            act: Relu,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            head: LinearConfig::new(18, 3).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let h = self.pool.forward(self.act.forward(self.conv.forward(x)));
        self.head.forward(h.flatten::<2>(1, 3))
    }
}

fn loss<B: Backend>(model: &SmallCnn<B>, (x, y): &Batch<B>) -> Tensor<B, 1> {
    (log_softmax(model.forward(x.clone()), 1) * y.clone()).sum_dim(1).mean().neg()
}

pub fn main() -> anyhow::Result<()> {
    let device = Default::default();
    <F as Backend>::seed(&device, 0); // burn's initialisers draw from the backend's RNG
    let model = SmallCnn::<Ad>::new(&device);

    // 32 random images with one-hot labels, as one batch.
    let mut rng = slt_core::seed::rng_for(0, &[slt_core::seed::stream::SUBSET]);
    let m = 32;
    let x = Tensor::<Ad2, 4>::from_data(TensorData::new(gaussian(m * 64, &mut rng), [m, 1, 8, 8]), &device);
    let labels: Vec<f64> = (0..m * 3).map(|i| if i % 3 == (i / 3) % 3 { 1.0 } else { 0.0 }).collect();
    let y = Tensor::<Ad2, 2>::from_data(TensorData::new(labels, [m, 3]), &device);

    // The batches and the loss on both levels: the exact product differentiates on Ad2, the
    // fallback (central differences of gradients) on Ad.
    let inner_batch = (x.clone().inner(), y.clone().inner());
    let hessian = AutoHvp::new(
        model,
        EvalSet::uniform(vec![(x, y)])?,
        loss::<Ad2> as fn(&SmallCnn<Ad2>, &Batch<Ad2>) -> Tensor<Ad2, 1>,
        EvalSet::uniform(vec![inner_batch])?,
        loss::<Ad> as fn(&SmallCnn<Ad>, &Batch<Ad>) -> Tensor<Ad, 1>,
    )?;
    println!("d = {}; path: {:?}", hessian.dim(), hessian.path());

    let trace =
        hutchinson(&hessian, &HutchinsonOptions { max_probes: 400, rel_tol: Some(0.02), ..Default::default() })?;
    let top = lanczos(&hessian, &LanczosOptions { k: 3, ..Default::default() })?;
    let dense = DenseSpectrum::of(&dense_hessian(&hessian)?)?;
    println!(
        "Tr(H): Hutchinson {:.5} ± {:.5} ({} products); dense {:.5}",
        trace.trace, trace.std_error, trace.samples, dense.trace
    );
    println!("top eigenvalues: Lanczos {:.6?}; dense {:.6?}", top.values, dense.top(3));

    anyhow::ensure!(
        (trace.trace - dense.trace).abs() <= 3.0 * trace.std_error.max(1e-9),
        "Hutchinson's trace is more than 3 standard errors from the dense trace"
    );
    for (l, e) in top.values.iter().zip(dense.top(3)) {
        anyhow::ensure!((l - e).abs() <= 1e-5 * e.abs().max(1.0), "Lanczos {l} vs dense {e}");
    }
    Ok(())
}
