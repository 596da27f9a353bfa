//! Rules built without std (`#![no_std]`, `export_rule!(R, no_std)`), as
//! the bundled rules are: they import nothing but `callqa:rule`, which is
//! what keeps a fresh instance cheap; their panics still reach the user with
//! the message; their allocator frees, so a warm instance does not grow.

use crate::common;
use std::sync::Arc;

use crate::common::{engine, one_segment_session, repo_root, test_rule};
use callqa::rules::Ruleset;
use callqa::session::Session;

fn session(id: &str) -> Arc<Session> {
    one_segment_session(id, "hello")
}

fn ruleset(extra: &str) -> Ruleset {
    let module = test_rule("nostd-panic").display().to_string();
    let text = format!("[[rule]]\nid = \"nostd\"\nmodule = {module:?}\n{extra}");
    Ruleset::parse(&engine(), &text, &repo_root()).expect("the no_std ruleset loads")
}

#[test]
fn bundled_rules_import_only_the_callqa_contract() {
    for name in callqa::rules::bundled::names() {
        let module = common::load_module(&format!("bundled:{name}"));
        let foreign: Vec<&String> = module.imports.iter().filter(|i| !i.starts_with("callqa:rule/")).collect();
        assert!(foreign.is_empty(), "bundled:{name} imports {foreign:?}: was it built with std?");
    }
    let module = common::load_module(test_rule("nostd-panic").to_str().unwrap());
    assert!(module.imports.iter().all(|i| i.starts_with("callqa:rule/")), "{:?}", module.imports);
    assert!(module.stateless);
}

#[test]
fn a_no_std_panic_is_reported_with_its_message() {
    let ruleset = ruleset("");
    let evaluation = ruleset.rules[0].evaluate(&engine(), session("panic-1"));
    let error = evaluation.result.expect_err("the rule panicked");
    assert_eq!(error.code(), "panic", "{error}");
    assert!(error.to_string().contains("the no_std rule panicked on purpose in panic-1"), "{error}");
    assert!(error.to_string().contains("src/lib.rs"), "the location is kept: {error}");
}

#[test]
fn a_warm_no_std_instance_frees_what_it_allocates() {
    // 64 evaluations of a megabyte each fit a 16 MiB cap only if freed memory is reused.
    let ruleset = ruleset("instance = \"warm\"\nrecycle-after = 1000\n[rule.limits]\nmemory-bytes = 16_777_216\n");
    let rule = &ruleset.rules[0];
    for n in 0..64 {
        let evaluation = rule.evaluate(&engine(), session("ok"));
        let verdict = evaluation.result.unwrap_or_else(|e| panic!("evaluation {n}: {e}"));
        assert_eq!(verdict.reason.as_deref(), Some("1048576 bytes of scratch"));
    }
    assert_eq!(rule.warm.as_ref().unwrap().idle(), 1, "one instance served them all");
}
