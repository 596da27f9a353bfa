//! `silence`: no silence longer than N seconds.
//!
//! The silences are the conversation characteristics' `non-talk` spans when
//! the session has characteristics (authoritative, even when the list is
//! empty), otherwise the gaps between consecutive transcript segments. Every
//! silence strictly longer than `max-seconds` is a finding (a span). Fails
//! (score 0) when there is one, passes (score 1) otherwise. Not applicable
//! with neither characteristics nor a non-empty transcript.
//! See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;
use callqa_sdk::Span;

struct Silence;

impl Rule for Silence {
    fn describe() -> Descriptor {
        Descriptor::new("silence", "0.1.0", "No silence longer than N seconds").param(ParamSpec::integer(
            "max-seconds",
            Some(10),
            "The longest silence allowed, in seconds (a longer one fails)",
        ))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let max = params.integer("max-seconds")?;
        if max <= 0 || max > (u32::MAX / 1000) as i64 {
            return Err(RuleError::BadParams(format!(
                "parameter `max-seconds` must be between 1 and {} seconds, got {max}",
                u32::MAX / 1000
            )));
        }
        let max_ms = max as u32 * 1000;

        let (silences, source): (Vec<Span>, &str) = match session.characteristics() {
            Some(c) => (
                c.non_talk.into_iter().filter(|s| s.end_ms.saturating_sub(s.begin_ms) > max_ms).collect(),
                "non-talk time in the conversation characteristics",
            ),
            None => {
                if !session.has_transcript() || session.segment_count() == 0 {
                    return Ok(Verdict::not_applicable(
                        "the session has neither conversation characteristics nor transcript segments",
                    ));
                }
                (session.gaps(max_ms), "gaps between transcript segments")
            }
        };

        if silences.is_empty() {
            return Ok(Verdict::pass().score(1.0).reason(format!("no silence longer than {max} s ({source})")));
        }
        let mut findings: Vec<Finding> = silences
            .iter()
            .take(MAX_LISTED)
            .map(|s| {
                Finding::span(
                    s.begin_ms,
                    s.end_ms,
                    format!(
                        "silence of {} s from {} to {}",
                        seconds(s.end_ms - s.begin_ms),
                        clock(s.begin_ms),
                        clock(s.end_ms)
                    ),
                )
            })
            .collect();
        if silences.len() > MAX_LISTED {
            findings.push(Finding::general(format!("{} more silence(s) not listed", silences.len() - MAX_LISTED)));
        }
        Ok(Verdict::fail(format!("{} silence(s) longer than {max} s ({source})", silences.len()))
            .score(0.0)
            .findings(findings))
    }
}

/// Silences listed at most (the host caps a verdict's findings, 100 by
/// default); the rest are counted in one last finding.
const MAX_LISTED: usize = 50;

/// Milliseconds as seconds, exact (up to three decimals, trailing zeros
/// dropped), without float formatting: 14 s, 14.2 s, 10.001 s.
fn seconds(ms: u32) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return s.to_string();
    }
    let mut f = format!("{frac:03}");
    while f.ends_with('0') {
        f.pop();
    }
    format!("{s}.{f}")
}

/// An offset as m:ss.
fn clock(ms: u32) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

export_rule!(Silence, stateless, no_std);
