//! Online NGD (Povey et al. 2015, as the paper's public code ran it) against an independent
//! dense f64 computation of the same equations, a convergence property, the optimiser's wiring
//! (axes, momentum, weight decay), resume bit-identity, configs and non-finite gradients.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use nalgebra::DMatrix;
use slt_core::params::flatten_to_vec;
use slt_optimizers::online::kernel::{AxisState, Hyper, INITIAL_UPDATES};
use slt_optimizers::{Conditioning, EigenPrecision, OnlineNgd, OnlineNgdConfig, OptimError, OptimizerState};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f64>>;
type Flex = burn_autodiff::Autodiff<burn_flex::Flex<f32>>;

/// Deterministic uniform numbers in (−1, 1) (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn hyper(c: &OnlineNgdConfig) -> Hyper {
    c.hyper()
}

/// Row-major n × d data as a dense matrix.
fn dm(x: &[f64], n: usize, d: usize) -> DMatrix<f64> {
    DMatrix::from_row_slice(n, d, x)
}

fn rel(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).norm() / b.norm().max(1e-300)
}

/// The same equations written densely: F = Rᵀ diag(d) R + ρI kept with R explicit, the
/// update as the paper's power iteration on T = (η/N)XᵀX + (1−η)F, and the preconditioned
/// rows as X (F + α tr(F)/D I)⁻¹ by a dense inverse, rescaled to ‖X‖.
struct DenseRef {
    dim: usize,
    rank: usize,
    t: u64,
    r: DMatrix<f64>,
    d: Vec<f64>,
    rho: f64,
}

impl DenseRef {
    fn new(dim: usize, rank: usize) -> Self {
        Self { dim, rank, t: 0, r: DMatrix::zeros(rank, dim), d: vec![], rho: 0.0 }
    }
    fn fisher(&self) -> DMatrix<f64> {
        let dd = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(self.d.clone()));
        self.r.transpose() * dd * &self.r + DMatrix::identity(self.dim, self.dim) * self.rho
    }
    fn init(&mut self, h: &Hyper) {
        // Rows: 1.1 at (i, i), 1 at (i, c) for c ≡ i (mod R), c > i; unit norm.
        let mut r = DMatrix::zeros(self.rank, self.dim);
        for i in 0..self.rank {
            for c in (i..self.dim).step_by(self.rank) {
                r[(i, c)] = if c == i { 1.1 } else { 1.0 };
            }
            let n = r.row(i).norm();
            r.row_mut(i).scale_mut(1.0 / n);
        }
        self.r = r;
        self.d = vec![h.epsilon; self.rank];
        self.rho = h.epsilon;
    }
    fn update(&mut self, x: &DMatrix<f64>, h: &Hyper) {
        let n = x.nrows() as f64;
        let f = self.fisher();
        let t = x.transpose() * x * (h.eta / n) + f * (1.0 - h.eta);
        let y = &self.r * &t;
        let z = &y * y.transpose();
        let eig = z.symmetric_eigen();
        let mut order: Vec<usize> = (0..self.rank).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let c_floor = ((1.0 - h.eta) * self.rho).powi(2);
        let sqrt_c: Vec<f64> = order.iter().map(|&i| eig.eigenvalues[i].max(c_floor).sqrt()).collect();
        let mut r1 = DMatrix::zeros(self.rank, self.dim);
        for (row, &i) in order.iter().enumerate() {
            let u = eig.eigenvectors.column(i);
            let v = u.transpose() * &y / sqrt_c[row];
            r1.row_mut(row).copy_from(&v);
        }
        let mut rho1 = (t.trace() - sqrt_c.iter().sum::<f64>()) / (self.dim - self.rank) as f64;
        let floor = h.epsilon.max(h.delta * sqrt_c.iter().cloned().fold(0.0, f64::max));
        self.d = sqrt_c.iter().map(|&c| (c - rho1).max(floor)).collect();
        if rho1 < floor {
            rho1 = floor;
        }
        self.rho = rho1;
        self.r = r1;
    }
    fn apply(&self, x: &DMatrix<f64>, h: &Hyper) -> DMatrix<f64> {
        let f = self.fisher();
        let g = &f + DMatrix::identity(self.dim, self.dim) * (h.alpha * f.trace() / self.dim as f64);
        let y = x * g.try_inverse().unwrap();
        let s = (x.norm_squared() / (y.norm_squared() + 1e-30)).sqrt();
        y * s
    }
    fn call(&mut self, x: &DMatrix<f64>, h: &Hyper) -> DMatrix<f64> {
        if self.t == 0 {
            self.init(h);
            for _ in 0..3 {
                self.update(x, h);
            }
        }
        let out = self.apply(x, h);
        if self.t < INITIAL_UPDATES || self.t.is_multiple_of(h.update_period) {
            self.update(x, h);
        }
        self.t += 1;
        out
    }
}

