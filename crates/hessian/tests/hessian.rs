//! The Hessian tools against exact oracles: dense Hessians of tiny models (MLP and conv,
//! d ≤ 500) and matrices with known spectra. Every random quantity is seeded; tolerances are
//! stated at each assertion. Run with `--nocapture` to see the measured errors.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use slt_hessian::dense::{dense_hessian, dense_hessian_asymmetry};
use slt_hessian::linalg::{gaussian, relative_error};
use slt_hessian::{
    eigen, hutch_pp, hutchinson, lanczos, power_iteration, slq_density, DenseSpectrum, EvalSet, ExactHvp,
    FiniteDifferenceHvp, HessianError, HutchinsonOptions, LanczosOptions, PowerOptions, SlqOptions, StepRule,
    SymmetricMatrix, SymmetricOperator, Which,
};
use slt_models::loss::cross_entropy;

type F64 = burn_ndarray::NdArray<f64>;
type F32 = burn_flex::Flex<f32>;
type Ad<F> = burn_autodiff::Autodiff<F>;
type Ad2<F> = burn_autodiff::Autodiff<Ad<F>>;

const INPUTS: usize = 6;
const HIDDEN: usize = 10;
const CLASSES: usize = 4;
/// Examples in the evaluation set, split in batches of unequal sizes.
const BATCHES: [usize; 3] = [12, 12, 8];

/// 6 → 10 (tanh) → 4: d = 114.
#[derive(Module, Debug)]
struct TinyMlp<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

impl<B: Backend> TinyMlp<B> {
    fn new(seed: u64, device: &B::Device) -> Self {
        let mut rng = slt_core::seed::rng_for(seed, &[slt_core::seed::stream::INIT]);
        let mut t = |shape: Vec<usize>, s: f64| {
            let n = shape.iter().product();
            let v: Vec<f64> = gaussian(n, &mut rng).iter().map(|x| x * s).collect();
            TensorData::new(v, shape)
        };
        Self {
            w1: Param::from_tensor(Tensor::from_data(t(vec![INPUTS, HIDDEN], 0.6), device)),
            b1: Param::from_tensor(Tensor::from_data(t(vec![HIDDEN], 0.3), device)),
            w2: Param::from_tensor(Tensor::from_data(t(vec![HIDDEN, CLASSES], 0.6), device)),
            b2: Param::from_tensor(Tensor::from_data(t(vec![CLASSES], 0.3), device)),
        }
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = (x.matmul(self.w1.val()) + self.b1.val().unsqueeze_dim(0)).tanh();
        h.matmul(self.w2.val()) + self.b2.val().unsqueeze_dim(0)
    }
}

/// conv 1 → 3 channels 3×3 on 6×6 inputs (tanh), then dense 48 → 4: d = 30 + 196 = 226.
#[derive(Module, Debug)]
struct TinyConv<B: Backend> {
    kernel: Param<Tensor<B, 4>>,
    bias: Param<Tensor<B, 1>>,
    w: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
}

impl<B: Backend> TinyConv<B> {
    fn new(seed: u64, device: &B::Device) -> Self {
        let mut rng = slt_core::seed::rng_for(seed, &[slt_core::seed::stream::INIT, 1]);
        let mut t = |shape: Vec<usize>, s: f64| {
            let n = shape.iter().product();
            let v: Vec<f64> = gaussian(n, &mut rng).iter().map(|x| x * s).collect();
            TensorData::new(v, shape)
        };
        Self {
            kernel: Param::from_tensor(Tensor::from_data(t(vec![3, 1, 3, 3], 0.4), device)),
            bias: Param::from_tensor(Tensor::from_data(t(vec![3], 0.2), device)),
            w: Param::from_tensor(Tensor::from_data(t(vec![48, CLASSES], 0.25), device)),
            b: Param::from_tensor(Tensor::from_data(t(vec![CLASSES], 0.2), device)),
        }
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [m, _] = x.dims();
        let img = x.reshape([m, 1, 6, 6]);
        let h = conv2d(img, self.kernel.val(), Some(self.bias.val()), ConvOptions::new([1, 1], [0, 0], [1, 1], 1));
        let h = h.tanh().reshape([m, 48]);
        h.matmul(self.w.val()) + self.b.val().unsqueeze_dim(0)
    }
}

/// (inputs, one-hot labels).
type Batch<B> = (Tensor<B, 2>, Tensor<B, 2>);

/// The evaluation set: host data, deterministic, as batches of sizes `BATCHES` on backend B.
fn eval_set<B: Backend>(features: usize, device: &B::Device) -> EvalSet<Batch<B>> {
    let mut rng = slt_core::seed::rng_for(7, &[slt_core::seed::stream::SUBSET]);
    let batches = BATCHES
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            let x = gaussian(m * features, &mut rng);
            let mut y = vec![0.0; m * CLASSES];
            for r in 0..m {
                y[r * CLASSES + (r * 7 + i * 3) % CLASSES] = 1.0;
            }
            let x = Tensor::from_data(TensorData::new(x, [m, features]), device);
            let y = Tensor::from_data(TensorData::new(y, [m, CLASSES]), device);
            ((x, y), m)
        })
        .collect();
    EvalSet::sized(batches).unwrap()
}

