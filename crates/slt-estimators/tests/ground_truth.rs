//! λ̂ against models whose learning coefficient is known. Every test states its
//! hyperparameters, seed and tolerance; the data are noiseless, so w* is an exact minimum of Lₙ
//! with Lₙ(w*) = 0 and Lₙ = Kₙ (the empirical KL divergence up to the noise constant).

use burn::module::AutodiffModule;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use slt_estimators::{estimate_llc, CalibrationSearch, FnSource, LlcEstimate, Preconditioner, SgldConfig, Temperature};
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

/// Metropolis-adjusted Langevin removes the Euler bias: on the regular model (d = 10, λ = 5;
/// n 2048 full batch, nβ 1e4, γ 10, 4 chains × 4000 draws after 1000 burn-in, seed 0) at
/// ε = 1e-4, where plain SGLD samples a variance inflated by about ε·nβ·h/4 ≈ 25 % (measured
/// here in the same run), MALA must be within 5 % of 5, accept between 30 % and 99 % of the
/// proposals (a real test of the accept/reject step, not of a step so small that all pass),
/// and the plain chain must be off by more than 10 %.
#[test]
fn metropolis_adjustment_removes_the_step_size_bias() {
    let (x, _, model) = calibration_problem();
    let n = x.dims()[0];
    let base = SgldConfig { batch_size: n, ..config(1e-4, 1e4, 10.0, 4000) };
    let plain = estimate(&model, |m, x| m.forward(x), x.clone(), &base);
    let adjusted = estimate(&model, |m, x| m.forward(x), x, &SgldConfig { metropolis: true, ..base });
    let truth = LinearRegression::<B>::learning_coefficient(10);
    assert_within(&adjusted, truth, 0.05);
    let acceptance = adjusted.mala_acceptance_mean.unwrap();
    assert!((0.3..0.99).contains(&acceptance), "acceptance {acceptance}");
    let biased = plain.llc_mean.unwrap();
    assert!((biased - truth) / truth > 0.1, "plain SGLD at ε 1e-4: λ̂ {biased}");
}

/// The Metropolis adjustment is exact only with the full-batch loss and plain proposals: the
/// other settings are errors naming the field.
#[test]
fn metropolis_adjustment_rejects_minibatches_and_preconditioners() {
    let (x, y, model) = calibration_problem();
    let source = regression_source(&x, &y);
    let n = x.dims()[0];
    let full = SgldConfig { metropolis: true, batch_size: n, ..config(1e-4, 1e4, 10.0, 10) };
    for bad in [
        SgldConfig { batch_size: n / 2, ..full.clone() },
        SgldConfig { preconditioner: Preconditioner::rmsprop(), ..full.clone() },
        SgldConfig { bounding_box: Some(1.0), ..full.clone() },
    ] {
        let err = estimate_llc(&model, &source, &linear_regression_loss, &bad, None).unwrap_err();
        assert!(err.to_string().contains("metropolis"), "{err}");
    }
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

/// The regular model the calibration tests use: d = 10 (λ = 5), n = 2048, inputs and w* seeded.
fn calibration_problem() -> (Tensor<B, 2>, Tensor<B, 2>, LinearRegression<B>) {
    let (n, d) = (2048, 10);
    let x = to_tensor(normal_matrix(n, d, 1), n, d);
    let model = LinearRegression::<B>::new(normal_matrix(d, 1, 2), &Default::default());
    let y = model.forward(x.clone()).detach();
    (x, y, model)
}

/// Half the squared error of the linear regression on a batch (x, y).
fn linear_regression_loss(m: &LinearRegression<B>, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)) -> Tensor<B, 1> {
    half_squared_error(m.forward(x.clone()), y.clone())
}

