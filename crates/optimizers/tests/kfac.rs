//! K-FAC against host oracles (f64): on multinomial logistic regression the factors A and G
//! are formed on the host from the inputs and δ = softmax(z) − onehot(ỹ), and
//! (A ⊗ G + κI)⁻¹g is solved densely; with one example K-FAC is exact NGD.

use std::collections::HashMap;

use burn::module::{AutodiffModule, Module, Param, ParamId};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slt_core::layer_ops::{LayerOps, Plain, TappedModel};
use slt_core::params::{flatten_grads, flatten_to_vec, ParamLayout};
use slt_models::layers::{Conv, Dense};
use slt_models::loss::nll_per_example;
use slt_models::Mlp;
use slt_optimizers::{FisherKind, Kfac, KfacConfig, Ngd, NgdConfig, OptimError, OptimizerState};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;
type Inner = burn_ndarray::NdArray<f64>;

const IN: usize = 8;
const OUT: usize = 4;

/// One affine layer: logits = x·W + b (multinomial logistic regression), d = 9·4 = 36.
#[derive(Module, Debug)]
struct Single<B: Backend> {
    layer: Dense<B>,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Single<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        self.layer.forward_ops(x, ops)
    }
}

fn single(seed: u64) -> Single<B> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Single { layer: Dense::new(IN, OUT, &mut rng, &Default::default()) }
}

fn tiny_mlp(seed: u64) -> Mlp<B> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mlp::new(6, 2, 5, 3, &mut rng, &Default::default())
}

fn one_hot(labels: &[usize], classes: usize) -> Tensor<B, 2> {
    let mut y = vec![0.0; labels.len() * classes];
    for (i, &k) in labels.iter().enumerate() {
        y[i * classes + k] = 1.0;
    }
    Tensor::from_data(TensorData::new(y, [labels.len(), classes]), &Default::default())
}

struct Batch {
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    x_host: Vec<f64>,
    labels: Vec<usize>,
}

fn batch(m: usize, inputs: usize, classes: usize, seed: u64) -> Batch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x_host: Vec<f64> = (0..m * inputs).map(|_| rng.random_range(-1.5..1.5)).collect();
    let labels: Vec<usize> = (0..m).map(|_| rng.random_range(0..classes)).collect();
    Batch {
        x: Tensor::from_data(TensorData::new(x_host.clone(), [m, inputs]), &Default::default()),
        y: one_hot(&labels, classes),
        x_host,
        labels,
    }
}

/// Host K-FAC quantities of the one-layer model: A = (1/m)Σ āāᵀ, G = (1/m)Σ δ̃δ̃ᵀ with
/// δ̃ = softmax(z) − onehot(ỹ), and g = (1/m)Σ ā⊗δ (row-major vec of W̄ = [W; bᵀ]).
struct Host {
    a: DMatrix<f64>,
    g: DMatrix<f64>,
    grad: DVector<f64>,
}

fn host(model: &Single<B>, b: &Batch, fisher_labels: &[usize]) -> Host {
    let w: Vec<f64> = model.layer.weight.val().into_data().iter::<f64>().collect();
    let bias: Vec<f64> = model.layer.bias.val().into_data().iter::<f64>().collect();
    let m = b.labels.len();
    let mut a = DMatrix::zeros(IN + 1, IN + 1);
    let mut g = DMatrix::zeros(OUT, OUT);
    let mut grad = DVector::zeros((IN + 1) * OUT);
    for i in 0..m {
        let mut abar = DVector::from_element(IN + 1, 1.0);
        abar.rows_mut(0, IN).copy_from_slice(&b.x_host[i * IN..(i + 1) * IN]);
        let z: Vec<f64> = (0..OUT).map(|j| bias[j] + (0..IN).map(|k| abar[k] * w[k * OUT + j]).sum::<f64>()).collect();
        let zmax = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - zmax).exp()).collect();
        let s: f64 = e.iter().sum();
        let p = DVector::from_iterator(OUT, e.iter().map(|v| v / s));
        let mut delta = p.clone();
        delta[b.labels[i]] -= 1.0;
        let mut fdelta = p;
        fdelta[fisher_labels[i]] -= 1.0;
        a += &abar * abar.transpose() / m as f64;
        g += &fdelta * fdelta.transpose() / m as f64;
        grad += abar.kronecker(&delta) / m as f64;
    }
    Host { a, g, grad }
}