/// The same examples as one batch (to check the weighting of the batches).
fn one_batch<B: Backend>(set: &EvalSet<Batch<B>>) -> EvalSet<Batch<B>> {
    let xs = set.batches().iter().map(|b| b.0.clone()).collect();
    let ys = set.batches().iter().map(|b| b.1.clone()).collect();
    EvalSet::uniform(vec![(Tensor::cat(xs, 0), Tensor::cat(ys, 0))]).unwrap()
}

fn mlp_loss<B: Backend>(m: &TinyMlp<B>, b: &Batch<B>) -> Tensor<B, 1> {
    cross_entropy(m.forward(b.0.clone()), b.1.clone())
}

fn conv_loss<B: Backend>(m: &TinyConv<B>, b: &Batch<B>) -> Tensor<B, 1> {
    cross_entropy(m.forward(b.0.clone()), b.1.clone())
}

type MlpLoss<B> = fn(&TinyMlp<B>, &Batch<B>) -> Tensor<B, 1>;
type ConvLoss<B> = fn(&TinyConv<B>, &Batch<B>) -> Tensor<B, 1>;
type MlpHvp<F> = ExactHvp<Ad2<F>, TinyMlp<Ad2<F>>, Batch<Ad2<F>>, MlpLoss<Ad2<F>>>;
type ConvHvp<F> = ExactHvp<Ad2<F>, TinyConv<Ad2<F>>, Batch<Ad2<F>>, ConvLoss<Ad2<F>>>;

fn mlp_exact<F: Backend>() -> MlpHvp<F> {
    let device = Default::default();
    ExactHvp::new(TinyMlp::new(0, &device), eval_set(INPUTS, &device), mlp_loss as MlpLoss<Ad2<F>>).unwrap()
}

fn conv_exact<F: Backend>() -> ConvHvp<F> {
    let device = Default::default();
    ExactHvp::new(TinyConv::new(0, &device), eval_set(36, &device), conv_loss as ConvLoss<Ad2<F>>).unwrap()
}

/// Parameters after `steps` steps of full-batch gradient descent (f64) from `model`: a
/// trained state, where the Hessian has the decaying spectrum of the paper's measurements.
fn trained<M, D, L>(model: M, eval: EvalSet<D>, loss: L, steps: usize, lr: f64) -> M
where
    M: burn::module::AutodiffModule<Ad<F64>>,
    L: slt_core::Loss<Ad<F64>, M, D>,
{
    let fd = FiniteDifferenceHvp::new(model.clone(), eval, loss).unwrap();
    let mut w = fd.params().to_vec();
    for _ in 0..steps {
        let (_, g) = fd.loss_and_gradient_at(&w).unwrap();
        for (w, g) in w.iter_mut().zip(&g) {
            *w -= lr * g;
        }
    }
    slt_core::params::write_back_vec(model, &w).unwrap()
}

/// The MLP and the conv net after 300 steps of gradient descent (trace, eigenvalue and density
/// tests).
fn trained_operators() -> Vec<(&'static str, Box<dyn SymmetricOperator>)> {
    let device = Default::default();
    let mlp =
        trained(TinyMlp::<Ad<F64>>::new(0, &device), eval_set(INPUTS, &device), mlp_loss as MlpLoss<Ad<F64>>, 300, 1.0);
    let conv =
        trained(TinyConv::<Ad<F64>>::new(0, &device), eval_set(36, &device), conv_loss as ConvLoss<Ad<F64>>, 300, 1.0);
    let mlp: MlpHvp<F64> = ExactHvp::new(mlp, eval_set(INPUTS, &device), mlp_loss as MlpLoss<Ad2<F64>>).unwrap();
    let conv: ConvHvp<F64> = ExactHvp::new(conv, eval_set(36, &device), conv_loss as ConvLoss<Ad2<F64>>).unwrap();
    println!("trained: loss mlp {:.4}, conv {:.4}", mlp.loss().unwrap(), conv.loss().unwrap());
    vec![("mlp", Box::new(mlp)), ("conv", Box::new(conv))]
}

fn direction(d: usize, seed: u64) -> Vec<f64> {
    gaussian(d, &mut slt_core::seed::rng_for(seed, &[99]))
}

