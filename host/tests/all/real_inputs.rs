//! Real inputs seen in the wild (#20), through the `callqa` binary:
//! Firehose's S3 delivery of contact records concatenated with no
//! delimiter, and Contact Lens files that give every turn the same `Id`.

use crate::common;
use std::io::Write;
use std::path::Path;
use std::process::Output;

use serde_json::value::RawValue;
use serde_json::{json, Value};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/ctr/connect-ctrs-with-duplicates.json");

/// The published raw fingerprint of the seed's first record (and of its
/// second, a redelivery of it): see `ingest_seed.rs`.
const FIRST_PUBLISHED: &str = "ef7d9f7e4b26f827d2e526c4797852d978e6e9e2ccfdcaf162e9126a4eaca6a7";

/// The seed's first three contact records, byte for byte as written.
fn seed_records() -> Vec<String> {
    let text = std::fs::read_to_string(SEED).unwrap();
    let records: Vec<&RawValue> = serde_json::from_str(&text).unwrap();
    records[..3].iter().map(|r| r.get().to_owned()).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// `callqa ingest --fingerprint raw --verbose` of `input` into `dir`: the
/// summary and the dead letters.
fn ingest(dir: &Path, input: &Path) -> (Value, Vec<Value>) {
    let summary = dir.join("summary.json");
    let dead = dir.join("dead.ndjson");
    let output = common::callqa()
        .args(["ingest", "--fingerprint", "raw", "--verbose", "--store"])
        .arg(format!("file:{}", dir.join("store.redb").display()))
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--dead-letter")
        .arg(&dead)
        .arg("--summary-json")
        .arg(&summary)
        .arg(input)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let dead = std::fs::read_to_string(&dead)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (summary, dead)
}

fn counts(summary: &Value) -> [u64; 4] {
    let total = &summary["total"];
    ["read", "unique", "duplicates", "dead_lettered"].map(|k| total[k].as_u64().unwrap())
}

/// The `--verbose` records in input order (a dead letter is recorded as it
/// is read, the others when their batch is claimed): position and fingerprint.
fn records_in_order(summary: &Value) -> Vec<(Value, Option<&str>)> {
    let mut records: Vec<(Value, Option<&str>)> = summary["inputs"][0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["position"].clone(), r["fingerprint"].as_str()))
        .collect();
    records.sort_by_key(|(position, _)| position["index"].as_u64());
    records
}

fn fingerprints(summary: &Value) -> Vec<Option<&str>> {
    records_in_order(summary).into_iter().map(|(_, fingerprint)| fingerprint).collect()
}

fn positions(summary: &Value) -> Vec<Value> {
    records_in_order(summary).into_iter().map(|(position, _)| position).collect()
}

/// Three contact records as Firehose writes them to S3 (no delimiter, no
/// newline, an object named without an extension): three records, each
/// hashed exactly as written, the redelivered one a duplicate.
#[test]
fn concatenated_contact_records_are_each_read_and_counted() {
    let records = seed_records();
    assert_eq!(records[0], records[1], "the seed redelivers its first record");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ctr-stream-1-2022-01-05-17-50-00-6d2f");
    std::fs::write(&input, records.concat()).unwrap();

    let (summary, dead) = ingest(dir.path(), &input);
    assert_eq!(summary["inputs"][0]["format"], "concatenated-json");
    assert_eq!(counts(&summary), [3, 2, 1, 0], "read, unique, duplicates, dead-lettered");
    assert!(dead.is_empty(), "{dead:?}");
    let expected: Vec<String> = records.iter().map(|r| sha256_hex(r.as_bytes())).collect();
    assert_eq!(fingerprints(&summary), expected.iter().map(|f| Some(f.as_str())).collect::<Vec<_>>());
    assert_eq!(expected[0], FIRST_PUBLISHED);
    assert_eq!(positions(&summary), [json!({"index": 0}), json!({"index": 1}), json!({"index": 2})]);
}

/// A malformed record between two good ones: one dead letter naming it and
/// why, and both good records stored.
#[test]
fn a_malformed_concatenated_record_is_one_dead_letter_and_the_others_are_stored() {
    let records = seed_records();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ctr-stream-1-2022-01-05-17-55-00-91ac");
    let broken = r#"{"ContactId": "c-broken",, "Channel": "VOICE"}"#;
    std::fs::write(&input, [records[0].as_str(), broken, records[2].as_str()].concat()).unwrap();

    let (summary, dead) = ingest(dir.path(), &input);
    assert_eq!(counts(&summary), [3, 2, 0, 1], "read, unique, duplicates, dead-lettered");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "malformed-json");
    assert_eq!(dead[0]["position"], json!({"index": 1}));
    assert!(dead[0]["detail"].as_str().is_some_and(|d| !d.is_empty()), "{:?}", dead[0]);
    assert_eq!(dead[0]["record"], broken, "the dead letter holds the record's own bytes");
    let fingerprints = fingerprints(&summary);
    assert_eq!(
        fingerprints,
        [Some(sha256_hex(records[0].as_bytes()).as_str()), None, Some(sha256_hex(records[2].as_bytes()).as_str())]
    );

    let stored: Vec<String> = common::test_data::files(&dir.path().join("out"))
        .iter()
        .flat_map(|file| std::fs::read_to_string(file).unwrap().lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(stored.len(), 2);
    assert!(stored.contains(&records[0]) && stored.contains(&records[2]));
}

