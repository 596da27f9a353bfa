//! Recognising a record that is already in its RFC 8785 (JCS) form.
//!
//! The `canonical` fingerprint is the SHA-256 of a record's JCS form, which
//! `serde_json_canonicalizer` produces from a parsed tree: about 20 µs to
//! parse a 3 KB CTR into a tree and 40–60 µs to serialise it again. Amazon
//! Connect writes CTRs with sorted keys, no whitespace and integer numbers,
//! which *is* their JCS form, so for most records the delivered bytes are
//! already the canonical bytes. Proving that takes one borrowing pass over
//! the text (a few µs) and no tree; anything the pass cannot prove (a float,
//! an unsorted key, whitespace, an unusual escape) goes to the crate.
//!
//! The pass never decides what the canonical form *is*; it only answers
//! "the text equals its canonical form" or "cannot tell". The unit tests
//! check both answers against the crate on generated documents.
//!
//! How the proof works: every token of a JSON text is at least as long as
//! its canonical spelling (whitespace only adds; an escape is never shorter
//! than the canonical spelling of its character; integers are checked to
//! round-trip), so when the canonical lengths of all tokens add up to the
//! length of the text, every token is spelled canonically and there is no
//! whitespace. The one same-length alternative spelling, `\u001F` against
//! `\u001f` for a control character, is excluded by sending any string with
//! such a character to the crate.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The top-level fields the pipeline needs, captured during the pass.
#[derive(Debug, Default)]
pub(super) struct CanonicalFields<'a> {
    pub contact_id: Option<Cow<'a, str>>,
    pub last_update_timestamp: Option<Cow<'a, str>>,
    pub initiation_timestamp: Option<Cow<'a, str>>,
}

/// `Some(fields)` when `text` (a JSON object) is exactly its own JCS form;
/// `None` when it is not, when the pass cannot prove it, or when the text is
/// not valid JSON (the caller's slow path reports that properly).
pub(super) fn already_canonical(text: &str) -> Option<CanonicalFields<'_>> {
    let mut pass = Pass { length: 0, depth: 0, fields: CanonicalFields::default() };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    ValueSeed { pass: &mut pass }.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    (pass.length == text.len()).then_some(pass.fields)
}

/// Largest integer a JCS implementation (IEEE-754 doubles) spells digit for digit.
const EXACT_INTEGER: u64 = 1 << 53;

struct Pass<'a> {
    /// The canonical length of everything seen so far.
    length: usize,
    depth: u32,
    fields: CanonicalFields<'a>,
}

/// Which top-level field, if any, the value being read belongs to.
#[derive(Clone, Copy)]
enum Capture {
    None,
    ContactId,
    LastUpdate,
    Initiation,
}

struct ValueSeed<'p, 'a> {
    pass: &'p mut Pass<'a>,
}

struct FieldSeed<'p, 'a> {
    pass: &'p mut Pass<'a>,
    capture: Capture,
}

fn cannot_tell<E: de::Error>() -> E {
    E::custom("not provably canonical")
}

impl<'de, 'p> DeserializeSeed<'de> for ValueSeed<'p, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(FieldSeed { pass: self.pass, capture: Capture::None })
    }
}

impl<'de, 'p> DeserializeSeed<'de> for FieldSeed<'p, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'p> Visitor<'de> for FieldSeed<'p, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.pass.length += if value { 4 } else { 5 };
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.pass.length += 4;
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        if value > EXACT_INTEGER {
            return Err(cannot_tell());
        }
        self.pass.length += digits(value);
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        if value.unsigned_abs() > EXACT_INTEGER {
            return Err(cannot_tell());
        }
        self.pass.length += digits(value.unsigned_abs()) + usize::from(value < 0);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        // JCS spells doubles the way ECMAScript does; leave that to the crate.
        Err(cannot_tell())
    }

    /// A string without escapes in the text: canonical as it stands (JSON
    /// forbids raw control characters, the only ones JCS would escape
    /// besides `"` and `\`, which cannot appear unescaped either).
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<(), E> {
        self.pass.length += text.len() + 2;
        self.capture(Cow::Borrowed(text));
        Ok(())
    }

    /// A string that had escapes in the text.
    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.pass.length += escaped_length(text).ok_or_else(cannot_tell)? + 2;
        self.capture(Cow::Owned(text.to_owned()));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.pass.depth += 1;
        let mut count = 0usize;
        while seq.next_element_seed(ValueSeed { pass: self.pass })?.is_some() {
            count += 1;
        }
        self.pass.depth -= 1;
        self.pass.length += 2 + count.saturating_sub(1);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let top_level = self.pass.depth == 0;
        self.pass.depth += 1;
        let mut previous: Option<Cow<'de, str>> = None;
        let mut count = 0usize;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // JCS orders members by the UTF-16 code units of their names;
            // equal names (duplicates) have no canonical form either.
            if let Some(previous) = &previous {
                if utf16_cmp(previous, &key) != std::cmp::Ordering::Less {
                    return Err(cannot_tell());
                }
            }
            // A name borrowed from the text had no escapes there, so it has
            // no character JCS escapes either (JSON forbids them raw).
            let name_length = match &key {
                Cow::Borrowed(name) => name.len(),
                Cow::Owned(name) => escaped_length(name).ok_or_else(cannot_tell)?,
            };
            self.pass.length += name_length + 3;
            let capture = match &*key {
                "ContactId" if top_level => Capture::ContactId,
                "LastUpdateTimestamp" if top_level => Capture::LastUpdate,
                "InitiationTimestamp" if top_level => Capture::Initiation,
                _ => Capture::None,
            };
            map.next_value_seed(FieldSeed { pass: self.pass, capture })?;
            previous = Some(key);
            count += 1;
        }
        self.pass.depth -= 1;
        self.pass.length += 2 + count.saturating_sub(1);
        Ok(())
    }
}

