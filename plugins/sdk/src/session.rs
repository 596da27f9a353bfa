//! Helpers over the host's session that QA rules keep needing.

use crate::alloc_types::*;
use crate::{Role, Segment, Session, SimilarityQuery, SimilarityScore, Span};

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
    /// (case-insensitive, `contains_any`'s word boundaries). The host
    /// searches (`session.find-segments`): only the segments that match are
    /// copied into the rule.
    pub fn keyword_hits(&self, role: Role, keywords: &[String]) -> Vec<KeywordHit> {
        self.keyword_hits_up_to(Some(role), keywords, None)
    }

    /// Like [`Session::keyword_hits`], for one role or every role (`None`),
    /// and at most `limit` hits.
    pub fn keyword_hits_up_to(&self, role: Option<Role>, keywords: &[String], limit: Option<u32>) -> Vec<KeywordHit> {
        self.find_segments(role, keywords, limit)
            .into_iter()
            .map(|hit| KeywordHit { keyword: keywords[hit.keyword as usize].clone(), segment: hit.segment })
            .collect()
    }

    /// The first segment of `role` (optionally one that begins within the
    /// first `within_ms`) that mentions any of `keywords`.
    pub fn first_keyword_hit(&self, role: Role, keywords: &[String], within_ms: Option<u32>) -> Option<KeywordHit> {
        // Segments come in begin order: when the first hit begins too late,
        // every later one does too.
        let hit = self.keyword_hits_up_to(Some(role), keywords, Some(1)).into_iter().next()?;
        match within_ms {
            Some(ms) if hit.segment.begin_ms >= ms => None,
            _ => Some(hit),
        }
    }
}

impl SimilarityQuery {
    /// Every segment of `role` (or of every role), judged alone, against
    /// `examples`, at the provider's default threshold.
    pub fn new(role: Option<Role>, examples: Vec<String>) -> Self {
        SimilarityQuery { role, range: None, window: 1, examples, negative_examples: Vec::new(), threshold: None }
    }
}

impl Session {
    /// How similar each segment of the query's role and range is to its
    /// examples, computed by the host (n-grams or an embeddings endpoint,
    /// as the ruleset says); `matched` says whether it counts. An error
    /// names what failed on the host's side (an endpoint down).
    pub fn similar(&self, query: &SimilarityQuery) -> Result<Vec<SimilarityScore>, String> {
        self.similar_segments(query)
    }

    /// The segments that match the query, in conversation order.
    pub fn similar_hits(&self, query: &SimilarityQuery) -> Result<Vec<SimilarityScore>, String> {
        Ok(self.similar(query)?.into_iter().filter(|s| s.matched).collect())
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