/// The kernel's F = Rᵀ D R + ρI, with R = E^{-½} W recovered from its state, and the
/// largest deviation of R Rᵀ from I.
fn kernel_fisher(s: &AxisState, alpha: f64) -> (DMatrix<f64>, f64) {
    let (r, dim) = (s.rank(), s.dim());
    let beta = s.beta(alpha);
    let mut rm = dm(s.w(), r, dim);
    for i in 0..r {
        let inv_sqrt_e = (beta / s.d()[i] + 1.0).sqrt();
        rm.row_mut(i).scale_mut(inv_sqrt_e);
    }
    let dd = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(s.d().to_vec()));
    let f = rm.transpose() * dd * &rm + DMatrix::identity(dim, dim) * s.rho();
    let ortho = (&rm * rm.transpose() - DMatrix::identity(r, r)).abs().max();
    (f, ortho)
}

fn check_against_dense(n: usize, dim: usize, calls: usize, config: OnlineNgdConfig, tol: f64) -> (f64, f64) {
    let h = hyper(&config);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n * 31 + dim) as u64);
    let mut kernel = AxisState::new(dim, config.max_rank);
    let mut dense = DenseRef::new(dim, kernel.rank());
    let (mut worst_out, mut worst_f) = (0.0f64, 0.0f64);
    for call in 0..calls {
        let x = rng.vec(n * dim);
        let before = kernel.clone();
        let out = kernel.precondition(&x, n, dim, 1, &h).unwrap();
        let expected = dense.call(&dm(&x, n, dim), &h);
        let e_out = rel(&dm(&out, n, dim), &expected);
        let (f, ortho) = kernel_fisher(&kernel, h.alpha);
        let e_f = rel(&f, &dense.fisher());
        assert!(e_out < tol, "call {call}: preconditioned rows differ by {e_out:e}");
        assert!(e_f < tol, "call {call}: Fisher estimates differ by {e_f:e}");
        assert!(ortho < tol, "call {call}: R is not orthonormal ({ortho:e})");
        if tol <= 1e-9 {
            assert!((kernel.rho() - dense.rho).abs() <= tol * dense.rho.abs(), "call {call}: ρ");
            for (a, b) in kernel.d().iter().zip(&dense.d) {
                assert!((a - b).abs() <= tol * b.abs(), "call {call}: d {a} vs {b}");
            }
        }
        // The rescaling: the output has the input's Frobenius norm.
        let (nx, no) = (x.iter().map(|v| v * v).sum::<f64>(), out.iter().map(|v| v * v).sum::<f64>());
        assert!((no / nx - 1.0).abs() < 1e-12, "call {call}: ‖X̂‖²/‖X‖² = {}", no / nx);
        // Calls 10, 11, 13, 14, 15, … (t before the call) leave the estimate unchanged.
        let t = before.t();
        let updating = t < INITIAL_UPDATES || t.is_multiple_of(h.update_period);
        assert_eq!(kernel.t(), t + 1);
        if updating {
            assert_ne!(kernel.w(), before.w(), "call {call} should update");
        } else {
            assert_eq!(kernel.w(), before.w(), "call {call} should not update");
            assert_eq!(kernel.d(), before.d());
        }
        worst_out = worst_out.max(e_out);
        worst_f = worst_f.max(e_f);
    }
    (worst_out, worst_f)
}

#[test]
fn kernel_matches_a_dense_computation_of_the_same_equations() {
    let config = OnlineNgdConfig::paper();
    // 6 × 4 (R = 2, N > D), 3 × 5 (R = 3, N < D, uneven special rows), 10 × 9.
    for (n, dim) in [(6, 4), (3, 5), (10, 9)] {
        let (e_out, e_f) = check_against_dense(n, dim, 18, config, 1e-9);
        println!("N={n} D={dim}: max rel. error preconditioned {e_out:.2e}, Fisher {e_f:.2e}");
    }
    // Other constants: heavy smoothing, slow averaging, update every call after the first 10.
    let other = OnlineNgdConfig { alpha: 4.0, eta: 0.1, update_period: 1, delta: 1e-3, ..config };
    let (e_out, e_f) = check_against_dense(6, 4, 14, other, 1e-9);
    println!("α=4 η=0.1: {e_out:.2e}, {e_f:.2e}");
}

/// The preconditioned rows from the kernel's own estimate by a dense inverse:
/// X (F + α tr(F)/D I)⁻¹ rescaled to ‖X‖.
fn dense_apply_of(s: &AxisState, x: &DMatrix<f64>, alpha: f64) -> DMatrix<f64> {
    let (f, _) = kernel_fisher(s, alpha);
    let dim = s.dim();
    let g = &f + DMatrix::identity(dim, dim) * (alpha * f.trace() / dim as f64);
    let y = x * g.try_inverse().unwrap();
    &y * (x.norm() / y.norm())
}

