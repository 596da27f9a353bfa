//! `callqa session build`: the session documents assembled from Amazon
//! Connect data, exactly as rules receive them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::session::{ConnectInputs, Session, SessionSource};

#[derive(clap::Args, Debug)]
pub struct SessionArgs {
    #[command(subcommand)]
    pub command: SessionCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SessionCommand {
    /// Assemble sessions from contact records, Contact Lens analysis and
    /// business events, and write them as session documents (NDJSON).
    ///
    /// Exit status: 0 when every input was usable; 1 when some contact
    /// records or events were malformed (each reported on stderr; the rest
    /// are still assembled); 2 when a directory or file cannot be read.
    Build(BuildArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Contact records: a directory as `callqa ingest --out` writes it (Hive
    /// partitions, `.ndjson.gz`), or any directory of `.json`/`.ndjson` CTRs.
    #[arg(long, value_name = "DIR")]
    pub ctr: PathBuf,

    #[command(flatten)]
    pub connect: ConnectOptions,

    /// Where to write the sessions (NDJSON); `-` or unset for stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The Amazon Connect inputs besides the contact records; shared by
/// `session build` and `check --ctr`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectOptions {
    /// Contact Lens output files (`<ContactId>_analysis_<time>.json`, voice
    /// and chat, original or redacted), searched recursively.
    #[arg(long, value_name = "DIR", requires = "ctr")]
    pub analysis: Option<PathBuf>,

    /// Business events, NDJSON: `{"contact_id" or "session_id", "kind", "at", "attrs": {…}}`.
    #[arg(long, value_name = "FILE", requires = "ctr")]
    pub events: Option<PathBuf>,

    /// Only the sessions whose first contact was initiated on this day.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "ctr")]
    pub date: Option<NaiveDate>,

    /// The time zone of `--date` (IANA name, e.g. Asia/Shanghai).
    #[arg(long, value_name = "ZONE", default_value = "UTC", requires = "date")]
    pub tz: Tz,
}

impl ConnectOptions {
    pub fn inputs(&self, ctr: PathBuf) -> ConnectInputs {
        ConnectInputs { ctr, analysis: self.analysis.clone(), events: self.events.clone(), day: self.date, tz: self.tz }
    }
}

/// Assembles the sessions, with the batch summary and any unusable analysis
/// file on stderr. Inner errors are inputs that could not be used.
pub fn assemble(
    ctr: &std::path::Path,
    options: &ConnectOptions,
) -> anyhow::Result<Vec<(SessionSource, anyhow::Result<Session>)>> {
    let batch = options.inputs(ctr.to_path_buf()).assemble()?;
    eprintln!("{}", batch.report);
    Ok(batch.sessions)
}

pub fn run(args: SessionArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SessionCommand::Build(args) => build(args),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let sessions = assemble(&args.ctr, &args.connect)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) if path.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut rejected = 0;
    for (source, session) in sessions {
        match session {
            Ok(session) => {
                serde_json::to_writer(&mut out, &session)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                rejected += 1;
                eprintln!("error: {source}: {e:#}");
            }
        }
    }
    out.flush().context("cannot write the sessions")?;
    Ok(if rejected > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
