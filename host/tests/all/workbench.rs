//! The workbench over HTTP: sign-in, who sees which sheet, CSRF on every
//! form, escaping of what a transcript says, the security headers, both
//! languages, and the HTML reports. The same pages in a real browser are
//! in `workbench_browser.rs`.

use std::path::{Path, PathBuf};

use reqwest::header;
use reqwest::redirect::Policy;

use crate::common;
use crate::serve_support::{repo_root, users_in, Server};

/// agent-3318's call: four items failed (forbidden-phrases quotes "not my problem").
pub const CALL: &str = "3baf6490-0382-537a-b41c-4c732c1da523";
/// agent-5012's chat: only chase-follow-up failed.
pub const CHAT: &str = "68045dda-4d29-51c4-9cf4-4bfe11b8159b";
/// A session whose transcript, queue and agent carry markup.
pub const HOSTILE: &str = "hostile-markup-session";
pub const HOSTILE_TEXT: &str = r#"<script>alert("x")</script><img src=x onerror=alert(1)> not my problem"#;

pub const PASSWORD: &str = "correct-horse-battery";

/// A server over a sheet store holding the sample sessions' sheets and the
/// hostile one, with a reviewer `rita`, an admin `ada` and an agent `li`
/// (agent-3318).
pub struct Workbench {
    pub server: Server,
}

fn hostile_session(dir: &Path) -> PathBuf {
    let mut session: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("samples/sessions/voice-en-billing-rude.json")).unwrap(),
    )
    .unwrap();
    session["id"] = HOSTILE.into();
    session["contact"]["contact_id"] = HOSTILE.into();
    session["contact"]["queue"] = "<b>queue</b>".into();
    session["contact"]["agent"]["id"] = "agent-9999".into();
    session["segments"][3]["text"] = HOSTILE_TEXT.into();
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_vec(&session).unwrap()).unwrap();
    path
}

impl Workbench {
    pub fn start() -> Workbench {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite:{}", dir.path().join("sheets.db").display());
        let output = common::callqa()
            .args(["check", "--rules", "samples/rules.toml", "--sheets", &store, "--out"])
            .arg(dir.path().join("sheets.ndjson"))
            .arg("samples/sessions")
            .arg(hostile_session(dir.path()))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let data = dir.path().join("data");
        for args in [
            &["add", "rita", "--role", "reviewer", "--password-stdin"][..],
            &["add", "ada", "--role", "admin", "--password-stdin"][..],
            &["add", "li", "--role", "agent", "--agent-id", "agent-3318", "--password-stdin"][..],
        ] {
            let (ok, _, err) = users_in(&data, args, &format!("{PASSWORD}\n"));
            assert!(ok, "users {args:?}: {err}");
        }
        let args: Vec<String> = ["--rules", "samples/rules.toml", "--sheets", &store, "--insecure-cookies"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Workbench { server: Server::start_in(dir, &args) }
    }
}

/// A browser-like client: no redirects followed, the session cookie and
/// CSRF token kept by hand.
pub struct Visitor {
    client: reqwest::Client,
    base: String,
    pub cookie: String,
    pub csrf: String,
}

impl Visitor {
    pub fn anonymous(server: &Server) -> Visitor {
        Visitor {
            client: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
            base: server.url(""),
            cookie: String::new(),
            csrf: String::new(),
        }
    }

