//! One SGLD chain on the localised tempered posterior (Welling & Teh 2011; Lau et al. 2023):
//!
//! p(w) ∝ exp(−nβ·Lₙ(w) − (γ/2)‖w − w*‖² − (λ/2)‖w‖²),
//! w ← w − (ε/2)·(nβ·∇L_B(w) + γ(w − w*) + λw) + √ε·ξ,  ξ ~ N(0, I),
//!
//! optionally clamped to a per-element box around w*. A draw records L_B(w_t) *before* the
//! update, every `thin`-th step after burn-in (devinterp semantics).

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use slt_core::params::{flatten_grads, write_back};
use slt_core::seed::{rng_for, stream};
use slt_core::Loss;

use crate::config::{Preconditioner, SgldConfig};
use crate::observe::{ChainObserver, Record, StepView};
use crate::source::BatchSource;

/// What one chain recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainTrace {
    /// Chain index.
    pub chain: usize,
    /// The chain's seed (derived from the master seed).
    pub seed: u64,
    /// L_B(w_t) at every step taken (before the step's update).
    pub step_losses: Vec<f64>,
    /// L_B(w_t) at the draws.
    pub draws: Vec<f64>,
    /// ‖w_t − w*‖ at every `distance_stride`-th draw and at the last draw (at most ~33 values:
    /// each costs a pass over the parameters).
    pub distances: Vec<f64>,
    /// Draws between two recorded distances.
    pub distance_stride: usize,
    /// MALA acceptance probability of every transition t−1 → t (empty if disabled).
    pub mala_acceptance: Vec<f64>,
    /// The step at which the loss became non-finite, if it did: the chain is excluded.
    pub diverged_at: Option<usize>,
    /// What the observers recorded, by name: one value per draw at which they recorded it
    /// (see [`crate::observe`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub observables: std::collections::BTreeMap<String, Vec<f64>>,
    /// What crossed the host–device boundary in the chain's loop.
    #[serde(default)]
    pub host_traffic: HostTraffic,
}

/// Cyclic seeded minibatches: a fresh permutation of 0..n every pass.
pub(crate) struct BatchCycle {
    order: Vec<usize>,
    pos: usize,
    m: usize,
}

impl BatchCycle {
    pub(crate) fn new(n: usize, m: usize) -> Self {
        Self { order: (0..n).collect(), pos: n, m: m.min(n) }
    }

    pub(crate) fn next(&mut self, rng: &mut ChaCha8Rng) -> &[usize] {
        if self.pos + self.m > self.order.len() {
            self.order.shuffle(rng);
            self.pos = 0;
        }
        let batch = &self.order[self.pos..self.pos + self.m];
        self.pos += self.m;
        batch
    }
}

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// Elements per independently seeded block of noise.
const NOISE_BLOCK: usize = 1 << 14;

/// ξ ~ N(0, I_d) for step `step` of the chain with seed `seed`: blocks of `NOISE_BLOCK`
/// values, block b drawn by Xoshiro256++ seeded with (seed, step, b) and the ziggurat method.
/// The values depend only on (seed, step); blocks make a parallel generator possible without
/// changing them (measured slower than serial while chains already run in parallel).
pub(crate) fn gaussian_noise(d: usize, seed: u64, step: u64) -> Vec<f32> {
    use rand::SeedableRng;
    let mut noise = vec![0f32; d];
    noise.chunks_mut(NOISE_BLOCK).enumerate().for_each(|(block, chunk)| {
        let mut rng =
            rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(slt_core::seed::derive_seed(seed, &[step, block as u64]));
        for x in chunk.iter_mut() {
            *x = rng.sample::<f64, _>(StandardNormal) as f32;
        }
    });
    noise
}

fn sq_norm<B: burn::tensor::backend::Backend>(t: Tensor<B, 1>) -> f64 {
    t.square().sum().into_scalar().elem::<f64>()
}