/// Firehose's S3 delivery with GZIP compression: the same records.
#[test]
fn gzipped_concatenated_contact_records_read_the_same() {
    let records = seed_records();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ctr-stream-1-2022-01-05-18-00-00-0b7e.gz");
    std::fs::write(&input, gzip(records.concat().as_bytes())).unwrap();

    let (summary, dead) = ingest(dir.path(), &input);
    assert_eq!(summary["inputs"][0]["format"], "concatenated-json");
    assert_eq!(counts(&summary), [3, 2, 1, 0], "read, unique, duplicates, dead-lettered");
    assert!(dead.is_empty(), "{dead:?}");
    let expected: Vec<String> = records.iter().map(|r| sha256_hex(r.as_bytes())).collect();
    assert_eq!(fingerprints(&summary), expected.iter().map(|f| Some(f.as_str())).collect::<Vec<_>>());
}

const CONTACT: &str = "7c1a3e5f-2b4d-4f6a-8c9e-0a1b2c3d4e5f";

/// The one placeholder every turn of the published example files carries.
const PLACEHOLDER: &str = "the ID of the turn";

/// `callqa session build` of one contact with `analysis` as its Contact
/// Lens file: the session.
fn session_of(analysis: &Value, channel: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ctr")).unwrap();
    std::fs::create_dir_all(dir.path().join("analysis")).unwrap();
    let record = json!({
        "ContactId": CONTACT, "Channel": channel, "InitiationMethod": "INBOUND",
        "InitiationTimestamp": "2026-11-20T09:00:00Z", "DisconnectTimestamp": "2026-11-20T09:05:00Z",
        "Agent": {"ARN": "arn:aws:connect:us-east-1:111122223333:instance/i/agent/agent-kim", "ConnectedToAgentTimestamp": "2026-11-20T09:00:20Z"}
    });
    std::fs::write(dir.path().join("ctr/records.json"), format!("[{record}]")).unwrap();
    let name = format!("analysis/{CONTACT}_analysis_2026-11-20T09_06_00Z.json");
    std::fs::write(dir.path().join(name), serde_json::to_string_pretty(analysis).unwrap()).unwrap();
    let output: Output = common::callqa()
        .args(["session", "build", "--ctr"])
        .arg(dir.path().join("ctr"))
        .arg("--analysis")
        .arg(dir.path().join("analysis"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sessions: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(sessions.len(), 1);
    sessions.into_iter().next().unwrap()
}

/// What each turn carries besides what becomes its segment, by turn number.
fn per_turn_fields() -> [(usize, &'static str, Value); 4] {
    [
        (3, "IssuesDetected", json!([{"CharacterOffsets": {"BeginOffsetChar": 0, "EndOffsetChar": 20}}])),
        (5, "Redaction", json!({"RedactedTimestamps": [{"BeginOffsetMillis": 21000, "EndOffsetMillis": 23000}]})),
        (7, "OutcomesDetected", json!([{"CharacterOffsets": {"BeginOffsetChar": 4, "EndOffsetChar": 30}}])),
        (9, "ActionItemsDetected", json!([{"CharacterOffsets": {"BeginOffsetChar": 2, "EndOffsetChar": 18}}])),
    ]
}

fn segment_ids(session: &Value) -> Vec<&str> {
    session["segments"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect()
}

/// The id of the segment whose text is `text`.
fn id_of<'a>(session: &'a Value, text: &str) -> &'a str {
    let segment = session["segments"].as_array().unwrap().iter().find(|s| s["text"] == text);
    segment.unwrap_or_else(|| panic!("no segment says {text:?}"))["id"].as_str().unwrap()
}

fn assert_one_note_about_repeated_ids(session: &Value) {
    let notes: Vec<&str> = session["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let about_ids: Vec<&&str> = notes.iter().filter(|n| n.contains("repeats turn ids")).collect();
    assert_eq!(about_ids.len(), 1, "{notes:?}");
    assert!(about_ids[0].contains(CONTACT) && about_ids[0].contains("made unique"), "{notes:?}");
    assert!(!notes.iter().any(|n| n.contains("earlier leg")), "one leg has no earlier leg: {notes:?}");
}

/// A voice file whose ten turns all have the same `Id`: ten segments with
/// ids of their own, each turn's fields on its own segment, and one note.
#[test]
fn contact_lens_voice_turns_that_repeat_an_id_keep_their_own_ids_and_fields() {
    let extra = per_turn_fields();
    let transcript: Vec<Value> = (1..=10)
        .map(|n| {
            let mut turn = json!({
                "Id": PLACEHOLDER,
                "ParticipantId": if n % 2 == 1 { "AGENT" } else { "CUSTOMER" },
                "Content": format!("turn {n}"),
                "BeginOffsetMillis": (n - 1) * 5000, "EndOffsetMillis": (n - 1) * 5000 + 4000,
                "Sentiment": "NEUTRAL", "LoudnessScore": [70.0, 72.0],
            });
            for (at, key, value) in &extra {
                if *at == n {
                    turn[*key] = value.clone();
                }
            }
            turn
        })
        .collect();
    let analysis = json!({
        "Version": "1.1.0", "Channel": "VOICE", "JobStatus": "COMPLETED", "LanguageCode": "en-US",
        "Participants": [{"ParticipantId": "CUSTOMER", "ParticipantRole": "CUSTOMER"}, {"ParticipantId": "AGENT", "ParticipantRole": "AGENT"}],
        "ConversationCharacteristics": {"TotalConversationDurationMillis": 50000},
        "Transcript": transcript,
    });
    let session = session_of(&analysis, "VOICE");

    let ids = segment_ids(&session);
    assert_eq!(ids.len(), 10);
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 10, "{ids:?}");
    assert_eq!(id_of(&session, "turn 1"), PLACEHOLDER, "the first turn keeps the Id");
    assert_eq!(id_of(&session, "turn 2"), format!("{PLACEHOLDER}#2"));
    assert_eq!(id_of(&session, "turn 10"), format!("{PLACEHOLDER}#10"));
    for (n, segment) in session["segments"].as_array().unwrap().iter().enumerate() {
        assert_eq!(segment["begin_ms"], n * 5000, "{segment}");
        assert_eq!(segment["role"], if n % 2 == 0 { "agent" } else { "customer" }, "{segment}");
    }

    let fields = session["attributes"]["contact_lens"]["segments"].as_object().unwrap();
    assert_eq!(fields.len(), extra.len(), "only the turns with fields of their own: {fields:?}");
    for (n, key, value) in &extra {
        let id = id_of(&session, &format!("turn {n}"));
        assert_eq!(fields[id], json!({ key.to_string(): value }), "turn {n} ({id})");
    }
    assert_one_note_about_repeated_ids(&session);
}

/// The same in chat, where each message's sentiment also hangs off its
/// `Id`: the k-th message with the `Id` takes the k-th mention of it.
#[test]
fn contact_lens_chat_messages_that_repeat_an_id_keep_their_own_ids_fields_and_sentiment() {
    let sentiments = ["NEUTRAL", "NEGATIVE", "NEUTRAL", "NEGATIVE", "POSITIVE", "NEUTRAL", "POSITIVE", "POSITIVE"];
    let transcript: Vec<Value> = (1..=8)
        .map(|n| {
            let mut message = json!({
                "AbsoluteTime": format!("2026-11-20T09:00:{:02}.000Z", 10 + n * 3),
                "Content": format!("message {n}"), "ContentType": "text/plain", "Type": "MESSAGE",
                "Id": PLACEHOLDER, "ParticipantRole": if n % 2 == 1 { "AGENT" } else { "CUSTOMER" },
            });
            if n == 3 {
                message["Redaction"] = json!({"CharacterOffsets": [{"BeginOffsetChar": 0, "EndOffsetChar": 7}]});
            }
            message
        })
        .collect();
    let groups: Vec<Value> = sentiments
        .iter()
        .map(|s| json!({"Sentiment": s, "ProgressiveScore": 0.5, "TranscriptItems": [{"Id": PLACEHOLDER}]}))
        .collect();
    let analysis = json!({
        "Version": "CHAT-2022-11-30", "Channel": "CHAT", "JobStatus": "COMPLETED", "LanguageCode": "en-US",
        "ConversationCharacteristics": {"Sentiment": {"DetailsByTranscriptItemGroup": groups}},
        "Transcript": transcript,
    });
    let session = session_of(&analysis, "CHAT");

    let ids = segment_ids(&session);
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 8, "{ids:?}");
    let got: Vec<&str> =
        session["segments"].as_array().unwrap().iter().map(|s| s["sentiment"].as_str().unwrap()).collect();
    assert_eq!(got, sentiments.map(str::to_lowercase));
    // Every message keeps its `ContentType`; only the third has a redaction.
    let fields = session["attributes"]["contact_lens"]["segments"].as_object().unwrap();
    assert_eq!(fields.len(), 8, "{fields:?}");
    let redacted: Vec<&String> =
        fields.iter().filter(|(_, f)| f.get("Redaction").is_some()).map(|(id, _)| id).collect();
    assert_eq!(redacted, [id_of(&session, "message 3")]);
    assert_one_note_about_repeated_ids(&session);
}
