//! The language: syntax, operators, functions, load errors, the missing-data rule.

mod common;

use callqa_script::{Operators, Outcome};
use common::*;

// ---- load errors, with line and column ----

#[test]
fn syntax_errors_say_where_what_was_found_and_what_was_expected() {
    let seed_typo = SEED.replace("if(承诺催单){", "if(承诺催单{");
    assert_eq!(load_error(&seed_typo, SEED_OPERATORS), "line 7, column 8: expected `)` after the condition, found `{`");
    assert_eq!(load_error("x = 1\ny = 2;", &[]), "line 2, column 1: expected `;` after the statement, found `y`");
    assert_eq!(load_error("return (1 + ;", &[]), "line 1, column 13: expected an expression, found `;`");
    assert_eq!(
        load_error("return (1 + 2", &[]),
        "line 1, column 14: expected `)` to close the `(` at line 1, column 8, found the end of the script"
    );
    assert_eq!(
        load_error("if (true) {\n  return 1;\n", &[]),
        "line 3, column 1: expected `}` to close the block opened at line 1, column 11, found the end of the script"
    );
    assert_eq!(load_error("return \"abc;", &[]), "line 1, column 8: string not closed: expected a closing `\"`");
    assert_eq!(load_error("/* open\n comment", &[]), "line 1, column 1: comment not closed: expected `*/`");
    assert_eq!(load_error("x = 1 # 2;", &[]), "line 1, column 7: unexpected character `#`");
    assert_eq!(load_error("return A & B;", &["A", "B"]), "line 1, column 10: unexpected `&`: did you mean `&&`?");
    assert_eq!(load_error("break;", &[]), "line 1, column 1: `break` outside a `for` loop");
    assert_eq!(
        load_error("else { return 1; }", &[]),
        "line 1, column 1: expected a statement (this `else` follows no `if` block), found `else`"
    );
    assert_eq!(load_error("return @ A;", &["A"]), "line 1, column 8: expected an operator name after `@`");
    assert_eq!(
        load_error("return 99999999999999999999;", &[]),
        "line 1, column 8: number `99999999999999999999` is too large"
    );
    assert_eq!(load_error("1 + 2 = 3;", &[]), "line 1, column 7: only a name can be assigned to (did you mean `==`?)");
}

#[test]
fn columns_count_characters_not_bytes() {
    // `承诺催单` is 4 characters (12 bytes): the `}` is at column 11.
    assert_eq!(load_error("承诺催单 = A }", &["A"]), "line 1, column 10: expected a statement, found `}`");
    assert_eq!(
        load_error("备注 = 1;\n备注时间 = 备注 +;", &[]),
        "line 2, column 12: expected an expression, found `;`"
    );
}

#[test]
fn unknown_functions_are_load_errors() {
    assert_eq!(load_error("x = 1;\nreturn 分钟查(x, 2) > 1;", &[]), "line 2, column 8: unknown function `分钟查`");
    assert_eq!(load_error("return foo();", &[]), "line 1, column 8: unknown function `foo`");
}

#[test]
fn unconfigured_operators_are_load_errors() {
    let msg = load_error(&SEED.replace("!E", "!K"), SEED_OPERATORS);
    assert_eq!(msg, "line 2, column 12: `K` is neither assigned in the script nor a configured operator");
    let msg = load_error(&SEED.replace("@J < 催单时间", "@Q < 催单时间"), SEED_OPERATORS);
    assert_eq!(msg, "line 9, column 16: `Q` is neither assigned in the script nor a configured operator");
    assert_eq!(
        load_error("x = 1;\nreturn @x;", &[]),
        "line 2, column 8: `@x`: `x` is a script variable, not a configured operator"
    );
    // The whole seed without its operators: the first read is reported.
    assert_eq!(
        load_error(SEED, &[]),
        "line 1, column 13: `I` is neither assigned in the script nor a configured operator"
    );
    // Assigning to an operator's name would hide it from the whole script.
    assert_eq!(
        load_error("x = 1;\nA = true;\nreturn A;", SEED_OPERATORS),
        "line 2, column 1: `A` is a configured operator: assigning to it would hide the operator; use another name"
    );
}

#[test]
fn wrong_arity_is_a_load_error() {
    assert_eq!(load_error("return 分钟差(@A) > 1;", &["A"]), "line 1, column 8: `分钟差` takes 2 arguments, found 1");
    assert_eq!(
        load_error("return nearest(@A, 1, true, 2);", &["A"]),
        "line 1, column 8: `nearest` takes 3 arguments, found 4"
    );
    assert_eq!(
        load_error("return contains_any(\"a\");", &[]),
        "line 1, column 8: `contains_any` takes 2 arguments, found 1"
    );
    assert_eq!(load_error("return len();", &[]), "line 1, column 8: `len` takes 1 argument, found 0");
}

