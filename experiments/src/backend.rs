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

/// Runs `$body` with `$B` bound to the autodiff training backend of `$kind` and `$device` to
/// its default device.
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
                $body
            }
            #[allow(unreachable_patterns)]
            other => anyhow::bail!("backend '{other}' is not compiled into this binary"),
        }
    }};
}
