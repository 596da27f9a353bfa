//! `callqa rule new|run|test`: the rule author's toolkit.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};

use super::check::CacheArgs;
use crate::rules::golden::{self, outcome_name, CaseResult};
use crate::rules::scaffold::{self, Language};
use crate::rules::{evaluation, params, Evaluation, Limits, RuleEngine, RuleModule};
use crate::session::read_sessions;

#[derive(clap::Args, Debug)]
pub struct RuleArgs {
    #[command(subcommand)]
    pub command: RuleCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RuleCommand {
    /// Scaffold a rule project that builds as-is, with one golden case.
    New(NewArgs),
    /// Evaluate a rule once on a session and report the verdict and its costs
    /// against each limit.
    Run(RunArgs),
    /// Run golden cases (expected verdicts) against a rule module.
    ///
    /// Exit status: 0 when every case passes, 1 when any fails, 2 when the
    /// module or a case cannot be used.
    Test(TestArgs),
}

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The rule id (lower-case kebab-case), also the project directory name.
    pub name: String,
    /// The language of the rule.
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    pub lang: Language,
    /// Where to create the project directory [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Path of the callqa Rust SDK (`plugins/sdk`) for the Rust template
    /// [default: the SDK of the source tree callqa was built from].
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The rule: a `.wasm` component, or `bundled:<name>`.
    pub module: String,
    /// The session document to evaluate (JSON).
    #[arg(long, value_name = "FILE")]
    pub session: PathBuf,
    /// Parameters as a JSON object (overrides of the declared defaults).
    #[arg(long, value_name = "JSON", conflicts_with = "params_file")]
    pub params: Option<String>,
    /// Parameters from a JSON file.
    #[arg(long, value_name = "FILE")]
    pub params_file: Option<PathBuf>,
    /// Limits as a TOML file (the `[limits]` keys of a ruleset) [default: production limits].
    #[arg(long, value_name = "FILE")]
    pub limits: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The rule: a `.wasm` component, or `bundled:<name>`.
    pub module: String,
    /// Golden case files, or directories of them (`*.json`).
    #[arg(required = true)]
    pub cases: Vec<PathBuf>,
    /// Also write the results as JUnit XML, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

pub fn run(args: RuleArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RuleCommand::New(a) => new(a),
        RuleCommand::Run(a) => run_once(a),
        RuleCommand::Test(a) => test(a),
    }
}

fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(".")).join(&args.name);
    let sdk = args.sdk.unwrap_or_else(scaffold::default_sdk_path);
    let created = scaffold::create(&dir, &args.name, args.lang, &sdk)?;
    eprintln!("created {} ({} files)", dir.display(), created.len());
    if let Some(setup) = scaffold::setup_command(args.lang) {
        eprintln!("setup:  {setup}");
    }
    eprintln!("build:  {}", scaffold::build_command(args.lang, &args.name));
    eprintln!("test:   callqa rule test {} golden/", scaffold::module_path(args.lang, &args.name));
    Ok(ExitCode::SUCCESS)
}

fn load_module(engine: &RuleEngine, source: &str) -> anyhow::Result<Arc<RuleModule>> {
    RuleModule::load(engine, source, ".".as_ref()).with_context(|| format!("module `{source}` refused"))
}

