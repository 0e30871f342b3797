//! The real MNIST and Fashion-MNIST files parse, verify and normalise as published.

mod common;

use slt_datasets::{DatasetKind, RawSplits, SplitOptions};

fn load(kind: DatasetKind) -> RawSplits {
    let dir = common::real_data_dir();
    RawSplits::load(kind, &dir).unwrap_or_else(|e| {
        panic!("the real {kind} files must be present ({e}); set SLT_DATA_DIR or run `cargo xtask fetch-data`")
    })
}

fn raw_sizes(raw: &RawSplits) -> (usize, usize) {
    (raw.train.len(), raw.test.len())
}

#[test]
fn mnist_parses_with_published_counts_and_labels() {
    let raw = load(DatasetKind::Mnist);
    assert_eq!(raw.train.len(), 60_000);
    assert_eq!(raw.test.len(), 10_000);
    assert_eq!((raw.train.len(), raw.test.len()), DatasetKind::Mnist.published_sizes());
    assert_eq!(raw.train.dim, 784);
    assert_eq!(raw.train.labels[0], 5);
    assert_eq!(raw.test.labels[0], 7);
    // Normalised with the published mean/std: the training pixels have mean ≈ 0, std ≈ 1.
    let n = raw.train.images.len() as f64;
    let mean = raw.train.images.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = raw.train.images.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 1e-3, "mean {mean}");
    assert!((var.sqrt() - 1.0).abs() < 1e-3, "std {}", var.sqrt());
    // Every class is present in both splits.
    for split in [&raw.train, &raw.test] {
        let mut seen = [0usize; 10];
        split.labels.iter().for_each(|&l| seen[l as usize] += 1);
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }
}

#[test]
fn fashion_mnist_parses_with_published_counts_and_labels() {
    let raw = load(DatasetKind::FashionMnist);
    assert_eq!(raw.train.len(), 60_000);
    assert_eq!(raw.test.len(), 10_000);
    assert_eq!((raw.train.len(), raw.test.len()), DatasetKind::FashionMnist.published_sizes());
    assert_eq!(raw.train.labels[0], 9);
    assert_eq!(raw.test.labels[0], 9);
    let n = raw.train.images.len() as f64;
    let mean = raw.train.images.iter().map(|&v| v as f64).sum::<f64>() / n;
    assert!(mean.abs() < 1e-3, "mean {mean}");
}

#[test]
fn splits_and_subsets_are_seeded() {
    let raw = load(DatasetKind::Mnist);
    let opts = SplitOptions { val_from_train: Some(5000), train_subset: Some(1000), val_subset: None, seed: 3 };
    let a = raw.split(&opts).unwrap();
    assert_eq!((a.train.len(), a.val.len()), (1000, 5000));
    assert_eq!(opts.sizes(DatasetKind::Mnist.published_sizes()), (1000, 5000));
    let b = raw.split(&opts).unwrap();
    assert_eq!(a.train.labels, b.train.labels);
    assert_eq!(a.val.images, b.val.images);
    let c = raw.split(&SplitOptions { seed: 4, ..opts.clone() }).unwrap();
    assert_ne!(a.train.labels, c.train.labels);
    // Default: the official test set validates.
    let d = raw.split(&SplitOptions::default()).unwrap();
    assert_eq!((d.train.len(), d.val.len()), (60_000, 10_000));
    assert_eq!(SplitOptions::default().sizes(raw_sizes(&raw)), (60_000, 10_000));
    let e = raw.split(&SplitOptions { val_subset: Some(700), ..Default::default() }).unwrap();
    assert_eq!(
        (e.train.len(), e.val.len()),
        SplitOptions { val_subset: Some(700), ..Default::default() }.sizes(raw_sizes(&raw))
    );
    assert!(raw.split(&SplitOptions { train_subset: Some(70_000), ..Default::default() }).is_err());
}
