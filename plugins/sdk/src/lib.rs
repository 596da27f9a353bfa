//! Write `callqa` QA rules in Rust.
//!
//! A rule is a WebAssembly component implementing the `callqa:rule` WIT
//! contract (`wit/rule.wit`). This crate hides the `wit-bindgen` plumbing:
//! implement [`Rule`], call [`export_rule!`], build for `wasm32-wasip2`.
//!
//! ```no_run
//! use callqa_sdk::prelude::*;
//!
//! struct Greeting;
//!
//! impl Rule for Greeting {
//!     fn describe() -> Descriptor {
//!         Descriptor::new("greeting", "0.1.0", "The agent greets within the first seconds")
//!             .param(ParamSpec::integer("within-seconds", Some(10), "How soon the greeting must come"))
//!             .param(ParamSpec::text_list("phrases", &["hello", "您好"], "What counts as a greeting"))
//!     }
//!
//!     fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
//!         if !session.has_transcript() {
//!             return Ok(Verdict::not_applicable("the session has no transcript"));
//!         }
//!         let within_ms = params.integer("within-seconds")? as u32 * 1000;
//!         let phrases = params.text_list("phrases")?;
//!         match session.first_keyword_hit(Role::Agent, &phrases, Some(within_ms)) {
//!             Some(hit) => Ok(Verdict::pass().finding(Finding::at(&hit.segment, "greeted"))),
//!             None => Ok(Verdict::fail("no greeting in time")),
//!         }
//!     }
//! }
//!
//! export_rule!(Greeting);
//! ```
//!
//! The same words mean the same things here and in the host (`callqa`):
//! session, segment, event, verdict, finding; file for file.

extern crate self as callqa_sdk;

#[doc(hidden)]
pub use wit_bindgen;

/// The generated bindings of `callqa:rule@0.1.0`. Prefer the re-exports.
pub mod bindings {
    wit_bindgen::generate!({
        world: "qa-rule",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_qa_rule",
        default_bindings_module: "callqa_sdk::bindings",
        runtime_path: "callqa_sdk::wit_bindgen::rt",
    });
}

pub mod helpers;
pub mod log;
pub mod params;
pub mod session;
pub mod verdict;

pub use bindings::callqa::rule::types::{
    Agent, Channel, Characteristics, Contact, Event, InitiationMethod, Instant, Interruption,
    Role, RoleFigures, Segment, SegmentHit, Sentiment, Session, Span, Value,
};
pub use bindings::exports::callqa::rule::rule::{
    Descriptor, Finding, Outcome, ParamKind, ParamSpec, RuleError, Verdict,
};
pub use params::Params;
pub use session::KeywordHit;

/// A QA rule: one item on a QA sheet.
///
/// By default both functions are called on a fresh instance for every
/// evaluation, so a rule keeps no state between sessions. A rule exported
/// with `export_rule!(MyRule, stateless)` promises not to rely on that and
/// may be evaluated many times in one instance.
pub trait Rule {
    /// Id, version, description and parameter schema. The host checks the
    /// ruleset's parameters against this schema when it loads the rule.
    fn describe() -> Descriptor;

    /// Judge one session. `params` holds every declared parameter with
    /// defaults applied. Return `Err` only when no verdict can be reached;
    /// "the rule does not apply" is [`Verdict::not_applicable`].
    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError>;
}

/// Everything a rule needs in one `use`.
pub mod prelude {
    pub use crate::helpers::{find_all, minutes_between, nearest, Direction, TextMatch};
    pub use crate::{
        export_rule, Agent, Channel, Descriptor, Event, Finding, Instant, KeywordHit, Outcome,
        ParamKind, ParamSpec, Params, Role, Rule, RuleError, Segment, Sentiment, Session, Value,
        Verdict,
    };
}

/// Export a [`Rule`] implementation as the component's `callqa:rule/rule`.
///
/// `export_rule!(MyRule, stateless)` also declares that the rule keeps no
/// state between evaluations (no `static` it writes, no cache it relies on
/// being empty): the host may then reuse one warm instance for many
/// evaluations when the ruleset asks for it (`instance = "warm"`), which
/// saves the instantiation. A rule without the declaration always gets a
/// fresh instance.
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        #[doc(hidden)]
        pub struct __CallqaExportedRule;

        impl $crate::bindings::exports::callqa::rule::rule::Guest for __CallqaExportedRule {
            fn describe() -> $crate::Descriptor {
                <$rule as $crate::Rule>::describe()
            }

            fn evaluate(
                session: &$crate::Session,
                params: ::std::vec::Vec<(::std::string::String, $crate::Value)>,
            ) -> ::core::result::Result<$crate::Verdict, $crate::RuleError> {
                <$rule as $crate::Rule>::evaluate(session, &$crate::Params::new(params))
            }
        }

        $crate::bindings::__export_qa_rule!(__CallqaExportedRule with_types_in $crate::bindings);
    };
    ($rule:ty, stateless) => {
        $crate::export_rule!($rule);

        // The declaration is a custom section the host reads at load
        // (`callqa:stateless`, version byte 1): a custom section changes
        // nothing in the component's WIT interface, so hosts that do not
        // know it load the rule as before.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[used]
        #[unsafe(link_section = "callqa:stateless")]
        static __CALLQA_STATELESS: [u8; 1] = [$crate::STATELESS_SECTION_VERSION];
    };
}

/// The content of the `callqa:stateless` custom section.
#[doc(hidden)]
pub const STATELESS_SECTION_VERSION: u8 = 1;