#[test]
fn calibration_finds_a_working_step() {
    let (x, y, model) = calibration_problem();
    let source = regression_source(&x, &y);
    let loss = linear_regression_loss;
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

/// `calibrate_adaptive` on the regular model (d = 10, λ = 5; n 2048, nβ 1e4, 2 calibration
/// chains, seed 0, the default search: γ 100 → 1, ε 1e-6 → 1e-3, ≤ 40 000 steps per chain):
/// at a regular point λ̂ does not depend on γ while γ ≪ nβ·h, so the search must stop as soon
/// as the plateau rule allows (after 1 + `plateau` localisations), with chains at least one relaxation time 2/(εγ) long, and the estimate at the
/// recommended settings (4 chains) must be within 10 % of 5.
#[test]
fn adaptive_calibration_on_the_regular_model() {
    let (x, y, model) = calibration_problem();
    let source = regression_source(&x, &y);
    let loss = linear_regression_loss;
    let base = SgldConfig { num_chains: 2, ..config(1e-6, 1e4, 10.0, 400) };
    let cal = slt_estimators::calibrate_adaptive(&model, &source, &loss, &base, &CalibrationSearch::default()).unwrap();
    for row in &cal.rows {
        eprintln!(
            "γ {} ε {:e}: {:?} burn-in {} draws {} λ̂ {:?}",
            row.localization, row.step_size, row.outcome, row.num_burnin, row.num_draws, row.llc_mean
        );
    }
    assert!(cal.localization_converged, "{:?}", cal.per_localization);
    assert_eq!(cal.per_localization.len(), 1 + CalibrationSearch::default().plateau, "{:?}", cal.per_localization);
    let chosen = cal.recommended.unwrap();
    let tau = 2.0 / (chosen.step_size * chosen.localization);
    assert!(chosen.num_burnin as f64 >= tau && chosen.num_draws as f64 >= tau, "{chosen:?}");
    let e = estimate(&model, |m, x| m.forward(x), x.clone(), &chosen.apply(&config(1e-6, 1e4, 10.0, 400)));
    assert_within(&e, LinearRegression::<B>::learning_coefficient(10), 0.10);
}

/// True factors W₁ … W_N (Wᵢ is Hᵢ₋₁ × Hᵢ, row-major) whose product has rank r, on the most
/// singular stratum of the true set: r = 0 is the origin; r = min Hᵢ is Gaussian factors (scale
/// 0.7, a smooth point); in between, Wᵢ = Uᵢ₋₁·Mᵢ·Uᵢᵀ with Uᵢ (Hᵢ × r) and Mᵢ (r × r) Gaussian, so
/// that every factor has rank exactly r. Aoyagi's λ is the minimum of the local coefficients over
/// the true set, and points where every factor has the least rank lie in the closure of all the
/// others, so this is where the local λ is the global one.
fn true_factors(widths: &[usize], r: usize, seed: u64) -> Vec<Vec<f64>> {
    let layers = widths.len() - 1;
    let min_width = widths.iter().copied().min().unwrap_or(0);
    if r == 0 || r >= min_width {
        return (0..layers)
            .map(|i| {
                let w = normal_matrix(widths[i], widths[i + 1], seed + 1 + i as u64);
                w.iter().map(|v| if r == 0 { 0.0 } else { 0.7 * v }).collect()
            })
            .collect();
    }
    let scale = 1.0 / (r as f64).sqrt();
    let u: Vec<Vec<f64>> =
        widths.iter().enumerate().map(|(i, &h)| normal_matrix(h, r, seed + 100 + i as u64)).collect();
    (0..layers)
        .map(|i| {
            let m = normal_matrix(r, r, seed + 1 + i as u64);
            let (rows, cols) = (widths[i], widths[i + 1]);
            let mut w = vec![0.0; rows * cols];
            for a in 0..rows {
                for b in 0..cols {
                    let mut acc = 0.0;
                    for p in 0..r {
                        for q in 0..r {
                            acc += u[i][a * r + p] * m[p * r + q] * u[i + 1][b * r + q];
                        }
                    }
                    w[a * cols + b] = 0.7 * scale * scale * acc;
                }
            }
            w
        })
        .collect()
}

/// Searches that cannot work are errors before any chain runs.
#[test]
fn adaptive_calibration_rejects_bad_searches() {
    let (x, y, model) = calibration_problem();
    let source = regression_source(&x, &y);
    let loss = linear_regression_loss;
    let base = config(1e-6, 1e4, 10.0, 400);
    let good = CalibrationSearch::default();
    let bad = [
        CalibrationSearch { step_sizes: vec![], ..good.clone() },
        CalibrationSearch { localizations: vec![10.0, f64::NAN], ..good.clone() },
        CalibrationSearch { step_sizes: vec![-1e-5], ..good.clone() },
        CalibrationSearch { min_draws: 4, ..good.clone() },
        CalibrationSearch { max_steps: 100, ..good.clone() },
        CalibrationSearch { tolerance: 0.0, ..good.clone() },
        CalibrationSearch { plateau: 0, ..good.clone() },
    ];
    for search in bad {
        let err = slt_estimators::calibrate_adaptive(&model, &source, &loss, &base, &search).unwrap_err();
        assert!(err.to_string().contains("adaptive calibration needs"), "{search:?}: {err}");
    }
}

/// Which chain `deep_linear` runs: plain SGLD on minibatches of 256 of the n = 4096 inputs, or
/// Metropolis-adjusted Langevin on the full-batch loss through [`sufficient_inputs`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sampler {
    Sgld,
    Mala,
}

