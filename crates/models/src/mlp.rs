//! Multi-layer perceptron 784 → \[width\] × depth → 10 with ReLU (the paper's MLPs).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand_chacha::ChaCha8Rng;
use slt_core::layer_ops::{LayerOps, Plain, TappedModel};

use crate::layers::Dense;

/// `inputs → width (× depth, ReLU) → outputs`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// Hidden layers, each followed by ReLU.
    pub hidden: Vec<Dense<B>>,
    /// Output layer (logits).
    pub output: Dense<B>,
}

impl<B: Backend> Mlp<B> {
    /// A fresh MLP with PyTorch's default initialisation drawn from `rng`.
    pub fn new(
        inputs: usize,
        depth: usize,
        width: usize,
        outputs: usize,
        rng: &mut ChaCha8Rng,
        device: &B::Device,
    ) -> Self {
        let mut hidden = Vec::with_capacity(depth);
        let mut fan_in = inputs;
        for _ in 0..depth {
            hidden.push(Dense::new(fan_in, width, rng, device));
            fan_in = width;
        }
        Self { hidden, output: Dense::new(fan_in, outputs, rng, device) }
    }

    /// Logits for inputs `[m, inputs]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_ops(x, &mut Plain)
    }
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for Mlp<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        let h = self.hidden.iter().fold(x, |h, layer| {
            let z = layer.forward_ops(h, ops);
            ops.relu(z)
        });
        self.output.forward_ops(h, ops)
    }
}
