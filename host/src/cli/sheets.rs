//! `callqa sheets`: the sheet store from the command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use super::check::CacheArgs;
use crate::atomic_write::write_atomically;
use crate::qa::sheet_store::{day_range, SheetFilter, SheetRow, SheetStoreUrl};
use crate::qa::{Inspector, ItemStatus};
use crate::rules::Ruleset;
use crate::stats::ReportFormat;
use crate::workbench::locale::Locale;
use crate::workbench::report::{self, FailingSheet, GroupBy};

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
    /// Evaluate stored sessions under another ruleset and report, per rule,
    /// how many items would change outcome (pass → fail, fail → pass, new
    /// errors), with example sessions; without --dry-run, also record the
    /// new evaluations (the old ones are kept).
    ///
    /// Example: what a stricter chase rule would have changed in November:
    ///   callqa sheets rerun --store sqlite:.callqa/sheets.db --rules new.toml \
    ///       --since 2026-11-01 --until 2026-11-30 --dry-run
    #[command(verbatim_doc_comment)]
    Rerun(RerunArgs),
    /// Assign a sample of each agent's unassigned sheets to reviewers: at
    /// random within each agent (at least one sheet per agent), dealt to the
    /// reviewers in turn. The same --seed over the same sheets draws the
    /// same sample; the seed used is printed.
    ///
    /// Example: 5% of last week's sheets of each agent of team B:
    ///   callqa sheets assign --store sqlite:.callqa/sheets.db --since 2026-11-23 \
    ///       --until 2026-11-29 --team "Team B" --sample 5% --by agent \
    ///       --reviewer rita --reviewer sam --seed 20261130
    #[command(verbatim_doc_comment)]
    Assign(AssignArgs),
    /// Write an HTML report of the stored sheets: one self-contained page
    /// (no network needed to open it) with the summary, the dashboard's
    /// charts, a table by team or agent, the items that fail most and the
    /// failing sheets with their evidence (the reviewed outcomes count).
    ///
    /// Example: last week by team, in Chinese:
    ///   callqa sheets report --store sqlite:.callqa/sheets.db --since 2026-11-23 \
    ///       --until 2026-11-29 --by team --lang zh --out week.html
    #[command(verbatim_doc_comment)]
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Add a table of the sheets by team or by agent.
    #[arg(long, value_enum)]
    pub by: Option<GroupBy>,
    /// The report's language [default: Chinese when $LANG starts with zh, else English].
    #[arg(long, value_enum, value_name = "LANG")]
    pub lang: Option<Locale>,
}

#[derive(clap::Args, Debug)]
pub struct AssignArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The share of each agent's sheets: `5%` or `0.05`.
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub sample: f64,
    /// What the sample is drawn within (only `agent`: every agent is reviewed).
    #[arg(long, value_enum, default_value_t = SampleBy::Agent)]
    pub by: SampleBy,
    /// The draw's seed; without one, a random seed is drawn and printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// A reviewer (user name) to assign to; repeat for several.
    #[arg(long = "reviewer", value_name = "USER", required = true)]
    pub reviewers: Vec<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SampleBy {
    Agent,
}

fn parse_share(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.trim().strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (text.trim(), 1.0),
    };
    let share = number.parse::<f64>().map_err(|_| format!("`{text}` is not a share: write 5% or 0.05"))? / scale;
    if share > 0.0 && share <= 1.0 {
        Ok(share)
    } else {
        Err(format!("`{text}` is not a share above 0 and at most 100%"))
    }
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Every evaluation of each session (one per ruleset version), not only the latest.
    #[arg(long)]
    pub all_evaluations: bool,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(clap::Args, Debug)]
pub struct RerunArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The ruleset to evaluate the stored sessions under.
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,
    /// Report only; record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `table` or `json` (the report has no flat rows for CSV).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Which stored sheets: the latest evaluation of each session.
#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    /// The sheet store (`sqlite:PATH` or `postgres://USER@HOST/DB`), as given to `check --sheets`.
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
    /// Only sheets a person reviewed (scores and outcomes are then theirs).
    #[arg(long, conflicts_with = "unreviewed")]
    pub reviewed: bool,
    /// Only sheets nobody reviewed yet.
    #[arg(long)]
    pub unreviewed: bool,
    /// Only sheets assigned to this reviewer (see `sheets assign`).
    #[arg(long, value_name = "USER")]
    pub assigned_to: Option<String>,
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
        SheetsCommand::Rerun(args) => rerun(args),
        SheetsCommand::Assign(args) => assign(args),
        SheetsCommand::Report(args) => report(args),
    }
}

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let filter = SheetFilter { limit: usize::MAX, ..args.filter.resolve()? };
    let store = SheetStoreUrl::parse(&args.filter.store)?.open()?;
    let figures = store.figures(&filter, usize::MAX).context("cannot count the sheets")?;
    // The failing sheets, as people left them: the reviewed outcomes.
    let failing_rows = store.list(&SheetFilter {
        outcome: Some(ItemStatus::Fail),
        limit: report::MAX_FAILING_SHOWN,
        ..filter.clone()
    })?;
    let mut failing = Vec::with_capacity(failing_rows.len());
    for row in &failing_rows {
        let (Some(view), Some(evaluation)) = (store.sheet_view(&row.session_id)?, store.evaluation(&row.session_id)?)
        else {
            continue;
        };
        failing.extend(FailingSheet::of(&view.sheet, Some(&evaluation.session)));
    }
    let title = format!(
        "{} {}–{}",
        store.describe(),
        args.filter.since.map_or_else(|| "…".to_owned(), |d| d.to_string()),
        args.filter.until.map_or_else(|| "…".to_owned(), |d| d.to_string())
    );
    let html = report::render(&title, &figures, failing, args.by, args.lang.unwrap_or_else(Locale::from_env))?;
    write_atomically(&args.out, html.as_bytes())
        .with_context(|| format!("cannot write the report {}", args.out.display()))?;
    eprintln!("report: {} ({} sheets)", args.out.display(), figures.sheets());
    Ok(ExitCode::SUCCESS)
}