#[test]
fn single_row_estimates_need_reorthogonalisation() {
    // A bias: N = 1 row, D = 7, R = 4. The first update leaves R − 1 eigenvalues of Z at
    // ((1−η)ε)² ≈ 1e-22, below f64 round-off of the largest, so R_{t+1} is round-off in those
    // directions (in any implementation). The first call's output is still well determined.
    let config = OnlineNgdConfig::paper();
    let h = hyper(&config);
    let (n, dim) = (1, 7);
    let mut rng = Rng(21);
    let xs: Vec<Vec<f64>> = (0..18).map(|_| rng.vec(dim)).collect();
    let mut dense = DenseRef::new(dim, 4);
    let mut kernel = AxisState::new(dim, 80);
    let out = kernel.precondition(&xs[0], n, dim, 1, &h).unwrap();
    let e0 = rel(&dm(&out, n, dim), &dense.call(&dm(&xs[0], n, dim), &h));
    // Without re-orthonormalisation (the public code) the rows of R drift from orthonormal and
    // X − XWᵀW is no longer X·G⁻¹ for the estimate; with it (Kaldi) both hold at round-off.
    let mut worst = [0.0f64; 2];
    let mut worst_ortho = [0.0f64; 2];
    for (k, reorth) in [false, true].into_iter().enumerate() {
        let h = hyper(&OnlineNgdConfig { reorthogonalize: reorth, ..config });
        let mut kernel = AxisState::new(dim, 80);
        for x in &xs {
            let before = kernel.clone();
            let out = kernel.precondition(x, n, dim, 1, &h).unwrap();
            if before.t() > 0 {
                let e = rel(&dm(&out, n, dim), &dense_apply_of(&before, &dm(x, n, dim), h.alpha));
                worst[k] = worst[k].max(e);
            }
            worst_ortho[k] = worst_ortho[k].max(kernel_fisher(&kernel, h.alpha).1);
        }
    }
    println!(
        "N=1 D=7: first call vs dense {e0:.2e}; X̂ vs X·G⁻¹ of the estimate: public code {:.2e} \
         (max |RRᵀ−I| {:.2e}), re-orthonormalised {:.2e} (max |RRᵀ−I| {:.2e})",
        worst[0], worst_ortho[0], worst[1], worst_ortho[1]
    );
    assert!(e0 < 1e-5, "{e0:e}");
    assert!(worst[1] < 1e-9 && worst_ortho[1] < 1e-9, "{worst:?} {worst_ortho:?}");
}

#[test]
fn first_call_initialises_with_three_extra_updates() {
    let config = OnlineNgdConfig::paper();
    let h = hyper(&config);
    let (n, dim) = (6, 4);
    let x = Rng(7).vec(n * dim);
    let mut kernel = AxisState::new(dim, 80);
    assert_eq!((kernel.rank(), kernel.t()), (2, 0));
    assert!(kernel.w().is_empty());
    let out = kernel.precondition(&x, n, dim, 1, &h).unwrap();
    // By hand: R₀, ρ₀ = d₀ = ε; three updates with X; the output uses that state; one more.
    let xm = dm(&x, n, dim);
    let mut dense = DenseRef::new(dim, 2);
    dense.init(&h);
    for _ in 0..3 {
        dense.update(&xm, &h);
    }
    let expected = dense.apply(&xm, &h);
    dense.update(&xm, &h);
    let e = rel(&dm(&out, n, dim), &expected);
    assert!(e < 1e-10, "{e:e}");
    assert_eq!(kernel.t(), 1);
    assert!(rel(&kernel_fisher(&kernel, h.alpha).0, &dense.fisher()) < 1e-10);
    // W₀ itself: E₀^{½} R₀ with E₀ = 1/(2 + (D+R)α/D), R₀ rows of 1.1, 0, 1, 0 normalised.
    let w0 = slt_optimizers::online::kernel::orthonormal_special(2, 4);
    let k = 1.0 / (1.21f64 + 1.0).sqrt();
    assert_eq!(w0, vec![1.1 * k, 0.0, k, 0.0, 0.0, 1.1 * k, 0.0, k]);
}

#[test]
fn estimate_converges_to_the_smoothed_batch_fisher() {
    // Gradient rows spanning exactly R dimensions, repeated: the running estimate must become
    // F = S = XᵀX/N, and the preconditioned rows ∝ X (S + α tr(S)/D I)⁻¹ (dense inverse).
    let config = OnlineNgdConfig { epsilon: 1e-14, delta: 0.0, ..OnlineNgdConfig::paper() };
    let h = hyper(&config);
    let (n, dim, r) = (6, 8, 4);
    let mut rng = Rng(11);
    let x = dm(&rng.vec(n * r), n, r) * dm(&rng.vec(r * dim), r, dim);
    let xs: Vec<f64> = x.transpose().iter().cloned().collect(); // row-major
    let mut kernel = AxisState::new(dim, 80);
    assert_eq!(kernel.rank(), r);
    let mut out = vec![];
    for _ in 0..40 {
        out = kernel.precondition(&xs, n, dim, 1, &h).unwrap();
    }
    let s = x.transpose() * &x / n as f64;
    let smoothed = &s + DMatrix::identity(dim, dim) * (h.alpha * s.trace() / dim as f64);
    let y = &x * smoothed.try_inverse().unwrap();
    let y = &y * (x.norm() / y.norm());
    let e_f = rel(&kernel_fisher(&kernel, h.alpha).0, &s);
    let e_out = rel(&dm(&out, n, dim), &y);
    println!("after 40 calls: Fisher vs XᵀX/N {e_f:.2e}, preconditioned vs dense inverse {e_out:.2e}");
    assert!(e_f < 1e-9 && e_out < 1e-9, "{e_f:e} {e_out:e}");
}

