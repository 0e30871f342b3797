//! The fixture the estimator tests share: a linear regression at its exact minimum.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use slt_estimators::{estimate_llc, ChainObserver, FnSource, LlcEstimate, SgldConfig};
use slt_models::toy::{half_squared_error, LinearRegression};

/// `len` standard normal values from `seed`.
pub fn normal(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal)).collect()
}

/// Linear regression with d weights at its exact minimum (λ = d/2): n noiseless examples
/// x ~ N(0, I), weights N(0, 1) (seeds 1 and 2), estimated with `config` and `observer`.
pub fn linear_regression<B: AutodiffBackend>(
    n: usize,
    d: usize,
    config: &SgldConfig,
    observer: Option<&dyn ChainObserver<B::InnerBackend>>,
) -> LlcEstimate {
    let device = Default::default();
    let x = Tensor::<B, 2>::from_data(TensorData::new(normal(n * d, 1), [n, d]), &device);
    let model = LinearRegression::<B>::new(normal(d, 2), &device);
    let y = model.forward(x.clone()).detach();
    let source = FnSource::new(n, |idx: &[usize]| {
        let idx = Tensor::<B, 1, Int>::from_data(
            TensorData::new(idx.iter().map(|&i| i as i64).collect::<Vec<_>>(), [idx.len()]),
            &device,
        );
        (x.clone().select(0, idx.clone()), y.clone().select(0, idx))
    });
    let loss = |m: &LinearRegression<B>, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)| {
        half_squared_error(m.forward(x.clone()), y.clone())
    };
    estimate_llc(&model, &source, &loss, config, observer).unwrap()
}