fn assign(args: AssignArgs) -> anyhow::Result<ExitCode> {
    let filter = SheetFilter { limit: usize::MAX, ..args.filter.resolve()? };
    let store = SheetStoreUrl::parse(&args.filter.store)?.open()?;
    let seed = match args.seed {
        Some(seed) => seed,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("cannot draw a seed: {e}"))?;
            u64::from_le_bytes(bytes)
        }
    };
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let report = store.assign(&filter, args.sample, seed, &args.reviewers, &actor, Utc::now())?;
    let mut out = std::io::stdout().lock();
    if args.format == ReportFormat::Json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"seed": seed, "candidates": report.candidates, "assigned": report.assigned}),
        )?;
        writeln!(out)?;
    } else {
        let header: Vec<String> = ["reviewer", "session", "sheets"].map(String::from).to_vec();
        let cells: Vec<Vec<String>> = report
            .assigned
            .iter()
            .flat_map(|(reviewer, sessions)| {
                sessions.iter().map(move |s| vec![reviewer.clone(), s.clone(), "1".into()])
            })
            .collect();
        args.format.write_cells(&header, &cells, 2, &mut out)?;
    }
    out.flush().context("cannot write to stdout")?;
    let assigned: usize = report.assigned.values().map(Vec::len).sum();
    eprintln!(
        "{assigned} sheets assigned of {} unassigned, from {} agents (seed {seed})",
        report.candidates.values().sum::<u64>(),
        report.candidates.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let filter = SheetFilter { all_evaluations: args.all_evaluations, limit: args.limit, ..args.filter.resolve()? };
    let store = SheetStoreUrl::parse(&args.filter.store)?.open()?;
    let rows = store.list(&filter)?;
    let mut out = std::io::stdout().lock();
    write_rows(&rows, args.format, &mut out).context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    eprintln!("{} sheets", rows.len());
    Ok(ExitCode::SUCCESS)
}

fn rerun(args: RerunArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.format != ReportFormat::Csv, "the rerun report is a table or JSON, not CSV");
    let filter = SheetFilter { limit: usize::MAX, ..args.filter.resolve()? };
    let store = SheetStoreUrl::parse(&args.filter.store)?.open()?;
    let engine = Arc::new(args.cache.engine()?);
    let ruleset = Arc::new(Ruleset::load(&engine, &args.rules)?);
    let inspector = Inspector::new(engine, ruleset);
    let report = crate::qa::rerun::rerun(&store, &inspector, &filter, args.dry_run)?;
    let mut out = std::io::stdout().lock();
    if args.format == ReportFormat::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{} sessions re-evaluated; {} scores changed", report.sessions, report.scores_changed)?;
        // Text first, the two counts last (right-aligned).
        let header: Vec<String> = ["rule", "change", "examples", "unchanged", "items"].map(String::from).to_vec();
        let mut cells = Vec::new();
        for (rule, changes) in &report.rules {
            let unchanged = changes.unchanged.to_string();
            if changes.changes.is_empty() {
                cells.push(vec![rule.clone(), String::new(), String::new(), unchanged.clone(), String::new()]);
            }
            for (change, n) in &changes.changes {
                let examples = changes.examples.get(change).map(|e| e.join(" ")).unwrap_or_default();
                cells.push(vec![rule.clone(), change.clone(), examples, unchanged.clone(), n.to_string()]);
            }
        }
        args.format.write_cells(&header, &cells, 3, &mut out)?;
    }
    out.flush().context("cannot write to stdout")?;
    match args.dry_run {
        true => eprintln!("dry run: nothing recorded"),
        false => eprintln!("{} new evaluations recorded (the previous ones are kept)", report.recorded),
    }
    Ok(ExitCode::SUCCESS)
}

impl FilterArgs {
    fn resolve(&self) -> anyhow::Result<SheetFilter> {
        let args = self;
        let (since, until) = day_range(args.since, args.until, &args.tz).context("--since/--until/--tz")?;
        Ok(SheetFilter {
            since,
            until,
            queue: args.queue.clone(),
            agent: args.agent.clone(),
            team: args.team.clone(),
            rule: args.rule.clone(),
            outcome: args.outcome.map(Into::into),
            min_score: args.min_score,
            max_score: args.max_score,
            reviewed: match (args.reviewed, args.unreviewed) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            assigned_to: args.assigned_to.clone(),
            visible_teams: None,
            disputed: false,
            oldest_first: false,
            all_evaluations: false,
            after: None,
            limit: 100,
        })
    }
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
