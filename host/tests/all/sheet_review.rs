//! Review and dispute on stored sheets, on both backends: every transition
//! of an item's state machine and every forbidden one, the audit records
//! they leave, the reviewed score, sampling and calibration.

use callqa::qa::sheet_store::review::{ManualItem, Refusal, ReviewOutcome};
use callqa::qa::sheet_store::{SheetFilter, SheetStore, SheetStoreUrl};
use callqa::qa::ItemStatus;
use chrono::{Duration, Utc};

use crate::common;
use crate::sheet_store::Backend;

/// agent-5012's chat: chase-follow-up failed, the rest passed (0.6667).
const CHAT: &str = "68045dda-4d29-51c4-9cf4-4bfe11b8159b";
/// agent-3318's call: four items failed.
const CALL: &str = "3baf6490-0382-537a-b41c-4c732c1da523";

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $scenario() { super::$scenario(crate::sheet_store::Backend::Sqlite) })*
        }
        mod on_postgres {
            $(#[test] fn $scenario() { super::$scenario(crate::sheet_store::Backend::Postgres) })*
        }
    };
}

on_both_backends!(
    a_review_keeps_the_machine_verdict_rescores_and_is_audited,
    disputes_follow_the_state_machine,
    sampling_is_per_agent_and_reproducible,
    calibration_reports_agreement_per_item_and_with_the_machine,
);

/// A store holding the sample sessions' sheets.
fn checked_store(backend: Backend, dir: &std::path::Path) -> (String, SheetStore) {
    let url = backend.store(dir, "sheets");
    let output = common::callqa()
        .args(["check", "--rules", "samples/rules.toml", "--sheets", &url, "--out"])
        .arg(dir.join("sheets.ndjson"))
        .arg("samples/sessions")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let store = SheetStoreUrl::parse(&url).unwrap().open().unwrap();
    (url, store)
}

fn refusal(err: anyhow::Error) -> Refusal {
    err.downcast::<Refusal>().unwrap_or_else(|e| panic!("not a refusal: {e:#}"))
}

fn a_review_keeps_the_machine_verdict_rescores_and_is_audited(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = checked_store(backend, dir.path());
    let now = Utc::now();
    let before = store.sheet_view(CHAT).unwrap().unwrap();
    assert_eq!(before.sheet.score, Some(0.6667));
    assert!(before.reviewed_at.is_none());

    // Overturned: the people's outcome beside the machine's, the score from it.
    store
        .review_item(CHAT, "chase-follow-up", "rita", ReviewOutcome::Pass, Some("promised and called back"), now)
        .unwrap();
    let view = store.sheet_view(CHAT).unwrap().unwrap();
    let item = view.items.iter().find(|i| i.rule_id == "chase-follow-up").unwrap();
    assert_eq!((item.machine_outcome.as_str(), item.outcome.as_str()), ("fail", "pass"));
    assert_eq!(view.machine.score, Some(0.6667), "the machine's sheet is kept as it was");
    assert_eq!(view.sheet.score, Some(1.0));
    assert!(view.reviewed_at.is_some());
    let audit = &view.audit[0];
    assert_eq!((audit.actor.as_str(), audit.action.as_str()), ("rita", "review"));
    assert_eq!(audit.before.as_ref().unwrap()["outcome"], "fail");
    assert_eq!(audit.after.as_ref().unwrap()["outcome"], "pass");
    assert_eq!(audit.reason.as_deref(), Some("promised and called back"));

    // The list shows the reviewed score and outcomes, and filters on review.
    let reviewed = store.list(&SheetFilter { reviewed: Some(true), limit: 100, ..SheetFilter::default() }).unwrap();
    assert_eq!(reviewed.len(), 1);
    assert_eq!((reviewed[0].score, reviewed[0].reviewed), (Some(1.0), true));
    assert!(reviewed[0].failed.is_empty());
    let failed_chase = store
        .list(&SheetFilter {
            rule: Some("chase-follow-up".into()),
            outcome: Some(ItemStatus::Fail),
            limit: 100,
            ..SheetFilter::default()
        })
        .unwrap();
    assert!(failed_chase.iter().all(|r| r.session_id != CHAT), "reviewed to pass: no longer a failed chase item");
    let unreviewed = store.list(&SheetFilter { reviewed: Some(false), limit: 100, ..SheetFilter::default() }).unwrap();
    assert_eq!(unreviewed.len(), 16);

    // Confirmed back to the machine's outcome: a second review, audited too.
    store.review_item(CHAT, "chase-follow-up", "sam", ReviewOutcome::Fail, None, now).unwrap();
    let view = store.sheet_view(CHAT).unwrap().unwrap();
    assert_eq!(view.sheet.score, Some(0.6667));
    assert_eq!(view.audit.len(), 2);
    assert_eq!(view.reviews.len(), 2);

    // A manual item counts in the score; the machine's sheet has no such item.
    let manual = ManualItem {
        question: "Did the agent verify the customer's identity?".into(),
        outcome: ReviewOutcome::Fail,
        weight: 1.0,
        section: None,
        comment: Some("no verification".into()),
    };
    let id = store.add_manual_item(CHAT, "rita", &manual, now).unwrap();
    assert_eq!(id, "manual:1");
    let view = store.sheet_view(CHAT).unwrap().unwrap();
    assert!(view.sheet.score.unwrap() < 0.6667, "{:?}", view.sheet.score);
    assert!(view.sheet.items.iter().any(|i| i.rule_id == "manual:1" && i.outcome == ItemStatus::Fail));
    assert!(!view.machine.items.iter().any(|i| i.rule_id == "manual:1"));
    assert_eq!(view.audit.last().unwrap().action, "add-manual-item");

    // Forbidden: an unknown item or sheet, an empty question.
    assert!(matches!(
        refusal(store.review_item(CHAT, "no-such-rule", "rita", ReviewOutcome::Pass, None, now).unwrap_err()),
        Refusal::NotFound(_)
    ));
    assert!(matches!(
        refusal(store.review_item("no-such-session", "x", "rita", ReviewOutcome::Pass, None, now).unwrap_err()),
        Refusal::NotFound(_)
    ));
    let empty = ManualItem { question: " ".into(), ..manual };
    assert!(matches!(refusal(store.add_manual_item(CHAT, "rita", &empty, now).unwrap_err()), Refusal::Invalid(_)));
}

