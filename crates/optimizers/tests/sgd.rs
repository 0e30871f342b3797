//! SGD against steps computed by hand on L(w) = ½‖w − t‖² (∇L = w − t), three steps each.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use slt_core::params::flatten_to_vec;
use slt_optimizers::{OptimError, Sgd, SgdConfig};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;

#[derive(Module, Debug)]
struct Point<B: Backend> {
    w: Param<Tensor<B, 1>>,
}

const T: [f64; 3] = [1.0, -2.0, 0.5];
const W0: [f64; 3] = [0.0, 1.0, 3.0];

fn run(config: SgdConfig, steps: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let device = Default::default();
    let mut model = Point::<B> { w: Param::from_tensor(Tensor::from_floats(W0, &device).require_grad()) };
    let t = Tensor::<B, 1>::from_floats(T, &device);
    let mut sgd = Sgd::new(config).unwrap();
    let mut trajectory = Vec::new();
    let mut norms = Vec::new();
    for _ in 0..steps {
        let loss = (model.w.val() - t.clone()).square().sum() * 0.5;
        let grads = loss.backward();
        let (next, stats) = sgd.step(model, &grads).unwrap();
        model = next;
        trajectory.push(flatten_to_vec(&model));
        norms.push(stats.update_norm);
    }
    (trajectory, norms)
}

/// The same recursion written out on plain arrays.
fn by_hand(lr: f64, mu: f64, nesterov: bool, wd: f64, steps: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut w = W0.to_vec();
    let mut v = [0.0; 3];
    let mut out = Vec::new();
    let mut norms = Vec::new();
    for step in 0..steps {
        let mut d = [0.0; 3];
        for i in 0..3 {
            let g = (w[i] - T[i]) + wd * w[i];
            v[i] = if step == 0 { g } else { mu * v[i] + g };
            d[i] = if mu == 0.0 {
                g
            } else if nesterov {
                g + mu * v[i]
            } else {
                v[i]
            };
        }
        for i in 0..3 {
            w[i] -= lr * d[i];
        }
        norms.push(d.iter().map(|x| x * x).sum::<f64>().sqrt());
        out.push(w.clone());
    }
    (out, norms)
}

fn assert_close(a: &[Vec<f64>], b: &[Vec<f64>]) {
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

#[test]
fn plain_sgd_first_step_is_exact() {
    let (traj, norms) = run(SgdConfig { lr: 0.1, ..Default::default() }, 1);
    // w1 = w0 − 0.1 (w0 − t) = [0.1, 0.7, 2.75]; ‖g‖ = ‖[−1, 3, 2.5]‖ = √16.25.
    assert_close(&traj, &[vec![0.1, 0.7, 2.75]]);
    assert!((norms[0] - 16.25f64.sqrt()).abs() < 1e-12);
}

#[test]
fn momentum_nesterov_and_weight_decay_match_the_recursion() {
    for (mu, nesterov, wd) in
        [(0.0, false, 0.0), (0.9, false, 0.0), (0.9, true, 0.0), (0.5, true, 0.1), (0.0, false, 0.2)]
    {
        let config = SgdConfig { lr: 0.05, momentum: mu, nesterov, weight_decay: wd };
        let (traj, norms) = run(config, 3);
        let (expected, expected_norms) = by_hand(0.05, mu, nesterov, wd, 3);
        assert_close(&traj, &expected);
        for (a, b) in norms.iter().zip(&expected_norms) {
            assert!((a - b).abs() < 1e-12, "{config:?}: {norms:?} vs {expected_norms:?}");
        }
    }
}

#[test]
fn invalid_settings_are_rejected() {
    for bad in [
        SgdConfig { lr: 0.0, ..Default::default() },
        SgdConfig { lr: f64::NAN, ..Default::default() },
        SgdConfig { momentum: 1.0, ..Default::default() },
        SgdConfig { nesterov: true, ..Default::default() },
        SgdConfig { weight_decay: -1.0, ..Default::default() },
    ] {
        assert!(matches!(Sgd::<B>::new(bad), Err(OptimError::InvalidConfig(_))), "{bad:?}");
    }
}

#[test]
fn non_finite_gradient_leaves_the_model_unchanged() {
    let device = Default::default();
    let model = Point::<B> { w: Param::from_tensor(Tensor::from_floats(W0, &device).require_grad()) };
    let loss = (model.w.val().sqrt()).sum(); // √(0) has an infinite derivative at w = 0
    let grads = loss.backward();
    let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
    let before = flatten_to_vec(&model);
    let err = sgd.step(model.clone(), &grads).unwrap_err();
    assert!(matches!(err, OptimError::NonFiniteGradient { .. }), "{err}");
    assert_eq!(flatten_to_vec(&model), before);
}

#[test]
fn saved_velocity_resumes_exactly() {
    let device = Default::default();
    let t = Tensor::<B, 1>::from_floats(T, &device);
    let config = SgdConfig { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01 };
    let step = |model: Point<B>, sgd: &mut Sgd<B>| {
        let loss = (model.w.val() - t.clone()).square().sum() * 0.5;
        sgd.step(model, &loss.backward()).unwrap().0
    };
    let fresh = || Point::<B> { w: Param::from_tensor(Tensor::from_floats(W0, &device).require_grad()) };
    // Uninterrupted: 4 steps.
    let mut sgd = Sgd::new(config).unwrap();
    let mut a = fresh();
    for _ in 0..4 {
        a = step(a, &mut sgd);
    }
    // Interrupted after 2 steps: weights and velocity saved, restored into a new optimiser.
    let mut sgd = Sgd::new(config).unwrap();
    let mut b = fresh();
    for _ in 0..2 {
        b = step(b, &mut sgd);
    }
    let saved_w = flatten_to_vec(&b);
    let saved_v = sgd.velocity_to_vec(&b);
    assert!(saved_v.iter().any(|&v| v != 0.0));
    let mut b = slt_core::params::write_back_vec(fresh(), &saved_w).unwrap();
    let mut sgd = Sgd::new(config).unwrap();
    sgd.load_velocity(&b, &saved_v).unwrap();
    for _ in 0..2 {
        b = step(b, &mut sgd);
    }
    assert_eq!(flatten_to_vec(&a), flatten_to_vec(&b));
    assert!(sgd.load_velocity(&b, &[0.0; 2]).is_err());
}
