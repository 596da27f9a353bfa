//! Adapters from Amazon Connect data to the session model: contact records,
//! Contact Lens conversational-analytics output (voice and chat), and a
//! team's own business events. Each reads its documented shape and keeps
//! what it does not understand as attributes; the assembler joins them.

pub mod contact_lens_chat;
pub mod contact_lens_voice;
pub mod contact_record;
pub mod events;
mod fields;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use contact_record::{read_contact_records, ContactRecord};
pub use events::{read_events, BusinessEvent, EventTarget};
use fields::{as_u64, millis, Fields};

use super::{Channel, Characteristics, Role, RoleFigures, Segment, Sentiment};

/// What one Contact Lens analysis file contributes to a session.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub channel: Channel,
    /// `CustomerMetadata.ContactId`, when the file says.
    pub contact_id: Option<String>,
    pub language: Option<String>,
    /// In conversation order, offsets relative to this file's own start.
    /// Their ids are unique within the file, whatever its `Id`s say
    /// ([`TurnIds`]).
    pub segments: Vec<Segment>,
    /// Chat: the instant of offset 0 (the first message), so legs of a
    /// transferred chat line up on one clock. Voice offsets are relative to
    /// the recording, which has no instant in the file.
    pub started_at: Option<DateTime<Utc>>,
    pub characteristics: Characteristics,
    /// The file's top-level fields that were not mapped, Contact Lens names.
    pub fields: Map<String, Value>,
    /// Per segment id, the transcript item's unmapped fields (`Redaction`,
    /// `IssuesDetected`, `OutcomesDetected`, `ActionItemsDetected`, …).
    pub segment_fields: Map<String, Value>,
    /// Chat transcript items that are not messages (participant joined or
    /// left, chat ended), as written.
    pub transcript_events: Vec<Value>,
    /// What was odd but usable (a turn ending before it begins).
    pub notes: Vec<String>,
}

impl Analysis {
    /// Reads a Contact Lens output file, voice or chat by its `Channel` (or
    /// `Version` prefix).
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("malformed JSON at line {}, column {}: {e}", e.line(), e.column()))?;
        let root = Fields::from_value(value).context("a Contact Lens output file is a JSON object")?;
        if let Some(status) = root.peek_str("JobStatus").filter(|s| *s != "COMPLETED") {
            anyhow::bail!("the analysis job did not complete (JobStatus {status})");
        }
        let is_chat =
            root.peek_str("Channel") == Some("CHAT") || root.peek_str("Version").is_some_and(|v| v.starts_with("CHAT"));
        if is_chat {
            contact_lens_chat::read(root)
        } else {
            contact_lens_voice::read(root)
        }
    }
}

/// One Contact Lens output file found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisFile {
    pub path: PathBuf,
    /// From the file name, `<ContactId>_analysis_<time>.json`.
    pub contact_id: Option<String>,
    /// `…_analysis_redacted_…`: the PII-redacted twin of the original.
    pub redacted: bool,
}

impl AnalysisFile {
    pub fn read(&self) -> anyhow::Result<Analysis> {
        let text = contact_record::read_text(&self.path)?;
        Analysis::from_json(&text)
    }
}

/// The Contact Lens output files of a directory.
#[derive(Debug, Default)]
pub struct AnalysisFiles {
    /// By contact id, best first: the original before its redacted twin,
    /// then the newest (the time in the name sorts).
    pub by_contact: BTreeMap<String, Vec<AnalysisFile>>,
    /// Files whose name carries no contact id; reading one tells it from
    /// `CustomerMetadata.ContactId`.
    pub unnamed: Vec<AnalysisFile>,
}

/// The analysis files under `dir`, recursively.
pub fn find_analysis_files(dir: &Path) -> anyhow::Result<AnalysisFiles> {
    let mut by_contact: BTreeMap<String, Vec<AnalysisFile>> = BTreeMap::new();
    let mut unnamed = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot walk the analysis directory {}", dir.display()))?;
        if !entry.file_type().is_file()
            || contact_record::json_kind(entry.path()) != Some(contact_record::JsonKind::Document)
        {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let (contact_id, redacted) = match name.split_once("_analysis") {
            Some((id, rest)) if !id.is_empty() => (Some(id.to_owned()), rest.starts_with("_redacted")),
            _ => (None, false),
        };
        let file = AnalysisFile { path: entry.into_path(), contact_id: contact_id.clone(), redacted };
        match contact_id {
            Some(id) => by_contact.entry(id).or_default().push(file),
            None => unnamed.push(file),
        }
    }
    for files in by_contact.values_mut() {
        files.sort_by(|a, b| a.redacted.cmp(&b.redacted).then_with(|| b.path.file_name().cmp(&a.path.file_name())));
    }
    Ok(AnalysisFiles { by_contact, unnamed })
}

/// Gives each turn of one Contact Lens file a segment id of its own.
///
/// A turn's `Id` is what its per-turn fields and (in chat) its sentiment
/// hang off, but published example files repeat one placeholder `Id` on
/// every turn. The first turn with an `Id` keeps it; a later one becomes
/// `<Id>#<n>`, the smallest n from 2 that no turn of the file names, so
/// the same file always gives the same ids and no turn takes an `Id`
/// another turn names.
pub(crate) struct TurnIds {
    /// Every `Id` the file names.
    named: HashSet<String>,
    given: HashSet<String>,
    /// Turns whose `Id` an earlier turn already had.
    repeats: usize,
    /// The first of them: its `Id` and the id it was given.
    first_repeat: Option<(String, String)>,
}

