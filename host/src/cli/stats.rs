//! `callqa stats`: daily contact figures from a sink written by `callqa ingest`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono_tz::Tz;

use crate::sinks::SinkUrl;
use crate::stats::{DailyFigures, GroupBy, LatestVersions, ReportFormat};

/// Daily contact figures from a sink written by `callqa ingest --out` (a
/// directory or an S3 prefix).
///
/// Per day (in --tz), each ContactId is counted once, at its latest version:
/// contacts; by initiation method (inbound, outbound, transfer, callback,
/// API, other); abandoned (queued, never connected to an agent); average and
/// 90th-percentile queue wait (Queue.Duration); average handle time
/// (AgentInteractionDuration + CustomerHoldDuration + AfterContactWorkDuration),
/// hold and after-contact work, over contacts connected to an agent.
/// Durations are in seconds.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// The directory or `s3://BUCKET/PREFIX` that `callqa ingest --out`
    /// wrote (all .ndjson and .ndjson.gz files or objects below it are read).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub sink: String,

    /// IANA time zone whose calendar days the figures are per, e.g. Asia/Seoul.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,

    /// Break each day down further, by any of: channel, queue, method
    /// (comma-separated).
    #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
    pub by: Vec<GroupBy>,

    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let tz: Tz = args
        .tz
        .parse()
        .map_err(|_| anyhow::anyhow!("--tz {} is not an IANA time zone name like UTC or Asia/Seoul", args.tz))?;
    let latest = match SinkUrl::parse(&args.sink)? {
        SinkUrl::Directory(dir) => LatestVersions::read_sink(&dir)?,
        SinkUrl::S3(location) => LatestVersions::read_bucket(&location)?,
        SinkUrl::Stdout => anyhow::bail!("--sink -: stats reads a sink back; name the directory or bucket"),
    };
    let mut figures = DailyFigures::new(tz, args.by.clone());
    let mut contacts: Vec<_> = latest.contacts.values().collect();
    contacts.sort_by(|a, b| a.contact_id.cmp(&b.contact_id));
    for contact in contacts {
        figures.add(contact);
    }
    let undated = figures.undated;
    let groups = figures.group_names();
    let rows = figures.rows();
    let mut out = std::io::stdout().lock();
    args.format.write(&rows, &groups, &mut out).context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    eprintln!(
        "{} contacts ({} versions) from {} files in {}{}{}",
        latest.contacts.len(),
        latest.records,
        latest.files,
        args.sink,
        if undated > 0 { format!("; {undated} without InitiationTimestamp left out") } else { String::new() },
        if latest.unreadable > 0 { format!("; {} unreadable lines skipped", latest.unreadable) } else { String::new() },
    );
    Ok(ExitCode::SUCCESS)
}
