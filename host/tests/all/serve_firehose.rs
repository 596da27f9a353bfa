//! `POST /v1/firehose` (HTTP endpoint delivery) and `/v1/firehose/transform`
//! over a real socket, against the real `callqa serve` binary.

use std::io::Write;

use crate::serve_support::{client, sample_ctrs, Server};
use base64::Engine;
use serde_json::{json, Value};

const KEY: &str = "test-access-key-7f3a";

/// The shape Firehose sends (headers and body as in the HTTP endpoint
/// delivery specification), carrying the sample contact records.
fn delivery(request_id: &str, records: &[Vec<u8>]) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = json!({
        "requestId": request_id,
        "timestamp": 1578090901599u64,
        "records": records.iter().map(|r| json!({"data": b64.encode(r)})).collect::<Vec<_>>(),
    });
    let headers = vec![
        ("X-Amz-Firehose-Protocol-Version", "1.0".to_string()),
        ("X-Amz-Firehose-Request-Id", request_id.to_string()),
        ("X-Amz-Firehose-Source-Arn", "arn:aws:firehose:us-east-1:123456789012:deliverystream/ctr-stream".to_string()),
        ("X-Amz-Firehose-Access-Key", KEY.to_string()),
        (
            "X-Amz-Firehose-Common-Attributes",
            r#"{"commonAttributes":{"instance":"connect-prod","env":"test"}}"#.to_string(),
        ),
        ("Content-Type", "application/json".to_string()),
        ("User-Agent", "Amazon Kinesis Data Firehose Agent/1.0".to_string()),
    ];
    (headers, serde_json::to_vec(&body).unwrap())
}

async fn post(server: &Server, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
    let mut request = client().post(server.url("/v1/firehose")).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captured_shape_request_is_stored_and_a_replay_emits_nothing_twice() {
    let server = Server::start(&["--firehose-access-key", KEY]);
    let records = sample_ctrs();
    let (headers, body) = delivery("ed4acda5-034f-9f42-bba1-f29aea6d7d8f", &records);

    let (status, answer) = post(&server, &headers, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["requestId"], "ed4acda5-034f-9f42-bba1-f29aea6d7d8f");
    assert!(answer["timestamp"].as_i64().unwrap() > 1_600_000_000_000, "{answer}");
    assert!(answer.get("errorMessage").is_none());
    // One contact: its first version and two updates; three re-deliveries dropped.
    let stored = server.sink_lines();
    assert_eq!(stored.len(), 3, "{stored:?}");

    // Firehose retries with the same request id when our answer got lost.
    let (status, answer) = post(&server, &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.sink_lines(), stored, "a replayed request must not emit again");

    // The same records in a new request are duplicates in the store.
    let (headers, body) = delivery("0b1c2d3e-0000-4000-8000-000000000002", &records);
    let (status, answer) = post(&server, &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.sink_lines(), stored);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_access_key_is_401_and_stores_nothing() {
    let server = Server::start(&["--firehose-access-key", KEY]);
    let (mut headers, body) = delivery("11111111-0000-4000-8000-000000000001", &sample_ctrs());
    headers.iter_mut().find(|(n, _)| *n == "X-Amz-Firehose-Access-Key").unwrap().1 = "test-access-key-7f3b".into();
    let (status, answer) = post(&server, &headers, body.clone()).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["requestId"], "11111111-0000-4000-8000-000000000001");
    assert!(answer["errorMessage"].as_str().unwrap().contains("Access-Key"), "{answer}");

    headers.retain(|(n, _)| *n != "X-Amz-Firehose-Access-Key");
    let (status, _) = post(&server, &headers, body).await;
    assert_eq!(status, 401);
    assert!(server.sink_lines().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_body_works() {
    let server = Server::start(&["--firehose-access-key", KEY]);
    let (mut headers, body) = delivery("22222222-0000-4000-8000-000000000002", &sample_ctrs());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    headers.push(("Content-Encoding", "gzip".to_string()));
    let (status, answer) = post(&server, &headers, gz.finish().unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.sink_lines().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_413_compressed_or_not() {
    let server = Server::start(&["--firehose-access-key", KEY, "--max-body-bytes", "4096"]);
    let big: Vec<Vec<u8>> = (0..40).map(|_| sample_ctrs().remove(0)).collect();
    let (headers, body) = delivery("33333333-0000-4000-8000-000000000003", &big);
    assert!(body.len() > 4096);
    let (status, answer) = post(&server, &headers, body.clone()).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["requestId"], "33333333-0000-4000-8000-000000000003");
    assert!(answer["errorMessage"].as_str().unwrap().contains("4096"));

    // Small on the wire, large once inflated: refused the same way.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&body).unwrap();
    let compressed = gz.finish().unwrap();
    assert!(compressed.len() < 4096);
    let mut headers = headers;
    headers.push(("Content-Encoding", "gzip".to_string()));
    let (status, _) = post(&server, &headers, compressed).await;
    assert_eq!(status, 413);
    assert!(server.sink_lines().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_4xx_json_and_bad_records_are_dead_lettered() {
    let server = Server::start(&["--firehose-access-key", KEY]);
    let (headers, _) = delivery("44444444-0000-4000-8000-000000000004", &[]);
    let (status, answer) = post(&server, &headers, b"{\"requestId\": ".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["errorMessage"].is_string());

    // A record that is not a contact record is dead-lettered; the request succeeds.
    let (headers, body) =
        delivery("44444444-0000-4000-8000-000000000004", &[b"not json".to_vec(), sample_ctrs().remove(0)]);
    let (status, answer) = post(&server, &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.sink_lines().len(), 1);

    let response = server
        .client()
        .post(server.url("/v1/sessions/evaluate"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unsupported-media-type");
    let response = server
        .client()
        .post(server.url("/v1/sessions/evaluate"))
        .header("content-type", "application/json")
        .body("{\"id\": 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.json::<Value>().await.unwrap()["error"]["message"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_transformation_endpoint_answers_like_ingest_firehose_response() {
    let server = Server::start(&[]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let records = sample_ctrs();
    let mut event_records: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"recordId": format!("r{i}"), "approximateArrivalTimestamp": 1, "data": b64.encode(r)}))
        .collect();
    event_records.push(json!({"recordId": "bad", "data": b64.encode(b"[1, 2]")}));
    let event = json!({
        "invocationId": "inv-1",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/ctr",
        "region": "us-east-1",
        "records": event_records,
    });
    let response = server.client().post(server.url("/v1/firehose/transform")).json(&event).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    let results: Vec<(&str, &str)> = answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["recordId"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [
            ("r0", "Ok"),
            ("r1", "Dropped"),
            ("r2", "Ok"),
            ("r3", "Dropped"),
            ("r4", "Ok"),
            ("r5", "Dropped"),
            ("bad", "ProcessingFailed")
        ]
    );
    assert_eq!(answer["records"][0]["data"], event_records[0]["data"]);
    assert_eq!(server.sink_lines().len(), 3);
}
