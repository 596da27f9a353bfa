//! Warm instances: one instance of a rule reused across evaluations, instead
//! of a fresh one per evaluation (the default isolation).
//!
//! Only for modules that declare themselves stateless (the `callqa:stateless`
//! custom section, `export_rule!(MyRule, stateless)` in the Rust SDK) and
//! only when the ruleset asks for it (`instance = "warm"`): a rule that keeps
//! a cache or a counter in a `static` would otherwise carry one session's
//! state into the next.
//!
//! What stays per evaluation: fuel, the epoch deadline, the memory cap, the
//! log and its cap, the session. What a warm instance keeps: its linear
//! memory (so `peak_memory` is at least what it had grown to before). An
//! instance is thrown away, and the next evaluation gets a new one:
//! - after `recycle_after` evaluations, so slow leaks and fragmentation in
//!   the guest's allocator stay bounded;
//! - after any evaluation that did not return a verdict (a trap, a limit
//!   hit, an output cap, or the rule's own error): its memory may be
//!   half-updated;
//! - when the rule wrote to stdout or stderr, whose capture is per instance.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use parking_lot::Mutex;
use wasmtime::component::Resource;
use wasmtime::Store;

use super::bindings::guest::RuleError;
use super::bindings::types::Value;
use super::engine::RuleEngine;
use super::error_chain;
use super::evaluation::{arm_limits, check_output, classify, conclude, Evaluation, EvaluationError};
use super::host::session::SessionHandle;
use super::limits::Limits;
use super::module::{Evaluate, RuleModule};
use super::store::StoreState;
use crate::session::Session;
use crate::similarity::Similarity;

/// Evaluations per warm instance before it is replaced.
pub const DEFAULT_RECYCLE_AFTER: u32 = 1000;

/// The idle warm instances of one rule of a ruleset. Evaluations on several
/// threads each take their own instance; at most one per core is kept idle
/// (each holds a slot of the engine's instance pool).
pub struct WarmPool {
    recycle_after: u32,
    max_idle: usize,
    idle: Mutex<Vec<WarmInstance>>,
}

struct WarmInstance {
    store: Store<StoreState>,
    evaluate: Evaluate,
    evaluations: u32,
}

/// What an idle instance's state points at between evaluations, so it does
/// not keep the last session alive.
static NO_SESSION: LazyLock<Arc<Session>> = LazyLock::new(|| Arc::new(Session::placeholder()));

impl WarmPool {
    pub fn new(recycle_after: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        WarmPool { recycle_after: recycle_after.max(1), max_idle: cores, idle: Mutex::new(Vec::new()) }
    }

    pub fn recycle_after(&self) -> u32 {
        self.recycle_after
    }

    /// Idle instances now (for tests and metrics).
    pub fn idle(&self) -> usize {
        self.idle.lock().len()
    }

    /// Evaluate on an idle instance, or a new one when none is idle. The
    /// instance goes back to the pool only after a clean verdict.
    pub fn evaluate(
        &self,
        engine: &RuleEngine,
        module: &RuleModule,
        rule_id: Arc<str>,
        session: Arc<Session>,
        params: &[(String, Value)],
        limits: &Limits,
    ) -> Evaluation {
        self.evaluate_with(engine, module, rule_id, session, params, limits, None)
    }

    /// [`Self::evaluate`] with the ruleset's similarity provider.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_with(
        &self,
        engine: &RuleEngine,
        module: &RuleModule,
        rule_id: Arc<str>,
        session: Arc<Session>,
        params: &[(String, Value)],
        limits: &Limits,
        similarity: Option<Arc<Similarity>>,
    ) -> Evaluation {
        let started = Instant::now();
        let taken = self.idle.lock().pop();
        let mut warm = match taken {
            Some(warm) => warm,
            None => match WarmInstance::new(engine, module, limits) {
                Ok(warm) => warm,
                Err(e) => return Evaluation::failed(e, started),
            },
        };
        warm.evaluations += 1;
        warm.store.data_mut().begin_evaluation(rule_id, session, limits);
        warm.store.data_mut().similarity = similarity;
        let result = arm_limits(&mut warm.store, engine, limits).and_then(|()| warm.call(params, limits));
        let micros = started.elapsed().as_micros() as u64;
        let evaluation = conclude(&mut warm.store, engine, limits, result, micros);
        let state = warm.store.data_mut();
        let reusable = evaluation.result.is_ok() && warm.evaluations < self.recycle_after && !state.wrote_output();
        if reusable {
            state.session = NO_SESSION.clone();
            state.similarity = None;
            let mut idle = self.idle.lock();
            if idle.len() < self.max_idle {
                idle.push(warm);
            }
        }
        evaluation
    }
}

impl WarmInstance {
    /// Instantiate under the evaluation's limits (a Rust rule's start-up
    /// code runs here, and counts against the first evaluation's time).
    fn new(engine: &RuleEngine, module: &RuleModule, limits: &Limits) -> Result<Self, EvaluationError> {
        let state = StoreState::new("warm".into(), NO_SESSION.clone(), limits, engine.patterns.clone());
        let mut store = module.new_store(state);
        arm_limits(&mut store, engine, limits)?;
        let evaluate = module.instantiate(&mut store).map_err(|e| classify(&store, e, limits))?;
        Ok(WarmInstance { store, evaluate, evaluations: 0 })
    }

    fn call(&mut self, params: &[(String, Value)], limits: &Limits) -> Result<crate::rules::Verdict, EvaluationError> {
        let store = &mut self.store;
        let session = store.data_mut().session_resource().map_err(|e| EvaluationError::Instantiate(error_chain(&e)))?;
        let rep = session.rep();
        let returned = self.evaluate.call(store, session, params);
        // The rule only borrowed the session; the host's handle goes, so the
        // table does not grow with every evaluation.
        let _ = store.data_mut().table.delete(Resource::<SessionHandle>::new_own(rep));
        match returned.map_err(|e| classify(store, e, limits))? {
            Ok(verdict) => check_output(verdict, limits),
            Err(RuleError::BadParams(m)) => Err(EvaluationError::BadParams(m)),
            Err(RuleError::Failed(m)) => Err(EvaluationError::Failed(m)),
        }
    }
}

impl Evaluation {
    /// An evaluation that never reached the rule.
    pub(crate) fn failed(error: EvaluationError, started: Instant) -> Self {
        Evaluation {
            result: Err(error),
            fuel_used: 0,
            micros: started.elapsed().as_micros() as u64,
            peak_memory: 0,
            log: Vec::new(),
            log_bytes: 0,
            log_dropped_bytes: 0,
            trace: None,
        }
    }
}
