//! What the sandbox costs: `cargo bench --manifest-path bench/compare/Cargo.toml`.
//!
//! On a generated 10-minute call and a short chat, for `forbidden-phrases`
//! and `chase-follow-up`, in one run:
//! 1. native: the same logic as plain Rust over the host's session model;
//! 2. callqa, a fresh instance per evaluation (the default isolation);
//! 3. callqa, one warm instance reused (`instance = "warm"`);
//! 4. Rhai: the same logic as a script, the session passed as a Rhai map;
//! 5. Extism: the same logic as a plugin, JSON in and out (the plugin reused,
//!    as Extism documents; and, for comparison with 2, a new plugin per call).
//!
//! All engines must reach the same verdicts and findings on every input
//! before anything is timed; a disagreement aborts with a diff. Then the
//! whole bundled ruleset per session, fresh instances, in sessions/s on one
//! thread and on two. Compile and load times are reported apart.
//!
//! Times are medians of single evaluations, the engines interleaved in
//! rounds so that noise from other work on the machine hits all of them
//! alike. `CALLQA_BENCH_ITERATIONS` (default 2000) sets the samples per
//! engine and input; `CALLQA_BENCH_SECONDS` (default 3) the ruleset run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callqa::qa::{Inspector, Verdict};
use callqa::rules::warm_instance::{WarmPool, DEFAULT_RECYCLE_AFTER};
use callqa::rules::{Limits, RuleEngine, Ruleset};
use callqa::session::{synthetic, Session};
use callqa_compare::native::{self, Params};
use callqa_compare::rhai_rules::RhaiRules;
use callqa_compare::{extism_rules, LoadedRule, Rule, RuleFailure};

const ENGINES: [&str; 6] = ["native", "callqa fresh", "callqa warm", "Rhai", "Extism", "Extism new plugin"];
/// The baseline every other engine must agree with and is compared to.
const NATIVE: usize = 0;

