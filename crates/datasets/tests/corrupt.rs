//! Every kind of bad input gives its own error, naming the file.

mod common;

use std::path::{Path, PathBuf};

use slt_datasets::idx::{encode_images, encode_labels, parse_images, parse_labels, read_maybe_gzip, IdxImages};
use slt_datasets::{DataError, DatasetKind, RawSplits};

fn images(count: usize) -> IdxImages {
    IdxImages { count, rows: 28, cols: 28, pixels: (0..count * 784).map(|i| (i % 256) as u8).collect() }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn parse_images_file(path: &Path) -> Result<IdxImages, DataError> {
    parse_images(&read_maybe_gzip(path)?, path)
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = encode_images(&images(3));
    bytes.truncate(16 + 784 * 2 + 100);
    let p = write(dir.path(), "trunc-images.idx", &bytes);
    let err = parse_images_file(&p).unwrap_err();
    assert!(matches!(err, DataError::LengthMismatch { expected: 2352, actual: 1668, .. }), "{err}");
    assert!(err.to_string().contains("trunc-images.idx"), "{err}");
    // Shorter than the header.
    let p = write(dir.path(), "tiny.idx", &bytes[..10]);
    let err = parse_images_file(&p).unwrap_err();
    assert!(matches!(err, DataError::TruncatedHeader { len: 10, header: 16, .. }), "{err}");
    assert!(err.to_string().contains("tiny.idx"));
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    // A label file where images are expected, and vice versa.
    let p = write(dir.path(), "labels-as-images.idx", &encode_labels(&[1, 2]));
    let err = parse_images_file(&p).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { found: 2049, expected: 2051, .. }), "{err}");
    assert!(err.to_string().contains("labels-as-images.idx"));
    let p = write(dir.path(), "images-as-labels.idx", &encode_images(&images(1)));
    let err = parse_labels(&read_maybe_gzip(&p).unwrap(), &p, 10).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { found: 2051, expected: 2049, .. }), "{err}");
}

#[test]
fn count_does_not_match_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = encode_labels(&[1, 2, 3]);
    bytes[7] = 5; // header says 5 labels, 3 follow
    let p = write(dir.path(), "short-labels.idx", &bytes);
    let err = parse_labels(&read_maybe_gzip(&p).unwrap(), &p, 10).unwrap_err();
    assert!(matches!(err, DataError::LengthMismatch { expected: 5, actual: 3, .. }), "{err}");
    assert!(err.to_string().contains("short-labels.idx"));
    // Padding is rejected too.
    let mut bytes = encode_labels(&[1, 2, 3]);
    bytes.push(0);
    let p = write(dir.path(), "padded-labels.idx", &bytes);
    assert!(matches!(
        parse_labels(&read_maybe_gzip(&p).unwrap(), &p, 10).unwrap_err(),
        DataError::LengthMismatch { expected: 3, actual: 4, .. }
    ));
}

#[test]
fn broken_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = common::gzip(&encode_images(&images(4)));
    let n = gz.len();
    gz.truncate(n / 2);
    let p = write(dir.path(), "broken.idx.gz", &gz);
    let err = parse_images_file(&p).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert!(err.to_string().contains("broken.idx.gz"));
    // A corrupted byte in the middle of the deflate stream (CRC check catches it).
    let mut gz = common::gzip(&encode_images(&images(4)));
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    let p = write(dir.path(), "flipped.idx.gz", &gz);
    assert!(matches!(parse_images_file(&p).unwrap_err(), DataError::Gzip { .. }));
}

#[test]
fn gzip_and_raw_parse_alike() {
    let dir = tempfile::tempdir().unwrap();
    let raw = encode_images(&images(2));
    let a = write(dir.path(), "a.idx", &raw);
    let b = write(dir.path(), "b.idx.gz", &common::gzip(&raw));
    assert_eq!(parse_images_file(&a).unwrap(), parse_images_file(&b).unwrap());
}

/// A copy of the real MNIST files in a temporary data dir, with `file` replaced by `bytes`
/// (or removed).
fn data_dir_with(file: &str, bytes: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    slt_datasets::testing::copy_with_replacement("mnist", dir.path(), file, bytes).unwrap();
    dir
}

#[test]
fn checksum_mismatch() {
    let good = std::fs::read(common::real_data_dir().join("mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    // A valid gzip of valid IDX labels that is simply not the published file.
    let other = common::gzip(&encode_labels(&vec![1u8; 10_000]));
    assert_ne!(good, other);
    let dir = data_dir_with("t10k-labels-idx1-ubyte.gz", Some(&other));
    let err = RawSplits::load(DatasetKind::Mnist, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte.gz") && msg.contains("SHA-256"), "{msg}");
}

#[test]
fn missing_file() {
    let dir = data_dir_with("train-images-idx3-ubyte.gz", None);
    let err = RawSplits::load(DatasetKind::Mnist, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("train-images-idx3-ubyte.gz") && msg.contains("fetch-data"), "{msg}");
}