// ---- syntax and operators ----

#[test]
fn arithmetic_comparison_and_precedence() {
    assert_eq!(eval("return 1 + 2 * 3 == 7;"), "true");
    assert_eq!(eval("return (1 + 2) * 3 == 9;"), "true");
    assert_eq!(eval("return 7 / 2 == 3 && 7 % 2 == 1 && 7 mod 4 == 3 && -7 / 2 == -3;"), "true");
    assert_eq!(eval("return 7.0 / 2 == 3.5 && 0.1 + 0.2 > 0.3;"), "true");
    assert_eq!(eval("return 1 == 1.0 && 2 <> 3 && 2 != 3 && 3 >= 3 && 3 <= 3 && 2 < 3 && 3 > 2;"), "true");
    assert_eq!(eval("return -(2 - 5) == 3 && 10L == 10 && 1e3 == 1000;"), "true");
    assert_eq!(eval("return \"a\" + 1 + 2 == \"a12\" && 1 + 2 + \"a\" == \"3a\";"), "true");
    assert_eq!(eval("return \"abc\" < \"abd\";"), "true");
    assert_eq!(eval("return 1 == \"1\";"), "false");
    assert_eq!(eval("return 'it\\'s' == \"it's\" && \"\\u4e2d\" == \"中\" && len(\"a\\nb\") == 3;"), "true");
}

#[test]
fn logic_words_and_symbols() {
    assert_eq!(eval("return true and not false or false;"), "true");
    assert_eq!(eval("return !A || B;"), "false");
    assert_eq!(eval("return A && !B;"), "true");
    assert_eq!(eval("return false || true && false;"), "false");
}

#[test]
fn like_in_ternary_mod() {
    assert_eq!(eval("return \"您好请问\" like \"您好%\";"), "true");
    assert_eq!(eval("return \"abcdef\" like \"%cd%\" && \"abcdef\" like \"a%f\" && \"abc\" like \"abc\";"), "true");
    assert_eq!(eval("return \"abcdef\" like \"%dc%\" || \"abc\" like \"ab\" || \"ab\" like \"a%b%c\";"), "false");
    assert_eq!(eval("return \"a%b\" like \"a%\" && \"\" like \"%\";"), "true");
    assert_eq!(eval("return 2 in [1, 2, 3];"), "true");
    assert_eq!(eval("return \"x\" in [\"a\", \"b\"];"), "false");
    assert_eq!(eval("return @A in [1000, 5];"), "true");
    assert_eq!(eval("return (A ? 1 : 2) == 1 && (B ? 1 : 2) == 2;"), "true");
    assert_eq!(eval("return B ? true : A ? false : true;"), "false");
    assert_eq!(eval("return 10 mod 3 == 1 && 10 % 3 == 1;"), "true");
}

#[test]
fn chinese_aliases() {
    assert_eq!(eval("如果 (A) 则 { return true; } 否则 { return false; }"), "true");
    assert_eq!(eval("如果 (B) 则 { return true; } 否则 如果 (A) { return false; } 否则 { return true; }"), "false");
    assert_eq!(eval("如果 (B) { return true; } 否则如果 (A) 则 { return false; }"), "false");
    assert_eq!(eval("if (B) { return true; } else if (!A) { return true; } else { return false; }"), "false");
}

#[test]
fn statements_comments_and_implicit_result() {
    assert_eq!(eval("// a comment\nx = 1; /* another\n one */ x += 2; x -= 1; x++; x--; x++;\nreturn x == 3"), "true");
    assert_eq!(eval("A && !B"), "true");
    assert_eq!(eval("if (A) { x = 1 } ; ; return x == 1;"), "true");
    assert_eq!(eval("l = [1, 2, 3]; return l[0] + l[2] == 4 && len(l) == 3 && l + [4] == [1, 2, 3, 4];"), "true");
}

#[test]
fn bounded_for_loops_with_break_and_continue() {
    assert_eq!(eval("s = 0; for (i = 0; i < 10; i = i + 1) { s = s + i; } return s == 45;"), "true");
    assert_eq!(eval("s = 0; for (i = 0; i < 10; i++) { if (i % 2 == 0) { continue; } if (i > 6) { break; } s += i; } return s == 9;"), "true");
    assert_eq!(eval("n = 0; for (;;) { n++; if (n == 5) { return true; } }"), "true");
    assert_eq!(
        eval("hits = @A; c = 0; for (i = 0; i < len(hits); i++) { if (hits[i] > 1500) { c++; } } return c == 1;"),
        "true"
    );
}