/// A member name, borrowed from the text unless it had escapes (serde's own
/// `Cow<str>` always allocates).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(text.to_owned()))
    }
}

impl<'p, 'a> FieldSeed<'p, 'a> {
    fn capture(self, text: Cow<'a, str>) {
        let slot = match self.capture {
            Capture::None => return,
            Capture::ContactId => &mut self.pass.fields.contact_id,
            Capture::LastUpdate => &mut self.pass.fields.last_update_timestamp,
            Capture::Initiation => &mut self.pass.fields.initiation_timestamp,
        };
        *slot = Some(text);
    }
}

fn digits(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// The length of `text` as JCS writes it (without quotes), or `None` for a
/// control character JCS writes as `\u00xx`, whose other spelling (upper-case
/// hex) has the same length and so would escape the length proof.
fn escaped_length(text: &str) -> Option<usize> {
    let mut length = text.len();
    for byte in text.bytes() {
        match byte {
            b'"' | b'\\' | 0x08 | b'\t' | b'\n' | 0x0c | b'\r' => length += 1,
            0x00..=0x1f => return None,
            _ => {}
        }
    }
    Some(length)
}

/// Compares two strings by UTF-16 code units. UTF-8 byte order is code point
/// order, which agrees with UTF-16 order except between U+E000..U+FFFF and
/// the supplementary planes; only when the first difference involves such a
/// character (lead byte 0xEE or above) is the slow comparison needed.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let first_difference = a.bytes().zip(b.bytes()).find(|(x, y)| x != y);
    match first_difference {
        Some((x, y)) if x >= 0xee || y >= 0xee => a.encode_utf16().cmp(b.encode_utf16()),
        Some((x, y)) => x.cmp(&y),
        None => a.len().cmp(&b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn jcs(text: &str) -> String {
        let value: Value = serde_json::from_str(text).unwrap();
        String::from_utf8(serde_json_canonicalizer::to_vec(&value).unwrap()).unwrap()
    }

    #[test]
    fn connect_shaped_records_are_recognised() {
        let text = r#"{"Agent":{"ARN":"arn:x","NumberOfHolds":0},"ContactId":"c-1","InitiationTimestamp":"2022-01-05T17:12:59Z","LastUpdateTimestamp":"2022-01-05T17:48:35Z","Queue":null,"Recordings":[{"Status":"AVAILABLE"},{"Status":"DELETED"}],"Score":-3,"Voice":true}"#;
        assert_eq!(jcs(text), text);
        let fields = already_canonical(text).expect("canonical");
        assert_eq!(fields.contact_id.as_deref(), Some("c-1"));
        assert_eq!(fields.last_update_timestamp.as_deref(), Some("2022-01-05T17:48:35Z"));
        assert_eq!(fields.initiation_timestamp.as_deref(), Some("2022-01-05T17:12:59Z"));
    }

    #[test]
    fn anything_else_is_left_to_the_crate() {
        for text in [
            r#"{"b":1,"a":2}"#,                 // unsorted
            r#"{"a":1,"a":2}"#,                 // duplicate name
            r#"{"a": 1}"#,                      // whitespace
            r#"{"a":1.5}"#,                     // a double
            r#"{"a":1e2}"#,                     // exponent
            r#"{"a":-0}"#,                      // negative zero
            r#"{"a":9007199254740993}"#,        // beyond 2^53
            r#"{"a":"\u0041"}"#,                // needless escape
            r#"{"a":"\/"}"#,                    // needless escape
            r#"{"a":"\u000a"}"#,                // long form of \n
            r#"{"a":"\u001F"}"#,                // upper-case hex: same length as canonical
            r#"{"a":"\u001f"}"#,                // canonical, but left to the crate (see module docs)
            r#"{"\ue000":1,"😀":2}"#,           // UTF-8 order, not UTF-16 order
            r#"{"a":1}x"#,                      // trailing garbage
            r#"{"a":"#,                         // truncated
        ] {
            assert!(already_canonical(text).is_none(), "{text} should not be recognised");
        }
        // The UTF-16 order is recognised.
        assert!(already_canonical(r#"{"😀":2,"\ue000":1}"#).is_none(), "escapes are not canonical");
        assert!(already_canonical("{\"😀\":2,\"\u{e000}\":1}").is_some());
        assert!(already_canonical(r#"{"a":"line\nbreak \"quoted\" back\\slash"}"#).is_some());
    }

    /// A seeded xorshift: `next(n)` is a number below `n`.
    fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    /// Damaged documents: whatever the pass accepts is valid JSON, is the
    /// crate's own output, and has the fields serde_json reads in it.
    #[test]
    fn accepts_nothing_but_canonical_json_when_documents_are_damaged() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        const BYTES: &[u8] = b"{}[]:,\"\\ 0123456789-.eEtrufalsnbx\n\t";
        let (mut accepted, mut damaged) = (0, 0);
        for _ in 0..3000 {
            let mut value = generate(&mut next, 0);
            if let Value::Object(map) = &mut value {
                map.insert("ContactId".into(), Value::String(text(&mut next)));
            }
            let canonical = serde_json_canonicalizer::to_vec(&value).unwrap();
            for _ in 0..8 {
                let mut bytes = canonical.clone();
                let at = next(bytes.len() as u64) as usize;
                match next(3) {
                    0 => bytes[at] = BYTES[next(BYTES.len() as u64) as usize],
                    1 => bytes.insert(at, BYTES[next(BYTES.len() as u64) as usize]),
                    _ => {
                        bytes.remove(at);
                    }
                }
                let Ok(text) = std::str::from_utf8(&bytes) else { continue };
                damaged += 1;
                let Some(fields) = already_canonical(text) else { continue };
                accepted += 1;
                let parsed: Value = serde_json::from_str(text).unwrap_or_else(|err| panic!("accepted invalid JSON {text}: {err}"));
                assert_eq!(jcs(text), text, "accepted a non-canonical text");
                let contact_id = parsed.get("ContactId").and_then(Value::as_str);
                assert_eq!(fields.contact_id.as_deref(), contact_id, "captured the wrong ContactId from {text}");
            }
        }
        assert!(damaged > 20_000 && accepted > 100, "{damaged} damaged documents, {accepted} accepted");
    }

    /// Generated documents: the pass says "canonical" only for the crate's
    /// own output, and says it for all of that output it can prove.
    #[test]
    fn agrees_with_the_crate_on_generated_documents() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let mut recognised = 0;
        for _ in 0..3000 {
            let value = generate(&mut next, 0);
            let canonical = String::from_utf8(serde_json_canonicalizer::to_vec(&value).unwrap()).unwrap();
            let plain = serde_json::to_string(&value).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            for text in [&canonical, &plain, &pretty] {
                if already_canonical(text).is_some() {
                    assert_eq!(text, &canonical, "recognised a non-canonical text");
                }
            }
            let provable = !canonical.contains("\\u") && !has_float(&value);
            if provable {
                assert!(already_canonical(&canonical).is_some(), "missed canonical text {canonical}");
                recognised += 1;
            }
        }
        assert!(recognised > 1000, "only {recognised} documents exercised the fast path");
    }

    fn has_float(value: &Value) -> bool {
        match value {
            Value::Number(n) => n.is_f64() || n.as_u64().is_some_and(|n| n > EXACT_INTEGER)
                || n.as_i64().is_some_and(|n| n.unsigned_abs() > EXACT_INTEGER),
            Value::Array(items) => items.iter().any(has_float),
            Value::Object(map) => map.values().any(has_float),
            _ => false,
        }
    }

    fn generate(next: &mut impl FnMut(u64) -> u64, depth: u32) -> Value {
        let kind = if depth == 0 { 6 } else { next(if depth > 3 { 5 } else { 7 }) };
        match kind {
            0 => Value::Null,
            1 => Value::Bool(next(2) == 0),
            2 => match next(5) {
                0 => serde_json::json!(next(1 << 60)),
                1 => serde_json::json!(-(next(1 << 20) as i64)),
                2 => serde_json::json!(next(1000) as f64 / 8.0),
                _ => serde_json::json!(next(100_000)),
            },
            3 | 4 => Value::String(text(next)),
            5 => Value::Array((0..next(4)).map(|_| generate(next, depth + 1)).collect()),
            _ => {
                let mut map = serde_json::Map::new();
                for _ in 0..next(6) + usize::from(depth == 0) as u64 {
                    map.insert(text(next), generate(next, depth + 1));
                }
                Value::Object(map)
            }
        }
    }

    fn text(next: &mut impl FnMut(u64) -> u64) -> String {
        const PIECES: &[&str] =
            &["a", "B", "Contact", "Id", "é", "中文", "\u{e000}", "😀", "\"", "\\", "\n", "\u{1}", "/", " ", "9", "10"];
        (0..next(4)).map(|_| PIECES[next(PIECES.len() as u64) as usize]).collect()
    }
}
