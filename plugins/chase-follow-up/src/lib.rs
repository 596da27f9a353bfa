//! `chase-follow-up` (催单跟进): when the customer chased an open ticket and
//! the agent promised to act, the agent acts within N minutes.
//!
//! The promise is the first agent segment containing one of
//! `promise-phrases`; it happened at the contact's `connected-to-agent-at`
//! (else `initiated-at`) plus the segment's `begin-ms`. The chase it answers
//! is the `chase-kind` event nearest at or before the promise. When the chase
//! before that one came less than `repeat-window-minutes` earlier, the rule
//! is not applicable (the follow-up of the earlier chase stands). Otherwise
//! the first event of one of `action-kinds` at or after the promise must come
//! within `within-minutes` of it. See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct ChaseFollowUp;

const DEFAULT_PROMISES: &[&str] = &[
    "我马上帮您催",
    "马上帮您催",
    "我帮您催",
    "帮您催一下",
    "我帮您跟进",
    "帮您跟进",
    "我会帮您加急",
    "帮您加急",
    "给您加急",
    "我这边帮您反馈",
    "帮您反馈给",
    "i will follow up",
    "i'll follow up",
    "i’ll follow up",
    "i will escalate",
    "i'll escalate",
    "i’ll escalate",
    "i will chase",
    "i'll chase",
    "i’ll chase",
];

const DEFAULT_ACTIONS: &[&str] = &["ticket-created", "ticket-reopened", "remark"];

impl Rule for ChaseFollowUp {
    fn describe() -> Descriptor {
        Descriptor::new(
            "chase-follow-up",
            "0.1.0",
            "After a chased ticket (催单) and a promise to act, the agent acts within N minutes",
        )
        .param(ParamSpec::text_list(
            "promise-phrases",
            DEFAULT_PROMISES,
            "Agent phrases that promise action (case-insensitive substrings)",
        ))
        .param(ParamSpec::text_list("action-kinds", DEFAULT_ACTIONS, "Event kinds that count as the agent acting"))
        .param(ParamSpec::integer(
            "within-minutes",
            Some(30),
            "The action must come within this many minutes of the promise",
        ))
        .param(ParamSpec::integer(
            "repeat-window-minutes",
            Some(60),
            "Not applicable when the previous chase came less than this many minutes before the answered one",
        ))
        .param(ParamSpec::text(
            "chase-kind",
            Some("ticket-chased"),
            "Event kind of a customer chasing a ticket",
        ))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let promises: Vec<String> =
            params.text_list("promise-phrases")?.into_iter().filter(|p| !p.trim().is_empty()).collect();
        let action_kinds = params.text_list("action-kinds")?;
        let within = params.integer("within-minutes")?;
        let repeat = params.integer("repeat-window-minutes")?;
        let chase_kind = params.text("chase-kind")?;
        if promises.is_empty() {
            return Err(RuleError::BadParams("parameter `promise-phrases` is empty".into()));
        }
        if action_kinds.is_empty() {
            return Err(RuleError::BadParams("parameter `action-kinds` is empty".into()));
        }
        if within < 0 {
            return Err(RuleError::BadParams(format!("parameter `within-minutes` must not be negative, got {within}")));
        }
        if repeat < 0 {
            return Err(RuleError::BadParams(format!(
                "parameter `repeat-window-minutes` must not be negative, got {repeat}"
            )));
        }

        let chases: Vec<Instant> = session.events(Some(&chase_kind)).iter().map(|e| e.at).collect();
        if chases.is_empty() {
            return Ok(Verdict::not_applicable(format!(
                "the customer did not chase a ticket (no `{chase_kind}` event)"
            )));
        }
        let contact = session.contact();
        let Some(start) = contact.connected_to_agent_at.or(contact.initiated_at) else {
            return Ok(Verdict::not_applicable(
                "the contact has no start instant (neither connected-to-agent-at nor initiated-at)",
            ));
        };
        if !session.has_transcript() {
            return Ok(Verdict::not_applicable("the session has no transcript to find a promise in"));
        }
        let Some(promise) = session.first_keyword_hit(Role::Agent, &promises, None) else {
            return Ok(Verdict::not_applicable("the agent made no promise to act on the chase"));
        };
        let seg = &promise.segment;
        let promised_at = start.saturating_add(seg.begin_ms as i64);

        let Some((_, chased_at)) = nearest(promised_at, &chases, Direction::Before) else {
            return Ok(Verdict::not_applicable("no chase at or before the promise"));
        };
        // The previous chase: strictly earlier (a chase delivered twice at the
        // same instant is one chase).
        let earlier: Vec<Instant> = chases.iter().copied().filter(|&t| t < chased_at).collect();
        if let Some((_, previous)) = nearest(chased_at, &earlier, Direction::Before) {
            let gap = minutes_between(previous, chased_at);
            if gap < repeat as f64 {
                return Ok(Verdict::not_applicable(format!(
                    "the previous chase came {} min before this one (< {repeat} min): the earlier follow-up stands",
                    tenths(gap)
                )));
            }
        }

        let actions: Vec<Event> = session.events(None).into_iter().filter(|e| action_kinds.contains(&e.kind)).collect();
        let instants: Vec<Instant> = actions.iter().map(|e| e.at).collect();
        let promised = format!("promised \"{}\"", promise.keyword);
        match nearest(promised_at, &instants, Direction::After) {
            None => Ok(Verdict::fail(format!("no {} after the promise", action_kinds.join(" / ")))
                .score(0.0)
                .finding(Finding::at(seg, format!("{promised}, but no action followed")))),
            Some((i, acted_at)) => {
                let after = minutes_between(promised_at, acted_at);
                let kind = &actions[i].kind;
                let delay = duration(acted_at.saturating_sub(promised_at));
                if after > within as f64 {
                    let late =
                        duration(acted_at.saturating_sub(promised_at).saturating_sub(within.saturating_mul(60_000)));
                    Ok(Verdict::fail(format!(
                        "{kind} came {delay} after the promise, {late} later than the {within} min allowed"
                    ))
                    .score(0.0)
                    .finding(Finding::at(seg, format!("{promised}; {kind} came {delay} later ({late} late)"))))
                } else {
                    Ok(Verdict::pass()
                        .score(1.0)
                        .reason(format!("{kind} came {delay} after the promise (within {within} min)"))
                        .finding(Finding::at(seg, format!("{promised}; {kind} came {delay} later"))))
                }
            }
        }
    }
}

/// Minutes with one decimal, without pulling in float formatting.
fn tenths(minutes: f64) -> String {
    let t = callqa_sdk::helpers::round(minutes * 10.0);
    let neg = t < 0.0;
    let t = if t.is_finite() { t.abs().min(1e15) as u64 } else { 0 };
    format!("{}{}.{}", if neg { "-" } else { "" }, t / 10, t % 10)
}

/// A non-negative span of milliseconds as "47 min 12 s", "30 min", "0 min 1 s".
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s % 60 {
        0 => format!("{} min", s / 60),
        r => format!("{} min {r} s", s / 60),
    }
}

export_rule!(ChaseFollowUp, stateless, no_std);
