//! K-FAC's Kronecker-factored curvature as an operator (`KroneckerFactored`): against the
//! explicit dense matrix built with nalgebra's `kronecker`, through every algorithm of the
//! crate, and, end to end, built from the factors `slt_optimizers::Kfac` keeps: with one
//! example on a one-layer model K-FAC is exact, so the operator must equal the empirical
//! Fisher s sᵀ with s the example's score (f64 throughout).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slt_core::layer_ops::{LayerOps, TappedModel};
use slt_hessian::{
    dense_hessian, eigen, hutchinson, slq_density, CurvatureBlock, DenseSpectrum, HutchinsonOptions, KroneckerFactored,
    LanczosOptions, SlqOptions, SymmetricOperator,
};
use slt_models::layers::Dense;
use slt_optimizers::{FisherKind, Kfac, KfacConfig};

fn spd(n: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = DMatrix::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
    &m * m.transpose() / n as f64
}

fn blocks() -> Vec<CurvatureBlock> {
    vec![
        CurvatureBlock::Kronecker { a: spd(5, 1), g: spd(3, 2) },
        CurvatureBlock::Diagonal(DVector::from_vec(vec![0.5, 2.0, 0.0, 1.5])),
        CurvatureBlock::Kronecker { a: spd(4, 3), g: spd(2, 4) },
    ]
}

/// diag(A₁ ⊗ G₁, D, A₂ ⊗ G₂) written out.
fn dense(blocks: &[CurvatureBlock]) -> DMatrix<f64> {
    let n: usize = blocks
        .iter()
        .map(|b| match b {
            CurvatureBlock::Kronecker { a, g } => a.nrows() * g.nrows(),
            CurvatureBlock::Diagonal(d) => d.len(),
        })
        .sum();
    let mut out = DMatrix::zeros(n, n);
    let mut at = 0;
    for b in blocks {
        let m = match b {
            CurvatureBlock::Kronecker { a, g } => a.kronecker(g),
            CurvatureBlock::Diagonal(d) => DMatrix::from_diagonal(d),
        };
        out.view_mut((at, at), (m.nrows(), m.ncols())).copy_from(&m);
        at += m.nrows();
    }
    out
}

/// Tolerance 1e-12 relative: the products are short sums of f64 terms.
#[test]
fn products_trace_and_spectrum_equal_the_explicit_kronecker_matrix() {
    let op = KroneckerFactored::new(blocks()).unwrap();
    let explicit = dense(&blocks());
    assert_eq!(op.dim(), explicit.nrows());
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..3 {
        let v: Vec<f64> = (0..op.dim()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let want = &explicit * DVector::from_column_slice(&v);
        let got = op.apply(&v).unwrap();
        let err = (DVector::from_vec(got) - &want).norm() / want.norm();
        assert!(err < 1e-12, "relative error {err}");
    }
    // The dense oracle of the crate recovers the matrix; the exact trace is tr A · tr G + Σ D.
    let oracle = dense_hessian(&op).unwrap();
    assert!((oracle.matrix() - &explicit).norm() < 1e-12 * explicit.norm());
    let spectrum = DenseSpectrum::of(&oracle).unwrap();
    assert!((op.trace() - spectrum.trace).abs() < 1e-12 * spectrum.trace, "{} vs {}", op.trace(), spectrum.trace);
    // Every algorithm takes it unchanged: Lanczos's top 3, Hutchinson within 3 SE, SLQ's mass.
    let top = eigen::lanczos(&op, &LanczosOptions { k: 3, seed: 1, ..Default::default() }).unwrap();
    for (got, want) in top.values.iter().zip(spectrum.top(3)) {
        assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
    }
    let t = hutchinson(&op, &HutchinsonOptions { max_probes: 200, min_probes: 200, rel_tol: None, seed: 2 }).unwrap();
    assert!((t.trace - op.trace()).abs() <= 3.0 * t.std_error, "{} ± {} vs {}", t.trace, t.std_error, op.trace());
    let density = slq_density(&op, &SlqOptions { seed: 3, ..Default::default() }).unwrap();
    assert!(density.density.iter().all(|p| p.is_finite() && *p >= 0.0));
    // Bad input is an error, not a panic.
    assert!(op.apply(&[1.0]).is_err());
    assert!(KroneckerFactored::new(vec![]).is_err());
    let not_square = CurvatureBlock::Kronecker { a: DMatrix::zeros(2, 3), g: spd(2, 5) };
    assert!(KroneckerFactored::new(vec![not_square]).is_err());
    let nan = CurvatureBlock::Diagonal(DVector::from_vec(vec![f64::NAN]));
    assert!(KroneckerFactored::new(vec![nan]).is_err());
}

type Ad = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;
const IN: usize = 6;
const OUT: usize = 4;

/// Multinomial logistic regression, logits = x·W + b, d = (6 + 1)·4 = 28.
#[derive(Module, Debug)]
struct Single<B: Backend> {
    layer: Dense<B>,
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Single<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        self.layer.forward_ops(x, ops)
    }
}

/// With one example, K-FAC's A ⊗ G = (āāᵀ) ⊗ (δδᵀ) = s sᵀ, s = ā ⊗ δ the score: the operator
/// built from `Kfac::kronecker_factors` after one step must be the empirical Fisher s sᵀ, with
/// s from autodiff (tolerance 1e-12 relative).
#[test]
fn the_operator_of_kfacs_own_factors_is_the_empirical_fisher_for_one_example() {
    let device = Default::default();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let model = Single::<Ad> { layer: Dense::new(IN, OUT, &mut rng, &device) };
    let x: Vec<f64> = (0..IN).map(|_| rng.random_range(-1.5..1.5)).collect();
    let x = Tensor::<Ad, 2>::from_data(TensorData::new(x, [1, IN]), &device);
    let mut y = vec![0.0; OUT];
    y[2] = 1.0;
    let y = Tensor::<Ad, 2>::from_data(TensorData::new(y, [1, OUT]), &device);

    // The score s = ∇ℓ at the weights before the step, in the parameter layout (W row-major, b).
    let loss = slt_models::loss::cross_entropy(model.layer.forward(x.clone()), y.clone());
    let grads = loss.backward();
    let s: Vec<f64> = slt_core::params::flatten_grads(&model, &grads).into_data().iter::<f64>().collect();

    let mut kfac =
        Kfac::<Ad>::new(KfacConfig { lr: 1e-3, fisher: FisherKind::Empirical, ..KfacConfig::default() }).unwrap();
    kfac.step(model, x, y).unwrap();
    let (a, g) = kfac.kronecker_factors(0).expect("an affine layer");
    let op = KroneckerFactored::new(vec![CurvatureBlock::Kronecker { a: a.clone(), g: g.clone() }]).unwrap();
    assert_eq!(op.dim(), s.len());
    let s = DVector::from_vec(s);
    let fisher = &s * s.transpose();
    let got = dense_hessian(&op).unwrap();
    let err = (got.matrix() - &fisher).norm() / fisher.norm();
    assert!(err < 1e-12, "K-FAC operator vs s sᵀ: relative error {err}");
    // tr(s sᵀ) = ‖s‖², the Fisher's trace as the mean squared score norm.
    assert!((op.trace() - s.norm_squared()).abs() < 1e-12 * s.norm_squared());
}
