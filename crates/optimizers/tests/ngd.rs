//! Exact NGD against a dense oracle: on tiny models (d ≤ 200, f64) the per-example gradients
//! are formed one backward pass at a time, F = (1/m)Σ sᵢsᵢᵀ is built as a d×d matrix and
//! (F + κI)⁻¹g is solved directly; the Woodbury/Gram implementation must agree to ≤ 1e-5
//! relative error (it agrees to ~1e-12), for batches smaller and larger than d and on the f32
//! backend too.

use burn::module::{Module, Param};
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
use slt_optimizers::{FisherKind, Ngd, NgdConfig, OptimError};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;

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

fn tiny_mlp(seed: u64) -> Mlp<B> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mlp::new(6, 2, 5, 3, &mut rng, &Default::default())
}

fn tiny_conv(seed: u64) -> TinyConvNet<B> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let device = Default::default();
    TinyConvNet { conv: Conv::new(1, 2, 3, 1, &mut rng, &device), head: Dense::new(50, 3, &mut rng, &device) }
}

fn batch(m: usize, inputs: usize, classes: usize, seed: u64) -> (Tensor<B, 2>, Tensor<B, 2>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f64> = (0..m * inputs).map(|_| rng.random_range(-1.5..1.5)).collect();
    let labels: Vec<usize> = (0..m).map(|_| rng.random_range(0..classes)).collect();
    let device = Default::default();
    (Tensor::from_data(TensorData::new(x, [m, inputs]), &device), one_hot(&labels, classes), labels)
}

fn one_hot(labels: &[usize], classes: usize) -> Tensor<B, 2> {
    let mut y = vec![0.0; labels.len() * classes];
    for (i, &k) in labels.iter().enumerate() {
        y[i * classes + k] = 1.0;
    }
    Tensor::from_data(TensorData::new(y, [labels.len(), classes]), &Default::default())
}

/// Rows ∇ℓᵢ(w), one backward pass per example, in the layout of `ParamLayout::of(model)`.
fn per_example_grads<M: TappedModel<B, Tensor<B, 2>> + burn::module::AutodiffModule<B>>(
    model: &M,
    x: &Tensor<B, 2>,
    labels: &[usize],
    classes: usize,
) -> Vec<Vec<f64>> {
    let y = one_hot(labels, classes);
    (0..labels.len())
        .map(|i| {
            let losses = nll_per_example(model.forward_ops(x.clone(), &mut Plain), y.clone());
            let grads = losses.slice([i..i + 1]).sum().backward();
            flatten_grads(model, &grads).into_data().iter::<f64>().collect()
        })
        .collect()
}

struct Oracle {
    direction: Vec<f64>,
    gradient: Vec<f64>,
    trace: f64,
    kappa: f64,
}

/// (F + κI)⁻¹g with F = (1/m)Σ s̃ᵢs̃ᵢᵀ formed densely.
fn dense_oracle<M: TappedModel<B, Tensor<B, 2>> + burn::module::AutodiffModule<B>>(
    model: &M,
    x: &Tensor<B, 2>,
    labels: &[usize],
    fisher_labels: &[usize],
    config: &NgdConfig,
) -> Oracle {
    let classes = 3;
    let d = ParamLayout::of(model).len;
    let m = labels.len();
    let true_rows = per_example_grads(model, x, labels, classes);
    let fisher_rows = per_example_grads(model, x, fisher_labels, classes);
    let mut fisher = DMatrix::<f64>::zeros(d, d);
    for s in &fisher_rows {
        let s = DVector::from_column_slice(s);
        fisher += &s * s.transpose() / m as f64;
    }
    let gradient: Vec<f64> = (0..d).map(|k| true_rows.iter().map(|r| r[k]).sum::<f64>() / m as f64).collect();
    let trace = fisher.trace();
    let kappa = config.alpha / d as f64 * trace.max(config.fisher_eps);
    let damped = fisher + DMatrix::<f64>::identity(d, d) * kappa;
    let direction = damped.lu().solve(&DVector::from_column_slice(&gradient)).expect("F + κI is invertible");
    Oracle { direction: direction.as_slice().to_vec(), gradient, trace, kappa }
}

