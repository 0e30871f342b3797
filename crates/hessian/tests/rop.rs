//! The R-operator product ([`PearlmutterHvp`]) against the double-backward product
//! ([`ExactHvp`]) and the dense Hessian: on a trained ReLU MLP, on LeNet-5, on a tanh MLP, on a
//! small CNN with odd-sized pooling and on a squared-error model, in f64; and in f32 on burn-flex
//! against the f64 reference. Inputs are seeded; tolerances are stated at each assertion. Run
//! with `--nocapture` to see the measured errors.

use burn::module::{AutodiffModule, Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use slt_core::layer_ops::{LayerOps, Plain, TappedModel};
use slt_core::params::{flatten_to_vec, write_back_vec};
use slt_hessian::dense::dense_hessian;
use slt_hessian::linalg::{gaussian, relative_error};
use slt_hessian::{
    hutchinson, EvalSet, ExactHvp, HalfSquaredError, HessianError, HutchinsonOptions, PearlmutterHvp,
    SoftmaxCrossEntropy, SymmetricOperator,
};
use slt_models::loss::cross_entropy;
use slt_models::{Classifier, ModelSpec};

type F64 = burn_ndarray::NdArray<f64>;
type F32 = burn_flex::Flex<f32>;
type Ad<F> = burn_autodiff::Autodiff<F>;
type Ad2<F> = burn_autodiff::Autodiff<Ad<F>>;

fn seeded(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = slt_core::seed::rng_for(seed, &[7]);
    gaussian(n, &mut rng)
}

/// `m` inputs of width `width` and one-hot labels over 10 classes, seeded.
fn data(m: usize, width: usize, seed: u64) -> (TensorData, TensorData) {
    let x = TensorData::new(seeded(m * width, seed), [m, width]);
    let mut y = vec![0.0; m * 10];
    for i in 0..m {
        y[i * 10 + (i * 7 + seed as usize) % 10] = 1.0;
    }
    (x, TensorData::new(y, [m, 10]))
}

fn eval_set<B: Backend>(batches: &[(TensorData, TensorData)]) -> EvalSet<(Tensor<B, 2>, Tensor<B, 2>)> {
    let device = Default::default();
    EvalSet::weighted(
        batches
            .iter()
            .map(|(x, y)| {
                let m = x.shape[0] as f64;
                ((Tensor::from_data(x.clone(), &device), Tensor::from_data(y.clone(), &device)), m)
            })
            .collect(),
    )
    .unwrap()
}

/// The double-backward product on the same model and batches (cross-entropy).
fn exact_products(model: &Classifier<F64>, batches: &[(TensorData, TensorData)], vs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let inner = Classifier::<Ad<F64>>::from_inner(model.clone());
    let loss = |m: &Classifier<Ad2<F64>>, b: &(Tensor<Ad2<F64>, 2>, Tensor<Ad2<F64>, 2>)| {
        cross_entropy(m.forward(b.0.clone()), b.1.clone())
    };
    let h = ExactHvp::<Ad2<F64>, Classifier<Ad2<F64>>, _, _>::new(inner, eval_set(batches), loss).unwrap();
    vs.iter().map(|v| h.apply(v).unwrap()).collect()
}

/// `steps` of gradient descent with the R-operator's own gradient (so the tests see a trained
/// model, away from the initialisation's symmetries).
fn train(mut model: Classifier<F64>, batches: &[(TensorData, TensorData)], steps: usize, lr: f64) -> Classifier<F64> {
    let eval = eval_set::<F64>(batches);
    let first = PearlmutterHvp::new(&model, &eval, SoftmaxCrossEntropy).unwrap().loss();
    let mut last = first;
    for _ in 0..steps {
        let h = PearlmutterHvp::new(&model, &eval, SoftmaxCrossEntropy).unwrap();
        last = h.loss();
        let w: Vec<f64> = flatten_to_vec(&model).iter().zip(h.gradient()).map(|(w, g)| w - lr * g).collect();
        model = write_back_vec(model, &w).unwrap();
    }
    assert!(last < 0.8 * first, "training with the recorded gradient lowered the loss: {first} → {last}");
    model
}

#[test]
fn rop_gradient_and_loss_equal_autodiff() {
    let batches = [data(16, 784, 1), data(9, 784, 2)];
    let model = "mlp-2x16".parse::<ModelSpec>().unwrap().init::<F64>(3, &Default::default());
    let h = PearlmutterHvp::new(&model, &eval_set::<F64>(&batches), SoftmaxCrossEntropy).unwrap();
    let inner = Classifier::<Ad<F64>>::from_inner(model.clone());
    let loss = |m: &Classifier<Ad2<F64>>, b: &(Tensor<Ad2<F64>, 2>, Tensor<Ad2<F64>, 2>)| {
        cross_entropy(m.forward(b.0.clone()), b.1.clone())
    };
    let exact = ExactHvp::<Ad2<F64>, Classifier<Ad2<F64>>, _, _>::new(inner, eval_set(&batches), loss).unwrap();
    let (l, g) = exact.loss_and_gradient().unwrap();
    let (dl, dg) = ((h.loss() - l).abs() / l, relative_error(h.gradient(), &g));
    println!("loss rel. error {dl:.2e}, gradient rel. error {dg:.2e}");
    assert!(dl < 1e-13 && dg < 1e-12, "R-op loss/gradient vs autodiff: {dl:.2e}, {dg:.2e} (tolerance 1e-13/1e-12)");
}

#[test]
fn rop_equals_double_backward_on_a_trained_relu_mlp() {
    let batches = [data(32, 784, 11), data(20, 784, 12)];
    let model = "mlp-2x16".parse::<ModelSpec>().unwrap().init::<F64>(0, &Default::default());
    let model = train(model, &batches, 30, 0.2);
    let h = PearlmutterHvp::new(&model, &eval_set::<F64>(&batches), SoftmaxCrossEntropy).unwrap();
    assert_eq!(h.num_ops(), 5, "affine, relu, affine, relu, affine");
    let vs: Vec<Vec<f64>> = (0..3).map(|s| seeded(h.dim(), 100 + s)).collect();
    let exact = exact_products(&model, &batches, &vs);
    for (v, e) in vs.iter().zip(&exact) {
        let err = relative_error(&h.apply(v).unwrap(), e);
        println!("trained ReLU MLP (d = {}): relative error {err:.2e}", h.dim());
        assert!(err < 1e-10, "R-op vs double backward on a trained ReLU MLP: {err:.2e} (tolerance 1e-10, f64)");
    }
}

#[test]
fn rop_equals_double_backward_on_lenet5_in_f64_and_f32() {
    let batches = [data(6, 784, 21)];
    let model = "lenet5".parse::<ModelSpec>().unwrap().init::<F64>(0, &Default::default());
    let h = PearlmutterHvp::new(&model, &eval_set::<F64>(&batches), SoftmaxCrossEntropy).unwrap();
    assert_eq!(h.num_ops(), 11, "conv relu pool conv relu pool affine relu affine relu affine");
    let vs: Vec<Vec<f64>> = (0..2).map(|s| seeded(h.dim(), 200 + s)).collect();
    let exact = exact_products(&model, &batches, &vs);
    // The production backend: f32 on burn-flex, same weights, same data.
    let model32 = "lenet5".parse::<ModelSpec>().unwrap().init::<F32>(0, &Default::default());
    let h32 = PearlmutterHvp::new(&model32, &eval_set::<F32>(&batches), SoftmaxCrossEntropy).unwrap();
    for (v, e) in vs.iter().zip(&exact) {
        let err = relative_error(&h.apply(v).unwrap(), e);
        let err32 = relative_error(&h32.apply(v).unwrap(), e);
        println!("LeNet-5 (d = {}): relative error {err:.2e} in f64, {err32:.2e} in f32", h.dim());
        assert!(err < 1e-10, "R-op vs double backward on LeNet-5: {err:.2e} (tolerance 1e-10, f64)");
        assert!(err32 < 1e-4, "R-op in f32 on flex vs the f64 product: {err32:.2e} (tolerance 1e-4)");
    }
}

/// 8 → 12 (tanh) → 10, through `ops.tanh`: the smooth case, where the activation's second
/// derivative enters the product.
#[derive(Module, Debug)]
struct TanhMlp<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for TanhMlp<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        let z = ops.affine(x, &self.w1, Some(&self.b1));
        let h = ops.tanh(z);
        ops.affine(h, &self.w2, Some(&self.b2))
    }
}

