//! Each Amazon Connect adapter on its sample file (`samples/connect/`):
//! contact records, Contact Lens voice and chat output, business events.
//! Unknown fields are kept, never an error.

use crate::common;
use std::path::PathBuf;

use callqa::session::adapters::{
    find_analysis_files, read_contact_records, read_events, Analysis, ContactRecord, EventTarget,
};
use callqa::session::{Channel, InitiationMethod, Role, Sentiment};
use chrono::NaiveDate;
use serde_json::{json, Value};

const LEG_A: &str = "3f1c9e52-7d4a-4b8e-9c21-5a6d7e8f9a01";
const LEG_B: &str = "3f1c9e52-7d4a-4b8e-9c21-5a6d7e8f9a02";
const HOTLINE: &str = "8b2d4f61-1c3e-4a5b-8d7f-2e4c6a8b0c11";
const CHAT: &str = "c47e2a93-5f1b-4d6c-a8e9-7b3d5f1a2c21";
const CORRUPT: &str = "d9a1b3c5-7e2f-4a6b-9c8d-1e3f5a7b9c31";

fn connect(rel: &str) -> PathBuf {
    common::repo_root().join("samples/connect").join(rel)
}

fn sample_records() -> Vec<ContactRecord> {
    read_contact_records(&connect("ctr"), None)
        .unwrap()
        .into_iter()
        .map(|(source, r)| r.unwrap_or_else(|e| panic!("{source}: {e:#}")))
        .collect()
}

fn analysis_of(contact: &str) -> Analysis {
    let files = find_analysis_files(&connect("analysis")).unwrap();
    assert!(files.unnamed.is_empty());
    files.by_contact[contact][0].read().unwrap()
}

#[test]
fn contact_records_are_read_from_ndjson_gzip_and_json_arrays_in_hive_partitions() {
    let records = sample_records();
    // part-0001.ndjson: 6; part-0002.ndjson.gz: an update and a redelivery; day=21: a JSON array of 1.
    assert_eq!(records.len(), 9);
    assert_eq!(records.iter().filter(|r| r.contact_id == HOTLINE).count(), 2, "the update comes from the gzip file");
    let only_the_20th = read_contact_records(
        &connect("ctr"),
        Some(NaiveDate::from_ymd_opt(2026, 11, 19).unwrap()..=NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()),
    )
    .unwrap();
    assert_eq!(only_the_20th.len(), 8, "the day=21 partition is outside the range and not read");
}

#[test]
fn a_contact_record_becomes_contact_facts() {
    let b = sample_records().into_iter().find(|r| r.contact_id == LEG_B).unwrap();
    assert_eq!(b.channel, Channel::Voice);
    assert_eq!(b.initiation_method, Some(InitiationMethod::Transfer));
    assert_eq!(b.initial_contact_id.as_deref(), Some(LEG_A));
    assert_eq!(b.previous_contact_id.as_deref(), Some(LEG_A));
    assert_eq!(b.queue.as_deref(), Some("Billing-EN"));
    let agent = b.agent.as_ref().unwrap();
    assert_eq!(agent.id, "agent-ben", "the id is the last part of the agent ARN");
    assert_eq!(agent.username.as_deref(), Some("ben.okafor"));
    assert_eq!(agent.hierarchy, ["North America", "Billing", "Tier 2"]);
    assert_eq!(b.initiated_at.unwrap().to_rfc3339(), "2026-11-20T01:01:00+00:00");
    assert_eq!(b.connected_to_agent_at.unwrap().to_rfc3339(), "2026-11-20T01:01:30+00:00");
    assert_eq!(b.disconnected_at.unwrap().to_rfc3339(), "2026-11-20T01:03:30+00:00");
    assert_eq!(b.last_update.unwrap().to_rfc3339(), "2026-11-20T01:05:10+00:00");
    assert_eq!(
        Value::Object(b.durations.clone()),
        json!({"queue_s": 30, "agent_interaction_s": 120, "customer_hold_s": 22, "after_contact_work_s": 30, "longest_hold_s": 22, "number_of_holds": 1, "contact_s": 150})
    );
    assert_eq!(b.attributes["invoice"], "INV-2026-11-0457");
    // Fields the adapter does not map stay, under their Connect names.
    assert_eq!(b.fields["ContactLens"]["ConversationalAnalytics"]["Configuration"]["Enabled"], true);
    assert_eq!(b.fields["DisconnectReason"], "CUSTOMER_DISCONNECT");
    assert!(b.fields["Agent"]["ARN"].as_str().unwrap().ends_with("/agent/agent-ben"));
    assert!(b.fields["Agent"].get("Username").is_none(), "mapped fields are not duplicated");
}

