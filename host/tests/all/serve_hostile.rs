//! `callqa serve` against hostile and careless clients, over real sockets:
//! a 200 is never given for a record that was not stored, every resource
//! is bounded, and one caller cannot switch a rule off for the others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::serve_support::{client, evaluate, sample_ctrs, session_document, Server};

const KEY: &str = "hostile-test-key";

fn delivery(request_id: &str, records: &[Vec<u8>]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::to_vec(&json!({
        "requestId": request_id,
        "timestamp": 1578090901599u64,
        "records": records.iter().map(|r| json!({"data": b64.encode(r)})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

async fn deliver(server: &Server, body: Vec<u8>) -> (u16, Value) {
    let response = client()
        .post(server.url("/v1/firehose"))
        .header("X-Amz-Firehose-Access-Key", KEY)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The sample records with another ContactId: a different contact.
fn other_contact(records: &[Vec<u8>], contact_id: &str) -> Vec<Vec<u8>> {
    records
        .iter()
        .map(|r| {
            let mut value: Value = serde_json::from_slice(r).unwrap();
            value["ContactId"] = json!(contact_id);
            serde_json::to_vec(&value).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_request_id_is_refused_and_stores_nothing() {
    let server = Server::start(&["--firehose-access-key", KEY]);
    let records = sample_ctrs();
    let (status, answer) = deliver(&server, delivery("", &records[..1])).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["errorMessage"].as_str().unwrap().contains("requestId is empty"), "{answer}");
    assert!(server.sink_lines().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_request_id_with_other_records_is_a_conflict_not_a_silent_200() {
    let server = Server::start(&["--firehose-access-key", KEY]);
    let first = sample_ctrs();
    let second = other_contact(&first, "11111111-2222-3333-4444-555555555555");

    let (status, answer) = deliver(&server, delivery("req-1", &first)).await;
    assert_eq!(status, 200, "{answer}");
    let stored = server.sink_lines().len();
    assert_eq!(stored, 3);

    // The same id, other records: refused with the conflict named.
    let (status, answer) = deliver(&server, delivery("req-1", &second)).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["errorMessage"].as_str().unwrap().contains("already answered for different records"), "{answer}");
    assert_eq!(server.sink_lines().len(), stored, "nothing stored under the conflicting id");

    // Under a new id, the same records are stored: nothing was lost.
    let (status, _) = deliver(&server, delivery("req-2", &second)).await;
    assert_eq!(status, 200);
    assert_eq!(server.sink_lines().len(), stored + 3);

    // A true replay (same id, same records) is answered 200 again, stores nothing.
    let (status, _) = deliver(&server, delivery("req-1", &first)).await;
    assert_eq!(status, 200);
    assert_eq!(server.sink_lines().len(), stored + 3);
    assert_eq!(server.metric(&client(), "callqa_firehose_replays_total").await, 1.0);

    // Request ids are bounded: a 1 MiB id is refused, not remembered for a day.
    let (status, _) = deliver(&server, delivery(&"x".repeat(1 << 20), &first)).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_invocation_id_with_other_records_is_a_conflict() {
    let server = Server::start(&[]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let event = |records: &[Vec<u8>]| {
        serde_json::to_vec(&json!({
            "invocationId": "inv-1",
            "records": records.iter().enumerate()
                .map(|(i, r)| json!({"recordId": format!("r{i}"), "data": b64.encode(r)})).collect::<Vec<_>>(),
        }))
        .unwrap()
    };
    let token = server.create_token("transform-test", "ingest");
    let post = |body: Vec<u8>| {
        client()
            .post(server.url("/v1/firehose/transform"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let first = sample_ctrs();
    assert_eq!(post(event(&first)).await.unwrap().status().as_u16(), 200);
    assert_eq!(post(event(&first)).await.unwrap().status().as_u16(), 200, "a true replay");
    let second = other_contact(&first, "99999999-2222-3333-4444-555555555555");
    let response = post(event(&second)).await.unwrap();
    assert_eq!(response.status().as_u16(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invocation-id-reused", "{body}");
    assert_eq!(server.sink_lines().len(), 3);
}

/// Reads until the server closes the connection; how long that took.
fn time_to_close(mut stream: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("the server kept the connection open for {limit:?}: {e}"),
        }
    }
}

#[test]
fn idle_and_slow_header_connections_are_closed_after_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1s"]);
    // Idle: connected, nothing sent.
    let idle = TcpStream::connect(&server.address).unwrap();
    let took = time_to_close(idle, Duration::from_secs(10));
    assert!(took < Duration::from_secs(4), "idle connection closed after {took:?}");
    // Trickling a request head one byte every 300 ms.
    let mut slow = TcpStream::connect(&server.address).unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";
    let started = Instant::now();
    for byte in head {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    time_to_close(slow, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(8), "a trickled head was served for {:?}", started.elapsed());

    // An idle keep-alive connection after a request is closed too.
    let mut kept = TcpStream::connect(&server.address).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let took = time_to_close(kept, Duration::from_secs(10));
    assert!(took < Duration::from_secs(4), "idle keep-alive connection closed after {took:?}");
}

#[test]
fn a_trickled_body_gets_408_within_the_body_timeout() {
    let server = Server::start(&["--body-timeout", "1s"]);
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let token = server.create_token("hostile-test", "ingest");
    write!(
        stream,
        "POST /v1/ctr HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(10) {
        let _ = stream.write_all(b"[");
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}", started.elapsed());
    assert!(server.sink_lines().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_healthz_still_answers_and_the_rest_get_503() {
    let server = Server::start(&["--max-connections", "16", "--header-timeout", "30s"]);
    let idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(&server.address).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let health = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let rules = client().get(server.url("/v1/rules")).send().await.unwrap();
    assert_eq!(rules.status().as_u16(), 503);
    assert_eq!(rules.headers()["retry-after"], "1");
    drop(idle);
    // Once the idle connections are gone, service is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = client().get(server.url("/v1/rules")).bearer_auth(server.token.clone()).send().await.unwrap();
        if status.status().as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still {} after the idle connections closed", status.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn sigterm_with_a_trickling_client_exits_within_the_shutdown_deadline() {
    let mut server = Server::start(&["--shutdown-timeout", "2s", "--body-timeout", "120s"]);
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let token = server.create_token("hostile-test", "ingest");
    write!(
        stream,
        "POST /v1/ctr HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n["
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.signal(libc::SIGTERM);
    let trickle = std::thread::spawn(move || {
        while stream.write_all(b" ").is_ok() && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let status = server.wait_exit(Duration::from_secs(15)).expect("callqa serve still running 15 s after SIGTERM");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "exited {took:?} after SIGTERM");
    assert!(status.success(), "{status}: {}", server.log_text());
    trickle.join().unwrap();
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

/// Eight 50 MB bodies and eight gzip bombs at once, against a 64 MiB
/// budget: refused with 503 or 413, and the process stays small.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_large_bodies_and_gzip_bombs_stay_within_the_budget() {
    const BOUND_MIB: f64 = 400.0;
    let server = Server::start(&["--max-buffered-bytes", "67108864"]);
    let before = peak_rss_mib(server.pid());
    let token = server.create_token("hostile-test", "ingest");
    let large = bytes::Bytes::from(vec![b' '; 50 << 20]);
    let bomb = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b' '; 60 << 20]).unwrap();
        bytes::Bytes::from(encoder.finish().unwrap())
    };
    let mut requests = Vec::new();
    for i in 0..16 {
        let body = if i % 2 == 0 { large.clone() } else { bomb.clone() };
        let mut request = client()
            .post(server.url("/v1/ctr"))
            .bearer_auth(&token)
            .header("Content-Type", "application/x-ndjson")
            .body(body);
        if i % 2 == 1 {
            request = request.header("Content-Encoding", "gzip");
        }
        requests.push(tokio::spawn(request.send()));
    }
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap().map(|r| r.status().as_u16()).unwrap_or(0));
    }
    let peak = peak_rss_mib(server.pid());
    eprintln!("peak RSS {peak:.0} MiB (from {before:.0} MiB at start); statuses {statuses:?}");
    assert!(statuses.contains(&503), "none was refused for the budget: {statuses:?}");
    assert!(peak < BOUND_MIB, "peak RSS {peak:.0} MiB (from {before:.0}) over {BOUND_MIB} MiB; statuses {statuses:?}");
    // Still serving.
    assert_eq!(client().get(server.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
}

/// A session long enough that the rules run out of fuel on it.
fn huge_session(segments: usize) -> Vec<u8> {
    let mut session: Value = serde_json::from_slice(&session_document("voice-en-billing-pass.json")).unwrap();
    let turns: Vec<Value> = (0..segments)
        .map(|i| {
            json!({
                "id": format!("s{i}"),
                "role": if i % 2 == 0 { "agent" } else { "customer" },
                "begin_ms": i * 1000,
                "end_ms": i * 1000 + 900,
                "text": "this is not my problem, whatever, calm down, I cannot help you with that today",
            })
        })
        .collect();
    session["segments"] = Value::Array(turns);
    serde_json::to_vec(&session).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_callers_hostile_sessions_do_not_quarantine_a_rule_for_the_others() {
    let server = Server::start(&["--max-session-bytes", "67108864"]);
    let hostile = huge_session(200_000);
    let hostile_token = server.create_token("hostile-client", "evaluate");
    let mut errors = 0;
    for _ in 0..6 {
        let sheet = evaluate(&server, &hostile_token, hostile.clone()).await;
        errors += sheet["items"].as_array().unwrap().iter().filter(|i| i["outcome"] == "error").count();
    }
    assert!(errors >= 6, "the hostile sessions did not exhaust any rule's budget ({errors} errors)");

    let status: Value = server.client().get(server.url("/v1/rules")).send().await.unwrap().json().await.unwrap();
    for rule in status["rules"].as_array().unwrap() {
        assert_eq!(rule["state"], "active", "{rule}");
    }
    let other_client = server.create_token("other-client", "evaluate");
    let sheet = evaluate(&server, &other_client, session_document("voice-en-billing-pass.json")).await;
    for item in sheet["items"].as_array().unwrap() {
        assert_ne!(item["outcome"], "quarantined", "{item}");
        assert_ne!(item["outcome"], "error", "{item}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_rules_name_no_file_paths() {
    let server = Server::start(&[]);
    let dir = server.dir.path().display().to_string();
    let root = crate::serve_support::repo_root().display().to_string();
    for (path, token) in [("/healthz", None), ("/metrics", None), ("/v1/rules", Some(server.token.clone()))] {
        let mut request = client().get(server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let text = request.send().await.unwrap().text().await.unwrap();
        assert!(!text.contains(&dir) && !text.contains(&root), "{path} shows a path: {text}");
        assert!(!text.contains("file:"), "{path} shows a store path: {text}");
    }
}
