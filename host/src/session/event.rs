use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A business event around the session: a ticket created, reopened or
/// chased, a remark, a compensation, an order. Kinds are free strings so a
/// team's own systems need no contract change.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub kind: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}
