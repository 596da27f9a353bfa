//! `callqa:rule/types`: the session resource. The rule holds a borrow; every
//! method copies out only what was asked for.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use wasmtime::component::{HasSelf, Linker, Resource};

use crate::rules::bindings::types as wit;
use crate::rules::host::helpers::KeywordMatcher;
use crate::rules::store::StoreState;
use crate::session::{self, Session};
use crate::similarity::{Similarity, SimilarityQuery};

/// The host side of a `session` resource.
pub struct SessionHandle(pub Arc<Session>);

pub fn add_to_linker(linker: &mut Linker<StoreState>) -> anyhow::Result<()> {
    Ok(wit::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |state| state)?)
}

impl StoreState {
    /// Put the evaluation's session in the table for the rule to borrow.
    pub fn session_resource(&mut self) -> anyhow::Result<Resource<SessionHandle>> {
        Ok(self.table.push(SessionHandle(self.session.clone()))?)
    }

    fn session_of(&self, handle: &Resource<SessionHandle>) -> wasmtime::Result<Arc<Session>> {
        Ok(self.table.get(handle)?.0.clone())
    }
}

impl wit::Host for StoreState {}

impl wit::HostSession for StoreState {
    fn id(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<String> {
        Ok(self.session_of(&s)?.id.clone())
    }

    fn contact(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<wit::Contact> {
        Ok(contact(&self.session_of(&s)?.contact))
    }

    fn agents(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<Vec<wit::Agent>> {
        Ok(self.session_of(&s)?.agents.iter().map(agent).collect())
    }

    fn has_transcript(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<bool> {
        Ok(self.session_of(&s)?.has_transcript())
    }

    fn segment_count(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<u32> {
        Ok(self.session_of(&s)?.segments().len() as u32)
    }

    fn segments(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<Vec<wit::Segment>> {
        Ok(self.session_of(&s)?.segments().iter().map(segment).collect())
    }

    fn segments_by_role(&mut self, s: Resource<SessionHandle>, role: wit::Role) -> wasmtime::Result<Vec<wit::Segment>> {
        let role = from_wit_role(role);
        Ok(self.session_of(&s)?.segments().iter().filter(|x| x.role == role).map(segment).collect())
    }

    fn segments_between(
        &mut self,
        s: Resource<SessionHandle>,
        begin_ms: u32,
        end_ms: u32,
    ) -> wasmtime::Result<Vec<wit::Segment>> {
        let session = self.session_of(&s)?;
        Ok(session.segments().iter().filter(|x| x.begin_ms >= begin_ms && x.begin_ms < end_ms).map(segment).collect())
    }

    fn find_segments(
        &mut self,
        s: Resource<SessionHandle>,
        role: Option<wit::Role>,
        keywords: Vec<String>,
        limit: Option<u32>,
    ) -> wasmtime::Result<Vec<wit::SegmentHit>> {
        let session = self.session_of(&s)?;
        Ok(find_segments(&session, role.map(from_wit_role), &keywords, limit))
    }

    fn similar_segments(
        &mut self,
        s: Resource<SessionHandle>,
        query: wit::SimilarityQuery,
    ) -> wasmtime::Result<Result<Vec<wit::SimilarityScore>, String>> {
        let session = self.session_of(&s)?;
        let query = SimilarityQuery {
            role: query.role.map(from_wit_role),
            range: query.range.map(|r| (r.begin_ms, r.end_ms)),
            window: query.window,
            examples: query.examples,
            negative_examples: query.negative_examples,
            threshold: query.threshold,
        };
        let scored = match &self.similarity {
            Some(similarity) => similarity.score(&session, &query),
            None => Similarity::for_query(&query).score(&session, &query),
        };
        let segments = session.segments();
        Ok(scored.map(|all| {
            all.into_iter()
                .map(|x| wit::SimilarityScore {
                    segment: segment(&segments[x.segment]),
                    score: x.score,
                    example: x.example,
                    negative_score: x.negative.map(|n| n.0),
                    negative_example: x.negative.map(|n| n.1),
                    matched: x.matched,
                })
                .collect()
        }))
    }

    fn agent_of(&mut self, s: Resource<SessionHandle>, segment_id: String) -> wasmtime::Result<Option<wit::Agent>> {
        Ok(self.session_of(&s)?.agent_of(&segment_id).map(agent))
    }

    fn events(&mut self, s: Resource<SessionHandle>, kind: Option<String>) -> wasmtime::Result<Vec<wit::Event>> {
        let session = self.session_of(&s)?;
        let wanted = |e: &&session::Event| kind.as_deref().is_none_or(|k| e.kind == k);
        Ok(session.events.iter().filter(wanted).map(event).collect())
    }

    fn attribute(&mut self, s: Resource<SessionHandle>, path: String) -> wasmtime::Result<Option<wit::Value>> {
        let session = self.session_of(&s)?;
        Ok(session::attribute_at(&session.attributes, &path).map(value))
    }

    fn characteristics(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<Option<wit::Characteristics>> {
        Ok(self.session_of(&s)?.characteristics.as_ref().map(characteristics))
    }

    fn drop(&mut self, s: Resource<SessionHandle>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

/// `session.find-segments`: the segments of `role` (any when `None`) that
/// contain one of `keywords` (`helpers.contains-any` semantics), in order,
/// at most `limit`.
pub fn find_segments(
    session: &Session,
    role: Option<session::Role>,
    keywords: &[String],
    limit: Option<u32>,
) -> Vec<wit::SegmentHit> {
    let matcher = KeywordMatcher::new(keywords);
    session
        .segments()
        .iter()
        .filter(|x| role.is_none_or(|r| x.role == r))
        .filter_map(|x| matcher.first_in(&x.text).map(|k| wit::SegmentHit { keyword: k as u32, segment: segment(x) }))
        .take(limit.map_or(usize::MAX, |l| l as usize))
        .collect()
}

pub fn instant(at: &DateTime<Utc>) -> wit::Instant {
    at.timestamp_millis()
}

fn contact(c: &session::Contact) -> wit::Contact {
    use session::InitiationMethod as M;
    use wit::InitiationMethod as W;
    wit::Contact {
        contact_id: c.contact_id.clone(),
        channel: match c.channel {
            session::Channel::Voice => wit::Channel::Voice,
            session::Channel::Chat => wit::Channel::Chat,
            session::Channel::Task => wit::Channel::Task,
            session::Channel::Email => wit::Channel::Email,
        },
        initiation_method: c.initiation_method.map(|m| match m {
            M::Inbound => W::Inbound,
            M::Outbound => W::Outbound,
            M::Transfer => W::Transfer,
            M::QueueTransfer => W::QueueTransfer,
            M::Callback => W::Callback,
            M::Api => W::Api,
            M::Disconnect => W::Disconnect,
            M::Monitor => W::Monitor,
            M::ExternalOutbound => W::ExternalOutbound,
            M::Other => W::Other,
        }),
        queue: c.queue.clone(),
        agent: c.agent.as_ref().map(agent),
        scenario: c.scenario.clone(),
        language: c.language.clone(),
        initiated_at: c.initiated_at.as_ref().map(instant),
        connected_to_agent_at: c.connected_to_agent_at.as_ref().map(instant),
        ended_at: c.ended_at.as_ref().map(instant),
    }
}

fn agent(a: &session::Agent) -> wit::Agent {
    wit::Agent { id: a.id.clone(), username: a.username.clone(), hierarchy: a.hierarchy.clone() }
}

pub fn to_wit_role(role: session::Role) -> wit::Role {
    match role {
        session::Role::Agent => wit::Role::Agent,
        session::Role::Customer => wit::Role::Customer,
        session::Role::System => wit::Role::System,
    }
}

fn from_wit_role(role: wit::Role) -> session::Role {
    match role {
        wit::Role::Agent => session::Role::Agent,
        wit::Role::Customer => session::Role::Customer,
        wit::Role::System => session::Role::System,
    }
}

fn segment(s: &session::Segment) -> wit::Segment {
    wit::Segment {
        id: s.id.clone(),
        role: to_wit_role(s.role),
        text: s.text.clone(),
        begin_ms: s.begin_ms,
        end_ms: s.end_ms,
        sentiment: s.sentiment.map(|x| match x {
            session::Sentiment::Positive => wit::Sentiment::Positive,
            session::Sentiment::Negative => wit::Sentiment::Negative,
            session::Sentiment::Neutral => wit::Sentiment::Neutral,
            session::Sentiment::Mixed => wit::Sentiment::Mixed,
        }),
        sentiment_score: s.sentiment_score,
        loudness: s.loudness,
        agent_id: s.agent_id.clone(),
    }
}

fn event(e: &session::Event) -> wit::Event {
    wit::Event {
        kind: e.kind.clone(),
        at: instant(&e.at),
        attributes: e.attributes.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
    }
}

/// JSON to the WIT `value`: integers stay integers, a list of strings is a
/// `text-list`, other arrays and objects travel as compact JSON text.
pub fn value(v: &serde_json::Value) -> wit::Value {
    use serde_json::Value as J;
    match v {
        J::Null => wit::Value::Null,
        J::Bool(b) => wit::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => wit::Value::Integer(i),
            None => wit::Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => wit::Value::Text(s.clone()),
        J::Array(items) if items.iter().all(|i| i.is_string()) && !items.is_empty() => {
            wit::Value::TextList(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        }
        other => wit::Value::Json(other.to_string()),
    }
}

fn characteristics(c: &session::Characteristics) -> wit::Characteristics {
    wit::Characteristics {
        total_conversation_ms: c.total_conversation_ms,
        talk_time_ms: c.talk_time_ms,
        non_talk: c.non_talk.iter().map(|s| wit::Span { begin_ms: s.begin_ms, end_ms: s.end_ms }).collect(),
        interruptions: c
            .interruptions
            .iter()
            .map(|i| wit::Interruption { by: to_wit_role(i.by), begin_ms: i.begin_ms, end_ms: i.end_ms })
            .collect(),
        roles: c
            .roles
            .iter()
            .map(|r| wit::RoleFigures {
                role: to_wit_role(r.role),
                talk_time_ms: r.talk_time_ms,
                words_per_minute: r.words_per_minute,
                overall_sentiment: r.overall_sentiment,
                sentiment_by_quarter: r.sentiment_by_quarter.clone(),
                average_response_ms: r.average_response_ms,
                maximum_response_ms: r.maximum_response_ms,
            })
            .collect(),
        agent_greeting_ms: c.agent_greeting_ms,
        categories: c.categories.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(segments: &[(&str, &str, &str, u32)]) -> Session {
        let segments: Vec<_> = segments
            .iter()
            .map(|(id, role, text, begin)| serde_json::json!({"id": id, "role": role, "text": text, "begin_ms": begin, "end_ms": begin + 1000}))
            .collect();
        let mut s: Session = serde_json::from_value(serde_json::json!({
            "id": "s", "contact": {"contact_id": "c", "channel": "voice"}, "segments": segments,
        }))
        .unwrap();
        s.normalise().unwrap();
        s
    }

    fn found(hits: &[wit::SegmentHit]) -> Vec<(&str, u32)> {
        hits.iter().map(|h| (h.segment.id.as_str(), h.keyword)).collect()
    }

    #[test]
    fn find_segments_matches_like_contains_any() {
        let s = session(&[
            ("c1", "customer", "Hi, I'll CHASE it", 0),
            ("a1", "agent", "this is Dana", 1000),
            ("a2", "agent", "Oh HI there", 2000),
            ("a3", "agent", "喂您好啊", 3000),
            ("a4", "agent", "I'll chaser nobody; i'll chase it", 4000),
        ]);
        let k = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        // Word boundaries for Latin keywords ("hi" is not in "this"), none
        // for CJK ones; case-insensitive; the first keyword found is named.
        let hits = find_segments(&s, Some(session::Role::Agent), &k(&["hi", "您好", "i'll chase"]), None);
        assert_eq!(found(&hits), vec![("a2", 0), ("a3", 1), ("a4", 2)]);
        // Every role, in conversation order.
        let hits = find_segments(&s, None, &k(&["i'll chase"]), None);
        assert_eq!(found(&hits), vec![("c1", 0), ("a4", 0)]);
        // The limit keeps the first hits; 0 finds nothing.
        assert_eq!(found(&find_segments(&s, None, &k(&["hi", "您好"]), Some(2))), vec![("c1", 0), ("a2", 0)]);
        assert!(find_segments(&s, None, &k(&["hi"]), Some(0)).is_empty());
        // Empty keywords match nothing; no keywords, no hits.
        assert!(find_segments(&s, None, &k(&["", "zzz"]), None).is_empty());
        assert!(find_segments(&s, None, &k(&[]), None).is_empty());
        // Whole segments cross, as `segments` would copy them.
        let hits = find_segments(&s, Some(session::Role::Agent), &k(&["您好"]), None);
        assert_eq!(hits[0].segment.text, "喂您好啊");
        assert_eq!((hits[0].segment.begin_ms, hits[0].segment.end_ms), (3000, 4000));
        // Agreement with `contains_any` segment by segment.
        let keys = k(&["hi", "您好", "i'll chase", "DANA"]);
        for role in [None, Some(session::Role::Agent), Some(session::Role::Customer)] {
            let expected: Vec<_> = s
                .segments()
                .iter()
                .filter(|x| role.is_none_or(|r| x.role == r))
                .filter_map(|x| {
                    crate::rules::host::helpers::contains_any(&x.text, &keys).map(|i| (x.id.as_str(), i as u32))
                })
                .collect();
            assert_eq!(found(&find_segments(&s, role, &keys, None)), expected);
        }
    }
}
