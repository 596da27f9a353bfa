//! Shadow rules: a candidate rule runs beside the active one, its items on
//! the sheet marked `shadow`, never counted in the score (not even when
//! critical); `serve` reports how its outcomes agree with the rule it
//! shadows in `GET /v1/rules` and `/metrics`; a `shadows` that names no
//! active rule refuses the ruleset.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common;
use crate::serve_support::{evaluate, metric_value, session_document, Server};

const SHADOW: &str = "greeting-hotline-strict";
const ACTIVE: &str = "greeting-hotline";

/// The sample ruleset and a stricter greeting in shadow (one parameter
/// changed), critical so that a failure would zero the score if it counted.
fn shadow_ruleset(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::repo_root().join("samples/rules.toml")).unwrap();
    let path = dir.join("shadow.toml");
    std::fs::write(
        &path,
        format!(
            "{text}\n[[rule]]\nid = \"{SHADOW}\"\nmodule = \"bundled:greeting\"\nchannels = [\"voice\"]\n\
             shadow = true\nshadows = \"{ACTIVE}\"\ncritical = true\n[rule.params]\nwithin-seconds = 1\n"
        ),
    )
    .unwrap();
    path
}

fn check(rules: &Path, out: &Path) {
    let output = common::callqa()
        .args(["check", "--rules"])
        .arg(rules)
        .arg("--out")
        .arg(out)
        .arg("samples/sessions")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn sheets(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn item<'a>(sheet: &'a Value, rule: &str) -> Option<&'a Value> {
    sheet["items"].as_array().unwrap().iter().find(|i| i["rule_id"] == rule)
}

/// What an item is, apart from its cost.
fn verdict(item: &Value) -> Value {
    let mut item = item.clone();
    let object = item.as_object_mut().unwrap();
    object.remove("fuel_used");
    object.remove("micros");
    item
}