fn param<B: Backend, const D: usize>(shape: [usize; D], scale: f64, seed: u64) -> Param<Tensor<B, D>> {
    let n = shape.iter().product();
    let v: Vec<f64> = seeded(n, seed).iter().map(|x| x * scale).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), &Default::default()))
}

fn tanh_mlp<B: Backend>() -> TanhMlp<B> {
    TanhMlp {
        w1: param([8, 12], 0.7, 1),
        b1: param([12], 0.3, 2),
        w2: param([12, 10], 0.7, 3),
        b2: param([10], 0.3, 4),
    }
}

#[test]
fn rop_equals_the_dense_hessian_on_a_tanh_mlp_with_either_loss() {
    let batches = [data(10, 8, 31), data(7, 8, 32)];
    let model = tanh_mlp::<F64>();
    let eval = eval_set::<F64>(&batches);
    for squared in [false, true] {
        let rop = if squared {
            dense_hessian(&PearlmutterHvp::new(&model, &eval, HalfSquaredError).unwrap()).unwrap()
        } else {
            dense_hessian(&PearlmutterHvp::new(&model, &eval, SoftmaxCrossEntropy).unwrap()).unwrap()
        };
        let loss = move |m: &TanhMlp<Ad2<F64>>, b: &(Tensor<Ad2<F64>, 2>, Tensor<Ad2<F64>, 2>)| {
            let z = m.forward_ops(b.0.clone(), &mut Plain);
            if squared {
                slt_models::toy::half_squared_error(z, b.1.clone())
            } else {
                cross_entropy(z, b.1.clone())
            }
        };
        let exact = ExactHvp::<Ad2<F64>, TanhMlp<Ad2<F64>>, _, _>::new(tanh_mlp(), eval_set(&batches), loss).unwrap();
        let dense = dense_hessian(&exact).unwrap();
        let err = relative_error(rop.matrix().as_slice(), dense.matrix().as_slice());
        println!("tanh MLP (d = 238), {} loss: dense relative error {err:.2e}", if squared { "squared" } else { "CE" });
        assert!(err < 1e-10, "R-op vs dense double-backward Hessian on a tanh MLP: {err:.2e} (tolerance 1e-10)");
    }
}

