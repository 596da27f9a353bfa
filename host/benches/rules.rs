//! Rule evaluation cost: `cargo bench --bench rules`.
//!
//! On generated sessions of realistic size (`callqa::session::synthetic`: a
//! 10-minute call, 150 segments and 20 events; a short chat) measures, in one
//! run, the median time of one evaluation of each bundled rule: in a fresh
//! instance with the sandbox limits (fuel and epoch deadline) armed and
//! without them, and in a warm instance (`instance = "warm"`) with limits.
//! The comparison with native code, Rhai and Extism is
//! `cargo bench --manifest-path bench/compare/Cargo.toml`.

use std::sync::Arc;
use std::time::Instant;

use callqa::rules::warm_instance::{WarmPool, DEFAULT_RECYCLE_AFTER};
use callqa::rules::{evaluation, params, Limits, RuleEngine, RuleModule};
use callqa::session::{synthetic, Session};

/// Median microseconds of `iterations` evaluations, fresh instances or
/// (with `warm`) instances from the pool.
fn median_micros(
    engine: &RuleEngine,
    module: &RuleModule,
    session: &Arc<Session>,
    iterations: usize,
    warm: Option<&WarmPool>,
) -> f64 {
    let params = params::resolve(&module.descriptor.params, &Default::default()).unwrap();
    let limits = Limits::default();
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let eval = match warm {
            Some(pool) => pool.evaluate(engine, module, "bench".into(), session.clone(), &params, &limits),
            None => evaluation::evaluate(engine, module, "bench".into(), session.clone(), &params, &limits),
        };
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(eval.result.is_ok(), "{:?}", eval.result);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let iterations = std::env::var("CALLQA_BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let metered = RuleEngine::new(None).unwrap();
    let unmetered = RuleEngine::unmetered(None).unwrap();
    let sessions =
        [("10-min call", Arc::new(synthetic::ten_minute_call())), ("short chat", Arc::new(synthetic::short_chat()))];
    println!("evaluation, median of {iterations} (µs)");
    println!("{:<20} {:<12} {:>10} {:>10} {:>8} {:>10}", "rule", "session", "fresh", "no limits", "on/off", "warm");
    for name in callqa::rules::bundled::names() {
        let on = RuleModule::load(&metered, &format!("bundled:{name}"), ".".as_ref()).unwrap();
        let off = RuleModule::load(&unmetered, &format!("bundled:{name}"), ".".as_ref()).unwrap();
        for (label, session) in &sessions {
            let warm = WarmPool::new(DEFAULT_RECYCLE_AFTER);
            // Warm the pool slots and caches before timing.
            median_micros(&metered, &on, session, 50, None);
            median_micros(&unmetered, &off, session, 50, None);
            median_micros(&metered, &on, session, 50, Some(&warm));
            let a = median_micros(&metered, &on, session, iterations, None);
            let b = median_micros(&unmetered, &off, session, iterations, None);
            let w = median_micros(&metered, &on, session, iterations, Some(&warm));
            println!("{name:<20} {label:<12} {a:>10.1} {b:>10.1} {:>7.2}x {w:>10.1}", a / b);
        }
    }
}
