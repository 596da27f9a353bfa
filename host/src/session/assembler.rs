//! Sessions from Amazon Connect data: the latest version of each contact
//! record, transfer chains grouped into one customer conversation, joined
//! with the Contact Lens analysis of each leg and the business events.
//!
//! [`assemble`] is a pure function of one chain's records, their analyses
//! and events, so the batch command and a per-contact service call the same
//! code. What could not be used goes to the session's `notes`, which the QA
//! sheet carries to the reviewer.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::adapters::{Analysis, ContactRecord};
use super::{Channel, Characteristics, Contact, Event, Interruption, Role, RoleFigures, Segment, Session, Span};

/// What is known about one leg's Contact Lens analysis.
#[derive(Clone, Debug, Default)]
pub struct LegAnalysis {
    /// The analysis used, if any file could be read.
    pub analysis: Option<Analysis>,
    /// Files that could not be used, each with why (file and error).
    pub problems: Vec<String>,
}

/// One record per contact id: the one with the latest `LastUpdateTimestamp`
/// (a record without one loses to any with one; among equals, the first
/// read wins, as the others are duplicates). Returns the kept records in
/// input order and how many older versions were dropped.
pub fn latest_versions<S>(records: Vec<(S, ContactRecord)>) -> (Vec<(S, ContactRecord)>, usize) {
    let mut best: HashMap<String, usize> = HashMap::new();
    for (i, (_, record)) in records.iter().enumerate() {
        match best.get(&record.contact_id) {
            Some(&j) if records[j].1.last_update >= record.last_update => {}
            _ => {
                best.insert(record.contact_id.clone(), i);
            }
        }
    }
    let keep: HashSet<usize> = best.into_values().collect();
    let dropped = records.len() - keep.len();
    let kept = records.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, r)| r).collect();
    (kept, dropped)
}