#[test]
fn a_shadow_rule_is_on_the_sheet_and_leaves_the_score_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (base, shadowed) = (dir.path().join("base.ndjson"), dir.path().join("shadowed.ndjson"));
    check(&common::repo_root().join("samples/rules.toml"), &base);
    check(&shadow_ruleset(dir.path()), &shadowed);
    let (base, shadowed) = (sheets(&base), sheets(&shadowed));
    assert_eq!(base.len(), 17);
    assert_eq!(base.len(), shadowed.len());

    let mut shadow_failed_where_active_passed = 0;
    for (before, after) in base.iter().zip(&shadowed) {
        assert_eq!(before["session_id"], after["session_id"]);
        for field in ["score", "grade", "complete", "critical_failed", "sections"] {
            assert_eq!(before.get(field), after.get(field), "{field} of {}", before["session_id"]);
        }
        let counted: Vec<Value> =
            after["items"].as_array().unwrap().iter().filter(|i| i.get("shadow").is_none()).map(verdict).collect();
        let before_items: Vec<Value> = before["items"].as_array().unwrap().iter().map(verdict).collect();
        assert_eq!(counted, before_items, "the active items of {} are unchanged", before["session_id"]);

        let shadow_items: Vec<&Value> =
            after["items"].as_array().unwrap().iter().filter(|i| i.get("shadow").is_some()).collect();
        match item(after, ACTIVE) {
            // Same filters as the rule it shadows: on the same sheets.
            Some(active) => {
                assert_eq!(shadow_items.len(), 1, "{}", after["session_id"]);
                let shadow = shadow_items[0];
                assert_eq!(
                    (&shadow["rule_id"], &shadow["shadow"], &shadow["critical"]),
                    (&SHADOW.into(), &true.into(), &true.into())
                );
                if active["outcome"] == "pass" && shadow["outcome"] == "fail" {
                    shadow_failed_where_active_passed += 1;
                }
            }
            None => assert!(shadow_items.is_empty(), "{}", after["session_id"]),
        }
    }
    assert!(shadow_failed_where_active_passed > 0, "the stricter greeting must fail where the active one passes");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_reports_how_a_shadow_rule_agrees_with_the_rule_it_shadows() {
    let dir = tempfile::tempdir().unwrap();
    let rules = shadow_ruleset(dir.path());
    let server = Server::start(&["--rules", rules.to_str().unwrap()]);
    let token = server.create_token("evaluator", "evaluate");

    let mut agree = 0u64;
    let mut changes: BTreeMap<String, u64> = BTreeMap::new();
    let mut documents: Vec<String> = std::fs::read_dir(common::repo_root().join("samples/sessions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    documents.sort();
    for name in &documents {
        let sheet = evaluate(&server, &token, session_document(name)).await;
        let (Some(active), Some(shadow)) = (item(&sheet, ACTIVE), item(&sheet, SHADOW)) else { continue };
        assert_eq!(shadow["shadow"], true);
        if active["outcome"] == shadow["outcome"] {
            agree += 1;
        } else {
            let change = format!("{} → {}", active["outcome"].as_str().unwrap(), shadow["outcome"].as_str().unwrap());
            *changes.entry(change).or_default() += 1;
        }
    }
    let disagree: u64 = changes.values().sum();
    assert!(agree > 0 && disagree > 0, "the samples give both: {agree} agree, {changes:?}");

    let status: Value = server.client().get(server.url("/v1/rules")).send().await.unwrap().json().await.unwrap();
    let shown = |id: &str| status["rules"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    let shadow = shown(SHADOW);
    assert_eq!(shadow["shadow"], true);
    assert_eq!(shadow["shadows"], ACTIVE);
    assert_eq!(shadow["agreement"]["agree"], agree);
    assert_eq!(shadow["agreement"]["disagree"], disagree);
    assert_eq!(shadow["agreement"]["changes"], serde_json::to_value(&changes).unwrap());
    let active = shown(ACTIVE);
    assert_eq!(active["shadow"], false);
    assert!(active.get("agreement").is_none());

    let metrics =
        crate::serve_support::client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let series = |agreement: &str| {
        metric_value(
            &metrics,
            &format!("callqa_shadow_items_total{{rule=\"{SHADOW}\",active=\"{ACTIVE}\",agreement=\"{agreement}\"}}"),
        )
    };
    assert_eq!(series("agree"), agree as f64, "{metrics}");
    assert_eq!(series("disagree"), disagree as f64, "{metrics}");
}

#[test]
fn a_shadows_that_names_no_active_rule_refuses_the_ruleset() {
    let dir = tempfile::tempdir().unwrap();
    let greeting = |id: &str, extra: &str| {
        format!(
            "[[rule]]\nid = \"{id}\"\nmodule = \"bundled:greeting\"\n{extra}\n[rule.params]\nwithin-seconds = 8\n\n"
        )
    };
    let cases = [
        (greeting(ACTIVE, "") + &greeting(SHADOW, &format!("shadows = \"{ACTIVE}\"")), "add `shadow = true`"),
        (
            greeting(ACTIVE, "") + &greeting(SHADOW, "shadow = true\nshadows = \"greeting-typo\""),
            "`shadows = \"greeting-typo\"` names no rule of this ruleset (active rules: [\"greeting-hotline\"])",
        ),
        (
            greeting(ACTIVE, "")
                + &greeting("candidate", "shadow = true")
                + &greeting(SHADOW, "shadow = true\nshadows = \"candidate\""),
            "`shadows = \"candidate\"` names a shadow rule",
        ),
    ];
    for (n, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{n}.toml"));
        std::fs::write(&path, text).unwrap();
        let output = common::callqa()
            .args(["check", "--rules"])
            .arg(&path)
            .arg("samples/sessions/voice-en-billing-pass.json")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("rule `{SHADOW}`")) && stderr.contains(expected), "case {n}: {stderr}");
    }
}
