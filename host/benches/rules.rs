//! Rule evaluation cost: `cargo bench --bench rules`.
//!
//! Generates sessions of realistic size (a 10-minute call: 150 segments, 20
//! events; a short chat) and measures, in one run, the median time of one
//! fresh-instance evaluation of each bundled rule, with the sandbox limits
//! (fuel and epoch deadline) armed and without them, and their ratio.

use std::sync::Arc;
use std::time::Instant;

use callqa::rules::{evaluation, params, Limits, RuleEngine, RuleModule};
use callqa::session::Session;
use serde_json::{json, Value};

fn call_session() -> Session {
    let lines_agent = ["您好，欢迎致电售后服务中心，请问有什么可以帮您？", "我马上帮您催一下，请稍等", "好的，我帮您查询一下订单", "thank you for calling, is there anything else?"];
    let lines_customer = ["我的冰箱不制冷了", "我已经催了好几次了", "订单号是 2024050112345", "okay, thanks"];
    let segments: Vec<Value> = (0..150)
        .map(|i| {
            let agent = i % 2 == 0;
            let text = if agent { lines_agent[i % 4] } else { lines_customer[i % 4] };
            json!({"id": format!("t{i}"), "role": if agent {"agent"} else {"customer"}, "text": text,
                   "begin_ms": i * 4000, "end_ms": i * 4000 + 3500})
        })
        .collect();
    let kinds = ["ticket-chased", "remark", "order", "ticket-created"];
    let events: Vec<Value> = (0..20)
        .map(|i| json!({"kind": kinds[i % 4], "at": format!("2024-05-01T09:{:02}:00Z", i * 2), "attributes": {"ticket": format!("T-{i}")}}))
        .collect();
    session(json!({"id": "call", "contact": {"contact_id": "call", "channel": "voice", "queue": "Hotline",
        "initiated_at": "2024-05-01T09:00:00Z", "connected_to_agent_at": "2024-05-01T09:00:30Z"},
        "segments": segments, "events": events}))
}

fn chat_session() -> Session {
    let segments: Vec<Value> = (0..12)
        .map(|i| json!({"id": format!("m{i}"), "role": if i % 2 == 0 {"agent"} else {"customer"},
                        "text": if i % 2 == 0 {"您好，请问有什么可以帮您"} else {"我想退款"}, "begin_ms": i * 20_000, "end_ms": i * 20_000}))
        .collect();
    session(json!({"id": "chat", "contact": {"contact_id": "chat", "channel": "chat", "connected_to_agent_at": "2024-05-01T09:00:00Z"}, "segments": segments}))
}

fn session(v: Value) -> Session {
    let mut s: Session = serde_json::from_value(v).unwrap();
    s.normalise().unwrap();
    s
}

/// Median microseconds of `iterations` fresh-instance evaluations.
fn median_micros(engine: &RuleEngine, module: &RuleModule, session: &Arc<Session>, iterations: usize) -> f64 {
    let params = params::resolve(&module.descriptor.params, &Default::default()).unwrap();
    let limits = Limits::default();
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let eval = evaluation::evaluate(engine, module, "bench".into(), session.clone(), &params, &limits);
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
    let sessions = [("10-min call", Arc::new(call_session())), ("short chat", Arc::new(chat_session()))];
    println!("fresh-instance evaluation, median of {iterations} (µs)");
    println!("{:<20} {:<12} {:>10} {:>10} {:>8}", "rule", "session", "limits on", "off", "on/off");
    for name in callqa::rules::bundled::names() {
        let on = RuleModule::load(&metered, &format!("bundled:{name}"), ".".as_ref()).unwrap();
        let off = RuleModule::load(&unmetered, &format!("bundled:{name}"), ".".as_ref()).unwrap();
        for (label, session) in &sessions {
            // Warm the pool slots and caches before timing.
            median_micros(&metered, &on, session, 50);
            median_micros(&unmetered, &off, session, 50);
            let a = median_micros(&metered, &on, session, iterations);
            let b = median_micros(&unmetered, &off, session, iterations);
            println!("{name:<20} {label:<12} {a:>10.1} {b:>10.1} {:>7.2}x", a / b);
        }
    }
}
