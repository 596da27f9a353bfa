//! `callqa check`: QA sheets for session documents.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::atomic_write::write_atomically;
use crate::qa::sheet_figures::SheetFigures;
use crate::qa::sheet_store::{SheetRecord, SheetStoreUrl, Written};
use crate::qa::{Inspector, Summary};
use crate::rules::{RuleEngine, Ruleset};
use crate::session::read_sessions;
use crate::workbench::locale::Locale;
use crate::workbench::report::{self, FailingSheet};

/// Evaluate every applicable rule of a ruleset on each session and write one
/// QA sheet per session as NDJSON.
///
/// Exit status: 0 when every document got a sheet (failed items included);
/// 1 when some documents were malformed (each is reported on stderr with its
/// file and position; the others still get sheets); 2 when the ruleset or
/// an input is unusable.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The ruleset (TOML): rules, where they apply, weights, parameters.
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,

    /// Where to write the sheets (NDJSON); `-` or unset for stdout. Unset
    /// with stdout a terminal, a readable table of the sheets is printed
    /// instead (pipe stdout, or pass `--out -`, for NDJSON).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Also write an HTML report of the run to FILE: one self-contained page
    /// (no network needed to open it) with the summary, charts, the items
    /// that fail most and each failing sheet with its evidence.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// The report's language [default: Chinese when $LANG starts with zh, else English].
    #[arg(long, value_enum, value_name = "LANG")]
    pub lang: Option<Locale>,

    /// Also keep every sheet, with its session, in a sheet store
    /// (`sqlite:PATH`): idempotent by session and ruleset version, listed
    /// with `callqa sheets list`.
    #[arg(long, value_name = "URL")]
    pub sheets: Option<String>,

    #[command(flatten)]
    pub cache: CacheArgs,

    /// Session documents: `.json` files (one object or an array), `.ndjson`
    /// or `.jsonl` files (one per line), or directories of them.
    #[arg(required_unless_present = "ctr", value_name = "SESSION_FILES_OR_DIRS")]
    pub inputs: Vec<PathBuf>,

    /// Also assemble and check the sessions of Amazon Connect contact records
    /// in DIR (with `--analysis`, `--events`, `--date`; see `callqa session build`).
    #[arg(long, value_name = "DIR")]
    pub ctr: Option<PathBuf>,

    #[command(flatten)]
    pub connect: crate::cli::session::ConnectOptions,
}

/// Where compiled rule modules are cached between runs.
#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    /// Compiled-module cache directory [default: $CALLQA_CACHE_DIR, else
    /// $XDG_CACHE_HOME/callqa/modules, else ~/.cache/callqa/modules].
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,

    /// Compile every module afresh; write no cache.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

impl CacheArgs {
    pub fn engine(&self) -> anyhow::Result<RuleEngine> {
        let dir = if self.no_cache { None } else { self.cache_dir.clone().or_else(RuleEngine::default_cache_dir) };
        RuleEngine::new(dir)
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let engine = Arc::new(args.cache.engine()?);
    let ruleset = Arc::new(Ruleset::load(&engine, &args.rules)?);
    let mut documents = read_sessions(&args.inputs)?;
    if let Some(ctr) = &args.ctr {
        documents.extend(crate::cli::session::assemble(ctr, &args.connect)?);
    }

    let mut summary = Summary::default();
    let mut sessions = Vec::with_capacity(documents.len());
    for (source, parsed) in documents {
        match parsed {
            Ok(session) => sessions.push(Arc::new(session)),
            Err(e) => {
                summary.rejected_documents += 1;
                eprintln!("error: {source}: {e:#}");
            }
        }
    }

    let store = args.sheets.as_deref().map(|url| SheetStoreUrl::parse(url)?.open()).transpose()?;
    let inspector = Inspector::new(engine, ruleset.clone());
    let sheets = inspector.inspect_all(sessions.clone());
    if let Some(store) = &store {
        let evaluated_at = chrono::Utc::now();
        let records: Vec<SheetRecord<'_>> = sheets
            .iter()
            .zip(&sessions)
            .map(|(sheet, session)| SheetRecord { sheet, session, ruleset_version: &ruleset.version, evaluated_at })
            .collect();
        let written = store.put_all(&records).context("cannot store the sheets")?;
        let stored = written.iter().filter(|w| **w == Written::Stored).count();
        eprintln!(
            "sheet store: {stored} evaluations stored, {} already stored under this ruleset version",
            written.len() - stored
        );
    }

    for sheet in &sheets {
        summary.add(sheet);
    }
    if args.out.is_none() && std::io::stdout().is_terminal() {
        println!("{}", crate::qa::SheetTable { sheets: &sheets });
    } else {
        let mut out: Box<dyn Write> = match &args.out {
            Some(path) if path.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
            )),
            _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        for sheet in &sheets {
            serde_json::to_writer(&mut out, sheet)?;
            out.write_all(b"\n")?;
        }
        out.flush().context("cannot write the sheets")?;
    }
    if let Some(path) = &args.report {
        let figures = SheetFigures::from_sheets(sheets.iter().zip(sessions.iter().map(|s| &**s)));
        let failing = sheets
            .iter()
            .zip(&sessions)
            .filter_map(|(sheet, session)| FailingSheet::of(sheet, Some(session)))
            .collect();
        let title = args.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        let html = report::render(&title, &figures, failing, None, args.lang.unwrap_or_else(Locale::from_env))?;
        write_atomically(path, html.as_bytes())
            .with_context(|| format!("cannot write the report {}", path.display()))?;
        eprintln!("report: {}", path.display());
    }
    summary.add_health(&ruleset);
    eprintln!("{summary}");
    Ok(if summary.rejected_documents > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
