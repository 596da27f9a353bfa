//! Contact Lens chat output (`Version` `CHAT-2022-11-30`): the chat
//! transcript with sentiment per message group and response times.
//!
//! Messages carry `AbsoluteTime` instead of offsets: a segment's offset is
//! its time since the first message, and a message has no duration
//! (`end_ms == begin_ms`). Transcript items that are not messages (a
//! participant joined or left, the chat ended) are kept as they are.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::contact_lens_voice::{customer_metadata_contact_id, participant_roles, take_categories};
use super::fields::{as_u64, millis, parse_time, Fields};
use super::{read_sentiment_by_period, role_of, sentiment_of, Analysis, RoleTable, TurnIds};
use crate::session::{Channel, Characteristics, Segment, Sentiment};

/// A message group's sentiment label and progressive score.
type GroupSentiment = (Option<Sentiment>, Option<f32>);

pub(crate) fn read(mut root: Fields) -> anyhow::Result<Analysis> {
    let participants = participant_roles(root.peek("Participants"));
    let contact_id = customer_metadata_contact_id(&root);
    let language = root.peek_str("LanguageCode").map(str::to_owned);

    let mut characteristics = Characteristics::default();
    let mut roles = RoleTable::default();
    // Sentiment comes per group of messages; segments are built after. Each
    // mention of an item is kept, in order, for files that repeat an `Id`.
    let mut sentiment_of_item: HashMap<String, Vec<GroupSentiment>> = HashMap::new();
    if let Some(mut cc) = root.take_object("ConversationCharacteristics") {
        characteristics.total_conversation_ms = cc.take_if("TotalConversationDurationMillis", as_u64).map(millis);
        if let Some(mut sentiment) = cc.take_object("Sentiment") {
            let groups =
                sentiment.take_if("DetailsByTranscriptItemGroup", |v| v.as_array().cloned()).unwrap_or_default();
            for group in &groups {
                let label = group.get("Sentiment").and_then(Value::as_str).and_then(sentiment_of);
                let score = group.get("ProgressiveScore").and_then(Value::as_f64).map(|s| s as f32);
                for item in group.get("TranscriptItems").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(id) = item.get("Id").and_then(Value::as_str) {
                        sentiment_of_item.entry(id.to_owned()).or_default().push((label, score));
                    }
                }
            }
            if let Some(mut overall) = sentiment.take_object("OverallSentiment") {
                if let Some(mut by_role) = overall.take_object("DetailsByParticipantRole") {
                    for key in by_role.keys() {
                        if let Some(score) = by_role.take_f64(&key) {
                            roles.get(role_of(&key)).overall_sentiment = Some(score as f32);
                        }
                    }
                    overall.put_back("DetailsByParticipantRole", by_role);
                }
                sentiment.put_back("OverallSentiment", overall);
            }
            read_sentiment_by_period(&mut sentiment, &mut roles);
            cc.put_back("Sentiment", sentiment);
        }
        if let Some(mut response) = cc.take_object("ResponseTime") {
            characteristics.agent_greeting_ms = response.take_if("AgentGreetingTimeMillis", as_u64).map(millis);
            if let Some(mut by_role) = response.take_object("DetailsByParticipantRole") {
                for key in by_role.keys() {
                    let Some(mut figures) = by_role.take_object(&key) else { continue };
                    let figures_of = roles.get(role_of(&key));
                    figures_of.average_response_ms = value_millis(&mut figures, "Average", "AverageResponseTimeMillis");
                    // `Maximum.TranscriptItems` (which message waited longest)
                    // stays in the remainder as evidence.
                    figures_of.maximum_response_ms = value_millis(&mut figures, "Maximum", "MaximumResponseTimeMillis");
                    by_role.put_back(&key, figures);
                }
                response.put_back("DetailsByParticipantRole", by_role);
            }
            cc.put_back("ResponseTime", response);
        }
        root.put_back("ConversationCharacteristics", cc);
    }
    characteristics.roles = roles.into_vec();
    characteristics.categories = take_categories(&mut root);

    let Some(items) = root.take_if("Transcript", |v| v.as_array().cloned()) else {
        anyhow::bail!(if root.peek("Transcript").is_some() {
            "Transcript is not an array"
        } else {
            "no Transcript: not a Contact Lens analysis file"
        });
    };
    let mut messages = Vec::new();
    let mut transcript_events = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let is_message = match item.get("Type").and_then(Value::as_str) {
            Some(kind) => kind == "MESSAGE",
            None => item.get("ContentType").and_then(Value::as_str).is_some_and(|c| c.starts_with("text/")),
        };
        if !is_message {
            transcript_events.push(item);
            continue;
        }
        let Some(mut message) = Fields::from_value(item) else {
            anyhow::bail!("Transcript[{i}] is not an object");
        };
        let at = message
            .take_if("AbsoluteTime", |v| parse_time(v.as_str()?))
            .ok_or_else(|| anyhow::anyhow!("Transcript[{i}] has no readable AbsoluteTime"))?;
        messages.push((at, i, message));
    }
    // Ids are given in file order, as a repeated `Id`'s mentions in the
    // sentiment groups are: the k-th message with an `Id` has its k-th mention.
    let mut ids = TurnIds::new(messages.iter().filter_map(|(_, _, message)| message.peek_str("Id")));
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut messages: Vec<_> = messages
        .into_iter()
        .map(|(at, i, mut message)| {
            let named = message.take_str("Id");
            let mention = named.as_ref().map(|original| {
                let k = seen.entry(original.clone()).or_default();
                *k += 1;
                (original.clone(), *k - 1)
            });
            let id = ids.assign(named, || format!("message-{}", i + 1));
            (at, i, id, mention, message)
        })
        .collect();
    // Offsets count from the first message, whatever order the file lists them in.
    messages.sort_by_key(|(at, i, ..)| (*at, *i));
    let started_at = messages.first().map(|(at, ..)| *at);

    let mut segments = Vec::new();
    let mut segment_fields = Map::new();
    for (at, _, id, mention, mut message) in messages {
        let role = match (message.take_str("ParticipantRole"), message.take_str("ParticipantId")) {
            (Some(role), _) => role_of(&role),
            (None, Some(pid)) => participants.get(&pid).map(|r| role_of(r)).unwrap_or_else(|| role_of(&pid)),
            (None, None) => anyhow::bail!("chat message {id} has neither ParticipantRole nor ParticipantId"),
        };
        message.take_if("Type", |v| (v.as_str() == Some("MESSAGE")).then_some(()));
        let text = message.take_str("Content").unwrap_or_default();
        let offset = millis((at - started_at.unwrap_or(at)).num_milliseconds().max(0) as u64);
        let (sentiment, sentiment_score) = mention
            .and_then(|(original, k)| {
                let mentions = sentiment_of_item.get(&original)?;
                // An `Id` of one message mentioned twice: the last group wins.
                if seen[&original] == 1 {
                    mentions.last()
                } else {
                    mentions.get(k)
                }
            })
            .copied()
            .unwrap_or((None, None));
        if !message.is_empty() {
            segment_fields.insert(id.clone(), Value::Object(message.into_map()));
        }
        segments.push(Segment {
            id,
            role,
            text,
            begin_ms: offset,
            end_ms: offset,
            sentiment,
            sentiment_score,
            loudness: None,
            agent_id: None,
        });
    }

    Ok(Analysis {
        channel: Channel::Chat,
        contact_id,
        language,
        segments,
        started_at,
        characteristics,
        fields: root.into_map(),
        segment_fields,
        transcript_events,
        notes: ids.note().into_iter().collect(),
    })
}

/// `<key>.ValueMillis` (CHAT-2022-11-30), or a plain number under `flat`.
fn value_millis(figures: &mut Fields, key: &str, flat: &str) -> Option<u32> {
    if let Some(mut nested) = figures.take_object(key) {
        let value = nested.take_if("ValueMillis", as_u64).map(millis);
        figures.put_back(key, nested);
        return value;
    }
    figures.take_if(flat, as_u64).map(millis)
}
