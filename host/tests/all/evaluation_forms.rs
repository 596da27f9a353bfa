//! The QA form a ruleset describes: sections and their weights, critical
//! items (one failed sets the score to 0), grades, and the refusals of a
//! form that does not add up. Items are one-line scripts, so each outcome is
//! known without a session to match.

use std::sync::Arc;

use callqa::qa::Inspector;
use callqa::rules::Ruleset;
use callqa::session::Session;

use crate::common;

fn item(id: &str, section: &str, outcome: &str, extra: &str) -> String {
    let result = if outcome == "fail" { "true" } else { "false" };
    format!(
        "[[rule]]\nid = '{id}'\nmodule = 'bundled:script'\nsection = '{section}'\n{extra}\n\
         [rule.script]\ntext = 'return {result};'\n"
    )
}

const FORM: &str = "
[[section]]
id = 'courtesy'
title = '服务礼仪'
weight = 3.0
[[section]]
id = 'process'
weight = 1.0
[[section]]
id = 'chat-only'
[[grade]]
name = 'pass'
min = 0.6
[[grade]]
name = 'excellent'
min = 0.9
[[grade]]
name = 'fail'
min = 0.0
";

fn voice_session() -> Arc<Session> {
    let bytes = std::fs::read(common::repo_root().join("samples/sessions/voice-en-billing-pass.json")).unwrap();
    Arc::new(Session::from_json(&bytes).unwrap())
}

fn sheet(text: &str) -> callqa::qa::QaSheet {
    let ruleset = Ruleset::parse(&common::engine(), text, &common::repo_root()).unwrap();
    Inspector::new(common::engine(), Arc::new(ruleset)).inspect(voice_session())
}

#[test]
fn sections_weigh_their_items_and_grades_name_the_score() {
    let text = [
        FORM,
        &item("greets", "courtesy", "pass", ""),
        &item("polite", "courtesy", "fail", ""),
        &item("ticket", "process", "pass", ""),
        // Not on a voice sheet: its section has no score and leaves the denominator.
        &item("chat-speed", "chat-only", "fail", "channels = ['chat']"),
    ]
    .concat();
    let sheet = sheet(&text);
    let scores: Vec<(&str, Option<f64>)> = sheet.sections.iter().map(|s| (s.id.as_str(), s.score)).collect();
    assert_eq!(scores, [("courtesy", Some(0.5)), ("process", Some(1.0)), ("chat-only", None)]);
    assert_eq!(sheet.sections[0].title.as_deref(), Some("服务礼仪"));
    // (3 × 0.5 + 1 × 1.0) / 4
    assert_eq!(sheet.score, Some(0.625));
    assert_eq!(sheet.grade.as_deref(), Some("pass"));
    assert!(sheet.critical_failed.is_empty());
    assert_eq!(sheet.items[0].section.as_deref(), Some("courtesy"));
}

#[test]
fn a_failed_critical_item_sets_the_score_to_zero_and_says_which() {
    let text = [
        FORM,
        &item("greets", "courtesy", "pass", ""),
        &item("no-abuse", "courtesy", "fail", "critical = true"),
        &item("ticket", "process", "pass", "critical = true"),
    ]
    .concat();
    let sheet = sheet(&text);
    assert_eq!(sheet.score, Some(0.0));
    assert_eq!(sheet.critical_failed, ["no-abuse"]);
    assert_eq!(sheet.grade.as_deref(), Some("fail"));
    assert!(sheet.items.iter().find(|i| i.rule_id == "no-abuse").unwrap().critical);
    let json = serde_json::to_value(&sheet).unwrap();
    assert_eq!(json["critical_failed"][0], "no-abuse");
    // A passed critical item changes nothing.
    let text =
        [FORM, &item("greets", "courtesy", "pass", "critical = true"), &item("t", "process", "pass", "")].concat();
    assert_eq!(sheet_score(&text), Some(1.0));
}

fn sheet_score(text: &str) -> Option<f64> {
    sheet(text).score
}

#[test]
fn a_ruleset_without_a_form_scores_and_serialises_as_before() {
    let text = "[[rule]]\nid = 'a'\nmodule = 'bundled:script'\nweight = 3.0\n[rule.script]\ntext = 'return true;'\n\
                [[rule]]\nid = 'b'\nmodule = 'bundled:script'\n[rule.script]\ntext = 'return false;'\n";
    let sheet = sheet(text);
    assert_eq!(sheet.score, Some(0.25));
    let json = serde_json::to_value(&sheet).unwrap();
    for absent in ["sections", "critical_failed", "grade"] {
        assert!(json.get(absent).is_none(), "{absent} appears in {json}");
    }
    assert!(json["items"][0].get("section").is_none() && json["items"][0].get("critical").is_none());
}

#[test]
fn a_form_that_does_not_add_up_is_refused() {
    let refused = |text: &str| {
        format!("{:#}", Ruleset::parse(&common::engine(), text, &common::repo_root()).err().expect("refused"))
    };
    let plain = "[[rule]]\nid = 'a'\nmodule = 'bundled:script'\n[rule.script]\ntext = 'return true;'\n";
    let message = refused(&format!("{FORM}{plain}"));
    assert!(message.contains("rule `a`: the ruleset has sections: name this item's"), "{message}");
    let message = refused(&[FORM, &item("a", "billing", "pass", "")].concat());
    assert!(message.contains("unknown section `billing` (declared: courtesy, process, chat-only)"), "{message}");
    let message = refused(&item("a", "courtesy", "pass", ""));
    assert!(message.contains("the ruleset declares no [[section]]"), "{message}");
    let message = refused(&format!("[[grade]]\nname = 'top'\nmin = 1.5\n{plain}"));
    assert!(message.contains("grade `top`: min 1.5 must be within [0, 1]"), "{message}");
    let message = refused(&format!("[[section]]\nid = 's'\n[[section]]\nid = 's'\n{}", item("a", "s", "pass", "")));
    assert!(message.contains("section `s` is declared twice"), "{message}");
}
