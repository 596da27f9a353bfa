//! What each evaluation's `Store` holds: the session, the sandboxed WASI
//! context, the resource table, and the meters for limits and output.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::host::helpers::PatternCache;
use super::host::log::LogBuffer;
use super::limits::Limits;
use crate::session::Session;

pub struct StoreState {
    pub(crate) rule_id: Arc<str>,
    pub(crate) session: Arc<Session>,
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) memory: MemoryCap,
    pub(crate) log: LogBuffer,
    /// What the rule wrote to stderr: a Rust panic message lands here.
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) patterns: Arc<PatternCache>,
}

impl StoreState {
    pub fn new(rule_id: Arc<str>, session: Arc<Session>, limits: &Limits, patterns: Arc<PatternCache>) -> Self {
        let (wasi, stderr) = super::host::wasi::sandbox(limits);
        StoreState {
            rule_id,
            session,
            table: ResourceTable::new(),
            wasi,
            memory: MemoryCap::new(limits),
            log: LogBuffer::new(limits.max_log_bytes),
            stderr,
            patterns,
        }
    }

    #[doc(hidden)]
    pub fn memory_cap(&mut self) -> &mut MemoryCap {
        &mut self.memory
    }

    /// The rule's stderr as text, for error messages (a panic's message).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_string()
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory, tables and instances; remembers what a rule asked
/// for past the cap so the sheet can say how much.
pub struct MemoryCap {
    pub(crate) memory_bytes: usize,
    pub(crate) refused: Option<usize>,
    pub(crate) peak: usize,
}

impl MemoryCap {
    fn new(limits: &Limits) -> Self {
        MemoryCap { memory_bytes: limits.memory_bytes, refused: None, peak: 0 }
    }
}

/// Tables and instances per evaluation: enough for components built by
/// Rust, JavaScript and Python toolchains, not enough to hoard.
const MAX_TABLE_ELEMENTS: usize = 100_000;
const MAX_INSTANCES: usize = 64;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused = Some(desired);
            // An error here traps the guest: a failed allocation in Rust
            // would abort anyway, and the trap names the cap.
            wasmtime::bail!(
                "memory cap exceeded: the rule asked for {} bytes of linear memory, the cap is {} bytes (had {current})",
                desired,
                self.memory_bytes
            );
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("table cap exceeded: the rule asked for {desired} table elements, the cap is {MAX_TABLE_ELEMENTS}");
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_INSTANCES
    }
}
