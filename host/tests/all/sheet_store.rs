//! The sheet store, on both backends (SQLite embedded, PostgreSQL shared):
//! `check --sheets` keeps every sheet with its session, idempotent by
//! session and ruleset version; a new ruleset adds evaluations and keeps
//! the old; `sheets list` filters as documented.

use std::path::Path;

use callqa::qa::sheet_store::{SheetFilter, SheetStoreUrl};
use callqa::qa::ItemStatus;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common;

/// Each scenario runs once per backend: `scenario_sqlite`, `scenario_postgres`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $scenario() { super::$scenario(super::Backend::Sqlite) })*
        }
        mod on_postgres {
            $(#[test] fn $scenario() { super::$scenario(super::Backend::Postgres) })*
        }
    };
}

on_both_backends!(
    sheets_are_stored_once_per_ruleset_version_and_kept_across_versions,
    the_list_filters_by_day_in_a_zone_team_rule_and_outcome,
    a_rerun_reports_what_a_changed_parameter_would_change_and_records_it_once,
);

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A new, empty store's URL (a file in `dir`, or a fresh database).
    pub fn store(self, dir: &Path, name: &str) -> String {
        match self {
            Backend::Sqlite => format!("sqlite:{}", dir.join(format!("{name}.db")).display()),
            Backend::Postgres => crate::servers::postgres::fresh_database(),
        }
    }
}

