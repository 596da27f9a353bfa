//! Amazon Connect contact records (`AWSContactTraceRecordFormatVersion`
//! 2017-03-10) as session contact facts.
//!
//! Read straight from JSON rather than through the ingestion model: the
//! assembler needs other fields (agent, queue, chain links) and must keep
//! every field it does not understand.

use std::io::Read;
use std::ops::RangeInclusive;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::fields::{as_u64, Fields};
use crate::session::{Agent, Channel, InitiationMethod, SessionSource};

/// One version of one contact record: a leg of a customer conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactRecord {
    pub contact_id: String,
    /// The first contact of a transfer chain; absent on the first leg itself.
    pub initial_contact_id: Option<String>,
    pub previous_contact_id: Option<String>,
    pub next_contact_id: Option<String>,
    /// Which version of the record this is: Connect re-delivers a contact
    /// with a newer `LastUpdateTimestamp` when its data changes.
    pub last_update: Option<DateTime<Utc>>,
    pub channel: Channel,
    pub initiation_method: Option<InitiationMethod>,
    /// `InitiationMethod` as written, for values the session model folds
    /// into `other`.
    pub initiation_method_raw: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<Agent>,
    pub initiated_at: Option<DateTime<Utc>>,
    pub connected_to_agent_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    /// Seconds and counts from `Agent` and `Queue`, with our names.
    pub durations: Map<String, Value>,
    /// The user-defined contact attributes (`Attributes`).
    pub attributes: Map<String, Value>,
    /// Every field not read above, under its Connect name.
    pub fields: Map<String, Value>,
}

impl ContactRecord {
    pub fn from_value(value: Value) -> anyhow::Result<Self> {
        let mut f = Fields::from_value(value).context("a contact record must be a JSON object")?;
        let contact_id = f.take_str("ContactId").context("the contact record has no ContactId (a non-empty string)")?;
        let channel_text = f.peek_str("Channel").map(str::to_owned);
        let channel = match channel_text.as_deref() {
            Some("VOICE") => Channel::Voice,
            Some("CHAT") => Channel::Chat,
            Some("TASK") => Channel::Task,
            Some("EMAIL") => Channel::Email,
            Some(other) => {
                anyhow::bail!("contact {contact_id}: unknown Channel {other:?} (expected VOICE, CHAT, TASK or EMAIL)")
            }
            None => anyhow::bail!("contact {contact_id}: no Channel"),
        };
        f.take("Channel");
        let initial_contact_id = f.take_str("InitialContactId").filter(|id| *id != contact_id);
        let previous_contact_id = f.take_str("PreviousContactId");
        let next_contact_id = f.take_str("NextContactId");
        let last_update = f.take_time("LastUpdateTimestamp");
        let initiation_method_raw = f.take_str("InitiationMethod");
        let initiation_method = initiation_method_raw.as_deref().map(initiation_method);
        let initiated_at = f.take_time("InitiationTimestamp");
        let disconnected_at = f.take_time("DisconnectTimestamp");
        let attributes = match f.take_if("Attributes", |v| v.as_object().cloned()) {
            Some(map) => map,
            None => {
                if matches!(f.peek("Attributes"), Some(Value::Null)) {
                    f.take("Attributes");
                }
                Map::new()
            }
        };

        let mut durations = Map::new();
        let mut queue = None;
        if let Some(mut q) = f.take_object("Queue") {
            queue = q.take_str("Name");
            if let Some(s) = q.take_if("Duration", as_u64) {
                durations.insert("queue_s".into(), s.into());
            }
            f.put_back("Queue", q);
        } else if matches!(f.peek("Queue"), Some(Value::Null)) {
            f.take("Queue");
        }

        let mut agent = None;
        let mut connected_to_agent_at = None;
        if let Some(mut a) = f.take_object("Agent") {
            connected_to_agent_at = a.take_time("ConnectedToAgentTimestamp");
            for (key, name) in [
                ("AgentInteractionDuration", "agent_interaction_s"),
                ("CustomerHoldDuration", "customer_hold_s"),
                ("AfterContactWorkDuration", "after_contact_work_s"),
                ("LongestHoldDuration", "longest_hold_s"),
                ("NumberOfHolds", "number_of_holds"),
            ] {
                if let Some(n) = a.take_if(key, as_u64) {
                    durations.insert(name.into(), n.into());
                }
            }
            let username = a.take_str("Username");
            let hierarchy = a.take_object("HierarchyGroups").map(|mut groups| {
                let names = (1..=5)
                    .filter_map(|level| {
                        let key = format!("Level{level}");
                        let mut group = groups.take_object(&key)?;
                        let name = group.take_str("GroupName");
                        groups.put_back(&key, group);
                        name
                    })
                    .collect::<Vec<_>>();
                a.put_back("HierarchyGroups", groups);
                names
            });
            // Connect names the agent by ARN (…/agent/<id>); the ARN stays in
            // the remainder for whoever needs the instance.
            let id = a.peek_str("ARN").and_then(agent_id_of_arn).or_else(|| username.clone());
            if let Some(id) = id {
                agent = Some(Agent { id, username, hierarchy: hierarchy.unwrap_or_default() });
            }
            f.put_back("Agent", a);
        } else if matches!(f.peek("Agent"), Some(Value::Null)) {
            f.take("Agent");
        }
        if let (Some(start), Some(end)) = (initiated_at, disconnected_at) {
            if end >= start {
                let ms = (end - start).num_milliseconds();
                // Whole seconds stay integers, as Connect's own durations are.
                let seconds: Value = if ms % 1000 == 0 { json!(ms / 1000) } else { json!(ms as f64 / 1000.0) };
                durations.insert("contact_s".into(), seconds);
            }
        }

        Ok(ContactRecord {
            contact_id,
            initial_contact_id,
            previous_contact_id,
            next_contact_id,
            last_update,
            channel,
            initiation_method,
            initiation_method_raw,
            queue,
            agent,
            initiated_at,
            connected_to_agent_at,
            disconnected_at,
            durations,
            attributes,
            fields: f.into_map(),
        })
    }

