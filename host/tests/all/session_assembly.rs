//! Sessions assembled from Amazon Connect data: the latest version of each
//! contact record, transfer chains as one session with each leg's agent on
//! its segments, analyses and events joined, problems in `notes`.

use crate::common;
use std::collections::BTreeMap;

use callqa::session::adapters::{find_analysis_files, read_contact_records, Analysis, ContactRecord};
use callqa::session::assembler::{assemble, group_chains, latest_versions, LegAnalysis};
use callqa::session::{Event, Role};
use serde_json::json;

const LEG_A: &str = "3f1c9e52-7d4a-4b8e-9c21-5a6d7e8f9a01";
const LEG_B: &str = "3f1c9e52-7d4a-4b8e-9c21-5a6d7e8f9a02";
const HOTLINE: &str = "8b2d4f61-1c3e-4a5b-8d7f-2e4c6a8b0c11";

fn records() -> Vec<((), ContactRecord)> {
    let dir = common::repo_root().join("samples/connect/ctr");
    read_contact_records(&dir, None).unwrap().into_iter().map(|(_, r)| ((), r.unwrap())).collect()
}

fn analyses_for(ids: &[&str]) -> BTreeMap<String, LegAnalysis> {
    let files = find_analysis_files(&common::repo_root().join("samples/connect/analysis")).unwrap();
    ids.iter()
        .map(|id| {
            (
                id.to_string(),
                LegAnalysis { analysis: Some(files.by_contact[*id][0].read().unwrap()), problems: Vec::new() },
            )
        })
        .collect()
}

fn legs_of(chain: &[((), ContactRecord)]) -> Vec<ContactRecord> {
    chain.iter().map(|(_, r)| r.clone()).collect()
}

fn simple(id: &str, initiated: &str) -> ContactRecord {
    ContactRecord::from_value(json!({
        "ContactId": id, "Channel": "VOICE", "InitiationMethod": "INBOUND", "InitiationTimestamp": initiated,
        "Agent": {"ARN": format!("arn:aws:connect:r:1:instance/i/agent/ag-{id}"), "ConnectedToAgentTimestamp": initiated}
    }))
    .unwrap()
}

#[test]
fn a_transfer_chain_becomes_one_session_with_each_legs_agent_on_its_segments() {
    let (latest, _) = latest_versions(records());
    let chains = group_chains(latest);
    let chain = chains.iter().find(|c| c.iter().any(|(_, r)| r.contact_id == LEG_A)).unwrap();
    assert_eq!(
        chain.iter().map(|(_, r)| r.contact_id.as_str()).collect::<Vec<_>>(),
        [LEG_A, LEG_B],
        "legs in conversation order"
    );

    let session = assemble(&legs_of(chain), &analyses_for(&[LEG_A, LEG_B]), Vec::new()).unwrap();
    assert_eq!(session.id, LEG_A, "the session is named after the initial contact");
    assert_eq!(session.contact.contact_id, LEG_A);
    assert_eq!(session.contact.queue.as_deref(), Some("Support-EN"), "the queue the customer came in through");
    assert_eq!(session.contact.agent.as_ref().unwrap().id, "agent-ben", "the agent of the last leg");
    assert_eq!(session.contact.ended_at.unwrap().to_rfc3339(), "2026-11-20T01:03:30+00:00", "when the last leg ended");
    assert_eq!(session.agents.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["agent-ava", "agent-ben"]);
    assert_eq!(session.agent_of("a-t1").unwrap().id, "agent-ava");
    assert_eq!(session.agent_of("b-t3").unwrap().id, "agent-ben");
    assert_eq!(session.agent_of("b-t3").unwrap().hierarchy, ["North America", "Billing", "Tier 2"]);

    // Leg B's recording began 70 s after leg A's (agent connect times).
    let segments = session.segments();
    assert_eq!(segments.len(), 16);
    let b1 = segments.iter().find(|s| s.id == "b-t1").unwrap();
    assert_eq!((b1.begin_ms, b1.end_ms), (71_000, 76_000));
    let c = session.characteristics.as_ref().unwrap();
    assert_eq!(c.total_conversation_ms, Some(187_000));
    assert_eq!(c.interruptions.iter().map(|i| i.begin_ms).collect::<Vec<_>>(), [82_000, 98_000, 163_000]);
    assert_eq!((c.non_talk[0].begin_ms, c.non_talk[0].end_ms), (110_000, 132_000));
    let agent = c.roles.iter().find(|r| r.role == Role::Agent).unwrap();
    assert_eq!(
        agent.words_per_minute,
        Some(178),
        "weighted by each leg's agent talk time: (152*20700 + 188*57500) / 78200"
    );
    let customer = c.roles.iter().find(|r| r.role == Role::Customer).unwrap();
    assert_eq!(customer.sentiment_by_quarter, [-2.0, -2.5, -3.0, -3.4], "the ending is the last leg's");
    assert_eq!(c.categories, ["billing-dispute", "escalation-risk"]);

    let connect = &session.attributes["connect"];
    assert_eq!(connect["legs"].as_array().unwrap().len(), 2);
    assert_eq!(connect["attributes"]["invoice"], "INV-2026-11-0457", "contact attributes of every leg");
    assert_eq!(connect["durations"]["agent_interaction_s"], 160);
    assert_eq!(connect["durations"]["contact_s"], 210);
    assert_eq!(
        session.attributes["contact_lens"]["segments"]["a-t4"]["Redaction"]["RedactedTimestamps"][0]["EndOffsetMillis"],
        25800
    );
    assert_eq!(session.attributes["contact_lens"]["contacts"][LEG_B]["Version"], "1.1.0");
    assert!(session.notes.is_empty(), "{:?}", session.notes);
}

