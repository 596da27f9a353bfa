//! What a rule returns, as the host holds it: the same types as the SDK's
//! `verdict.rs` (plugins/sdk/src/verdict.rs), converted from the WIT at the
//! boundary.

use serde::{Deserialize, Serialize};

/// A rule's judgement of one session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    NotApplicable,
}

/// Evidence a reviewer can jump to in the recording or transcript.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u32>,
}
