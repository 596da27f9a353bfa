//! Contact Lens voice output (`Version` `1.1.0`, `VOICE-2022-11-30`): the
//! analysed call transcript with its conversation characteristics.

use serde_json::{Map, Value};

use super::fields::{as_u64, millis, Fields};
use super::{offsets, read_sentiment_by_period, role_of, sentiment_of, Analysis, RoleTable, TurnIds};
use crate::session::{Channel, Characteristics, Interruption, Role, Segment, Span};

pub(crate) fn read(mut root: Fields) -> anyhow::Result<Analysis> {
    let mut notes = Vec::new();
    let participants = participant_roles(root.peek("Participants"));
    let contact_id = customer_metadata_contact_id(&root);
    let language = root.peek_str("LanguageCode").map(str::to_owned);

    let mut segments = Vec::new();
    let mut segment_fields = Map::new();
    if let Some(items) = root.take_if("Transcript", |v| v.as_array().cloned()) {
        let mut ids = TurnIds::new(items.iter().filter_map(|turn| turn.get("Id")?.as_str()));
        for (i, item) in items.into_iter().enumerate() {
            let Some(mut turn) = Fields::from_value(item) else {
                anyhow::bail!("Transcript[{i}] is not an object");
            };
            let id = ids.assign(turn.take_str("Id"), || format!("turn-{}", i + 1));
            let role = match (turn.take_str("ParticipantRole"), turn.take_str("ParticipantId")) {
                (Some(role), _) => role_of(&role),
                (None, Some(pid)) => participants.get(&pid).map(|r| role_of(r)).unwrap_or_else(|| role_of(&pid)),
                (None, None) => anyhow::bail!("Transcript turn {id} has neither ParticipantId nor ParticipantRole"),
            };
            let text = turn.take_str("Content").unwrap_or_default();
            let begin = turn.take_u64("BeginOffsetMillis").with_context_id(&id, "BeginOffsetMillis")?;
            let mut end = turn.take_u64("EndOffsetMillis").with_context_id(&id, "EndOffsetMillis")?;
            if end < begin {
                notes.push(format!("Contact Lens turn {id} ends ({end} ms) before it begins ({begin} ms); read as ending where it begins"));
                end = begin;
            }
            let sentiment = turn.take_if("Sentiment", |v| sentiment_of(v.as_str()?));
            // One score per second of the turn; the segment keeps their mean.
            let loudness = ["LoudnessScore", "LoudnessScores"].into_iter().find_map(|key| {
                turn.take_if(key, |v| {
                    let scores: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
                    Some((!scores.is_empty()).then(|| (scores.iter().sum::<f64>() / scores.len() as f64) as f32))
                })
            });
            if !turn.is_empty() {
                segment_fields.insert(id.clone(), Value::Object(turn.into_map()));
            }
            segments.push(Segment {
                id,
                role,
                text,
                begin_ms: millis(begin),
                end_ms: millis(end),
                sentiment,
                sentiment_score: None,
                loudness: loudness.flatten(),
                agent_id: None,
            });
        }
        notes.extend(ids.note());
    } else if root.peek("Transcript").is_some() {
        anyhow::bail!("Transcript is not an array");
    } else {
        anyhow::bail!("no Transcript: not a Contact Lens analysis file");
    }

    let mut characteristics = Characteristics::default();
    let mut roles = RoleTable::default();
    if let Some(mut cc) = root.take_object("ConversationCharacteristics") {
        characteristics.total_conversation_ms = cc.take_if("TotalConversationDurationMillis", as_u64).map(millis);
        if let Some(mut sentiment) = cc.take_object("Sentiment") {
            if let Some(mut overall) = sentiment.take_object("OverallSentiment") {
                for key in overall.keys() {
                    if let Some(score) = overall.take_f64(&key) {
                        roles.get(role_of(&key)).overall_sentiment = Some(score as f32);
                    }
                }
                sentiment.put_back("OverallSentiment", overall);
            }
            read_sentiment_by_period(&mut sentiment, &mut roles);
            cc.put_back("Sentiment", sentiment);
        }
        if let Some(mut interruptions) = cc.take_object("Interruptions") {
            if let Some(mut by) = interruptions.take_object("InterruptionsByInterrupter") {
                for key in by.keys() {
                    let spans = by.take_if(&key, |v| v.as_array()?.iter().map(offsets).collect::<Option<Vec<_>>>());
                    for (begin_ms, end_ms) in spans.unwrap_or_default() {
                        characteristics.interruptions.push(Interruption { by: role_of(&key), begin_ms, end_ms });
                    }
                }
                interruptions.put_back("InterruptionsByInterrupter", by);
            }
            // Totals are derived from the instances.
            interruptions.take("TotalCount");
            interruptions.take("TotalTimeMillis");
            cc.put_back("Interruptions", interruptions);
        }
        characteristics.interruptions.sort_by_key(|i| (i.begin_ms, i.end_ms));
        if let Some(mut non_talk) = cc.take_object("NonTalkTime") {
            if let Some(spans) =
                non_talk.take_if("Instances", |v| v.as_array()?.iter().map(offsets).collect::<Option<Vec<_>>>())
            {
                characteristics.non_talk =
                    spans.into_iter().map(|(begin_ms, end_ms)| Span { begin_ms, end_ms }).collect();
                non_talk.take("TotalTimeMillis");
            }
            cc.put_back("NonTalkTime", non_talk);
        }
        read_details(&mut cc, "TalkSpeed", "AverageWordsPerMinute", |role, n| {
            roles.get(role).words_per_minute = Some(millis(n))
        });
        if let Some(mut talk) = cc.take_object("TalkTime") {
            characteristics.talk_time_ms = talk.take_if("TotalTimeMillis", as_u64).map(millis);
            cc.put_back("TalkTime", talk);
        }
        read_details(&mut cc, "TalkTime", "TotalTimeMillis", |role, n| roles.get(role).talk_time_ms = Some(millis(n)));
        root.put_back("ConversationCharacteristics", cc);
    }
    characteristics.roles = roles.into_vec();
    characteristics.categories = take_categories(&mut root);

    Ok(Analysis {
        channel: Channel::Voice,
        contact_id,
        language,
        segments,
        started_at: None,
        characteristics,
        fields: root.into_map(),
        segment_fields,
        transcript_events: Vec::new(),
        notes,
    })
}