fn main() -> anyhow::Result<()> {
    let iterations: usize = env("CALLQA_BENCH_ITERATIONS", 2000);
    let seconds: u64 = env("CALLQA_BENCH_SECONDS", 3);

    // ---- compile and load, reported apart from evaluation
    let mut load = Vec::new();
    let t = Instant::now();
    let engine = Arc::new(RuleEngine::new(None)?);
    load.push(("callqa engine (wasmtime config, pooling allocator)", t.elapsed()));
    let mut rules = Vec::new();
    for rule in Rule::ALL {
        let t = Instant::now();
        rules.push(LoadedRule::load(&engine, rule)?);
        load.push((
            if rule == Rule::ForbiddenPhrases {
                "callqa compile + load forbidden-phrases"
            } else {
                "callqa compile + load chase-follow-up"
            },
            t.elapsed(),
        ));
    }
    let t = Instant::now();
    let rhai = RhaiRules::new(engine.patterns_for_bench())?;
    load.push(("Rhai engine + compile both scripts", t.elapsed()));
    let t = Instant::now();
    let compiled = extism_rules::compile()?;
    load.push(("Extism compile plugin", t.elapsed()));
    let t = Instant::now();
    let mut plugin = extism_rules::instantiate(&compiled)?;
    load.push(("Extism instantiate plugin", t.elapsed()));
    let patterns = engine.patterns_for_bench();
    let limits = Limits::default();
    let warm: Vec<WarmPool> = rules.iter().map(|_| WarmPool::new(DEFAULT_RECYCLE_AFTER)).collect();

    let sessions =
        [("10-min call", Arc::new(synthetic::ten_minute_call())), ("short chat", Arc::new(synthetic::short_chat()))];

    // One evaluation by engine `e` of rule `r` on session `s`.
    let mut run = |e: usize, r: usize, s: &Arc<Session>| -> Result<Verdict, RuleFailure> {
        let rule = &rules[r];
        match e {
            0 => match rule.rule {
                Rule::ForbiddenPhrases => native::forbidden_phrases(s, &Params(&rule.params), &patterns),
                Rule::ChaseFollowUp => native::chase_follow_up(s, &Params(&rule.params)),
            },
            1 => rule.fresh(&engine, s),
            2 => warm[r]
                .evaluate(&engine, &rule.module, rule.rule.name().into(), s.clone(), &rule.params, &limits)
                .result
                .map_err(Into::into),
            3 => rhai.evaluate(rule.rule, s, &rule.params),
            4 => extism_rules::evaluate(&mut plugin, rule.rule, s, &rule.params_json),
            _ => {
                let mut fresh = extism_rules::instantiate(&compiled).map_err(|e| RuleFailure::Failed(e.to_string()))?;
                extism_rules::evaluate(&mut fresh, rule.rule, s, &rule.params_json)
            }
        }
    };

    // ---- agreement before timing
    for (r, rule) in Rule::ALL.iter().enumerate() {
        for (label, session) in &sessions {
            let expected = run(NATIVE, r, session);
            for (e, name) in ENGINES.iter().enumerate().filter(|(e, _)| *e != NATIVE) {
                let got = run(e, r, session);
                if got != expected {
                    eprintln!("DISAGREEMENT: {} on the {label}: {name} differs from native", rule.name());
                    eprintln!("--- native\n{}\n+++ {name}\n{}", show(&expected), show(&got));
                    std::process::exit(1);
                }
            }
            println!(
                "agreement: {} on the {label}: all {} engines: {}",
                rule.name(),
                ENGINES.len(),
                summary(&expected)
            );
        }
    }

    // ---- evaluation time
    println!();
    println!("evaluation, median µs of {iterations} single evaluations (ratio to native)");
    print!("{:<18} {:<12}", "rule", "session");
    for name in ENGINES {
        print!(" {name:>19}");
    }
    println!();
    let rounds = 10;
    for (r, rule) in Rule::ALL.iter().enumerate() {
        for (label, session) in &sessions {
            let mut samples = vec![Vec::with_capacity(iterations); ENGINES.len()];
            for e in 0..ENGINES.len() {
                for _ in 0..iterations.min(50) {
                    let _ = run(e, r, session);
                }
            }
            for _ in 0..rounds {
                for (e, engine_samples) in samples.iter_mut().enumerate() {
                    for _ in 0..iterations / rounds {
                        let t = Instant::now();
                        let _ = std::hint::black_box(run(e, r, session));
                        engine_samples.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
            }
            let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
            print!("{:<18} {label:<12}", rule.name());
            for m in &medians {
                print!(" {:>9.1} ({:>6.1}x)", m, m / medians[NATIVE]);
            }
            println!();
        }
    }

    // ---- the whole bundled ruleset per session
    println!();
    let names: Vec<&str> = callqa::rules::bundled::names().collect();
    println!("whole bundled ruleset ({} rules, default parameters), sessions/s over {seconds} s", names.len());
    println!("{:<12} {:<8} {:>12} {:>12} {:>8}", "session", "instance", "1 thread", "2 threads", "2/1");
    for mode in ["fresh", "warm"] {
        let mut text = String::new();
        for name in &names {
            text.push_str(&format!("[[rule]]\nid = \"{name}\"\nmodule = \"bundled:{name}\"\n"));
            if mode == "warm" {
                text.push_str("instance = \"warm\"\n");
            }
        }
        let ruleset = Arc::new(Ruleset::parse(&engine, &text, ".".as_ref())?);
        let inspector = Arc::new(Inspector::new(engine.clone(), ruleset));
        for (label, session) in &sessions {
            let one = sessions_per_second(&inspector, session, 1, Duration::from_secs(seconds));
            let two = sessions_per_second(&inspector, session, 2, Duration::from_secs(seconds));
            println!("{label:<12} {mode:<8} {one:>12.0} {two:>12.0} {:>7.2}x", two / one);
        }
    }

    println!();
    println!("compile and load (once, not in the figures above)");
    for (what, took) in load {
        println!("  {what:<52} {:>9.1} ms", took.as_secs_f64() * 1e3);
    }
    Ok(())
}

/// Sheets per second with `threads` threads inspecting the same session.
fn sessions_per_second(inspector: &Arc<Inspector>, session: &Arc<Session>, threads: usize, run_for: Duration) -> f64 {
    for _ in 0..20 {
        inspector.inspect(session.clone());
    }
    let started = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0u64;
                    while started.elapsed() < run_for {
                        let sheet = inspector.inspect(session.clone());
                        assert!(sheet.complete, "every bundled rule gives a verdict");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).collect()
    });
    counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64()
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn show(r: &Result<Verdict, RuleFailure>) -> String {
    match r {
        Ok(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        Err(e) => format!("error: {e}"),
    }
}

fn summary(r: &Result<Verdict, RuleFailure>) -> String {
    match r {
        Ok(v) => format!("{:?}, {} finding(s)", v.outcome, v.findings.len()),
        Err(e) => format!("error: {e}"),
    }
}
