//! The session under inspection: one customer conversation with its contact
//! facts, transcript, business events, free-form attributes and Contact Lens
//! characteristics.
//!
//! These types are also the session document format (JSON, snake_case) that
//! `callqa check` reads; `samples/session.schema.json` describes it. The
//! names match the WIT contract (`wit/rule.wit`) and the rule SDK.

pub mod adapters;
pub mod assembler;
mod attribute;
mod characteristics;
mod connect_batch;
mod contact;
mod document;
mod event;
mod segment;
pub mod synthetic;

pub use attribute::lookup as attribute_at;
pub use characteristics::{Characteristics, Interruption, RoleFigures, Span};
pub use connect_batch::{AssembledBatch, BatchReport, ConnectInputs};
pub use contact::{Agent, Channel, Contact, InitiationMethod};
pub use document::{read_sessions, DocumentError, SessionSource};
pub use event::Event;
pub use segment::{Role, Segment, Sentiment};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub id: String,
    pub contact: Contact,
    /// Every agent that handled the session, in leg order. When absent, the
    /// contact's agent (if any) is the only one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<Agent>,
    /// `None`: no transcript (the call was not analysed). `Some(vec![])`: a
    /// transcript with nothing in it. Rules see the difference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<Segment>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characteristics: Option<Characteristics>,
    /// What the assembler could not use (a broken analysis file, a missing
    /// leg), carried to the QA sheet so a reviewer knows why a rule had no
    /// transcript to read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Session {
    /// A session with nothing in it, for calls that need one but read none
    /// (a rule's `describe`).
    pub fn placeholder() -> Self {
        Session {
            id: String::new(),
            contact: Contact {
                contact_id: String::new(),
                channel: Channel::Voice,
                initiation_method: None,
                queue: None,
                agent: None,
                scenario: None,
                language: None,
                initiated_at: None,
                connected_to_agent_at: None,
                ended_at: None,
            },
            agents: Vec::new(),
            segments: None,
            events: Vec::new(),
            attributes: Default::default(),
            characteristics: None,
            notes: Vec::new(),
        }
    }

    /// Checks what serde cannot: ordering and offsets. Called once when a
    /// document is read, so rules can rely on sorted data.
    pub fn normalise(&mut self) -> anyhow::Result<()> {
        if let Some(segments) = &mut self.segments {
            for s in segments.iter() {
                anyhow::ensure!(
                    s.end_ms >= s.begin_ms,
                    "segment `{}` ends ({} ms) before it begins ({} ms)",
                    s.id,
                    s.end_ms,
                    s.begin_ms
                );
            }
            segments.sort_by_key(|s| s.begin_ms);
        }
        self.events.sort_by_key(|e| e.at);
        if self.agents.is_empty() {
            self.agents.extend(self.contact.agent.clone());
        }
        Ok(())
    }

    pub fn segments(&self) -> &[Segment] {
        self.segments.as_deref().unwrap_or(&[])
    }

    pub fn has_transcript(&self) -> bool {
        self.segments.is_some()
    }

    /// The agent a segment belongs to: its own `agent_id`, else the contact's
    /// agent.
    pub fn agent_of(&self, segment_id: &str) -> Option<&Agent> {
        let segment = self.segments().iter().find(|s| s.id == segment_id)?;
        match &segment.agent_id {
            Some(id) => self.agents.iter().find(|a| &a.id == id),
            None => self.contact.agent.as_ref(),
        }
    }
}
