//! `callqa check --ctr … --analysis … --events … --date …` and `callqa
//! session build` over `samples/connect/`: the batch equals its golden
//! output, a corrupt analysis file is reported and the run goes on, and a
//! contact record updated after its analysis changes the sheet.

use crate::common;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

const HOTLINE: &str = "8b2d4f61-1c3e-4a5b-8d7f-2e4c6a8b0c11";
const CORRUPT: &str = "d9a1b3c5-7e2f-4a6b-9c8d-1e3f5a7b9c31";
const NEXT_DAY: &str = "f5e7d9c1-3b2a-4c4d-8e6f-0a1b2c3d4e51";

const BATCH: &[&str] = &[
    "--ctr",
    "samples/connect/ctr",
    "--analysis",
    "samples/connect/analysis",
    "--events",
    "samples/connect/events.ndjson",
    "--date",
    "2026-11-20",
];

fn check(extra: &[&str]) -> Output {
    common::callqa().args(["check", "--rules", "samples/connect/rules.toml"]).args(extra).output().unwrap()
}

/// Timing, fuel and module hashes vary with the machine and toolchain.
fn stable(mut sheet: Value) -> Value {
    for item in sheet["items"].as_array_mut().unwrap() {
        let item = item.as_object_mut().unwrap();
        item.remove("micros");
        item.remove("fuel_used");
        item.remove("module_sha256");
    }
    sheet
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Compares with a golden file; `CALLQA_BLESS=1` rewrites it (review the diff).
fn assert_golden(got: &[Value], golden: &str) {
    let path = common::repo_root().join(golden);
    if std::env::var_os("CALLQA_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got.iter().map(|v| format!("{v}\n")).collect::<String>()).unwrap();
    }
    let want = lines(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    assert_eq!(got.len(), want.len(), "line count against {golden}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            g,
            w,
            "{} differs from {golden} (CALLQA_BLESS=1 rewrites it after review)",
            w.get("session_id").or(w.get("id")).unwrap()
        );
    }
}

fn sheet_of<'a>(sheets: &'a [Value], session: &str) -> &'a Value {
    sheets.iter().find(|s| s["session_id"] == session).unwrap_or_else(|| panic!("no sheet for {session}"))
}

fn item_ids(sheet: &Value) -> Vec<&str> {
    sheet["items"].as_array().unwrap().iter().map(|i| i["rule_id"].as_str().unwrap()).collect()
}

#[test]
fn the_batch_over_the_samples_equals_its_golden_sheets() {
    let out = check(BATCH);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let sheets: Vec<Value> = lines(&out.stdout).into_iter().map(stable).collect();
    assert_eq!(sheets.len(), 5, "five conversations on 2026-11-20, the transfer counted once");
    assert_golden(&sheets, "samples/connect/golden/sheets.ndjson");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 sessions inspected"), "{stderr}");
    assert!(stderr.contains("1 with transfers") && stderr.contains("1 sessions outside the day"), "{stderr}");
}

#[test]
fn session_build_writes_the_golden_session_documents() {
    let out = common::callqa().args(["session", "build"]).args(BATCH).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let sessions = lines(&out.stdout);
    assert_golden(&sessions, "samples/connect/golden/sessions.ndjson");
    // What a rule receives is an ordinary session document: `check` reads it back to the same sheets.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.ndjson");
    std::fs::write(&file, &out.stdout).unwrap();
    let from_documents = check(&[file.to_str().unwrap()]);
    assert!(from_documents.status.success(), "{}", String::from_utf8_lossy(&from_documents.stderr));
    let assembled = check(BATCH);
    let strip = |o: &Output| lines(&o.stdout).into_iter().map(stable).collect::<Vec<_>>();
    assert_eq!(strip(&from_documents), strip(&assembled));
}

#[test]
fn a_corrupt_analysis_file_is_reported_and_the_run_goes_on() {
    let out = check(BATCH);
    assert_eq!(out.status.code(), Some(0), "an unusable analysis file is a note, not a rejected document");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("warning: unusable Contact Lens analysis file samples/connect/analysis/Analysis/Voice/2026/11/20/{CORRUPT}_analysis")), "{stderr}");
    let sheets = lines(&out.stdout);
    let sheet = sheet_of(&sheets, CORRUPT);
    let notes: Vec<&str> = sheet["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(notes.iter().any(|n| n.contains("is unusable: malformed JSON")), "{notes:?}");
    for item in sheet["items"].as_array().unwrap() {
        assert_eq!(item["outcome"], "not-applicable", "without a transcript every rule here is n/a: {item}");
    }
    assert!(
        sheets.iter().filter(|s| s["session_id"] != CORRUPT).all(|s| s.get("notes").is_none()),
        "the other sessions are whole"
    );
}

