//! The embedded store's claims, held in memory and logged per batch.
//!
//! A B-tree row per fingerprint cost two tree inserts per unique record (the
//! claim and the contact's latest version), about 40% of ingest. Instead,
//! every claim and version lives in a hash map, and each batch's changes are
//! appended to the store as one log row, keyed by the batch's fencing token,
//! in the same durable transaction as the batch entry. Opening the store
//! replays the rows in token order; a row whose entries have all expired is
//! deleted by a sweep. The map costs about 100 bytes per remembered record
//! (a 24-hour window of one million records: about 100 MB).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use super::Millis;
use crate::ctr::Fingerprint;

/// A claim: which batch owns the fingerprint, where its record goes, where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClaimEntry {
    pub token: u64,
    pub expires: Millis,
    pub day: i32,
    pub input: u32,
    pub position: u64,
    pub update: bool,
}

impl ClaimEntry {
    pub const LEN: usize = 33;

    pub fn standing(&self) -> super::protocol::StandingClaim {
        super::protocol::StandingClaim { token: self.token, day: self.day, update: self.update, expires: self.expires }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.token.to_le_bytes());
        out.extend_from_slice(&self.expires.to_le_bytes());
        out.extend_from_slice(&self.day.to_le_bytes());
        out.extend_from_slice(&self.input.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        out.push(self.update as u8);
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        Some(ClaimEntry {
            token: u64_at(0),
            expires: u64_at(8) as i64,
            day: i32::from_le_bytes(bytes[16..20].try_into().unwrap()),
            input: u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
            position: u64_at(24),
            update: bytes[32] != 0,
        })
    }
}

/// The latest `LastUpdateTimestamp` claimed for a contact, and when that
/// knowledge expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LatestVersion {
    pub version: Millis,
    pub expires: Millis,
}

/// Every unexpired claim and latest version, plus the expiry of each log row
/// so a sweep knows which rows to delete.
#[derive(Default)]
pub(super) struct ClaimIndex {
    /// Keyed by SHA-256 output, which no input can steer into collisions, so
    /// the fast unkeyed Fx hash is safe here (SipHash was ~2% of key-mode
    /// ingest). Contact ids come from the input: they keep the keyed hash.
    claims: FxHashMap<Fingerprint, ClaimEntry>,
    latest: HashMap<Box<str>, LatestVersion>,
    /// Log row (token) → the latest expiry of its entries.
    rows: BTreeMap<u64, Millis>,
}

/// One batch's changes to the index: what it logs if it commits, and what it
/// undoes if it does not, so memory never runs ahead of the file.
///
/// Contact ids are borrowed from the batch being claimed (copied only when
/// replaying a store's rows), so a batch costs no allocation per contact
/// beyond the index's own entry.
#[derive(Default)]
pub(super) struct IndexChanges<'a> {
    claims: Vec<(Fingerprint, ClaimEntry)>,
    versions: Vec<(Cow<'a, str>, LatestVersion)>,
    undo_claims: Vec<(Fingerprint, Option<ClaimEntry>)>,
    undo_versions: Vec<(Cow<'a, str>, Option<LatestVersion>)>,
}

impl IndexChanges<'_> {
    /// Logs a claim as it stands after the batch.
    pub fn log_claim(&mut self, fingerprint: Fingerprint, entry: ClaimEntry) {
        self.claims.push((fingerprint, entry));
    }

    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.versions.is_empty()
    }

    /// The log row: the latest expiry, the claim count, the claims, then the
    /// versions (length-prefixed contact id, version, expiry).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.claims.len() * (32 + ClaimEntry::LEN) + self.versions.len() * 64);
        out.extend_from_slice(&self.expires().to_le_bytes());
        out.extend_from_slice(&(self.claims.len() as u32).to_le_bytes());
        for (fingerprint, entry) in &self.claims {
            out.extend_from_slice(&fingerprint.0);
            entry.encode_into(&mut out);
        }
        for (contact, latest) in &self.versions {
            out.extend_from_slice(&(contact.len() as u32).to_le_bytes());
            out.extend_from_slice(contact.as_bytes());
            out.extend_from_slice(&latest.version.to_le_bytes());
            out.extend_from_slice(&latest.expires.to_le_bytes());
        }
        out
    }

    pub fn expires(&self) -> Millis {
        let claims = self.claims.iter().map(|(_, entry)| entry.expires);
        let versions = self.versions.iter().map(|(_, latest)| latest.expires);
        claims.chain(versions).max().unwrap_or(Millis::MIN)
    }
}