/// Exact HVPs (f64) against central differences of f64 gradients with a small step
/// (≤ 1e-6 relative; the differences' own error is ~1e-9), batch weighting against one
/// concatenated batch (≤ 1e-6, see below), and f32 (flex) against f64 (≤ 1e-4).
#[test]
fn exact_hvp_matches_finite_differences_and_f32() {
    let device = Default::default();
    for name in ["mlp", "conv"] {
        let (exact, fd, exact32, joined): (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) = match name {
            "mlp" => {
                let op = mlp_exact::<F64>();
                let v = direction(op.dim(), 1);
                let fd = FiniteDifferenceHvp::new(
                    TinyMlp::<Ad<F64>>::new(0, &device),
                    eval_set(INPUTS, &device),
                    mlp_loss as MlpLoss<Ad<F64>>,
                )
                .unwrap()
                .with_step(StepRule::Relative(1e-5))
                .unwrap();
                let joined = ExactHvp::<_, TinyMlp<Ad2<F64>>, _, _>::new(
                    TinyMlp::new(0, &device),
                    one_batch(&eval_set(INPUTS, &device)),
                    mlp_loss as MlpLoss<Ad2<F64>>,
                )
                .unwrap();
                (
                    op.apply(&v).unwrap(),
                    fd.apply(&v).unwrap(),
                    mlp_exact::<F32>().apply(&v).unwrap(),
                    joined.apply(&v).unwrap(),
                )
            }
            _ => {
                let op = conv_exact::<F64>();
                let v = direction(op.dim(), 1);
                let fd = FiniteDifferenceHvp::new(
                    TinyConv::<Ad<F64>>::new(0, &device),
                    eval_set(36, &device),
                    conv_loss as ConvLoss<Ad<F64>>,
                )
                .unwrap()
                .with_step(StepRule::Relative(1e-5))
                .unwrap();
                let joined = ExactHvp::<_, TinyConv<Ad2<F64>>, _, _>::new(
                    TinyConv::new(0, &device),
                    one_batch(&eval_set(36, &device)),
                    conv_loss as ConvLoss<Ad2<F64>>,
                )
                .unwrap();
                (
                    op.apply(&v).unwrap(),
                    fd.apply(&v).unwrap(),
                    conv_exact::<F32>().apply(&v).unwrap(),
                    joined.apply(&v).unwrap(),
                )
            }
        };
        let e_fd = relative_error(&exact, &fd);
        let e32 = relative_error(&exact32, &exact);
        let e_join = relative_error(&joined, &exact);
        println!("{name}: d = {}, exact f64 vs central differences f64: {e_fd:.2e}; exact f32 (flex) vs exact f64: {e32:.2e}; batches vs one batch: {e_join:.2e}", exact.len());
        assert!(e_fd < 1e-6, "{name}: {e_fd}");
        assert!(e32 < 1e-4, "{name}: {e32}");
        // Not 1e-15: `cross_entropy` divides by the batch size with a scalar that burn rounds
        // to f32 (1/12 and 1/32 are not f32 numbers), a 1e-8 relative change of the loss.
        assert!(e_join < 1e-6, "{name}: {e_join}");
    }
}

/// The finite-difference path with its automatic step: f64 within 1e-6 of the exact product
/// (the documented O(ε^{2/3}) error), f32 within 5e-2 (measured and reported).
#[test]
fn finite_difference_path_errors() {
    let device = Default::default();
    let exact = mlp_exact::<F64>();
    let v = direction(exact.dim(), 2);
    let hv = exact.apply(&v).unwrap();
    let fd64 = FiniteDifferenceHvp::new(
        TinyMlp::<Ad<F64>>::new(0, &device),
        eval_set(INPUTS, &device),
        mlp_loss as MlpLoss<Ad<F64>>,
    )
    .unwrap();
    let dev32 = Default::default();
    let fd32 = FiniteDifferenceHvp::new(
        TinyMlp::<Ad<F32>>::new(0, &dev32),
        eval_set(INPUTS, &dev32),
        mlp_loss as MlpLoss<Ad<F32>>,
    )
    .unwrap();
    let e64 = relative_error(&fd64.apply(&v).unwrap(), &hv);
    let e32 = relative_error(&fd32.apply(&v).unwrap(), &hv);
    println!(
        "finite differences, automatic step: f64 {e64:.2e} (h·‖v‖ = {:.2e}), f32 {e32:.2e} (h·‖v‖ = {:.2e})",
        fd64.step_for(1.0),
        fd32.step_for(1.0)
    );
    assert!(e64 < 1e-6, "{e64}");
    assert!(e32 < 5e-2, "{e32}");
    // Gradients of the two paths agree.
    let g = exact.gradient().unwrap();
    assert!(relative_error(&fd64.gradient().unwrap(), &g) < 1e-12);
    // Zero direction, wrong length.
    assert_eq!(fd64.apply(&vec![0.0; exact.dim()]).unwrap(), vec![0.0; exact.dim()]);
    assert!(matches!(fd64.apply(&[1.0]), Err(HessianError::DimensionMismatch { .. })));
    assert!(matches!(exact.apply(&[1.0]), Err(HessianError::DimensionMismatch { .. })));
}

