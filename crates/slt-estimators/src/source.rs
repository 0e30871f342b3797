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
