//! The command line on bad input: a non-zero exit, a message naming the file or flag, and no
//! panic backtrace.

use std::path::Path;
use std::process::Command;

use slt_datasets::testing::real_data_dir as data_dir;

fn xtask(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked"), "panic: {text}");
    assert!(!text.contains("RUST_BACKTRACE"), "backtrace hint: {text}");
    (out.status.success(), text)
}

/// A copy of the real MNIST files with `file` replaced by `bytes` (or removed).
fn corrupted(file: &str, bytes: Option<Vec<u8>>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    slt_datasets::testing::copy_with_replacement("mnist", dir.path(), file, bytes.as_deref()).unwrap();
    dir
}

fn train_on(dir: &Path, out: &Path) -> (bool, String) {
    xtask(&[
        "train",
        "--dataset",
        "mnist",
        "--model",
        "mlp-1x8",
        "--epochs",
        "1",
        "--train-subset",
        "256",
        "--data-dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn every_corrupt_input_fails_naming_the_file() {
    let good = std::fs::read(data_dir().join("mnist/train-labels-idx1-ubyte.gz")).unwrap();
    let truncated = good[..good.len() / 2].to_vec();
    let mut flipped = good.clone();
    flipped[20] ^= 0xff;
    let out = tempfile::tempdir().unwrap();
    for (what, bytes) in [
        ("truncated", Some(truncated)),
        ("corrupted byte", Some(flipped)),
        ("not gzip", Some(b"hello".to_vec())),
        ("missing", None),
    ] {
        let dir = corrupted("train-labels-idx1-ubyte.gz", bytes);
        let (ok, text) = train_on(dir.path(), out.path());
        assert!(!ok, "{what}: must fail");
        assert!(text.contains("train-labels-idx1-ubyte.gz"), "{what}: {text}");
    }
}

#[test]
fn bad_flags_name_the_flag() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let d = data_dir();
    let d = d.to_str().unwrap();
    for (args, expected) in [
        (vec!["train", "--model", "mlp-x", "--out", o, "--data-dir", d], "--model"),
        (vec!["train", "--dataset", "cifar", "--out", o, "--data-dir", d], "--dataset"),
        (vec!["train", "--lr=-1", "--out", o, "--data-dir", d], "lr"),
        (vec!["train", "--backend", "cuda", "--out", o, "--data-dir", d], "--backend"),
        (vec!["train", "--optimizer", "adam", "--out", o, "--data-dir", d], "--optimizer"),
        (vec!["reproduce-all", "--profile", "nope"], "profile 'nope'"),
        (vec!["fetch-data", "--from", "ftp://example.org/x", "--data-dir", o], "--from: unsupported source 'ftp://"),
    ] {
        let (ok, text) = xtask(&args);
        assert!(!ok, "{args:?} must fail");
        assert!(text.contains(expected), "{args:?}: {text}");
    }
}

#[test]
fn a_failed_write_names_the_file_and_the_os_error_once() {
    // /proc accepts no new directories, even for root.
    let d = data_dir();
    let (ok, text) = xtask(&[
        "train",
        "--model",
        "mlp-1x4",
        "--epochs",
        "1",
        "--data-dir",
        d.to_str().unwrap(),
        "--out",
        "/proc/slt-run",
    ]);
    assert!(!ok);
    assert!(text.contains("/proc/slt-run/"), "{text}");
    assert_eq!(text.matches("os error").count(), 1, "{text}");
}

/// Built only with `--features wgpu`. With a GPU driver (or Mesa's software Vulkan) the run
/// trains; without one it must fail with an error that says what to install, never a panic.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_trains_or_says_what_is_missing() {
    let out = tempfile::tempdir().unwrap();
    let d = data_dir();
    let args = ["train", "--backend", "wgpu", "--model", "mlp-1x4", "--epochs", "1", "--train-subset", "256"];
    let (ok, text) =
        xtask(&[&args[..], &["--data-dir", d.to_str().unwrap(), "--out", out.path().to_str().unwrap()]].concat());
    assert!(!text.contains("panicked"), "{text}");
    if !ok {
        assert!(text.contains("wgpu could not open a GPU device") && text.contains("mesa-vulkan-drivers"), "{text}");
    }
}

