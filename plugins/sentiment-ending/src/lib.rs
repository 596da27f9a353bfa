//! `sentiment-ending`: the customer does not leave unhappy: their Contact
//! Lens sentiment in the last quarter of the conversation
//! (`SentimentByPeriod.QUARTER.CUSTOMER`, last entry) is at least
//! `min-score`.
//!
//! Not applicable without conversation characteristics or without customer
//! sentiment by quarter. Fails (score 0) below `min-score`, with the
//! customer's negative segments of the last quarter as findings; passes
//! (score 1) otherwise.
//! See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct SentimentEnding;

impl Rule for SentimentEnding {
    fn describe() -> Descriptor {
        Descriptor::new("sentiment-ending", "0.1.0", "The customer's sentiment does not end negative").param(
            ParamSpec::number(
                "min-score",
                Some(0.0),
                "Lowest acceptable customer sentiment in the last quarter (-5..5); below fails",
            ),
        )
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let min = params.number("min-score")?;
        if !(-5.0..=5.0).contains(&min) {
            return Err(RuleError::BadParams(format!(
                "parameter `min-score` must be within -5..5 (Contact Lens scores), got {min}"
            )));
        }
        let Some(characteristics) = session.characteristics() else {
            return Ok(Verdict::not_applicable("no conversation characteristics: the contact was not analysed"));
        };
        let Some(customer) = characteristics.roles.into_iter().find(|r| r.role == Role::Customer) else {
            return Ok(Verdict::not_applicable("Contact Lens reported no figures for the customer"));
        };
        let quarters = customer.sentiment_by_quarter;
        let (Some(&first), Some(&last)) = (quarters.first(), quarters.last()) else {
            return Ok(Verdict::not_applicable("Contact Lens reported no customer sentiment by quarter"));
        };
        let summary = format!(
            "customer sentiment {} in the last quarter (first quarter {}, {} quarters); lowest acceptable {}",
            score(last),
            score(first),
            quarters.len(),
            score(min as f32)
        );
        if (last as f64) >= min {
            return Ok(Verdict::pass().score(1.0).reason(summary));
        }
        // Evidence: the customer's negative turns in the last quarter.
        let segments = session.segments();
        let length =
            characteristics.total_conversation_ms.or_else(|| segments.iter().map(|s| s.end_ms).max()).unwrap_or(0);
        let from = length - length / 4;
        let findings: Vec<Finding> = segments
            .iter()
            .filter(|s| s.role == Role::Customer && s.begin_ms >= from && s.sentiment == Some(Sentiment::Negative))
            .map(|s| Finding::at(s, "negative customer turn in the last quarter"))
            .collect();
        let verdict = Verdict::fail(summary).score(0.0);
        Ok(if findings.is_empty() {
            verdict.finding(Finding::general(format!("customer sentiment {} in the last quarter", score(last))))
        } else {
            verdict.findings(findings)
        })
    }
}

/// A score with at most two decimals, without float formatting noise.
fn score(s: f32) -> String {
    let h = callqa_sdk::helpers::round(s as f64 * 100.0) as i64;
    let sign = if h < 0 { "-" } else { "" };
    let h = h.abs();
    match h % 100 {
        0 => format!("{sign}{}", h / 100),
        r if r % 10 == 0 => format!("{sign}{}.{}", h / 100, r / 10),
        r => format!("{sign}{}.{r:02}", h / 100),
    }
}

export_rule!(SentimentEnding, stateless, no_std);