/// (A ⊗ G + κI)⁻¹g densely.
fn dense_solve(a: &DMatrix<f64>, g: &DMatrix<f64>, kappa: f64, grad: &DVector<f64>) -> DVector<f64> {
    let f = a.kronecker(g);
    let n = f.nrows();
    (f + DMatrix::identity(n, n) * kappa).lu().solve(grad).expect("invertible")
}

fn flat<M: AutodiffModule<B>>(model: &M, directions: &HashMap<ParamId, Tensor<Inner, 1>>) -> Vec<f64> {
    let layout = ParamLayout::of(model);
    let mut flat = vec![0.0; layout.len];
    for e in &layout.entries {
        let dir = directions.get(&e.id).expect("every parameter has a direction");
        for (dst, v) in flat[e.offset..e.offset + e.len].iter_mut().zip(dir.to_data().iter::<f64>()) {
            *dst = v;
        }
    }
    flat
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

fn mat_err(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).norm() / b.norm()
}

fn config(fisher: FisherKind, alpha: f64, fisher_eps: f64) -> KfacConfig {
    KfacConfig {
        lr: 0.1,
        alpha,
        fisher_eps,
        fisher,
        decay: 0.9,
        inverse_period: 3,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
        seed: 3,
    }
}

fn ngd_config(c: &KfacConfig) -> NgdConfig {
    NgdConfig {
        lr: c.lr,
        alpha: c.alpha,
        fisher_eps: c.fisher_eps,
        fisher: c.fisher,
        momentum: c.momentum,
        nesterov: c.nesterov,
        weight_decay: c.weight_decay,
        seed: c.seed,
        normalize: false,
        fixed_step: false,
    }
}

#[test]
fn first_step_is_the_exact_kronecker_factored_solve() {
    let model = single(1);
    let d = ParamLayout::of(&model).len;
    assert_eq!(d, (IN + 1) * OUT);
    let b = batch(7, IN, OUT, 11);
    for fisher in [FisherKind::Empirical, FisherKind::Sampled] {
        for alpha in [1e-2, 1e-5] {
            let c = config(fisher, alpha, 1e-10);
            let kfac = Kfac::<B>::new(c).unwrap();
            let ours = kfac.natural_gradient(&model, b.x.clone(), b.y.clone()).unwrap();
            // Same labels as exact NGD with the same seed and step.
            let ngd =
                Ngd::<B>::new(ngd_config(&c)).unwrap().natural_gradient(&model, b.x.clone(), b.y.clone()).unwrap();
            assert_eq!(ours.fisher_labels, ngd.fisher_labels);
            if fisher == FisherKind::Empirical {
                assert_eq!(ours.fisher_labels, b.labels);
            }
            let h = host(&model, &b, &ours.fisher_labels);
            let trace = h.a.trace() * h.g.trace();
            let kappa = alpha / d as f64 * trace;
            let oracle = dense_solve(&h.a, &h.g, kappa, &h.grad);
            let err = rel_err(&flat(&model, &ours.directions), oracle.as_slice());
            eprintln!("logistic {fisher:?} α={alpha}: tr F̂={trace:.6} κ={kappa:.3e} rel. error {err:.2e}");
            assert!(err <= 1e-8, "{fisher:?} α={alpha}: relative error {err:e}");
            assert!((ours.fisher_trace - trace).abs() <= 1e-12 * trace);
            assert!((ours.kappa - kappa).abs() <= 1e-12 * kappa);
            assert!((ours.grad_norm - h.grad.norm()).abs() <= 1e-12 * h.grad.norm());
            assert!((ours.norm - oracle.norm()).abs() <= 1e-8 * oracle.norm());
            assert!(ours.recomputed);
        }
    }
}

#[test]
fn with_one_example_kfac_is_exact_ngd() {
    let model = single(2);
    for seed in [21, 22, 23] {
        let b = batch(1, IN, OUT, seed);
        for fisher in [FisherKind::Empirical, FisherKind::Sampled] {
            for alpha in [1e-2, 1e-4] {
                let c = config(fisher, alpha, 1e-10);
                let ours = Kfac::<B>::new(c).unwrap().natural_gradient(&model, b.x.clone(), b.y.clone()).unwrap();
                let exact =
                    Ngd::<B>::new(ngd_config(&c)).unwrap().natural_gradient(&model, b.x.clone(), b.y.clone()).unwrap();
                assert_eq!(ours.fisher_labels, exact.fisher_labels);
                let err = rel_err(&flat(&model, &ours.directions), &flat(&model, &exact.directions));
                eprintln!("m = 1, {fisher:?} α={alpha}: K-FAC vs exact NGD rel. error {err:.2e}");
                assert!(err <= 1e-8, "{fisher:?} α={alpha}: relative error {err:e}");
                assert!((ours.kappa - exact.kappa).abs() <= 1e-12 * exact.kappa);
                assert!((ours.fisher_trace - exact.fisher_trace).abs() <= 1e-12 * exact.fisher_trace);
            }
        }
    }
}

