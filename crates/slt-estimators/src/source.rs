//! Where minibatches come from: any indexable dataset.

/// A dataset of `num_examples()` examples from which batches are cut by index.
pub trait BatchSource<D>: Sync {
    /// n, the number of training examples.
    fn num_examples(&self) -> usize;
    /// The batch of the examples at `indices`.
    fn batch(&self, indices: &[usize]) -> D;
}

/// A [`BatchSource`] from a size and a closure.
pub struct FnSource<F> {
    n: usize,
    make: F,
}

impl<F> FnSource<F> {
    /// `n` examples; `make(indices)` builds a batch.
    pub fn new(n: usize, make: F) -> Self {
        Self { n, make }
    }
}

impl<D, F: Fn(&[usize]) -> D + Sync> BatchSource<D> for FnSource<F> {
    fn num_examples(&self) -> usize {
        self.n
    }
    fn batch(&self, indices: &[usize]) -> D {
        (self.make)(indices)
    }
}

/// A [`BatchSource`] over burn's own data pipeline: the examples of a
/// [`Dataset`](burn::data::dataset::Dataset), batched by a
/// [`Batcher`](burn::data::dataloader::batcher::Batcher) onto `device` — the two pieces a burn
/// training loop already has. SGLD draws its own minibatch indices (seeded per chain), so the
/// `DataLoader`'s shuffling and worker threads are not used.
///
/// Indices past the end of the dataset are a caller's bug (the sampler draws from
/// `0..num_examples()`), and `batch` panics naming the index.
#[cfg(feature = "burn-dataset")]
pub struct DatasetSource<'a, B: burn::tensor::backend::Backend, I, O> {
    dataset: &'a dyn burn::data::dataset::Dataset<I>,
    batcher: &'a dyn burn::data::dataloader::batcher::Batcher<B, I, O>,
    device: B::Device,
}

#[cfg(feature = "burn-dataset")]
impl<'a, B: burn::tensor::backend::Backend, I, O> DatasetSource<'a, B, I, O> {
    /// Batches of `dataset`'s items made by `batcher` on `device`.
    pub fn new(
        dataset: &'a dyn burn::data::dataset::Dataset<I>,
        batcher: &'a dyn burn::data::dataloader::batcher::Batcher<B, I, O>,
        device: B::Device,
    ) -> Self {
        Self { dataset, batcher, device }
    }
}

#[cfg(feature = "burn-dataset")]
impl<B: burn::tensor::backend::Backend, I, O> BatchSource<O> for DatasetSource<'_, B, I, O> {
    fn num_examples(&self) -> usize {
        self.dataset.len()
    }
    fn batch(&self, indices: &[usize]) -> O {
        let items = indices
            .iter()
            .map(|&i| {
                self.dataset.get(i).unwrap_or_else(|| {
                    panic!("DatasetSource: index {i} is outside the dataset of {} items", self.dataset.len())
                })
            })
            .collect();
        self.batcher.batch(items, &self.device)
    }
}
