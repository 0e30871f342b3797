//! Models written with burn's own `nn` layers: which of them burn 0.21 can differentiate twice
//! (one test per layer), and that [`AutoHvp`] gives each an accurate Hessian-vector product —
//! exact where it can, central differences in f64 where it cannot — checked against an exact
//! oracle: the same function written with twice-differentiable tensor ops (`matmul`, reshape +
//! `max_dim`/`mean_dim`) at the same parameters, under [`ExactHvp`].
//!
//! f64 (`NdArray<f64>`) throughout; every vector is drawn from a fixed seed.

use burn::module::{AutodiffModule, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use slt_core::params::{num_params, write_back_vec};
use slt_hessian::linalg::gaussian;
use slt_hessian::{relative_error, AutoHvp, EvalSet, ExactHvp, HessianPath, SymmetricOperator};

type F = burn_ndarray::NdArray<f64>;
type Inner = burn_autodiff::Autodiff<F>;
type Outer = burn_autodiff::Autodiff<Inner>;
type Batch<B> = (Tensor<B, 4>, Tensor<B, 2>);

/// Mean cross-entropy of `logits` against one-hot `y`.
fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, y: Tensor<B, 2>) -> Tensor<B, 1> {
    (log_softmax(logits, 1) * y).sum_dim(1).mean().neg()
}

/// 12 images 1×6×6 and one-hot labels of 3 classes, on the outer backend.
fn batch() -> Batch<Outer> {
    let mut rng = slt_core::seed::rng_for(11, &[slt_core::seed::stream::SUBSET]);
    let m = 12;
    let device = Default::default();
    let x = Tensor::from_data(TensorData::new(gaussian(m * 36, &mut rng), [m, 1, 6, 6]), &device);
    let y: Vec<f64> = (0..m * 3).map(|i| if i % 3 == (i / 3) % 3 { 1.0 } else { 0.0 }).collect();
    (x, Tensor::from_data(TensorData::new(y, [m, 3]), &device))
}

/// `model` with its parameters replaced by N(0, 0.5²) values from a fixed seed.
fn seeded<M: Module<Inner>>(model: M) -> M {
    let mut rng = slt_core::seed::rng_for(3, &[slt_core::seed::stream::INIT]);
    let w: Vec<f64> = gaussian(num_params(&model), &mut rng).iter().map(|v| 0.5 * v).collect();
    write_back_vec(model, &w).unwrap()
}

fn probes(d: usize) -> Vec<Vec<f64>> {
    let mut rng = slt_core::seed::rng_for(5, &[slt_core::seed::stream::PROBES]);
    (0..3).map(|_| gaussian(d, &mut rng)).collect()
}

/// Whether one exact product of `model`'s loss panics, and burn's message.
fn exact_product_panics<M>(model: M::InnerModule) -> Option<String>
where
    M: AutodiffModule<Outer> + Forward<Outer>,
    M::InnerModule: AutodiffModule<Inner>,
{
    let d = num_params(&model);
    let h = ExactHvp::<Outer, M, _, _>::new(model, EvalSet::uniform(vec![batch()]).unwrap(), loss::<Outer, M>).unwrap();
    let v = probes(d).remove(0);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.apply(&v))) {
        Ok(product) => {
            product.unwrap();
            None
        }
        Err(payload) => Some(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default(),
        ),
    }
}

trait Forward<B: Backend> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2>;
}

fn loss<B: Backend, M: Forward<B>>(model: &M, (x, y): &Batch<B>) -> Tensor<B, 1> {
    cross_entropy(model.forward(x.clone()), y.clone())
}

/// The same batches on `Autodiff<F>`, for the fallback.
fn inner_eval(eval: &EvalSet<Batch<Outer>>) -> EvalSet<Batch<Inner>> {
    EvalSet::uniform(eval.batches().iter().map(|(x, y)| (x.clone().inner(), y.clone().inner())).collect()).unwrap()
}

/// `AutoHvp` of the cross-entropy of `model` over `eval`.
#[allow(clippy::type_complexity)]
fn auto_hvp<M>(
    model: M::InnerModule,
    eval: EvalSet<Batch<Outer>>,
) -> AutoHvp<
    Outer,
    M,
    Batch<Outer>,
    fn(&M, &Batch<Outer>) -> Tensor<Outer, 1>,
    Batch<Inner>,
    fn(&M::InnerModule, &Batch<Inner>) -> Tensor<Inner, 1>,
