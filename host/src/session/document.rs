//! Reading session documents: one JSON object (or an array of them) per
//! `.json` file, one per line in `.ndjson`/`.jsonl` files; directories are
//! walked in name order. A malformed document is reported with its file and
//! position and the rest are still read.
//!
//! Every session document, whether `callqa check` reads it from a file or
//! `POST /v1/sessions/evaluate` from a request, goes through one parser,
//! [`Session::from_json`], so a document gets the same verdict from both.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::Session;

/// Where a session document came from, for error messages and reports.
#[derive(Clone, Debug)]
pub struct SessionSource {
    pub file: PathBuf,
    /// 1-based line for NDJSON, array index for arrays, none for a whole file.
    pub position: Option<String>,
}

impl std::fmt::Display for SessionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.position {
            Some(p) => write!(f, "{}:{p}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Why a session document was refused. The message is the same whoever
/// reads the document: `serve` answers it (400 for `Malformed`, 422 for
/// `Invalid`), `check` prints it after the file and position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not a session document: not JSON, not an object, a duplicate key, an
    /// unknown field, a value of the wrong type or out of its field's range.
    /// `at` is the 1-based line and column where the reading stopped.
    #[error("not a session document: {message}{}", .at.map(|(l, c)| format!(" at line {l} column {c}")).unwrap_or_default())]
    Malformed { message: String, at: Option<(usize, usize)> },
    /// A well-formed document whose content does not hold together (a
    /// segment that ends before it begins).
    #[error("invalid session: {0}")]
    Invalid(String),
}

impl DocumentError {
    fn from_json(err: serde_json::Error) -> Self {
        let text = err.to_string();
        if err.line() == 0 {
            return DocumentError::Malformed { message: text, at: None };
        }
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = text.strip_suffix(&suffix).map(str::to_owned).unwrap_or(text);
        DocumentError::Malformed { message, at: Some((err.line(), err.column())) }
    }

    /// The same error for a document that starts at `line`, `column` of its
    /// file (an NDJSON line, an array element) rather than at its beginning.
    fn placed_at(self, line: usize, column: usize) -> Self {
        match self {
            DocumentError::Malformed { message, at: Some((l, c)) } => {
                let at = if l == 1 { (line, column + c - 1) } else { (line + l - 1, c) };
                DocumentError::Malformed { message, at: Some(at) }
            }
            other => other,
        }
    }
}

impl Session {
    /// Reads one session document: the only parser of session documents, so
    /// `callqa check` and `POST /v1/sessions/evaluate` give one document one
    /// verdict.
    ///
    /// The policy, strict wherever JSON leaves a choice open:
    /// - the document is one JSON object (nothing but whitespace after it);
    /// - a key twice in the same object, at any depth (`attributes` and the
    ///   values in it included), is refused, naming the key, the object and
    ///   the line, rather than one of the values being kept silently;
    /// - unknown fields are refused; every field must have its type, and a
    ///   number must fit its field: an integer out of its range, or a value
    ///   beyond ±3.4e38 in a 32-bit float field (`sentiment_score`,
    ///   `loudness`, `overall_sentiment`, `sentiment_by_quarter`) is refused
    ///   rather than becoming infinity;
    /// - then the content must hold together ([`Session::normalise`]).
    ///
    /// Errors carry the 1-based line and column where reading stopped.
    pub fn from_json(bytes: &[u8]) -> Result<Session, DocumentError> {
        refuse_duplicate_keys(bytes)?;
        if let Some(at) = bytes.iter().position(|b| !b.is_ascii_whitespace()).filter(|&at| bytes[at] != b'{') {
            let (line, column) = line_and_column(bytes, at);
            return Err(DocumentError::Malformed {
                message: "a session document must be a JSON object".into(),
                at: Some((line, column)),
            });
        }
        let mut session: Session = serde_json::from_slice(bytes).map_err(DocumentError::from_json)?;
        session.normalise().map_err(|e| DocumentError::Invalid(format!("{e:#}")))?;
        Ok(session)
    }
}

/// Walks the whole document, refusing the first key that appears twice in
/// one object; JSON syntax errors are found here too.
fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), DocumentError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut path = Vec::new();
    KeyCheck { path: &mut path }.deserialize(&mut de).and_then(|()| de.end()).map_err(DocumentError::from_json)
}