fn run_once(args: RunArgs) -> anyhow::Result<ExitCode> {
    let engine = args.cache.engine()?;
    let module = load_module(&engine, &args.module)?;
    let mut documents = read_sessions(std::slice::from_ref(&args.session))?;
    anyhow::ensure!(
        documents.len() == 1,
        "{} holds {} sessions; `rule run` takes one",
        args.session.display(),
        documents.len()
    );
    let (source, session) = documents.remove(0);
    let session = session.with_context(|| format!("{source}"))?;
    let given = match (&args.params, &args.params_file) {
        (Some(json), _) => serde_json::from_str::<Value>(json).context("--params is not JSON")?,
        (None, Some(file)) => serde_json::from_str(
            &std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?,
        )
        .with_context(|| format!("{} is not JSON", file.display()))?,
        (None, None) => json!({}),
    };
    let given = given.as_object().cloned().context("parameters must be a JSON object")?;
    let resolved = params::resolve(&module.descriptor.params, &given).map_err(anyhow::Error::msg)?;
    let limits = match &args.limits {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            toml::from_str(&text).with_context(|| format!("{} is not a limits table", file.display()))?
        }
        None => Limits::default(),
    };
    let eval = evaluation::evaluate(
        &engine,
        &module,
        module.descriptor.id.as_str().into(),
        Arc::new(session),
        &resolved,
        &limits,
    );
    let report = report_json(&module, &eval, &limits);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())?;
    }
    Ok(if eval.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The machine-readable report of one evaluation: verdict or error, and each
/// cost beside its limit.
pub fn report_json(module: &RuleModule, eval: &Evaluation, limits: &Limits) -> Value {
    let (findings, longest) = match &eval.result {
        Ok(v) => (
            v.findings.len(),
            v.findings.iter().map(|f| f.message.len()).chain(v.reason.as_ref().map(String::len)).max().unwrap_or(0),
        ),
        Err(_) => (0, 0),
    };
    let code = eval.result.as_ref().err().map(|e| e.code());
    let cost =
        |used: u64, limit: u64, breached: bool| json!({"used": used, "limit": limit, "over": breached || used > limit});
    json!({
        "rule": {"id": module.descriptor.id, "version": module.descriptor.version, "module_sha256": module.sha256, "size": module.size},
        "verdict": eval.result.as_ref().ok(),
        "error": eval.result.as_ref().err().map(|e| json!({"code": e.code(), "message": e.to_string()})),
        "costs": {
            "fuel": cost(eval.fuel_used, limits.fuel, code == Some("fuel-exhausted")),
            "memory_bytes": cost(eval.peak_memory as u64, limits.memory_bytes as u64, code == Some("memory-cap")),
            "wall_micros": cost(eval.micros, limits.timeout_ms * 1000, code == Some("timeout")),
            "findings": cost(findings as u64, limits.max_findings as u64, false),
            "longest_message_bytes": cost(longest as u64, limits.max_message_bytes as u64, false),
            "log_bytes": cost((eval.log_bytes + eval.log_dropped_bytes) as u64, limits.max_log_bytes as u64, false),
        },
        "log": eval.log.iter().map(|(level, line)| json!({"level": level, "message": line})).collect::<Vec<_>>(),
    })
}

fn print_report(report: &Value, color: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let red = |s: String| if color { format!("\x1b[31m{s}\x1b[0m") } else { s };
    let rule = &report["rule"];
    writeln!(
        out,
        "rule      {} {} ({} bytes, sha256 {})",
        rule["id"].as_str().unwrap_or(""),
        rule["version"].as_str().unwrap_or(""),
        rule["size"],
        &rule["module_sha256"].as_str().unwrap_or("")[..12]
    )?;
    if let Some(v) = report["verdict"].as_object() {
        let score = v.get("score").and_then(Value::as_f64).map(|s| format!(" (score {s:.2})")).unwrap_or_default();
        writeln!(out, "verdict   {}{score}", v["outcome"].as_str().unwrap_or(""))?;
        if let Some(reason) = v.get("reason").and_then(Value::as_str) {
            writeln!(out, "reason    {reason}")?;
        }
        let findings = v["findings"].as_array().cloned().unwrap_or_default();
        writeln!(out, "findings  {}", findings.len())?;
        for f in findings {
            let at = match (f.get("segment_id").and_then(Value::as_str), f.get("begin_ms").and_then(Value::as_u64)) {
                (Some(id), Some(ms)) => format!("[{id} @ {:.1} s] ", ms as f64 / 1000.0),
                (Some(id), None) => format!("[{id}] "),
                (None, Some(ms)) => format!("[@ {:.1} s] ", ms as f64 / 1000.0),
                (None, None) => String::new(),
            };
            writeln!(out, "  - {at}{}", f["message"].as_str().unwrap_or(""))?;
        }
    }
    if let Some(e) = report["error"].as_object() {
        writeln!(
            out,
            "{}",
            red(format!("error     {}: {}", e["code"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
        )?;
    }
    writeln!(out, "cost      {:<22} {:>14} {:>14}", "", "used", "limit")?;
    for (key, label) in [
        ("fuel", "fuel"),
        ("memory_bytes", "memory, peak (bytes)"),
        ("wall_micros", "wall time (µs)"),
        ("findings", "findings"),
        ("longest_message_bytes", "longest message (B)"),
        ("log_bytes", "log (bytes)"),
    ] {
        let c = &report["costs"][key];
        let line = format!("          {label:<22} {:>14} {:>14}", c["used"], c["limit"]);
        writeln!(out, "{}", if c["over"] == true { red(line) } else { line })?;
    }
    let log = report["log"].as_array().cloned().unwrap_or_default();
    if !log.is_empty() {
        writeln!(out, "log")?;
        for l in log {
            writeln!(out, "  {}: {}", l["level"].as_str().unwrap_or(""), l["message"].as_str().unwrap_or(""))?;
        }
    }
    Ok(())
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let engine = args.cache.engine()?;
    let module = load_module(&engine, &args.module)?;
    let cases = golden::load_cases(&args.cases)?;
    anyhow::ensure!(!cases.is_empty(), "no golden cases found in {:?}", args.cases);
    let results: Vec<CaseResult> =
        cases.iter().map(|c| golden::run_case(&engine, &module, c, &Limits::default())).collect();
    let failed = print_results(&results)?;
    if let Some(path) = &args.junit {
        write_junit(path, &module, &results)?;
    }
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Prints each case and a diff of expected versus actual; returns how many failed.
pub fn print_results(results: &[CaseResult]) -> anyhow::Result<usize> {
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for r in results {
        if r.passed() {
            let outcome = r.evaluation.result.as_ref().map(|v| outcome_name(v.outcome)).unwrap_or("error");
            writeln!(
                out,
                "ok      {} ({outcome}, {} fuel, {} µs)",
                r.case.name, r.evaluation.fuel_used, r.evaluation.micros
            )?;
        } else {
            failed += 1;
            writeln!(out, "FAILED  {} ({})", r.case.name, r.case.file.display())?;
            for d in &r.differences {
                writeln!(out, "          {d}")?;
            }
        }
    }
    writeln!(out, "{} passed, {} failed", results.len() - failed, failed)?;
    Ok(failed)
}

pub fn write_junit(path: &std::path::Path, module: &RuleModule, results: &[CaseResult]) -> anyhow::Result<()> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("callqa rule {}", module.descriptor.id));
    for r in results {
        let status = if r.passed() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.differences.join("; ")).set_type("golden-mismatch");
            s
        };
        let mut case = TestCase::new(r.case.name.clone(), status);
        case.set_classname(module.descriptor.id.clone())
            .set_time(std::time::Duration::from_micros(r.evaluation.micros));
        suite.add_test_case(case);
    }
    let mut report = Report::new("callqa");
    report.add_test_suite(suite);
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    report.serialize(file).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