#[test]
fn zero_gradient_gives_zero_direction() {
    let h = hyper(&OnlineNgdConfig::paper());
    let mut kernel = AxisState::new(5, 80);
    let out = kernel.precondition(&[0.0; 15], 3, 5, 1, &h).unwrap();
    assert!(out.iter().all(|&v| v == 0.0));
    assert!(kernel.rho().is_finite() && kernel.d().iter().all(|v| v.is_finite()));
}

#[derive(Module, Debug)]
struct Toy<B: Backend> {
    w: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
    k: Param<Tensor<B, 3>>,
}

const WS: [usize; 2] = [6, 4];
const KS: [usize; 3] = [2, 3, 5];

fn toy<BB: Backend>(seed: u64, device: &BB::Device) -> Toy<BB> {
    fn p<BB: Backend, const D: usize>(shape: [usize; D], rng: &mut Rng, device: &BB::Device) -> Param<Tensor<BB, D>> {
        let n = shape.iter().product();
        Param::from_tensor(Tensor::from_data(TensorData::new(rng.vec(n), shape), device).require_grad())
    }
    let mut rng = Rng(seed);
    Toy { w: p(WS, &mut rng, device), b: p([4], &mut rng, device), k: p(KS, &mut rng, device) }
}

/// L = Σ c⊙θ + ½Σθ² per tensor, so g = c + θ.
fn toy_loss<BB: burn::tensor::backend::AutodiffBackend>(m: &Toy<BB>, c: &[Vec<f64>; 3]) -> Tensor<BB, 1> {
    let device = m.w.val().device();
    let t = |v: &Vec<f64>, shape: Vec<usize>| TensorData::new(v.clone(), shape);
    let cw = Tensor::<BB, 2>::from_data(t(&c[0], WS.to_vec()), &device);
    let cb = Tensor::<BB, 1>::from_data(t(&c[1], vec![4]), &device);
    let ck = Tensor::<BB, 3>::from_data(t(&c[2], KS.to_vec()), &device);
    let w = m.w.val();
    let b = m.b.val();
    let k = m.k.val();
    (w.clone() * cw).sum()
        + (w.square().sum() * 0.5)
        + (b.clone() * cb).sum()
        + b.square().sum() * 0.5
        + (k.clone() * ck).sum()
        + k.square().sum() * 0.5
}

fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for i in 0..rows {
        for j in 0..cols {
            y[j * rows + i] = x[i * cols + j];
        }
    }
    y
}

/// The direction of the weight `[6, 4]` written out: X = G (rows by input unit, D = 4) first,
/// then X = Gᵀ (rows by output unit, D = 6) — or axis 0 first when `linear` is false.
fn by_hand_w(g: &[f64], axes: &mut [AxisState], h: &Hyper, linear: bool) -> Vec<f64> {
    if linear {
        let y = axes[1].precondition(g, 6, 4, 1, h).unwrap();
        let yt = axes[0].precondition(&transpose(&y, 6, 4), 4, 6, 1, h).unwrap();
        transpose(&yt, 4, 6)
    } else {
        let yt = axes[0].precondition(&transpose(g, 6, 4), 4, 6, 1, h).unwrap();
        axes[1].precondition(&transpose(&yt, 4, 6), 6, 4, 1, h).unwrap()
    }
}

/// The direction of the kernel `[2, 3, 5]`: axes 0, 1, 2, rows gathered explicitly.
fn by_hand_k(g: &[f64], axes: &mut [AxisState], h: &Hyper) -> Vec<f64> {
    let idx = |p: usize, j: usize, q: usize| (p * 3 + j) * 5 + q;
    // Axis 0 (D = 2): rows (j, q).
    let mut x = vec![0.0; 30];
    for p in 0..2 {
        for jq in 0..15 {
            x[jq * 2 + p] = g[p * 15 + jq];
        }
    }
    let y = axes[0].precondition(&x, 15, 2, 1, h).unwrap();
    let mut g1 = vec![0.0; 30];
    for p in 0..2 {
        for jq in 0..15 {
            g1[p * 15 + jq] = y[jq * 2 + p];
        }
    }
    // Axis 1 (D = 3): rows (p, q), p-major.
    let mut x = vec![0.0; 30];
    for p in 0..2 {
        for j in 0..3 {
            for q in 0..5 {
                x[(p * 5 + q) * 3 + j] = g1[idx(p, j, q)];
            }
        }
    }
    let y = axes[1].precondition(&x, 10, 3, 1, h).unwrap();
    let mut g2 = vec![0.0; 30];
    for p in 0..2 {
        for j in 0..3 {
            for q in 0..5 {
                g2[idx(p, j, q)] = y[(p * 5 + q) * 3 + j];
            }
        }
    }
    // Axis 2 (D = 5): rows (p, j).
    axes[2].precondition(&g2, 6, 5, 1, h).unwrap()
}

