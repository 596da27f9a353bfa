//! Test data helpers shared by the ingestion and shared-store tests.

use std::path::{Path, PathBuf};

/// A small deterministic generator (no dependency needed for test data).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every file below `dir`, sorted; none when `dir` does not exist (yet).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A contact record of version `version` (ContactId and timestamps derived
/// from `contact`, five days, a third of them chats), about 700 bytes.
pub fn contact_record(contact: u64, version: u64, rng: &mut Lcg) -> String {
    let day = 1 + contact % 5;
    serde_json::json!({
        "AWSContactTraceRecordFormatVersion": "2017-03-10",
        "ContactId": format!("{contact:08x}-0000-4000-8000-{contact:012x}"),
        "Channel": if contact.is_multiple_of(3) { "CHAT" } else { "VOICE" },
        "InitiationMethod": "INBOUND",
        "InitiationTimestamp": format!("2024-03-0{day}T10:{:02}:00Z", contact % 60),
        "LastUpdateTimestamp": format!("2024-03-0{day}T11:{:02}:{:02}Z", contact % 60, version),
        "Queue": { "Name": "Support", "Duration": rng.below(600) },
        "Agent": { "ConnectedToAgentTimestamp": "2024-03-01T10:05:00Z", "AgentInteractionDuration": rng.below(900), "CustomerHoldDuration": 0, "AfterContactWorkDuration": 30 },
        "Attributes": { "version": version.to_string(), "note": "x".repeat(200) },
    })
    .to_string()
}
