//! The data layer's typed errors. Every variant names the file it is about.

use std::path::PathBuf;

/// Everything that can go wrong reading, verifying or downloading a dataset file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file is not there.
    #[error("{path}: file not found ({hint})")]
    Missing { path: PathBuf, hint: String },
    /// Reading or writing failed. The OS error is part of the message and deliberately not a
    /// `source()`, so that printing the error chain (`{:#}`) does not say it twice.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    /// The gzip stream is corrupt or truncated (the decoder's error is part of the message).
    #[error("{path}: broken gzip stream: {error}")]
    Gzip { path: PathBuf, error: std::io::Error },
    /// The file is shorter than an IDX header.
    #[error("{path}: truncated IDX file: {len} bytes, shorter than the {header}-byte header")]
    TruncatedHeader { path: PathBuf, len: usize, header: usize },
    /// The magic number is not the expected one.
    #[error("{path}: wrong IDX magic number {found} (0x{found:08x}); expected {expected} ({what})")]
    BadMagic { path: PathBuf, found: u32, expected: u32, what: &'static str },
    /// Header dimensions are not the expected ones.
    #[error("{path}: unexpected IDX dimensions {found:?}; expected {expected}")]
    BadDimensions { path: PathBuf, found: Vec<u32>, expected: String },
    /// The payload length does not match the counts in the header.
    #[error(
        "{path}: IDX header promises {expected} payload bytes but the file holds {actual} (truncated or padded file)"
    )]
    LengthMismatch { path: PathBuf, expected: usize, actual: usize },
    /// A label is outside 0..classes.
    #[error("{path}: label {value} at index {index} is outside 0..{classes}")]
    LabelOutOfRange { path: PathBuf, index: usize, value: u8, classes: u8 },
    /// Image and label files disagree on the number of examples.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch { images: PathBuf, n_images: usize, labels: PathBuf, n_labels: usize },
    /// The file's SHA-256 is not the manifest's.
    #[error("{path}: SHA-256 mismatch: expected {expected}, got {actual} (corrupt or wrong file; delete it and run `cargo xtask fetch-data`)")]
    Checksum { path: PathBuf, expected: String, actual: String },
    /// Every source failed for a file.
    #[error("could not fetch {file}: every source failed:\n  {}", attempts.join("\n  "))]
    Download { file: String, attempts: Vec<String> },
    /// A dataset name that the manifest does not know.
    /// A `--from` source with a URL scheme other than http(s).
    #[error("unsupported source '{0}': expected an http:// or https:// URL base, or a directory")]
    UnsupportedSource(String),
    #[error("unknown dataset '{0}' (expected one of: mnist, fashion-mnist)")]
    UnknownDataset(String),
    /// The manifest is malformed.
    #[error("dataset manifest: {0}")]
    Manifest(String),
    /// A subset or split request that the data cannot satisfy.
    #[error("invalid split: {0}")]
    InvalidSplit(String),
}

pub type Result<T> = std::result::Result<T, DataError>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |error| DataError::Io { path: path.to_path_buf(), error }
}

/// Reads a data file; a missing file is [`DataError::Missing`] with the hint to fetch the data.
pub(crate) fn read_data_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                hint: "run `cargo xtask fetch-data` or point --data-dir / SLT_DATA_DIR at the data".into(),
            }
        } else {
            io_err(path)(e)
        }
    })
}
