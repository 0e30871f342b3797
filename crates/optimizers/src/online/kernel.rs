//! The per-axis kernel of [`super::OnlineNgd`]: one low-rank-plus-identity Fisher estimate for
//! the rows of a gradient matrix X (N × D), in f64 on the host (the eigendecomposition optionally
//! in f32: [`EigenPrecision`]). The equations are listed in the
//! documentation of [`super`]; this module numbers its steps the same way.
//!
//! It is public so that its steps can be checked against a dense computation (see
//! `crates/optimizers/tests/online.rs`); the optimiser is the intended entry point.

use nalgebra::DMatrix;

/// Number of initial calls on which the estimate is always updated (the public code's
/// `num_initial_iters`); afterwards it is updated when `t % update_period == 0`.
pub const INITIAL_UPDATES: u64 = 10;

/// Number of extra updates with the first gradient that initialise the estimate (the public
/// code's `_init`: "similar to the power method").
pub const INIT_ITERATIONS: usize = 3;

/// Added to ‖X̂‖² before the rescaling to ‖X‖ (the public code's `1e-30`), so that a zero
/// gradient gives a zero direction.
pub const RESCALE_GUARD: f64 = 1e-30;

/// The smoothing and flooring constants of one estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    /// α: the identity added to the Fisher estimate is α·tr(F)/D.
    pub alpha: f64,
    /// η: F ← η·XᵀX/N + (1 − η)·F.
    pub eta: f64,
    /// ε: absolute floor of ρ and of the diagonal of D (and their initial value).
    pub epsilon: f64,
    /// δ: relative floor (to the largest eigenvalue) of ρ and of the diagonal of D.
    pub delta: f64,
    /// Update the estimate every `update_period` calls (after the first [`INITIAL_UPDATES`]).
    pub update_period: u64,
    /// Re-orthonormalise R_{t+1} when the update is ill-conditioned (Kaldi's
    /// `ReorthogonalizeRt1`, dropped by the public PyTorch code); see [`CONDITION_THRESHOLD`].
    pub reorthogonalize: bool,
    /// The precision of Z_t's eigendecomposition and of the factors it produces.
    pub eigen_precision: EigenPrecision,
}

/// The floating-point precision in which an estimate's update decomposes Z_t (eqs. 7–8) and
/// stores what comes out of it (C_t^{½}, D_{t+1}, W_{t+1}).
///
/// * `F64` (the default): the equations, as far as f64 resolves them.
/// * `F32`: what the paper's code does, approximately — it runs in the parameters' dtype (f32):
///   Z_t is formed from K_t, L_t, E_t^{-½} and D_t + ρ_t rounded to f32 and decomposed by an f32
///   symmetric eigensolver (nalgebra's here, LAPACK's `ssyevd` through torch there), C_t^{½} is
///   taken in f32, and D_{t+1} and W_{t+1} are rounded to f32 (as are D₀ and W₀); ρ and the
///   other scalars stay f64 (Python floats there), and so do the products with X (the paper:
///   f32). Its result depends on the f32 eigensolver: on MNIST MLPs most eigenvalues of Z_t for
///   bias vectors and for axes with fewer gradient rows than the rank lie below f32 resolution
///   (the floor ((1−η)ρ)² ≈ 2.5e-9 × the largest does not catch them), come back as rounding
///   noise, and R stops being orthonormal (measured in `tests/online.rs`). See [`Conditioning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EigenPrecision {
    /// f64 throughout (the default).
    #[default]
    F64,
    /// The paper's code's f32, approximately (see the type's documentation).
    F32,
}

impl EigenPrecision {
    /// True for the default ([`EigenPrecision::F64`]); configs skip the field then, so that
    /// configurations serialised before it existed (and the run ids hashing them) are unchanged.
    pub fn is_default(&self) -> bool {
        *self == Self::F64
    }

    /// The machine epsilon of the working precision (2⁻⁵² or 2⁻²³).
    pub fn epsilon(&self) -> f64 {
        match self {
            Self::F64 => f64::EPSILON,
            Self::F32 => f32::EPSILON as f64,
        }
    }

