//! The data layer's typed errors. Every variant names the file it is about.

use std::path::PathBuf;

/// Everything that can go wrong reading, verifying or downloading a dataset file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file is not there.
    #[error("{path}: file not found ({hint})")]
    Missing {
        /// The file that is missing.
        path: PathBuf,
        /// What to do about it (e.g. run `cargo xtask fetch-data`).
        hint: String,
    },
    /// Reading or writing failed. The OS error is part of the message and deliberately not a
    /// `source()`, so that printing the error chain (`{:#}`) does not say it twice.
    #[error("{path}: {error}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The gzip stream is corrupt or truncated (the decoder's error is part of the message).
    #[error("{path}: broken gzip stream: {error}")]
    Gzip {
        /// The compressed file.
        path: PathBuf,
        /// The decoder's error.
        error: std::io::Error,
    },
    /// The file is shorter than an IDX header.
    #[error("{path}: truncated IDX file: {len} bytes, shorter than the {header}-byte header")]
    TruncatedHeader {
        /// The IDX file.
        path: PathBuf,
        /// Bytes the (decompressed) file holds.
        len: usize,
        /// Bytes the IDX header needs.
        header: usize,
    },
    /// The magic number is not the expected one.
    #[error("{path}: wrong IDX magic number {found} (0x{found:08x}); expected {expected} ({what})")]
    BadMagic {
        /// The IDX file.
        path: PathBuf,
        /// The big-endian magic number read from the first four bytes.
        found: u32,
        /// The magic number this kind of file must have.
        expected: u32,
        /// What kind of file was expected (e.g. "images", "labels").
        what: &'static str,
    },
    /// Header dimensions are not the expected ones.
    #[error("{path}: unexpected IDX dimensions {found:?}; expected {expected}")]
    BadDimensions {
        /// The IDX file.
        path: PathBuf,
        /// The dimensions the header declares (count first).
        found: Vec<u32>,
        /// The dimensions that were expected, in words (e.g. "28x28 images").
        expected: String,
    },
    /// The payload length does not match the counts in the header.
    #[error(
        "{path}: IDX header promises {expected} payload bytes but the file holds {actual} (truncated or padded file)"
    )]
    LengthMismatch {
        /// The IDX file.
        path: PathBuf,
        /// Payload bytes implied by the header's dimensions.
        expected: usize,
        /// Payload bytes the file actually holds after the header.
        actual: usize,
    },
    /// A label is outside 0..classes.
    #[error("{path}: label {value} at index {index} is outside 0..{classes}")]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Index of the offending example (0-based).
        index: usize,
        /// The label found there.
        value: u8,
        /// Number of classes; labels must be below it.
        classes: u8,
    },
    /// Image and label files disagree on the number of examples.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images it holds.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels it holds.
        n_labels: usize,
    },
    /// The file's SHA-256 is not the manifest's.
    #[error("{path}: SHA-256 mismatch: expected {expected}, got {actual} (corrupt or wrong file; delete it and run `cargo xtask fetch-data`)")]
    Checksum {
        /// The file that failed verification.
        path: PathBuf,
        /// SHA-256 from the manifest, lowercase hex.
        expected: String,
        /// SHA-256 of the file on disk, lowercase hex.
        actual: String,
    },
    /// Every source failed for a file.
    #[error("could not fetch {file}: every source failed:\n  {}", attempts.join("\n  "))]
    Download {
        /// The destination file that could not be fetched.
        file: String,
        /// One message per source tried, in order, saying why it failed.
        attempts: Vec<String>,
    },
    /// A `--from` source with a URL scheme other than http(s).
    #[error("unsupported source '{0}': expected an http:// or https:// URL base, or a directory")]
    UnsupportedSource(String),
    /// A dataset name that the manifest does not know.
    #[error("unknown dataset '{0}' (expected one of: mnist, fashion-mnist)")]
    UnknownDataset(String),
    /// The manifest is malformed.
    #[error("dataset manifest: {0}")]
    Manifest(String),
    /// A subset or split request that the data cannot satisfy.
    #[error("invalid split: {0}")]
    InvalidSplit(String),
}

/// Result of the data layer's fallible operations.
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
