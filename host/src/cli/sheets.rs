//! `callqa sheets`: the sheet store from the command line.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::qa::sheet_store::{SheetFilter, SheetRow, SheetStoreUrl};
use crate::qa::ItemStatus;
use crate::stats::ReportFormat;

#[derive(clap::Args, Debug)]
pub struct SheetsArgs {
    #[command(subcommand)]
    pub command: SheetsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SheetsCommand {
    /// List stored sheets, the latest evaluation of each session, the
    /// contacts that began last first.
    ///
    /// Example: every failed chase item of team B in a week, in Shanghai days:
    ///   callqa sheets list --store sqlite:.callqa/sheets.db --since 2026-11-23 \
    ///       --until 2026-11-29 --tz Asia/Shanghai --team "Team B" \
    ///       --rule chase-promise-kept --outcome fail
    #[command(verbatim_doc_comment)]
    List(ListArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// The sheet store (`sqlite:PATH`), as given to `check --sheets`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// Contacts that began on or after this day (YYYY-MM-DD, in --tz).
    #[arg(long, value_name = "DAY")]
    pub since: Option<NaiveDate>,
    /// Contacts that began on or before this day (YYYY-MM-DD, in --tz).
    #[arg(long, value_name = "DAY")]
    pub until: Option<NaiveDate>,
    /// The time zone the days are in (IANA name).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    #[arg(long)]
    pub queue: Option<String>,
    /// The agent's id.
    #[arg(long)]
    pub agent: Option<String>,
    /// One level of the agent's hierarchy (a centre, a group, a team).
    #[arg(long)]
    pub team: Option<String>,
    /// Sheets with an item of this rule (with --outcome: in that outcome).
    #[arg(long, value_name = "RULE_ID")]
    pub rule: Option<String>,
    /// Sheets with an item in this outcome.
    #[arg(long, value_enum)]
    pub outcome: Option<OutcomeArg>,
    #[arg(long, value_name = "SCORE")]
    pub min_score: Option<f64>,
    #[arg(long, value_name = "SCORE")]
    pub max_score: Option<f64>,
    /// Every evaluation of each session (one per ruleset version), not only the latest.
    #[arg(long)]
    pub all_evaluations: bool,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OutcomeArg {
    Pass,
    Fail,
    NotApplicable,
    Error,
    Quarantined,
}

impl From<OutcomeArg> for ItemStatus {
    fn from(o: OutcomeArg) -> ItemStatus {
        match o {
            OutcomeArg::Pass => ItemStatus::Pass,
            OutcomeArg::Fail => ItemStatus::Fail,
            OutcomeArg::NotApplicable => ItemStatus::NotApplicable,
            OutcomeArg::Error => ItemStatus::Error,
            OutcomeArg::Quarantined => ItemStatus::Quarantined,
        }
    }
}

pub fn run(args: SheetsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SheetsCommand::List(args) => list(args),
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let tz: Tz = args
        .tz
        .parse()
        .map_err(|_| anyhow::anyhow!("--tz {} is not an IANA time zone name like UTC or Asia/Shanghai", args.tz))?;
    // A day in the zone, as the instant it begins (the earliest, where a
    // change of clocks makes midnight ambiguous or absent).
    let day_start = |day: NaiveDate| {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        tz.from_local_datetime(&midnight)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(midnight + chrono::Duration::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("{day} has no start in {tz}"))
    };
    if let (Some(since), Some(until)) = (args.since, args.until) {
        anyhow::ensure!(since <= until, "--since {since} is after --until {until}");
    }
    let filter = SheetFilter {
        since: args.since.map(day_start).transpose()?,
        until: args.until.map(|d| day_start(d.succ_opt().unwrap_or(d))).transpose()?,
        queue: args.queue,
        agent: args.agent,
        team: args.team,
        rule: args.rule,
        outcome: args.outcome.map(Into::into),
        min_score: args.min_score,
        max_score: args.max_score,
        all_evaluations: args.all_evaluations,
        limit: args.limit,
    };
    let store = SheetStoreUrl::parse(&args.store)?.open()?;
    let rows = store.list(&filter)?;
    let mut out = std::io::stdout().lock();
    write_rows(&rows, args.format, &mut out).context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    eprintln!("{} sheets", rows.len());
    Ok(ExitCode::SUCCESS)
}

fn write_rows(rows: &[SheetRow], format: ReportFormat, out: &mut dyn Write) -> anyhow::Result<()> {
    if format == ReportFormat::Json {
        serde_json::to_writer_pretty(&mut *out, rows)?;
        writeln!(out)?;
        return Ok(());
    }
    let header: Vec<String> =
        ["started_at", "session_id", "queue", "agent", "team", "grade", "complete", "failed", "ruleset", "score"]
            .iter()
            .map(|h| h.to_string())
            .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.started_at.clone().unwrap_or_default(),
                r.session_id.clone(),
                r.queue.clone().unwrap_or_default(),
                r.agent_id.clone().unwrap_or_default(),
                r.team.clone().unwrap_or_default(),
                r.grade.clone().unwrap_or_default(),
                if r.complete { "yes" } else { "no" }.to_owned(),
                r.failed.join(" "),
                r.ruleset_version.chars().take(12).collect(),
                r.score.map(|s| format!("{s:.4}")).unwrap_or_default(),
            ]
        })
        .collect();
    // The score, last, is the one right-aligned column.
    format.write_cells(&header, &cells, header.len() - 1, out)
}