#[test]
fn running_averages_mix_batches_and_stale_inverses_use_the_old_factors() {
    let c = KfacConfig { lr: 0.05, decay: 0.8, ..config(FisherKind::Empirical, 1e-2, 1e-10) };
    let mut kfac = Kfac::<B>::new(c).unwrap();
    let model0 = single(3);
    let b1 = batch(9, IN, OUT, 31);
    let b2 = batch(6, IN, OUT, 32);
    let h1 = host(&model0, &b1, &b1.labels);
    let (model1, _) = kfac.step(model0, b1.x.clone(), b1.y.clone()).unwrap();
    {
        let (a, g) = kfac.kronecker_factors(0).unwrap();
        assert!(mat_err(a, &h1.a) <= 1e-14 && mat_err(g, &h1.g) <= 1e-14, "first step: the batch estimates");
    }
    let h2 = host(&model1, &b2, &b2.labels);
    let a = &h1.a * 0.8 + &h2.a * 0.2;
    let g = &h1.g * 0.8 + &h2.g * 0.2;
    // The direction of step 2 uses the mixed factors (recomputed: warm-up).
    let natural = kfac.natural_gradient(&model1, b2.x.clone(), b2.y.clone()).unwrap();
    assert!(natural.recomputed);
    let kappa = 1e-2 / 36.0 * a.trace() * g.trace();
    assert!((natural.kappa - kappa).abs() <= 1e-12 * kappa);
    let oracle = dense_solve(&a, &g, kappa, &h2.grad);
    let err = rel_err(&flat(&model1, &natural.directions), oracle.as_slice());
    eprintln!("step 2 with running factors: rel. error {err:.2e}");
    assert!(err <= 1e-8, "{err:e}");
    let (mut model, _) = kfac.step(model1, b2.x.clone(), b2.y.clone()).unwrap();
    let (ra, rg) = kfac.kronecker_factors(0).unwrap();
    let (ea, eg) = (mat_err(ra, &a), mat_err(rg, &g));
    eprintln!("running A, G vs host: {ea:.2e}, {eg:.2e}");
    assert!(ea <= 1e-14 && eg <= 1e-14);

    // Steps 3..5 recompute (warm-up); step index 5 with period 3 reuses the decomposition of
    // the factors after step index 4, with the current κ.
    for s in 2..5 {
        let b = batch(8, IN, OUT, 40 + s);
        let (next, stats) = kfac.step(model, b.x, b.y).unwrap();
        assert!(stats.recomputed);
        model = next;
    }
    let (old_a, old_g) = kfac.kronecker_factors(0).map(|(a, g)| (a.clone(), g.clone())).unwrap();
    let b = batch(8, IN, OUT, 50);
    let natural = kfac.natural_gradient(&model, b.x.clone(), b.y.clone()).unwrap();
    assert!(!natural.recomputed);
    let h = host(&model, &b, &b.labels);
    let new_a = &old_a * 0.8 + &h.a * 0.2;
    let new_g = &old_g * 0.8 + &h.g * 0.2;
    let kappa = 1e-2 / 36.0 * new_a.trace() * new_g.trace();
    assert!((natural.kappa - kappa).abs() <= 1e-12 * kappa, "κ follows the current factors");
    let oracle = dense_solve(&old_a, &old_g, kappa, &h.grad);
    let err = rel_err(&flat(&model, &natural.directions), oracle.as_slice());
    eprintln!("stale inverse (cached eigendecomposition): rel. error {err:.2e}");
    assert!(err <= 1e-8, "{err:e}");
}

/// conv 1→2 (k3, pad 1) on 5×5 → ReLU → affine 50→3: d = 20 + 153 = 173.
#[derive(Module, Debug)]
struct TinyConvNet<B: Backend> {
    conv: Conv<B>,
    head: Dense<B>,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for TinyConvNet<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        let m = x.dims()[0];
        let h = relu(self.conv.forward_ops(x.reshape([m, 1, 5, 5]), ops));
        self.head.forward_ops(h.reshape([m, 50]), ops)
    }
}

