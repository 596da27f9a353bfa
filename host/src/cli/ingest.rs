//! `callqa ingest`: deduplicate contact trace records into a sink.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::ctr::FingerprintMode;
use crate::dedup::{
    host_identity, Clock, DedupStore, EmbeddedStore, ManualClock, StoreSettings, StoreUrl, SystemClock,
};
use crate::pipeline::{IngestOptions, IngestPipeline, IngestSummary};
use crate::sinks::{DeadLetterSink, DirectorySink, Sink, StdoutSink};
use crate::sources::expand_inputs;

const EXAMPLES: &str = "\
Examples:
  # Deduplicate the sample records into a Hive-style tree, raw fingerprints:
  callqa ingest --fingerprint raw --out out/ctr samples/ctr/connect-ctrs-with-duplicates.json

  # A directory of NDJSON (optionally .gz) files, dead letters kept aside:
  callqa ingest --out lake/ctr --dead-letter lake/dead-letter.ndjson exports/

  # As a Firehose data-transformation step: event in, response out:
  callqa ingest --firehose-response response.json event.json

Counts go to stderr at the end (and to --summary-json). Exit status: 0 when
the run completed, dead letters included; 2 on an error (nothing is
completed in the store that did not reach the sink).";

/// Deduplicate contact trace records (CTRs) into a sink.
///
/// Reads files, directories (recursively) or stdin; detects per input whether
/// it holds a JSON array of CTRs, NDJSON, a single CTR object, or a Kinesis
/// Data Firehose transformation event. Each record is fingerprinted with
/// SHA-256, claimed in the dedup store, written to the sink once, and its
/// claim completed; duplicates within the TTL are dropped and counted.
#[derive(clap::Args, Debug)]
#[command(after_long_help = EXAMPLES)]
pub struct IngestArgs {
    /// Files or directories to read (directories recursively, skipping hidden
    /// files), or `-` for stdin. Without any, reads stdin. Plain files are
    /// read through a memory map: pipe a file that another process may still
    /// truncate in on stdin instead (a truncated mapped file stops the run).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Where unique records go: a directory, written as NDJSON files
    /// partitioned by the contact's InitiationTimestamp UTC date
    /// (`year=YYYY/month=MM/day=DD/part-<store>-<batch>.ndjson`, readable by
    /// Athena, DuckDB and Spark), or `-` for NDJSON on stdout.
    #[arg(long, short = 'o', value_name = "DIR|-")]
    pub out: Option<String>,

    /// Gzip the files written to --out DIR (`.ndjson.gz`).
    #[arg(long)]
    pub gzip: bool,

    /// How a record's identity is computed: `raw` hashes the bytes as
    /// delivered (array elements as `JSON.stringify` writes them), `canonical`
    /// hashes the RFC 8785 form (key order and whitespace do not matter),
    /// `key` hashes ContactId + LastUpdateTimestamp.
    #[arg(long, value_enum, default_value_t = FingerprintMode::Canonical)]
    pub fingerprint: FingerprintMode,

    /// The dedup store: `file:PATH` (or a plain PATH) for the embedded store,
    /// `dynamodb://TABLE` or `redis://HOST:PORT[/DB]` for a store shared by
    /// many hosts (create a DynamoDB table with `callqa store init`).
    /// Defaults to `dedup.redb` in the data directory. Only one process can
    /// use an embedded store at a time; a second one is refused.
    #[arg(long, value_name = "file:PATH|dynamodb://TABLE|redis://HOST:PORT", env = "CALLQA_STORE")]
    pub store: Option<String>,

    /// Claims in flight at once against a shared store (DynamoDB, Redis).
    #[arg(long, value_name = "N", default_value_t = crate::dedup::DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub store_concurrency: usize,

    /// Directory for the default store [default: $XDG_DATA_HOME/callqa, or
    /// ~/.local/share/callqa].
    #[arg(long, value_name = "DIR", env = "CALLQA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// How long a fingerprint is remembered: a copy arriving later is kept
    /// again. Units: ms, s, m, h, d.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub ttl: Duration,

    /// How long a claim stays exclusive to the process that made it, for
    /// stores shared by several hosts. The embedded store reclaims a crashed
    /// run's records at once, since its file lock proves that run is gone.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,

    /// Records per store transaction and per output file.
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,

    /// Records larger than this many bytes are dead-lettered (Firehose and
    /// Kinesis cap a record at 1 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_record_bytes: u64,

    /// Append every unusable record (malformed JSON, invalid UTF-8, not an
    /// object, no ContactId, bad base64, oversized) to this NDJSON file with
    /// its input, position and reason. Without it, they are listed on stderr.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,

    /// Write the Firehose data-transformation response for the (single)
    /// Firehose event input to FILE: every recordId, in order, with `Ok`
    /// (unique), `Dropped` (duplicate) or `ProcessingFailed` (unusable).
    #[arg(long, value_name = "FILE")]
    pub firehose_response: Option<PathBuf>,

    /// Also write the counts, per input and in total, as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// List every record's fingerprint and outcome (and so the fingerprints
    /// of the dropped duplicates) in the summary.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Never show the progress bar (it only shows when stderr is a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Pretend the current time is this RFC 3339 instant (replays, tests).
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
}

pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    if args.out.is_none() && args.firehose_response.is_none() {
        anyhow::bail!("nothing would be written: pass --out DIR, --out - (stdout) or --firehose-response FILE");
    }
    let sources = expand_inputs(&args.inputs)?;
    let clock: Arc<dyn Clock> = match &args.now {
        None => Arc::new(SystemClock),
        Some(text) => {
            let instant = chrono::DateTime::parse_from_rfc3339(text)
                .with_context(|| format!("--now {text} is not an RFC 3339 instant"))?;
            Arc::new(ManualClock::new(instant.timestamp_millis()))
        }
    };
    let settings = StoreSettings { ttl: args.ttl, lease: args.lease, clock };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = match args.store.as_deref().map(StoreUrl::parse).transpose()? {
        Some(url) if url.is_shared() => {
            let owner = host_identity(&sink_identity(args.out.as_deref()));
            runtime.block_on(url.open_shared(owner, settings, args.store_concurrency))?
        }
        _ => open_store(args.store.as_deref(), args.data_dir.as_deref(), settings)?,
    };

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    match args.out.as_deref() {
        None => {}
        Some("-") => sinks.push(Box::new(StdoutSink::new())),
        Some(dir) => sinks.push(Box::new(DirectorySink::open(Path::new(dir), store.instance_id(), args.gzip)?)),
    }
    let dead_letters = DeadLetterSink::open(args.dead_letter.as_deref())?;
    let options = IngestOptions {
        fingerprint: args.fingerprint,
        batch_size: args.batch_size as usize,
        max_record_bytes: args.max_record_bytes,
        verbose: args.verbose,
        progress: !args.quiet,
        firehose_response: args.firehose_response.clone(),
    };

    let pipeline = IngestPipeline::new(Arc::from(store), sinks, dead_letters, options);
    let summary = runtime.block_on(pipeline.run(&sources))?;

    if let Some(path) = &args.summary_json {
        let mut bytes = serde_json::to_vec_pretty(&summary)?;
        bytes.push(b'\n');
        crate::sinks::write_atomically(path, &bytes)
            .with_context(|| format!("cannot write the summary {}", path.display()))?;
    }
    print_summary(&summary, args.verbose)?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the store named by `--store`, or the embedded default.
pub fn open_store(
    spec: Option<&str>,
    data_dir: Option<&Path>,
    settings: StoreSettings,
) -> anyhow::Result<Box<dyn DedupStore>> {
    let path = match spec {
        None => default_data_dir(data_dir)?.join("dedup.redb"),
        Some(spec) => match spec.split_once(':') {
            Some(("file", path)) => PathBuf::from(path),
            Some((scheme @ ("dynamodb" | "redis" | "rediss"), _)) => {
                anyhow::bail!("--store {scheme}: is not available in this build; use file:PATH (the embedded store)")
            }
            _ => PathBuf::from(spec),
        },
    };
    let store = EmbeddedStore::open(&path, settings)?;
    Ok(Box::new(store))
}

/// The sink part of a shared store's host identity: the output directory as
/// an absolute path, so a restart from another working directory is the same host.
fn sink_identity(out: Option<&str>) -> String {
    match out {
        None | Some("-") => "-".to_string(),
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::canonicalize(dir))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| dir.to_string()),
    }
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a number of claims in flight between 1 and 4096")),
    }
}

fn default_data_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("callqa"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("no data directory: set --data-dir, CALLQA_DATA_DIR or HOME, or pass --store file:PATH")?;
    Ok(PathBuf::from(home).join(".local/share/callqa"))
}

/// Parses `500ms`, `30s`, `15m`, `24h`, `7d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 30s, 15m, 24h or 7d"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`: use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn print_summary(summary: &IngestSummary, verbose: bool) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    let line = |c: &crate::pipeline::Counts| {
        format!(
            "{} read, {} unique ({} updates), {} duplicates, {} dead-lettered",
            c.read, c.unique, c.updates, c.duplicates, c.dead_lettered
        )
    };
    for input in &summary.inputs {
        writeln!(err, "{} ({}): {}", input.input, input.format, line(&input.counts))?;
        if verbose {
            for record in input.records.iter().flatten() {
                let fingerprint = record.fingerprint.map(|f| f.to_hex()).unwrap_or_else(|| "-".repeat(64));
                let reason = record.reason.as_deref().map(|r| format!("  {r}")).unwrap_or_default();
                writeln!(err, "  {fingerprint}  {:<11} {}{reason}", record.outcome, record.position)?;
            }
        }
    }
    writeln!(
        err,
        "total: {} in {:.2}s ({:.0} records/s, {:.1} MB/s); fingerprint {}, store {}{}",
        line(&summary.total),
        summary.elapsed_seconds,
        summary.records_per_second,
        summary.megabytes_per_second,
        serde_json::to_value(summary.fingerprint)?.as_str().unwrap_or_default(),
        summary.store,
        if summary.recovered_batches > 0 {
            format!(", recovered {} unfinished batches", summary.recovered_batches)
        } else {
            String::new()
        }
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3y").is_err());
    }
}
