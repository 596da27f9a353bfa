use std::io::{BufWriter, Stdout, Write};

use anyhow::Context;

use super::{Sink, SinkRecord};
use crate::ctr::UtcDay;
use crate::dedup::FencingToken;

/// Unique records as NDJSON on standard output, flushed after every batch
/// and before the batch is completed. A crash between the two re-emits that
/// batch on the next run: at least once, since a pipe cannot be asked what
/// its reader received.
pub struct StdoutSink {
    out: BufWriter<Stdout>,
}

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink { out: BufWriter::with_capacity(1 << 20, std::io::stdout()) }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for StdoutSink {
    fn describe(&self) -> String {
        "stdout".to_string()
    }

    fn write_batch(&mut self, _token: FencingToken, records: &[SinkRecord<'_>]) -> anyhow::Result<()> {
        for record in records {
            self.out.write_all(record.line).context("cannot write to stdout")?;
            self.out.write_all(b"\n").context("cannot write to stdout")?;
        }
        self.out.flush().context("cannot write to stdout")
    }

    fn durable_days(&self, _token: FencingToken, _days: &[UtcDay]) -> anyhow::Result<Vec<UtcDay>> {
        Ok(Vec::new())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("cannot write to stdout")
    }
}
