//! Curvature of your own burn module: exact Hessian-vector products by double backward, then
//! Tr(H) by Hutchinson and the top eigenvalues by Lanczos — checked here against the dense
//! Hessian, which a model this small (d = 114) allows.
//!
//! The model lives on `Autodiff<F>` and the evaluation data on `Autodiff<Autodiff<F>>` (the
//! product differentiates a gradient). Write the forward pass with tensor ops (`matmul`, `tanh`,
//! `conv2d`, …) for exact products; for burn's `nn::Linear` and pooling modules, which burn 0.21
//! cannot differentiate twice, see `burn_nn_model.rs` (`AutoHvp`).
//!
//! You should see Tr(H) by Hutchinson within two or three standard errors of the dense trace
//! and the top three Lanczos eigenvalues equal to the dense ones to ≈ 1e-10 relative.
//!
//! Run: `cargo run --release -p slt-hessian --example curvature_of_your_model`.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use slt_hessian::dense::{dense_hessian, DenseSpectrum};
use slt_hessian::linalg::gaussian;
use slt_hessian::{hutchinson, lanczos, EvalSet, ExactHvp, HutchinsonOptions, LanczosOptions, SymmetricOperator};
use slt_models::loss::cross_entropy;

type F = burn_ndarray::NdArray<f64>;
type Ad = burn_autodiff::Autodiff<F>;
type Ad2 = burn_autodiff::Autodiff<Ad>;
type Batch<B> = (Tensor<B, 2>, Tensor<B, 2>);

/// 6 → 10 (tanh) → 4.
#[derive(Module, Debug)]
struct Net<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

impl<B: Backend> Net<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = (x.matmul(self.w1.val()) + self.b1.val().unsqueeze_dim(0)).tanh();
        h.matmul(self.w2.val()) + self.b2.val().unsqueeze_dim(0)
    }
}

fn loss<B: Backend>(net: &Net<B>, (x, y): &Batch<B>) -> Tensor<B, 1> {
    cross_entropy(net.forward(x.clone()), y.clone())
}

pub fn main() -> anyhow::Result<()> {
    let mut rng = slt_core::seed::rng_for(0, &[slt_core::seed::stream::INIT]);
    let mut tensor = |shape: Vec<usize>, scale: f64| {
        let values = gaussian(shape.iter().product(), &mut rng).iter().map(|v| v * scale).collect::<Vec<_>>();
        TensorData::new(values, shape)
    };
    let device = Default::default();
    let net = Net::<Ad> {
        w1: Param::from_tensor(Tensor::from_data(tensor(vec![6, 10], 0.6), &device)),
        b1: Param::from_tensor(Tensor::from_data(tensor(vec![10], 0.3), &device)),
        w2: Param::from_tensor(Tensor::from_data(tensor(vec![10, 4], 0.6), &device)),
        b2: Param::from_tensor(Tensor::from_data(tensor(vec![4], 0.3), &device)),
    };
    // 64 examples with one-hot labels, as one batch of the evaluation set.
    let m = 64;
    let x = Tensor::<Ad2, 2>::from_data(tensor(vec![m, 6], 1.0), &device);
    let labels: Vec<f64> = (0..m * 4).map(|i| if i % 4 == (i / 4) % 3 { 1.0 } else { 0.0 }).collect();
    let y = Tensor::<Ad2, 2>::from_data(TensorData::new(labels, [m, 4]), &device);
    let eval = EvalSet::uniform(vec![(x, y)])?;

    let hessian = ExactHvp::new(net, eval, loss::<Ad2> as fn(&Net<Ad2>, &Batch<Ad2>) -> Tensor<Ad2, 1>)?;
    println!("d = {}", hessian.dim());

    let trace =
        hutchinson(&hessian, &HutchinsonOptions { max_probes: 500, rel_tol: Some(0.02), ..Default::default() })?;
    let top = lanczos(&hessian, &LanczosOptions { k: 3, ..Default::default() })?;

    let dense = DenseSpectrum::of(&dense_hessian(&hessian)?)?;
    println!(
        "Tr(H): Hutchinson {:.5} ± {:.5} ({} products); dense {:.5}",
        trace.trace, trace.std_error, trace.samples, dense.trace
    );
    println!("top eigenvalues: Lanczos {:.6?}; dense {:.6?}", top.values, dense.top(3));

    anyhow::ensure!(
        (trace.trace - dense.trace).abs() <= 3.0 * trace.std_error.max(1e-12),
        "Hutchinson's trace is more than 3 standard errors from the dense trace"
    );
    for (l, e) in top.values.iter().zip(dense.top(3)) {
        anyhow::ensure!((l - e).abs() <= 1e-8 * e.abs().max(1.0), "Lanczos {l} vs dense {e}");
    }
    Ok(())
}
