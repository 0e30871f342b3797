//! Speed of the exact Hessian-vector product against a gradient, measured in the same run
//! (target: an HVP costs at most 3× a gradient; PyHessian measured 13.3 ms per HVP and 1.75 s
//! for a 100-probe trace on 1,000 examples on a 2-core machine of this kind).
//!
//! MLP 784-256-256-10 (`mlp-2x256`, d = 269,322), 1,000 random examples in one batch, f32 on
//! `burn_flex::Flex`. Prints medians of several repetitions, interleaved so that both sides
//! see the same machine load.
//!
//! `cargo bench --workspace --bench hvp` (env `HVP_REPS` for the repetitions, default 7).

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use slt_core::params::flatten_grads;
use slt_hessian::{
    hutchinson, EvalSet, ExactHvp, HutchinsonOptions, PearlmutterHvp, SoftmaxCrossEntropy, SymmetricOperator,
};
use slt_models::loss::cross_entropy;
use slt_models::{Classifier, ModelSpec};

type F = burn_flex::Flex<f32>;
type Ad = burn_autodiff::Autodiff<F>;
type Ad2 = burn_autodiff::Autodiff<Ad>;
type Batch<B> = (Tensor<B, 2>, Tensor<B, 2>);

const EXAMPLES: usize = 1000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn loss<B: Backend>(m: &Classifier<B>, b: &Batch<B>) -> Tensor<B, 1> {
    cross_entropy(m.forward(b.0.clone()), b.1.clone())
}

fn main() {
    let reps: usize = std::env::var("HVP_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let device = Default::default();
    let spec: ModelSpec = "mlp-2x256".parse().unwrap();
    F::seed(&device, 0);
    let x = Tensor::<F, 2>::random([EXAMPLES, 784], Distribution::Normal(0.0, 1.0), &device).into_data();
    let mut y = vec![0.0f32; EXAMPLES * 10];
    for i in 0..EXAMPLES {
        y[i * 10 + (i * 7) % 10] = 1.0;
    }
    let y = TensorData::new(y, [EXAMPLES, 10]);

    // Gradient: the plain training gradient on Autodiff<Flex>, flattened and copied to the host.
    let model = spec.init::<Ad>(0, &device);
    let batch: Batch<Ad> = (Tensor::from_data(x.clone(), &device), Tensor::from_data(y.clone(), &device));
    let gradient = || {
        let grads = loss(&model, &batch).backward();
        flatten_grads(&model, &grads).into_data().iter::<f64>().collect::<Vec<_>>()
    };

    // Exact HVP on Autodiff<Autodiff<Flex>>.
    let batch2: Batch<Ad2> = (Tensor::from_data(x.clone(), &device), Tensor::from_data(y.clone(), &device));
    // R-operator HVP on plain Flex: the forward and the first backward recorded once.
    let batch_f: Batch<F> = (Tensor::from_data(x, &device), Tensor::from_data(y, &device));
    let model_f = spec.init::<F>(0, &device);
    let eval_f = EvalSet::uniform(vec![batch_f]).unwrap();
    let t = Instant::now();
    let rop = PearlmutterHvp::new(&model_f, &eval_f, SoftmaxCrossEntropy).unwrap();
    let t_record = t.elapsed().as_secs_f64();
    let op = ExactHvp::<Ad2, Classifier<Ad2>, _, _>::new(
        spec.init::<Ad>(0, &device),
        EvalSet::uniform(vec![batch2]).unwrap(),
        loss::<Ad2> as fn(&Classifier<Ad2>, &Batch<Ad2>) -> Tensor<Ad2, 1>,
    )
    .unwrap();
    let d = op.dim();
    let v: Vec<f64> = (0..d).map(|i| if i % 3 == 0 { 1.0 } else { -1.0 }).collect();

    // Warm-up.
    let g0 = gradient();
    let h0 = op.apply(&v).unwrap();
    assert_eq!((g0.len(), h0.len()), (d, d));
    let r0 = rop.apply(&v).unwrap();
    let err = r0.iter().zip(&h0).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt()
        / h0.iter().map(|b| b * b).sum::<f64>().sqrt();

    let (mut tg, mut th, mut tog, mut tr) = (vec![], vec![], vec![], vec![]);
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(gradient());
        tg.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(op.apply(&v).unwrap());
        th.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(op.gradient().unwrap());
        tog.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(rop.apply(&v).unwrap());
        tr.push(t.elapsed().as_secs_f64());
    }
    let (g, h, og, r) = (median(tg), median(th), median(tog), median(tr));
    println!(
        "hvp bench: MLP 784-256-256-10 (d = {d}), {EXAMPLES} examples in one batch, f32, burn-flex, medians of {reps}"
    );
    println!("  gradient (Autodiff<Flex>, to host):          {:8.2} ms", 1e3 * g);
    println!("  gradient via ExactHvp::gradient:            {:8.2} ms", 1e3 * og);
    println!("  exact HVP (Autodiff<Autodiff<Flex>>, host):  {:8.2} ms", 1e3 * h);
    println!("  ratio HVP / gradient:                       {:8.2}   (target ≤ 3)", h / g);
    println!("  R-op HVP (Flex, recorded once in {:.1} ms):   {:8.2} ms  ratio to gradient {:.2}, to double backward {:.2}; relative difference {err:.1e}",
        1e3 * t_record, 1e3 * r, r / g, r / h);

    let probes = 100;
    let t = Instant::now();
    let est = hutchinson(&rop, &HutchinsonOptions { max_probes: probes, min_probes: probes, rel_tol: None, seed: 0 })
        .unwrap();
    let tt = t.elapsed().as_secs_f64();
    println!(
        "  Hutchinson trace, {probes} probes, R-op:         {:8.2} s    (tr(H) = {:.4} ± {:.4}; {:.1} ms per probe)",
        tt,
        est.trace,
        est.std_error,
        1e3 * tt / probes as f64
    );
    let t = Instant::now();
    let est =
        hutchinson(&op, &HutchinsonOptions { max_probes: probes, min_probes: probes, rel_tol: None, seed: 0 }).unwrap();
    let tt = t.elapsed().as_secs_f64();
    println!("  Hutchinson trace, {probes} probes:               {:8.2} s    (tr(H) = {:.4} ± {:.4}; {:.1} ms per probe; PyHessian 1.75 s)",
        tt, est.trace, est.std_error, 1e3 * tt / probes as f64);
}