#[test]
fn convolutions_get_a_diagonal_block() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let device = Default::default();
    let model =
        TinyConvNet::<B> { conv: Conv::new(1, 2, 3, 1, &mut rng, &device), head: Dense::new(50, 3, &mut rng, &device) };
    let layout = ParamLayout::of(&model);
    assert_eq!(layout.len, 173);
    let b = batch(7, 25, 3, 11);
    let natural = Kfac::<B>::new(config(FisherKind::Empirical, 1e-2, 1e-10))
        .unwrap()
        .natural_gradient(&model, b.x.clone(), b.y.clone())
        .unwrap();
    // Per-example gradients, one backward pass each.
    let rows: Vec<Vec<f64>> = (0..7)
        .map(|i| {
            let losses = nll_per_example(model.forward_ops(b.x.clone(), &mut Plain), b.y.clone());
            let grads = losses.slice([i..i + 1]).sum().backward();
            flatten_grads(&model, &grads).into_data().iter::<f64>().collect()
        })
        .collect();
    let conv_len = 20; // kernel 2·1·3·3 then bias 2, first in the layout
    let conv_entries: Vec<_> = layout.entries.iter().filter(|e| e.name.starts_with("conv")).collect();
    assert_eq!(conv_entries.iter().map(|e| e.len).sum::<usize>(), conv_len);
    assert!(conv_entries.iter().all(|e| e.offset + e.len <= conv_len));
    let ours = flat(&model, &natural.directions);
    let mut diag_trace = 0.0;
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for k in 0..conv_len {
        let g: f64 = rows.iter().map(|r| r[k]).sum::<f64>() / 7.0;
        let dk: f64 = rows.iter().map(|r| r[k] * r[k]).sum::<f64>() / 7.0;
        diag_trace += dk;
        expected.push((k, g, dk));
        got.push(ours[k]);
    }
    let oracle: Vec<f64> = expected.iter().map(|&(_, g, dk)| g / (dk + natural.kappa)).collect();
    let err = rel_err(&got, &oracle);
    eprintln!("conv diagonal block: rel. error {err:.2e}");
    assert!(err <= 1e-10, "{err:e}");
    // κ counts the diagonal block's trace plus tr A·tr G of the head.
    assert!(natural.fisher_trace > diag_trace);
    let kappa = 1e-2 / 173.0 * natural.fisher_trace;
    assert!((natural.kappa - kappa).abs() <= 1e-14 * kappa);
}

#[test]
fn resuming_from_exported_state_is_bit_identical() {
    let c = KfacConfig {
        lr: 0.05,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-3,
        inverse_period: 2,
        ..config(FisherKind::Sampled, 1e-2, 1e-10)
    };
    let batches: Vec<Batch> = (0..12).map(|s| batch(16, 6, 3, 100 + s)).collect();
    let mut kfac = Kfac::<B>::new(c).unwrap();
    let mut model = tiny_mlp(5);
    for b in &batches[..7] {
        model = kfac.step(model, b.x.clone(), b.y.clone()).unwrap().0;
    }
    let state: HashMap<String, Vec<f64>> = kfac.export_state(&model).into_iter().collect();
    assert_eq!(state["kfac.layers"], vec![3.0]);
    assert_eq!(state["steps"], vec![7.0]);
    let mut resumed = Kfac::<B>::new(c).unwrap();
    resumed.import_state(&model, &state).unwrap();
    let mut other = model.clone();
    for b in &batches[7..] {
        let (m1, s1) = kfac.step(model, b.x.clone(), b.y.clone()).unwrap();
        let (m2, s2) = resumed.step(other, b.x.clone(), b.y.clone()).unwrap();
        assert_eq!(s1, s2);
        model = m1;
        other = m2;
    }
    let (a, b) = (flatten_to_vec(&model), flatten_to_vec(&other));
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "bit-identical weights");
    let s1: HashMap<String, Vec<f64>> = kfac.export_state(&model).into_iter().collect();
    let s2: HashMap<String, Vec<f64>> = resumed.export_state(&other).into_iter().collect();
    assert_eq!(s1, s2);
    // A state that lacks an entry is refused.
    let mut broken = state.clone();
    broken.remove("kfac.1.g.eigenvectors");
    let err = Kfac::<B>::new(c).unwrap().import_state(&model, &broken).unwrap_err();
    assert!(matches!(err, OptimError::InvalidState(_)), "{err}");
}

