//! One rule on one session: a fresh store and instance, the limits armed,
//! the verdict checked against the output caps. Nothing here can take the
//! host down: every failure of the rule becomes an [`EvaluationError`].

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, Trap};

use super::bindings::guest::{self, RuleError};
use super::bindings::types::Value;
use super::engine::RuleEngine;
use super::error_chain;
use super::limits::Limits;
use super::module::RuleModule;
use super::store::StoreState;
use super::verdict::{Finding, Outcome, Verdict};
use crate::session::Session;
use crate::similarity::Similarity;

/// What one evaluation produced, with its costs.
#[derive(Debug)]
pub struct Evaluation {
    pub result: Result<Verdict, EvaluationError>,
    pub fuel_used: u64,
    pub micros: u64,
    /// Highest linear memory the rule grew to, in bytes.
    pub peak_memory: usize,
    pub log: Vec<(String, String)>,
    /// Bytes logged within the cap.
    pub log_bytes: usize,
    pub log_dropped_bytes: usize,
    /// The explanation the rule attached (`callqa:rule/explain`): a JSON
    /// object, on verdicts and errors alike.
    pub trace: Option<serde_json::Value>,
}

/// Why a rule reached no verdict. The message says which limit and how much,
/// so the author can act on it.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EvaluationError {
    #[error("fuel exhausted: the rule used its whole budget of {budget} fuel (raise `limits.fuel` or make the rule cheaper)")]
    FuelExhausted { budget: u64 },
    #[error("timed out: the rule ran past its wall-clock deadline of {ms} ms")]
    Timeout { ms: u64 },
    #[error("{0}")]
    MemoryCap(String),
    #[error("stack overflow: the rule recursed too deep for the wasm stack")]
    StackOverflow,
    #[error("panicked: {0}")]
    Panic(String),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("bad parameters: {0}")]
    BadParams(String),
    #[error("the rule failed: {0}")]
    Failed(String),
    /// The rule could not decide because the session lacks data it needs
    /// (a scripted item whose decision met `null`): the session's fault,
    /// never the rule's, so it does not count toward quarantine.
    #[error("{0}")]
    MissingData(String),
    #[error("output cap exceeded: {0}")]
    OutputCap(String),
    #[error("could not start the rule: {0}")]
    Instantiate(String),
}

impl EvaluationError {
    /// A stable code for sheets and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EvaluationError::FuelExhausted { .. } => "fuel-exhausted",
            EvaluationError::Timeout { .. } => "timeout",
            EvaluationError::MemoryCap(_) => "memory-cap",
            EvaluationError::StackOverflow => "stack-overflow",
            EvaluationError::Panic(_) => "panic",
            EvaluationError::Trap(_) => "trap",
            EvaluationError::BadParams(_) => "bad-params",
            EvaluationError::Failed(_) => "failed",
            EvaluationError::MissingData(_) => "missing-data",
            EvaluationError::OutputCap(_) => "output-cap",
            EvaluationError::Instantiate(_) => "instantiate",
        }
    }

    /// Budget exhaustion (fuel, time, memory), as opposed to a rule's own bug.
    pub fn is_budget(&self) -> bool {
        matches!(
            self,
            EvaluationError::FuelExhausted { .. } | EvaluationError::Timeout { .. } | EvaluationError::MemoryCap(_)
        )
    }
}

/// Arms one evaluation's fuel and wall-clock deadline (fresh and warm
/// instances alike; an unmetered bench engine arms nothing).
pub(crate) fn arm_limits(
    store: &mut Store<StoreState>,
    engine: &RuleEngine,
    limits: &Limits,
) -> Result<(), EvaluationError> {
    if !engine.metered {
        return Ok(());
    }
    store.set_epoch_deadline(limits.deadline_ticks());
    store.set_fuel(limits.fuel).map_err(|e| EvaluationError::Instantiate(error_chain(&e)))
}

pub fn evaluate(
    engine: &RuleEngine,
    module: &RuleModule,
    rule_id: Arc<str>,
    session: Arc<Session>,
    params: &[(String, Value)],
    limits: &Limits,
) -> Evaluation {
    evaluate_with(engine, module, rule_id, session, params, limits, None)
}

/// [`evaluate`] with the ruleset's similarity provider.
pub fn evaluate_with(
    engine: &RuleEngine,
    module: &RuleModule,
    rule_id: Arc<str>,
    session: Arc<Session>,
    params: &[(String, Value)],
    limits: &Limits,
    similarity: Option<Arc<Similarity>>,
) -> Evaluation {
    let started = Instant::now();
    let mut state = StoreState::new(rule_id, session, limits, engine.patterns.clone());
    state.similarity = similarity;
    let mut store = module.new_store(state);
    let result = arm_limits(&mut store, engine, limits).and_then(|()| call(&mut store, module, params, limits));
    let micros = started.elapsed().as_micros() as u64;
    conclude(&mut store, engine, limits, result, micros)
}

