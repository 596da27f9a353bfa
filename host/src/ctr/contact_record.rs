use std::borrow::Cow;

use chrono::DateTime;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::canonical::{already_canonical, CanonicalFields};
use super::{write_js_json, Fingerprint, FingerprintMode, UtcDay};
use crate::sources::RecordBytes;

/// How a record reached the host, which decides what "as delivered" means
/// for a `raw` fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// One line of NDJSON, without its line ending.
    Line,
    /// One element of a JSON array: delivered as its `JSON.stringify` form,
    /// which is what the reference pipeline put on the stream.
    ArrayElement,
    /// A whole file or stdin holding one object: its bytes without the
    /// surrounding whitespace.
    Document,
    /// The base64-decoded `data` of one Firehose record, or the data of one
    /// Kinesis Data Streams record: byte for byte.
    FirehoseRecord,
}

/// A record that passed decoding: what dedup, partitioning and the sink need.
#[derive(Debug, Clone)]
pub struct ContactRecord {
    pub contact_id: String,
    /// `LastUpdateTimestamp` in milliseconds since the epoch, for telling an
    /// update from an older version. (The `key` fingerprint, computed during
    /// decoding, hashes the text as written.)
    pub last_update_millis: Option<i64>,
    pub day: UtcDay,
    pub fingerprint: Fingerprint,
    /// The record on one compact line, without the newline: the bytes as
    /// delivered when they already are one line, `JSON.stringify` otherwise.
    pub line: RecordBytes,
}

/// Why a record cannot be used. Every one of these goes to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid UTF-8 at byte {valid_up_to}")]
    InvalidUtf8 { valid_up_to: usize },
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("not a JSON object but {0}")]
    NotAnObject(&'static str),
    #[error("{0}")]
    MissingContactId(&'static str),
    #[error("bad base64 in Firehose record data: {0}")]
    BadBase64(String),
    #[error("record of {size} bytes is over the limit of {max} (--max-record-bytes)")]
    Oversized { size: u64, max: u64 },
}

impl DecodeError {
    /// A stable machine-readable reason for the dead-letter file.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::InvalidUtf8 { .. } => "invalid-utf8",
            DecodeError::MalformedJson(_) => "malformed-json",
            DecodeError::NotAnObject(_) => "not-an-object",
            DecodeError::MissingContactId(_) => "missing-contact-id",
            DecodeError::BadBase64(_) => "bad-base64",
            DecodeError::Oversized { .. } => "oversized",
        }
    }
}

/// Decodes and fingerprints records in one fingerprint mode.
#[derive(Debug, Clone, Copy)]
pub struct RecordDecoder {
    pub mode: FingerprintMode,
}

/// The fields read from every record. The rest of the record is skipped by
/// the parser without being built, which keeps `raw` and `key` modes cheap.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "ContactId", borrow, default)]
    contact_id: Option<&'a RawValue>,
    #[serde(rename = "LastUpdateTimestamp", borrow, default)]
    last_update_timestamp: Option<&'a RawValue>,
    #[serde(rename = "InitiationTimestamp", borrow, default)]
    initiation_timestamp: Option<&'a RawValue>,
}

impl RecordDecoder {
    pub fn new(mode: FingerprintMode) -> Self {
        RecordDecoder { mode }
    }

    pub fn decode(&self, bytes: &[u8], delivery: Delivery) -> Result<ContactRecord, DecodeError> {
        let (mut record, line) = self.decode_parts(bytes, delivery)?;
        record.line = match line {
            Line::Within(range) => bytes[range].to_vec().into(),
            Line::Built(line) => line.into(),
        };
        Ok(record)
    }

    /// [`decode`](Self::decode) for bytes the caller gives up: when they
    /// already are the record's line (the usual NDJSON case) they become it
    /// without a copy. A record that cannot be used comes back with its bytes,
    /// for the dead letters.
    pub fn decode_owned(
        &self,
        bytes: RecordBytes,
        delivery: Delivery,
    ) -> Result<ContactRecord, (DecodeError, RecordBytes)> {
        match self.decode_parts(&bytes, delivery) {
            Ok((mut record, Line::Within(range))) => {
                record.line = bytes.narrow(range);
                Ok(record)
            }
            Ok((mut record, Line::Built(line))) => {
                record.line = line.into();
                Ok(record)
            }
            Err(error) => Err((error, bytes)),
        }
    }

