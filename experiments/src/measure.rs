//! Measurements of a trained classifier on its data: the glue between the MNIST-family data,
//! the models and the estimator crates.

use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use slt_datasets::{ClassificationBatch, Dataset};
use slt_estimators::{estimate_llc, EstimatorError, FnSource, LlcEstimate, SgldConfig};
use slt_models::loss::cross_entropy;
use slt_models::Classifier;

/// The mean cross-entropy of a classifier on a batch: the loss every measurement uses.
pub fn classifier_loss<B: AutodiffBackend>(model: &Classifier<B>, batch: &ClassificationBatch<B>) -> burn::tensor::Tensor<B, 1> {
    cross_entropy(model.forward(batch.inputs.clone()), batch.one_hot.clone())
}

/// λ̂ of `model` on the training set `train`, with a progress bar when `show_progress`.
pub fn llc_of_classifier<B: AutodiffBackend>(
    model: &Classifier<B>,
    train: &Dataset,
    config: &SgldConfig,
    device: &B::Device,
    show_progress: bool,
) -> Result<LlcEstimate, EstimatorError> {
    let source = FnSource::new(train.len(), |idx: &[usize]| train.batch::<B>(idx, device));
    let bar = if show_progress {
        let bar = ProgressBar::new((config.num_chains * config.steps_per_chain()) as u64);
        bar.set_style(
            ProgressStyle::with_template("SGLD [{bar:30}] {pos}/{len} steps {per_sec:>12} ETA {eta:>4}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let tick = || bar.inc(1);
    let estimate = estimate_llc(model, &source, &classifier_loss::<B>, config, Some(&tick));
    bar.finish_and_clear();
    estimate
}