#[test]
fn unknown_and_unreadable_contact_record_fields_are_kept_not_errors() {
    let r = ContactRecord::from_value(json!({
        "ContactId": "x1", "Channel": "CHAT", "InitiationMethod": "WEBRTC_API",
        "InitiationTimestamp": "yesterday", "SegmentAttributes": {"connect:Subtype": {"ValueString": "connect:Chat"}},
        "Agent": {"Username": "no.arn", "HierarchyGroups": null}
    }))
    .unwrap();
    assert_eq!(r.initiation_method, Some(InitiationMethod::Other));
    assert_eq!(r.initiation_method_raw.as_deref(), Some("WEBRTC_API"));
    assert_eq!(r.initiated_at, None);
    assert_eq!(r.fields["InitiationTimestamp"], "yesterday", "an unreadable instant stays as written");
    assert_eq!(r.fields["SegmentAttributes"]["connect:Subtype"]["ValueString"], "connect:Chat");
    assert_eq!(r.agent.unwrap().id, "no.arn", "without an ARN the username names the agent");

    let err = ContactRecord::from_value(json!({"Channel": "VOICE"})).unwrap_err();
    assert!(format!("{err:#}").contains("ContactId"), "{err:#}");
    let err = ContactRecord::from_value(json!({"ContactId": "x2", "Channel": "SMS"})).unwrap_err();
    assert!(format!("{err:#}").contains("SMS"), "{err:#}");
}

#[test]
fn contact_lens_voice_output_maps_transcript_and_characteristics() {
    // 1.1.0: participants by id, mapped to roles through `Participants`.
    let b = analysis_of(LEG_B);
    assert_eq!(b.channel, Channel::Voice);
    assert_eq!(b.language.as_deref(), Some("en-US"));
    assert_eq!(b.segments.len(), 10);
    let t2 = &b.segments[1];
    assert_eq!((t2.id.as_str(), t2.role, t2.begin_ms, t2.end_ms), ("b-t2", Role::Customer, 6500, 15000));
    assert_eq!(t2.sentiment, Some(Sentiment::Negative));
    assert_eq!(b.segments[0].role, Role::Agent);
    let loudness = b.segments[9].loudness.unwrap();
    assert!((loudness - (71.0 + 70.4 + 70.9) / 3.0).abs() < 1e-3, "the mean of the LoudnessScore list, got {loudness}");

    let c = &b.characteristics;
    assert_eq!(c.total_conversation_ms, Some(117000));
    assert_eq!(c.talk_time_ms, Some(92000));
    assert_eq!(c.interruptions.len(), 3);
    assert!(c.interruptions.iter().all(|i| i.by == Role::Agent));
    assert_eq!((c.interruptions[0].begin_ms, c.interruptions[0].end_ms), (12000, 13500));
    assert_eq!(c.non_talk.len(), 1);
    assert_eq!((c.non_talk[0].begin_ms, c.non_talk[0].end_ms), (40000, 62000));
    assert_eq!(c.categories, ["billing-dispute", "escalation-risk"]);
    let agent = c.roles.iter().find(|r| r.role == Role::Agent).unwrap();
    assert_eq!((agent.words_per_minute, agent.talk_time_ms), (Some(188), Some(57500)));
    let customer = c.roles.iter().find(|r| r.role == Role::Customer).unwrap();
    assert_eq!(customer.overall_sentiment, Some(-2.6));
    assert_eq!(customer.sentiment_by_quarter, [-2.0, -2.5, -3.0, -3.4]);

    // What was not mapped stays, with Contact Lens names.
    assert_eq!(
        b.segment_fields["b-t6"]["OutcomesDetected"][0]["Text"],
        "The second charge is pending and will drop off in five to seven business days"
    );
    assert_eq!(b.fields["CustomModels"][0]["Name"], "billing-terms");
    assert_eq!(
        b.fields["Categories"]["MatchedDetails"]["escalation-risk"]["PointsOfInterest"][1]["BeginOffsetMillis"],
        105000
    );
    assert_eq!(b.fields["Version"], "1.1.0");
    assert!(b.fields.get("Transcript").is_none());
    assert!(
        b.fields.get("ConversationCharacteristics").is_none(),
        "every characteristic of this file was mapped: {:?}",
        b.fields.get("ConversationCharacteristics")
    );

    // VOICE-2022-11-30: role names as participant ids; redaction and issues kept per segment.
    let a = analysis_of(LEG_A);
    assert_eq!(a.segments[0].role, Role::Agent);
    assert_eq!(a.segment_fields["a-t4"]["Redaction"]["RedactedTimestamps"][0]["BeginOffsetMillis"], 23600);
    assert_eq!(a.segment_fields["a-t2"]["IssuesDetected"][0]["Text"], "I was charged twice for my November bill");
    assert!(a.characteristics.interruptions.is_empty() && a.characteristics.non_talk.is_empty());
}