    /// Everything but the line, and where the line is.
    fn decode_parts(&self, bytes: &[u8], delivery: Delivery) -> Result<(ContactRecord, Line), DecodeError> {
        let text =
            std::str::from_utf8(bytes).map_err(|err| DecodeError::InvalidUtf8 { valid_up_to: err.valid_up_to() })?;
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let start = trimmed.as_ptr() as usize - text.as_ptr() as usize;
        let within = Line::Within(start..start + trimmed.len());
        match trimmed.as_bytes().first() {
            Some(b'{') => {}
            Some(_) => return Err(not_an_object(trimmed)),
            None => return Err(DecodeError::MalformedJson("empty record".into())),
        }
        // A whole document is hashed without its surrounding whitespace; lines
        // and Firehose records arrive already cut, and are hashed untouched.
        let delivered = if delivery == Delivery::Document { trimmed.as_bytes() } else { bytes };
        // A record in its JCS form (as Connect writes them) is read by the
        // canonical pass in every mode: it proves the text valid and captures
        // the fields at about half the cost of serde_json skipping the rest.
        // JSON.stringify may reorder array-index keys of an array element, so
        // only other deliveries can be their own canonical line.
        if delivery != Delivery::ArrayElement {
            if let Some(record) =
                already_canonical(trimmed).and_then(|fields| self.recognised(fields, trimmed, delivered))
            {
                return Ok((record, within));
            }
        }
        let needs_value = delivery == Delivery::ArrayElement
            || self.mode == FingerprintMode::Canonical
            || memchr::memchr2(b'\n', b'\r', trimmed.as_bytes()).is_some();
        if needs_value {
            self.decode_value(trimmed, delivered, delivery, within)
        } else {
            Ok((self.decode_fields(trimmed, delivered)?, within))
        }
    }

    /// A record whose text is its own JCS form, so its bytes are also its
    /// canonical bytes. `None` sends records without a usable ContactId to
    /// the slow path, which says what is wrong with them.
    fn recognised(&self, fields: CanonicalFields<'_>, text: &str, delivered: &[u8]) -> Option<ContactRecord> {
        let contact_id = fields.contact_id.filter(|id| !id.is_empty())?;
        let fingerprint = match self.mode {
            FingerprintMode::Canonical => Fingerprint::of(text.as_bytes()),
            FingerprintMode::Raw => Fingerprint::of(delivered),
            FingerprintMode::Key => key_fingerprint(&contact_id, fields.last_update_timestamp.as_deref()),
        };
        Some(build(
            contact_id,
            fields.last_update_timestamp.as_deref(),
            fields.initiation_timestamp.as_deref(),
            fingerprint,
        ))
    }

    /// A one-line record not in its JCS form (whitespace, unsorted keys, a
    /// float) in raw or key mode: serde_json reads the three fields and skips
    /// the rest, as the fingerprint does not need the parsed tree.
    fn decode_fields(&self, trimmed: &str, delivered: &[u8]) -> Result<ContactRecord, DecodeError> {
        let fields: Fields = serde_json::from_str(trimmed).map_err(malformed)?;
        let contact_id =
            raw_string(fields.contact_id, "ContactId")?.ok_or(DecodeError::MissingContactId("no ContactId"))?;
        let last_update = raw_string(fields.last_update_timestamp, "LastUpdateTimestamp")?;
        let initiation = raw_string(fields.initiation_timestamp, "InitiationTimestamp")?;
        let fingerprint = match self.mode {
            FingerprintMode::Raw => Fingerprint::of(delivered),
            FingerprintMode::Key => key_fingerprint(&contact_id, last_update.as_deref()),
            FingerprintMode::Canonical => unreachable!("canonical mode always parses the full value"),
        };
        Ok(build(contact_id, last_update.as_deref(), initiation.as_deref(), fingerprint))
    }

