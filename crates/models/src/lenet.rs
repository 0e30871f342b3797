//! LeNet-5 as the paper's code has it: conv 1→6 k5 (+ `extra_conv` × conv 6→6 k5 pad 2), ReLU,
//! max-pool 2, conv 6→16 k5, ReLU, max-pool 2, fc 256→120→84→10 with ReLU between.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand_chacha::ChaCha8Rng;
use slt_core::layer_ops::{LayerOps, Plain, TappedModel};

use crate::layers::{Conv, Dense};

/// LeNet-5 for 1×28×28 inputs given flattened as `[m, 784]`.
#[derive(Module, Debug)]
pub struct LeNet5<B: Backend> {
    /// First convolution, 1→6 channels, 5×5 kernel, no padding (28×28 → 24×24).
    pub conv1: Conv<B>,
    /// Extra 6→6 convolutions (k5, pad 2) after `conv1`, each followed by ReLU.
    pub extra: Vec<Conv<B>>,
    /// Second convolution, 6→16 channels, 5×5 kernel, no padding (12×12 → 8×8).
    pub conv2: Conv<B>,
    /// Fully connected 256→120 (16 channels × 4 × 4 after the second pool), ReLU after.
    pub fc1: Dense<B>,
    /// Fully connected 120→84, ReLU after.
    pub fc2: Dense<B>,
    /// Output layer 84→10, giving the logits.
    pub fc3: Dense<B>,
}

impl<B: Backend> LeNet5<B> {
    /// A fresh LeNet-5 with `extra_conv` extra convolutions.
    pub fn new(extra_conv: usize, rng: &mut ChaCha8Rng, device: &B::Device) -> Self {
        let conv1 = Conv::new(1, 6, 5, 0, rng, device);
        let extra = (0..extra_conv).map(|_| Conv::new(6, 6, 5, 2, rng, device)).collect();
        Self {
            conv1,
            extra,
            conv2: Conv::new(6, 16, 5, 0, rng, device),
            fc1: Dense::new(16 * 4 * 4, 120, rng, device),
            fc2: Dense::new(120, 84, rng, device),
            fc3: Dense::new(84, 10, rng, device),
        }
    }

    /// Logits for inputs `[m, 784]` (28×28 images, row-major).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_ops(x, &mut Plain)
    }
}

impl<B: Backend> TappedModel<B, Tensor<B, 2>> for LeNet5<B> {
    fn forward_ops<O: LayerOps<B>>(&self, x: Tensor<B, 2>, ops: &mut O) -> Tensor<B, 2> {
        let m = x.dims()[0];
        let x = x.reshape([m, 1, 28, 28]);
        let mut h = self.conv1.forward_ops(x, ops);
        h = ops.relu(h);
        for conv in &self.extra {
            let z = conv.forward_ops(h, ops);
            h = ops.relu(z);
        }
        let h = ops.max_pool_2x2(h);
        let z = self.conv2.forward_ops(h, ops);
        let h = ops.relu(z);
        let h = ops.max_pool_2x2(h).reshape([m, 16 * 4 * 4]);
        let z = self.fc1.forward_ops(h, ops);
        let h = ops.relu(z);
        let z = self.fc2.forward_ops(h, ops);
        let h = ops.relu(z);
        self.fc3.forward_ops(h, ops)
    }
}
