//! λ̂ against models whose learning coefficient is known. Every test states its
//! hyperparameters, seed and tolerance; the data are noiseless, so w* is an exact minimum of Lₙ
//! with Lₙ(w*) = 0 and Lₙ = Kₙ (the empirical KL divergence up to the noise constant).

use burn::module::AutodiffModule;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use slt_estimators::{estimate_llc, FnSource, LlcEstimate, Preconditioner, SgldConfig, Temperature};
use slt_models::toy::{
    deep_linear_learning_coefficient, half_squared_error, reduced_rank_learning_coefficient, DeepLinear,
    LinearRegression, MinimallySingular, ReducedRank,
};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;

fn normal_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..rows * cols).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal)).collect()
}

fn to_tensor(values: Vec<f64>, rows: usize, cols: usize) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), &Default::default())
}

/// Minibatches (x[idx], y[idx]) of a regression data set.
#[allow(clippy::type_complexity)]
fn regression_source<'a>(
    x: &'a Tensor<B, 2>,
    y: &'a Tensor<B, 2>,
) -> FnSource<impl Fn(&[usize]) -> (Tensor<B, 2>, Tensor<B, 2>) + Sync + 'a> {
    FnSource::new(x.dims()[0], move |idx: &[usize]| {
        let idx = Tensor::<B, 1, Int>::from_data(
            TensorData::new(idx.iter().map(|&i| i as i64).collect::<Vec<_>>(), [idx.len()]),
            &Default::default(),
        );
        (x.clone().select(0, idx.clone()), y.clone().select(0, idx))
    })
}

/// Runs the estimator for `model` on inputs `x` [n, in] with targets `y` = f(x, w*).
fn estimate<M: AutodiffModule<B>>(
    model: &M,
    forward: impl Fn(&M, Tensor<B, 2>) -> Tensor<B, 2> + Sync,
    x: Tensor<B, 2>,
    config: &SgldConfig,
) -> LlcEstimate {
    let y = forward(model, x.clone()).detach();
    let source = regression_source(&x, &y);
    let loss = |m: &M, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)| half_squared_error(forward(m, x.clone()), y.clone());
    let e = estimate_llc(model, &source, &loss, config, None).unwrap();
    eprintln!(
        "llc {:?} ± {:?} (chains {:?}), r_hat {:?}, ess {:.0}, mala {:?}, warnings: {:?}",
        e.llc_mean,
        e.llc_std,
        e.chains.iter().map(|c| c.llc).collect::<Vec<_>>(),
        e.r_hat,
        e.ess,
        e.mala_acceptance_mean,
        e.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>()
    );
    e
}

fn config(step_size: f64, n_beta: f64, gamma: f64, draws: usize) -> SgldConfig {
    SgldConfig {
        step_size,
        temperature: Temperature::Fixed(n_beta),
        localization: gamma,
        num_chains: 4,
        num_draws: draws,
        num_burnin: draws / 4,
        batch_size: 256,
        seed: 0,
        ..Default::default()
    }
}

fn assert_within(e: &LlcEstimate, truth: f64, tolerance: f64) {
    let llc = e.llc_mean.expect("finite chains");
    assert!(
        ((llc - truth) / truth).abs() <= tolerance,
        "λ̂ = {llc:.4}, true λ = {truth}, relative error {:.3} > {tolerance}",
        (llc - truth) / truth
    );
}

// Hyperparameters: nβ = 1e4 (fixed), γ = 10, batch 256, 4 chains, burn-in = draws/4, seed 0.
// The step size is per model: the regular model and the rank-1 point have curvature
// nβ·h ≈ 1e4–1e5 at w*, so ε must be small (ε·nβ·h/4 is the relative inflation of the sampled
// variance by the Euler discretisation); the singular points are flat at w* and need a larger
// ε to mix. `calibration_finds_a_working_step` shows the calibration routine choosing ε.

