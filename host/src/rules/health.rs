//! A rule's health across evaluations: error counts and quarantine. A rule
//! that errors on `quarantine_after` evaluations in a row is skipped (its
//! item says `quarantined`, with the last error) until its module changes
//! or an operator releases it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use super::evaluation::EvaluationError;

#[derive(Default)]
pub struct RuleHealth {
    consecutive_errors: AtomicU32,
    evaluations: AtomicU64,
    errors: AtomicU64,
    budgets_exhausted: AtomicU64,
    quarantines: AtomicU64,
    /// The error that put the rule in quarantine; `None` while healthy.
    quarantined: Mutex<Option<String>>,
}

/// A snapshot for summaries and the rules endpoint.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HealthCounts {
    pub evaluations: u64,
    pub errors: u64,
    pub budgets_exhausted: u64,
    pub quarantines: u64,
    pub quarantined: Option<String>,
}

impl RuleHealth {
    /// The same counts and quarantine, for a reloaded ruleset whose entry
    /// runs the same module: a reload must not end a quarantine by itself.
    pub fn carried_over(from: &RuleHealth) -> Self {
        RuleHealth {
            consecutive_errors: AtomicU32::new(from.consecutive_errors.load(Ordering::Relaxed)),
            evaluations: AtomicU64::new(from.evaluations.load(Ordering::Relaxed)),
            errors: AtomicU64::new(from.errors.load(Ordering::Relaxed)),
            budgets_exhausted: AtomicU64::new(from.budgets_exhausted.load(Ordering::Relaxed)),
            quarantines: AtomicU64::new(from.quarantines.load(Ordering::Relaxed)),
            quarantined: Mutex::new(from.quarantined()),
        }
    }

    /// The last error, when the rule is in quarantine.
    pub fn quarantined(&self) -> Option<String> {
        self.quarantined.lock().clone()
    }

    pub fn record_success(&self) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.consecutive_errors.store(0, Ordering::Relaxed);
    }

    /// Count an error; quarantine after `threshold` in a row (0 never).
    /// Returns true when this error started a quarantine.
    pub fn record_error(&self, error: &EvaluationError, threshold: u32) -> bool {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        if error.is_budget() {
            self.budgets_exhausted.fetch_add(1, Ordering::Relaxed);
        }
        let in_a_row = self.consecutive_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if threshold == 0 || in_a_row < threshold {
            return false;
        }
        let mut quarantined = self.quarantined.lock();
        if quarantined.is_some() {
            return false;
        }
        *quarantined = Some(format!("{in_a_row} errors in a row; last: {error}"));
        self.quarantines.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// An operator ends the quarantine; the rule runs again from zero.
    pub fn release(&self) -> bool {
        self.consecutive_errors.store(0, Ordering::Relaxed);
        self.quarantined.lock().take().is_some()
    }

    pub fn counts(&self) -> HealthCounts {
        HealthCounts {
            evaluations: self.evaluations.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            budgets_exhausted: self.budgets_exhausted.load(Ordering::Relaxed),
            quarantines: self.quarantines.load(Ordering::Relaxed),
            quarantined: self.quarantined(),
        }
    }
}