/// Hutchinson within 3 standard errors of the exact trace of the dense Hessian (MLP, conv).
#[test]
fn hutchinson_within_three_standard_errors() {
    let check = |name: &str, op: &dyn SymmetricOperator| {
        let dense = dense_hessian(op).unwrap();
        let exact = dense.trace();
        let est = hutchinson(op, &HutchinsonOptions { max_probes: 200, min_probes: 10, rel_tol: Some(0.02), seed: 3 })
            .unwrap();
        println!("{name}: tr(H) = {exact:.6}, Hutchinson {:.6} ± {:.6} ({} probes, converged {}), asymmetry of the dense H {:.1e}",
            est.trace, est.std_error, est.samples, est.converged, dense_hessian_asymmetry(op).unwrap());
        assert!((est.trace - exact).abs() <= 3.0 * est.std_error, "{name}");
        assert_eq!(est.matvecs, est.samples);
    };
    for (name, op) in trained_operators() {
        check(name, op.as_ref());
    }
}

/// Hutch++ with the same number of products has a smaller mean squared error than
/// Hutchinson over 20 seeds (trained MLP and conv Hessians) at budgets of 60 and 99 products;
/// at 30 products (sketch of 10) it is printed only: there the two are within noise of each
/// other on these small, flat spectra (Hutch++ needs ‖H − H_k‖_F² < ‖H‖_F²/3 to win).
#[test]
fn hutch_pp_beats_hutchinson() {
    for (name, op) in trained_operators() {
        // The dense Hessian is the same operator (columns He_i); use it to keep the test fast.
        let h = dense_hessian(op.as_ref()).unwrap();
        let exact = h.trace();
        for budget in [30, 60, 99] {
            let (mut mse_h, mut mse_pp) = (0.0, 0.0);
            for seed in 0..20 {
                let a =
                    hutchinson(&h, &HutchinsonOptions { max_probes: budget, min_probes: budget, rel_tol: None, seed })
                        .unwrap();
                let b = hutch_pp(&h, budget, seed).unwrap();
                assert_eq!((a.matvecs, b.matvecs), (budget, budget));
                mse_h += (a.trace - exact).powi(2) / 20.0;
                mse_pp += (b.trace - exact).powi(2) / 20.0;
            }
            println!(
                "{name}: {budget} products, relative RMSE over 20 seeds: Hutchinson {:.3e}, Hutch++ {:.3e}",
                mse_h.sqrt() / exact.abs(),
                mse_pp.sqrt() / exact.abs()
            );
            if budget >= 60 {
                assert!(mse_pp < mse_h, "{name}, {budget}: {mse_pp} vs {mse_h}");
            }
        }
    }
}

/// Top-3 eigenvalues within 1e-3 relative of the dense oracle: power iteration (largest
/// magnitude) and Lanczos (largest algebraic, and largest magnitude).
#[test]
fn top_eigenvalues_match_dense() {
    for (name, op) in trained_operators() {
        let op = op.as_ref();
        let spectrum = DenseSpectrum::of(&dense_hessian(op).unwrap()).unwrap();
        let top = spectrum.top(3);
        let top_mag = spectrum.top_magnitude(3);
        let rel = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| ((x - y) / y).abs()).fold(0.0, f64::max);
        let l =
            lanczos(op, &LanczosOptions { k: 3, max_steps: 100, tol: 1e-8, seed: 1, ..Default::default() }).unwrap();
        let lm =
            lanczos(op, &LanczosOptions { k: 3, which: Which::LargestMagnitude, max_steps: 100, tol: 1e-8, seed: 1 })
                .unwrap();
        let p = power_iteration(op, &PowerOptions { k: 3, max_iter: 500, tol: 1e-7, seed: 1 }).unwrap();
        println!("{name}: top-3 {top:?} (by |λ|: {top_mag:?}); Lanczos rel. error {:.1e} ({} products), by |λ| {:.1e}; power iteration rel. error {:.1e} ({} products, iterations {:?})",
            rel(&l.values, &top), l.matvecs, rel(&lm.values, &top_mag), rel(&p.values, &top_mag), p.matvecs, p.iterations);
        assert!(rel(&l.values, &top) < 1e-3, "{name} lanczos");
        assert!(rel(&lm.values, &top_mag) < 1e-3, "{name} lanczos |λ|");
        assert!(rel(&p.values, &top_mag) < 1e-3, "{name} power");
        assert!(l.converged);
    }
}