/// The evaluation as its store leaves it, fresh or warm: the log cap
/// applied to a verdict, the fuel used, and the log taken out of the store.
pub(crate) fn conclude(
    store: &mut Store<StoreState>,
    engine: &RuleEngine,
    limits: &Limits,
    result: Result<Verdict, EvaluationError>,
    micros: u64,
) -> Evaluation {
    let fuel_used = if engine.metered { limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)) } else { 0 };
    let state = store.data_mut();
    let explanation = std::mem::take(&mut state.explanation);
    let trace = explanation.trace.as_deref().map(serde_json::from_str::<serde_json::Value>);
    let undecided = matches!(&trace, Some(Ok(t)) if t.get("outcome").and_then(|o| o.as_str()) == Some("unknown"));
    let result = match result {
        Ok(_) if state.log.dropped_bytes > 0 => Err(EvaluationError::OutputCap(format!(
            "the rule logged {} bytes; the cap is {} (`limits.max-log-bytes`)",
            state.log.dropped_bytes + state.log.bytes,
            limits.max_log_bytes
        ))),
        _ if explanation.refused_bytes > 0 => Err(EvaluationError::OutputCap(format!(
            "the rule's trace is {} bytes; the cap is {} (`limits.max-trace-bytes`)",
            explanation.refused_bytes, limits.max_trace_bytes
        ))),
        _ if matches!(&trace, Some(Ok(t)) if !t.is_object()) || matches!(&trace, Some(Err(_))) => {
            Err(EvaluationError::Failed("the rule's trace is not a JSON object".into()))
        }
        Err(EvaluationError::Failed(message)) if undecided => Err(EvaluationError::MissingData(message)),
        other => other,
    };
    let log = std::mem::take(&mut state.log);
    Evaluation {
        result,
        fuel_used,
        micros,
        peak_memory: state.memory.peak,
        log: log.lines.into_iter().map(|(level, line)| (format!("{level:?}").to_lowercase(), line)).collect(),
        log_bytes: log.bytes,
        log_dropped_bytes: log.dropped_bytes,
        trace: trace.and_then(Result::ok).filter(serde_json::Value::is_object),
    }
}

fn call(
    store: &mut Store<StoreState>,
    module: &RuleModule,
    params: &[(String, Value)],
    limits: &Limits,
) -> Result<Verdict, EvaluationError> {
    let evaluate = module.instantiate(store).map_err(|e| classify(store, e, limits))?;
    let session = store.data_mut().session_resource().map_err(|e| EvaluationError::Instantiate(error_chain(&e)))?;
    let returned = evaluate.call(store, session, params).map_err(|e| classify(store, e, limits))?;
    match returned {
        Ok(verdict) => check_output(verdict, limits),
        Err(RuleError::BadParams(m)) => Err(EvaluationError::BadParams(m)),
        Err(RuleError::Failed(m)) => Err(EvaluationError::Failed(m)),
    }
}

/// Turn a trap into the limit or bug it stands for.
pub(crate) fn classify(store: &Store<StoreState>, error: wasmtime::Error, limits: &Limits) -> EvaluationError {
    let state = store.data();
    if state.memory.refused.is_some() {
        return EvaluationError::MemoryCap(format!(
            "memory cap exceeded: the rule asked for {} bytes of linear memory, the cap is {} bytes",
            state.memory.refused.unwrap_or_default(),
            limits.memory_bytes
        ));
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => EvaluationError::FuelExhausted { budget: limits.fuel },
        Some(Trap::Interrupt) => EvaluationError::Timeout { ms: limits.timeout_ms },
        Some(Trap::StackOverflow) => EvaluationError::StackOverflow,
        Some(Trap::UnreachableCodeReached) => {
            // A std rule's panic message is on stderr; the SDK's no_std
            // runtime logs it at `error` just before it traps.
            let stderr = state.stderr_text();
            let logged = state.log.lines.last().filter(|(level, line)| {
                matches!(level, crate::rules::bindings::log::Level::Error) && line.starts_with("panicked")
            });
            match (stderr.lines().any(|l| l.contains("panicked")), logged) {
                (true, _) => EvaluationError::Panic(stderr),
                (false, Some((_, line))) => EvaluationError::Panic(line.clone()),
                (false, None) => EvaluationError::Trap("executed `unreachable` (an explicit trap or an abort)".into()),
            }
        }
        Some(Trap::MemoryOutOfBounds) => EvaluationError::Trap(
            "out of bounds memory access (in a Rust rule, most often deep recursion overflowing the shadow stack in linear memory: raise `-zstack-size` in the rule's .cargo/config.toml)".into(),
        ),
        Some(trap) => EvaluationError::Trap(trap.to_string()),
        None if error_chain(&error).contains("write beyond capacity") => EvaluationError::OutputCap(format!(
            "the rule wrote more than {} bytes to stdout or stderr (`limits.max-log-bytes`)",
            limits.max_log_bytes
        )),
        None => EvaluationError::Trap(error_chain(&error)),
    }
}

pub(crate) fn check_output(v: guest::Verdict, limits: &Limits) -> Result<Verdict, EvaluationError> {
    let cap = |m: String| Err(EvaluationError::OutputCap(m));
    if v.findings.len() > limits.max_findings {
        return cap(format!(
            "the rule returned {} findings; the cap is {} (`limits.max-findings`)",
            v.findings.len(),
            limits.max_findings
        ));
    }
    let longest =
        v.findings.iter().map(|f| f.message.len()).chain(v.reason.as_ref().map(String::len)).max().unwrap_or(0);
    if longest > limits.max_message_bytes {
        return cap(format!(
            "a message is {longest} bytes; the cap is {} (`limits.max-message-bytes`)",
            limits.max_message_bytes
        ));
    }
    if let Some(score) = v.score {
        if !(0.0..=1.0).contains(&score) {
            return Err(EvaluationError::Failed(format!("score {score} is outside [0, 1]")));
        }
    }
    Ok(Verdict {
        outcome: match v.outcome {
            guest::Outcome::Pass => Outcome::Pass,
            guest::Outcome::Fail => Outcome::Fail,
            guest::Outcome::NotApplicable => Outcome::NotApplicable,
        },
        score: v.score,
        reason: v.reason,
        findings: v
            .findings
            .into_iter()
            .map(|f| Finding { message: f.message, segment_id: f.segment_id, begin_ms: f.begin_ms, end_ms: f.end_ms })
            .collect(),
    })
}