#[test]
fn legs_sharing_an_initial_contact_stay_one_session_when_the_middle_leg_is_missing() {
    let first = simple("k1", "2026-11-20T10:00:00Z");
    let mut third = simple("k3", "2026-11-20T10:09:00Z");
    third.initial_contact_id = Some("k1".into());
    third.previous_contact_id = Some("k2".into());
    let unrelated = simple("z9", "2026-11-20T09:00:00Z");
    let chains = group_chains(vec![((), third.clone()), ((), unrelated), ((), first.clone())]);
    assert_eq!(chains.len(), 2);
    assert_eq!(chains[0][0].1.contact_id, "z9", "chains in order of their first leg");
    let legs = legs_of(&chains[1]);
    assert_eq!(legs.iter().map(|l| l.contact_id.as_str()).collect::<Vec<_>>(), ["k1", "k3"]);
    let session = assemble(&legs, &BTreeMap::new(), Vec::new()).unwrap();
    assert_eq!(session.id, "k1");
    assert!(session.notes.iter().any(|n| n.contains("k2") && n.contains("missing")), "{:?}", session.notes);
}

#[test]
fn the_latest_version_of_a_contact_record_wins_and_duplicates_collapse() {
    let recs = records();
    let total = recs.len();
    let (latest, dropped) = latest_versions(recs);
    assert_eq!(dropped, 2, "the hotline's first version, and leg A delivered twice");
    assert_eq!(latest.len(), total - 2);
    let hotline = latest.iter().find(|(_, r)| r.contact_id == HOTLINE).unwrap();
    assert_eq!(hotline.1.last_update.unwrap().to_rfc3339(), "2026-11-20T03:10:00+00:00");

    // Whatever order the versions arrive in.
    let mut reversed: Vec<_> = records().into_iter().filter(|(_, r)| r.contact_id == HOTLINE).collect();
    reversed.reverse();
    let (latest, _) = latest_versions(reversed);
    assert_eq!(latest[0].1.attributes["scenario"], "hotline");
}

#[test]
fn an_update_of_a_contact_record_after_its_analysis_changes_the_contact_facts() {
    let versions: Vec<ContactRecord> =
        records().into_iter().map(|(_, r)| r).filter(|r| r.contact_id == HOTLINE).collect();
    let (before, after) = (&versions[0], &versions[1]);
    assert!(before.last_update < after.last_update);
    let analyses = analyses_for(&[HOTLINE]);
    let old = assemble(std::slice::from_ref(before), &analyses, Vec::new()).unwrap();
    let new = assemble(std::slice::from_ref(after), &analyses, Vec::new()).unwrap();
    assert_eq!(old.contact.scenario, None);
    assert_eq!(new.contact.scenario.as_deref(), Some("hotline"), "after-contact work set the scenario");
    assert_eq!(new.attributes["connect"]["attributes"]["disposition"], "repair-booked");
    assert_eq!(new.attributes["connect"]["durations"]["after_contact_work_s"], 45);
    assert!(old.attributes["connect"]["durations"].get("after_contact_work_s").is_none());
    assert_eq!(old.segments, new.segments, "the analysis is the same");
}