/// `<section>.DetailsByParticipant.<ROLE>.<key>` as whole numbers.
fn read_details(cc: &mut Fields, section: &str, key: &str, mut set: impl FnMut(Role, u64)) {
    let Some(mut sec) = cc.take_object(section) else { return };
    if let Some(mut details) = sec.take_object("DetailsByParticipant") {
        for role in details.keys() {
            if let Some(mut figures) = details.take_object(&role) {
                if let Some(n) = figures.take_if(key, as_u64) {
                    set(role_of(&role), n);
                }
                details.put_back(&role, figures);
            }
        }
        sec.put_back("DetailsByParticipant", details);
    }
    cc.put_back(section, sec);
}

/// `Categories.MatchedCategories`; `MatchedDetails` (the points of
/// interest) stays in the remainder.
pub(crate) fn take_categories(root: &mut Fields) -> Vec<String> {
    let Some(mut categories) = root.take_object("Categories") else { return Vec::new() };
    let matched = categories
        .take_if("MatchedCategories", |v| {
            v.as_array()?.iter().map(|c| c.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()
        })
        .unwrap_or_default();
    root.put_back("Categories", categories);
    matched
}

/// ParticipantId → ParticipantRole, from `Participants`.
pub(crate) fn participant_roles(participants: Option<&Value>) -> std::collections::HashMap<String, String> {
    participants
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((p.get("ParticipantId")?.as_str()?.to_owned(), p.get("ParticipantRole")?.as_str()?.to_owned()))
        })
        .collect()
}

pub(crate) fn customer_metadata_contact_id(root: &Fields) -> Option<String> {
    root.peek("CustomerMetadata")?.get("ContactId")?.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

trait RequiredField<T> {
    fn with_context_id(self, id: &str, field: &str) -> anyhow::Result<T>;
}

impl<T> RequiredField<T> for Option<T> {
    fn with_context_id(self, id: &str, field: &str) -> anyhow::Result<T> {
        self.ok_or_else(|| anyhow::anyhow!("Transcript turn {id} has no {field} (a whole number of milliseconds)"))
    }
}
