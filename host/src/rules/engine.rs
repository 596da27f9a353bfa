//! The wasmtime engine every rule runs on: one per process.

use std::hash::Hash;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::host;
use super::host::helpers::PatternCache;
use super::store::StoreState;

/// One epoch tick. The wall-clock deadline of an evaluation is counted in
/// ticks, so it is accurate to about this much.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The most evaluations (component instances) alive at once; the pooling
/// allocator reserves this many slots up front.
pub const MAX_LIVE_INSTANCES: u32 = 256;

/// Core module instances one rule may bring: a Rust or componentize-js rule
/// has 3 (the program and two small adapter shims), a componentize-py rule
/// 13 (CPython, libc and each of its shims is a module of its own). Core
/// instance slots are only counted, not reserved: sizing them for Python
/// costs nothing.
const CORE_INSTANCES_PER_RULE: u32 = 16;

/// No rule may be given more linear memory than this; per-rule caps
/// (`Limits::memory_bytes`) sit below it.
pub const MEMORY_CEILING: usize = 1 << 30;

pub struct RuleEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreState>,
    pub(crate) patterns: Arc<PatternCache>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
    /// Fuel and epoch deadlines armed (always, but for measuring their cost).
    pub(crate) metered: bool,
}

impl RuleEngine {
    /// `cache_dir`: where compiled modules are kept between runs (keyed by
    /// module SHA-256 and engine configuration); `None` compiles every time.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::build(cache_dir, true)
    }

    /// An engine without fuel or epoch deadlines, only to measure what the
    /// limits cost (`cargo bench --bench rules`). A runaway rule hangs it:
    /// never use it for rules you did not write.
    pub fn unmetered(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::build(cache_dir, false)
    }

    fn build(cache_dir: Option<PathBuf>, metered: bool) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Rules need no GC proposal; without it no collector is required.
        config.gc_support(false);
        // Fuel makes budgets deterministic and reportable; epochs are the
        // wall-clock backstop for time spent where fuel is not counted.
        config.consume_fuel(metered);
        config.epoch_interruption(metered);
        // Deep recursion traps as a stack overflow long before the host's
        // own stack is at risk.
        config.max_wasm_stack(1 << 20);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_LIVE_INSTANCES)
            .total_core_instances(MAX_LIVE_INSTANCES * CORE_INSTANCES_PER_RULE)
            .total_memories(MAX_LIVE_INSTANCES * 2)
            .total_tables(MAX_LIVE_INSTANCES * 4)
            .max_memory_size(MEMORY_CEILING)
            .table_elements(100_000);
        // A fresh instance per evaluation is only cheap if its memory is not
        // unmapped and faulted in again every time. With PAGEMAP_SCAN (Linux
        // 6.7+) wasmtime resets just the pages a rule touched and keeps them
        // resident: measured 83 µs → 17 µs per evaluation of a small rule.
        // Without it, the kept region is reset by memset in full, so keep it
        // small there.
        let keep_resident = if pagemap_scan_supported() { 2 << 20 } else { 256 << 10 };
        pool.linear_memory_keep_resident(keep_resident)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("cannot configure the wasmtime engine")?;

        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        if metered {
            spawn_ticker(engine.weak(), ticker_stop.clone());
        }
        Ok(RuleEngine { engine, linker, patterns: Arc::new(PatternCache::default()), cache_dir, ticker_stop, metered })
    }

    #[doc(hidden)]
    pub fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    #[doc(hidden)]
    pub fn patterns_for_bench(&self) -> Arc<PatternCache> {
        self.patterns.clone()
    }

    /// The default compiled-module cache: `$CALLQA_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/callqa/modules`, else `~/.cache/callqa/modules`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("CALLQA_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("callqa").join("modules"))
    }

    /// Compile a component, or load it from the cache.
    pub fn compile(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<Component> {
        let Some(dir) = &self.cache_dir else {
            return Ok(Component::new(&self.engine, bytes)?);
        };
        let mut key = Sha256::new();
        key.update(sha256.as_bytes());
        self.engine.precompile_compatibility_hash().hash(&mut HashToDigest(&mut key));
        let path = dir.join(format!("{}.cwasm", hex::encode(&key.finalize()[..16])));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of this
            // engine configuration (the key covers it) into the user's own
            // cache directory; a file that fails wasmtime's checks is
            // recompiled below.
            if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, &path) } {
                return Ok(component);
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Ok(serialized) = component.serialize() {
            // A cache that cannot be written only costs time next run.
            let _ = std::fs::create_dir_all(dir).and_then(|_| {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, serialized)?;
                std::fs::rename(&tmp, &path)
            });
        }
        Ok(component)
    }
}

impl Drop for RuleEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// PAGEMAP_SCAN arrived in Linux 6.7.
fn pagemap_scan_supported() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 7)
}

/// One thread drives the epoch for every store of the engine.
fn spawn_ticker(engine: wasmtime::EngineWeak, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("callqa-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("cannot spawn the epoch ticker thread");
}

/// `Hash` into a SHA-256 digest, to key the cache on the engine's own
/// compatibility hash.
struct HashToDigest<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashToDigest<'_> {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