    /// `v` rounded to the working precision.
    fn round(&self, v: f64) -> f64 {
        match self {
            Self::F64 => v,
            Self::F32 => v as f32 as f64,
        }
    }

    fn round_all(&self, v: &mut [f64]) {
        if *self == Self::F32 {
            for x in v {
                *x = *x as f32 as f64;
            }
        }
    }
}

/// How well the estimates' updates were resolved, accumulated over updates (including the
/// three initialising updates of a fresh estimate); see [`super::OnlineNgd::take_conditioning`].
///
/// The equations assume R_t (= E_t^{-½} W_t) has orthonormal rows; the update keeps them so only
/// if every eigenvalue of Z_t is resolved. An eigenvalue below ε_wp × the largest (ε_wp the
/// working precision's machine epsilon, [`EigenPrecision::epsilon`]) is rounding noise: its row
/// of R_{t+1} gets a wrong norm, and X − XWᵀW is no longer X·(F + α tr F/D·I)⁻¹ for the stored F.
/// (Noise can also land a little above the threshold: the share is a lower bound.)
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Conditioning {
    /// Estimate updates seen.
    pub updates: u64,
    /// The largest |R Rᵀ − I| entry after any of those updates (of the R stored, i.e. after
    /// any re-orthonormalisation, at the working precision). Round-off alone gives about
    /// 1e-15 (F64) or 1e-7 (F32).
    pub max_orthonormality_error: f64,
    /// Eigenvalues of Z_t seen (the rank, per update).
    pub eigenvalues: u64,
    /// Of those, the number below ε_wp × the largest eigenvalue of the same Z_t (before the floor).
    pub unresolved_eigenvalues: u64,
}

impl Conditioning {
    /// `unresolved_eigenvalues / eigenvalues` (0 when no update was seen).
    pub fn unresolved_share(&self) -> f64 {
        if self.eigenvalues == 0 {
            0.0
        } else {
            self.unresolved_eigenvalues as f64 / self.eigenvalues as f64
        }
    }

    /// Adds `other`'s counts and keeps the larger orthonormality error.
    pub fn merge(&mut self, other: &Conditioning) {
        self.updates += other.updates;
        self.max_orthonormality_error = self.max_orthonormality_error.max(other.max_orthonormality_error);
        self.eigenvalues += other.eigenvalues;
        self.unresolved_eigenvalues += other.unresolved_eigenvalues;
    }
}

/// Kaldi's `condition_threshold`: with [`Hyper::reorthogonalize`], R_{t+1} is
/// re-orthonormalised when max c / min c exceeds this or an eigenvalue c was floored.
pub const CONDITION_THRESHOLD: f64 = 1e6;

/// A strided, read-only view of a matrix stored in a slice: element (i, j) is
/// `data[i·rs + j·cs]`.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    data: &'a [f64],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    fn new(data: &'a [f64], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        if rows > 0 && cols > 0 {
            assert!((rows - 1) * rs + (cols - 1) * cs < data.len(), "matrix view out of bounds");
        }
        Self { data, rows, cols, rs, cs }
    }
    /// Row-major `rows × cols`.
    fn rm(data: &'a [f64], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }
    fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }
}