/// The SLQ density integrates to 1; its first two moments match tr(H)/d and tr(H²)/d within
/// 4 standard errors across probes; the grid's first moment equals the nodes' (Gaussian
/// broadening keeps the mean).
#[test]
fn slq_density_moments() {
    for (name, op) in trained_operators() {
        let op = op.as_ref();
        let h = dense_hessian(op).unwrap();
        let d = op.dim() as f64;
        let (m1, m2) = (h.trace() / d, h.trace_of_square() / d);
        let s = slq_density(&h, &SlqOptions { probes: 10, steps: 40, seed: 5, ..Default::default() }).unwrap();
        let integral = s.integral();
        let grid_mean: f64 = s
            .grid
            .windows(2)
            .zip(s.density.windows(2))
            .map(|(x, y)| 0.5 * (x[1] - x[0]) * (x[0] * y[0] + x[1] * y[1]))
            .sum();
        let (e1, e2) = (s.moment(1) - m1, s.moment(2) - m2);
        println!("{name}: ∫φ = {integral:.6}; tr(H)/d = {m1:.5}, SLQ {:.5} (SE {:.1e}); tr(H²)/d = {m2:.5}, SLQ {:.5} (SE {:.1e}); grid mean {grid_mean:.5}",
            s.moment(1), s.moment_std_error(1), s.moment(2), s.moment_std_error(2));
        assert!((integral - 1.0).abs() < 1e-3, "{name}: {integral}");
        assert!(e1.abs() <= 4.0 * s.moment_std_error(1), "{name}: {e1}");
        assert!(e2.abs() <= 4.0 * s.moment_std_error(2), "{name}: {e2}");
        assert!((grid_mean - s.moment(1)).abs() < 1e-3 * s.moment(2).sqrt(), "{name}");
        assert!(s.weights.iter().all(|w| (w.iter().sum::<f64>() - 1.0).abs() < 1e-10));
        assert_eq!(s.matvecs, 400);
    }
    // The SLQ of the model operator itself (few steps) agrees with the dense one.
    let op = mlp_exact::<F64>();
    let a = slq_density(&op, &SlqOptions { probes: 1, steps: 10, seed: 5, ..Default::default() }).unwrap();
    let b =
        slq_density(&dense_hessian(&op).unwrap(), &SlqOptions { probes: 1, steps: 10, seed: 5, ..Default::default() })
            .unwrap();
    assert!(relative_error(&a.nodes[0], &b.nodes[0]) < 1e-8);
}

// ---- The algorithms on plain symmetric matrices with known spectra. ----

fn known() -> (Vec<f64>, SymmetricMatrix) {
    // 60 eigenvalues: a decaying positive bulk, a few negative, three outliers.
    let mut lambda: Vec<f64> = (0..54).map(|i| 2.0 * (-(i as f64) / 8.0).exp()).collect();
    lambda.extend([-0.5, -0.2, -0.05]);
    lambda.extend([40.0, 25.0, 12.0]);
    let m = SymmetricMatrix::with_spectrum(&lambda, 11);
    (lambda, m)
}

#[test]
fn matrix_with_known_spectrum() {
    let (lambda, m) = known();
    let sum: f64 = lambda.iter().sum();
    let mut sorted = lambda.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let eig = m.eigenvalues().unwrap();
    assert!(relative_error(&eig, &sorted) < 1e-12);
    assert!((m.trace() - sum).abs() < 1e-10);
    assert!((m.trace_of_square() - lambda.iter().map(|x| x * x).sum::<f64>()).abs() < 1e-9);
    assert!((slt_hessian::trace::exact_trace(&m).unwrap() - sum).abs() < 1e-10);

    let l = lanczos(&m, &LanczosOptions { k: 3, tol: 1e-10, ..Default::default() }).unwrap();
    assert!(relative_error(&l.values, &[40.0, 25.0, 12.0]) < 1e-9, "{:?}", l.values);
    // Ritz vectors are eigenvectors: residual ‖Hx − θx‖ small.
    for (x, t) in l.vectors.iter().zip(&l.values) {
        let hx = m.apply(x).unwrap();
        let r: f64 = hx.iter().zip(x).map(|(a, b)| (a - t * b).powi(2)).sum::<f64>().sqrt();
        assert!(r < 1e-6, "{r}");
    }
    let low = lanczos(&m, &LanczosOptions { k: 2, which: Which::SmallestAlgebraic, tol: 1e-10, ..Default::default() })
        .unwrap();
    assert!(relative_error(&low.values, &[-0.5, -0.2]) < 1e-8, "{:?}", low.values);
    let p = power_iteration(&m, &PowerOptions { k: 3, max_iter: 1000, tol: 1e-12, seed: 0 }).unwrap();
    assert!(relative_error(&p.values, &[40.0, 25.0, 12.0]) < 1e-9, "{:?}", p.values);
    assert!(p.residuals.iter().all(|r| *r < 1e-4), "{:?}", p.residuals);

    // Hutchinson: within 3 SE; the budget without tolerance uses every probe.
    let h = hutchinson(&m, &HutchinsonOptions { max_probes: 50, min_probes: 50, rel_tol: None, seed: 1 }).unwrap();
    assert_eq!(h.samples, 50);
    assert!(!h.converged);
    assert!((h.trace - sum).abs() <= 3.0 * h.std_error);
    // Hutch++ is exact when the sketch spans the range: a rank-5 matrix with k = 10.
    let mut low_rank = vec![0.0; 60];
    low_rank[..5].copy_from_slice(&[5.0, -3.0, 2.0, 1.0, 0.5]);
    let r = SymmetricMatrix::with_spectrum(&low_rank, 2);
    let pp = hutch_pp(&r, 30, 0).unwrap();
    assert!((pp.trace - 5.5).abs() < 1e-9, "{}", pp.trace);
    assert_eq!(pp.sketch, 5);

    // SLQ with steps = d: the nodes of each probe are the eigenvalues it sees; moments exact
    // for the probe (k < 2m), density integrates to 1.
    let s = slq_density(&m, &SlqOptions { probes: 3, steps: 60, seed: 0, ..Default::default() }).unwrap();
    assert!((s.integral() - 1.0).abs() < 1e-6);
    assert!(s.nodes[0].iter().any(|t| (t - 40.0).abs() < 1e-8));
}

