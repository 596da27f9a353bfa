//! The comparison benchmark's engines: the same two rules (`forbidden-phrases`
//! and `chase-follow-up`) evaluated five ways on the same sessions and
//! parameters, each returning a `callqa::rules::Verdict` so they can be checked
//! for agreement before anything is timed.
//!
//! - [`native`]: plain Rust over the host's session model (the floor);
//! - callqa, fresh instance per evaluation, and warm instance reused;
//! - [`rhai_rules`]: Rhai scripts, the session passed as a Rhai map;
//! - [`extism_rules`]: an Extism plugin, JSON bytes in and out.
//!
//! And, beside them, [`scripted`] items (`bundled:script`) from
//! `samples/scripted/rules.toml`: the chase item as QA staff write it, timed
//! in the same rounds but not checked against native (their semantics
//! differ from `chase-follow-up` on purpose).

pub mod extism_rules;
pub mod native;
pub mod rhai_rules;
pub mod scripted;

use std::sync::Arc;

use callqa::rules::bindings::types::Value;
use callqa::rules::Verdict;
use callqa::rules::{evaluation, EvaluationError, Limits, RuleEngine, RuleModule};
use callqa::session::Session;

/// The two rules measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    ForbiddenPhrases,
    ChaseFollowUp,
}

impl Rule {
    pub const ALL: [Rule; 2] = [Rule::ForbiddenPhrases, Rule::ChaseFollowUp];

    pub fn name(self) -> &'static str {
        match self {
            Rule::ForbiddenPhrases => "forbidden-phrases",
            Rule::ChaseFollowUp => "chase-follow-up",
        }
    }
}

/// Why an engine reached no verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleFailure {
    BadParams(String),
    Failed(String),
}

impl std::fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleFailure::BadParams(m) => write!(f, "bad parameters: {m}"),
            RuleFailure::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl From<EvaluationError> for RuleFailure {
    fn from(e: EvaluationError) -> Self {
        match e {
            EvaluationError::BadParams(m) => RuleFailure::BadParams(m),
            other => RuleFailure::Failed(other.to_string()),
        }
    }
}

/// A bundled rule loaded in callqa, with its default parameters resolved:
/// the inputs every engine gets.
pub struct LoadedRule {
    pub rule: Rule,
    pub module: Arc<RuleModule>,
    pub params: Vec<(String, Value)>,
    /// The same parameters as JSON, for the engines that take JSON.
    pub params_json: serde_json::Map<String, serde_json::Value>,
}

impl LoadedRule {
    pub fn load(engine: &RuleEngine, rule: Rule) -> anyhow::Result<Self> {
        let module = RuleModule::load(engine, &format!("bundled:{}", rule.name()), ".".as_ref())?;
        let params = callqa::rules::params::resolve(&module.descriptor.params, &Default::default())
            .map_err(anyhow::Error::msg)?;
        let params_json = params.iter().map(|(k, v)| (k.clone(), value_json(v))).collect();
        Ok(LoadedRule { rule, module, params, params_json })
    }

    /// callqa, a fresh instance for this evaluation (the default isolation).
    pub fn fresh(&self, engine: &RuleEngine, session: &Arc<Session>) -> Result<Verdict, RuleFailure> {
        let limits = Limits::default();
        evaluation::evaluate(engine, &self.module, self.rule.name().into(), session.clone(), &self.params, &limits)
            .result
            .map_err(Into::into)
    }
}

/// A WIT parameter value as JSON.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Boolean(b) => (*b).into(),
        Value::Integer(i) => (*i).into(),
        Value::Number(n) => (*n).into(),
        Value::Text(s) => s.clone().into(),
        Value::TextList(l) => l.clone().into(),
        Value::Json(j) => serde_json::from_str(j).unwrap_or(serde_json::Value::Null),
    }
}
