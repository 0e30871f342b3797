//! Multi-layer perceptron 784 → [width] × depth → 10 with ReLU (the paper's MLPs).

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand_chacha::ChaCha8Rng;

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
        Self {
            hidden,
            output: Dense::new(fan_in, outputs, rng, device),
        }
    }

    /// Logits for inputs `[m, inputs]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = self
            .hidden
            .iter()
            .fold(x, |h, layer| relu(layer.forward(h)));
        self.output.forward(h)
    }

    /// The inputs of every affine layer (hidden ones and the output layer) and the logits:
    /// what natural-gradient methods need to form per-layer Gram matrices.
    pub fn forward_with_inputs(&self, x: Tensor<B, 2>) -> (Vec<Tensor<B, 2>>, Tensor<B, 2>) {
        let mut inputs = Vec::with_capacity(self.hidden.len() + 1);
        let mut h = x;
        for layer in &self.hidden {
            inputs.push(h.clone());
            h = relu(layer.forward(h));
        }
        inputs.push(h.clone());
        (inputs, self.output.forward(h))
    }
}