>
where
    M: AutodiffModule<Outer> + Forward<Outer>,
    M::InnerModule: AutodiffModule<Inner> + Forward<Inner>,
{
    let inner = inner_eval(&eval);
    AutoHvp::new(model, eval, loss::<Outer, M> as _, inner, loss::<Inner, M::InnerModule> as _).unwrap()
}

/// The largest relative error of `AutoHvp` for `model` against `ExactHvp` for `twin` (the same
/// function in twice-differentiable ops) over three Gaussian directions, and its path.
fn auto_against_twin<M, T>(model: M::InnerModule, twin: T::InnerModule) -> (HessianPath, f64)
where
    M: AutodiffModule<Outer> + Forward<Outer>,
    M::InnerModule: AutodiffModule<Inner> + Forward<Inner>,
    T: AutodiffModule<Outer> + Forward<Outer>,
    T::InnerModule: AutodiffModule<Inner>,
{
    let w = slt_core::params::flatten_to_vec(&model);
    let twin = write_back_vec(twin, &w).expect("the twin has the model's parameter layout");
    let eval = EvalSet::uniform(vec![batch()]).unwrap();
    let auto = auto_hvp::<M>(model, eval.clone());
    let oracle = ExactHvp::<Outer, T, _, _>::new(twin, eval, loss::<Outer, T>).unwrap();
    let worst = probes(auto.dim())
        .iter()
        .map(|v| relative_error(&auto.apply(v).unwrap(), &oracle.apply(v).unwrap()))
        .fold(0.0, f64::max);
    (auto.path().clone(), worst)
}

// ----- nn::Linear -----

#[derive(Module, Debug)]
struct LinearNet<B: Backend> {
    l1: Linear<B>,
    act: Relu,
    l2: Linear<B>,
}

impl<B: Backend> Forward<B> for LinearNet<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = x.flatten::<2>(1, 3);
        self.l2.forward(self.act.forward(self.l1.forward(x)))
    }
}

/// `LinearNet` in matmuls; same parameter order (weight [in, out], then bias).
#[derive(Module, Debug)]
struct LinearTwin<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
}

impl<B: Backend> Forward<B> for LinearTwin<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = x.flatten::<2>(1, 3);
        let h = (x.matmul(self.w1.val()) + self.b1.val().unsqueeze_dim(0)).clamp_min(0.0);
        h.matmul(self.w2.val()) + self.b2.val().unsqueeze_dim(0)
    }
}

fn linear_net() -> LinearNet<Inner> {
    let device = Default::default();
    seeded(LinearNet {
        l1: LinearConfig::new(36, 8).init(&device),
        act: Relu,
        l2: LinearConfig::new(8, 3).init(&device),
    })
}

fn zeros2(r: usize, c: usize) -> Param<Tensor<Inner, 2>> {
    Param::from_tensor(Tensor::zeros([r, c], &Default::default()))
}
fn zeros1(n: usize) -> Param<Tensor<Inner, 1>> {
    Param::from_tensor(Tensor::zeros([n], &Default::default()))
}

#[test]
fn nn_linear_cannot_be_differentiated_twice() {
    let message = exact_product_panics::<LinearNet<Outer>>(linear_net()).expect("burn 0.21 panics for nn::Linear");
    assert!(message.contains("Can't differentiate linear"), "{message}");
}

#[test]
fn nn_linear_falls_back_to_f64_central_differences_within_1e_7() {
    let twin = LinearTwin { w1: zeros2(36, 8), b1: zeros1(8), w2: zeros2(8, 3), b2: zeros1(3) };
    let (path, error) = auto_against_twin::<LinearNet<Outer>, LinearTwin<Outer>>(linear_net(), twin);
    eprintln!("nn::Linear: {path:?}, worst relative error {error:.2e}");
    let HessianPath::FiniteDifference { reason, expected_relative_error } = path else {
        panic!("expected the fallback, got {path:?}")
    };
    assert!(reason.contains("linear"), "{reason}");
    assert!(error < expected_relative_error && error < 1e-7, "relative error {error:e}");
}

// ----- nn::Conv2d with max and average pooling -----

/// conv 3×3 (1 → 2 channels, valid) → ReLU → pool 2×2 stride 2 → flatten(8) · W (8 × 3).
#[derive(Module, Debug)]
struct ConvNet<B: Backend> {
    conv: Conv2d<B>,
    act: Relu,
    max_pool: Option<MaxPool2d>,
    avg_pool: Option<AvgPool2d>,
    head: Param<Tensor<B, 2>>,
}