#[test]
fn malformed_profile_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.json");
    std::fs::write(&p, "{\"name\": \"x\", \"sgd_baselines\": {\"datasets\": [\"mnist\"]").unwrap();
    let (ok, text) = xtask(&["reproduce-all", "--profile", p.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("broken.json"), "{text}");
}

#[test]
fn llc_of_trained_weights_writes_json() {
    let out = tempfile::tempdir().unwrap();
    let (ok, text) = train_on(&data_dir(), out.path());
    assert!(ok, "{text}");
    let json = out.path().join("llc.json");
    let (ok, text) = xtask(&[
        "llc",
        "--weights",
        out.path().join("weights.safetensors").to_str().unwrap(),
        "--model",
        "mlp-1x8",
        "--train-subset",
        "256",
        "--chains",
        "2",
        "--draws",
        "20",
        "--batch-size",
        "64",
        "--data-dir",
        data_dir().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("λ̂ = "), "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["llc_mean"].as_f64().unwrap().is_finite());
    assert_eq!(v["chains"].as_array().unwrap().len(), 2);
    // Per chain, the built-in observables at each of the 20 draws; the running λ̂ ends at the
    // chain's λ̂.
    for (trace, chain) in v["traces"].as_array().unwrap().iter().zip(v["chains"].as_array().unwrap()) {
        let observables = &trace["observables"];
        for name in ["running_llc", "weight_norm", "distance", "grad_norm", "noise_norm", "drift_norm"] {
            let series = observables[name].as_array().unwrap_or_else(|| panic!("no {name} in {observables}"));
            assert_eq!(series.len(), 20, "{name}");
            assert!(series.iter().all(|x| x.as_f64().unwrap().is_finite()), "{name}");
        }
        let last = observables["running_llc"].as_array().unwrap().last().unwrap().as_f64().unwrap();
        let llc = chain["llc"].as_f64().unwrap();
        assert!((last - llc).abs() <= 1e-9 * llc.abs().max(1.0), "running λ̂ {last} vs λ̂ {llc}");
    }
    // The Hessian of the same weights: trace, top eigenvalues, density.
    let hjson = out.path().join("hessian.json");
    let (ok, text) = xtask(&[
        "hessian",
        "--weights",
        out.path().join("weights.safetensors").to_str().unwrap(),
        "--model",
        "mlp-1x8",
        "--batches",
        "2",
        "--batch-size",
        "32",
        "--probes",
        "10",
        "--top-k",
        "2",
        "--density",
        "--data-dir",
        data_dir().to_str().unwrap(),
        "--json",
        hjson.to_str().unwrap(),
        "--plot",
        out.path().join("density").to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let png = std::fs::read(out.path().join("density.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(out.path().join("density.svg")).unwrap();
    assert!(svg.contains("Hessian spectral density: mlp-1x8") && svg.contains("eigenvalue"), "{svg}");
    let h: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&hjson).unwrap()).unwrap();
    assert!(h["trace"]["value"].as_f64().unwrap().is_finite());
    assert_eq!(h["top_eigenvalues"]["lanczos"].as_array().unwrap().len(), 2);
    assert!(!h["density"]["density"].as_array().unwrap().is_empty());
    // The wrong model for the weights is a clear error naming the file.
    let (ok, text) = xtask(&[
        "llc",
        "--weights",
        out.path().join("weights.safetensors").to_str().unwrap(),
        "--model",
        "mlp-2x8",
        "--data-dir",
        data_dir().to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("weights.safetensors"), "{text}");
}

#[test]
fn bench_compare_without_the_reference_python_says_what_to_install() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--compare"])
        .env("SLT_REFERENCE_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("/nonexistent/python3") && text.contains("bench/reference/requirements.txt"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
