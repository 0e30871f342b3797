//! Model names as the command line and the experiment configs write them:
//! `mlp-<depth>x<width>` (e.g. `mlp-2x256`), `lenet5`, `lenet5-e<k>` (k extra convolutions).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use slt_core::layer_ops::{LayerOps, TappedModel};

use crate::lenet::LeNet5;
use crate::mlp::Mlp;

/// Input size of the MNIST-family models (28 × 28).
pub const INPUTS: usize = 784;
/// Number of classes.
pub const CLASSES: usize = 10;

/// A model name that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown model '{0}': expected mlp-<depth>x<width> with width ≥ 1 (e.g. mlp-2x256; the linear model is mlp-0x1), lenet5 or lenet5-e<k>")]
pub struct UnknownModel(pub String);

/// Which classifier to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelSpec {
    /// MLP with `depth` hidden layers of `width` units.
    Mlp {
        /// Number of hidden layers (0: the linear model 784→10).
        depth: usize,
        /// Units per hidden layer (≥ 1; 1 when `depth` is 0).
        width: usize,
    },
    /// LeNet-5 with `extra_conv` extra convolutions.
    LeNet5 {
        /// Number of extra 6→6 convolutions after the first (the `k` of `lenet5-e<k>`).
        extra_conv: usize,
    },
}

impl std::str::FromStr for ModelSpec {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, UnknownModel> {
        let bad = || UnknownModel(s.to_string());
        if let Some(rest) = s.strip_prefix("mlp-") {
            let (d, w) = rest.split_once('x').ok_or_else(bad)?;
            let depth: usize = d.parse().map_err(|_| bad())?;
            let width: usize = w.parse().map_err(|_| bad())?;
            if width == 0 || (depth == 0 && width != 1) {
                // A depth-0 MLP is the linear model: a width would be silently ignored.
                return Err(bad());
            }
            return Ok(ModelSpec::Mlp { depth, width });
        }
        if s == "lenet5" {
            return Ok(ModelSpec::LeNet5 { extra_conv: 0 });
        }
        if let Some(k) = s.strip_prefix("lenet5-e") {
            let extra_conv = k.parse().map_err(|_| bad())?;
            return Ok(ModelSpec::LeNet5 { extra_conv });
        }
        Err(bad())
    }
}

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSpec::Mlp { depth, width } => write!(f, "mlp-{depth}x{width}"),
            ModelSpec::LeNet5 { extra_conv: 0 } => write!(f, "lenet5"),
            ModelSpec::LeNet5 { extra_conv } => write!(f, "lenet5-e{extra_conv}"),
        }
    }
}

impl serde::Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl ModelSpec {
    /// Number of parameters d (without building the model).
    pub fn num_params(&self) -> usize {
        match *self {
            ModelSpec::Mlp { depth, width } => {
                let mut fan_in = INPUTS;
                let mut d = 0;
                for _ in 0..depth {
                    d += fan_in * width + width;
                    fan_in = width;
                }
                d + fan_in * CLASSES + CLASSES
            }
            ModelSpec::LeNet5 { extra_conv } => {
                (6 * 25 + 6)
                    + extra_conv * (6 * 6 * 25 + 6)
                    + (16 * 6 * 25 + 16)
                    + (256 * 120 + 120)
                    + (120 * 84 + 84)
                    + (84 * CLASSES + CLASSES)
            }
        }
    }

    /// Builds the model with parameters drawn from `seed` (identical on every backend).
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Classifier<B> {
        let mut rng = slt_core::seed::rng_for(seed, &[slt_core::seed::stream::INIT]);
        match *self {
            ModelSpec::Mlp { depth, width } => {
                Classifier::Mlp(Mlp::new(INPUTS, depth, width, CLASSES, &mut rng, device))
            }
            ModelSpec::LeNet5 { extra_conv } => Classifier::LeNet5(LeNet5::new(extra_conv, &mut rng, device)),
        }
    }
}

/// Any of this crate's MNIST-family classifiers.
// One model is held at a time, so the size of the larger variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Classifier<B: Backend> {
    /// A multilayer perceptron ([`ModelSpec::Mlp`]).
    Mlp(Mlp<B>),
    /// A LeNet-5 ([`ModelSpec::LeNet5`]).
    LeNet5(LeNet5<B>),
}

impl<B: Backend> Classifier<B> {
    /// Logits `[m, 10]` for inputs `[m, 784]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Classifier::Mlp(m) => m.forward(x),
            Classifier::LeNet5(m) => m.forward(x),
        }
    }
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Classifier<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        match self {
            Classifier::Mlp(m) => m.forward_ops(x, ops),
            Classifier::LeNet5(m) => m.forward_ops(x, ops),
        }
    }
}