    fn decode_value(
        &self,
        trimmed: &str,
        delivered: &[u8],
        delivery: Delivery,
        within: Line,
    ) -> Result<(ContactRecord, Line), DecodeError> {
        let value: Value = serde_json::from_str(trimmed).map_err(malformed)?;
        let Value::Object(map) = &value else {
            return Err(DecodeError::NotAnObject(kind_of(&value)));
        };
        let contact_id = match map.get("ContactId") {
            None | Some(Value::Null) => return Err(DecodeError::MissingContactId("no ContactId")),
            Some(Value::String(id)) if id.is_empty() => {
                return Err(DecodeError::MissingContactId("ContactId is empty"))
            }
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(DecodeError::MissingContactId("ContactId is not a string")),
        };
        let text_field = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_owned);
        let last_update = text_field("LastUpdateTimestamp");
        let initiation = text_field("InitiationTimestamp");

        let single_line = delivery != Delivery::ArrayElement && !trimmed.contains(['\n', '\r']);
        let line = if single_line {
            within
        } else {
            let mut out = Vec::with_capacity(trimmed.len());
            write_js_json(&value, &mut out);
            Line::Built(out)
        };
        let fingerprint = match (&self.mode, &line) {
            (FingerprintMode::Raw, Line::Built(line)) if delivery == Delivery::ArrayElement => Fingerprint::of(line),
            (FingerprintMode::Raw, _) => Fingerprint::of(delivered),
            (FingerprintMode::Key, _) => key_fingerprint(&contact_id, last_update.as_deref()),
            (FingerprintMode::Canonical, _) => {
                let canonical = serde_json_canonicalizer::to_vec(&value)
                    .map_err(|err| DecodeError::MalformedJson(format!("cannot canonicalize: {err}")))?;
                Fingerprint::of(&canonical)
            }
        };
        Ok((build(contact_id, last_update.as_deref(), initiation.as_deref(), fingerprint), line))
    }
}

/// Where a record's line comes from: a range of the delivered bytes, or
/// written out (`JSON.stringify` of an array element or a multi-line document).
enum Line {
    Within(std::ops::Range<usize>),
    Built(Vec<u8>),
}

fn build(
    contact_id: impl Into<String>,
    last_update: Option<&str>,
    initiation: Option<&str>,
    fingerprint: Fingerprint,
) -> ContactRecord {
    let last_update_millis = last_update.and_then(parse_millis);
    let day = initiation.map(UtcDay::from_timestamp).unwrap_or(UtcDay::UNKNOWN);
    // The caller fills in the line.
    let line = Vec::new().into();
    ContactRecord { contact_id: contact_id.into(), last_update_millis, day, fingerprint, line }
}

pub(crate) fn parse_millis(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|instant| instant.timestamp_millis())
}

fn key_fingerprint(contact_id: &str, last_update: Option<&str>) -> Fingerprint {
    Fingerprint::of_parts(&[contact_id.as_bytes(), last_update.unwrap_or("").as_bytes()])
}

fn raw_string<'a>(raw: Option<&'a RawValue>, name: &'static str) -> Result<Option<Cow<'a, str>>, DecodeError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.get().as_bytes().first() {
        Some(b'"') => {
            let text: Cow<'a, str> = serde_json::from_str(raw.get()).map_err(malformed)?;
            if name == "ContactId" && text.is_empty() {
                return Err(DecodeError::MissingContactId("ContactId is empty"));
            }
            Ok(Some(text))
        }
        Some(b'n') => Ok(None),
        _ if name == "ContactId" => Err(DecodeError::MissingContactId("ContactId is not a string")),
        _ => Ok(None),
    }
}

fn malformed(err: serde_json::Error) -> DecodeError {
    DecodeError::MalformedJson(err.to_string())
}

