//! WASI, deny by default. Rules link against the WASI interfaces that Rust's
//! std and other language runtimes import, but get nothing real from them:
//! no preopened directories, no sockets, no environment or arguments, a
//! clock fixed at the Unix epoch, and deterministic random numbers, so the
//! same session gives the same verdict and the same fuel every time.

use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

use crate::rules::store::StoreState;

pub fn add_to_linker(linker: &mut Linker<StoreState>) -> anyhow::Result<()> {
    Ok(wasmtime_wasi::p2::add_to_linker_sync(linker)?)
}

/// A fresh sandbox for one evaluation, and the pipes that collect stdout
/// and stderr.
/// `max_output_bytes` caps each pipe (`limits.max-log-bytes`).
pub fn sandbox(max_output_bytes: usize) -> (WasiCtx, MemoryOutputPipe, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(max_output_bytes);
    let stdout = MemoryOutputPipe::new(max_output_bytes);
    let mut builder = WasiCtxBuilder::new();
    builder
        .stderr(stderr.clone())
        .stdout(stdout.clone())
        .wall_clock(FixedClock)
        .monotonic_clock(FixedClock)
        .secure_random(wasmtime_wasi::Deterministic::new(SEED.to_vec()))
        .insecure_random(wasmtime_wasi::Deterministic::new(SEED.to_vec()))
        .insecure_random_seed(0)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    (builder.build(), stdout, stderr)
}

const SEED: [u8; 32] = *b"callqa: determinism over entropy";

/// Time stands still inside a rule: instants come from the session.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