/// What crossed the host–device boundary in a chain's own loop: the uploads of noise and
/// the read-backs (each a synchronisation with the device). The batch source's work (an
/// upload of the batch, or of its indices for data already on the device) and the observers'
/// are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTraffic {
    /// Host-to-device uploads.
    pub uploads: usize,
    /// Values uploaded, all uploads together.
    pub uploaded_values: usize,
    /// Device-to-host read-backs.
    pub readbacks: usize,
    /// Steps taken.
    pub steps: usize,
}

impl HostTraffic {
    fn upload(&mut self, values: usize) {
        self.uploads += 1;
        self.uploaded_values += values;
    }
}

/// Serialises `Backend::seed` + `Tensor::random` of all device-resident chains in the process:
/// the backend's generator is global state.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// ξ for steps `first..first + rows` of the chain with seed `seed`, drawn on the device (one
/// seeding and one kernel; nothing uploaded but the generator's seed).
fn device_noise_block<B: burn::tensor::backend::Backend>(
    seed: u64,
    first: usize,
    rows: usize,
    d: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let _guard = DEVICE_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    B::seed(device, slt_core::seed::derive_seed(seed, &[stream::SGLD_DEVICE_NOISE, first as u64]));
    Tensor::random([rows, d], burn::tensor::Distribution::Normal(0.0, 1.0), device)
}

/// Where ξ comes from: a host thread that draws ahead, or blocks drawn on the device.
enum Noise<B: burn::tensor::backend::Backend> {
    Host(std::sync::mpsc::Receiver<Vec<f32>>),
    Device { block: usize, rows: Option<Tensor<B, 2>>, seed: u64, steps: usize },
}

impl<B: burn::tensor::backend::Backend> Noise<B> {
    fn next(&mut self, t: usize, d: usize, device: &B::Device, traffic: &mut HostTraffic) -> Tensor<B, 1> {
        match self {
            Noise::Host(rx) => {
                let noise = rx.recv().expect("the noise thread runs until the chain ends");
                traffic.upload(d);
                Tensor::from_data(TensorData::new(noise, [d]), device)
            }
            Noise::Device { block, rows, seed, steps } => {
                let r = t % *block;
                if r == 0 {
                    *rows = Some(device_noise_block::<B>(*seed, t, (*block).min(*steps - t), d, device));
                }
                rows.as_ref().expect("a block is drawn at its first step").clone().slice([r..r + 1]).reshape([d])
            }
        }
    }
}

/// Losses (and ‖w − w*‖² at the recorded draws) kept on the device until read back together.
struct Pending<B: burn::tensor::backend::Backend> {
    /// (step, L_B(w_t), ‖w_t − w*‖² if recorded at this step).
    steps: Vec<(usize, Tensor<B, 1>, Option<Tensor<B, 1>>)>,
}

impl<B: burn::tensor::backend::Backend> Pending<B> {
    /// Reads the pending values back in one transfer and appends them to `trace` in step
    /// order; stops at the first non-finite loss (marking the chain diverged) and returns
    /// whether the chain goes on.
    fn flush(&mut self, trace: &mut ChainTrace, config: &SgldConfig, traffic: &mut HostTraffic) -> bool {
        if self.steps.is_empty() {
            return true;
        }
        let mut parts = Vec::with_capacity(self.steps.len() * 2);
        for (_, loss, distance) in &self.steps {
            parts.push(loss.clone());
            parts.extend(distance.clone());
        }
        let values: Vec<f64> = Tensor::cat(parts, 0).into_data().iter::<f64>().collect();
        traffic.readbacks += 1;
        let mut next = values.into_iter();
        for (t, _, distance) in self.steps.drain(..) {
            let value = next.next().expect("one loss per pending step");
            let squared_distance = distance.map(|_| next.next().expect("one value per recorded distance"));
            if !value.is_finite() {
                trace.diverged_at = Some(t);
                return false;
            }
            trace.step_losses.push(value);
            if is_draw(t, config) {
                trace.draws.push(value);
            }
            if let Some(sq) = squared_distance {
                trace.distances.push(sq.sqrt());
            }
        }
        true
    }
}

/// Where a MALA chain stood after its previous step: w, U(w), ∇U(w), the loss gradient g and
/// the loss L_B(w) (still on the device).
struct MalaState<B: burn::tensor::backend::Backend> {
    w: Tensor<B, 1>,
    u: f64,
    grad_u: Tensor<B, 1>,
    g: Tensor<B, 1>,
    loss: Tensor<B, 1>,
}