fn check(rules: &Path, store: &str, out: &Path) -> String {
    let output = common::callqa()
        .args(["check", "--rules"])
        .arg(rules)
        .arg("--sheets")
        .arg(store)
        .arg("--out")
        .arg(out)
        .arg("samples/sessions")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

fn sheets(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn filter() -> SheetFilter {
    SheetFilter { limit: 1000, ..SheetFilter::default() }
}

fn sheets_are_stored_once_per_ruleset_version_and_kept_across_versions(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store_path = backend.store(&dir.path().join("store"), "sheets");
    let rules = common::repo_root().join("samples/rules.toml");
    let first = check(&rules, &store_path, &dir.path().join("a.ndjson"));
    assert!(first.contains("sheet store: 17 evaluations stored, 0 already stored"), "{first}");
    let again = check(&rules, &store_path, &dir.path().join("b.ndjson"));
    assert!(again.contains("sheet store: 0 evaluations stored, 17 already stored"), "{again}");

    let store = SheetStoreUrl::parse(&store_path).unwrap().open().unwrap();
    assert_eq!(store.count().unwrap(), 17);
    // What is stored is the sheet `check` wrote.
    for sheet in sheets(&dir.path().join("a.ndjson")) {
        let stored = store.sheet(sheet["session_id"].as_str().unwrap()).unwrap().unwrap();
        assert_eq!(stored, sheet);
    }

    // One parameter changed: a new ruleset version, evaluated beside the old.
    let text = std::fs::read_to_string(&rules).unwrap().replacen("within-seconds = ", "within-seconds = 1", 1);
    assert_ne!(text, std::fs::read_to_string(&rules).unwrap(), "the sample ruleset has a within-seconds to change");
    // Every module of the sample ruleset is bundled: it loads from anywhere.
    let changed = dir.path().join("changed.toml");
    std::fs::write(&changed, text).unwrap();
    let third = check(&changed, &store_path, &dir.path().join("c.ndjson"));
    assert!(third.contains("sheet store: 17 evaluations stored, 0 already stored"), "{third}");
    assert_eq!(store.count().unwrap(), 34);
    let latest = store.list(&filter()).unwrap();
    assert_eq!(latest.len(), 17, "one row per session: its latest evaluation");
    let versions: std::collections::BTreeSet<_> = latest.iter().map(|r| r.ruleset_version.clone()).collect();
    assert_eq!(versions.len(), 1);
    let all = store.list(&SheetFilter { all_evaluations: true, ..filter() }).unwrap();
    assert_eq!(all.len(), 34);
}

fn the_list_filters_by_day_in_a_zone_team_rule_and_outcome(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store_path = backend.store(dir.path(), "sheets");
    let out = dir.path().join("sheets.ndjson");
    check(&common::repo_root().join("samples/rules.toml"), &store_path, &out);
    let written = sheets(&out);
    let store = SheetStoreUrl::parse(&store_path).unwrap().open().unwrap();

    // Every failed chase-follow-up item: as many as the sheets say.
    let failed_chase = |s: &Value| {
        s["items"].as_array().unwrap().iter().any(|i| i["rule_id"] == "chase-follow-up" && i["outcome"] == "fail")
    };
    let expected = written.iter().filter(|s| failed_chase(s)).count();
    assert!(expected > 0);
    let rows = store
        .list(&SheetFilter { rule: Some("chase-follow-up".into()), outcome: Some(ItemStatus::Fail), ..filter() })
        .unwrap();
    assert_eq!(rows.len(), expected);
    assert!(rows.iter().all(|r| r.failed.contains(&"chase-follow-up".to_string())));

    // The sessions of one day in Shanghai (UTC+8): from 16:00 UTC the day before.
    let mut sessions: Vec<Value> = Vec::new();
    for path in std::fs::read_dir(common::repo_root().join("samples/sessions")).unwrap().map(|e| e.unwrap().path()) {
        let text = std::fs::read_to_string(&path).unwrap();
        match path.extension().and_then(|x| x.to_str()) {
            Some("json") => sessions.push(serde_json::from_str(&text).unwrap()),
            Some("ndjson") => sessions.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap())),
            _ => {}
        }
    }
    assert_eq!(sessions.len(), 17);
    let start = |s: &Value| {
        let c = &s["contact"];
        c["initiated_at"].as_str().or(c["connected_to_agent_at"].as_str()).map(|t| t.parse::<DateTime<Utc>>().unwrap())
    };
    let (from, to): (DateTime<Utc>, DateTime<Utc>) =
        ("2026-11-19T16:00:00Z".parse().unwrap(), "2026-11-20T16:00:00Z".parse().unwrap());
    let in_day = sessions.iter().filter(|s| start(s).is_some_and(|t| t >= from && t < to)).count();
    let output = common::callqa()
        .args(["sheets", "list", "--store"])
        .arg(&store_path)
        .args(["--since", "2026-11-20", "--until", "2026-11-20", "--tz", "Asia/Shanghai", "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(in_day > 0 && in_day < 17, "the day should hold some sessions, not all: {in_day}");
    assert_eq!(rows.len(), in_day);
    for row in &rows {
        let t: DateTime<Utc> = row["started_at"].as_str().unwrap().parse().unwrap();
        assert!(t >= from && t < to, "{row}");
    }

    // One level of the hierarchy, wherever it sits in the path.
    let team = store.list(&SheetFilter { team: Some("售后".into()), ..filter() }).unwrap();
    assert!(!team.is_empty());
    assert!(team.iter().all(|r| r.team.as_deref().unwrap().split('/').any(|level| level == "售后")), "{team:?}");
    let none = store.list(&SheetFilter { team: Some("售".into()), ..filter() }).unwrap();
    assert!(none.is_empty(), "a part of a level's name is not the level");

    let csv = common::callqa()
        .args(["sheets", "list", "--store"])
        .arg(&store_path)
        .args(["--min-score", "1", "--format", "csv"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&csv.stdout);
    let perfect = written.iter().filter(|s| s["score"].as_f64().is_some_and(|x| x >= 1.0)).count();
    assert_eq!(text.lines().count(), perfect + 1, "{text}");
    assert!(text.starts_with("started_at,session_id,queue,agent,team,grade,complete,failed,ruleset,score"));
}

#[test]
fn a_store_from_a_newer_callqa_is_refused_and_bad_urls_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sheets.db");
    drop(SheetStoreUrl::parse(path.to_str().unwrap()).unwrap().open().unwrap());
    // Reopening applies nothing twice.
    drop(SheetStoreUrl::parse(path.to_str().unwrap()).unwrap().open().unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = format!("{:#}", SheetStoreUrl::parse(path.to_str().unwrap()).unwrap().open().err().unwrap());
    assert!(err.contains("schema version 99, newer than this callqa knows"), "{err}");
    let err = SheetStoreUrl::parse("sheets.ndjson").unwrap_err().to_string();
    assert!(err.contains("is not a sheet store"), "{err}");
    let err = format!("{:#}", SheetStoreUrl::parse("postgres://callqa@127.0.0.1:1/qa").unwrap().open().err().unwrap());
    assert!(err.contains("cannot connect to the sheet store postgres://127.0.0.1:1/qa"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_keeps_real_time_sheets_in_sqlite() {
    serve_keeps_real_time_sheets_in_the_store(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_keeps_real_time_sheets_in_postgres() {
    serve_keeps_real_time_sheets_in_the_store(Backend::Postgres).await
}

async fn serve_keeps_real_time_sheets_in_the_store(backend: Backend) {
    use crate::serve_support::{sample_ctr_ndjson, Server};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let store_path = backend.store(dir.path(), "sheets");
    let server = Server::start(&["--sheets", &store_path]);
    let response = server
        .client()
        .post(server.url("/v1/ctr"))
        .header("content-type", "application/x-ndjson")
        .body(sample_ctr_ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // The contact is complete: real-time QA stores its sheet, with its session.
    // The store's clients block (PostgreSQL's runs its own runtime).
    tokio::task::block_in_place(|| {
        let store = SheetStoreUrl::parse(&store_path).unwrap().open().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.count().unwrap() == 0 {
            assert!(Instant::now() < deadline, "no sheet stored:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        let rows = store.list(&filter()).unwrap();
        assert_eq!(rows.len(), 1);
        let sheet = store.sheet(&rows[0].session_id).unwrap().unwrap();
        assert_eq!(sheet["contact_id"], "6fe40d2a-1a89-4d73-bfcf-5d9c33894f47");
    });
    assert!(!server.path("data/sheets.ndjson").exists(), "the store replaces the NDJSON file");
}

fn a_rerun_reports_what_a_changed_parameter_would_change_and_records_it_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store_path = backend.store(dir.path(), "sheets");
    let rules = common::repo_root().join("samples/rules.toml");
    let before = dir.path().join("before.ndjson");
    check(&rules, &store_path, &before);
    // The same change as a fresh `check` would see it, to compare with.
    let changed = dir.path().join("changed.toml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&rules).unwrap().replacen("within-seconds = 8", "within-seconds = 1", 1),
    )
    .unwrap();
    let after_path = dir.path().join("after.ndjson");
    check(&changed, &format!("sqlite:{}", dir.path().join("other.db").display()), &after_path);
    let outcome = |sheets: &[Value], session: &str, rule: &str| {
        let sheet = sheets.iter().find(|s| s["session_id"] == session).unwrap();
        sheet["items"].as_array().unwrap().iter().find(|i| i["rule_id"] == rule).map(|i| i["outcome"].clone())
    };
    let (old, new) = (sheets(&before), sheets(&after_path));
    let expected = old
        .iter()
        .filter(|s| {
            let id = s["session_id"].as_str().unwrap();
            outcome(&old, id, "greeting-hotline") == Some("pass".into())
                && outcome(&new, id, "greeting-hotline") == Some("fail".into())
        })
        .count();
    assert!(expected > 0, "the stricter greeting must fail some sessions");

    let rerun = |dry_run: bool| {
        let mut cmd = common::callqa();
        cmd.args(["sheets", "rerun", "--store"])
            .arg(&store_path)
            .arg("--rules")
            .arg(&changed)
            .args(["--format", "json"]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let report = rerun(true);
    assert_eq!(report["sessions"], 17);
    assert_eq!(report["recorded"], 0);
    assert_eq!(report["rules"]["greeting-hotline"]["changes"]["pass → fail"], expected as u64);
    assert_eq!(
        report["rules"]["greeting-hotline"]["examples"]["pass → fail"].as_array().unwrap().len(),
        expected.min(3)
    );
    assert!(report["rules"]["chase-follow-up"]["changes"].as_object().unwrap().is_empty());
    let store = SheetStoreUrl::parse(&store_path).unwrap().open().unwrap();
    assert_eq!(store.count().unwrap(), 17, "a dry run records nothing");

    assert_eq!(rerun(false)["recorded"], 17);
    assert_eq!(store.count().unwrap(), 34, "the old evaluations are kept");
    // Re-run again: the latest evaluations are already under this version.
    let again = rerun(false);
    assert_eq!(again["recorded"], 0);
    assert!(again["rules"]["greeting-hotline"]["changes"].as_object().unwrap().is_empty());
}
