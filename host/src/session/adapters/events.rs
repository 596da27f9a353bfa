//! A team's own business events (ticket system, orders, compensation),
//! exported as NDJSON, one event a line:
//!
//! ```json
//! {"contact_id": "…", "kind": "ticket-created", "at": "2026-11-20T02:05:00Z", "attrs": {"ticket": "T-1"}}
//! {"session_id": "…", "kind": "compensation", "at": 1763604300000, "attrs": {"amount": 20}}
//! ```
//!
//! `at` is RFC 3339 or milliseconds since the epoch. `session_id` joins to
//! the session of that id (the first contact of a transfer chain);
//! `contact_id` to the session holding that contact. Any other field is
//! kept with the event's attributes.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::contact_record::read_json_records;
use super::fields::{parse_time, Fields};
use crate::session::{Event, SessionSource};

/// Which session an event belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventTarget {
    Session(String),
    Contact(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct BusinessEvent {
    pub target: EventTarget,
    pub event: Event,
}

impl BusinessEvent {
    pub fn from_value(value: Value) -> anyhow::Result<Self> {
        let mut f = Fields::from_value(value).context("an event must be a JSON object")?;
        let target = match (f.take_str("session_id"), f.peek_str("contact_id").map(str::to_owned)) {
            (Some(session), _) => EventTarget::Session(session),
            (None, Some(contact)) if !contact.is_empty() => {
                f.take("contact_id");
                EventTarget::Contact(contact)
            }
            _ => anyhow::bail!(
                "an event needs `contact_id` or `session_id` (a non-empty string) to be joined to its session"
            ),
        };
        let kind = f.take_str("kind").context("an event needs a `kind` (a non-empty string)")?;
        let at = match f.take("at") {
            Some(Value::String(text)) => {
                parse_time(&text).with_context(|| format!("`at` {text:?} is not an RFC 3339 instant"))?
            }
            Some(Value::Number(n)) => {
                let ms = n.as_i64().with_context(|| format!("`at` {n} is not a whole number of milliseconds"))?;
                DateTime::<Utc>::from_timestamp_millis(ms).with_context(|| format!("`at` {ms} is out of range"))?
            }
            _ => anyhow::bail!("an event needs `at` (RFC 3339, or milliseconds since the epoch)"),
        };
        let mut attributes = match f.take("attrs") {
            Some(Value::Object(map)) => map,
            None | Some(Value::Null) => Default::default(),
            Some(_) => anyhow::bail!("`attrs` must be an object"),
        };
        for (key, value) in f.into_map() {
            attributes.entry(key).or_insert(value);
        }
        Ok(BusinessEvent { target, event: Event { kind, at, attributes } })
    }
}

/// Every event in an NDJSON file (or `.json` array, gzipped or not); a bad
/// line is an inner `Err` with its position.
pub fn read_events(path: &Path) -> anyhow::Result<Vec<(SessionSource, anyhow::Result<BusinessEvent>)>> {
    std::fs::metadata(path).with_context(|| format!("cannot read the events file {}", path.display()))?;
    let mut out = Vec::new();
    read_json_records(path, &mut out, BusinessEvent::from_value);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_join_by_session_or_contact_and_keep_extra_fields() {
        let e = BusinessEvent::from_value(
            json!({"contact_id": "c1", "kind": "order", "at": 1_000, "attrs": {"amount": 5}, "source": "erp"}),
        )
        .unwrap();
        assert_eq!(e.target, EventTarget::Contact("c1".into()));
        assert_eq!(e.event.at.timestamp_millis(), 1_000);
        assert_eq!(Value::Object(e.event.attributes), json!({"amount": 5, "source": "erp"}));
        let e =
            BusinessEvent::from_value(json!({"session_id": "s1", "kind": "remark", "at": "2026-11-20T02:00:00+08:00"}))
                .unwrap();
        assert_eq!(e.target, EventTarget::Session("s1".into()));
        assert!(BusinessEvent::from_value(json!({"kind": "remark", "at": 1})).is_err());
        assert!(BusinessEvent::from_value(json!({"contact_id": "c", "kind": "remark", "at": "yesterday"})).is_err());
    }
}
