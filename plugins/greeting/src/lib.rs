//! `greeting`: the agent greets the customer within the first N seconds.
//!
//! Passes when an agent segment that begins within `within-seconds` of the
//! start contains one of `phrases` (case-insensitive). Not applicable when
//! the session has no transcript or the agent never speaks (an abandoned
//! call is judged elsewhere).

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct Greeting;

const DEFAULT_PHRASES: &[&str] = &[
    "您好",
    "你好",
    "欢迎致电",
    "很高兴为您服务",
    "hello",
    "hi",
    "good morning",
    "good afternoon",
    "good evening",
    "thank you for calling",
    "welcome",
];

impl Rule for Greeting {
    fn describe() -> Descriptor {
        Descriptor::new("greeting", "0.1.0", "The agent greets the customer within the first N seconds")
            .param(ParamSpec::integer(
                "within-seconds",
                Some(10),
                "The greeting must begin within this many seconds of the start",
            ))
            .param(ParamSpec::text_list(
                "phrases",
                DEFAULT_PHRASES,
                "Phrases that count as a greeting (case-insensitive substrings)",
            ))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let within = params.integer("within-seconds")?;
        if within <= 0 {
            return Err(RuleError::BadParams("`within-seconds` must be positive".into()));
        }
        let phrases = params.text_list("phrases")?;
        if !session.has_transcript() {
            return Ok(Verdict::not_applicable("the session has no transcript"));
        }
        let agent = session.segments_by_role(Role::Agent);
        let Some(first) = agent.first() else {
            return Ok(Verdict::not_applicable("the agent never spoke"));
        };
        let within_ms = (within as u32).saturating_mul(1000);
        match session.first_keyword_hit(Role::Agent, &phrases, Some(within_ms)) {
            Some(hit) => Ok(Verdict::pass()
                .score(1.0)
                .finding(Finding::at(&hit.segment, format!("greeted with \"{}\"", hit.keyword)))),
            None => Ok(Verdict::fail(format!("no greeting within the first {within} s"))
                .score(0.0)
                .finding(Finding::at(first, "the agent's first words have no greeting"))),
        }
    }
}

export_rule!(Greeting, stateless, no_std);
