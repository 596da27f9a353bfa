//! Scripted items (`bundled:script`: operators and a QLExpress-subset
//! script) taken from a ruleset, evaluated fresh and warm.
//!
//! Their semantics differ from the compiled `chase-follow-up` on purpose, so
//! they are not checked against native; fresh and warm must agree with each
//! other, and the trace each run attaches says which branch it took.

use std::path::Path;
use std::sync::Arc;

use callqa::rules::bindings::types::Value;
use callqa::rules::evaluation::{self, Evaluation};
use callqa::rules::warm_instance::{WarmPool, DEFAULT_RECYCLE_AFTER};
use callqa::rules::Verdict;
use callqa::rules::{Limits, RuleEngine, RuleModule, Ruleset};
use callqa::session::Session;

use crate::RuleFailure;

/// The ruleset with the scripted chase item, relative to the repository root.
pub const RULESET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/scripted/rules.toml");
/// A sample session that reaches the seed script's deepest branch (an old
/// chase, the ticket urged more than 10 minutes after the call).
pub const DEEP_SESSION: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/scripted/sessions/old-chase-urged-late.json");

/// One scripted item of a ruleset: what `evaluate` needs, and a warm pool
/// of its own (as the bench keeps for `callqa warm`).
pub struct ScriptedItem {
    pub id: Arc<str>,
    pub module: Arc<RuleModule>,
    pub params: Vec<(String, Value)>,
    pub limits: Limits,
    pub warm: WarmPool,
}

impl ScriptedItem {
    /// The items `ids` of the ruleset at `path`, in that order.
    pub fn load_all(engine: &RuleEngine, path: &Path, ids: &[&str]) -> anyhow::Result<Vec<Self>> {
        let mut ruleset = Ruleset::load(engine, path)?;
        ids.iter()
            .map(|id| {
                let at = ruleset
                    .rules
                    .iter()
                    .position(|r| &*r.id == *id)
                    .ok_or_else(|| anyhow::anyhow!("the ruleset {} has no item `{id}`", path.display()))?;
                // The entry's own warm pool (left with an instance by the
                // load check) goes with the rest of the entry.
                let entry = ruleset.rules.swap_remove(at);
                Ok(ScriptedItem {
                    id: entry.id,
                    module: entry.module,
                    params: entry.params,
                    limits: entry.limits,
                    warm: WarmPool::new(DEFAULT_RECYCLE_AFTER),
                })
            })
            .collect()
    }

    /// A fresh instance for this evaluation: the program parsed every time.
    pub fn fresh(&self, engine: &RuleEngine, session: &Arc<Session>) -> Evaluation {
        evaluation::evaluate(engine, &self.module, self.id.clone(), session.clone(), &self.params, &self.limits)
    }

    /// A warm instance: the program parsed once, on the pool's first use.
    pub fn warm(&self, engine: &RuleEngine, session: &Arc<Session>) -> Evaluation {
        self.warm.evaluate(engine, &self.module, self.id.clone(), session.clone(), &self.params, &self.limits)
    }
}

/// An evaluation's result as the other engines give theirs.
pub fn result(evaluation: Evaluation) -> Result<Verdict, RuleFailure> {
    evaluation.result.map_err(Into::into)
}

/// What a run's trace says about the path it took.
pub struct RunPath {
    /// The `if` conditions evaluated, in order: (line, condition, branch).
    pub ifs: Vec<(u64, String, String)>,
    /// The line of the deciding `return`.
    pub returned_at: Option<u64>,
    /// The operators the run read (`A`: whether it hit, `@A`: its instants).
    pub operators: Vec<String>,
}

impl RunPath {
    /// From the trace the script attaches (`{"outcome":…,"trace":{…}}`).
    pub fn of(evaluation: &Evaluation) -> Option<Self> {
        let trace = evaluation.trace.as_ref()?;
        let trace = trace.get("trace").unwrap_or(trace);
        let operators = trace.get("operators")?.as_object()?.keys().cloned().collect();
        let mut ifs = Vec::new();
        let mut returned_at = None;
        for step in trace.get("steps")?.as_array()? {
            if let Some(line) = step.get("if").and_then(|l| l.as_u64()) {
                let text = |k: &str| step.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                ifs.push((line, text("condition"), text("branch")));
            } else if let Some(line) = step.get("return").and_then(|l| l.as_u64()) {
                returned_at = Some(line);
            }
        }
        Some(RunPath { ifs, returned_at, operators })
    }

    /// Only the promise gate (the script's first `if`) ran before the
    /// decision: no promise (or the chase called off), nothing else tested.
    pub fn trivial(&self) -> bool {
        self.ifs.len() <= 1
    }

    /// Whether the run read any event operator's instants (`@I`, `@B`, …
    /// of the item's event operators is what makes a run read events).
    pub fn read_events(&self, event_operators: &[&str]) -> bool {
        self.operators.iter().any(|o| event_operators.iter().any(|e| o.trim_start_matches('@') == *e))
    }
}
