//! Hyperparameters of the SGLD sampler and the LLC estimator (devinterp semantics).

use serde::{Deserialize, Serialize};

use crate::EstimatorError;

/// The inverse temperature, given as nβ (the factor multiplying the mean minibatch loss).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Temperature {
    /// nβ = m / ln m with m the minibatch size (devinterp ≥ 1.x default).
    BatchDefault,
    /// nβ = n / ln n with n the number of training examples: Watanabe's WBIC temperature.
    Watanabe,
    /// A given nβ.
    Fixed(f64),
}

/// How `init_loss` = L(w*) is computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "batches", rename_all = "kebab-case")]
pub enum InitLoss {
    /// L_n(w*) on the whole training set (default).
    FullDataset,
    /// Mean of L_B(w*) over the first k minibatches of chain 0 (devinterp's way).
    FirstBatches(usize),
}

/// Where a chain's per-step work lives: on the host (bit-reproducible) or on the device (no
/// per-step transfer or synchronisation, for GPU backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", content = "block", rename_all = "kebab-case")]
pub enum Residency {
    /// [`Residency::Device`] with [`Residency::auto_block`] steps per block on backends built
    /// on burn-cubecl (wgpu, CUDA, ROCm; their `Backend::name` contains `cubecl`), else
    /// [`Residency::Host`].
    #[default]
    Auto,
    /// ξ drawn on the host from (chain seed, step) and uploaded every step (d values); the loss
    /// read back every step. The chain is the same on every backend up to the backend's
    /// arithmetic, bit-identical across runs and thread counts on CPU backends.
    Host,
    /// ξ for `block` steps at a time drawn on the device by the backend's generator
    /// (`Tensor::random`, seeded by `Backend::seed` from (chain seed, block index) under a
    /// process-wide lock); the losses kept on the device and read back once per block. Same
    /// seed, backend and device give the same chain; the noise differs from the host's, so the
    /// chain agrees with a host-resident one in distribution only. Divergence is noticed at the
    /// end of the block (the steps after it are discarded).
    Device(usize),
}

impl Residency {
    /// The block of a device-resident chain with d parameters: as many steps as fit 2²³ noise
    /// values (32 MiB in f32), between 1 and 64.
    pub fn auto_block(d: usize) -> usize {
        ((1usize << 23) / d.max(1)).clamp(1, 64)
    }

    /// The block length on backend `B` for d parameters, `None` for the host path.
    pub fn resolve<B: burn::tensor::backend::Backend>(&self, device: &B::Device, d: usize) -> Option<usize> {
        match *self {
            Residency::Host => None,
            Residency::Device(block) => Some(block.max(1)),
            Residency::Auto => B::name(device).contains("cubecl").then(|| Self::auto_block(d)),
        }
    }

    fn is_auto(&self) -> bool {
        *self == Residency::Auto
    }
}

/// A diagonal preconditioner of the SGLD step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Preconditioner {
    /// Plain SGLD: every coordinate moves with the same ε.
    #[default]
    None,
    /// RMSprop-preconditioned SGLD (Li, Chen, Carlson & Carin 2016, "Preconditioned stochastic
    /// gradient Langevin dynamics for deep neural networks", AAAI; devinterp's
    /// `RMSpropSGLD`): V_t = α·V_{t−1} + (1 − α)·g_t² (V₀ = g₀²) from the minibatch loss
    /// gradient g, G_t = 1/(δ + √V_t), and
    /// w' = w − (ε/2)·G_t ⊙ (nβ·g + γ(w − w*) + λw) + √ε·√G_t ⊙ ξ,
    /// without the Γ correction term (as devinterp). Flat directions (small |g|) take larger
    /// steps, which lets chains at stiff posteriors mix at an ε the stiff directions allow.
    RmsProp {
        /// Decay α ∈ [0, 1) of the running mean of g².
        alpha: f64,
        /// δ > 0 in G = 1/(δ + √V): bounds the preconditioner by 1/δ.
        delta: f64,
    },
}

impl Preconditioner {
    /// devinterp's defaults: α = 0.99, δ = 0.1.
    pub fn rmsprop() -> Self {
        Preconditioner::RmsProp { alpha: 0.99, delta: 0.1 }
    }

    fn is_none(&self) -> bool {
        *self == Preconditioner::None
    }
}