#[test]
fn optimiser_preconditions_each_axis_then_applies_nesterov_momentum() {
    for (linear, wd) in [(true, 0.0), (false, 0.0), (true, 0.05)] {
        let config = OnlineNgdConfig {
            lr: 0.1,
            weight_decay: wd,
            linear_in_out: linear,
            max_rank: 80,
            ..OnlineNgdConfig::paper()
        };
        let h = hyper(&config);
        let device = Default::default();
        let mut model = toy::<B>(3, &device);
        let mut rng = Rng(5);
        let c = [rng.vec(24), rng.vec(4), rng.vec(30)];
        let mut opt = OnlineNgd::<B>::new(config).unwrap();
        // By hand: θ, velocity and the kernels' own estimates.
        let mut theta = [flat(&model.w), flat(&model.b), flat(&model.k)];
        let mut vel: [Vec<f64>; 3] = [vec![], vec![], vec![]];
        let mut w_axes = vec![AxisState::new(6, 80), AxisState::new(4, 80)];
        let mut b_axes = [AxisState::new(4, 80)];
        let mut k_axes = vec![AxisState::new(2, 80), AxisState::new(3, 80), AxisState::new(5, 80)];
        for step in 0..12 {
            let grads = toy_loss(&model, &c).backward();
            let (next, stats) = opt.step(model, &grads).unwrap();
            model = next;
            let g: Vec<Vec<f64>> = (0..3).map(|i| theta[i].iter().zip(&c[i]).map(|(t, c)| t + c).collect()).collect();
            let raw_norm = g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
            let gt: Vec<Vec<f64>> =
                (0..3).map(|i| g[i].iter().zip(&theta[i]).map(|(g, t)| g + wd * t).collect()).collect();
            let dirs = [
                by_hand_w(&gt[0], &mut w_axes, &h, linear),
                b_axes[0].precondition(&gt[1], 1, 4, 1, &h).unwrap(),
                by_hand_k(&gt[2], &mut k_axes, &h),
            ];
            let dir_norm = dirs.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
            assert!((stats.grad_norm - raw_norm).abs() < 1e-12 * raw_norm, "step {step}");
            assert!((stats.update_norm - dir_norm).abs() < 1e-12 * dir_norm, "step {step}");
            for i in 0..3 {
                if vel[i].is_empty() {
                    vel[i] = dirs[i].clone();
                } else {
                    for (v, d) in vel[i].iter_mut().zip(&dirs[i]) {
                        *v = 0.9 * *v + d;
                    }
                }
                for ((t, d), v) in theta[i].iter_mut().zip(&dirs[i]).zip(&vel[i]) {
                    *t -= 0.1 * (d + 0.9 * v);
                }
            }
            let got = [flat(&model.w), flat(&model.b), flat(&model.k)];
            for i in 0..3 {
                for (a, b) in got[i].iter().zip(&theta[i]) {
                    assert!((a - b).abs() < 1e-12, "linear={linear} wd={wd} step {step} tensor {i}: {a} vs {b}");
                }
            }
        }
        // The optimiser's estimates are the by-hand ones (up to the round-off of θ).
        for (got, want) in
            [(opt.estimates(&model.w.id).unwrap(), &w_axes), (opt.estimates(&model.k.id).unwrap(), &k_axes)]
        {
            for (a, b) in got.iter().zip(want.iter()) {
                assert_eq!((a.t(), a.rank()), (b.t(), b.rank()));
                assert!((a.rho() - b.rho()).abs() < 1e-10 * b.rho());
                for (x, y) in a.w().iter().zip(b.w()).chain(a.d().iter().zip(b.d())) {
                    assert!((x - y).abs() < 1e-10, "{x} vs {y}");
                }
            }
        }
    }
}

fn flat<BB: Backend, const D: usize>(p: &Param<Tensor<BB, D>>) -> Vec<f64> {
    p.val().into_data().iter::<f64>().collect()
}

/// A small classification problem for the MLP 784-16-10: fixed random inputs and labels.
fn batch(step: usize, device: &burn::tensor::Device<Flex>) -> (Tensor<Flex, 2>, Tensor<Flex, 2>) {
    let mut rng = Rng(1000 + step as u64 % 4);
    let m = 16;
    let x: Vec<f32> = rng.vec(m * 784).into_iter().map(|v| v as f32).collect();
    let mut y = vec![0.0f32; m * 10];
    for i in 0..m {
        y[i * 10 + (i * 7 + step % 4) % 10] = 1.0;
    }
    (Tensor::from_data(TensorData::new(x, [m, 784]), device), Tensor::from_data(TensorData::new(y, [m, 10]), device))
}

type Model = slt_models::Classifier<Flex>;

fn train(model: Model, opt: &mut OnlineNgd<Flex>, steps: std::ops::Range<usize>) -> (Model, Vec<f64>) {
    let device = Default::default();
    let mut model = model;
    let mut losses = vec![];
    for s in steps {
        let (x, y) = batch(s, &device);
        let loss = slt_models::loss::cross_entropy(model.forward(x), y);
        losses.push(loss.clone().into_scalar() as f64);
        let grads = loss.backward();
        model = opt.step(model, &grads).unwrap().0;
    }
    (model, losses)
}