/// A log row that cannot be read back: the file was damaged or written by
/// something else.
#[derive(Debug, thiserror::Error)]
#[error("claim log row {token} is damaged at byte {offset}")]
pub(super) struct DamagedRow {
    pub token: u64,
    pub offset: usize,
}

impl ClaimIndex {
    /// Replays one log row over what came before it (rows in token order).
    pub fn replay(&mut self, token: u64, row: &[u8]) -> Result<(), DamagedRow> {
        let damaged = |offset| DamagedRow { token, offset };
        let mut reader = RowReader { bytes: row, offset: 0 };
        let expires = reader.i64().ok_or(damaged(reader.offset))?;
        let claims = reader.u32().ok_or(damaged(reader.offset))?;
        for _ in 0..claims {
            let fingerprint = reader.take(32).ok_or(damaged(reader.offset))?;
            let entry = reader.take(ClaimEntry::LEN).and_then(ClaimEntry::decode).ok_or(damaged(reader.offset))?;
            self.claims.insert(Fingerprint(fingerprint.try_into().unwrap()), entry);
        }
        while reader.offset < row.len() {
            let len = reader.u32().ok_or(damaged(reader.offset))? as usize;
            let contact = reader.take(len).and_then(|b| std::str::from_utf8(b).ok()).ok_or(damaged(reader.offset))?;
            let version = reader.i64().ok_or(damaged(reader.offset))?;
            let expires = reader.i64().ok_or(damaged(reader.offset))?;
            self.latest.insert(contact.into(), LatestVersion { version, expires });
        }
        self.rows.insert(token, expires);
        Ok(())
    }

    /// Records that a committed batch's row exists (it was just written).
    pub fn add_row(&mut self, token: u64, expires: Millis) {
        self.rows.insert(token, expires);
    }

    /// Claims `entry` for `fingerprint` and returns the claim it replaced.
    pub fn claim(
        &mut self,
        changes: &mut IndexChanges,
        fingerprint: Fingerprint,
        entry: ClaimEntry,
    ) -> Option<ClaimEntry> {
        let replaced = self.claims.insert(fingerprint, entry);
        changes.undo_claims.push((fingerprint, replaced));
        replaced
    }

    /// Puts back a claim that [`claim`](Self::claim) should not have replaced.
    pub fn restore(&mut self, fingerprint: Fingerprint, entry: ClaimEntry) {
        self.claims.insert(fingerprint, entry);
    }

    /// Records `version` as the contact's latest when it is newer or the
    /// entry is absent or expired, and returns the unexpired latest version
    /// known before.
    pub fn note_version<'a>(
        &mut self,
        changes: &mut IndexChanges<'a>,
        contact_id: Cow<'a, str>,
        version: Millis,
        expires: Millis,
        now: Millis,
    ) -> Option<Millis> {
        let noted = LatestVersion { version, expires };
        let previous = match self.latest.get_mut(&*contact_id) {
            Some(latest) => {
                let previous = *latest;
                let known = (previous.expires > now).then_some(previous.version);
                if known.is_some_and(|seen| version <= seen) {
                    return known;
                }
                *latest = noted;
                Some(previous)
            }
            None => {
                self.latest.insert((*contact_id).into(), noted);
                None
            }
        };
        changes.undo_versions.push((contact_id.clone(), previous));
        changes.versions.push((contact_id, noted));
        previous.filter(|p| p.expires > now).map(|p| p.version)
    }

    /// Takes back a batch that did not commit.
    pub fn undo(&mut self, changes: IndexChanges) {
        for (fingerprint, previous) in changes.undo_claims.into_iter().rev() {
            match previous {
                Some(entry) => self.claims.insert(fingerprint, entry),
                None => self.claims.remove(&fingerprint),
            };
        }
        for (contact, previous) in changes.undo_versions.into_iter().rev() {
            match previous {
                Some(latest) => self.latest.insert(contact.into(), latest),
                None => self.latest.remove(&*contact),
            };
        }
    }

    /// Log rows whose every entry has expired at `now`.
    pub fn expired_rows(&self, now: Millis) -> Vec<u64> {
        self.rows.iter().filter(|(_, expires)| **expires <= now).map(|(token, _)| *token).collect()
    }

    /// Forgets expired entries and the given rows (deleted from the file in
    /// the same transaction); returns how many claims were forgotten.
    pub fn sweep(&mut self, now: Millis, rows: &[u64]) -> u64 {
        let before = self.claims.len();
        self.claims.retain(|_, entry| entry.expires > now);
        self.latest.retain(|_, latest| latest.expires > now);
        for token in rows {
            self.rows.remove(token);
        }
        (before - self.claims.len()) as u64
    }
}