/// SGLD / LLC settings. Defaults follow devinterp 2.x where it has one: 4 chains × 200 draws,
/// no burn-in, every step a draw, nβ = m/ln m, batch 128, no MALA diagnostic; γ = 100 and
/// ε = 1e-4 are the paper's (devinterp has no default for them). None of these is right for
/// every model: run [`crate::calibrate()`] and report λ̂ at more than one step size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SgldConfig {
    /// SGLD step size ε (`sgld_step`; the paper's ε, not the NGD floor).
    pub step_size: f64,
    /// Inverse temperature nβ.
    pub temperature: Temperature,
    /// Localisation strength γ of (γ/2)‖w − w*‖².
    pub localization: f64,
    /// Weight decay λ_wd of (λ_wd/2)‖w‖² (0 = none).
    pub weight_decay: f64,
    /// Optional half-width of a per-element box around w* that the chain is clamped to.
    pub bounding_box: Option<f64>,
    /// Number of chains.
    pub num_chains: usize,
    /// Draws recorded per chain.
    pub num_draws: usize,
    /// Steps discarded before the first draw.
    pub num_burnin: usize,
    /// A draw every `thin` steps after burn-in.
    pub thin: usize,
    /// Minibatch size m.
    pub batch_size: usize,
    /// Master seed; chain c uses the child seed (seed, SGLD, c).
    pub seed: u64,
    /// How L(w*) is computed.
    pub init_loss: InitLoss,
    /// Compute the MALA acceptance probability of every step (a diagnostic, off by default as
    /// in devinterp where it is an opt-in callback; it costs about a third of an SGLD step on an
    /// MLP: several extra passes over the parameters).
    pub mala: bool,
    /// Metropolis-adjusted Langevin (MALA; Roberts & Tweedie 1996, Bernoulli 2(4)): every
    /// proposal w' = w − (ε/2)·∇U(w) + √ε·ξ, U = nβ·Lₙ + (γ/2)‖w − w*‖² + (λ/2)‖w‖², is
    /// accepted with probability min(1, exp(U(w) − U(w') + (‖w' − w + (ε/2)∇U(w)‖² −
    /// ‖w − w' + (ε/2)∇U(w')‖²)/(2ε))), else the chain stays at w (and records w again). The
    /// chain then samples exp(−U) exactly at any ε: no Euler bias, ε only sets the acceptance
    /// rate and the mixing. Needs the full-batch loss (`batch_size` ≥ n) and plain proposals
    /// (no preconditioner, no bounding box). The acceptance probabilities are recorded as
    /// with `mala`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub metropolis: bool,
    /// Where the per-step work lives (default: on the device for GPU backends).
    #[serde(default, skip_serializing_if = "Residency::is_auto")]
    pub residency: Residency,
    /// Diagonal preconditioning of the step (default none: plain SGLD).
    #[serde(default, skip_serializing_if = "Preconditioner::is_none")]
    pub preconditioner: Preconditioner,
}

impl Default for SgldConfig {
    fn default() -> Self {
        Self {
            step_size: 1e-4,
            temperature: Temperature::BatchDefault,
            localization: 100.0,
            weight_decay: 0.0,
            bounding_box: None,
            num_chains: 4,
            num_draws: 200,
            num_burnin: 0,
            thin: 1,
            batch_size: 128,
            seed: 0,
            init_loss: InitLoss::FullDataset,
            mala: false,
            metropolis: false,
            residency: Residency::Auto,
            preconditioner: Preconditioner::None,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl SgldConfig {
    /// The paper's LLC settings: 2 chains × 1000 draws, γ = 100, ε = 1e-4, nβ = 128/ln 128,
    /// batch 128.
    pub fn paper() -> Self {
        Self { num_chains: 2, num_draws: 1000, ..Self::default() }
    }

    /// nβ for `n` training examples.
    pub fn n_beta(&self, n: usize) -> f64 {
        match self.temperature {
            Temperature::BatchDefault => {
                let m = self.batch_size.min(n) as f64;
                m / m.ln()
            }
            Temperature::Watanabe => n as f64 / (n as f64).ln(),
            Temperature::Fixed(v) => v,
        }
    }

    /// Whether nβ is Watanabe's n/ln n, so that n·E_β\[L\] is the WBIC.
    pub fn is_wbic_temperature(&self) -> bool {
        matches!(self.temperature, Temperature::Watanabe)
    }

    /// Total SGLD steps per chain.
    pub fn steps_per_chain(&self) -> usize {
        self.num_burnin + self.num_draws * self.thin
    }

    /// Checks every range, naming the field.
    pub fn validate(&self, n: usize) -> Result<(), EstimatorError> {
        let bad = |field: &str, why: String| Err(EstimatorError::InvalidConfig(format!("{field}: {why}")));
        if !(self.step_size > 0.0 && self.step_size.is_finite()) {
            return bad("step_size", format!("{} must be positive and finite", self.step_size));
        }
        if !(self.localization >= 0.0 && self.localization.is_finite()) {
            return bad("localization", format!("{} must be non-negative and finite", self.localization));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", format!("{} must be non-negative and finite", self.weight_decay));
        }
        if let Some(b) = self.bounding_box {
            if !(b > 0.0) {
                return bad("bounding_box", format!("{b} must be positive"));
            }
        }
        if self.num_chains == 0 || self.num_draws == 0 || self.thin == 0 {
            return bad("num_chains/num_draws/thin", "must be at least 1".into());
        }
        if self.batch_size == 0 || n == 0 {
            return bad("batch_size", "batch size and dataset size must be at least 1".into());
        }
        if self.residency == Residency::Device(0) {
            return bad("residency", "a device-resident block needs at least one step".into());
        }
        if let Preconditioner::RmsProp { alpha, delta } = self.preconditioner {
            if !((0.0..1.0).contains(&alpha) && delta > 0.0 && delta.is_finite()) {
                return bad("preconditioner", format!("RMSprop needs 0 ≤ α < 1 and δ > 0 (got α {alpha}, δ {delta})"));
            }
            if self.mala {
                return bad("preconditioner", "the MALA diagnostic assumes plain SGLD proposals".into());
            }
        }
        if self.metropolis {
            if self.batch_size < n {
                return bad(
                    "metropolis",
                    format!(
                        "the Metropolis adjustment is exact only with the full-batch loss: batch_size {} < n {n}",
                        self.batch_size
                    ),
                );
            }
            if !self.preconditioner.is_none() || self.bounding_box.is_some() {
                return bad(
                    "metropolis",
                    "the Metropolis adjustment needs plain proposals (no preconditioner, no bounding box)".into(),
                );
            }
        }
        if let InitLoss::FirstBatches(0) = self.init_loss {
            return bad("init_loss", "needs at least one batch".into());
        }
        let nb = self.n_beta(n);
        if !(nb > 0.0 && nb.is_finite()) {
            return bad(
                "temperature",
                format!("nβ = {nb} must be positive and finite (batch size 1 gives m/ln m = ∞)"),
            );
        }
        Ok(())
    }
}