impl TurnIds {
    /// `named`: the `Id` of every turn of the file that has one.
    pub fn new<'a>(named: impl IntoIterator<Item = &'a str>) -> Self {
        let named = named.into_iter().filter(|id| !id.is_empty()).map(str::to_owned).collect();
        TurnIds { named, given: HashSet::new(), repeats: 0, first_repeat: None }
    }

    /// The segment id of the next turn, in file order: its `Id`, or
    /// `fallback` when it has none.
    pub fn assign(&mut self, id: Option<String>, fallback: impl FnOnce() -> String) -> String {
        match id {
            Some(id) if self.given.insert(id.clone()) => id,
            Some(id) => {
                let unique = self.suffixed(&id);
                self.repeats += 1;
                self.first_repeat.get_or_insert_with(|| (id, unique.clone()));
                unique
            }
            None => {
                let fallback = fallback();
                if !self.named.contains(&fallback) && self.given.insert(fallback.clone()) {
                    fallback
                } else {
                    self.suffixed(&fallback)
                }
            }
        }
    }

    fn suffixed(&mut self, id: &str) -> String {
        let unique = (2u64..)
            .map(|n| format!("{id}#{n}"))
            .find(|candidate| !self.named.contains(candidate) && !self.given.contains(candidate))
            .expect("an unused suffix");
        self.given.insert(unique.clone());
        unique
    }

    /// One note for the whole file when it repeated ids.
    pub fn note(&self) -> Option<String> {
        let (id, unique) = self.first_repeat.as_ref()?;
        let turns = if self.repeats == 1 { "turn reuses" } else { "turns reuse" };
        Some(format!(
            "the Contact Lens Transcript repeats turn ids ({} {turns} the Id of an earlier turn, first {id:?}); \
             they were made unique as <Id>#<n> ({id:?} became {unique:?}), so each turn keeps its own segment id and fields",
            self.repeats
        ))
    }
}

pub(crate) fn role_of(text: &str) -> Role {
    match text {
        "AGENT" => Role::Agent,
        "CUSTOMER" => Role::Customer,
        // SYSTEM, and bots or other automated participants.
        _ => Role::System,
    }
}

pub(crate) fn sentiment_of(text: &str) -> Option<Sentiment> {
    match text {
        "POSITIVE" => Some(Sentiment::Positive),
        "NEGATIVE" => Some(Sentiment::Negative),
        "NEUTRAL" => Some(Sentiment::Neutral),
        "MIXED" => Some(Sentiment::Mixed),
        _ => None,
    }
}

/// Per-role figures being gathered from the several places Contact Lens
/// reports them.
#[derive(Default)]
pub(crate) struct RoleTable(BTreeMap<u8, RoleFigures>);

impl RoleTable {
    pub fn get(&mut self, role: Role) -> &mut RoleFigures {
        let key = match role {
            Role::Agent => 0,
            Role::Customer => 1,
            Role::System => 2,
        };
        self.0.entry(key).or_insert_with(|| RoleFigures {
            role,
            talk_time_ms: None,
            words_per_minute: None,
            overall_sentiment: None,
            sentiment_by_quarter: Vec::new(),
            average_response_ms: None,
            maximum_response_ms: None,
        })
    }

    pub fn into_vec(self) -> Vec<RoleFigures> {
        self.0.into_values().collect()
    }
}

/// `SentimentByPeriod.QUARTER.<ROLE>[].Score`, shared by voice and chat.
pub(crate) fn read_sentiment_by_period(sentiment: &mut Fields, roles: &mut RoleTable) {
    if let Some(mut periods) = sentiment.take_object("SentimentByPeriod") {
        if let Some(mut quarters) = periods.take_object("QUARTER") {
            for key in quarters.keys() {
                let scores = quarters.take_if(&key, |v| {
                    v.as_array()?
                        .iter()
                        .map(|q| q.get("Score").and_then(Value::as_f64).map(|s| s as f32))
                        .collect::<Option<Vec<f32>>>()
                });
                if let Some(scores) = scores {
                    roles.get(role_of(&key)).sentiment_by_quarter = scores;
                }
            }
            periods.put_back("QUARTER", quarters);
        }
        sentiment.put_back("SentimentByPeriod", periods);
    }
}

/// `{"BeginOffsetMillis", "EndOffsetMillis"}` (voice instances).
pub(crate) fn offsets(v: &Value) -> Option<(u32, u32)> {
    let begin = as_u64(v.get("BeginOffsetMillis")?)?;
    let end = v.get("EndOffsetMillis").and_then(as_u64).or_else(|| Some(begin + as_u64(v.get("DurationMillis")?)?))?;
    Some((millis(begin), millis(end.max(begin))))
}

/// Milliseconds from `base` to `at`, 0 when `at` is earlier.
pub(crate) fn millis_between(base: DateTime<Utc>, at: DateTime<Utc>) -> u32 {
    millis((at - base).num_milliseconds().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_turn_ids_become_unique_without_taking_an_id_the_file_names() {
        let named = ["x", "x", "x#2", "turn-4", "x"];
        let mut ids = TurnIds::new(named);
        let mut given: Vec<String> =
            named.iter().map(|id| ids.assign(Some(id.to_string()), || unreachable!())).collect();
        given.push(ids.assign(None, || "turn-4".into()));
        given.push(ids.assign(None, || "turn-7".into()));
        assert_eq!(given, ["x", "x#3", "x#2", "turn-4", "x#4", "turn-4#2", "turn-7"]);
        let note = ids.note().unwrap();
        assert!(note.contains("2 turns reuse") && note.contains("\"x\" became \"x#3\""), "{note}");

        let mut unique = TurnIds::new(["a", "b"]);
        unique.assign(Some("a".into()), || unreachable!());
        unique.assign(Some("b".into()), || unreachable!());
        unique.assign(None, || "turn-3".into());
        assert_eq!(unique.note(), None, "a turn without an Id repeats nothing");
    }
}