/// Groups contact records into transfer chains through `InitialContactId`,
/// `PreviousContactId` and `NextContactId` (a chain holds together even when
/// a leg between two others is missing, as long as they share the initial
/// contact). Legs come in conversation order; chains by their first leg.
pub fn group_chains<S>(records: Vec<(S, ContactRecord)>) -> Vec<Vec<(S, ContactRecord)>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut id_of = |id: &str, parent: &mut Vec<usize>| -> usize {
        *index.entry(id.to_owned()).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut node_of_record = Vec::with_capacity(records.len());
    for (_, r) in &records {
        let me = id_of(&r.contact_id, &mut parent);
        node_of_record.push(me);
        for other in [&r.initial_contact_id, &r.previous_contact_id, &r.next_contact_id].into_iter().flatten() {
            let o = id_of(other, &mut parent);
            let (a, b) = (find(&mut parent, me), find(&mut parent, o));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut chains: BTreeMap<usize, Vec<(S, ContactRecord)>> = BTreeMap::new();
    for (record, node) in records.into_iter().zip(node_of_record) {
        chains.entry(find(&mut parent, node)).or_default().push(record);
    }
    let mut chains: Vec<_> = chains.into_values().collect();
    for chain in &mut chains {
        chain.sort_by(|(_, a), (_, b)| leg_order(a, b));
    }
    chains.sort_by(|a, b| leg_order(&a[0].1, &b[0].1));
    chains
}

/// Conversation order: by initiation (unknown last), the leg that names
/// no previous contact first among equals, then by id for a stable order.
fn leg_order(a: &ContactRecord, b: &ContactRecord) -> std::cmp::Ordering {
    let key = |r: &ContactRecord| (r.initiated_at.is_none(), r.initiated_at, r.previous_contact_id.is_some());
    key(a).cmp(&key(b)).then_with(|| a.contact_id.cmp(&b.contact_id))
}

/// One session from the legs of one customer conversation (in any order),
/// the analyses found for them (by contact id; a leg without an entry has no
/// analysis file) and the business events joined to them.
pub fn assemble(
    legs: &[ContactRecord],
    analyses: &BTreeMap<String, LegAnalysis>,
    events: Vec<Event>,
) -> anyhow::Result<Session> {
    anyhow::ensure!(!legs.is_empty(), "a session needs at least one contact record");
    let mut legs: Vec<&ContactRecord> = legs.iter().collect();
    legs.sort_by(|a, b| leg_order(a, b));
    let first = legs[0];
    let last = legs[legs.len() - 1];
    let mut notes = Vec::new();

    let ids: HashSet<&str> = legs.iter().map(|l| l.contact_id.as_str()).collect();
    let session_id = legs.iter().find_map(|l| l.initial_contact_id.clone()).unwrap_or_else(|| first.contact_id.clone());
    for leg in &legs {
        for (field, other) in [
            ("InitialContactId", &leg.initial_contact_id),
            ("PreviousContactId", &leg.previous_contact_id),
            ("NextContactId", &leg.next_contact_id),
        ] {
            if let Some(other) = other.as_deref().filter(|o| !ids.contains(o)) {
                notes.push(format!("contact {} names {other} as its {field}, but no contact record of {other} was read: that leg is missing from the session", leg.contact_id));
            }
        }
        if leg.channel != first.channel {
            notes.push(format!(
                "contact {} is {} but the session began as {}",
                leg.contact_id,
                leg.channel.as_str(),
                first.channel.as_str()
            ));
        }
    }

    // Contact attributes of later legs override earlier ones, as in the flow.
    let mut contact_attributes = Map::new();
    for leg in &legs {
        for (k, v) in &leg.attributes {
            contact_attributes.insert(k.clone(), v.clone());
        }
    }

    let mut agents = Vec::new();
    for leg in &legs {
        if let Some(agent) = &leg.agent {
            if !agents.iter().any(|a: &super::Agent| a.id == agent.id) {
                agents.push(agent.clone());
            }
        }
    }

    let transcript = join_transcripts(&legs, analyses, &mut notes);
    let language = transcript
        .language
        .clone()
        .or_else(|| contact_attributes.get("language").and_then(Value::as_str).map(str::to_owned));

    let contact = Contact {
        contact_id: first.contact_id.clone(),
        channel: first.channel,
        initiation_method: first.initiation_method,
        queue: legs.iter().find_map(|l| l.queue.clone()),
        agent: legs.iter().rev().find_map(|l| l.agent.clone()),
        scenario: contact_attributes.get("scenario").and_then(Value::as_str).map(str::to_owned),
        language,
        initiated_at: first.initiated_at,
        connected_to_agent_at: legs.iter().find_map(|l| l.connected_to_agent_at),
        ended_at: last.disconnected_at,
    };

    let mut attributes = Map::new();
    attributes.insert(
        "connect".into(),
        connect_attributes(&legs, contact_attributes, first.initiated_at, last.disconnected_at),
    );
    if let Some(lens) = transcript.attributes {
        attributes.insert("contact_lens".into(), lens);
    }

    let mut session = Session {
        id: session_id,
        contact,
        agents,
        segments: transcript.segments,
        events,
        attributes,
        characteristics: transcript.characteristics,
        notes: Vec::new(),
    };
    notes.extend(transcript.notes);
    session.notes = notes;
    session.normalise()?;
    Ok(session)
}

fn connect_attributes(
    legs: &[&ContactRecord],
    contact_attributes: Map<String, Value>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Value {
    let mut durations = Map::new();
    for leg in legs {
        for (key, value) in &leg.durations {
            let n = value.as_f64().unwrap_or(0.0);
            let merged = match (key.as_str(), durations.get(key).and_then(Value::as_f64)) {
                ("contact_s", _) => continue,
                ("longest_hold_s", Some(m)) => n.max(m),
                (_, Some(m)) => n + m,
                (_, None) => n,
            };
            durations.insert(key.clone(), whole_if_integral(merged));
        }
    }
    if let (Some(start), Some(end)) = (start, end) {
        if end >= start {
            durations.insert("contact_s".into(), whole_if_integral((end - start).num_milliseconds() as f64 / 1000.0));
        }
    }
    json!({
        "attributes": contact_attributes,
        "durations": durations,
        "legs": legs.iter().map(|l| l.leg_json()).collect::<Vec<_>>(),
    })
}

fn whole_if_integral(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// The transcripts and characteristics of every analysed leg on one clock.
struct JoinedTranscript {
    segments: Option<Vec<Segment>>,
    characteristics: Option<Characteristics>,
    language: Option<String>,
    attributes: Option<Value>,
    notes: Vec<String>,
}

fn join_transcripts(
    legs: &[&ContactRecord],
    analyses: &BTreeMap<String, LegAnalysis>,
    outer_notes: &mut Vec<String>,
) -> JoinedTranscript {
    let mut notes = Vec::new();
    let mut analysed: Vec<(&ContactRecord, &Analysis)> = Vec::new();
    for leg in legs {
        let found = analyses.get(&leg.contact_id);
        for problem in found.map(|f| f.problems.as_slice()).unwrap_or_default() {
            outer_notes.push(format!("contact {}: {problem}", leg.contact_id));
        }
        match found.and_then(|f| f.analysis.as_ref()) {
            Some(analysis) => {
                for note in &analysis.notes {
                    notes.push(format!("contact {}: {note}", leg.contact_id));
                }
                analysed.push((leg, analysis));
            }
            None if matches!(leg.channel, Channel::Voice | Channel::Chat) && leg.reached_agent() => {
                let why = if found.is_some_and(|f| !f.problems.is_empty()) { "no usable" } else { "no" };
                outer_notes.push(format!(
                    "contact {}: {why} Contact Lens analysis, so the session has no transcript or conversation characteristics from this leg",
                    leg.contact_id
                ));
            }
            None => {}
        }
    }
    if analysed.is_empty() {
        return JoinedTranscript { segments: None, characteristics: None, language: None, attributes: None, notes };
    }

    // Voice offsets count from each recording's start, which is when the agent
    // connected; chat offsets from each leg's first message. Later legs are
    // shifted by how much later they started than the first analysed one.
    let start_of = |leg: &ContactRecord| leg.connected_to_agent_at.or(leg.initiated_at);
    let voice_base = analysed.iter().find(|(_, a)| a.started_at.is_none()).and_then(|(l, _)| start_of(l));
    let chat_base = analysed.iter().filter_map(|(_, a)| a.started_at).min();
    let mut shifted = Vec::new();
    let mut reached = 0u32;
    for (i, (leg, analysis)) in analysed.iter().enumerate() {
        let since = |base: Option<DateTime<Utc>>, at: Option<DateTime<Utc>>| -> Option<u32> {
            Some(super::adapters::millis_between(base?, at?))
        };
        let shift = match analysis.started_at {
            Some(at) => since(chat_base, Some(at)),
            None => since(voice_base, start_of(leg)),
        };
        let shift = match (i, shift) {
            (0, _) => shift.unwrap_or(0),
            (_, Some(s)) => s,
            (_, None) => {
                notes.push(format!(
                    "contact {}: its start is unknown, so its transcript is placed right after the previous leg's",
                    leg.contact_id
                ));
                reached
            }
        };
        let end = analysis
            .segments
            .iter()
            .map(|s| s.end_ms)
            .chain(analysis.characteristics.total_conversation_ms)
            .max()
            .unwrap_or(0);
        reached = reached.max(shift.saturating_add(end));
        shifted.push((*leg, *analysis, shift));
    }

    let mut segments = Vec::new();
    // Segment id → the leg whose analysis used it first. The adapters make
    // ids unique within one analysis, so a repeat here is another leg's.
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut segment_fields = Map::new();
    let mut transcript_events = Vec::new();
    let mut contacts = Map::new();
    for (n, (leg, analysis, shift)) in shifted.iter().enumerate() {
        for s in &analysis.segments {
            let mut s = s.clone();
            let original = s.id.clone();
            match seen_ids.get(&s.id).copied() {
                None => {}
                Some(first) if first != n => {
                    s.id = unused_id(&seen_ids, format!("{}/{}", leg.contact_id, original));
                    notes.push(format!(
                        "contact {}: segment id {original} is already used by an earlier leg; renamed {}",
                        leg.contact_id, s.id
                    ));
                }
                // Only an analysis not read by the adapters gets here.
                Some(_) => {
                    s.id = unused_id(&seen_ids, original.clone());
                    notes.push(format!(
                        "contact {}: segment id {original} is used by two turns of its analysis; renamed {}",
                        leg.contact_id, s.id
                    ));
                }
            }
            seen_ids.insert(s.id.clone(), n);
            s.begin_ms = s.begin_ms.saturating_add(*shift);
            s.end_ms = s.end_ms.saturating_add(*shift);
            s.agent_id = leg.agent.as_ref().map(|a| a.id.clone());
            if let Some(extra) = analysis.segment_fields.get(&original) {
                segment_fields.insert(s.id.clone(), extra.clone());
            }
            segments.push(s);
        }
        transcript_events.extend(analysis.transcript_events.iter().cloned());
        contacts.insert(leg.contact_id.clone(), Value::Object(analysis.fields.clone()));
    }
    let mut lens = Map::new();
    lens.insert("contacts".into(), Value::Object(contacts));
    if !segment_fields.is_empty() {
        lens.insert("segments".into(), Value::Object(segment_fields));
    }
    if !transcript_events.is_empty() {
        lens.insert("transcript_events".into(), Value::Array(transcript_events));
    }

    let characteristics = merge_characteristics(&shifted);
    JoinedTranscript {
        segments: Some(segments),
        characteristics: Some(characteristics),
        language: analysed.iter().find_map(|(_, a)| a.language.clone()),
        attributes: Some(Value::Object(lens)),
        notes,
    }
}

/// `id`, or `id#<n>` with the smallest n from 2 that is not taken yet.
fn unused_id(taken: &HashMap<String, usize>, id: String) -> String {
    if !taken.contains_key(&id) {
        return id;
    }
    (2u64..).map(|n| format!("{id}#{n}")).find(|candidate| !taken.contains_key(candidate)).expect("an unused suffix")
}

/// One leg's characteristics as they are; several legs' on one clock:
/// spans shifted and joined, times summed, rates weighted by talk time,
/// maxima kept, the quarters of the last leg that reports them (the
/// conversation's ending), the first leg's greeting time.
fn merge_characteristics(legs: &[(&ContactRecord, &Analysis, u32)]) -> Characteristics {
    if let [(_, only, 0)] = legs {
        return only.characteristics.clone();
    }
    let mut out = Characteristics::default();
    let mut roles: Vec<(Role, Vec<(u32, RoleFigures)>)> = Vec::new();
    for (_, analysis, shift) in legs {
        let c = &analysis.characteristics;
        if let Some(total) = c.total_conversation_ms {
            out.total_conversation_ms = Some(out.total_conversation_ms.unwrap_or(0).max(shift.saturating_add(total)));
        }
        if let Some(talk) = c.talk_time_ms {
            out.talk_time_ms = Some(out.talk_time_ms.unwrap_or(0).saturating_add(talk));
        }
        out.non_talk.extend(
            c.non_talk
                .iter()
                .map(|s| Span { begin_ms: s.begin_ms.saturating_add(*shift), end_ms: s.end_ms.saturating_add(*shift) }),
        );
        out.interruptions.extend(c.interruptions.iter().map(|i| Interruption {
            by: i.by,
            begin_ms: i.begin_ms.saturating_add(*shift),
            end_ms: i.end_ms.saturating_add(*shift),
        }));
        out.agent_greeting_ms = out.agent_greeting_ms.or(c.agent_greeting_ms);
        for category in &c.categories {
            if !out.categories.contains(category) {
                out.categories.push(category.clone());
            }
        }
        for figures in &c.roles {
            match roles.iter_mut().find(|(r, _)| *r == figures.role) {
                Some((_, list)) => list.push((*shift, figures.clone())),
                None => roles.push((figures.role, vec![(*shift, figures.clone())])),
            }
        }
    }
    out.roles = roles
        .into_iter()
        .map(|(role, list)| {
            let weight = |f: &RoleFigures| f.talk_time_ms.map_or(1.0, |t| t.max(1) as f64);
            let mean = |get: &dyn Fn(&RoleFigures) -> Option<f64>| -> Option<f64> {
                let (sum, w) = list
                    .iter()
                    .filter_map(|(_, f)| get(f).map(|v| (v * weight(f), weight(f))))
                    .fold((0.0, 0.0), |(s, w), (a, b)| (s + a, w + b));
                (w > 0.0).then(|| sum / w)
            };
            RoleFigures {
                role,
                talk_time_ms: list.iter().filter_map(|(_, f)| f.talk_time_ms).reduce(|a, b| a.saturating_add(b)),
                words_per_minute: mean(&|f| f.words_per_minute.map(f64::from)).map(|v| v.round() as u32),
                overall_sentiment: mean(&|f| f.overall_sentiment.map(f64::from)).map(|v| v as f32),
                sentiment_by_quarter: list
                    .iter()
                    .rev()
                    .find(|(_, f)| !f.sentiment_by_quarter.is_empty())
                    .map(|(_, f)| f.sentiment_by_quarter.clone())
                    .unwrap_or_default(),
                average_response_ms: mean(&|f| f.average_response_ms.map(f64::from)).map(|v| v.round() as u32),
                maximum_response_ms: list.iter().filter_map(|(_, f)| f.maximum_response_ms).max(),
            }
        })
        .collect();
    out.non_talk.sort_by_key(|s| (s.begin_ms, s.end_ms));
    out.interruptions.sort_by_key(|i| (i.begin_ms, i.end_ms));
    out
}