#[test]
fn external_functions() {
    assert_eq!(eval("return contains_any(\"我马上帮您催\", [\"帮您催\", \"跟进\"]);"), "true");
    assert_eq!(eval("return len(find_all(\"a\", \"banana\")) == 3;"), "true");
    assert_eq!(eval("return concat(1, \"b\", true) == \"1btrue\" && concat() == \"\";"), "true");
}

#[test]
fn time_functions() {
    // 分钟差(a, b) = (b - a) / 60000, truncated toward zero, signed.
    assert_eq!(eval("return 分钟差(0, 659999) == 10 && 分钟差(0, 660000) == 11 && 分钟差(660000, 0) == -11;"), "true");
    assert_eq!(eval("return minutes_between(0, -59999) == 0 && minutes_between(0, 90000.7) == 1;"), "true");
    // A list stands for its first element.
    assert_eq!(eval("return 分钟差(@A, 61000) == 1;"), "true");
    assert_eq!(eval("return 距离最近时间(@A, 1500, true) == 2000 && 距离最近时间(@A, 1500, false) == 1000;"), "true");
    assert_eq!(eval("return nearest(@A, 1000, true) == 1000 && nearest(@A, 2000, false) == 2000;"), "true");
    assert_eq!(eval("return nearest([5, 1, 9], 4, true) == 5 && nearest(7, 7, false) == 7;"), "true");
    assert_eq!(eval("return nearest(@A, 2001, true) == null && nearest(@A, 999, false) == null;"), "true");
}

// ---- the missing-data rule, case by case ----

#[test]
fn null_propagates_through_arithmetic() {
    for e in ["null + 1", "1 - null", "null * 2", "2 / null", "null % 2", "-null", "\"a\" + null", "N + 1", "@B + 1"] {
        assert_eq!(eval(&format!("return ({e}) == null;")), "true", "{e}");
    }
}

#[test]
fn null_propagates_through_ordering_comparisons_and_like() {
    for e in ["null < 1", "1 > null", "null <= null", "@B >= 5", "null like \"a%\"", "\"a\" like null", "1 in null"] {
        assert_eq!(eval(&format!("return ({e}) == null;")), "true", "{e}");
    }
}

#[test]
fn null_propagates_through_the_time_functions() {
    for e in [
        "分钟差(null, 1)",
        "分钟差(1, null)",
        "分钟差(@B, 1)",
        "minutes_between(1, @B)",
        "距离最近时间(@A, null, true)",
        "距离最近时间(null, 1, true)",
        "nearest(@A, @B, false)",
        "nearest(@A, 1, null)",
        "nearest(@B, 1, true)",
    ] {
        assert_eq!(eval(&format!("return {e} == null;")), "true", "{e}");
    }
}

#[test]
fn equality_compares_null_as_a_value() {
    assert_eq!(eval("x = null; return x == null;"), "true");
    assert_eq!(eval("return null == null && !(null != null) && !(null <> null);"), "true");
    assert_eq!(eval("return null != 0 && null != false && null != \"\" && !(null == 0);"), "true");
    assert_eq!(eval("return @B == null && @A != null && N == null;"), "true");
    assert_eq!(eval("return null in [1, null] && !(null in [1, 2]);"), "true");
    assert_eq!(eval("return y == null; if (false) { y = 1; }"), "true");
}

#[test]
fn logic_is_three_valued() {
    let table = [
        ("false && null", "false"),
        ("null && false", "false"),
        ("true || null", "true"),
        ("null || true", "true"),
        ("true && null", "null"),
        ("null && true", "null"),
        ("false || null", "null"),
        ("null || false", "null"),
        ("null && null", "null"),
        ("null || null", "null"),
        ("!null", "null"),
        ("not N", "null"),
    ];
    for (e, want) in table {
        let got = eval(&format!("x = {e}; return x == null ? \"null\" == \"null\" : x;"));
        let got = if want == "null" { got } else { eval(&format!("return {e};")) };
        assert_eq!(got, if want == "null" { "true" } else { want }, "{e}");
    }
    // `false && …` and `true || …` do not evaluate the right side.
    assert_eq!(eval("return !(false && 分钟差(\"x\", 1) > 1);"), "true");
    assert_eq!(eval("return true || 分钟差(\"x\", 1) > 1;"), "true");
}