#[test]
fn hutchinson_stops_at_tolerance() {
    // A diagonal matrix: every Rademacher sample is the exact trace, variance 0.
    let m = SymmetricMatrix::new(nalgebra::DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![1.0, 2.0, 3.0])))
        .unwrap();
    let h =
        hutchinson(&m, &HutchinsonOptions { max_probes: 100, min_probes: 5, rel_tol: Some(1e-3), seed: 0 }).unwrap();
    assert!(h.converged);
    assert_eq!(h.samples, 5);
    assert!((h.trace - 6.0).abs() < 1e-12);
    // A full matrix stops once SE ≤ tol·|mean|.
    let (_, m) = known();
    let h = hutchinson(&m, &HutchinsonOptions { max_probes: 10_000, min_probes: 10, rel_tol: Some(0.05), seed: 0 })
        .unwrap();
    assert!(h.converged && h.std_error <= 0.05 * h.trace.abs() && h.samples < 10_000);
}

#[test]
fn errors_are_typed() {
    let m = SymmetricMatrix::with_spectrum(&[1.0, 2.0], 0);
    assert!(matches!(m.apply(&[1.0]), Err(HessianError::DimensionMismatch { expected: 2, got: 1 })));
    assert!(matches!(hutch_pp(&m, 2, 0), Err(HessianError::InvalidOption(_))));
    assert!(matches!(lanczos(&m, &LanczosOptions { k: 3, ..Default::default() }), Err(HessianError::InvalidOption(_))));
    assert!(matches!(
        power_iteration(&m, &PowerOptions { k: 0, ..Default::default() }),
        Err(HessianError::InvalidOption(_))
    ));
    assert!(matches!(EvalSet::<()>::uniform(vec![]), Err(HessianError::EmptyEvaluationSet)));
    assert!(matches!(EvalSet::weighted(vec![((), -1.0)]), Err(HessianError::BadWeight(_))));
    let big = SymmetricMatrix::new(nalgebra::DMatrix::zeros(2001, 2001)).unwrap();
    assert!(matches!(dense_hessian(&big), Err(HessianError::TooLarge { dim: 2001, limit: 2000 })));
    let _ = eigen::Eigenpairs::clone;
}

#[test]
fn observed_counts_products() {
    let (_, m) = known();
    let seen = std::cell::Cell::new(0);
    let op = slt_hessian::Observed::new(&m, |n| seen.set(n));
    let est = hutch_pp(&op, 30, 0).unwrap();
    assert_eq!((op.products(), seen.get(), est.matvecs), (30, 30, 30));
}

/// Per-example softmax cross-entropy losses of a batch, as a column `[m, 1]`.
fn per_example_ce<B: Backend>(logits: Tensor<B, 2>, one_hot: Tensor<B, 2>) -> Tensor<B, 2> {
    (burn::tensor::activation::log_softmax(logits, 1) * one_hot).sum_dim(1).neg()
}

/// ∂(scalar)/∂w of the MLP on the single autodiff level, as a host vector.
fn gradient_of(model: &TinyMlp<Ad<F64>>, scalar: Tensor<Ad<F64>, 1>) -> Vec<f64> {
    let grads = scalar.backward();
    slt_core::params::flatten_grads(model, &grads).into_data().iter::<f64>().collect()
}

fn matvec(rows: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    rows.iter().map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum()).collect()
}