#[test]
fn regular_linear_regression_d10() {
    let (n, d) = (4096, 10);
    let x = to_tensor(normal_matrix(n, d, 1), n, d);
    let model = LinearRegression::<B>::new(normal_matrix(d, 1, 2), &Default::default());
    let e = estimate(&model, |m, x| m.forward(x), x, &SgldConfig { mala: true, ..config(5e-6, 1e4, 10.0, 4000) });
    assert_within(&e, LinearRegression::<B>::learning_coefficient(d), 0.10);
    // A well-chosen step: MALA would accept most transitions, chains agree, no warning.
    let acceptance = e.mala_acceptance_mean.unwrap();
    assert!(acceptance > 0.7 && acceptance <= 1.0, "{acceptance}");
    assert!(e.r_hat.unwrap() < 1.05);
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

/// RMSprop-preconditioned SGLD on the regular model: along the chain the mean gradient stays
/// far below δ = 0.1, so G ≈ 1/δ and the chain is plain SGLD at ε/δ; λ̂ must be d/2 within
/// 10 % at ε = δ·5e-6 (the plain test's step), 4 chains × 4000 draws, seed 0.
#[test]
fn rmsprop_sgld_on_the_regular_model() {
    let (n, d) = (4096, 10);
    let x = to_tensor(normal_matrix(n, d, 1), n, d);
    let model = LinearRegression::<B>::new(normal_matrix(d, 1, 2), &Default::default());
    let config = SgldConfig { preconditioner: Preconditioner::rmsprop(), ..config(5e-7, 1e4, 10.0, 4000) };
    let e = estimate(&model, |m, x| m.forward(x), x, &config);
    assert_within(&e, LinearRegression::<B>::learning_coefficient(d), 0.10);
    assert!(e.r_hat.unwrap() < 1.05);
}

#[test]
fn minimally_singular_d6_r3() {
    let n = 4096;
    let x = to_tensor(normal_matrix(n, 1, 3), n, 1);
    let model = MinimallySingular::<B>::new(vec![0.0; 6], 3, &Default::default());
    let e = estimate(&model, |m, x| m.forward(x), x, &config(1e-4, 1e4, 10.0, 4000));
    assert_within(&e, MinimallySingular::<B>::learning_coefficient(3), 0.15);
}

fn reduced_rank(m: usize, h: usize, n_out: usize, r: usize, seed: u64, step: f64, draws: usize) -> LlcEstimate {
    let n = 4096;
    let x = to_tensor(normal_matrix(n, m, seed), n, m);
    // w* = a rank-r factorisation: the first r hidden units random, the others zero.
    let mut a = normal_matrix(m, h, seed + 1);
    let mut b = normal_matrix(h, n_out, seed + 2);
    for i in 0..m {
        for j in r..h {
            a[i * h + j] = 0.0;
        }
    }
    for i in r..h {
        for j in 0..n_out {
            b[i * n_out + j] = 0.0;
        }
    }
    let model = ReducedRank::<B>::new(m, h, n_out, a, b, &Default::default());
    estimate(&model, |m, x| m.forward(x), x, &config(step, 1e4, 10.0, draws))
}

#[test]
fn reduced_rank_5_3_5_rank0() {
    let e = reduced_rank(5, 3, 5, 0, 10, 1e-4, 4000);
    assert_within(&e, reduced_rank_learning_coefficient(5, 3, 5, 0), 0.15);
}

#[test]
fn reduced_rank_4_3_8_rank0() {
    let e = reduced_rank(4, 3, 8, 0, 30, 3e-5, 4000);
    assert_within(&e, reduced_rank_learning_coefficient(4, 3, 8, 0), 0.15);
}

#[test]
fn reduced_rank_5_4_5_rank0() {
    let e = reduced_rank(5, 4, 5, 0, 40, 1e-4, 4000);
    assert_within(&e, reduced_rank_learning_coefficient(5, 4, 5, 0), 0.15);
}

#[test]
fn reduced_rank_4_3_8_rank1() {
    let e = reduced_rank(4, 3, 8, 1, 20, 5e-6, 6000);
    assert_within(&e, reduced_rank_learning_coefficient(4, 3, 8, 1), 0.15);
}

#[test]
fn diverging_step_size_reports_diverged_chains_not_nan() {
    let (n, d) = (1024, 10);
    let x = to_tensor(normal_matrix(n, d, 1), n, d);
    let model = LinearRegression::<B>::new(normal_matrix(d, 1, 2), &Default::default());
    let e = estimate(&model, |m, x| m.forward(x), x, &config(1.0, 1e4, 10.0, 50));
    assert_eq!(e.llc_mean, None);
    assert!(e.chains.iter().all(|c| c.llc.is_none() && c.diverged_at.is_some()));
    assert!(e.warnings.iter().any(|w| w.to_string().contains("4 of 4 chains diverged")), "{:?}", e.warnings);
    let json = serde_json::to_string(&e.llc_mean).unwrap();
    assert_eq!(json, "null");
}

#[test]
fn calibration_finds_a_working_step() {
    let (n, d) = (2048, 10);
    let x = to_tensor(normal_matrix(n, d, 1), n, d);
    let model = LinearRegression::<B>::new(normal_matrix(d, 1, 2), &Default::default());
    let y = model.forward(x.clone()).detach();
    let source = regression_source(&x, &y);
    let loss = |m: &LinearRegression<B>, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)| {
        half_squared_error(m.forward(x.clone()), y.clone())
    };
    let base = SgldConfig { num_chains: 2, ..config(1e-5, 1e4, 10.0, 400) };
    let cal = slt_estimators::calibrate(&model, &source, &loss, &base, &[1e-5, 1e-4, 1e-3, 1e-2], &[10.0]).unwrap();
    for row in &cal.rows {
        eprintln!(
            "ε {:e}: λ̂ {:?}, diverged {}, stable {}, {:?}",
            row.step_size, row.llc_mean, row.diverged_chains, row.stable, row.warnings
        );
    }
    // ε = 1e-2 makes ε·nβ·h ≫ 2: it must diverge. ε = 1e-4 is stable but biased (ε·nβ·h/4 ≈ 0.25
    // inflates the variance by a third), so it disagrees with ε = 1e-5 and 1e-5 is recommended.
    assert!(cal.rows[3].diverged_chains > 0 && !cal.rows[3].stable);
    assert_eq!(cal.rows[1].consistent_with_smaller_step, Some(false));
    let (step, _) = cal.recommended.expect("a stable step");
    assert_eq!(step, 1e-5);
    let chosen = cal.rows.iter().find(|r| r.step_size == step).unwrap().llc_mean.unwrap();
    assert!((chosen - 5.0).abs() / 5.0 < 0.1, "{chosen}");
}

