//! A rule that misbehaves the way its `mode` parameter says. Each mode is
//! one way a real rule can go wrong; the host must survive all of them.

use callqa_sdk::prelude::*;
use std::hint::black_box;

struct Hostile;

impl Rule for Hostile {
    fn describe() -> Descriptor {
        Descriptor::new("hostile", "0.1.0", "Misbehaves on request (test only)").param(ParamSpec::text(
            "mode",
            Some("pass"),
            "How to misbehave",
        ))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let mode = params.text("mode")?;
        match mode.as_str() {
            "pass" => Ok(Verdict::pass().reason(format!("{} segments", session.segment_count()))),
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            // Host calls in a loop: time spent in the host, where fuel
            // is not counted, so the epoch deadline has to stop it.
            "host-loop" => loop {
                black_box(find_all("a+", &"a".repeat(10_000)).ok());
            },
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            // Grows memory past what the pool keeps mapped between
            // instances, checks that every page it got is zero (nothing
            // left by an earlier instance in the same pool slot), then dirties
            // all of it for the next instance to check.
            "grown-memory" => {
                const PAGES: usize = 40;
                let first = core::arch::wasm32::memory_grow(0, PAGES);
                if first == usize::MAX {
                    return Err(RuleError::Failed("memory.grow refused".into()));
                }
                let base = (first << 16) as *mut u64;
                let words = (PAGES << 16) / 8;
                let mut dirty = 0;
                for i in 0..words {
                    // SAFETY: these pages were just added to memory and
                    // belong to no allocation.
                    unsafe {
                        dirty += (base.add(i).read_volatile() != 0) as usize;
                        base.add(i).write_volatile(0xDEAD_BEEF_DEAD_BEEF);
                    }
                }
                match dirty {
                    0 => Ok(Verdict::pass().reason(format!("{PAGES} fresh pages from page {first}"))),
                    n => Ok(Verdict::fail(format!("{n} words of the grown memory were not zero"))),
                }
            }
            // Frames on the wasm stack: wasmtime's stack limit stops it.
            "recursion" => Ok(Verdict::pass().score(recurse(black_box(1)) as f32)),
            // Frames with arrays live on Rust's shadow stack in linear
            // memory; overflowing it runs off the bottom of memory.
            "shadow-recursion" => Ok(Verdict::pass().score(shadow_recurse(black_box(1)) as f32)),
            "panic" => panic!("the hostile rule panicked on purpose"),
            "unreachable" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[allow(unreachable_code)]
                Ok(Verdict::pass())
            }
            "many-findings" => {
                Ok(Verdict::fail("too many").findings((0..10_000).map(|i| Finding::general(format!("finding {i}")))))
            }
            "huge-message" => Ok(Verdict::fail("x".repeat(1 << 20))),
            "bad-score" => Ok(Verdict { score: Some(7.5), ..Verdict::pass() }),
            // The sandbox must deny these; the rule reports what it saw as
            // its error, so a leak would show in the message.
            "open-file" => Err(RuleError::Failed(match std::fs::read("/etc/passwd") {
                Ok(bytes) => format!("read {} bytes of /etc/passwd", bytes.len()),
                Err(e) => format!("open refused: {e}"),
            })),
            "env" => Err(RuleError::Failed(format!("saw {} environment variables", std::env::vars().count()))),
            "socket" => Err(RuleError::Failed(match std::net::TcpStream::connect("127.0.0.1:9") {
                Ok(_) => "connected a socket".into(),
                Err(e) => format!("socket refused: {e}"),
            })),
            "clock" => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                Err(RuleError::Failed(format!("clock reads {} s", now.as_secs())))
            }
            "log-flood" => {
                for i in 0..1_000 {
                    callqa_sdk::log::info(&format!("line {i:>5} of a flood {}", "~".repeat(64)));
                }
                Ok(Verdict::pass())
            }
            other => Err(RuleError::BadParams(format!("unknown mode `{other}`"))),
        }
    }
}

fn recurse(n: u64) -> u64 {
    if black_box(n) == 0 {
        0
    } else {
        recurse(n + 1).wrapping_add(n)
    }
}

fn shadow_recurse(n: u64) -> u64 {
    let frame = black_box([n; 64]);
    if black_box(n) == 0 {
        frame[0]
    } else {
        shadow_recurse(n + 1) + frame[1]
    }
}

export_rule!(Hostile);
