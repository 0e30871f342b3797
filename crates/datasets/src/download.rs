//! Fetching dataset files: from the manifest's mirrors in order, from another URL base, or
//! from a local directory (e.g. `../shared/datasets` on an offline machine). Every file is
//! checked against the manifest's SHA-256 before it is written, and written atomically
//! (temporary file in the target directory, then rename), so a crash never leaves a partial
//! file under the final name.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{io_err, read_data_file, DataError, Result};
use crate::manifest::{sha256_hex, Manifest};

/// Where to fetch files from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The manifest's mirrors, in order.
    Mirrors,
    /// A URL base (`http://…/`); the file URL is base + dataset + `/` + file, as the manifest's
    /// layout on disk.
    UrlBase(String),
    /// A local directory laid out as `<dir>/<dataset>/<file>`.
    Dir(PathBuf),
}

impl Source {
    /// `http(s)://…` is a URL base, anything without a `scheme://` prefix a directory; any other
    /// scheme (`ftp://`, `file://`, …) is refused rather than taken for a directory name.
    pub fn parse(s: &str) -> Result<Self> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(Source::UrlBase(s.to_string()));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
                return Err(DataError::UnsupportedSource(s.to_string()));
            }
        }
        Ok(Source::Dir(PathBuf::from(s)))
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq)]
pub enum FileStatus {
    /// Already present with the right checksum.
    Present,
    /// Fetched from this URL or path.
    Fetched(String),
}

/// Largest file accepted from a server (the biggest MNIST-family file is ~26 MB).
const MAX_DOWNLOAD: u64 = 256 << 20;

fn http_get(url: &str) -> std::result::Result<Vec<u8>, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(300))
        .build();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, _) => format!("{url}: HTTP {code}"),
        other => format!("{url}: {other}"),
    })?;
    let mut bytes = Vec::new();
    response.into_reader().take(MAX_DOWNLOAD).read_to_end(&mut bytes).map_err(|e| format!("{url}: {e}"))?;
    Ok(bytes)
}

fn join_url(base: &str, tail: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{tail}")
    } else {
        format!("{base}/{tail}")
    }
}

/// A name for a temporary file beside `path` that no other writer uses at the same time: the
/// process id (unique on one host), a random number drawn once per process (processes on other
/// hosts writing to a shared filesystem, say the tasks of a Slurm array, can have the same id)
/// and a counter (threads of one process).
pub fn temp_path(path: &Path) -> std::path::PathBuf {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static RANDOM: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = *RANDOM.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.{}-{random:016x}-{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `bytes` to `path` atomically: a temporary file beside it ([`temp_path`]), then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path)(e)
    })
}

/// Checks the SHA-256 of the file at `path` against `expected`.
pub fn verify_file(path: &Path, expected: &str) -> Result<()> {
    let bytes = read_data_file(path)?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(DataError::Checksum { path: path.to_path_buf(), expected: expected.to_string(), actual });
    }
    Ok(())
}

/// The sources tried when the user names none: the read-only copy beside the repository
/// (`../shared/datasets`, as on this project's machines) if it exists, then the manifest's
/// mirrors.
pub fn default_sources() -> Vec<Source> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let mut sources = Vec::new();
    if shared.is_dir() {
        sources.push(Source::Dir(shared));
    }
    sources.push(Source::Mirrors);
    sources
}

/// Makes sure every file of `dataset` is in `<data_dir>/<dataset>/` with the manifest's
/// checksum, fetching missing or corrupt files from `sources`, tried in order. Returns each
/// file's status.
pub fn fetch_dataset(
    manifest: &Manifest,
    dataset: &str,
    data_dir: &Path,
    sources: &[Source],
    mut on_file: impl FnMut(&str, &FileStatus),
) -> Result<Vec<(String, FileStatus)>> {
    let entry = manifest.dataset(dataset)?;
    let dir = data_dir.join(dataset);
    let mut report = Vec::new();
    for (file, expected) in &entry.files {
        let target = dir.join(file);
        if verify_file(&target, expected).is_ok() {
            on_file(file, &FileStatus::Present);
            report.push((file.clone(), FileStatus::Present));
            continue;
        }
        let candidates: Vec<(bool, String)> = sources
            .iter()
            .flat_map(|source| match source {
                Source::Mirrors => entry.mirrors.iter().map(|m| (false, join_url(m, file))).collect(),
                Source::UrlBase(base) => vec![(false, join_url(base, &format!("{dataset}/{file}")))],
                Source::Dir(d) => vec![(true, d.join(dataset).join(file).display().to_string())],
            })
            .collect();
        let mut attempts = Vec::new();
        let mut fetched = None;
        for (local, candidate) in candidates {
            let bytes = if local {
                std::fs::read(&candidate).map_err(|e| format!("{candidate}: {e}"))
            } else {
                http_get(&candidate)
            };
            match bytes {
                Err(e) => attempts.push(e),
                Ok(bytes) => {
                    let actual = sha256_hex(&bytes);
                    if &actual == expected {
                        write_atomic(&target, &bytes)?;
                        fetched = Some(candidate);
                        break;
                    }
                    attempts.push(format!("{candidate}: SHA-256 mismatch (expected {expected}, got {actual})"));
                }
            }
        }
        match fetched {
            Some(from) => {
                let status = FileStatus::Fetched(from);
                on_file(file, &status);
                report.push((file.clone(), status));
            }
            None => return Err(DataError::Download { file: target.display().to_string(), attempts }),
        }
    }
    Ok(report)
}