/// A deep linear network's λ̂ with ε chosen by `calibrate` (grid 1e-6 … 1e-4, 2 chains × 400
/// draws), then 4 chains × 2000 draws at the recommended ε; nβ = 1e4, γ = 10, n = 4096 inputs
/// x ~ N(0, I). w* is the origin for r = 0 (the most singular true point, where the local λ is
/// Aoyagi's global one) and Gaussian factors (scale 0.7) for full rank r = min Hᵢ (a smooth point
/// of the true set, ditto).
//
// OPEN PROBLEM, measured (session 9): with `calibrate` choosing ε on 1e-6 … 1e-4 (2 chains ×
// 400 draws, γ = 10), plain SGLD found no stable ε at all for [3, 3, 3, 3] at the origin (the
// chains are still rising after 400 draws: the gradient vanishes at w* = 0, so they leave it
// slowly). With RMSprop (α 0.99, δ 0.1) the calibrated estimates were −25 % ([3, 3, 3, 3], r 0,
// ε 3e-5), −17 % ([4, 2, 4], r 0, ε 3e-6), +7 % ([5, 4, 3, 2], r 0, ε 1e-4), and at full rank
// ([3, 3, 3, 3], r 3, ε 1e-4) 400 draws looked stable but 2000 blew up to λ̂ ≈ 1e7: the
// calibration must also search the number of draws (and γ: two cases sit at the localisation
// scale). These two tests record the target; they are ignored until the procedure meets it.
//
// What a better procedure needs (measured in session 9, plain SGLD, 4 chains, burn-in ¼,
// nβ 1e4, n 4096, same w* and data as below, seed 0): at the origin λ̂ grows with ε and with the
// chain length — [3, 3, 3, 3] r 0 at γ 1 and 2000 draws: 0.47, 1.53, 2.50, 3.90 for ε = 1e-5,
// 3e-5, 1e-4, 3e-4 (γ 10 pins the chains at the localisation scale: 2.0–2.25 at 1e-4–3e-4). At
// γ 1 and 8000 draws every case has an ε within 10 %: [3, 3, 3, 3] r 0 ε 1e-4 3.22 (+7 %,
// still rising; 5e-5: 2.70), [4, 2, 4] r 0 ε 5e-5 3.47 (−0.8 %), [5, 4, 3, 2] r 0 ε 5e-5 3.04
// (+1.3 %, still rising), [3, 3, 3, 3] r 3 ε 1e-6 4.53 (+0.7 %; 1e-5: 11.4, 5e-5 diverges).
// So calibration has to search small γ and lengthen the chains until λ̂ stops rising, and the
// rank-0 and full-rank cases want ε two orders of magnitude apart.
fn deep_linear(widths: &[usize], r: usize, seed: u64, preconditioner: Preconditioner) -> (f64, f64, f64) {
    let n = 4096;
    let x = to_tensor(normal_matrix(n, widths[0], seed), n, widths[0]);
    let weights: Vec<Vec<f64>> = (0..widths.len() - 1)
        .map(|i| {
            let w = normal_matrix(widths[i], widths[i + 1], seed + 1 + i as u64);
            w.iter().map(|v| if r == 0 { 0.0 } else { 0.7 * v }).collect()
        })
        .collect();
    let model = DeepLinear::<B>::new(widths, weights, &Default::default());
    let y = model.forward(x.clone()).detach();
    let source = regression_source(&x, &y);
    let loss =
        |m: &DeepLinear<B>, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)| half_squared_error(m.forward(x.clone()), y.clone());
    let base = SgldConfig { num_chains: 2, preconditioner, ..config(1e-6, 1e4, 10.0, 400) };
    let grid = [1e-6, 3e-6, 1e-5, 3e-5, 1e-4];
    let cal = slt_estimators::calibrate(&model, &source, &loss, &base, &grid, &[10.0]).unwrap();
    let (step, gamma) = cal.recommended.expect("a stable step");
    let e = estimate(
        &model,
        |m, x| m.forward(x),
        x.clone(),
        &SgldConfig { preconditioner, ..config(step, 1e4, gamma, 2000) },
    );
    let truth = deep_linear_learning_coefficient(widths, r).unwrap();
    let llc = e.llc_mean.unwrap();
    eprintln!(
        "DLN {widths:?} r = {r} ({preconditioner:?}): ε {step:e} → λ̂ {llc:.3} vs λ {truth} ({:+.1} %)",
        100.0 * (llc - truth) / truth
    );
    (llc, truth, step)
}