    /// Whether the contact reached an agent, so Contact Lens could have
    /// analysed it.
    pub fn reached_agent(&self) -> bool {
        self.agent.is_some() || self.connected_to_agent_at.is_some()
    }

    /// This leg as it appears in the session's `attributes.connect.legs`.
    pub fn leg_json(&self) -> Value {
        let mut leg = Map::new();
        leg.insert("contact_id".into(), json!(self.contact_id));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                leg.insert(key.into(), v);
            }
        };
        put("previous_contact_id", self.previous_contact_id.as_ref().map(|s| json!(s)));
        put("next_contact_id", self.next_contact_id.as_ref().map(|s| json!(s)));
        put("initiation_method", self.initiation_method_raw.as_ref().map(|s| json!(s)));
        put("queue", self.queue.as_ref().map(|s| json!(s)));
        put("agent_id", self.agent.as_ref().map(|a| json!(a.id)));
        put("initiated_at", self.initiated_at.map(|t| json!(t)));
        put("connected_to_agent_at", self.connected_to_agent_at.map(|t| json!(t)));
        put("disconnected_at", self.disconnected_at.map(|t| json!(t)));
        put("last_updated_at", self.last_update.map(|t| json!(t)));
        if !self.durations.is_empty() {
            leg.insert("durations".into(), Value::Object(self.durations.clone()));
        }
        if !self.attributes.is_empty() {
            leg.insert("attributes".into(), Value::Object(self.attributes.clone()));
        }
        if !self.fields.is_empty() {
            leg.insert("fields".into(), Value::Object(self.fields.clone()));
        }
        Value::Object(leg)
    }
}

fn initiation_method(text: &str) -> InitiationMethod {
    match text {
        "INBOUND" => InitiationMethod::Inbound,
        "OUTBOUND" => InitiationMethod::Outbound,
        "TRANSFER" => InitiationMethod::Transfer,
        "QUEUE_TRANSFER" => InitiationMethod::QueueTransfer,
        "CALLBACK" => InitiationMethod::Callback,
        "API" => InitiationMethod::Api,
        "DISCONNECT" => InitiationMethod::Disconnect,
        "MONITOR" => InitiationMethod::Monitor,
        "EXTERNAL_OUTBOUND" => InitiationMethod::ExternalOutbound,
        _ => InitiationMethod::Other,
    }
}

fn agent_id_of_arn(arn: &str) -> Option<String> {
    let (_, id) = arn.rsplit_once("/agent/")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_owned())
}

