//! What each evaluation's `Store` holds: the session, the sandboxed WASI
//! context, the resource table, and the meters for limits and output.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::host::explain::Explanation;
use super::host::helpers::PatternCache;
use super::host::log::LogBuffer;
use super::limits::Limits;
use crate::session::Session;
use crate::similarity::Similarity;

pub struct StoreState {
    pub(crate) rule_id: Arc<str>,
    pub(crate) session: Arc<Session>,
    pub(crate) table: ResourceTable,
    /// Built on the rule's first WASI call: most evaluations make none, and
    /// building a WASI context (clocks, random generators, pipes) was a
    /// tenth of a small rule's evaluation.
    pub(crate) wasi: Option<Sandbox>,
    max_output_bytes: usize,
    pub(crate) memory: MemoryCap,
    pub(crate) log: LogBuffer,
    pub(crate) explanation: Explanation,
    pub(crate) patterns: Arc<PatternCache>,
    /// The ruleset's similarity provider (`session.similar-segments`);
    /// `None` outside a ruleset (a golden case), where n-grams fitted on the
    /// query's own examples stand in.
    pub(crate) similarity: Option<Arc<Similarity>>,
}

/// The rule's WASI context and the pipes that collect its output.
pub(crate) struct Sandbox {
    ctx: WasiCtx,
    /// What the rule wrote to stderr: a Rust panic message lands here.
    stderr: MemoryOutputPipe,
    /// What the rule wrote to stdout (kept to tell whether it wrote any).
    stdout: MemoryOutputPipe,
}

impl StoreState {
    pub fn new(rule_id: Arc<str>, session: Arc<Session>, limits: &Limits, patterns: Arc<PatternCache>) -> Self {
        StoreState {
            rule_id,
            session,
            table: ResourceTable::new(),
            wasi: None,
            max_output_bytes: limits.max_log_bytes,
            memory: MemoryCap::new(limits),
            log: LogBuffer::new(limits.max_log_bytes),
            explanation: Explanation::new(limits.max_trace_bytes),
            patterns,
            similarity: None,
        }
    }

    /// Ready a warm instance's state for its next evaluation: the new rule
    /// id, session and limits; meters and log empty. The output pipes are
    /// not reset here: an instance that wrote to them is not reused.
    pub(crate) fn begin_evaluation(&mut self, rule_id: Arc<str>, session: Arc<Session>, limits: &Limits) {
        self.rule_id = rule_id;
        self.session = session;
        self.memory.memory_bytes = limits.memory_bytes;
        self.memory.refused = None;
        self.memory.peak = self.memory.current;
        self.log = LogBuffer::new(limits.max_log_bytes);
        self.explanation = Explanation::new(limits.max_trace_bytes);
        self.max_output_bytes = limits.max_log_bytes;
    }

    /// Whether the rule wrote to stdout or stderr in this instance.
    pub(crate) fn wrote_output(&self) -> bool {
        self.wasi.as_ref().is_some_and(|w| !w.stdout.contents().is_empty() || !w.stderr.contents().is_empty())
    }

    /// The rule's stderr as text, for error messages (a panic's message).
    pub fn stderr_text(&self) -> String {
        let Some(wasi) = &self.wasi else { return String::new() };
        String::from_utf8_lossy(&wasi.stderr.contents()).trim().to_string()
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let cap = self.max_output_bytes;
        let wasi = self.wasi.get_or_insert_with(|| {
            let (ctx, stdout, stderr) = super::host::wasi::sandbox(cap);
            Sandbox { ctx, stderr, stdout }
        });
        WasiCtxView { ctx: &mut wasi.ctx, table: &mut self.table }
    }
}

/// Caps linear memory, tables and instances; remembers what a rule asked
/// for past the cap so the sheet can say how much.
pub struct MemoryCap {
    pub(crate) memory_bytes: usize,
    pub(crate) refused: Option<usize>,
    pub(crate) peak: usize,
    /// The current size of the instance's linear memory (a warm instance
    /// keeps it from one evaluation to the next).
    pub(crate) current: usize,
}

impl MemoryCap {
    fn new(limits: &Limits) -> Self {
        MemoryCap { memory_bytes: limits.memory_bytes, refused: None, peak: 0, current: 0 }
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
        self.current = desired;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!(
                "table cap exceeded: the rule asked for {desired} table elements, the cap is {MAX_TABLE_ELEMENTS}"
            );
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