    pub async fn signed_in(server: &Server, user: &str) -> Visitor {
        let mut visitor = Visitor::anonymous(server);
        let response = visitor.post("/login", &[("username", user), ("password", PASSWORD), ("next", "/sheets")]).await;
        assert_eq!(response.status(), 303, "sign-in of {user}");
        assert_eq!(response.headers()[header::LOCATION], "/sheets");
        let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        visitor.cookie = cookie.split(';').next().unwrap().to_owned();
        let page = visitor.get("/sheets").await.text().await.unwrap();
        visitor.csrf = page
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a page with a form carries the CSRF token")
            .to_owned();
        visitor
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::ACCEPT_LANGUAGE, "en-US,en;q=0.9")
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::ORIGIN, self.base.trim_end_matches('/'))
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn pages_need_a_session_and_carry_a_strict_policy() {
    let wb = Workbench::start();
    let anonymous = Visitor::anonymous(&wb.server);
    for path in ["/sheets", "/dashboard", "/rules", &format!("/sheets/{CALL}")] {
        let response = anonymous.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert!(response.headers()[header::LOCATION].to_str().unwrap().starts_with("/login?next=/"), "{path}");
    }
    // A form posted without a session changes nothing and asks to sign in.
    let response = anonymous.post(&format!("/sheets/{CALL}/acknowledge"), &[("csrf", "x")]).await;
    assert_eq!(response.status(), 303);
    let response = anonymous.post("/login", &[("username", "rita"), ("password", "wrong"), ("next", "/")]).await;
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("Wrong user name or password"));

    let rita = Visitor::signed_in(&wb.server, "rita").await;
    let response = rita.get("/sheets").await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let html = response.text().await.unwrap();
    // No inline script anywhere: every <script> loads from this origin or is data.
    for tag in html.split("<script").skip(1) {
        let head = tag.split('>').next().unwrap();
        assert!(head.contains("src=\"/assets/") || head.contains("application/json"), "an inline script: {head}");
    }
    // An open redirect after sign-in is refused.
    let mut visitor = Visitor::anonymous(&wb.server);
    visitor.cookie.clear();
    let response =
        visitor.post("/login", &[("username", "ada"), ("password", PASSWORD), ("next", "//evil.example/")]).await;
    assert_eq!(response.headers()[header::LOCATION], "/sheets");
}

