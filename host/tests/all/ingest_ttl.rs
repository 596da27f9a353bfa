//! TTL: a duplicate arriving after the TTL is kept. The clock is injected,
//! never slept on.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callqa::dedup::{EmbeddedStore, ManualClock, StoreSettings};
use callqa::ingest::{IngestOptions, IngestPipeline, IngestSummary};
use callqa::sinks::{DeadLetterSink, DirectorySink, Sink};
use callqa::sources::InputSource;

const RECORD: &str =
    r#"{"ContactId":"c-1","InitiationTimestamp":"2022-01-05T17:12:59Z","LastUpdateTimestamp":"2022-01-05T17:48:35Z"}"#;

fn ingest(store: &Arc<EmbeddedStore>, out: &Path, input: &Path) -> IngestSummary {
    use callqa::dedup::DedupStore;
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(DirectorySink::open(out, store.instance_id(), false).unwrap())];
    let pipeline =
        IngestPipeline::new(store.clone(), sinks, DeadLetterSink::open(None).unwrap(), IngestOptions::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(pipeline.run(&[InputSource::File(input.to_path_buf())])).unwrap()
}

#[test]
fn a_duplicate_after_the_ttl_is_kept_and_one_within_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("one.ndjson");
    std::fs::write(&input, format!("{RECORD}\n")).unwrap();
    let out = dir.path().join("out");
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let settings =
        StoreSettings { ttl: Duration::from_secs(24 * 3600), lease: Duration::from_secs(30), clock: clock.clone() };
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.redb"), settings).unwrap());

    assert_eq!(ingest(&store, &out, &input).total.unique, 1);
    clock.advance(Duration::from_secs(23 * 3600));
    let within = ingest(&store, &out, &input).total;
    assert_eq!((within.unique, within.duplicates), (0, 1), "within the TTL: a duplicate");
    clock.advance(Duration::from_secs(3600));
    let after = ingest(&store, &out, &input).total;
    assert_eq!((after.unique, after.duplicates), (1, 0), "24h after the first claim: absent again");
}

#[test]
fn the_cli_honours_ttl_against_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("one.ndjson");
    std::fs::write(&input, format!("{RECORD}\n")).unwrap();
    let store = format!("file:{}", dir.path().join("store.redb").display());
    let summary = dir.path().join("summary.json");
    let run = |now: &str| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_callqa"))
            .args(["ingest", "--ttl", "1h", "--now", now, "--store", &store, "--out"])
            .arg(dir.path().join("out"))
            .arg("--summary-json")
            .arg(&summary)
            .arg(&input)
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        value["total"]["unique"].as_u64().unwrap()
    };
    assert_eq!(run("2024-01-01T00:00:00Z"), 1);
    assert_eq!(run("2024-01-01T00:59:00Z"), 0);
    assert_eq!(run("2024-01-01T01:00:01Z"), 1);
}
