//! The rules endpoints: a change whose golden cases fail is refused and
//! shown in `GET /v1/rules`; `POST /v1/rules/reload` applies a fixed one;
//! `POST /v1/rules/{id}/release` answers for known and unknown rules.

use crate::serve_support;
use crate::serve_support::{Server, RULESET};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_golden_case_refuses_the_change_and_reload_and_release_answer() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("greeting.wasm"), callqa::rules::bundled::get("greeting").unwrap()).unwrap();
    std::fs::write(rules.path().join("rules.toml"), RULESET).unwrap();
    let server = Server::start(&["--rules", rules.path().to_str().unwrap(), "--rules-poll", "30s"]);
    let client = server.client();

    // A stricter expectation the module does not meet: refused by the golden check.
    let golden = rules.path().join("golden/greeting");
    std::fs::create_dir_all(&golden).unwrap();
    let session = serve_support::repo_root().join("samples/sessions/voice-en-billing-pass.json");
    std::fs::write(
        golden.join("strict.json"),
        serde_json::json!({"session": session, "expect": {"outcome": "fail"}}).to_string(),
    )
    .unwrap();
    let response = client.post(server.url("/v1/rules/reload")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"], "refused");
    assert!(answer["reason"].as_str().unwrap().contains("golden case `strict`"), "{answer}");
    let status: Value = client.get(server.url("/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["generation"], 1);
    assert_eq!(status["rules"][0]["state"], "refused");
    assert_eq!(status["rules"][1]["state"], "active");

    std::fs::remove_dir_all(rules.path().join("golden")).unwrap();
    let response = client.post(server.url("/v1/rules/reload")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let status: Value = client.get(server.url("/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["generation"], 2);
    assert!(status["refusal"].is_null());
    assert_eq!(status["rules"][0]["state"], "active");

    let response = client.post(server.url("/v1/rules/greeting/release")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["released"], false);
    let response = client.post(server.url("/v1/rules/nope/release")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
}
