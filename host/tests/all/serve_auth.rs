//! Who may call `callqa serve`, over a real socket: every endpoint that
//! stores, evaluates or changes state refuses a request without a token
//! (401), with a token of another role (403), and takes one of its role;
//! a revoked token is refused by the running server; a cross-site form
//! post is refused even with an admin token; and neither `callqa tokens
//! list` nor the tokens file shows a secret.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};

use crate::serve_support::{client, run_tokens, sample_ctr_ndjson, sample_ctrs, session_document, Server};

/// One protected endpoint: what to send, and the roles to try.
struct Endpoint {
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// A role the endpoint takes (besides admin).
    right: &'static str,
    /// A role it refuses.
    wrong: &'static str,
}

fn transform_event() -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = sample_ctrs()
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"recordId": format!("r{i}"), "approximateArrivalTimestamp": 1, "data": b64.encode(r)}))
        .collect();
    serde_json::to_vec(&json!({
        "invocationId": "inv-auth",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/ctr",
        "region": "us-east-1",
        "records": records,
    }))
    .unwrap()
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            path: "/v1/ctr",
            content_type: "application/json",
            body: sample_ctrs().remove(0),
            right: "ingest",
            wrong: "evaluate",
        },
        Endpoint {
            path: "/v1/firehose/transform",
            content_type: "application/json",
            body: transform_event(),
            right: "ingest",
            wrong: "evaluate",
        },
        Endpoint {
            path: "/v1/sessions/evaluate",
            content_type: "application/json",
            body: session_document("voice-en-billing-pass.json"),
            right: "evaluate",
            wrong: "ingest",
        },
        Endpoint { path: "/v1/rules/reload", content_type: "", body: Vec::new(), right: "admin", wrong: "ingest" },
        Endpoint {
            path: "/v1/rules/greeting-hotline/release",
            content_type: "",
            body: Vec::new(),
            right: "admin",
            wrong: "evaluate",
        },
    ]
}

