//! `script` (`bundled:script`): an item QA staff configure without a
//! compiler, as **operators** (算子, tests over the session) and a short
//! **script** in a QLExpress subset that combines them (`crates/script`).
//!
//! The interpreter runs here, inside the sandbox, so fuel, deadline, memory
//! caps and quarantine apply to scripts exactly as to compiled rules; the
//! host has no script engine. The host encodes the ruleset's
//! `[rule.operators.X]` and `[rule.script]` into the one parameter
//! `program` (see `program.rs`) and evaluates the item once at load, so a
//! program this rule refuses (`bad-params`) refuses the ruleset.
//!
//! The script's result is the verdict: `true` (a problem found) fails with
//! the evidence of the operators the run read, `false` passes, and a
//! decision on missing data is a `missing-data` error, never a silent pass.
//! Every evaluation attaches its trace (`callqa:rule/explain`).

#![no_std]

extern crate alloc;

mod functions;
mod operator;
mod program;
mod session_view;

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use callqa_script::{Limits, OperatorValues, Outcome, RunResult, Step, Value as ScriptValue};
use callqa_sdk::prelude::*;

use functions::ScriptFunctions;
use operator::Reading;
use program::{Program, ProgramError};
use session_view::SessionView;

struct Script;

/// Evidence findings per operator, and in all: the sheet's cap is 100.
const FINDINGS_PER_OPERATOR: usize = 10;
const MAX_FINDINGS: usize = 50;

impl Rule for Script {
    fn describe() -> Descriptor {
        Descriptor::new("script", "0.1.0", "An item configured as operators and a QLExpress-subset script").param(
            ParamSpec::text(
                "program",
                None,
                "The operators and script as JSON; the ruleset's [rule.operators.X] and [rule.script] fill it",
            ),
        )
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        // Borrowed, not copied: a warm instance only compares it with the cached text.
        let text = match params.get("program") {
            Some(Value::Text(text)) => text.as_str(),
            _ => return Err(RuleError::BadParams("parameter `program` must be the item's program (a string)".into())),
        };
        let program = compiled(text).map_err(|e| RuleError::BadParams(e.to_json()))?;
        let view = SessionView::new(session);
        let readings = Readings::new(&program, &view);
        // No step budget of the language's own: fuel is the budget, one
        // accounting for scripts and compiled rules alike.
        let limits = Limits { steps: u64::MAX, ..Limits::default() };
        let run = program.script.run(&readings, &ScriptFunctions, &limits);
        // A capability the host could not provide (the similarity endpoint
        // down) decides nothing: not a pass, and not missing data either.
        if let Some(why) = readings.failure() {
            let mut json = String::from("{\"outcome\":\"error\",\"error\":");
            json.push_str(&serde_json::json!({ "message": why }).to_string());
            json.push('}');
            callqa_sdk::explain::trace(&json);
            return Err(RuleError::Failed(why));
        }
        match run {
            Ok(run) => {
                callqa_sdk::explain::trace(&run.to_json());
                verdict(&run, &readings)
            }
            Err(e) => {
                let mut json = String::from("{\"outcome\":\"error\",\"error\":");
                json.push_str(
                    &serde_json::json!({"line": e.line, "column": e.column, "message": e.message}).to_string(),
                );
                json.push_str(",\"trace\":");
                json.push_str(&e.trace.to_json());
                json.push('}');
                callqa_sdk::explain::trace(&json);
                Err(RuleError::Failed(alloc::format!("script line {}, column {}: {}", e.line, e.column, e.message)))
            }
        }
    }
}

fn verdict(run: &RunResult, readings: &Readings<'_>) -> Result<Verdict, RuleError> {
    match &run.outcome {
        Outcome::True => {
            let reason = alloc::format!("the script found a problem: {}", path(run));
            Ok(Verdict::fail(reason).score(0.0).findings(readings.evidence(run)))
        }
        Outcome::False => Ok(Verdict::pass().score(1.0).reason(alloc::format!("the script passed: {}", path(run)))),
        Outcome::Unknown { why } => Err(RuleError::Failed(alloc::format!("the script could not decide: {why}"))),
    }
}