/// k pseudo-inputs with the same full-batch squared loss as the n inputs `raw` ([n, k],
/// row-major) for every linear map P: Lₙ = ½·tr((P − P*)Σ(P − P*)ᵀ) depends on the inputs only
/// through Σ = XᵀX/n, and the rows √k·cᵢ, cᵢ the columns of the Cholesky factor Σ = CCᵀ, have
/// (1/k)·Σᵢ kcᵢcᵢᵀ = Σ. A full-batch step then costs k rows instead of n.
fn sufficient_inputs(raw: &[f64], k: usize) -> Vec<f64> {
    let n = raw.len() / k;
    let mut sigma = vec![0.0; k * k];
    for row in raw.chunks(k) {
        for a in 0..k {
            for b in 0..k {
                sigma[a * k + b] += row[a] * row[b] / n as f64;
            }
        }
    }
    let mut c = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let s = sigma[i * k + j] - (0..j).map(|p| c[i * k + p] * c[j * k + p]).sum::<f64>();
            c[i * k + j] = if i == j { s.sqrt() } else { s / c[j * k + j] };
        }
    }
    (0..k).flat_map(|i| (0..k).map(|a| (k as f64).sqrt() * c[a * k + i]).collect::<Vec<_>>()).collect()
}

/// A deep linear network's λ̂ with ε, γ, burn-in and draws all chosen by `calibrate_adaptive`
/// (the default search, γ 100 → 1 and ε 1e-6 → 1e-3, 2 calibration chains, at most `max_steps`
/// per chain), then 4 chains at the recommended settings; nβ = 1e4, batch 256, n = 4096 inputs
/// x ~ N(0, I), seed as given. w* is the origin for r = 0 (the most singular true point, where
/// the local λ is Aoyagi's global one) and Gaussian factors (scale 0.7) for full rank
/// r = min Hᵢ (a smooth point of the true set, ditto). Returns (λ̂, λ, ε).
//
// Session 9, the fixed-grid `calibrate` (ε 1e-6 … 1e-4, γ 10, 2 chains × 400 draws, then 4 ×
// 2000): plain SGLD found no stable ε for [3, 3, 3, 3] r 0; RMSprop SGLD gave −25 %, −17 % and
// +7 % on three rank-0 networks and blew up at 2000 draws on the full-rank one.
// Measured (session 10, this helper with `calibrate_adaptive`; 2 cores):
//   budget 40 000 steps per chain (the default): [3, 3, 3, 3] r 3: +18.5 % (γ 10, ε 1e-5: the
//   small ε that full rank needs are "too slow" below γ 100, so the descent in γ forced a
//   larger, biased ε); [4, 2, 4] r 0: +10.9 %; [5, 4, 3, 2] r 0: +71.7 % and [3, 3, 3, 3] r 0:
//   +41.0 %, both flagged `localization_converged = false`.
//   budget 400 000: [3, 3, 3, 3] r 3: 4.674 vs 4.5 (+3.9 %, γ 30, ε 1e-6, 217 s);
//   [4, 2, 4] r 0: 3.448 vs 3.5 (−1.5 %, γ 3, ε 1e-5, 389 s); [5, 4, 3, 2] r 0: 4.067 vs 3
//   (+35.6 %, 709 s, `localization_converged = false`: λ̂ 0.31, 1.24, 2.21, 2.76, 3.77 at γ 100,
//   30, 10, 3, 1, the last at ε 3e-5 whose neighbour disagreed); [3, 3, 3, 3] r 0 was stopped
//   unfinished (time).
// Measured (session 11, `plateau` = 2, i.e. λ̂ within 10 % over two successive steps in γ, the
// default since; budget 400 000):
//   [3, 3, 3, 3] r 3: 4.761 vs 4.5 (+5.8 %, γ 10, ε 3e-6; 226 s with the other CI tests here);
//   [4, 3, 3, 4] r 1: 5.318 vs 5.5 (−3.3 %, γ 3, ε 1e-5); [3, 4, 4, 3] r 2: 7.354 vs 4.5
//   (+63.4 %) and [5, 4, 3, 2] r 1: 6.758 vs 4 (+68.9 %), both `localization_converged =
//   false`: chosen λ̂ 3.57, 3.80, 4.37, 5.52, 7.94 and 3.13, 3.60, 4.39, 6.70, 7.49 at γ 100, 30,
//   10, 3, 1; below γ 10 only ε ≥ 1e-5 fits the budget and its Euler bias dominates (at γ 10,
//   ε 1e-5 gave 4.92 and 7.05 against 4.37 and 4.39 at 3e-6). With `plateau` = 1 (session 10's
//   rule) the first two intermediate-rank networks stopped early and were declared converged at
//   −11.5 % (γ 10) and −11.6 % (γ 30) while λ̂ was still rising (3.60, 4.44, 4.83 for λ 5.5).
//   Rank 0 (1373 s for the three): [4, 2, 4]: 3.602 vs 3.5 (+2.9 %, γ 1, ε 1e-5, converged:
//   3.25, 3.40, 3.57 at γ 10, 3, 1); [5, 4, 3, 2]: 4.067 vs 3 (+35.6 %, not converged, as in
//   session 10: at γ 1 ε 1e-5 was still rising at the budget, so ε 3e-5 was chosen);
//   [3, 3, 3, 3] (first run to the end): 3.073 vs 3 (+2.4 %, γ 1, ε 1e-5) but not converged
//   (2.11, 2.75, 2.94 at γ 10, 3, 1: one agreement, plateau 2 asks for two).
//   The 400 000 budget is what `deep_linear_full_rank_with_adaptive_calibration` runs in CI;
//   the rank-0 and intermediate-rank cases are `--ignored`.
// Measured (session 12, `Sampler::Mala`: Metropolis-adjusted Langevin on the full-batch loss,
// exact at every ε, so the search takes the largest ε with acceptance ≥ 0.5; same seeds, nβ,
// budget): the overshoot of plain SGLD at small γ was its Euler bias, not the posterior. MALA's
// λ̂ approaches λ from below as γ falls: [5, 4, 3, 2] r 1 (λ 4) 2.88, 3.24, 3.68, 3.91 at
// γ 100, 30, 10, 3 → 3.925 (−1.9 %, γ 3, ε 4e-6); [3, 4, 4, 3] r 2 (λ 4.5) → 4.286 (−4.8 %,
// γ 3, ε 1.6e-5); [4, 3, 3, 4] r 1 (λ 5.5) → 5.253 (−4.5 %, γ 1, ε 3.2e-5); 929 s for the
// three on 2 cores. A direct check without the search, [5, 4, 3, 2] r 1, 4 chains of 4·2/(εγ)
// steps: 3.68 and 3.83 at γ 10 (ε 3e-6 and 6e-6, acceptance 0.79 and 0.58), 3.86 and 3.90 at
// γ 3. All three are reported `localization_converged = false`: at the largest accepted ε
// the chains are only 2·2/(εγ) long, and their noise (±5 %) breaks the plateau rule's 10 %
// agreement as often as not (e.g. 4.64, 5.12, 5.23 at γ 10, 3, 1 for [4, 3, 3, 4]).
//   Full rank and the origin with MALA (742 s for the three): [3, 3, 3, 3] r 3 → 4.601 vs 4.5
//   (+2.3 %, γ 10, ε 1.6e-5, converged); [4, 2, 4] r 0 → 3.450 vs 3.5 (−1.4 %, γ 1, ε 1.28e-4,
//   converged); [5, 4, 3, 2] r 0 → 2.842 vs 3 (−5.3 %, γ 1, ε 6.4e-5; λ̂ 0.29, 1.69, 2.52,
//   2.93, 2.86 at γ 100 … 1, not converged: one agreement). Plain SGLD had +35.6 % there. At
//   γ 1 the origin's t = nβ/γᴺ (below) is 1e4, and an exact sampler can afford that γ.
//
// Why the origin of a network with N ≥ 3 layers is hard (the open part of #14 item 6): there the
// population loss is homogeneous of degree 2N in w, so w = u/√γ maps the localised tempered
// posterior at (nβ, γ) onto the one at (nβ/γᴺ, 1): λ̂ = f(nβ/γᴺ) exactly, and f reaches Aoyagi's
// λ only as t = nβ/γᴺ → ∞. No γ is "weak enough" at fixed nβ; smaller γ is larger t. Measured
// for [3, 3, 3, 3] (λ = 3, `dln_direct`, 4 chains, seed 100): t = 1000 (nβ 1e4, γ 2.154):
// 2.92 ± 0.08 at ε 1.4e-5 (140 000 + 140 000 steps) and 2.86 ± 0.17 at ε 4.6e-6 (400 000 +
// 400 000); t = 10 (γ 10): 2.2–2.5 (the rows of the adaptive runs). In the same units the Euler
// bias grows like b = ε·nβ/γ² and the slow directions relax in 2/(εγ) steps, so resolving t at
// bias b costs about 2t/b steps per chain: 67 000 for t = 1000, b = 0.03, and 30 times that for
// the next γ down, which the search in γ has to run to see that λ̂ stopped changing.
fn deep_linear(widths: &[usize], r: usize, seed: u64, max_steps: usize, sampler: Sampler) -> (f64, f64, f64) {
    let n = 4096;
    let raw = normal_matrix(n, widths[0], seed);
    let (x, batch_size) = match sampler {
        Sampler::Sgld => (to_tensor(raw, n, widths[0]), 256),
        Sampler::Mala => (to_tensor(sufficient_inputs(&raw, widths[0]), widths[0], widths[0]), widths[0]),
    };
    let weights = true_factors(widths, r, seed);
    let model = DeepLinear::<B>::new(widths, weights, &Default::default());
    let y = model.forward(x.clone()).detach();
    let source = regression_source(&x, &y);
    let loss =
        |m: &DeepLinear<B>, (x, y): &(Tensor<B, 2>, Tensor<B, 2>)| half_squared_error(m.forward(x.clone()), y.clone());
    let metropolis = sampler == Sampler::Mala;
    let base = SgldConfig { num_chains: 2, batch_size, metropolis, ..config(1e-6, 1e4, 10.0, 400) };
    let step_sizes = match sampler {
        Sampler::Sgld => CalibrationSearch::default().step_sizes,
        // MALA's acceptance falls from ~0.8 to ~0.2 within a factor 3 of ε here: a grid in
        // factors of 2 lets the search land near the efficient ~0.6.
        Sampler::Mala => (0..8).map(|i| 1e-6 * 2f64.powi(i)).collect(),
    };
    let search = CalibrationSearch { max_steps, step_sizes, ..CalibrationSearch::default() };
    let cal = slt_estimators::calibrate_adaptive(&model, &source, &loss, &base, &search).unwrap();
    for row in &cal.rows {
        eprintln!(
            "  γ {:<5} ε {:e}: {:?}, burn-in {}, draws {}, λ̂ {:?}",
            row.localization, row.step_size, row.outcome, row.num_burnin, row.num_draws, row.llc_mean
        );
    }
    let chosen = cal.recommended.expect("a stable step");
    let e = estimate(&model, |m, x| m.forward(x), x.clone(), &chosen.apply(&SgldConfig { num_chains: 4, ..base }));
    let truth = deep_linear_learning_coefficient(widths, r).unwrap();
    let llc = e.llc_mean.unwrap();
    eprintln!(
        "DLN {widths:?} r = {r} ({sampler:?}): γ {} ε {:e} burn-in {} draws {} (converged in γ: {}) → λ̂ {llc:.3} vs λ {truth} ({:+.1} %)",
        chosen.localization,
        chosen.step_size,
        chosen.num_burnin,
        chosen.num_draws,
        cal.localization_converged,
        100.0 * (llc - truth) / truth
    );
    (llc, truth, chosen.step_size)
}

