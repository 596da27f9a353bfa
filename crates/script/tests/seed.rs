//! The seed script (催单跟进), unchanged, through each of its branches.

mod common;

use callqa_script::{Operators, Outcome, Step, Value};
use common::*;

const T0: i64 = 1_700_000_000_000; // C: connected to the agent
const MIN: i64 = 60_000;
const PROMISE: i64 = T0 + 2 * MIN; // A
const END: i64 = T0 + 8 * MIN; // J

/// A session with a promise, an earlier chase `chase_before` minutes before it, nothing else.
fn promised(chase_before: i64) -> Operators {
    Operators::new()
        .hit("A", &[PROMISE])
        .miss("E")
        .hit("I", &[T0 - 120 * MIN, PROMISE - chase_before * MIN])
        .miss("B")
        .hit("C", &[T0])
        .miss("D")
        .miss("F")
        .miss("G")
        .hit("J", &[END])
}

fn run(ops: &Operators) -> callqa_script::RunResult {
    run_with(SEED, SEED_OPERATORS, ops).unwrap_or_else(|e| panic!("{e}"))
}

/// The `if` and `return` steps of the trace, rendered.
fn decisions(r: &callqa_script::RunResult) -> String {
    let only = callqa_script::Trace {
        operators: vec![],
        steps: r.trace.steps.iter().filter(|s| !matches!(s, Step::Assign { .. })).cloned().collect(),
        truncated: 0,
    };
    only.to_string()
}

const THEN_THEN: &str = "if line 7 承诺催单: true → then; if line 8 分钟差(上次催单,@A)>10: true → then";
const THEN_ELSE: &str = "if line 7 承诺催单: true → then; if line 8 分钟差(上次催单,@A)>10: false → else";

#[test]
fn seed_parses_unchanged_and_reads_every_operator() {
    let p = compile(SEED, SEED_OPERATORS).unwrap();
    assert_eq!(p.operators(), ["I", "A", "E", "B", "C", "D", "F", "G", "J"]);
    assert_eq!(p.variables(), ["上次催单", "承诺催单", "催单时间", "创单时间", "重启时间", "备注时间"]);
}

#[test]
fn no_promise_is_false_with_the_full_trace() {
    let ops = Operators::new().miss("A").miss("E").miss("I").miss("B").hit("C", &[T0]).miss("D").miss("F").miss("G");
    let r = run(&ops.hit("J", &[END]));
    assert_eq!(r.outcome, Outcome::False);
    assert_eq!(
        r.trace.to_string(),
        "@I = [], @A = [], A = false, @B = [], @C = [1700000000000], @D = [], @F = [], @G = []; \
         上次催单 = null (line 1); 承诺催单 = false (line 2); 催单时间 = null (line 3); 创单时间 = null (line 4); \
         重启时间 = null (line 5); 备注时间 = null (line 6); if line 7 承诺催单: false → skip; return line 14: false"
    );
}

#[test]
fn earlier_chase_and_no_chase_action_is_true() {
    let r = run(&promised(30));
    assert_eq!(r.outcome, Outcome::True);
    assert_eq!(decisions(&r), format!("{THEN_THEN}; return line 9: true"));
    // Which operators decided: B did not hit, D and F did not either.
    let ops: Vec<_> = r.trace.operators.iter().map(|(n, v)| format!("{n}={v}")).collect();
    assert!(ops.contains(&"B=false".to_string()) && ops.contains(&"D=false".to_string()), "{ops:?}");
    assert_eq!(
        r.trace.steps[0],
        Step::Assign { name: "上次催单".into(), value: Value::Int(PROMISE - 30 * MIN), line: 1 }
    );
}

#[test]
fn earlier_chase_and_an_action_in_time_is_false() {
    let r = run(&promised(30).hit("B", &[T0 + 5 * MIN]));
    assert_eq!(r.outcome, Outcome::False);
    assert_eq!(decisions(&r), format!("{THEN_THEN}; return line 9: false"));
}

#[test]
fn earlier_chase_and_an_action_just_10_minutes_after_the_call_is_false() {
    // 分钟差 = 10 whole minutes: not more than 10.
    let r = run(&promised(30).hit("B", &[END + 10 * MIN + 59_999]));
    assert_eq!(r.outcome, Outcome::False);
    let r = run(&promised(30).hit("B", &[END + 11 * MIN]));
    assert_eq!(r.outcome, Outcome::True);
}

#[test]
fn earlier_chase_and_a_late_action_is_true() {
    let r = run(&promised(30).hit("B", &[END + 15 * MIN]));
    assert_eq!(r.outcome, Outcome::True);
    assert_eq!(decisions(&r), format!("{THEN_THEN}; return line 9: true"));
    assert!(r.trace.steps.contains(&Step::Assign {
        name: "催单时间".into(),
        value: Value::Int(END + 15 * MIN),
        line: 3
    }));
}