/// The GGN of the tanh MLP under softmax cross-entropy against a dense oracle built from the
/// Jacobian of the logits (one backward per logit) and the closed-form output Hessian
/// (1/m)(diag p − ppᵀ): ≤ 1e-10 relative (f64). It differs from the Hessian (the tanh layer's
/// second derivatives), and on a linear model with squared error it is the Hessian (≤ 1e-10).
#[test]
fn gauss_newton_matches_its_dense_oracle_and_is_the_hessian_of_linear_least_squares() {
    let device = Default::default();
    let eval = eval_set::<Ad2<F64>>(INPUTS, &device);
    let ggn = slt_hessian::GaussNewton::<Ad2<F64>, TinyMlp<Ad2<F64>>, _, _, _>::new(
        TinyMlp::new(0, &device),
        eval,
        |m: &TinyMlp<Ad2<F64>>, b: &Batch<Ad2<F64>>| m.forward(b.0.clone()),
        |z: &Tensor<Ad2<F64>, 2>, b: &Batch<Ad2<F64>>| cross_entropy(z.clone(), b.1.clone()),
    )
    .unwrap();
    let d = ggn.dim();
    // Oracle: G = Σ_b ω_b J_bᵀ H_b J_b on the single autodiff level.
    let model = TinyMlp::<Ad<F64>>::new(0, &device);
    let host_eval = eval_set::<Ad<F64>>(INPUTS, &device);
    let mut g_dense = vec![vec![0.0; d]; d];
    for (batch, &omega) in host_eval.batches().iter().zip(host_eval.weights()) {
        let m = batch.0.dims()[0];
        let logits = model.forward(batch.0.clone());
        let p: Vec<f64> =
            burn::tensor::activation::softmax(logits.clone().detach(), 1).into_data().iter::<f64>().collect();
        for i in 0..m {
            let rows: Vec<Vec<f64>> = (0..CLASSES)
                .map(|c| gradient_of(&model, model.forward(batch.0.clone()).slice([i..i + 1, c..c + 1]).sum()))
                .collect();
            let pi = &p[i * CLASSES..(i + 1) * CLASSES];
            for a in 0..CLASSES {
                for c in 0..CLASSES {
                    let h = ((a == c) as u8 as f64 * pi[a] - pi[a] * pi[c]) * omega / m as f64;
                    for (r, row) in g_dense.iter_mut().enumerate() {
                        let left = rows[a][r] * h;
                        for (cell, right) in row.iter_mut().zip(&rows[c]) {
                            *cell += left * right;
                        }
                    }
                }
            }
        }
    }
    let hessian = mlp_exact::<F64>();
    for seed in 0..3 {
        let v = direction(d, 40 + seed);
        let err = relative_error(&ggn.apply(&v).unwrap(), &matvec(&g_dense, &v));
        println!("GGN vs dense oracle, direction {seed}: {err:.2e}");
        assert!(err < 1e-10, "{err}");
        let from_hessian = relative_error(&ggn.apply(&v).unwrap(), &hessian.apply(&v).unwrap());
        assert!(from_hessian > 1e-3, "the GGN of a tanh MLP should differ from its Hessian: {from_hessian}");
    }

    // A linear model with squared error: GGN = Hessian.
    #[derive(Module, Debug)]
    struct Affine<B: Backend> {
        w: Param<Tensor<B, 2>>,
        b: Param<Tensor<B, 1>>,
    }
    let affine = || Affine::<Ad<F64>> {
        w: Param::from_tensor(Tensor::from_data(
            TensorData::new(direction(INPUTS * CLASSES, 5), [INPUTS, CLASSES]),
            &device,
        )),
        b: Param::from_tensor(Tensor::from_data(TensorData::new(direction(CLASSES, 6), [CLASSES]), &device)),
    };
    let outputs =
        |m: &Affine<Ad2<F64>>, b: &Batch<Ad2<F64>>| b.0.clone().matmul(m.w.val()) + m.b.val().unsqueeze_dim(0);
    let squared = |z: &Tensor<Ad2<F64>, 2>, b: &Batch<Ad2<F64>>| (z.clone() - b.1.clone()).square().sum() * 0.5;
    let ggn = slt_hessian::GaussNewton::<Ad2<F64>, Affine<Ad2<F64>>, _, _, _>::new(
        affine(),
        eval_set(INPUTS, &device),
        outputs,
        squared,
    )
    .unwrap();
    let loss = move |m: &Affine<Ad2<F64>>, b: &Batch<Ad2<F64>>| squared(&outputs(m, b), b);
    let h = ExactHvp::<Ad2<F64>, Affine<Ad2<F64>>, _, _>::new(affine(), eval_set(INPUTS, &device), loss).unwrap();
    let v = direction(ggn.dim(), 7);
    let err = relative_error(&ggn.apply(&v).unwrap(), &h.apply(&v).unwrap());
    assert!(err < 1e-10, "GGN vs Hessian of linear least squares: {err}");
}

