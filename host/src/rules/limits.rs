//! Per-evaluation limits. Every rule gets these defaults; the ruleset can
//! override them per rule (`[rule.limits]`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why these defaults:
/// - fuel 50 M: the bundled rules use well under 1 M on a 10-minute call, so
///   this leaves room for 50x heavier logic while stopping a runaway loop in
///   tens of milliseconds. (Shopify Functions allow 11 M per run and
///   Redpanda 1 G per record; QA rules sit between.)
/// - 250 ms wall clock: the epoch backstop for time spent outside fuel
///   accounting (host calls); a QA sheet must stay interactive.
/// - 32 MiB memory: a session of a few hundred segments copied in is well
///   under 1 MiB; Rust's allocator and the WASI adapter need a few pages.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Instruction budget (wasmtime fuel units).
    pub fuel: u64,
    /// Wall-clock deadline in milliseconds (epoch interruption).
    pub timeout_ms: u64,
    /// Linear memory cap per instance, in bytes.
    pub memory_bytes: usize,
    /// Most findings a verdict may carry.
    pub max_findings: usize,
    /// Longest finding message or reason, in bytes.
    pub max_message_bytes: usize,
    /// Log bytes per evaluation (and stdout/stderr bytes each); past this
    /// the item is an `output-cap` error.
    pub max_log_bytes: usize,
    /// Longest explanation (a scripted item's trace) a rule may attach, in
    /// bytes; past this the item is an `output-cap` error.
    pub max_trace_bytes: usize,
    /// Errors in a row after which the rule is quarantined (skipped until
    /// its module changes or an operator releases it).
    pub quarantine_after: u32,
}

impl Limits {
    /// Epoch ticks for the wall-clock deadline; one extra so a deadline is
    /// never shorter than asked.
    pub fn deadline_ticks(&self) -> u64 {
        self.timeout_ms.div_ceil(super::engine::EPOCH_TICK.as_millis() as u64) + 1
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 50_000_000,
            timeout_ms: 250,
            memory_bytes: 32 << 20,
            max_findings: 100,
            max_message_bytes: 4096,
            max_log_bytes: 16 << 10,
            max_trace_bytes: 16 << 10,
            quarantine_after: 5,
        }
    }
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}
