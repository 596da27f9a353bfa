//! `callqa stats`: each contact once, at its latest version, per day in a time zone.

use std::process::Command;

fn callqa(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_callqa")).args(args).output().unwrap();
    assert!(output.status.success(), "callqa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn contact(id: &str, initiated: &str, updated: &str, queue_seconds: u64, agent: bool) -> String {
    let agent = if agent {
        serde_json::json!({"ConnectedToAgentTimestamp": initiated, "AgentInteractionDuration": 100, "CustomerHoldDuration": 20, "AfterContactWorkDuration": 10})
    } else {
        serde_json::Value::Null
    };
    serde_json::json!({
        "ContactId": id, "Channel": "VOICE", "InitiationMethod": "INBOUND",
        "InitiationTimestamp": initiated, "LastUpdateTimestamp": updated,
        "Queue": {"Name": "Support", "Duration": queue_seconds, "EnqueueTimestamp": initiated},
        "Agent": agent,
    })
    .to_string()
}

#[test]
fn a_late_update_replaces_the_contacts_figures() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file:{}", dir.path().join("store.redb").display());
    let out = dir.path().join("out");
    let first = dir.path().join("day1.ndjson");
    std::fs::write(
        &first,
        [
            contact("a", "2024-03-01T10:00:00Z", "2024-03-01T10:10:00Z", 30, false),
            contact("b", "2024-03-01T23:30:00Z", "2024-03-01T23:50:00Z", 10, true),
        ]
        .join("\n"),
    )
    .unwrap();
    callqa(&["ingest", "--store", &store, "--out", out.to_str().unwrap(), first.to_str().unwrap()]);
    let rows = |tz: &str| -> serde_json::Value {
        let output = callqa(&["stats", "--sink", out.to_str().unwrap(), "--tz", tz, "--format", "json"]);
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let before = rows("UTC");
    assert_eq!(before[0]["contacts"], 1 + 1);
    assert_eq!(before[0]["abandoned"], 1);

    // Three days later Connect re-delivers contact a: an agent did take it.
    let late = dir.path().join("day4.ndjson");
    std::fs::write(&late, contact("a", "2024-03-01T10:00:00Z", "2024-03-04T08:00:00Z", 50, true)).unwrap();
    callqa(&["ingest", "--store", &store, "--out", out.to_str().unwrap(), late.to_str().unwrap()]);
    let after = rows("UTC");
    assert_eq!(after.as_array().unwrap().len(), 1, "still one day: the update moves figures, not contacts");
    assert_eq!(after[0]["date"], "2024-03-01");
    assert_eq!(after[0]["contacts"], 2);
    assert_eq!(after[0]["abandoned"], 0);
    assert_eq!(after[0]["avg_queue_wait"], 30.0);
    assert_eq!(after[0]["p90_queue_wait"], 50.0);
    assert_eq!(after[0]["avg_handle_time"], 130.0);
    assert_eq!(after[0]["avg_hold"], 20.0);
    assert_eq!(after[0]["avg_after_contact_work"], 10.0);

    // In Seoul, contact b (23:30 UTC) falls on the next day.
    let seoul = rows("Asia/Seoul");
    let days: Vec<(&str, u64)> = seoul
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["date"].as_str().unwrap(), r["contacts"].as_u64().unwrap()))
        .collect();
    assert_eq!(days, [("2024-03-01", 1), ("2024-03-02", 1)]);

    let csv = callqa(&["stats", "--sink", out.to_str().unwrap(), "--by", "channel,queue", "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("date,channel,queue,contacts,inbound,"));
    assert!(lines.next().unwrap().starts_with("2024-03-01,VOICE,Support,2,2,"));
}

#[test]
fn stats_explains_a_missing_sink() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_callqa")).args(["stats", "--sink", "/nonexistent/sink"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a directory written by `callqa ingest --out`"));
}