/// Every contact record under `dir` (recursively, in name order): `.json`
/// (one object or an array), `.ndjson`/`.jsonl`, and the same gzipped
/// (`.json.gz`, `.ndjson.gz`, `.jsonl.gz`), which is what `callqa ingest
/// --out` writes. With `days`, Hive partitions (`year=/month=/day=`) outside
/// the range are skipped. The outer error is an unusable directory; a bad
/// file or record is an inner `Err` with its source.
pub fn read_contact_records(
    dir: &Path,
    days: Option<RangeInclusive<NaiveDate>>,
) -> anyhow::Result<Vec<(SessionSource, anyhow::Result<ContactRecord>)>> {
    let meta =
        std::fs::metadata(dir).with_context(|| format!("cannot read the contact records at {}", dir.display()))?;
    let files = if meta.is_file() {
        vec![dir.to_path_buf()]
    } else {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot walk {}", dir.display()))?;
            if !entry.file_type().is_file() || json_kind(entry.path()).is_none() {
                continue;
            }
            if let (Some(range), Some(day)) = (&days, partition_day(entry.path())) {
                if !range.contains(&day) {
                    continue;
                }
            }
            files.push(entry.into_path());
        }
        files
    };
    let mut out = Vec::new();
    for file in files {
        read_json_records(&file, &mut out, ContactRecord::from_value);
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum JsonKind {
    Document,
    Lines,
}

/// What a file holds, by its name; `None` for anything else.
pub(crate) fn json_kind(path: &Path) -> Option<JsonKind> {
    let name = path.file_name()?.to_str()?;
    let name = name.strip_suffix(".gz").unwrap_or(name);
    if name.ends_with(".json") {
        Some(JsonKind::Document)
    } else if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        Some(JsonKind::Lines)
    } else {
        None
    }
}

/// The whole file as text, gunzipped when its name ends in `.gz`.
pub(crate) fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).context("cannot read the file")?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut out).context("not a readable gzip file")?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| anyhow::anyhow!("not UTF-8: {e}"))
}

/// Reads one file of JSON records (object, array or lines) with `parse`,
/// each record with its position.
pub(crate) fn read_json_records<T>(
    file: &Path,
    out: &mut Vec<(SessionSource, anyhow::Result<T>)>,
    parse: impl Fn(Value) -> anyhow::Result<T>,
) {
    let whole = SessionSource { file: file.to_path_buf(), position: None };
    let text = match read_text(file) {
        Ok(t) => t,
        Err(e) => return out.push((whole, Err(e))),
    };
    if json_kind(file) == Some(JsonKind::Lines) {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let source = SessionSource { file: file.to_path_buf(), position: Some(format!("line {}", i + 1)) };
            let parsed = serde_json::from_str::<Value>(line)
                .map_err(|e| anyhow::anyhow!("malformed JSON at column {}: {e}", e.column()))
                .and_then(&parse);
            out.push((source, parsed));
        }
        return;
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let source = SessionSource { file: file.to_path_buf(), position: Some(format!("[{i}]")) };
                out.push((source, parse(item)));
            }
        }
        Ok(value) => out.push((whole, parse(value))),
        Err(e) => {
            out.push((whole, Err(anyhow::anyhow!("malformed JSON at line {}, column {}: {e}", e.line(), e.column()))))
        }
    }
}

/// The day of a Hive partition path (`…/year=2026/month=11/day=20/…`).
fn partition_day(path: &Path) -> Option<NaiveDate> {
    let (mut y, mut m, mut d) = (None, None, None);
    for part in path.iter().filter_map(|p| p.to_str()) {
        if let Some(v) = part.strip_prefix("year=") {
            y = v.parse::<i32>().ok();
        } else if let Some(v) = part.strip_prefix("month=") {
            m = v.parse::<u32>().ok();
        } else if let Some(v) = part.strip_prefix("day=") {
            d = v.parse::<u32>().ok();
        }
    }
    NaiveDate::from_ymd_opt(y?, m?, d?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_come_from_the_arn() {
        assert_eq!(agent_id_of_arn("arn:aws:connect:us-east-1:1:instance/abc/agent/4f2c").as_deref(), Some("4f2c"));
        assert_eq!(agent_id_of_arn("arn:aws:connect:us-east-1:1:instance/abc"), None);
    }

    #[test]
    fn hive_partitions_name_their_day() {
        let p = Path::new("out/year=2026/month=11/day=20/part-0.ndjson.gz");
        assert_eq!(partition_day(p), NaiveDate::from_ymd_opt(2026, 11, 20));
        assert_eq!(partition_day(Path::new("out/x.json")), None);
        assert_eq!(json_kind(p), Some(JsonKind::Lines));
    }
}
