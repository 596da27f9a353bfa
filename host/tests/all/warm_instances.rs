//! Warm instances (`instance = "warm"` in the ruleset): one instance reused
//! across evaluations for modules that declare themselves stateless. On real
//! components: the bundled rules (declared stateless) and the test-only
//! `warm-counter` (declared stateless, but counting its evaluations in a
//! static so the tests can see reuse) and `hostile` (not declared).

use crate::common;
use std::sync::Arc;

use crate::common::{engine, one_segment_session, repo_root, test_rule};
use callqa::qa::Inspector;
use callqa::rules::{Evaluation, Ruleset};
use callqa::session::Session;

fn session(id: &str) -> Arc<Session> {
    one_segment_session(id, "您好")
}

fn counter_ruleset(extra: &str) -> Ruleset {
    let text =
        format!("[[rule]]\nid = \"counter\"\nmodule = {:?}\n{extra}", test_rule("warm-counter").display().to_string());
    Ruleset::parse(&engine(), &text, &repo_root()).expect("the counter ruleset loads")
}

/// The evaluation number the counter reports: 1 on a new instance.
fn count(eval: &Evaluation) -> u32 {
    let verdict = eval.result.as_ref().unwrap_or_else(|e| panic!("expected a verdict, got {e}"));
    let reason = verdict.reason.as_deref().unwrap();
    reason.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn bundled_rules_declare_themselves_stateless_and_hostile_does_not() {
    for name in callqa::rules::bundled::names() {
        assert!(
            common::load_module(&format!("bundled:{name}")).stateless,
            "bundled:{name} should declare itself stateless"
        );
    }
    assert!(common::load_module(test_rule("warm-counter").to_str().unwrap()).stateless);
    assert!(!common::load_module(test_rule("hostile").to_str().unwrap()).stateless);
}

#[test]
fn a_fresh_instance_never_carries_state() {
    let ruleset = counter_ruleset("");
    let rule = &ruleset.rules[0];
    assert!(rule.warm.is_none());
    for _ in 0..3 {
        assert_eq!(count(&rule.evaluate(&engine(), session("ok"))), 1);
    }
}

#[test]
fn a_warm_instance_is_reused_and_recycled_after_n_evaluations() {
    let ruleset = counter_ruleset("instance = \"warm\"\nrecycle-after = 3\n");
    let rule = &ruleset.rules[0];
    assert_eq!(rule.warm.as_ref().unwrap().recycle_after(), 3);
    let counts: Vec<u32> = (0..7).map(|_| count(&rule.evaluate(&engine(), session("ok")))).collect();
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1]);
}

#[test]
fn a_warm_instance_is_thrown_away_after_a_trap_a_limit_or_an_error() {
    let ruleset = counter_ruleset("instance = \"warm\"\n[rule.limits]\nfuel = 5_000_000\n");
    let rule = &ruleset.rules[0];
    for (bad, code) in [("trap", "panic"), ("loop", "fuel-exhausted"), ("fail", "failed")] {
        assert_eq!(count(&rule.evaluate(&engine(), session("ok"))), 1, "a new instance before `{bad}`");
        assert_eq!(count(&rule.evaluate(&engine(), session("ok"))), 2, "reused before `{bad}`");
        let failed = rule.evaluate(&engine(), session(bad));
        let error = failed.result.expect_err("the bad evaluation has no verdict");
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(rule.warm.as_ref().unwrap().idle(), 0, "the instance that saw `{bad}` is not kept");
    }
    // Fuel is armed per evaluation: a reused instance gets the whole budget.
    assert_eq!(count(&rule.evaluate(&engine(), session("ok"))), 1);
    let second = rule.evaluate(&engine(), session("ok"));
    assert_eq!(count(&second), 2);
    assert!(second.fuel_used > 0 && second.fuel_used < 5_000_000);
}

#[test]
fn a_warm_instance_that_wrote_output_is_not_reused() {
    let ruleset = counter_ruleset("instance = \"warm\"\n");
    let rule = &ruleset.rules[0];
    assert_eq!(count(&rule.evaluate(&engine(), session("ok"))), 1);
    assert_eq!(count(&rule.evaluate(&engine(), session("print"))), 2);
    assert_eq!(count(&rule.evaluate(&engine(), session("ok"))), 1);
}

#[test]
fn warm_is_refused_for_a_module_that_does_not_declare_itself_stateless() {
    let text = format!(
        "[[rule]]\nid = \"h\"\nmodule = {:?}\ninstance = \"warm\"\n",
        test_rule("hostile").display().to_string()
    );
    let error = format!("{:#}", Ruleset::parse(&engine(), &text, &repo_root()).err().expect("refused"));
    assert!(error.contains("rule `h`") && error.contains("does not declare itself stateless"), "{error}");
    assert!(error.contains("export_rule!(MyRule, stateless)"), "{error}");

    let text = "[[rule]]\nid = \"g\"\nmodule = \"bundled:greeting\"\nrecycle-after = 10\n";
    let error = format!("{:#}", Ruleset::parse(&engine(), text, &repo_root()).err().expect("refused"));
    assert!(error.contains("`recycle-after` applies to warm instances only"), "{error}");

    let text = "[[rule]]\nid = \"g\"\nmodule = \"bundled:greeting\"\ninstance = \"tepid\"\n";
    assert!(Ruleset::parse(&engine(), text, &repo_root()).is_err());
}

/// Every bundled rule, warm, gives the same sheets as fresh on every sample
/// session, evaluated three times over so warm instances are reused.
#[test]
fn warm_sheets_are_the_sheets_of_fresh_instances() {
    let fresh_text = std::fs::read_to_string(repo_root().join("samples/rules.toml")).unwrap();
    let warm_text = fresh_text.replace("[[rule]]\n", "[[rule]]\ninstance = \"warm\"\n");
    assert!(warm_text.matches("instance = \"warm\"").count() >= 8);
    let base = repo_root().join("samples");
    let fresh = Inspector::new(engine(), Arc::new(Ruleset::parse(&engine(), &fresh_text, &base).unwrap()));
    let warm = Inspector::new(engine(), Arc::new(Ruleset::parse(&engine(), &warm_text, &base).unwrap()));
    assert!(warm.ruleset.rules.iter().all(|r| r.warm.is_some()));

    let sessions: Vec<Arc<Session>> = callqa::session::read_sessions(&[repo_root().join("samples/sessions")])
        .unwrap()
        .into_iter()
        .map(|(_, s)| Arc::new(s.unwrap()))
        .collect();
    assert!(sessions.len() >= 15);
    let without_costs = |sheet: &callqa::qa::QaSheet| {
        let mut json = serde_json::to_value(sheet).unwrap();
        for item in json["items"].as_array_mut().unwrap() {
            item.as_object_mut().unwrap().retain(|k, _| k != "fuel_used" && k != "micros");
        }
        json
    };
    let expected: Vec<_> = sessions.iter().map(|s| without_costs(&fresh.inspect(s.clone()))).collect();
    for round in 0..3 {
        for (s, want) in sessions.iter().zip(&expected) {
            assert_eq!(&without_costs(&warm.inspect(s.clone())), want, "round {round}, session {}", s.id);
        }
    }
    assert!(warm.ruleset.rules.iter().all(|r| r.warm.as_ref().unwrap().idle() >= 1), "every rule kept a warm instance");
}
