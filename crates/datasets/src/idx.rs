//! IDX files (LeCun et al.): a big-endian header — magic `0x0000 08 NN` where `08` says
//! unsigned bytes and `NN` the number of dimensions, then one u32 per dimension — followed by
//! the payload. Images are magic 2051 (3 dims: count, rows, cols), labels 2049 (1 dim).
//! Files may be gzip-compressed (detected by the gzip magic `1f 8b`, not the file name).

use std::io::Read;
use std::path::Path;

use crate::error::{read_data_file, DataError, Result};

/// Magic number of an IDX image file (u8, 3 dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX label file (u8, 1 dimension).
pub const LABELS_MAGIC: u32 = 2049;

/// Images as stored: `count` images of `rows × cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    /// Number of images (the header's first dimension).
    pub count: usize,
    /// Pixel rows per image (28 for the MNIST family).
    pub rows: usize,
    /// Pixel columns per image (28 for the MNIST family).
    pub cols: usize,
    /// Raw grey levels 0..=255, `count × rows × cols` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// Reads a file, decompressing it when it is gzip.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = read_data_file(path)?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|error| DataError::Gzip { path: path.to_path_buf(), error })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn header(bytes: &[u8], path: &Path, magic: u32, what: &'static str) -> Result<Vec<u32>> {
    if bytes.len() < 4 {
        return Err(DataError::TruncatedHeader { path: path.to_path_buf(), len: bytes.len(), header: 4 });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic { path: path.to_path_buf(), found, expected: magic, what });
    }
    let ndim = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndim;
    if bytes.len() < header_len {
        return Err(DataError::TruncatedHeader { path: path.to_path_buf(), len: bytes.len(), header: header_len });
    }
    Ok((0..ndim).map(|i| be_u32(bytes, 4 + 4 * i)).collect())
}

fn check_payload(path: &Path, dims: &[u32], header_len: usize, actual: usize) -> Result<()> {
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize)).unwrap_or(usize::MAX);
    let payload = actual - header_len;
    if payload != expected {
        return Err(DataError::LengthMismatch { path: path.to_path_buf(), expected, actual: payload });
    }
    Ok(())
}

/// Parses IDX image bytes (already decompressed). `path` is only used in errors.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let dims = header(bytes, path, IMAGES_MAGIC, "IDX images: unsigned bytes, 3 dimensions")?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            found: dims,
            expected: "non-zero rows and columns".into(),
        });
    }
    check_payload(path, &dims, 16, bytes.len())?;
    Ok(IdxImages {
        count: dims[0] as usize,
        rows: dims[1] as usize,
        cols: dims[2] as usize,
        pixels: bytes[16..].to_vec(),
    })
}

/// Parses IDX label bytes (already decompressed), checking every label is below `classes`.
pub fn parse_labels(bytes: &[u8], path: &Path, classes: u8) -> Result<Vec<u8>> {
    let dims = header(bytes, path, LABELS_MAGIC, "IDX labels: unsigned bytes, 1 dimension")?;
    check_payload(path, &dims, 8, bytes.len())?;
    let labels = bytes[8..].to_vec();
    if let Some((index, &value)) = labels.iter().enumerate().find(|(_, &v)| v >= classes) {
        return Err(DataError::LabelOutOfRange { path: path.to_path_buf(), index, value, classes });
    }
    Ok(labels)
}

/// Encodes images as IDX bytes (uncompressed): the inverse of [`parse_images`].
pub fn encode_images(images: &IdxImages) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    for v in [IMAGES_MAGIC, images.count as u32, images.rows as u32, images.cols as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Encodes labels as IDX bytes (uncompressed): the inverse of [`parse_labels`].
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let images = IdxImages { count: 2, rows: 2, cols: 3, pixels: (0..12).collect() };
        let p = Path::new("x");
        assert_eq!(parse_images(&encode_images(&images), p).unwrap(), images);
        assert_eq!(parse_labels(&encode_labels(&[1, 9, 0]), p, 10).unwrap(), vec![1, 9, 0]);
    }

    #[test]
    fn payload_length_checked() {
        let mut bytes = encode_labels(&[1, 2, 3]);
        bytes.pop();
        let err = parse_labels(&bytes, Path::new("l.idx"), 10).unwrap_err();
        assert!(matches!(err, DataError::LengthMismatch { expected: 3, actual: 2, .. }), "{err}");
        assert!(err.to_string().contains("l.idx"));
    }

    #[test]
    fn label_range_checked() {
        let err = parse_labels(&encode_labels(&[1, 10]), Path::new("l"), 10).unwrap_err();
        assert!(matches!(err, DataError::LabelOutOfRange { index: 1, value: 10, .. }));
    }

    #[test]
    fn header_overflow_is_a_length_error_not_a_panic() {
        let mut bytes = Vec::new();
        for v in [IMAGES_MAGIC, u32::MAX, u32::MAX, u32::MAX] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        assert!(matches!(parse_images(&bytes, Path::new("i")).unwrap_err(), DataError::LengthMismatch { .. }));
    }
}
