//! Recognising a record that is already in its RFC 8785 (JCS) form.
//!
//! The `canonical` fingerprint is the SHA-256 of a record's JCS form, which
//! `serde_json_canonicalizer` produces from a parsed tree: about 20 µs to
//! parse a 3 KB CTR into a tree and 40–60 µs to serialise it again. Amazon
//! Connect writes CTRs with sorted keys, no whitespace and integer numbers,
//! which *is* their JCS form, so for most records the delivered bytes are
//! already the canonical bytes. Proving that takes one pass over the bytes
//! and no tree; anything the pass cannot prove (a float, an unsorted key,
//! whitespace, a `\u` escape) goes to the crate.
//!
//! The pass never decides what the canonical form *is*; it only answers
//! "the text equals its canonical form" or "cannot tell". It accepts a
//! grammar narrower than JSON, in which every token has one spelling, the
//! one JCS writes: no whitespace; members in UTF-16 order of their names,
//! none repeated; strings with only the escapes JCS itself writes (`\"`,
//! `\\`, `\b`, `\f`, `\n`, `\r`, `\t`); integers of at most 2^53 without
//! a leading zero, sign of zero, fraction or exponent; `true`, `false` and
//! `null`. A text in that grammar is valid JSON and is its own JCS form. The
//! unit tests check both answers against serde_json and the crate, on
//! generated documents and on damaged copies of them and of a Connect record.
//!
//! It replaced a pass over serde_json's tokens that proved the same thing by
//! adding up canonical token lengths, at about twice the cost: most of that
//! went on finding where each of a record's ~140 short strings ends. Here a
//! first sweep marks every `"` and `\` of the text, 16 bytes at a time, and
//! the end of a string is a bit scan.

use std::borrow::Cow;

/// The top-level fields the pipeline needs, captured during the pass.
#[derive(Debug, Default)]
pub(super) struct CanonicalFields<'a> {
    pub contact_id: Option<Cow<'a, str>>,
    pub last_update_timestamp: Option<Cow<'a, str>>,
    pub initiation_timestamp: Option<Cow<'a, str>>,
}

/// `Some(fields)` when `text` is exactly its own JCS form; `None` when it is
/// not, when the pass cannot prove it, or when the text is not valid JSON
/// (the caller's slow path reports that properly).
pub(super) fn already_canonical(text: &str) -> Option<CanonicalFields<'_>> {
    let marks = Marks::of(text.as_bytes())?;
    let mut pass = Pass { text, at: 0, marks, fields: CanonicalFields::default() };
    pass.value(0, Capture::None)?;
    (pass.at == text.len()).then_some(pass.fields)
}

/// Where the text has a `"` or a `\`: one bit per byte, found 16 bytes at a
/// time, so that finding the end of a string is a bit scan instead of a
/// search started afresh for each of a record's hundreds of short strings.
struct Marks {
    words: Vec<u64>,
}

impl Marks {
    /// `None` when the text has a control character: outside strings JCS
    /// writes no whitespace, inside them a raw one is not JSON.
    fn of(bytes: &[u8]) -> Option<Marks> {
        let mut words = vec![0u64; bytes.len() / 64 + 1];
        let blocks = bytes.chunks_exact(64);
        let tail = blocks.remainder();
        let mut control = false;
        for (word, block) in words.iter_mut().zip(blocks) {
            let (bits, any_control) = mark_block(block.try_into().unwrap());
            *word = bits;
            control |= any_control;
        }
        let last = words.last_mut().unwrap();
        for (i, &byte) in tail.iter().enumerate() {
            control |= byte < 0x20;
            *last |= u64::from(byte == b'"' || byte == b'\\') << i;
        }
        (!control).then_some(Marks { words })
    }

    /// The first marked position at or after `from`.
    #[inline]
    fn next(&self, from: usize) -> Option<usize> {
        let mut index = from / 64;
        let mut word = *self.words.get(index)? & (!0u64 << (from % 64));
        while word == 0 {
            index += 1;
            word = *self.words.get(index)?;
        }
        Some(index * 64 + word.trailing_zeros() as usize)
    }
}

/// Marks of one 64-byte block, and whether it holds a control character.
#[cfg(target_arch = "x86_64")]
#[inline]
fn mark_block(block: &[u8; 64]) -> (u64, bool) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64 itself (no detection needed), and every
    // 16 bytes loaded lie inside `block`.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let below_space = _mm_set1_epi8(0x1f);
        let mut bits = 0u64;
        let mut control = _mm_setzero_si128();
        for lane in 0..4 {
            let chunk = _mm_loadu_si128(block.as_ptr().add(lane * 16).cast());
            let marked = _mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash));
            bits |= u64::from(_mm_movemask_epi8(marked) as u16) << (lane * 16);
            // max(byte, 0x1f) == 0x1f exactly when byte <= 0x1f (unsigned).
            control = _mm_or_si128(control, _mm_cmpeq_epi8(_mm_max_epu8(chunk, below_space), below_space));
        }
        (bits, _mm_movemask_epi8(control) != 0)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn mark_block(block: &[u8; 64]) -> (u64, bool) {
    let mut bits = 0u64;
    let mut control = false;
    for (i, &byte) in block.iter().enumerate() {
        control |= byte < 0x20;
        bits |= u64::from(byte == b'"' || byte == b'\\') << i;
    }
    (bits, control)
}