fn is_draw(t: usize, config: &SgldConfig) -> bool {
    t >= config.num_burnin && (t - config.num_burnin).is_multiple_of(config.thin)
}

/// Runs chain `chain` from w* (`w_star`, the flat parameters of `model`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_chain<B, M, D, S, L>(
    model: M,
    w_star: Tensor<Inner<B>, 1>,
    source: &S,
    loss_fn: &L,
    config: &SgldConfig,
    n_beta: f64,
    init_loss: f64,
    chain: usize,
    observer: &dyn ChainObserver<Inner<B>>,
) -> ChainTrace
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: BatchSource<D>,
    L: Loss<B, M, D>,
{
    let seed = slt_core::seed::derive_seed(config.seed, &[stream::SGLD, chain as u64]);
    let mut rng = rng_for(config.seed, &[stream::SGLD, chain as u64]);
    let n = source.num_examples();
    let mut batches = BatchCycle::new(n, config.batch_size);
    let d = w_star.dims()[0];
    let device = w_star.device();
    let eps = config.step_size;
    let (gamma, wd) = (config.localization, config.weight_decay);
    // w' = c_w·w + c_star·w* − c_g·g + √ε·ξ
    let c_w = 1.0 - 0.5 * eps * (gamma + wd);
    let star_term = w_star.clone() * (0.5 * eps * gamma);
    let c_g = 0.5 * eps * n_beta;
    let c_xi = eps.sqrt();
    let bounds = config.bounding_box.map(|b| (w_star.clone() - b, w_star.clone() + b));

    let mut w = w_star.clone();
    let mut model = write_back(model, Tensor::from_inner(w.clone())).expect("layout of the same model");
    let steps = config.steps_per_chain();
    let mut trace = ChainTrace {
        chain,
        seed,
        step_losses: Vec::with_capacity(steps),
        draws: Vec::with_capacity(config.num_draws),
        distances: Vec::new(),
        distance_stride: (config.num_draws / 32).max(1),
        mala_acceptance: Vec::new(),
        diverged_at: None,
        observables: Default::default(),
        host_traffic: HostTraffic::default(),
    };
    let mut traffic = HostTraffic::default();
    let device_block = config.residency.resolve::<Inner<B>>(&device, d);
    // The losses are read back every step on the host path, and on the device path whenever
    // something needs them at once (MALA, an observer that reads losses).
    let flush_every = match device_block {
        Some(block) if !config.mala && !config.metropolis && !observer.reads_losses() => block,
        _ => 1,
    };
    let mut pending = Pending::<Inner<B>> { steps: Vec::with_capacity(flush_every) };
    let mut record = Record::default();
    // The MALA state of the previous step.
    let mut previous: Option<MalaState<Inner<B>>> = None;
    // RMSprop's running mean of g² (on the device).
    let mut v_rms: Option<Tensor<Inner<B>, 1>> = None;
    let lr = 0.5 * eps;
    // On the host path the Gaussian noise of the next steps is drawn on a second thread while
    // this one runs the forward and backward passes (a training step leaves the other core
    // mostly idle). It depends only on (seed, step), so the chain is the same as with inline
    // generation.
    std::thread::scope(|scope| {
        let mut noise = match device_block {
            Some(block) => Noise::Device { block, rows: None, seed, steps },
            None => {
                let (noise_tx, noise_rx) = std::sync::mpsc::sync_channel::<Vec<f32>>(2);
                scope.spawn(move || {
                    for t in 0..steps {
                        if noise_tx.send(gaussian_noise(d, seed, t as u64)).is_err() {
                            break; // the chain stopped early (diverged)
                        }
                    }
                });
                Noise::Host(noise_rx)
            }
        };
        let mut draws_seen = 0usize;
        for t in 0..steps {
            let indices = batches.next(&mut rng).to_vec();
            let batch = source.batch(&indices);
            let loss = loss_fn.loss(&model, &batch);
            let mut state_loss = loss.clone().inner();
            let grads = loss.backward();
            let mut g = flatten_grads(&model, &grads);
            if config.mala || config.metropolis {
                // U = nβ·L_B + (γ/2)‖w − w*‖² + (λ/2)‖w‖², ∇U = nβ·g + γ(w − w*) + λw.
                let value = state_loss.clone().into_scalar().elem::<f64>();
                let diff = w.clone() - w_star.clone();
                let mut u = n_beta * value + 0.5 * gamma * sq_norm(diff.clone()) + 0.5 * wd * sq_norm(w.clone());
                traffic.readbacks += 3;
                let mut grad_u = g.clone() * n_beta + diff * gamma + w.clone() * wd;
                if let Some(before) = previous.take() {
                    // log q(a | b) = −‖a − b + lr·∇U(b)‖² / (4 lr), lr = ε/2.
                    let forward = sq_norm(w.clone() - before.w.clone() + before.grad_u.clone() * lr);
                    let backward = sq_norm(before.w.clone() - w.clone() + grad_u.clone() * lr);
                    traffic.readbacks += 2;
                    let log_ratio = before.u - u + (forward - backward) / (4.0 * lr);
                    // A proposal to a non-finite energy is never accepted.
                    let acceptance = if log_ratio.is_nan() { 0.0 } else { log_ratio.min(0.0).exp() };
                    trace.mala_acceptance.push(acceptance);
                    if config.metropolis && rng.random::<f64>() >= acceptance {
                        // Rejected: the chain stays where it was.
                        (w, u, grad_u, g, state_loss) = (before.w, before.u, before.grad_u, before.g, before.loss);
                    }
                }
                previous = Some(MalaState { w: w.clone(), u, grad_u, g: g.clone(), loss: state_loss.clone() });
            }
            let draw = is_draw(t, config).then(|| {
                draws_seen += 1;
                draws_seen - 1
            });
            let records_distance =
                draw.is_some_and(|k| k.is_multiple_of(trace.distance_stride) || k + 1 == config.num_draws);
            let distance = records_distance.then(|| (w.clone() - w_star.clone()).square().sum());
            pending.steps.push((t, state_loss, distance));
            if (pending.steps.len() == flush_every || t + 1 == steps)
                && !pending.flush(&mut trace, config, &mut traffic)
            {
                break;
            }
            // Known here on every path that reads back each step; NaN while a block is pending.
            let value = if flush_every == 1 { trace.step_losses[t] } else { f64::NAN };
            traffic.steps += 1;
            let xi = noise.next(t, d, &device, &mut traffic);
            let view = StepView {
                chain,
                step: t,
                draw,
                loss: value,
                weights: &w,
                w_star: &w_star,
                gradient: &g,
                noise: &xi,
                step_size: eps,
                n_beta,
                init_loss,
                draws: &trace.draws,
            };
            observer.observe(&view, &mut record);
            if draw.is_some() {
                record.drain_into(&mut trace.observables);
            } else {
                record.clear();
            }
            let mut next = match config.preconditioner {
                Preconditioner::None => w.clone() * c_w + star_term.clone() - g * c_g + xi * c_xi,
                Preconditioner::RmsProp { alpha, delta } => {
                    let g_sq = g.clone().square();
                    let v = match v_rms.take() {
                        Some(v) => v * alpha + g_sq * (1.0 - alpha),
                        None => g_sq,
                    };
                    let precondition = (v.clone().sqrt() + delta).recip();
                    v_rms = Some(v);
                    let drift = g * n_beta + (w.clone() - w_star.clone()) * gamma + w.clone() * wd;
                    w.clone() - precondition.clone() * drift * (0.5 * eps) + precondition.sqrt() * xi * c_xi
                }
            };
            if let Some((lo, hi)) = &bounds {
                next = next.max_pair(lo.clone()).min_pair(hi.clone());
            }
            w = next;
            model = write_back(model, Tensor::from_inner(w.clone())).expect("layout of the same model");
        }
        if let Noise::Host(rx) = noise {
            drop(rx); // lets the noise thread stop
        }
    });
    trace.host_traffic = traffic;
    trace
}