#[test]
fn bad_settings_are_errors_naming_the_field() {
    let base = config(FisherKind::Sampled, 1e-2, 1e-10);
    let cases = [
        ("alpha", KfacConfig { alpha: 0.0, ..base }),
        ("alpha", KfacConfig { alpha: -1.0, ..base }),
        ("alpha", KfacConfig { alpha: f64::NAN, ..base }),
        ("fisher_eps", KfacConfig { fisher_eps: -1e-10, ..base }),
        ("decay", KfacConfig { decay: 1.0, ..base }),
        ("decay", KfacConfig { decay: -0.1, ..base }),
        ("decay", KfacConfig { decay: f64::NAN, ..base }),
        ("inverse_period", KfacConfig { inverse_period: 0, ..base }),
    ];
    for (field, c) in cases {
        match Kfac::<B>::new(c).unwrap_err() {
            OptimError::InvalidConfig(msg) => assert!(msg.contains(field), "{field}: {msg}"),
            other => panic!("{field}: {other}"),
        }
    }
}

#[test]
fn non_finite_input_is_an_error_and_changes_nothing() {
    let model = tiny_mlp(1);
    let b = batch(4, 6, 3, 1);
    let x = b.x.slice_fill([0..1, 0..1], f64::NAN);
    let mut kfac = Kfac::<B>::new(config(FisherKind::Sampled, 1e-2, 1e-10)).unwrap();
    let err = kfac.step(model, x, b.y).unwrap_err();
    assert!(matches!(err, OptimError::NonFiniteGradient { .. }), "{err}");
    assert_eq!(kfac.steps(), 0);
    assert!(kfac.kronecker_factors(0).is_none());
}

#[test]
fn the_fisher_floor_sets_kappa_and_a_zero_fisher_without_floor_is_singular() {
    let model = single(1);
    let b = batch(7, IN, OUT, 11);
    let natural = Kfac::<B>::new(config(FisherKind::Sampled, 1e-2, 1e3))
        .unwrap()
        .natural_gradient(&model, b.x.clone(), b.y.clone())
        .unwrap();
    assert!(natural.fisher_trace < 1e3);
    assert_eq!(natural.kappa, 1e-2 / 36.0 * 1e3);
    let h = host(&model, &b, &natural.fisher_labels);
    let oracle = dense_solve(&h.a, &h.g, natural.kappa, &h.grad);
    assert!(rel_err(&flat(&model, &natural.directions), oracle.as_slice()) <= 1e-8);

    // W = 0, b = (1000, 0, …), labels all 0: softmax is one-hot in f64, G = 0, tr F̂ = 0.
    let device = Default::default();
    let zero = Single::<B> {
        layer: Dense {
            weight: Param::from_tensor(Tensor::zeros([IN, OUT], &device)),
            bias: Param::from_tensor(Tensor::from_floats([1000.0, 0.0, 0.0, 0.0], &device)),
        },
    };
    let y = one_hot(&[0; 7], OUT);
    let err = Kfac::<B>::new(config(FisherKind::Empirical, 1e-2, 0.0))
        .unwrap()
        .natural_gradient(&zero, b.x.clone(), y.clone())
        .err()
        .expect("κ = 0 is an error");
    assert!(matches!(err, OptimError::SingularFisher(_)), "{err}");
    let natural =
        Kfac::<B>::new(config(FisherKind::Empirical, 1e-2, 1e-10)).unwrap().natural_gradient(&zero, b.x, y).unwrap();
    assert_eq!(natural.fisher_trace, 0.0);
    assert_eq!(natural.norm, 0.0, "zero gradient, zero step");
}

#[test]
fn a_small_mlp_trains() {
    let mut model = tiny_mlp(7);
    let b = batch(32, 6, 3, 77);
    let c = KfacConfig { lr: 0.05, ..KfacConfig::default() };
    let mut kfac = Kfac::<B>::new(c).unwrap();
    let mut losses = Vec::new();
    for _ in 0..40 {
        let (next, stats) = kfac.step(model, b.x.clone(), b.y.clone()).unwrap();
        assert!(stats.kappa > 0.0 && stats.step.update_norm.is_finite());
        losses.push(stats.loss);
        model = next;
    }
    eprintln!("MLP losses: first {:.4}, last {:.4}", losses[0], losses[39]);
    assert!(losses[39] < 0.8 * losses[0], "{losses:?}");
}