/// Largest integer a JCS implementation (IEEE-754 doubles) spells digit for digit.
const EXACT_INTEGER: u64 = 1 << 53;

/// Deeper nesting is left to serde_json, which refuses past 128 levels.
const MAX_DEPTH: u32 = 128;

struct Pass<'a> {
    text: &'a str,
    /// The next byte to read.
    at: usize,
    marks: Marks,
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

impl<'a> Pass<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    fn value(&mut self, depth: u32, capture: Capture) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' if depth >= MAX_DEPTH => None,
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => {
                let text = self.string()?;
                self.capture(capture, text);
                Some(())
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn object(&mut self, depth: u32) -> Option<()> {
        self.at += 1;
        if self.eat(b'}') {
            return Some(());
        }
        let mut previous: Option<Cow<'a, str>> = None;
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let name = self.string()?;
            // JCS orders members by the UTF-16 code units of their names;
            // equal names (duplicates) have no canonical form either.
            if previous.as_ref().is_some_and(|previous| utf16_cmp(previous, &name) != std::cmp::Ordering::Less) {
                return None;
            }
            if !self.eat(b':') {
                return None;
            }
            let capture = match &*name {
                "ContactId" if depth == 1 => Capture::ContactId,
                "LastUpdateTimestamp" if depth == 1 => Capture::LastUpdate,
                "InitiationTimestamp" if depth == 1 => Capture::Initiation,
                _ => Capture::None,
            };
            self.value(depth, capture)?;
            previous = Some(name);
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn array(&mut self, depth: u32) -> Option<()> {
        self.at += 1;
        if self.eat(b']') {
            return Some(());
        }
        loop {
            self.value(depth, Capture::None)?;
            if self.eat(b']') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// A string (the cursor on its opening quote) spelled as JCS spells it;
    /// its contents, borrowed unless it had escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        let start = self.at + 1;
        let mut at = start;
        let mut escaped = false;
        loop {
            // (Control characters were ruled out for the whole text.)
            at = self.marks.next(at)?;
            if bytes[at] == b'"' {
                break;
            }
            match bytes.get(at + 1)? {
                b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {
                    escaped = true;
                    at += 2;
                }
                // `\/` and `\u` escapes are spellings JCS does not use for
                // these characters, or (`\u00xx` for other control
                // characters) ones the crate is better placed to check.
                _ => return None,
            }
        }
        self.at = at + 1;
        // Both ends are quotes, so the slice falls on character boundaries.
        let raw = &self.text[start..at];
        Some(if escaped { Cow::Owned(unescape(raw)) } else { Cow::Borrowed(raw) })
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.at..].starts_with(word).then(|| self.at += word.len())
    }

    fn integer(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        let negative = bytes[self.at] == b'-';
        let digits_start = self.at + usize::from(negative);
        let digits_end =
            bytes[digits_start..].iter().position(|b| !b.is_ascii_digit()).map_or(bytes.len(), |n| digits_start + n);
        let digits = &bytes[digits_start..digits_end];
        // JCS spells doubles the way ECMAScript does; leave those to the crate.
        if matches!(bytes.get(digits_end), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        if digits.is_empty() || digits.len() > 16 || (digits[0] == b'0' && digits.len() > 1) {
            return None;
        }
        let value = digits.iter().fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
        if value > EXACT_INTEGER || (negative && value == 0) {
            return None;
        }
        self.at = digits_end;
        Some(())
    }

    fn capture(&mut self, capture: Capture, text: Cow<'a, str>) {
        let slot = match capture {
            Capture::None => return,
            Capture::ContactId => &mut self.fields.contact_id,
            Capture::LastUpdate => &mut self.fields.last_update_timestamp,
            Capture::Initiation => &mut self.fields.initiation_timestamp,
        };
        *slot = Some(text);
    }
}

/// The contents of a string whose only escapes are the ones [`Pass::string`]
/// accepts.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some(other) => other,
            None => break,
        });
    }
    out
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
            r#"{"b":1,"a":2}"#,          // unsorted
            r#"{"a":1,"a":2}"#,          // duplicate name
            r#"{"a": 1}"#,               // whitespace
            r#"{"a":1.5}"#,              // a double
            r#"{"a":1e2}"#,              // exponent
            r#"{"a":-0}"#,               // negative zero
            r#"{"a":9007199254740993}"#, // beyond 2^53
            r#"{"a":"\u0041"}"#,         // needless escape
            r#"{"a":"\/"}"#,             // needless escape
            r#"{"a":"\u000a"}"#,         // long form of \n
            r#"{"a":"\u001F"}"#,         // upper-case hex: same length as canonical
            r#"{"a":"\u001f"}"#,         // canonical, but left to the crate (see module docs)
            r#"{"\ue000":1,"😀":2}"#,    // UTF-8 order, not UTF-16 order
            r#"{"a":1}x"#,               // trailing garbage
            r#"{"a":"#,                  // truncated
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

    /// Damages `canonical` `times` times (a byte replaced, inserted or
    /// removed) and checks each damaged copy the pass accepts: valid JSON,
    /// the crate's own output, with the ContactId serde_json reads in it.
    /// Returns how many copies were damaged (and valid UTF-8) and accepted.
    fn damage(next: &mut impl FnMut(u64) -> u64, canonical: &[u8], times: usize) -> (usize, usize) {
        const BYTES: &[u8] = b"{}[]:,\"\\ 0123456789-.eEtrufalsnbx\n\t";
        let (mut damaged, mut accepted) = (0, 0);
        for _ in 0..times {
            let mut bytes = canonical.to_vec();
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
            let parsed: Value =
                serde_json::from_str(text).unwrap_or_else(|err| panic!("accepted invalid JSON {text}: {err}"));
            assert_eq!(jcs(text), text, "accepted a non-canonical text");
            let contact_id = parsed.get("ContactId").and_then(Value::as_str);
            assert_eq!(fields.contact_id.as_deref(), contact_id, "captured the wrong ContactId from {text}");
        }
        (damaged, accepted)
    }

    /// Damaged generated documents.
    #[test]
    fn accepts_nothing_but_canonical_json_when_documents_are_damaged() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let (mut damaged, mut accepted) = (0, 0);
        for _ in 0..3000 {
            let mut value = generate(&mut next, 0);
            if let Value::Object(map) = &mut value {
                map.insert("ContactId".into(), Value::String(text(&mut next)));
            }
            let (d, a) = damage(&mut next, &serde_json_canonicalizer::to_vec(&value).unwrap(), 8);
            (damaged, accepted) = (damaged + d, accepted + a);
        }
        assert!(damaged > 20_000 && accepted > 100, "{damaged} damaged documents, {accepted} accepted");
    }

    /// The first sweep works in 64-byte blocks: strings, escapes and control
    /// characters on every side of a block boundary.
    #[test]
    fn strings_are_read_across_block_boundaries() {
        for pad in 0..200 {
            let filler = "x".repeat(pad);
            for body in [r#"\""#, r#"\\"#, r#"\\\""#, r#"\n"#, "é中😀", r#"\u0041"#, "\u{1}", r#"\"#] {
                let text = format!(r#"{{"ContactId":"{filler}{body}{filler}","Z":"{filler}"}}"#);
                let valid = serde_json::from_str::<Value>(&text).is_ok();
                match already_canonical(&text) {
                    Some(fields) => {
                        assert!(valid && jcs(&text) == text, "accepted {text}");
                        let parsed: Value = serde_json::from_str(&text).unwrap();
                        assert_eq!(fields.contact_id.as_deref(), parsed["ContactId"].as_str());
                    }
                    None => assert!(!valid || jcs(&text) != text || body.contains("\\u"), "missed {text}"),
                }
            }
        }
    }

    /// Nesting is left to serde_json past its own limit of 128 levels.
    #[test]
    fn nesting_deeper_than_serde_json_allows_is_left_to_the_crate() {
        let nested = |levels: usize| format!(r#"{{"a":{}1{}}}"#, "[".repeat(levels), "]".repeat(levels));
        assert!(already_canonical(&nested(127)).is_some());
        assert!(already_canonical(&nested(128)).is_none());
    }

    /// A Connect record of realistic size (the sample records), damaged.
    #[test]
    fn accepts_nothing_but_canonical_json_when_a_connect_record_is_damaged() {
        let seed = include_str!("../../../samples/ctr/connect-ctrs-with-duplicates.json");
        let records: Vec<Value> = serde_json::from_str(seed).unwrap();
        let mut next = xorshift(0x5851_f42d_4c95_7f2du64);
        let (mut damaged, mut accepted) = (0, 0);
        for record in &records {
            let canonical = serde_json_canonicalizer::to_vec(record).unwrap();
            assert!(canonical.len() > 1000, "the sample records are full-size CTRs");
            assert!(already_canonical(std::str::from_utf8(&canonical).unwrap()).is_some());
            let (d, a) = damage(&mut next, &canonical, 4000);
            (damaged, accepted) = (damaged + d, accepted + a);
        }
        assert!(damaged > 20_000 && accepted > 100, "{damaged} damaged records, {accepted} accepted");
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
            Value::Number(n) => {
                n.is_f64()
                    || n.as_u64().is_some_and(|n| n > EXACT_INTEGER)
                    || n.as_i64().is_some_and(|n| n.unsigned_abs() > EXACT_INTEGER)
            }
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
