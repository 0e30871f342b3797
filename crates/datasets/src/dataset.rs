//! In-memory MNIST-family datasets: verified, parsed, normalised.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;

use crate::download::verify_file;
use crate::error::{DataError, Result};
use crate::idx::{parse_images, parse_labels, read_maybe_gzip};
use crate::manifest::Manifest;

/// Number of classes of every MNIST-family dataset.
pub const NUM_CLASSES: usize = 10;
/// Image side of every MNIST-family dataset.
pub const IMAGE_SIDE: usize = 28;

/// The datasets this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// MNIST handwritten digits (LeCun et al., 1998), `mnist`.
    Mnist,
    /// Fashion-MNIST clothing images (Xiao et al., 2017), `fashion-mnist`.
    FashionMnist,
}

impl DatasetKind {
    /// Every known dataset.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::FashionMnist];

    /// The name used in the manifest, on disk and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Examples in the published training and test files (what [`RawSplits::load`] reads):
    /// 60,000 and 10,000 for both datasets.
    pub fn published_sizes(self) -> (usize, usize) {
        (60_000, 10_000)
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fmnist" => Ok(DatasetKind::FashionMnist),
            other => Err(DataError::UnknownDataset(other.to_string())),
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where datasets live: `--data-dir` if given, else `$SLT_DATA_DIR`, else `<repo>/datasets`.
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("SLT_DATA_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets")
}

/// Labelled images, normalised: `images[i * dim .. (i + 1) * dim]` is example i,
/// `(pixel / 255 − mean) / std`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Flattened, normalised images, row-major, `len() × dim()` values.
    pub images: Vec<f32>,
    /// Labels in `0..NUM_CLASSES`.
    pub labels: Vec<u8>,
    /// Values per example (rows × cols).
    pub dim: usize,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset holds no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The examples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            images.extend_from_slice(&self.images[i * self.dim..(i + 1) * self.dim]);
        }
        Dataset { images, labels: indices.iter().map(|&i| self.labels[i]).collect(), dim: self.dim }
    }
}

/// The official train and test sets of one dataset.
#[derive(Debug, Clone)]
pub struct RawSplits {
    /// Which dataset these are.
    pub kind: DatasetKind,
    /// The published training set (60,000 examples).
    pub train: Dataset,
    /// The published test set (10,000 examples).
    pub test: Dataset,
}

/// How to cut training and validation data from the official splits.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitOptions {
    /// Hold out this many training examples as the validation set (instead of the official
    /// test set).
    pub val_from_train: Option<usize>,
    /// Keep only this many training examples (after the hold-out), chosen by seed.
    pub train_subset: Option<usize>,
    /// Keep only this many validation examples, chosen by seed.
    pub val_subset: Option<usize>,
    /// Seed of the random choices.
    pub seed: u64,
}

impl SplitOptions {
    /// The sizes of the training and validation sets [`RawSplits::split`] makes from published
    /// sets of `published` = (training, test) examples, without loading them (options it would
    /// refuse give the sizes it would have made).
    pub fn sizes(&self, (train, test): (usize, usize)) -> (usize, usize) {
        let (train, val) = match self.val_from_train {
            None => (train, test),
            Some(k) => (train.saturating_sub(k), k),
        };
        (self.train_subset.unwrap_or(train).min(train), self.val_subset.unwrap_or(val).min(val))
    }
}

/// Training and validation sets ready for use.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Which dataset these come from.
    pub kind: DatasetKind,
    /// The training set, after any hold-out and subsetting.
    pub train: Dataset,
    /// The validation set: the official test set, or the held-out training examples when
    /// [`SplitOptions::val_from_train`] is set; subset if asked.
    pub val: Dataset,
}

fn load_split(
    dir: &Path,
    images_file: &str,
    labels_file: &str,
    manifest: &crate::manifest::DatasetEntry,
) -> Result<Dataset> {
    let images_path = dir.join(images_file);
    let labels_path = dir.join(labels_file);
    for (path, file) in [(&images_path, images_file), (&labels_path, labels_file)] {
        let expected =
            manifest.files.get(file).ok_or_else(|| DataError::Manifest(format!("no checksum for {file}")))?;
        verify_file(path, expected)?;
    }
    let images = parse_images(&read_maybe_gzip(&images_path)?, &images_path)?;
    if images.rows != IMAGE_SIDE || images.cols != IMAGE_SIDE {
        return Err(DataError::BadDimensions {
            path: images_path,
            found: vec![images.count as u32, images.rows as u32, images.cols as u32],
            expected: format!("{IMAGE_SIDE}x{IMAGE_SIDE} images"),
        });
    }
    let labels = parse_labels(&read_maybe_gzip(&labels_path)?, &labels_path, NUM_CLASSES as u8)?;
    if labels.len() != images.count {
        return Err(DataError::CountMismatch {
            images: images_path,
            n_images: images.count,
            labels: labels_path,
            n_labels: labels.len(),
        });
    }
    let (mean, std) = (manifest.mean, manifest.std);
    let scale = 1.0 / (255.0 * std);
    let shift = mean / std;
    Ok(Dataset {
        images: images.pixels.iter().map(|&p| p as f32 * scale - shift).collect(),
        labels,
        dim: images.rows * images.cols,
    })
}

impl RawSplits {
    /// Loads `<data_dir>/<kind>/{train,t10k}-{images,labels}-idx?-ubyte.gz`, verifying each
    /// file's SHA-256 against the manifest before parsing it.
    pub fn load(kind: DatasetKind, data_dir: &Path) -> Result<Self> {
        let manifest = Manifest::builtin();
        let entry = manifest.dataset(kind.name())?;
        let dir = data_dir.join(kind.name());
        let train = load_split(&dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", entry)?;
        let test = load_split(&dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", entry)?;
        Ok(RawSplits { kind, train, test })
    }

    /// Cuts training and validation sets as `options` says.
    pub fn split(&self, options: &SplitOptions) -> Result<Splits> {
        let mut rng = slt_core::seed::rng_for(options.seed, &[slt_core::seed::stream::SUBSET]);
        let (train, val) = match options.val_from_train {
            None => (self.train.clone(), self.test.clone()),
            Some(k) => {
                if k == 0 || k >= self.train.len() {
                    return Err(DataError::InvalidSplit(format!(
                        "val_from_train = {k} must be in 1..{}",
                        self.train.len()
                    )));
                }
                let mut order: Vec<usize> = (0..self.train.len()).collect();
                order.shuffle(&mut rng);
                let (val_idx, train_idx) = order.split_at(k);
                (self.train.select(train_idx), self.train.select(val_idx))
            }
        };
        let train = subset(train, options.train_subset, &mut rng, "train_subset")?;
        let val = subset(val, options.val_subset, &mut rng, "val_subset")?;
        Ok(Splits { kind: self.kind, train, val })
    }
}

fn subset(data: Dataset, keep: Option<usize>, rng: &mut rand_chacha::ChaCha8Rng, what: &str) -> Result<Dataset> {
    match keep {
        None => Ok(data),
        Some(k) if k == 0 || k > data.len() => {
            Err(DataError::InvalidSplit(format!("{what} = {k} must be in 1..={}", data.len())))
        }
        Some(k) if k == data.len() => Ok(data),
        Some(k) => {
            let mut order: Vec<usize> = (0..data.len()).collect();
            order.shuffle(rng);
            let mut chosen = order[..k].to_vec();
            chosen.sort_unstable();
            Ok(data.select(&chosen))
        }
    }
}
