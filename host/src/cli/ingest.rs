//! `callqa ingest`: deduplicate contact trace records into a sink.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::ctr::{FingerprintMode, RecordDecoder};
use crate::data_dir::default_data_dir;
use crate::dedup::{Clock, ManualClock, StoreSettings, StoreUrl, SystemClock};
use crate::duration::parse_duration;
use crate::ingest::kinesis::{KinesisOptions, Scheduler, SinkSetup, StreamProgress};
use crate::ingest::{Counts, IngestOptions, IngestPipeline, IngestSummary};
use crate::sinks::{DeadLetterSink, Sink, SinkUrl};
use crate::sources::expand_inputs;
use crate::sources::kinesis::{self, StartPosition};

const EXAMPLES: &str = "\
Examples:
  # Deduplicate the sample records into a Hive-style tree, raw fingerprints:
  callqa ingest --fingerprint raw --out out/ctr samples/ctr/connect-ctrs-with-duplicates.json

  # A directory of NDJSON (optionally .gz) files, dead letters kept aside:
  callqa ingest --out lake/ctr --dead-letter lake/dead-letter.ndjson exports/

  # As a Firehose data-transformation step: event in, response out:
  callqa ingest --firehose-response response.json event.json

  # A Kinesis data stream into S3, shards shared by every host running this
  # (leases in the table `callqa store init --leases` created):
  callqa ingest --from kinesis://connect-ctr --store dynamodb://ctr-dedup \
    --leases dynamodb://ctr-leases --out s3://ctr-lake/ctr --gzip --follow

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
    #[arg(value_name = "INPUT", conflicts_with = "from")]
    pub inputs: Vec<String>,

    /// Read a Kinesis data stream instead of files: `kinesis://STREAM`. The
    /// shards are shared with every other host reading the stream with the
    /// same --leases table; without --follow the run stops once every shard
    /// was read to its tip.
    #[arg(long, value_name = "kinesis://STREAM")]
    pub from: Option<String>,

    /// With --from: keep reading new records until interrupted (Ctrl-C or
    /// SIGTERM give every lease back first).
    #[arg(long, requires = "from")]
    pub follow: bool,

    /// With --from: the DynamoDB table of shard leases and checkpoints
    /// (create it with `callqa store init --leases`). Defaults to the dedup
    /// table's name with `-leases` when --store is DynamoDB.
    #[arg(long, value_name = "dynamodb://TABLE", env = "CALLQA_LEASES")]
    pub leases: Option<String>,

    /// With --from: where a shard callqa has never read starts:
    /// `trim-horizon` (its oldest record), `latest`, or an RFC 3339 instant.
    #[arg(long, value_name = "POSITION", default_value = "trim-horizon")]
    pub start_position: String,

    /// With --from: how long a lease may go unrenewed before another host
    /// takes the shard over (KCL's failover time).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub failover: Duration,

    /// Where unique records go: a directory, written as NDJSON files
    /// partitioned by the contact's InitiationTimestamp UTC date
    /// (`year=YYYY/month=MM/day=DD/part-<store>-<batch>.ndjson`, readable by
    /// Athena, DuckDB and Spark); `s3://BUCKET/PREFIX` for the same layout
    /// in S3 (one object per batch and day; `AWS_ENDPOINT_URL_S3` for
    /// another endpoint); or `-` for NDJSON on stdout.
    #[arg(long, short = 'o', value_name = "DIR|s3://BUCKET/PREFIX|-")]
    pub out: Option<String>,

    /// Gzip the files or objects written to --out (`.ndjson.gz`).
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
        anyhow::bail!(
            "nothing would be written: pass --out DIR, --out s3://BUCKET/PREFIX, --out - (stdout) or \
             --firehose-response FILE"
        );
    }
    let sources = if args.from.is_some() { Vec::new() } else { expand_inputs(&args.inputs)? };
    let clock: Arc<dyn Clock> = match &args.now {
        None => Arc::new(SystemClock),
        Some(text) => {
            let instant = chrono::DateTime::parse_from_rfc3339(text)
                .with_context(|| format!("--now {text} is not an RFC 3339 instant"))?;
            Arc::new(ManualClock::new(instant.timestamp_millis()))
        }
    };
    let settings = StoreSettings { ttl: args.ttl, lease: args.lease, clock };
    let url = StoreUrl::resolve(args.store.as_deref(), &default_data_dir(args.data_dir.as_deref())?)?;
    let out = args.out.as_deref().map(SinkUrl::parse).transpose()?;
    let dead_letters = DeadLetterSink::open(args.dead_letter.as_deref())?;
    if let Some(from) = &args.from {
        let out = out.context("--from needs --out: a directory, s3://BUCKET/PREFIX or -")?;
        return run_kinesis(&args, from, url, settings, out, dead_letters);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let sink_name = out.as_ref().map(SinkUrl::identity).unwrap_or_else(|| "-".into());
    let store = runtime.block_on(url.open(settings, &sink_name, args.store_concurrency))?;

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(out) = &out {
        sinks.push(out.open(store.instance_id(), args.gzip)?);
    }
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
        crate::atomic_write::write_atomically(path, &bytes)
            .with_context(|| format!("cannot write the summary {}", path.display()))?;
    }
    print_summary(&summary, args.verbose)?;
    Ok(ExitCode::SUCCESS)
}

