//! The wasmtime engines rules run on: one `RuleEngine` per process, holding
//! two tiers that differ in how they reset a pooled memory.

use std::hash::Hash;
use std::path::{Path, PathBuf};
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
    /// For rules whose linear memory starts at one wasm page or less.
    pub(crate) small: Tier,
    /// For every other rule (language runtimes: megabytes of memory).
    pub(crate) large: Tier,
    pub(crate) patterns: Arc<PatternCache>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
    /// Fuel and epoch deadlines armed (always, but for measuring their cost).
    pub(crate) metered: bool,
}

/// How a pooled linear memory is made fresh for the next instance.
///
/// wasmtime picks one way per engine, and neither suits every rule: so
/// callqa runs two engines and places each rule by the size its memory
/// starts at (`MemoryReset::for_memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryReset {
    /// Overwrite the kept part of the memory in full (its data image copied
    /// back, the rest zeroed). For a one-page memory that is 64 KiB, and
    /// cheaper than asking the kernel which pages were written: measured
    /// 5.9 → 3.8 µs for the drop of a fresh evaluation, interleaved.
    Rewrite,
    /// Ask the kernel which pages the rule wrote (PAGEMAP_SCAN, Linux 6.7+)
    /// and reset only those. A fixed ~2.4 µs per reset, whatever the size:
    /// for a JavaScript rule (12 MiB) the other way took 1.3 → 1.9 ms per
    /// evaluation.
    DirtyPages,
}

impl MemoryReset {
    /// The reset for a rule whose core modules' memories start at
    /// `initial_memory` bytes in total.
    pub fn for_memory(initial_memory: u64) -> Self {
        if initial_memory <= SMALL_MEMORY_BYTES {
            MemoryReset::Rewrite
        } else {
            MemoryReset::DirtyPages
        }
    }
}

/// One wasmtime engine and its linker, with the pooling allocator set up
/// for one [`MemoryReset`].
pub(crate) struct Tier {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreState>,
    pub(crate) reset: MemoryReset,
}

/// Rules whose core modules' memories start at this many bytes or fewer, in
/// total, go to the [`MemoryReset::Rewrite`] tier: one wasm page, the size
/// of a bundled rule (16 KiB shadow stack, data and heap in one page).
pub const SMALL_MEMORY_BYTES: u64 = 64 << 10;

/// How much of a small rule's memory stays mapped between instances and is
/// rewritten. A rule that grows past it has the rest unmapped and faulted
/// in again on its next evaluation: correct, only slower.
const SMALL_KEEP_RESIDENT: usize = 1 << 20;

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
        let small = Tier::new(MemoryReset::Rewrite, metered)?;
        let large = Tier::new(MemoryReset::DirtyPages, metered)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        if metered {
            spawn_ticker(vec![small.engine.weak(), large.engine.weak()], ticker_stop.clone());
        }
        Ok(RuleEngine { small, large, patterns: Arc::new(PatternCache::default()), cache_dir, ticker_stop, metered })
    }

    /// The tier that resets memory the given way.
    pub(crate) fn tier(&self, reset: MemoryReset) -> &Tier {
        match reset {
            MemoryReset::Rewrite => &self.small,
            MemoryReset::DirtyPages => &self.large,
        }
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

    pub(crate) fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }
}

impl Tier {
    fn new(reset: MemoryReset, metered: bool) -> anyhow::Result<Self> {
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
            .table_elements(100_000)
            .table_keep_resident(64 << 10);
        // A fresh instance per evaluation is only cheap if its memory is not
        // unmapped and faulted in again every time: both tiers keep it
        // mapped and reset it in place (measured 83 µs → 17 µs per
        // evaluation of a small rule, against unmapping).
        match reset {
            MemoryReset::Rewrite => {
                pool.linear_memory_keep_resident(SMALL_KEEP_RESIDENT).pagemap_scan(wasmtime::Enabled::No);
            }
            // Without PAGEMAP_SCAN wasmtime rewrites the kept region in full,
            // so keep less of it there.
            MemoryReset::DirtyPages => {
                let keep_resident = if pagemap_scan_supported() { 2 << 20 } else { 256 << 10 };
                pool.linear_memory_keep_resident(keep_resident).pagemap_scan(wasmtime::Enabled::Auto);
            }
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(anyhow::Error::from).context("cannot configure the wasmtime engine")?;
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker)?;
        Ok(Tier { engine, linker, reset })
    }

    /// Compile a component, or load it from the cache.
    pub(crate) fn compile(&self, bytes: &[u8], sha256: &str, cache_dir: Option<&Path>) -> anyhow::Result<Component> {
        let Some(dir) = cache_dir else {
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

/// One thread drives the epoch for every store of both tiers.
fn spawn_ticker(engines: Vec<wasmtime::EngineWeak>, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("callqa-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                let mut live = 0;
                for engine in engines.iter().filter_map(|weak| weak.upgrade()) {
                    engine.increment_epoch();
                    live += 1;
                }
                if live == 0 {
                    break;
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