#[test]
fn resumed_run_is_bit_identical() {
    let device = Default::default();
    let spec: slt_models::ModelSpec = "mlp-1x16".parse().unwrap();
    let config = OnlineNgdConfig { lr: 0.05, ..OnlineNgdConfig::paper() };
    // Uninterrupted: 17 steps (crosses the 10 initial updates and two update periods).
    let mut opt = OnlineNgd::<Flex>::new(config).unwrap();
    let (a, _) = train(spec.init::<Flex>(0, &device), &mut opt, 0..17);
    // Interrupted after 7 steps: weights and the exported state go into a fresh optimiser.
    let mut opt = OnlineNgd::<Flex>::new(config).unwrap();
    let (b, _) = train(spec.init::<Flex>(0, &device), &mut opt, 0..7);
    let exported = opt.export_state(&b);
    let state: HashMap<String, Vec<f64>> = exported.iter().cloned().collect();
    assert_eq!(state.len(), exported.len(), "state names must be unique");
    let mut resumed = OnlineNgd::<Flex>::new(config).unwrap();
    resumed.import_state(&b, &state).unwrap();
    assert_eq!(resumed.export_state(&b), exported, "export ∘ import is the identity");
    let (b, _) = train(b, &mut resumed, 7..17);
    assert_eq!(flatten_to_vec(&a), flatten_to_vec(&b));
    // A fresh optimiser's state (before any step) imports too.
    let fresh = OnlineNgd::<Flex>::new(config).unwrap();
    let s0: HashMap<String, Vec<f64>> = fresh.export_state(&b).into_iter().collect();
    let mut other = OnlineNgd::<Flex>::new(config).unwrap();
    other.import_state(&b, &s0).unwrap();
    // Missing and mis-sized entries are refused.
    let key = exported.iter().find(|(k, _)| k.starts_with("online_ngd.")).unwrap().0.clone();
    let mut missing = state.clone();
    missing.remove(&key);
    assert!(matches!(other.import_state(&b, &missing), Err(OptimError::InvalidState(_))));
    let mut short = state.clone();
    short.get_mut(&key).unwrap().pop();
    assert!(matches!(other.import_state(&b, &short), Err(OptimError::InvalidState(_))));
    let mut no_velocity = state;
    no_velocity.remove("velocity");
    assert!(matches!(other.import_state(&b, &no_velocity), Err(OptimError::InvalidState(_))));
}

#[test]
fn training_lowers_the_loss() {
    let device = Default::default();
    let spec: slt_models::ModelSpec = "mlp-1x16".parse().unwrap();
    let mut opt = OnlineNgd::<Flex>::new(OnlineNgdConfig { lr: 0.05, ..OnlineNgdConfig::paper() }).unwrap();
    let (_, losses) = train(spec.init::<Flex>(1, &device), &mut opt, 0..40);
    let first: f64 = losses[..4].iter().sum::<f64>() / 4.0;
    let last: f64 = losses[36..].iter().sum::<f64>() / 4.0;
    println!("loss {first:.4} -> {last:.4}");
    assert!(last < 0.5 * first, "{first} -> {last}");
}

#[test]
fn bad_configs_name_the_field() {
    let p = OnlineNgdConfig::paper();
    assert_eq!(p.validate(), Ok(()));
    let cases = [
        (OnlineNgdConfig { lr: 0.0, ..p }, "lr"),
        (OnlineNgdConfig { lr: f64::NAN, ..p }, "lr"),
        (OnlineNgdConfig { momentum: 1.0, ..p }, "momentum"),
        (OnlineNgdConfig { momentum: 0.0, nesterov: true, ..p }, "nesterov"),
        (OnlineNgdConfig { weight_decay: -1e-3, ..p }, "weight_decay"),
        (OnlineNgdConfig { alpha: -0.1, ..p }, "alpha"),
        (OnlineNgdConfig { alpha: f64::INFINITY, ..p }, "alpha"),
        (OnlineNgdConfig { eta: 0.0, ..p }, "eta"),
        (OnlineNgdConfig { eta: 1.0, ..p }, "eta"),
        (OnlineNgdConfig { epsilon: 0.0, ..p }, "epsilon"),
        (OnlineNgdConfig { epsilon: -1e-10, ..p }, "epsilon"),
        (OnlineNgdConfig { delta: 1.0, ..p }, "delta"),
        (OnlineNgdConfig { delta: -1e-4, ..p }, "delta"),
        (OnlineNgdConfig { update_period: 0, ..p }, "update_period"),
        (OnlineNgdConfig { max_rank: 0, ..p }, "max_rank"),
    ];
    for (c, field) in cases {
        match OnlineNgd::<B>::new(c) {
            Err(OptimError::InvalidConfig(msg)) => assert!(msg.contains(field), "{field}: {msg}"),
            other => panic!("{field}: expected InvalidConfig, got {:?}", other.map(|_| ())),
        }
    }
    let mut opt = OnlineNgd::<B>::new(p).unwrap();
    assert!(opt.set_lr(-1.0).is_err());
    assert_eq!(opt.config().lr, p.lr);
    opt.set_lr(0.5).unwrap();
    assert_eq!(opt.config().lr, 0.5);
}

