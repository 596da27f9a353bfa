//! `chat-response`: in a chat, the agent greets within `max-greeting-seconds`
//! and never keeps the customer waiting longer than `max-response-seconds`.
//!
//! Times come from Contact Lens (`ResponseTime.AgentGreetingTimeMillis`, the
//! agent's `Maximum` response time) when reported, otherwise from the
//! transcript. Chat only. Not applicable when neither is available. Fails
//! (score 0) when either is over its limit, with a finding at the late
//! agent message; passes (score 1) otherwise.
//! See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct ChatResponse;

impl Rule for ChatResponse {
    fn describe() -> Descriptor {
        Descriptor::new("chat-response", "0.1.0", "The chat agent greets and responds in time")
            .param(ParamSpec::integer(
                "max-greeting-seconds",
                Some(30),
                "The agent's first message must come within this many seconds",
            ))
            .param(ParamSpec::integer(
                "max-response-seconds",
                Some(120),
                "The longest the agent may keep the customer waiting for a reply, in seconds",
            ))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let greeting_limit = seconds_param(params, "max-greeting-seconds")?;
        let response_limit = seconds_param(params, "max-response-seconds")?;
        if session.contact().channel != Channel::Chat {
            return Ok(Verdict::not_applicable("response times apply to chat contacts only"));
        }
        let characteristics = session.characteristics();
        let segments = if session.has_transcript() { session.segments() } else { Vec::new() };
        let first_agent = segments.iter().find(|s| s.role == Role::Agent);
        let waits = agent_waits(&segments);
        let longest_wait = waits.iter().max_by_key(|(_, wait)| *wait);

        let reported_greeting = characteristics.as_ref().and_then(|c| c.agent_greeting_ms);
        let greeting = reported_greeting.map(|ms| (ms, "reported by Contact Lens")).or_else(|| {
            let agent = first_agent?;
            let customer = segments
                .iter()
                .find(|s| s.role == Role::Customer)
                .map_or(agent.begin_ms, |c| c.begin_ms.min(agent.begin_ms));
            Some((agent.begin_ms - customer, "from the transcript"))
        });
        let reported_max = characteristics
            .as_ref()
            .and_then(|c| c.roles.iter().find(|r| r.role == Role::Agent).and_then(|r| r.maximum_response_ms));
        let longest = reported_max
            .map(|ms| (ms, "reported by Contact Lens"))
            .or_else(|| longest_wait.map(|(_, wait)| (*wait, "from the transcript")));
        if greeting.is_none() && longest.is_none() {
            return Ok(Verdict::not_applicable("no response times reported and no agent message in the transcript"));
        }

        let mut problems = Vec::new();
        let mut findings = Vec::new();
        let mut facts = Vec::new();
        if let Some((ms, source)) = greeting {
            facts.push(format!("greeting after {} ({source})", seconds(ms)));
            if ms > greeting_limit {
                problems.push(format!("the agent greeted after {}, limit {}", seconds(ms), seconds(greeting_limit)));
                let message = format!("first agent message, {} after the start", seconds(ms));
                findings.push(
                    first_agent.map_or_else(|| Finding::general(message.clone()), |s| Finding::at(s, message.clone())),
                );
            }
        }
        if let Some((ms, source)) = longest {
            facts.push(format!("longest agent response {} ({source})", seconds(ms)));
            if ms > response_limit {
                problems.push(format!(
                    "the agent kept the customer waiting {}, limit {}",
                    seconds(ms),
                    seconds(response_limit)
                ));
                let message = format!("agent reply after the longest wait ({})", seconds(ms));
                findings.push(match longest_wait {
                    Some((segment, _)) => Finding::at(segment, message),
                    None => Finding::general(message),
                });
            }
        }
        if problems.is_empty() {
            return Ok(Verdict::pass().score(1.0).reason(facts.join("; ")));
        }
        Ok(Verdict::fail(problems.join("; ")).score(0.0).findings(findings))
    }
}

/// Each agent message that answers the customer, with how long the
/// customer had waited: from the first customer message since the agent's
/// previous message.
fn agent_waits(segments: &[Segment]) -> Vec<(&Segment, u32)> {
    let mut out = Vec::new();
    let mut waiting_since: Option<u32> = None;
    for s in segments {
        match s.role {
            Role::Customer => {
                waiting_since.get_or_insert(s.begin_ms);
            }
            Role::Agent => {
                if let Some(since) = waiting_since.take() {
                    out.push((s, s.begin_ms.saturating_sub(since)));
                }
            }
            Role::System => {}
        }
    }
    out
}

fn seconds_param(params: &Params, name: &str) -> Result<u32, RuleError> {
    let v = params.integer(name)?;
    if !(0..=(u32::MAX / 1000) as i64).contains(&v) {
        return Err(RuleError::BadParams(format!("parameter `{name}` must be a number of seconds ≥ 0, got {v}")));
    }
    Ok(v as u32 * 1000)
}

fn seconds(ms: u32) -> String {
    let t = (ms as u64 + 50) / 100;
    format!("{}.{} s", t / 10, t % 10)
}

export_rule!(ChatResponse, stateless, no_std);
