//! A ruleset that cannot be run is refused as a whole, with a message that
//! names the rule, the parameter or module, and the problem.

use crate::common;
use std::path::Path;

fn refuse(ruleset: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, ruleset).unwrap();
    std::fs::write(dir.path().join("s.json"), r#"{"id":"s","contact":{"contact_id":"c","channel":"chat"}}"#).unwrap();
    let out = common::callqa().arg("check").arg("--rules").arg(&rules).arg(dir.path().join("s.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unusable ruleset exits 2");
    assert!(out.stdout.is_empty(), "no sheets from a refused ruleset");
    String::from_utf8(out.stderr).unwrap()
}

fn module_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[test]
fn a_parameter_of_the_wrong_type_is_named() {
    let err =
        refuse("[[rule]]\nid = \"greet\"\nmodule = \"bundled:greeting\"\n[rule.params]\nwithin-seconds = \"ten\"\n");
    assert!(err.contains("rule `greet`"), "{err}");
    assert!(err.contains("within-seconds") && err.contains("must be an integer"), "{err}");
}

#[test]
fn an_unknown_parameter_lists_the_declared_ones() {
    let err = refuse("[[rule]]\nid = \"greet\"\nmodule = \"bundled:greeting\"\n[rule.params]\nwithin-secs = 5\n");
    assert!(err.contains("unknown parameter `within-secs`") && err.contains("within-seconds"), "{err}");
}

#[test]
fn an_unknown_module_is_named() {
    let err = refuse("[[rule]]\nid = \"x\"\nmodule = \"bundled:no-such-rule\"\n");
    assert!(err.contains("no bundled rule `no-such-rule`") && err.contains("greeting"), "{err}");
    let err = refuse("[[rule]]\nid = \"x\"\nmodule = \"missing/rule.wasm\"\n");
    assert!(err.contains("missing/rule.wasm") && err.contains("No such file"), "{err}");
}

#[test]
fn a_component_of_another_world_is_refused() {
    let wasm = common::test_rule("wrong-world");
    let err = refuse(&format!("[[rule]]\nid = \"w\"\nmodule = {}\n", module_path(&wasm)));
    assert!(err.contains("does not implement the `callqa:rule/qa-rule@0.1.0` world"), "{err}");
}

#[test]
fn a_core_module_and_a_truncated_component_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = refuse(&format!("[[rule]]\nid = \"c\"\nmodule = {}\n", module_path(&core)));
    assert!(err.contains("a core WebAssembly module, not a component"), "{err}");

    let whole = std::fs::read(common::test_rule("hostile")).unwrap();
    let truncated = dir.path().join("truncated.wasm");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let err = refuse(&format!("[[rule]]\nid = \"t\"\nmodule = {}\n", module_path(&truncated)));
    assert!(err.contains("not a valid component"), "{err}");
}

#[test]
fn duplicate_ids_and_bad_limits_are_refused() {
    let err = refuse(
        "[[rule]]\nid = \"a\"\nmodule = \"bundled:greeting\"\n[[rule]]\nid = \"a\"\nmodule = \"bundled:silence\"\n",
    );
    assert!(err.contains("declared twice"), "{err}");
    let err = refuse("[[rule]]\nid = \"a\"\nmodule = \"bundled:greeting\"\n[rule.limits]\nfuels = 5\n");
    assert!(err.contains("unknown limit `fuels`"), "{err}");
}
