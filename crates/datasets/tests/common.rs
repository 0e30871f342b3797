//! Helpers shared by the data-layer tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the real MNIST-family files are: $SLT_DATA_DIR, else `../shared/datasets` beside the
/// repository (as on developer machines and CI), else `<repo>/datasets`.
pub fn real_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLT_DATA_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shared = repo.join("../shared/datasets");
    if shared.join("mnist").exists() {
        return shared;
    }
    repo.join("datasets")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
