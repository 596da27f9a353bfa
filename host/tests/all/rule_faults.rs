//! A rule that traps, panics, loops forever or otherwise misbehaves gets an
//! `error` item on that sheet; the other items and the other sessions are
//! unaffected, and the run finishes in bounded time.

use crate::common;
use std::time::{Duration, Instant};

use serde_json::Value;

const SESSION: &str = r#"{"id":"s-1","contact":{"contact_id":"c-1","channel":"voice"},
  "segments":[{"id":"t1","role":"agent","text":"您好，欢迎致电","begin_ms":500,"end_ms":2500},
              {"id":"t2","role":"customer","text":"我想催单","begin_ms":3000,"end_ms":4000}]}"#;

/// Every way the hostile test rule misbehaves, and the error code it earns.
const HOSTILE_MODES: &[(&str, &str)] = &[
    ("loop", "fuel-exhausted"),
    ("host-loop", "timeout"),
    ("memory-bomb", "memory-cap"),
    ("recursion", "stack-overflow"),
    ("panic", "panic"),
    ("unreachable", "trap"),
    ("many-findings", "output-cap"),
    ("huge-message", "output-cap"),
    ("log-flood", "output-cap"),
    ("open-file", "failed"),
    ("env", "failed"),
    ("socket", "failed"),
    ("clock", "failed"),
];

#[test]
fn every_misbehaviour_becomes_an_error_item_and_spares_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = common::test_rule("hostile");
    let mut ruleset = String::from("[[rule]]\nid = \"greeting\"\nmodule = \"bundled:greeting\"\n");
    for mode in HOSTILE_MODES.iter().map(|(m, _)| *m) {
        ruleset.push_str(&format!(
            "[[rule]]\nid = \"hostile-{mode}\"\nmodule = {:?}\n[rule.params]\nmode = \"{mode}\"\n",
            hostile.display().to_string()
        ));
        if mode == "host-loop" {
            // Only the wall clock can stop time spent in host calls.
            ruleset.push_str("[rule.limits]\nfuel = 1_000_000_000_000\ntimeout-ms = 100\n");
        }
    }
    std::fs::write(dir.path().join("rules.toml"), ruleset).unwrap();
    std::fs::write(dir.path().join("a.json"), SESSION).unwrap();
    std::fs::write(dir.path().join("b.json"), SESSION.replace("s-1", "s-2")).unwrap();

    let started = Instant::now();
    let out = common::callqa()
        .arg("check")
        .arg("--rules")
        .arg(dir.path().join("rules.toml"))
        .arg(dir.path().join("a.json"))
        .arg(dir.path().join("b.json"))
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "the run must finish in bounded time");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));

    let sheets: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(sheets.len(), 2, "one sheet per session");
    for sheet in &sheets {
        let item = |id: &str| sheet["items"].as_array().unwrap().iter().find(|i| i["rule_id"] == id).unwrap().clone();
        assert_eq!(item("greeting")["outcome"], "pass", "the healthy rule is unaffected: {sheet}");
        assert_eq!(sheet["complete"], false);
        assert_eq!(sheet["score"], 1.0, "the score covers the rules that reached a verdict");

        for (mode, code) in HOSTILE_MODES {
            let it = item(&format!("hostile-{mode}"));
            assert_eq!(it["outcome"], "error", "{mode}: {it}");
            assert_eq!(it["error"]["code"], *code, "{mode}: {it}");
        }

        let looped = item("hostile-loop");
        assert_eq!(looped["outcome"], "error");
        assert_eq!(looped["error"]["code"], "fuel-exhausted", "{looped}");
        assert!(looped["error"]["message"].as_str().unwrap().contains("50000000"), "names the budget: {looped}");

        let panicked = item("hostile-panic");
        assert_eq!(panicked["error"]["code"], "panic");
        assert!(
            panicked["error"]["message"].as_str().unwrap().contains("panicked on purpose"),
            "carries the panic message: {panicked}"
        );

        let trapped = item("hostile-unreachable");
        assert_eq!(trapped["error"]["code"], "trap");
        assert!(trapped["error"]["message"].as_str().unwrap().contains("unreachable"));
    }
}
