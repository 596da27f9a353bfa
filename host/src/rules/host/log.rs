//! `callqa:rule/log`: rule logs, capped per evaluation and kept on the
//! evaluation so `rule run` can show them; also forwarded to `tracing`.

use wasmtime::component::{HasSelf, Linker};

use crate::rules::bindings::log::{self as wit, Level};
use crate::rules::store::StoreState;

pub fn add_to_linker(linker: &mut Linker<StoreState>) -> anyhow::Result<()> {
    Ok(wit::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |state| state)?)
}

#[derive(Debug, Default)]
pub struct LogBuffer {
    cap: usize,
    pub(crate) bytes: usize,
    pub(crate) lines: Vec<(Level, String)>,
    /// Bytes the rule tried to log past the cap.
    pub(crate) dropped_bytes: usize,
}

impl LogBuffer {
    pub fn new(cap: usize) -> Self {
        LogBuffer { cap, ..Default::default() }
    }
}

impl wit::Host for StoreState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let buffer = &mut self.log;
        if buffer.bytes + message.len() > buffer.cap {
            buffer.dropped_bytes += message.len();
            return Ok(());
        }
        buffer.bytes += message.len();
        let rule = &*self.rule_id;
        match level {
            Level::Trace => tracing::trace!(rule, "{message}"),
            Level::Debug => tracing::debug!(rule, "{message}"),
            Level::Info => tracing::info!(rule, "{message}"),
            Level::Warn => tracing::warn!(rule, "{message}"),
            Level::Error => tracing::error!(rule, "{message}"),
        }
        buffer.lines.push((level, message));
        Ok(())
    }
}
