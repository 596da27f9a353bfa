//! Which alerts a sheet owes, and the body each webhook receives.
//!
//! A sheet owes an alert for each item that failed, counts toward the
//! sheet (a shadow rule's never alerts), and whose rule carries `alert`:
//! one per webhook whose `min_severity` the rule's severity reaches.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::webhook::Webhook;
use crate::qa::sheet_store::outbox::NewAlert;
use crate::qa::sheet_store::{instant, SheetFacts, SheetRecord};
use crate::qa::ItemStatus;
use crate::rules::{Finding, Ruleset};

/// The body's `type`: the only event callqa sends so far.
pub const EVENT_TYPE: &str = "qa.item.failed";

/// How urgent a rule's failure is; a webhook takes those at or above its
/// `min_severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// A rule's `alert` setting in a ruleset: `true` (a warning), `false`
    /// (no alert), or a severity's name.
    pub fn of_rule_setting(value: &toml::Value) -> anyhow::Result<Option<Severity>> {
        match value {
            toml::Value::Boolean(true) => Ok(Some(Severity::Warning)),
            toml::Value::Boolean(false) => Ok(None),
            toml::Value::String(name) => Severity::parse(name).map(Some).ok_or_else(|| {
                anyhow::anyhow!(
                    "`alert = {name:?}` is not a severity: use alert = true (a warning), \"warning\" or \"critical\""
                )
            }),
            other => anyhow::bail!(
                "`alert = {other}` is neither true/false nor a severity: use alert = true (a warning), \"warning\" or \
                 \"critical\""
            ),
        }
    }
}

/// The JSON body of an alert (docs/alerts.md). Fields are only added,
/// never renamed: receivers parse it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertBody {
    /// The event's id: the same for every webhook and every attempt.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub severity: Severity,
    /// When the sheet was evaluated (RFC 3339, UTC).
    pub created_at: String,
    pub session_id: String,
    pub contact_id: String,
    pub channel: String,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    /// The agent's hierarchy path (`site/department/team`).
    pub team: Option<String>,
    pub ruleset_version: String,
    pub rule_id: String,
    pub rule_version: String,
    pub reason: Option<String>,
    /// The item's evidence: messages with segment ids and offsets in ms.
    pub findings: Vec<Finding>,
    /// The sheet's score (null when no item was scored).
    pub score: Option<f64>,
    /// The sheet in the QA workbench, when the webhook has a `link_base`.
    pub link: Option<String>,
}

/// An event's id: hex SHA-256 of the session, the ruleset version and the
/// rule. Stable across webhooks, attempts and restarts, so a receiver can
/// drop what it already has; a new ruleset version is a new evaluation and
/// owes new events.
pub fn event_id(session_id: &str, ruleset_version: &str, rule_id: &str) -> String {
    let mut hash = Sha256::new();
    // Lengths first: no two triples hash the same bytes.
    for part in [session_id, ruleset_version, rule_id] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// The alerts a sheet owes to `webhooks`, ready for the outbox.
pub fn owed(record: &SheetRecord<'_>, ruleset: &Ruleset, webhooks: &[Webhook]) -> anyhow::Result<Vec<NewAlert>> {
    if webhooks.is_empty() {
        return Ok(Vec::new());
    }
    let facts = SheetFacts::of(record.session);
    let sheet = record.sheet;
    let mut out = Vec::new();
    for item in &sheet.items {
        if item.outcome != ItemStatus::Fail || !item.counts() {
            continue;
        }
        let Some(severity) = ruleset.rules.iter().find(|r| *r.id == *item.rule_id).and_then(|r| r.alert) else {
            continue;
        };
        let mut body = AlertBody {
            id: event_id(&sheet.session_id, record.ruleset_version, &item.rule_id),
            event_type: EVENT_TYPE.into(),
            severity,
            created_at: instant(&record.evaluated_at),
            session_id: sheet.session_id.clone(),
            contact_id: sheet.contact_id.clone(),
            channel: sheet.channel.clone(),
            agent_id: facts.agent_id.clone(),
            queue: facts.queue.clone(),
            team: facts.team.clone(),
            ruleset_version: record.ruleset_version.to_owned(),
            rule_id: item.rule_id.clone(),
            rule_version: item.rule_version.clone(),
            reason: item.reason.clone(),
            findings: item.findings.clone(),
            score: sheet.score,
            link: None,
        };
        for webhook in webhooks.iter().filter(|w| severity >= w.min_severity) {
            body.link = webhook.link_base.as_ref().map(|base| format!("{base}{}", path_segment(&sheet.session_id)));
            out.push(NewAlert {
                webhook: webhook.name.clone(),
                event_id: body.id.clone(),
                payload: serde_json::to_string(&body)?,
            });
        }
    }
    Ok(out)
}

/// `text` safe as one URL path segment: unreserved characters kept, the
/// rest percent-encoded (session ids are UUIDs, but need not be).
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_of_rule_settings() {
        let v = |text: &str| toml::from_str::<toml::Table>(&format!("a = {text}")).unwrap()["a"].clone();
        assert_eq!(Severity::of_rule_setting(&v("true")).unwrap(), Some(Severity::Warning));
        assert_eq!(Severity::of_rule_setting(&v("false")).unwrap(), None);
        assert_eq!(Severity::of_rule_setting(&v("\"critical\"")).unwrap(), Some(Severity::Critical));
        assert_eq!(Severity::of_rule_setting(&v("\"warning\"")).unwrap(), Some(Severity::Warning));
        let err = Severity::of_rule_setting(&v("\"urgent\"")).unwrap_err().to_string();
        assert!(err.contains("\"urgent\"") && err.contains("\"critical\""), "{err}");
        let err = Severity::of_rule_setting(&v("3")).unwrap_err().to_string();
        assert!(err.contains("alert = 3"), "{err}");
        assert!(Severity::Critical > Severity::Warning);
    }

    #[test]
    fn event_ids_are_stable_and_unambiguous() {
        let id = event_id("s1", "v1", "rule");
        assert_eq!(id.len(), 64);
        assert_eq!(id, event_id("s1", "v1", "rule"));
        assert_ne!(id, event_id("s1", "v2", "rule"));
        assert_ne!(event_id("ab", "c", "r"), event_id("a", "bc", "r"));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("3baf6490-0382"), "3baf6490-0382");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}