/// The empirical Fisher against Σ_b ω_b (1/m_b) Σᵢ gᵢgᵢᵀ from per-example gradients (≤ 1e-10
/// relative, f64), and its exact trace (dense, d = 114) against the mean squared norm of the
/// per-example scores Σ_b ω_b (1/m_b) Σᵢ ‖gᵢ‖² (≤ 1e-10 relative).
#[test]
fn empirical_fisher_matches_per_example_gradients_and_its_trace_is_the_mean_squared_score() {
    let device = Default::default();
    let fisher = slt_hessian::GaussNewton::<Ad2<F64>, TinyMlp<Ad2<F64>>, _, _, _>::empirical_fisher(
        TinyMlp::new(0, &device),
        eval_set(INPUTS, &device),
        |m: &TinyMlp<Ad2<F64>>, b: &Batch<Ad2<F64>>| per_example_ce(m.forward(b.0.clone()), b.1.clone()),
    )
    .unwrap();
    let model = TinyMlp::<Ad<F64>>::new(0, &device);
    let host_eval = eval_set::<Ad<F64>>(INPUTS, &device);
    let mut scores = Vec::new(); // (weight ω_b/m_b, gᵢ)
    for (batch, &omega) in host_eval.batches().iter().zip(host_eval.weights()) {
        let m = batch.0.dims()[0];
        for i in 0..m {
            let losses = per_example_ce(model.forward(batch.0.clone()), batch.1.clone());
            scores.push((omega / m as f64, gradient_of(&model, losses.slice([i..i + 1, 0..1]).sum())));
        }
    }
    for seed in 0..3 {
        let v = direction(fisher.dim(), 50 + seed);
        let mut expected = vec![0.0; v.len()];
        for (w, g) in &scores {
            let gv: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
            for (e, gi) in expected.iter_mut().zip(g) {
                *e += w * gv * gi;
            }
        }
        let err = relative_error(&fisher.apply(&v).unwrap(), &expected);
        assert!(err < 1e-10, "empirical Fisher, direction {seed}: {err}");
    }
    let dense_trace = dense_hessian(&fisher).unwrap().trace();
    let mean_sq: f64 = scores.iter().map(|(w, g)| w * g.iter().map(|x| x * x).sum::<f64>()).sum();
    assert!((dense_trace - mean_sq).abs() <= 1e-10 * mean_sq, "{dense_trace} vs {mean_sq}");
    // Hutchinson takes any operator: within 3 standard errors of the exact trace.
    let t = hutchinson(&fisher, &HutchinsonOptions { max_probes: 60, min_probes: 60, rel_tol: None, seed: 3 }).unwrap();
    assert!((t.trace - dense_trace).abs() <= 3.0 * t.std_error, "{} ± {} vs {dense_trace}", t.trace, t.std_error);
}

/// `hessian_trace`, the one-call Tr(H), is Hutchinson over exact products with the same probes.
#[test]
fn one_call_hessian_trace_is_hutchinson_over_the_exact_hessian() {
    let device = Default::default();
    let batches: Vec<Batch<Ad2<F64>>> = eval_set(INPUTS, &device).batches().to_vec();
    let t = slt_hessian::hessian_trace::<Ad2<F64>, TinyMlp<Ad2<F64>>, _, _>(
        TinyMlp::new(0, &device),
        batches.clone(),
        mlp_loss as MlpLoss<Ad2<F64>>,
        20,
        4,
    )
    .unwrap();
    let op = ExactHvp::<Ad2<F64>, TinyMlp<Ad2<F64>>, _, _>::new(
        TinyMlp::new(0, &device),
        EvalSet::uniform(batches).unwrap(),
        mlp_loss as MlpLoss<Ad2<F64>>,
    )
    .unwrap();
    let direct = hutchinson(&op, &HutchinsonOptions { max_probes: 20, min_probes: 2, rel_tol: None, seed: 4 }).unwrap();
    assert_eq!(t.trace, direct.trace);
    let exact = dense_hessian(&op).unwrap().trace();
    assert!((t.trace - exact).abs() <= 3.0 * t.std_error, "{} ± {} vs {exact}", t.trace, t.std_error);
}

/// `top_eigenvalues`, the one-call top-k spectrum, gives the dense Hessian's largest
/// eigenvalues (tolerance 1e-8 relative: Lanczos on a 100-odd-dimensional operator converges
/// to rounding) with residuals below 1e-6.
#[test]
fn one_call_top_eigenvalues_are_the_dense_hessians() {
    let device = Default::default();
    let batches: Vec<Batch<Ad2<F64>>> = eval_set(INPUTS, &device).batches().to_vec();
    let top = slt_hessian::top_eigenvalues::<Ad2<F64>, TinyMlp<Ad2<F64>>, _, _>(
        TinyMlp::new(0, &device),
        batches.clone(),
        mlp_loss as MlpLoss<Ad2<F64>>,
        3,
        7,
    )
    .unwrap();
    let op = ExactHvp::<Ad2<F64>, TinyMlp<Ad2<F64>>, _, _>::new(
        TinyMlp::new(0, &device),
        EvalSet::uniform(batches).unwrap(),
        mlp_loss as MlpLoss<Ad2<F64>>,
    )
    .unwrap();
    let exact = DenseSpectrum::of(&dense_hessian(&op).unwrap()).unwrap().top(3);
    for (i, (got, want)) in top.values.iter().zip(&exact).enumerate() {
        assert!((got - want).abs() <= 1e-8 * want.abs(), "eigenvalue {i}: {got} vs {want}");
        assert!(top.residuals[i] <= 1e-6 * want.abs().max(1.0), "residual {i}: {}", top.residuals[i]);
    }
}