#[test]
#[ignore = "open (#14 item 6): outside 10 %, see the comment above deep_linear; run with --ignored to measure"]
fn deep_linear_networks_with_calibrated_steps() {
    let cases: [(&[usize], usize); 4] = [(&[3, 3, 3, 3], 0), (&[4, 2, 4], 0), (&[5, 4, 3, 2], 0), (&[3, 3, 3, 3], 3)];
    let mut failures = Vec::new();
    for (i, (widths, r)) in cases.into_iter().enumerate() {
        let (llc, truth, step) = deep_linear(widths, r, 100 + 10 * i as u64, Preconditioner::None);
        if ((llc - truth) / truth).abs() > 0.1 {
            failures.push(format!("{widths:?} r = {r}: λ̂ {llc:.3} vs {truth} at ε {step:e}"));
        }
    }
    assert!(failures.is_empty(), "outside 10 %: {failures:?}");
}

#[test]
#[ignore = "open (#14 item 6): outside 10 %, see the comment above deep_linear; run with --ignored to measure"]
fn deep_linear_networks_with_rmsprop_and_calibrated_steps() {
    let cases: [(&[usize], usize); 4] = [(&[3, 3, 3, 3], 0), (&[4, 2, 4], 0), (&[5, 4, 3, 2], 0), (&[3, 3, 3, 3], 3)];
    let mut failures = Vec::new();
    for (i, (widths, r)) in cases.into_iter().enumerate() {
        let (llc, truth, step) = deep_linear(widths, r, 100 + 10 * i as u64, Preconditioner::rmsprop());
        if ((llc - truth) / truth).abs() > 0.1 {
            failures.push(format!("{widths:?} r = {r}: λ̂ {llc:.3} vs {truth} at ε {step:e}"));
        }
    }
    assert!(failures.is_empty(), "outside 10 %: {failures:?}");
}
