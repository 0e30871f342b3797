//! Online NGD against SGD on the MLP 784-256-256-10 at batch 128 (random inputs): time per
//! training step (forward, backward, optimiser step) on burn-ndarray and burn-flex, f32.
//!
//! `cargo build --release --workspace --examples`, then run `$CARGO_TARGET_DIR/release/examples/online_ngd`.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use slt_models::{loss::cross_entropy, ModelSpec};
use slt_optimizers::{OnlineNgd, OnlineNgdConfig, Sgd, SgdConfig};

const BATCH: usize = 128;
const WARMUP: usize = 12;
const STEPS: usize = 40;

fn data<B: AutodiffBackend>(device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let x: Vec<f32> = (0..BATCH * 784)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let mut y = vec![0.0f32; BATCH * 10];
    for i in 0..BATCH {
        y[i * 10 + (i * 7) % 10] = 1.0;
    }
    (
        Tensor::from_data(TensorData::new(x, [BATCH, 784]), device),
        Tensor::from_data(TensorData::new(y, [BATCH, 10]), device),
    )
}

/// Seconds per step: (SGD, online NGD, online NGD with re-orthonormalisation).
fn bench<B: AutodiffBackend>() -> (f64, f64, f64) {
    let device = Default::default();
    let spec: ModelSpec = "mlp-2x256".parse().unwrap();
    let (x, y) = data::<B>(&device);
    let sgd_cfg = SgdConfig { lr: 0.01, momentum: 0.9, nesterov: true, weight_decay: 0.0 };
    let mut sgd = Sgd::<B>::new(sgd_cfg).unwrap();
    let mut model = spec.init::<B>(0, &device);
    let mut run_sgd = |n: usize| {
        let t = Instant::now();
        for _ in 0..n {
            let grads = cross_entropy(model.forward(x.clone()), y.clone()).backward();
            model = sgd.step(model.clone(), &grads).unwrap().0;
        }
        t.elapsed().as_secs_f64() / n as f64
    };
    run_sgd(WARMUP);
    let t_sgd = run_sgd(STEPS);
    let ngd_time = |config: OnlineNgdConfig| {
        let mut ngd = OnlineNgd::<B>::new(config).unwrap();
        let mut model = spec.init::<B>(0, &device);
        let mut run = |n: usize| {
            let t = Instant::now();
            for _ in 0..n {
                let grads = cross_entropy(model.forward(x.clone()), y.clone()).backward();
                model = ngd.step(model.clone(), &grads).unwrap().0;
            }
            t.elapsed().as_secs_f64() / n as f64
        };
        run(WARMUP);
        run(STEPS)
    };
    let t_ngd = ngd_time(OnlineNgdConfig::paper());
    let t_reorth = ngd_time(OnlineNgdConfig { reorthogonalize: true, ..OnlineNgdConfig::paper() });
    (t_sgd, t_ngd, t_reorth)
}

fn main() {
    for (name, (s, n, r)) in [
        ("ndarray", bench::<burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>>()),
        ("flex", bench::<burn_autodiff::Autodiff<burn_flex::Flex<f32>>>()),
    ] {
        println!(
            "{name:8} MLP 784-256-256-10, batch {BATCH}: SGD {:.2} ms/step, online NGD {:.2} ms/step ({:.2}×), \
             with re-orthonormalisation {:.2} ms ({:.2}×)",
            s * 1e3,
            n * 1e3,
            n / s,
            r * 1e3,
            r / s
        );
    }
}
