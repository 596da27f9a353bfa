//! The two engine tiers (`engine::MemoryReset`): each rule lands on the tier
//! its initial memory calls for, and on either tier a fresh instance starts
//! from the rule's own initial memory, whatever the instance before it left
//! in the pool slot.

use crate::common;
use std::sync::Arc;

use crate::common::{engine, one_segment_session, test_rule};
use callqa::rules::bindings::types::Value;
use callqa::rules::engine::SMALL_MEMORY_BYTES;
use callqa::rules::Outcome;
use callqa::rules::{bundled, evaluation, EvaluationError, Limits, MemoryReset, RuleModule};

/// A test rule on the tier asked for, whatever its memory.
fn on(reset: MemoryReset, rule: &str) -> Arc<RuleModule> {
    RuleModule::load_on(&engine(), Some(reset), test_rule(rule).to_str().unwrap(), ".".as_ref()).unwrap()
}

fn evaluate(module: &RuleModule, params: &[(String, Value)]) -> Result<callqa::rules::Verdict, EvaluationError> {
    evaluation::evaluate(&engine(), module, "t".into(), one_segment_session("s", "您好"), params, &Limits::default())
        .result
}

fn mode(mode: &str) -> Vec<(String, Value)> {
    vec![("mode".to_string(), Value::Text(mode.into()))]
}

#[test]
fn each_rule_lands_on_the_tier_its_memory_calls_for() {
    // Built with a 16 KiB shadow stack (`host/build.rs`): one page. The
    // script interpreter recurses and asks for 1 MiB (plugins/script/build.rs).
    let script = common::load_module("bundled:script");
    assert_eq!(script.reset, MemoryReset::DirtyPages, "script starts with {} bytes", script.initial_memory);
    for name in bundled::names().filter(|n| *n != "script") {
        let module = common::load_module(&format!("bundled:{name}"));
        assert_eq!(module.reset, MemoryReset::Rewrite, "{name} starts with {} bytes of memory", module.initial_memory);
        assert!(
            module.initial_memory > 0 && module.initial_memory <= SMALL_MEMORY_BYTES,
            "{name}: {}",
            module.initial_memory
        );
    }
    // Rust's default 1 MiB shadow stack: 17 pages.
    let counter = common::load_module(test_rule("warm-counter").to_str().unwrap());
    assert_eq!(counter.reset, MemoryReset::DirtyPages);
    assert!(counter.initial_memory >= 17 << 16, "{}", counter.initial_memory);
}

#[test]
fn a_fresh_instance_starts_clean_on_either_tier() {
    for reset in [MemoryReset::Rewrite, MemoryReset::DirtyPages] {
        let hostile = on(reset, "hostile");
        for round in 0..4 {
            // 40 pages grown past the initial memory, more than the rewrite
            // tier keeps mapped: each must be zero, though the instance
            // before filled them.
            let verdict =
                evaluate(&hostile, &mode("grown-memory")).unwrap_or_else(|e| panic!("{reset:?}, round {round}: {e}"));
            assert_eq!(verdict.outcome, Outcome::Pass, "{reset:?}, round {round}: {:?}", verdict.reason);
            // Grown to the cap and trapped: the next instance is fresh too.
            let bomb = evaluate(&hostile, &mode("memory-bomb")).unwrap_err();
            assert_eq!(bomb.code(), "memory-cap", "{reset:?}: {bomb}");
        }
        // State in the data segment (a static counter) starts over.
        let counter = on(reset, "warm-counter");
        for round in 0..3 {
            let verdict = evaluate(&counter, &[]).unwrap();
            assert_eq!(verdict.reason.as_deref(), Some("evaluation 1 of this instance"), "{reset:?}, round {round}");
        }
    }
}
