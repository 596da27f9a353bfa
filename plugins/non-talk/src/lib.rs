//! `non-talk`: the call's total non-talk time stays within limits, as
//! Contact Lens measured it (`NonTalkTime.Instances`).
//!
//! Voice only; not applicable without conversation characteristics. Fails
//! (score 0) when the total of the non-talk spans is over `max-seconds`, or
//! over `max-percent` of the conversation's duration (when known), with one
//! finding per span; passes (score 1) otherwise. `silence` judges each
//! silence on its own; this rule judges their sum.
//! See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct NonTalk;

impl Rule for NonTalk {
    fn describe() -> Descriptor {
        Descriptor::new("non-talk", "0.1.0", "Total non-talk time within a limit")
            .param(ParamSpec::integer(
                "max-seconds",
                Some(60),
                "The most non-talk time allowed in a call, in seconds; more fails",
            ))
            .param(ParamSpec::number(
                "max-percent",
                Some(20.0),
                "The most non-talk time allowed, as a percentage of the conversation; more fails",
            ))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let max_seconds = params.integer("max-seconds")?;
        let max_percent = params.number("max-percent")?;
        if !(0..=(u32::MAX / 1000) as i64).contains(&max_seconds) {
            return Err(RuleError::BadParams(format!(
                "parameter `max-seconds` must be a number of seconds ≥ 0, got {max_seconds}"
            )));
        }
        if !(0.0..=100.0).contains(&max_percent) {
            return Err(RuleError::BadParams(format!(
                "parameter `max-percent` must be within 0..100, got {max_percent}"
            )));
        }
        if session.contact().channel != Channel::Voice {
            return Ok(Verdict::not_applicable("non-talk time is measured on voice contacts only"));
        }
        let Some(characteristics) = session.characteristics() else {
            return Ok(Verdict::not_applicable("no conversation characteristics: the call was not analysed"));
        };
        let total: u64 = characteristics.non_talk.iter().map(|s| s.end_ms.saturating_sub(s.begin_ms) as u64).sum();
        // In hundredths of a percent, so the comparison needs no rounding.
        let share = characteristics
            .total_conversation_ms
            .filter(|&d| d > 0)
            .map(|d| (total * 10_000 + d as u64 / 2) / d as u64);
        let share_text = share.map_or_else(
            || "the conversation's length is unknown".to_string(),
            |s| format!("{}.{:02}% of the conversation", s / 100, s % 100),
        );
        let over_seconds = total > max_seconds as u64 * 1000;
        let over_share = share.is_some_and(|s| s as f64 > max_percent * 100.0);
        let summary =
            format!("{} of non-talk time ({share_text}); limits {max_seconds} s and {max_percent}%", seconds(total));
        if !over_seconds && !over_share {
            return Ok(Verdict::pass().score(1.0).reason(summary));
        }
        let findings = characteristics.non_talk.iter().map(|s| {
            Finding::span(
                s.begin_ms,
                s.end_ms,
                format!(
                    "non-talk time of {} from {}",
                    seconds(s.end_ms.saturating_sub(s.begin_ms) as u64),
                    clock(s.begin_ms)
                ),
            )
        });
        Ok(Verdict::fail(summary).score(0.0).findings(findings))
    }
}

fn seconds(ms: u64) -> String {
    let t = (ms + 50) / 100;
    format!("{}.{} s", t / 10, t % 10)
}

fn clock(ms: u32) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

export_rule!(NonTalk, stateless, no_std);
