//! Real-time QA's pending sessions survive `serve` being killed (-9) when
//! sheets go to a sheet store, on both backends: the session is written
//! before its ingest is answered, resumed at the next start, evaluated
//! once, and a leg arriving after the restart joins it. A crash between
//! storing the sheet and removing the pending row stores no second sheet
//! and counts none.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use callqa::qa::sheet_store::{SheetFilter, SheetStore, SheetStoreUrl};

use crate::serve_support::{client, create_token_in, metric_value, repo_root, sample_ctr_ndjson};
use crate::sheet_store::Backend;

/// The sample contact (three versions of one voice contact, no transfer).
const SAMPLE_CONTACT: &str = "6fe40d2a-1a89-4d73-bfcf-5d9c33894f47";
/// A transfer in samples/connect: the first leg names the second as next.
const FIRST_LEG: &str = "3f1c9e52-7d4a-4b8e-9c21-5a6d7e8f9a01";
const SECOND_LEG: &str = "3f1c9e52-7d4a-4b8e-9c21-5a6d7e8f9a02";

/// One run of `callqa serve` over a sink, data directory and sheet store
/// that outlive it (as a host restarted in place); killed when dropped.
struct Run {
    child: Child,
    address: String,
    token: String,
    log: PathBuf,
}

impl Run {
    /// Starts a run named `name` in `dir` and waits until it listens.
    fn start(dir: &Path, name: &str, store: &str, args: &[&str]) -> Run {
        let mut run = Run::spawn(dir, name, store, args, None);
        let ready = dir.join(format!("{name}.ready"));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(address) = std::fs::read_to_string(&ready) {
                run.address = address.trim().to_owned();
                return run;
            }
            if let Some(status) = run.child.try_wait().unwrap() {
                panic!("callqa serve exited with {status} before listening:\n{}", run.log_text());
            }
            assert!(Instant::now() < deadline, "callqa serve did not start:\n{}", run.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a run without waiting for it: with `failpoint`, it may die
    /// before it listens.
    fn spawn(dir: &Path, name: &str, store: &str, args: &[&str], failpoint: Option<&str>) -> Run {
        let data = dir.join("data");
        let token = create_token_in(&data, name, "admin");
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_callqa"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--rules"])
            .arg(repo_root().join("samples/rules.toml"))
            .arg("--ready-file")
            .arg(dir.join(format!("{name}.ready")))
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--data-dir")
            .arg(&data)
            .args(["--sheets", store])
            .args(args)
            .env("CALLQA_CACHE_DIR", concat!(env!("CARGO_TARGET_TMPDIR"), "/module-cache"))
            .env("RUST_LOG", "info")
            .env_remove("CALLQA_FAILPOINT")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(failpoint) = failpoint {
            command.env("CALLQA_FAILPOINT", failpoint);
        }
        let child = command.spawn().expect("start callqa serve");
        Run { child, address: String::new(), token, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn post_ctrs(&self, body: Vec<u8>) {
        let response = client()
            .post(format!("http://{}/v1/ctr", self.address))
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap());
    }

    async fn metric(&self, series: &str) -> f64 {
        let text = client().get(format!("http://{}/metrics", self.address)).send().await.unwrap().text().await.unwrap();
        metric_value(&text, series)
    }

    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        assert_eq!(self.child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "callqa serve is still running:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The store's clients block (PostgreSQL's runs its own runtime).
fn with_store<R>(url: &str, work: impl FnOnce(&SheetStore) -> R) -> R {
    tokio::task::block_in_place(|| work(&SheetStoreUrl::parse(url).unwrap().open().unwrap()))
}

fn pending(url: &str) -> Vec<String> {
    with_store(url, |s| s.pending_sessions(None).unwrap().into_iter().map(|r| r.session_id).collect())
}

fn evaluations(url: &str) -> usize {
    with_store(url, |s| s.list(&SheetFilter { all_evaluations: true, limit: 100, ..SheetFilter::default() }).unwrap())
        .len()
}

/// Waits until the session's row is gone (its sheet stored), then a few
/// ticks more, so that a second evaluation would have had its chance.
fn wait_settled(url: &str, run: &Run) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pending(url).is_empty() {
        assert!(Instant::now() < deadline, "the resumed session was not evaluated:\n{}", run.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1000));
}

/// The legs of the transfer in samples/connect, by contact id.
fn transfer_leg(contact: &str) -> Vec<u8> {
    let path = repo_root().join("samples/connect/ctr/year=2026/month=11/day=20/part-0001.ndjson");
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ContactId"] == contact)
        .unwrap_or_else(|| panic!("no record of {contact} in samples/connect"));
    format!("{line}\n").into_bytes()
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread")] async fn $scenario() { super::$scenario(super::Backend::Sqlite).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread")] async fn $scenario() { super::$scenario(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(
    a_pending_session_is_evaluated_once_after_kill_9,
    a_crash_between_storing_the_sheet_and_removing_the_row_stores_and_counts_one_sheet,
    a_leg_arriving_after_the_restart_joins_the_resumed_session,
);

async fn a_pending_session_is_evaluated_once_after_kill_9(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.store(dir.path(), "sheets");
    // Settling for an hour: the session stays pending until the kill.
    let mut first = Run::start(dir.path(), "first", &store, &["--settle", "1h"]);
    first.post_ctrs(sample_ctr_ndjson()).await;
    // Written before the ingest was answered: no waiting here.
    assert_eq!(pending(&store), [SAMPLE_CONTACT]);
    assert_eq!(evaluations(&store), 0);
    first.kill_9();

    let second = Run::start(dir.path(), "second", &store, &["--settle", "0s"]);
    wait_settled(&store, &second);
    assert_eq!(evaluations(&store), 1, "one evaluation:\n{}", second.log_text());
    let sheet = with_store(&store, |s| s.sheet(SAMPLE_CONTACT).unwrap()).expect("the sheet of the resumed session");
    assert_eq!(sheet["contact_id"], SAMPLE_CONTACT);
    assert_eq!(second.metric("callqa_sheets_total{source=\"realtime\"}").await, 1.0);
    assert_eq!(second.metric("callqa_sessions_pending").await, 0.0);
}

async fn a_crash_between_storing_the_sheet_and_removing_the_row_stores_and_counts_one_sheet(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.store(dir.path(), "sheets");
    let mut first = Run::start(dir.path(), "first", &store, &["--settle", "1h"]);
    first.post_ctrs(sample_ctr_ndjson()).await;
    first.kill_9();

    // Resumed and evaluated, then killed with the sheet stored and the row not yet removed.
    let mut crashing = Run::spawn(dir.path(), "crashing", &store, &["--settle", "0s"], Some("after-sheet-stored:1"));
    let status = crashing.wait_exit(Duration::from_secs(120));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the failpoint was not reached:\n{}", crashing.log_text());
    assert_eq!(evaluations(&store), 1);
    assert_eq!(pending(&store), [SAMPLE_CONTACT], "the row outlives the crash");

    let third = Run::start(dir.path(), "third", &store, &["--settle", "0s"]);
    wait_settled(&store, &third);
    assert_eq!(evaluations(&store), 1, "no second sheet:\n{}", third.log_text());
    assert_eq!(
        third.metric("callqa_sheets_total{source=\"realtime\"}").await,
        0.0,
        "counted by the run that stored it"
    );
    assert!(third.log_text().contains("not evaluated again"), "{}", third.log_text());
}

async fn a_leg_arriving_after_the_restart_joins_the_resumed_session(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.store(dir.path(), "sheets");
    // The first leg names the second as its next: incomplete, it waits
    // (up to --incomplete-after, an hour).
    let mut first = Run::start(dir.path(), "first", &store, &["--settle", "0s"]);
    first.post_ctrs(transfer_leg(FIRST_LEG)).await;
    assert_eq!(pending(&store), [FIRST_LEG]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(evaluations(&store), 0, "evaluated without its second leg:\n{}", first.log_text());
    first.kill_9();

    let second = Run::start(dir.path(), "second", &store, &["--settle", "0s"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(evaluations(&store), 0, "the resumed session is still waiting for its second leg");
    second.post_ctrs(transfer_leg(SECOND_LEG)).await;
    wait_settled(&store, &second);
    assert_eq!(evaluations(&store), 1, "{}", second.log_text());
    let evaluation = with_store(&store, |s| s.evaluation(FIRST_LEG).unwrap()).expect("the session's evaluation");
    let session = &evaluation.session;
    assert!(session.notes.iter().all(|n| !n.contains("missing")), "both legs: {:?}", session.notes);
    assert_eq!(
        session.contact.ended_at.map(|t| t.to_rfc3339()),
        Some("2026-11-20T01:03:30+00:00".to_string()),
        "the session ends with the second leg"
    );
}
