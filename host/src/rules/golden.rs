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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub outcome: Outcome,
    #[serde(default)]
    pub score: Option<f64>,
    /// Segment id of each finding, in order (`None` for a finding that
    /// points at no segment).
    #[serde(default)]
    pub findings: Option<Vec<Option<String>>>,
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

/// Run one case through the sandbox under `limits`.
pub fn run_case(engine: &RuleEngine, module: &RuleModule, case: &GoldenCase, limits: &Limits) -> CaseResult {
    let (evaluation, differences) = match params::resolve(&module.descriptor.params, &case.params) {
        Ok(resolved) => {
            let eval = evaluation::evaluate(
                engine,
                module,
                module.descriptor.id.as_str().into(),
                case.session.clone(),
                &resolved,
                limits,
            );
            let differences = match &eval.result {
                Ok(verdict) => compare(&case.expect, verdict),
                Err(e) => vec![format!("outcome: expected {}, got error: {e}", outcome_name(case.expect.outcome))],
            };
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
            };
            (eval, vec![format!("params: {e}")])
        }
    };
    CaseResult { case: case.clone(), evaluation, differences }
}

fn compare(expect: &Expectation, got: &Verdict) -> Vec<String> {
    let mut diffs = Vec::new();
    if expect.outcome != got.outcome {
        diffs.push(format!(
            "outcome: expected {}, got {}{}",
            outcome_name(expect.outcome),
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