fn flat_direction<M: burn::module::AutodiffModule<B>>(
    model: &M,
    natural: &slt_optimizers::NaturalGradient<B>,
) -> Vec<f64> {
    let layout = ParamLayout::of(model);
    let mut flat = vec![0.0; layout.len];
    for e in &layout.entries {
        let dir = natural.directions.get(&e.id).expect("every parameter has a direction");
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

fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn check_against_oracle<M: TappedModel<B, Tensor<B, 2>> + burn::module::AutodiffModule<B>>(
    name: &str,
    model: &M,
    inputs: usize,
    config: NgdConfig,
) {
    check_against_oracle_with_batch(name, model, inputs, 7, config)
}

fn check_against_oracle_with_batch<M: TappedModel<B, Tensor<B, 2>> + burn::module::AutodiffModule<B>>(
    name: &str,
    model: &M,
    inputs: usize,
    m: usize,
    config: NgdConfig,
) {
    let (x, y, labels) = batch(m, inputs, 3, 11);
    let ngd = Ngd::<B>::new(config).unwrap();
    let natural = ngd.natural_gradient(model, x.clone(), y).unwrap();
    if config.fisher == FisherKind::Empirical {
        assert_eq!(natural.fisher_labels, labels);
    }
    let oracle = dense_oracle(model, &x, &labels, &natural.fisher_labels, &config);
    let ours = flat_direction(model, &natural);
    let err = rel_err(&ours, &oracle.direction);
    eprintln!(
        "{name} m={m} {:?} α={} ε={}: d={} tr F={:.6} κ={:.3e} rel. error {err:.2e}",
        config.fisher,
        config.alpha,
        config.fisher_eps,
        ours.len(),
        oracle.trace,
        oracle.kappa
    );
    assert!(err <= 1e-5, "{name}: relative error {err:e}");
    assert!((natural.fisher_trace - oracle.trace).abs() <= 1e-10 * oracle.trace, "{name}: tr F");
    assert!((natural.kappa - oracle.kappa).abs() <= 1e-10 * oracle.kappa, "{name}: κ");
    assert!((natural.grad_norm - norm(&oracle.gradient)).abs() <= 1e-10 * norm(&oracle.gradient));
    // The reported norm is that of the returned direction (whose error is `err` above).
    assert!((natural.norm - norm(&ours)).abs() <= 1e-10 * norm(&ours));
    assert!(!natural.recovered);
}

fn config(fisher: FisherKind, alpha: f64, fisher_eps: f64) -> NgdConfig {
    NgdConfig {
        lr: 0.1,
        alpha,
        fisher_eps,
        fisher,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
        seed: 3,
        normalize: false,
        fixed_step: false,
    }
}

#[test]
fn exact_ngd_matches_the_dense_solve_on_a_tiny_mlp() {
    let model = tiny_mlp(1);
    assert_eq!(ParamLayout::of(&model).len, 83);
    for fisher in [FisherKind::Empirical, FisherKind::Sampled] {
        // α = 1e-2 (the paper's), and a weakly damped case where κ is ~1e-7 of tr F.
        for alpha in [1e-2, 1e-5] {
            check_against_oracle("mlp 6-5-5-3", &model, 6, config(fisher, alpha, 1e-10));
        }
    }
}

#[test]
fn exact_ngd_matches_the_dense_solve_on_a_tiny_conv_net() {
    let model = tiny_conv(2);
    assert_eq!(ParamLayout::of(&model).len, 173);
    for fisher in [FisherKind::Empirical, FisherKind::Sampled] {
        for alpha in [1e-2, 1e-5] {
            check_against_oracle("conv net", &model, 25, config(fisher, alpha, 1e-10));
        }
    }
}

/// m = 200 examples > d = 83 parameters: the Gram matrix SSᵀ has rank ≤ d < m, and the
/// push-through solve divides by κ down to α = 1e-8 (κ ≈ 1.6e-10). It must stay exact there
/// (measured: relative error 8e-14 at α = 1e-2, growing like 1/κ to 1e-7 at α = 1e-8), so a
/// divergence of weakly damped NGD is the method's, not the solver's.
#[test]
fn exact_ngd_matches_the_dense_solve_when_the_batch_exceeds_the_parameters() {
    let model = tiny_mlp(1);
    for fisher in [FisherKind::Empirical, FisherKind::Sampled] {
        for alpha in [1e-2, 1e-5, 1e-8] {
            check_against_oracle_with_batch("mlp 6-5-5-3", &model, 6, 200, config(fisher, alpha, 1e-10));
        }
    }
}

/// The experiments train in f32: the f32 backend's F_s⁻¹g against the f64 dense oracle at the
/// same (f32-representable) weights, m < d and m > d, α down to 1e-6. Tolerance 1e-5 relative
/// (measured ≤ 1.1e-7: the Gram matrix is solved in f64 on the host).
#[test]
fn exact_ngd_in_f32_matches_the_f64_dense_solve() {
    type B32 = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let model32: Mlp<B32> = Mlp::new(6, 2, 5, 3, &mut rng, &Default::default());
    let model = slt_core::params::write_back_vec(tiny_mlp(1), &flatten_to_vec(&model32)).unwrap();
    let layout = ParamLayout::of(&model32);
    for m in [7, 200] {
        let (x, y, labels) = batch(m, 6, 3, 11);
        let to32 = |t: &Tensor<B, 2>| Tensor::<B32, 2>::from_data(t.to_data().convert::<f32>(), &Default::default());
        for fisher in [FisherKind::Empirical, FisherKind::Sampled] {
            for alpha in [1e-2, 1e-4, 1e-6] {
                let config = config(fisher, alpha, 1e-10);
                let natural = Ngd::<B32>::new(config).unwrap().natural_gradient(&model32, to32(&x), to32(&y)).unwrap();
                let oracle = dense_oracle(&model, &x, &labels, &natural.fisher_labels, &config);
                let mut ours = vec![0.0; layout.len];
                for e in &layout.entries {
                    let dir = natural.directions[&e.id].to_data();
                    for (dst, v) in ours[e.offset..e.offset + e.len].iter_mut().zip(dir.iter::<f64>()) {
                        *dst = v;
                    }
                }
                let err = rel_err(&ours, &oracle.direction);
                eprintln!("f32, m={m} {fisher:?} α={alpha}: rel. error {err:.2e}");
                assert!(err <= 1e-5, "f32, m={m} {fisher:?} α={alpha}: relative error {err:e}");
            }
        }
    }
}

#[test]
fn the_fisher_floor_sets_kappa_when_the_trace_is_smaller() {
    let model = tiny_mlp(1);
    // ε far above tr F: κ = (α/d)·ε exactly, and the solve still matches the oracle.
    let c = config(FisherKind::Sampled, 1e-2, 1e3);
    check_against_oracle("mlp, ε floor", &model, 6, c);
    let (x, y, _) = batch(7, 6, 3, 11);
    let natural = Ngd::<B>::new(c).unwrap().natural_gradient(&model, x, y).unwrap();
    assert!(natural.fisher_trace < 1e3);
    assert_eq!(natural.kappa, 1e-2 / 83.0 * 1e3);
}

#[test]
fn as_alpha_grows_the_step_tends_to_the_sgd_step_over_kappa() {
    let model = tiny_mlp(4);
    let (x, y, labels) = batch(7, 6, 3, 12);
    for fisher in [FisherKind::Empirical, FisherKind::Sampled] {
        let natural =
            Ngd::<B>::new(config(fisher, 1e9, 1e-10)).unwrap().natural_gradient(&model, x.clone(), y.clone()).unwrap();
        let scaled: Vec<f64> = flat_direction(&model, &natural).iter().map(|v| v * natural.kappa).collect();
        let rows = per_example_grads(&model, &x, &labels, 3);
        let g: Vec<f64> = (0..scaled.len()).map(|k| rows.iter().map(|r| r[k]).sum::<f64>() / 7.0).collect();
        let err = rel_err(&scaled, &g);
        assert!(err < 1e-6, "{fisher:?}: κ·F_s⁻¹g vs g: {err:e}");
    }
}

#[test]
fn sampled_labels_are_reproducible_and_follow_the_step_index() {
    let model = tiny_mlp(1);
    let (x, y, _) = batch(64, 6, 3, 5);
    let c = config(FisherKind::Sampled, 1e-2, 1e-10);
    let a = Ngd::<B>::new(c).unwrap().natural_gradient(&model, x.clone(), y.clone()).unwrap();
    let b = Ngd::<B>::new(c).unwrap().natural_gradient(&model, x.clone(), y.clone()).unwrap();
    assert_eq!(a.fisher_labels, b.fisher_labels);
    let mut stepped = Ngd::<B>::new(c).unwrap();
    let (model2, _) = stepped.step(model.clone(), x.clone(), y.clone()).unwrap();
    let next = stepped.natural_gradient(&model2, x, y).unwrap();
    assert_ne!(a.fisher_labels, next.fisher_labels, "a new step draws new labels");
}

#[test]
fn a_step_moves_by_lr_times_the_natural_gradient_and_lowers_the_loss() {
    let model = tiny_mlp(1);
    let (x, y, _) = batch(16, 6, 3, 9);
    // With the sampled Fisher, g has a component outside the row space of S that F_s⁻¹ scales
    // by 1/κ (here κ ≈ 1e-4·tr F): the stable η is of order κ, not of order 1 as with the
    // empirical Fisher (whose g lies in that row space).
    for (fisher, lr) in [(FisherKind::Empirical, 0.1), (FisherKind::Sampled, 1e-5)] {
        let c = NgdConfig { lr, ..config(fisher, 1e-2, 1e-10) };
        let mut ngd = Ngd::<B>::new(c).unwrap();
        let natural = ngd.natural_gradient(&model, x.clone(), y.clone()).unwrap();
        let before = flatten_to_vec(&model);
        let direction = flat_direction(&model, &natural);
        let (after_model, stats) = ngd.step(model.clone(), x.clone(), y.clone()).unwrap();
        let after = flatten_to_vec(&after_model);
        for k in 0..before.len() {
            assert!((after[k] - (before[k] - lr * direction[k])).abs() < 1e-12);
        }
        assert_eq!(stats.step.update_norm, natural.norm);
        let loss_after = ngd.natural_gradient(&after_model, x.clone(), y.clone()).unwrap().loss;
        assert!(loss_after < stats.loss, "{fisher:?}: {loss_after} vs {}", stats.loss);
    }
}

#[test]
fn rescaled_steps_have_the_declared_length_whatever_the_smoothing() {
    // `normalize`: F_s⁻¹g rescaled to ‖g‖, the applied step is η·‖g‖·F_s⁻¹g/‖F_s⁻¹g‖;
    // `fixed_step`: rescaled to unit length, the step is η·F_s⁻¹g/‖F_s⁻¹g‖. Either way α moves
    // only the direction (the raw F_s⁻¹g of the sampled Fisher scales as 1/κ ∝ 1/α).
    let model = tiny_mlp(1);
    let (x, y, _) = batch(16, 6, 3, 9);
    let lr = 0.05;
    for fixed_step in [false, true] {
        let mut raw_norms = Vec::new();
        for alpha in [1e-3, 1e-1, 10.0] {
            let c = NgdConfig { lr, normalize: !fixed_step, fixed_step, ..config(FisherKind::Sampled, alpha, 1e-10) };
            let mut ngd = Ngd::<B>::new(c).unwrap();
            let natural = ngd.natural_gradient(&model, x.clone(), y.clone()).unwrap();
            raw_norms.push(natural.norm);
            let direction = flat_direction(&model, &natural);
            let before = flatten_to_vec(&model);
            let (after_model, stats) = ngd.step(model.clone(), x.clone(), y.clone()).unwrap();
            let after = flatten_to_vec(&after_model);
            let length = if fixed_step { 1.0 } else { natural.grad_norm };
            let scale = length / natural.norm;
            for k in 0..before.len() {
                assert!((after[k] - (before[k] - lr * scale * direction[k])).abs() < 1e-12);
            }
            let moved = before.iter().zip(&after).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            assert!((moved - lr * length).abs() <= 1e-10 * moved, "{moved} vs {}", lr * length);
            assert_eq!(stats.step.update_norm, length);
        }
        // Without the rescaling the length would have changed by orders of magnitude.
        assert!(raw_norms[0] > 50.0 * raw_norms[2], "{raw_norms:?}");
    }
    let both = NgdConfig { normalize: true, fixed_step: true, ..config(FisherKind::Sampled, 1e-2, 1e-10) };
    let err = Ngd::<B>::new(both).unwrap_err();
    assert!(err.to_string().contains("exclusive"), "{err}");
}

#[test]
fn bad_settings_and_bad_gradients_are_errors() {
    for (alpha, eps) in [(0.0, 1e-10), (-1.0, 1e-10), (f64::NAN, 1e-10), (1e-2, -1e-10)] {
        let err = Ngd::<B>::new(config(FisherKind::Sampled, alpha, eps)).unwrap_err();
        assert!(matches!(err, OptimError::InvalidConfig(_)), "{err}");
    }
    // A NaN input gives a non-finite loss: an error, nothing applied.
    let model = tiny_mlp(1);
    let (x, y, _) = batch(4, 6, 3, 1);
    let x = x.slice_fill([0..1, 0..1], f64::NAN);
    let err = Ngd::<B>::new(config(FisherKind::Sampled, 1e-2, 1e-10)).unwrap().step(model, x, y).unwrap_err();
    assert!(matches!(err, OptimError::NonFiniteGradient { .. }), "{err}");
}

/// One affine layer: logits = x·W + b.
#[derive(Module, Debug)]
struct Single<B: Backend> {
    layer: Dense<B>,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Single<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        self.layer.forward_ops(x, ops)
    }
}

#[test]
fn zero_fisher_with_zero_floor_is_a_singular_error_and_the_floor_fixes_it() {
    // W = 0, b = (1000, 0, 0), labels all 0: softmax is exactly one-hot in f64, every score
    // vanishes, tr F = 0; with ε = 0, κ = 0 and F + κI = 0.
    let device = Default::default();
    let model = Single::<B> {
        layer: Dense {
            weight: Param::from_tensor(Tensor::zeros([6, 3], &device)),
            bias: Param::from_tensor(Tensor::from_floats([1000.0, 0.0, 0.0], &device)),
        },
    };
    let (x, _, _) = batch(4, 6, 3, 1);
    let y = one_hot(&[0, 0, 0, 0], 3);
    let err = Ngd::<B>::new(config(FisherKind::Empirical, 1e-2, 0.0))
        .unwrap()
        .natural_gradient(&model, x.clone(), y.clone())
        .err()
        .expect("κ = 0 is an error");
    assert!(matches!(err, OptimError::SingularFisher(_)), "{err}");
    let natural =
        Ngd::<B>::new(config(FisherKind::Empirical, 1e-2, 1e-10)).unwrap().natural_gradient(&model, x, y).unwrap();
    assert_eq!(natural.fisher_trace, 0.0);
    assert_eq!(natural.norm, 0.0, "zero gradient, zero step");
}

/// A parameter used outside `LayerOps` cannot be handled: an error naming it.
#[derive(Module, Debug)]
struct Scaled<B: Backend> {
    layer: Dense<B>,
    scale: Param<Tensor<B, 1>>,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Scaled<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        self.layer.forward_ops(x, ops) * self.scale.val().unsqueeze_dim(0)
    }
}

#[test]
fn a_parameter_outside_the_recorded_layers_is_named_in_the_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let device = Default::default();
    let model = Scaled::<B> {
        layer: Dense::new(6, 3, &mut rng, &device),
        scale: Param::from_tensor(Tensor::ones([3], &device)),
    };
    let (x, y, _) = batch(4, 6, 3, 1);
    let err = Ngd::<B>::new(config(FisherKind::Sampled, 1e-2, 1e-10))
        .unwrap()
        .natural_gradient(&model, x, y)
        .err()
        .expect("an error");
    assert!(matches!(&err, OptimError::UnsupportedModel(msg) if msg.contains("'scale'")), "{err}");
}