impl<B: Backend> Forward<B> for ConvNet<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut h = self.act.forward(self.conv.forward(x));
        if let Some(pool) = &self.max_pool {
            h = pool.forward(h);
        }
        if let Some(pool) = &self.avg_pool {
            h = pool.forward(h);
        }
        h.flatten::<2>(1, 3).matmul(self.head.val())
    }
}

/// `ConvNet` with the pooling written as reshape + `max_dim` / `mean_dim`.
#[derive(Module, Debug)]
struct ConvTwin<B: Backend> {
    conv: Conv2d<B>,
    head: Param<Tensor<B, 2>>,
    #[module(skip)]
    max: bool,
}

impl<B: Backend> Forward<B> for ConvTwin<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let h = self.conv.forward(x).clamp_min(0.0); // [m, 2, 4, 4]
        let [m, c, _, _] = h.dims();
        let blocks = h.reshape([m, c, 2, 2, 2, 2]).swap_dims(3, 4).reshape([m, c, 2, 2, 4]);
        let pooled: Tensor<B, 4> = if self.max { blocks.max_dim(4) } else { blocks.mean_dim(4) }.squeeze_dim(4);
        pooled.flatten::<2>(1, 3).matmul(self.head.val())
    }
}

fn conv(device: &burn::tensor::Device<Inner>) -> Conv2d<Inner> {
    Conv2dConfig::new([1, 2], [3, 3]).init(device)
}

fn conv_net(max: bool, avg: bool) -> ConvNet<Inner> {
    let device = Default::default();
    let side = if max || avg { 2 } else { 4 };
    seeded(ConvNet {
        conv: conv(&device),
        act: Relu,
        max_pool: max.then(|| MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()),
        avg_pool: avg.then(|| AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init()),
        head: zeros2(2 * side * side, 3),
    })
}

fn conv_twin(max: bool) -> ConvTwin<Inner> {
    ConvTwin { conv: conv(&Default::default()), head: zeros2(8, 3), max }
}

#[test]
fn nn_conv2d_and_relu_are_differentiated_twice_exactly() {
    assert_eq!(exact_product_panics::<ConvNet<Outer>>(conv_net(false, false)), None);
    // Exact path, checked against central differences in f64 on the same model.
    let model = conv_net(false, false);
    let eval = EvalSet::uniform(vec![batch()]).unwrap();
    let fd = slt_hessian::FiniteDifferenceHvp::<Inner, ConvNet<Inner>, _, _>::new(
        model.clone(),
        inner_eval(&eval),
        loss::<Inner, ConvNet<Inner>>,
    )
    .unwrap();
    let auto = auto_hvp::<ConvNet<Outer>>(model, eval);
    assert_eq!(auto.path(), &HessianPath::Exact);
    for v in probes(auto.dim()) {
        let error = relative_error(&fd.apply(&v).unwrap(), &auto.apply(&v).unwrap());
        assert!(error < 1e-6, "exact vs f64 central differences: {error:e}");
    }
}

#[test]
fn nn_max_pool2d_cannot_be_differentiated_twice_and_falls_back_within_1e_7() {
    let message = exact_product_panics::<ConvNet<Outer>>(conv_net(true, false)).expect("burn 0.21 panics");
    assert!(message.contains("Can't differentiate max pool2d"), "{message}");
    let (path, error) = auto_against_twin::<ConvNet<Outer>, ConvTwin<Outer>>(conv_net(true, false), conv_twin(true));
    eprintln!("nn::MaxPool2d: {path:?}, worst relative error {error:.2e}");
    assert!(matches!(path, HessianPath::FiniteDifference { .. }), "{path:?}");
    assert!(error < 1e-7, "relative error {error:e}");
}

#[test]
fn nn_avg_pool2d_cannot_be_differentiated_twice_and_falls_back_within_1e_7() {
    let message = exact_product_panics::<ConvNet<Outer>>(conv_net(false, true)).expect("burn 0.21 panics");
    assert!(message.contains("Can't differentiate avg pool 2d"), "{message}");
    let (path, error) = auto_against_twin::<ConvNet<Outer>, ConvTwin<Outer>>(conv_net(false, true), conv_twin(false));
    eprintln!("nn::AvgPool2d: {path:?}, worst relative error {error:.2e}");
    assert!(matches!(path, HessianPath::FiniteDifference { .. }), "{path:?}");
    assert!(error < 1e-7, "relative error {error:e}");
}
