//! Hot loading under load: while a client evaluates sessions continuously,
//! a module is replaced by a new version, then by a broken file. No request
//! fails, the new version serves within one second of the file write, and
//! the broken one is refused while the previous version keeps serving.

use crate::serve_support;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::serve_support::{session_document, Server, RULESET};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A different module with the same behaviour: the bundled greeting rule
/// with a custom section appended (components allow them anywhere), as a
/// rebuild with new metadata would be. Unique per run, so the compiled-module
/// cache never has it and the swap includes a real compilation.
fn new_version(bytes: &[u8]) -> Vec<u8> {
    let name = b"callqa-test-version";
    let stamp = format!("{:?}-{}", std::time::SystemTime::now(), std::process::id());
    let payload = stamp.as_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(section.len() as u8);
    out.extend(section);
    out
}

/// Replaces a file the way deploy tools do: write beside it, rename over it.
fn replace(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("wasm.partial");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Served {
    at: Instant,
    status: u16,
    greeting_sha: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_swap_under_load_without_a_failed_request() {
    let rules = tempfile::tempdir().unwrap();
    let v1 = callqa::rules::bundled::get("greeting").unwrap().to_vec();
    let v2 = new_version(&v1);
    let module = rules.path().join("greeting.wasm");
    std::fs::write(&module, &v1).unwrap();
    std::fs::write(rules.path().join("rules.toml"), RULESET).unwrap();
    // Golden cases in the rules directory must pass before a swap.
    let golden = rules.path().join("golden/greeting");
    std::fs::create_dir_all(&golden).unwrap();
    let session = serve_support::repo_root().join("samples/sessions/voice-en-billing-pass.json");
    std::fs::write(
        golden.join("greets.json"),
        serde_json::json!({"session": session, "expect": {"outcome": "pass"}}).to_string(),
    )
    .unwrap();

    let server = Server::start(&["--rules", rules.path().to_str().unwrap(), "--rules-poll", "30s"]);
    let client = server.client();
    let status: Value = client.get(server.url("/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["rules"][0]["module_sha256"], sha(&v1), "{status}");
    assert_eq!(status["golden_cases"], 1, "{status}");

    let served: Arc<Mutex<Vec<Served>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (served, stop, client, url) =
            (served.clone(), stop.clone(), client.clone(), server.url("/v1/sessions/evaluate"));
        let body = session_document("voice-en-billing-pass.json");
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response =
                    client.post(&url).header("content-type", "application/json").body(body.clone()).send().await;
                let (status, greeting_sha) = match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let sheet: Value = r.json().await.unwrap_or_default();
                        let sha = sheet["items"].as_array().and_then(|items| {
                            items
                                .iter()
                                .find(|i| i["rule_id"] == "greeting")
                                .map(|i| i["module_sha256"].as_str().unwrap_or("").to_owned())
                        });
                        (status, sha)
                    }
                    Err(_) => (0, None),
                };
                served.lock().push(Served { at: Instant::now(), status, greeting_sha });
            }
        })
    };
    let wait_for = |n: usize| {
        let served = served.clone();
        async move {
            while served.lock().len() < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(20).await;

    // A new version: serving within one second of the write.
    replace(&module, &v2);
    let written = Instant::now();
    let swapped = loop {
        if let Some(s) = served.lock().iter().find(|s| s.at > written && s.greeting_sha.as_deref() == Some(&sha(&v2))) {
            break s.at;
        }
        assert!(written.elapsed() < Duration::from_secs(30), "the new version never served:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let latency = swapped.duration_since(written);
    eprintln!("the new version served {latency:?} after the write");
    assert!(
        latency < Duration::from_secs(1),
        "the new version served {latency:?} after the write:\n{}",
        server.log_text()
    );
    let before_broken = served.lock().len();
    wait_for(before_broken + 20).await;

    // A broken version: refused, the previous keeps serving.
    replace(&module, b"\0asm\x0d\x00\x01\x00 this is not a component");
    let written = Instant::now();
    let rules_status = loop {
        let status: Value = client.get(server.url("/v1/rules")).send().await.unwrap().json().await.unwrap();
        if status["refusal"].is_object() {
            break status;
        }
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "the broken module was never refused:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let greeting = &rules_status["rules"][0];
    assert_eq!(greeting["state"], "refused", "{rules_status}");
    assert_eq!(greeting["module_sha256"], sha(&v2), "the previous version keeps serving: {rules_status}");
    let reason = greeting["refused"]["reason"].as_str().unwrap();
    assert!(reason.contains("greeting.wasm") && reason.contains("not a valid component"), "{reason}");
    let refused_at = served.lock().len();
    wait_for(refused_at + 20).await;

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let served = std::mem::take(&mut *served.lock());
    let failed: Vec<u16> = served.iter().map(|s| s.status).filter(|s| *s != 200).collect();
    assert!(failed.is_empty(), "{} of {} requests failed: {failed:?}", failed.len(), served.len());
    assert!(served.iter().all(|s| s.greeting_sha.is_some()), "every sheet has the greeting item");
    assert!(
        served[refused_at..].iter().all(|s| s.greeting_sha.as_deref() == Some(&sha(&v2))),
        "after the refusal, v2 serves"
    );

    let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(serve_support::metric_value(&metrics, "callqa_rules_refusals_total"), 1.0, "{metrics}");
    assert!(serve_support::metric_value(&metrics, "callqa_rules_reloads_total{result=\"applied\"}") >= 1.0);
}