/// The branches taken and the deciding return, in a line:
/// "if line 7 承诺催单 → then; if line 8 分钟差(上次催单,@A)>10 → then; returned true at line 9".
fn path(run: &RunResult) -> String {
    let mut parts: Vec<String> = Vec::new();
    for step in &run.trace.steps {
        match step {
            Step::If { line, condition, branch, .. } => {
                parts.push(alloc::format!("if line {line} {condition} → {}", branch.as_str()))
            }
            Step::Return { line, value, .. } => parts.push(alloc::format!("returned {value} at line {line}")),
            Step::Assign { .. } => {}
        }
    }
    let mut line = parts.join("; ");
    // Sheets cap a reason at 4 KiB; a loop of ifs must not turn the verdict into an error.
    if line.len() > 2000 {
        let mut cut = 2000;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// The compiled program of the last `program` text this instance saw. A
/// fresh instance compiles once per evaluation; a warm one (the default for
/// scripted items) once per ruleset load. Keyed by the whole text, so a
/// reused instance can never run another item's script.
struct Cache(RefCell<Option<(String, Rc<Program>)>>);

// SAFETY: a wasm32 guest instance runs on one thread.
unsafe impl Sync for Cache {}

static CACHE: Cache = Cache(RefCell::new(None));

fn compiled(text: &str) -> Result<Rc<Program>, ProgramError> {
    if let Some((cached, program)) = CACHE.0.borrow().as_ref() {
        if cached == text {
            return Ok(program.clone());
        }
    }
    let program = Program::parse(text)?;
    for op in &program.operators {
        op.kind.check_with_host(&["operators", op.name.as_str()])?;
    }
    let program = Rc::new(program);
    *CACHE.0.borrow_mut() = Some((text.to_string(), program.clone()));
    Ok(program)
}

/// The operators' readings for one evaluation, each computed when the
/// script (or another operator's scope) first asks for it.
struct Readings<'a> {
    program: &'a Program,
    view: &'a SessionView<'a>,
    read: RefCell<Vec<Option<Rc<Reading>>>>,
}

impl<'a> Readings<'a> {
    fn new(program: &'a Program, view: &'a SessionView<'a>) -> Self {
        Readings { program, view, read: RefCell::new(alloc::vec![None; program.operators.len()]) }
    }

    fn reading(&self, name: &str) -> Rc<Reading> {
        let Some((i, op)) = self.program.operator(name) else {
            return Rc::new(Reading::Unknown(alloc::format!("`{name}` is not configured")));
        };
        if let Some(r) = &self.read.borrow()[i] {
            return r.clone();
        }
        // Scopes form no cycle (checked at load), so this recursion ends.
        let reading = Rc::new(op.read(self.view, &|other| (*self.reading(other)).clone()));
        self.read.borrow_mut()[i] = Some(reading.clone());
        reading
    }

    /// Why an operator the run read could not be read at all.
    fn failure(&self) -> Option<String> {
        self.read.borrow().iter().flatten().find_map(|r| match &**r {
            Reading::Failed(why) => Some(why.clone()),
            _ => None,
        })
    }

    /// The evidence of the operators the run read that hit.
    fn evidence(&self, run: &RunResult) -> Vec<Finding> {
        let mut names: Vec<&str> = Vec::new();
        for (shown, _) in &run.trace.operators {
            let name = shown.trim_start_matches('@');
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut findings = Vec::new();
        for name in names {
            if let Reading::Hits(hits) = &*self.reading(name) {
                findings.extend(hits.iter().take(FINDINGS_PER_OPERATOR).map(|h| h.finding(name)));
            }
        }
        findings.truncate(MAX_FINDINGS);
        findings
    }
}

impl OperatorValues for Readings<'_> {
    fn value(&self, name: &str) -> ScriptValue {
        match &*self.reading(name) {
            Reading::Hits(_) => ScriptValue::Bool(true),
            Reading::Miss => ScriptValue::Bool(false),
            Reading::Unknown(_) | Reading::Failed(_) => ScriptValue::Null,
        }
    }

    fn instants(&self, name: &str) -> ScriptValue {
        match &*self.reading(name) {
            Reading::Hits(hits) => match hits.iter().map(|h| h.instant).collect::<Option<Vec<i64>>>() {
                Some(mut instants) => {
                    instants.sort_unstable();
                    ScriptValue::instants(&instants)
                }
                None => ScriptValue::Null,
            },
            Reading::Miss => ScriptValue::List(Vec::new()),
            Reading::Unknown(_) | Reading::Failed(_) => ScriptValue::Null,
        }
    }

    fn why_null(&self, name: &str) -> Option<String> {
        match &*self.reading(name) {
            Reading::Unknown(why) | Reading::Failed(why) => Some(why.clone()),
            Reading::Hits(_) => match self.program.operator(name) {
                Some((_, op)) if !op.kind.has_instants() => {
                    Some(alloc::format!("`{name}` tests a value and has no instants: read `{name}`, not `@{name}`"))
                }
                _ => Some("its hits have no instant (the contact has no start instant)".into()),
            },
            Reading::Miss => None,
        }
    }
}

export_rule!(Script, stateless, no_std);