/// One step into a document: a key or an index.
enum Step<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

fn describe_path(path: &[Step<'_>]) -> String {
    if path.is_empty() {
        return "the document".to_string();
    }
    let mut out = String::from("`");
    for (i, step) in path.iter().enumerate() {
        match step {
            Step::Key(key) if i == 0 => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out.push('`');
    out
}

struct KeyCheck<'p, 'de> {
    path: &'p mut Vec<Step<'de>>,
}

impl<'de> DeserializeSeed<'de> for KeyCheck<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyCheck<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.path.push(Step::Index(index));
            let more = seq.next_element_seed(KeyCheck { path: &mut *self.path })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}` in {}", describe_path(self.path))));
            }
            self.path.push(Step::Key(key));
            map.next_value_seed(KeyCheck { path: &mut *self.path })?;
            self.path.pop();
        }
        Ok(())
    }
}

/// The keys of one object so far. A session's objects (segments, events)
/// have a handful of keys, where a scan beats hashing and allocates
/// nothing; an object with many keys (free-form attributes) switches to a
/// set, so a huge one stays linear.
#[derive(Default)]
struct SeenKeys<'de> {
    few: Vec<Cow<'de, str>>,
    many: HashSet<Cow<'de, str>>,
}

impl<'de> SeenKeys<'de> {
    const SCAN: usize = 16;

    /// False when `key` was seen before.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if self.few.len() < Self::SCAN {
            if self.few.contains(&key) {
                return false;
            }
            self.few.push(key);
            return true;
        }
        if self.many.is_empty() {
            self.many.extend(self.few.iter().cloned());
        }
        self.many.insert(key)
    }
}

/// An object key, borrowed from the document unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// `deserialize_with` for `Option<f32>` fields: refuses a number that does
/// not fit (see [`Session::from_json`]) instead of letting it become infinity.
pub(super) fn f32_option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f32>, D::Error> {
    Option::<f64>::deserialize(deserializer)?.map(narrow).transpose()
}

/// `deserialize_with` for `Vec<f32>` fields, as [`f32_option`].
pub(super) fn f32_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
    Vec::<f64>::deserialize(deserializer)?.into_iter().map(narrow).collect()
}

fn narrow<E: de::Error>(value: f64) -> Result<f32, E> {
    let narrowed = value as f32;
    if narrowed.is_finite() {
        Ok(narrowed)
    } else {
        Err(E::custom(format_args!("{value:e} is out of range for a 32-bit float (at most ±3.4e38)")))
    }
}

/// The 1-based line and column of byte `at`.
fn line_and_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    let column = at - memchr::memrchr(b'\n', before).map_or(0, |nl| nl + 1) + 1;
    (line, column)
}

/// Every session in `inputs` (files or directories), in order. The outer
/// error is an unusable input (missing path, unreadable directory); a bad
/// document is an inner `Err` with its source, and reading goes on.
pub fn read_sessions(inputs: &[PathBuf]) -> anyhow::Result<Vec<(SessionSource, anyhow::Result<Session>)>> {
    let mut out = Vec::new();
    for input in inputs {
        for file in session_files(input)? {
            // Bytes, not text: a document that is not UTF-8 is refused by the
            // parser, with the position `serve` would give.
            let bytes = match std::fs::read(&file) {
                Ok(bytes) => bytes,
                Err(e) => {
                    out.push((
                        SessionSource { file, position: None },
                        Err(anyhow::Error::new(e).context("cannot read the file")),
                    ));
                    continue;
                }
            };
            if is_ndjson(&file) {
                for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let source = SessionSource { file: file.clone(), position: Some(format!("line {}", i + 1)) };
                    let parsed = Session::from_json(line).map_err(|e| e.placed_at(i + 1, 1));
                    out.push((source, parsed.map_err(anyhow::Error::new)));
                }
            } else {
                read_json_file(&file, &bytes, &mut out);
            }
        }
    }
    Ok(out)
}

fn read_json_file(file: &Path, bytes: &[u8], out: &mut Vec<(SessionSource, anyhow::Result<Session>)>) {
    let whole = SessionSource { file: file.to_path_buf(), position: None };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        out.push((whole, Session::from_json(bytes).map_err(anyhow::Error::new)));
        return;
    }
    match serde_json::from_slice::<Vec<&RawValue>>(bytes) {
        Ok(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let source = SessionSource { file: file.to_path_buf(), position: Some(format!("[{i}]")) };
                let element = item.get();
                let (line, column) = line_and_column(bytes, element.as_ptr() as usize - bytes.as_ptr() as usize);
                let parsed = Session::from_json(element.as_bytes()).map_err(|e| e.placed_at(line, column));
                out.push((source, parsed.map_err(anyhow::Error::new)));
            }
        }
        Err(e) => out.push((whole, Err(anyhow::Error::new(DocumentError::from_json(e))))),
    }
}

fn is_ndjson(file: &Path) -> bool {
    matches!(file.extension().and_then(|e| e.to_str()), Some("ndjson" | "jsonl"))
}

fn session_files(input: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(input).with_context(|| format!("cannot read session input {}", input.display()))?;
    if meta.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot walk {}", input.display()))?;
        let is_doc = matches!(entry.path().extension().and_then(|e| e.to_str()), Some("json" | "ndjson" | "jsonl"));
        if entry.file_type().is_file() && is_doc {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"}}"#;

    fn refused(text: &str) -> DocumentError {
        Session::from_json(text.as_bytes()).expect_err(text)
    }

    #[test]
    fn a_valid_document_is_read() {
        let session = Session::from_json(MINIMAL.as_bytes()).unwrap();
        assert_eq!(session.id, "s");
        let with_scores = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},
            "segments":[{"id":"t","role":"agent","text":"hi","begin_ms":0,"end_ms":5,"sentiment_score":-0.5,"loudness":3.4e38}],
            "characteristics":{"roles":[{"role":"agent","sentiment_by_quarter":[1,2.5,-3e38,0]}]}}"#;
        let session = Session::from_json(with_scores.as_bytes()).unwrap();
        assert_eq!(session.segments()[0].sentiment_score, Some(-0.5));
        assert_eq!(session.characteristics.unwrap().roles[0].sentiment_by_quarter, vec![1.0, 2.5, -3e38, 0.0]);
    }

    #[test]
    fn a_duplicate_key_is_refused_at_any_depth_with_where_it_is() {
        let top = "{\"id\":\"s\",\n\"contact\":{\"contact_id\":\"c\",\"channel\":\"voice\"},\n\"id\":\"t\"}";
        assert_eq!(
            refused(top),
            DocumentError::Malformed { message: "duplicate key `id` in the document".into(), at: Some((3, 4)) }
        );
        assert_eq!(
            refused(top).to_string(),
            "not a session document: duplicate key `id` in the document at line 3 column 4"
        );
        let nested = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice","channel":"chat"}}"#;
        assert!(refused(nested).to_string().contains("duplicate key `channel` in `contact` at line 1"));
        let deep = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},
            "events":[{"kind":"k","at":"2024-01-01T00:00:00Z","attributes":{"a":{"b":1,"b":2}}}]}"#;
        assert!(refused(deep).to_string().contains("duplicate key `b` in `events[0].attributes.a` at line 2"));
        // Escapes do not hide a duplicate.
        let escaped = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},"attributes":{"k":1,"\u006b":2}}"#;
        assert!(refused(escaped).to_string().contains("duplicate key `k` in `attributes`"));
    }

    #[test]
    fn duplicates_are_found_in_objects_of_any_size() {
        let attributes = |keys: &[usize]| {
            let members: Vec<String> = keys.iter().map(|k| format!("\"k{k}\":{k}")).collect();
            format!(
                r#"{{"id":"s","contact":{{"contact_id":"c","channel":"voice"}},"attributes":{{{}}}}}"#,
                members.join(",")
            )
        };
        let distinct: Vec<usize> = (0..40).collect();
        assert!(Session::from_json(attributes(&distinct).as_bytes()).is_ok());
        for (len, again) in [(5, 3), (16, 0), (17, 16), (40, 2), (40, 39)] {
            let mut keys: Vec<usize> = (0..len).collect();
            keys.push(again);
            let message = refused(&attributes(&keys)).to_string();
            assert!(message.contains(&format!("duplicate key `k{again}` in `attributes`")), "{len}: {message}");
        }
    }

    #[test]
    fn a_number_beyond_its_float_field_is_refused_not_infinite() {
        let segment = |score: &str| {
            format!(
                r#"{{"id":"s","contact":{{"contact_id":"c","channel":"voice"}},"segments":[{{"id":"t","role":"agent","text":"hi","begin_ms":0,"end_ms":5,"sentiment_score":{score}}}]}}"#
            )
        };
        let err = refused(&segment("1e39")).to_string();
        assert!(err.starts_with("not a session document: 1e39 is out of range for a 32-bit float"), "{err}");
        assert!(refused(&segment("-1e39")).to_string().contains("-1e39 is out of range"));
        let quarters = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},
            "characteristics":{"roles":[{"role":"agent","sentiment_by_quarter":[0,1e39]}]}}"#;
        assert!(refused(quarters).to_string().contains("1e39 is out of range"));
        let integer = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},"segments":[{"id":"t","role":"agent","text":"hi","begin_ms":0,"end_ms":4294967296}]}"#;
        assert!(refused(integer).to_string().contains("expected u32"));
    }

    #[test]
    fn other_refusals_keep_their_kind_and_position() {
        assert!(matches!(refused("[1]"), DocumentError::Malformed { at: Some((1, 1)), .. }));
        assert!(refused("  \n [1]").to_string().ends_with("must be a JSON object at line 2 column 2"));
        assert!(refused(&format!("{MINIMAL} {{}}")).to_string().contains("trailing characters"));
        assert!(refused(r#"{"id":"s","#).to_string().contains("EOF"));
        assert!(refused(r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},"extra":1}"#)
            .to_string()
            .contains("unknown field `extra`"));
        let backwards = r#"{"id":"s","contact":{"contact_id":"c","channel":"voice"},"segments":[{"id":"t","role":"agent","text":"hi","begin_ms":9,"end_ms":5}]}"#;
        assert_eq!(
            refused(backwards),
            DocumentError::Invalid("segment `t` ends (5 ms) before it begins (9 ms)".into())
        );
    }

    #[test]
    fn positions_in_a_file_count_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let duplicate = r#"{"id":"s","id":"t","contact":{"contact_id":"c","channel":"voice"}}"#;
        std::fs::write(dir.path().join("a.ndjson"), format!("{MINIMAL}\n\n{duplicate}\n")).unwrap();
        std::fs::write(dir.path().join("b.json"), format!("[\n  {MINIMAL},\n  {duplicate}\n]")).unwrap();
        std::fs::write(dir.path().join("c.json"), b"{\"id\":\"\xff\"}").unwrap();
        let read = read_sessions(&[dir.path().to_path_buf()]).unwrap();
        let found: Vec<(String, Option<String>)> = read
            .iter()
            .map(|(source, parsed)| {
                (source.position.clone().unwrap_or_default(), parsed.as_ref().err().map(|e| format!("{e:#}")))
            })
            .collect();
        let message = |line: usize, column: usize| {
            Some(format!("not a session document: duplicate key `id` in the document at line {line} column {column}"))
        };
        assert_eq!(
            found,
            vec![
                ("line 1".into(), None),
                ("line 3".into(), message(3, 14)),
                ("[0]".into(), None),
                ("[1]".into(), message(3, 16)),
                ("".into(), Some(format!("{:#}", Session::from_json(b"{\"id\":\"\xff\"}").unwrap_err()))),
            ]
        );
        assert!(found[4].1.as_ref().unwrap().contains("invalid unicode"), "{found:?}");
    }
}
