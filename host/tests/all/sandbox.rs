//! Hostile rules, built as real components: each misbehaviour ends as an
//! `error` with a reason naming the limit, in bounded time, and the host and
//! the other rules carry on.

use crate::common;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callqa::rules::bindings::types::Value;
use callqa::rules::module::ModuleError;
use callqa::rules::{evaluation, EvaluationError, Limits, RuleModule};
use callqa::session::Session;

fn session() -> Arc<Session> {
    let mut s: Session = serde_json::from_str(
        r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},
            "segments":[{"id":"t1","role":"agent","text":"您好","begin_ms":0,"end_ms":900}]}"#,
    )
    .unwrap();
    s.normalise().unwrap();
    Arc::new(s)
}

fn hostile() -> Arc<RuleModule> {
    common::load_module(common::test_rule("hostile").to_str().unwrap())
}

/// Evaluate the hostile rule in `mode`; returns the result and how long it
/// took to be stopped.
fn run(mode: &str, limits: &Limits) -> (Result<callqa::rules::Verdict, EvaluationError>, Duration, u64) {
    let params = vec![("mode".to_string(), Value::Text(mode.into()))];
    // Load (and on first use build) the module before the clock starts.
    let module = hostile();
    let started = Instant::now();
    let eval = evaluation::evaluate(&common::engine(), &module, "hostile".into(), session(), &params, limits);
    let took = started.elapsed();
    eprintln!("{mode:>14}: stopped after {took:?} ({} fuel): {:?}", eval.fuel_used, eval.result.as_ref().err());
    (eval.result, took, eval.fuel_used)
}

fn error_of(mode: &str, limits: &Limits) -> EvaluationError {
    let (result, took, _) = run(mode, limits);
    assert!(took < Duration::from_secs(5), "{mode} took {took:?}");
    result.expect_err(mode)
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let e = error_of("loop", &Limits::default());
    assert_eq!(e, EvaluationError::FuelExhausted { budget: 50_000_000 });
    assert!(e.to_string().contains("budget of 50000000 fuel"));
}

#[test]
fn the_epoch_deadline_stops_a_rule_that_burns_time_in_host_calls() {
    // Fuel high enough that only the wall clock can stop it.
    let limits = Limits { fuel: u64::MAX / 2, timeout_ms: 100, ..Limits::default() };
    let (result, took, _) = run("host-loop", &limits);
    assert_eq!(result.unwrap_err(), EvaluationError::Timeout { ms: 100 });
    assert!(took < Duration::from_millis(1000), "stopped near its deadline, took {took:?}");
}

#[test]
fn a_memory_bomb_hits_the_memory_cap() {
    let e = error_of("memory-bomb", &Limits::default());
    assert_eq!(e.code(), "memory-cap", "{e}");
    assert!(e.to_string().contains("the cap is 33554432 bytes"), "{e}");
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    assert_eq!(error_of("recursion", &Limits::default()), EvaluationError::StackOverflow);
    // Rust keeps address-taken locals on a shadow stack in linear memory;
    // overflowing that is an out-of-bounds access, and the message says
    // what it most likely is.
    let e = error_of("shadow-recursion", &Limits::default());
    assert_eq!(e.code(), "trap");
    assert!(e.to_string().contains("out of bounds memory access") && e.to_string().contains("shadow stack"), "{e}");
}

#[test]
fn a_panic_carries_its_message() {
    let e = error_of("panic", &Limits::default());
    assert_eq!(e.code(), "panic");
    assert!(e.to_string().contains("panicked on purpose"), "{e}");
}

#[test]
fn an_explicit_trap_is_reported() {
    let e = error_of("unreachable", &Limits::default());
    assert_eq!(e.code(), "trap");
    assert!(e.to_string().contains("unreachable"), "{e}");
}

#[test]
fn output_caps_name_the_cap() {
    let e = error_of("many-findings", &Limits::default());
    assert_eq!(e.code(), "output-cap");
    assert!(e.to_string().contains("10000 findings") && e.to_string().contains("max-findings"), "{e}");

    let e = error_of("huge-message", &Limits::default());
    assert!(e.to_string().contains("1048576 bytes") && e.to_string().contains("max-message-bytes"), "{e}");

    let e = error_of("log-flood", &Limits::default());
    assert!(e.to_string().contains("max-log-bytes"), "{e}");

    let e = error_of("bad-score", &Limits::default());
    assert!(e.to_string().contains("outside [0, 1]"), "{e}");
}

#[test]
fn files_environment_sockets_and_clock_are_denied() {
    for (mode, expect) in [
        ("open-file", "open refused"),
        ("env", "saw 0 environment variables"),
        ("socket", "socket refused"),
        ("clock", "clock reads 0 s"),
    ] {
        let e = error_of(mode, &Limits::default());
        assert_eq!(e.code(), "failed", "{mode}: {e}");
        assert!(e.to_string().contains(expect), "{mode}: {e}");
    }
}

#[test]
fn the_engine_serves_healthy_rules_after_every_hostile_case() {
    for mode in ["loop", "memory-bomb", "recursion", "panic", "unreachable", "many-findings"] {
        let _ = run(mode, &Limits::default());
        let (ok, _, _) = run("pass", &Limits::default());
        assert_eq!(ok.unwrap().reason.as_deref(), Some("1 segments"), "healthy after {mode}");
    }
}

#[test]
fn a_module_importing_an_unknown_interface_is_refused_with_the_import_named() {
    let bytes = std::fs::read(common::test_rule("unknown-import")).unwrap();
    let err = RuleModule::from_bytes(&common::engine(), "unknown-import", &bytes).err().unwrap();
    assert!(matches!(err, ModuleError::ForbiddenImports(_)), "{err}");
    assert!(err.to_string().contains("test:unknown-import/exfil"), "{err}");
}

#[test]
fn not_a_component_and_truncated_files_are_refused() {
    let engine = common::engine();
    let err = RuleModule::from_bytes(&engine, "x", b"GIF89a").err().unwrap();
    assert!(matches!(err, ModuleError::NotWasm), "{err}");
    let err = RuleModule::from_bytes(&engine, "x", b"\0asm\x01\0\0\0").err().unwrap();
    assert!(matches!(err, ModuleError::CoreModule), "{err}");
    let whole = std::fs::read(common::test_rule("hostile")).unwrap();
    let err = RuleModule::from_bytes(&engine, "x", &whole[..whole.len() - 100]).err().unwrap();
    assert!(matches!(err, ModuleError::Invalid(_)), "{err}");
}

#[test]
fn the_same_input_gives_the_same_verdict_and_fuel() {
    let (a, _, fuel_a) = run("pass", &Limits::default());
    let (b, _, fuel_b) = run("pass", &Limits::default());
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(fuel_a, fuel_b);
}