/// Full rank: within 10 % with every setting chosen by `calibrate_adaptive` (budget 400 000
/// steps per chain; about 3–4 min on 2 cores).
#[test]
fn deep_linear_full_rank_with_adaptive_calibration() {
    let (llc, truth, step) = deep_linear(&[3, 3, 3, 3], 3, 130, 400_000, Sampler::Sgld);
    assert!(((llc - truth) / truth).abs() <= 0.1, "λ̂ {llc:.3} vs {truth} at ε {step:e}");
}

/// Rank 0 (the origin): see the comment above `deep_linear` for what was measured and why the
/// networks of three or more layers stay open.
#[test]
#[ignore = "slow (minutes per network) and open for N ≥ 3 layers (#14 item 6): run with --ignored to measure"]
fn deep_linear_rank_zero_with_adaptive_calibration() {
    let cases: [(&[usize], u64); 3] = [(&[4, 2, 4], 110), (&[5, 4, 3, 2], 120), (&[3, 3, 3, 3], 100)];
    let mut failures = Vec::new();
    for (widths, seed) in cases {
        let (llc, truth, step) = deep_linear(widths, 0, seed, 400_000, Sampler::Sgld);
        if ((llc - truth) / truth).abs() > 0.1 {
            failures.push(format!("{widths:?}: λ̂ {llc:.3} vs {truth} at ε {step:e}"));
        }
    }
    assert!(failures.is_empty(), "outside 10 %: {failures:?}");
}

