//! `callqa replay`: put contact records from files on a Kinesis data stream.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::ctr::{FingerprintMode, RecordDecoder};
use crate::sources::kinesis::{self, KinesisProducer};
use crate::sources::{expand_inputs, RecordBytes, RecordReader};

const EXAMPLES: &str = "\
Examples:
  # The sample records onto a local stream (kinesalite), made with 4 shards:
  AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:4567 \\
    callqa replay --to kinesis://connect-ctr --create 4 samples/ctr/

  # Then read them back, deduplicated, into a bucket:
  callqa ingest --from kinesis://connect-ctr --store dynamodb://ctr-dedup --out s3://ctr-lake/ctr";

/// Put contact records from files on a Kinesis data stream, as Amazon
/// Connect does: one record per CTR, partitioned by ContactId.
///
/// For tests, demos and migrations: every record found in the inputs (any
/// format `callqa ingest` reads) is put as its compact JSON, the form Amazon
/// Connect streams; a record that cannot be decoded is put as it is, so a
/// consumer's dead letters can be exercised. Entries a call fails
/// (throttling, internal errors) are sent again with backoff.
#[derive(clap::Args, Debug)]
#[command(after_long_help = EXAMPLES)]
pub struct ReplayArgs {
    /// Files or directories to read (`-` for stdin).
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<String>,

    /// The stream to put the records on.
    #[arg(long, value_name = "kinesis://STREAM")]
    pub to: String,

    /// Create the stream with this many shards when it does not exist.
    #[arg(long, value_name = "SHARDS", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub create: Option<u32>,

    /// Records over this many bytes are left out (Kinesis refuses records
    /// over 1 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_record_bytes: u64,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let stream = kinesis::parse_stream(&args.to).context("--to takes kinesis://STREAM")??;
    let sources = expand_inputs(&args.inputs)?;
    let decoder = RecordDecoder::new(FingerprintMode::Canonical);
    let mut records = Vec::new();
    let (mut undecodable, mut left_out) = (0u64, 0u64);
    for source in &sources {
        let mut reader = RecordReader::open(source, args.max_record_bytes)?;
        while let Some(raw) = reader.next_record().with_context(|| format!("cannot read {source}"))? {
            if matches!(raw.bytes, RecordBytes::Cut(_)) {
                eprintln!("{source} {}: left out, over --max-record-bytes", raw.position);
                left_out += 1;
                continue;
            }
            match decoder.decode(&raw.bytes, raw.delivery) {
                Ok(record) => records.push((record.contact_id.clone(), record.line.to_vec())),
                Err(_) => {
                    undecodable += 1;
                    let key = crate::ctr::Fingerprint::of(&raw.bytes).to_hex()[..16].to_string();
                    records.push((key, raw.bytes.to_vec()));
                }
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let summary = runtime.block_on(async {
        if let Some(shards) = args.create {
            create_stream(&stream, shards).await?;
        }
        let mut producer = KinesisProducer::connect(&stream).await;
        producer.put(records).await?;
        anyhow::Ok(producer.summary())
    })?;
    eprintln!(
        "{} records put on kinesis://{stream} ({} bytes) in {} calls, {} entries sent again{}{}",
        summary.records,
        summary.bytes,
        summary.calls,
        summary.retried,
        if undecodable > 0 { format!("; {undecodable} undecodable records put as they are") } else { String::new() },
        if left_out > 0 { format!("; {left_out} oversized records left out") } else { String::new() },
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates the stream unless it exists, and waits until it is active.
async fn create_stream(stream: &str, shards: u32) -> anyhow::Result<()> {
    let client = kinesis::kinesis_client().await;
    match client.create_stream().stream_name(stream).shard_count(shards as i32).send().await {
        Ok(_) => eprintln!("created kinesis://{stream} with {shards} shards"),
        Err(err) if crate::aws::error_code(&err) == Some("ResourceInUseException") => {}
        Err(err) => anyhow::bail!("cannot create stream {stream}: {}", crate::aws::brief(&err)),
    }
    for _ in 0..600 {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("cannot describe stream {stream}: {}", crate::aws::brief(&err)))?;
        let status = summary.stream_description_summary().map(|d| d.stream_status().as_str().to_string());
        if status.as_deref() == Some("ACTIVE") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("stream {stream} is not active after 2 minutes")
}
