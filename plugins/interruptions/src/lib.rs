//! `interruptions`: the agent interrupts the customer at most `max-count`
//! times, as Contact Lens measured (`Interruptions.InterruptionsByInterrupter.AGENT`).
//!
//! Voice only. Not applicable without conversation characteristics (the call
//! was not analysed). Every interruption by the agent is a finding, at the
//! agent segment it begins in when there is one. More than `max-count`
//! fails (score 0); otherwise passes (score 1).
//! See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct Interruptions;

impl Rule for Interruptions {
    fn describe() -> Descriptor {
        Descriptor::new("interruptions", "0.1.0", "The agent interrupts the customer at most N times").param(
            ParamSpec::integer("max-count", Some(2), "The most interruptions by the agent allowed; one more fails"),
        )
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let max = params.integer("max-count")?;
        if max < 0 {
            return Err(RuleError::BadParams(format!("parameter `max-count` must not be negative, got {max}")));
        }
        if session.contact().channel != Channel::Voice {
            return Ok(Verdict::not_applicable("interruptions are measured on voice contacts only"));
        }
        let Some(characteristics) = session.characteristics() else {
            return Ok(Verdict::not_applicable("no conversation characteristics: the call was not analysed"));
        };
        let by_agent: Vec<_> = characteristics.interruptions.into_iter().filter(|i| i.by == Role::Agent).collect();
        let agent_segments = if by_agent.is_empty() { Vec::new() } else { session.segments_by_role(Role::Agent) };
        let findings = by_agent.iter().map(|i| {
            let message = format!(
                "the agent interrupted for {} at {}",
                seconds(i.end_ms.saturating_sub(i.begin_ms)),
                clock(i.begin_ms)
            );
            match agent_segments.iter().find(|s| s.begin_ms <= i.begin_ms && i.begin_ms < s.end_ms.max(s.begin_ms + 1))
            {
                Some(segment) => {
                    Finding { begin_ms: Some(i.begin_ms), end_ms: Some(i.end_ms), ..Finding::at(segment, message) }
                }
                None => Finding::span(i.begin_ms, i.end_ms, message),
            }
        });
        let count = by_agent.len() as i64;
        let verdict = if count > max {
            Verdict::fail(format!("the agent interrupted {count} times; at most {max} allowed")).score(0.0)
        } else {
            Verdict::pass().score(1.0).reason(format!("the agent interrupted {count} times; at most {max} allowed"))
        };
        Ok(verdict.findings(findings))
    }
}

/// Milliseconds as seconds with one decimal.
fn seconds(ms: u32) -> String {
    let t = (ms as u64 + 50) / 100;
    format!("{}.{} s", t / 10, t % 10)
}

/// An offset as m:ss.
fn clock(ms: u32) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

export_rule!(Interruptions, stateless, no_std);
