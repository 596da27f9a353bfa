//! Crash safety: SIGKILL at every step of the claim protocol, rerun, and the
//! sink holds every unique record exactly once. Also: a second process on the
//! same store is refused.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::test_data::{contact_record, files, Lcg};

/// 7,000 contacts, 500 of them updated once, then 30% of the lines are
/// re-deliveries of earlier lines. Returns the input and the expected
/// (ContactId, LastUpdateTimestamp) set.
fn generate(path: &Path) -> HashSet<(String, String)> {
    let mut rng = Lcg(42);
    let mut unique: Vec<String> = (0..7000).map(|c| contact_record(c, 0, &mut rng)).collect();
    unique.extend((0..500).map(|i| contact_record(i * 13 % 7000, 1, &mut rng)));
    let mut lines: Vec<String> = Vec::new();
    let duplicates = unique.len() * 3 / 7;
    let mut emitted = 0usize;
    let mut copies = 0usize;
    while emitted < unique.len() || copies < duplicates {
        if emitted < unique.len() && (copies >= duplicates || emitted == 0 || rng.below(10) < 7) {
            lines.push(unique[emitted].clone());
            emitted += 1;
        } else {
            lines.push(lines[rng.below(lines.len() as u64) as usize].clone());
            copies += 1;
        }
    }
    let mut file = std::fs::File::create(path).unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    assert!(lines.len() >= 10_000);
    unique.iter().map(|line| identity(line)).collect()
}

fn identity(line: &str) -> (String, String) {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    (value["ContactId"].as_str().unwrap().to_owned(), value["LastUpdateTimestamp"].as_str().unwrap().to_owned())
}

fn ingest(dir: &Path, input: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callqa"));
    command
        .args(["ingest", "--batch-size", "250", "--quiet", "--store"])
        .arg(format!("file:{}", dir.join("store.redb").display()))
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--summary-json")
        .arg(dir.join("summary.json"))
        .arg(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn sigkill_at_every_step_then_rerun_leaves_each_unique_record_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ctrs.ndjson");
    let expected = generate(&input);

    let mut killed = 0;
    for failpoint in ["after-claim:3", "before-rename:5", "between-renames:4", "after-sink-write:6", "after-complete:8"]
    {
        let output = ingest(dir.path(), &input).env("CALLQA_FAILPOINT", failpoint).output().unwrap();
        match output.status.signal() {
            Some(9) => killed += 1,
            _ => assert!(output.status.success(), "{failpoint}: {}", String::from_utf8_lossy(&output.stderr)),
        }
    }
    // And from outside, at arbitrary moments.
    for delay in [15, 40, 80] {
        let mut child = ingest(dir.path(), &input).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        killed += (status.signal() == Some(9)) as usize;
    }
    assert!(killed >= 5, "only {killed} runs were actually killed");

    let output = ingest(dir.path(), &input).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let all_files = files(&dir.path().join("out"));
    assert!(
        all_files.iter().all(|f| !f.file_name().unwrap().to_string_lossy().ends_with(".tmp")),
        "temporary files left: {all_files:?}"
    );
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for file in &all_files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            *seen.entry(identity(line)).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "records written more than once: {twice:?}");
    let missing: Vec<_> = expected.iter().filter(|k| !seen.contains_key(*k)).take(5).collect();
    assert!(missing.is_empty(), "records lost: {missing:?}");
    assert_eq!(seen.len(), expected.len());

    // A last delivery of everything finds only duplicates.
    let output = ingest(dir.path(), &input).output().unwrap();
    assert!(output.status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["total"]["unique"], 0);
    assert_eq!(summary["total"]["read"], summary["total"]["duplicates"]);
}

#[test]
fn a_second_process_on_the_same_store_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file:{}", dir.path().join("store.redb").display());
    let out = dir.path().join("out");
    // The first process holds the store while it waits for stdin.
    let mut first = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["ingest", "--store", &store, "--out"])
        .arg(&out)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.path().join("store.redb").exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));

    let second = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["ingest", "--store", &store, "--out"])
        .arg(&out)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/ctr/connect-ctrs-with-duplicates.json"))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is open in another process"), "{stderr}");

    first.stdin.take().unwrap().write_all(b"{\"ContactId\":\"c-1\"}\n").unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
}
