//! `GET /metrics` reflects what the service did: records by outcome, claim
//! latency, evaluations by rule and outcome, latency and fuel, sheets,
//! quarantines; and real-time QA writes a sheet once a session is complete.

use crate::common;
use std::time::{Duration, Instant};

use crate::serve_support::{metric_value, sample_ctr_ndjson, sample_ctrs, session_document, Server};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_records_evaluations_and_realtime_sheets() {
    let server = Server::start(&[]);
    let client = server.client();
    let before = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&before, "callqa_records_read_total"), 0.0);

    // Six sample records (one contact, two updates, three duplicates) and one bad line.
    let mut ndjson = sample_ctr_ndjson();
    ndjson.extend(b"{\"no\": \"contact id\"}\n");
    let response = client
        .post(server.url("/v1/ctr"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["counts"],
        serde_json::json!({"read": 7, "unique": 1, "update": 2, "duplicate": 3, "dead_letter": 1, "retry": 0})
    );
    assert_eq!(answer["records"][6]["outcome"], "dead-letter");

    for _ in 0..3 {
        let response = client
            .post(server.url("/v1/sessions/evaluate"))
            .header("content-type", "application/json")
            .body(session_document("voice-en-billing-pass.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let sheet: Value = response.json().await.unwrap();
        let greeting = sheet["items"].as_array().unwrap().iter().find(|i| i["rule_id"] == "greeting-hotline").unwrap();
        assert_eq!(greeting["outcome"], "pass");
        assert_eq!(greeting["module_sha256"].as_str().unwrap().len(), 64);
    }

    // The contact record is complete (disconnected, no pending transfer):
    // real-time QA appends its sheet.
    let sheets = server.path("data/sheets.ndjson");
    let deadline = Instant::now() + Duration::from_secs(30);
    let sheet: Value = loop {
        if let Some(line) = std::fs::read_to_string(&sheets).ok().and_then(|t| t.lines().next().map(str::to_owned)) {
            break serde_json::from_str(&line).unwrap();
        }
        assert!(Instant::now() < deadline, "no real-time sheet:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sheet["contact_id"], "6fe40d2a-1a89-4d73-bfcf-5d9c33894f47");

    let text = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let m = |series: &str| metric_value(&text, series);
    assert_eq!(m("callqa_records_read_total"), 7.0, "{text}");
    assert_eq!(m("callqa_records_unique_total"), 3.0);
    assert_eq!(m("callqa_records_update_total"), 2.0);
    assert_eq!(m("callqa_records_duplicate_total"), 3.0);
    assert_eq!(m("callqa_records_dead_lettered_total"), 1.0);
    assert_eq!(m("callqa_claim_latency_seconds_count"), 1.0);
    assert_eq!(m("callqa_evaluations_total{rule=\"greeting-hotline\",outcome=\"pass\"}"), 3.0);
    assert_eq!(
        m("callqa_evaluation_latency_seconds_count{rule=\"greeting-hotline\"}"),
        4.0,
        "three over HTTP, one real-time"
    );
    assert!(m("callqa_fuel_used_total{rule=\"greeting-hotline\"}") > 0.0);
    assert_eq!(m("callqa_sheets_total{source=\"http\"}"), 3.0);
    assert_eq!(m("callqa_sheets_total{source=\"realtime\"}"), 1.0);
    assert_eq!(m("callqa_rules_refusals_total"), 0.0);
    assert_eq!(m("callqa_rule_quarantined{rule=\"greeting-hotline\"}"), 0.0);
    assert_eq!(m("callqa_http_requests_total{route=\"/v1/sessions/evaluate\",status=\"200\"}"), 3.0);
    assert!(text.ends_with("# EOF\n"));

    let health: Value = client.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantines_are_counted_and_released() {
    let rules = tempfile::tempdir().unwrap();
    let hostile = common::test_rule("hostile");
    std::fs::copy(&hostile, rules.path().join("hostile.wasm")).unwrap();
    std::fs::write(
        rules.path().join("rules.toml"),
        "[[rule]]\nid = \"panics\"\nmodule = \"hostile.wasm\"\n[rule.params]\nmode = \"panic\"\n[rule.limits]\nquarantine-after = 2\n",
    )
    .unwrap();
    let server = Server::start(&["--rules", rules.path().to_str().unwrap()]);
    let client = server.client();
    let evaluate = || {
        client
            .post(server.url("/v1/sessions/evaluate"))
            .header("content-type", "application/json")
            .body(session_document("voice-en-billing-pass.json"))
            .send()
    };
    // A caller's documents never count toward quarantine: three panics on
    // /v1/sessions/evaluate leave the rule in service.
    for _ in 0..3 {
        assert_eq!(evaluate().await.unwrap().status().as_u16(), 200);
    }
    let text = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&text, "callqa_evaluations_total{rule=\"panics\",outcome=\"error\"}"), 3.0, "{text}");
    assert_eq!(metric_value(&text, "callqa_rule_quarantined{rule=\"panics\"}"), 0.0);

    // The service's own sessions do: three contacts through real-time QA,
    // one at a time; the second panic in a row quarantines the rule.
    let sheets = server.path("data/sheets.ndjson");
    for (n, contact) in [
        "00000000-0000-4000-8000-00000000000a",
        "00000000-0000-4000-8000-00000000000b",
        "00000000-0000-4000-8000-00000000000c",
    ]
    .iter()
    .enumerate()
    {
        let mut record: Value = serde_json::from_slice(&sample_ctrs()[0]).unwrap();
        record["ContactId"] = Value::from(*contact);
        let response = client
            .post(server.url("/v1/ctr"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&record).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&sheets).unwrap_or_default().lines().count() < n + 1 {
            assert!(Instant::now() < deadline, "no real-time sheet for {contact}:\n{}", server.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let text = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&text, "callqa_quarantines_total{rule=\"panics\"}"), 1.0, "{text}");
    assert_eq!(metric_value(&text, "callqa_rule_quarantined{rule=\"panics\"}"), 1.0);
    assert_eq!(metric_value(&text, "callqa_evaluations_total{rule=\"panics\",outcome=\"error\"}"), 5.0);
    assert_eq!(metric_value(&text, "callqa_evaluations_total{rule=\"panics\",outcome=\"quarantined\"}"), 1.0);
    let status: Value = client.get(server.url("/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["rules"][0]["state"], "quarantined");
    assert!(status["rules"][0]["quarantined"]["last_error"].as_str().unwrap().contains("panic"), "{status}");

    let released: Value =
        client.post(server.url("/v1/rules/panics/release")).send().await.unwrap().json().await.unwrap();
    assert_eq!(released["released"], true);
    let text = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&text, "callqa_rule_quarantined{rule=\"panics\"}"), 0.0);
}