#[test]
fn earlier_chase_and_a_ticket_created_or_reopened_is_false() {
    for op in ["D", "F"] {
        let r = run(&promised(30).hit(op, &[T0 + 3 * MIN]));
        assert_eq!(r.outcome, Outcome::False, "{op}");
        assert_eq!(decisions(&r), format!("{THEN_THEN}; return line 9: false"));
        assert!(r.trace.operators.contains(&(op.to_string(), Value::Bool(true))));
    }
}

#[test]
fn recent_chase_and_no_remark_is_true() {
    let r = run(&promised(5));
    assert_eq!(r.outcome, Outcome::True);
    assert_eq!(decisions(&r), format!("{THEN_ELSE}; return line 11: true"));
    assert!(r.trace.operators.contains(&("G".to_string(), Value::Bool(false))));
}

#[test]
fn recent_chase_and_a_remark_in_time_is_false() {
    let r = run(&promised(5).hit("G", &[T0 + 6 * MIN]));
    assert_eq!(r.outcome, Outcome::False);
    assert_eq!(decisions(&r), format!("{THEN_ELSE}; return line 11: false"));
}

#[test]
fn recent_chase_and_a_late_remark_is_true() {
    let r = run(&promised(5).hit("G", &[END + 20 * MIN]));
    assert_eq!(r.outcome, Outcome::True);
    assert_eq!(decisions(&r), format!("{THEN_ELSE}; return line 11: true"));
}

#[test]
fn the_customer_calling_it_off_is_false() {
    let r = run(&promised(30).hit("E", &[T0 + 3 * MIN]));
    assert_eq!(r.outcome, Outcome::False);
    assert_eq!(decisions(&r), "if line 7 承诺催单: false → skip; return line 14: false");
    assert!(r.trace.steps.contains(&Step::Assign { name: "承诺催单".into(), value: Value::Bool(false), line: 2 }));
}

#[test]
fn a_promise_with_no_earlier_chase_is_unknown_naming_the_variable() {
    let r = run(&promised(30).miss("I"));
    let Outcome::Unknown { why } = &r.outcome else { panic!("{:?}", r.outcome) };
    assert_eq!((why.name.as_str(), why.line, why.column), ("上次催单", 8, 8));
    assert_eq!(
        why.to_string(),
        "`上次催单` at line 8, column 8 is null: assigned at line 1 from `距离最近时间` (line 1, column 6): \
         no instant of `@I` at or before the pivot"
    );
    assert_eq!(decisions(&r), "if line 7 承诺催单: true → then; if line 8 分钟差(上次催单,@A)>10: null → unknown");
}

#[test]
fn a_remark_only_before_the_call_is_unknown_naming_the_variable() {
    let r = run(&promised(5).hit("G", &[T0 - MIN]));
    let Outcome::Unknown { why } = &r.outcome else { panic!("{:?}", r.outcome) };
    assert_eq!((why.name.as_str(), why.line, why.column), ("备注时间", 11, 21));
    assert!(why.detail.contains("no instant of `@G` at or after the pivot"), "{why}");
    assert_eq!(decisions(&r), format!("{THEN_ELSE}; return line 11: null"));
}

#[test]
fn the_trace_as_json() {
    let r = run(&promised(5));
    let json = r.to_json();
    assert!(
        json.starts_with(
            "{\"outcome\":\"true\",\"missing\":null,\"trace\":{\"operators\":{\"@I\":[1699992800000,1699999820000],"
        ),
        "{json}"
    );
    assert!(json.contains("{\"assign\":\"承诺催单\",\"line\":2,\"value\":true}"), "{json}");
    assert!(
        json.contains(
            "{\"if\":8,\"column\":1,\"condition\":\"分钟差(上次催单,@A)>10\",\"value\":false,\"branch\":\"else\"}"
        ),
        "{json}"
    );
    assert!(json.ends_with("{\"return\":11,\"column\":1,\"value\":true}],\"truncated\":0}}"), "{json}");
    let unknown = run(&promised(30).miss("I")).to_json();
    assert!(unknown.starts_with("{\"outcome\":\"unknown\",\"missing\":{\"name\":\"上次催单\",\"line\":8,\"column\":8,\"detail\":\"assigned at line 1"), "{unknown}");
}

#[test]
fn run_many_times_from_one_parse() {
    let p = compile(SEED, SEED_OPERATORS).unwrap();
    for _ in 0..3 {
        let r = p.run(&promised(30), &TestFunctions, &callqa_script::Limits::default()).unwrap();
        assert_eq!(r.outcome, Outcome::True);
    }
}
