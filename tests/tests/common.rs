//! Shared helpers of the workspace tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The real data: $SLT_DATA_DIR, else ../shared/datasets beside the repository, else datasets/.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLT_DATA_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = repo.join("../shared/datasets");
    if shared.join("mnist").exists() {
        return shared;
    }
    repo.join("datasets")
}
