//! Deterministic shuffling and batching.
//!
//! Epoch e of a run with seed s visits the training set in the order of a Fisher–Yates
//! shuffle driven by the child seed (s, SHUFFLE, e): the same seed gives the same batches on
//! every machine, and a resumed run sees exactly the batches it would have seen.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use slt_core::seed::{rng_for, stream};

use crate::dataset::{Dataset, NUM_CLASSES};

/// A batch of classification examples on a device.
#[derive(Debug, Clone)]
pub struct ClassificationBatch<B: Backend> {
    /// Inputs, `[m, dim]` (images flattened row-major).
    pub inputs: Tensor<B, 2>,
    /// Labels, `[m]`.
    pub targets: Tensor<B, 1, Int>,
    /// One-hot labels, `[m, classes]` (lets losses avoid `gather`, which nested autodiff lacks).
    pub one_hot: Tensor<B, 2>,
}

impl<B: Backend> ClassificationBatch<B> {
    /// Number of examples m.
    pub fn len(&self) -> usize {
        self.inputs.dims()[0]
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Dataset`] held on a device: a batch is cut there by `select` with the batch's indices,
/// so each batch uploads index vectors instead of assembling and uploading m examples
/// (m × (dim + 11) values). For GPU backends, where each upload is a transfer; on a CPU backend
/// both cost a copy of the rows.
///
/// The examples are stored in chunks of at most [`DeviceDataset::MAX_CHUNK_BYTES`] of inputs:
/// wgpu limits one storage buffer binding to 128 MiB by default, and all of MNIST's training
/// inputs are 188 MB in f32 (a single tensor made cubecl panic on Mesa's lavapipe: "can't
/// allocate buffer of size: 188160000"). A batch selects from each chunk it touches, concatenates
/// the parts and restores the order of `indices` with one more `select`: the upload is then
/// (chunks touched + 1) index vectors of at most m integers.
#[derive(Debug, Clone)]
pub struct DeviceDataset<B: Backend> {
    chunks: Vec<ClassificationBatch<B>>,
    chunk_rows: usize,
    len: usize,
}

fn index_tensor<B: Backend>(indices: impl Iterator<Item = usize>, device: &B::Device) -> Tensor<B, 1, Int> {
    let values: Vec<i64> = indices.map(|i| i as i64).collect();
    let m = values.len();
    Tensor::from_data(TensorData::new(values, [m]), device)
}

impl<B: Backend> DeviceDataset<B> {
    /// The largest chunk of inputs held in one tensor (64 MiB).
    pub const MAX_CHUNK_BYTES: usize = 64 << 20;

    /// Number of examples n.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of chunks the examples are stored in.
    pub fn num_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// The examples at `indices`: the same batch as [`Dataset::batch`] gives. Panics if an
    /// index is out of range.
    pub fn batch(&self, indices: &[usize]) -> ClassificationBatch<B> {
        assert!(indices.iter().all(|&i| i < self.len), "index out of range for {} examples", self.len);
        if let [only] = self.chunks.as_slice() {
            let idx = index_tensor::<B>(indices.iter().copied(), &only.inputs.device());
            return select_rows(only, idx);
        }
        // Group by chunk (stable), select per chunk, concatenate, then put the rows back in the
        // order of `indices`.
        let mut by_chunk: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.chunks.len()];
        for (position, &i) in indices.iter().enumerate() {
            by_chunk[i / self.chunk_rows].push((position, i % self.chunk_rows));
        }
        let mut parts = Vec::new();
        let mut row_of_position = vec![0usize; indices.len()];
        let mut row = 0;
        for (chunk, members) in self.chunks.iter().zip(&by_chunk) {
            if members.is_empty() {
                continue;
            }
            for &(position, _) in members {
                row_of_position[position] = row;
                row += 1;
            }
            let idx = index_tensor::<B>(members.iter().map(|&(_, local)| local), &chunk.inputs.device());
            parts.push(select_rows(chunk, idx));
        }
        let device = self.chunks[0].inputs.device();
        let joined = ClassificationBatch {
            inputs: Tensor::cat(parts.iter().map(|p| p.inputs.clone()).collect(), 0),
            targets: Tensor::cat(parts.iter().map(|p| p.targets.clone()).collect(), 0),
            one_hot: Tensor::cat(parts.iter().map(|p| p.one_hot.clone()).collect(), 0),
        };
        if parts.len() == 1 && row_of_position.iter().enumerate().all(|(p, &r)| p == r) {
            return joined;
        }
        select_rows(&joined, index_tensor::<B>(row_of_position.into_iter(), &device))
    }
}

fn select_rows<B: Backend>(batch: &ClassificationBatch<B>, idx: Tensor<B, 1, Int>) -> ClassificationBatch<B> {
    ClassificationBatch {
        inputs: batch.inputs.clone().select(0, idx.clone()),
        targets: batch.targets.clone().select(0, idx.clone()),
        one_hot: batch.one_hot.clone().select(0, idx),
    }
}

/// The visiting order of `n` examples in epoch `epoch` of a run with seed `seed`.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng_for(seed, &[stream::SHUFFLE, epoch]));
    order
}

impl Dataset {
    /// The examples at `indices` as a batch on `device`.
    pub fn batch<B: Backend>(&self, indices: &[usize], device: &B::Device) -> ClassificationBatch<B> {
        let m = indices.len();
        let mut inputs = Vec::with_capacity(m * self.dim);
        let mut targets = Vec::with_capacity(m);
        let mut one_hot = vec![0f32; m * NUM_CLASSES];
        for (row, &i) in indices.iter().enumerate() {
            inputs.extend_from_slice(&self.images[i * self.dim..(i + 1) * self.dim]);
            let label = self.labels[i] as usize;
            targets.push(label as i64);
            one_hot[row * NUM_CLASSES + label] = 1.0;
        }
        ClassificationBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [m, self.dim]), device),
            targets: Tensor::from_data(TensorData::new(targets, [m]), device),
            one_hot: Tensor::from_data(TensorData::new(one_hot, [m, NUM_CLASSES]), device),
        }
    }

    /// The whole data set on `device`, to cut batches there (see [`DeviceDataset`]), in chunks
    /// of at most [`DeviceDataset::MAX_CHUNK_BYTES`] of inputs.
    pub fn to_device<B: Backend>(&self, device: &B::Device) -> DeviceDataset<B> {
        let rows = (DeviceDataset::<B>::MAX_CHUNK_BYTES / (4 * self.dim.max(1))).max(1);
        self.to_device_in_chunks(device, rows)
    }

    /// [`Dataset::to_device`] with chunks of `chunk_rows` examples (at least 1).
    pub fn to_device_in_chunks<B: Backend>(&self, device: &B::Device, chunk_rows: usize) -> DeviceDataset<B> {
        let chunk_rows = chunk_rows.max(1);
        let all: Vec<usize> = (0..self.len()).collect();
        let chunks = all.chunks(chunk_rows).map(|rows| self.batch(rows, device)).collect();
        DeviceDataset { chunks, chunk_rows, len: self.len() }
    }

    /// The index chunks of one epoch: `epoch_order` cut into batches of `batch_size`
    /// (the last one smaller unless `drop_last`).
    pub fn epoch_batches(&self, batch_size: usize, seed: u64, epoch: u64, drop_last: bool) -> Vec<Vec<usize>> {
        assert!(batch_size > 0, "batch size must be positive");
        epoch_order(self.len(), seed, epoch)
            .chunks(batch_size)
            .filter(|c| !drop_last || c.len() == batch_size)
            .map(|c| c.to_vec())
            .collect()
    }

    /// Consecutive batches in index order (for evaluation).
    pub fn sequential_batches(&self, batch_size: usize) -> Vec<Vec<usize>> {
        assert!(batch_size > 0, "batch size must be positive");
        (0..self.len()).collect::<Vec<_>>().chunks(batch_size).map(|c| c.to_vec()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        Dataset {
            images: (0..n * 2).map(|v| v as f32).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            dim: 2,
        }
    }

    #[test]
    fn order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 0);
        assert_eq!(a, epoch_order(100, 7, 0));
        assert_ne!(a, epoch_order(100, 7, 1));
        assert_ne!(a, epoch_order(100, 8, 0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn batches_cover_the_epoch() {
        let d = toy(10);
        let b = d.epoch_batches(4, 1, 0, false);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert_eq!(d.epoch_batches(4, 1, 0, true).len(), 2);
    }

    #[test]
    fn device_batches_equal_host_batches() {
        type B = burn_ndarray::NdArray<f32>;
        let data = toy(5);
        let on_device = data.to_device::<B>(&Default::default());
        assert_eq!(on_device.len(), data.len());
        assert_eq!(on_device.num_chunks(), 1);
        let idx = [3, 0, 4, 4];
        let (a, b) = (data.batch::<B>(&idx, &Default::default()), on_device.batch(&idx));
        assert_eq!(a.inputs.into_data(), b.inputs.into_data());
        assert_eq!(a.targets.into_data(), b.targets.into_data());
        assert_eq!(a.one_hot.into_data(), b.one_hot.into_data());
    }

    /// Chunked storage (as for data over 64 MiB) gives the same batches, in the same order,
    /// whatever chunks the indices fall in.
    #[test]
    fn chunked_device_batches_equal_host_batches() {
        type B = burn_ndarray::NdArray<f32>;
        let data = toy(11);
        for chunk_rows in [1, 2, 3, 4, 11, 20] {
            let on_device = data.to_device_in_chunks::<B>(&Default::default(), chunk_rows);
            assert_eq!(on_device.num_chunks(), 11usize.div_ceil(chunk_rows));
            for idx in [vec![10, 0, 5, 5, 3, 9], vec![1, 2], vec![7], vec![6, 2, 9, 0, 1, 3, 4, 5, 7, 8, 10]] {
                let (a, b) = (data.batch::<B>(&idx, &Default::default()), on_device.batch(&idx));
                assert_eq!(a.inputs.into_data(), b.inputs.into_data(), "chunks of {chunk_rows}, {idx:?}");
                assert_eq!(a.targets.into_data(), b.targets.into_data());
                assert_eq!(a.one_hot.into_data(), b.one_hot.into_data());
            }
        }
    }

    #[test]
    fn batch_tensors_hold_the_examples() {
        type B = burn_ndarray::NdArray<f32>;
        let d = toy(5);
        let batch = d.batch::<B>(&[3, 1], &Default::default());
        assert_eq!(batch.inputs.into_data().to_vec::<f32>().unwrap(), vec![6.0, 7.0, 2.0, 3.0]);
        assert_eq!(batch.targets.into_data().iter::<i64>().collect::<Vec<_>>(), vec![3, 1]);
        let oh = batch.one_hot.into_data().to_vec::<f32>().unwrap();
        assert_eq!(oh[3], 1.0);
        assert_eq!(oh[10 + 1], 1.0);
        assert_eq!(oh.iter().sum::<f32>(), 2.0);
    }
}
