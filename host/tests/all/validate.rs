//! `callqa validate`: each kind of problem has its own exit code and a
//! message that names it.

use crate::common;
use std::process::Output;

fn validate(args: &[&str]) -> Output {
    common::callqa().arg("validate").args(args).output().unwrap()
}

fn assert_code(out: &Output, code: i32, needle: &str) {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "{text}");
    assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
}

fn path(name: &str) -> String {
    common::test_rule(name).display().to_string()
}

#[test]
fn a_good_module_and_the_sample_ruleset_are_valid() {
    assert_code(&validate(&["bundled:greeting", "samples/rules.toml"]), 0, "rule `greeting` 0.1.0");
    let out = validate(&["bundled:greeting", "--cases", "plugins/greeting/golden"]);
    assert_code(&out, 0, " passed, 0 failed");
}

#[test]
fn each_kind_of_problem_has_its_own_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    assert_code(&validate(&[core.to_str().unwrap()]), 3, "a core WebAssembly module, not a component");
    assert_code(&validate(&[&path("wrong-world")]), 4, "does not implement the `callqa:rule/qa-rule@0.1.0` world");
    assert_code(&validate(&[&path("unknown-import")]), 5, "test:unknown-import/exfil");
    assert_code(&validate(&[&path("bad-schema")]), 6, "parameter name `limit` is empty or declared twice");

    let ruleset = dir.path().join("rules.toml");
    std::fs::write(
        &ruleset,
        "[[rule]]\nid = \"g\"\nmodule = \"bundled:greeting\"\n[rule.params]\nwithin-seconds = 1.5\n",
    )
    .unwrap();
    assert_code(&validate(&[ruleset.to_str().unwrap()]), 7, "parameter `within-seconds` must be an integer, got 1.5");

    assert_code(&validate(&["no/such/rule.wasm"]), 2, "no/such/rule.wasm");
}

#[test]
fn failing_golden_cases_exit_8() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("wrong.json");
    std::fs::write(
        &case,
        r#"{"name":"expects a fail that will not come","session":{"id":"s","contact":{"contact_id":"c","channel":"voice"},
            "segments":[{"id":"t1","role":"agent","text":"您好","begin_ms":0,"end_ms":900}]},"expect":{"outcome":"fail"}}"#,
    )
    .unwrap();
    assert_code(
        &validate(&["bundled:greeting", "--cases", case.to_str().unwrap()]),
        8,
        "outcome: expected fail, got pass",
    );
}
