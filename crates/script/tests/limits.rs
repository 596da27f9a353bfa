//! Every limit of the interpreter, bounded and tested.

mod common;

use callqa_script::{CompileOptions, Limits, NoFunctions, Operators, Outcome, Program, Value};
use common::*;

#[test]
fn a_hundred_thousand_nested_parentheses_is_a_load_error_not_a_stack_overflow() {
    let script = format!("return {}1{};", "(".repeat(100_000), ")".repeat(100_000));
    // `return ` is 7 columns; depth 1 is the expression at column 8, depth 257 at column 8 + 256.
    assert_eq!(
        load_error(&script, &[]),
        "line 1, column 264: the script nests deeper than 256 levels (parentheses, blocks, lists, operators)"
    );
    // 255 levels of parentheses are fine.
    let ok = format!("return {}true{};", "(".repeat(255), ")".repeat(255));
    assert_eq!(eval(&ok), "true");
}

#[test]
fn other_deep_nesting_is_bounded_too() {
    for script in [
        format!("return {}true;", "!".repeat(100_000)),
        format!("return {}1 > 0;", "- ".repeat(100_000)),
        format!("x = {}1{};", "[".repeat(100_000), "]".repeat(100_000)),
        format!("{}{}", "if (true) {".repeat(100_000), "}".repeat(100_000)),
        format!("return 1{} > 0;", " + 1".repeat(100_000)),
        format!("return true{};", " && true".repeat(100_000)),
        format!("return {}1;", "true ? 1 : ".repeat(100_000)),
        format!("x = [1]; return x{} > 0;", "[0]".repeat(100_000)),
    ] {
        let msg = load_error(&script, &[]);
        assert!(msg.contains("nests deeper than 256 levels"), "{msg} for {}", &script[..40]);
    }
}

#[test]
fn a_runaway_loop_exhausts_the_step_budget() {
    let p = compile("n = 0;\nfor (;;) { n++; }\nreturn true;", &[]).unwrap();
    let limits = Limits { steps: 10_000, ..Limits::default() };
    let e = p.run(&Operators::new(), &no_functions(), &limits).unwrap_err();
    assert!(e.message.starts_with("step budget exhausted"), "{e}");
    assert_eq!(e.line, 2);
    // The trace stays bounded: 256 steps kept, the rest counted.
    assert_eq!(e.trace.steps.len(), 256);
    assert!(e.trace.truncated > 1000, "{}", e.trace.truncated);
    // An empty body and no condition still consume the budget.
    let p = compile("for (;;) {}", &[]).unwrap();
    assert!(p
        .run(&Operators::new(), &no_functions(), &limits)
        .unwrap_err()
        .message
        .starts_with("step budget exhausted"));
    // The default budget stops `for (i = 0; i >= 0; i++)` too.
    assert_eq!(
        eval("for (i = 0; i >= 0; i++) { } return true;"),
        "error: line 1, column 18: step budget exhausted (1000000 steps)"
    );
}

#[test]
fn a_huge_string_is_a_runtime_error() {
    let r = eval("s = \"xxxxxxxxxxxxxxxx\"; for (i = 0; i < 100; i++) { s = s + s; } return true;");
    assert_eq!(r, "error: line 1, column 59: `+`: a string longer than 1048576 bytes");
    let p = compile("s = \"ab\"; for (i = 0; i < 10; i++) { s = s + s; } return len(s) == 2048;", &[]).unwrap();
    let small = Limits { max_string_bytes: 1000, ..Limits::default() };
    let e = p.run(&Operators::new(), &no_functions(), &small).unwrap_err();
    assert_eq!(e.message, "`+`: a string longer than 1000 bytes");
    assert_eq!(p.run(&Operators::new(), &no_functions(), &Limits::default()).unwrap().outcome, Outcome::True);
}

#[test]
fn a_huge_list_is_a_runtime_error() {
    let r = eval("l = [1]; for (i = 0; i < 100; i++) { l = l + l; } return true;");
    assert_eq!(r, "error: line 1, column 44: `+`: a list longer than 100000 elements");
    // An operator with too many hits is refused too.
    let many: Vec<i64> = (0..20).collect();
    let p = compile("return len(@A) > 0;", &["A"]).unwrap();
    let small = Limits { max_list_len: 10, ..Limits::default() };
    let e = p.run(&Operators::new().hit("A", &many), &no_functions(), &small).unwrap_err();
    assert_eq!(e.message, "@A: a list longer than 10 elements");
    // An external function returning too much is refused.
    let p = compile("return len(find_all(\"a\", \"aaaaaaaaaaaaaaaaaaaa\")) > 0;", &[]).unwrap();
    let e = p.run(&Operators::new(), &TestFunctions, &small).unwrap_err();
    assert_eq!(e.message, "find_all: a list longer than 10 elements");
}

#[test]
fn operator_values_are_read_once_per_run() {
    use std::cell::Cell;
    struct Counting(Cell<u32>);
    impl callqa_script::OperatorValues for Counting {
        fn value(&self, _: &str) -> Value {
            self.0.set(self.0.get() + 1);
            Value::Bool(true)
        }
        fn instants(&self, _: &str) -> Value {
            self.0.set(self.0.get() + 1);
            Value::instants(&[1, 2])
        }
    }
    let p =
        compile("n = 0; for (i = 0; i < 100; i++) { if (A && @A == 1) { n++; } } return n == 100;", &["A"]).unwrap();
    let ops = Counting(Cell::new(0));
    let r = p.run(&ops, &no_functions(), &Limits::default()).unwrap();
    assert_eq!(r.outcome, Outcome::True);
    assert_eq!(ops.0.get(), 2);
}

#[test]
fn a_trace_keeps_huge_values_short() {
    let program = Program::compile(
        "s = 'x'; for (i = 0; i < 12; i++) { s = s + s; } l = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34]; return false;",
        &CompileOptions { operators: &[], functions: &NoFunctions },
    )
    .unwrap();
    let run = program.run(&Operators::new(), &NoFunctions, &Limits::default()).unwrap();
    let json = run.trace.to_json();
    assert!(json.len() < 8_000, "the trace holds the whole values: {} bytes", json.len());
    assert!(json.contains("… (4096 bytes)"), "{json}");
    assert!(json.contains("\"… 2 more\""), "{json}");
}