fn not_an_object(text: &str) -> DecodeError {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => DecodeError::NotAnObject(kind_of(&value)),
        Err(err) => malformed(err),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"ContactId":"c-1","LastUpdateTimestamp":"2022-01-05T17:48:35Z","InitiationTimestamp":"2022-01-05T17:12:59Z","Queue":{"Duration":3}}"#;

    #[test]
    fn raw_lines_hash_the_delivered_bytes() {
        let record = RecordDecoder::new(FingerprintMode::Raw).decode(RECORD.as_bytes(), Delivery::Line).unwrap();
        assert_eq!(record.fingerprint, Fingerprint::of(RECORD.as_bytes()));
        assert_eq!(record.contact_id, "c-1");
        assert_eq!(record.day.hive_path(), "year=2022/month=01/day=05");
        assert_eq!(&*record.line, RECORD.as_bytes());
    }

    #[test]
    fn canonical_ignores_key_order_and_whitespace() {
        let decoder = RecordDecoder::new(FingerprintMode::Canonical);
        let reordered = r#"{ "Queue": {"Duration": 3.0},
            "InitiationTimestamp": "2022-01-05T17:12:59Z", "LastUpdateTimestamp":"2022-01-05T17:48:35Z", "ContactId": "c-1" }"#;
        let a = decoder.decode(RECORD.as_bytes(), Delivery::Line).unwrap();
        let b = decoder.decode(reordered.as_bytes(), Delivery::Document).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert!(!b.line.contains(&b'\n'));
    }

    #[test]
    fn key_mode_hashes_contact_and_version() {
        let record = RecordDecoder::new(FingerprintMode::Key).decode(RECORD.as_bytes(), Delivery::Line).unwrap();
        assert_eq!(record.fingerprint, Fingerprint::of(b"c-12022-01-05T17:48:35Z"));
    }

    /// Records in their JCS form skip serde_json in every mode: they must
    /// come out exactly as serde_json's reading of them would.
    #[test]
    fn the_canonical_pass_reads_records_as_serde_json_does() {
        let records = [
            r#"{"ContactId":"c-1","InitiationTimestamp":"2022-01-05T17:12:59Z","LastUpdateTimestamp":"2022-01-05T17:48:35Z","Queue":{"Duration":3}}"#,
            r#"{"ContactId":"c-\"2\"","InitiationTimestamp":"2022-01-06T00:00:00+09:00","LastUpdateTimestamp":null}"#,
            r#"{"ContactId":"c-3","InitiationTimestamp":17,"LastUpdateTimestamp":"2022-01-05T17:48:35.120Z","Z":[true,{}]}"#,
        ];
        for mode in [FingerprintMode::Raw, FingerprintMode::Key] {
            let decoder = RecordDecoder::new(mode);
            for text in records {
                assert!(already_canonical(text).is_some(), "{text} takes the canonical pass");
                let fast = decoder.decode(text.as_bytes(), Delivery::Line).unwrap();
                let slow = decoder.decode_fields(text, text.as_bytes()).unwrap();
                assert_eq!(
                    (&fast.contact_id, fast.last_update_millis, fast.day, fast.fingerprint),
                    (&slow.contact_id, slow.last_update_millis, slow.day, slow.fingerprint),
                    "{mode:?} {text}"
                );
            }
        }
    }

    #[test]
    fn unusable_records_say_why() {
        let decoder = RecordDecoder::new(FingerprintMode::Raw);
        let code = |bytes: &[u8]| decoder.decode(bytes, Delivery::Line).unwrap_err().code();
        assert_eq!(code(b"{\"ContactId\": \"x\""), "malformed-json");
        assert_eq!(code(b"{\"ContactId\": \"\xff\"}"), "invalid-utf8");
        assert_eq!(code(b"[1,2]"), "not-an-object");
        assert_eq!(code(b"{\"Channel\":\"VOICE\"}"), "missing-contact-id");
        assert_eq!(code(b"{\"ContactId\":7}"), "missing-contact-id");
        assert_eq!(code(b"   "), "malformed-json");
    }
}