#[test]
fn a_decision_on_null_is_unknown_naming_what_was_missing() {
    assert_eq!(
        eval("if (N) { return true; } return false;"),
        "unknown: `N` at line 1, column 5 is null: operator `N` has no value"
    );
    assert_eq!(
        eval("t = 分钟差(@B, 5);\nif (t > 1) { return true; }\nreturn false;"),
        "unknown: `t` at line 2, column 5 is null: assigned at line 1 from `@B` (line 1, column 9): operator `B` has no hit"
    );
    assert_eq!(
        eval("return A ? null : true;"),
        "unknown: `A ? null : true` at line 1, column 1 is null: the expression evaluates to null"
    );
    assert_eq!(
        eval("x = N ? 1 : 2; return true;"),
        "unknown: `N` at line 1, column 5 is null: operator `N` has no value"
    );
    assert_eq!(eval("return @B < 5;"), "unknown: `@B` at line 1, column 8 is null: operator `B` has no hit");
    assert_eq!(eval("return true && N;"), "unknown: `N` at line 1, column 16 is null: operator `N` has no value");
    assert_eq!(eval("return;"), "unknown: `return` at line 1, column 1 is null: `return` without a value");
    assert_eq!(
        eval("for (i = 0; i < N; i++) { } return true;"),
        "unknown: `N` at line 1, column 17 is null: operator `N` has no value"
    );
    assert_eq!(
        eval("if (false) { y = 1; } return y > 0;"),
        "unknown: `y` at line 1, column 30 is null: it is read before any assignment"
    );
    assert_eq!(
        eval("return upper(N) == null ? null : true;"),
        "unknown: `upper(N) == null ? null : true` at line 1, column 1 is null: the expression evaluates to null"
    );
}

#[test]
fn unknown_records_the_null_condition_in_the_trace() {
    let r = run_with("if (N) { return true; }\nreturn false;", &["N"], &Operators::new()).unwrap();
    assert!(matches!(r.outcome, Outcome::Unknown { .. }));
    assert_eq!(r.trace.to_string(), "N = null; if line 1 N: null → unknown");
}

// ---- runtime errors ----

#[test]
fn runtime_type_errors_name_the_function_and_argument() {
    assert_eq!(
        eval("return 分钟差(\"10:00\", 5) > 1;"),
        "error: line 1, column 8: 分钟差: argument 1 is a string, expected an instant"
    );
    assert_eq!(
        eval("return minutes_between(5, true) > 1;"),
        "error: line 1, column 8: minutes_between: argument 2 is a boolean, expected an instant"
    );
    assert_eq!(
        eval("return 距离最近时间(\"x\", 1, true) > 1;"),
        "error: line 1, column 8: 距离最近时间: argument 1 is a string, expected a list of instants"
    );
    assert_eq!(
        eval("return nearest([1, \"x\"], 1, true) > 1;"),
        "error: line 1, column 8: nearest: argument 1 holds a string, expected instants"
    );
    assert_eq!(
        eval("return nearest(@A, [], 1) > 1;"),
        "error: line 1, column 8: nearest: argument 3 is a number, expected true or false"
    );
    assert_eq!(
        eval("return contains_any(5, [\"a\"]);"),
        "error: line 1, column 8: contains_any: argument 1 is a number, expected a string"
    );
    assert_eq!(
        eval("return len(5) > 1;"),
        "error: line 1, column 8: len: argument 1 is a number, expected a list or a string"
    );
}

#[test]
fn runtime_errors_of_operators() {
    assert_eq!(eval("return 1 < \"a\";"), "error: line 1, column 10: `<`: cannot compare a number with a string");
    assert_eq!(
        eval("return true + 1 > 0;"),
        "error: line 1, column 13: `+`: the left operand is a boolean, expected a number"
    );
    assert_eq!(eval("return 1 / 0 > 0;"), "error: line 1, column 10: `/`: division by zero");
    assert_eq!(eval("return 9223372036854775807 + 1 > 0;"), "error: line 1, column 28: `+`: integer overflow");
    assert_eq!(
        eval("return 1 && true;"),
        "error: line 1, column 10: `&&`: the left operand is a number, expected true or false"
    );
    assert_eq!(
        eval("if (@A) { return true; }"),
        "error: line 1, column 5: the condition of `if` is a list, expected true or false"
    );
    assert_eq!(eval("return 5;"), "error: line 1, column 1: the script returned a number, expected true or false");
    assert_eq!(eval("x = 1;"), "error: line 1, column 1: the script ended without `return`");
    assert_eq!(
        eval("return 1 in 2;"),
        "error: line 1, column 10: `in`: the right operand is a number, expected a list"
    );
    assert_eq!(
        eval("return 1 like \"a\";"),
        "error: line 1, column 10: `like`: the left operand is a number, expected a string"
    );
}

#[test]
fn a_runtime_error_keeps_the_trace_so_far() {
    let p = compile("x = 1;\nreturn 分钟差(\"a\", x) > 1;", &[]).unwrap();
    let e = p.run(&Operators::new(), &no_functions(), &Default::default()).unwrap_err();
    assert_eq!(e.to_string(), "line 2, column 8: 分钟差: argument 1 is a string, expected an instant");
    assert_eq!(e.trace.to_string(), "x = 1 (line 1)");
}
