//! Rules compiled against an earlier `callqa:rule@0.1.0` still load and run
//! after the contract gained a method (`session.find-segments`): wasmtime's
//! linker lets the host provide more than a component imports.
//!
//! `fixtures/chase-follow-up-before-find-segments.wasm` is the bundled
//! `chase-follow-up` as built before `find-segments` existed (it pulls the
//! agent's segments and asks `helpers.contains-any` for each). It must still
//! pass today's golden cases, as today's build does (it
//! finds the promise with `find-segments`).

use crate::common;
use callqa::rules::golden;
use callqa::rules::{Limits, RuleModule};

#[test]
fn a_rule_built_before_find_segments_loads_and_agrees_with_todays_build() {
    let engine = common::engine();
    let fixture = common::repo_root().join("host/tests/fixtures/chase-follow-up-before-find-segments.wasm");
    let bytes = std::fs::read(&fixture).unwrap();
    let old = RuleModule::from_bytes(&engine, "old chase-follow-up", &bytes)
        .unwrap_or_else(|e| panic!("the old build no longer loads: {e}"));
    let new = common::load_module("bundled:chase-follow-up");
    assert_eq!(old.descriptor.id, new.descriptor.id);
    assert_ne!(old.sha256, new.sha256, "the fixture is the old build, not today's");

    let cases = golden::load_cases(&[common::repo_root().join("plugins/chase-follow-up/golden")]).unwrap();
    assert!(cases.len() >= 15);
    for case in &cases {
        let then = golden::run_case(&engine, &old, &Default::default(), case, &Limits::default());
        let now = golden::run_case(&engine, &new, &Default::default(), case, &Limits::default());
        assert!(then.passed(), "old build, {}: {}", case.name, then.differences.join("; "));
        assert!(now.passed(), "today's build, {}: {}", case.name, now.differences.join("; "));
    }
}