fn disputes_follow_the_state_machine(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = checked_store(backend, dir.path());
    let now = Utc::now();
    let week = Duration::days(7);

    // Machine verdict disputed: against nobody; accepted → overturned.
    let id = store.dispute(CALL, "greeting-hotline", "agent-3318", "I did greet", week, now).unwrap();
    let view = store.sheet_view(CALL).unwrap().unwrap();
    let machine_score = view.sheet.score;
    assert_eq!(view.disputes[0].against, None);
    assert_eq!(view.disputes[0].state, "open");
    // A disputed item is not reviewed, nor disputed again.
    assert!(matches!(
        refusal(store.review_item(CALL, "greeting-hotline", "rita", ReviewOutcome::Fail, None, now).unwrap_err()),
        Refusal::Conflict(_)
    ));
    assert!(matches!(
        refusal(store.dispute(CALL, "greeting-hotline", "agent-3318", "again", week, now).unwrap_err()),
        Refusal::Conflict(_)
    ));
    let resolved = store.resolve_dispute(id, "rita", true, "the greeting is at 0:03", true, now).unwrap();
    assert_eq!((resolved.state.as_str(), resolved.resolved_by.as_deref()), ("accepted", Some("rita")));
    let view = store.sheet_view(CALL).unwrap().unwrap();
    let item = view.items.iter().find(|i| i.rule_id == "greeting-hotline").unwrap();
    assert_eq!((item.machine_outcome.as_str(), item.outcome.as_str()), ("fail", "pass"));
    assert!(view.sheet.score > machine_score || machine_score == Some(0.0));
    let actions: Vec<&str> = view.audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["dispute", "resolve-dispute", "overturn-by-dispute"]);
    // Resolved once; an item is disputed once.
    assert!(matches!(
        refusal(store.resolve_dispute(id, "sam", false, "no", true, now).unwrap_err()),
        Refusal::Conflict(_)
    ));
    assert!(matches!(
        refusal(store.dispute(CALL, "greeting-hotline", "agent-3318", "more", week, now).unwrap_err()),
        Refusal::Conflict(_)
    ));

    // A reviewer's verdict disputed: not resolved by that reviewer while
    // another exists; rejected by another, the outcome stands.
    store.review_item(CALL, "silence-voice", "rita", ReviewOutcome::Fail, Some("long hold"), now).unwrap();
    let id = store.dispute(CALL, "silence-voice", "agent-3318", "the system was slow", week, now).unwrap();
    assert_eq!(store.sheet_view(CALL).unwrap().unwrap().disputes[1].against.as_deref(), Some("rita"));
    assert!(matches!(
        refusal(store.resolve_dispute(id, "rita", false, "mine stands", true, now).unwrap_err()),
        Refusal::Forbidden(_)
    ));
    let score_before = store.sheet_view(CALL).unwrap().unwrap().sheet.score;
    store.resolve_dispute(id, "sam", false, "the silence is 40 s", true, now).unwrap();
    let view = store.sheet_view(CALL).unwrap().unwrap();
    assert_eq!(view.sheet.score, score_before, "a rejected dispute changes nothing");
    assert_eq!(view.items.iter().find(|i| i.rule_id == "silence-voice").unwrap().outcome, "fail");
    assert_eq!(store.disputes(Some("open")).unwrap().len(), 0);
    assert_eq!(store.disputes(None).unwrap().len(), 2);

    // The only reviewer may resolve a dispute of their own verdict.
    store.review_item(CALL, "talk-speed-en", "rita", ReviewOutcome::Fail, None, now).unwrap();
    let id = store.dispute(CALL, "talk-speed-en", "agent-3318", "normal pace", week, now).unwrap();
    store.resolve_dispute(id, "rita", false, "too fast", false, now).unwrap();

    // The window: counted from the sheet's latest verdict (here, the review).
    let late = now + Duration::days(8);
    assert!(matches!(
        refusal(store.dispute(CALL, "forbidden-phrases", "agent-3318", "late", week, late).unwrap_err()),
        Refusal::Conflict(_)
    ));
    // Comments are required.
    assert!(matches!(
        refusal(store.dispute(CALL, "forbidden-phrases", "agent-3318", "", week, now).unwrap_err()),
        Refusal::Invalid(_)
    ));

    // Acknowledged once.
    store.acknowledge(CALL, "agent-3318", now).unwrap();
    assert!(matches!(refusal(store.acknowledge(CALL, "agent-3318", now).unwrap_err()), Refusal::Conflict(_)));
    let view = store.sheet_view(CALL).unwrap().unwrap();
    assert!(view.acknowledged_at.is_some());
    assert_eq!(view.audit.last().unwrap().action, "acknowledge");
}

