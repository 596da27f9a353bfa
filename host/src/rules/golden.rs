//! Golden cases: a session, parameters, and the verdict a rule must give.
//! Rule authors keep them beside their rule; `callqa rule test`, `callqa
//! validate --cases` and the bundled rules' own tests run them.
//!
//! ```json
//! {"name": "greets in Chinese",
//!  "session": "../../samples/sessions/voice-zh.json",   // or an inline session
//!  "params": {"within-seconds": 10},                     // overrides; optional
//!  "expect": {"outcome": "pass", "score": 1.0,           // score optional
//!             "findings": ["t1"]}}                       // segment ids, null for none; optional
//! ```
//!
//! `"outcome": "error"` expects no verdict, with `"error": "missing-data"`
//! (an error code) optionally naming which. For an item that reports a
//! trace (a scripted item), `"return-line": 9` expects the script's result
//! to come from the `return` on line 9: which branch decided.
//!
//! A ruleset's items have their cases in `golden/<item-id>/` beside the
//! ruleset file ([`item_cases_dir`]); the item's parameters (a scripted
//! item's operators and script) are the base the case's `params` override.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use super::engine::RuleEngine;
use super::evaluation::{self, Evaluation};
use super::limits::Limits;
use super::module::RuleModule;
use super::params;
use super::verdict::{Outcome, Verdict};
use crate::session::Session;
use crate::similarity::Similarity;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expectation {
    pub outcome: ExpectedOutcome,
    /// With `outcome: error`, the error code expected.
    #[serde(default)]
    pub error: Option<String>,
    /// The line of the `return` that decided, from the item's trace.
    #[serde(default)]
    pub return_line: Option<u64>,
    #[serde(default)]
    pub score: Option<f64>,
    /// Segment id of each finding, in order (`None` for a finding that
    /// points at no segment).
    #[serde(default)]
    pub findings: Option<Vec<Option<String>>>,
}

/// A verdict's outcome, or an error.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedOutcome {
    Pass,
    Fail,
    NotApplicable,
    Error,
}

impl ExpectedOutcome {
    pub fn name(self) -> &'static str {
        match self {
            ExpectedOutcome::Pass => "pass",
            ExpectedOutcome::Fail => "fail",
            ExpectedOutcome::NotApplicable => "not-applicable",
            ExpectedOutcome::Error => "error",
        }
    }

    fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Pass => ExpectedOutcome::Pass,
            Outcome::Fail => ExpectedOutcome::Fail,
            Outcome::NotApplicable => ExpectedOutcome::NotApplicable,
        }
    }
}

/// Where a ruleset item's golden cases live: `golden/<item-id>/` beside
/// the ruleset file.
pub fn item_cases_dir(ruleset: &Path, item: &str) -> PathBuf {
    ruleset.parent().unwrap_or(Path::new(".")).join("golden").join(item)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: Option<String>,
    session: Value,
    #[serde(default)]
    params: serde_json::Map<String, Value>,
    expect: Expectation,
}

#[derive(Debug, Clone)]
pub struct GoldenCase {
    pub name: String,
    pub file: PathBuf,
    pub session: Arc<Session>,
    pub params: serde_json::Map<String, Value>,
    pub expect: Expectation,
}

/// The outcome of one case: what differed, if anything.
#[derive(Debug)]
pub struct CaseResult {
    pub case: GoldenCase,
    pub evaluation: Evaluation,
    /// One line per difference, `expected … got …`; empty when it passed.
    pub differences: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Every case in `paths` (case files, or directories of `*.json` case
/// files, in name order).
pub fn load_cases(paths: &[PathBuf]) -> anyhow::Result<Vec<GoldenCase>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read the case directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files.iter().map(|f| load_case(f)).collect()
}

pub fn load_case(file: &Path) -> anyhow::Result<GoldenCase> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read the case {}", file.display()))?;
    let case: CaseFile =
        serde_json::from_str(&text).with_context(|| format!("{} is not a golden case", file.display()))?;
    // Through the one session parser, so a golden case and `callqa check`
    // judge a document alike (an inline session was parsed as a `Value`
    // already, so only its duplicate keys can no longer be told).
    let session_bytes = match case.session {
        Value::String(rel) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(&rel);
            std::fs::read(&path)
                .with_context(|| format!("{}: cannot read its session {}", file.display(), path.display()))?
        }
        inline => serde_json::to_vec(&inline)?,
    };
    let session = Session::from_json(&session_bytes)
        .with_context(|| format!("{}: not a valid session document", file.display()))?;
    let name = case.name.unwrap_or_else(|| file.file_stem().unwrap_or_default().to_string_lossy().into_owned());
    Ok(GoldenCase {
        name,
        file: file.to_path_buf(),
        session: Arc::new(session),
        params: case.params,
        expect: case.expect,
    })
}

