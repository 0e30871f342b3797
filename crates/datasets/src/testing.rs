//! Helpers for tests of this workspace (and of users' code) that need the real data files.

use std::path::{Path, PathBuf};

/// Where the real MNIST-family files are for tests: `$SLT_DATA_DIR`, else `../shared/datasets`
/// beside the repository (as on this project's machines and CI), else `<repo>/datasets`.
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

/// Copies the real files of `dataset` into `<dest>/<dataset>/`, then replaces `file` by
/// `bytes` (or removes it with `None`): a data directory with one corrupt or missing file.
pub fn copy_with_replacement(dataset: &str, dest: &Path, file: &str, bytes: Option<&[u8]>) -> std::io::Result<()> {
    let src = real_data_dir().join(dataset);
    let dst = dest.join(dataset);
    std::fs::create_dir_all(&dst)?;
    for entry in std::fs::read_dir(&src)? {
        let entry = entry?;
        std::fs::copy(entry.path(), dst.join(entry.file_name()))?;
    }
    match bytes {
        Some(b) => std::fs::write(dst.join(file), b),
        None => std::fs::remove_file(dst.join(file)),
    }
}