/// Intermediate ranks 0 < r < min Hᵢ, on the most singular stratum (see `true_factors`); see
/// the comment above `deep_linear` for what was measured (one of three within 10 %, the other
/// two reported as not converged in γ at this budget) with plain SGLD; see
/// `deep_linear_intermediate_rank_with_mala` for the exact sampler.
#[test]
#[ignore = "slow (minutes per network) and open (#14 item 6): run with --ignored to measure"]
fn deep_linear_intermediate_rank_with_adaptive_calibration() {
    let cases: [(&[usize], usize, u64); 3] =
        [(&[4, 3, 3, 4], 1, 140), (&[3, 4, 4, 3], 2, 150), (&[5, 4, 3, 2], 1, 160)];
    let mut failures = Vec::new();
    for (widths, r, seed) in cases {
        let (llc, truth, step) = deep_linear(widths, r, seed, 400_000, Sampler::Sgld);
        if ((llc - truth) / truth).abs() > 0.1 {
            failures.push(format!("{widths:?} r {r}: λ̂ {llc:.3} vs {truth} at ε {step:e}"));
        }
    }
    assert!(failures.is_empty(), "outside 10 %: {failures:?}");
}

/// λ̂ of deep linear networks with Metropolis-adjusted Langevin (exact at every ε) and every
/// setting chosen by `calibrate_adaptive` (ε on a factor-2 grid 1e-6 … 1.28e-4, the largest with
/// acceptance ≥ 0.5; γ 100 → 1 with the plateau rule; ≤ 400 000 steps per chain), on the
/// full-batch loss through `sufficient_inputs`. Returns the cases outside 10 %.
fn deep_linear_with_mala(cases: &[(&[usize], usize, u64)]) -> Vec<String> {
    let mut failures = Vec::new();
    for &(widths, r, seed) in cases {
        let (llc, truth, step) = deep_linear(widths, r, seed, 400_000, Sampler::Mala);
        if ((llc - truth) / truth).abs() > 0.1 {
            failures.push(format!("{widths:?} r {r}: λ̂ {llc:.3} vs {truth} at ε {step:e}"));
        }
    }
    failures
}