/// Run one case through the sandbox under `limits`: a module with the
/// case's parameters over `base` (a ruleset item's parameters, or none).
pub fn run_case(
    engine: &RuleEngine,
    module: &RuleModule,
    base: &serde_json::Map<String, Value>,
    case: &GoldenCase,
    limits: &Limits,
) -> CaseResult {
    run_case_with(engine, module, base, case, limits, None)
}

/// [`run_case`] with a ruleset's similarity provider, so a ruleset item's
/// `similar` operators are judged by the provider the ruleset names (the
/// case's session embedded first, as the inspector does).
pub fn run_case_with(
    engine: &RuleEngine,
    module: &RuleModule,
    base: &serde_json::Map<String, Value>,
    case: &GoldenCase,
    limits: &Limits,
    similarity: Option<&Arc<Similarity>>,
) -> CaseResult {
    if let Some(s) = similarity {
        s.prepare(&case.session);
    }
    let result = run_case_in(engine, module, base, case, limits, similarity);
    if let Some(s) = similarity {
        s.finish(&case.session);
    }
    result
}

fn run_case_in(
    engine: &RuleEngine,
    module: &RuleModule,
    base: &serde_json::Map<String, Value>,
    case: &GoldenCase,
    limits: &Limits,
    similarity: Option<&Arc<Similarity>>,
) -> CaseResult {
    let mut given = base.clone();
    given.extend(case.params.clone());
    let (evaluation, differences) = match params::resolve(&module.descriptor.params, &given) {
        Ok(resolved) => {
            let eval = evaluation::evaluate_with(
                engine,
                module,
                module.descriptor.id.as_str().into(),
                case.session.clone(),
                &resolved,
                limits,
                similarity.cloned(),
            );
            let mut differences = match (&eval.result, case.expect.outcome) {
                (Ok(verdict), _) => compare(&case.expect, verdict),
                (Err(e), ExpectedOutcome::Error) => match &case.expect.error {
                    Some(code) if code != e.code() => vec![format!("error: expected {code}, got {}: {e}", e.code())],
                    _ => Vec::new(),
                },
                (Err(e), expected) => vec![format!("outcome: expected {}, got error: {e}", expected.name())],
            };
            if let Some(line) = case.expect.return_line {
                let got = return_line(eval.trace.as_ref());
                if got != Some(line) {
                    let got = got.map_or("no return in the trace".to_owned(), |l| format!("line {l}"));
                    differences.push(format!("return-line: expected line {line}, got {got}"));
                }
            }
            (eval, differences)
        }
        Err(e) => {
            let eval = Evaluation {
                result: Err(evaluation::EvaluationError::BadParams(e.clone())),
                fuel_used: 0,
                micros: 0,
                peak_memory: 0,
                log: Vec::new(),
                log_bytes: 0,
                log_dropped_bytes: 0,
                trace: None,
            };
            (eval, vec![format!("params: {e}")])
        }
    };
    CaseResult { case: case.clone(), evaluation, differences }
}

/// The line of the `return` that decided, from a scripted item's trace.
fn return_line(trace: Option<&Value>) -> Option<u64> {
    let steps = trace?.get("trace")?.get("steps")?.as_array()?;
    steps.iter().rev().find_map(|s| s.get("return")).and_then(Value::as_u64)
}

fn compare(expect: &Expectation, got: &Verdict) -> Vec<String> {
    let mut diffs = Vec::new();
    if expect.outcome != ExpectedOutcome::of(got.outcome) {
        diffs.push(format!(
            "outcome: expected {}, got {}{}",
            expect.outcome.name(),
            outcome_name(got.outcome),
            got.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    if let Some(score) = expect.score {
        if got.score.map(f64::from).is_none_or(|s| (s - score).abs() > 1e-3) {
            diffs.push(format!("score: expected {score}, got {}", got.score.map_or("none".into(), |s| s.to_string())));
        }
    }
    if let Some(findings) = &expect.findings {
        let actual: Vec<Option<String>> = got.findings.iter().map(|f| f.segment_id.clone()).collect();
        if &actual != findings {
            diffs.push(format!("findings: expected segments {}, got {}", show(findings), show(&actual)));
        }
    }
    diffs
}

fn show(ids: &[Option<String>]) -> String {
    let items: Vec<String> = ids.iter().map(|i| i.clone().unwrap_or_else(|| "-".into())).collect();
    format!("[{}]", items.join(", "))
}

pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::NotApplicable => "not-applicable",
    }
}
