//! A rule's health across evaluations: error counts and quarantine. A rule
//! that errors on `quarantine_after` evaluations in a row is skipped (its
//! item says `quarantined`, with the last error) until its module changes
//! or an operator releases it.
//!
//! Quarantine switches a rule off for everyone, so only evidence that the
//! rule is broken counts toward it ([`Accountability`]): a trap, a panic, a
//! bad verdict, or a budget exhausted on a session of ordinary size, from
//! the service's own sessions. A document one caller sent never counts (it
//! could be built to make a rule fail), and neither does a budget
//! exhausted on a session larger than the limits were sized for.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use super::evaluation::EvaluationError;

/// Whether an evaluation's outcome may count toward its rule's quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accountability {
    /// Sessions the service assembled itself, and `callqa check`'s inputs.
    Counted,
    /// A document one caller sent (`POST /v1/sessions/evaluate`): its
    /// errors show on that caller's sheet and in the counts, and it neither
    /// advances nor resets the run of errors that leads to quarantine.
    Isolated,
}

/// Segments a session may have for an exhausted budget to count as the
/// rule's fault: the default limits leave a bundled rule 50x headroom on a
/// 10-minute call of a few hundred segments.
pub const ORDINARY_SEGMENTS: usize = 5_000;

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

    pub fn record_success(&self, accountability: Accountability) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        if accountability == Accountability::Counted {
            self.consecutive_errors.store(0, Ordering::Relaxed);
        }
    }

    /// Count an error; quarantine after `threshold` counted errors in a row
    /// (0 never). `segments` is the session's transcript length. Returns
    /// true when this error started a quarantine.
    pub fn record_error(
        &self,
        error: &EvaluationError,
        threshold: u32,
        accountability: Accountability,
        segments: usize,
    ) -> bool {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        if error.is_budget() {
            self.budgets_exhausted.fetch_add(1, Ordering::Relaxed);
        }
        let counts = match accountability {
            Accountability::Isolated => false,
            // Missing data is the session's; an exhausted budget on an
            // outsized session is the session's size.
            Accountability::Counted => {
                let session_at_fault = matches!(error, EvaluationError::MissingData(_))
                    || (error.is_budget() && segments > ORDINARY_SEGMENTS);
                !session_at_fault
            }
        };
        if !counts {
            return false;
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
