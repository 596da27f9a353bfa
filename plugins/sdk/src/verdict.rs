//! Building verdicts and findings.

use crate::alloc_types::*;
use crate::{Finding, Outcome, Segment, Verdict};

impl Verdict {
    fn with(outcome: Outcome, reason: Option<String>) -> Self {
        Verdict { outcome, score: None, reason, findings: Vec::new() }
    }

    pub fn pass() -> Self {
        Self::with(Outcome::Pass, None)
    }

    pub fn fail(reason: impl Into<String>) -> Self {
        Self::with(Outcome::Fail, Some(reason.into()))
    }

    /// The rule does not apply to this session (no transcript, no chase...).
    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self::with(Outcome::NotApplicable, Some(reason.into()))
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// A score in [0, 1]; values outside are clamped so a rounding error in a
    /// rule cannot turn a verdict into an error on the sheet.
    pub fn score(mut self, score: f32) -> Self {
        self.score = Some(score.clamp(0.0, 1.0));
        self
    }

    pub fn finding(mut self, finding: Finding) -> Self {
        self.findings.push(finding);
        self
    }

    pub fn findings(mut self, findings: impl IntoIterator<Item = Finding>) -> Self {
        self.findings.extend(findings);
        self
    }
}

impl Finding {
    /// A finding about the session as a whole.
    pub fn general(message: impl Into<String>) -> Self {
        Finding { message: message.into(), segment_id: None, begin_ms: None, end_ms: None }
    }

    /// A finding a reviewer can jump to: the segment and its offsets.
    pub fn at(segment: &Segment, message: impl Into<String>) -> Self {
        Finding {
            message: message.into(),
            segment_id: Some(segment.id.clone()),
            begin_ms: Some(segment.begin_ms),
            end_ms: Some(segment.end_ms),
        }
    }

    /// A finding over a span of the conversation with no single segment.
    pub fn span(begin_ms: u32, end_ms: u32, message: impl Into<String>) -> Self {
        Finding { message: message.into(), segment_id: None, begin_ms: Some(begin_ms), end_ms: Some(end_ms) }
    }
}
