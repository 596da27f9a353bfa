//! `callqa check` over `samples/` reproduces the golden sheets
//! (`samples/golden/sheets.ndjson`), timing and fuel aside; a malformed
//! document is reported with its file and the run goes on.

use crate::common;
use serde_json::Value;

/// Timing and fuel vary with the machine and the toolchain; the verdicts,
/// module hashes aside, must not.
fn stable(mut sheet: Value) -> Value {
    for item in sheet["items"].as_array_mut().unwrap() {
        let item = item.as_object_mut().unwrap();
        item.remove("micros");
        item.remove("fuel_used");
        item.remove("module_sha256");
    }
    sheet
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| stable(serde_json::from_str(l).unwrap())).collect()
}

#[test]
fn sample_sessions_give_the_golden_sheets() {
    let out = common::callqa().args(["check", "--rules", "samples/rules.toml", "samples/sessions"]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let got = lines(&String::from_utf8(out.stdout).unwrap());
    let golden_path = common::repo_root().join("samples/golden/sheets.ndjson");
    if std::env::var_os("CALLQA_BLESS").is_some() {
        let text: String = got.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(&golden_path, text).unwrap();
    }
    let want = lines(&std::fs::read_to_string(&golden_path).unwrap());
    assert!(got.len() >= 12, "at least 12 sample sessions, got {}", got.len());
    assert_eq!(got.len(), want.len(), "sheet count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            g, w,
            "sheet for {} differs from the golden one (CALLQA_BLESS=1 rewrites it after review)",
            w["session_id"]
        );
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("sessions inspected"), "a human summary on stderr: {summary}");
}

#[test]
fn a_malformed_document_is_reported_and_the_rest_still_get_sheets() {
    let out = common::callqa()
        .args(["check", "--rules", "samples/rules.toml", "samples/sessions", "samples/malformed"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "rejected documents exit 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("samples/malformed/"), "names the file: {stderr}");
    let sheets = String::from_utf8(out.stdout).unwrap().lines().count();
    assert!(sheets >= 12, "the good documents still get their sheets");
}

#[test]
fn every_sheet_item_names_its_module_and_costs() {
    let out = common::callqa().args(["check", "--rules", "samples/rules.toml", "samples/sessions"]).output().unwrap();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let sheet: Value = serde_json::from_str(line).unwrap();
        for item in sheet["items"].as_array().unwrap() {
            assert_eq!(item["module_sha256"].as_str().unwrap().len(), 64, "{item}");
            assert!(item["fuel_used"].as_u64().unwrap() > 0, "{item}");
            assert!(!item["rule_version"].as_str().unwrap().is_empty());
        }
    }
}

/// No clock or randomness leaks into a rule: two runs over the samples give
/// the same verdicts and the same fuel, item for item.
#[test]
fn runs_are_deterministic_down_to_the_fuel() {
    let run = || {
        let out =
            common::callqa().args(["check", "--rules", "samples/rules.toml", "samples/sessions"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let mut sheet: Value = serde_json::from_str(l).unwrap();
                for item in sheet["items"].as_array_mut().unwrap() {
                    item.as_object_mut().unwrap().remove("micros");
                }
                sheet
            })
            .collect::<Vec<_>>()
    };
    let (first, second) = (run(), run());
    assert!(!first.is_empty());
    assert_eq!(first, second);
}

/// In a terminal (a pseudo-terminal from util-linux `script`), stdout is a
/// table a person reads; piped, the tests above get NDJSON.
#[test]
fn in_a_terminal_the_sheets_are_a_table_not_json() {
    let command = format!(
        "CALLQA_CACHE_DIR={} {} check --rules samples/rules.toml samples/sessions",
        common::cache_dir().display(),
        env!("CARGO_BIN_EXE_callqa")
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(common::repo_root())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux `script` runs the command in a pseudo-terminal");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("session") && text.contains("channel  score  grade"), "{text}");
    assert!(text.contains("17 sheets (score 0–100"), "{text}");
    assert!(!text.contains("\"session_id\""), "no NDJSON in a terminal: {text}");
    // The failing rule of a sample session is named on its line.
    assert!(text.lines().any(|l| l.contains("forbidden-phrases")), "{text}");
}
