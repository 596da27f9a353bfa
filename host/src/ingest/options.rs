use std::path::PathBuf;

use crate::ctr::FingerprintMode;

/// What the pipeline does, apart from where records come from and go to.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub fingerprint: FingerprintMode,
    pub batch_size: usize,
    pub max_record_bytes: u64,
    /// Record every record's fingerprint and outcome in the summary.
    pub verbose: bool,
    /// Show a progress bar on stderr (only honoured when it is a terminal).
    pub progress: bool,
    /// Write the Firehose transformation response here.
    pub firehose_response: Option<PathBuf>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            fingerprint: FingerprintMode::Canonical,
            batch_size: 4096,
            max_record_bytes: 1 << 20,
            verbose: false,
            progress: false,
            firehose_response: None,
        }
    }
}
