//! The rule author's toolkit: `rule new` scaffolds a project that builds and
//! passes its golden case; `rule test` reports differences and JUnit;
//! `rule run` reports the verdict and every cost against its limit.

use crate::common;
use std::process::Command;

use serde_json::Value;

#[test]
fn a_scaffolded_rust_rule_builds_and_passes_its_golden_case() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::callqa()
        .args(["rule", "new", "polite-close", "--lang", "rust", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let project = dir.path().join("polite-close");
    // Build in the bundled rules' target directory: same SDK, same profile,
    // so its dependencies are already compiled by host/build.rs.
    let target = common::repo_root().join("plugins/target");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "the scaffold must build as-is");
    let module = target.join("wasm32-wasip2/release/polite_close.wasm");
    let out = common::callqa().args(["rule", "test"]).arg(&module).arg(project.join("golden")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");

    let again = common::callqa().args(["rule", "new", "polite-close", "--dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(again.status.code(), Some(2), "never overwrites a project");
    let bad = common::callqa().args(["rule", "new", "Bad_Name", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("kebab-case"));
}

#[test]
#[allow(deprecated)] // unescape_value: the JUnit file is XML 1.0, nothing to normalise
fn rule_test_reports_failures_with_a_diff_and_writes_junit() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    let session = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},
        "segments":[{"id":"t1","role":"agent","text":"您好，欢迎致电","begin_ms":500,"end_ms":2500}]}"#;
    std::fs::write(
        cases.join("a-pass.json"),
        format!(r#"{{"name":"greets","session":{session},"expect":{{"outcome":"pass","findings":["t1"]}}}}"#),
    )
    .unwrap();
    std::fs::write(
        cases.join("b-wrong.json"),
        format!(r#"{{"name":"wrongly expects a fail","session":{session},"expect":{{"outcome":"fail","score":0.0}}}}"#),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let out = common::callqa()
        .args(["rule", "test", "bundled:greeting"])
        .arg(&cases)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok      greets"), "{stdout}");
    assert!(stdout.contains("FAILED  wrongly expects a fail"), "{stdout}");
    assert!(stdout.contains("outcome: expected fail, got pass"), "{stdout}");
    assert!(stdout.contains("score: expected 0, got 1"), "{stdout}");
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");

    // Parse the JUnit file back: one suite, two cases, one failure naming the diff.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases_seen, mut failures) = (Vec::new(), Vec::new());
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let attr = |name: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name)
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match e.name().as_ref() {
                    "testsuite" => assert_eq!(attr("tests").as_deref(), Some("2")),
                    "testcase" => cases_seen.push(attr("name").unwrap()),
                    "failure" => failures.push(attr("message").unwrap()),
                    _ => {}
                }
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(cases_seen, vec!["greets", "wrongly expects a fail"]);
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("outcome: expected fail, got pass"), "{failures:?}");
}

#[test]
fn rule_run_reports_the_verdict_and_each_cost_against_its_limit() {
    let out = common::callqa()
        .args([
            "rule",
            "run",
            "bundled:greeting",
            "--session",
            "samples/sessions/voice-zh-fridge-hotline-pass.json",
            "--params",
            r#"{"within-seconds": 5}"#,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rule"]["id"], "greeting");
    assert!(report["verdict"]["outcome"].is_string());
    for cost in ["fuel", "memory_bytes", "wall_micros", "findings", "longest_message_bytes", "log_bytes"] {
        let c = &report["costs"][cost];
        assert!(c["used"].is_u64() && c["limit"].is_u64(), "{cost}: {c}");
        assert_eq!(c["over"], false, "{cost}: {c}");
    }
    assert!(report["costs"]["fuel"]["used"].as_u64().unwrap() > 0);
    assert_eq!(report["costs"]["fuel"]["limit"], 50_000_000);

    // Over a limit: the fuel line says so.
    let hostile = common::test_rule("hostile");
    let out = common::callqa()
        .args(["rule", "run"])
        .arg(&hostile)
        .args([
            "--session",
            "samples/sessions/voice-zh-fridge-hotline-pass.json",
            "--params",
            r#"{"mode":"loop"}"#,
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["error"]["code"], "fuel-exhausted");
    assert_eq!(report["costs"]["fuel"]["over"], true);

    let human = common::callqa()
        .args(["rule", "run", "bundled:greeting", "--session", "samples/sessions/voice-zh-fridge-hotline-pass.json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("verdict") && text.contains("fuel") && text.contains("50000000"), "{text}");
}
