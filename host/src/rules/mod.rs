//! The rule host: each QA rule is a WebAssembly component implementing the
//! `qa-rule` world of `callqa:rule@0.1.0` (`wit/rule.wit`), compiled once, instantiated fresh
//! for every evaluation inside a deny-by-default sandbox.
//!
//! - [`engine`]: the wasmtime engine, its configuration and epoch ticker.
//! - [`module`]: a compiled rule: its bytes' SHA-256, imports check, `describe`.
//! - [`ruleset`]: the ruleset file (TOML): which rule applies where, with
//!   which parameters, checked against each rule's schema.
//! - [`form`]: sections, critical items and grades of the QA form.
//! - [`evaluation`]: one rule on one session in a fresh store, under limits.
//! - [`verdict`]: what an evaluation produces (the host's side of the SDK's
//!   `verdict.rs`).
//! - [`warm_instance`]: one instance reused across evaluations, for rules
//!   that declare themselves stateless and rulesets that ask for it.
//! - [`program`]: how a scripted item's operators and script reach the
//!   rule that runs them (`bundled:script`), and its load errors located.
//! - [`limits`]: fuel, wall clock, memory and output caps.
//! - [`health`]: error counts and quarantine of a rule that keeps failing.
//! - [`host`]: the capabilities a rule imports, one module each.

pub mod bindings;
pub mod engine;
pub mod evaluation;
pub mod form;
pub mod golden;
pub mod health;
pub mod host;
pub mod limits;
pub mod module;
pub mod params;
pub mod program;
pub mod ruleset;
pub mod scaffold;
pub mod store;
pub mod verdict;
pub mod warm_instance;

pub use engine::{MemoryReset, RuleEngine};
pub use evaluation::{Evaluation, EvaluationError};
pub use health::{HealthCounts, RuleHealth};
pub use limits::Limits;
pub use module::RuleModule;
pub use ruleset::{InstanceMode, RuleEntry, Ruleset};
pub use verdict::{Finding, Outcome, Verdict};

/// wasmtime's errors nest; the whole chain, outer context first, is what
/// an author can act on.
pub(crate) fn error_chain(e: &impl std::fmt::Display) -> String {
    format!("{e:#}")
}

/// The bundled rules, built from `plugins/` by `build.rs`: `bundled:<name>`.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

    pub fn get(name: &str) -> Option<&'static [u8]> {
        BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        BUNDLED.iter().map(|(n, _)| *n)
    }
}
