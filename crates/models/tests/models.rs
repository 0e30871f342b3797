//! Parameter counts, shapes, determinism, pooling, and the promise that every model can be
//! differentiated twice (exact Hessian-vector products by nested autodiff).

use burn::module::AutodiffModule;
use burn::tensor::module::max_pool2d;
use burn::tensor::{Tensor, TensorData};
use slt_core::params::{flatten, flatten_to_vec, num_params, write_back};
use slt_models::layers::max_pool_2x2;
use slt_models::loss::{cross_entropy, nll_per_example};
use slt_models::{Classifier, ModelSpec};

type F = burn_ndarray::NdArray<f64>;
type Flex32 = burn_flex::Flex<f32>;

#[test]
fn parameter_counts() {
    let device = Default::default();
    let count = |name: &str| num_params(&name.parse::<ModelSpec>().unwrap().init::<F>(0, &device));
    assert_eq!(count("mlp-2x256"), 269_322);
    assert_eq!(count("mlp-1x16"), 784 * 16 + 16 + 16 * 10 + 10);
    assert_eq!(count("mlp-0x1"), 7850);
    assert_eq!(count("lenet5"), 44_426);
    assert_eq!(count("lenet5-e2"), 44_426 + 2 * (6 * 6 * 25 + 6));
    for name in ["mlp-2x256", "mlp-1x16", "mlp-0x1", "mlp-3x7", "lenet5", "lenet5-e2"] {
        assert_eq!(name.parse::<ModelSpec>().unwrap().num_params(), count(name), "{name}: ModelSpec::num_params");
    }
}

#[test]
fn names_round_trip_and_bad_names_fail() {
    for name in ["mlp-2x256", "mlp-1x16", "lenet5", "lenet5-e3"] {
        assert_eq!(name.parse::<ModelSpec>().unwrap().to_string(), name);
    }
    for bad in ["mlp", "mlp-2", "mlp-2x0", "mlp-ax3", "lenet", "lenet5-e", "resnet"] {
        assert!(bad.parse::<ModelSpec>().is_err(), "{bad}");
    }
}

#[test]
fn initialisation_is_seeded_and_pytorch_scaled() {
    let device = Default::default();
    let spec: ModelSpec = "mlp-1x64".parse().unwrap();
    let a = flatten_to_vec(&spec.init::<F>(3, &device));
    assert_eq!(a, flatten_to_vec(&spec.init::<F>(3, &device)));
    assert_ne!(a, flatten_to_vec(&spec.init::<F>(4, &device)));
    // First layer weights ~ U(−1/√784, 1/√784): max |w| close to the bound, mean near 0.
    let bound = 1.0 / 784f64.sqrt();
    let first = &a[..784 * 64];
    let max = first.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(max <= bound && max > 0.99 * bound, "{max} vs {bound}");
    let mean = first.iter().sum::<f64>() / first.len() as f64;
    // 4 standard deviations of the mean of n draws from U(−b, b): 4·b/√(3n).
    assert!(mean.abs() < 4.0 * bound / (3.0 * first.len() as f64).sqrt());
}