/// Intermediate ranks with MALA: two of the networks plain SGLD got +68.9 % and −3.3 % wrong
/// (see the comment above `deep_linear`).
#[test]
#[ignore = "slow (minutes per network): run with --ignored to measure"]
fn deep_linear_intermediate_rank_with_mala() {
    // [3, 4, 4, 3] r 2 runs in CI (`deep_linear_rank_two_with_mala`).
    let failures = deep_linear_with_mala(&[(&[5, 4, 3, 2], 1, 160), (&[4, 3, 3, 4], 1, 140)]);
    assert!(failures.is_empty(), "outside 10 %: {failures:?}");
}

/// The network plain SGLD got most wrong (+63 %: [3, 4, 4, 3], rank 2), in CI: MALA with every
/// setting from `calibrate_adaptive` must be within 10 % (measured −4.8 %, about 4 min on 2
/// cores).
#[test]
fn deep_linear_rank_two_with_mala() {
    let failures = deep_linear_with_mala(&[(&[3, 4, 4, 3], 2, 150)]);
    assert!(failures.is_empty(), "outside 10 %: {failures:?}");
}

/// Full rank and the origin with MALA.
#[test]
#[ignore = "slow (minutes per network): run with --ignored to measure"]
fn deep_linear_full_rank_and_origin_with_mala() {
    let failures = deep_linear_with_mala(&[(&[3, 3, 3, 3], 3, 130), (&[4, 2, 4], 0, 110), (&[5, 4, 3, 2], 0, 120)]);
    assert!(failures.is_empty(), "outside 10 %: {failures:?}");
}