#[test]
fn a_leg_without_a_usable_analysis_is_noted_and_has_no_transcript() {
    let leg = simple("n1", "2026-11-20T10:00:00Z");
    let missing = assemble(std::slice::from_ref(&leg), &BTreeMap::new(), Vec::new()).unwrap();
    assert!(!missing.has_transcript() && missing.characteristics.is_none());
    assert!(missing.notes.iter().any(|n| n.contains("no Contact Lens analysis")), "{:?}", missing.notes);

    let broken = BTreeMap::from([(
        "n1".to_string(),
        LegAnalysis {
            analysis: None,
            problems: vec!["Contact Lens analysis file n1_analysis_x.json is unusable: malformed JSON".into()],
        },
    )]);
    let session = assemble(std::slice::from_ref(&leg), &broken, Vec::new()).unwrap();
    assert!(!session.has_transcript());
    assert!(session.notes.iter().any(|n| n.contains("n1_analysis_x.json is unusable")), "{:?}", session.notes);

    // A contact that never reached an agent was never going to be analysed.
    let abandoned = ContactRecord::from_value(
        json!({"ContactId": "n2", "Channel": "VOICE", "InitiationTimestamp": "2026-11-20T10:00:00Z"}),
    )
    .unwrap();
    let session = assemble(&[abandoned], &BTreeMap::new(), Vec::new()).unwrap();
    assert!(session.notes.is_empty(), "{:?}", session.notes);
}

#[test]
fn chat_legs_line_up_on_their_absolute_times_and_segment_ids_stay_unique() {
    let text = std::fs::read_to_string(
        common::repo_root().join("samples/connect/analysis/Analysis/Chat/2026/11/20/c47e2a93-5f1b-4d6c-a8e9-7b3d5f1a2c21_analysis_2026-11-20T05_36_40Z.json"),
    )
    .unwrap();
    let first = Analysis::from_json(&text).unwrap();
    // The same chat moved 10 minutes later stands in for a second leg.
    let later = Analysis::from_json(&text.replace("2026-11-20T05:3", "2026-11-20T05:4")).unwrap();
    let mut leg1 = ContactRecord::from_value(json!({"ContactId": "h1", "Channel": "CHAT", "InitiationTimestamp": "2026-11-20T05:30:00Z", "Agent": {"ARN": "arn:x/agent/one"}})).unwrap();
    let mut leg2 = ContactRecord::from_value(json!({"ContactId": "h2", "Channel": "CHAT", "InitiationTimestamp": "2026-11-20T05:40:00Z", "Agent": {"ARN": "arn:x/agent/two"}})).unwrap();
    leg1.next_contact_id = Some("h2".into());
    leg2.initial_contact_id = Some("h1".into());
    leg2.previous_contact_id = Some("h1".into());
    let analyses = BTreeMap::from([
        ("h1".to_string(), LegAnalysis { analysis: Some(first), problems: Vec::new() }),
        ("h2".to_string(), LegAnalysis { analysis: Some(later), problems: Vec::new() }),
    ]);
    let session = assemble(&[leg2, leg1], &analyses, Vec::new()).unwrap();
    let second_m1 =
        session.segments().iter().find(|s| s.id == "h2/c-m1").expect("the repeated id is renamed after its contact");
    assert_eq!(second_m1.begin_ms, 600_000, "ten minutes after the first leg's first message");
    assert_eq!(session.agent_of("h2/c-m3").unwrap().id, "two");
    assert_eq!(session.agent_of("c-m3").unwrap().id, "one");
    assert!(session.notes.iter().any(|n| n.contains("renamed")), "{:?}", session.notes);
    let agent = session.characteristics.as_ref().unwrap().roles.iter().find(|r| r.role == Role::Agent).unwrap().clone();
    assert_eq!(agent.maximum_response_ms, Some(155_000));
}

#[test]
fn events_are_attached_in_time_order() {
    let leg = simple("e1", "2026-11-20T10:00:00Z");
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    let events = vec![
        Event { kind: "order".into(), at: at("2026-11-20T10:05:00Z"), attributes: Default::default() },
        Event { kind: "ticket-created".into(), at: at("2026-11-20T10:01:00Z"), attributes: Default::default() },
    ];
    let session = assemble(&[leg], &BTreeMap::new(), events).unwrap();
    assert_eq!(session.events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["ticket-created", "order"]);
}