/// conv 1 → 2 (3×3) on 7×7 inputs → 5×5, ReLU, 2×2 max-pool (odd edge dropped) → 2×2,
/// dense 8 → 10: pooling windows and the odd edge under the R-operator.
#[derive(Module, Debug)]
struct OddCnn<B: Backend> {
    k: Param<Tensor<B, 4>>,
    kb: Param<Tensor<B, 1>>,
    w: Param<Tensor<B, 2>>,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for OddCnn<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        let m = x.dims()[0];
        let z =
            ops.conv2d(x.reshape([m, 1, 7, 7]), &self.k, Some(&self.kb), ConvOptions::new([1, 1], [0, 0], [1, 1], 1));
        let h = ops.relu(z);
        let p = ops.max_pool_2x2(h).reshape([m, 8]);
        ops.affine(p, &self.w, None)
    }
}

fn odd_cnn<B: Backend>() -> OddCnn<B> {
    OddCnn { k: param([2, 1, 3, 3], 0.5, 5), kb: param([2], 0.2, 6), w: param([8, 10], 0.6, 7) }
}

#[test]
fn rop_equals_the_dense_hessian_on_a_cnn_with_odd_pooling() {
    let batches = [data(9, 49, 41)];
    let h = PearlmutterHvp::new(&odd_cnn::<F64>(), &eval_set::<F64>(&batches), SoftmaxCrossEntropy).unwrap();
    let loss = |m: &OddCnn<Ad2<F64>>, b: &(Tensor<Ad2<F64>, 2>, Tensor<Ad2<F64>, 2>)| {
        cross_entropy(m.forward_ops(b.0.clone(), &mut Plain), b.1.clone())
    };
    let exact = ExactHvp::<Ad2<F64>, OddCnn<Ad2<F64>>, _, _>::new(odd_cnn(), eval_set(&batches), loss).unwrap();
    let dense = dense_hessian(&exact).unwrap();
    let err = relative_error(dense_hessian(&h).unwrap().matrix().as_slice(), dense.matrix().as_slice());
    println!("CNN with odd pooling (d = {}): dense relative error {err:.2e}", h.dim());
    assert!(err < 1e-10, "R-op vs dense Hessian on a CNN with odd pooling: {err:.2e} (tolerance 1e-10)");
    // Every algorithm takes it: Hutchinson's exact trace on 1,000 probes within 3 SE.
    let exact_trace = dense.trace();
    let h = &h;
    let t = hutchinson(&h, &HutchinsonOptions { max_probes: 1000, min_probes: 1000, rel_tol: None, seed: 3 }).unwrap();
    assert!(
        (t.trace - exact_trace).abs() < 3.0 * t.std_error,
        "Hutchinson {} ± {} vs {exact_trace}",
        t.trace,
        t.std_error
    );
}

/// An activation called outside `ops` (or a skip connection) is refused, not silently wrong.
#[derive(Module, Debug)]
struct Unrecorded<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    w2: Param<Tensor<B, 2>>,
    residual: bool,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Unrecorded<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        let z = ops.affine(x, &self.w1, None);
        let h = if self.residual { ops.relu(z.clone()) + z } else { z.tanh() };
        ops.affine(h, &self.w2, None)
    }
}

#[test]
fn a_model_that_is_not_a_chain_through_ops_is_refused() {
    let batches = [data(5, 10, 51)];
    for residual in [false, true] {
        let model = Unrecorded::<F64> { w1: param([10, 10], 0.5, 8), w2: param([10, 10], 0.5, 9), residual };
        match PearlmutterHvp::new(&model, &eval_set::<F64>(&batches), SoftmaxCrossEntropy) {
            Err(HessianError::NotAChain(why)) => {
                println!("refused: {why}");
                assert!(why.contains("not the output of op"), "{why}");
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("a model with an unrecorded op was accepted (residual {residual})"),
        }
    }
}
