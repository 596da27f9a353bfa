//! `callqa validate`: the checks a CI pipeline runs before publishing a rule
//! or a ruleset.

use std::path::PathBuf;
use std::process::ExitCode;

use super::check::CacheArgs;
use crate::rules::module::ModuleError;
use crate::rules::program::PROGRAM_PARAM;
use crate::rules::{golden, Limits, RuleEngine, RuleModule, Ruleset};

/// Check rule modules and rulesets: each module is a component, implements
/// `callqa:rule` at a compatible version, imports only what is allowed, and
/// describes itself with a valid schema; each ruleset's parameters match its
/// rules' schemas, its scripted items' operators and scripts load (a refusal
/// names the line and column), and the items' golden cases
/// (`golden/<item-id>/` beside it) pass, as `serve` requires before a
/// reload; and a module's golden cases (with --cases) pass under production
/// limits.
///
/// Exit status (the first failing argument decides):
///   0 all valid
///   2 invalid input: a file that cannot be read, bad arguments
///   3 not a component (not WebAssembly, a core module, truncated or corrupt)
///   4 does not implement the qa-rule world (callqa:rule@0.1.0) at a compatible version
///   5 imports interfaces outside the allowlist
///   6 `describe` fails or returns an invalid schema
///   7 a ruleset is invalid (parameters, ids, limits, filters)
///   8 golden cases failed
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ValidateArgs {
    /// Rule modules (`.wasm`, `bundled:<name>`) and rulesets (`.toml`).
    #[arg(required_unless_present = "rules", value_name = "MODULE_OR_RULESET")]
    pub targets: Vec<String>,
    /// A ruleset to check, whatever its file name.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Golden cases (files or directories) to run against the one module given.
    #[arg(long, value_name = "PATH")]
    pub cases: Vec<PathBuf>,
    /// Also write the golden case results as JUnit XML.
    #[arg(long, value_name = "FILE", requires = "cases")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Exit codes, one per kind of problem.
pub mod exit {
    pub const INVALID_INPUT: u8 = 2;
    pub const NOT_A_COMPONENT: u8 = 3;
    pub const WRONG_WORLD: u8 = 4;
    pub const FORBIDDEN_IMPORTS: u8 = 5;
    pub const BAD_SCHEMA: u8 = 6;
    pub const BAD_RULESET: u8 = 7;
    pub const GOLDEN_FAILED: u8 = 8;
}

fn module_exit_code(e: &ModuleError) -> u8 {
    match e {
        ModuleError::Unreadable(_) => exit::INVALID_INPUT,
        ModuleError::NotWasm | ModuleError::CoreModule | ModuleError::Invalid(_) => exit::NOT_A_COMPONENT,
        ModuleError::WrongWorld(_) => exit::WRONG_WORLD,
        ModuleError::ForbiddenImports(_) => exit::FORBIDDEN_IMPORTS,
        ModuleError::DescribeFailed(_) | ModuleError::BadSchema(_) => exit::BAD_SCHEMA,
    }
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let modules = args.targets.iter().filter(|t| !t.ends_with(".toml")).count();
    if !args.cases.is_empty() && (modules != 1 || args.targets.len() != 1 || !args.rules.is_empty()) {
        eprintln!("error: --cases needs exactly one module to run them against");
        return Ok(ExitCode::from(exit::INVALID_INPUT));
    }
    let engine = args.cache.engine()?;
    let mut first_failure: Option<u8> = None;
    let mut fail = |code: u8| {
        first_failure.get_or_insert(code);
    };
    let rulesets = args.rules.iter().map(|p| (p.display().to_string(), true));
    let targets = args.targets.iter().map(|t| (t.clone(), t.ends_with(".toml")));
    for (target, is_ruleset) in rulesets.chain(targets) {
        let target = target.as_str();
        if is_ruleset {
            match Ruleset::load(&engine, target.as_ref()) {
                Ok(ruleset) => {
                    let scripted = ruleset.rules.iter().filter(|r| r.given.contains_key(PROGRAM_PARAM)).count();
                    println!("ok      {target}: ruleset of {} rules ({scripted} scripted)", ruleset.rules.len());
                    match run_item_cases(&engine, target.as_ref(), &ruleset) {
                        Ok(true) => {}
                        Ok(false) => fail(exit::GOLDEN_FAILED),
                        Err(e) => {
                            println!("FAILED  golden cases: {e:#}");
                            fail(exit::INVALID_INPUT);
                        }
                    }
                }
                Err(e) => {
                    let code =
                        e.chain().find_map(|c| c.downcast_ref::<ModuleError>()).map(module_exit_code).unwrap_or_else(
                            || {
                                if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some()) {
                                    exit::INVALID_INPUT
                                } else {
                                    exit::BAD_RULESET
                                }
                            },
                        );
                    println!("FAILED  {target}: {e:#}");
                    fail(code);
                }
            }
            continue;
        }
        match RuleModule::load(&engine, target, ".".as_ref()) {
            Ok(module) => {
                let d = &module.descriptor;
                println!(
                    "ok      {target}: rule `{}` {} ({} bytes, {} parameters, imports: {})",
                    d.id,
                    d.version,
                    module.size,
                    d.params.len(),
                    module.imports.join(", ")
                );
                if !args.cases.is_empty() {
                    match run_cases(&engine, &module, &args) {
                        Ok(true) => {}
                        Ok(false) => fail(exit::GOLDEN_FAILED),
                        Err(e) => {
                            println!("FAILED  golden cases: {e:#}");
                            fail(exit::INVALID_INPUT);
                        }
                    }
                }
            }
            Err(e) => {
                println!("FAILED  {target}: {e}");
                fail(module_exit_code(&e));
            }
        }
    }
    Ok(first_failure.map_or(ExitCode::SUCCESS, ExitCode::from))
}

fn run_cases(engine: &RuleEngine, module: &RuleModule, args: &ValidateArgs) -> anyhow::Result<bool> {
    let cases = golden::load_cases(&args.cases)?;
    anyhow::ensure!(!cases.is_empty(), "no golden cases in {:?}", args.cases);
    let results: Vec<_> =
        cases.iter().map(|c| golden::run_case(engine, module, &Default::default(), c, &Limits::default())).collect();
    let failed = super::rule::print_results(&results)?;
    if let Some(path) = &args.junit {
        let named: Vec<_> = results.into_iter().map(|r| (module.descriptor.id.as_str().into(), r)).collect();
        super::rule::write_junit(path, &named)?;
    }
    Ok(failed == 0)
}

/// The golden cases beside a ruleset (`golden/<item-id>/`), each item with
/// its own parameters and limits.
fn run_item_cases(engine: &RuleEngine, ruleset_path: &std::path::Path, ruleset: &Ruleset) -> anyhow::Result<bool> {
    let mut passed = true;
    for item in &ruleset.rules {
        let dir = golden::item_cases_dir(ruleset_path, &item.id);
        if !dir.is_dir() {
            continue;
        }
        let cases = golden::load_cases(std::slice::from_ref(&dir))?;
        println!("item    {}: {} golden cases", item.id, cases.len());
        let results: Vec<_> = cases
            .iter()
            .map(|c| {
                golden::run_case_with(engine, &item.module, &item.given, c, &item.limits, item.similarity.as_ref())
            })
            .collect();
        passed &= super::rule::print_results(&results)? == 0;
    }
    Ok(passed)
}