/// C ← α·A·B + β·C, with C given as a strided mutable slice (`c_rs`, `c_cs`).
fn gemm(alpha: f64, a: View<'_>, b: View<'_>, beta: f64, c: &mut [f64], c_rs: usize, c_cs: usize) {
    assert_eq!(a.cols, b.rows, "gemm: inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * c_rs + (n - 1) * c_cs < c.len(), "gemm: output out of bounds");
    // SAFETY: all three operands were bounds-checked above (views in `View::new`); the output
    // does not alias the inputs (it is a distinct `&mut` slice). The `gemm` crate computes
    // dst ← α_g·dst + β_g·lhs·rhs (dst read only when `read_dst`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs as isize,
            c_rs as isize,
            beta != 0.0,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Row-major `m × n` product A·B.
fn mul(a: View<'_>, b: View<'_>) -> Vec<f64> {
    let mut c = vec![0.0; a.rows * b.cols];
    gemm(1.0, a, b, 0.0, &mut c, b.cols, 1);
    c
}

/// The estimate of one axis of dimension D: F = Rᵀ·diag(d)·R + ρ·I with R (rank × D) orthonormal
/// rows, stored as W = E^{1/2}·R (eq. 2 of the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct AxisState {
    dim: usize,
    rank: usize,
    /// Calls so far (0: not initialised; the next call initialises from its X).
    t: u64,
    rho: f64,
    d: Vec<f64>,
    /// rank × dim, row-major.
    w: Vec<f64>,
}

impl AxisState {
    /// A fresh, uninitialised estimate for an axis of dimension `dim`, of rank
    /// min(⌊(D+1)/2⌋, `max_rank`) (0, a no-op, when D = 1).
    pub fn new(dim: usize, max_rank: usize) -> Self {
        let rank = if dim <= 1 { 0 } else { dim.div_ceil(2).min(max_rank).max(1) };
        Self { dim, rank, t: 0, rho: 0.0, d: Vec::new(), w: Vec::new() }
    }

    /// Restores an estimate from its parts (as exported); `t = 0` means not initialised and
    /// then `d` and `w` must be empty.
    pub fn from_parts(dim: usize, max_rank: usize, t: u64, rho: f64, d: Vec<f64>, w: Vec<f64>) -> Result<Self, String> {
        let mut s = Self::new(dim, max_rank);
        if t == 0 {
            if !d.is_empty() || !w.is_empty() {
                return Err("an uninitialised estimate has no factors".into());
            }
            return Ok(s);
        }
        if s.rank == 0 {
            return Err(format!("an axis of dimension {dim} has no estimate"));
        }
        if d.len() != s.rank || w.len() != s.rank * dim {
            return Err(format!(
                "expected rank {} and W of {} entries for dimension {dim}, got {} and {}",
                s.rank,
                s.rank * dim,
                d.len(),
                w.len()
            ));
        }
        s.t = t;
        s.rho = rho;
        s.d = d;
        s.w = w;
        Ok(s)
    }

    /// D.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The rank R of the low-rank part (0 for a no-op axis).
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// Calls so far (0 until the first).
    pub fn t(&self) -> u64 {
        self.t
    }
    /// ρ_t.
    pub fn rho(&self) -> f64 {
        self.rho
    }
    /// diag(D_t), length R (empty before the first call).
    pub fn d(&self) -> &[f64] {
        &self.d
    }
    /// W_t = E_t^{1/2} R_t, R × D row-major (empty before the first call).
    pub fn w(&self) -> &[f64] {
        &self.w
    }

    /// β_t = ρ_t(1 + α) + α·tr(D_t)/D (eq. 3).
    pub fn beta(&self, alpha: f64) -> f64 {
        self.rho * (1.0 + alpha) + alpha * self.d.iter().sum::<f64>() / self.dim as f64
    }

    /// The preconditioned rows X̂ rescaled to ‖X‖_F (eqs. 4 and 5), updating the estimate
    /// first if this call is an update call (eqs. 6–12); the first call initialises (eq. 1).
    ///
    /// X is N × D with element (i, j) at `x[i·rs + j·cs]`, `x.len() = N·D`; the result has
    /// the same layout. Returns `None` (and leaves `self` in an unspecified state: callers
    /// work on a clone) if the result is not finite.
    pub fn precondition(&mut self, x: &[f64], rows: usize, rs: usize, cs: usize, h: &Hyper) -> Option<Vec<f64>> {
        self.precondition_recorded(x, rows, rs, cs, h, &mut Conditioning::default())
    }

    /// [`AxisState::precondition`], adding what its updates saw to `conditioning`.
    pub fn precondition_recorded(
        &mut self,
        x: &[f64],
        rows: usize,
        rs: usize,
        cs: usize,
        h: &Hyper,
        conditioning: &mut Conditioning,
    ) -> Option<Vec<f64>> {
        assert_eq!(rows * self.dim, x.len(), "X must have N·D entries");
        if self.rank == 0 {
            return Some(x.to_vec());
        }
        let view = View::new(x, rows, self.dim, rs, cs);
        if self.t == 0 {
            self.init_default(h);
            self.t = 1;
            for _ in 0..INIT_ITERATIONS {
                self.step_internal(view, h, conditioning);
            }
            self.t = 0;
        }
        let initial: f64 = x.iter().map(|v| v * v).sum();
        let mut out = self.step_internal(view, h, conditioning);
        let fin: f64 = out.iter().map(|v| v * v).sum();
        let scale = (initial / (fin + RESCALE_GUARD)).sqrt();
        if !(scale.is_finite() && self.rho.is_finite()) {
            return None;
        }
        for v in &mut out {
            *v *= scale;
        }
        out.iter().all(|v| v.is_finite()).then_some(out)
    }

    /// Eq. 1: ρ₀ = ε, D₀ = ε·I, W₀ = E₀^{1/2}·R₀ with E₀ = 1/(2 + (D+R)α/D) and R₀ the public
    /// code's deterministic orthonormal rows ("orthonormal special").
    fn init_default(&mut self, h: &Hyper) {
        let (dd, r) = (self.dim, self.rank);
        self.rho = h.epsilon;
        self.d = vec![h.eigen_precision.round(h.epsilon); r];
        let e0 = 1.0 / (2.0 + (dd + r) as f64 * h.alpha / dd as f64);
        self.w = orthonormal_special(r, dd).into_iter().map(|v| v * e0.sqrt()).collect();
        h.eigen_precision.round_all(&mut self.w);
    }

    /// One call on X: returns X̂ = X − X·Wᵀ·W (with the W before any update) and, on update
    /// calls, replaces (W, d, ρ) by their successors. Increments t.
    fn step_internal(&mut self, x: View<'_>, h: &Hyper, conditioning: &mut Conditioning) -> Vec<f64> {
        let updating = self.t < INITIAL_UPDATES || self.t.is_multiple_of(h.update_period);
        self.t += 1;
        let (n, dd, r) = (x.rows, self.dim, self.rank);
        let w = View::rm(&self.w, r, dd);
        // H = X Wᵀ (N × R); X̂ = X − H W, written in X's layout.
        let hm = mul(x, w.t());
        let hv = View::rm(&hm, n, r);
        let mut xhat = x.data.to_vec();
        gemm(-1.0, hv, w, 1.0, &mut xhat, x.rs, x.cs);
        if !updating {
            return xhat;
        }
        // J = Hᵀ X (R × D); L = Hᵀ H = J Wᵀ; K = J Jᵀ (R × R).
        let j = mul(hv.t(), x);
        let jv = View::rm(&j, r, dd);
        let l = if n > dd { mul(jv, w.t()) } else { mul(hv.t(), hv) };
        let k = mul(jv, jv.t());
        let tr_xx: f64 = x.data.iter().map(|v| v * v).sum();
        let nf = n as f64;
        let en = h.eta / nf;
        let d_sum: f64 = self.d.iter().sum();
        let beta = self.beta(h.alpha);
        let inv_sqrt_e: Vec<f64> = self.d.iter().map(|&di| (beta / di + 1.0).sqrt()).collect();
        let k_trace: f64 = (0..r).map(|i| k[i * r + i]).sum();
        let z_scale = k_trace.max(1.0);
        let dpr: Vec<f64> = self.d.iter().map(|&di| di + self.rho).collect();
        // Eq. 7 (divided by z_scale): Z = (η/N)² E^{-½}KE^{-½} + (η/N)(1−η)[E^{-½}LE^{-½}(D+ρI)
        // + (D+ρI)E^{-½}LE^{-½}] + (1−η)²(D+ρI)².
        let c1 = en * en / z_scale;
        let c2 = en * (1.0 - h.eta) / z_scale;
        let c3 = (1.0 - h.eta) * (1.0 - h.eta) / z_scale;
        let z_entry = |a: usize, b: usize| {
            let s = inv_sqrt_e[a] * inv_sqrt_e[b];
            let kab = 0.5 * (k[a * r + b] + k[b * r + a]);
            let lab = 0.5 * (l[a * r + b] + l[b * r + a]);
            let mut v = c1 * s * kab + c2 * s * lab * (dpr[a] + dpr[b]);
            if a == b {
                v += c3 * dpr[a] * dpr[a];
            }
            v
        };
        // Eq. 8: Z = U C Uᵀ, eigenvalues in decreasing order, floored at ((1−η)ρ)².
        let (eigenvalues, eigenvectors) = match h.eigen_precision {
            EigenPrecision::F64 => {
                let eig = DMatrix::<f64>::from_fn(r, r, z_entry).symmetric_eigen();
                (eig.eigenvalues.iter().copied().collect::<Vec<f64>>(), eig.eigenvectors)
            }
            EigenPrecision::F32 => {
                // Z formed in f32 from f32 inputs, as the paper's code does in f32 parameters.
                let f = |v: f64| v as f32;
                let (c1, c2, c3) = (f(c1), f(c2), f(c3));
                let z = DMatrix::<f32>::from_fn(r, r, |a, b| {
                    let s = f(inv_sqrt_e[a]) * f(inv_sqrt_e[b]);
                    let kab = f(0.5 * (k[a * r + b] + k[b * r + a]));
                    let lab = f(0.5 * (l[a * r + b] + l[b * r + a]));
                    let (da, db) = (f(dpr[a]), f(dpr[b]));
                    let mut v = c1 * s * kab + c2 * s * lab * (da + db);
                    if a == b {
                        v += c3 * da * da;
                    }
                    v
                });
                let eig = z.symmetric_eigen();
                (eig.eigenvalues.iter().map(|&v| v as f64).collect(), eig.eigenvectors.map(|v| v as f64))
            }
        };
        let prec = h.eigen_precision;
        let mut order: Vec<usize> = (0..r).collect();
        order.sort_by(|&a, &b| eigenvalues[b].total_cmp(&eigenvalues[a]));
        let c_floor = prec.round((self.rho * (1.0 - h.eta)).powi(2) / z_scale);
        let (c_max, c_min) = (eigenvalues[order[0]], eigenvalues[order[r - 1]]);
        let ill_conditioned = c_min < c_floor || c_max > CONDITION_THRESHOLD * c_min;
        conditioning.updates += 1;
        conditioning.eigenvalues += r as u64;
        conditioning.unresolved_eigenvalues +=
            eigenvalues.iter().filter(|&&c| c < prec.epsilon() * c_max).count() as u64;
        let sqrt_c: Vec<f64> = order
            .iter()
            .map(|&i| prec.round(prec.round(eigenvalues[i].max(c_floor).sqrt()) * z_scale.sqrt()))
            .collect();
        // Eq. 9: ρ_{t+1} = [(η/N) tr(XXᵀ) + (1−η)(Dρ_t + tr D_t) − tr C^{½}] / (D − R).
        let mut rho1 = (en * tr_xx + (1.0 - h.eta) * (dd as f64 * self.rho + d_sum) - sqrt_c.iter().sum::<f64>())
            / (dd - r) as f64;
        // Eq. 10: D_{t+1} = C^{½} − ρ_{t+1}I; both floored at max(ε, δ·max C^{½}).
        let c_max = sqrt_c.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let floor = h.epsilon.max(h.delta * c_max);
        let d1: Vec<f64> = sqrt_c.iter().map(|&c| prec.round((c - rho1).max(floor))).collect();
        if rho1 < floor {
            rho1 = floor;
        }
        // Eq. 11: E_{t+1} from β_{t+1} = ρ_{t+1}(1+α) + α tr(D_{t+1})/D.
        let beta1 = rho1 * (1.0 + h.alpha) + h.alpha * d1.iter().sum::<f64>() / dd as f64;
        let sqrt_e1: Vec<f64> = d1.iter().map(|&di| (1.0 / (beta1 / di + 1.0)).sqrt()).collect();
        // Eq. 12: W_{t+1} = A B, B = J + ((1−η)/(η/N))(D_t + ρ_t I) W_t,
        // A = (η/N) E_{t+1}^{½} C^{-½} Uᵀ E_t^{-½}.
        let mut bm = j;
        for a in 0..r {
            let coeff = (1.0 - h.eta) / en * dpr[a];
            for c in 0..dd {
                bm[a * dd + c] += coeff * self.w[a * dd + c];
            }
        }
        let mut am = vec![0.0; r * r];
        for (row, &i) in order.iter().enumerate() {
            let left = en * sqrt_e1[row] / sqrt_c[row];
            for col in 0..r {
                am[row * r + col] = left * eigenvectors[(col, i)] * inv_sqrt_e[col];
            }
        }
        self.w = mul(View::rm(&am, r, r), View::rm(&bm, r, dd));
        if h.reorthogonalize && ill_conditioned {
            reorthonormalise(&mut self.w, &sqrt_e1, dd);
        }
        prec.round_all(&mut self.w);
        self.d = d1;
        self.rho = rho1;
        conditioning.max_orthonormality_error =
            conditioning.max_orthonormality_error.max(self.orthonormality_error(h.alpha));
        xhat
    }

    /// max |R Rᵀ − I| over the entries, R = E^{-½} W (0 before the first call).
    pub fn orthonormality_error(&self, alpha: f64) -> f64 {
        let (r, dd) = (self.rank, self.dim);
        if self.w.is_empty() {
            return 0.0;
        }
        let beta = self.beta(alpha);
        let inv_sqrt_e: Vec<f64> = self.d.iter().map(|&di| (beta / di + 1.0).sqrt()).collect();
        let w = View::rm(&self.w, r, dd);
        let g = mul(w, w.t());
        let mut worst = 0.0f64;
        for a in 0..r {
            for b in 0..r {
                let v = g[a * r + b] * inv_sqrt_e[a] * inv_sqrt_e[b] - if a == b { 1.0 } else { 0.0 };
                worst = worst.max(v.abs());
            }
        }
        worst
    }
}

/// W = E^{½}R ← E^{½}·orth(R) with R = E^{-½}W: modified Gram–Schmidt on the rows of R in order
/// (largest eigenvalue first); a row that vanishes is replaced by the first unit basis vector
/// orthogonal to the previous rows. Deterministic.
fn reorthonormalise(w: &mut [f64], sqrt_e: &[f64], dim: usize) {
    let r = sqrt_e.len();
    let mut rows: Vec<Vec<f64>> =
        (0..r).map(|i| w[i * dim..(i + 1) * dim].iter().map(|v| v / sqrt_e[i]).collect()).collect();
    let mut next_basis = 0;
    for i in 0..r {
        for _pass in 0..2 {
            for j in 0..i {
                let dot: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
                let (head, tail) = rows.split_at_mut(i);
                for (a, b) in tail[0].iter_mut().zip(&head[j]) {
                    *a -= dot * b;
                }
            }
        }
        let mut norm = rows[i].iter().map(|v| v * v).sum::<f64>().sqrt();
        while norm < 1e-8 && next_basis < dim {
            rows[i] = vec![0.0; dim];
            rows[i][next_basis] = 1.0;
            next_basis += 1;
            for j in 0..i {
                let dot = rows[j][next_basis - 1];
                let (head, tail) = rows.split_at_mut(i);
                for (a, b) in tail[0].iter_mut().zip(&head[j]) {
                    *a -= dot * b;
                }
            }
            norm = rows[i].iter().map(|v| v * v).sum::<f64>().sqrt();
        }
        for (k, v) in rows[i].iter().enumerate() {
            w[i * dim + k] = v / norm * sqrt_e[i];
        }
    }
}

/// The public code's `_create_orthonormal_special`: R × D rows with 1.1 at (i, i) and 1 at
/// (i, i + kR), k ≥ 1, each row scaled to unit norm. Rows have disjoint supports, so they are
/// orthonormal; deterministic (no random initialisation is needed).
pub fn orthonormal_special(rank: usize, dim: usize) -> Vec<f64> {
    let first = 1.1f64;
    let num_cols = dim / rank;
    let remainder = dim % rank;
    let mut w = vec![0.0; rank * dim];
    for i in 0..rank {
        let extra = if i < remainder { num_cols } else { num_cols - 1 };
        let k = 1.0 / (first * first + extra as f64).sqrt();
        let mut c = i;
        let mut v = first * k;
        while c < dim {
            w[i * dim + c] = v;
            v = k;
            c += rank;
        }
    }
    w
}