fn sampling_is_per_agent_and_reproducible(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, store) = checked_store(backend, dir.path());
    let now = Utc::now();
    let all = SheetFilter { limit: 1000, ..SheetFilter::default() };
    let reviewers = ["rita".to_string(), "sam".to_string()];
    let report = store.assign(&all, 0.05, 42, &reviewers, "admin", now).unwrap();
    // 5% of each agent's sheets, at least one: one per agent.
    let agents = report.candidates.len();
    let assigned: usize = report.assigned.values().map(Vec::len).sum();
    assert_eq!(assigned, agents);
    assert!(report.assigned.len() == 2, "dealt to both reviewers: {report:?}");
    // Assigned sheets are not assigned again.
    let again = store.assign(&all, 1.0, 42, &reviewers, "admin", now).unwrap();
    let again_count: usize = again.assigned.values().map(Vec::len).sum();
    assert_eq!(again_count, 17 - assigned);

    // The same seed over the same sheets picks the same ones, from the CLI too.
    let pick = |seed: &str| {
        let dir = tempfile::tempdir().unwrap();
        let (url, _) = checked_store(backend, dir.path());
        let output = common::callqa()
            .args(["sheets", "assign", "--store", &url, "--sample", "50%", "--by", "agent", "--seed", seed])
            .args(["--reviewer", "rita", "--reviewer", "sam", "--format", "json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()["assigned"].clone()
    };
    let (a, b, c) = (pick("7"), pick("7"), pick("8"));
    assert_eq!(a, b);
    assert_ne!(a, c, "another seed draws other sheets");
    let rita = store.list(&SheetFilter { assigned_to: Some("rita".into()), ..all.clone() }).unwrap();
    assert_eq!(rita.len(), report.assigned["rita"].len() + again.assigned.get("rita").map_or(0, Vec::len));
    let bad = common::callqa()
        .args(["sheets", "assign", "--store", &url, "--sample", "150%", "--reviewer", "rita"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("150%"), "{}", String::from_utf8_lossy(&bad.stderr));
}

fn calibration_reports_agreement_per_item_and_with_the_machine(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = checked_store(backend, dir.path());
    let now = Utc::now();
    // chase-follow-up (machine: fail): rita and sam say fail, tom says pass.
    store.calibrate(CHAT, "chase-follow-up", "rita", ReviewOutcome::Fail, None, now).unwrap();
    store.calibrate(CHAT, "chase-follow-up", "sam", ReviewOutcome::Pass, None, now).unwrap();
    store.calibrate(CHAT, "chase-follow-up", "sam", ReviewOutcome::Fail, Some("changed my mind"), now).unwrap();
    store.calibrate(CHAT, "chase-follow-up", "tom", ReviewOutcome::Pass, None, now).unwrap();
    let report = store.calibration(CHAT).unwrap();
    assert_eq!(report.reviewers, ["rita", "sam", "tom"]);
    let chase = report.items.iter().find(|i| i.rule_id == "chase-follow-up").unwrap();
    assert_eq!(chase.machine, "fail");
    // Pairs: rita-sam agree, rita-tom and sam-tom do not.
    assert_eq!(chase.agreement, Some(1.0 / 3.0));
    assert_eq!(chase.machine_agreement, Some(2.0 / 3.0));
    // Calibration changes nothing on the sheet.
    let view = store.sheet_view(CHAT).unwrap().unwrap();
    assert!(view.reviewed_at.is_none());
    assert_eq!(view.sheet.score, Some(0.6667));
}
