//! Backend choice at run time, among those compiled in by feature flags:
//! `ndarray` (CPU, default), `flex` (burn's portable SIMD CPU backend) and `wgpu` (GPU).
//! Every generic entry point of this crate is instantiated for each compiled backend and
//! [`BackendKind`] picks one.

use serde::{Deserialize, Serialize};

/// A compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// `burn-ndarray`, f32, CPU.
    Ndarray,
    /// `burn-flex`, f32, CPU.
    Flex,
    /// `burn-wgpu`, f32, GPU (or Mesa's software Vulkan).
    Wgpu,
}

impl BackendKind {
    /// The backends compiled into this binary.
    pub fn compiled() -> Vec<BackendKind> {
        let mut v = Vec::new();
        if cfg!(feature = "ndarray") {
            v.push(BackendKind::Ndarray);
        }
        if cfg!(feature = "flex") {
            v.push(BackendKind::Flex);
        }
        if cfg!(feature = "wgpu") {
            v.push(BackendKind::Wgpu);
        }
        v
    }

    /// The default backend: flex when compiled in (as in a default build), else ndarray, else
    /// wgpu. flex is the CPU default because it measured faster and, unlike ndarray, gave
    /// bit-identical runs for the same seed (ndarray's LeNet-5 runs differed in the 4th
    /// decimal and its convolutions were 6× slower); see ARCHITECTURE.md.
    pub fn default_compiled() -> anyhow::Result<BackendKind> {
        let compiled = Self::compiled();
        [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu]
            .into_iter()
            .find(|k| compiled.contains(k))
            .ok_or_else(|| anyhow::anyhow!("no backend compiled in: build with --features ndarray, flex or wgpu"))
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let kind = match s {
            "ndarray" | "cpu" => BackendKind::Ndarray,
            "flex" => BackendKind::Flex,
            "wgpu" | "gpu" => BackendKind::Wgpu,
            other => anyhow::bail!("unknown backend '{other}': expected ndarray, flex or wgpu"),
        };
        if !Self::compiled().contains(&kind) {
            anyhow::bail!(
                "backend '{kind}' is not compiled into this binary (compiled: {}); rebuild with `--features {kind}`",
                Self::compiled().iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
            );
        }
        Ok(kind)
    }
}

/// Checks, once per process, that wgpu can open its default device, so that a machine without
/// a GPU driver gets an error instead of a panic. burn-wgpu 0.21 has no fallible constructor:
/// without an adapter, cubecl's device thread panics and the caller dies on a closed channel
/// (`RecvError`). The probe runs a one-element computation with panics caught (and their
/// default report silenced) and turns a panic into an error that says what to install.
#[cfg(feature = "wgpu")]
pub fn probe_wgpu(device: &burn_wgpu::WgpuDevice) -> anyhow::Result<()> {
    use std::sync::OnceLock;
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = PROBED.get_or_init(|| {
        use std::sync::{Arc, Mutex};
        let device = device.clone();
        // The first panic message of any thread: the device thread's says what went wrong, the
        // caller's only that the channel closed.
        let first: Arc<Mutex<Option<String>>> = Arc::default();
        let record = first.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mut slot = record.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                let message = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                *slot = Some(message);
            }
        }));
        let result = std::panic::catch_unwind(move || {
            burn::tensor::Tensor::<burn_wgpu::Wgpu, 1>::zeros([1], &device).into_data();
        });
        std::panic::set_hook(previous);
        let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
        result.map_err(|_| first.unwrap_or_else(|| "unknown panic".into()))
    });
    outcome.clone().map_err(|reason| {
        anyhow::anyhow!(
            "--backend wgpu: wgpu could not open a GPU device ({reason}). It looks for Vulkan, Metal, DirectX 12 \
             or OpenGL drivers: install one (on Debian/Ubuntu without a GPU, `apt-get install mesa-vulkan-drivers` \
             gives a software Vulkan device) or use --backend flex"
        )
    })
}

/// Checks that `kind` can open its device, so that a command fails before any work rather than
/// in its first run. Only wgpu can fail (see `probe_wgpu`, built with the wgpu feature).
pub fn check_available(kind: BackendKind) -> anyhow::Result<()> {
    match kind {
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => probe_wgpu(&burn_wgpu::WgpuDevice::default()),
        _ => Ok(()),
    }
}

/// Runs `$body` with `$B` bound to the autodiff training backend of `$kind` and `$device` to
/// its default device (for wgpu, after `probe_wgpu`).
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, |$B:ident, $device:ident| $body:expr) => {{
        match $kind {
            #[cfg(feature = "ndarray")]
            $crate::backend::BackendKind::Ndarray => {
                type $B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;
                let $device = burn_ndarray::NdArrayDevice::default();
                $body
            }
            #[cfg(feature = "flex")]
            $crate::backend::BackendKind::Flex => {
                type $B = burn_autodiff::Autodiff<burn_flex::Flex>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::BackendKind::Wgpu => {
                type $B = burn_autodiff::Autodiff<burn_wgpu::Wgpu>;
                let $device = burn_wgpu::WgpuDevice::default();
                $crate::backend::probe_wgpu(&$device)?;
                $body
            }
            #[allow(unreachable_patterns)]
            other => anyhow::bail!("backend '{other}' is not compiled into this binary"),
        }
    }};
}
