//! Where one fresh-instance evaluation spends its time: building the store
//! state, the store, instantiating, the call, and dropping the store (which
//! resets the pooled memory). Each module's line names how its memory is
//! reset (the engine tier its initial memory put it in).
//! `cargo bench --bench evaluation_phases`.
//!
//! `CALLQA_PHASES_MODULES` (comma-separated: `bundled:<rule>` or `.wasm`
//! paths, each optionally after `rewrite:` or `dirty-pages:` to force its
//! engine tier; default `bundled:silence`), `CALLQA_PHASES_SESSION` (`tiny`, the
//! default: one segment; `call`: the generated 10-minute call; `chat`) and
//! `CALLQA_BENCH_ITERATIONS` (default 3000 per module) choose what is
//! measured. Several modules are measured interleaved, in rounds, so that
//! noise from other work on the machine hits them alike: compare them
//! within one run. Figures are medians per phase.

use std::sync::Arc;
use std::time::Instant;

use callqa::rules::store::StoreState;
use callqa::rules::{params, Limits, MemoryReset, RuleEngine, RuleModule};
use callqa::session::{synthetic, Session};

fn main() {
    let n: usize = std::env::var("CALLQA_BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let sources = std::env::var("CALLQA_PHASES_MODULES").unwrap_or_else(|_| "bundled:silence".into());
    let engine = RuleEngine::new(None).unwrap();
    let session = Arc::new(match std::env::var("CALLQA_PHASES_SESSION").as_deref() {
        Ok("call") => synthetic::ten_minute_call(),
        Ok("chat") => synthetic::short_chat(),
        _ => {
            let mut s: Session = serde_json::from_str(r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},"segments":[{"id":"t1","role":"agent","text":"您好","begin_ms":0,"end_ms":900}]}"#).unwrap();
            s.normalise().unwrap();
            s
        }
    });
    let limits = Limits::default();
    let modules: Vec<_> = sources
        .split(',')
        .map(|source| {
            // `rewrite:` or `dirty-pages:` before a module places it on that
            // tier whatever its memory, to compare the two.
            let (reset, path) = match source.split_once(':') {
                Some(("rewrite", path)) => (Some(MemoryReset::Rewrite), path),
                Some(("dirty-pages", path)) => (Some(MemoryReset::DirtyPages), path),
                _ => (None, source),
            };
            let module = RuleModule::load_on(&engine, reset, path, ".".as_ref()).unwrap();
            let params = params::resolve(&module.descriptor.params, &Default::default()).unwrap();
            (source, module, params)
        })
        .collect();
    // samples[module][phase]
    let mut samples: Vec<Vec<Vec<_>>> =
        (0..modules.len()).map(|_| (0..6).map(|_| Vec::with_capacity(n)).collect()).collect();
    let rounds = 20;
    for round in 0..=rounds {
        for (m, (_, module, params)) in modules.iter().enumerate() {
            for _ in 0..n / rounds {
                let a = Instant::now();
                let state = StoreState::new("x".into(), session.clone(), &limits, engine.patterns_for_bench());
                let b = Instant::now();
                let mut store = module.new_store(state);
                store.set_fuel(limits.fuel).unwrap();
                store.set_epoch_deadline(100);
                let c = Instant::now();
                let evaluate = module.instantiate(&mut store).unwrap();
                let d = Instant::now();
                let res = store.data_mut().session_resource().unwrap();
                let _ = evaluate.call(&mut store, res, params).unwrap();
                let e = Instant::now();
                drop(store);
                let f = Instant::now();
                // Round 0 warms the pool slots and caches.
                if round > 0 {
                    for (phase, took) in [b - a, c - b, d - c, e - d, f - e, f - a].into_iter().enumerate() {
                        samples[m][phase].push(took.as_secs_f64() * 1e6);
                    }
                }
            }
        }
    }
    println!("median µs per phase, {} evaluations per module", n / rounds * rounds);
    println!(
        "{:<44} {:>6} {:>6} {:>11} {:>6} {:>6} {:>7}",
        "module", "state", "store", "instantiate", "call", "drop", "total"
    );
    for (m, (source, module, _)) in modules.iter().enumerate() {
        let med: Vec<f64> = samples[m]
            .iter_mut()
            .map(|s| {
                s.sort_by(f64::total_cmp);
                s[s.len() / 2]
            })
            .collect();
        let name = format!("{source} ({} KiB, {:?})", module.size / 1024, module.reset);
        println!(
            "{name:<44} {:>6.1} {:>6.1} {:>11.1} {:>6.1} {:>6.1} {:>7.1}",
            med[0], med[1], med[2], med[3], med[4], med[5]
        );
    }
}
