//! Where one fresh-instance evaluation spends its time: building the store
//! state, the store, instantiating, the call, and dropping the store (which
//! resets the pooled memory). `cargo bench --bench evaluation_phases`.

use std::sync::Arc;
use std::time::Instant;
use callqa::rules::{params, Limits, RuleEngine, RuleModule};
use callqa::rules::store::StoreState;
use callqa::session::Session;
use wasmtime::Store;

fn main() {
    let engine = RuleEngine::new(None).unwrap();
    let module = RuleModule::load(&engine, "bundled:silence", ".".as_ref()).unwrap();
    let mut s: Session = serde_json::from_str(r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},"segments":[{"id":"t1","role":"agent","text":"您好","begin_ms":0,"end_ms":900}]}"#).unwrap();
    s.normalise().unwrap();
    let session = Arc::new(s);
    let params = params::resolve(&module.descriptor.params, &Default::default()).unwrap();
    let limits = Limits::default();
    let n = 3000;
    let (mut t_state, mut t_store, mut t_inst, mut t_call, mut t_drop) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for _ in 0..n {
        let a = Instant::now();
        let state = StoreState::new("x".into(), session.clone(), &limits, engine.patterns_for_bench());
        let b = Instant::now();
        let mut store = Store::new(engine.wasmtime(), state);
        store.limiter(|s| s.memory_cap());
        store.set_fuel(limits.fuel).unwrap();
        store.set_epoch_deadline(100);
        let c = Instant::now();
        let rule = module.pre_for_bench().instantiate(&mut store).unwrap();
        let d = Instant::now();
        let res = store.data_mut().session_resource().unwrap();
        let _ = rule.callqa_rule_rule().call_evaluate(&mut store, res, &params).unwrap();
        let e = Instant::now();
        drop(store);
        let f = Instant::now();
        t_state += (b - a).as_secs_f64(); t_store += (c - b).as_secs_f64(); t_inst += (d - c).as_secs_f64(); t_call += (e - d).as_secs_f64(); t_drop += (f - e).as_secs_f64();
    }
    let us = |t: f64| t / n as f64 * 1e6;
    println!("state {:.1} store {:.1} instantiate {:.1} call {:.1} drop {:.1} (µs mean)", us(t_state), us(t_store), us(t_inst), us(t_call), us(t_drop));
}
