//! The workbench in a real browser: Debian's chromium, headless, driven
//! through chromedriver (started by scripts/test-servers.sh, which exports
//! CALLQA_WEBDRIVER_URL). A reviewer filters, opens a sheet, sees the
//! evidence and overturns a finding; an agent sees only their sheet and
//! disputes an item; the reviewer accepts; the dashboard and the report
//! draw their charts; the rules page shows a script error at its line.
//! Each page is saved as a screenshot under the test's output directory.

use std::path::PathBuf;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common;
use crate::workbench::{Workbench, CALL, CHAT, PASSWORD};

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workbench-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser() -> Client {
    let url = std::env::var("CALLQA_WEBDRIVER_URL").expect(
        "CALLQA_WEBDRIVER_URL is not set: `source scripts/test-servers.sh` installs chromium and chromium-driver \
         and starts chromedriver",
    );
    let profile = tempfile::tempdir().unwrap().keep();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": std::env::var("CALLQA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            // The machine has no network: Chromium's own background
            // connections are refused, many at a time, without these.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1000", "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {"intl.accept_languages": "en-US,en"},
        }
    });
    let caps = caps.as_object().unwrap().clone();
    ClientBuilder::rustls()
        .expect("a WebDriver client")
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot start chromium through chromedriver at {url}: {e}"))
}

async fn shot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(browser: &Client, base: &str, user: &str) {
    // Signed out: the cookies of this origin dropped.
    browser.goto(&format!("{base}/login")).await.unwrap();
    browser.delete_all_cookies().await.unwrap();
    browser.goto(&format!("{base}/sheets")).await.unwrap();
    // Sent to sign in first, and back to the sheets after.
    assert!(browser.current_url().await.unwrap().path().starts_with("/login"));
    shot(browser, "login").await;
    browser.find(Locator::Id("username")).await.unwrap().send_keys(user).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    browser.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    let me = browser.wait().for_element(Locator::Id("me")).await.unwrap();
    assert_eq!(me.text().await.unwrap(), user);
    assert_eq!(browser.current_url().await.unwrap().path(), "/sheets");
}