#[test]
fn forward_shapes_and_loss_of_uniform_logits() {
    let device = Default::default();
    for name in ["mlp-2x32", "lenet5", "lenet5-e1"] {
        let model = name.parse::<ModelSpec>().unwrap().init::<F>(0, &device);
        let x = Tensor::<F, 2>::random([5, 784], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(model.forward(x).dims(), [5, 10], "{name}");
    }
    // Zero logits: every per-example loss is ln 10.
    let logits = Tensor::<F, 2>::zeros([3, 10], &device);
    let one_hot = Tensor::<F, 2>::zeros([3, 10], &device).slice_fill([0..3, 2..3], 1.0);
    let per = nll_per_example(logits.clone(), one_hot.clone()).into_data().to_vec::<f64>().unwrap();
    assert!(per.iter().all(|l| (l - 10f64.ln()).abs() < 1e-12));
    let mean: f64 = cross_entropy(logits, one_hot).into_scalar();
    assert!((mean - 10f64.ln()).abs() < 1e-12);
}

#[test]
fn reshape_pooling_equals_max_pool2d() {
    let device = Default::default();
    let x = Tensor::<F, 4>::random([2, 3, 8, 6], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let ours = max_pool_2x2(x.clone()).into_data();
    let burns = max_pool2d(x.clone(), [2, 2], [2, 2], [0, 0], [1, 1], false).into_data();
    assert_eq!(ours, burns);
    // Odd sizes: floor mode.
    let x = Tensor::<F, 4>::random([1, 1, 5, 7], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(max_pool_2x2(x.clone()).into_data(), max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false).into_data());
}

/// The fixed inputs, labels and direction of the HVP checks.
fn hvp_problem(d: usize) -> (TensorData, TensorData, Vec<f64>) {
    let x = TensorData::new((0..4 * 784).map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0).collect::<Vec<_>>(), [4, 784]);
    let mut labels = vec![0.0; 40];
    for (row, class) in [3, 7, 1, 3].iter().enumerate() {
        labels[row * 10 + class] = 1.0;
    }
    let v: Vec<f64> = (0..d).map(|i| ((i * 7919 % 1000) as f64 / 500.0) - 1.0).collect();
    (x, TensorData::new(labels, [4, 10]), v)
}

/// Hv by double backward on backend `F`: g(w) = ∇L on the inner autodiff level, then ∇(g·v).
fn exact_hvp<F: burn::tensor::backend::Backend>(spec: ModelSpec) -> Vec<f64> {
    type Ad<F> = burn_autodiff::Autodiff<F>;
    type Ad2<F> = burn_autodiff::Autodiff<Ad<F>>;
    let device = Default::default();
    // The inner model's parameters are tracked on the inner level; wrapping them with
    // `from_inner` tracks them on the outer level too.
    let inner_model = spec.init::<Ad<F>>(0, &device);
    let (x, y, v) = hvp_problem(num_params(&inner_model));
    let model = Classifier::<Ad2<F>>::from_inner(inner_model.clone());
    let loss = cross_entropy(model.forward(Tensor::from_data(x, &device)), Tensor::from_data(y, &device));
    let grads = loss.backward();
    let g: Tensor<Ad<F>, 1> = slt_core::params::flatten_grads(&model, &grads);
    let gv = (g * Tensor::<Ad<F>, 1>::from_floats(v.as_slice(), &device)).sum();
    let grads2 = gv.backward();
    slt_core::params::flatten_grads(&inner_model, &grads2).into_data().iter::<f64>().collect()
}

/// Central differences of f64 gradients along v, step h.
fn finite_difference_hvp(spec: ModelSpec, h: f64) -> Vec<f64> {
    let device = Default::default();
    let grad_at = |shift: f64| -> Vec<f64> {
        let base = spec.init::<burn_autodiff::Autodiff<F>>(0, &device);
        let (x, y, v) = hvp_problem(num_params(&base));
        let w: Vec<f64> = flatten_to_vec(&base).iter().zip(&v).map(|(w, v)| w + shift * v).collect();
        let model = slt_core::params::write_back_vec(base, &w).unwrap();
        let model = write_back(model.clone(), flatten(&model).detach().require_grad()).unwrap();
        let loss = cross_entropy(model.forward(Tensor::from_data(x, &device)), Tensor::from_data(y, &device));
        let grads = loss.backward();
        slt_core::params::flatten_grads(&model, &grads).into_data().to_vec::<f64>().unwrap()
    };
    let (gp, gm) = (grad_at(h), grad_at(-h));
    gp.iter().zip(&gm).map(|(p, m)| (p - m) / (2.0 * h)).collect()
}

fn relative_error(a: &[f64], reference: &[f64]) -> f64 {
    let err = a.iter().zip(reference).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let norm = reference.iter().map(|a| a * a).sum::<f64>().sqrt();
    assert!(norm > 0.0);
    err / norm
}

/// Exact HVPs through the model: f64 ndarray against central differences (≤ 1e-6 relative),
/// and the f32 flex backend against the f64 result (≤ 1e-4 relative, f32 rounding).
fn twice_differentiable(name: &str) {
    let spec: ModelSpec = name.parse().unwrap();
    let exact64 = exact_hvp::<F>(spec);
    let fd = finite_difference_hvp(spec, 1e-5);
    let e = relative_error(&exact64, &fd);
    assert!(e < 1e-6, "{name}: ndarray f64 exact vs finite differences: {e}");
    let exact_flex = exact_hvp::<Flex32>(spec);
    let e = relative_error(&exact_flex, &exact64);
    assert!(e < 1e-4, "{name}: flex f32 exact vs ndarray f64 exact: {e}");
}

#[test]
fn mlp_is_twice_differentiable() {
    twice_differentiable("mlp-2x8");
}

#[test]
fn lenet_is_twice_differentiable() {
    twice_differentiable("lenet5-e1");
}

/// The loss must be exact in f64 (the Hessian and LLC oracles compare at 1e-10): a scalar
/// division by the batch size once rounded 1/m to f32 on ndarray.
#[test]
fn cross_entropy_is_exact_in_f64() {
    let device = Default::default();
    let logits: Vec<f64> = (0..30).map(|i| ((i * 13 % 17) as f64 - 8.0) / 3.0).collect();
    let labels = [2usize, 7, 4];
    let mut one_hot = vec![0.0; 30];
    for (r, &c) in labels.iter().enumerate() {
        one_hot[r * 10 + c] = 1.0;
    }
    let expected: f64 = (0..3)
        .map(|r| {
            let row = &logits[r * 10..(r + 1) * 10];
            let max = row.iter().cloned().fold(f64::MIN, f64::max);
            let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            lse - row[labels[r]]
        })
        .sum::<f64>()
        / 3.0;
    type A = burn_autodiff::Autodiff<F>;
    let x = Tensor::<A, 2>::from_data(TensorData::new(logits.clone(), [3, 10]), &device).require_grad();
    let loss = cross_entropy(x.clone(), Tensor::<A, 2>::from_data(TensorData::new(one_hot.clone(), [3, 10]), &device));
    let got: f64 = loss.clone().into_scalar();
    assert!((got - expected).abs() < 1e-14, "{got} vs {expected}: {}", got - expected);
    // ∂L/∂logits = (softmax − one-hot)/m.
    let grad = x.grad(&loss.backward()).unwrap().into_data().to_vec::<f64>().unwrap();
    for r in 0..3 {
        let row = &logits[r * 10..(r + 1) * 10];
        let z: f64 = row.iter().map(|v| v.exp()).sum();
        for c in 0..10 {
            let exact = (row[c].exp() / z - one_hot[r * 10 + c]) / 3.0;
            assert!((grad[r * 10 + c] - exact).abs() < 1e-15, "gradient {} vs {exact}", grad[r * 10 + c]);
        }
    }
}
