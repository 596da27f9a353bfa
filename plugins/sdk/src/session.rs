//! Helpers over the host's session that QA rules keep needing.

use crate::helpers::contains_any;
use crate::{Role, Segment, Session, Span};

/// A keyword found in a segment.
#[derive(Clone, Debug)]
pub struct KeywordHit {
    pub segment: Segment,
    /// The keyword that matched, as given.
    pub keyword: String,
}

impl Session {
    /// Segments of `role` that begin within the first `within_ms` of the
    /// conversation.
    pub fn opening(&self, role: Role, within_ms: u32) -> Vec<Segment> {
        self.segments_between(0, within_ms).into_iter().filter(|s| s.role == role).collect()
    }

    /// Silences between consecutive segments (any role) longer than
    /// `min_ms`, as spans. Overlapping speech is not a gap.
    pub fn gaps(&self, min_ms: u32) -> Vec<Span> {
        gaps(&self.segments(), min_ms)
    }

    /// Every segment of `role` that mentions any of `keywords`
    /// (case-insensitive substring match, done by the host).
    pub fn keyword_hits(&self, role: Role, keywords: &[String]) -> Vec<KeywordHit> {
        self.segments_by_role(role)
            .into_iter()
            .filter_map(|segment| {
                contains_any(&segment.text, keywords)
                    .map(|i| KeywordHit { keyword: keywords[i].clone(), segment })
            })
            .collect()
    }

    /// The first segment of `role` (optionally within the first `within_ms`)
    /// that mentions any of `keywords`.
    pub fn first_keyword_hit(&self, role: Role, keywords: &[String], within_ms: Option<u32>) -> Option<KeywordHit> {
        let segments = match within_ms {
            Some(ms) => self.opening(role, ms),
            None => self.segments_by_role(role),
        };
        segments.into_iter().find_map(|segment| {
            contains_any(&segment.text, keywords).map(|i| KeywordHit { keyword: keywords[i].clone(), segment })
        })
    }
}

/// Gaps between segments sorted by begin offset; overlapping speech (a
/// segment starting before the previous one ends) leaves no gap.
pub fn gaps(segments: &[Segment], min_ms: u32) -> Vec<Span> {
    let mut out = Vec::new();
    let mut spoken_until: Option<u32> = None;
    for s in segments {
        if let Some(end) = spoken_until {
            if s.begin_ms > end && s.begin_ms - end > min_ms {
                out.push(Span { begin_ms: end, end_ms: s.begin_ms });
            }
        }
        spoken_until = Some(spoken_until.map_or(s.end_ms, |e| e.max(s.end_ms)));
    }
    out
}