async fn post(server: &Server, endpoint: &Endpoint, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = client().post(server.url(endpoint.path)).body(endpoint.body.clone());
    if !endpoint.content_type.is_empty() {
        request = request.header("content-type", endpoint.content_type);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_protected_endpoint_needs_a_token_of_its_role() {
    let server = Server::start(&[]);
    let ingest = server.create_token("lambda", "ingest");
    let evaluate = server.create_token("qa-batch", "evaluate");
    let token_of = |role: &str| match role {
        "ingest" => ingest.clone(),
        "evaluate" => evaluate.clone(),
        "admin" => server.token.clone(),
        other => panic!("no token for {other}"),
    };

    for endpoint in endpoints() {
        let path = endpoint.path;
        let (status, challenge, body) = post(&server, &endpoint, None).await;
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert!(
            challenge.as_deref().is_some_and(|c| c.starts_with("Bearer")),
            "{path}: WWW-Authenticate {challenge:?}"
        );
        assert_eq!(body["error"]["code"], "unauthenticated", "{path}");
        assert!(body["error"]["message"].as_str().unwrap().contains("callqa tokens create"), "{body}");

        let (status, _, body) = post(&server, &endpoint, Some("cqa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).await;
        assert_eq!(status, 401, "{path} with an unknown token: {body}");

        let (status, _, body) = post(&server, &endpoint, Some(&token_of(endpoint.wrong))).await;
        assert_eq!(status, 403, "{path} with a {} token: {body}", endpoint.wrong);
        assert_eq!(body["error"]["code"], "forbidden", "{path}");
        assert!(body["error"]["message"].as_str().unwrap().contains(endpoint.right), "{path}: {body}");

        let (status, _, body) = post(&server, &endpoint, Some(&token_of(endpoint.right))).await;
        assert_eq!(status, 200, "{path} with a {} token: {body}", endpoint.right);
        let (status, _, body) = post(&server, &endpoint, Some(&server.token)).await;
        assert_eq!(status, 200, "{path} with an admin token: {body}");
    }

    // The rules' state: any valid token, none without.
    let response = client().get(server.url("/v1/rules")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    for token in [&ingest, &evaluate, &server.token] {
        let response = client().get(server.url("/v1/rules")).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    // Probes and Prometheus stay open.
    for path in ["/healthz", "/metrics"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_update_without_a_token_is_not_stored() {
    let server = Server::start(&[]);
    let ingest = server.create_token("lambda", "ingest");
    let evaluate = server.create_token("qa-batch", "evaluate");
    let ndjson = sample_ctr_ndjson();
    let response = client()
        .post(server.url("/v1/ctr"))
        .bearer_auth(&ingest)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let before = snapshot(&server.path("out"));
    assert!(!before.is_empty());

    // A later version of the same contact: abandoned after a day in queue.
    let mut forged: Value = serde_json::from_slice(sample_ctrs().last().unwrap()).unwrap();
    forged["LastUpdateTimestamp"] = json!("2022-01-12T00:00:00Z");
    forged["Agent"] = Value::Null;
    forged["QueueInfo"] = json!({"Duration": 86400, "EnqueueTimestamp": "2022-01-11T00:00:00Z"});
    let forged = serde_json::to_vec(&forged).unwrap();
    for token in [None, Some("cqa_forged"), Some(evaluate.as_str())] {
        let mut request =
            client().post(server.url("/v1/ctr")).header("content-type", "application/json").body(forged.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert!(status == 401 || status == 403, "a forged update with {token:?} got {status}");
        assert_eq!(snapshot(&server.path("out")), before, "a refused request changed the sink");
    }

    // The control: with an ingest token, the same record is an update.
    let response = client()
        .post(server.url("/v1/ctr"))
        .bearer_auth(&ingest)
        .header("content-type", "application/json")
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["records"][0]["outcome"], "update", "{answer}");
    assert_ne!(snapshot(&server.path("out")), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_created_or_revoked_while_running_applies_to_the_next_request() {
    let server = Server::start(&[]);
    let send = |token: String| {
        client()
            .post(server.url("/v1/sessions/evaluate"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(session_document("voice-en-billing-pass.json"))
            .send()
    };
    let token = server.create_token("qa-batch", "evaluate");
    assert_eq!(send(token.clone()).await.unwrap().status().as_u16(), 200);

    let listed = run_tokens(&server, &["list"]);
    let id = listed.lines().find(|l| l.contains("qa-batch")).unwrap().split_whitespace().next().unwrap().to_owned();
    run_tokens(&server, &["revoke", &id]);

    let response = send(token.clone()).await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    // The others are untouched.
    assert_eq!(send(server.token.clone()).await.unwrap().status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_site_form_post_is_refused_even_with_an_admin_token() {
    let server = Server::start(&[]);
    let generation = |rules: Value| rules["generation"].clone();
    let rules_now = || async {
        client()
            .get(server.url("/v1/rules"))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = generation(rules_now().await);

    let attempts: [&[(&str, &str)]; 3] = [
        &[("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")],
        &[("origin", "http://evil.example")],
        &[("sec-fetch-site", "cross-site")],
    ];
    for headers in attempts {
        let mut request = client()
            .post(server.url("/v1/rules/reload"))
            .bearer_auth(&server.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("confirm=yes");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{headers:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross-site", "{headers:?}: {body}");
    }
    assert_eq!(generation(rules_now().await), before, "a refused reload reloaded");

    // The server's own pages (same origin) may write.
    let response = client()
        .post(server.url("/v1/rules/reload"))
        .bearer_auth(&server.token)
        .header("origin", format!("http://{}", server.address))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn tokens_list_never_shows_a_secret_and_the_file_holds_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let callqa = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_callqa"))
            .arg("tokens")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("CALLQA_TOKENS")
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    };
    let (ok, secret, note) = callqa(&["create", "--name", "lambda", "--role", "ingest"]);
    assert!(ok, "{note}");
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("cqa_") && secret.len() == 47, "{secret}");
    assert!(note.contains("only time"), "{note}");
    let (ok, other, _) = callqa(&["create", "--name", "ops", "--role", "admin"]);
    assert!(ok);

    let file = std::fs::read_to_string(data.join("tokens.json")).unwrap();
    let tokens: Value = serde_json::from_str(&file).unwrap();
    for s in [&secret, other.trim()] {
        assert!(!file.contains(&s[4..]), "the tokens file holds a secret");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("tokens.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (ok, listed, errors) = callqa(&["list"]);
    assert!(ok, "{errors}");
    assert!(listed.contains("lambda") && listed.contains("ingest") && listed.contains("ops"), "{listed}");
    for token in tokens["tokens"].as_array().unwrap() {
        let hash = token["sha256"].as_str().unwrap();
        assert!(listed.contains(token["id"].as_str().unwrap()));
        assert!(!listed.contains(hash) && !errors.contains(hash), "list shows a hash");
    }
    for s in [&secret, other.trim()] {
        assert!(!listed.contains(&s[4..]) && !errors.contains(&s[4..]), "list shows a secret");
    }

    let (ok, _, errors) = callqa(&["revoke", "00000000"]);
    assert!(!ok);
    assert!(errors.contains("callqa tokens list"), "{errors}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_tokens_file_the_server_starts_and_refuses_protected_requests() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none/tokens.json");
    let server = Server::start(&["--tokens", missing.to_str().unwrap()]);
    let response = client().post(server.url("/v1/rules/reload")).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("no tokens yet"), "{body}");
    assert!(server.log_text().contains("callqa tokens create"), "{}", server.log_text());
    let response = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
