use std::fmt;

use sha2::{Digest, Sha256};

/// How a record's identity for dedup is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FingerprintMode {
    /// SHA-256 of the record's bytes as delivered (what a Firehose
    /// transformation Lambda hashes). Array elements count as delivered in
    /// their `JSON.stringify` form.
    Raw,
    /// SHA-256 of the RFC 8785 (JCS) form: key order, whitespace and number
    /// spelling do not matter.
    Canonical,
    /// SHA-256 of `ContactId` followed by `LastUpdateTimestamp`: one identity
    /// per version of a contact, whatever else differs.
    Key,
}

/// A SHA-256 digest identifying one record for dedup.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint(Sha256::digest(bytes).into())
    }

    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Fingerprint(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}