#[test]
fn non_finite_gradient_leaves_model_and_state_unchanged() {
    let device = Default::default();
    let model = toy::<B>(9, &device);
    let mut rng = Rng(2);
    let c = [rng.vec(24), rng.vec(4), rng.vec(30)];
    let mut opt = OnlineNgd::<B>::new(OnlineNgdConfig::paper()).unwrap();
    let grads = toy_loss(&model, &c).backward();
    let model = opt.step(model, &grads).unwrap().0;
    let state = opt.export_state(&model);
    let before = flatten_to_vec(&model);
    let mut bad = c.clone();
    bad[2][7] = f64::NAN;
    let grads = toy_loss(&model, &bad).backward();
    let err = opt.step(model.clone(), &grads).unwrap_err();
    assert!(matches!(err, OptimError::NonFiniteGradient { .. }), "{err}");
    assert_eq!(flatten_to_vec(&model), before);
    assert_eq!(opt.export_state(&model), state);
    // The next good step proceeds as if the bad one never happened.
    let grads = toy_loss(&model, &c).backward();
    assert!(opt.step(model, &grads).is_ok());
}

/// `calls` calls of a fresh estimate of dimension `dim` on N × D gradients `x(call)`; what the
/// first call's updates (the three initialising ones and its own) saw, and what the later ones saw.
fn conditioning_of(
    dim: usize,
    n: usize,
    calls: usize,
    h: &Hyper,
    mut x: impl FnMut(usize) -> Vec<f64>,
) -> (Conditioning, Conditioning) {
    let mut kernel = AxisState::new(dim, 80);
    let (mut first, mut later) = (Conditioning::default(), Conditioning::default());
    for call in 0..calls {
        let c = if call == 0 { &mut first } else { &mut later };
        kernel.precondition_recorded(&x(call), n, dim, 1, h, c).unwrap();
    }
    (first, later)
}

#[test]
fn f32_eigendecomposition_leaves_z_unresolved_and_r_not_orthonormal_on_a_bias() {
    // A bias-like axis: one gradient row (N = 1 < R = 8, D = 16), pointing in nearly the same
    // direction at every step, as near a minimum. The estimate concentrates on that direction,
    // the other eigenvalues of Z_t sit near the floor ((1−η)ρ)² ≈ 1e-8 of the largest: resolved
    // in f64, rounding noise in f32. Measured (nalgebra's eigensolvers):
    //   F64: first call max|RRᵀ−I| 3.0, unresolved share 0.22; calls 1..40: 2.9, 0.00
    //   F32: first call 1.5e4, 0.44; calls 1..40: 2.3e2, 0.76.
    // F64 is not orthonormal either: the very first update runs at ρ = ε = 1e-10, where the
    // eigenvalues ((1−η)·2ε)² are below f64 resolution too, and the public code never repairs R
    // (with `reorthogonalize`, F64 gets back to round-off; see the next test).
    let (n, dim) = (1, 16);
    let mut results = Vec::new();
    for prec in [EigenPrecision::F64, EigenPrecision::F32] {
        let h = Hyper { eigen_precision: prec, ..OnlineNgdConfig::paper().hyper() };
        let mut rng = Rng(5);
        let base = rng.vec(n * dim);
        let (first, later) =
            conditioning_of(dim, n, 40, &h, |_| base.iter().map(|b| 0.05 * b + 5e-4 * rng.next()).collect());
        println!(
            "{prec:?}: first call max|RRᵀ−I| {:.2e}, unresolved share {:.2}; calls 1..40 {:.2e}, {:.2}",
            first.max_orthonormality_error,
            first.unresolved_share(),
            later.max_orthonormality_error,
            later.unresolved_share()
        );
        assert_eq!((first.updates, first.eigenvalues), (4, 32), "3 initialising updates and the call's own");
        assert_eq!(later.updates, 9 + 30 / 4, "calls 1..9, then t = 12, 16, …, 36");
        results.push((first, later));
    }
    let [(f64_first, f64_later), (f32_first, f32_later)] = [results[0], results[1]];
    assert!(f32_first.max_orthonormality_error > 100.0 * f64_first.max_orthonormality_error);
    assert!(f32_later.max_orthonormality_error > 10.0 * f64_later.max_orthonormality_error);
    assert!(f32_first.unresolved_share() > f64_first.unresolved_share());
    assert_eq!(f64_later.unresolved_eigenvalues, 0);
    assert!(f32_later.unresolved_share() > 0.5, "{:?}", f32_later);
}

#[test]
fn f64_estimates_stay_orthonormal_when_every_eigenvalue_is_resolved() {
    // Full-rank gradients (N = 20 rows, D = 9, R = 5): every eigenvalue of Z_t resolved, R
    // orthonormal to round-off. Measured: F64 6e-15 (F32 2e-6, its rounding).
    let h = OnlineNgdConfig::paper().hyper();
    let mut rng = Rng(3);
    let (first, later) = conditioning_of(9, 20, 30, &h, |_| rng.vec(20 * 9));
    println!(
        "N=20 D=9 F64: max|RRᵀ−I| {:.2e} / {:.2e}",
        first.max_orthonormality_error, later.max_orthonormality_error
    );
    for c in [first, later] {
        assert!(c.max_orthonormality_error < 1e-10, "{c:?}");
        assert_eq!(c.unresolved_eigenvalues, 0);
    }
    // The bias of the previous test with Kaldi's re-orthonormalisation: back to round-off after
    // the first call. Measured: first call 8e-8 (an update that did not trigger the repair),
    // calls 1..40 8e-16.
    let h = OnlineNgdConfig { reorthogonalize: true, ..OnlineNgdConfig::paper() }.hyper();
    let mut rng = Rng(5);
    let base = rng.vec(16);
    let (first, later) =
        conditioning_of(16, 1, 40, &h, |_| base.iter().map(|b| 0.05 * b + 5e-4 * rng.next()).collect());
    println!(
        "N=1 D=16 F64 re-orthonormalised: max|RRᵀ−I| {:.2e} / {:.2e}",
        first.max_orthonormality_error, later.max_orthonormality_error
    );
    assert!(later.max_orthonormality_error < 1e-9, "{later:?}");
}