#[tokio::test]
async fn what_a_transcript_says_is_shown_as_text() {
    let wb = Workbench::start();
    let rita = Visitor::signed_in(&wb.server, "rita").await;
    let html = rita.get(&format!("/sheets/{HOSTILE}")).await.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "the transcript's script tag reached the page");
    assert!(!html.contains("<img src=x"), "the transcript's img tag reached the page");
    assert!(!html.contains("<b>queue</b>"));
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt;"), "the text is not shown escaped");
    // The forbidden phrase in the same segment is marked, and only it.
    assert!(html.contains(r##"<a href="#finding-1-0">not my problem</a></mark>"##), "the evidence is not marked");
    let list = rita.get("/sheets?queue=%3Cb%3Equeue%3C%2Fb%3E").await.text().await.unwrap();
    assert!(list.contains("&lt;b&gt;queue&lt;&#x2f;b&gt;") && !list.contains("<b>queue</b>"));
    assert!(list.contains(r#"id="sheet-count">1 shown"#), "the queue filter: {list}");
}

#[tokio::test]
async fn an_agent_sees_only_their_sheets_and_every_form_needs_its_token() {
    let wb = Workbench::start();
    let li = Visitor::signed_in(&wb.server, "li").await;
    let html = li.get("/sheets").await.text().await.unwrap();
    assert_eq!(html.matches("class=\"sheet-row\"").count(), 1, "{html}");
    assert!(html.contains(&format!("data-session=\"{CALL}\"")));
    // Asking for another agent's sheets shows none; another's sheet is not found.
    let html = li.get("/sheets?agent=agent-5012").await.text().await.unwrap();
    assert_eq!(html.matches("class=\"sheet-row\"").count(), 0);
    assert_eq!(li.get(&format!("/sheets/{CHAT}")).await.status(), 404);
    // An agent may not review: refused, nothing changed.
    let review = format!("/sheets/{CALL}/items/silence-voice/review");
    let response = li.post(&review, &[("csrf", &li.csrf), ("outcome", "pass")]).await;
    assert_eq!(response.status(), 403);
    // A reviewer's form without the right token is refused.
    let rita = Visitor::signed_in(&wb.server, "rita").await;
    let response = rita.post(&review, &[("csrf", "forged"), ("outcome", "pass")]).await;
    assert_eq!(response.status(), 403);
    let response = rita.post(&review, &[("csrf", &li.csrf), ("outcome", "pass")]).await;
    assert_eq!(response.status(), 403, "another session's token");
    let page = rita.get(&format!("/sheets/{CALL}")).await.text().await.unwrap();
    assert!(page.contains(r#"id="outcome-silence-voice">fail<"#), "a refused form changed the sheet");
    // With it, the review lands and the page shows it.
    let response = rita.post(&review, &[("csrf", &rita.csrf), ("outcome", "pass"), ("comment", "music on hold")]).await;
    assert_eq!(response.status(), 303);
    let page = rita.get(&format!("/sheets/{CALL}")).await.text().await.unwrap();
    assert!(page.contains(r#"id="outcome-silence-voice">pass<"#));
    assert!(page.contains("music on hold") || page.contains("review"), "the audit trail");
    // A sign-out with another session's token ends nothing.
    let response = li.post("/logout", &[("csrf", &rita.csrf)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(rita.get("/sheets").await.status(), 200);
}

#[tokio::test]
async fn labels_follow_the_browser_and_the_switch() {
    let wb = Workbench::start();
    let rita = Visitor::signed_in(&wb.server, "rita").await;
    let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let zh = client
        .get(wb.server.url("/sheets"))
        .header(header::COOKIE, &rita.cookie)
        .header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("<html lang=\"zh\">") && zh.contains("质检单") && zh.contains("条符合"), "{zh}");
    let switched = rita.get("/dashboard?lang=zh").await;
    let cookie = switched.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("callqa_lang=zh"), "{cookie}");
    assert!(switched.text().await.unwrap().contains("每日平均分"));
    let en = rita.get("/rules").await.text().await.unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("Operators and script"));
}

#[tokio::test]
async fn the_rules_page_validates_without_saving() {
    let wb = Workbench::start();
    let ada = Visitor::signed_in(&wb.server, "ada").await;
    let source = r#"[[rule]]
id = "broken"
module = "bundled:script"
[rule.operators.A]
kind = "phrase"
role = "agent"
any = ["hello"]
[rule.script]
language = "qlexpress"
text = """
if (A && ) {
  return true;
}
return false;
"""
"#;
    let response = ada.post("/rules/validate", &[("csrf", &ada.csrf), ("source", source)]).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="validation-error""#), "{html}");
    assert!(html.contains(r#"id="error-line" data-line="11""#), "the error is not at the script's line: {html}");
    let fixed = source.replace("(A && )", "(A)");
    let response = ada.post("/rules/validate", &[("csrf", &ada.csrf), ("source", &fixed)]).await;
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="validation-ok""#), "{html}");
    // A module path would read the server's files: refused before loading.
    let path = fixed.replace("bundled:script", "/etc/passwd");
    let html = ada.post("/rules/validate", &[("csrf", &ada.csrf), ("source", &path)]).await.text().await.unwrap();
    assert!(html.contains("only bundled modules"), "{html}");
    // A reviewer may not validate.
    let rita = Visitor::signed_in(&wb.server, "rita").await;
    assert_eq!(rita.post("/rules/validate", &[("csrf", &rita.csrf), ("source", &fixed)]).await.status(), 403);
}

#[test]
fn reports_are_one_file_that_needs_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let store = format!("sqlite:{}", dir.path().join("sheets.db").display());
    let output = common::callqa()
        .args(["check", "--rules", "samples/rules.toml", "--lang", "zh", "--sheets", &store, "--report"])
        .arg(&report)
        .args(["--out", "-", "samples/sessions"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 17, "NDJSON still goes to stdout");
    let html = std::fs::read_to_string(&report).unwrap();
    assert_offline(&html);
    assert!(html.contains("质检报告") && html.contains("chart-rules-failing"));
    assert!(html.contains(r#"<mark class="evidence">not my problem</mark>"#), "evidence in the failing sheets");

    let by_team = dir.path().join("by-team.html");
    let output = common::callqa()
        .args(["sheets", "report", "--store", &store, "--since", "2026-11-01", "--until", "2026-11-30"])
        .args(["--by", "team", "--lang", "en", "--out"])
        .arg(&by_team)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let html = std::fs::read_to_string(&by_team).unwrap();
    assert_offline(&html);
    assert!(html.contains(r#"<table id="groups">"#) && html.contains("Austin/Billing/Tier 1"), "the table by team");
}

/// Nothing is fetched when the file is opened.
fn assert_offline(html: &str) {
    for reference in ["src=\"http", "href=\"http", "src=\"/", "href=\"/assets", "@import", "url(http"] {
        assert!(!html.contains(reference), "the report refers to {reference}");
    }
    assert!(html.contains("Chartist") && html.contains("chart-data"), "the chart library and data are inlined");
}

#[test]
fn the_vendored_chart_library_is_the_pinned_npm_package() {
    let root = repo_root();
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("package-lock.json")).unwrap()).unwrap();
    let pinned = lock["packages"]["node_modules/chartist"]["version"].as_str().unwrap();
    let installed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("node_modules/chartist/package.json"))
            .expect("node_modules/chartist: run `npm ci` (scripts/test-servers.sh does)"),
    )
    .unwrap();
    assert_eq!(installed["version"], pinned);
    for (vendored, published) in [("chartist.umd.js", "index.umd.js"), ("chartist.css", "index.css")] {
        let ours = std::fs::read(root.join("host/web/vendor/chartist").join(vendored)).unwrap();
        let theirs = std::fs::read(root.join("node_modules/chartist/dist").join(published)).unwrap();
        assert!(ours == theirs, "host/web/vendor/chartist/{vendored} is not chartist {pinned}'s dist/{published}");
    }
}

/// The dashboard's figures counted in SQL on each backend, and from the
/// same sheets in memory (a `check` report), agree.
#[test]
fn figures_agree_in_sqlite_postgres_and_memory() {
    use callqa::qa::sheet_figures::SheetFigures;
    use callqa::qa::sheet_store::{SheetFilter, SheetStoreUrl};
    use callqa::qa::QaSheet;
    use callqa::session::read_sessions;

    let dir = tempfile::tempdir().unwrap();
    let sheets_file = dir.path().join("sheets.ndjson");
    let mut counted = Vec::new();
    for backend in [crate::sheet_store::Backend::Sqlite, crate::sheet_store::Backend::Postgres] {
        let url = backend.store(dir.path(), "figures");
        let output = common::callqa()
            .args(["check", "--rules", "samples/rules.toml", "--sheets", &url, "--out"])
            .arg(&sheets_file)
            .arg("samples/sessions")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let store = SheetStoreUrl::parse(&url).unwrap().open().unwrap();
        let all = SheetFilter { limit: usize::MAX, ..SheetFilter::default() };
        counted.push(store.figures(&all, usize::MAX).unwrap());
        let (n, capped) = store.count_matching(&all, 10).unwrap();
        assert_eq!((n, capped), (10, true));
        assert_eq!(store.count_matching(&all, 100).unwrap(), (17, false));
    }
    let sheets: Vec<QaSheet> =
        std::fs::read_to_string(&sheets_file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let sessions: Vec<_> =
        read_sessions(&[repo_root().join("samples/sessions")]).unwrap().into_iter().map(|(_, s)| s.unwrap()).collect();
    let by_id = |id: &str| sessions.iter().find(|s| s.id == id).unwrap();
    let memory = SheetFigures::from_sheets(sheets.iter().map(|s| (s, by_id(&s.session_id))));
    let round = |f: &SheetFigures| {
        let mut f = f.clone();
        for d in &mut f.days {
            d.mean_score = d.mean_score.map(|m| (m * 1e4).round() / 1e4);
        }
        for g in f.teams.iter_mut().chain(f.agents.iter_mut()) {
            g.mean_score = g.mean_score.map(|m| (m * 1e4).round() / 1e4);
        }
        f
    };
    assert_eq!(round(&counted[0]), round(&counted[1]), "SQLite and PostgreSQL count differently");
    assert_eq!(round(&counted[0]), round(&memory), "the store and the sheets in memory count differently");
    assert_eq!(memory.sheets(), 17);
    let worst = memory.rule_totals();
    assert_eq!((worst[0].rule_id.as_str(), worst[0].failed), ("forbidden-phrases", 5));
}
