//! Killing a training run and starting it again loses at most the epoch in progress and ends
//! exactly as an uninterrupted run (metrics and weights bit-identical).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slt_datasets::testing::real_data_dir as data_dir;

fn train_command(out: &Path) -> Command {
    train_command_with_seed(out, "5")
}

fn train_command_with_seed(out: &Path, seed: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args([
        "train",
        "--dataset",
        "mnist",
        "--model",
        "mlp-1x64",
        "--epochs",
        "3",
        "--train-subset",
        "20000",
        "--momentum",
        "0.9",
        "--nesterov",
        "--lr",
        "0.02",
        "--seed",
        seed,
        "--data-dir",
        data_dir().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn metrics_without_time(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

#[test]
fn killed_run_resumes_to_the_same_result() {
    let whole = tempfile::tempdir().unwrap();
    assert!(train_command(whole.path()).status().unwrap().success());

    let cut = tempfile::tempdir().unwrap();
    let mut child = train_command(cut.path()).spawn().unwrap();
    // Kill it as soon as the first epoch is recorded.
    let started = Instant::now();
    loop {
        let lines = std::fs::read_to_string(cut.path().join("metrics.jsonl")).map(|t| t.lines().count()).unwrap_or(0);
        if lines >= 1 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished_before_kill = cut.path().join("summary.json").exists();
    assert!(train_command(cut.path()).status().unwrap().success());

    assert_eq!(metrics_without_time(whole.path()), metrics_without_time(cut.path()));
    assert_eq!(
        std::fs::read(whole.path().join("weights.safetensors")).unwrap(),
        std::fs::read(cut.path().join("weights.safetensors")).unwrap()
    );
    assert!(!cut.path().join("checkpoint.safetensors").exists());
    // The kill must have hit a running process for this test to mean anything.
    assert!(!finished_before_kill, "the run finished before it could be killed; make it longer");
}

fn reproduce_command(results: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args([
        "reproduce-all",
        "--profile",
        "smoke",
        "--jobs",
        "1",
        "--data-dir",
        data_dir().to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The report without what legitimately differs between invocations (wall-clock times).
fn report_without_times(results: &Path) -> String {
    let text = std::fs::read_to_string(results.join("report.md")).unwrap();
    let text = text.split("## Run times").next().unwrap().to_string();
    text.lines().filter(|l| !l.starts_with("Profile `")).collect::<Vec<_>>().join("\n")
}

fn finished_runs(results: &Path) -> usize {
    walk(results).into_iter().filter(|p| p.ends_with("summary.json")).count()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn reproduce_all_killed_twice_gives_the_same_report() {
    let whole = tempfile::tempdir().unwrap();
    assert!(reproduce_command(whole.path()).status().unwrap().success());
    let total = finished_runs(whole.path());

    let cut = tempfile::tempdir().unwrap();
    // Kill after 3 and after 11 finished runs (the second time in the middle of the split runs),
    // then let it finish.
    for kill_after in [3, 11] {
        let mut child = reproduce_command(cut.path()).spawn().unwrap();
        let started = Instant::now();
        while finished_runs(cut.path()) < kill_after && started.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(finished_runs(cut.path()) < total, "the suite finished before it could be killed");
    }
    assert!(reproduce_command(cut.path()).status().unwrap().success());
    assert_eq!(finished_runs(cut.path()), total);
    assert_eq!(report_without_times(whole.path()), report_without_times(cut.path()));
}

#[test]
fn restart_with_other_flags_says_what_it_discards() {
    let cut = tempfile::tempdir().unwrap();
    let mut child = train_command(cut.path()).spawn().unwrap();
    let started = Instant::now();
    while !cut.path().join("checkpoint.safetensors").exists() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!cut.path().join("summary.json").exists(), "the run finished before it could be killed");
    // The same run, one flag changed: it must start over and say which settings differ.
    let mut again = train_command_with_seed(cut.path(), "6");
    again.stderr(Stdio::piped());
    let out = again.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("discarding it") && stderr.contains("seed: 5 → 6"), "{stderr}");
    let epochs: Vec<u64> = metrics_without_time(cut.path()).iter().map(|row| row["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, vec![1, 2, 3]);
}