async fn text(browser: &Client, id: &str) -> String {
    browser.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

async fn select(browser: &Client, id: &str, value: &str) {
    let element = browser.find(Locator::Id(id)).await.unwrap();
    element.select_by_value(value).await.unwrap();
}

#[tokio::test]
async fn review_dispute_and_resolve_in_the_browser() {
    let wb = Workbench::start();
    let base = wb.server.url("");
    let base = base.trim_end_matches('/');
    let browser = browser().await;

    // A reviewer narrows the sheets to one failing rule.
    sign_in(&browser, base, "rita").await;
    shot(&browser, "sheets").await;
    select(&browser, "filter-rule", "forbidden-phrases").await;
    select(&browser, "filter-outcome", "fail").await;
    browser.find(Locator::Id("apply-filters")).await.unwrap().click().await.unwrap();
    // The reloaded page has the filter's value selected.
    browser.wait().for_element(Locator::Css("#filter-rule option[selected][value='forbidden-phrases']")).await.unwrap();
    assert!(browser.current_url().await.unwrap().query().is_some_and(|q| q.contains("rule=forbidden-phrases")));
    let rows = browser.find_all(Locator::Css("tr.sheet-row")).await.unwrap();
    assert!(!rows.is_empty(), "no failing sheet listed");
    for row in &rows {
        let failed = row.text().await.unwrap();
        assert!(failed.contains("forbidden-phrases"), "a row without the failed rule: {failed}");
    }
    assert!(text(&browser, "sheet-count").await.starts_with(&format!("{} shown", rows.len())));
    shot(&browser, "sheets-filtered").await;

    // The sheet: the quoted phrase is marked in the transcript and linked to its finding.
    browser.find(Locator::Css(&format!("tr[data-session='{CALL}'] a"))).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Id("transcript")).await.unwrap();
    let marks = browser.find_all(Locator::Css("mark.evidence")).await.unwrap();
    let mut marked = Vec::new();
    for mark in &marks {
        marked.push(mark.text().await.unwrap());
    }
    assert!(marked.iter().any(|m| m == "not my problem"), "the phrase is not marked: {marked:?}");
    let highlighted: String = browser
        .execute(
            "const m = [...document.querySelectorAll('mark.evidence')].find(m => m.textContent === 'not my problem');\
             return getComputedStyle(m).backgroundColor;",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(highlighted, "rgba(0, 0, 0, 0)", "the evidence is not highlighted");
    shot(&browser, "sheet").await;
    let before = text(&browser, "sheet-score").await;
    assert!(before.starts_with("0.00"), "{before}");

    // Overturn the finding: the item passes and the score rises.
    select(&browser, "review-outcome-forbidden-phrases", "pass").await;
    browser.find(Locator::Id("review-forbidden-phrases")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#outcome-forbidden-phrases.pass")).await.unwrap();
    let after = text(&browser, "sheet-score").await;
    assert_ne!(after, before, "the score did not change");
    assert!(!after.starts_with("0.00"), "{after}");

    // The agent sees only their sheet, and disputes an item.
    sign_in(&browser, base, "li").await;
    let sessions = browser.find_all(Locator::Css("tr.sheet-row")).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].attr("data-session").await.unwrap().as_deref(), Some(CALL));
    browser.goto(&format!("{base}/sheets/{CHAT}")).await.unwrap();
    assert!(text(&browser, "error-message").await.contains("no sheet"), "another agent's sheet was shown");
    browser.goto(&format!("{base}/sheets/{CALL}")).await.unwrap();
    browser
        .find(Locator::Id("dispute-comment-silence-voice"))
        .await
        .unwrap()
        .send_keys("the customer asked me to hold while they found the bill")
        .await
        .unwrap();
    browser.find(Locator::Id("dispute-silence-voice")).await.unwrap().click().await.unwrap();
    let dispute = browser.wait().for_element(Locator::Css(".dispute .dispute-state")).await.unwrap();
    assert_eq!(dispute.text().await.unwrap(), "open");
    shot(&browser, "sheet-disputed").await;

    // The reviewer accepts the dispute: the item passes, the score rises again.
    sign_in(&browser, base, "rita").await;
    browser.goto(&format!("{base}/sheets/{CALL}")).await.unwrap();
    let disputed = text(&browser, "sheet-score").await;
    let form = browser.find(Locator::Css(".dispute form")).await.unwrap();
    form.find(Locator::Css("input[name=comment]")).await.unwrap().send_keys("agreed: a hold").await.unwrap();
    form.find(Locator::Css("button[value=true]")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#outcome-silence-voice.pass")).await.unwrap();
    assert_ne!(text(&browser, "sheet-score").await, disputed, "accepting the dispute did not rescore");
    let state = browser.find(Locator::Css(".dispute .dispute-state")).await.unwrap().text().await.unwrap();
    assert_eq!(state, "accepted");
    browser.close().await.unwrap();
}

/// The drawn chart elements of chart `id` (Chartist draws SVG).
async fn drawn(browser: &Client, id: &str, selector: &str) -> usize {
    let script = format!("return document.querySelectorAll('#{id} svg {selector}').length;");
    browser.execute(&script, vec![]).await.unwrap().as_u64().unwrap() as usize
}

#[tokio::test]
async fn charts_are_drawn_and_the_rules_page_shows_a_script_error() {
    let wb = Workbench::start();
    let base = wb.server.url("");
    let base = base.trim_end_matches('/');
    let browser = browser().await;
    sign_in(&browser, base, "ada").await;

    browser.goto(&format!("{base}/dashboard?since=2026-11-01&until=2026-11-30")).await.unwrap();
    browser.wait().for_element(Locator::Css("#chart-score-trend svg")).await.unwrap();
    // The days with sheets are points on the line; each failing rule a bar.
    assert!(drawn(&browser, "chart-score-trend", ".ct-point").await >= 2);
    assert!(drawn(&browser, "chart-score-trend", ".ct-line").await >= 1);
    assert!(drawn(&browser, "chart-rules-failing", ".ct-bar").await >= 5);
    assert!(drawn(&browser, "chart-team-trend", ".ct-series").await >= 2);
    shot(&browser, "dashboard").await;

    // The rules page: the script's syntax error marked at its line.
    browser.goto(&format!("{base}/rules")).await.unwrap();
    let source = browser.find(Locator::Id("validate-source")).await.unwrap();
    source.clear().await.unwrap();
    source
        .send_keys(
            "[[rule]]\nid = \"broken\"\nmodule = \"bundled:script\"\n[rule.operators.A]\nkind = \"phrase\"\n\
             role = \"agent\"\nany = [\"hello\"]\n[rule.script]\nlanguage = \"qlexpress\"\ntext = \"\"\"\n\
             if (A && ) {\n  return true;\n}\nreturn false;\n\"\"\"\n",
        )
        .await
        .unwrap();
    browser.find(Locator::Id("validate")).await.unwrap().click().await.unwrap();
    let line = browser.wait().for_element(Locator::Id("error-line")).await.unwrap();
    assert_eq!(line.attr("data-line").await.unwrap().as_deref(), Some("11"));
    assert!(line.text().await.unwrap().contains("if (A && )"));
    assert!(text(&browser, "validation-error").await.contains("line 11"));
    shot(&browser, "rules").await;

    // The report, opened from the file: its charts draw with no server at all.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let output = common::callqa()
        .args(["check", "--rules", "samples/rules.toml", "--out", "-", "--report"])
        .arg(&report)
        .arg("samples/sessions")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    drop(wb);
    browser.goto(&format!("file://{}", report.display())).await.unwrap();
    browser.wait().for_element(Locator::Css("#chart-rules-failing svg")).await.unwrap();
    assert!(drawn(&browser, "chart-rules-failing", ".ct-bar").await >= 5);
    assert!(drawn(&browser, "chart-score-trend", ".ct-point").await >= 2);
    shot(&browser, "report").await;
    browser.close().await.unwrap();
}
