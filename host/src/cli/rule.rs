//! `callqa rule new|run|test`: the rule author's toolkit.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};

use super::check::CacheArgs;
use crate::rules::golden::{self, outcome_name, CaseResult};
use crate::rules::scaffold::{self, Language};
use crate::rules::{evaluation, params, Evaluation, Limits, RuleEngine, RuleModule, Ruleset};
use crate::session::read_sessions;
use crate::similarity::Similarity;

#[derive(clap::Args, Debug)]
pub struct RuleArgs {
    #[command(subcommand)]
    pub command: RuleCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RuleCommand {
    /// Scaffold a rule project that builds as-is, with one golden case.
    New(NewArgs),
    /// Evaluate a rule once on a session and report the verdict, the trace of
    /// a scripted item (which clause decided) and its costs against each limit.
    ///
    /// The rule is a module (`callqa rule run bundled:greeting --session s.json`)
    /// or an item of a ruleset with its parameters, scripted items included
    /// (`callqa rule run --rules rules.toml --item chase-promise-kept --session s.json`).
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Run golden cases (expected verdicts) against a rule module or a
    /// ruleset item.
    ///
    /// With --rules and no CASES, each item's cases are `golden/<item-id>/`
    /// beside the ruleset (every item that has them, or the one --item names).
    ///
    /// Exit status: 0 when every case passes, 1 when any fails, 2 when the
    /// module, the ruleset or a case cannot be used.
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

/// Which rule: a module, or an item of a ruleset.
#[derive(clap::Args, Debug)]
pub struct RuleChoice {
    /// The rule: a `.wasm` component, or `bundled:<name>`.
    #[arg(required_unless_present = "rules", conflicts_with = "rules")]
    pub module: Option<String>,
    /// A ruleset whose item to use, with the item's parameters, limits and
    /// (for a scripted item) operators and script.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// The item's id in --rules [default: the ruleset's only item].
    #[arg(long, value_name = "ID", requires = "rules")]
    pub item: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub rule: RuleChoice,
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
    /// `MODULE CASES...`: the rule (a `.wasm` component or `bundled:<name>`)
    /// and its golden case files or directories (`*.json`). With --rules,
    /// only `CASES...` [default: `golden/<item-id>/` beside the ruleset].
    #[arg(value_name = "MODULE CASES", required_unless_present = "rules")]
    pub args: Vec<String>,
    /// Test the items of this ruleset, each with its parameters and limits
    /// (a scripted item with its operators and script).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Only this item of --rules.
    #[arg(long, value_name = "ID", requires = "rules")]
    pub item: Option<String>,
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
    let target = match (&args.rule.module, &args.rule.rules) {
        (Some(module), _) => Target::module(&engine, module)?,
        (None, Some(rules)) => {
            let mut items = Target::items(&engine, rules, args.rule.item.as_deref())?;
            anyhow::ensure!(
                items.len() == 1,
                "{} has {} items; name one with --item ({})",
                rules.display(),
                items.len(),
                items.iter().map(|t| t.id.to_string()).collect::<Vec<_>>().join(", ")
            );
            items.remove(0)
        }
        (None, None) => anyhow::bail!("name a module, or a ruleset item with --rules and --item"),
    };
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
    let mut params = target.given.clone();
    params.extend(given.as_object().cloned().context("parameters must be a JSON object")?);
    let resolved = params::resolve(&target.module.descriptor.params, &params).map_err(anyhow::Error::msg)?;
    let limits = match &args.limits {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            toml::from_str(&text).with_context(|| format!("{} is not a limits table", file.display()))?
        }
        None => target.limits,
    };
    let session = Arc::new(session);
    if let Some(s) = &target.similarity {
        s.prepare(&session);
    }
    let eval = evaluation::evaluate_with(
        &engine,
        &target.module,
        target.id.clone(),
        session,
        &resolved,
        &limits,
        target.similarity.clone(),
    );
    let report = report_json(&target.module, &eval, &limits);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())?;
    }
    Ok(if eval.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A rule to run: a module with the parameters and limits it runs under (a
/// ruleset item's, or none and the production limits).
struct Target {
    id: Arc<str>,
    module: Arc<RuleModule>,
    given: serde_json::Map<String, Value>,
    limits: Limits,
    /// A ruleset item's similarity provider (`None`: a module on its own).
    similarity: Option<Arc<Similarity>>,
}

impl Target {
    fn module(engine: &RuleEngine, source: &str) -> anyhow::Result<Target> {
        let module = load_module(engine, source)?;
        Ok(Target {
            id: module.descriptor.id.as_str().into(),
            module,
            given: Default::default(),
            limits: Limits::default(),
            similarity: None,
        })
    }

    /// The items of a ruleset (checked as `check` and `serve` check it), or
    /// the one `item` names.
    fn items(engine: &RuleEngine, rules: &Path, item: Option<&str>) -> anyhow::Result<Vec<Target>> {
        let ruleset = Ruleset::load(engine, rules)?;
        if let Some(id) = item {
            anyhow::ensure!(
                ruleset.rules.iter().any(|r| &*r.id == id),
                "{} has no item `{id}` (its items: {})",
                rules.display(),
                ruleset.rules.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(", ")
            );
        }
        Ok(ruleset
            .rules
            .iter()
            .filter(|r| item.is_none_or(|id| &*r.id == id))
            .map(|r| Target {
                id: r.id.clone(),
                module: r.module.clone(),
                given: r.given.clone(),
                limits: r.limits,
                similarity: r.similarity.clone(),
            })
            .collect())
    }
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
        "trace": eval.trace,
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
    if let Some(trace) = report.get("trace").filter(|t| t.is_object()) {
        for line in trace_lines(trace) {
            writeln!(out, "{line}")?;
        }
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
        let line = format!("          {label:<22} {:>14} {:>14}", c["used"].to_string(), c["limit"].to_string());
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

/// A scripted item's trace for people: the operators read, each
/// assignment, each `if` and the branch taken, and the `return` that decided.
fn trace_lines(trace: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let outcome = trace["outcome"].as_str().unwrap_or("");
    lines.push(format!("trace     the script's result: {outcome}"));
    if let Some(m) = trace.get("missing").filter(|m| m.is_object()) {
        lines.push(format!(
            "          missing: `{}` at line {}, column {} is null: {}",
            m["name"].as_str().unwrap_or(""),
            m["line"],
            m["column"],
            m["detail"].as_str().unwrap_or("")
        ));
    }
    if let Some(e) = trace.get("error").filter(|e| e.is_object()) {
        lines.push(format!(
            "          error at line {}, column {}: {}",
            e["line"],
            e["column"],
            e["message"].as_str().unwrap_or("")
        ));
    }
    let run = &trace["trace"];
    if let Some(ops) = run["operators"].as_object() {
        for (name, value) in ops {
            lines.push(format!("          {name:<10} = {value}"));
        }
    }
    for step in run["steps"].as_array().into_iter().flatten() {
        let line = if let Some(name) = step.get("assign") {
            format!("  line {:<4} {} = {}", step["line"].to_string(), name.as_str().unwrap_or(""), step["value"])
        } else if let Some(at) = step.get("if").map(Value::to_string) {
            format!(
                "  line {at:<4} if ({}) is {} → {}",
                step["condition"].as_str().unwrap_or(""),
                step["value"],
                step["branch"].as_str().unwrap_or("")
            )
        } else if let Some(at) = step.get("return").map(Value::to_string) {
            format!("  line {at:<4} return {}", step["value"])
        } else {
            continue;
        };
        lines.push(format!("        {line}"));
    }
    if let Some(n) = run["truncated"].as_u64().filter(|n| *n > 0) {
        lines.push(format!("          … {n} more steps"));
    }
    lines
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let engine = args.cache.engine()?;
    let mut suites: Vec<(Target, Vec<PathBuf>)> = Vec::new();
    match &args.rules {
        Some(rules) => {
            let named: Vec<PathBuf> = args.args.iter().map(PathBuf::from).collect();
            for target in Target::items(&engine, rules, args.item.as_deref())? {
                let cases = if !named.is_empty() {
                    named.clone()
                } else {
                    let dir = golden::item_cases_dir(rules, &target.id);
                    if !dir.is_dir() {
                        anyhow::ensure!(
                            args.item.is_none(),
                            "item `{}` has no golden cases at {}",
                            target.id,
                            dir.display()
                        );
                        continue;
                    }
                    vec![dir]
                };
                suites.push((target, cases));
            }
            anyhow::ensure!(
                !suites.is_empty(),
                "no item of {} has golden cases (golden/<item-id>/ beside it); name them after --rules",
                rules.display()
            );
        }
        None => {
            let (module, cases) = args.args.split_first().context("name the module, then its golden cases")?;
            anyhow::ensure!(!cases.is_empty(), "name the golden cases (files or directories) after the module");
            suites.push((Target::module(&engine, module)?, cases.iter().map(PathBuf::from).collect()));
        }
    }
    let mut results = Vec::new();
    for (target, paths) in &suites {
        let cases = golden::load_cases(paths)?;
        anyhow::ensure!(!cases.is_empty(), "no golden cases found in {paths:?}");
        if suites.len() > 1 {
            println!("item {}", target.id);
        }
        let ran: Vec<CaseResult> = cases
            .iter()
            .map(|c| {
                golden::run_case_with(
                    &engine,
                    &target.module,
                    &target.given,
                    c,
                    &target.limits,
                    target.similarity.as_ref(),
                )
            })
            .collect();
        print_results(&ran)?;
        results.extend(ran.into_iter().map(|r| (target.id.clone(), r)));
    }
    if let Some(path) = &args.junit {
        write_junit(path, &results)?;
    }
    Ok(if results.iter().any(|(_, r)| !r.passed()) { ExitCode::from(1) } else { ExitCode::SUCCESS })
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

/// JUnit XML of golden case results, each under the rule or item it tested.
pub fn write_junit(path: &std::path::Path, results: &[(Arc<str>, CaseResult)]) -> anyhow::Result<()> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("callqa golden cases");
    for (rule, r) in results {
        let status = if r.passed() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.differences.join("; ")).set_type("golden-mismatch");
            s
        };
        let mut case = TestCase::new(r.case.name.clone(), status);
        case.set_classname(rule.to_string()).set_time(std::time::Duration::from_micros(r.evaluation.micros));
        suite.add_test_case(case);
    }
    let mut report = Report::new("callqa");
    report.add_test_suite(suite);
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    report.serialize(file).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
