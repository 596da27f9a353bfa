use serde::{Deserialize, Serialize};

use super::Role;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub begin_ms: u32,
    pub end_ms: u32,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Interruption {
    /// The role that interrupted.
    pub by: Role,
    pub begin_ms: u32,
    pub end_ms: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleFigures {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_time_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::document::f32_option")]
    pub overall_sentiment: Option<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "super::document::f32_vec")]
    pub sentiment_by_quarter: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_response_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_response_ms: Option<u32>,
}

/// Conversation characteristics as Contact Lens reports them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Characteristics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_conversation_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_time_ms: Option<u32>,
    #[serde(default)]
    pub non_talk: Vec<Span>,
    #[serde(default)]
    pub interruptions: Vec<Interruption>,
    #[serde(default)]
    pub roles: Vec<RoleFigures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_greeting_ms: Option<u32>,
    #[serde(default)]
    pub categories: Vec<String>,
}