#[test]
fn an_update_of_a_contact_record_after_its_analysis_changes_the_sheet() {
    // Without the later delivery (part-0002.ndjson.gz) the hotline call has
    // no scenario yet, so the hotline greeting standard does not apply.
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("year=2026/month=11/day=20");
    std::fs::create_dir_all(&day).unwrap();
    let samples = common::repo_root().join("samples/connect/ctr/year=2026/month=11/day=20");
    std::fs::copy(samples.join("part-0001.ndjson"), day.join("part-0001.ndjson")).unwrap();
    let mut args: Vec<String> = BATCH.iter().map(|s| s.to_string()).collect();
    args[1] = dir.path().to_str().unwrap().into();
    let before = check(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(before.status.success(), "{}", String::from_utf8_lossy(&before.stderr));
    let before = lines(&before.stdout);
    assert!(!item_ids(sheet_of(&before, HOTLINE)).contains(&"greeting-hotline"));

    std::fs::copy(samples.join("part-0002.ndjson.gz"), day.join("part-0002.ndjson.gz")).unwrap();
    let after = lines(&check(&args.iter().map(String::as_str).collect::<Vec<_>>()).stdout);
    let hotline = sheet_of(&after, HOTLINE);
    let greeting = hotline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["rule_id"] == "greeting-hotline")
        .expect("the update set scenario = hotline");
    assert_eq!(greeting["outcome"], "pass");

    let built = common::callqa().args(["session", "build"]).args(&args).output().unwrap();
    let session = lines(&built.stdout).into_iter().find(|s| s["id"] == HOTLINE).unwrap();
    assert_eq!(session["contact"]["scenario"], "hotline");
    assert_eq!(session["attributes"]["connect"]["durations"]["after_contact_work_s"], 45);
}

#[test]
fn session_documents_and_contact_records_are_checked_together() {
    let mut args = BATCH.to_vec();
    args.push("samples/sessions");
    let out = common::callqa().args(["check", "--rules", "samples/rules.toml"]).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let documents =
        common::callqa().args(["check", "--rules", "samples/rules.toml", "samples/sessions"]).output().unwrap();
    assert_eq!(lines(&out.stdout).len(), lines(&documents.stdout).len() + 5);
}

#[test]
fn the_day_is_a_local_day_in_the_given_time_zone() {
    let ids = |args: &[&str]| -> Vec<String> {
        let out =
            common::callqa().args(["session", "build", "--ctr", "samples/connect/ctr"]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        lines(&out.stdout).into_iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&[]).len(), 6, "without --date, every session read");
    assert_eq!(ids(&["--date", "2026-11-21"]), [NEXT_DAY]);
    // 01:00–07:00 UTC on the 20th is the evening of the 19th in Los Angeles.
    assert_eq!(ids(&["--date", "2026-11-19", "--tz", "America/Los_Angeles"]).len(), 5);
    assert_eq!(ids(&["--date", "2026-11-20", "--tz", "America/Los_Angeles"]), [NEXT_DAY]);
}

#[test]
fn a_malformed_contact_record_or_event_is_reported_and_the_rest_still_get_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let ctr = dir.path().join("ctr");
    std::fs::create_dir_all(&ctr).unwrap();
    let good = std::fs::read_to_string(
        common::repo_root().join("samples/connect/ctr/year=2026/month=11/day=20/part-0001.ndjson"),
    )
    .unwrap();
    std::fs::write(ctr.join("records.ndjson"), format!("{good}{{\"ContactId\": \"broken\", \"Channel\":\n")).unwrap();
    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, "{\"contact_id\": \"x\", \"kind\": \"order\"}\n").unwrap();
    let out = check(&[
        "--ctr",
        ctr.to_str().unwrap(),
        "--analysis",
        "samples/connect/analysis",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "malformed inputs exit 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("records.ndjson:line 7") && stderr.contains("unusable contact record"), "{stderr}");
    assert!(stderr.contains("events.ndjson:line 1") && stderr.contains("`at`"), "{stderr}");
    assert_eq!(lines(&out.stdout).len(), 5, "the six good records make five sessions");
}

#[test]
fn unusable_inputs_exit_2_and_session_build_needs_contact_records() {
    let out = check(&["--ctr", "samples/connect/no-such-dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir"));
    let out = common::callqa().args(["session", "build", "--analysis", "samples/connect/analysis"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap refuses a build without --ctr");
    assert!(Path::new(env!("CARGO_BIN_EXE_callqa")).exists());
}
