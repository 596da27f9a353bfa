//! Firehose data transformation: an event in, a response answering every
//! recordId in order: Ok for unique, Dropped for duplicates,
//! ProcessingFailed for what cannot be decoded.

use std::path::Path;
use std::process::Command;

use base64::Engine;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn run(dir: &Path, event: &Path) -> serde_json::Value {
    let response = dir.join("response.json");
    let output = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["ingest", "--fingerprint", "raw", "--store"])
        .arg(format!("file:{}", dir.join("store.redb").display()))
        .arg("--firehose-response")
        .arg(&response)
        .arg("--dead-letter")
        .arg(dir.join("dead.ndjson"))
        .arg(event)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("(Firehose transformation event)"));
    serde_json::from_slice(&std::fs::read(response).unwrap()).unwrap()
}

#[test]
fn every_record_id_is_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = br#"{"ContactId":"c-1","InitiationTimestamp":"2022-01-05T17:12:59Z","LastUpdateTimestamp":"2022-01-05T17:48:35Z"}"#;
    let b = br#"{"ContactId":"c-2","InitiationTimestamp":"2022-01-05T18:00:00Z","LastUpdateTimestamp":"2022-01-05T18:30:00Z"}"#;
    let records = [
        ("49546986683135544286507457936321625675700192471156785154", b64(a)),
        ("49546986683135544286507457936321625675700192471156785155", b64(b)),
        ("49546986683135544286507457936321625675700192471156785156", b64(a)),
        ("49546986683135544286507457936321625675700192471156785157", "%%not base64%%".to_string()),
        ("49546986683135544286507457936321625675700192471156785158", b64(b"{\"Channel\":\"VOICE\"}")),
        ("49546986683135544286507457936321625675700192471156785159", b64(b"{\"ContactId\": broken")),
    ];
    let event = serde_json::json!({
        "invocationId": "invocationIdExample",
        "deliveryStreamArn": "arn:aws:kinesis:EXAMPLE",
        "region": "us-east-1",
        "records": records.iter().map(|(id, data)| serde_json::json!({
            "recordId": id,
            "approximateArrivalTimestamp": 1495072949453u64,
            "data": data,
        })).collect::<Vec<_>>(),
    });
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, serde_json::to_vec_pretty(&event).unwrap()).unwrap();

    let response = run(dir.path(), &event_path);
    let answered = response["records"].as_array().unwrap();
    assert_eq!(response.as_object().unwrap().len(), 1, "only `records` in the response");
    assert_eq!(answered.len(), records.len());
    let results: Vec<&str> = answered.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["Ok", "Ok", "Dropped", "ProcessingFailed", "ProcessingFailed", "ProcessingFailed"]);
    for (answer, (id, data)) in answered.iter().zip(&records) {
        assert_eq!(answer["recordId"], *id);
        assert_eq!(answer["data"], *data, "data is passed through unchanged");
        assert_eq!(answer.as_object().unwrap().len(), 3);
    }
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("dead.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["bad-base64", "missing-contact-id", "malformed-json"]);
    assert_eq!(dead[0]["position"]["recordId"], records[3].0);

    // Firehose retries the invocation: what was delivered is now Dropped.
    let retry = run(dir.path(), &event_path);
    let results: Vec<&str> =
        retry["records"].as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["Dropped", "Dropped", "Dropped", "ProcessingFailed", "ProcessingFailed", "ProcessingFailed"]);
}