struct RowReader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> RowReader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.offset..self.offset.checked_add(len)?)?;
        self.offset += len;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }

    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: u64, expires: Millis) -> ClaimEntry {
        ClaimEntry { token, expires, day: 19000, input: 0, position: 7, update: false }
    }

    #[test]
    fn a_logged_batch_replays_to_the_same_index() {
        let mut index = ClaimIndex::default();
        let mut changes = IndexChanges::default();
        assert_eq!(index.note_version(&mut changes, "a".into(), 10, 500, 0), None);
        assert_eq!(index.note_version(&mut changes, "a".into(), 20, 500, 0), Some(10));
        assert_eq!(
            index.note_version(&mut changes, "a".into(), 15, 500, 0),
            Some(20),
            "an older version changes nothing"
        );
        index.claim(&mut changes, Fingerprint([1; 32]), entry(1, 500));
        changes.log_claim(Fingerprint([1; 32]), entry(1, 500));
        let row = changes.encode();

        let mut replayed = ClaimIndex::default();
        replayed.replay(1, &row).unwrap();
        assert_eq!(replayed.claims, index.claims);
        assert_eq!(replayed.latest, index.latest);
        assert_eq!(replayed.latest["a"].version, 20);
        assert_eq!(replayed.expired_rows(499), Vec::<u64>::new());
        assert_eq!(replayed.expired_rows(500), vec![1]);
        assert!(matches!(replayed.replay(2, &row[..row.len() - 3]), Err(DamagedRow { token: 2, .. })));
    }

    #[test]
    fn undo_takes_a_batch_back() {
        let mut index = ClaimIndex::default();
        let mut first = IndexChanges::default();
        index.claim(&mut first, Fingerprint([1; 32]), entry(1, 500));
        index.note_version(&mut first, "a".into(), 10, 500, 0);

        let mut second = IndexChanges::default();
        index.claim(&mut second, Fingerprint([1; 32]), entry(2, 600));
        index.claim(&mut second, Fingerprint([2; 32]), entry(2, 600));
        index.note_version(&mut second, "a".into(), 20, 600, 0);
        index.note_version(&mut second, "b".into(), 20, 600, 0);
        index.undo(second);
        assert_eq!(index.claims.len(), 1);
        assert_eq!(index.claims[&Fingerprint([1; 32])].token, 1);
        assert_eq!(index.latest.len(), 1);
        assert_eq!(index.latest["a"], LatestVersion { version: 10, expires: 500 });
    }

    #[test]
    fn an_expired_version_is_not_known() {
        let mut index = ClaimIndex::default();
        let mut changes = IndexChanges::default();
        index.note_version(&mut changes, "a".into(), 10, 500, 0);
        assert_eq!(
            index.note_version(&mut changes, "a".into(), 5, 900, 600),
            None,
            "expired: the older version is new again"
        );
        assert_eq!(index.latest["a"], LatestVersion { version: 5, expires: 900 });
    }
}
