//! Every kind of unusable record is dead-lettered with its reason; the run
//! completes with status 0 and the counts add up.

use std::process::Command;

#[test]
fn each_kind_of_bad_record_is_dead_lettered_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"ContactId":"c-1","InitiationTimestamp":"2022-01-05T17:12:59Z","LastUpdateTimestamp":"2022-01-05T17:48:35Z"}"#;
    let mut ndjson = Vec::new();
    ndjson.extend_from_slice(good.as_bytes());
    ndjson.extend_from_slice(b"\n{\"ContactId\": \"c-2\",, }\n"); // malformed JSON (line 2)
    ndjson.extend_from_slice(b"{\"ContactId\": \"c-\xff\"}\n"); // invalid UTF-8 (line 3)
    ndjson.extend_from_slice(b"[1, 2, 3]\n"); // not an object (line 4)
    ndjson.extend_from_slice(b"\n"); // blank: not a record
    ndjson.extend_from_slice(b"{\"Channel\": \"VOICE\"}\n"); // missing ContactId (line 6)
    let oversized = format!("{{\"ContactId\": \"c-3\", \"Pad\": \"{}\"}}", "x".repeat(3000));
    ndjson.extend_from_slice(oversized.as_bytes()); // oversized (line 7)
    ndjson.push(b'\n');
    ndjson.extend_from_slice(good.as_bytes()); // duplicate (line 8), no final newline
    std::fs::write(dir.path().join("records.ndjson"), &ndjson).unwrap();
    let event = serde_json::json!({"invocationId": "i", "records": [{"recordId": "r-1", "data": "not*base64"}]});
    std::fs::write(dir.path().join("event.json"), event.to_string()).unwrap();
    std::fs::write(dir.path().join("not-json.txt"), "hello, world\n").unwrap();

    let dead_path = dir.path().join("dead.ndjson");
    let summary_path = dir.path().join("summary.json");
    let output = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["ingest", "--max-record-bytes", "2000", "--store"])
        .arg(format!("file:{}", dir.path().join("store.redb").display()))
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--dead-letter")
        .arg(&dead_path)
        .arg("--summary-json")
        .arg(&summary_path)
        .arg(dir.path().join("records.ndjson"))
        .arg(dir.path().join("event.json"))
        .arg(dir.path().join("not-json.txt"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    let dead: Vec<serde_json::Value> =
        std::fs::read_to_string(&dead_path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let found: Vec<(String, String)> =
        dead.iter().map(|d| (d["reason"].as_str().unwrap().to_owned(), d["position"].to_string())).collect();
    let expected = [
        ("malformed-json", r#"{"line":2}"#),
        ("invalid-utf8", r#"{"line":3}"#),
        ("not-an-object", r#"{"line":4}"#),
        ("missing-contact-id", r#"{"line":6}"#),
        ("oversized", r#"{"line":7}"#),
        ("bad-base64", r#"{"index":0,"recordId":"r-1"}"#),
        ("malformed-json", r#"{"line":1}"#),
    ];
    assert_eq!(found, expected.map(|(r, p)| (r.to_owned(), p.to_owned())));
    for letter in &dead {
        assert!(letter["input"].as_str().is_some_and(|i| !i.is_empty()));
        assert!(letter["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Invalid UTF-8 is kept byte for byte, in base64.
    assert!(dead[1]["record_base64"].is_string());
    assert_eq!(dead[4]["truncated"], true);
    assert_eq!(dead[4]["size"].as_u64(), Some(oversized.len() as u64));

    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let total = &summary["total"];
    let n = |k: &str| total[k].as_u64().unwrap();
    assert_eq!((n("read"), n("unique"), n("duplicates"), n("dead_lettered")), (9, 1, 1, 7));
    assert_eq!(n("read"), n("unique") + n("duplicates") + n("dead_lettered"));
    let formats: Vec<&str> =
        summary["inputs"].as_array().unwrap().iter().map(|i| i["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["ndjson", "firehose-event", "ndjson"]);
}

#[test]
fn without_a_dead_letter_file_each_one_is_reported_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.ndjson"), "{\"Channel\":\"VOICE\"}\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["ingest", "--out", "-", "--store"])
        .arg(format!("file:{}", dir.path().join("store.redb").display()))
        .arg(dir.path().join("bad.ndjson"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dead letter:") && stderr.contains("line 1: missing-contact-id"), "{stderr}");
    assert!(output.stdout.is_empty());
}