/// `--from kinesis://STREAM`: this host's share of the stream's shards.
fn run_kinesis(
    args: &IngestArgs,
    from: &str,
    store: StoreUrl,
    settings: StoreSettings,
    out: SinkUrl,
    dead_letters: DeadLetterSink,
) -> anyhow::Result<ExitCode> {
    let stream = kinesis::parse_stream(from).context("--from takes kinesis://STREAM")??;
    anyhow::ensure!(
        args.firehose_response.is_none(),
        "--firehose-response answers a Firehose event; it has no meaning with --from kinesis://"
    );
    let lease_table = lease_table(args.leases.as_deref(), &store)?;
    let options = KinesisOptions {
        stream,
        lease_table,
        start: StartPosition::parse(&args.start_position)?,
        follow: args.follow,
        failover: args.failover,
        batch_size: args.batch_size.min(10_000) as usize,
        max_record_bytes: args.max_record_bytes,
    };
    let setup = SinkSetup {
        store,
        opened: None,
        settings,
        concurrency: args.store_concurrency,
        sink: out,
        gzip: args.gzip,
        decoder: RecordDecoder::new(args.fingerprint),
        on_stored: None,
    };
    // Shard events (taken, finished, lost) are what an operator follows.
    crate::serve::init_logging(crate::serve::LogFormat::Human);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let summary = runtime.block_on(async {
        let scheduler = Scheduler::new(options, setup, dead_letters, StreamProgress::default()).await?;
        tracing::info!(worker = scheduler.worker(), "reading the stream");
        let follow = args.follow;
        scheduler
            .run(async move {
                if follow {
                    crate::serve::shutdown_signal().await
                } else {
                    std::future::pending::<()>().await
                }
            })
            .await
    })?;
    if let Some(path) = &args.summary_json {
        let mut bytes = serde_json::to_vec_pretty(&summary)?;
        bytes.push(b'\n');
        crate::atomic_write::write_atomically(path, &bytes)
            .with_context(|| format!("cannot write the summary {}", path.display()))?;
    }
    let mut err = std::io::stderr().lock();
    for (shard, progress) in &summary.shards {
        let c = &progress.counts;
        writeln!(
            err,
            "kinesis://{}/{shard}: {} read, {} unique ({} updates), {} duplicates, {} dead-lettered{}",
            summary.stream,
            c.read,
            c.unique,
            c.updates,
            c.duplicates,
            c.dead_lettered,
            if progress.finished { " (shard ended)" } else { "" }
        )?;
    }
    let c = &summary.total;
    writeln!(
        err,
        "total: {} read, {} unique ({} updates), {} duplicates, {} dead-lettered in {:.2}s ({:.0} records/s); \
         {} shards, at most {} leases at once, worker {}",
        c.read,
        c.unique,
        c.updates,
        c.duplicates,
        c.dead_lettered,
        summary.elapsed_seconds,
        summary.records_per_second,
        summary.shards.len(),
        summary.max_leases_held,
        summary.worker
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `--leases dynamodb://TABLE`, or the dedup table's name with `-leases`.
pub(crate) fn lease_table(leases: Option<&str>, store: &StoreUrl) -> anyhow::Result<String> {
    match (leases, store) {
        (Some(spec), _) => match StoreUrl::parse(spec)? {
            StoreUrl::DynamoDb { table } => Ok(table),
            _ => anyhow::bail!("--leases {spec}: shard leases live in DynamoDB: use --leases dynamodb://TABLE"),
        },
        (None, StoreUrl::DynamoDb { table }) => Ok(format!("{table}-leases")),
        (None, _) => anyhow::bail!(
            "reading a Kinesis stream needs a DynamoDB table of shard leases: pass --leases dynamodb://TABLE \
             (create it with `callqa store init --leases dynamodb://TABLE`)"
        ),
    }
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a number of claims in flight between 1 and 4096")),
    }
}

fn print_summary(summary: &IngestSummary, verbose: bool) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    let line = |c: &Counts| {
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
