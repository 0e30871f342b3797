//! `DatasetSource`: burn's `Dataset` + `Batcher` as a `BatchSource`. Property: the sampler sees
//! exactly the batches a closure over the same tensors would give, so λ̂ is bit-identical from
//! the same seed; and an index outside the dataset is named in the panic.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use slt_estimators::{estimate_llc, BatchSource, DatasetSource, FnSource, SgldConfig, Temperature};
use slt_models::toy::{half_squared_error, LinearRegression};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;

/// One regression example as a user's dataset would hold it.
#[derive(Clone, Debug)]
struct Example {
    x: Vec<f64>,
    y: f64,
}

/// Stacks examples into ([m, d] inputs, [m, 1] targets).
#[derive(Clone)]
struct RegressionBatcher;

impl<Bk: Backend> Batcher<Bk, Example, (Tensor<Bk, 2>, Tensor<Bk, 2>)> for RegressionBatcher {
    fn batch(&self, items: Vec<Example>, device: &Bk::Device) -> (Tensor<Bk, 2>, Tensor<Bk, 2>) {
        let (m, d) = (items.len(), items[0].x.len());
        let x: Vec<f64> = items.iter().flat_map(|e| e.x.iter().copied()).collect();
        let y: Vec<f64> = items.iter().map(|e| e.y).collect();
        (Tensor::from_data(TensorData::new(x, [m, d]), device), Tensor::from_data(TensorData::new(y, [m, 1]), device))
    }
}

fn data(n: usize, d: usize) -> (Vec<f64>, Vec<f64>, LinearRegression<B>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut normal = |k: usize| (0..k).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal)).collect::<Vec<_>>();
    let x = normal(n * d);
    let w = normal(d);
    let y = (0..n).map(|i| (0..d).map(|j| x[i * d + j] * w[j]).sum()).collect();
    (x, y, LinearRegression::new(w, &Default::default()))
}

#[test]
fn dataset_source_gives_the_same_batches_and_the_same_llc_as_a_closure() {
    let (n, d) = (512, 4);
    let (x, y, model) = data(n, d);
    let examples: Vec<Example> = (0..n).map(|i| Example { x: x[i * d..(i + 1) * d].to_vec(), y: y[i] }).collect();
    let dataset = InMemDataset::new(examples);
    let batcher = RegressionBatcher;
    let from_burn = DatasetSource::<B, _, _>::new(&dataset, &batcher, Default::default());

    let device = Default::default();
    let xs = Tensor::<B, 2>::from_data(TensorData::new(x, [n, d]), &device);
    let ys = Tensor::<B, 2>::from_data(TensorData::new(y, [n, 1]), &device);
    let from_closure = FnSource::new(n, |idx: &[usize]| {
        let idx = Tensor::<B, 1, Int>::from_data(
            TensorData::new(idx.iter().map(|&i| i as i64).collect::<Vec<_>>(), [idx.len()]),
            &device,
        );
        (xs.clone().select(0, idx.clone()), ys.clone().select(0, idx))
    });

    assert_eq!(from_burn.num_examples(), dataset.len());
    let indices = [3, 500, 0, 17, 3];
    let (a, b) = (from_burn.batch(&indices), from_closure.batch(&indices));
    assert_eq!(a.0.into_data(), b.0.into_data());
    assert_eq!(a.1.into_data(), b.1.into_data());

    let loss = |m: &LinearRegression<B>, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)| {
        half_squared_error(m.forward(x.clone()), y.clone())
    };
    let config = SgldConfig {
        step_size: 1e-5,
        temperature: Temperature::Fixed(1e3),
        localization: 10.0,
        num_chains: 2,
        num_draws: 100,
        num_burnin: 20,
        batch_size: 64,
        seed: 3,
        ..Default::default()
    };
    let via_burn = estimate_llc(&model, &from_burn, &loss, &config, None).unwrap();
    let via_closure = estimate_llc(&model, &from_closure, &loss, &config, None).unwrap();
    assert_eq!(via_burn.llc_mean, via_closure.llc_mean);
    assert!(via_burn.llc_mean.unwrap().is_finite());
}

#[test]
fn an_index_outside_the_dataset_is_named() {
    let dataset = InMemDataset::new(vec![Example { x: vec![1.0], y: 2.0 }]);
    let batcher = RegressionBatcher;
    let source = DatasetSource::<B, _, _>::new(&dataset, &batcher, Default::default());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.batch(&[0, 5]))).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("index 5") && message.contains("1 items"), "{message}");
}