#[test]
fn contact_lens_chat_output_maps_messages_offsets_and_response_times() {
    let chat = analysis_of(CHAT);
    assert_eq!(chat.channel, Channel::Chat);
    assert_eq!(chat.contact_id.as_deref(), Some(CHAT), "from CustomerMetadata.ContactId");
    assert_eq!(chat.started_at.unwrap().to_rfc3339(), "2026-11-20T05:30:03+00:00", "the first message");
    let ids: Vec<_> = chat.segments.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["c-m1", "c-m2", "c-m3", "c-m4", "c-m5", "c-m6", "c-m7", "c-m8"], "events are not segments");
    let m3 = &chat.segments[2];
    assert_eq!(
        (m3.role, m3.begin_ms, m3.end_ms),
        (Role::Agent, 100_000, 100_000),
        "offset from the first message's AbsoluteTime"
    );
    assert_eq!(chat.segments[0].role, Role::System);
    assert_eq!(chat.segments[1].sentiment, Some(Sentiment::Negative));
    assert_eq!(chat.segments[6].sentiment_score, Some(2.5), "the group's ProgressiveScore");
    assert_eq!(chat.transcript_events.len(), 4);

    let c = &chat.characteristics;
    assert_eq!(c.agent_greeting_ms, Some(48000));
    let agent = c.roles.iter().find(|r| r.role == Role::Agent).unwrap();
    assert_eq!(
        (agent.average_response_ms, agent.maximum_response_ms, agent.overall_sentiment),
        (Some(89333), Some(155000), Some(1.1))
    );
    let customer = c.roles.iter().find(|r| r.role == Role::Customer).unwrap();
    assert_eq!((customer.average_response_ms, customer.maximum_response_ms), (Some(21000), Some(25000)));
    assert!(customer.sentiment_by_quarter.is_empty());
    assert_eq!(c.categories, ["damaged-item"]);
    let cc = &chat.fields["ConversationCharacteristics"];
    assert_eq!(
        cc["ResponseTime"]["DetailsByParticipantRole"]["AGENT"]["Maximum"]["TranscriptItems"][0]["Id"], "c-m6",
        "which message waited longest is kept"
    );
    assert_eq!(cc["Sentiment"]["SentimentShift"]["DetailsByParticipantRole"]["CUSTOMER"]["EndScore"], 2.5);
    assert!(cc["Sentiment"].get("DetailsByTranscriptItemGroup").is_none());
}

#[test]
fn a_corrupt_analysis_file_is_an_error_naming_the_position() {
    let files = find_analysis_files(&connect("analysis")).unwrap();
    let err = files.by_contact[CORRUPT][0].read().unwrap_err();
    assert!(format!("{err:#}").contains("malformed JSON at line"), "{err:#}");
    let err = Analysis::from_json(r#"{"Version": "1.1.0", "Channel": "VOICE"}"#).unwrap_err();
    assert!(format!("{err:#}").contains("no Transcript"), "{err:#}");
    let err = Analysis::from_json(r#"{"Version": "1.1.0", "Channel": "VOICE", "JobStatus": "FAILED"}"#).unwrap_err();
    assert!(format!("{err:#}").contains("JobStatus FAILED"), "{err:#}");
}

#[test]
fn the_original_analysis_file_is_preferred_to_its_redacted_twin_and_newer_to_older() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "c1_analysis_redacted_2026-11-20T01_00_00Z.json",
        "c1_analysis_2026-11-20T01_00_00Z.json",
        "c1_analysis_2026-11-21T01_00_00Z.json",
        "export.json",
    ] {
        std::fs::write(dir.path().join(name), "{}").unwrap();
    }
    let files = find_analysis_files(dir.path()).unwrap();
    let names: Vec<_> = files.by_contact["c1"].iter().map(|f| f.path.file_name().unwrap().to_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "c1_analysis_2026-11-21T01_00_00Z.json",
            "c1_analysis_2026-11-20T01_00_00Z.json",
            "c1_analysis_redacted_2026-11-20T01_00_00Z.json"
        ]
    );
    assert_eq!(files.unnamed.len(), 1, "a name without the contact id is read to learn it");
}

#[test]
fn business_events_are_read_with_their_join_key() {
    let events: Vec<_> = read_events(&connect("events.ndjson"))
        .unwrap()
        .into_iter()
        .map(|(s, e)| e.unwrap_or_else(|e| panic!("{s}: {e:#}")))
        .collect();
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].target, EventTarget::Session(LEG_A.into()));
    assert_eq!(events[0].event.kind, "ticket-created");
    assert_eq!(events[0].event.attributes["source"], "zendesk", "extra fields join the attributes");
    assert_eq!(events[1].target, EventTarget::Contact(LEG_B.into()));
    assert_eq!(events[3].event.at.to_rfc3339(), "2026-11-20T05:34:33+00:00", "epoch milliseconds are read too");
}
