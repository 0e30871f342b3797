//! The manifest of dataset files, their SHA-256 and the mirrors to download them from,
//! committed at `datasets/manifest.json` and compiled in.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{DataError, Result};

/// The manifest as committed in the repository.
pub const MANIFEST_JSON: &str = include_str!("../../../datasets/manifest.json");

/// One dataset of the manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct DatasetEntry {
    /// URL bases tried in order; a file's URL is base + file name.
    pub mirrors: Vec<String>,
    /// File name -> lower-case hex SHA-256 of the file as stored (gzipped).
    pub files: BTreeMap<String, String>,
    /// Pixel mean of the training set (after scaling to [0, 1]).
    pub mean: f32,
    /// Pixel standard deviation of the training set (after scaling to [0, 1]).
    pub std: f32,
}

/// The parsed manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Entries by dataset name (`mnist`, `fashion-mnist`).
    pub datasets: BTreeMap<String, DatasetEntry>,
}

impl Manifest {
    /// The compiled-in manifest.
    pub fn builtin() -> Self {
        Self::from_json(MANIFEST_JSON).expect("the committed manifest is valid")
    }

    /// Parses a manifest.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| DataError::Manifest(e.to_string()))
    }

    /// The entry of dataset `name`.
    pub fn dataset(&self, name: &str) -> Result<&DatasetEntry> {
        self.datasets.get(name).ok_or_else(|| DataError::UnknownDataset(name.to_string()))
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_lists_both_datasets() {
        let m = Manifest::builtin();
        for name in ["mnist", "fashion-mnist"] {
            let d = m.dataset(name).unwrap();
            assert_eq!(d.files.len(), 4);
            assert!(!d.mirrors.is_empty());
            assert!(d.files.values().all(|h| h.len() == 64));
        }
        assert!(matches!(m.dataset("cifar"), Err(DataError::UnknownDataset(_))));
    }
}