#[test]
fn optimiser_reports_conditioning_since_the_last_take() {
    // MLP 784-16-10 at batch 4: every axis has fewer gradient rows (or a lower gradient rank)
    // than its rank. After the first step (the estimates' initialisation), measured:
    //   F64: max|RRᵀ−I| 3.0, unresolved share 0.21 (24 updates: 6 axes × 4)
    //   F32: max|RRᵀ−I| 1.4e6, unresolved share 0.40.
    let device = Default::default();
    let spec: slt_models::ModelSpec = "mlp-1x16".parse().unwrap();
    let mut taken = Vec::new();
    for prec in [EigenPrecision::F64, EigenPrecision::F32] {
        let config = OnlineNgdConfig { eigen_precision: prec, ..OnlineNgdConfig::paper() };
        let mut opt = OnlineNgd::<B>::new(config).unwrap();
        assert_eq!(*opt.conditioning(), Conditioning::default());
        let mut model = spec.init::<B>(1, &device);
        let mut rng = Rng(77);
        let m = 4;
        let x = Tensor::<B, 2>::from_data(TensorData::new(rng.vec(m * 784), [m, 784]), &device);
        let mut y = vec![0.0; m * 10];
        for i in 0..m {
            y[i * 10 + i * 3] = 1.0;
        }
        let y = Tensor::<B, 2>::from_data(TensorData::new(y, [m, 10]), &device);
        let grads = slt_models::loss::cross_entropy(model.forward(x.clone()), y.clone()).backward();
        model = opt.step(model, &grads).unwrap().0;
        let c = opt.take_conditioning();
        println!("{prec:?} after step 0: {c:?} (share {:.2})", c.unresolved_share());
        // Axes: W [784, 16] (D = 16, R = 8; D = 784, R = 80), b [16] (R = 8), W [16, 10]
        // (R = 5; R = 8), b [10] (R = 5): 4 updates each on the first step.
        assert_eq!(c.updates, 24);
        assert_eq!(c.eigenvalues, 4 * (8 + 80 + 8 + 5 + 8 + 5));
        assert_eq!(*opt.conditioning(), Conditioning::default(), "take resets");
        let grads = slt_models::loss::cross_entropy(model.forward(x), y).backward();
        opt.step(model, &grads).unwrap();
        assert_eq!(opt.conditioning().updates, 6, "one update per axis on step 1");
        taken.push(c);
    }
    assert!(taken[1].max_orthonormality_error > 1e3 * taken[0].max_orthonormality_error);
    assert!(taken[1].unresolved_share() > taken[0].unresolved_share());
}

#[test]
fn eigen_precision_is_omitted_from_configs_at_its_default() {
    let paper = OnlineNgdConfig::paper();
    assert_eq!(paper.eigen_precision, EigenPrecision::F64);
    let json = serde_json::to_string(&paper).unwrap();
    assert!(!json.contains("eigen_precision"), "{json}");
    // A configuration written before the setting existed reads as F64.
    assert_eq!(serde_json::from_str::<OnlineNgdConfig>(&json).unwrap(), paper);
    let f32_config = OnlineNgdConfig { eigen_precision: EigenPrecision::F32, ..paper };
    let json = serde_json::to_string(&f32_config).unwrap();
    assert!(json.contains(r#""eigen_precision":"f32""#), "{json}");
    assert_eq!(serde_json::from_str::<OnlineNgdConfig>(&json).unwrap(), f32_config);
    assert_eq!(EigenPrecision::F32.epsilon(), f32::EPSILON as f64);
}

#[test]
fn f32_precision_rounds_the_factors_and_moves_the_output_slightly_on_a_resolved_axis() {
    // Full-rank rows (N = 6 > D = 4): F32 only adds its rounding. Measured: max |Δ| 1e-7.
    let h = OnlineNgdConfig::paper().hyper();
    let h32 = Hyper { eigen_precision: EigenPrecision::F32, ..h };
    let x = Rng(7).vec(6 * 4);
    let mut a = AxisState::new(4, 80);
    let mut b = AxisState::new(4, 80);
    let (oa, ob) = (a.precondition(&x, 6, 4, 1, &h).unwrap(), b.precondition(&x, 6, 4, 1, &h32).unwrap());
    assert!(b.w().iter().all(|&v| v == v as f32 as f64) && b.d().iter().all(|&v| v == v as f32 as f64));
    let e = oa.iter().zip(&ob).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
    println!("N=6 D=4: F32 vs F64 output max |Δ| {e:.2e}");
    assert!(e > 0.0 && e < 1e-4, "{e:e}");
}
