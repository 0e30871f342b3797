//! The downloader against a loopback HTTP server: one mirror answers 404, one serves corrupt
//! bytes, one serves the right file. Files land atomically and only with the right checksum.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use slt_datasets::download::{fetch_dataset, FileStatus, Source};
use slt_datasets::idx::encode_labels;
use slt_datasets::manifest::{sha256_hex, DatasetEntry, Manifest};
use slt_datasets::DataError;

struct Server {
    base: String,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Serves `/bad404/*` with 404, `/corrupt/<f>` with flipped bytes, `/good/<f>` with the file.
fn serve(files: BTreeMap<String, Vec<u8>>) -> Server {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            let Ok(Some(request)) = server.recv_timeout(std::time::Duration::from_millis(50)) else {
                continue;
            };
            let url = request.url().to_string();
            let (mirror, file) = url.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
            let response = match (mirror, files.get(file.trim_start_matches("tiny/"))) {
                ("good", Some(bytes)) => tiny_http::Response::from_data(bytes.clone()).with_status_code(200),
                ("corrupt", Some(bytes)) => {
                    let mut b = bytes.clone();
                    let mid = b.len() / 2;
                    b[mid] ^= 0x55;
                    tiny_http::Response::from_data(b).with_status_code(200)
                }
                _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    Server { base, stop, handle: Some(handle) }
}

fn tiny_dataset() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("a-labels.gz".to_string(), common::gzip(&encode_labels(&[1, 2, 3])));
    files.insert("b-labels.gz".to_string(), common::gzip(&encode_labels(&[4, 5, 6, 7])));
    files
}

fn manifest(mirrors: Vec<String>, files: &BTreeMap<String, Vec<u8>>) -> Manifest {
    let mut datasets = BTreeMap::new();
    datasets.insert(
        "tiny".to_string(),
        DatasetEntry {
            mirrors,
            files: files.iter().map(|(k, v)| (k.clone(), sha256_hex(v))).collect(),
            mean: 0.0,
            std: 1.0,
        },
    );
    Manifest { datasets }
}

#[test]
fn mirrors_are_tried_in_order_until_one_verifies() {
    let files = tiny_dataset();
    let server = serve(files.clone());
    let mirrors = ["bad404", "corrupt", "good"].iter().map(|m| format!("{}/{m}/", server.base)).collect();
    let manifest = manifest(mirrors, &files);
    let data = tempfile::tempdir().unwrap();
    let report = fetch_dataset(&manifest, "tiny", data.path(), &[Source::Mirrors], |_, _| {}).unwrap();
    for (file, status) in &report {
        assert_eq!(status, &FileStatus::Fetched(format!("{}/good/{file}", server.base)));
        assert_eq!(std::fs::read(data.path().join("tiny").join(file)).unwrap(), files[file]);
    }
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(data.path().join("tiny")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // A second fetch finds everything present and downloads nothing.
    let again = fetch_dataset(&manifest, "tiny", data.path(), &[Source::Mirrors], |_, _| {}).unwrap();
    assert!(again.iter().all(|(_, s)| *s == FileStatus::Present));
}

#[test]
fn all_mirrors_failing_is_an_error_listing_each_attempt_and_writes_nothing() {
    let files = tiny_dataset();
    let server = serve(files.clone());
    let mirrors = ["bad404", "corrupt"].iter().map(|m| format!("{}/{m}/", server.base)).collect();
    let manifest = manifest(mirrors, &files);
    let data = tempfile::tempdir().unwrap();
    let err = fetch_dataset(&manifest, "tiny", data.path(), &[Source::Mirrors], |_, _| {}).unwrap_err();
    let DataError::Download { file, attempts } = &err else { panic!("{err}") };
    assert!(file.ends_with("a-labels.gz"), "{file}");
    assert_eq!(attempts.len(), 2);
    assert!(attempts[0].contains("HTTP 404"), "{attempts:?}");
    assert!(attempts[1].contains("SHA-256 mismatch"), "{attempts:?}");
    assert!(!data.path().join("tiny/a-labels.gz").exists());
}

#[test]
fn corrupt_local_file_is_replaced_from_a_directory_source() {
    let files = tiny_dataset();
    let manifest = manifest(vec![], &files);
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("tiny")).unwrap();
    for (f, b) in &files {
        std::fs::write(src.path().join("tiny").join(f), b).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("tiny")).unwrap();
    std::fs::write(data.path().join("tiny/a-labels.gz"), b"garbage").unwrap();
    let report =
        fetch_dataset(&manifest, "tiny", data.path(), &[Source::Dir(src.path().to_path_buf())], |_, _| {}).unwrap();
    assert!(report.iter().all(|(_, s)| matches!(s, FileStatus::Fetched(_))));
    assert_eq!(std::fs::read(data.path().join("tiny/a-labels.gz")).unwrap(), files["a-labels.gz"]);
}

#[test]
fn url_base_source() {
    let files = tiny_dataset();
    let server = serve(files.clone());
    let manifest = manifest(vec![], &files);
    let data = tempfile::tempdir().unwrap();
    // A URL base is laid out as <base>/<dataset>/<file>.
    let err = fetch_dataset(
        &manifest,
        "tiny",
        data.path(),
        &[Source::parse(&format!("{}/bad404", server.base)).unwrap()],
        |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("/bad404/tiny/a-labels.gz: HTTP 404"), "{err}");
    let good = format!("{}/good", server.base);
    let report = fetch_dataset(&manifest, "tiny", data.path(), &[Source::parse(&good).unwrap()], |_, _| {}).unwrap();
    assert_eq!(report[0].1, FileStatus::Fetched(format!("{good}/tiny/a-labels.gz")));
    assert_eq!(std::fs::read(data.path().join("tiny/b-labels.gz")).unwrap(), files["b-labels.gz"]);
    assert_eq!(Source::parse("../shared/datasets").unwrap(), Source::Dir("../shared/datasets".into()));
    assert_eq!(Source::parse("https://example.org/d").unwrap(), Source::UrlBase("https://example.org/d".into()));
    // Another scheme is not a directory name: refused, naming what was given and what is expected.
    for other in ["ftp://example.org/d", "file:///tmp/d", "s3://bucket/d"] {
        let err = Source::parse(other).unwrap_err().to_string();
        assert!(err.contains(other) && err.contains("https://"), "{err}");
    }
}
