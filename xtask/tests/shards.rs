//! Shards of `reproduce-all` run as concurrent processes on one results folder (as the tasks of
//! a Slurm array do) lose nothing and corrupt nothing: after the merge, the results folder holds
//! exactly what one unsharded process writes, and the dry run plans it right before and after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use slt_datasets::testing::real_data_dir as data_dir;

fn reproduce(results: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(["reproduce-all", "--profile", "smoke", "--jobs", "1", "--data-dir", data_dir().to_str().unwrap()]);
    c.args(["--results-dir", results.to_str().unwrap()]);
    c.args(extra);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn check(what: &str, out: Output) -> (String, String) {
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The dry run's row `all` (runs, finished, partly trained, to train) and its training steps.
fn dry_run_totals(results: &Path, extra: &[&str]) -> ([usize; 4], u64) {
    let (stdout, _) = check("the dry run", reproduce(results, &[&["--dry-run"], extra].concat()).output().unwrap());
    let line = |start: &str| {
        stdout.lines().find(|l| l.trim_start().starts_with(start)).unwrap_or_else(|| panic!("{stdout}")).to_string()
    };
    let row = line("all ");
    let numbers: Vec<usize> = row.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
    let steps = line("training steps").split_whitespace().nth(2).unwrap().replace(',', "").parse().unwrap();
    (numbers.try_into().unwrap_or_else(|_| panic!("{row}")), steps)
}

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<PathBuf, PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), p);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A JSON value without wall-clock times (and the metrics digest, which covers them).
fn without_times(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(map) => {
            for key in ["seconds", "train_seconds", "total_seconds", "metrics_sha256"] {
                map.remove(key);
            }
            for value in map.values_mut() {
                *value = without_times(value.take());
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                *item = without_times(item.take());
            }
        }
        _ => {}
    }
    v
}

/// What of a result file must not depend on how the runs were spread over processes: all of
/// it, except wall-clock times and the line of the report about this invocation.
fn comparable(path: &Path) -> Vec<u8> {
    let name = path.file_name().unwrap().to_str().unwrap();
    let json = |text: &str| without_times(serde_json::from_str(text).unwrap()).to_string();
    if name == "report.md" {
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.split("## Run times").next().unwrap();
        text.lines().filter(|l| !l.contains("This invocation")).collect::<Vec<_>>().join("\n").into_bytes()
    } else if name.ends_with(".jsonl") {
        std::fs::read_to_string(path).unwrap().lines().map(json).collect::<Vec<_>>().join("\n").into_bytes()
    } else if name == "summary.json" || name == "diverged.json" {
        json(&std::fs::read_to_string(path).unwrap()).into_bytes()
    } else {
        std::fs::read(path).unwrap()
    }
}

#[test]
fn concurrent_shards_then_a_merge_equal_one_unsharded_run() {
    let started = Instant::now();
    let whole = tempfile::tempdir().unwrap();
    let whole = whole.path().join("results");
    check("the unsharded run", reproduce(&whole, &[]).output().unwrap());

    let root = tempfile::tempdir().unwrap();
    let sharded = root.path().join("results");
    // Before anything ran: every run is to train, and the dry run writes nothing.
    let ([runs, finished, partly, to_train], planned_steps) = dry_run_totals(&sharded, &[]);
    assert_eq!((finished, partly, to_train), (0, 0, runs));
    // It counts the training steps the runs take.
    let steps: u64 = files(&whole)
        .iter()
        .filter(|(p, _)| p.ends_with("metrics.jsonl"))
        .flat_map(|(_, path)| std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap()["steps"].as_u64().unwrap())
        .sum();
    assert_eq!(planned_steps, steps);
    assert!(!sharded.exists(), "the dry run wrote into the results folder");

    // The three shards as concurrent processes on one results folder.
    let shards_started = Instant::now();
    let mut shards: Vec<_> =
        (0..3).map(|k| reproduce(&sharded, &["--shard", &format!("{k}/3")]).spawn().unwrap()).collect();
    // Each loads and verifies the data before its first run, so all three are running at once.
    assert!(shards.iter_mut().all(|c| c.try_wait().unwrap().is_none()), "a shard ended before the last started");
    for (k, child) in shards.into_iter().enumerate() {
        let (_, stderr) = check(&format!("shard {k}/3"), child.wait_with_output().unwrap());
        // Shards hold disjoint runs: no process ever waits for another's run.
        assert!(!stderr.contains("another process is training this run"), "shard {k}/3:\n{stderr}");
    }
    let shards_seconds = shards_started.elapsed().as_secs_f64();
    // The merge trains nothing and writes the report.
    check("the merge", reproduce(&sharded, &[]).output().unwrap());
    let report = std::fs::read_to_string(sharded.join("report.md")).unwrap();
    assert!(report.contains(&format!("This invocation: 0 runs trained, {runs} reused")), "{report}");
    assert_eq!(dry_run_totals(&sharded, &[]), ([runs, runs, 0, 0], 0));

    same_results(&whole, &sharded, runs);

    // A damaged run is retrained by its own shard; another shard succeeds without it (it is not
    // that shard's failure), and the merge is again identical.
    let victim = files(&sharded)
        .into_keys()
        .find(|p| p.starts_with("s1-sgd-vs-ngd") && p.ends_with("weights.safetensors"))
        .unwrap();
    std::fs::write(sharded.join(&victim), b"damaged").unwrap();
    let to_train = |k: usize| dry_run_totals(&sharded, &["--shard", &format!("{k}/3")]).0[3];
    let owners: Vec<usize> = (0..3).filter(|&k| to_train(k) == 1).collect();
    assert_eq!(owners.len(), 1, "{owners:?}");
    for k in (0..3).filter(|&k| k != owners[0]).chain(owners.iter().copied()) {
        let (_, stderr) =
            check(&format!("shard {k}/3"), reproduce(&sharded, &["--shard", &format!("{k}/3")]).output().unwrap());
        if k != owners[0] {
            assert!(stderr.contains("not finished until it is trained again"), "shard {k}/3:\n{stderr}");
        }
    }
    check("the merge", reproduce(&sharded, &[]).output().unwrap());
    same_results(&whole, &sharded, runs);
    eprintln!(
        "{runs} runs; the three shards took {shards_seconds:.1} s, the test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `sharded` holds the same files as `whole`, equal but for times, and no leftovers.
fn same_results(whole: &Path, sharded: &Path, runs: usize) {
    let (a, b) = (files(whole), files(sharded));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the two folders hold different files");
    let leftovers: Vec<_> = b
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp") || p.ends_with("checkpoint.safetensors"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files or checkpoints left: {leftovers:?}");
    let summaries = b.keys().filter(|p| p.ends_with("summary.json") || p.ends_with("diverged.json")).count();
    assert_eq!(summaries, runs);
    for (relative, path) in &a {
        assert!(comparable(path) == comparable(&b[relative]), "{} differs", relative.display());
    }
}
